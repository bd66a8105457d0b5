"""The corpus tab: the indexed articles, and (with the admin token) upload, paste and remove."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from rag.errors import RagError
from rag.pipeline import Pipeline
from rag.web.render import articles_html, error_html
from rag.web.ui.admin import UPLOAD_SUFFIXES, check_token, list_articles, remove_article, resync, save_article


def articles_view(pipeline: Pipeline) -> tuple[str, Any]:
    """The articles table and the choices of the remove menu."""
    try:
        rows = list_articles(pipeline)
    except RagError as exc:
        return articles_html([]) + error_html(str(exc)), gr.update(choices=[])
    return articles_html(rows), gr.update(choices=[r[0] for r in rows], value=None)


def add_articles(pipeline: Pipeline, token: str, files: list[str] | None, name: str, text: str,
                 progress: gr.Progress) -> str:
    """Save uploaded files and/or pasted text into the corpus folder, then re-index it; returns a status line."""
    settings = pipeline.settings
    try:
        check_token(settings.admin_token, token)
        uploads = [Path(f) for f in files or []]
        if not uploads and not (text or "").strip():
            return "Nothing to add: choose files or paste text."
        progress(0.05, desc="saving")
        saved = [save_article(settings.corpus_dir, p.name, p.read_bytes(), settings.max_file_bytes).name
                 for p in uploads]
        if (text or "").strip():
            saved.append(save_article(settings.corpus_dir, name or "pasted.txt", text.encode("utf-8"),
                                      settings.max_file_bytes).name)
        progress(0.2, desc=f"indexing {len(saved)} article(s)")
        report = resync(pipeline)
        progress(1.0, desc="done")
    except (RagError, OSError) as exc:
        return f"Error: {exc}"
    skipped = f" Skipped: {'; '.join(report.skipped)}" if report.skipped else ""
    return f"Saved {', '.join(saved)}. {report.summary()}.{skipped}"


def delete_article(pipeline: Pipeline, token: str, source: str | None, progress: gr.Progress) -> str:
    """Remove one article's file from the corpus folder and re-index; returns a status line."""
    try:
        check_token(pipeline.settings.admin_token, token)
        if not source:
            return "Choose an article to remove."
        remove_article(pipeline.settings.corpus_dir, source)
        progress(0.2, desc="re-indexing")
        report = resync(pipeline)
    except (RagError, OSError) as exc:
        return f"Error: {exc}"
    return f"Removed {source}. {report.summary()}."


def build_corpus_tab(demo: gr.Blocks, pipeline: Pipeline) -> None:
    """Lay out the corpus tab inside the current ``gr.Blocks`` context and wire its events."""
    private: dict[str, Any] = {"api_visibility": "private"}
    table = gr.HTML(elem_id="cc-articles")
    refresh = gr.Button("Refresh", size="sm", elem_id="cc-refresh")
    if not pipeline.settings.admin_token:
        gr.Markdown("The corpus is **read-only**: start the app with `RAG_ADMIN_TOKEN` set to add or remove "
                    "articles here (or run `rag ingest`).", elem_id="cc-readonly")
        remove_choice = gr.Dropdown(choices=[], visible=False)
        outputs = [table, remove_choice]
    else:
        token = gr.Textbox(label="Admin token", type="password", elem_id="cc-token")
        with gr.Row():
            with gr.Column():
                files = gr.File(label=f"Upload articles ({', '.join(UPLOAD_SUFFIXES)})", file_count="multiple",
                                file_types=list(UPLOAD_SUFFIXES), type="filepath", elem_id="cc-upload")
            with gr.Column():
                name = gr.Textbox(label="File name for pasted text", placeholder="my-article.txt", elem_id="cc-name")
                text = gr.Textbox(label="…or paste an article", lines=6, elem_id="cc-paste")
        add = gr.Button("Add to corpus", variant="primary", elem_id="cc-add")
        with gr.Row(equal_height=True):
            remove_choice = gr.Dropdown(label="Article to remove", choices=[], scale=3, elem_id="cc-remove-choice")
            remove = gr.Button("Remove article", variant="stop", scale=1, elem_id="cc-remove")
        status = gr.Textbox(label="Status", interactive=False, elem_id="cc-status")
        outputs = [table, remove_choice]

        def on_add(tok: str, fs: list[str] | None, nm: str, tx: str, progress: gr.Progress = gr.Progress()) -> str:
            return add_articles(pipeline, tok, fs, nm, tx, progress)

        def on_remove(tok: str, source: str | None, progress: gr.Progress = gr.Progress()) -> str:
            return delete_article(pipeline, tok, source, progress)

        add.click(on_add, inputs=[token, files, name, text], outputs=status, concurrency_limit=1,
                  concurrency_id="corpus", **private).then(lambda: articles_view(pipeline), outputs=outputs, **private)
        remove.click(on_remove, inputs=[token, remove_choice], outputs=status, concurrency_limit=1,
                     concurrency_id="corpus", **private).then(lambda: articles_view(pipeline), outputs=outputs,
                                                              **private)
    refresh.click(lambda: articles_view(pipeline), outputs=outputs, **private)
    demo.load(lambda: articles_view(pipeline), outputs=outputs, **private)
