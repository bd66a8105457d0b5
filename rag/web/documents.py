"""``/api/documents``: list, add (file upload or URL) and remove articles over HTTP, behind ``RAG_ADMIN_TOKEN``.

Every change goes through the same ingest as ``rag ingest`` (one lock, crash-safe, idempotent). Uploaded files are
saved into the collection's corpus folder (``RAG_CORPUS_DIR`` for the default one), so a later folder sync keeps
them; pages added by URL stay until removed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Header, Query, Request, UploadFile
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from rag.errors import CorpusError
from rag.records import IngestReport
from rag.web.admin import AdminError, UploadTooLargeError, add_file, add_url, check_token, remove_document
from rag.web.collections import Collections
from rag.web.limits import RateLimited, RateLimiter, client_key, error_responses


class DocumentInfo(BaseModel):
    """One indexed article."""

    source: str
    title: str
    sentences: int
    characters: int
    url: str | None = None


class DocumentList(BaseModel):
    """``GET /api/documents``."""

    documents: list[DocumentInfo]


# Module level: FastAPI resolves the (postponed) annotations of the routes against this module's globals.
Auth = Annotated[str | None, Header(description="`Bearer <RAG_ADMIN_TOKEN>`")]
Collection = Annotated[str | None, Query(max_length=512, description="a named corpus (default: RAG_COLLECTION)")]
# Every documents route: the token, the caller's rate limit, the ``collection`` query, an ingest in progress.
_AUTH_RESPONSES = error_responses(401, 403, 404, 422, 429, 503, described={
    404: "no collection of that name", 422: "a malformed query", 503: "another ingest is running"})


def make_documents_router(collections: Collections, limiter: RateLimiter) -> APIRouter:
    """The ``/api/documents`` routes; ``?collection=NAME`` picks a named corpus (the admin may start a new one)."""
    router = APIRouter(prefix="/api/documents", tags=["documents"])
    settings = collections.default.settings

    def authorise(request: Request, authorization: str | None) -> None:
        # Counted against the caller's rate limit first, so the token cannot be guessed at speed.
        wait = limiter.retry_after(client_key(request))
        if wait:
            raise RateLimited(wait)
        if not authorization:
            raise HTTPException(401, "this needs the admin token: Authorization: Bearer <RAG_ADMIN_TOKEN>",
                                headers={"WWW-Authenticate": "Bearer"})
        scheme, _, token = authorization.partition(" ")
        try:
            check_token(settings.admin_token, token if scheme.lower() == "bearer" else "")
        except AdminError as exc:
            raise HTTPException(403, str(exc)) from None

    @router.get("", response_model=DocumentList, summary="The indexed articles", responses=_AUTH_RESPONSES)
    async def list_documents(request: Request, authorization: Auth = None, collection: Collection = None
                             ) -> DocumentList:
        """Every indexed article with its title, sentence count, size of its text and, for pages, their URL."""
        authorise(request, authorization)
        pipeline = await run_in_threadpool(collections.get, collection)
        docs = await run_in_threadpool(pipeline.store.indexed_documents, True)
        return DocumentList(documents=[
            DocumentInfo(source=source, title=doc.title, sentences=doc.sentences, characters=len(doc.text),
                         url=doc.url or None) for source, doc in sorted(docs.items())])

    @router.post("", response_model=IngestReport, status_code=201, summary="Add or update an article",
                 responses={**_AUTH_RESPONSES, **error_responses(404, 413, 422, described={
                     404: "a collection name that is not valid", 413: "file over RAG_MAX_FILE_BYTES",
                     422: "neither a file nor a URL, a bad file name, or an unreadable document"})})
    async def add_document(request: Request, authorization: Auth = None,
                           file: Annotated[UploadFile | None, File(description="a .txt, .md, .html, .pdf or "
                                                                               ".docx file")] = None,
                           url: Annotated[str | None, Form(description="an http(s) URL of a web page, PDF or "
                                                                       "DOCX file", max_length=2000)] = None,
                           collection: Collection = None) -> IngestReport:
        """Ingest one uploaded file (saved into the corpus folder) or one page by URL; the index is synced for
        that article only. Answers with the ingest report; a document that cannot be read is a 422 naming why."""
        authorise(request, authorization)
        if (file is None) == (url is None):
            raise HTTPException(422, "send either a file or a url")
        pipeline = await run_in_threadpool(collections.get, collection, True)
        try:
            if url is not None:
                return await run_in_threadpool(add_url, pipeline, url)
            assert file is not None
            data = await file.read(settings.max_file_bytes + 1)
            return await run_in_threadpool(add_file, pipeline, file.filename or "", data)
        except UploadTooLargeError as exc:
            raise HTTPException(413, str(exc)) from None
        except CorpusError as exc:
            raise HTTPException(422, str(exc)) from None

    @router.delete("/{source:path}", response_model=IngestReport, summary="Remove an article",
                   responses={**_AUTH_RESPONSES, **error_responses(404, described={
                       404: "no indexed article of that name, or no collection of that name"})})
    async def delete_document(source: str, request: Request, authorization: Auth = None,
                              collection: Collection = None) -> IngestReport:
        """Remove an article from the index, and its file from the corpus folder when it has one there."""
        authorise(request, authorization)
        pipeline = await run_in_threadpool(collections.get, collection)
        try:
            return await run_in_threadpool(remove_document, pipeline, source)
        except LookupError as exc:
            raise HTTPException(404, str(exc.args[0])) from None

    return router

