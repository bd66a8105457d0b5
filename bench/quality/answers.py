"""Short-answer quality on SQuAD v1.1 (EM/F1, SQuAD normalisation) from the top retrieved sentence.

Uses the candidate rows of a ``retrieval.py --dump`` file so only the span extraction is re-run. Rows per split
(tune / held-out articles), per question word and per answer type (``span_type``).
Run: ``.venv/bin/python bench/quality/answers.py /tmp/citechat-quality/feat_final.pkl``
"""

from __future__ import annotations

import collections
import pickle
import re
import string
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from squad import DATA, build_index, configure, load_questions, source_by_title, split_articles  # noqa: E402

from rag.answer.question_types import question_word, span_type  # noqa: E402
from rag.answer.spans import best_span  # noqa: E402


def normalize(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def f1(pred: str, gold: str) -> float:
    """Token F1 between a prediction and one gold answer."""
    p, g = normalize(pred).split(), normalize(gold).split()
    common = sum((collections.Counter(p) & collections.Counter(g)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def main() -> None:
    configure()
    dump = {d["qid"]: d for d in pickle.loads(Path(sys.argv[1]).read_bytes())}
    pipeline, offsets = build_index()
    snapshot = pipeline.snapshot()
    questions = load_questions(DATA.v11, offsets, source_by_title(pipeline))
    tune, _ = split_articles()
    rows: dict[str, list[tuple[float, float, float, float, float]]] = collections.defaultdict(list)
    for q in questions:
        sentence = snapshot.texts[dump[q.qid]["rows"][0]]
        kind = span_type(q.text)
        span = best_span(q.text, sentence, kind) or sentence
        em = max(float(normalize(span) == normalize(g)) for g in q.answers)
        fs = max(f1(span, g) for g in q.answers)
        contains = max(float(normalize(g) in normalize(span)) for g in q.answers)
        sentence_f1 = max(f1(sentence, g) for g in q.answers)
        in_sentence = max(float(normalize(g) in normalize(sentence)) for g in q.answers)
        row = (em, fs, contains, sentence_f1, in_sentence)
        split = "tune" if q.article in tune else "held-out"
        for key in (split, "all", f"{split} / {question_word(q.text)}", f"{split} / type {kind}"):
            rows[key].append(row)
    print("| subset | n | EM | F1 | short answer contains gold | whole-sentence F1 | top sentence contains gold |")
    print("|---|---|---|---|---|---|---|")
    for key in sorted(rows, key=lambda k: (k.split(" / ")[0], "/" in k, k)):
        vals = rows[key]
        means = [sum(v[i] for v in vals) / len(vals) for i in range(5)]
        print(f"| {key} | {len(vals)} | " + " | ".join(f"{m:.3f}" for m in means) + " |")


if __name__ == "__main__":
    main()
