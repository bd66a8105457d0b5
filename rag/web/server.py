"""The web app: FastAPI serving the HTTP API, the embeddable widget, and the Gradio chat UI mounted at /."""

from __future__ import annotations

import logging
import os
import re
import threading
from html import escape
from importlib import resources
from typing import TYPE_CHECKING

from fastapi import FastAPI, Query
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from rag.config import Settings, apply_process_defaults, get_settings
from rag.errors import RagError
from rag.pipeline import Pipeline
from rag.web.access_log import RequestObserver, configure_access_log, log_access
from rag.web.api import install_error_handlers, make_router
from rag.web.collections import Collections
from rag.web.documents import make_documents_router
from rag.web.limits import BodySizeLimit, RateLimiter, scope_client
from rag.web.metrics import Metrics, add_metrics_route, route_label
from rag.web.request_id import HEADER
from rag.web.suggestions import Suggestions
from rag.web.suggestions_api import make_suggestions_router

if TYPE_CHECKING:
    import uvicorn

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
    """The embeddable widget's source (``rag/web/static/widget.js``)."""
    return resources.files("rag.web").joinpath("static/widget.js").read_text(encoding="utf-8")


def embed_page(title: str, collection: str | None = None) -> str:
    """A minimal page holding the widget as a full-size panel, for ``<iframe src=".../embed">``."""
    chosen = f" data-collection='{escape(collection, quote=True)}'" if collection else ""
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{escape(title)}</title><style>html,body{{margin:0;height:100%}}</style></head><body>"
            f"<script src='widget.js' data-mode='inline' data-title='{escape(title, quote=True)}'{chosen}></script>"
            "</body></html>")


# The docs pages may load nothing from another site: ReDoc's sidebar asks cdn.redoc.ly for its logo (replaced by
# an empty image, which its own error handler then hides), Swagger UI a validator badge from validator.swagger.io.
_REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
_DOCS_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
                "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'")


