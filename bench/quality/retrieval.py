"""ReQA sentence retrieval on the shared SQuAD v1.1 articles: floors and citechat's ``search`` on tune/held-out.

A hit is a top sentence that contains an answer start of the question's own paragraph (ReQA protocol).
Run: ``.venv/bin/python bench/quality/retrieval.py [--dump features.pkl]``
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import bm25s
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from squad import (  # noqa: E402
    CACHE,
    DATA,
    Question,
    build_index,
    configure,
    load_questions,
    question_tag,
    source_by_title,
    split_articles,
)

from rag.index.onnx_model import QUESTION_MODEL, OnnxEncoder, model_dir  # noqa: E402
from rag.index.snapshot import Snapshot  # noqa: E402
from rag.retrieve import Candidate, FusionWeights, search  # noqa: E402


def rows_by_source(snapshot: Snapshot) -> dict[str, list[int]]:
    """The snapshot's rows of each source, in order."""
    rows_of: dict[str, list[int]] = {}
    for r, s in enumerate(snapshot.sources):
        rows_of.setdefault(s, []).append(r)
    return rows_of


def gold_rows(q: Question, snapshot: Snapshot, rows_of: dict[str, list[int]]) -> set[int]:
    """Rows of the question's article whose sentence contains one of its answer starts."""
    return {r for r in rows_of[q.source] for a in q.answer_starts
            if snapshot.starts[r] <= a < snapshot.ends[r]}


def retrieved_v11(top: int = 10) -> tuple[Snapshot, Iterator[tuple[int, Question, list[Candidate], set[int]]]]:
    """The 17-article v1.1 index's snapshot, and for each of its questions (numbered) the top ``top`` candidates of
    ``search`` and the gold rows: what the re-ranking experiments read."""
    pipeline, offsets = build_index()
    snapshot = pipeline.snapshot()
    questions = load_questions(DATA.v11, offsets, source_by_title(pipeline))
    rows_of = rows_by_source(snapshot)
    vecs = question_vectors(pipeline, [q.text for q in questions], "v11", [q.article for q in questions])

    def each() -> Iterator[tuple[int, Question, list[Candidate], set[int]]]:
        for i, q in enumerate(questions):
            cands = search(q.text, snapshot, pipeline.embedder, pipeline.settings.candidates, pipeline.weights,
                           query_vector=vecs[i])[:top]
            yield i, q, cands, gold_rows(q, snapshot, rows_of)

    return snapshot, each()


def metrics(ranks: list[int | None]) -> dict[str, float]:
    """P@1 and MRR@10 from 0-based ranks of the first hit (None: no hit)."""
    n = max(len(ranks), 1)
    p1 = sum(1 for r in ranks if r == 0) / n
    mrr = sum(1 / (r + 1) for r in ranks if r is not None and r < 10) / n
    return {"P@1": round(p1, 3), "MRR@10": round(mrr, 3), "n": len(ranks)}


def first_hit(ranking: list[int], gold: set[int]) -> int | None:
    """0-based position of the first gold row in ``ranking``."""
    for i, r in enumerate(ranking[:10]):
        if r in gold:
            return i
    return None


def floors(questions: list[Question], snapshot: Snapshot, qvecs: np.ndarray, golds: list[set[int]]) -> dict:
    """Plain BM25 (no stemming), plain MiniLM cosine, and their RRF (k=60), as in shared/eval/README.md, from
    ``qvecs``' evidence (packaged-model) rows; and the ranking rows' cosine alone (the tuned question encoder)."""
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(snapshot.texts, stopwords="en", show_progress=False), show_progress=False)
    out: dict[str, list[int | None]] = {"BM25": [], "dense": [], "RRF k=60": [], "dense, ranking vector": []}
    for i, q in enumerate(questions):
        tokens = bm25s.tokenize([q.text], stopwords="en", show_progress=False)
        inverse = {i: w for w, i in tokens.vocab.items()}
        words = [inverse[t] for t in tokens.ids[0]]
        bm = retriever.get_scores(words) if words else np.zeros(len(snapshot))
        dn = np.asarray(snapshot.vectors @ qvecs[i][1])
        bm_rank = list(np.argsort(-bm, kind="stable")[:100])
        dn_rank = list(np.argsort(-dn, kind="stable")[:100])
        fused: dict[int, float] = {}
        for ranking in (bm_rank, dn_rank):
            for pos, r in enumerate(ranking):
                fused[int(r)] = fused.get(int(r), 0.0) + 1 / (60 + pos + 1)
        rrf_rank = sorted(fused, key=lambda r: -fused[r])
        out["BM25"].append(first_hit([int(r) for r in bm_rank], golds[i]))
        out["dense"].append(first_hit([int(r) for r in dn_rank], golds[i]))
        out["RRF k=60"].append(first_hit(rrf_rank, golds[i]))
        ranked = np.argsort(-np.asarray(snapshot.vectors @ qvecs[i][0]), kind="stable")[:10]
        out["dense, ranking vector"].append(first_hit([int(r) for r in ranked], golds[i]))
    return out


