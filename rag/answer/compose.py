"""Turn retrieved candidates into an answer: citations, a short extractive span, or an abstention."""

from __future__ import annotations

from dataclasses import dataclass

from rag.answer.abstention import AbstentionModel
from rag.answer.question_types import answer_type, span_type
from rag.answer.spans import best_span
from rag.index.snapshot import Snapshot
from rag.records import Citation
from rag.retrieve import Candidate
from rag.text import normalize_for_match

ABSTAIN_TEXT = "The corpus does not say. I found no sentence that answers this question."


@dataclass
class Draft:
    """An answer before timings are attached: what the extractive or LLM answerer produced."""

    answer: str
    short_answer: str | None
    abstained: bool
    citations: list[Citation]
    confidence: float


def select_citations(candidates: list[Candidate], snapshot: Snapshot, k: int) -> list[Citation]:
    """The top ``k`` candidates as citations, skipping repeats of an already cited sentence text."""
    chosen: list[Citation] = []
    seen: set[str] = set()
    for cand in candidates:
        s = snapshot.sentence(cand.row)
        key = normalize_for_match(s.text).lower()
        if key in seen:
            continue
        seen.add(key)
        chosen.append(Citation(source=s.source, sentence_id=s.sentence_id, text=s.text, start=s.start, end=s.end,
                               score=round(float(cand.score), 4)))
        if len(chosen) == k:
            break
    return chosen


def context_text(snapshot: Snapshot, row: int) -> str:
    """The sentence with its neighbours, for features that look past one sentence."""
    return " ".join(snapshot.texts[r] for r in snapshot.neighbours(row))


def answerable_probability(question: str, candidates: list[Candidate], snapshot: Snapshot,
                           model: AbstentionModel) -> float:
    """P(answerable) of the best candidate; 0 when nothing was retrieved."""
    if not candidates:
        return 0.0
    top = candidates[0]
    kind = answer_type(question)
    features = model.features(top, snapshot.texts[top.row], context_text(snapshot, top.row), kind, candidates)
    return model.probability(features)


def extractive_answer(question: str, candidates: list[Candidate], snapshot: Snapshot, k: int,
                      model: AbstentionModel, threshold: float) -> Draft:
    """Short span + supporting sentence from the best citation, or an abstention below ``threshold``."""
    confidence = answerable_probability(question, candidates, snapshot, model)
    if confidence < threshold:
        return Draft(ABSTAIN_TEXT, None, True, [], round(confidence, 4))
    citations = select_citations(candidates, snapshot, k)
    top = citations[0]
    span = best_span(question, top.text, span_type(question))
    sentence = " ".join(top.text.split())
    answer = f"{span} — “{sentence}” [1]" if span else f"{sentence} [1]"
    return Draft(answer, span, False, citations, round(confidence, 4))
