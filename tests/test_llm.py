"""The optional generative answerer, with LangChain fake chat models: only retrieved sentences may be cited."""

import json
import sys
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from rag import Pipeline
from rag.config import Settings


def llm_pipeline(seed_pipeline: Pipeline, *replies: str) -> Pipeline:
    pipeline = Pipeline(seed_pipeline.settings, chat_model=FakeListChatModel(responses=list(replies)))
    return pipeline


def test_llm_answer_cites_given_sentences(seed_pipeline: Pipeline) -> None:
    reply = json.dumps({"answer": "The attack in Taraz was in 2011 [S1].", "citations": ["S1"], "abstain": False})
    answer = llm_pipeline(seed_pipeline, reply).ask("when was the Taraz attack?")
    assert answer.answerer == "llm" and answer.answer.startswith("The attack in Taraz was in 2011")
    assert len(answer.citations) == 1 and "Taraz" in answer.citations[0].text


def test_invented_citation_ids_are_dropped_and_fall_back_to_extractive(seed_pipeline: Pipeline) -> None:
    reply = json.dumps({"answer": "pwned", "citations": ["S99", "deadbeefdeadbeefdead", "not-a-label"]})
    answer = llm_pipeline(seed_pipeline, reply).ask("when was the Taraz attack?")
    assert answer.answerer == "extractive" and answer.answer.startswith("2011") and "pwned" not in answer.answer
    retrieved = {c.sentence_id for c in seed_pipeline.ask("when was the Taraz attack?", k=5).citations}
    assert {c.sentence_id for c in answer.citations} <= retrieved


def test_mixed_valid_and_invented_citations_keep_only_valid(seed_pipeline: Pipeline) -> None:
    reply = json.dumps({"answer": "In 2011 [S1] [S7].", "citations": ["S1", "S7", "S42"]})
    answer = llm_pipeline(seed_pipeline, reply).ask("when was the Taraz attack?")
    assert answer.answerer == "llm" and "[S42]" not in answer.answer
    for c in answer.citations:
        assert seed_pipeline.store.document(c.source).text[c.start:c.end] == c.text
    assert len(answer.citations) <= 2


def test_unparsable_reply_falls_back(seed_pipeline: Pipeline) -> None:
    answer = llm_pipeline(seed_pipeline, "I think it was 2011, trust me").ask("when was the Taraz attack?")
    assert answer.answerer == "extractive" and answer.short_answer == "2011"


def test_llm_may_abstain_and_is_not_called_without_evidence(seed_pipeline: Pipeline) -> None:
    abstain = json.dumps({"answer": "", "citations": [], "abstain": True})
    assert llm_pipeline(seed_pipeline, abstain).ask("Where is Taraz?").abstained
    # No evidence: the fake would answer "Tokyo", but it must not be asked at all.
    invented = json.dumps({"answer": "Tokyo", "citations": ["S1"]})
    answer = llm_pipeline(seed_pipeline, invented).ask("What is the capital of Japan?")
    assert answer.abstained and "Tokyo" not in answer.answer


def test_llm_without_the_llm_extra_says_which_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from rag.answer.llm import make_chat_model
    from rag.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "langchain_openai", None)  # what an install without [llm] looks like
    settings = Settings(index_dir=tmp_path, llm_base_url="http://127.0.0.1:9/v1", llm_model="m")
    with pytest.raises(MissingExtraError, match=r"pip install 'citechat\[llm\]'") as caught:
        make_chat_model(settings)
    assert caught.value.exit_code == 8


def test_questions_the_app_asks_itself_reach_no_llm_and_count_nothing(seed_pipeline: Pipeline) -> None:
    reply = json.dumps({"answer": "from the LLM [S1]", "citations": ["S1"], "abstain": False})
    pipeline = llm_pipeline(seed_pipeline, reply)
    answer = pipeline.extractive("when was the Taraz attack?")
    assert answer.answerer == "extractive" and answer.short_answer == "2011"
    assert pipeline.counters.llm_calls == 0 and pipeline.counters.answered == {"extractive": 0, "llm": 0}
    assert pipeline.ask("when was the Taraz attack?").answerer == "llm"
    assert pipeline.counters.llm_calls == 1 and pipeline.counters.answered["llm"] == 1
