"""Find the article's real prose: paragraphs with offsets, minus scraping junk and repeated titles."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.text import normalize_for_match

# Page counters ("1 / 1", "Page 2 of 3"), bare numbers, and lines with no letters or digits ("> <", "***").
_PAGE_COUNTER = re.compile(r"^\s*(page\s*)?\d+\s*(/|of)\s*\d+\s*$", re.IGNORECASE)
_NO_WORDS = re.compile(r"^[\W_]*$")
_BARE_NUMBER = re.compile(r"^\s*\d+\s*$")
_BOILERPLATE = re.compile(
    r"^\s*(share( this)?( article)?|advertisement|print|email|read more|related( articles)?|"
    r"click here.*|all rights reserved.*|©.*|copyright.*|sign up.*|subscribe.*)\s*$",
    re.IGNORECASE,
)
_PARAGRAPH = re.compile(r"\S(?:.*\S)?(?:\n[ \t]*\S(?:.*\S)?)*")

@dataclass(frozen=True)
class Paragraph:
    """A run of text between blank lines: ``source_text[start:end] == text``."""

    text: str
    start: int
    end: int


def is_junk(line: str) -> bool:
    """True for page counters, symbol-only lines and share/print boilerplate."""
    return bool(_NO_WORDS.match(line) or _PAGE_COUNTER.match(line) or _BARE_NUMBER.match(line)
                or _BOILERPLATE.match(line))


def is_heading(text: str, title: str) -> bool:
    """True for a title line or a Markdown heading: labels, not sentences to cite."""
    stripped = text.strip()
    if stripped.startswith("#"):
        return True
    return bool(title) and normalize_for_match(stripped).lower() == normalize_for_match(title).lower()


def content_paragraphs(text: str, title: str) -> list[Paragraph]:
    """Paragraphs of prose in ``text``, junk lines and title repeats left out, offsets kept."""
    paragraphs = []
    for match in _PARAGRAPH.finditer(text):
        # Junk hides inside paragraphs too ("1 / 1\n> <"): drop it line by line, keep the rest.
        lines = [(m.start(), m.group()) for m in re.finditer(r"[^\n]+", match.group())]
        kept = [(off, ln) for off, ln in lines if not is_junk(ln) and not is_heading(ln, title)]
        if not kept:
            continue
        if len(kept) == len(lines):
            paragraphs.append(Paragraph(match.group(), match.start(), match.end()))
            continue
        for off, ln in kept:
            lead = len(ln) - len(ln.lstrip())
            body = ln.strip()
            start = match.start() + off + lead
            paragraphs.append(Paragraph(body, start, start + len(body)))
    return paragraphs