def add_api_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` from the files the fastapi-offline package installs: no CDN, fonts or
    favicon from elsewhere, and a content policy that keeps the pages on this server."""
    static = resources.files("fastapi_offline").joinpath("static")
    redoc_js = static.joinpath("redoc.standalone.js").read_text(encoding="utf-8").replace(_REDOC_LOGO, "data:,")

    @app.get("/docs-static/redoc.js", include_in_schema=False)
    def redoc_script() -> Response:
        return Response(redoc_js, media_type="application/javascript; charset=utf-8")

    app.mount("/docs-static", StaticFiles(directory=str(static)), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        page = get_swagger_ui_html(openapi_url="/openapi.json", title="citechat API",
                                   swagger_js_url="/docs-static/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-static/swagger-ui.css",
                                   swagger_favicon_url="/docs-static/favicon.png",
                                   swagger_ui_parameters={"validatorUrl": None})
        page.headers["Content-Security-Policy"] = _DOCS_POLICY
        return page

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        page = get_redoc_html(openapi_url="/openapi.json", title="citechat API",
                              redoc_js_url="/docs-static/redoc.js",
                              redoc_favicon_url="/docs-static/favicon.png", with_google_fonts=False)
        page.headers["Content-Security-Policy"] = _DOCS_POLICY
        return page


def build_app(pipeline: Pipeline, ui: bool = True) -> FastAPI:
    """FastAPI app: the chat UI at /, the HTTP API under /api (docs at /docs), the widget at /widget.js. Without
    ``ui`` (several worker processes: Gradio's sessions live in one process) / opens the widget's full-page chat."""
    apply_process_defaults()  # Gradio reads its analytics switch when it is imported
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    settings = pipeline.settings
    limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_storage)
    app = FastAPI(title="citechat", version="0.1.0", docs_url=None, redoc_url=None,
                  description="Answers from a corpus of articles, citing the exact sentences they rest on.")
    add_api_docs(app)
    install_error_handlers(app)
    collections = Collections(pipeline)
    suggestions = Suggestions(collections)
    app.include_router(make_documents_router(collections, limiter))
    app.include_router(make_suggestions_router(suggestions, limiter))
    app.include_router(make_router(collections, limiter))
    metrics = Metrics(collections, limiter)
    add_metrics_route(app, metrics, settings.admin_token)

    @app.get("/widget.js", include_in_schema=False)
    def widget() -> Response:
        return Response(widget_script(), media_type="application/javascript; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})

    @app.get("/embed", include_in_schema=False)
    def embed(title: str = Query("Ask the articles", max_length=200),
              collection: str | None = Query(None, max_length=512)) -> HTMLResponse:
        return HTMLResponse(embed_page(title, collection), headers={
            "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'"})

    # Outermost first: the client's address (from a trusted proxy only), each request's id, metrics and log line,
    # CORS for the widget's cross-origin calls, the body-size cap on /api, and (with the UI) the guard in front of
    # Gradio's routes.
    if ui:
        from gradio.utils import get_upload_folder

        from rag.web.guard import GradioGuard, UploadLedger

        app.add_middleware(GradioGuard, ledger=UploadLedger(budget_bytes=3 * settings.max_file_bytes),
                           upload_folder=get_upload_folder, client_key=scope_client,
                           max_upload_bytes=settings.max_file_bytes)
    # A document upload may be a whole file, plus the multipart envelope around it.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes,
                       uploads={"/api/documents": (settings.max_file_bytes + 64_000, "RAG_MAX_FILE_BYTES")})
    app.add_middleware(CORSMiddleware, allow_origin_regex=origin_regex(settings.allowed_origins),
                       allow_methods=["GET", "POST"], allow_headers=["Content-Type"], max_age=600,
                       expose_headers=[HEADER, "Retry-After"])
    sinks = [metrics.observe]
    if settings.access_log == "json":
        configure_access_log()
        sinks.append(log_access)
    app.add_middleware(RequestObserver, route_of=route_label, sinks=sinks)
    proxies = trusted_proxies(settings)
    if proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)

    if not ui:
        @app.get("/", include_in_schema=False)
        def home() -> RedirectResponse:
            return RedirectResponse("/embed?title=Ask+the+articles")

        return app

    import gradio as gr

    from rag.web.ui.app import asset, build_blocks

    # Warm the example questions in the background so the first page load does not wait for them. Not a daemon:
    # a daemon killed inside Chroma's or ONNX Runtime's native code by an early exit segfaulted the interpreter.
    threading.Thread(target=suggestions.default.get, name="suggestions").start()
    demo = build_blocks(pipeline, limiter, suggestions.default, collections)
    mounted = gr.mount_gradio_app(app, demo, path="/", css=asset("style.css"), js=asset("chat.js"),
                                  max_file_size=settings.max_file_bytes, footer_links=["api"],
                                  theme=gr.themes.Default())
    # Mounting never marks the Blocks launched, and Gradio skips its own upload-folder check until it is; the
    # guard is the first line, this the second.
    demo.has_launched = True
    return mounted


def trusted_proxies(settings: Settings) -> list[str]:
    """The addresses and networks in ``RAG_TRUSTED_PROXIES``."""
    return [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]


def uvicorn_config(app: FastAPI, settings: Settings, **options: object) -> uvicorn.Config:
    """How the app is served: uvicorn's own proxy-header handling off (it trusts loopback by default), because
    ``build_app`` applies ``RAG_TRUSTED_PROXIES`` itself."""
    import uvicorn

    return uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning", proxy_headers=False,
                          **options)  # type: ignore[arg-type]


def serve(settings: Settings, ingest_first: bool = True, workers: int = 1) -> None:
    """Sync the corpus (unless told not to), load everything, then serve until interrupted; with ``workers`` > 1,
    that many processes share the port (uvicorn's workers) and the index on the Chroma server."""
    import uvicorn

    if workers > 1 and not settings.chroma_url:
        raise RagError(f"--workers {workers}: several processes need a Chroma server to share the index (set "
                       "RAG_CHROMA_URL; docs/scaling.md)")
    # An unreachable rate-limit Redis stops the start here, before the ingest, not later in every worker.
    RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_storage)
    pipeline = Pipeline(settings)
    if ingest_first and settings.corpus_dir.exists():
        print(pipeline.ingest([settings.corpus_dir]).summary(), flush=True)
    if workers > 1:
        # Each worker process builds its own pipeline from the environment: hand it these exact settings.
        os.environ.update(settings_environment(settings))
        print(f"citechat on http://{settings.host}:{settings.port} with {workers} workers (API, widget and /embed;"
              " the Gradio chat UI needs a single process)", flush=True)
        uvicorn.run("rag.web.server:worker_app", factory=True, workers=workers, host=settings.host,
                    port=settings.port, log_level="warning", proxy_headers=False)
        return
    pipeline.warm_up()
    print(f"citechat on http://{settings.host}:{settings.port}  (API docs: /docs, widget: /widget.js)", flush=True)
    uvicorn.Server(uvicorn_config(build_app(pipeline), settings)).run()


def settings_environment(settings: Settings) -> dict[str, str]:
    """``RAG_*`` variables that make ``get_settings()`` in another process equal ``settings``."""
    return {f"RAG_{name.upper()}": str(value) for name, value in settings.model_dump().items() if value is not None}


def worker_app() -> FastAPI:
    """One worker's app (``rag serve --workers N``): settings from the environment, no ingest, no Gradio UI."""
    pipeline = Pipeline(get_settings())
    pipeline.warm_up()
    return build_app(pipeline, ui=False)
