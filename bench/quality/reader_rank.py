"""Fit ``ReaderRanking``: re-order the top retrieved sentences by the reader's readings of their windows.

Every v1.1 question on the 17-article index, its top windows read by the reader that never saw its article (fold
readers for tuning articles, the shipped one for held-out ones; ``reader_features.ranking_data``). The weights are a
conditional logit over the top ``K`` candidates (softmax over them, the likelihood of the ones holding an answer
start), L2-regularised on standardised features, fitted on tuning articles only; leave one tuning article out
estimates it on unseen articles, and held-out articles are only reported.

Run: ``.venv/bin/python bench/quality/reader_rank.py --squad-v11 … --question-folds DIR0,DIR1 --folds DIR0,…
[--windows 3]``
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reader_features import Readers, paired_gain, ranking_data  # noqa: E402
from retrieval import first_hit  # noqa: E402
from squad import configure, split_articles  # noqa: E402

from rag.answer.compose import READER_MOVE  # noqa: E402
from rag.answer.reader_rank import ReaderRanking, features  # noqa: E402
from rag.retrieve import Candidate  # noqa: E402

L2 = 1.0
SHIPPED_CAP = ReaderRanking(0.0, 0.0, 0.0).margin_cap


def read_top(item: dict, k: int) -> tuple[list[Candidate], list[float], list[int | None]]:
    """One question's top ``k`` candidates with their windows' margins and span rows, as ``ReaderRanking`` takes
    them in the answer path."""
    readings = item["readings"][:k]
    return ([Candidate(row, score) for row, score in zip(item["rows"][:k], item["scores"][:k], strict=True)],
            [r.margin for r in readings], [r.span_row for r in readings])


def design(item: dict, k: int, cap: float = SHIPPED_CAP) -> np.ndarray:
    """(k, features) of one question's top ``k`` candidates, margins within ±``cap``."""
    return np.array(features(*read_top(item, k), cap))


def xy(items: list[dict], k: int, cap: float = SHIPPED_CAP) -> tuple[np.ndarray, np.ndarray]:
    """The design matrices of ``items``' top ``k`` and which of those candidates hold an answer start."""
    return (np.stack([design(it, k, cap) for it in items]),
            np.array([[r in it["gold"] for r in it["rows"][:k]] for it in items], float))


def fit(x: np.ndarray, y: np.ndarray, cap: float = SHIPPED_CAP) -> ReaderRanking:
    """The conditional logit's weights on the raw features, margins within ±``cap`` (questions with no answer in the
    top ``k`` carry no information about the order and are left out)."""
    keep = y.sum(axis=1) > 0
    x, y = x[keep], y[keep]
    sd = x.reshape(-1, x.shape[2]).std(axis=0) + 1e-9
    xs = x / sd  # a shift common to every candidate cancels in the softmax, so no centring

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = xs @ w
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        gold = (p * y).sum(axis=1, keepdims=True)
        grad = ((p - y * p / gold)[:, :, None] * xs).sum(axis=(0, 1))
        return float(-np.log(gold).sum() + L2 * w @ w), grad + 2 * L2 * w

    w = minimize(loss, np.zeros(x.shape[2]), jac=True, method="L-BFGS-B").x / sd
    return ReaderRanking(*(round(float(v), 4) for v in w), margin_cap=cap)


def ranking(item: dict, model: ReaderRanking | None, k: int, move: float = math.inf) -> list[int]:
    """The rows in the answer path's order: the top ``k`` re-ordered by ``model``, then the sentence holding the
    first one's span moved first when it is a neighbour and the span beats "no answer" by more than ``move``."""
    rows = list(item["rows"])
    if model is None:
        return rows
    order = model.order(*read_top(item, k))
    rows = [rows[i] for i in order] + rows[k:]
    first = item["readings"][order[0]]
    if first.holder >= 0 and first.holder != rows[0] and first.margin > move:
        rows = [first.holder, *[r for r in rows if r != first.holder]]
    return rows


def hits(items: list[dict], models: list[ReaderRanking | None], k: int, move: float = math.inf
         ) -> tuple[np.ndarray, np.ndarray]:
    """Per question: top-1 hit and reciprocal rank of the first hit (within 10), each under its own model."""
    ranks = [first_hit(ranking(it, m, k, move), it["gold"]) for it, m in zip(items, models, strict=True)]
    return (np.array([r == 0 for r in ranks], float),
            np.array([0.0 if r is None else 1 / (r + 1) for r in ranks]))


