"""The shipped question encoder: checked against its checksum, loaded with no network, better than the packaged model
on a held-out article, and its training data keeps held-out articles apart."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag import Pipeline
from rag.config import Settings
from rag.errors import RagError
from rag.index import onnx_model
from rag.index.embeddings import SentenceEmbeddings
from rag.train_questions import build_pools, retrieval
from rag.train_reader import REPO_SLICE, held_out_titles

from .conftest import run_offline

pytestmark = pytest.mark.slow  # model loads and a subprocess: seconds each


def test_training_pools_hold_their_answers_and_keep_held_out_articles_apart() -> None:
    held = held_out_titles(REPO_SLICE)
    train, valid = build_pools([REPO_SLICE], held)
    assert len(train.questions) > 300 and len(valid.questions) > 50
    # Only boilerplate both halves print verbatim ("[citation needed]") is in both pools.
    assert all(len(text) < 20 for text in set(train.sentences) & set(valid.sentences))
    held_questions = {qa["question"] for article in json.loads(REPO_SLICE.read_text(encoding="utf-8"))["data"]
                      if article["title"] in held for para in article["paragraphs"] for qa in para["qas"]}
    assert set(valid.questions) <= held_questions and not set(train.questions) & held_questions
    answers: dict[str, set[str]] = {}
    for article in json.loads(REPO_SLICE.read_text(encoding="utf-8"))["data"]:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                answers.setdefault(qa["question"], set()).update(a["text"] for a in qa["answers"])
    for pool in (train, valid):
        for question, gold in zip(pool.questions, pool.golds, strict=True):
            assert gold and all(0 <= row < len(pool.sentences) for row in gold)
            # The start of an answer is in each gold sentence (an answer may run past its sentence's end).
            assert any(any(a.split()[0] in pool.sentences[row] for a in answers[question]) for row in gold), question


def test_the_tuned_encoder_finds_answer_sentences_of_an_unseen_article_better() -> None:
    # Normans is held out of every training run: dense retrieval alone, over that article's sentences.
    _, valid = build_pools([REPO_SLICE], held_out_titles(REPO_SLICE))
    packaged = SentenceEmbeddings(question_cache=0)
    sentences = packaged.encode(valid.sentences)
    tuned = SentenceEmbeddings(question_cache=0, question_encoder="tuned")
    before = retrieval(packaged.encode_queries(valid.questions), sentences, valid.golds)
    after = retrieval(tuned.encode_queries(valid.questions), sentences, valid.golds)
    assert after["P@1"] >= before["P@1"] + 0.02 and after["MRR@10"] > before["MRR@10"], (before, after)


def test_settings_choose_the_tuned_encoder_and_packaged_keeps_the_packaged_vectors() -> None:
    questions = ["When was the Taraz attack?", "Who led the Norman conquest?"]
    tuned = SentenceEmbeddings.from_settings(Settings()).encode_queries(questions)
    packaged = SentenceEmbeddings.from_settings(Settings(question_encoder="packaged")).encode_queries(questions)
    assert np.allclose(packaged, SentenceEmbeddings(question_cache=0).encode_queries(questions), atol=1e-6)
    assert np.allclose(np.linalg.norm(tuned, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(tuned, packaged, atol=1e-2)


def test_the_graph_is_checked_against_its_recorded_checksum(tmp_path: Path) -> None:
    for name in ("question.json", onnx_model.QUESTION_MODEL):
        (tmp_path / name).write_bytes((onnx_model.question_model_dir() / name).read_bytes())
    assert onnx_model.verified_graph(tmp_path, onnx_model.QUESTION_MODEL, "question.json", "X=off").exists()
    with (tmp_path / onnx_model.QUESTION_MODEL).open("ab") as graph:
        graph.write(b"tampered")
    with pytest.raises(RagError, match="checksum.*X=off"):
        onnx_model.verified_graph(tmp_path, onnx_model.QUESTION_MODEL, "question.json", "X=off")
    (tmp_path / "question.json").unlink()
    with pytest.raises(RagError, match="missing or unreadable"):
        onnx_model.verified_graph(tmp_path, onnx_model.QUESTION_MODEL, "question.json", "X=off")


def test_the_question_encoder_loads_with_no_network() -> None:
    out = run_offline("from rag.index.embeddings import SentenceEmbeddings\n"
                      "v = SentenceEmbeddings(question_encoder='tuned').encode_queries(['Who founded it?'])\n"
                      "print(v.shape)\n")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "(1, 384)"


def test_search_ranks_with_the_tuned_vector_and_keeps_the_packaged_similarity_for_abstention(
        seed_pipeline: Pipeline) -> None:
    from rag.retrieve import search

    snapshot, embedder = seed_pipeline.snapshot(), seed_pipeline.embedder
    assert embedder.question_encoder == "tuned"
    question = "When was the Taraz attack?"
    ranking, evidence = embedder.encode_questions([question])[0]
    assert np.allclose(evidence, SentenceEmbeddings(question_cache=0).encode_queries([question])[0], atol=1e-6)
    top = search(question, snapshot, embedder, 50, seed_pipeline.weights)[0]
    assert top.features["dense"] == pytest.approx(float(snapshot.vectors[top.row] @ ranking), abs=1e-5)
    assert top.features["evidence_dense"] == pytest.approx(float(snapshot.vectors[top.row] @ evidence), abs=1e-5)
    # Given the ranking vector alone, search embeds the evidence vector itself: the same candidates.
    alone = search(question, snapshot, embedder, 50, seed_pipeline.weights, query_vector=ranking)
    assert [c.row for c in alone[:3]] == [c.row for c in search(question, snapshot, embedder, 50,
                                                                seed_pipeline.weights)[:3]]
    assert alone[0].features["evidence_dense"] == pytest.approx(top.features["evidence_dense"], abs=1e-5)
