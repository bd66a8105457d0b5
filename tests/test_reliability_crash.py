"""Crash safety: SIGKILL `rag ingest` at random points, then one clean run must leave everything consistent."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from rag import Pipeline, Settings
from rag.index.embeddings import SentenceEmbeddings
from rag.index.snapshot import Snapshot, cache_root, load_snapshot
from rag.index.store import SentenceStore
from rag.ingest.loaders import find_files, load_document
from rag.ingest.splitting import split_document
from rag.ingest.sync import ingest

from .conftest import ARTIFACTS, make_settings

ARTICLES = 200
MAX_KILLS = 8
KILL_LOOP_BUDGET_S = 110
NOUNS = ["river", "council", "harbour", "bridge", "festival", "school", "market", "railway", "museum", "library",
         "factory", "garden"]
PLACES = ["Astana", "Taraz", "Almaty", "Oslo", "Lima", "Quito", "Perth", "Turin", "Porto", "Ghent", "Split", "Kyoto"]
VERBS = ["built", "opened", "closed", "repaired", "visited", "funded", "expanded", "renamed"]


def article(i: int, rnd: random.Random, version: int = 0) -> str:
    """A small unique article: a title line and 2-4 sentences."""
    lines = [f"In {1900 + rnd.randint(0, 120)} the town {rnd.choice(VERBS)} {rnd.randint(2, 999)} "
             f"{rnd.choice(NOUNS)}s near {rnd.choice(PLACES)} (item {i}-{j}, v{version})."
             for j in range(rnd.randint(2, 4))]
    return f"Report {i} on the {rnd.choice(NOUNS)} of {rnd.choice(PLACES)}\n\n" + " ".join(lines) + "\n"


def mutate(corpus: Path, rnd: random.Random, round_no: int) -> None:
    """Edit, delete and add a few articles so interrupted updates and removals are exercised too."""
    files = sorted(corpus.glob("*.txt"))
    for path in rnd.sample(files, 6):
        path.write_text(article(int(path.stem[1:]), rnd, version=round_no))
    for path in rnd.sample(files, 2):
        path.unlink(missing_ok=True)
    for j in range(3):
        (corpus / f"a{1000 + round_no * 10 + j:04d}.txt").write_text(article(1000 + round_no * 10 + j, rnd))


def rag_ingest(corpus: Path, index: Path, collection: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RAG_COLLECTION": collection, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "rag", "ingest", str(corpus), "--index", str(index), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def wait_for_lock(index: Path, pid: int, proc: subprocess.Popen[bytes], timeout: float = 180) -> bool:
    """True once the process holds the ingest lock (it writes its pid to ingest.pid); False if it ended first."""
    lock = index / "ingest.pid"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if lock.read_text().strip() == str(pid):
                return True
        except OSError:
            pass
        time.sleep(0.02)
    raise AssertionError("rag ingest never took the lock")


def expected_index(corpus: Path) -> tuple[dict[str, str], set[str]]:
    """What a clean ingest of ``corpus`` holds: {source: file hash} and every sentence id (content hashes)."""
    hashes: dict[str, str] = {}
    ids: set[str] = set()
    for path, source in find_files([corpus]):
        doc = load_document(path, source, 10**8)
        hashes[source] = doc.file_hash
        ids |= {s.sentence_id for s in split_document(doc)}
    return hashes, ids


def assert_consistent(settings, corpus: Path) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Chroma sentences, manifest and cached lexical snapshot all equal a clean ingest of ``corpus``."""
    store = SentenceStore(settings)
    hashes, ids = expected_index(corpus)
    by_source = store.sentence_ids_by_source()
    stored_ids = [sid for group in by_source.values() for sid in group]
    assert len(stored_ids) == len(set(stored_ids)) == store.count()  # no duplicates
    assert set(stored_ids) == ids  # no orphans, nothing missing
    manifest = store.indexed_documents(with_text=True)
    assert {s: e.file_hash for s, e in manifest.items()} == hashes
    assert set(by_source) == set(manifest)
    for source, entry in manifest.items():
        assert entry.sentences == len(by_source[source])
    generation = store.generation()
    assert not generation.startswith("dirty-")
    # The lexical snapshot on disk is the one for this generation, and agrees with Chroma row for row.
    root = cache_root(settings.index_dir, settings.collection)
    published = [p.name for p in root.iterdir() if not p.name.startswith(".tmp-")]
    assert published == [generation]
    cached = Snapshot.load(root / generation)
    fresh = Snapshot.from_store(store, generation)
    assert cached.ids == fresh.ids and cached.texts == fresh.texts
    assert np.array_equal(cached.starts, fresh.starts) and np.array_equal(cached.ends, fresh.ends)
    assert np.allclose(cached.vectors, fresh.vectors, atol=1e-6)
    for query in ["Report on the river of Astana", "museum renamed near Kyoto", "item 7-1"]:
        assert np.allclose(cached.lexical.scores(query), fresh.lexical.scores(query), atol=1e-5)
    for row in range(len(fresh)):
        assert manifest[fresh.sources[row]].text[fresh.starts[row]:fresh.ends[row]] == fresh.texts[row]
    # Vectors were not mixed up between sentences by an interrupted batch: they equal fresh embeddings.
    sample = random.Random(0).sample(range(len(fresh)), min(40, len(fresh)))
    again = SentenceEmbeddings().encode([fresh.texts[r] for r in sample])
    assert np.allclose(np.asarray(fresh.vectors)[sample], again, atol=1e-4)
    return {"sentences": len(ids), "articles": len(hashes)}


