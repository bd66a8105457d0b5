"""Operations: /metrics (Prometheus text, who may scrape it), the JSON access log and request ids, rate limits
shared through a real redis-server, and the error responses the OpenAPI document declares."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError
from starlette.requests import Request

from rag import Pipeline, Settings
from rag.config import get_settings
from rag.errors import RagError
from rag.web.access_log import ACCESS, JsonFormatter, RequestObserver, Served
from rag.web.api import install_error_handlers
from rag.web.collections import Collections
from rag.web.limits import ErrorBody, RateLimiter
from rag.web.metrics import Metrics, may_scrape, route_label
from rag.web.server import build_app
from tests.conftest import free_port, make_settings
from tests.live_server import ADMIN_TOKEN, LiveApp, shared_app

TARAZ = "when was the Taraz attack?"
OFF_TOPIC = "What is the boiling point of liquid nitrogen on Neptune?"
HEX_ID = re.compile(r"[0-9a-f]{32}")


# -- helpers --------------------------------------------------------------------------------------------------------
@pytest.fixture
def live_app(tmp_path_factory: pytest.TempPathFactory) -> LiveApp:
    """The session's running app (uvicorn on 127.0.0.1, the Gradio UI mounted, access log on)."""
    return shared_app(tmp_path_factory)


@pytest.fixture(scope="module")
def small_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """A pipeline over an index of one short article, with an admin token."""
    root = tmp_path_factory.mktemp("ops")
    (root / "corpus").mkdir()
    (root / "corpus" / "harbour.txt").write_text(
        "The Quenby harbour\n\nThe Quenby harbour was rebuilt in 1931 after a storm. Its lighthouse is painted red.\n",
        encoding="utf-8")
    settings = make_settings(root / "index", admin_token=ADMIN_TOKEN).with_overrides(corpus_dir=root / "corpus")
    pipeline = Pipeline(settings)
    pipeline.ingest()
    return pipeline


def app_for(pipeline: Pipeline, **overrides: object) -> FastAPI:
    """``build_app`` without the UI over ``pipeline``'s index, with settings overridden."""
    return build_app(Pipeline(pipeline.settings.with_overrides(**overrides)), ui=False)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text scrape by name and labels."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(scrape: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """One sample's value, 0 when absent."""
    return scrape.get((name, frozenset(labels.items())), 0.0)


