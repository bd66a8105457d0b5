"""Score one answered question (``QuestionResult``) and aggregate a run into a summary dict."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from rag.answer.question_types import question_word
from rag.evaluation.datasets import EvalQuestion
from rag.evaluation.metrics import (
    Cited,
    abstention_scores,
    best_over_golds,
    citation_precision,
    citation_recall,
    contains_gold,
    exact_match,
    first_hit_rank,
    latency_stats,
    mean,
    reciprocal_rank,
    token_f1,
)
from rag.evaluation.registry import LOWER_IS_BETTER
from rag.records import Answer


class QuestionResult(BaseModel):
    """One line of ``--out``: the answer as ``rag ask --json`` gives it, the gold data and the scores."""

    id: str
    question: str
    answer: str
    short_answer: str | None = None
    abstained: bool
    citations: list[dict[str, Any]] = Field(default_factory=list)
    latency_ms: float
    confidence: float = 0.0
    answerer: str = ""
    error: str | None = None
    answers: list[str] = Field(default_factory=list, description="Gold answers.")
    answerable: bool = True
    type: str = "other"
    source: str | None = None
    em: float | None = None
    f1: float | None = None
    contains_gold: float | None = None
    evidence_rank: int | None = None
    has_evidence: bool = False
    citation_precision: float | None = None
    citation_recall: float | None = None
    passed: bool = False


def score_question(q: EvalQuestion, answer: Answer | None, latency_ms: float, error: str | None = None
                   ) -> QuestionResult:
    """Compare one answer with the question's gold answers and evidence; ``None`` with ``error`` when asking failed."""
    citations = [c.model_dump() for c in answer.citations] if answer else []
    cited = [Cited(c.source, c.start, c.end, c.text) for c in answer.citations] if answer else []
    abstained = answer.abstained if answer else error is not None
    full = answer.answer if answer else ""
    short = (answer.short_answer or None) if answer else None
    has_evidence = q.answerable and bool(q.answer_starts or q.evidence_spans or q.evidence)
    em = f1 = contains = None
    if q.answerable and q.answers:
        scored = "" if abstained or error else (short or full)
        em = best_over_golds(exact_match, scored, q.answers)
        f1 = best_over_golds(token_f1, scored, q.answers)
        contains = 0.0 if abstained or error else best_over_golds(contains_gold, full, q.answers)
    rank = precision = recall = None
    if has_evidence:
        rank = first_hit_rank(cited, q.answer_starts, q.evidence_spans, q.evidence)
        precision = citation_precision(cited, q.answer_starts, q.evidence_spans, q.evidence)
        recall = citation_recall(cited, q.evidence_spans, q.evidence)
    if error:
        passed = False
    elif not q.answerable:
        passed = abstained
    else:
        passed = not abstained and answer_is_right(em, f1, contains, short) and (not has_evidence or rank is not None)
    return QuestionResult(
        id=q.id, question=q.question, answer=full, short_answer=short, abstained=abstained, citations=citations,
        latency_ms=round(latency_ms, 2), confidence=answer.confidence if answer else 0.0,
        answerer=answer.answerer if answer else "", error=error, answers=q.answers, answerable=q.answerable,
        type=question_word(q.question), source=q.source or _cited_source(citations), em=em, f1=f1,
        contains_gold=contains, evidence_rank=rank, has_evidence=has_evidence, citation_precision=precision,
        citation_recall=recall, passed=passed)


# Token F1 from which a short answer counts as right in the pass mark (a partial match such as "in 2011" vs "2011").
PASS_F1 = 0.5


def answer_is_right(em: float | None, f1: float | None, contains: float | None, short: str | None) -> bool:
    """The pass-mark rule: a short answer must match (EM, or F1 ≥ 0.5); a sentence answer must contain a gold."""
    if em is None:  # no gold answers to check against
        return True
    if short:
        return bool(em) or (f1 or 0.0) >= PASS_F1
    return bool(contains)


def _cited_source(citations: list[dict[str, Any]]) -> str | None:
    return str(citations[0]["source"]) if citations else None


