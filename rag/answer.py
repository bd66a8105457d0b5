"""Turn retrieved candidates into an answer: citations, a short extractive span, or an abstention."""

from __future__ import annotations

from dataclasses import dataclass

from rag.abstain import AbstentionModel
from rag.catalog import Catalog
from rag.cleaning import normalize_for_match
from rag.extract import best_span
from rag.models import Citation
from rag.question_types import answer_type, span_type
from rag.retrieve import Candidate

ABSTAIN_TEXT = "The corpus does not say. I found no sentence that answers this question."


@dataclass
class Draft:
    """An answer before timings are attached: what the extractive or LLM answerer produced."""

    answer: str
    short_answer: str | None
    abstained: bool
    citations: list[Citation]
    confidence: float


def select_citations(candidates: list[Candidate], catalog: Catalog, k: int) -> list[Citation]:
    """The top ``k`` candidates as citations, skipping repeats of an already cited sentence text."""
    chosen: list[Citation] = []
    seen: set[str] = set()
    for cand in candidates:
        s = catalog.sentence(cand.row)
        key = normalize_for_match(s.text).lower()
        if key in seen:
            continue
        seen.add(key)
        chosen.append(Citation(source=s.source, sentence_id=s.sentence_id, text=s.text, start=s.start, end=s.end,
                               score=round(float(cand.score), 4)))
        if len(chosen) == k:
            break
    return chosen


def context_text(catalog: Catalog, row: int) -> str:
    """The sentence with its neighbours, for features that look past one sentence."""
    return " ".join(catalog.texts[r] for r in catalog.neighbours(row))


def answerable_probability(question: str, candidates: list[Candidate], catalog: Catalog,
                           model: AbstentionModel) -> float:
    """P(answerable) of the best candidate; 0 when nothing was retrieved."""
    if not candidates:
        return 0.0
    top = candidates[0]
    kind = answer_type(question)
    features = model.features(top, catalog.texts[top.row], context_text(catalog, top.row), kind, candidates)
    return model.probability(features)


def extractive_answer(question: str, candidates: list[Candidate], catalog: Catalog, k: int,
                      model: AbstentionModel, threshold: float) -> Draft:
    """Short span + supporting sentence from the best citation, or an abstention below ``threshold``."""
    confidence = answerable_probability(question, candidates, catalog, model)
    if confidence < threshold:
        return Draft(ABSTAIN_TEXT, None, True, [], round(confidence, 4))
    citations = select_citations(candidates, catalog, k)
    top = citations[0]
    span = best_span(question, top.text, span_type(question))
    sentence = " ".join(top.text.split())
    answer = f"{span} — “{sentence}” [1]" if span else f"{sentence} [1]"
    return Draft(answer, span, False, citations, round(confidence, 4))
