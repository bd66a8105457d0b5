"""Locate evidence strings in the indexed documents, so citations can be judged by offsets, not substrings."""

from __future__ import annotations

from rag.evaluation.datasets import EvalQuestion, Span

# Folding that keeps one output character per input character, so positions map back to the original.
_FOLD = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2018": "'", "\u2019": "'", "\u201c": '"',
                       "\u201d": '"', "\u2013": "-", "\u2014": "-", "\t": " ", "\n": " ", "\r": " "})


def folded_with_map(text: str) -> tuple[str, list[int]]:
    """``text`` lowercased, quotes/dashes/NBSP folded, spaces collapsed; plus each output char's input index."""
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text.translate(_FOLD)):
        low = ch.lower()
        ch = low if len(low) == 1 else ch
        if ch == " " and (not out or out[-1] == " "):
            continue
        out.append(ch)
        where.append(i)
    return "".join(out), where


def fold(text: str) -> str:
    """The folded form of ``text`` used for matching (see ``folded_with_map``)."""
    return folded_with_map(text)[0].strip()


def find_spans(needle: str, documents: dict[str, tuple[str, list[int]]], item: int = 0) -> list[Span]:
    """Every occurrence of ``needle`` in the folded documents, as spans of the original texts."""
    key = fold(needle)
    if not key:
        return []
    spans = []
    for source, (folded, where) in documents.items():
        at = folded.find(key)
        while at >= 0:
            spans.append(Span(source=source, start=where[at], end=where[at + len(key) - 1] + 1, item=item))
            at = folded.find(key, at + 1)
    return spans


def locate_evidence(questions: list[EvalQuestion], texts: dict[str, str]) -> list[str]:
    """Fill ``evidence_spans`` of questions that have evidence strings but no spans; return warnings."""
    todo = [q for q in questions if q.evidence and not q.evidence_spans]
    if not todo:
        return []
    documents = {source: folded_with_map(text) for source, text in texts.items()}
    warnings = []
    for q in todo:
        for n, item in enumerate(q.evidence):
            spans = find_spans(item, documents, n)
            if not spans:
                warnings.append(f"{q.id}: evidence not found in the indexed corpus: {item[:80]!r}")
            q.evidence_spans.extend(spans)
        sources = {s.source for s in q.evidence_spans}
        if q.source is None and len(sources) == 1:
            q.source = sources.pop()
    return warnings