def group_scores(results: Sequence[QuestionResult]) -> dict[str, Any]:
    """Answer, citation and pass-rate scores of a group of results (None where the group has no data)."""
    gold = [r for r in results if r.em is not None]
    retrieval = [r for r in results if r.has_evidence]
    return {
        "n": len(results),
        "pass_rate": mean(float(r.passed) for r in results),
        "em": mean(r.em for r in gold),
        "f1": mean(r.f1 for r in gold),
        "contains_gold": mean(r.contains_gold for r in gold),
        "hit@1": mean(float(r.evidence_rank == 1) for r in retrieval),
        "hit@k": mean(float(r.evidence_rank is not None) for r in retrieval),
        "mrr": mean(reciprocal_rank(r.evidence_rank) for r in retrieval),
        "citation_precision": mean(r.citation_precision for r in retrieval),
        "citation_recall": mean(r.citation_recall for r in retrieval),
        "abstained": mean(float(r.abstained) for r in results),
    }


def _breakdown(results: Sequence[QuestionResult], key: Callable[[QuestionResult], str]) -> dict[str, Any]:
    groups: dict[str, list[QuestionResult]] = {}
    for r in results:
        groups.setdefault(key(r), []).append(r)
    return {name: group_scores(rows) for name, rows in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))}


def summarize(results: Sequence[QuestionResult], k: int, info: dict[str, Any] | None = None) -> dict[str, Any]:
    """The summary JSON of a run: headline metrics, sections, breakdowns, rank histogram and per-id outcomes."""
    overall = group_scores(results)
    abstention = abstention_scores([r.abstained for r in results], [r.answerable for r in results])
    latency = latency_stats([r.latency_ms for r in results if r.error is None])
    ranks = Counter(str(r.evidence_rank) if r.evidence_rank else "miss" for r in results if r.has_evidence)
    metrics = {key: overall[key] for key in ("pass_rate", "em", "f1", "contains_gold", "hit@1", "hit@k", "mrr",
                                             "citation_precision", "citation_recall")}
    metrics.update({"abstain_precision": abstention["precision"], "abstain_recall": abstention["recall"],
                    "abstain_f1": abstention["f1"], "false_abstention_rate": abstention["false_abstention_rate"],
                    "latency_p50_ms": latency["p50_ms"], "latency_p95_ms": latency["p95_ms"],
                    "latency_max_ms": latency["max_ms"]})
    answered = [r for r in results if not r.abstained and r.has_evidence]
    return {
        **(info or {}),
        "k": k,
        "questions": len(results),
        "answerable": sum(r.answerable for r in results),
        "unanswerable": sum(not r.answerable for r in results),
        "with_gold_answers": sum(r.em is not None for r in results),
        "with_evidence": sum(r.has_evidence for r in results),
        "errors": sum(r.error is not None for r in results),
        "metrics": metrics,
        "abstention": abstention,
        "latency": latency,
        "answered_retrieval": {"n": len(answered), "hit@1": mean(float(r.evidence_rank == 1) for r in answered),
                               "mrr": mean(reciprocal_rank(r.evidence_rank) for r in answered)},
        "rank_histogram": {key: ranks.get(key, 0) for key in [*map(str, range(1, k + 1)), "miss"]},
        "by_type": _breakdown(results, lambda r: r.type),
        "by_source": _breakdown(results, lambda r: r.source or "(unknown)"),
        "outcomes": {r.id: {"passed": r.passed, "f1": r.f1, "rank": r.evidence_rank, "abstained": r.abstained}
                     for r in results},
    }




def check_gates(summary: dict[str, Any], gates: dict[str, float]) -> list[str]:
    """Failures of ``--fail-under`` gates: higher-is-better metrics must reach the value, others stay at or below."""
    failures = []
    for name, threshold in gates.items():
        value = summary["metrics"].get(name)
        if value is None:
            failures.append(f"{name}: no value in this run (no questions it applies to)")
        elif name in LOWER_IS_BETTER and value > threshold:
            failures.append(f"{name} = {value:g} is above {threshold:g}")
        elif name not in LOWER_IS_BETTER and value < threshold:
            failures.append(f"{name} = {value:g} is below {threshold:g}")
    return failures