def scrape(url: str, **headers: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = httpx.get(url + "/metrics", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return samples(response.text)


class _Lines(logging.Handler):
    """Keeps the access lines as the installed JSON formatter writes them."""

    def __init__(self) -> None:
        super().__init__()
        installed = [h.formatter for h in ACCESS.handlers if isinstance(h.formatter, JsonFormatter)]
        assert installed, "build_app installs the JSON access log by default"
        self.setFormatter(installed[0])
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def find(self, request_id: str, wait_s: float = 5.0) -> dict[str, object]:
        """The one line of ``request_id`` (it is written when the response ends, in the server's thread)."""
        deadline = time.time() + wait_s
        while time.time() < deadline:
            mine = [json.loads(line) for line in list(self.lines) if f'"{request_id}"' in line]
            if mine:
                assert len(mine) == 1, mine
                return mine[0]
            time.sleep(0.05)
        raise AssertionError(f"no access line for {request_id}")


@contextlib.contextmanager
def access_lines() -> Iterator[_Lines]:
    handler = _Lines()
    ACCESS.addHandler(handler)
    try:
        yield handler
    finally:
        ACCESS.removeHandler(handler)


class RedisServer:
    """A real redis-server from the OS packages on a free loopback port, nothing saved to disk."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is missing: apt-get install redis-server (scripts/test.sh does it)")
        self.binary, self.folder, self.port = binary, folder, port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        deadline = time.time() + 20
        while time.time() < deadline:
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    return self
            time.sleep(0.05)
        pytest.fail("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The module's redis-server, emptied for each test."""
    redis.Redis.from_url(redis_server.url).flushdb()
    return redis_server.url


# -- /metrics -------------------------------------------------------------------------------------------------------
def test_requests_are_counted_by_route_template_never_by_raw_path(live_app: LiveApp) -> None:
    marker = f"ops-{uuid.uuid4().hex[:8]}"
    before = scrape(live_app.url)
    for i in range(5):
        assert httpx.get(f"{live_app.url}/api/sources/{marker}-{i}.txt", timeout=30).status_code == 404
    assert httpx.get(f"{live_app.url}/", timeout=30).status_code == 200
    httpx.request("PROPFIND", f"{live_app.url}/api/{marker}", timeout=30)
    response = httpx.get(live_app.url + "/metrics", timeout=30)
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    after = samples(response.text)

    sources = {"route": "/api/sources/{source:path}", "method": "GET", "status": "404"}
    assert value(after, "citechat_http_requests_total", **sources) - value(
        before, "citechat_http_requests_total", **sources) == 5
    assert value(after, "citechat_http_request_duration_seconds_count", route="/api/sources/{source:path}",
                 method="GET") >= 5
    assert value(after, "citechat_http_requests_total", route="ui", method="GET", status="200") >= 1
    assert any(dict(labels).get("method") == "other" for (_, labels) in after), "an unknown method is 'other'"
    routes = {dict(labels)["route"] for (name, labels) in after if name == "citechat_http_requests_total"}
    assert not any(marker in route for route in routes), routes
    assert all(route in ("ui", "other") or route.startswith("/") for route in routes), routes


def test_answers_abstentions_and_index_size_come_from_the_collection(live_app: LiveApp) -> None:
    collection = live_app.settings.collection
    before = scrape(live_app.url)
    answered = httpx.post(live_app.url + "/api/ask", json={"question": TARAZ}, timeout=120).json()
    off_topic = httpx.post(live_app.url + "/api/ask", json={"question": OFF_TOPIC}, timeout=120).json()
    assert not answered["abstained"] and off_topic["abstained"]
    after = scrape(live_app.url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, collection=collection, **labels) - value(before, name, collection=collection,
                                                                           **labels)

    assert delta("citechat_answers_total", answerer="extractive") == 1
    assert delta("citechat_abstentions_total") == 1
    assert delta("citechat_llm_calls_total") == 0 and delta("citechat_llm_failures_total") == 0
    health = httpx.get(live_app.url + "/api/health", timeout=30).json()
    assert value(after, "citechat_index_sentences", collection=collection) == health["sentences"] > 0
    assert value(after, "citechat_index_articles", collection=collection) == health["articles"] > 0
    assert value(after, "citechat_index_ready", collection=collection) == 1
    generation = live_app.pipeline.snapshot().generation
    assert value(after, "citechat_index_generation_info", collection=collection, generation=generation) == 1
    assert value(after, "citechat_rate_limit_degraded") == 0
    assert value(after, "process_resident_memory_bytes") > 0


def test_every_open_collection_is_reported_with_its_own_counts(small_pipeline: Pipeline, tmp_path: Path) -> None:
    collections = Collections(small_pipeline)
    other = collections.get("ops-second", create=True)
    (tmp_path / "mill.txt").write_text("The old mill\n\nThe old mill of Quenby ground flour until 1962.\n",
                                       encoding="utf-8")
    other.ingest([tmp_path / "mill.txt"], prune=False)
    assert other.ask("until when did the mill grind flour?").answerer == "extractive"
    other.counters.count_llm(failed=True)
    body, content_type = Metrics(collections, RateLimiter(0)).exposition("")
    found = samples(body.decode())

    main = small_pipeline.settings.collection
    assert value(found, "citechat_index_sentences", collection="ops-second") == len(other.snapshot())
    assert value(found, "citechat_index_sentences", collection=main) == len(small_pipeline.snapshot())
    assert value(found, "citechat_index_articles", collection="ops-second") == 1
    assert value(found, "citechat_answers_total", collection="ops-second", answerer="extractive") == 1
    assert value(found, "citechat_llm_calls_total", collection="ops-second") == 1
    assert value(found, "citechat_llm_failures_total", collection="ops-second") == 1
    assert value(found, "citechat_answers_total", collection=main, answerer="extractive") == 0
    # OpenMetrics when the scraper asks for it.
    _, negotiated = Metrics(collections, RateLimiter(0)).exposition("application/openmetrics-text; version=1.0.0")
    assert negotiated.startswith("application/openmetrics-text")


def test_metrics_are_refused_to_remote_callers_without_the_admin_token(small_pipeline: Pipeline,
                                                                        live_app: LiveApp) -> None:
    client = TestClient(app_for(small_pipeline))  # TestClient's peer is "testclient": not a loopback address
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": ADMIN_TOKEN}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 403
        body = ErrorBody.model_validate(refused.json())
        assert body.error == "forbidden" and body.request_id == refused.headers["x-request-id"]
        assert "citechat_" not in refused.text
    allowed = client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert allowed.status_code == 200 and "citechat_http_requests_total" in allowed.text

    # From loopback: allowed, unless a proxy relayed the request (a local proxy connects from loopback for all).
    assert httpx.get(live_app.url + "/metrics", timeout=30).status_code == 200
    for header in ("X-Forwarded-For", "X-Real-IP", "Forwarded"):
        assert httpx.get(live_app.url + "/metrics", headers={header: "203.0.113.9"}, timeout=30).status_code == 403


@pytest.mark.parametrize(("host", "allowed"), [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True),
                                                ("::ffff:127.0.0.1", True), ("10.0.0.1", False),
                                                ("2001:db8::1", False), ("localhost", False), (None, False)])
def test_only_loopback_addresses_count_as_local(host: str | None, allowed: bool) -> None:
    scope = {"type": "http", "method": "GET", "path": "/metrics", "headers": [],
             "client": (host, 5000) if host else None}
    assert may_scrape(Request(scope), admin_token=None) is allowed


# -- request ids and the access log ---------------------------------------------------------------------------------
def test_every_response_carries_a_request_id_and_only_safe_incoming_ids_are_kept(live_app: LiveApp) -> None:
    kept = httpx.get(live_app.url + "/api/health", headers={"X-Request-ID": "trace-42.A_b"}, timeout=30)
    assert kept.headers["x-request-id"] == "trace-42.A_b"
    for unsafe in ("x" * 65, "two words", 'quote"d', "a\tb", "caf\xe9".encode("latin-1"), ""):
        replaced = httpx.get(live_app.url + "/api/health", headers={"X-Request-ID": unsafe}, timeout=30)
        assert HEX_ID.fullmatch(replaced.headers["x-request-id"]), unsafe

    pages = [httpx.get(live_app.url + path, timeout=30) for path in ("/", "/widget.js", "/embed", "/docs",
                                                                    "/openapi.json", "/api/collections")]
    errors = [httpx.get(live_app.url + "/api/no-such-route", timeout=30),
              httpx.get(live_app.url + "/api/sources/nothing.txt", timeout=30),
              httpx.post(live_app.url + "/api/ask", json={"question": ""}, timeout=30),
              httpx.post(live_app.url + "/api/ask", content=b'{"question": "' + b"x" * 70_000 + b'"}',
                         headers={"content-type": "application/json"}, timeout=30)]
    assert [e.status_code for e in errors] == [404, 404, 422, 413]
    with httpx.stream("POST", live_app.url + "/api/ask/stream", json={"question": TARAZ}, timeout=120) as stream:
        stream.read()
        assert stream.status_code == 200 and HEX_ID.fullmatch(stream.headers["x-request-id"])
    ids = [r.headers["x-request-id"] for r in pages + errors]
    assert all(HEX_ID.fullmatch(i) for i in ids) and len(set(ids)) == len(ids)
    for error in errors:
        assert ErrorBody.model_validate(error.json()).request_id == error.headers["x-request-id"]


def test_one_json_access_line_per_request_written_when_a_stream_ends(live_app: LiveApp) -> None:
    with access_lines() as log:
        with httpx.stream("POST", live_app.url + "/api/ask/stream?debug=query-secret", json={"question": TARAZ},
                          headers={"X-Request-ID": "ops-stream-1", "Authorization": "Bearer header-secret",
                                   "User-Agent": "ops-test/1"}, timeout=120) as stream:
            received = sum(len(chunk) for chunk in stream.iter_raw())
        line = log.find("ops-stream-1")
        # A path with a line break and a quote in it cannot split or forge a line.
        httpx.get(live_app.url + "/api/sources/a%0Ab%22c%0D", headers={"X-Request-ID": "ops-newline"}, timeout=30)
        forged = log.find("ops-newline")
        raw = list(log.lines)

    assert line["method"] == "POST" and line["path"] == "/api/ask/stream" and line["route"] == "/api/ask/stream"
    assert line["status"] == 200 and line["client"] == "127.0.0.1" and line["user_agent"] == "ops-test/1"
    assert line["bytes_sent"] == received > 0, "logged once the last event was sent"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(line["time"]))
    assert forged["path"] == '/api/sources/a\nb"c\r' and forged["status"] == 404
    assert forged["route"] == "other", "no route template matches across a line break"
    assert all("\n" not in entry and "\r" not in entry for entry in raw)
    assert not any("header-secret" in entry or "query-secret" in entry for entry in raw)


