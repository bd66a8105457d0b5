"""The reader's re-ordering of the top candidates: its rule, and what the answer cites (stub reader, no model)."""

import numpy as np

from rag.answer.abstention import AbstentionModel
from rag.answer.compose import extractive_answer
from rag.answer.reader import Reading
from rag.answer.reader_rank import READER_RANKING, ReaderRanking, reorder
from rag.index.snapshot import Snapshot
from rag.records import Sentence
from rag.retrieve import Candidate

TEXTS = ["The festival began in 1998 in a small town.", "It moved to the harbour in 2004.",
         "Thousands attend it every summer."]
FEATURES = {"dense": 0.6, "evidence_dense": 0.6, "context_coverage": 0.8, "coverage": 0.7, "para_dense_max": 0.5,
            "evidence_para_dense_max": 0.5, "unknown_names": 0.0, "unknown_terms": 0.0, "query_terms": 4.0}


class StubReader:
    """Sure of "Thousands" wherever a window holds it, else unsure of the window's first word."""

    def read(self, question: str, windows: list[str]) -> list[Reading]:
        out = []
        for window in windows:
            start = window.find("Thousands")
            if start >= 0:
                out.append(Reading(start, start + len("Thousands"), 9.0, 0.0))
            else:
                out.append(Reading(0, window.index(" "), -5.0, 0.0))
        return out


def answer(runner_up_score: float, reader_candidates: int) -> list[str]:
    sentences = [Sentence(sentence_id=f"fest:{i}", source="fest.txt", text=t, start=0, end=len(t), position=i)
                 for i, t in enumerate(TEXTS)]
    snapshot = Snapshot.from_sentences("g1", sentences, np.zeros((3, 384), np.float32))
    candidates = [Candidate(0, 0.9, FEATURES), Candidate(2, runner_up_score, FEATURES)]
    draft = extractive_answer("How many people attend the festival?", candidates, snapshot, 3, AbstentionModel(),
                              0.0, StubReader(), reader_candidates)  # type: ignore[arg-type]
    assert [c.score for c in draft.citations] == sorted((c.score for c in draft.citations), reverse=True)
    return [c.text for c in draft.citations]


def test_a_close_runner_up_the_reader_answers_from_is_cited_first() -> None:
    assert answer(0.88, reader_candidates=2)[0] == TEXTS[2]


def test_retrieval_order_stands_when_the_runner_up_is_far_behind_or_unread() -> None:
    assert answer(0.2, reader_candidates=2)[0] == TEXTS[0]
    assert answer(0.88, reader_candidates=1)[0] == TEXTS[0]


def test_each_feature_moves_a_candidate_its_way() -> None:
    cands = [Candidate(10, 1.0), Candidate(11, 0.95), Candidate(12, 0.9)]
    rank = ReaderRanking(score_gap=10.0, margin=0.1, spans_held=1.0)
    assert rank.order(cands, [0.0, 0.0, 0.0], [None, None, None]) == [0, 1, 2]
    assert rank.order(cands, [0.0, 8.0, 0.0], [None, None, None]) == [1, 0, 2]
    # Two windows putting their spans in row 12 outweigh its place.
    assert rank.order(cands, [0.0, 0.0, 0.0], [12, 12, None]) == [2, 0, 1]
    # Margins are capped: no reading outweighs a large score gap, and a window with nothing to read stays finite.
    assert rank.order([Candidate(10, 1.0), Candidate(11, 0.0)], [0.0, 1e6], [None, None]) == [0, 1]
    assert rank.order(cands, [-1e9, 0.0, 0.0], [None, None, None]) == [1, 2, 0]
    # ... but past any margin a readable window gets, unlike the abstention model's cap of 10.
    assert rank.order([Candidate(10, 1.0), Candidate(11, 0.9)], [0.0, 15.0], [None, None]) == [1, 0]
    # Ties keep retrieval's order.
    assert ReaderRanking(0.0, 0.0, 0.0).order(cands, [1.0, 2.0, 3.0], [None, None, None]) == [0, 1, 2]


def test_reorder_moves_rows_and_keeps_scores_by_place() -> None:
    cands = [Candidate(10, 1.0), Candidate(11, 0.9), Candidate(12, 0.8), Candidate(13, 0.7)]
    moved = reorder(cands, [2, 0, 1])
    assert [c.row for c in moved] == [12, 10, 11, 13]
    assert [c.score for c in moved] == [1.0, 0.9, 0.8, 0.7]


def test_the_shipped_weights_favour_retrieval_score_reader_margin_and_held_spans() -> None:
    assert READER_RANKING.score_gap > 0 and READER_RANKING.margin > 0 and READER_RANKING.spans_held > 0
