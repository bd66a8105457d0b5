"""Each HTTP request observed: its id (``X-Request-ID`` on every response), its route and timing handed to the
metrics, and one JSON line in the access log (logger ``citechat.access``)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.web.request_id import HEADER, request_id_for, set_current

ACCESS = logging.getLogger("citechat.access")
_HEADER = HEADER.lower().encode()


@dataclass(frozen=True)
class Served:
    """One finished HTTP request, as the access log and the metrics see it."""

    request_id: str
    method: str
    path: str
    route: str
    status: int
    duration_ms: float
    client: str
    bytes_sent: int
    user_agent: str


class RequestObserver:
    """ASGI middleware: gives each HTTP request an id, times it until its last byte is sent (server-sent events
    included) and hands the result to ``sinks``, with the route ``route_of`` reads from the scope once it has been
    routed. Pure ASGI, so streamed responses pass through unbuffered."""

    def __init__(self, app: ASGIApp, route_of: Callable[[Scope], str], sinks: Sequence[Callable[[Served], None]]
                 ) -> None:
        self.app, self.route_of, self.sinks = app, route_of, sinks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_for(scope)
        set_current(request_id)
        status, sent = 0, 0

        async def observed(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != _HEADER]
                message = {**message, "headers": [*headers, (_HEADER, request_id.encode())]}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observed)
        except BaseException:
            status = status or 500  # the 500 itself is sent by Starlette's outermost error middleware
            raise
        finally:
            headers = dict(scope["headers"])
            client = scope.get("client")
            served = Served(request_id=request_id, method=scope["method"], path=scope["path"][:1000],
                            route=self.route_of(scope), status=status,
                            duration_ms=round((time.perf_counter() - started) * 1000, 2),
                            client=str(client[0]) if client else "unknown", bytes_sent=sent,
                            user_agent=headers.get(b"user-agent", b"").decode("latin-1")[:300])
            for sink in self.sinks:
                sink(served)


class JsonFormatter(logging.Formatter):
    """A log record as one JSON object on one line: ``time`` (UTC) and the access fields, or level and message."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        fields = getattr(record, "access", None) or {"level": record.levelname, "message": record.getMessage()}
        # ASCII only: escaped control and line-separator characters cannot split or forge a line.
        return json.dumps({"time": moment.replace("+00:00", "Z"), **fields})


def configure_access_log() -> None:
    """Send ``citechat.access`` to stderr as JSON lines, once per process."""
    ACCESS.setLevel(logging.INFO)
    ACCESS.propagate = False
    if not any(isinstance(h.formatter, JsonFormatter) for h in ACCESS.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        ACCESS.addHandler(handler)


def log_access(served: Served) -> None:
    """Write the access log line of one request (no headers but the user agent, never a body)."""
    ACCESS.info("%s %s %s", served.method, served.path, served.status, extra={"access": asdict(served)})
