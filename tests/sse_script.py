"""A scripted stand-in for the citechat API on its own port: server-sent events at a set pace and a fixed
``/api/ask`` answer, for browser tests of how the widget renders a stream (the real server's pace is the model's)."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.conftest import free_port

Event = tuple[str, Any, float]  # name, data, seconds to wait after sending it


@dataclass
class Script:
    """What the stand-in answers: ``events`` on ``/api/ask/stream`` (or ``stream_status`` with no events when that
    is not 200), ``answer`` on ``/api/ask``; ``asked`` records the POSTed paths."""

    events: list[Event] = field(default_factory=list)
    answer: dict[str, Any] = field(default_factory=dict)
    stream_status: int = 200
    asked: list[str] = field(default_factory=list)


def _handler(script: Script) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

        def _head(self, status: int, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Access-Control-Allow-Headers", "Content-Type")
            self.send_header("Content-Type", content_type)
            self.end_headers()

        def _json(self, status: int, body: object) -> None:
            self._head(status, "application/json")
            self.wfile.write(json.dumps(body).encode())

        def do_OPTIONS(self) -> None:  # noqa: N802 (http.server's naming)
            self._head(204, "text/plain")

        def do_GET(self) -> None:  # noqa: N802
            if self.path.startswith("/api/suggestions"):
                self._json(200, {"collection": "scripted", "questions": []})
            else:
                self._json(404, {"error": "not_found", "detail": "scripted"})

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            script.asked.append(self.path)
            if self.path == "/api/ask":
                self._json(200, script.answer)
                return
            if script.stream_status != 200:
                self._json(script.stream_status, {"error": "not_found", "detail": "scripted"})
                return
            self._head(200, "text/event-stream")
            for name, data, pause in script.events:
                self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()
                time.sleep(pause)

    return Handler


@contextlib.contextmanager
def serve_script(script: Script) -> Iterator[str]:
    """Serve ``script`` on a free loopback port; yields the base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _handler(script))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
