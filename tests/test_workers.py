"""`rag serve --workers N`: N processes on one port share the index on a Chroma server; all answer alike, and an
article added through one of them is answered by all."""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import CORPUS, ROOT, free_port

pytestmark = pytest.mark.slow
TOKEN = "workers-admin-token"


def children(pid: int) -> set[int]:
    """Live child processes of ``pid`` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().split(") ")[1].split()[1]) == pid:
                    found.add(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def test_workers_share_one_port_and_one_index(chroma_server: str, tmp_path: Path) -> None:
    port = free_port()
    corpus = tmp_path / "corpus"  # uploads land in the corpus folder: a copy, never the repository's
    shutil.copytree(CORPUS, corpus)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update({"RAG_CHROMA_URL": chroma_server, "RAG_COLLECTION": f"w{uuid.uuid4().hex[:10]}",
                "RAG_INDEX_DIR": str(tmp_path / "ix"), "RAG_CORPUS_DIR": str(corpus), "RAG_ADMIN_TOKEN": TOKEN,
                "RAG_RATE_LIMIT_PER_MINUTE": "0", "RAG_EMBED_THREADS": "1", "PYTHONPATH": str(ROOT)})
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "rag", "serve", "--port", str(port), "--workers", "2"],
                                  stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            assert server.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        assert len(children(server.pid)) >= 2, "uvicorn started fewer than 2 worker processes"

        def ask(question: str) -> dict:
            response = httpx.post(url + "/api/ask", json={"question": question}, timeout=120)
            assert response.status_code == 200, response.text
            return response.json()

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(ask, ["when was the Taraz attack?"] * 24))
        assert {a["short_answer"] for a in answers} == {"2011"}
        assert len({tuple(c["sentence_id"] for c in a["citations"]) for a in answers}) == 1

        # The widget's full-page chat stands in for the Gradio UI, which needs a single process.
        home = httpx.get(url + "/", timeout=30, follow_redirects=True)
        assert home.status_code == 200 and "widget.js" in home.text

        added = httpx.post(url + "/api/documents", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=300,
                           files={"file": ("ferry.txt", b"Ferry\n\nThe Quenby ferry was captained by Ilka Varga.\n")})
        assert added.status_code == 201, added.text
        time.sleep(2.5)  # past the generation check interval of every worker
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(ask, ["Who captained the Quenby ferry?"] * 24))
        assert all(a["citations"] and a["citations"][0]["source"] == "ferry.txt" for a in answers)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()


def test_workers_without_a_chroma_server_are_refused(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    run = subprocess.run([sys.executable, "-m", "rag", "serve", "--workers", "2", "--index", str(tmp_path / "ix"),
                          "--no-ingest"], capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert run.returncode != 0
    assert "RAG_CHROMA_URL" in run.stderr
