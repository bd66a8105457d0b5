"""Decide whether the retrieved evidence answers the question: a small logistic model over a few features."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from rag.extract import has_answer_type
from rag.question_types import AnswerType
from rag.retrieve import Candidate

# How many of the best candidates the relative features compare the top one with.
CONTEXT_CANDIDATES = 10


@dataclass(frozen=True)
class AbstentionModel:
    """P(answerable) = sigmoid(w · features + bias); coefficients fitted on held-out SQuAD 2.0 (docs/quality.md)."""

    # Fitted by bench/quality/abstention.py --fit on the SQuAD tuning articles (2.0 answerable/unanswerable,
    # v1.1 with and without the question's own article in the index); unknown_terms (share of the question's
    # names/numbers the corpus never mentions) is hand-set: every corpus here contains the question's words.
    dense: float = 5.219
    coverage: float = 1.413
    type_match: float = 0.604
    unknown_terms: float = -2.0
    sentence_coverage: float = 0.819
    para_dense_max: float = 1.522
    margin: float = -0.513
    unknown_words: float = 0.0
    number_missing: float = 0.0
    dense_lead: float = 0.0
    dense_z: float = 0.0
    coverage_lead: float = 0.0
    sentence_coverage_lead: float = 0.0
    score_lead: float = 0.0
    bias: float = -5.391

    def feature_names(self) -> list[str]:
        """Every feature name (the fields other than the bias)."""
        return [f.name for f in fields(self) if f.name != "bias"]

    def features(self, top: Candidate, sentence: str, context: str, kind: AnswerType,
                 candidates: list[Candidate] | None = None) -> dict[str, float]:
        """The features of the best candidate (and its lead over the runner-up) that the decision uses."""
        typed = has_answer_type(sentence, kind) or has_answer_type(context, kind)
        runner_up = candidates[1].score if candidates and len(candidates) > 1 else top.score
        # Relative to the question's own best candidates, so the scale does not move with the corpus's size.
        pool = (candidates or [top])[:CONTEXT_CANDIDATES]
        dense = np.array([c.features["dense"] for c in pool])
        cover = np.array([c.features["context_coverage"] for c in pool])
        sent_cover = np.array([c.features["coverage"] for c in pool])
        scores = np.array([c.score for c in pool])
        return {
            "dense": top.features["dense"],
            "coverage": top.features["context_coverage"],
            "type_match": 1.0 if typed else 0.0,
            "unknown_terms": min(top.features["unknown_names"], 2.0) / max(top.features["query_terms"], 1.0),
            "sentence_coverage": top.features["coverage"],
            "para_dense_max": top.features["para_dense_max"],
            "margin": top.score - runner_up,
            "unknown_words": top.features["unknown_terms"] / max(top.features["query_terms"], 1.0),
            # "How many / how tall" with no number near the best sentence: the corpus rarely answers those.
            "number_missing": 0.0 if typed or kind not in (AnswerType.NUMBER, AnswerType.QUANTITY) else 1.0,
            "dense_lead": top.features["dense"] - float(np.median(dense)),
            "dense_z": (top.features["dense"] - float(dense.mean())) / (float(dense.std()) + 0.01),
            "coverage_lead": top.features["context_coverage"] - float(np.median(cover)),
            "sentence_coverage_lead": top.features["coverage"] - float(np.median(sent_cover)),
            "score_lead": top.score - float(np.median(scores)),
        }

    def probability(self, features: dict[str, float]) -> float:
        """P(the corpus answers the question) from the features."""
        z = self.bias + sum(getattr(self, name) * value for name, value in features.items())
        return 1.0 / (1.0 + math.exp(-z))