def test_access_log_off_writes_no_line_but_ids_and_metrics_stay(small_pipeline: Pipeline) -> None:
    client = TestClient(app_for(small_pipeline, access_log="off"))
    with access_lines() as log:
        response = client.get("/api/health", headers={"X-Request-ID": "ops-quiet-1"})
        time.sleep(0.2)
    assert response.headers["x-request-id"] == "ops-quiet-1"
    assert not any("ops-quiet-1" in line for line in log.lines)
    metrics = samples(client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).text)
    assert value(metrics, "citechat_http_requests_total", route="/api/health", method="GET", status="200") == 1


def test_a_crash_is_a_500_with_the_request_id_in_header_body_and_log() -> None:
    seen: list[Served] = []
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaput")

    app.add_middleware(RequestObserver, route_of=route_label, sinks=[seen.append])
    response = TestClient(app, raise_server_exceptions=False).get("/boom", headers={"X-Request-ID": "ops-crash"})
    assert response.status_code == 500 and response.headers["x-request-id"] == "ops-crash"
    assert response.json()["request_id"] == "ops-crash" and response.json()["error"] == "internal_error"
    assert [(s.request_id, s.status, s.route) for s in seen] == [("ops-crash", 500, "/boom")]


# -- rate limits ----------------------------------------------------------------------------------------------------
def test_two_apps_sharing_a_redis_url_share_one_limit(small_pipeline: Pipeline, redis_url: str) -> None:
    first, second = (TestClient(app_for(small_pipeline, rate_limit_per_minute=3, rate_limit_storage=redis_url))
                     for _ in range(2))
    # The documents routes count the caller before checking the token: 401 is "admitted", 429 is "limited".
    assert [c.get("/api/documents").status_code for c in (first, second, first)] == [401, 401, 401]
    limited = second.get("/api/documents")
    assert limited.status_code == 429 and first.get("/api/documents").status_code == 429
    body = ErrorBody.model_validate(limited.json())
    assert body.error == "rate_limited" and re.fullmatch(r"too many requests; try again in \d+ s", body.detail)
    assert "RAG_" not in body.detail
    assert 55 <= int(limited.headers["retry-after"]) <= 60
    assert redis.Redis.from_url(redis_url).keys("LIMITS*"), "the counts live in Redis"


