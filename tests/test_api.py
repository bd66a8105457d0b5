"""The HTTP API over real HTTP: a uvicorn server, a real index of the seed corpus, the real model."""

from __future__ import annotations

import json

import httpx
import pytest

from rag import Pipeline
from tests.live_server import XSS_ARTICLE, XSS_SOURCE, LiveApp, shared_app, start_app

TARAZ = "when was the Taraz attack?"


@pytest.fixture
def live_app(tmp_path_factory: pytest.TempPathFactory) -> LiveApp:
    """The session's running app."""
    return shared_app(tmp_path_factory)


def post(app: LiveApp, path: str, **kwargs: object) -> httpx.Response:
    return httpx.post(app.url + path, timeout=120, **kwargs)  # type: ignore[arg-type]


def test_ask_returns_the_cli_json_contract(live_app: LiveApp) -> None:
    response = post(live_app, "/api/ask", json={"question": TARAZ})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == set(live_app.pipeline.ask(TARAZ).model_dump())
    assert "2011" in body["answer"] and not body["abstained"]
    cited = body["citations"][0]
    doc = live_app.pipeline.store.document(cited["source"])
    assert doc is not None and doc.text[cited["start"]:cited["end"]] == cited["text"]
    assert "Taraz" in cited["text"]


def test_k_limits_citations_and_history_is_used(live_app: LiveApp) -> None:
    one = post(live_app, "/api/ask", json={"question": TARAZ, "k": 1}).json()
    assert len(one["citations"]) == 1
    history = [{"role": "user", "content": TARAZ}, {"role": "assistant", "content": one["answer"]}]
    follow = post(live_app, "/api/ask", json={"question": "how many people were killed there?", "history": history})
    assert follow.status_code == 200
    assert follow.json()["search_query"], "the follow-up should be rewritten using the history"


@pytest.mark.parametrize("question", ["", "   ", "x" * 5000, "bad\x00question"])
def test_bad_questions_are_422_json(live_app: LiveApp, question: str) -> None:
    response = post(live_app, "/api/ask", json={"question": question})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_question"


@pytest.mark.parametrize("body", [{}, {"question": 3}, {"question": "q", "k": 0}, {"question": "q", "history": [{}]}])
def test_malformed_bodies_are_422_json(live_app: LiveApp, body: dict) -> None:
    response = post(live_app, "/api/ask", json=body)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


def test_oversized_request_is_413(live_app: LiveApp) -> None:
    big = {"question": "q", "history": [{"role": "user", "content": "x" * live_app.settings.max_request_bytes}]}
    response = post(live_app, "/api/ask", json=big)
    assert response.status_code == 413
    assert response.json()["error"] == "request_too_large"


def test_stream_sends_deltas_then_the_answer(live_app: LiveApp) -> None:
    events: list[tuple[str, dict]] = []
    with httpx.stream("POST", live_app.url + "/api/ask/stream", json={"question": TARAZ}, timeout=120) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.append((event or "", json.loads(line[6:])))
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "answer" and "delta" in kinds
    final = events[-1][1]
    assert "".join(d["text"] for k, d in events if k == "delta") == final["answer"]
    assert "2011" in final["answer"]


def test_stream_rejects_bad_question_before_streaming(live_app: LiveApp) -> None:
    response = post(live_app, "/api/ask/stream", json={"question": " "})
    assert response.status_code == 422


def test_health(live_app: LiveApp) -> None:
    body = httpx.get(live_app.url + "/api/health", timeout=30).json()
    assert body["status"] == "ok" and body["sentences"] == len(live_app.pipeline.snapshot())


def test_sources_give_text_sentences_and_context(live_app: LiveApp) -> None:
    answer = post(live_app, "/api/ask", json={"question": TARAZ}).json()
    cited = answer["citations"][0]
    response = httpx.get(f"{live_app.url}/api/sources/{cited['source']}", params={"sentence_id": cited["sentence_id"]},
                         timeout=30)
    assert response.status_code == 200
    doc = response.json()
    assert any(s["sentence_id"] == cited["sentence_id"] for s in doc["sentences"])
    assert all(doc["text"][s["start"]:s["end"]] == s["text"] for s in doc["sentences"])
    assert doc["context"]["sentence"] == cited["text"].replace("\n", " ")
    flat = doc["text"].replace("\n", " ")
    with_neighbours = 0
    for sentence in doc["sentences"]:  # the context is the sentence's own paragraph, in order
        ctx = httpx.get(f"{live_app.url}/api/sources/{cited['source']}", timeout=30,
                        params={"sentence_id": sentence["sentence_id"]}).json()["context"]
        assert ctx["before"] + ctx["sentence"] + ctx["after"] in flat
        with_neighbours += bool(ctx["before"] or ctx["after"])
    assert with_neighbours > 0


