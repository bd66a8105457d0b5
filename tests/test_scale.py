"""Speed work must not change results: fast splitting = pysbd, the incremental snapshot = a re-read of Chroma."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pysbd
import pytest

from rag import Pipeline, Settings
from rag.index.snapshot import Snapshot, cache_root
from rag.index.store import SentenceStore
from rag.ingest.cleaning import content_paragraphs
from rag.ingest.splitting import _split_block

from .conftest import CORPUS, SQUAD_SLICE


def _pieces(pieces: list[str]) -> list[str]:
    return [p.strip() for p in pieces if p.strip()]


@pytest.mark.slow
def test_fast_splitter_gives_exactly_pysbd_sentences_on_squad_and_seed() -> None:
    segmenter = pysbd.Segmenter(language="en", clean=False)
    paragraphs = [p["context"] for a in json.loads(SQUAD_SLICE.read_text(encoding="utf-8"))["data"][:6]
                  for p in a["paragraphs"]]
    for path in CORPUS.glob("*.txt"):
        text = path.read_text(encoding="utf-8")
        paragraphs += [p.text for p in content_paragraphs(text, "")]
    paragraphs += ["He met Dr. Smith in the U.S. on Jan. 5. It rained.", '"Go home. Now." She left.',
                   "It cost 3.5 dollars (about 2. Euros). Fine!", "Wait... What? Yes. (One. Two.) Three."]
    differ = [p for p in paragraphs if _pieces(_split_block(p)) != _pieces(segmenter.segment(p))]
    assert len(paragraphs) > 300
    assert differ == []


def _snapshot_fields(snapshot: Snapshot) -> tuple:
    return (snapshot.ids, snapshot.texts, snapshot.sources, snapshot.starts.tolist(), snapshot.ends.tolist(),
            snapshot.positions.tolist(), snapshot.titles)


def _write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text, encoding="utf-8")


def test_snapshot_after_ingest_equals_a_full_reread_of_chroma(settings: Settings, corpus_copy: Path) -> None:
    _write(corpus_copy, "b.txt", "Bees\n\nBees make honey in hives. A queen lays the eggs. Workers gather nectar.")
    _write(corpus_copy, "c.txt", "Cats\n\nCats sleep for most of the day. They hunt at dusk.")
    pipeline = Pipeline(settings)
    pipeline.ingest([corpus_copy])
    # Second run: one article edited (a sentence kept, one added), one deleted, one added.
    _write(corpus_copy, "b.txt", "Bees\n\nBees make honey in hives. Drones do not sting. Workers gather nectar.")
    (corpus_copy / "c.txt").unlink()
    _write(corpus_copy, "d.txt", "Dogs\n\nDogs were domesticated from wolves. They bark at strangers.")
    report = pipeline.ingest([corpus_copy])
    assert (report.added, report.updated, report.removed) == (1, 1, 1)

    store = SentenceStore(settings)
    generation = store.generation()
    cached = Snapshot.load(cache_root(settings.index_dir, settings.collection) / generation)
    reread = Snapshot.from_store(store, generation)
    assert _snapshot_fields(cached) == _snapshot_fields(reread)
    assert np.allclose(np.asarray(cached.vectors), reread.vectors, atol=1e-6)
    assert len(cached) == report.total_sentences == store.count()
    assert "c.txt" not in cached.sources and "d.txt" in cached.sources
    query = "Which animals were domesticated from wolves?"
    assert np.array_equal(cached.lexical.scores(query), reread.lexical.scores(query))
    assert pipeline.ask(query).citations[0].source == "d.txt"


def test_ingest_without_a_local_cache_rereads_chroma(settings: Settings, corpus_copy: Path) -> None:
    pipeline = Pipeline(settings)
    pipeline.ingest([corpus_copy])
    shutil.rmtree(cache_root(settings.index_dir, settings.collection))
    _write(corpus_copy, "e.txt", "Eels\n\nEels migrate to the Sargasso Sea to spawn.")
    report = pipeline.ingest([corpus_copy])
    assert report.added == 1 and report.unchanged == 1
    store = SentenceStore(settings)
    cached = Snapshot.load(cache_root(settings.index_dir, settings.collection) / store.generation())
    assert _snapshot_fields(cached) == _snapshot_fields(Snapshot.from_store(store, store.generation()))
    assert pipeline.ask("Where do eels spawn?").citations[0].source == "e.txt"
