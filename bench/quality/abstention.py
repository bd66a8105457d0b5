"""Abstention on SQuAD v2.0 and out-of-corpus questions, on a large and a small index, and on the seed set.

Indexes: the 17 v1.1 articles ("17"), the 6 v2.0 articles as ``rag eval`` builds them ("6"), and the 4 v2.0
tuning articles alone ("4"). Questions: SQuAD 2.0 (answerable + unanswerable), v1.1 questions whose own article is
hidden from the search or absent from the index (out-of-corpus), and v1.1 questions asked normally (answerable).
``--fit`` fits ``AbstentionModel`` by logistic regression on **tuning articles only**; the threshold is the largest
that keeps false abstention at or under ``--target`` (default 0.03) on the answerable tuning questions of every
tuning group, so the held-out articles are only reported.
Run: ``.venv/bin/python bench/quality/abstention.py --squad-v11 … --squad-v20 … [--fit | --cv] [--fit-on 17,4]
[--features a,b] [--target 0.03] [--question-folds DIR0,DIR1] [--reader-folds DIR0,…]``
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from retrieval import question_vectors  # noqa: E402
from seed import seed_pipeline  # noqa: E402
from squad import CACHE, DATA, build_index, configure, question_tag, source_by_title, split_articles  # noqa: E402

from rag.answer.abstention import (  # noqa: E402
    ABSTAIN_THRESHOLD,
    READER_ABSTAIN_THRESHOLD,
    READER_ABSTENTION,
    AbstentionModel,
)
from rag.answer.compose import context_text  # noqa: E402
from rag.answer.question_types import AnswerType, answer_type  # noqa: E402
from rag.answer.reader_rank import READER_RANKING, reorder  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.index.snapshot import Snapshot  # noqa: E402
from rag.retrieve import Candidate, search  # noqa: E402

FIXED = ("bias", "unknown_terms")  # not fitted: see AbstentionModel
# The fitted features, chosen by leave-one-tuning-article-out cross-validation (docs/quality.md section 3).
CHOSEN = "dense,coverage,type_match,sentence_coverage,para_dense_max,number_missing"


@dataclass
class Case:
    """One question's retrieval evidence: enough to recompute any abstention feature offline."""

    index: str  # "17", "6", "4" or "seed"
    group: str  # "v2" (SQuAD 2.0), "outside" (own article not searchable), "inside" (v1.1, answerable), "seed"
    tune: bool
    answerable: bool
    candidates: list[Candidate]  # best first, truncated to what the features may look at
    article: str = ""
    sentence: str = ""
    context: str = ""
    kind: AnswerType = AnswerType.DESCRIPTION
    reader_margin: float | None = None  # set by --reader-folds: the top window read out of fold

    def features(self, model: AbstentionModel) -> dict[str, float]:
        """The model's features for this case (zeros when nothing was retrieved)."""
        if not self.candidates:
            return dict.fromkeys(model.feature_names(), 0.0)
        return model.features(self.candidates[0], self.sentence, self.context, self.kind, self.candidates,
                              self.reader_margin)


def collect(pipeline, questions: list[str], vecs: np.ndarray, index: str, group: str,  # type: ignore[no-untyped-def]
            tune: list[bool], answerable: list[bool], exclude: list[str] | None = None) -> list[Case]:
    """Search every question once and keep the evidence (``exclude[i]``: a source hidden from question i)."""
    snapshot = pipeline.snapshot()
    out = []
    for i, (q, v) in enumerate(zip(questions, vecs, strict=True)):
        cands = search(q, snapshot, pipeline.embedder, pipeline.settings.candidates,
                       pipeline.weights, query_vector=v)
        if exclude:
            cands = [c for c in cands if snapshot.sources[c.row] != exclude[i]]
        case = Case(index, group, tune[i], answerable[i], cands[:30], kind=answer_type(q))
        if cands:
            case.sentence, case.context = snapshot.texts[cands[0].row], context_text(snapshot, cands[0].row)
        out.append(case)
    return out


