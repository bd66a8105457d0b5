"""What the web faces share to protect the server: a per-client rate limit, the client's address, a request body
size cap, and the JSON error shape."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RateLimiter:
    """A sliding one-minute window of requests per client key; ``limit`` 0 disables it."""

    def __init__(self, limit: int, window_s: float = 60.0) -> None:
        self.limit, self.window_s = limit, window_s
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str, cost: int = 1) -> float:
        """0 when ``cost`` requests may go ahead (and are counted), else seconds until they may; a cost over the
        limit never fits (``inf``)."""
        if self.limit <= 0:
            return 0.0
        if cost > self.limit:
            return float("inf")
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and now - hits[0] >= self.window_s:
                hits.popleft()
            if len(hits) + cost > self.limit:
                return self.window_s - (now - hits[len(hits) + cost - self.limit - 1])
            hits.extend([now] * cost)
            if len(self._hits) > 10_000:  # forget idle clients so the table cannot grow without bound
                for idle in [k for k, v in self._hits.items() if not v or now - v[-1] >= self.window_s]:
                    del self._hits[idle]
            return 0.0


class RateLimited(Exception):
    """Too many requests from one client."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limit exceeded; retry in {retry_after:.0f}s (RAG_RATE_LIMIT_PER_MINUTE)")
        self.retry_after = retry_after


def client_key(request: object | None) -> str:
    """The client's address, from a Starlette or a Gradio request (both carry ``client``). Proxy headers count only
    from ``RAG_TRUSTED_PROXIES`` (the server's proxy-headers middleware rewrites the address then); from anyone else
    they are trivial to forge."""
    client = getattr(request, "client", None)
    return str(client.host) if client else "unknown"


def scope_client(scope: Scope) -> str:
    """The client address of an ASGI connection scope."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class BodySizeLimit:
    """ASGI middleware: API request bodies larger than ``max_bytes`` get a 413 before they are read in full.

    ``uploads`` maps a path to a larger limit and the setting that names it (document uploads)."""

    def __init__(self, app: ASGIApp, max_bytes: int, prefix: str = "/api/",
                 uploads: dict[str, tuple[int, str]] | None = None) -> None:
        self.app, self.max_bytes, self.prefix = app, max_bytes, prefix
        self.uploads = uploads or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        limit, setting = self.uploads.get(scope["path"].rstrip("/"), (self.max_bytes, "RAG_MAX_REQUEST_BYTES"))
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(scope, receive, send, limit, setting)
            return
        seen = 0
        too_large = False

        async def counted() -> Message:
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    too_large = True
                    raise _TooLarge
            return message

        async def guarded(message: Message) -> None:
            # FastAPI turns _TooLarge raised while it parses the body into its own 400: send the 413 instead.
            if not too_large:
                await send(message)

        with contextlib.suppress(_TooLarge):
            await self.app(scope, counted, guarded)
        if too_large:
            await self._reject(scope, receive, send, limit, setting)

    @staticmethod
    async def _reject(scope: Scope, receive: Receive, send: Send, limit: int, setting: str) -> None:
        response = error_response(413, "request_too_large", f"request body over {limit} bytes ({setting})")
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Every API error has this shape: ``{"error": code, "detail": message}``."""
    return JSONResponse({"error": code, "detail": message}, status_code=status, headers=headers)
