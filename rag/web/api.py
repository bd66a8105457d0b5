"""The HTTP API: ask (JSON or SSE), health, sources; JSON errors, a body-size limit and a per-client rate limit."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from rag.errors import IndexNotReadyError, IngestLockedError, InvalidQuestionError, RagError
from rag.pipeline import validate_history, validate_question
from rag.records import Answer, AnswerDelta, AskEvent, CitationsFound, Turn
from rag.web.collections import Collections
from rag.web.limits import RateLimited, RateLimiter, client_key, error_response, error_responses
from rag.web.render import citation_context

log = logging.getLogger(__name__)


class AskRequest(BaseModel):
    """Body of ``POST /api/ask``: the question, earlier turns of the chat, and how many citations."""

    question: str = Field(examples=["when was the Taraz attack?"])
    history: list[Turn] = Field(default_factory=list, max_length=50)
    k: int | None = Field(None, ge=1, le=50)
    collection: str | None = Field(None, max_length=512, description="a named corpus (default: RAG_COLLECTION)")


class SourceSentence(BaseModel):
    """One indexed sentence of a source, with offsets into its text."""

    sentence_id: str
    text: str
    start: int
    end: int
    position: int


class CitedContext(BaseModel):
    """A sentence with the rest of its paragraph around it."""

    sentence_id: str
    before: str
    sentence: str
    after: str


class SourceDocument(BaseModel):
    """``GET /api/sources/{source}``: the article text the citation offsets point into."""

    source: str
    title: str
    text: str
    sentences: list[SourceSentence]
    context: CitedContext | None = None


_RAG_STATUS: list[tuple[type[RagError], int, str]] = [
    (InvalidQuestionError, 422, "invalid_question"),
    (IndexNotReadyError, 503, "index_not_ready"),
    (IngestLockedError, 503, "ingest_in_progress"),
]


def rag_error_response(exc: RagError) -> JSONResponse:
    """Map a ``RagError`` to its status code: bad question 422, index missing or busy 503, else 503."""
    for kind, status, code in _RAG_STATUS:
        if isinstance(exc, kind):
            return error_response(status, code, str(exc))
    return error_response(503, "unavailable", str(exc))


def install_error_handlers(app: FastAPI) -> None:
    """JSON errors for our exceptions, validation failures and HTTP errors."""

    async def on_rag(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RagError)
        return rag_error_response(exc)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return error_response(422, "invalid_request", problems)

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return error_response(exc.status_code, "not_found" if exc.status_code == 404 else "http_error",
                              str(exc.detail), headers=getattr(exc, "headers", None))

    async def on_limited(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RateLimited)
        return error_response(429, "rate_limited", str(exc), {"Retry-After": str(max(1, round(exc.retry_after)))})

    async def on_crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return error_response(500, "internal_error", f"{type(exc).__name__}: the server failed; see its log")

    app.add_exception_handler(Exception, on_crash)
    app.add_exception_handler(RagError, on_rag)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(RateLimited, on_limited)


def _sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _event(event: AskEvent) -> str:
    """One event of ``Pipeline.astream`` as server-sent event text."""
    if isinstance(event, CitationsFound):
        return _sse("citations", event.model_dump())
    if isinstance(event, AnswerDelta):
        return _sse("delta", event.model_dump())
    return _sse("answer", event.answer.model_dump())


class CollectionList(BaseModel):
    """``GET /api/collections``: the named corpora this server answers from."""

    default: str
    collections: list[str]


# What an ask may answer besides 200: an unknown collection, a body over RAG_MAX_REQUEST_BYTES, a bad question, too
# many asks, no index.
_ASK_ERRORS = error_responses(404, 413, 422, 429, 503)


def make_router(collections: Collections, limiter: RateLimiter) -> APIRouter:
    """The ``/api`` routes over the deployment's collections."""
    router = APIRouter(prefix="/api", tags=["api"])
    pipeline = collections.default
    settings = pipeline.settings

    def admit(request: Request) -> None:
        wait = limiter.retry_after(client_key(request))
        if wait:
            raise RateLimited(wait)

    def prepare(body: AskRequest) -> tuple[str, list[Turn]]:
        question = validate_question(body.question, settings.max_question_chars)
        for turn in body.history:
            if len(turn.content) > settings.max_question_chars * 4:
                raise InvalidQuestionError("a history message is too long")
        validate_history(body.history, settings.max_question_chars)  # 422 now, not an error event mid-stream
        return question, body.history

    @router.post("/ask", response_model=Answer, summary="Answer a question, citing sentences",
                 responses=_ASK_ERRORS)
    async def ask(body: AskRequest, request: Request) -> dict[str, object]:
        """The same JSON as ``rag ask --json``. 422: empty or too long question; 503: no index; 429: too many."""
        question, history = prepare(body)
        admit(request)
        chosen = await run_in_threadpool(collections.get, body.collection)
        answer = await run_in_threadpool(chosen.ask, question, history, body.k)
        return answer.model_dump()

    @router.post("/ask/stream", summary="Answer as server-sent events",
                 response_class=StreamingResponse,
                 responses={200: {"content": {"text/event-stream": {}},
                                  "description": "events: `status` {stage}; `citations` {citations} once retrieval"
                                                 " is done; `delta` {text} pieces of the answer (tokens from an"
                                                 " LLM); then `answer` (the /api/ask JSON, citations checked) or"
                                                 " `error` {error, detail}"}, **_ASK_ERRORS})
    async def ask_stream(body: AskRequest, request: Request) -> StreamingResponse:
        """The expected citations as soon as retrieval is done, the answer text as it is written, then the full
        answer; a client that disconnects stops the LLM's generation."""
        question, history = prepare(body)
        admit(request)
        chosen = await run_in_threadpool(collections.get, body.collection)

        async def events() -> AsyncIterator[str]:
            yield _sse("status", {"stage": "searching"})
            try:
                async for event in chosen.astream(question, history, body.k):
                    yield _event(event)
            except RagError as exc:
                yield _sse("error", json.loads(bytes(rag_error_response(exc).body)))
            except Exception as exc:  # the status line is already sent: report the failure in-band
                log.exception("ask failed", exc_info=exc)
                yield _sse("error", {"error": "internal_error", "detail": f"{type(exc).__name__}: the server failed"})

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @router.get("/health", summary="Liveness and index size",
                responses={503: {"description": "the index is empty (`status` empty, with its size) or unreachable"
                                                " (`status` unavailable, `detail` says why)"}})
    async def health() -> JSONResponse:
        """200 with the index size when answering is possible, 503 when the index is empty or unreachable."""
        try:
            snapshot = await run_in_threadpool(pipeline.snapshot)
        except RagError as exc:
            return JSONResponse({"status": "unavailable", "detail": str(exc)}, status_code=503)
        sentences = len(snapshot)
        body = {"status": "ok" if sentences else "empty", "sentences": sentences,
                "articles": len(set(snapshot.sources)), "answerer": "llm" if pipeline.chat_model else "extractive"}
        return JSONResponse(body, status_code=200 if sentences else 503)

    @router.get("/collections", response_model=CollectionList, summary="The named corpora",
                responses=error_responses(503))
    async def list_collections() -> CollectionList:
        """The collections this server answers from; pass one as ``collection`` to ask it."""
        names = await run_in_threadpool(collections.names)
        return CollectionList(default=settings.collection, collections=names)

    @router.get("/sources/{source:path}", response_model=SourceDocument, summary="An article's text and sentences",
                responses=error_responses(404, 422, 503))
    async def source_text(source: str, sentence_id: str | None = Query(None, max_length=100),
                          collection: str | None = Query(None, max_length=512)) -> SourceDocument:
        """The text citation offsets point into; with ``sentence_id``, that sentence's paragraph as context."""
        chosen = await run_in_threadpool(collections.get, collection)
        doc = await run_in_threadpool(chosen.store.document, source)
        if doc is None:
            raise HTTPException(404, f"no indexed source named {source!r}")
        snapshot = await run_in_threadpool(chosen.snapshot)
        rows = [i for i, s in enumerate(snapshot.sources) if s == source]
        sentences = [SourceSentence(sentence_id=snapshot.ids[i], text=snapshot.texts[i], start=int(snapshot.starts[i]),
                                    end=int(snapshot.ends[i]), position=int(snapshot.positions[i])) for i in rows]
        context = None
        if sentence_id is not None:
            match = next((s for s in sentences if s.sentence_id == sentence_id), None)
            if match is None:
                raise HTTPException(404, f"no sentence {sentence_id!r} in {source!r}")
            ctx = citation_context(doc.text, match.start, match.end)
            context = CitedContext(sentence_id=sentence_id, before=ctx.before, sentence=ctx.sentence, after=ctx.after)
        return SourceDocument(source=source, title=doc.title, text=doc.text, sentences=sentences, context=context)

    @router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"], include_in_schema=False)
    async def unknown(rest: str) -> None:
        """Unknown API paths get a JSON 404 (405 for a known path) rather than falling through to the web UI."""
        path = f"/api/{rest}"
        if any(isinstance(r, APIRoute) and r.name != "unknown" and r.path_regex.match(path) for r in router.routes):
            raise HTTPException(405, f"method not allowed for {path}")
        raise HTTPException(404, f"no API route {path}")

    return router