def question_vectors(pipeline, texts: list[str], name: str,  # type: ignore[no-untyped-def]
                     titles: list[str] | None = None) -> np.ndarray:
    """Question vectors as ``SentenceEmbeddings.encode_questions`` gives them, (questions, 2, dimension): ranking
    and evidence rows, cached beside the index (the same encoders always give the same vectors). With the tuned
    question encoder and ``--question-folds``, a question of a tuning article (``titles``) is ranked with the fold
    encoder that never saw that article; every other question with the shipped one."""
    path = CACHE / f"questions2-{name}{question_tag()}.npy"
    if path.exists():
        vecs = np.load(path)
        if len(vecs) == len(texts):
            return vecs
    vecs = pipeline.embedder.encode_questions(texts)
    if pipeline.embedder.question_encoder == "tuned":
        tuning = split_articles()[0]
        if not DATA.question_folds:
            print("warning: tuning questions ranked with the shipped question encoder, which was trained on them "
                  "(pass --question-folds for out-of-fold vectors)", file=sys.stderr)
        elif titles is not None:
            for fold, folder in enumerate(DATA.question_folds):
                own = set(tuning[fold::len(DATA.question_folds)])
                rows = [i for i, t in enumerate(titles) if t in own]
                if rows:
                    encoder_of_fold = OnnxEncoder(folder / QUESTION_MODEL, model_dir())
                    vecs[rows, 0] = encoder_of_fold.encode([texts[i] for i in rows], 32)
    np.save(path, vecs)
    return vecs


def main() -> None:
    configure()
    parser = argparse.ArgumentParser()
    parser.add_argument("--dump", type=Path, help="write candidate features + labels for fitting")
    parser.add_argument("--no-floors", action="store_true")
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--radius", type=int, default=None, help="paragraph window radius override")
    args = parser.parse_args()

    pipeline, offsets = build_index()
    snapshot = pipeline.snapshot()
    questions = load_questions(DATA.v11, offsets, source_by_title(pipeline))
    rows_of = rows_by_source(snapshot)
    golds = [gold_rows(q, snapshot, rows_of) for q in questions]
    tune, held = split_articles()
    t0 = time.perf_counter()
    qvecs = question_vectors(pipeline, [q.text for q in questions], "v11", [q.article for q in questions])
    print(f"{len(snapshot)} sentences, {len(questions)} questions, encoded in {time.perf_counter() - t0:.1f}s,"
          f" {sum(1 for g in golds if not g)} questions with no gold sentence")

    results: dict[str, list[int | None]] = {}
    if not args.no_floors:
        results.update(floors(questions, snapshot, qvecs, golds))
    weights = FusionWeights() if args.radius is None else replace(FusionWeights(), radius=args.radius)
    ours: list[int | None] = []
    dump = []
    t0 = time.perf_counter()
    for i, q in enumerate(questions):
        cands = search(q.text, snapshot, pipeline.embedder, args.candidates, weights,
                       query_vector=qvecs[i])
        ours.append(first_hit([c.row for c in cands], golds[i]))
        if args.dump:
            dump.append({"qid": q.qid, "article": q.article, "question": q.text,
                         "rows": [c.row for c in cands], "features": [dict(c.features) for c in cands],
                         "labels": [c.row in golds[i] for c in cands]})
    per_query = (time.perf_counter() - t0) / len(questions) * 1000
    results["citechat search()"] = ours
    if args.dump:
        args.dump.write_bytes(pickle.dumps(dump))

    print(f"\nsearch(): {per_query:.1f} ms/question (query embedding excluded)\n")
    print("| method | all P@1 | all MRR@10 | tune P@1 | tune MRR@10 | held-out P@1 | held-out MRR@10 |")
    print("|---|---|---|---|---|---|---|")
    for name, ranks in results.items():
        parts = []
        for subset in (None, tune, held):
            sel = [r for r, q in zip(ranks, questions, strict=True) if subset is None or q.article in subset]
            m = metrics(sel)
            parts += [f"{m['P@1']:.3f}", f"{m['MRR@10']:.3f}"]
        print(f"| {name} | " + " | ".join(parts) + " |")


if __name__ == "__main__":
    main()
