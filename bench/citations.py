"""Citation quality shared by our pipeline and the peer: hit@1 and how much of what is cited is the evidence."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from bench.corpus import Question
from rag.ingest.splitting import sentence_spans


@dataclass(frozen=True)
class Cited:
    """One returned citation: the article, the character span in its text, and the text."""

    source: str
    start: int
    end: int
    text: str


@lru_cache(maxsize=64)
def _article(path: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    text = Path(path).read_text(encoding="utf-8")
    title = text.split("\n", 1)[0].strip()
    return text, tuple(sentence_spans(text, title))


def gold_sentences(question: Question, corpus: Path) -> list[tuple[int, int]]:
    """The spans of the sentences holding a gold answer: what a precise citation is."""
    _, spans = _article(str(corpus / question.source))
    return sorted({(a, b) for a, b in spans for s, e in question.answer_spans if a <= s < b})


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> int:
    return max(0, min(a[1], b[1]) - max(a[0], b[0]))


def score_squad(question: Question, cited: list[Cited], corpus: Path) -> dict[str, float]:
    """hit@1 (top citation holds a gold answer span), precision@1 and precision over all returned citations.

    Precision is the share of cited characters that belong to a gold answer's sentence: 1.0 for an exact
    one-sentence citation, ~0.15 for a right 1000-character chunk, 0 for a wrong citation.
    """
    gold = gold_sentences(question, corpus)
    if not cited:
        return {"hit1": 0.0, "precision1": 0.0, "precision_all": 0.0, "chars1": 0.0}

    def useful(c: Cited) -> int:
        if c.source != question.source:
            return 0
        return sum(_overlap((c.start, c.end), g) for g in gold)

    top = cited[0]
    hit = top.source == question.source and any(top.start <= s and e <= top.end for s, e in question.answer_spans)
    length = max(1, top.end - top.start)
    total = sum(max(1, c.end - c.start) for c in cited)
    return {"hit1": float(hit), "precision1": min(1.0, useful(top) / length),
            "precision_all": min(1.0, sum(useful(c) for c in cited) / total), "chars1": float(length)}


def score_seed(question: Question, cited: list[Cited]) -> float:
    """1.0 when the top citation contains one of the question's evidence strings (NBSP folded)."""
    if not cited:
        return 0.0
    text = " ".join(cited[0].text.replace("\u00a0", " ").split())
    return float(any(" ".join(e.replace("\u00a0", " ").split()) in text for e in question.evidence))


def mean(rows: list[dict[str, float]], key: str) -> float:
    """Average of one metric over questions."""
    return round(sum(r[key] for r in rows) / max(1, len(rows)), 4)
