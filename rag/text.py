"""Text normalisation shared by the layers that compare text: lexical search, cleaning, answers and evaluation."""

from __future__ import annotations

import unicodedata

_MATCH_FOLD = str.maketrans({"\u00a0": " ", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                             "\u2013": "-", "\u2014": "-", "\u202f": " ", "\u2009": " "})


def normalize_for_match(text: str) -> str:
    """Fold NBSP, curly quotes and dashes to plain ASCII and collapse spaces, for matching only."""
    folded = unicodedata.normalize("NFKC", text).translate(_MATCH_FOLD)
    return " ".join(folded.split())