def main() -> None:
    configure()
    parser = argparse.ArgumentParser()
    parser.add_argument("--folds", required=True, help="comma-separated fold reader folders (fold 0 first)")
    parser.add_argument("--windows", type=int, default=3,
                        help="windows read per question: top 2 to this many are fitted (the answer path reads 3)")
    args = parser.parse_args()
    windows = args.windows
    data = ranking_data(Readers([Path(p) for p in args.folds.split(",")]), windows)
    tune_articles = split_articles()[0]
    tune = [d for d in data if d["article"] in tune_articles]
    held = [d for d in data if d["article"] not in tune_articles]
    base_t, base_t_rr = hits(tune, [None] * len(tune), windows)
    base_h, base_h_rr = hits(held, [None] * len(held), windows)
    print("| windows read and re-ordered | tune P@1 (leave one article out) | tune MRR@10 | held-out P@1 | "
          "held-out MRR@10 |")
    print("|---|---|---|---|---|")
    print(f"| none: retrieval's order | {base_t.mean():.3f} | {base_t_rr.mean():.3f} | {base_h.mean():.3f} | "
          f"{base_h_rr.mean():.3f} |")
    cv_models: list[ReaderRanking | None] = []
    model = None
    with_move = {}  # per k: tuning P@1 + MRR with the shipped move, to compare window counts as the answer path reads
    for k in range(2, windows + 1):
        # Each tuning question is ordered by the model fitted without its article.
        left_out = {a: fit(*xy([d for d in tune if d["article"] != a], k)) for a in tune_articles}
        cv_models = [left_out[d["article"]] for d in tune]
        cv, cv_rr = hits(tune, cv_models, k)
        model = fit(*xy(tune, k))
        h, h_rr = hits(held, [model] * len(held), k)
        gain, se = paired_gain(base_t + base_t_rr, cv + cv_rr)
        print(f"| top {k} | {cv.mean():.3f} | {cv_rr.mean():.3f} | {h.mean():.3f} | {h_rr.mean():.3f} |"
              f"  <!-- tune P@1 + MRR {gain:+.4f}, standard error {se:.4f} -->")
        with_move[k] = sum(hits(tune, cv_models, k, READER_MOVE))
    print(f"\nFitted on every tuning question, top {windows}: {model}")
    # The margin within ±10, as the abstention model caps it, refitted on the same windows.
    left_out = {a: fit(*xy([d for d in tune if d["article"] != a], windows, 10.0), 10.0) for a in tune_articles}
    capped = hits(tune, [left_out[d["article"]] for d in tune], windows, READER_MOVE)
    gain, se = paired_gain(sum(capped), with_move[windows])
    print(f"Top {windows}, margins within ±{SHIPPED_CAP:g} against ±10, both moving above {READER_MOVE:g}: tune P@1 +"
          f" MRR {gain:+.4f}, standard error {se:.4f}")
    for k in sorted(set(with_move) - {3}) if 3 in with_move else []:
        gain, se = paired_gain(with_move[3], with_move[k])
        print(f"Top {k} against top 3, both moving above {READER_MOVE:g}: tune P@1 + MRR {gain:+.4f}, "
              f"standard error {se:.4f}")

    # After the re-ordering, the first sentence's span may lie in a neighbour: when does that neighbour go first?
    print(f"\n| top {windows} re-ordered, then a neighbour holding the first window's span goes first when margin > | "
          "tune P@1 | tune MRR@10 | held-out P@1 | held-out MRR@10 |")
    print("|---|---|---|---|---|")
    moves = (*sorted({8.0, 10.0, 12.0, 14.0, READER_MOVE}), math.inf)
    per_move = {m: hits(tune, cv_models, windows, m) for m in moves}
    best = max(moves, key=lambda m: sum(per_move[m][0] + per_move[m][1]))
    for m in moves:
        h, h_rr = hits(held, [model] * len(held), windows, m)
        label = ("never" if m == math.inf else f"{m:g}") + (" (fitted)" if m == best else "")
        print(f"| {label} | {per_move[m][0].mean():.3f} | {per_move[m][1].mean():.3f} | {h.mean():.3f} |"
              f" {h_rr.mean():.3f} |")
    # 8: the move fitted for one window read alone (reader_floor.py).
    for other in sorted({8.0, READER_MOVE, math.inf} - {best}):
        gain, se = paired_gain(sum(per_move[other]), sum(per_move[best]))
        name = "never" if other == math.inf else f"{other:g}"
        print(f"\nFitted against {name}: tune P@1 + MRR {gain:+.4f}, standard error {se:.4f}"
              f" ({'past' if gain > se else 'within'} one standard error).")


if __name__ == "__main__":
    main()
