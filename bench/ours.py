"""citechat measured in-process: ingest vs. the raw encoder, warm ask latency, citation quality."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import patch

import torch

from bench.citations import Cited, mean, score_seed, score_squad
from bench.corpus import Question
from bench.measure import cpu_times, dir_mb, load_average, percentiles, steal_share
from bench.standin import StandInEmbeddings
from rag import Pipeline, Settings
from rag.index.embeddings import load_model
from rag.ingest.loaders import find_files, load_document
from rag.ingest.splitting import split_document


def settings_for(index_dir: Path, chroma_url: str | None = None) -> Settings:
    """Settings of a benchmark index (no LLM, no question-vector cache, defaults otherwise)."""
    # Questions repeat (warm-up, HTTP levels cycling through the set): every ask must embed its question.
    return Settings(index_dir=index_dir, chroma_url=chroma_url, collection="bench", llm_base_url=None,
                    llm_model=None, ollama_model=None, question_cache=0)


def _real_texts(corpus: Path) -> set[str]:
    """Sentences of the seed and SQuAD articles (everything but the synthetic ``news/`` folder)."""
    texts: set[str] = set()
    for path, source in find_files([corpus]):
        if not source.startswith("news/"):
            texts.update(s.text for s in split_document(load_document(path, source, 10**8)))
    return texts


def ingest_run(corpus: Path, index_dir: Path, batch_size: int, reference: bool = True,
               stand_in: bool = False) -> dict[str, object]:
    """Ingest ``corpus`` into a fresh index, then encode the same sentences with the bare model: the ratio.

    With ``stand_in`` synthetic filler gets stand-in vectors (``bench.standin``): for latency and memory at a
    size the shared machine cannot embed in time; such a run measures no throughput. The result is also written
    to ``index_dir/bench-ingest.json`` so a later run can reuse the index.
    """
    shutil.rmtree(index_dir, ignore_errors=True)
    if stand_in:
        real = _real_texts(corpus)
        embedder = StandInEmbeddings(real)
        # Only the ingest's encoder is replaced; questions keep the real one.
        with patch("rag.ingest.sync.SentenceEmbeddings", SimpleNamespace(from_settings=lambda *_: embedder)):
            started = time.perf_counter()
            report = Pipeline(settings_for(index_dir)).ingest([corpus])
            result = {"sentences": report.total_sentences, "files": report.added, "vectors": "stand-in",
                      "real_vectors": embedder.real_encoded, "ingest_s": round(time.perf_counter() - started, 2),
                      "index_mb": dir_mb(index_dir), "load": load_average(),
                      "measured": datetime.now(UTC).isoformat(timespec="seconds")}
        (index_dir / "bench-ingest.json").write_text(json.dumps(result), encoding="utf-8")
        return result
    model = load_model()
    model.encode(["warm up the model"] * 8)
    pipeline = Pipeline(settings_for(index_dir))
    load_before = load_average()
    started, cpu = time.perf_counter(), time.process_time()
    report = pipeline.ingest([corpus])
    ingest_s, ingest_cpu = time.perf_counter() - started, time.process_time() - cpu
    texts = list(pipeline.snapshot().texts)
    encode_s = encode_cpu = ours_s = 0.0
    if reference:
        torch.set_num_threads(pipeline.embedder.bulk_threads)  # what the ingest's bulk encodes used
        started, cpu = time.perf_counter(), time.process_time()
        model.encode(texts, batch_size=batch_size)
        encode_s, encode_cpu = time.perf_counter() - started, time.process_time() - cpu
        # The encoder the ingest actually runs (ONNX by default), alone: what the ingest adds on top of it.
        started = time.perf_counter()
        pipeline.embedder.encode(texts)
        ours_s = time.perf_counter() - started
    n = report.total_sentences
    started = time.perf_counter()
    again = pipeline.ingest([corpus])
    resync_s = time.perf_counter() - started
    result = {"sentences": n, "files": report.added, "ingest_s": round(ingest_s, 2),
              "ingest_per_s": round(n / ingest_s, 1), "encode_s": round(encode_s, 2),
              "encode_per_s": round(len(texts) / encode_s, 1) if encode_s else None,
              "ratio": round(encode_s / ingest_s, 3) if encode_s else None,
              "encoder": pipeline.embedder.backend, "batch_size": pipeline.embedder.batch_size,
              "own_encode_per_s": round(len(texts) / ours_s, 1) if ours_s else None,
              "own_ratio": round(ours_s / ingest_s, 3) if ours_s else None,
              # CPU seconds (all threads of this process): what the work costs, whatever else the machine runs.
              "ingest_cpu_s": round(ingest_cpu, 2), "encode_cpu_s": round(encode_cpu, 2),
              "cpu_ratio": round(encode_cpu / ingest_cpu, 3) if encode_cpu else None,
              "unchanged_resync_s": round(resync_s, 2), "resync_unchanged_files": again.unchanged,
              "index_mb": dir_mb(index_dir), "load": [load_before, load_average()],
              "measured": datetime.now(UTC).isoformat(timespec="seconds")}
    (index_dir / "bench-ingest.json").write_text(json.dumps(result), encoding="utf-8")
    return result


def _cited(answer) -> list[Cited]:  # type: ignore[no-untyped-def]
    return [Cited(c.source, c.start, c.end, c.text) for c in answer.citations]


def latency_run(index_dir: Path, questions: list[Question], warmup: int = 10) -> dict[str, object]:
    """Warm ``Pipeline.ask`` latency over the questions (retrieval + extractive answer, no LLM)."""
    pipeline = Pipeline(settings_for(index_dir))
    pipeline.warm_up()
    for q in questions[:warmup]:
        pipeline.ask(q.question)
    samples, cpu_samples, stages = [], [], {"retrieve": [], "answer": []}
    load_before, cpu_before = load_average(), cpu_times()
    for q in questions:
        started, cpu = time.perf_counter(), time.process_time()
        answer = pipeline.ask(q.question)
        samples.append((time.perf_counter() - started) * 1000)
        cpu_samples.append((time.process_time() - cpu) * 1000)
        for stage in stages:
            stages[stage].append(answer.timings_ms.get(stage, 0.0))
    return {"sentences": len(pipeline.snapshot()), **percentiles(samples),
            "stage_p50": {k: percentiles(v).get("p50") for k, v in stages.items()},
            "cpu_ms": percentiles(cpu_samples),
            "load": [load_before, load_average()], "steal": steal_share(cpu_before, cpu_times())}


def quality_run(index_dir: Path, corpus: Path, squad: list[Question], seed: list[Question]) -> dict[str, object]:
    """Citation quality on SQuAD questions (whose articles are in the corpus) and the seed set."""
    pipeline = Pipeline(settings_for(index_dir))
    rows = [score_squad(q, _cited(pipeline.ask(q.question)), corpus) for q in squad]
    seed_hits = [score_seed(q, _cited(pipeline.ask(q.question))) for q in seed]
    return {"squad_questions": len(rows), "hit1": mean(rows, "hit1"), "precision1": mean(rows, "precision1"),
            "precision_all": mean(rows, "precision_all"), "chars1": mean(rows, "chars1"),
            "seed_questions": len(seed_hits), "seed_hit1": round(sum(seed_hits) / max(1, len(seed_hits)), 4)}


def seed_hit1(index_dir: Path, seed_corpus: Path, seed: list[Question]) -> float:
    """Seed-set hit@1 on an index of the seed article alone: the quick check that speed work kept quality."""
    shutil.rmtree(index_dir, ignore_errors=True)
    pipeline = Pipeline(settings_for(index_dir))
    pipeline.ingest([seed_corpus])
    hits = [score_seed(q, _cited(pipeline.ask(q.question))) for q in seed]
    return round(sum(hits) / max(1, len(hits)), 4)
