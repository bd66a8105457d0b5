"""``/metrics`` in Prometheus text format: HTTP traffic by route template, and at scrape time each open
collection's answers, abstentions, LLM calls and index size. Loopback callers and the admin token only."""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Iterable

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.routing import Mount
from starlette.types import Scope

from rag.web.access_log import Served
from rag.web.collections import Collections
from rag.web.limits import RateLimiter, error_response

log = logging.getLogger(__name__)

# Labels come only from these fixed sets and the app's own route templates, so no request can add a series.
METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})
UI, OTHER = "ui", "other"
# Seconds: static files and health in milliseconds, an extractive answer well under one, an LLM's up to a minute.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_FORWARDED = (b"x-forwarded-for", b"forwarded", b"x-real-ip")


def route_label(scope: Scope) -> str:
    """The template of the route that served ``scope`` (``/api/sources/{source:path}``), read after routing: ``ui``
    for anything of the Gradio app mounted at /, a mount's prefix for other mounts, ``other`` when nothing
    matched (an unknown path, a CORS preflight, a body refused before routing)."""
    route = scope.get("route")  # set by Starlette's and FastAPI's routers to the route they chose
    if route is None:
        return OTHER
    target = getattr(route, "endpoint", None) or getattr(route, "app", None)
    if str(getattr(target, "__module__", "")).startswith("gradio"):
        return UI
    if isinstance(route, Mount):
        return f"{route.path}/{{path:path}}" if route.path else UI
    return str(getattr(route, "path", OTHER))


class IndexCollector(Collector):
    """Reads each open collection's ask counters and snapshot when scraped, so nothing is counted twice."""

    def __init__(self, collections: Collections, limiter: RateLimiter) -> None:
        self.collections, self.limiter = collections, limiter
        self._articles: dict[str, tuple[str, int]] = {}  # collection -> (generation, articles): counted once

    def collect(self) -> Iterable[Metric]:
        """The metric families of one scrape."""
        by = ["collection"]
        answers = CounterMetricFamily("citechat_answers", "Answers given, by answerer", labels=[*by, "answerer"])
        abstained = CounterMetricFamily("citechat_abstentions", "Questions the corpus did not answer", labels=by)
        calls = CounterMetricFamily("citechat_llm_calls", "Calls of the chat model", labels=by)
        failures = CounterMetricFamily("citechat_llm_failures",
                                       "Chat model calls that failed, timed out or could not be read", labels=by)
        ready = GaugeMetricFamily("citechat_index_ready", "1 when the collection's snapshot is loaded", labels=by)
        sentences = GaugeMetricFamily("citechat_index_sentences", "Indexed sentences", labels=by)
        articles = GaugeMetricFamily("citechat_index_articles", "Indexed articles", labels=by)
        generation = InfoMetricFamily("citechat_index_generation", "The snapshot's generation tag",
                                      labels=by)
        for name, pipeline in self.collections.opened():
            counters = pipeline.counters
            for answerer, count in sorted(counters.answered.items()):
                answers.add_metric([name, answerer], count)
            abstained.add_metric([name], counters.abstained)
            calls.add_metric([name], counters.llm_calls)
            failures.add_metric([name], counters.llm_failures)
            try:
                snapshot = pipeline.snapshot()  # cached; asks Chroma for the generation at most once a second
            except Exception as exc:  # a scrape reports a broken index, it does not fail with it
                log.warning("metrics: collection %s unavailable: %s", name, exc)
                ready.add_metric([name], 0)
                continue
            known = self._articles.get(name)
            if known is None or known[0] != snapshot.generation:
                known = self._articles[name] = (snapshot.generation, len(set(snapshot.sources)))
            ready.add_metric([name], 1)
            sentences.add_metric([name], len(snapshot))
            articles.add_metric([name], known[1])
            generation.add_metric([name], {"generation": snapshot.generation})
        degraded = GaugeMetricFamily("citechat_rate_limit_degraded",
                                     "1 while the shared rate-limit storage is unreachable and this process counts"
                                     " alone", value=int(self.limiter.degraded))
        return [answers, abstained, calls, failures, ready, sentences, articles, generation, degraded]


class Metrics:
    """One app's Prometheus registry (not the global one: each app built in a process has its own)."""

    def __init__(self, collections: Collections, limiter: RateLimiter) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("citechat_http_requests", "HTTP requests answered, by route template, method and"
                                " status", ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("citechat_http_request_duration_seconds", "Time from request to the response's"
                                 " last byte", ["route", "method"], buckets=BUCKETS, registry=self.registry)
        self.registry.register(IndexCollector(collections, limiter))
        ProcessCollector(registry=self.registry)

    def observe(self, served: Served) -> None:
        """Count one finished request."""
        method = served.method if served.method in METHODS else OTHER
        self.requests.labels(served.route, method, str(served.status)).inc()
        self.latency.labels(served.route, method).observe(served.duration_ms / 1000)

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The scrape's body and content type, in the format ``accept`` asks for (Prometheus text by default)."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type


def may_scrape(request: Request, admin_token: str | None) -> bool:
    """Loopback callers (not relayed by a proxy) and holders of ``RAG_ADMIN_TOKEN`` may read the metrics."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if admin_token and scheme.lower() == "bearer" and hmac.compare_digest(admin_token.encode(),
                                                                          token.strip().encode()):
        return True
    # A proxy on this machine connects from loopback for every visitor: a relayed request is never "local".
    if any(name in _FORWARDED for name, _ in request.scope["headers"]):
        return False
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool((mapped or address).is_loopback)


def add_metrics_route(app: FastAPI, metrics: Metrics, admin_token: str | None) -> None:
    """``GET /metrics`` on ``app``; anyone else than ``may_scrape`` allows gets a JSON 403."""

    @app.get("/metrics", include_in_schema=False)
    async def scrape(request: Request) -> Response:
        if not may_scrape(request, admin_token):
            return error_response(403, "forbidden", "metrics are for local callers and the admin token holder")
        body, content_type = await run_in_threadpool(metrics.exposition, request.headers.get("accept", ""))
        return Response(body, media_type=content_type)
