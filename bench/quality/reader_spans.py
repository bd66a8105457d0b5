"""How should the reader's logits become a span? Span-length rules for the top window, chosen on tuning articles.

Reads the top window of every v1.1 question as the answer path does (``compose.read_windows``'s window), each tuning
question with the fold reader that never saw its article, each held-out one with the shipped reader, and keeps the
logits. Then scores decoding rules by the EM and F1 of the span they pick, over all questions and over those whose
top sentence holds an answer, and sorts the misses on those into too long, too short and the rest.

Run: ``.venv/bin/python bench/quality/reader_spans.py --squad-v11 … --folds DIR0,DIR1 [--question-folds …]``
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reader_features import Readers, read_top_windows  # noqa: E402
from squad import Question, configure, split_articles  # noqa: E402

from rag.answer.compose import sentence_window  # noqa: E402
from rag.answer.question_types import question_word  # noqa: E402
from rag.answer.reader import (  # noqa: E402
    END_TIE,
    LENGTH_FREE,
    LENGTH_PENALTY,
    MAX_SPAN_TOKENS,
    Reader,
    best_token_span,
    context_tokens,
)
from rag.evaluation.metrics import best_over_golds, exact_match, normalize_answer, token_f1  # noqa: E402
from rag.index.snapshot import Snapshot  # noqa: E402


@dataclass(frozen=True)
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


def read_all(readers: Readers, refresh: bool) -> list[Logits]:
    def item(snapshot: Snapshot, q: Question, row: int, gold: set[int], reader: Reader) -> Logits:
        window = sentence_window(snapshot, row)[0]
        (enc,), starts, ends = reader.logits(q.text, [window])
        n = len(enc.ids)
        return Logits(q.article, q.text, q.answers, row in gold, window, list(enc.offsets),
                      context_tokens(enc.sequence_ids), starts[0][:n], ends[0][:n])

    return read_top_windows("reader-spans", readers, refresh, item)


Rule = Callable[[Logits], tuple[int, int]]


def length_rule(penalty: float = 0.0, max_tokens: int = MAX_SPAN_TOKENS, tie: float = END_TIE, free: int = 1) -> Rule:
    """``best_token_span`` with these settings: less ``penalty`` for each token past the first ``free``, at most
    ``max_tokens`` long, ends within ``tie`` of the best tied (the longer span wins)."""

    def pick(item: Logits) -> tuple[int, int]:
        _, i, j, _ = best_token_span(item.start, item.end, item.context, max_tokens, tie, penalty, free)
        return item.offsets[i][0], item.offsets[j][1]

    return pick


def scores(items: list[Logits], rule: Rule) -> tuple[float, float, float, float]:
    """EM and F1 over all ``items``, then over those whose top sentence holds an answer."""
    em, f1 = [], []
    for item in items:
        a, b = rule(item)
        span = item.window[a:b].strip()
        em.append(best_over_golds(exact_match, span, item.answers))
        f1.append(best_over_golds(token_f1, span, item.answers))
    hit = np.array([i.hit for i in items])
    em_a, f1_a = np.array(em), np.array(f1)
    return float(em_a.mean()), float(f1_a.mean()), float(em_a[hit].mean()), float(f1_a[hit].mean())


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
    parser.add_argument("--refresh", action="store_true", help="read again (after a reader changed)")
    args = parser.parse_args()
    data = read_all(Readers([Path(p) for p in args.folds.split(",")]), args.refresh)
    tune = set(split_articles()[0])
    tuning = [d for d in data if d.article in tune]
    held = [d for d in data if d.article not in tune]
    shipped = length_rule(LENGTH_PENALTY, free=LENGTH_FREE)
    plain = length_rule()
    print(f"{len(tuning)} tuning and {len(held)} held-out questions; EM misses where the top "
          f"sentence holds an answer, with no length penalty: tune {misses(tuning, plain)}, held-out "
          f"{misses(held, plain)}; with the shipped one: tune {misses(tuning, shipped)}, held-out "
          f"{misses(held, shipped)}\n")
    rules: dict[str, Rule] = {"at most 30 tokens, no length penalty": plain}
    for penalty in (0.05, 0.1, 0.2, 0.3, 0.5):
        rules[f"length penalty {penalty:g} a token"] = length_rule(penalty)
    for penalty in (0.05, 0.1, 0.2):
        rules[f"length penalty {penalty:g} a token, no ties"] = length_rule(penalty, tie=0.0)
        for free in (4, 6, 8):
            shipped_mark = " (shipped)" if (penalty, free) == (LENGTH_PENALTY, LENGTH_FREE) else ""
            rules[f"length penalty {penalty:g} a token past {free}{shipped_mark}"] = length_rule(penalty, free=free)
    for longest in (20, 15, 10):
        rules[f"at most {longest} tokens"] = length_rule(max_tokens=longest)
    print("| rule | tune EM | tune F1 | tune EM, top sentence right | tune F1, top sentence right | held-out EM | "
          "held-out F1 | held-out EM, top right | held-out F1, top right |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, rule in rules.items():
        cells = (*scores(tuning, rule), *scores(held, rule))
        print(f"| {label} | " + " | ".join(f"{v:.3f}" for v in cells) + " |")
    print("\nBy question word (EM where the top sentence holds an answer; no penalty → shipped rule):")
    for word in sorted({question_word(i.question) for i in tuning}):
        cells = []
        for part in (tuning, held):
            sel = [i for i in part if question_word(i.question) == word and i.hit]
            cells.append(f"n={len(sel)} {scores(sel, plain)[0]:.3f} → {scores(sel, shipped)[0]:.3f}" if sel else "-")
        print(f"  {word}: tune {cells[0]}; held-out {cells[1]}")


if __name__ == "__main__":
    main()