def test_in_memory_limits_are_per_process(small_pipeline: Pipeline) -> None:
    first, second = (TestClient(app_for(small_pipeline, rate_limit_per_minute=2)) for _ in range(2))
    assert [first.get("/api/documents").status_code for _ in range(3)] == [401, 401, 429]
    assert second.get("/api/documents").status_code == 401, "another process's window is its own"


@pytest.mark.parametrize("storage", ["memory", "redis"])
def test_a_limiter_admits_costs_that_fit_and_counts_only_those(storage: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("redis_url") if storage == "redis" else "memory://"
    limiter = RateLimiter(5, url)
    assert limiter.retry_after("a", cost=3) == 0.0
    refused = limiter.retry_after("a", cost=3)
    assert 55 < refused <= 60, "3 + 3 is over 5: refused until the first three leave the window"
    assert limiter.retry_after("a", cost=2) == 0.0, "nothing was counted for the refused cost"
    assert limiter.retry_after("a") > 0 and limiter.retry_after("b") == 0.0
    assert limiter.retry_after("b", cost=6) == float("inf")
    assert all(RateLimiter(0, url).retry_after("a") == 0.0 for _ in range(50))


def test_an_unreachable_redis_at_start_up_is_an_error_naming_the_url_without_its_password() -> None:
    port = free_port()
    with pytest.raises(RagError) as caught:
        RateLimiter(5, f"redis://:hunter2@127.0.0.1:{port}/0")
    message = str(caught.value)
    assert f"redis://:***@127.0.0.1:{port}/0" in message and "RAG_RATE_LIMIT_STORAGE" in message
    assert "hunter2" not in message
    with pytest.raises(ValidationError):
        Settings(rate_limit_storage="mongodb://127.0.0.1/limits")
    with pytest.raises(RagError, match="RAG_RATE_LIMIT_STORAGE"):
        get_settings(rate_limit_storage="redis:/missing-slashes")


def test_rag_serve_stops_at_once_when_its_rate_limit_redis_does_not_answer(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update({"RAG_INDEX_DIR": str(tmp_path / "index"), "RAG_RATE_LIMIT_STORAGE": f"redis://:pw@127.0.0.1:{port}/0"})
    started = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).with_name("rag")), "serve", "--no-ingest", "--port",
                           str(free_port())], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and time.perf_counter() - started < 60
    assert f"error: the rate-limit storage redis://:***@127.0.0.1:{port}/0 does not answer" in done.stderr
    assert not (tmp_path / "index").exists(), "stopped before opening the index"