def _qas(path: Path, titles: set[str] | None = None) -> list[tuple[str, str, bool]]:
    """(article title, question, answerable) for every question of a SQuAD file (optionally some articles)."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    return [(a["title"], qa["question"], not qa.get("is_impossible", False))
            for a in data if titles is None or a["title"] in titles for p in a["paragraphs"] for qa in p["qas"]]


def tune_only_v20() -> Path:
    """The SQuAD 2.0 file cut down to its tuning articles (the small index a fit may see)."""
    path = CACHE / "squad-v2.0-tune-articles.json"
    tune_titles = set(split_articles()[0])
    data = json.loads(DATA.v20.read_text(encoding="utf-8"))
    data["data"] = [a for a in data["data"] if a["title"] in tune_titles]
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def build_cases() -> list[Case]:
    """Every case of every index (searched once, then cached on disk)."""
    cache = CACHE / f"abstention-cases{question_tag()}.pkl"
    if cache.exists() and "--refresh" not in sys.argv:
        return [Case(**row) for row in pickle.loads(cache.read_bytes())]  # noqa: S301 - our own cache file
    tune_titles = set(split_articles()[0])
    big, _ = build_index()
    v20, v11 = _qas(DATA.v20), _qas(DATA.v11)
    vec = {q: v for qs, name in ((v20, "v20"), (v11, "v11"))
           for (_, q, _), v in zip(qs, question_vectors(big, [q for _, q, _ in qs], name, [t for t, _, _ in qs]),
                                   strict=True)}
    cases: list[Case] = []

    def add(pipeline, qs, index, group, exclude=None, answerable=None):  # type: ignore[no-untyped-def]
        texts = [q for _, q, _ in qs]
        known = all(q in vec for q in texts)
        vecs = np.array([vec[q] for q in texts]) if known else pipeline.embedder.encode_questions(texts)
        new = collect(pipeline, texts, vecs, index, group, [t in tune_titles for t, _, _ in qs],
                      [a if answerable is None else answerable for _, _, a in qs], exclude)
        for case, (title, _, _) in zip(new, qs, strict=True):
            case.article = title
        cases.extend(new)

    sources = source_by_title(big)
    add(big, v20, "17", "v2")
    # Out-of-corpus: v1.1 questions with their own article hidden (even positions), asked normally (odd).
    add(big, v11[::2], "17", "outside", [sources[t] for t, _, _ in v11[::2]], answerable=False)
    add(big, v11[1::2], "17", "inside")
    for index, pipeline in (("6", build_index("squad20", DATA.v20)[0]),
                            ("4", build_index("squad20tune", tune_only_v20())[0])):
        present = set(source_by_title(pipeline))
        add(pipeline, v20 if index == "6" else [x for x in v20 if x[0] in tune_titles], index, "v2")
        # v1.1 questions about articles this small index lacks are out-of-corpus by construction.
        add(pipeline, [x for x in v11[::2] if x[0] not in present], index, "outside", answerable=False)
    seed = [json.loads(line) for line in DATA.seed.read_text(encoding="utf-8").splitlines()]
    add(seed_pipeline(), [("seed", s["question"], s.get("answerable", True)) for s in seed], "seed", "seed")
    cache.write_bytes(pickle.dumps([vars(c) for c in cases]))  # plain dicts: loadable from any importer
    return cases


def with_reader_margins(cases: list[Case], folds: list[Path]) -> list[Case]:
    """The cases the reader study reads (fits and reports; not the 6-article index's tuning cases) as the answer path
    sees them with the reader: the top ``RAG_READER_CANDIDATES`` windows read by the reader that never saw the
    article and re-ordered by ``READER_RANKING``, and the margin on the first one's window."""
    from reader_features import NO_READING, Readers, case_readings, pipelines, used

    readings = case_readings(cases, Readers(folds), Settings().reader_candidates)
    snapshots: dict[str, Snapshot] = {}
    kept = []
    for case, reads in zip(cases, readings, strict=True):
        if not used(case):
            continue
        if len(reads) > 1:
            order = READER_RANKING.order(case.candidates, [r.margin for r in reads], [r.span_row for r in reads])
            if order[0] != 0:
                snapshots = snapshots or {k: p.snapshot() for k, p in pipelines().items()}
                case.candidates = reorder(case.candidates, order)
                first = case.candidates[0].row
                case.sentence = snapshots[case.index].texts[first]
                case.context = context_text(snapshots[case.index], first)
            reads = [reads[i] for i in order]
        case.reader_margin = reads[0].margin if reads else NO_READING
        kept.append(case)
    return kept


def prf(abstained: np.ndarray, answerable: np.ndarray) -> dict[str, float]:
    """Abstention precision/recall/F1 (positive class: unanswerable) and false abstention on answerable."""
    tp = int((abstained & ~answerable).sum())
    p = tp / max(int(abstained.sum()), 1)
    r = tp / max(int((~answerable).sum()), 1)
    f = 2 * p * r / (p + r) if p + r else 0.0
    false_abst = int((abstained & answerable).sum()) / max(int(answerable.sum()), 1)
    return {"precision": p, "recall": r, "F1": f, "false abstention": false_abst, "n": len(answerable)}


def fit(cases: list[Case], names: list[str], c: float) -> AbstentionModel:
    """Logistic regression over ``names`` (the other fitted weights set to 0, the fixed ones kept)."""
    from sklearn.linear_model import LogisticRegression

    base = AbstentionModel(**{f.name: 0.0 for f in fields(AbstentionModel) if f.name not in FIXED})
    x = np.array([[case.features(base)[n] for n in names] for case in cases])
    y = np.array([case.answerable for case in cases])
    # Each (index, group) counts equally, so a big group of one index size cannot set the scale alone.
    keys = [(case.index, case.group) for case in cases]
    counts = {k: keys.count(k) for k in set(keys)}
    w = np.array([len(cases) / (len(counts) * counts[k]) for k in keys])
    lr = LogisticRegression(C=c, max_iter=5000).fit(x, y, sample_weight=w)
    coefs = {n: round(float(v), 3) for n, v in zip(names, lr.coef_[0], strict=True)}
    return AbstentionModel(**{f.name: 0.0 for f in fields(AbstentionModel) if f.name not in FIXED}
                           | coefs | {"bias": round(float(lr.intercept_[0]), 3)})


def threshold_for(probs: np.ndarray, cases: list[Case], target: float, fit_on: set[str]) -> float:
    """The largest threshold keeping false abstention <= target in every answerable tuning group of ``fit_on``."""
    keys = {(c.index, c.group) for c in cases if c.tune and c.answerable and c.index in fit_on
            and c.group in ("v2", "inside")}
    return min(float(np.quantile([p for p, c in zip(probs, cases, strict=True)
                                  if c.tune and c.answerable and (c.index, c.group) == k], target)) for k in keys)


def cross_validate(cases: list[Case], names: list[str], c: float, target: float, fit_on: set[str]) -> str:
    """Leave one SQuAD 2.0 tuning article out: fit and threshold on the rest, score the left-out article."""
    articles = sorted({case.article for case in cases if case.tune and case.group == "v2"})
    totals = {i: np.zeros(4) for i in ("17", "4")}  # false abstentions, answerable, caught, unanswerable
    worst = 0.0
    for article in articles:
        train = [x for x in cases if x.tune and x.index in fit_on and x.group != "seed" and x.article != article]
        model = fit(train, names, c)
        threshold = threshold_for(np.array([model.probability(x.features(model)) for x in train]), train, target,
                                  fit_on)
        for index, total in totals.items():
            test = [x for x in cases if x.index == index and x.group == "v2" and x.article == article]
            abstain = np.array([model.probability(x.features(model)) < threshold for x in test])
            y = np.array([x.answerable for x in test])
            worst = max(worst, (abstain & y).sum() / y.sum())
            total += [(abstain & y).sum(), y.sum(), (abstain & ~y).sum(), (~y).sum()]
    return " | ".join(f"{i}-article index: false abstention {t[0] / t[1]:.3f}, recall {t[2] / t[3]:.3f}"
                      for i, t in totals.items()) + f" | worst article {worst:.3f}"


def main() -> None:
    configure()
    parser = argparse.ArgumentParser()
    parser.add_argument("--fit", action="store_true")
    parser.add_argument("--fit-on", default="17,4", help="indexes whose tuning cases the fit sees")
    parser.add_argument("--features", default=CHOSEN, help="comma-separated features to fit ('all': every one)")
    parser.add_argument("--C", type=float, default=1.0, help="inverse L2 strength")
    parser.add_argument("--target", type=float, default=0.03, help="false abstention allowed on tune")
    parser.add_argument("--cv", action="store_true", help="leave-one-tuning-article-out estimate, then stop")
    parser.add_argument("--threshold", type=float)
    parser.add_argument("--refresh", action="store_true", help="search again instead of using the cache")
    parser.add_argument("--reader-folds", help="fold reader folders, fold 0 first: give every case the reader's "
                        "margin on its top window, read out of fold (the reader_margin feature; docs/reader.md); "
                        "without --fit or --cv, report READER_ABSTENTION")
    args = parser.parse_args()
    cases = build_cases()
    if args.reader_folds:
        cases = with_reader_margins(cases, [Path(p) for p in args.reader_folds.split(",")])
    # The reader's margins are what the answer path's reader model reads: without --fit, report that model.
    model = READER_ABSTENTION if args.reader_folds else AbstentionModel()
    fit_on = set(args.fit_on.split(","))
    names = [n for n in model.feature_names() if n not in FIXED] if args.features == "all" else \
        args.features.split(",")
    if args.cv:
        print(f"CV {args.features} fit on {args.fit_on}, target {args.target}:",
              cross_validate(cases, names, args.C, args.target, fit_on))
        return
    if args.fit:
        model = fit([c for c in cases if c.tune and c.index in fit_on and c.group != "seed"], names, args.C)
        print("fitted:", model)
    probs = np.array([model.probability(c.features(model)) for c in cases])
    y = np.array([c.answerable for c in cases])
    index = np.array([c.index for c in cases])
    group = np.array([c.group for c in cases])
    tune = np.array([c.tune for c in cases])
    chosen = threshold_for(probs, cases, args.target, fit_on)
    default = READER_ABSTAIN_THRESHOLD if args.reader_folds else ABSTAIN_THRESHOLD
    print(f"threshold for <= {args.target:.1%} false abstention in every tuning group of index {args.fit_on}:"
          f" {chosen:.4f}; the model's default: {default}")
    thresholds = sorted({round(chosen, 3), default}
                        | ({args.threshold} if args.threshold is not None else set()))
    rows = [("SQuAD 2.0 tune, 17-article index", (index == "17") & (group == "v2") & tune),
            ("SQuAD 2.0 held-out, 17-article index", (index == "17") & (group == "v2") & ~tune),
            ("SQuAD 2.0 tune, 6-article index", (index == "6") & (group == "v2") & tune),
            ("SQuAD 2.0 held-out, 6-article index", (index == "6") & (group == "v2") & ~tune),
            ("SQuAD 2.0 tune, 4-article tune index", (index == "4") & (group == "v2")),
            ("v1.1 in/out of corpus, tune, 17", (index == "17") & (group != "v2") & tune),
            ("v1.1 in/out of corpus, held-out, 17", (index == "17") & (group != "v2") & ~tune),
            ("v1.1 out of corpus, held-out, 6", (index == "6") & (group == "outside") & ~tune),
            ("seed", group == "seed")]
    print("| data | threshold | n | abstention precision | recall | F1 | false abstention (answerable) |")
    print("|---|---|---|---|---|---|---|")
    for threshold in thresholds:
        for label, mask in rows:
            if not mask.any():  # the 6-article index's tuning cases when --reader-folds leaves them out
                continue
            m = prf(probs[mask] < threshold, y[mask])
            print(f"| {label} | {threshold:.3f} | {m['n']} | {m['precision']:.3f} | {m['recall']:.3f} |"
                  f" {m['F1']:.3f} | {m['false abstention']:.3f} |")


if __name__ == "__main__":
    main()
