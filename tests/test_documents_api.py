"""`/api/documents` over real HTTP: the admin token guards listing, adding (file or URL) and removing articles;
changes go through the real ingest and show in answers at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live_server import LiveApp, seed_copy_pipeline, serve_folder, start_app
from tests.test_formats import make_docx

TOKEN = "documents-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PAGE = ("<html><head><title>Quenby Mill</title></head><body><article><p>The Quenby windmill was rebuilt in 1931 by "
        "the carpenter Olaf Brenner after a storm.</p></article></body></html>")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    pipeline = seed_copy_pipeline(tmp_path_factory.mktemp("documents"), admin_token=TOKEN, max_file_bytes=100_000,
                                  rate_limit_per_minute=1000)
    with start_app(pipeline) as server:
        yield LiveApp(server.url, pipeline, pipeline.settings, pipeline.settings.corpus_dir)


def listing(app: LiveApp) -> dict[str, dict]:
    response = httpx.get(f"{app.url}/api/documents", headers=AUTH, timeout=60)
    assert response.status_code == 200, response.text
    return {d["source"]: d for d in response.json()["documents"]}


@pytest.mark.parametrize(("headers", "status"), [({}, 401), ({"Authorization": "Bearer wrong"}, 403),
                                                 ({"Authorization": f"Basic {TOKEN}"}, 403),
                                                 ({"Authorization": TOKEN}, 403)])
def test_every_document_route_needs_the_admin_token(app: LiveApp, headers: dict[str, str], status: int) -> None:
    before = set(app.pipeline.store.indexed_documents())
    calls = [httpx.get(f"{app.url}/api/documents", headers=headers, timeout=60),
             httpx.post(f"{app.url}/api/documents", headers=headers, timeout=60,
                        files={"file": ("x.txt", b"Injected article. It must not be indexed.")}),
             httpx.delete(f"{app.url}/api/documents/{next(iter(before))}", headers=headers, timeout=60)]
    for response in calls:
        assert response.status_code == status, response.text
        assert response.json()["error"] in ("http_error", "not_found")
    assert set(app.pipeline.store.indexed_documents()) == before
    assert not (app.corpus_dir / "x.txt").exists()


def test_upload_is_ingested_listed_cited_and_idempotent(app: LiveApp) -> None:
    data = make_docx("Quenby Bridge", ["The Quenby bridge was opened in 1911 by the engineer Sela Moravec."])
    response = httpx.post(f"{app.url}/api/documents", headers=AUTH, timeout=120,
                          files={"file": ("bridge.docx", data)})
    assert response.status_code == 201, response.text
    assert response.json()["added"] == 1
    assert (app.corpus_dir / "bridge.docx").read_bytes() == data
    entry = listing(app)["bridge.docx"]
    assert entry["title"] == "Quenby Bridge" and entry["sentences"] >= 1 and entry["characters"] > 50
    answer = httpx.post(f"{app.url}/api/ask", json={"question": "Who opened the Quenby bridge?"}, timeout=60).json()
    assert answer["citations"][0]["source"] == "bridge.docx"
    again = httpx.post(f"{app.url}/api/documents", headers=AUTH, timeout=120, files={"file": ("bridge.docx", data)})
    assert again.status_code == 201 and again.json()["unchanged"] == 1


@pytest.mark.parametrize(("name", "data", "status", "detail"), [
    ("../escape.txt", b"Text that must stay out. It is a traversal.", 422, "plain file name"),
    ("tool.exe", b"MZ binary", 422, "files are accepted"),
    ("big.txt", b"A sentence of text. " * 6000, 413, "RAG_MAX_FILE_BYTES"),
    ("scan.pdf", b"%PDF-1.4\n%%EOF\n", 422, "not a readable PDF"),
])
def test_bad_uploads_are_refused_with_a_reason(app: LiveApp, name: str, data: bytes, status: int,
                                              detail: str) -> None:
    before = set(app.pipeline.store.indexed_documents())
    response = httpx.post(f"{app.url}/api/documents", headers=AUTH, timeout=120, files={"file": (name, data)})
    assert response.status_code == status, response.text
    assert detail in response.json()["detail"]
    assert set(app.pipeline.store.indexed_documents()) == before


def test_file_and_url_are_exclusive(app: LiveApp) -> None:
    neither = httpx.post(f"{app.url}/api/documents", headers=AUTH, timeout=60)
    both = httpx.post(f"{app.url}/api/documents", headers=AUTH, timeout=60, data={"url": "http://127.0.0.1:9/"},
                      files={"file": ("a.txt", b"Some text. More text.")})
    not_http = httpx.post(f"{app.url}/api/documents", headers=AUTH, timeout=60, data={"url": "file:///etc/passwd"})
    for response in (neither, both, not_http):
        assert response.status_code == 422, response.text


def test_url_page_is_added_then_removed(app: LiveApp, tmp_path: Path) -> None:
    (tmp_path / "mill.html").write_text(PAGE, encoding="utf-8")
    with serve_folder(tmp_path) as site:
        response = httpx.post(f"{app.url}/api/documents", headers=AUTH, timeout=120,
                              data={"url": f"{site}/mill.html"})
    assert response.status_code == 201, response.text
    source = f"{site.removeprefix('http://')}/mill.html"
    assert listing(app)[source]["url"] == f"{site}/mill.html"
    question = {"question": "Who rebuilt the Quenby windmill?"}
    top = httpx.post(f"{app.url}/api/ask", json=question, timeout=60).json()["citations"][0]
    assert top["source"] == source
    # The page's extracted text is what the citation's offsets index, under a source name with a port in it.
    stored = httpx.get(f"{app.url}/api/sources/{source}", timeout=60)
    assert stored.status_code == 200, stored.text
    assert stored.json()["text"][top["start"]:top["end"]] == top["text"]

    removed = httpx.delete(f"{app.url}/api/documents/{source}", headers=AUTH, timeout=120)
    assert removed.status_code == 200 and removed.json()["removed"] == 1
    assert source not in listing(app)
    cited = httpx.post(f"{app.url}/api/ask", json=question, timeout=60).json()["citations"]
    assert all(c["source"] != source for c in cited)
    assert httpx.delete(f"{app.url}/api/documents/{source}", headers=AUTH, timeout=60).status_code == 404


def test_removing_an_uploaded_file_deletes_it_from_the_corpus_folder(app: LiveApp) -> None:
    response = httpx.post(f"{app.url}/api/documents", headers=AUTH, timeout=120,
                          files={"file": ("ferry.txt", b"Ferry\n\nThe Quenby ferry sank in 1952. All were saved.\n")})
    assert response.status_code == 201, response.text
    assert (app.corpus_dir / "ferry.txt").exists()
    assert httpx.delete(f"{app.url}/api/documents/ferry.txt", headers=AUTH, timeout=120).status_code == 200
    assert not (app.corpus_dir / "ferry.txt").exists()
    assert "ferry.txt" not in listing(app)


def test_document_routes_are_documented(app: LiveApp) -> None:
    paths = httpx.get(f"{app.url}/openapi.json", timeout=60).json()["paths"]
    assert {"get", "post"} <= set(paths["/api/documents"])
    assert "delete" in paths["/api/documents/{source}"]
    for operation in (paths["/api/documents"]["get"], paths["/api/documents"]["post"],
                      paths["/api/documents/{source}"]["delete"]):
        assert {"401", "403", "429"} <= set(operation["responses"])
