"""The web app: FastAPI serving the HTTP API, the embeddable widget, and the Gradio chat UI mounted at /."""

from __future__ import annotations

import logging
import os
import re
import threading
from html import escape
from importlib import resources

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported anywhere

from fastapi import FastAPI, Query  # noqa: E402
from fastapi.middleware.cors import CORSMiddleware  # noqa: E402
from fastapi.responses import HTMLResponse, Response  # noqa: E402

from rag.api import BodySizeLimit, RateLimiter, install_error_handlers, make_router  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402

log = logging.getLogger(__name__)


def origin_regex(allowed: str) -> str:
    """A regex for CORS origins: ``*`` allows any; an origin without a port allows every port of that host."""
    parts = [p.strip().rstrip("/") for p in allowed.split(",") if p.strip()]
    if "*" in parts:
        return r".*"
    patterns = []
    for origin in parts:
        has_port = re.search(r":\d+$", origin) is not None
        patterns.append(re.escape(origin) + ("" if has_port else r"(?::\d+)?"))
    return "^(?:" + "|".join(patterns) + ")$" if patterns else r"^$"


def widget_script() -> str:
    """The embeddable widget's source (``rag/static/widget.js``)."""
    return resources.files("rag").joinpath("static/widget.js").read_text(encoding="utf-8")


def embed_page(title: str) -> str:
    """A minimal page holding the widget as a full-size panel, for ``<iframe src=".../embed">``."""
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{escape(title)}</title><style>html,body{{margin:0;height:100%}}</style></head><body>"
            f"<script src='widget.js' data-mode='inline' data-title='{escape(title, quote=True)}'></script>"
            "</body></html>")


def build_app(pipeline: Pipeline) -> FastAPI:
    """FastAPI app: the chat UI at /, the HTTP API under /api (docs at /docs), the widget at /widget.js."""
    import gradio as gr

    from rag.ui.app import asset, build_blocks
    from rag.ui.suggestions import SuggestionCache

    settings = pipeline.settings
    limiter = RateLimiter(settings.rate_limit_per_minute)
    app = FastAPI(title="citechat", version="0.1.0",
                  description="Answers from a corpus of articles, citing the exact sentences they rest on.")
    install_error_handlers(app)
    app.include_router(make_router(pipeline, limiter))

    @app.get("/widget.js", include_in_schema=False)
    def widget() -> Response:
        return Response(widget_script(), media_type="application/javascript; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})

    @app.get("/embed", include_in_schema=False)
    def embed(title: str = Query("Ask the articles", max_length=200)) -> HTMLResponse:
        return HTMLResponse(embed_page(title), headers={
            "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'"})

    # Outermost layers: CORS for the widget's cross-origin calls, then the body-size cap on /api.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(CORSMiddleware, allow_origin_regex=origin_regex(settings.allowed_origins),
                       allow_methods=["GET", "POST"], allow_headers=["Content-Type"], max_age=600)

    suggestions = SuggestionCache(pipeline)
    # Warm the example questions in the background so the first page load does not wait for them. Not a daemon:
    # a daemon killed inside Chroma's or ONNX Runtime's native code by an early exit segfaulted the interpreter.
    threading.Thread(target=suggestions.get, name="suggestions").start()
    demo = build_blocks(pipeline, limiter, suggestions)
    return gr.mount_gradio_app(app, demo, path="/", css=asset("style.css"), js=asset("chat.js"),
                               max_file_size=settings.max_file_bytes, footer_links=["api"],
                               theme=gr.themes.Default())


def serve(settings: Settings, ingest_first: bool = True) -> None:
    """Sync the corpus (unless told not to), load everything, then serve until interrupted."""
    import uvicorn

    pipeline = Pipeline(settings)
    if ingest_first and settings.corpus_dir.exists():
        print(pipeline.ingest([settings.corpus_dir]).summary(), flush=True)
    pipeline.warm_up()
    print(f"citechat on http://{settings.host}:{settings.port}  (API docs: /docs, widget: /widget.js)", flush=True)
    uvicorn.run(build_app(pipeline), host=settings.host, port=settings.port, log_level="warning")
