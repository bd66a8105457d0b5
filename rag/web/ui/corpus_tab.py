"""The corpus tab: the indexed articles for everyone; upload, paste, add by URL and remove after an admin
signs in."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import gradio as gr

from rag.errors import RagError
from rag.pipeline import Pipeline
from rag.records import IngestReport
from rag.web.admin import (
    UPLOAD_SUFFIXES,
    AdminError,
    add_file,
    add_url,
    check_token,
    list_articles,
    remove_document,
)
from rag.web.limits import RateLimiter, client_key
from rag.web.render import articles_html, error_html


def articles_view(pipeline: Pipeline) -> tuple[str, Any]:
    """The articles table and the choices of the remove menu."""
    try:
        rows = list_articles(pipeline)
    except RagError as exc:
        return articles_html([]) + error_html(str(exc)), gr.update(choices=[])
    return articles_html(rows), gr.update(choices=[r[0] for r in rows], value=None)


def add_articles(pipeline: Pipeline, token: str, files: list[str] | None, name: str, text: str, url: str,
                 progress: gr.Progress) -> str:
    """Add uploaded files, pasted text and/or a page by URL (each indexed on its own); returns a status line."""
    try:
        check_token(pipeline.settings.admin_token, token)
        items: list[tuple[str, Callable[[], IngestReport]]] = [
            (f"Saved {Path(f).name}", partial(add_file, pipeline, Path(f).name, Path(f).read_bytes()))
            for f in files or []]
        if (text or "").strip():
            items.append((f"Saved {name or 'pasted.txt'}",
                          partial(add_file, pipeline, name or "pasted.txt", text.encode())))
        if (url or "").strip():
            items.append((f"Added {url.strip()}", partial(add_url, pipeline, url.strip())))
    except (RagError, OSError) as exc:
        return f"Error: {exc}"
    if not items:
        return "Nothing to add: choose files, paste text or give a URL."
    lines = []
    for i, (label, add) in enumerate(items):
        progress(i / len(items), desc=label.split(" ", 1)[1])
        try:
            lines.append(f"{label}. {add().summary()}.")
        except (RagError, OSError) as exc:
            lines.append(f"Error: {exc}")
    progress(1.0, desc="done")
    return "\n".join(lines)


def delete_article(pipeline: Pipeline, token: str, source: str | None, progress: gr.Progress) -> str:
    """Remove one article (its file too, when it is in the corpus folder); returns a status line."""
    try:
        check_token(pipeline.settings.admin_token, token)
        if not source:
            return "Choose an article to remove."
        progress(0.2, desc="re-indexing")
        report = remove_document(pipeline, source)
    except (RagError, OSError, LookupError) as exc:
        return f"Error: {exc}"
    return f"Removed {source}. {report.summary()}."


def sign_in(pipeline: Pipeline, limiter: RateLimiter, client: str, token: str) -> tuple[str, str]:
    """Check an admin token (each try counts against the client's rate limit, so it cannot be guessed at speed);
    returns (the token when right, else "", a status line)."""
    wait = limiter.retry_after(client)
    if wait:
        return "", f"Too many tries; try again in {wait:.0f} s."
    try:
        check_token(pipeline.settings.admin_token, token)
    except AdminError:
        return "", "Wrong admin token."
    return token.strip(), ""


def build_corpus_tab(demo: gr.Blocks, pipeline: Pipeline, limiter: RateLimiter) -> None:
    """Lay out the corpus tab inside the current ``gr.Blocks`` context and wire its events: everyone sees the
    articles; the admin controls appear after signing in with the admin token, which every action checks again."""
    private: dict[str, Any] = {"api_visibility": "private"}
    table = gr.HTML(elem_id="cc-articles")
    refresh = gr.Button("Refresh", size="sm", elem_id="cc-refresh")
    outputs: list[Any] = [table]
    has_admin = bool(pipeline.settings.admin_token)

    def show() -> Any:
        shown = articles_view(pipeline)
        return shown if has_admin else shown[0]

    if not has_admin:
        gr.Markdown("This corpus is read-only.", elem_id="cc-readonly")
    else:
        admin_token = gr.State("")  # the checked token, kept by the server for this browser session
        with gr.Accordion("Admin sign-in", open=False, elem_id="cc-signin") as signin:
            with gr.Row(equal_height=True):
                token = gr.Textbox(label="Admin token", type="password", scale=3, elem_id="cc-token")
                enter = gr.Button("Sign in", scale=1, elem_id="cc-signin-button")
            signin_status = gr.Markdown(elem_id="cc-signin-status")
        with gr.Column(visible=False, elem_id="cc-admin") as admin:
            with gr.Row():
                with gr.Column():
                    files = gr.File(label=f"Upload articles ({', '.join(UPLOAD_SUFFIXES)})", file_count="multiple",
                                    file_types=list(UPLOAD_SUFFIXES), type="filepath", elem_id="cc-upload")
                with gr.Column():
                    name = gr.Textbox(label="File name for pasted text", placeholder="my-article.txt",
                                      elem_id="cc-name")
                    text = gr.Textbox(label="…or paste an article", lines=6, elem_id="cc-paste")
            url = gr.Textbox(label="…or add a web page, PDF or DOCX by URL", placeholder="https://…",
                             elem_id="cc-url")
            add = gr.Button("Add to corpus", variant="primary", elem_id="cc-add")
            with gr.Row(equal_height=True):
                remove_choice = gr.Dropdown(label="Article to remove", choices=[], scale=3,
                                            elem_id="cc-remove-choice")
                remove = gr.Button("Remove article", variant="stop", scale=1, elem_id="cc-remove")
            status = gr.Textbox(label="Status", interactive=False, elem_id="cc-status")
            leave = gr.Button("Sign out", size="sm", elem_id="cc-signout")
        outputs.append(remove_choice)

        def on_sign_in(given: str, request: gr.Request) -> tuple[Any, ...]:
            checked, message = sign_in(pipeline, limiter, client_key(request), given)
            signed_in = bool(checked)
            # The box is emptied either way: the token stays out of the page once it has been checked.
            return checked, "", message, gr.update(visible=not signed_in), gr.update(visible=signed_in)

        def on_sign_out() -> tuple[Any, ...]:
            return "", "", gr.update(visible=True), gr.update(visible=False)

        def on_add(tok: str, fs: list[str] | None, nm: str, tx: str, link: str,
                   progress: gr.Progress = gr.Progress()) -> str:
            return add_articles(pipeline, tok, fs, nm, tx, link, progress)

        def on_remove(tok: str, source: str | None, progress: gr.Progress = gr.Progress()) -> str:
            return delete_article(pipeline, tok, source, progress)

        signed = [admin_token, token, signin_status, signin, admin]
        for trigger in (enter.click, token.submit):
            trigger(on_sign_in, inputs=token, outputs=signed, concurrency_limit=1, concurrency_id="signin",
                    **private)
        leave.click(on_sign_out, outputs=[admin_token, status, signin, admin], queue=False, **private)
        add.click(on_add, inputs=[admin_token, files, name, text, url], outputs=status, concurrency_limit=1,
                  concurrency_id="corpus", **private).then(show, outputs=outputs, **private)
        remove.click(on_remove, inputs=[admin_token, remove_choice], outputs=status, concurrency_limit=1,
                     concurrency_id="corpus", **private).then(show, outputs=outputs, **private)
    refresh.click(show, outputs=outputs, **private)
    demo.load(show, outputs=outputs, **private)
