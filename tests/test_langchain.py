"""citechat inside LangChain: a retriever that follows ingests, LangChain messages as history, callbacks that see
the retrieved documents and the model call, and any provider through ``init_chat_model``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from rag import Pipeline
from rag.answer.llm import make_chat_model
from rag.errors import RagError
from tests.conftest import free_port
from tests.live_server import seed_copy_pipeline
from tests.openai_server import FakeOpenAI, FakeOpenAIThread, Script


class Recorder(BaseCallbackHandler):
    """What the callbacks of one run saw: retriever queries and documents, chat model calls."""

    def __init__(self) -> None:
        self.queries: list[str] = []
        self.documents: list[list[Document]] = []
        self.model_calls = 0

    def on_retriever_start(self, serialized: dict[str, Any], query: str, **kwargs: Any) -> None:
        self.queries.append(query)

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.documents.append(list(documents))

    def on_chat_model_start(self, serialized: dict[str, Any], messages: Any, **kwargs: Any) -> None:
        self.model_calls += 1


def test_the_retriever_follows_ingests(tmp_path: Path) -> None:
    pipeline = seed_copy_pipeline(tmp_path)
    retriever = pipeline.as_retriever(k=1)
    question = "who captained the Quenby ferry?"
    assert "Ilka" not in retriever.invoke(question)[0].page_content
    corpus = pipeline.settings.corpus_dir
    (corpus / "ferry.txt").write_text("Ferry\n\nThe Quenby ferry was captained by Ilka Varga.\n", encoding="utf-8")
    pipeline.ingest([corpus])
    assert "Ilka Varga" in retriever.invoke(question)[0].page_content


def test_langchain_messages_are_history(seed_pipeline: Pipeline) -> None:
    as_dicts = [{"role": "user", "content": "when was the Taraz attack?"},
                {"role": "assistant", "content": "2011"}]
    as_messages = [SystemMessage("be brief"), HumanMessage("when was the Taraz attack?"), AIMessage("2011")]
    follow_up = "how many people were killed there?"
    expected = seed_pipeline.ask(follow_up, history=as_dicts)
    answer = seed_pipeline.ask(follow_up, history=as_messages)
    assert answer.search_query == expected.search_query and answer.search_query is not None
    assert "Taraz" in answer.search_query
    assert [c.sentence_id for c in answer.citations] == [c.sentence_id for c in expected.citations]


def test_callbacks_see_the_retrieved_documents_and_the_model_call(seed_pipeline: Pipeline) -> None:
    reply = json.dumps({"answer": "In 2011 [S1].", "citations": ["S1"], "abstain": False})
    pipeline = Pipeline(seed_pipeline.settings, chat_model=FakeListChatModel(responses=[reply]))
    recorder = Recorder()
    answer = pipeline.ask("when was the Taraz attack?", k=2, config={"callbacks": [recorder]})
    assert recorder.queries == ["when was the Taraz attack?"]
    documents, = recorder.documents
    assert len(documents) == 2 and "2011" in documents[0].page_content
    assert documents[0].metadata["sentence_id"] == documents[0].id
    assert recorder.model_calls == 1 and answer.answerer == "llm"


def test_a_retriever_run_reports_nothing_heavy_without_listeners(seed_pipeline: Pipeline) -> None:
    snapshot, candidates = seed_pipeline.as_retriever().candidates("when was the Taraz attack?", k=3)
    assert len(candidates) > 3 and "2011" in snapshot.texts[candidates[0].row]


def test_any_provider_through_init_chat_model(seed_pipeline: Pipeline) -> None:
    reply = json.dumps({"answer": "2011 [S1]", "citations": ["S1"], "abstain": False})
    fake = FakeOpenAI(default=Script(reply))
    with FakeOpenAIThread(fake, free_port()) as endpoint:
        settings = seed_pipeline.settings.with_overrides(llm="openai:test-model", llm_base_url=endpoint.base_url)
        answer = Pipeline(settings).ask("when was the Taraz attack?")
    assert answer.answerer == "llm" and answer.answer == "2011 [S1]"
    assert fake.calls[0].body["model"] == "test-model"


@pytest.mark.parametrize("value", ["nosuchprovider:model", "a-model-no-provider-knows", "openai:gpt-4o-mini"])
def test_an_unknown_provider_or_a_missing_key_is_a_clear_error(seed_pipeline: Pipeline, value: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(RagError, match="RAG_LLM") as caught:
        make_chat_model(seed_pipeline.settings.with_overrides(llm=value))
    assert "\n" not in str(caught.value), "the CLI's errors are one line"
