"""Re-order the top retrieved sentences by what the span reader found in their windows."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from rag.retrieve import Candidate


@dataclass(frozen=True)
class ReaderRanking:
    """A candidate's score among the top ones whose windows were read: w · (its fused score minus the top one's, the
    reader's margin over "no answer" in its own window, within ±``margin_cap``, and how many of the windows read put
    their best span in its sentence). The weights are a conditional logit over the top five, fitted on the tuning
    articles read out of fold (``bench/quality/reader_rank.py``, docs/reader.md).

    The margin alone ranks worse than retrieval (a window's margin says how sure the reader is there, not which
    window is likelier), so it only counts beside the fused score; a sentence that several overlapping windows
    answer from is the likelier one."""

    score_gap: float
    margin: float
    spans_held: float
    # Past every margin the reader gives a window it can read (−18.6 to 16.4 in the top five windows of the v1.1
    # questions), so that only a window with nothing to read (about −1e9) is held to it. The abstention model's cap of
    # 10 would flatten a quarter of the margins, and ranks worse on tune (docs/reader.md).
    margin_cap: float = 20.0

    def scores(self, candidates: Sequence[Candidate], margins: Sequence[float], holders: Sequence[int | None]
               ) -> list[float]:
        """The score of each of the first ``len(margins)`` candidates (see ``features``)."""
        weights = (self.score_gap, self.margin, self.spans_held)
        return [sum(w * x for w, x in zip(weights, row, strict=True))
                for row in features(candidates, margins, holders, self.margin_cap)]

    def order(self, candidates: Sequence[Candidate], margins: Sequence[float], holders: Sequence[int | None]
              ) -> list[int]:
        """The read candidates' indices, best first; ties keep retrieval's order."""
        scores = self.scores(candidates, margins, holders)
        return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def features(candidates: Sequence[Candidate], margins: Sequence[float], holders: Sequence[int | None], cap: float
             ) -> list[tuple[float, float, float]]:
    """``ReaderRanking``'s features of each of the first ``len(margins)`` candidates, whose windows' readings gave
    ``margins`` (within ±``cap``) and put their spans in the rows ``holders`` (None: a span crossing sentences)."""
    top = candidates[0].score
    return [(cand.score - top, max(-cap, min(cap, margin)),
             float(sum(holder == cand.row for holder in holders)))
            for cand, margin in zip(candidates, margins, strict=False)]


def reorder(candidates: list[Candidate], order: Sequence[int]) -> list[Candidate]:
    """The candidates with the first ``len(order)`` placed in ``order``, each taking the fused score of the place it
    lands on, so that citation scores still fall from first to last; the rest stay as they were."""
    head = [dataclasses.replace(candidates[i], score=candidates[place].score) for place, i in enumerate(order)]
    return head + candidates[len(order):]


# Fitted by bench/quality/reader_rank.py on the tuning articles (docs/reader.md, "Re-ordering the top five by the
# reader").
READER_RANKING = ReaderRanking(score_gap=8.4161, margin=0.1253, spans_held=0.75)
