"""Compare a retrained fold reader with the one it would replace, on the tuning questions only that fold never saw.

A training variant is worth retraining every fold reader and the shipped one for only if it re-orders the top
windows better; one fold tells that in half an hour. Both readers read the top ``--windows`` windows of that fold's
v1.1 questions on the 17-article index, and each question is ordered four ways: retrieval's order, the margin alone,
the shipped ``READER_RANKING`` (fitted on the current readers), and a ranking fitted without the question's article on
the same fold's other articles (the fair test of a reader whose margins are scaled differently). The gains are paired,
with their standard errors (``reader_features.paired_gain``).

Run: ``.venv/bin/python bench/quality/reader_fold_compare.py --squad-v11 … --question-folds DIR0,DIR1
--folds DIR0,DIR1,DIR2,DIR3 --fold 0 --candidate DIR [--windows 5]``
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reader_features import Readers, paired_gain, ranking_data  # noqa: E402
from reader_rank import fit, hits, xy  # noqa: E402
from squad import configure, split_articles  # noqa: E402

from rag.answer.compose import READER_MOVE  # noqa: E402
from rag.answer.reader_rank import READER_RANKING, ReaderRanking  # noqa: E402

Hits = tuple[np.ndarray, np.ndarray]


# The windows ordered by the reader's margin alone, uncapped (ties keep retrieval's order).
BY_MARGIN = ReaderRanking(score_gap=0.0, margin=1.0, spans_held=0.0, margin_cap=math.inf)


def left_out_fit(items: list[dict], k: int) -> Hits:
    """Each question ordered by the ranking fitted on the other articles of ``items``, then the shipped move."""
    models = {a: fit(*xy([d for d in items if d["article"] != a], k)) for a in {d["article"] for d in items}}
    return hits(items, [models[d["article"]] for d in items], k, READER_MOVE)


def main() -> None:
    configure()
    parser = argparse.ArgumentParser()
    parser.add_argument("--folds", required=True, help="the current fold reader folders, fold 0 first")
    parser.add_argument("--fold", type=int, required=True, help="the fold the candidate was trained for")
    parser.add_argument("--candidate", type=Path, required=True, help="the retrained fold reader's folder")
    parser.add_argument("--windows", type=int, default=5, help="windows read per question (the answer path's 5)")
    args = parser.parse_args()
    current = [Path(p) for p in args.folds.split(",")]
    if not 0 <= args.fold < len(current):
        parser.error(f"--fold must be from 0 to {len(current) - 1}")
    k = args.windows
    tune = split_articles()[0]
    articles = set(tune[args.fold::len(current)])
    # Only the fold's questions change readers, but every question is read: the caches are whole-set.
    replaced = [args.candidate if i == args.fold else d for i, d in enumerate(current)]
    before, after = ([d for d in ranking_data(Readers(dirs), k) if d["article"] in articles]
                     for dirs in (current, replaced))
    assert [d["rows"] for d in before] == [d["rows"] for d in after]
    print(f"fold {args.fold}: {len(before)} questions of {', '.join(sorted(articles))}; top {k} windows\n")
    ways: dict[str, Callable[[list[dict]], Hits]] = {
        "retrieval's order": lambda d: hits(d, [None] * len(d), k),
        "the margin alone": lambda d: hits(d, [BY_MARGIN] * len(d), k),
        "READER_RANKING as shipped, then the move": lambda d: hits(d, [READER_RANKING] * len(d), k, READER_MOVE),
        "fitted without the question's article, then the move": lambda d: left_out_fit(d, k),
    }
    print("| order | current P@1 | current MRR@10 | candidate P@1 | candidate MRR@10 | P@1 + MRR gain (SE) |")
    print("|---|---|---|---|---|---|")
    for name, way in ways.items():
        (p0, r0), (p1, r1) = way(before), way(after)
        gain, se = paired_gain(p0 + r0, p1 + r1)
        print(f"| {name} | {p0.mean():.3f} | {r0.mean():.3f} | {p1.mean():.3f} | {r1.mean():.3f} | "
              f"{gain:+.4f} ({se:.4f}) |")
    print(f"\nFitted on the fold's questions: current {fit(*xy(before, k))}, candidate {fit(*xy(after, k))}")


if __name__ == "__main__":
    main()
