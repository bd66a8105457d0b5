"""Split article text into sentences whose offsets point back into the original text."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

import pysbd
from pysbd.lang.english import English

from rag.ingest.cleaning import content_paragraphs
from rag.ingest.loaders import Document
from rag.records import Sentence

_FALLBACK_BOUNDARY = re.compile(r"(?<=[.!?])[\"'\u201d\u2019)\]]*\s+(?=[\"'\u201c\u2018(\[]?[A-Z0-9])")
# A "sentence" this long is a table or a list run together; cut it so citations stay readable.
MAX_SENTENCE_CHARS = 1500


# A sure sentence end: a plain word or a number of 2+ digits (no inner dot), end punctuation, closing quotes,
# space, then a capital.
_SURE_END = re.compile(r"(?<![^\s\"'\u201c\u2018(\[])([A-Za-z][A-Za-z'\u2019-]*[a-z]|[1-9][\d,]*\d)([.!?])"
                       r"([\"'\u201d\u2019)\]]*)\s+(?=[\"\u201c\u2018(\[]?[A-Z])")
# Anything else that could make pysbd split, or not split, where a plain rule would not.
_TRICKY = re.compile(r"[.!?\n\u2026]")
_ABBREVIATIONS = frozenset(a for a in English.Abbreviation.ABBREVIATIONS if "." not in a)
# pysbd never ends a sentence at a title before a name ("Mr. Smith", "Dr. Jones"): such dots are not tricky.
_TITLE_BEFORE_NAME = re.compile(r"(?<![^\s\"'\u201c(\[])(?:Mr|Mrs|Ms|Dr|Prof|Gen|Gov|Sen|Rep|Capt|Lt|Col|Sgt|Rev)\."
                                r" (?=[A-Z][a-z])")


@lru_cache(maxsize=1)
def _segmenter() -> pysbd.Segmenter:
    return pysbd.Segmenter(language="en", clean=False)


# pysbd's time grows about quadratically with its input (a 50 KB paragraph of numbers took over 3 minutes):
# longer blocks are fed to it in pieces of at most this many characters.
_PYSBD_MAX_CHARS = 1000


def _bounded_pieces(block: str, limit: int = _PYSBD_MAX_CHARS) -> list[str]:
    """``block`` cut into consecutive pieces of at most ``limit`` characters, at a sentence end or else a space."""
    pieces, start = [], 0
    while len(block) - start > limit:
        ends = [m.end() for m in _FALLBACK_BOUNDARY.finditer(block, start + 1, start + limit)]
        cut = ends[-1] if ends else block.rfind(" ", start + 1, start + limit) + 1
        cut = cut if cut > start else start + limit
        pieces.append(block[start:cut])
        start = cut
    pieces.append(block[start:])
    return pieces


def _pysbd(block: str) -> list[str]:
    """pysbd's sentences of ``block`` that occur in it, in order (what ``Segmenter.segment`` keeps).

    ``segment`` maps sentences back with one freshly compiled regex per sentence, which evicts pysbd's own
    patterns from the ``re`` cache and costs more than the segmentation itself; a plain ``find`` is enough here.
    """
    if len(block) > _PYSBD_MAX_CHARS:
        return [sentence for piece in _bounded_pieces(block) for sentence in _pysbd(piece)]
    segmenter = _segmenter()
    try:
        sentences = segmenter.processor(block).process()
    except Exception:  # pysbd has regex corner cases; a plain rule is better than losing the paragraph
        return _FALLBACK_BOUNDARY.split(block)
    kept, cursor = [], 0
    for sentence in sentences:
        found = block.find(sentence, cursor)
        if found >= 0:
            kept.append(sentence)
            cursor = found + len(sentence)
    return kept


def _split_block(block: str) -> list[str]:
    """pysbd's sentences, ~20x faster: cut at sure ends first, run pysbd only on pieces that still need it.

    pysbd is pure-Python regex work (~1k sentences/s); most sentence ends in prose are unambiguous ("word. The"),
    so only pieces with an abbreviation, initial, number, ellipsis or line break inside go through pysbd.
    """
    pieces: list[str] = []
    cursor = counted = 0
    straight = curly = parens = brackets = 0
    for match in _SURE_END.finditer(block):
        if match.group(1).lower() in _ABBREVIATIONS:
            continue
        cut = match.end(3)
        # pysbd keeps a quoted or bracketed passage of several sentences whole: never cut inside one.
        seen = block[counted:cut]
        straight += seen.count('"')
        curly += seen.count("\u201c") - seen.count("\u201d")
        parens += seen.count("(") - seen.count(")")
        brackets += seen.count("[") - seen.count("]")
        counted = cut
        if straight % 2 or curly or parens or brackets:
            continue
        pieces.append(block[cursor:cut])
        cursor = cut
    pieces.append(block[cursor:])
    out: list[str] = []
    for piece in pieces:
        body = piece.rstrip()
        inner = body[:-1] if body.endswith((".", "!", "?")) else body
        inner = inner.rstrip("\"'\u201d\u2019)]")
        if _TRICKY.search(_TITLE_BEFORE_NAME.sub("", inner.rstrip(".!?"))):
            out.extend(_pysbd(piece))
        else:
            out.append(piece)
    return out


def sentence_spans(text: str, title: str = "") -> list[tuple[int, int]]:
    """(start, end) of every sentence of prose in ``text``; each span is stripped of surrounding space."""
    spans: list[tuple[int, int]] = []
    for para in content_paragraphs(text, title):
        cursor = 0
        for piece in _split_block(para.text):
            body = piece.strip()
            if not body:
                continue
            found = para.text.find(body, cursor)
            if found < 0:  # the segmenter altered the text; re-anchor with the fallback rule
                spans = [s for s in spans if s[0] < para.start]
                cursor = 0
                for part in _FALLBACK_BOUNDARY.split(para.text):
                    part_body = part.strip()
                    pos = para.text.find(part_body, cursor)
                    spans.append((para.start + pos, para.start + pos + len(part_body)))
                    cursor = pos + len(part_body)
                break
            spans.append((para.start + found, para.start + found + len(body)))
            cursor = found + len(body)
    return [piece for start, end in spans for piece in _cap_length(text, start, end)]


def _cap_length(text: str, start: int, end: int) -> list[tuple[int, int]]:
    if end - start <= MAX_SENTENCE_CHARS:
        return [(start, end)]
    pieces = []
    while end - start > MAX_SENTENCE_CHARS:
        cut = text.rfind(" ", start, start + MAX_SENTENCE_CHARS)
        cut = cut if cut > start else start + MAX_SENTENCE_CHARS
        pieces.append((start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if start < end:
        pieces.append((start, end))
    return pieces


def sentence_id(source: str, text: str, occurrence: int) -> str:
    """Stable content-hash id: the same sentence in the same article keeps its id across edits elsewhere."""
    digest = hashlib.sha1(f"{source}\x00{text}\x00{occurrence}".encode()).hexdigest()
    return digest[:20]


def split_document(doc: Document) -> list[Sentence]:
    """The document's sentences in order, with ids, positions and offsets."""
    sentences: list[Sentence] = []
    seen: dict[str, int] = {}
    for position, (start, end) in enumerate(sentence_spans(doc.text, doc.title)):
        text = doc.text[start:end]
        occurrence = seen.get(text, 0)
        seen[text] = occurrence + 1
        sentences.append(Sentence(sentence_id=sentence_id(doc.source, text, occurrence), source=doc.source,
                                  text=text, start=start, end=end, position=position, title=doc.title,
                                  page=doc.page_at(start)))
    return sentences
