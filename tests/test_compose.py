"""Where the reader's span goes in the answer: a hand-built snapshot and a reader stub (no index, no model)."""

import numpy as np
import pytest

from rag.answer.abstention import AbstentionModel
from rag.answer.compose import READER_ASIDE, READER_MOVE, Draft, extractive_answer
from rag.answer.reader import Reading
from rag.index.snapshot import Snapshot
from rag.records import Sentence
from rag.retrieve import Candidate

TEXTS = ["The festival began in 1998 in a small town.", "It was founded by Maren Oduya, a local teacher.",
         "Thousands attend it every summer."]
FEATURES = {"dense": 0.6, "evidence_dense": 0.6, "context_coverage": 0.8, "coverage": 0.7, "para_dense_max": 0.5,
            "evidence_para_dense_max": 0.5, "unknown_names": 0.0, "unknown_terms": 0.0, "query_terms": 4.0}


class StubReader:
    """Reads ``span`` wherever a window holds it, with ``margin`` over "no answer"."""

    def __init__(self, span: str, margin: float) -> None:
        self.span, self.margin = span, margin

    def read(self, question: str, windows: list[str]) -> list[Reading]:
        out = []
        for window in windows:
            start = window.find(self.span)
            assert start >= 0, "the stub only reads windows holding its span"
            out.append(Reading(start, start + len(self.span), self.margin, 0.0))
        return out


def answer(span: str, margin: float, k: int = 3) -> tuple[Draft, list[str]]:
    sentences = [Sentence(sentence_id=f"fest:{i}", source="fest.txt", text=t, start=0, end=len(t), position=i)
                 for i, t in enumerate(TEXTS)]
    snapshot = Snapshot.from_sentences("g1", sentences, np.zeros((3, 384), np.float32))
    candidates = [Candidate(0, 0.9, FEATURES), Candidate(2, 0.5, FEATURES)]
    draft = extractive_answer("Who founded the festival?", candidates, snapshot, k, AbstentionModel(), 0.0,
                              StubReader(span, margin))  # type: ignore[arg-type]
    return draft, [c.text for c in draft.citations]


def test_a_span_in_the_top_sentence_is_quoted_from_the_first_citation() -> None:
    draft, cited = answer("1998", -3.0)
    assert draft.short_answer == "1998" and cited == [TEXTS[0], TEXTS[2]]
    assert draft.answer == f"1998 — “{TEXTS[0]}” [1]"


def test_a_sure_span_in_a_neighbour_cites_its_sentence_first() -> None:
    draft, cited = answer("Maren Oduya", READER_MOVE + 1)
    assert draft.short_answer == "Maren Oduya" and cited == [TEXTS[1], TEXTS[0], TEXTS[2]]
    assert draft.answer == f"Maren Oduya — “{TEXTS[1]}” [1]"
    assert [c.score for c in draft.citations] == [0.9, 0.9, 0.5]


@pytest.mark.skipif(READER_ASIDE >= READER_MOVE, reason="neighbours' spans stand only when they move the citation")
def test_a_less_sure_span_in_a_neighbour_is_the_short_answer_with_its_sentence_cited_second() -> None:
    margin = max(READER_ASIDE + 1, READER_MOVE - 2)
    draft, cited = answer("Maren Oduya", margin)
    assert draft.short_answer == "Maren Oduya" and cited == [TEXTS[0], TEXTS[1], TEXTS[2]]
    assert draft.answer == f"Maren Oduya — “{TEXTS[1]}” [2]"
    assert [c.score for c in draft.citations] == [0.9, 0.5, 0.5]
    # One citation leaves no place for it: the top sentence's own span stands.
    draft, cited = answer("Maren Oduya", margin, k=1)
    assert cited == [TEXTS[0]] and draft.short_answer != "Maren Oduya" and draft.answer.endswith("[1]")
