"""How should the reader's logits become a span? Span rules for the top window (length and echo penalties, whole
words, ties, maximum lengths), chosen on tuning articles by the sum of EM and F1.

Reads the top window of every v1.1 question as the answer path does (``compose.read_windows``'s window), each tuning
question with the fold reader that never saw its article, each held-out one with the shipped reader, and keeps the
logits. Then scores decoding rules by the EM and F1 of the span they pick, over all questions and over those whose
top sentence holds an answer, marks the rule with the largest tuning EM + F1 (chosen) and the one
``rag/answer/reader.py`` ships, and sorts the misses on those into too long, too short and the rest.

Run: ``.venv/bin/python bench/quality/reader_spans.py --squad-v11 … --folds DIR0,DIR1 [--question-folds …]``
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reader_features import Readers, paired_gain, read_top_windows  # noqa: E402
from squad import Question, configure, split_articles  # noqa: E402

from rag.answer.compose import sentence_window  # noqa: E402
from rag.answer.question_types import question_word  # noqa: E402
from rag.answer.reader import (  # noqa: E402
    ECHO_PENALTY,
    END_TIE,
    LENGTH_FREE,
    LENGTH_PENALTY,
    MAX_SPAN_TOKENS,
    Reader,
    TokenMarks,
    best_token_span,
    context_tokens,
    mark_tokens,
)
from rag.evaluation.metrics import best_over_golds, exact_match, normalize_answer, token_f1  # noqa: E402
from rag.index.lexical import tokenize  # noqa: E402
from rag.index.snapshot import Snapshot  # noqa: E402


@dataclass
class Logits:
    """One question's top window with the reader's logits."""

    article: str
    question: str
    answers: list[str]
    hit: bool  # the top sentence holds an answer start
    window: str
    offsets: list[tuple[int, int]]
    context: list[int]
    start: np.ndarray
    end: np.ndarray

    @cached_property
    def marks(self) -> TokenMarks:
        """The window tokens repeating a content word of the question, and those inside words."""
        return mark_tokens(set(tokenize(self.question)), self.window, self.offsets, self.context)


def read_all(readers: Readers, refresh: bool) -> list[Logits]:
    def item(snapshot: Snapshot, q: Question, row: int, gold: set[int], reader: Reader) -> Logits:
        window = sentence_window(snapshot, row)[0]
        enc, start, end = reader.logits(q.text, window)
        return Logits(q.article, q.text, q.answers, row in gold, window, list(enc.offsets),
                      context_tokens(enc.sequence_ids), start, end)

    return read_top_windows("reader-spans", readers, refresh, item)


Rule = Callable[[Logits], tuple[int, int]]


def length_rule(penalty: float = 0.0, max_tokens: int = MAX_SPAN_TOKENS, tie: float = END_TIE, free: int = 1,
                echo: float = 0.0, whole: bool = False) -> Rule:
    """``best_token_span`` with these settings: less ``penalty`` for each token past the first ``free`` and ``echo``
    for each token repeating the question, at most ``max_tokens`` long, ends within ``tie`` of the best tied (the
    longer span wins); ``whole``: starting and ending at word boundaries."""

    def pick(item: Logits) -> tuple[int, int]:
        marks = item.marks
        if not whole:
            marks = TokenMarks(marks.echo, np.zeros_like(marks.inside), np.zeros_like(marks.cut))
        _, i, j, _ = best_token_span(item.start, item.end, item.context, max_tokens, tie, penalty, free, marks, echo)
        return item.offsets[i][0], item.offsets[j][1]

    return pick


def per_question(items: list[Logits], rule: Rule) -> tuple[np.ndarray, np.ndarray]:
    """EM and F1 of each item's span."""
    em, f1 = [], []
    for item in items:
        a, b = rule(item)
        span = item.window[a:b].strip()
        em.append(best_over_golds(exact_match, span, item.answers))
        f1.append(best_over_golds(token_f1, span, item.answers))
    return np.array(em), np.array(f1)


def scores(items: list[Logits], rule: Rule) -> tuple[float, float, float, float]:
    """EM and F1 over all ``items``, then over those whose top sentence holds an answer."""
    em, f1 = per_question(items, rule)
    hit = np.array([i.hit for i in items])
    return float(em.mean()), float(f1.mean()), float(em[hit].mean()), float(f1[hit].mean())


def misses(items: list[Logits], rule: Rule) -> dict[str, int]:
    """A rule's EM misses where the top sentence holds an answer: the span holds a gold answer and more (too long),
    lies inside one (too short), shares words with one (overlapping), or shares none (elsewhere)."""
    kinds = {"too long": 0, "too short": 0, "overlapping": 0, "elsewhere": 0}
    for item in items:
        if not item.hit:
            continue
        a, b = rule(item)
        span = normalize_answer(item.window[a:b])
        golds = [normalize_answer(g) for g in item.answers]
        if span in golds:
            continue
        if any(g and g in span for g in golds):
            kinds["too long"] += 1
        elif span and any(span in g for g in golds):
            kinds["too short"] += 1
        elif any(token_f1(item.window[a:b], g) > 0 for g in item.answers):
            kinds["overlapping"] += 1
        else:
            kinds["elsewhere"] += 1
    return kinds


