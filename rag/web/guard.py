"""ASGI middleware in front of the mounted Gradio app: only the routes the UI uses, and file inputs that are the
caller's own uploads.

Gradio trusts the ``path`` of a file object sent with an event: mounted with ``gr.mount_gradio_app`` it skips its own
upload-folder check, and the ``/gradio_api/run`` routes allow the working and temp folders even when launched. It
then hashes and copies the named file on the event loop, before any handler runs (``/dev/zero`` froze the server,
``/etc/passwd`` was copied and evaluated). So every request body is checked here, before Gradio sees it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Callable
from urllib.parse import unquote

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_PREFIX = "/gradio_api/"
# The Gradio routes the chat, corpus and evaluation tabs (and gradio_client) use; every other /gradio_api route
# (component servers, streaming inputs, run history, dev reload, "vibe" editing, URL proxying…) answers 404, so
# a route added by a Gradio upgrade stays closed until it is reviewed here.
_OPEN_ROUTES = [
    ("GET", r"info/?|openapi\.json|theme\.css|startup-events|queue/data|queue/status|upload_progress"),
    ("GET", r"heartbeat/[\w-]+|call/(?:v2/)?\w+/[\w-]+|file=.+"),
    ("POST", r"queue/join|upload|cancel|reset/?|(?:run|call|call/v2)/\w+/?"),
]
_ROUTES = [(method, re.compile(pattern)) for method, pattern in _OPEN_ROUTES]
_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//|\\\\)", re.IGNORECASE)
# Event bodies carry the chat history (each answer with its sources, a few KB), so they outgrow the API's cap.
MAX_EVENT_BYTES = 2_000_000
# How long an upload stays usable by its client (and on disk): long enough to fill a form and run it.
UPLOAD_TTL_S = 3600.0


class UploadLedger:
    """Which client uploaded which file, for an hour; expired uploads are deleted from disk.

    A client may spend ``budget_bytes`` of upload space at a time, so one caller cannot fill the disk.
    """

    def __init__(self, budget_bytes: int, ttl_s: float = UPLOAD_TTL_S, max_clients: int = 10_000) -> None:
        self.budget_bytes, self.ttl_s, self.max_clients = budget_bytes, ttl_s, max_clients
        self._files: dict[str, dict[str, tuple[float, int]]] = {}
        self._lock = threading.Lock()

    def add(self, client: str, path: str) -> None:
        """Record an upload Gradio saved for ``client``."""
        real = os.path.realpath(path)
        try:
            size = os.stat(real).st_size
        except OSError:
            return
        with self._lock:
            self._expire()
            if client not in self._files and len(self._files) >= self.max_clients:
                _remove(real)  # an unbounded table of clients would be its own memory leak
                return
            self._files.setdefault(client, {})[real] = (time.monotonic(), size)

    def owns(self, client: str, path: str) -> bool:
        """True when ``path`` (after resolving links) is a live upload of ``client``."""
        real = os.path.realpath(path)
        with self._lock:
            self._expire()
            return real in self._files.get(client, {})

    def room(self, client: str) -> int:
        """Bytes ``client`` may still upload."""
        with self._lock:
            self._expire()
            return self.budget_bytes - sum(size for _, size in self._files.get(client, {}).values())

    def _expire(self) -> None:
        cutoff = time.monotonic() - self.ttl_s
        for client in list(self._files):
            files = self._files[client]
            for path in [p for p, (at, _) in files.items() if at < cutoff]:
                del files[path]
                _remove(path)
            if not files:
                del self._files[client]


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def file_paths(value: object) -> list[str]:
    """Every ``path`` of a file object (a dict with a string ``path``) anywhere in a JSON value, without recursion."""
    found, stack = [], [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("path"), str):
                found.append(item["path"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


class GradioGuard:
    """Closes unused Gradio routes, bounds event bodies, and lets file inputs through only when they are files
    the same client uploaded through ``/gradio_api/upload`` (inside Gradio's upload folder, regular files)."""

    def __init__(self, app: ASGIApp, ledger: UploadLedger, upload_folder: Callable[[], str],
                 client_key: Callable[[Scope], str], max_upload_bytes: int) -> None:
        self.app, self.ledger, self.upload_folder = app, ledger, upload_folder
        self.client_key, self.max_upload_bytes = client_key, max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        route, method = scope["path"][len(API_PREFIX):], scope["method"]
        if method == "HEAD":
            method = "GET"
        if not any(m == method and pattern.fullmatch(route) for m, pattern in _ROUTES):
            await _reject(scope, receive, send, 404, "not_found", f"no route {scope['path']}")
            return
        if route.startswith("file="):
            target = unquote(route[len("file="):])
            if _URL.match(target):
                await _reject(scope, receive, send, 403, "forbidden", "this server does not fetch URLs")
                return
            if not self._in_uploads(target):
                await _reject(scope, receive, send, 403, "forbidden", "only uploaded files and results are served")
                return
        if method != "POST":
            await self.app(scope, receive, send)
        elif route == "upload":
            await self._upload(scope, receive, send)
        else:
            await self._event(scope, receive, send)

    async def _upload(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = self.client_key(scope)
        declared = Headers(scope=scope).get("content-length")
        room = min(self.ledger.room(client), self.max_upload_bytes + 64_000)  # multipart framing on top
        if declared is None or not declared.isdigit():
            await _reject(scope, receive, send, 411, "length_required", "uploads need a Content-Length")
            return
        if int(declared) > room:
            await _reject(scope, receive, send, 413, "upload_too_large",
                          f"upload over this client's {room}-byte allowance (RAG_MAX_FILE_BYTES per file, "
                          "files kept for an hour)")
            return
        status, chunks = 0, []

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status == 200:
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    for path in _uploaded_paths(b"".join(chunks)):
                        self.ledger.add(client, path)
            await send(message)

        await self.app(scope, receive, record)

    async def _event(self, scope: Scope, receive: Receive, send: Send) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_EVENT_BYTES:
                await _reject(scope, receive, send, 413, "request_too_large", f"event over {MAX_EVENT_BYTES} bytes")
                return
        refusal = self._refusal(scope, body)
        if refusal:
            await _reject(scope, receive, send, *refusal)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _refusal(self, scope: Scope, body: bytes) -> tuple[int, str, str] | None:
        """(status, code, detail) when the event must not reach Gradio, else None."""
        if not body:
            return None
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return 400, "invalid_request", "the body is not JSON"
        client = self.client_key(scope)
        for path in file_paths(data):
            if not self._in_uploads(path) or not self.ledger.owns(client, path):
                return 403, "forbidden", "a file input must be a file this client uploaded (POST /gradio_api/upload)"
        return None

    def _in_uploads(self, path: str) -> bool:
        """True for a regular file inside Gradio's upload folder once links are resolved. Only names and inodes
        are looked at: nothing a client names is ever opened here."""
        if _URL.match(path) or "\x00" in path:
            return False
        folder, real = os.path.realpath(self.upload_folder()), os.path.realpath(path)
        return os.path.commonpath([folder, real]) == folder and os.path.isfile(real)


def _uploaded_paths(body: bytes) -> list[str]:
    try:
        paths = json.loads(body)
    except ValueError:
        return []
    return [p for p in paths if isinstance(p, str)] if isinstance(paths, list) else []


async def _reject(scope: Scope, receive: Receive, send: Send, status: int, code: str, detail: str) -> None:
    await JSONResponse({"error": code, "detail": detail}, status_code=status)(scope, receive, send)
