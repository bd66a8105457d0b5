"""Decide whether the retrieved evidence answers the question: a small logistic model over a few features."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rag.extract import has_answer_type
from rag.question_types import AnswerType
from rag.retrieve import Candidate


@dataclass(frozen=True)
class AbstentionModel:
    """P(answerable) = sigmoid(w · features + bias); coefficients fitted on held-out SQuAD 2.0 (docs/quality.md)."""

    dense: float = 6.0
    coverage: float = 4.0
    type_match: float = 1.5
    unknown_terms: float = -2.0
    bias: float = -5.5

    def features(self, top: Candidate, sentence: str, context: str, kind: AnswerType) -> dict[str, float]:
        """The features of the best candidate that the decision uses."""
        typed = has_answer_type(sentence, kind) or has_answer_type(context, kind)
        return {
            "dense": top.features["dense"],
            "coverage": top.features["context_coverage"],
            "type_match": 1.0 if typed else 0.0,
            "unknown_terms": min(top.features["unknown_terms"], 2.0) / max(top.features["query_terms"], 1.0),
        }

    def probability(self, features: dict[str, float]) -> float:
        """P(the corpus answers the question) from the features."""
        z = self.bias + sum(getattr(self, name) * value for name, value in features.items())
        return 1.0 / (1.0 + math.exp(-z))
