"""Collections over HTTP: ask, sources and documents take `collection`; only existing collections can be read by
anonymous callers; the admin can start a new one; the embed page carries the choice to the widget."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rag import Pipeline
from tests.live_server import LiveApp, seed_copy_pipeline, start_app

TOKEN = "collections-admin-token"
HARBOUR = "Harbour\n\nThe harbour of Varnel opened in 1874. Its first harbour master was Ilse Brandt.\n"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    root = tmp_path_factory.mktemp("collections")
    pipeline = seed_copy_pipeline(root, admin_token=TOKEN, rate_limit_per_minute=1000)
    settings = pipeline.settings
    other = root / "harbour"
    other.mkdir()
    (other / "harbour.txt").write_text(HARBOUR, encoding="utf-8")
    Pipeline(settings.with_overrides(collection=f"{settings.collection}-harbour", corpus_dir=other)).ingest([other])
    with start_app(pipeline) as server:
        yield LiveApp(server.url, pipeline, settings, settings.corpus_dir)


def ask(app: LiveApp, question: str, collection: str | None = None) -> httpx.Response:
    return httpx.post(f"{app.url}/api/ask", json={"question": question, "collection": collection}, timeout=120)


def test_collections_are_listed_and_asked_apart(app: LiveApp) -> None:
    default = app.settings.collection
    harbour = f"{default}-harbour"
    listed = httpx.get(f"{app.url}/api/collections", timeout=60).json()
    assert listed["default"] == default and {default, harbour} <= set(listed["collections"])
    assert not any(name.endswith("_documents") for name in listed["collections"])

    answer = ask(app, "Who was the first harbour master of Varnel?", harbour).json()
    assert [c["source"] for c in answer["citations"]][:1] == ["harbour.txt"]
    assert answer["short_answer"] == "Ilse Brandt"
    seed = ask(app, "when was the Taraz attack?").json()
    assert all(c["source"] != "harbour.txt" for c in seed["citations"]) and seed["short_answer"] == "2011"

    sid = answer["citations"][0]["sentence_id"]
    found = httpx.get(f"{app.url}/api/sources/harbour.txt", params={"collection": harbour, "sentence_id": sid},
                      timeout=60)
    assert found.status_code == 200 and found.json()["context"]["sentence"] == answer["citations"][0]["text"]
    assert httpx.get(f"{app.url}/api/sources/harbour.txt", timeout=60).status_code == 404


@pytest.mark.parametrize("name", ["nope", "x", "../etc", f"{'a' * 40}_documents", "bad name"])
def test_unknown_collections_are_404_and_never_created(app: LiveApp, name: str) -> None:
    before = set(httpx.get(f"{app.url}/api/collections", timeout=60).json()["collections"])
    response = ask(app, "when was the Taraz attack?", name)
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "not_found"
    assert set(httpx.get(f"{app.url}/api/collections", timeout=60).json()["collections"]) == before


def test_admin_starts_a_collection_by_adding_a_document(app: LiveApp) -> None:
    name = f"{app.settings.collection}-ferries"
    response = httpx.post(f"{app.url}/api/documents", params={"collection": name}, timeout=120,
                          headers={"Authorization": f"Bearer {TOKEN}"},
                          files={"file": ("ferry.txt", b"Ferry\n\nThe Quenby ferry was captained by Ilka Varga.\n")})
    assert response.status_code == 201, response.text
    assert name in httpx.get(f"{app.url}/api/collections", timeout=60).json()["collections"]
    assert not (app.corpus_dir / "ferry.txt").exists()  # the default corpus folder is not another's
    answer = ask(app, "Who captained the Quenby ferry?", name).json()
    assert answer["citations"][0]["source"] == "ferry.txt"
    anonymous = httpx.post(f"{app.url}/api/documents", params={"collection": f"{name}-2"}, timeout=60,
                           files={"file": ("x.txt", b"Text. More text.")})
    assert anonymous.status_code == 401


def test_embed_page_passes_the_collection_to_the_widget(app: LiveApp) -> None:
    page = httpx.get(f"{app.url}/embed", params={"collection": "harbour'><script>x</script>"}, timeout=60).text
    assert "data-collection='harbour&#x27;&gt;&lt;script&gt;x&lt;/script&gt;'" in page
    assert "<script>x</script>" not in page


def test_a_stamped_collection_of_another_model_is_a_503_not_a_crash(app: LiveApp, tmp_path: Path) -> None:
    from rag.index.store import SentenceStore

    name = f"{app.settings.collection}-foreign"
    store = SentenceStore(app.settings.with_overrides(collection=name))
    store.documents.count()  # the manifest collection exists too, so it is listed
    store.sentences.modify(metadata={"embedding_model": "other/model", "dimension": 768, "schema": 1})
    response = ask(app, "Anything at all?", name)
    assert response.status_code == 503 and "other/model" in response.json()["detail"]


@pytest.mark.browser
def test_widget_and_chat_use_the_chosen_collection(app: LiveApp) -> None:
    from tests.test_browser import ANSWER_MS, CHROMIUM, FIRST_LOAD_MS, sync_api

    harbour = f"{app.settings.collection}-harbour"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(f"{app.url}/embed?collection={harbour}", timeout=FIRST_LOAD_MS)
            widget = page.locator("#citechat-widget")
            widget.locator("input").fill("Who was the first harbour master of Varnel?", timeout=FIRST_LOAD_MS)
            widget.locator("form button").click()
            widget.locator(".cite").first.wait_for(timeout=ANSWER_MS)
            assert "harbour.txt" in widget.locator(".cite").first.inner_text()
            widget.locator(".cite").first.click()  # the context comes from the same collection
            sync_api.expect(widget.locator(".context").first).to_contain_text("Ilse Brandt", timeout=ANSWER_MS)

            page.goto(f"{app.url}/", timeout=FIRST_LOAD_MS)
            page.locator("#cc-collection").wait_for(state="visible", timeout=FIRST_LOAD_MS)  # 2+ collections
        finally:
            browser.close()
