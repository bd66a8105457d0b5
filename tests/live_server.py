"""A real citechat server (uvicorn in a thread, real index) and a static host page server, for API/browser tests."""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from rag import Pipeline, Settings
from rag.web.server import build_app, uvicorn_config
from tests.conftest import CORPUS, free_port, make_settings

ADMIN_TOKEN = "test-admin-token"
XSS_SOURCE = "zorblat.txt"
# An article whose title and body carry script payloads: it must be shown as text and never run.
XSS_ARTICLE = (
    "The Zorblat festival <script>window.__xss=1;alert('title')</script>\n\n"
    "The Zorblat lantern festival <img src=x onerror=\"window.__xss=1;alert('img')\"> was first held"
    " in the village of Quenby in 1987. Its founder, Maren Oduya, wrote that <script>window.__xss=1</script>"
    " the lanterns were made from paper and wax.\n"
)


@dataclass
class LiveApp:
    """A running app: its base URL, pipeline and corpus folder."""

    url: str
    pipeline: Pipeline
    settings: Settings
    corpus_dir: Path


class ServerThread:
    """uvicorn serving an ASGI app from a daemon thread."""

    def __init__(self, app: object, port: int) -> None:
        settings = Settings(host="127.0.0.1", port=port)
        self.server = uvicorn.Server(uvicorn_config(app, settings, lifespan="on"))  # type: ignore[arg-type]
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.time() + 180
        while time.time() < deadline:
            if self.server.started:
                return self
            time.sleep(0.2)
        raise RuntimeError("server did not start")

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def start_app(pipeline: Pipeline) -> ServerThread:
    """Serve ``build_app(pipeline)`` on a free port."""
    return ServerThread(build_app(pipeline), free_port())


def seed_copy_pipeline(root: Path, extra: dict[str, str] | None = None, **overrides: object) -> Pipeline:
    """A pipeline over a copy of the seed corpus in ``root/corpus`` (plus ``extra`` articles by file name), its
    own index in ``root/index``, ingested: for tests that change the corpus or need their own settings."""
    corpus = root / "corpus"
    shutil.copytree(CORPUS, corpus)
    for name, text in (extra or {}).items():
        (corpus / name).write_text(text, encoding="utf-8")
    pipeline = Pipeline(make_settings(root / "index").with_overrides(corpus_dir=corpus, **overrides))
    pipeline.ingest([corpus])
    return pipeline


_shared: LiveApp | None = None
_shared_server: ServerThread | None = None
_shared_lock = threading.Lock()


def shared_app(tmp_path_factory: pytest.TempPathFactory) -> LiveApp:
    """One app per test session (started on first use, a daemon thread) over a copy of the seed corpus plus
    an XSS article, with an admin token; shared by the API, UI and browser tests to index only once."""
    global _shared, _shared_server
    with _shared_lock:
        if _shared is None:
            pipeline = seed_copy_pipeline(tmp_path_factory.mktemp("live"), {XSS_SOURCE: XSS_ARTICLE},
                                          admin_token=ADMIN_TOKEN)
            pipeline.warm_up()
            _shared_server = start_app(pipeline).__enter__()
            _shared = LiveApp(_shared_server.url, pipeline, pipeline.settings, pipeline.settings.corpus_dir)
        return _shared


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop the shared server when the run ends (this module is a plugin of ``tests/conftest.py``)."""
    if _shared_server is not None:
        _shared_server.__exit__()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *_: object) -> None:
        pass


@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve ``folder`` with python's http.server on its own port (another origin than the app); yields its URL."""
    port = free_port()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
