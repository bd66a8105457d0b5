"""``GET /api/suggestions`` over real HTTP: answerable questions from each collection's own articles, cached per
corpus change, 404 for unknown collections, and only the computation counts against the rate limit."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from rag import Pipeline
from rag.web.server import build_app
from tests.conftest import free_port
from tests.live_server import ServerThread, seed_copy_pipeline

HARBOUR = ("Varnel harbour\n\nThe harbour of Varnel opened in 1874. Ilse Brandt said the quays could berth forty"
           " ships. A storm in Varnel damaged the quays in 1901.\n")
LIMIT = 3


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Pipeline, Pipeline]]:
    """The widget's side of the app (no UI) over the seed corpus and a harbour collection; 3 asks a minute."""
    root = tmp_path_factory.mktemp("suggestions")
    pipeline = seed_copy_pipeline(root, rate_limit_per_minute=LIMIT)
    other = root / "harbour"
    other.mkdir()
    (other / "harbour.txt").write_text(HARBOUR, encoding="utf-8")
    harbour = Pipeline(pipeline.settings.with_overrides(collection=f"{pipeline.settings.collection}-harbour",
                                                        corpus_dir=other))
    harbour.ingest([other])
    with ServerThread(build_app(pipeline, ui=False), free_port()) as server:
        yield server.url, pipeline, harbour


def suggestions(url: str, **params: object) -> httpx.Response:
    return httpx.get(f"{url}/api/suggestions", params=params, timeout=120)  # type: ignore[arg-type]


def test_suggestions_come_from_each_collection_and_only_computing_them_counts(
        api: tuple[str, Pipeline, Pipeline]) -> None:
    url, seed, harbour = api
    first = suggestions(url, n=2)
    assert first.status_code == 200 and first.headers["cache-control"] == "public, max-age=60"
    body = first.json()
    assert body["collection"] == seed.settings.collection and len(body["questions"]) == 2
    assert not any(seed.ask(q).abstained for q in body["questions"])
    for _ in range(LIMIT):  # cached: these would overrun the limit if they counted
        again = suggestions(url, n=1)
        assert again.status_code == 200 and again.json()["questions"] == body["questions"][:1]

    other = suggestions(url, collection=harbour.settings.collection).json()
    assert other["collection"] == harbour.settings.collection and other["questions"]
    assert all(any(word in q for word in ("Varnel", "Brandt")) for q in other["questions"]), other
    assert not any(harbour.ask(q).abstained for q in other["questions"])

    # Two computations counted; the third ask of the minute is the last allowed.
    asks = [httpx.post(f"{url}/api/ask", json={"question": "when was the Taraz attack?"}, timeout=120).status_code
            for _ in range(2)]
    assert asks == [200, 429]


@pytest.mark.parametrize(("params", "status", "code"), [
    ({"collection": "nope"}, 404, "not_found"),
    ({"collection": "../etc"}, 404, "not_found"),
    ({"n": 0}, 422, "invalid_request"),
    ({"n": 5}, 422, "invalid_request"),
])
def test_bad_suggestion_requests_are_json_errors(api: tuple[str, Pipeline, Pipeline], params: dict[str, object],
                                                 status: int, code: str) -> None:
    response = suggestions(api[0], **params)
    assert response.status_code == status and response.json()["error"] == code
