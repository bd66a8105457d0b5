"""The in-process dense index: its HNSW graph against an exact scan, incremental updates, the disk cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from rag import Pipeline
from rag.index.dense import DenseIndex
from rag.index.snapshot import Snapshot, cache_root
from rag.records import Sentence
from tests.conftest import CORPUS, assert_index_consistent, make_settings
from tests.squad_corpus import SquadCorpus


@pytest.fixture
def graph_always(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every snapshot gets a graph, so small test corpora exercise the path large ones take."""
    monkeypatch.setattr("rag.index.dense.EXACT_MAX_ROWS", 8)


def exact(vectors: np.ndarray, query: np.ndarray, n: int) -> list[int]:
    return np.argsort(-(vectors @ query), kind="stable")[:n].tolist()


def test_graph_finds_what_an_exact_scan_finds(normans: SquadCorpus, graph_always: None) -> None:  # noqa: F811
    snapshot = normans.pipeline.snapshot()
    graph = DenseIndex.build(snapshot.vectors)
    assert graph.graph is not None and DenseIndex(snapshot.vectors).graph is None
    questions = normans.pipeline.embedder.encode_queries([q for q, _, _ in normans.questions[:60]])
    recall, same_top = [], 0
    for qv in questions:
        hits = graph.search(qv, 10)
        truth = exact(snapshot.vectors, qv, 10)
        rows = [r for r, _ in hits]
        recall.append(len(set(rows) & set(truth)) / 10)
        same_top += rows[0] == truth[0]
        # Scores are the exact cosine of the float vectors, best first.
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
        assert hits[0][1] == pytest.approx(float(snapshot.vectors[rows[0]] @ qv), abs=1e-5)
    assert np.mean(recall) >= 0.95 and same_top >= 0.95 * len(questions), (np.mean(recall), same_top)


def _sentences(source: str, texts: list[str]) -> list[Sentence]:
    return [Sentence(sentence_id=f"{source}:{i}", source=source, text=t, start=0, end=len(t), position=i, title=source)
            for i, t in enumerate(texts)]


def test_incremental_updates_match_the_new_rows(graph_always: None) -> None:
    rng = np.random.default_rng(7)

    def unit(n: int) -> np.ndarray:
        v = rng.normal(size=(n, 32)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    base = Snapshot.from_sentences("g1", _sentences("b", [f"b{i}" for i in range(80)])
                                  + _sentences("d", [f"d{i}" for i in range(20)]), unit(100))
    graph = base.dense.graph
    # Replace "d" by a changed copy and add "a", which sorts first: every surviving row moves.
    added = _sentences("a", [f"a{i}" for i in range(10)]) + _sentences("d", [f"d{i}x" for i in range(15)])
    after = base.with_changes("g2", {"d"}, added, unit(25))
    assert after.dense.graph is not None and after.dense.graph is not graph and after.dense.graph.ntotal == 125
    assert base.dense.graph is graph and graph.ntotal == 100  # the old snapshot keeps serving unchanged
    for row in range(len(after)):
        (found, similarity), *_ = after.dense.search(after.vectors[row], 1)
        assert found == row and similarity == pytest.approx(1.0, abs=1e-5), after.ids[row]
    probes = unit(30)
    for qv in probes:
        rows = [r for r, _ in after.dense.search(qv, 5)]
        assert set(rows) == set(exact(after.vectors, qv, 5))
    # Removed sentences are never returned, even for their own vectors.
    for row in (r for r, source in enumerate(base.sources) if source == "d"):
        found = [after.texts[r] for r, _ in after.dense.search(base.vectors[row], 50)]
        assert len(found) == 50 and base.texts[row] not in found

    # Past a quarter of tombstones the graph is rebuilt with only live rows.
    smaller = after.with_changes("g3", {"b"}, [], np.zeros((0, 32), np.float32))
    assert smaller.dense.graph is not None and smaller.dense.graph.ntotal == len(smaller) == 25


def test_snapshot_cache_keeps_the_graph(tmp_path: Path, graph_always: None) -> None:
    settings = make_settings(tmp_path / "ix")
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    first = Pipeline(settings)
    first.ingest([corpus])
    question = "when was the Taraz attack?"
    before = first.ask(question)
    assert first.snapshot().dense.graph is not None

    # An incremental ingest updates the graph in place of a rebuild; a new process loads it from the cache.
    (corpus / "ferry.txt").write_text("Ferries\n\nThe ferry to Zanzibar left at nine o'clock. Its captain was named "
                                      "Okafor. The crossing took three hours.\n")
    first.ingest([corpus])
    fresh = Pipeline(settings)
    assert assert_index_consistent(fresh) == len(first.snapshot())
    folder = cache_root(settings.index_dir, settings.collection) / fresh.snapshot().generation
    assert (folder / "dense.faiss").exists()
    assert fresh.ask(question).citations[0].sentence_id == before.citations[0].sentence_id
    ferry = fresh.ask("When did the ferry to Zanzibar leave?")
    assert ferry.citations[0].source == "ferry.txt" and "nine" in ferry.answer

    # A graph that does not match its snapshot is refused, and the snapshot is rebuilt from Chroma.
    np.save(folder / "dense_rows.npy", np.arange(10_000, dtype=np.int64))
    with pytest.raises(ValueError, match="does not match"):
        Snapshot.load(folder)
    rebuilt = Pipeline(settings)
    assert assert_index_consistent(rebuilt) == len(first.snapshot())
    assert rebuilt.ask(question).citations[0].sentence_id == before.citations[0].sentence_id
