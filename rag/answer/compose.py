"""Turn retrieved candidates into an answer: citations, a short extractive span, or an abstention."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rag.answer.abstention import AbstentionModel
from rag.answer.question_types import answer_type, span_type
from rag.answer.reader import Reader, Reading
from rag.answer.reader_rank import READER_RANKING, reorder
from rag.answer.spans import best_span, has_answer_type
from rag.index.snapshot import Snapshot
from rag.records import Citation
from rag.retrieve import Candidate
from rag.text import normalize_for_match

ABSTAIN_TEXT = "The corpus does not say. I found no sentence that answers this question."
# The reader's span stands only in questions the abstention model judged answerable, so it beats the heuristic one even
# when "no answer" wins: a span in the top sentence stands at any margin. A span in another sentence moves that
# sentence to the first citation when it beats "no answer" by READER_MOVE; short of that it is still the short answer
# above READER_ASIDE, its sentence cited second, since retrieval's top sentence is more often the one SQuAD marks.
# All three fitted out of fold on the tuning articles (bench/quality/reader_floor.py, docs/reader.md); READER_MOVE
# after the top five windows are re-ordered (bench/quality/reader_rank.py: one window read alone fits 8).
READER_FLOOR = -math.inf
READER_MOVE = 12.0
READER_ASIDE = -math.inf


@dataclass
class Draft:
    """An answer before timings are attached: what the extractive or LLM answerer produced."""

    answer: str
    short_answer: str | None
    abstained: bool
    citations: list[Citation]
    confidence: float


@dataclass(frozen=True)
class ReadSpan:
    """The reader's answer: the span's text, the row of the sentence holding it, its margin over no-answer, and
    whether that sentence is cited first (else second, after the top candidate)."""

    text: str
    row: int
    margin: float
    first: bool


@dataclass(frozen=True)
class WindowRead:
    """The reader on one candidate's window: the window, its sentences' layout and the reading."""

    window: str
    layout: list[tuple[int, int, int]]
    reading: Reading


def read_windows(question: str, rows: list[int], snapshot: Snapshot, reader: Reader) -> list[WindowRead]:
    """The windows (sentence and neighbours) of ``rows``, read."""
    built = [sentence_window(snapshot, row) for row in rows]
    readings = reader.read(question, [window for window, _ in built])
    return [WindowRead(w, layout, r) for (w, layout), r in zip(built, readings, strict=True)]


def read_span(read: WindowRead, candidates: list[Candidate]) -> ReadSpan | None:
    """The reader's span in the first candidate's window, kept only when it lies inside one sentence and beats "no
    answer" by the margin its place needs (``READER_FLOOR`` in the first sentence, ``READER_ASIDE`` elsewhere, and
    ``READER_MOVE`` to cite its sentence first)."""
    reading = read.reading
    holder = span_holder(read.layout, reading.start, reading.end)
    top = holder == candidates[0].row
    if holder is None or reading.margin <= (READER_FLOOR if top else min(READER_ASIDE, READER_MOVE)):
        return None
    text = read.window[reading.start:reading.end].strip()
    return ReadSpan(text, holder, reading.margin, top or reading.margin > READER_MOVE) if text else None


def span_holder(layout: list[tuple[int, int, int]], start: int, end: int) -> int | None:
    """The row of the window's sentence (``sentence_window``'s layout) that holds the span, None when it crosses
    sentences."""
    return next((row for row, a, b in layout if a <= start and end <= b), None)


def select_citations(candidates: list[Candidate], snapshot: Snapshot, k: int,
                     promoted: tuple[int, float] | None = None, at: int = 0) -> list[Citation]:
    """The top ``k`` candidates as citations, skipping repeats of an already cited sentence text; ``promoted`` is a
    (row, score) cited at place ``at`` among them (the sentence holding the reader's span)."""
    chosen: list[Citation] = []
    seen: set[str] = set()
    rows = [(c.row, float(c.score)) for c in candidates]
    if promoted:
        rows.insert(at, promoted)
    for row, score in rows:
        s = snapshot.sentence(row)
        key = citation_key(s.text)
        if key in seen:
            continue
        seen.add(key)
        chosen.append(Citation(source=s.source, sentence_id=s.sentence_id, text=s.text, start=s.start, end=s.end,
                               score=round(score, 4), page=s.page))
        if len(chosen) == k:
            break
    return chosen


def citation_key(text: str) -> str:
    """What two citations share when they are repeats of one sentence text."""
    return normalize_for_match(text).lower()


def sentence_window(snapshot: Snapshot, row: int) -> tuple[str, list[tuple[int, int, int]]]:
    """The sentence with its neighbours joined by spaces, and (row, start, end) of each sentence in that text."""
    layout, pos = [], 0
    for r in snapshot.neighbours(row):
        layout.append((r, pos, pos + len(snapshot.texts[r])))
        pos += len(snapshot.texts[r]) + 1
    return " ".join(snapshot.texts[r] for r, _, _ in layout), layout


def context_text(snapshot: Snapshot, row: int) -> str:
    """The sentence with its neighbours, for features that look past one sentence."""
    return sentence_window(snapshot, row)[0]


def answerable_probability(question: str, candidates: list[Candidate], snapshot: Snapshot,
                           model: AbstentionModel, reader_margin: float | None = None) -> float:
    """P(answerable) of the best candidate (``reader_margin``: the reader's on its window); 0 when nothing was
    retrieved."""
    if not candidates:
        return 0.0
    top = candidates[0]
    kind = answer_type(question)
    features = model.features(top, snapshot.texts[top.row], context_text(snapshot, top.row), kind, candidates,
                              reader_margin)
    return model.probability(features)


def extractive_answer(question: str, candidates: list[Candidate], snapshot: Snapshot, k: int,
                      model: AbstentionModel, threshold: float, reader: Reader | None = None,
                      reader_candidates: int = 1) -> Draft:
    """Short span + supporting sentence, or an abstention below ``threshold``. With a reader, the windows of the top
    ``reader_candidates`` are read and re-ordered (``READER_RANKING``); its margin on the first window is one of the
    abstention model's features, and its span there and the sentence holding it come first; the heuristic span of
    the first citation is the fallback when the reader's span crosses sentences or is not of the type a date or
    number question asks for."""
    rows = [cand.row for cand in candidates[:reader_candidates]]
    reads = read_windows(question, rows, snapshot, reader) if reader and rows else []
    if len(reads) > 1:
        order = READER_RANKING.order(candidates, [r.reading.margin for r in reads],
                                     [span_holder(r.layout, r.reading.start, r.reading.end) for r in reads])
        candidates, reads = reorder(candidates, order), [reads[i] for i in order]
    margin = reads[0].reading.margin if reads else None
    confidence = answerable_probability(question, candidates, snapshot, model, margin)
    if confidence < threshold or not candidates:  # nothing retrieved abstains even at threshold 0
        return Draft(ABSTAIN_TEXT, None, True, [], round(confidence, 4))
    kind = span_type(question)
    # The span comes from the first candidate's window: the rules placing it were fitted on that window alone.
    found = read_span(reads[0], candidates) if reads else None
    if found and not found.first and k < 2:
        found = None  # a single citation leaves no place for the neighbour holding the span
    heuristic = None
    # A date or number question whose reader span holds no date or number (a "when" question read as a name) takes the
    # heuristic span of that type instead, when the top sentence has one (bench/quality/reader_floor.py).
    if found is None or not has_answer_type(found.text, kind):
        heuristic = best_span(question, snapshot.texts[candidates[0].row], kind)
        found = None if heuristic else found
    # The sentence holding the reader's span carries the best score it was preferred over.
    at = 0 if found is None or found.first else 1
    promoted = (found.row, float(candidates[min(at, len(candidates) - 1)].score)) if found else None
    citations = select_citations(candidates, snapshot, k, promoted, at)
    held = citation_key(snapshot.texts[found.row]) if found else None
    quoted = next((i for i, c in enumerate(citations) if citation_key(c.text) == held), 0)
    span = found.text if found else heuristic
    sentence = " ".join(citations[quoted].text.split())
    answer = f"{span} — “{sentence}” [{quoted + 1}]" if span else f"{sentence} [1]"
    return Draft(answer, span, False, citations, round(confidence, 4))
