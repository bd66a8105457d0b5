"""`rag ingest URL`: web pages and documents served by a local HTTP server are ingested, cited with offsets into
their stored text, kept by folder syncs and left unchanged when ingested again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rag import Pipeline
from tests.conftest import make_settings
from tests.test_formats import PAGE_ONE, PAGE_TWO, make_pdf

PAGE = """<!DOCTYPE html><html><head><title>Varnel Lighthouse</title></head><body>
<nav>Home | News | Contact us today</nav>
<article><h1>Varnel Lighthouse</h1>
<p>The Varnel lighthouse keeper in 1920 was Marta Holm, who kept the lamp burning for eleven winters.</p>
<p>Its lamp could be seen from twenty-two nautical miles away on a clear night.</p></article>
<footer>Copyright Varnel Harbour Society</footer></body></html>"""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    routes = {"/lighthouse.html": ("text/html; charset=utf-8", PAGE.encode()),
              "/port.pdf": ("application/pdf", make_pdf([PAGE_ONE, PAGE_TWO], "Port of Varnel"))}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            if self.path not in routes:
                self.send_error(404)
                return
            kind, body = routes[self.path]
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_cli_ingests_urls_and_cites_them(site: str, tmp_path: Path) -> None:
    env = {**os.environ, "RAG_INDEX_DIR": str(tmp_path / "ix")}
    run = subprocess.run([sys.executable, "-m", "rag", "ingest", f"{site}/lighthouse.html", f"{site}/port.pdf",
                          f"{site}/missing.html", "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["added"] == 2
    assert any(r.startswith(f"{site}/missing.html") and "404" in r for r in report["skipped"]), report
    run = subprocess.run([sys.executable, "-m", "rag", "ask", "Who kept the Varnel lighthouse in 1920?", "--json"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    top = answer["citations"][0]
    assert top["source"] == f"{site.removeprefix('http://')}/lighthouse.html"
    assert "Marta Holm" in top["text"] and top["page"] is None


def test_url_pages_survive_folder_syncs_and_reingest_unchanged(site: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "notes.txt").write_text("Harbour notes\n\nThe harbour office opens at seven in the morning.\n")
    pipeline = Pipeline(make_settings(tmp_path / "ix"))
    pipeline.ingest([f"{site}/port.pdf", str(corpus)])
    host = site.removeprefix("http://")
    documents = pipeline.store.indexed_documents(with_text=True)
    assert set(documents) == {f"{host}/port.pdf", "notes.txt"}
    assert documents[f"{host}/port.pdf"].url == f"{site}/port.pdf"
    answer = pipeline.ask("Who built the lighthouse?")
    top = answer.citations[0]
    assert (top.source, top.page) == (f"{host}/port.pdf", 2)
    assert documents[top.source].text[top.start:top.end] == top.text

    (corpus / "notes.txt").unlink()
    (corpus / "hours.txt").write_text("Opening hours\n\nThe museum opens at ten.\n")
    report = pipeline.ingest([corpus])  # a folder sync: notes.txt goes, the page fetched by URL stays
    assert report.removed == 1
    assert set(pipeline.store.indexed_documents()) == {f"{host}/port.pdf", "hours.txt"}
    again = pipeline.ingest([f"{site}/port.pdf"])
    assert (again.unchanged, again.added, again.updated, again.removed) == (1, 0, 0, 0)
