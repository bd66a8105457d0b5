"""Turn a follow-up question into a self-contained search query using the chat history."""

from __future__ import annotations

import re

from rag.index.lexical import STOPWORDS, words
from rag.records import Turn

_ANAPHORA = re.compile(r"\b(he|she|it|its|they|them|their|there|this|that|these|those|his|her|hers|then|him|"
                       r"the same|such)\b", re.I)
_CONTINUATION = re.compile(r"^\s*(and|but|also|so|what about|how about|and what about)\b", re.I)


def is_follow_up(question: str) -> bool:
    """Whether the question leans on earlier turns (pronouns, 'and …', or almost no content words)."""
    content = [w for w in words(question) if w not in STOPWORDS]
    return bool(_ANAPHORA.search(question) or _CONTINUATION.search(question) or len(content) <= 1)


def search_query(question: str, history: list[Turn] | None) -> str:
    """The question, extended with the (resolved) previous user question when it is a follow-up."""
    previous: str | None = None
    for turn in history or []:
        if turn.role == "user" and turn.content.strip():
            previous = _extend(turn.content, previous)
    return _extend(question, previous)


def _extend(question: str, previous: str | None) -> str:
    if previous is None or not is_follow_up(question):
        return question
    # Earlier context goes after the question so the question's own words still come first.
    return f"{question} {previous}"
