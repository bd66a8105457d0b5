"""Pure scoring functions: SQuAD answer metrics, citation hits and ranks, abstention, latency, breakdowns."""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from rag.evaluation.datasets import AnswerStart, Span

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_ASCII_PUNCT = set(string.punctuation)


# -- answers ---------------------------------------------------------------------------------------------------
def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lowercase, drop ASCII punctuation, drop a/an/the, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _ASCII_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when the normalised strings are equal."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    """Harmonic mean of token precision and recall after normalisation (SQuAD 2.0: empty vs empty is 1)."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def _loose(text: str) -> str:
    # Also drops Unicode punctuation (curly quotes, dashes) that the full answer text wraps around the span.
    spaced = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return normalize_answer(spaced)


def contains_gold(answer: str, gold: str) -> float:
    """1.0 when the normalised gold appears in the normalised answer on token boundaries."""
    needle = _loose(gold)
    return float(bool(needle) and f" {needle} " in f" {_loose(answer)} ")


def best_over_golds(metric: Callable[[str, str], float], prediction: str, golds: Sequence[str]) -> float:
    """The metric against the closest gold answer (SQuAD takes the max over references)."""
    return max((metric(prediction, g) for g in golds), default=0.0)


# -- citations -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cited:
    """The part of a citation the metrics look at."""

    source: str
    start: int
    end: int
    text: str = ""


def _fold(text: str) -> str:
    return " ".join(text.replace("\u00a0", " ").lower().split())


def citation_hits(cited: Cited, starts: Sequence[AnswerStart], spans: Sequence[Span],
                  evidence: Sequence[str] = ()) -> bool:
    """Whether a cited sentence "contains the evidence".

    With answer starts (SQuAD): the sentence contains an answer start of the question's own paragraph (ReQA).
    With located evidence spans: the sentence contains a whole span, or lies inside one (multi-sentence evidence).
    Otherwise: the sentence text contains an evidence string (case and space folded).
    """
    if starts:
        return any(a.source == cited.source and cited.start <= a.offset < cited.end for a in starts)
    if spans:
        return any(s.source == cited.source and ((cited.start <= s.start and s.end <= cited.end)
                                                 or (s.start <= cited.start and cited.end <= s.end))
                   for s in spans)
    return any(_fold(e) in _fold(cited.text) for e in evidence if e.strip())


def citation_supports(cited: Cited, starts: Sequence[AnswerStart], spans: Sequence[Span],
                      evidence: Sequence[str] = ()) -> bool:
    """Whether a cited sentence supports the answer: it overlaps the evidence (a hit, for SQuAD)."""
    if starts or not spans:
        return citation_hits(cited, starts, spans, evidence)
    return any(s.source == cited.source and cited.start < s.end and s.start < cited.end for s in spans)


def first_hit_rank(citations: Sequence[Cited], starts: Sequence[AnswerStart], spans: Sequence[Span],
                   evidence: Sequence[str] = ()) -> int | None:
    """1-based rank of the first citation that contains the evidence, or None."""
    for rank, cited in enumerate(citations, 1):
        if citation_hits(cited, starts, spans, evidence):
            return rank
    return None


def citation_precision(citations: Sequence[Cited], starts: Sequence[AnswerStart], spans: Sequence[Span],
                       evidence: Sequence[str] = ()) -> float | None:
    """Share of cited sentences that support the answer; None without citations."""
    if not citations:
        return None
    return sum(citation_supports(c, starts, spans, evidence) for c in citations) / len(citations)


def citation_recall(citations: Sequence[Cited], spans: Sequence[Span], evidence: Sequence[str] = ()) -> float | None:
    """Share of evidence items (strings, or SQuAD answer sentences) overlapped by some citation; None without any."""
    if spans:
        items = {s.item for s in spans}
        covered = {s.item for s in spans for c in citations
                   if s.source == c.source and c.start < s.end and s.start < c.end}
        return len(covered) / len(items)
    texts = [e for e in evidence if e.strip()]
    if not texts:
        return None
    return sum(any(_fold(e) in _fold(c.text) for c in citations) for e in texts) / len(texts)


def reciprocal_rank(rank: int | None) -> float:
    """1/rank, or 0 for a miss."""
    return 1.0 / rank if rank else 0.0


# -- abstention ------------------------------------------------------------------------------------------------
def abstention_scores(abstained: Sequence[bool], answerable: Sequence[bool]) -> dict[str, float | None]:
    """Abstaining is the positive class on unanswerable questions; plus the false-abstention rate."""
    tp = sum(a and not y for a, y in zip(abstained, answerable, strict=True))
    fp = sum(a and y for a, y in zip(abstained, answerable, strict=True))
    fn = sum(not a and not y for a, y in zip(abstained, answerable, strict=True))
    n_answerable = sum(answerable)
    # Without unanswerable questions every abstention is false: that is the false-abstention rate, not a precision.
    precision = tp / (tp + fp) if tp + fp and tp + fn else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = (2 * precision * recall / (precision + recall) if precision and recall else
          (0.0 if precision is not None and recall is not None else None))
    return {"precision": precision, "recall": recall, "f1": f1,
            "false_abstention_rate": fp / n_answerable if n_answerable else None,
            "abstained": float(sum(abstained)), "unanswerable": float(len(answerable) - n_answerable)}


# -- latency and aggregation -----------------------------------------------------------------------------------
def latency_stats(latencies_ms: Sequence[float]) -> dict[str, float | None]:
    """p50/p95 (linear interpolation), max, mean and total of per-question latencies in ms."""
    if not latencies_ms:
        return {"p50_ms": None, "p95_ms": None, "max_ms": None, "mean_ms": None, "total_ms": 0.0}
    values = np.asarray(latencies_ms, dtype=float)
    return {"p50_ms": round(float(np.percentile(values, 50)), 2),
            "p95_ms": round(float(np.percentile(values, 95)), 2),
            "max_ms": round(float(values.max()), 2), "mean_ms": round(float(values.mean()), 2),
            "total_ms": round(float(values.sum()), 2)}


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are not None; None when there are none."""
    kept = [v for v in values if v is not None]
    return round(sum(kept) / len(kept), 4) if kept else None
