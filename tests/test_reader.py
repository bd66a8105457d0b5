"""The shipped span reader: loads offline from the package, points at the right span of made-up sentences, says
"no answer" for an unrelated passage, and is deterministic."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.answer.reader import load_reader, model_dir, verified_graph
from rag.errors import RagError

from .conftest import run_offline

CASES = [
    ("Who founded the Zorblat lantern festival?",
     "The Zorblat lantern festival was founded by Maren Oduya, a teacher from the village.", "Maren Oduya"),
    ("When was the Quenby bridge opened?", "The Quenby bridge was opened in March 1987 after two years of work.",
     "March 1987"),
    ("Where did the council meet on Monday?", "On Monday the council met in the old town hall of Velmora.",
     "the old town hall of Velmora"),
    ("How many lanterns were lit?", "That night 4,200 lanterns were lit along the river.", "4,200"),
    ("What were the lanterns made from?", "The lanterns were made from rice paper and beeswax.",
     "rice paper and beeswax"),
]


@pytest.mark.parametrize(("question", "window", "gold"), CASES, ids=[c[0].split()[0].lower() for c in CASES])
def test_reader_points_at_the_answer(question: str, window: str, gold: str) -> None:
    (reading,) = load_reader().read(question, [window])
    found = window[reading.start:reading.end]
    assert reading.margin > 0, (question, found, reading)
    assert gold in found or found in gold and len(found) >= len(gold) // 2, (question, found)


def test_an_unrelated_passage_is_no_answer() -> None:
    (reading,) = load_reader().read("Who founded the Zorblat lantern festival?",
                                    ["Steam engines convert the heat of burning coal into mechanical work."])
    assert reading.margin < 0, reading


def test_the_same_input_gives_the_same_output() -> None:
    question, window, _ = CASES[0]
    assert load_reader().read(question, [window, window]) == load_reader().read(question, [window, window])


def test_a_window_reads_the_same_whatever_is_read_beside_it() -> None:
    # A window's margin ranks it against the others read for the question, so it must not move with them (an int8
    # graph run on a padded batch quantises every row by the batch's range).
    question, window, _ = CASES[0]
    longer = " ".join(c[1] for c in CASES)
    alone = load_reader().read(question, [window])
    assert load_reader().read(question, [longer, window, CASES[1][1]])[1] == alone[0]


def test_the_graph_is_checked_against_its_recorded_checksum(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    for name in ("reader.json", "reader.int8.onnx"):
        (folder / name).write_bytes((model_dir() / name).read_bytes())
    assert verified_graph(folder).name == "reader.int8.onnx"
    with (folder / "reader.int8.onnx").open("ab") as graph:
        graph.write(b"tampered")
    with pytest.raises(RagError, match="checksum"):
        verified_graph(folder)


def test_the_reader_loads_with_no_network() -> None:
    # A fresh process where any socket connection fails: loading and reading must not need one.
    out = run_offline("from rag.answer.reader import load_reader\n"
                      "r = load_reader().read('Who founded it?', ['It was founded by Maren Oduya.'])[0]\n"
                      "print(r.margin > 0)\n")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "True"


def test_training_windows_hold_their_answers_and_keep_held_out_articles_apart() -> None:
    import json
    import random

    from rag.train_reader import REPO_SLICE, build_examples, held_out_titles

    held = held_out_titles(REPO_SLICE)
    train, valid = build_examples([REPO_SLICE], held, 1, random.Random(13), 0.3)
    # (The slice has questions on two articles only: Super_Bowl_50 tunes, Normans is held out.)
    assert {e.article for e in valid} == {"Normans"} <= held and not {e.article for e in train} & held
    golds = {qa["id"]: {a["text"] for a in qa["answers"]} for article in json.loads(REPO_SLICE.read_text())["data"]
             for para in article["paragraphs"] for qa in para["qas"]}
    answered = [e for e in train + valid if e.kind == "answer"]
    assert len(answered) > 500
    for e in answered:
        assert all(e.window[a:b] in golds[e.qid] for a, b in e.answers), e
    wrong = [e for e in train if e.kind == "wrong-window"]
    assert wrong and all(not e.answers for e in wrong)
    # One fold of the tuning articles more is held out, and never the same one twice.
    folds = [held_out_titles(REPO_SLICE, fold) - held for fold in (0, 1)]
    assert folds[0] and folds[1] and not folds[0] & folds[1]


def test_any_window_moves_training_answers_off_centre_and_leaves_validation_alone() -> None:
    import random

    from rag.train_reader import REPO_SLICE, build_examples, held_out_titles

    held = held_out_titles(REPO_SLICE)
    centred = build_examples([REPO_SLICE], held, 1, random.Random(13), 0.3)
    placed = build_examples([REPO_SLICE], held, 1, random.Random(13), 0.3, random.Random(14))
    assert placed[1] == centred[1]
    pairs = [(c, p) for c, p in zip(centred[0], placed[0], strict=True) if c.kind == "answer"]
    assert [c.qid for c, _ in pairs] == [p.qid for _, p in pairs]
    moved = [(c, p) for c, p in pairs if c.window != p.window]
    assert len(moved) > len(pairs) // 4
    # An answer of the centred window, elsewhere in a window that still holds it (a wider or narrower window may
    # hold another of the question's gold answers as well).
    for c, p in moved:
        assert {c.window[a:b] for a, b in c.answers} & {p.window[a:b] for a, b in p.answers}, (c, p)


def test_rivals_follow_their_answer_window_and_never_hold_its_sentence() -> None:
    import random

    from rag.train_reader import REPO_SLICE, build_examples, group_batches, held_out_titles, question_groups

    held = held_out_titles(REPO_SLICE)
    plain = build_examples([REPO_SLICE], held, 1, random.Random(13), 0.3)
    train, valid = build_examples([REPO_SLICE], held, 1, random.Random(13), 0.3, negatives=2)
    assert valid == plain[1]  # validation never reads rivals
    groups = question_groups(train)
    with_rivals = [[train[i] for i in g] for g in groups if train[g[0]].kind == "answer"]
    assert len(with_rivals) > 400
    for answer, *others in with_rivals:
        rivals = [e for e in others if e.kind == "rival"]
        assert len(rivals) == 2 and all(e.qid == answer.qid and not e.answers for e in rivals)
        # A rival window never contains the answer's window's text: it does not hold the answer's sentence.
        assert all(answer.window not in e.window for e in rivals)
    # "Say none": the rivals become wrong windows, in place of the 30 % draw.
    said = build_examples([REPO_SLICE], held, 1, random.Random(13), 0.3, negatives=1, negatives_say_none=True)[0]
    assert not any(e.kind == "rival" for e in said)
    assert sum(e.kind == "wrong-window" for e in said) == sum(e.kind == "answer" for e in said)
    # Batches keep a question's windows together.
    rows = [{"input_ids": [0] * len(e.window), "qid": e.qid} for e in train]
    for batch in group_batches(rows, groups, 16, random.Random(0)):
        assert sum(map(len, batch)) <= 16 or len(batch) == 1
        assert all(len({r["qid"].removesuffix("-wrong") for r in g}) == 1 for g in batch)
    assert sum(len(g) for b in group_batches(rows, groups, 16, random.Random(0)) for g in b) == len(train)


def test_the_shared_loss_falls_as_the_answer_window_out_reads_its_rivals() -> None:
    import torch

    from rag.train_reader import shared_loss

    # Two questions: [CLS] question [SEP] window [SEP]; each a window holding the answer (start > 0) and a rival.
    seq = [None, 0, 0, None, 1, 1, 1, None]
    batch = [{"sequence_ids": seq, "start": 4}, {"sequence_ids": seq, "start": 0}] * 2
    start = torch.zeros(4, len(seq))
    end = torch.zeros(4, len(seq))
    even = shared_loss(start, end, batch, [2, 2], torch)
    assert abs(float(even) - float(torch.log(torch.tensor(2.0)))) < 1e-6  # windows alike: a coin toss
    start[0, 5] = 4.0  # the first question's answer window reads a span
    start[3, 6] = 4.0  # the second question's rival does
    start[2, 4:7] = -8.0  # and its answer window reads nothing
    assert float(shared_loss(start[:2], end[:2], batch[:2], [2], torch)) < float(even)
    assert float(shared_loss(start[2:], end[2:], batch[2:], [2], torch)) > float(even)
    # A window holding no answer (start 0) leads no group: nothing to learn across windows.
    assert float(shared_loss(start[:2], end[:2], [batch[1], batch[0]], [2], torch)) == 0.0
    # The question tokens and [CLS] never count as the window's span.
    question_only = torch.zeros(2, len(seq))
    question_only[0, 1:3] = 9.0
    assert abs(float(shared_loss(question_only, torch.zeros(2, len(seq)), batch[:2], [2], torch))
               - float(torch.log(torch.tensor(2.0)))) < 1e-6


def test_tied_ends_go_to_the_longer_span() -> None:
    import numpy as np

    from rag.answer.reader import END_TIE, best_token_span

    start = np.array([0.0, 5.0, 0.0, 0.0, 0.0])
    tied = np.array([0.0, 0.0, 4.0, 0.0, 4.0 - END_TIE / 2])
    clear = np.array([0.0, 0.0, 4.0, 0.0, 4.0 - 2 * END_TIE])
    assert best_token_span(start, tied, [1, 2, 3, 4])[1:3] == (1, 4)
    assert best_token_span(start, clear, [1, 2, 3, 4])[1:3] == (1, 2)
    assert best_token_span(start, tied, [1, 2, 3, 4], tie=0.0)[1:3] == (1, 2)


def test_a_long_span_gives_way_to_a_shorter_one_it_barely_beats() -> None:
    import numpy as np

    from rag.answer.reader import LENGTH_FREE, LENGTH_PENALTY, best_token_span

    tokens = 2 * LENGTH_FREE + 3
    context = list(range(1, tokens))
    start, end = np.zeros(tokens), np.zeros(tokens)
    start[1] = 5.0
    end[LENGTH_FREE] = 4.0  # the span of the first LENGTH_FREE tokens: never penalised
    end[tokens - 1] = 4.0 + LENGTH_PENALTY  # the whole window, beating it by less than its extra tokens cost
    score, i, j, null = best_token_span(start, end, context)
    assert (i, j) == (1, LENGTH_FREE)
    assert score == 9.0 + LENGTH_PENALTY  # the margin over "no answer" is the best span's, before the penalty
    end[tokens - 1] = 4.0 + LENGTH_PENALTY * tokens  # a clear win keeps the long span
    assert best_token_span(start, end, context)[1:3] == (1, tokens - 1)
    assert best_token_span(start, end, context, penalty=0.0)[1:3] == (1, tokens - 1)


def test_a_span_restating_the_question_gives_way_to_the_answer_inside_it() -> None:
    import re

    import numpy as np

    from rag.answer.reader import ECHO_PENALTY, best_token_span, mark_tokens
    from rag.index.lexical import tokenize

    window = "Maren Oduya founded the festival in spring."
    offsets = [(0, 0)] + [m.span() for m in re.finditer(r"\w+|\.", window)]  # token 0 stands for the question
    context = list(range(1, len(offsets)))
    marks = mark_tokens(set(tokenize("Who founded the Zorblat festival?")), window, offsets, context)
    assert [window[a:b] for (a, b), marked in zip(offsets, marks.echo, strict=True) if marked] == ["founded",
                                                                                                   "festival"]
    start, end = np.zeros(len(offsets)), np.zeros(len(offsets))
    start[1] = 5.0
    end[2] = 4.0  # "Maren Oduya"
    end[5] = 4.0 + ECHO_PENALTY  # "Maren Oduya founded the festival", beating it by less than its two echoes cost
    assert best_token_span(start, end, context, marks=marks)[1:3] == (1, 2)
    assert best_token_span(start, end, context)[1:3] == (1, 5)  # no question, no echoes
    end[5] = 4.0 + 3 * ECHO_PENALTY  # a clear win keeps the long span
    assert best_token_span(start, end, context, marks=marks)[1:3] == (1, 5)


def test_a_span_never_starts_or_ends_inside_a_word() -> None:
    import numpy as np

    from rag.answer.reader import best_token_span, context_tokens, load_reader, mark_tokens

    window = "It was spoken at the Saxon chancellery."
    enc, _, _ = load_reader().logits("Where was it spoken?", window)
    context = context_tokens(enc.sequence_ids)
    marks = mark_tokens(set(), window, enc.offsets, context)
    chancellery = [t for t in context if window[enc.offsets[t][0]:enc.offsets[t][1]].isalpha()
                   and enc.offsets[t][0] >= window.index("chancellery")]
    assert len(chancellery) > 1  # the tokenizer splits it into pieces
    first, last = chancellery[0], chancellery[-1]
    assert marks.cut[first] and not marks.cut[last] and marks.inside[last] and not marks.inside[first]
    start, end = np.zeros(len(enc.ids)), np.zeros(len(enc.ids))
    saxon = first - 1
    start[saxon], end[first], end[last] = 5.0, 4.0, 3.0  # the reader's best end is inside "chancellery"
    assert best_token_span(start, end, context)[1:3] == (saxon, first)
    assert best_token_span(start, end, context, marks=marks)[1:3] == (saxon, last)


@pytest.mark.slow  # a subprocess that loads the tokenizer and reads 143 windows: seconds
def test_the_training_tool_scores_a_graph_without_training(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    graph = model_dir() / "reader.int8.onnx"
    done = subprocess.run([sys.executable, "-m", "rag.train_reader", "--score", str(graph), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    scores = json.loads(done.stdout[done.stdout.index("{"):])
    assert scores["answerable"] > 0 and scores["no_answer"] > 0
    assert 0.3 < scores["f1"] <= 1.0 and 0.0 < scores["em"] <= scores["f1"]
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written
    missing = subprocess.run([sys.executable, "-m", "rag.train_reader", "--score", str(tmp_path / "none.onnx")],
                             capture_output=True, text=True, timeout=300, check=False)
    assert missing.returncode == 2 and "no reader graph" in missing.stderr


def test_weight_only_quantisation_stores_int8_and_keeps_float_arithmetic(tmp_path: Path) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from rag.answer.reader import open_session
    from rag.train_reader import weight_only_int8

    rng = np.random.default_rng(0)
    w = rng.normal(size=(16, 4)).astype(np.float32) * np.array([1.0, 0.01, 5.0, 0.3], dtype=np.float32)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "one_matmul",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])],
                              [numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "float.onnx")
    weight_only_int8(tmp_path / "float.onnx", tmp_path / "int8.onnx")

    stored = {t.name: t.data_type for t in onnx.load(tmp_path / "int8.onnx").graph.initializer}
    assert stored["w_int8"] == TensorProto.INT8 and "w" not in stored
    x = rng.normal(size=(3, 16)).astype(np.float32)
    got = open_session(tmp_path / "int8.onnx").run(None, {"x": x})[0]
    # One scale per output column: the 0.01-wide column is as exact, relatively, as the 5-wide one.
    assert (np.abs(got - x @ w) <= 0.02 * np.abs(x @ w).max(axis=0)).all()
