"""An in-memory snapshot of the store for fast retrieval: texts, offsets, vectors and the BM25 index.

Chroma stays the source of truth. The snapshot is rebuilt from it whenever the collection's generation
tag changes, and cached on local disk (written to a temporary folder, then renamed) for fast starts.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.index.dense import DenseIndex
from rag.index.lexical import LexicalIndex, tokenize
from rag.index.store import SentenceStore
from rag.records import Sentence

log = logging.getLogger(__name__)
_FORMAT = 3


@dataclass
class Snapshot:
    """Every indexed sentence, rows ordered by (source, position) so neighbours are adjacent rows."""

    generation: str
    ids: list[str]
    texts: list[str]
    sources: list[str]
    starts: np.ndarray
    ends: np.ndarray
    positions: np.ndarray
    pages: np.ndarray  # the PDF page of each row, 0 for sources without pages
    titles: dict[str, str]
    vectors: np.ndarray
    lexical: LexicalIndex
    dense: DenseIndex

    def __post_init__(self) -> None:
        self.row_of = {sid: i for i, sid in enumerate(self.ids)}
        self._title_terms: dict[str, frozenset[str]] = {}

    def title_terms(self, source: str) -> frozenset[str]:
        """The lexical terms of ``source``'s title, tokenised once per snapshot (every search looks at them)."""
        found = self._title_terms.get(source)
        if found is None:
            found = self._title_terms[source] = frozenset(tokenize(self.titles.get(source, "")))
        return found

    def __len__(self) -> int:
        return len(self.ids)

    def sentence(self, row: int) -> Sentence:
        """The row as a ``Sentence``."""
        source = self.sources[row]
        return Sentence(sentence_id=self.ids[row], source=source, text=self.texts[row], start=int(self.starts[row]),
                        end=int(self.ends[row]), position=int(self.positions[row]), title=self.titles.get(source, ""),
                        page=int(self.pages[row]) or None)

    def neighbours(self, row: int, radius: int = 1) -> list[int]:
        """Rows of the same source within ``radius`` sentences, the row itself included, in order."""
        lo, hi = max(0, row - radius), min(len(self.ids) - 1, row + radius)
        return [r for r in range(lo, hi + 1) if self.sources[r] == self.sources[row]]

    @classmethod
    def from_store(cls, store: SentenceStore, generation: str) -> Snapshot:
        """Read every sentence from Chroma and build the snapshot."""
        sentences: list[Sentence] = []
        pages: list[np.ndarray] = []
        for ids, metas, docs, vecs in store.iter_all():
            for i, sid in enumerate(ids):
                meta = metas[i]
                sentences.append(Sentence.model_construct(sentence_id=sid, source=str(meta["source"]), text=docs[i],
                                          start=int(meta["start"]), end=int(meta["end"]),
                                          position=int(meta["position"]), title=str(meta.get("title", "")),
                                          page=int(meta.get("page", 0) or 0) or None))
            pages.append(vecs)
        vectors = np.concatenate(pages) if pages else np.zeros((0, 384), np.float32)
        return cls.from_sentences(generation, sentences, vectors)

    @classmethod
    def from_sentences(cls, generation: str, sentences: list[Sentence], vectors: np.ndarray,
                       dense: Callable[[np.ndarray, np.ndarray], DenseIndex] | None = None) -> Snapshot:
        """Build the snapshot from sentences and their row-aligned vectors (any order).

        ``dense(ordered_vectors, at)`` makes the dense index, where ``at[i]`` is the row ``sentences[i]`` lands
        on; by default a new one is built.
        """
        order = sorted(range(len(sentences)), key=lambda i: (sentences[i].source, sentences[i].position))
        at = np.empty(len(order), np.int64)
        at[order] = np.arange(len(order))
        rows = [sentences[i] for i in order]
        texts = [s.text for s in rows]
        dim = vectors.shape[1] if vectors.ndim == 2 else 384
        ordered = np.ascontiguousarray(vectors[order], dtype=np.float32) if rows else np.zeros((0, dim), np.float32)
        return cls(generation=generation, ids=[s.sentence_id for s in rows], texts=texts,
                   sources=[s.source for s in rows], starts=np.array([s.start for s in rows], dtype=np.int64),
                   ends=np.array([s.end for s in rows], dtype=np.int64),
                   positions=np.array([s.position for s in rows], dtype=np.int64),
                   pages=np.array([s.page or 0 for s in rows], dtype=np.int32),
                   titles={s.source: s.title for s in rows}, vectors=ordered, lexical=LexicalIndex.build(texts),
                   dense=dense(ordered, at) if dense else DenseIndex.build(ordered))

    def with_changes(self, generation: str, replaced_sources: set[str], sentences: list[Sentence],
                     vectors: np.ndarray) -> Snapshot:
        """A new snapshot: this one without ``replaced_sources``, plus ``sentences`` (what an ingest just wrote).

        Equal to ``from_store`` after that ingest, without reading the whole collection back from Chroma.
        """
        keep = [i for i, source in enumerate(self.sources) if source not in replaced_sources]
        kept = [Sentence.model_construct(sentence_id=self.ids[i], source=self.sources[i], text=self.texts[i],
                                         start=int(self.starts[i]), end=int(self.ends[i]),
                                         position=int(self.positions[i]), title=self.titles.get(self.sources[i], ""),
                                         page=int(self.pages[i]) or None)
                for i in keep]
        dim = self.vectors.shape[1] if self.vectors.ndim == 2 and len(self) else vectors.shape[1]
        old = np.asarray(self.vectors[keep], dtype=np.float32).reshape(len(keep), dim)

        def dense(ordered: np.ndarray, at: np.ndarray) -> DenseIndex:
            moved = np.full(len(self), -1, np.int64)
            moved[keep] = at[:len(keep)]
            return self.dense.updated(ordered, moved, at[len(keep):])

        return Snapshot.from_sentences(generation, kept + sentences,
                                      np.concatenate([old, vectors.reshape(len(sentences), dim)]), dense)

    def ids_by_source(self) -> dict[str, set[str]]:
        """Sentence ids grouped by source (what ``SentenceStore.sentence_ids_by_source`` reads from Chroma)."""
        grouped: dict[str, set[str]] = {}
        for sid, source in zip(self.ids, self.sources, strict=True):
            grouped.setdefault(source, set()).add(sid)
        return grouped

    # -- disk cache -------------------------------------------------------------------------------------------
    def save(self, cache_root: Path) -> None:
        """Write the snapshot under ``cache_root/<generation>`` atomically, dropping older snapshots."""
        cache_root.mkdir(parents=True, exist_ok=True)
        final = cache_root / self.generation
        if final.exists():
            return
        tmp = cache_root / f".tmp-{uuid.uuid4().hex}"
        meta = {"format": _FORMAT, "generation": self.generation, "ids": self.ids, "texts": self.texts,
                "sources": self.sources, "starts": self.starts.tolist(), "ends": self.ends.tolist(),
                "positions": self.positions.tolist(), "pages": self.pages.tolist(), "titles": self.titles}
        try:
            tmp.mkdir()
            (tmp / "snapshot.json").write_text(json.dumps(meta), encoding="utf-8")
            np.save(tmp / "vectors.npy", self.vectors)
            (tmp / "bm25").mkdir()
            self.lexical.save(tmp / "bm25")
            self.dense.save(tmp)
        except OSError as exc:  # a full disk costs the cache, not the ingest: Chroma stays the source of truth
            shutil.rmtree(tmp, ignore_errors=True)
            log.warning("could not cache the index snapshot in %s: %s", cache_root, exc)
            return
        try:
            os.rename(tmp, final)
        except OSError:  # another process published the same generation first
            shutil.rmtree(tmp, ignore_errors=True)
        for old in cache_root.iterdir():
            # Older snapshots go; temp folders only when stale (left by a killed save; a fresh one may be in use).
            temp = old.name.startswith(".tmp-")
            if (temp and _stale(old)) or (not temp and old.name != self.generation):
                shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path) -> Snapshot:
        """Read a snapshot written by ``save``."""
        meta = json.loads((folder / "snapshot.json").read_text(encoding="utf-8"))
        if meta.get("format") != _FORMAT:
            raise ValueError("old cache format")
        vectors = np.load(folder / "vectors.npy", mmap_mode="r")
        return cls(generation=meta["generation"], ids=meta["ids"], texts=meta["texts"], sources=meta["sources"],
                   starts=np.array(meta["starts"], dtype=np.int64), ends=np.array(meta["ends"], dtype=np.int64),
                   positions=np.array(meta["positions"], dtype=np.int64),
                   pages=np.array(meta["pages"], dtype=np.int32), titles=meta["titles"],
                   vectors=vectors, lexical=LexicalIndex.load(folder / "bm25", len(meta["ids"])),
                   dense=DenseIndex.load(folder, vectors))


