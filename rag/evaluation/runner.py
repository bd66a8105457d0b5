"""Run an evaluation set through a ``Pipeline``: ingest if needed, batch-embed questions, answer, score, write."""

from __future__ import annotations

import csv
import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import IndexNotReadyError, InvalidQuestionError
from rag.evaluation.datasets import EvalDataset, EvalQuestion
from rag.evaluation.evidence import locate_evidence
from rag.evaluation.scoring import QuestionResult, score_question, summarize
from rag.pipeline import Pipeline
from rag.records import IngestReport

# (questions done, total, pass rate so far)
ProgressFn = Callable[[int, int, float], None]


@dataclass
class EvalRun:
    """Everything one run produced: per-question results, the summary, and notes worth showing."""

    results: list[QuestionResult]
    summary: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    ingest: IngestReport | None = None


class _CpuClock:
    """CPU seconds (all threads of this process) since the previous lap."""

    def __init__(self) -> None:
        self.last = time.process_time()

    def lap(self) -> float:
        now = time.process_time()
        spent, self.last = now - self.last, now
        return round(spent, 2)


def prepare_index(pipeline: Pipeline, dataset: EvalDataset, corpus: Sequence[Path] = (),
                  show_progress: bool = False) -> IngestReport | None:
    """Ingest the SQuAD contexts and/or ``corpus`` paths (pruning the rest); None when nothing to ingest."""
    paths = ([dataset.corpus_dir] if dataset.corpus_dir else []) + list(corpus)
    if not paths:
        return None
    return pipeline.ingest(paths, prune=True, show_progress=show_progress)


def run_eval(pipeline: Pipeline, dataset: EvalDataset, k: int | None = None, workers: int = 1,
             limit: int | None = None, corpus: Sequence[Path] = (), on_progress: ProgressFn | None = None,
             show_ingest_progress: bool = False) -> EvalRun:
    """Answer every question of ``dataset`` with ``pipeline`` and score it; the index is prepared first."""
    started, cpu = time.perf_counter(), _CpuClock()
    report = prepare_index(pipeline, dataset, corpus, show_ingest_progress)
    ingest_s, ingest_cpu = time.perf_counter() - started, cpu.lap()
    if len(pipeline.snapshot()) == 0:
        raise IndexNotReadyError(f"the index in {pipeline.settings.index_dir} is empty: pass --corpus or run "
                                 "`rag ingest` first")
    questions = dataset.questions[:limit] if limit else list(dataset.questions)
    warnings = list(dataset.skipped) + dataset.warnings
    if any(q.evidence and not q.evidence_spans for q in questions):
        texts = {s: d.text for s, d in pipeline.store.indexed_documents(with_text=True).items()}
        warnings += locate_evidence(questions, texts)
    k = k or pipeline.settings.top_k
    t_load = time.perf_counter()
    pipeline.warm_up()  # model and snapshot load once, outside the per-question latencies
    load_s, load_cpu = time.perf_counter() - t_load, cpu.lap()

    t0 = time.perf_counter()
    texts_to_embed = list(dict.fromkeys(q.question.strip() for q in questions))
    cache = dict(zip(texts_to_embed, pipeline.embed_questions(texts_to_embed), strict=True))
    embed_s, embed_cpu = time.perf_counter() - t0, cpu.lap()

    t1 = time.perf_counter()
    results = _answer_all(pipeline, questions, cache, k, max(1, workers), on_progress)
    answer_s, answer_cpu = time.perf_counter() - t1, cpu.lap()
    total_s = time.perf_counter() - started
    info = {
        "dataset": dataset.path.name, "format": dataset.format,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "index": str(pipeline.settings.index_dir), "collection": pipeline.settings.collection,
        "settings": {"top_k": pipeline.settings.top_k, "candidates": pipeline.settings.candidates,
                     "abstain_threshold": pipeline.abstain_threshold,
                     "answerer": "llm" if pipeline.chat_model is not None else "extractive"},
        "workers": max(1, workers), "skipped": dataset.skipped, "warnings": warnings[len(dataset.skipped):],
        "timing": {"ingest_s": round(ingest_s, 2), "load_s": round(load_s, 2), "embed_questions_s": round(embed_s, 2),
                   "answer_s": round(answer_s, 2), "total_s": round(total_s, 2),
                   "questions_per_s": round(len(results) / answer_s, 2) if answer_s else None,
                   # CPU seconds of this process per phase: on a shared machine wall time overstates the cost
                   "cpu_s": {"ingest": ingest_cpu, "load": load_cpu, "embed_questions": embed_cpu,
                             "answer": answer_cpu}},
        "ingest": report.model_dump() if report else None,
    }
    return EvalRun(results, summarize(results, k, info), warnings, report)


def _answer_all(pipeline: Pipeline, questions: list[EvalQuestion], vectors: dict[str, np.ndarray], k: int,
                workers: int, on_progress: ProgressFn | None) -> list[QuestionResult]:
    lock = threading.Lock()
    done = passed = 0

    def one(q: EvalQuestion) -> QuestionResult:
        nonlocal done, passed
        result = _answer_one(pipeline, q, k, vectors.get(q.question.strip()))
        with lock:
            done += 1
            passed += result.passed
            if on_progress is not None:
                on_progress(done, len(questions), passed / done)
        return result

    if workers == 1:
        return [one(q) for q in questions]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rag-eval") as pool:
        return list(pool.map(one, questions))


def _answer_one(pipeline: Pipeline, q: EvalQuestion, k: int, vector: np.ndarray | None) -> QuestionResult:
    started = time.perf_counter()
    try:
        answer = pipeline.ask(q.question, k=k, question_vector=vector)
    except InvalidQuestionError as exc:  # a bad question is a failed row, not a failed run
        return score_question(q, None, (time.perf_counter() - started) * 1000, error=str(exc))
    return score_question(q, answer, (time.perf_counter() - started) * 1000)


# -- writing ---------------------------------------------------------------------------------------------------
def write_results_jsonl(path: Path, results: Sequence[QuestionResult]) -> None:
    """One JSON object per question (the ``rag ask --json`` fields plus gold data and scores)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for r in results:
            out.write(json.dumps(r.model_dump(), ensure_ascii=False) + "\n")


CSV_COLUMNS = ["id", "question", "answer", "short_answer", "abstained", "passed", "em", "f1", "contains_gold",
               "evidence_rank", "citation_precision", "citation_recall", "latency_ms", "type", "source",
               "answerable", "answers", "citations", "error"]


def write_results_csv(path: Path, results: Sequence[QuestionResult]) -> None:
    """A spreadsheet view: one row per question; gold answers and citations as JSON cells."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, CSV_COLUMNS)
        writer.writeheader()
        for r in results:
            row = r.model_dump()
            row["answers"] = json.dumps(r.answers, ensure_ascii=False)
            row["citations"] = json.dumps([f"{c['source']}[{c['start']}:{c['end']}]" for c in r.citations])
            writer.writerow({c: row.get(c) for c in CSV_COLUMNS})


def write_summary_json(path: Path, summary: dict[str, Any]) -> None:
    """The summary (metrics, breakdowns, per-id outcomes) as indented JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def read_results_jsonl(path: Path) -> list[QuestionResult]:
    """Results written by ``write_results_jsonl``."""
    return [QuestionResult.model_validate_json(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]
