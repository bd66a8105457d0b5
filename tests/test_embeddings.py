"""The ONNX encoder gives sentence-transformers' vectors, exports once, falls back to torch, keeps torch out;
questions get the int8 graph's close copies, documents never do."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.index import onnx_model
from rag.index.embeddings import QUERY_TEXTS, SentenceEmbeddings, load_model

from .conftest import CORPUS, SQUAD_SLICE

pytestmark = pytest.mark.slow  # model loads, ONNX exports and subprocesses: seconds each


def _texts() -> list[str]:
    """Questions and passages of every length, from the seed article and SQuAD, plus awkward strings."""
    data = json.loads(SQUAD_SLICE.read_text(encoding="utf-8"))["data"][:2]
    contexts = [p["context"] for a in data for p in a["paragraphs"]][:40]
    questions = [qa["question"] for a in data for p in a["paragraphs"] for qa in p["qas"]][:40]
    seed = [line for f in CORPUS.iterdir() for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    return questions + contexts + seed + ["", " ", "x", "\t padded \n", "é" * 600, "数字 2011 — ünïcödé"]


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return load_model().encode(_texts(), normalize_embeddings=True, convert_to_numpy=True)


def test_onnx_vectors_equal_sentence_transformers_for_bulk_and_small_batches(reference: np.ndarray) -> None:
    texts = _texts()
    onnx = SentenceEmbeddings(batch_size=16, backend="onnx")
    bulk = onnx.encode(texts)
    assert bulk.dtype == np.float32 and bulk.shape == reference.shape
    assert (bulk * reference).sum(axis=1).min() > 0.99999
    # A document of a few sentences takes the one-thread path, still with the float model.
    assert np.allclose(onnx.encode(texts[:QUERY_TEXTS]), reference[:QUERY_TEXTS], atol=1e-5)
    assert np.allclose(onnx.encode(texts[:1])[0], reference[0], atol=1e-5)
    assert np.allclose(np.linalg.norm(bulk, axis=1), 1.0, atol=1e-5)


def test_questions_use_the_int8_graph_close_to_the_float_vectors(reference: np.ndarray) -> None:
    texts = _texts()
    int8 = SentenceEmbeddings(question_cache=0).encode_queries(texts)
    cosine = (int8 * reference).sum(axis=1)
    assert not np.allclose(int8, reference, atol=1e-4)  # really the quantised graph
    assert cosine.min() > 0.97 and cosine.mean() > 0.99
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    exact = SentenceEmbeddings(question_cache=0, question_precision="float32").encode_queries(texts[:QUERY_TEXTS])
    assert np.allclose(exact, reference[:QUERY_TEXTS], atol=1e-5)
    assert np.allclose(SentenceEmbeddings(backend="torch").encode_queries(texts[:2]), reference[:2], atol=1e-5)


def test_int8_graph_is_made_once_and_a_failure_falls_back_to_float(tmp_path: Path, reference: np.ndarray,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    path = onnx_model.cached_int8_graph(tmp_path)
    float_graph = onnx_model.cached_graph(tmp_path)
    # int8 matrices, the float embedding table (~47 MB) kept
    assert path.name.endswith("-int8.onnx") and path.stat().st_size < float_graph.stat().st_size * 0.7
    stamp = path.stat().st_mtime_ns
    assert onnx_model.cached_int8_graph(tmp_path) == path and path.stat().st_mtime_ns == stamp

    def broken(graph: Path, target: Path, gather: bool = False) -> None:
        target.write_bytes(b"not a graph")
        raise RuntimeError("quantiser failed")

    monkeypatch.setattr(onnx_model, "quantise_question_graph", broken)
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(onnx_model.cached_graph(tmp_path), other)  # the float graph is fine, only quantising fails
    with caplog.at_level("WARNING"):
        vectors = SentenceEmbeddings(cache_dir=other, question_cache=0).encode_queries(_texts()[:3])
    assert "int8 question encoder unavailable" in caplog.text
    assert np.allclose(vectors, reference[:3], atol=1e-5)  # the float graph answered
    # nothing half-written left to be picked up later
    assert not list(other.glob("*-int8.onnx")) and not list(other.glob("*.partial"))


def test_torch_backend_question_fast_path_equals_encode(reference: np.ndarray) -> None:
    torch_backend = SentenceEmbeddings(backend="torch")
    texts = _texts()
    assert np.allclose(torch_backend.encode(texts[:3]), reference[:3], atol=1e-5)
    assert np.allclose(torch_backend.encode(texts[:20]), reference[:20], atol=1e-5)


def test_export_happens_once_per_cache_and_is_reused(tmp_path: Path) -> None:
    path = onnx_model.cached_graph(tmp_path)
    assert path.parent == tmp_path and path.suffix == ".onnx"
    stamp = path.stat().st_mtime_ns
    assert onnx_model.cached_graph(tmp_path) == path and path.stat().st_mtime_ns == stamp
    assert not list(tmp_path.glob("*.partial"))  # no half-written file left next to it


def test_a_reinstalled_model_keeps_its_export_and_a_changed_one_gets_a_new_one(tmp_path: Path) -> None:
    """Reinstalling the package (new file times) must not export again; different weights must."""
    original = onnx_model.model_dir()
    copy = tmp_path / "model"
    copy.mkdir()
    for name in ("config.json", "tokenizer.json", "sentence_bert_config.json", "modules.json"):
        shutil.copy(original / name, copy / name)
    size = (original / "model.safetensors").stat().st_size
    with open(copy / "model.safetensors", "wb") as weights:  # sparse: same size, new modification time
        weights.truncate(size)
    os.utime(copy / "model.safetensors", (1, 1))
    assert onnx_model.fingerprint(copy) == onnx_model.fingerprint(original)
    with open(copy / "model.safetensors", "ab") as weights:
        weights.write(b"\0")
    assert onnx_model.fingerprint(copy) != onnx_model.fingerprint(original)


def test_unusable_cache_falls_back_to_torch_with_the_same_vectors(tmp_path: Path, reference: np.ndarray,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be", encoding="utf-8")
    embedder = SentenceEmbeddings(backend="onnx", cache_dir=blocked / "cache")
    with caplog.at_level("WARNING"):
        vectors = embedder.encode(_texts()[:20])
    assert np.allclose(vectors, reference[:20], atol=1e-5)
    assert "ONNX encoder unavailable" in caplog.text
    assert embedder.dimension == reference.shape[1]
    blocked.unlink()  # the export would now succeed, but this process keeps the fallback it chose
    assert np.allclose(embedder.encode(_texts()[:3]), reference[:3], atol=1e-5)
    assert not (blocked / "cache").exists()


def test_answering_from_an_index_never_imports_torch(tmp_path: Path) -> None:
    """Cold start: a process that only answers loads ONNX Runtime, not torch (~8 s and ~300 MB saved)."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from rag import Pipeline\n"
        "from rag import Settings\n"
        "from tests.conftest import CORPUS\n"
        f"settings = Settings(index_dir=Path({str(tmp_path)!r}), corpus_dir=CORPUS, llm_base_url=None)\n"
        "pipeline = Pipeline(settings)\n"
        "if sys.argv[1] == 'ingest':\n"
        "    pipeline.ingest([CORPUS])\n"
        "else:\n"
        "    answer = pipeline.ask('When was the Taraz attack?')\n"
        "    assert answer.citations, answer\n"
        "    print('torch' in sys.modules, 'sentence_transformers' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, "-c", script, "ingest"], check=True, cwd=root, env=env, timeout=300)
    out = subprocess.run([sys.executable, "-c", script, "ask"], check=True, cwd=root, env=env, timeout=300,
                         capture_output=True, text=True).stdout
    assert out.split() == ["False", "False"]


def test_a_repeated_question_is_embedded_once(reference: np.ndarray) -> None:
    embedder = SentenceEmbeddings(question_cache=4)
    assert embedder.recent is not None
    question = _texts()[5]
    first = embedder.encode_queries([question])
    again = embedder.encode_queries([question])
    assert embedder.recent.cache_info().hits == 1 and embedder.recent.cache_info().misses == 1
    assert np.array_equal(first, again) and float(first[0] @ reference[5]) > 0.97
    with pytest.raises(ValueError):  # shared between callers, so nobody may change it in place
        again[0][0] = 1.0
    off = SentenceEmbeddings(question_cache=0)
    assert off.recent is None and np.allclose(off.encode_queries([question]), first, atol=1e-6)