def test_when_redis_goes_away_each_process_counts_alone_then_returns_to_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    server = RedisServer(tmp_path).start()
    try:
        limiter = RateLimiter(2, server.url)
        monkeypatch.setattr(limiter, "RETRY_SHARED_S", 0.5)
        assert limiter.retry_after("k") == 0.0
        server.stop()
        with caplog.at_level(logging.WARNING, logger="rag.web.limits"):
            waits = [limiter.retry_after("k") for _ in range(3)]
        assert waits[:2] == [0.0, 0.0] and waits[2] > 0, "limits still hold, counted in this process"
        assert limiter.degraded
        assert sum("counting in this process" in r.getMessage() for r in caplog.records) == 1
        server.start()
        time.sleep(0.6)
        assert limiter.retry_after("k") == 0.0 and not limiter.degraded
        assert redis.Redis.from_url(server.url).keys("LIMITS*"), "back to counting in Redis"
    finally:
        server.stop()


# -- OpenAPI --------------------------------------------------------------------------------------------------------
EXPECTED_ERRORS = {
    ("post", "/api/ask"): {404, 413, 422, 429, 503},
    ("post", "/api/ask/stream"): {404, 413, 422, 429, 503},
    ("get", "/api/health"): {503},
    ("get", "/api/collections"): {503},
    ("get", "/api/suggestions"): {404, 422, 429, 503},
    ("get", "/api/sources/{source}"): {404, 422, 503},
    ("get", "/api/documents"): {401, 403, 404, 422, 429, 503},
    ("post", "/api/documents"): {401, 403, 404, 413, 422, 429, 503},
    ("delete", "/api/documents/{source}"): {401, 403, 404, 422, 429, 503},
}


def test_every_api_route_declares_its_error_responses_with_the_error_model(small_pipeline: Pipeline) -> None:
    schema = app_for(small_pipeline).openapi()
    operations = {(method, path): op for path, item in schema["paths"].items() if path.startswith("/api")
                  for method, op in item.items()}
    assert set(operations) == set(EXPECTED_ERRORS), "a new /api route: add its errors here and to its decorator"
    for key, op in operations.items():
        declared = {int(code) for code in op["responses"] if code.startswith(("4", "5"))}
        assert declared == EXPECTED_ERRORS[key], key
        for code in declared:
            if key != ("get", "/api/health"):  # health answers 503 with its own body
                ref = op["responses"][str(code)]["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/ErrorBody", (key, code)
    error = schema["components"]["schemas"]["ErrorBody"]
    assert set(error["properties"]) == {"error", "detail", "request_id"}
    assert set(error["required"]) == {"error", "detail"}
    assert "HTTPValidationError" not in json.dumps(schema), "422s are ErrorBody, not FastAPI's default"
