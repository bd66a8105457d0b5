"""What kind of answer a question asks for ("when" → a date, "how many" → a number, "who" → a name)."""

from __future__ import annotations

import re
from enum import StrEnum


class AnswerType(StrEnum):
    """Expected type of the short answer."""

    DATE = "date"
    NUMBER = "number"
    QUANTITY = "quantity"
    PERSON = "person"
    PLACE = "place"
    ENTITY = "entity"
    REASON = "reason"
    DESCRIPTION = "description"


_RULES: list[tuple[re.Pattern[str], AnswerType]] = [
    (re.compile(r"\b(when|what (year|date|day|month|time|century|decade)|which (year|date|day|month|century))\b"
                r"|\bhow long ago\b|\bsince when\b", re.I), AnswerType.DATE),
    (re.compile(r"\bhow (many|much)\b|\bwhat (number|percentage|percent|proportion|amount)\b", re.I),
     AnswerType.NUMBER),
    (re.compile(r"\bhow (tall|high|long|far|big|large|old|deep|wide|heavy|fast)\b", re.I), AnswerType.QUANTITY),
    (re.compile(r"\b(who|whom|whose)\b", re.I), AnswerType.PERSON),
    (re.compile(r"\b(where|what (country|city|place|region|state|town|location))\b|\bin which (country|city)\b",
                re.I), AnswerType.PLACE),
    (re.compile(r"\bwhy\b", re.I), AnswerType.REASON),
    (re.compile(r"^\s*(which|what)\s+(\w+\s+){0,2}(is|was|are|were|did|does|do)\b", re.I), AnswerType.ENTITY),
]


# The short answer's own refinements. The abstention model's features were fitted with ``answer_type`` as it is,
# so these rules only choose the span and never change whether the bot answers.
_SPAN_RULES: list[tuple[re.Pattern[str], AnswerType]] = [
    (re.compile(r"\b(what (year|date|day|month|time|century|decade)|which (year|date|day|month|century))\b"
                r"|\bhow long ago\b|\bsince when\b", re.I), AnswerType.DATE),
    # "when" asks for a date only if no other wh-word does: "What does a T cell extend when it …" does not.
    (re.compile(r"^(?!.*\b(?:what|which|who|whom|whose|how|where)\b).*\bwhen\b", re.I), AnswerType.DATE),
    *_RULES[1:],
    # Any other what/which question asks for a thing: "In what city…", "Which team won…", "What type of…".
    (re.compile(r"\b(which|what)\b", re.I), AnswerType.ENTITY),
]


def _classify(question: str, rules: list[tuple[re.Pattern[str], AnswerType]]) -> AnswerType:
    for pattern, kind in rules:
        if pattern.search(question):
            return kind
    return AnswerType.DESCRIPTION


def answer_type(question: str) -> AnswerType:
    """Classify a question by the first matching rule; descriptions are the fallback (abstention features)."""
    return _classify(question, _RULES)


def span_type(question: str) -> AnswerType:
    """The answer type the short-answer span is chosen by: ``answer_type`` with the span-only refinements."""
    return _classify(question, _SPAN_RULES)


_FIRST_WORD = re.compile(r"^\W*(\w+)")


def question_word(question: str) -> str:
    """The wh-word a question is grouped by in reports (who/when/where/what/which/how many/how/why/other)."""
    q = question.lower()
    if re.search(r"\bhow (many|much)\b", q):
        return "how many"
    for word in ("when", "who", "where", "why", "which", "what", "how"):
        if re.search(rf"\b{word}\b", q):
            return word
    return "other"
