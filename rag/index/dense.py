"""Dense search over a snapshot: the rows nearest to a question vector, in process, without a Chroma call.

Chroma stays the store of record; this index is derived from the snapshot's vectors like the BM25 index is, and
saved with it. Small snapshots are scanned exactly. Above ``EXACT_MAX_ROWS`` an HNSW graph (faiss) over 8-bit
copies of the vectors finds the candidates and the snapshot's own float vectors score them exactly.

Measured at 100k sentences on 2 cores (docs/benchmarks.md): 0.2 ms a question with recall@50 0.97 against an exact
scan, where Chroma's query took 3 ms and an exact scan 22 ms; the graph takes ~25 s to build and 65 MB on disk.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

# Up to 5k rows an exact scan takes ~0.6 ms and needs no build; the graph answers 10k rows in ~0.15 ms.
EXACT_MAX_ROWS = 5_000
# OpenBLAS runs a matrix-vector product of 1,000 x 384 on the calling thread, but splits a larger one over every
# core and those threads then spin for milliseconds: at 10k rows that was 22 ms of CPU for a 10 ms ask.
_SCAN_BLOCK = 1_000
# 32 links a node and a search breadth of 100 gave recall@50 0.97 at 100k SQuAD sentences (M=16: 0.966, ef=160:
# 0.98 at twice the time); the candidates are re-scored exactly, so only recall matters here.
_LINKS, _BUILD_BREADTH, _SEARCH_BREADTH = 32, 80, 100
# Removed rows stay in the graph as tombstones (HNSW cannot delete); past this share it is rebuilt.
_MAX_DEAD_SHARE = 0.25
_GRAPH_FILE, _ROWS_FILE = "dense.faiss", "dense_rows.npy"


class DenseIndex:
    """Nearest rows of ``vectors`` (unit length, row-aligned with the snapshot) by cosine similarity."""

    def __init__(self, vectors: np.ndarray, graph: faiss.Index | None = None, rows: np.ndarray | None = None) -> None:
        self.vectors = vectors
        self.graph = graph
        # rows[label]: the snapshot row of the graph's vector ``label``, -1 once its sentence is gone.
        self.rows = rows if rows is not None else np.zeros(0, np.int64)
        dead = np.flatnonzero(self.rows < 0)
        self._params = None
        if graph is not None:
            # Kept on self: the search parameters point at the selector, which must outlive them.
            self._dead = faiss.IDSelectorBatch(dead.astype(np.int64)) if len(dead) else None
            self._params = faiss.SearchParametersHNSW(efSearch=_SEARCH_BREADTH,
                                                      sel=faiss.IDSelectorNot(self._dead) if self._dead else None)

    @classmethod
    def build(cls, vectors: np.ndarray) -> DenseIndex:
        """An exact index for a small snapshot, else a new graph over every row."""
        if len(vectors) <= EXACT_MAX_ROWS:
            return cls(vectors)
        graph = _new_graph(vectors.shape[1])
        data = np.ascontiguousarray(vectors, dtype=np.float32)
        graph.train(data)
        graph.add(data)
        return cls(vectors, graph, np.arange(len(vectors), dtype=np.int64))

    def updated(self, vectors: np.ndarray, moved: np.ndarray, added: np.ndarray) -> DenseIndex:
        """The index of the next snapshot, whose rows are ``vectors``.

        ``moved[r]`` is the new row of this snapshot's row ``r`` (-1: removed), ``added`` the new rows of the
        sentences that were not in it. A copy of the graph gets only the added vectors: adding one article to the
        100k index costs a 0.35 s copy of its 65 MB, not a ~25 s rebuild.
        """
        if self.graph is None or len(vectors) <= EXACT_MAX_ROWS:
            return DenseIndex.build(vectors)
        rows = np.where(self.rows >= 0, moved[np.maximum(self.rows, 0)], -1)
        dead = int((rows < 0).sum())
        if dead > _MAX_DEAD_SHARE * (len(rows) + len(added)):
            return DenseIndex.build(vectors)
        graph = faiss.deserialize_index(faiss.serialize_index(self.graph))  # the old snapshot keeps serving
        if len(added):
            graph.add(np.ascontiguousarray(vectors[added], dtype=np.float32))
        return DenseIndex(vectors, graph, np.concatenate([rows, added.astype(np.int64)]))

    def search(self, query: np.ndarray, n: int) -> list[tuple[int, float]]:
        """The ``n`` nearest rows as (row, cosine similarity), best first."""
        if n <= 0 or len(self.vectors) == 0:
            return []
        if self.graph is None:
            sims = np.concatenate([np.asarray(self.vectors[i:i + _SCAN_BLOCK] @ query, dtype=np.float64)
                                   for i in range(0, len(self.vectors), _SCAN_BLOCK)])
            top = np.argpartition(-sims, n - 1)[:n] if n < len(sims) else np.arange(len(sims))
            sims = sims[top]
        else:
            # The graph ranks 8-bit copies, so it returns all it visited (the same walk as for ``n``) and the float
            # vectors pick the best ``n`` of those with their exact similarity.
            wanted = max(n, _SEARCH_BREADTH)
            _, labels = self.graph.search(np.asarray(query, dtype=np.float32).reshape(1, -1), wanted,
                                          params=self._params)
            top = self.rows[labels[0][labels[0] >= 0]]
            sims = np.asarray(self.vectors[top] @ query, dtype=np.float64)
        order = np.argsort(-sims, kind="stable")[:n]
        return list(zip(top[order].tolist(), sims[order].tolist(), strict=True))

    def save(self, folder: Path) -> None:
        """Write the graph (if any) into a snapshot folder."""
        if self.graph is not None:
            faiss.write_index(self.graph, str(folder / _GRAPH_FILE))
            np.save(folder / _ROWS_FILE, self.rows)

    @classmethod
    def load(cls, folder: Path, vectors: np.ndarray) -> DenseIndex:
        """Read what ``save`` wrote; the graph is memory-mapped, so workers on one machine share its pages."""
        if not (folder / _GRAPH_FILE).exists():
            if len(vectors) > EXACT_MAX_ROWS:
                raise ValueError("snapshot has no dense graph")
            return cls(vectors)
        graph = faiss.read_index(str(folder / _GRAPH_FILE), faiss.IO_FLAG_MMAP)
        rows = np.load(folder / _ROWS_FILE)
        if graph.ntotal != len(rows) or int(rows.max(initial=-1)) >= len(vectors):
            raise ValueError("dense graph does not match the snapshot")
        return cls(vectors, graph, rows)


def _new_graph(dim: int) -> faiss.Index:
    graph = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, _LINKS, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = _BUILD_BREADTH
    return graph