def _stale(folder: Path, age_s: float = 3600) -> bool:
    """True when ``folder`` was last changed more than ``age_s`` seconds ago (False if it is gone already)."""
    try:
        return time.time() - folder.stat().st_mtime > age_s
    except OSError:
        return False


def cache_root(index_dir: Path, collection: str) -> Path:
    """Where snapshots of one collection are cached."""
    return index_dir / "cache" / collection


def cached_snapshot(index_dir: Path, collection: str, generation: str) -> Snapshot | None:
    """The cached snapshot of exactly ``generation``, or None (no cache, unreadable, or a dirty generation)."""
    folder = cache_root(index_dir, collection) / generation
    if generation.startswith("dirty-") or not (folder / "snapshot.json").exists():
        return None
    try:
        return Snapshot.load(folder)
    except (OSError, ValueError, KeyError) as exc:
        log.warning("ignoring unreadable cache %s: %s", folder, exc)
        return None


def load_snapshot(store: SentenceStore, index_dir: Path) -> Snapshot:
    """The snapshot for the store's current generation: from the disk cache if present, else rebuilt.

    While an ingest is writing (a ``dirty-`` generation) the newest cached snapshot is served, so asks keep
    answering from the old index instead of a half-written one.
    """
    root = cache_root(index_dir, store.settings.collection)
    generation = store.generation()
    candidates = [root / generation] if not generation.startswith("dirty-") else []
    if generation.startswith("dirty-") and root.exists():
        candidates = sorted((p for p in root.iterdir() if not p.name.startswith(".tmp-")),
                            key=lambda p: p.stat().st_mtime, reverse=True)
    for folder in candidates:
        if (folder / "snapshot.json").exists():
            try:
                return Snapshot.load(folder)
            except (OSError, ValueError, KeyError) as exc:
                log.warning("ignoring unreadable cache %s: %s", folder, exc)
    snapshot = Snapshot.from_store(store, generation)
    if not generation.startswith("dirty-"):
        try:
            snapshot.save(root)
        except OSError as exc:
            log.warning("could not cache the index snapshot: %s", exc)
    return snapshot

