"""Stand-in vectors for synthetic filler, so a 100k-sentence index can be built on a busy 2-core machine.

Encoding 100k sentences takes ~10 minutes on an idle 2-core machine but hours when the cores are shared. With
``--stand-in``, SQuAD and seed sentences (everything the questions are about) and a pool of synthetic
sentences get real MiniLM vectors; every other synthetic sentence gets a pool vector plus small Gaussian noise,
renormalised: the same dimension, norm and clustering as real ones (cosine ~0.8 to its pool vector), which is
what index size, memory and HNSW search time depend on. Question vectors are always real. Results of such runs
are labelled ``"vectors": "stand-in"`` and are not used for ingest throughput.
"""

from __future__ import annotations

import zlib

import numpy as np

from rag.index.embeddings import QUERY_TEXTS, SentenceEmbeddings

NOISE = 0.04  # per dimension; ‖noise‖ ≈ 0.78 for 384 dimensions
# Real vectors by text, shared by every stand-in run of the process (the 10k and 100k corpora share SQuAD).
_REAL: dict[str, np.ndarray] = {}


class StandInEmbeddings(SentenceEmbeddings):
    """Real vectors for ``real_texts`` and the first ``pool_size`` other texts; noisy pool vectors for the rest."""

    def __init__(self, real_texts: set[str], pool_size: int = 1000, batch_size: int = 256, bulk_threads: int = 0
                 ) -> None:
        super().__init__(batch_size, bulk_threads)
        self.real_texts = real_texts
        self.pool_size = pool_size
        self.pool: list[np.ndarray] = []
        self.real_encoded = 0

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Real vectors for small batches, real texts and the pool; stand-ins for the rest."""
        if len(texts) <= QUERY_TEXTS:
            return super().encode(texts, show_progress)
        real = [i for i, t in enumerate(texts) if t in self.real_texts]
        others = [i for i, t in enumerate(texts) if t not in self.real_texts]
        pooled = others[: max(0, self.pool_size - len(self.pool))]
        need = real + pooled
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        todo = list(dict.fromkeys(texts[i] for i in need if texts[i] not in _REAL))
        if todo:
            for text, vector in zip(todo, super().encode(todo, show_progress), strict=True):
                _REAL[text] = vector
            self.real_encoded += len(todo)
        for i in need:
            out[i] = _REAL[texts[i]]
        self.pool.extend(out[i] for i in pooled)
        for i in others[len(pooled):]:
            seed = zlib.crc32(texts[i].encode("utf-8"))
            rng = np.random.default_rng(seed)
            v = self.pool[seed % len(self.pool)] + rng.normal(0.0, NOISE, self.dimension).astype(np.float32)
            out[i] = v / np.linalg.norm(v)
        return out
