"""When should the reader's span give way to the heuristic one? Short answers and top citations of the top window.

The answer path reads the top candidate's window. The reader's span stands when it beats "no answer" by more than
a floor, else the heuristic span of the top sentence does; a span in a neighbour moves that sentence to the first
citation, so it needs a surer margin. The abstention model has already judged the question answerable by then,
so an unsure span may still beat the heuristic one. Both thresholds are chosen on the tuning articles, each
tuning question read by the fold reader that never saw its article (see ``reader_features.py``); held-out
questions are read by the shipped reader and only reported.

Run: ``.venv/bin/python bench/quality/reader_floor.py --squad-v11 … --folds DIR0,DIR1 [--refresh]``
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reader_features import Readers, paired_gain, read_top_windows  # noqa: E402
from squad import Question, configure, split_articles  # noqa: E402

from rag.answer.compose import read_windows, span_holder  # noqa: E402
from rag.answer.question_types import span_type  # noqa: E402
from rag.answer.reader import Reader  # noqa: E402
from rag.answer.spans import best_span, has_answer_type  # noqa: E402
from rag.evaluation.metrics import best_over_golds, exact_match, token_f1  # noqa: E402
from rag.index.snapshot import Snapshot  # noqa: E402


@dataclass(frozen=True)
class Item:
    """One v1.1 question's top window as the answer path sees it."""

    article: str
    question: str
    answers: list[str]
    top_row: int
    gold: set[int]
    heuristic: str | None
    span: str
    holder: int  # the row holding the reader's span, -1 when it crosses sentences
    margin: float


def items(readers: Readers, refresh: bool) -> list[Item]:
    def item(snapshot: Snapshot, q: Question, row: int, gold: set[int], reader: Reader) -> Item:
        read = read_windows(q.text, [row], snapshot, reader)[0]
        window, reading = read.window, read.reading
        holder = span_holder(read.layout, reading.start, reading.end)
        heuristic = best_span(q.text, snapshot.texts[row], span_type(q.text))
        return Item(q.article, q.text, q.answers, row, gold, heuristic, window[reading.start:reading.end].strip(),
                    -1 if holder is None else holder, reading.margin)

    return read_top_windows("reader-floor", readers, refresh, item)


def answer(item: Item, floor: float, move: float, typed: bool, aside: float = math.inf) -> tuple[str, int]:
    """The short answer and the first cited row: the reader's span stands when its margin beats ``floor`` and it
    lies in the top sentence, or beats ``move`` wherever it lies (its sentence is then cited first), or beats
    ``aside`` in a neighbour (its sentence is then cited after the top one); else the heuristic span of the top
    sentence. ``typed``: the heuristic span also wins when a date or number question's reader span holds no date or
    number."""
    top = item.holder == item.top_row
    stands = item.holder >= 0 and item.span and (item.margin > min(move, aside) or item.margin > floor and top)
    if stands and typed and item.heuristic and not has_answer_type(item.span, span_type(item.question)):
        stands = False
    if not stands:
        return item.heuristic or "", item.top_row
    return item.span, item.holder if top or item.margin > move else item.top_row


def per_question(sel: list[Item], floor: float, move: float, typed: bool = False, aside: float = math.inf
                 ) -> np.ndarray:
    """Hit@1, EM and F1 of each item (rows)."""
    out = []
    for it in sel:
        span, first = answer(it, floor, move, typed, aside)
        out.append((first in it.gold, best_over_golds(exact_match, span, it.answers),
                    best_over_golds(token_f1, span, it.answers)))
    return np.array(out, float).reshape(-1, 3)


def scores(sel: list[Item], floor: float, move: float, typed: bool = False, aside: float = math.inf
           ) -> tuple[float, float, float]:
    hit, em, f1 = per_question(sel, floor, move, typed, aside).mean(axis=0)
    return float(hit), float(em), float(f1)


def margin(v: float) -> str:
    return "never" if v == float("inf") else "any margin" if v == -float("inf") else f"{v:g}"


def main() -> None:
    configure()
    parser = argparse.ArgumentParser()
    parser.add_argument("--folds", required=True, help="comma-separated fold reader folders (fold 0 first)")
    parser.add_argument("--refresh", action="store_true",
                        help="read again (after the window or span code changed; other readers have their own cache)")
    args = parser.parse_args()
    data = items(Readers([Path(p) for p in args.folds.split(",")]), args.refresh)
    tune = set(split_articles()[0])
    tuning = [d for d in data if d.article in tune]
    held = [d for d in data if d.article not in tune]
    never = float("inf")
    rules = [(f, m) for f in (2.0, 0.0, -2.0, -4.0, -6.0, -never) for m in (0.0, 2.0, 4.0, 8.0, never) if m >= f]
    best = max(rules, key=lambda r: sum(scores(tuning, *r)))
    print("| span stands in the top sentence when margin > | elsewhere (moving the citation) when > | tune hit@1 | "
          "tune EM | tune F1 | held-out hit@1 | held-out EM | held-out F1 |")
    print("|---|---|---|---|---|---|---|---|")
    for floor, move in [(never, never), *rules]:
        label = ("never (heuristic span only) | never" if floor == never else
                 f"{margin(floor)} | {margin(move)}" + (" (fitted)" if (floor, move) == best else ""))
        cells = (*scores(tuning, floor, move), *scores(held, floor, move))
        print(f"| {label} | " + " | ".join(f"{v:.3f}" for v in cells) + " |")
    cells = (*scores(tuning, *best, typed=True), *scores(held, *best, typed=True))
    print(f"| {margin(best[0])}, and a date or number question's span must hold one | {margin(best[1])} | "
          + " | ".join(f"{v:.3f}" for v in cells) + " |")
    print("\nWith that rule, a neighbour's span that does not move the citation may still be the short answer "
          "(its sentence cited second):\n")
    print("| a neighbour's span is the short answer when margin > | tune hit@1 | tune EM | tune F1 | held-out hit@1 | "
          "held-out EM | held-out F1 |")
    print("|---|---|---|---|---|---|---|")
    asides = (never, *sorted({m for m in (-never, -4.0, -2.0, 0.0, 2.0, 4.0) if m < best[1]}))
    # "never" first, so that a tie keeps the rule without the neighbour's span.
    chosen = max(asides, key=lambda a: sum(scores(tuning, *best, True, a)))
    for aside in asides:
        cells = (*scores(tuning, *best, True, aside), *scores(held, *best, True, aside))
        label = margin(aside) + (" (fitted)" if aside == chosen else "")
        print(f"| {label} | " + " | ".join(f"{v:.3f}" for v in cells) + " |")
    if chosen != never:
        gain, se = paired_gain(*(per_question(tuning, *best, True, a).sum(axis=1) for a in (never, chosen)))
        print(f"\nFitted against never on the tuning questions: hit@1 + EM + F1 {gain:+.4f}, standard error {se:.4f}"
              f" ({'past' if gain > se else 'within'} one standard error).")


if __name__ == "__main__":
    main()
