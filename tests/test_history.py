"""Follow-up questions: detection, query rewriting, and multi-turn conversations played end to end."""

from __future__ import annotations

import pytest

from bench.conversations import load_conversations, play
from rag import Pipeline
from rag.answer.history import is_follow_up, search_query
from rag.records import Turn

CONVERSATIONS = load_conversations()


@pytest.mark.parametrize("question", ["Who was their leader?", "And when did it happen?", "How many were killed there?",
                                      "What about Astana?", "why?"])
def test_follow_ups_are_detected(question: str) -> None:
    assert is_follow_up(question)


@pytest.mark.parametrize("question", ["Who were the Normans descended from?",
                                      "When did the Duchy of Normandy begin?",
                                      "Which country is engaged in a security crackdown?"])
def test_self_contained_questions_are_left_alone(question: str) -> None:
    history = [Turn(role="user", content="Who is the mayor of Astana?"), Turn(role="assistant", content="Someone.")]
    assert not is_follow_up(question)
    assert search_query(question, history) == question


def test_follow_up_carries_the_previous_question() -> None:
    history = [Turn(role="user", content="Who were the Normans descended from?"),
               Turn(role="assistant", content="Norse raiders [1]")]
    query = search_query("Who was their leader?", history)
    assert query.startswith("Who was their leader?")
    assert "Normans" in query
    assert "raiders" not in query  # the bot's own words are not evidence for the next search


def test_chained_follow_ups_keep_the_original_topic() -> None:
    history = [Turn(role="user", content="When did the Duchy of Normandy begin?"),
               Turn(role="assistant", content="911"),
               Turn(role="user", content="Which treaty established it?"),
               Turn(role="assistant", content="Saint-Clair-sur-Epte")]
    assert "Duchy of Normandy" in search_query("Who signed it?", history)


def test_conversation_files_are_well_formed() -> None:
    assert len(CONVERSATIONS) >= 5
    for conv in CONVERSATIONS:
        assert conv["corpus"] in {"seed", "squad:Normans"}
        assert len(conv["turns"]) >= 2
        for turn in conv["turns"]:
            assert turn.get("abstain") or (turn["evidence"] and turn["answers"])


@pytest.mark.parametrize("conversation", CONVERSATIONS, ids=[c["id"] for c in CONVERSATIONS])
def test_conversation_resolves(conversation: dict, request: pytest.FixtureRequest) -> None:
    if conversation["corpus"] == "seed":
        pipeline: Pipeline = request.getfixturevalue("seed_pipeline")
    else:
        pipeline = request.getfixturevalue("normans").pipeline
    results = play(pipeline, conversation)
    failed = [(r.question, r.search_query, r.answer[:120]) for r in results if not r.ok]
    assert not failed
    # Every follow-up after the first turn was either self-contained or rewritten with the earlier question.
    assert results[0].search_query is None
