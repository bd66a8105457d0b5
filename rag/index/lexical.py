"""BM25 over stemmed, normalised tokens (bm25s + PyStemmer), saved atomically beside the index."""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

from rag.text import normalize_for_match

# bm25s sets its own logger to DEBUG on import, which would print through any root handler.
logging.getLogger("bm25s").setLevel(logging.WARNING)

_TOKEN = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset(STOPWORDS_EN) | {"did", "does", "do", "s", "many", "much", "whom", "whose", "which", "what",
                                       "when", "where", "who", "why", "how"}


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def words(text: str) -> list[str]:
    """Lower-cased word tokens of ``text`` after NBSP/quote folding (stopwords kept)."""
    return _TOKEN.findall(normalize_for_match(text).lower())


def tokenize(text: str) -> list[str]:
    """Stemmed content tokens: what BM25 and term-overlap features compare."""
    return _stemmer().stemWords([w for w in words(text) if w not in STOPWORDS])


def content_word_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, stem) of each content word of ``text``, stemmed as ``tokenize`` stems; the text is not folded
    first, so the offsets point into it."""
    found = [m for m in _TOKEN.finditer(text) if m.group().lower() not in STOPWORDS]
    stems = _stemmer().stemWords([m.group().lower() for m in found])
    return [(m.start(), m.end(), stem) for m, stem in zip(found, stems, strict=True)]


class LexicalIndex:
    """BM25 scores for a query against every sentence, row-aligned with the sentence snapshot."""

    def __init__(self, retriever: bm25s.BM25, size: int) -> None:
        self._bm25 = retriever
        self.size = size
        self._vocab = retriever.vocab_dict
        # Column lengths of the CSC score matrix are per-term document frequencies.
        self._df = np.diff(np.asarray(retriever.scores["indptr"]))

    @classmethod
    def build(cls, texts: list[str]) -> LexicalIndex:
        """Index texts (one row each); empty token lists are allowed."""
        retriever = bm25s.BM25()
        # bm25s cannot index nothing; an empty snapshot gets one placeholder row and reports size 0.
        tokens = [tokenize(t) or ["\x00empty"] for t in texts] or [["\x00empty"]]
        retriever.index(tokens, show_progress=False)
        return cls(retriever, len(texts))

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every row for the query (zeros when no query token is known)."""
        tokens = [t for t in tokenize(query) if t in self._vocab]
        if not tokens or self.size == 0:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)

    def document_frequencies(self, terms: list[str]) -> list[int]:
        """How many rows contain each (already tokenized) term; 0 for terms never seen."""
        return [int(self._df[self._vocab[t]]) if t in self._vocab else 0 for t in terms]

    def save(self, folder: Path) -> None:
        """Write the index files into ``folder`` (the caller renames the folder into place atomically)."""
        self._bm25.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path, size: int) -> LexicalIndex:
        """Read an index written by ``save``."""
        return cls(bm25s.BM25.load(str(folder), mmap=False), size)
