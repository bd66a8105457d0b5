"""What the web faces share to protect the server: a per-client rate limit, the client's address, a request body
size cap, and the JSON error shape."""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from fastapi.responses import JSONResponse
from limits import RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.errors import RagError
from rag.web.request_id import current_request_id

log = logging.getLogger(__name__)


class RateLimiter:
    """A moving window of ``limit`` requests per ``window_s`` seconds per client key (the ``limits`` library),
    counted in this process (``memory://``) or in Redis, shared by every worker that names the same URL; ``limit``
    0 disables it.

    If Redis stops answering while serving, each process counts on its own for ``RETRY_SHARED_S`` seconds (a
    warning in the log), then tries Redis again: limits keep holding per process rather than failing open or
    refusing everyone."""

    RETRY_SHARED_S = 30.0

    def __init__(self, limit: int, storage: str = "memory://", window_s: int = 60) -> None:
        self.limit = limit
        self._item = RateLimitItemPerSecond(max(limit, 1), window_s)
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._shared: MovingWindowRateLimiter | None = None
        self._where = redacted(storage)
        self._down_until = 0.0
        self._lock = threading.Lock()
        if limit > 0 and not storage.startswith("memory://"):
            # Short timeouts: an unreachable Redis must cost an ask milliseconds, not the OS's connect timeout.
            backend = storage_from_string(storage, wrap_exceptions=True, socket_connect_timeout=1.0,
                                          socket_timeout=1.0)
            if not backend.check():
                raise RagError(f"the rate-limit storage {self._where} does not answer (RAG_RATE_LIMIT_STORAGE): "
                               "start it, or unset the setting to count in each process")
            self._shared = MovingWindowRateLimiter(backend)

    @property
    def degraded(self) -> bool:
        """True while a shared storage is configured but unreachable, and this process counts alone."""
        return self._shared is not None and time.monotonic() < self._down_until

    def retry_after(self, key: str, cost: int = 1) -> float:
        """0 when ``cost`` requests may go ahead (and are counted), else seconds until at least one more may (the
        oldest counted request leaves the window); a cost over the limit never fits (``inf``)."""
        if self.limit <= 0:
            return 0.0
        if cost > self.limit:
            return float("inf")
        if self._shared is not None and not self.degraded:
            try:
                return self._wait(self._shared, key, cost)
            except StorageError as exc:
                with self._lock:
                    if not self.degraded:
                        log.warning("rate-limit storage %s failed (%s): counting in this process for %.0f s",
                                    self._where, exc, self.RETRY_SHARED_S)
                        self._down_until = time.monotonic() + self.RETRY_SHARED_S
        return self._wait(self._local, key, cost)

    def _wait(self, strategy: MovingWindowRateLimiter, key: str, cost: int) -> float:
        if strategy.hit(self._item, key, cost=cost):
            return 0.0
        reset, _ = strategy.get_window_stats(self._item, key)
        return max(reset - time.time(), 0.001)  # refused: never 0, even if the window just moved on


def redacted(url: str) -> str:
    """``url`` without its password, to name a storage in messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


class RateLimited(Exception):
    """Too many requests from one client."""

    def __init__(self, retry_after: float) -> None:
        # Seconds as the 429's Retry-After header rounds them; end users never see setting names.
        wait = f"; try again in {max(1, round(retry_after))} s" if math.isfinite(retry_after) else ""
        super().__init__(f"too many requests{wait}")
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


class ErrorBody(BaseModel):
    """Every API error: a stable code, a message for people, and the request's id (also in ``X-Request-ID``)."""

    error: str = Field(examples=["invalid_question"])
    detail: str = Field(examples=["the question is empty"])
    request_id: str | None = Field(None, examples=["5f0c6b1e2d7a4c3b9e8f1a2b3c4d5e6f"])


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Every API error has this shape (``ErrorBody``): ``{"error": code, "detail": message, "request_id": id}``."""
    request_id = current_request_id()
    body = ErrorBody(error=code, detail=message, request_id=request_id).model_dump(exclude_none=True)
    # The header too: a 500 is sent from outside the middleware that adds it to every other response.
    extra = {"X-Request-ID": request_id} if request_id else {}
    return JSONResponse(body, status_code=status, headers={**(headers or {}), **extra})


_ERRORS = {
    401: "no admin token given (`Authorization: Bearer …`)",
    403: "wrong admin token, or the corpus is read-only (RAG_ADMIN_TOKEN unset)",
    404: "no such collection, source or sentence",
    413: "request body over RAG_MAX_REQUEST_BYTES",
    422: "a malformed request, or an empty or too long question",
    429: "too many requests from this client; `Retry-After` says when to try again",
    503: "the index is empty, being rebuilt, or its store is unreachable",
}


def error_responses(*statuses: int, described: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` declaring ``ErrorBody`` for ``statuses``, with a route's own wording in ``described``
    where it has one."""
    wording = {**_ERRORS, **(described or {})}
    return {status: {"model": ErrorBody, "description": wording[status]} for status in statuses}