def main() -> None:
    configure()
    parser = argparse.ArgumentParser()
    parser.add_argument("--folds", required=True, help="comma-separated fold reader folders (fold 0 first)")
    parser.add_argument("--refresh", action="store_true",
                        help="read again (after the window or span code changed; other readers have their own cache)")
    args = parser.parse_args()
    data = read_all(Readers([Path(p) for p in args.folds.split(",")]), args.refresh)
    tune = set(split_articles()[0])
    tuning = [d for d in data if d.article in tune]
    held = [d for d in data if d.article not in tune]
    shipped = length_rule(LENGTH_PENALTY, free=LENGTH_FREE, echo=ECHO_PENALTY, whole=True)
    length = length_rule(LENGTH_PENALTY, free=LENGTH_FREE)
    plain = length_rule()
    print(f"{len(tuning)} tuning and {len(held)} held-out questions; EM misses where the top sentence holds an "
          f"answer, with no penalty: tune {misses(tuning, plain)}, held-out {misses(held, plain)}; with the shipped "
          f"length penalty alone (no echo penalty, spans may cut words): tune {misses(tuning, length)}, held-out "
          f"{misses(held, length)}; with the shipped rule: tune {misses(tuning, shipped)}, held-out "
          f"{misses(held, shipped)}\n")
    # (length penalty, tie, penalty-free tokens, echo penalty, longest span, whole words)
    rules: dict[tuple[float, float, int, float, int, bool], str] = {
        (0.0, END_TIE, 1, 0.0, MAX_SPAN_TOKENS, False): "no penalty"}
    for penalty in (0.05, 0.1, 0.2, 0.3, 0.5):
        rules[(penalty, END_TIE, 1, 0.0, MAX_SPAN_TOKENS, False)] = f"length {penalty:g} a token"
    for penalty in (0.05, 0.1, 0.2):
        rules[(penalty, 0.0, 1, 0.0, MAX_SPAN_TOKENS, False)] = f"length {penalty:g} a token, no ties"
    for longest in (20, 15, 10):
        rules[(0.0, END_TIE, 1, 0.0, longest, False)] = f"at most {longest} tokens"
    for whole in (False, True):
        for echo in (0.0, 0.25, 0.5, 1.0, 2.0):
            for penalty in (0.05, 0.1, 0.2, 0.3):
                for free in (4, 6, 8):
                    rules[(penalty, END_TIE, free, echo, MAX_SPAN_TOKENS, whole)] = (
                        f"length {penalty:g} a token past {free}" + (f", echo {echo:g} a token" if echo else "")
                        + (", whole words" if whole else ""))
    table = {key: (*scores(tuning, length_rule(p, m, t, f, e, w)), *scores(held, length_rule(p, m, t, f, e, w)))
             for key in rules for p, t, f, e, m, w in [key]}
    chosen = max(table, key=lambda key: table[key][0] + table[key][1])
    shipped_key = (LENGTH_PENALTY, END_TIE, LENGTH_FREE, ECHO_PENALTY, MAX_SPAN_TOKENS, True)
    print("| rule | tune EM | tune F1 | tune EM, top sentence right | tune F1, top sentence right | held-out EM | "
          "held-out F1 | held-out EM, top right | held-out F1, top right |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key, label in rules.items():
        marks = [m for m, k in (("chosen", chosen), ("shipped", shipped_key)) if k == key]
        label += f" ({', '.join(marks)})" if marks else ""
        print(f"| {label} | " + " | ".join(f"{v:.3f}" for v in table[key]) + " |")
    if chosen != shipped_key:
        gain, se = paired_gain(*(sum(per_question(tuning, length_rule(p, m, t, f, e, w)))
                                 for p, t, f, e, m, w in (shipped_key, chosen)))
        print(f"\nChosen against shipped on the tuning questions: EM + F1 {gain:+.4f}, standard error {se:.4f}; "
              f"{'past one standard error: the chosen rule should ship' if gain > se else 'the shipped rule stays'}.")
    print("\nBy question word (EM where the top sentence holds an answer; no penalty → shipped length penalty alone → "
          "shipped rule):")
    for word in sorted({question_word(i.question) for i in tuning}):
        cells = []
        for part in (tuning, held):
            sel = [i for i in part if question_word(i.question) == word and i.hit]
            cells.append(f"n={len(sel)} " + " → ".join(f"{scores(sel, r)[0]:.3f}" for r in (plain, length, shipped))
                         if sel else "-")
        print(f"  {word}: tune {cells[0]}; held-out {cells[1]}")


if __name__ == "__main__":
    main()