@pytest.mark.slow
def test_sigkill_during_ingest_many_times_then_resume(tmp_path: Path) -> None:
    rnd = random.Random(int(os.environ.get("RAG_CRASH_SEED", "8")))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(ARTICLES):
        (corpus / f"a{i:04d}.txt").write_text(article(i, rnd))
    index = tmp_path / "index"
    collection = f"crash{uuid.uuid4().hex[:8]}"
    kills, completed, started = [], 0, time.monotonic()
    for round_no in range(MAX_KILLS):
        if time.monotonic() - started > KILL_LOOP_BUDGET_S:
            break
        if round_no:
            mutate(corpus, rnd, round_no)
        proc = rag_ingest(corpus, index, collection)
        try:
            if wait_for_lock(index, proc.pid, proc):
                # After the lock, the first (full) ingest runs ~6 s and an incremental one ~2 s on an idle machine
                # (measured with the ONNX encoder): kill times spread over the whole of each run.
                delay = rnd.uniform(0.0, 6.0 if round_no == 0 else 2.0)
                time.sleep(delay)
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    kills.append(round(delay, 2))
                else:
                    completed += 1
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out, err = proc.communicate()
        # A run that ended by itself must have ended well (not with a traceback from a half-written index).
        assert proc.returncode in (0, -signal.SIGKILL), err.decode()[-2000:]
    assert len(kills) >= 5, f"only {len(kills)} kills landed mid-ingest"

    # An asker arriving now (the index may be dirty) gets an answer or a clear "not ready", never a crash. It runs
    # in its own process: an embedded Chroma opened here would not see the next process's writes.
    asked = subprocess.run([sys.executable, "-m", "rag", "ask", "What did the town build near Astana?", "--json",
                            "--index", str(index)], capture_output=True, text=True, timeout=300,
                           env={**os.environ, "RAG_COLLECTION": collection})
    assert asked.returncode in (0, 4) and "Traceback" not in asked.stderr, asked.stderr[-2000:]
    if asked.returncode == 0:
        assert json.loads(asked.stdout)["answer"]
    settings = Settings(index_dir=index, collection=collection)

    final = rag_ingest(corpus, index, collection)
    out, err = final.communicate(timeout=600)
    assert final.returncode == 0, err.decode()[-2000:]
    report = json.loads(out)
    counts = assert_consistent(settings, corpus)
    assert report["total_sentences"] == counts["sentences"]

    # A second run finds nothing to do, and asks are answered from the final index.
    again = ingest([corpus], settings)
    assert again.added == again.updated == again.removed == 0 and again.unchanged == counts["articles"]
    answer = Pipeline(settings).ask("What did the town build near Astana?")
    assert answer.citations and all(c.source in {p.name for p in corpus.iterdir()} for c in answer.citations)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "reliability-crash.json").write_text(json.dumps(
        {"kills": len(kills), "kill_delays_s": kills, "runs_completed_before_kill": completed, **counts}, indent=2))


