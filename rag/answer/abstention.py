"""Decide whether the retrieved evidence answers the question: a small logistic model over a few features."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from rag.answer.question_types import AnswerType
from rag.answer.spans import has_answer_type
from rag.retrieve import Candidate

# The reader's margin over "no answer" enters the model capped: one extreme reading must not outweigh the rest.
MARGIN_CAP = 10.0


def capped_margin(margin: float) -> float:
    """The reader's margin as the model uses it: within ±``MARGIN_CAP``."""
    return max(-MARGIN_CAP, min(MARGIN_CAP, margin))


@dataclass(frozen=True)
class AbstentionModel:
    """P(answerable) = sigmoid(w · features + bias); coefficients fitted on SQuAD tuning articles (docs/quality.md)."""

    # Fitted by `bench/quality/abstention.py --fit` on the SQuAD tuning articles only (2.0 answerable/unanswerable
    # and v1.1 in/out of corpus, each against the 17-article index and the 4 tuning articles' own index, so both
    # corpus sizes are seen). unknown_terms (share of the question's names/numbers the corpus never mentions) is
    # hand-set: in every training corpus the question's names are indexed, so no data can fit it.
    dense: float = 4.849
    coverage: float = 1.232
    type_match: float = 0.436
    unknown_terms: float = -2.0
    sentence_coverage: float = 0.702
    para_dense_max: float = 1.718
    number_missing: float = -0.61
    # Lead over the runner-up: its fitted weight came out negative and the lead grows on small indexes, so the
    # cross-validated choice dropped it (weight 0; `--features` can refit it).
    margin: float = 0.0
    # The span reader's margin over "no answer" in the top candidate's window; 0 in the model used without the reader
    # (READER_ABSTENTION below is the one fitted with it).
    reader_margin: float = 0.0
    bias: float = -5.354

    def feature_names(self) -> list[str]:
        """Every feature name (the fields other than the bias)."""
        return [f.name for f in fields(self) if f.name != "bias"]

    def features(self, top: Candidate, sentence: str, context: str, kind: AnswerType,
                 candidates: list[Candidate] | None = None, reader_margin: float | None = None) -> dict[str, float]:
        """The features of the best candidate (and its lead over the runner-up, and the reader's margin on its
        window when it was read) that the decision uses."""
        typed = has_answer_type(sentence, kind) or has_answer_type(context, kind)
        runner_up = candidates[1].score if candidates and len(candidates) > 1 else top.score
        return {
            # The packaged model's similarities: the tuned question encoder ranks, but its scale is not calibrated.
            "dense": top.features["evidence_dense"],
            "coverage": top.features["context_coverage"],
            "type_match": 1.0 if typed else 0.0,
            "unknown_terms": min(top.features["unknown_names"], 2.0) / max(top.features["query_terms"], 1.0),
            "sentence_coverage": top.features["coverage"],
            "para_dense_max": top.features["evidence_para_dense_max"],
            "margin": top.score - runner_up,
            # "How many / how tall" with no number near the best sentence: the corpus rarely answers those.
            "number_missing": 0.0 if typed or kind not in (AnswerType.NUMBER, AnswerType.QUANTITY) else 1.0,
            "reader_margin": 0.0 if reader_margin is None else capped_margin(reader_margin),
        }

    def probability(self, features: dict[str, float]) -> float:
        """P(the corpus answers the question) from the features."""
        z = self.bias + sum(getattr(self, name) * value for name, value in features.items())
        return 1.0 / (1.0 + math.exp(-z))


# The model the answer path uses with the span reader on: the same features, plus the reader's margin on the first
# candidate's window, read out of fold on the tuning articles (bench/quality/abstention.py --reader-folds, with the
# fold readers of docs/reader.md). Fitted while the packaged question vectors still ranked the candidates; a refit on
# the shipped ranking is within noise of it (docs/reader.md).
READER_ABSTENTION = AbstentionModel(dense=4.393, coverage=0.981, type_match=0.407, sentence_coverage=0.635,
                                    para_dense_max=1.588, number_missing=-0.792, reader_margin=0.043, bias=-4.862)

# Each model's default threshold (RAG_ABSTAIN_THRESHOLD overrides both): its largest with at most 3 % false abstention
# in every answerable tuning group, rounded down (bench/quality/abstention.py; docs/quality.md, docs/reader.md). With
# the reader that is 0.2002 once it re-orders the top five candidates, and at 0.20 the 4-article tuning index reaches
# 3.1 %, so 0.19.
ABSTAIN_THRESHOLD = 0.18
READER_ABSTAIN_THRESHOLD = 0.19
