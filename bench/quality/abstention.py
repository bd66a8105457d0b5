"""Abstention on SQuAD v2.0 (against the whole 17-article v1.1 index) and the seed set.

Fits ``AbstentionModel`` by logistic regression on the tuning articles only, picks the threshold that keeps
false abstention on answerable tuning questions at or under 5 %, then reports both splits and the seed set.
Run: ``.venv/bin/python bench/quality/abstention.py [--fit]``
"""

from __future__ import annotations

import json
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from retrieval import question_vectors  # noqa: E402
from seed import seed_pipeline  # noqa: E402
from squad import SEED, V11, V20, build_index, source_by_title, split_articles  # noqa: E402

from rag.abstain import AbstentionModel  # noqa: E402
from rag.answer import context_text  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.question_types import answer_type  # noqa: E402
from rag.retrieve import search  # noqa: E402


def feature_rows(pipeline, questions: list[str], name: str,  # type: ignore[no-untyped-def]
                 exclude: list[str] | None = None) -> list[dict[str, float]]:
    """The abstention features of each question's best candidate (ignoring rows of ``exclude[i]``, if given)."""
    catalog = pipeline.catalog()
    vecs = question_vectors(pipeline, questions, name)
    model = AbstentionModel()
    out = []
    for i, (q, v) in enumerate(zip(questions, vecs, strict=True)):
        cands = search(q, catalog, pipeline.store, pipeline.embedder, pipeline.settings.candidates,
                       pipeline.weights, query_vector=v)
        if exclude:
            # Out-of-corpus simulation: the question's own article is not in the index.
            cands = [c for c in cands if catalog.sources[c.row] != exclude[i]]
        if not cands:  # nothing left outside the hidden article: the pipeline would abstain outright
            out.append(dict.fromkeys(("dense", "coverage", "type_match", "unknown_terms", "sentence_coverage",
                                      "para_dense_max", "margin"), 0.0))
            continue
        top = cands[0]
        out.append(model.features(top, catalog.texts[top.row], context_text(catalog, top.row), answer_type(q),
                                  cands))
    return out


def prf(abstained: np.ndarray, answerable: np.ndarray) -> dict[str, float]:
    """Abstention precision/recall/F1 (positive class: unanswerable) and false abstention on answerable."""
    tp = int((abstained & ~answerable).sum())
    p = tp / max(int(abstained.sum()), 1)
    r = tp / max(int((~answerable).sum()), 1)
    f = 2 * p * r / (p + r) if p + r else 0.0
    false_abst = int((abstained & answerable).sum()) / max(int(answerable.sum()), 1)
    return {"precision": p, "recall": r, "F1": f, "false abstention": false_abst, "n": len(answerable)}


def main() -> None:
    pipeline, _ = build_index()
    data = json.loads(V20.read_text(encoding="utf-8"))["data"]
    tune_titles, _ = split_articles()
    items = [(a["title"] in tune_titles, qa["question"], not qa.get("is_impossible", False))
             for a in data for p in a["paragraphs"] for qa in p["qas"]]
    feats = feature_rows(pipeline, [q for _, q, _ in items], "v20")
    # SQuAD 2.0's unanswerables are written against the right paragraph; questions about things the corpus never
    # mentions look different. Simulate those with v1.1 questions whose own article is hidden from the search.
    v11 = json.loads(V11.read_text(encoding="utf-8"))["data"]
    sources = source_by_title(pipeline)
    outside = [(a["title"] in tune_titles, qa["question"], False, sources[a["title"]])
               for a in v11 for p in a["paragraphs"] for qa in p["qas"]][::2]
    texts_v11 = [qa["question"] for a in v11 for p in a["paragraphs"] for qa in p["qas"]]
    hidden = feature_rows(pipeline, texts_v11, "v11", [sources[a["title"]] for a in v11 for p in a["paragraphs"]
                                                      for _ in p["qas"]])[::2]
    inside = feature_rows(pipeline, texts_v11, "v11")[1::2]
    inside_items = [(a["title"] in tune_titles, qa["question"], True)
                    for a in v11 for p in a["paragraphs"] for qa in p["qas"]][1::2]
    kinds = np.array(["v2"] * len(items) + ["outside"] * len(outside) + ["inside"] * len(inside))
    feats += hidden + inside
    items += [(t, q, a) for t, q, a, _ in outside] + inside_items
    names = [f.name for f in fields(AbstentionModel) if f.name not in ("bias", "unknown_terms")]
    x = np.array([[f[n] for n in names] for f in feats])
    y = np.array([ans for _, _, ans in items])
    is_tune = np.array([t for t, _, _ in items])
    model = AbstentionModel()
    if "--fit" in sys.argv:
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1.0, max_iter=2000).fit(x[is_tune], y[is_tune])
        # unknown_terms keeps its hand-set weight: in every corpus here the question words are indexed, so the
        # data cannot teach what an unseen term means (the seed's out-of-corpus questions have them).
        model = AbstentionModel(**{n: round(float(c), 3) for n, c in zip(names, lr.coef_[0], strict=True)},
                                bias=round(float(lr.intercept_[0]), 3))
        print("fitted:", model)
    probs = np.array([model.probability(f) for f in feats])
    # The operating point: the largest threshold that still answers >= 95 % of answerable tuning questions.
    chosen = float(np.quantile(probs[is_tune & y], 0.05))
    if "--threshold" in sys.argv:
        chosen = float(sys.argv[sys.argv.index("--threshold") + 1])
    print(f"threshold for <=5% false abstention on tune: {chosen:.3f}; setting default:"
          f" {Settings.model_fields['abstain_threshold'].default}")
    seed = [json.loads(line) for line in SEED.read_text(encoding="utf-8").splitlines()]
    seed_p = seed_pipeline()
    seed_feats = feature_rows(seed_p, [s["question"] for s in seed], "seed")
    seed_probs = np.array([model.probability(f) for f in seed_feats])
    seed_y = np.array([s.get("answerable", True) for s in seed])
    print("| data | threshold | n | abstention precision | recall | F1 | false abstention (answerable) |")
    print("|---|---|---|---|---|---|---|")
    for threshold in sorted({round(chosen, 3), Settings.model_fields["abstain_threshold"].default}):
        v2 = kinds == "v2"
        out = kinds != "v2"
        for label, mask_p, mask_y in (("SQuAD 2.0 tune", probs[is_tune & v2], y[is_tune & v2]),
                                      ("SQuAD 2.0 held-out", probs[~is_tune & v2], y[~is_tune & v2]),
                                      ("v1.1 in/out of corpus, tune", probs[is_tune & out], y[is_tune & out]),
                                      ("v1.1 in/out of corpus, held-out", probs[~is_tune & out],
                                       y[~is_tune & out]),
                                      ("all held-out", probs[~is_tune], y[~is_tune]),
                                      ("seed", seed_probs, seed_y)):
            m = prf(mask_p < threshold, mask_y)
            print(f"| {label} | {threshold:.3f} | {m['n']} | {m['precision']:.3f} | {m['recall']:.3f} |"
                  f" {m['F1']:.3f} | {m['false abstention']:.3f} |")


if __name__ == "__main__":
    main()
