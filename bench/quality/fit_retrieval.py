"""Fit ``FusionWeights`` by logistic regression on candidate features of the tuning articles only.

Input: the ``--dump`` of ``retrieval.py``. Prints each feature subset's P@1/MRR on tune and held-out
articles when candidates are re-ranked by the fitted linear score, and the coefficients to hard-code.
Run: ``.venv/bin/python bench/quality/fit_retrieval.py features.pkl``
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parent))
from squad import configure, split_articles  # noqa: E402

BASE = ["dense", "lexical", "coverage"]
SETS = {
    "sentence only": BASE,
    "+ rrf": [*BASE, "rrf"],
    "+ para_lexical": [*BASE, "para_lexical"],
    "+ para_dense_max": [*BASE, "para_dense_max"],
    "+ para_dense_mean": [*BASE, "para_dense_mean"],
    "+ para_coverage": [*BASE, "para_coverage"],
    "+ title_coverage": [*BASE, "title_coverage"],
    "+ para_lexical_sum": [*BASE, "para_lexical_sum"],
    "+ para_coverage + packaged dense": [*BASE, "para_coverage", "evidence_dense"],
    "+ para_coverage + packaged dense, both": [*BASE, "para_coverage", "evidence_dense", "evidence_para_dense_max"],
    "all context": ["para_lexical_sum", *BASE, "para_lexical", "para_dense_max", "para_dense_mean",
                    "para_coverage", "title_coverage"],
}


def evaluate(dump: list[dict], names: list[str], coef: np.ndarray) -> tuple[float, float]:
    """P@1 and MRR@10 when each question's candidates are sorted by ``features · coef``."""
    p1 = mrr = 0.0
    for item in dump:
        x = np.array([[f[n] for n in names] for f in item["features"]])
        order = np.argsort(-(x @ coef), kind="stable")[:10]
        labels = np.array(item["labels"])[order]
        hits = np.flatnonzero(labels)
        if hits.size:
            p1 += hits[0] == 0
            mrr += 1 / (hits[0] + 1)
    n = max(len(dump), 1)
    return p1 / n, mrr / n


def fit(dump: list[dict], names: list[str], c: float = 1.0) -> np.ndarray:
    """Logistic regression of 'this candidate is a gold sentence' on the named features."""
    x = np.array([[f[n] for n in names] for item in dump for f in item["features"]])
    y = np.array([lab for item in dump for lab in item["labels"]])
    model = LogisticRegression(C=c, max_iter=2000)
    model.fit(x, y)
    return model.coef_[0]


def fit_pairwise(dump: list[dict], names: list[str], c: float = 1.0, negatives: int = 10) -> np.ndarray:
    """Pairwise logistic fit (gold minus a top-ranked non-gold candidate): learns an ordering, not a probability."""
    xs, ys = [], []
    for item in dump:
        x = np.array([[f[n] for n in names] for f in item["features"]])
        labels = np.array(item["labels"])
        if not labels.any() or labels.all():
            continue
        gold = x[labels]
        negs = [i for i in range(len(labels)) if not labels[i]]
        for g in gold[:1]:
            for i in negs:
                xs += [g - x[i], x[i] - g]
                ys += [1, 0]
    model = LogisticRegression(C=c, max_iter=2000, fit_intercept=False)
    model.fit(np.array(xs), np.array(ys))
    return model.coef_[0]


def padded(dump: list[dict], names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Features as a (questions, candidates, features) array, and labels (padding rows are never gold)."""
    width = max(len(d["labels"]) for d in dump)
    x = np.full((len(dump), width, len(names)), -1e3)
    y = np.zeros((len(dump), width), dtype=bool)
    for i, d in enumerate(dump):
        x[i, : len(d["labels"])] = [[f[n] for n in names] for f in d["features"]]
        y[i, : len(d["labels"])] = d["labels"]
    return x, y


def fast_metrics(x: np.ndarray, y: np.ndarray, coef: np.ndarray) -> tuple[float, float]:
    """P@1 and MRR@10 of the linear score on a padded array."""
    scores = x @ coef
    gold_best = np.where(y, scores, -np.inf).max(axis=1)
    better = (scores > gold_best[:, None]).sum(axis=1)
    has = y.any(axis=1)
    p1 = float(((better == 0) & has).mean())
    mrr = float(np.where(has & (better < 10), 1 / (better + 1), 0).mean())
    return p1, mrr


def coordinate_ascent(x: np.ndarray, y: np.ndarray, coef: np.ndarray, rounds: int = 4) -> np.ndarray:
    """Greedy per-weight line search on P@1 + MRR, starting from ``coef`` (first weight fixed as the scale)."""
    best = np.array(coef, dtype=float)
    best_val = sum(fast_metrics(x, y, best))
    for _ in range(rounds):
        for j in range(1, len(best)):
            for factor in (-1.0, -0.5, 0.0, 0.25, 0.5, 0.75, 0.9, 1.1, 1.25, 1.5, 2.0, 3.0):
                trial = best.copy()
                trial[j] = best[j] * factor if best[j] else factor
                val = sum(fast_metrics(x, y, trial))
                if val > best_val + 1e-9:
                    best, best_val = trial, val
    return best


def main() -> None:
    configure()
    dump = pickle.loads(Path(sys.argv[1]).read_bytes())
    tune_titles, _ = split_articles()
    tune = [d for d in dump if d["article"] in tune_titles]
    held = [d for d in dump if d["article"] not in tune_titles]
    print("| features | tune P@1 | tune MRR@10 | held-out P@1 | held-out MRR@10 | coefficients |")
    print("|---|---|---|---|---|---|")
    for label, names in SETS.items():
        coef = fit_pairwise(tune, names) if "--pairwise" in sys.argv else fit(tune, names)
        if "--ascent" in sys.argv:
            coef = coordinate_ascent(*padded(tune, names), coef)
        tp, tm = evaluate(tune, names, coef)
        hp, hm = evaluate(held, names, coef)
        shown = ", ".join(f"{n}={c:.3f}" for n, c in zip(names, coef, strict=True))
        print(f"| {label} | {tp:.3f} | {tm:.3f} | {hp:.3f} | {hm:.3f} | {shown} |")


if __name__ == "__main__":
    main()
