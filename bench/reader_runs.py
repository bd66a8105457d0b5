"""How the reader's windows are run: warm ``Pipeline.ask`` latency one question at a time, and questions a second
with four asked at once (as the chat allows), for each way of running a question's windows through the graph.

Run: ``.venv/bin/python -m bench.reader_runs --index DIR [--squad FILE] [--questions 200]`` (an index built by
``bench.run``, e.g. ``/tmp/citechat-bench/index-100k``); prints a Markdown table (docs/reader.md, "Cost").
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from bench.corpus import squad_questions, use_squad
from bench.measure import percentiles
from bench.ours import settings_for
from rag import Pipeline
from rag.answer import reader as reader_module
from rag.answer.reader import Reader, Reading, open_session, window_reading
from rag.index.lexical import tokenize

Read = Callable[[Reader, str, list[str]], list[Reading]]


def one_by_one(reader: Reader, question: str, windows: list[str]) -> list[Reading]:
    """Each window alone, one after another on the calling thread."""
    asked = set(tokenize(question))
    return [window_reading(asked, w, *reader.logits(question, w)) for w in windows]


def padded_batch(reader: Reader, question: str, windows: list[str]) -> list[Reading]:
    """All windows in one run, padded to the longest."""
    with reader._lock:
        encodings = reader.tokenizer.encode_batch([(question, w) for w in windows])
    width = max(len(e.ids) for e in encodings)

    def column(values: list[list[int]]) -> np.ndarray:
        return np.array([v + [0] * (width - len(v)) for v in values], dtype=np.int64)

    feed = {"input_ids": column([e.ids for e in encodings]),
            "attention_mask": column([e.attention_mask for e in encodings]),
            "token_type_ids": column([e.type_ids for e in encodings])}
    starts, ends = reader.session.run(["start_logits", "end_logits"], feed)
    asked = set(tokenize(question))
    return [window_reading(asked, *row) for row in zip(windows, encodings, starts, ends, strict=True)]


def measure(pipeline: Pipeline, questions: list[str]) -> dict[str, float]:
    for q in questions[:10]:
        pipeline.ask(q)
    samples = []
    for q in questions:
        started = time.perf_counter()
        pipeline.ask(q)
        samples.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(pipeline.ask, questions))
    return {**percentiles(samples), "per_s_four_at_once": len(questions) / (time.perf_counter() - started)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reader_runs", description=__doc__)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--squad", type=Path, help="SQuAD v1.1 file (default: the repository's slice)")
    parser.add_argument("--questions", type=int, default=200)
    args = parser.parse_args()
    if args.squad:
        use_squad(args.squad)
    questions = [q.question for q in squad_questions(args.questions, seed=11)]
    pipeline = Pipeline(settings_for(args.index))
    pipeline.warm_up()
    reader = reader_module.load_reader()
    shipped_read, shipped_session = Reader.read, reader.session
    graph = reader_module.verified_graph(reader_module.model_dir())
    ways: list[tuple[str, Read, int]] = [
        ("one padded batch, one thread", padded_batch, 1),
        ("one by one, one thread", one_by_one, 1),
        ("one by one, side by side on the cores (shipped)", shipped_read, 1),
        ("one by one, each run on two threads", one_by_one, 2),
    ]
    k = pipeline.settings.reader_candidates
    print(f"| {k} windows | p50 | p95 | four at once |\n|---|---|---|---|")
    for label, read, threads in ways:
        Reader.read = read  # type: ignore[method-assign,assignment]
        reader.session = shipped_session if threads == 1 else open_session(graph, threads=threads)
        m = measure(pipeline, questions)
        print(f"| {label} | {m['p50']:.1f} ms | {m['p95']:.1f} ms | {m['per_s_four_at_once']:.1f} /s |", flush=True)
    Reader.read, reader.session = shipped_read, shipped_session  # type: ignore[method-assign]


if __name__ == "__main__":
    main()
