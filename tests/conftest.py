"""Shared fixtures: real Chroma (embedded folder or a `chroma run` server), the real model, the seed article."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag import Pipeline, Settings  # noqa: E402

# Fixtures defined beside their helpers: the SQuAD corpus (``normans``) and the shared live server.
pytest_plugins = ["tests.squad_corpus", "tests.live_server"]

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
DATA = ROOT / "tests" / "data"
SEED_QUESTIONS = DATA / "seed_questions.jsonl"
SQUAD_SLICE = DATA / "squad-v1.1-slice.json"
ARTIFACTS = ROOT / "test-artifacts"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs a Chroma server, so the fast tier (``make test-fast``) can leave them out."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "chroma_server" in getattr(item, "fixturenames", ()) or params.get("settings") == "server":
            item.add_marker(pytest.mark.chroma_server)


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of a Chroma server: the one .ci/run started (RAG_TEST_CHROMA_URL), else one started here."""
    url = os.environ.get("RAG_TEST_CHROMA_URL")
    if url:
        yield url
        return
    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    chroma = Path(sys.executable).with_name("chroma")
    proc = subprocess.Popen([str(chroma), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail("chroma server did not start")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def run_offline(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh Python where every socket connection fails (and the hub is not told to stay offline),
    so loading anything that would download raises."""
    prologue = ("import socket\n"
                "def refuse(*a, **k):\n    raise OSError('network disabled in this test')\n"
                "socket.socket.connect = refuse\nsocket.create_connection = refuse\n")
    return subprocess.run([sys.executable, "-c", prologue + code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "0"})


def make_settings(index_dir: Path, chroma_url: str | None = None, **extra: object) -> Settings:
    """Settings for an isolated index: its own folder and (on a shared server) its own collection."""
    return Settings(index_dir=index_dir, chroma_url=chroma_url, collection=f"t{uuid.uuid4().hex[:12]}",
                    corpus_dir=CORPUS, **extra)


def assert_index_consistent(pipeline: Pipeline) -> int:
    """Assert Chroma, the manifest and the snapshot agree and every offset points into its article; return the
    number of sentences."""
    store = pipeline.store
    by_source = store.sentence_ids_by_source()
    manifest = store.indexed_documents(with_text=True)
    assert set(by_source) == set(manifest)
    for source, entry in manifest.items():
        assert entry.sentences == len(by_source[source])
    snapshot = pipeline.snapshot()
    assert len(snapshot) == store.count() == sum(len(v) for v in by_source.values()) == len(set(snapshot.ids))
    for row in range(len(snapshot)):
        assert manifest[snapshot.sources[row]].text[snapshot.starts[row]:snapshot.ends[row]] == snapshot.texts[row]
        # The dense index points at this snapshot's rows: a sentence's own vector finds it (or an identical text).
        (found, similarity), *_ = snapshot.dense.search(snapshot.vectors[row], 1)
        assert similarity > 0.999 and snapshot.texts[found] == snapshot.texts[row]
    return len(snapshot)


@pytest.fixture(params=["embedded", "server"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for a fresh index, once with an embedded Chroma folder and once against a Chroma server."""
    url = request.getfixturevalue("chroma_server") if request.param == "server" else None
    return make_settings(tmp_path / "index", url)


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped corpus."""
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS, target)
    return target


@pytest.fixture(scope="session")
def seed_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """A pipeline with the seed article ingested once for the whole session (embedded Chroma)."""
    pipeline = Pipeline(make_settings(tmp_path_factory.mktemp("seed-index")))
    pipeline.ingest([CORPUS])
    return pipeline
