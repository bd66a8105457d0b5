"""Hostile evaluation files: every one loads or fails with ``EvalFileError`` naming the line, never a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag import EvalFileError
from rag.evaluation.datasets import load_dataset

GOOD = {"id": "q1", "question": "When was the Taraz attack?", "answers": ["2011"], "evidence": ["Taraz"]}


def write(tmp: Path, name: str, data: str | bytes) -> Path:
    path = tmp / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


BAD_JSONL = {
    "truncated line": '{"id": "q1", "question": "When was',
    "truncated file": json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "id": "q2"})[:-9],
    "question is a number": json.dumps({"id": "q1", "question": 42}),
    "question is a list": json.dumps({"id": "q1", "question": ["When?"]}),
    "answers is a string list mix": json.dumps({**GOOD, "answers": ["2011", 2011]}),
    "answers is an object": json.dumps({**GOOD, "answers": {"text": "2011"}}),
    "evidence is a number": json.dumps({**GOOD, "evidence": 7}),
    "answerable is a word": json.dumps({**GOOD, "answerable": "perhaps"}),
    "id is an object": json.dumps({**GOOD, "id": {"x": 1}}),
    "duplicate ids": json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "question": "Again?"}),
    "duplicate ids across types": json.dumps({**GOOD, "id": 1}) + "\n" + json.dumps({**GOOD, "id": "1"}),
    "row is a list": json.dumps(["q1", "When?"]),
    "row is null": "null",
    "deeply nested": "[" * 100_000 + "]" * 100_000,
    "nested in a field": '{"id": "q1", "question": "When?", "answers": ' + "[" * 50_000 + "]" * 50_000 + "}",
    "unanswerable with answers": json.dumps({**GOOD, "answerable": False}),
    "empty question": json.dumps({**GOOD, "question": "   "}),
    "NaN literal": '{"id": "q1", "question": "When?", "answers": [NaN]}',
}


@pytest.mark.parametrize("case", list(BAD_JSONL))
def test_bad_jsonl_is_a_clear_error_and_skippable(tmp_path: Path, case: str) -> None:
    good_line = json.dumps({**GOOD, "id": "ok", "question": "Where is Taraz?"})
    path = write(tmp_path, "e.jsonl", good_line + "\n" + BAD_JSONL[case] + "\n")
    with pytest.raises(EvalFileError, match=r"e\.jsonl line \d+: .*--skip-bad") as info:
        load_dataset(path)
    assert len(str(info.value)) < 500  # a message, not a dump of the input
    skipped = load_dataset(path, skip_bad=True)
    assert [q.id for q in skipped.questions][:1] == ["ok"] and skipped.skipped


def test_unknown_fields_are_ignored_and_known_ones_kept(tmp_path: Path) -> None:
    row = {**GOOD, "difficulty": "hard", "answer": "typo of answers", "__proto__": {"x": 1}, "metadata": [1, 2]}
    dataset = load_dataset(write(tmp_path, "e.jsonl", json.dumps(row)))
    q = dataset.questions[0]
    assert (q.id, q.question, q.answers, q.evidence, q.answerable) == ("q1", GOOD["question"], ["2011"], ["Taraz"],
                                                                       True)


@pytest.mark.parametrize(("name", "data"), [
    ("empty.jsonl", b""),
    ("blank.jsonl", b"\n\n  \n"),
    ("binary.jsonl", bytes(range(256)) * 4),
    ("latin1.jsonl", '{"question": "Caf\xe9?"}'.encode("latin-1")),
    ("questions.txt", b'{"question": "When?"}'),
    ("empty.csv", b""),
    ("header-only.csv", b"id,question,answers\n"),
    ("ragged.csv", b"id,question\nq1,When?,extra,cells\n"),
    ("bad-json-cell.csv", b'id,question,answers\nq1,When?,"[""2011"""\n'),
    ("squad-truncated.json", b'{"version": "1.1", "data": [{"title": "T", "paragraphs": [{"context": "C'),
    ("squad-wrong-shape.json", b'{"data": {"title": "T"}}'),
    ("squad-list.json", b"[1, 2, 3]"),
    ("squad-no-data.json", b'{"version": "1.1"}'),
    ("squad-bad-offsets.json", json.dumps({"data": [{"title": "T", "paragraphs": [{"context": "Short text.", "qas": [
        {"id": "a", "question": "What?", "answers": [{"text": "zzz", "answer_start": 999}]}]}]}]}).encode()),
    ("squad-deep.json", b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
])
def test_bad_eval_files_are_eval_file_errors(tmp_path: Path, name: str, data: bytes) -> None:
    path = write(tmp_path, name, data)
    try:
        dataset = load_dataset(path, squad_corpus_dir=tmp_path / "squad-corpus")
    except EvalFileError as exc:
        assert str(exc) and EvalFileError.exit_code != 0
        return
    # Loading is allowed only when it produced something usable and said what it dropped.
    assert dataset.questions or dataset.skipped, name


def test_missing_eval_file_is_an_eval_file_error(tmp_path: Path) -> None:
    with pytest.raises(EvalFileError, match="cannot read"):
        load_dataset(tmp_path / "nope.jsonl")


SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
JSON_VALUES = st.recursive(SCALARS,
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                               st.sampled_from(["id", "question", "answers", "evidence", "answerable", "x"]), inner,
                               max_size=5), max_leaves=12)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(JSON_VALUES, min_size=1, max_size=5), skip_bad=st.booleans())
def test_any_json_lines_load_or_raise_eval_file_error(tmp_path: Path, rows: list[object], skip_bad: bool) -> None:
    path = write(tmp_path, "fuzz.jsonl", "\n".join(json.dumps(r) for r in rows))
    try:
        dataset = load_dataset(path, skip_bad=skip_bad)
    except EvalFileError:
        return
    ids = [q.id for q in dataset.questions]
    assert len(ids) == len(set(ids)) and all(q.question.strip() for q in dataset.questions)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=JSON_VALUES)
def test_any_squad_json_loads_or_raises_eval_file_error(tmp_path: Path, data: object) -> None:
    path = write(tmp_path, "fuzz.json", json.dumps({"version": "1.1", "data": data}))
    try:
        load_dataset(path, skip_bad=True, squad_corpus_dir=tmp_path / "sq")
    except EvalFileError:
        return
