"""``GET /api/suggestions``: example questions the bot answers, for the widget's welcome."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from rag.web.limits import RateLimited, RateLimiter, client_key, error_responses
from rag.web.suggestions import MAX_SUGGESTIONS, Suggestions

# Suggestions change only when the corpus does: browsers may reuse them for a minute.
_CACHE_CONTROL = "public, max-age=60"


class SuggestionList(BaseModel):
    """``GET /api/suggestions``: questions drawn from a collection's articles that the bot answers."""

    collection: str
    questions: list[str]


def make_suggestions_router(suggestions: Suggestions, limiter: RateLimiter) -> APIRouter:
    """The suggestions route over ``suggestions``' collections."""
    router = APIRouter(prefix="/api", tags=["api"])

    @router.get("/suggestions", response_model=SuggestionList, summary="Example questions the bot answers",
                responses=error_responses(404, 422, 429, 503, described={404: "no collection of that name"}))
    async def suggested(request: Request, response: Response,
                        collection: str | None = Query(None, max_length=512),
                        n: int = Query(2, ge=1, le=MAX_SUGGESTIONS)) -> SuggestionList:
        """Up to ``n`` questions found in the collection's articles. They are computed once per corpus change (by
        asking each candidate), and that computation counts against the caller's rate limit like an ask; 404 for
        an unknown collection."""
        cache = await run_in_threadpool(suggestions.for_collection, collection)
        if await run_in_threadpool(cache.stale):
            wait = limiter.retry_after(client_key(request))
            if wait:
                raise RateLimited(wait)
        questions = await run_in_threadpool(cache.get)
        response.headers["Cache-Control"] = _CACHE_CONTROL
        return SuggestionList(collection=cache.pipeline.settings.collection, questions=questions[:n])

    return router