def test_interrupted_cache_writes_are_ignored(tmp_path: Path, corpus_copy: Path) -> None:
    """Half-written snapshot folders (a killed save) and corrupt caches never break loading: Chroma wins."""
    settings = make_settings(tmp_path / "ix")
    ingest([corpus_copy], settings)
    store = SentenceStore(settings)
    generation = store.generation()
    root = cache_root(settings.index_dir, settings.collection)
    good = Snapshot.load(root / generation)
    # A save killed mid-way: a temp folder with a truncated snapshot.json and no vectors.
    partial = root / f".tmp-{uuid.uuid4().hex}"
    partial.mkdir()
    (partial / "snapshot.json").write_text('{"format": 1, "generation": "' + generation + '", "ids": ["a", "b"')
    # A stale snapshot of an older generation, also half-written.
    (root / "0123456789abcdef").mkdir()
    (root / "0123456789abcdef" / "snapshot.json").write_text("{")
    assert load_snapshot(store, settings.index_dir).ids == good.ids

    # The current generation's own files damaged (truncated JSON, missing BM25): rebuilt from Chroma.
    (root / generation / "snapshot.json").write_text('{"format": 1, "ids": [')
    assert load_snapshot(store, settings.index_dir).ids == good.ids
    for path in (root / generation / "bm25").iterdir():
        path.unlink()
    (root / generation / "snapshot.json").unlink()
    rebuilt = load_snapshot(store, settings.index_dir)
    assert rebuilt.ids == good.ids
    assert np.allclose(rebuilt.lexical.scores("Taraz attack"), good.lexical.scores("Taraz attack"), atol=1e-5)
    assert Pipeline(settings).ask("when was the Taraz attack?").citations

    # The next ingest publishes a clean snapshot again, and deletes temp folders of saves killed long ago (a
    # fresh one may belong to another process saving right now, so it stays).
    old_tmp = root / f".tmp-{uuid.uuid4().hex}"
    old_tmp.mkdir()
    os.utime(old_tmp, (time.time() - 7200, time.time() - 7200))
    (corpus_copy / "extra.txt").write_text("Extra article here. It adds one more sentence.")
    ingest([corpus_copy], settings)
    store = SentenceStore(settings)
    assert Snapshot.load(root / store.generation()).ids == Snapshot.from_store(store, store.generation()).ids
    assert not old_tmp.exists() and partial.exists()


def test_failing_cache_write_does_not_fail_the_ingest(tmp_path: Path, corpus_copy: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The snapshot cache is an optimisation: a full disk while writing it must not lose the ingest."""
    settings = make_settings(tmp_path / "ix")

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", disk_full)
    report = ingest([corpus_copy], settings)
    monkeypatch.undo()
    assert report.added == 1 and report.total_sentences > 0
    root = cache_root(settings.index_dir, settings.collection)
    assert not root.exists() or all(p.name.startswith(".tmp-") is False for p in root.iterdir())
    pipeline = Pipeline(settings)
    assert len(pipeline.snapshot()) == report.total_sentences
    assert pipeline.ask("when was the Taraz attack?").citations
