"""The Gradio app: chat, corpus and embed tabs, with the stylesheet and the citation-link script."""

from __future__ import annotations

from importlib import resources
from typing import Any

import gradio as gr

from rag.pipeline import Pipeline
from rag.web.collections import Collections
from rag.web.limits import RateLimiter
from rag.web.suggestions import SuggestionCache
from rag.web.ui.chat import build_chat_tab
from rag.web.ui.corpus_tab import build_corpus_tab
from rag.web.ui.eval_tab import eval_tab

TITLE = "citechat"


def asset(name: str) -> str:
    """A file shipped next to this module (CSS, JS)."""
    return resources.files("rag.web.ui").joinpath(name).read_text(encoding="utf-8")


def embed_snippets(base_url: str) -> tuple[str, str]:
    """The ``<script>`` and ``<iframe>`` snippets that put the chat on another page."""
    script = f'<script src="{base_url}/widget.js" data-title="Ask the articles" async></script>'
    iframe = (f'<iframe src="{base_url}/embed" title="Ask the articles" '
              'style="width:380px;height:560px;border:1px solid #ddd;border-radius:12px"></iframe>')
    return script, iframe


def _base_url(request: gr.Request | None) -> str:
    host = request.headers.get("host") if request is not None else None
    return f"http://{host or '127.0.0.1:7860'}"


def build_blocks(pipeline: Pipeline, limiter: RateLimiter, suggestions: SuggestionCache | None = None,
                 collections: Collections | None = None) -> gr.Blocks:
    """The whole web UI: the chat over every collection (``pipeline``'s by default); corpus and evaluation tabs over
    ``pipeline``."""
    suggestions = suggestions or SuggestionCache(pipeline)
    collections = collections or Collections(pipeline)
    # Gradio's own copies (uploads it cached, files it served) go after an hour, checked every ten minutes.
    with gr.Blocks(title=TITLE, analytics_enabled=False, fill_width=False, delete_cache=(600, 3600)) as demo:
        gr.Markdown(f"# {TITLE}\nAnswers from the article corpus, citing the exact sentences.",
                    elem_id="cc-header")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                build_chat_tab(demo, collections, limiter, suggestions)
            with gr.Tab("Corpus", id="corpus"):
                build_corpus_tab(demo, pipeline, limiter)
            with gr.Tab("Evaluate", id="evaluate"):
                eval_tab(pipeline, limiter)
            with gr.Tab("Embed", id="embed"):
                gr.Markdown("Put the chat on any web page: paste this before `</body>` (a floating bubble; "
                            "the page's origin must be in `RAG_ALLOWED_ORIGINS`).")
                script = gr.Code(language="html", label="Widget", interactive=False, elem_id="cc-snippet")
                gr.Markdown("Or embed the chat panel in a frame:")
                iframe = gr.Code(language="html", label="iframe", interactive=False, elem_id="cc-iframe")

        def snippets(request: gr.Request) -> tuple[str, str]:
            return embed_snippets(_base_url(request))

        private: dict[str, Any] = {"api_visibility": "private"}
        demo.load(snippets, outputs=[script, iframe], **private)
    return demo