def test_sources_return_raw_text_as_json(live_app: LiveApp) -> None:
    doc = httpx.get(f"{live_app.url}/api/sources/{XSS_SOURCE}", timeout=30)
    assert doc.headers["content-type"].startswith("application/json")
    assert "<script>" in doc.json()["text"]


@pytest.mark.parametrize("path", ["/api/sources/no-such-article.txt", "/api/sources/..%2F..%2Fetc%2Fpasswd"])
def test_unknown_source_is_404(live_app: LiveApp, path: str) -> None:
    response = httpx.get(live_app.url + path, timeout=30)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_unknown_api_path_and_wrong_method_are_json(live_app: LiveApp) -> None:
    missing = httpx.get(live_app.url + "/api/nope", timeout=30)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    wrong = httpx.get(live_app.url + "/api/ask", timeout=30)
    assert wrong.status_code == 405 and wrong.json()["error"] == "http_error"


def test_unknown_sentence_is_404(live_app: LiveApp) -> None:
    source = live_app.pipeline.snapshot().sources[0]
    response = httpx.get(f"{live_app.url}/api/sources/{source}", params={"sentence_id": "nope"}, timeout=30)
    assert response.status_code == 404


def test_cors_allows_localhost_origins_only(live_app: LiveApp) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    ok = httpx.options(live_app.url + "/api/ask", headers={"Origin": "http://localhost:5173", **preflight}, timeout=30)
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "http://localhost:5173"
    bad = httpx.options(live_app.url + "/api/ask", headers={"Origin": "http://evil.example", **preflight}, timeout=30)
    assert "access-control-allow-origin" not in bad.headers


def test_openapi_docs_and_widget_are_served(live_app: LiveApp) -> None:
    schema = httpx.get(live_app.url + "/openapi.json", timeout=30).json()
    assert {"/api/ask", "/api/ask/stream", "/api/health", "/api/sources/{source}"} <= set(schema["paths"])
    assert httpx.get(live_app.url + "/docs", timeout=30).status_code == 200
    widget = httpx.get(live_app.url + "/widget.js", timeout=30)
    assert widget.status_code == 200 and "javascript" in widget.headers["content-type"]
    assert "http://" not in widget.text.replace("http://www.w3.org/2000/svg", "").split("*/", 1)[1], \
        "the widget must not load anything from elsewhere"
    embed = httpx.get(live_app.url + "/embed", params={"title": "<b>x</b>"}, timeout=30)
    assert "<b>x</b>" not in embed.text and "&lt;b&gt;x&lt;/b&gt;" in embed.text


def test_rate_limit_returns_429(live_app: LiveApp) -> None:
    limited = Pipeline(live_app.settings.with_overrides(rate_limit_per_minute=2))
    with start_app(limited) as server:
        codes = [httpx.post(server.url + "/api/ask", json={"question": TARAZ}, timeout=120).status_code
                 for _ in range(3)]
        assert codes == [200, 200, 429]
        last = httpx.post(server.url + "/api/ask", json={"question": TARAZ}, timeout=120)
        assert last.json()["error"] == "rate_limited" and int(last.headers["retry-after"]) >= 1


def test_empty_index_is_503(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import make_settings

    empty = Pipeline(make_settings(tmp_path / "empty-index"))
    with start_app(empty) as server:
        response = httpx.post(server.url + "/api/ask", json={"question": TARAZ}, timeout=120)
        assert response.status_code == 503
        assert response.json()["error"] == "index_not_ready"
        assert httpx.get(server.url + "/api/health", timeout=30).status_code == 503


def test_xss_article_is_indexed(live_app: LiveApp) -> None:
    assert live_app.pipeline.store.document(XSS_SOURCE) is not None
    assert "onerror" in XSS_ARTICLE
