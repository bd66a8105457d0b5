"""The id of the request being served: the caller's ``X-Request-ID`` when it is safe to log, else a new one."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from starlette.types import Scope

HEADER = "X-Request-ID"
# Letters, digits, '.', '_' and '-' only: an id is echoed in a response header and written to the log, so it may
# carry no line breaks, quotes or control characters, and no more than a UUID's worth of a caller's choosing.
_SAFE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_current: ContextVar[str | None] = ContextVar("request_id", default=None)


def request_id_for(scope: Scope) -> str:
    """The id for this request: the incoming ``X-Request-ID`` if it matches ``_SAFE``, else a uuid4 hex."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            given = value.decode("latin-1")
            if _SAFE.fullmatch(given):
                return given
            break
    return uuid.uuid4().hex


def set_current(request_id: str) -> None:
    """Make ``request_id`` the current request's id for everything this request runs (errors, logs)."""
    # Never reset: the 500 handler runs after the middleware that set it has unwound, and each request runs in
    # its own task with its own copy of the context, so nothing leaks into the next request.
    _current.set(request_id)


def current_request_id() -> str | None:
    """The id of the request being served, or None outside one."""
    return _current.get()
