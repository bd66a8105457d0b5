"""Where a sentence sits: its paragraph window, and which rows contain a query term, for context features.

Paragraph boundaries are not stored in the index, but sentence offsets are: inside a paragraph consecutive
sentences are separated by one space or newline, between paragraphs by a blank line (two or more characters).
"""

from __future__ import annotations

import threading

import numpy as np

from rag.index.snapshot import Snapshot

# A "paragraph" longer than this many sentences each side (a text with no blank lines) is cut into windows,
# so context features stay local and their cost stays bounded.
MAX_RADIUS = 6

_lock = threading.Lock()
_ATTR = "_paragraphs"  # cached on the snapshot object itself, so it lives and dies with it


def _paragraphs(snapshot: Snapshot) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: its paragraph number and the first and last row of that paragraph; computed once per snapshot."""
    with _lock:
        found: tuple[np.ndarray, np.ndarray, np.ndarray] | None = getattr(snapshot, _ATTR, None)
        if found is None:
            n = len(snapshot)
            breaks = np.ones(n, dtype=bool)
            if n > 1:
                sources = np.asarray(snapshot.sources, dtype=object)
                gap = snapshot.starts[1:] - snapshot.ends[:-1]
                breaks[1:] = (sources[1:] != sources[:-1]) | (gap >= 2) | (gap < 0)
            ids = np.cumsum(breaks) - 1
            heads = np.flatnonzero(breaks)
            tails = np.append(heads[1:] - 1, n - 1)
            found = (ids, heads[ids], tails[ids])
            setattr(snapshot, _ATTR, found)
        return found


def paragraph_ids(snapshot: Snapshot) -> np.ndarray:
    """A paragraph number per row (rows of one paragraph are adjacent)."""
    return _paragraphs(snapshot)[0]


def paragraph_windows(snapshot: Snapshot, rows: np.ndarray, radius: int = MAX_RADIUS) -> tuple[np.ndarray, np.ndarray]:
    """First and last row (inclusive) of each row's paragraph within ``radius`` sentences of it."""
    _, first, last = _paragraphs(snapshot)
    return np.maximum(first[rows], rows - radius), np.minimum(last[rows], rows + radius)


def term_rows(snapshot: Snapshot, term: str) -> np.ndarray:
    """Sorted rows whose sentence contains the (already tokenized) term, read from the BM25 index."""
    index = snapshot.lexical
    col = index._vocab.get(term)  # noqa: SLF001 (the BM25 matrix is the cheapest term → rows map we have)
    if col is None:
        return np.zeros(0, dtype=np.int64)
    scores = index._bm25.scores  # noqa: SLF001
    lo, hi = int(scores["indptr"][col]), int(scores["indptr"][col + 1])
    return np.asarray(scores["indices"][lo:hi])
