"""The one API behind the CLI, UI and HTTP server: ``Pipeline.ask`` and ``Pipeline.ingest``."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from pydantic import ValidationError

from rag.answer.abstention import ABSTAIN_THRESHOLD, READER_ABSTAIN_THRESHOLD, READER_ABSTENTION, AbstentionModel
from rag.answer.compose import ABSTAIN_TEXT, Draft, extractive_answer, select_citations
from rag.answer.history import search_query
from rag.answer.llm import FAILED, LLMReply, generate, make_chat_model, stream_generate
from rag.answer.reader import Reader, load_reader
from rag.config import Settings, apply_process_defaults, get_settings
from rag.errors import IndexNotReadyError, InvalidQuestionError
from rag.index.embeddings import SentenceEmbeddings
from rag.index.snapshot import Snapshot, load_snapshot
from rag.index.store import SentenceStore
from rag.ingest.sync import ingest as run_ingest
from rag.ingest.sync import remove_documents
from rag.records import (
    Answer,
    AnswerDelta,
    AnswerDone,
    Answerer,
    AskEvent,
    Citation,
    CitationsFound,
    IngestReport,
    Role,
    Turn,
)
from rag.retrieve import Candidate, FusionWeights, SentenceRetriever

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# How long a loaded snapshot is trusted before asking Chroma whether an ingest changed it.
_GENERATION_TTL_S = 1.0
_MESSAGE_ROLES: dict[str, Role] = {"human": "user", "ai": "assistant"}


def validate_question(question: object, max_chars: int) -> str:
    """The question stripped, or ``InvalidQuestionError`` saying what is wrong with it."""
    if not isinstance(question, str):
        raise InvalidQuestionError("the question must be text")
    text = question.strip()
    if not text:
        raise InvalidQuestionError("the question is empty")
    if len(text) > max_chars:
        raise InvalidQuestionError(f"the question is {len(text)} characters long; the limit is {max_chars}"
                                   " (RAG_MAX_QUESTION_CHARS)")
    if _CONTROL.search(text):
        raise InvalidQuestionError("the question contains control characters")
    if _SURROGATE.search(text):  # lone surrogates cannot be encoded: the tokenizer and Chroma would crash
        raise InvalidQuestionError("the question is not valid Unicode text")
    if not any(ch.isalnum() for ch in text):
        raise InvalidQuestionError("the question has no words (only punctuation, symbols or emoji)")
    return text


def validate_history(history: object, max_chars: int) -> list[Turn]:
    """Earlier turns as ``Turn``s, from ``Turn``s, ``{role, content}`` dicts or LangChain messages (system and tool
    messages are not turns of the chat and are left out), or ``InvalidQuestionError``; user turns obey the question
    length limit."""
    if history is None:
        return []
    if not isinstance(history, list | tuple):
        raise InvalidQuestionError("the history must be a list of {role, content} messages")
    try:
        turns = [t for t in map(_turn, history) if t is not None]
    except ValidationError as exc:
        raise InvalidQuestionError(f"invalid history message: {exc.errors()[0]['msg']}") from None
    if any(t.role == "user" and len(t.content) > max_chars for t in turns):
        raise InvalidQuestionError(f"a history message is longer than {max_chars} characters")
    if any(t.role == "user" and _SURROGATE.search(t.content) for t in turns):  # it may join the search query
        raise InvalidQuestionError("a history message is not valid Unicode text")
    return turns


def _turn(item: object) -> Turn | None:
    if isinstance(item, Turn):
        return item
    if isinstance(item, BaseMessage):
        role = _MESSAGE_ROLES.get(item.type)
        return Turn(role=role, content=item.text) if role else None
    return Turn.model_validate(item)


def validate_k(k: object) -> int | None:
    """``k`` when it is None or a whole number from 1 to 50, else ``InvalidQuestionError``."""
    if k is None:
        return None
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 50:
        raise InvalidQuestionError("k must be a whole number from 1 to 50")
    return k


@dataclass(frozen=True)
class AskState:
    """One question on its way through the chain; each step returns a copy with its part filled in."""

    question: str
    history: list[Turn]
    k: int
    # The question's vectors (``Pipeline.embed_questions``) when the caller already has them (an evaluation embeds
    # all its questions in one batch); used only while the search query is the question itself.
    question_vector: np.ndarray | None = None
    query: str = ""
    snapshot: Snapshot | None = None
    candidates: list[Candidate] = field(default_factory=list)
    draft: Draft | None = None
    answerer: Answerer = "extractive"
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class AskCounters:
    """What this pipeline has answered since it was made, read by the server's ``/metrics``."""

    answered: dict[str, int] = field(default_factory=lambda: {"extractive": 0, "llm": 0})
    abstained: int = 0
    llm_calls: int = 0
    llm_failures: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, answer: Answer) -> None:
        """Count one finished answer."""
        with self._lock:
            if answer.abstained:
                self.abstained += 1
            else:
                self.answered[answer.answerer] = self.answered.get(answer.answerer, 0) + 1

    def count_llm(self, failed: bool) -> None:
        """Count one call of the chat model; ``failed``: an error, a timeout or a reply that could not be read."""
        with self._lock:
            self.llm_calls += 1
            self.llm_failures += failed


class Pipeline:
    """Ingest, retrieve and answer over one index; safe to share between threads."""

    def __init__(self, settings: Settings | None = None, chat_model: BaseChatModel | None = None,
                 weights: FusionWeights | None = None, abstention: AbstentionModel | None = None) -> None:
        apply_process_defaults()
        self.settings = settings or get_settings()
        self.embedder = SentenceEmbeddings.from_settings(self.settings)
        self.weights = weights or FusionWeights()
        self.abstention = abstention or (READER_ABSTENTION if self.settings.reader == "on" else AbstentionModel())
        default = READER_ABSTAIN_THRESHOLD if self.settings.reader == "on" else ABSTAIN_THRESHOLD
        self.abstain_threshold = default if self.settings.abstain_threshold is None else self.settings.abstain_threshold
        self.chat_model = chat_model if chat_model is not None else make_chat_model(self.settings)
        self._store: SentenceStore | None = None
        self._snapshot: Snapshot | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()
        # Retrieve and draft steps in flight at once (waiting for an LLM's reply holds none). Embedding is
        # serialised and the rest holds the GIL, so more threads add no throughput, only memory: 50 concurrent HTTP
        # clients took the server from 0.94 to 1.25 GB RSS.
        self._ask_slots = threading.BoundedSemaphore(max(2, os.cpu_count() or 1))
        self.counters = AskCounters()
        self._retriever = self.as_retriever()
        self._prepare, self._chain = self._build_chain()

    # -- index ------------------------------------------------------------------------------------------------
    @property
    def store(self) -> SentenceStore:
        """The Chroma-backed store (opened on first use)."""
        if self._store is None:
            self._store = SentenceStore(self.settings)
        return self._store

    def snapshot(self) -> Snapshot:
        """The current snapshot, reloaded when another process (or thread) changed the index."""
        now = time.monotonic()
        with self._lock:
            if self._snapshot is None or now - self._checked_at > _GENERATION_TTL_S:
                generation = self.store.generation()
                if self._snapshot is None or (generation != self._snapshot.generation
                                             and not generation.startswith("dirty-")):
                    self._snapshot = load_snapshot(self.store, self.settings.index_dir)
                self._checked_at = now
            return self._snapshot

    def ingest(self, paths: Sequence[Path | str] | None = None, prune: bool = True,
               show_progress: bool = False) -> IngestReport:
        """Sync the index with ``paths`` (files, folders or http(s) URLs; default: the corpus folder) and refresh the
        snapshot."""
        report = run_ingest(list(paths or [self.settings.corpus_dir]), self.settings, prune=prune,
                            show_progress=show_progress)
        with self._lock:
            self._snapshot = None
        return report

    def remove(self, sources: Sequence[str]) -> IngestReport:
        """Remove articles from the index by source name (files and pages ingested by URL alike)."""
        report = remove_documents(list(sources), self.settings)
        with self._lock:
            self._snapshot = None
        return report

    def as_retriever(self, k: int | None = None) -> SentenceRetriever:
        """A LangChain ``BaseRetriever`` over this index (it follows ingests), for use in other LangChain chains."""
        return SentenceRetriever(snapshots=self._answerable_snapshot, embedder=self.embedder,
                                 k=k or self.settings.top_k, n_candidates=self.settings.candidates,
                                 weights=self.weights)

    def _answerable_snapshot(self) -> Snapshot:
        snapshot = self.snapshot()
        if len(snapshot) == 0:
            raise IndexNotReadyError(f"the index in {self.settings.index_dir} is empty: run `rag ingest` first")
        return snapshot

    def warm_up(self) -> None:
        """Load the model and the snapshot now rather than on the first question."""
        self.snapshot()
        self.embedder.encode_questions(["warm up"])
        if self.reader is not None:
            self.reader.read("warm up", ["warm up"])

    @property
    def reader(self) -> Reader | None:
        """The span reader (loaded on first use), or None with ``RAG_READER=off``."""
        return load_reader() if self.settings.reader == "on" else None

    def embed_questions(self, questions: Sequence[str]) -> np.ndarray:
        """Question vectors for many questions at once (batched on every core), to pass to ``ask``: each question's
        ranking and evidence vectors (``SentenceEmbeddings.encode_questions``)."""
        return self.embedder.encode_questions(list(questions))

    # -- answering --------------------------------------------------------------------------------------------
    def _build_chain(self) -> tuple[Runnable[AskState, AskState], Runnable[AskState, Answer]]:
        """(condense the question → retrieve candidates through this index's retriever → draft the extractive
        answer) → generate the answer (the LLM's, when one is configured); each step a runnable, timed. The part in
        brackets is returned alone too: a streamed answer runs it before the LLM's tokens."""
        prepare = (_step(self._condense, "condense") | _step(self._retrieve, "retrieve")
                   | _step(self._draft, "draft"))
        return prepare, prepare | _step(self._generate, "generate")

    def _condense(self, state: AskState, config: RunnableConfig) -> AskState:
        started = time.perf_counter()
        query = search_query(state.question, state.history)
        return dataclasses.replace(state, query=query, timings={"condense": _ms(started)})

    def _retrieve(self, state: AskState, config: RunnableConfig) -> AskState:
        started = time.perf_counter()
        vector = state.question_vector if state.query == state.question else None
        with self._ask_slots:
            snapshot, candidates = self._retriever.candidates(state.query, state.k, config, vector)
        return dataclasses.replace(state, snapshot=snapshot, candidates=candidates,
                                   timings={**state.timings, "retrieve": _ms(started)})

    def _draft(self, state: AskState, config: RunnableConfig) -> AskState:
        started = time.perf_counter()
        assert state.snapshot is not None, "the retrieve step sets the snapshot"
        with self._ask_slots:
            draft = extractive_answer(state.question, state.candidates, state.snapshot, state.k, self.abstention,
                                      self.abstain_threshold, self.reader, self.settings.reader_candidates)
        return dataclasses.replace(state, draft=draft, timings={**state.timings, "answer": _ms(started)})

    def _offered(self, state: AskState) -> list[Citation] | None:
        """The sentences the LLM may cite, or None when it is not asked (none configured, or no evidence)."""
        assert state.draft is not None and state.snapshot is not None, "the draft step ran"
        if self.chat_model is None or state.draft.abstained:
            return None
        return select_citations(state.candidates, state.snapshot, max(state.k, 5))

    def _generate(self, state: AskState, config: RunnableConfig) -> Answer:
        offered = self._offered(state)
        if offered is not None:
            assert self.chat_model is not None
            started = time.perf_counter()
            state = self._with_reply(state, generate(self.chat_model, state.question, offered, config), started)
        return self._finish(state)

    def _with_reply(self, state: AskState, reply: LLMReply, started: float) -> AskState:
        """The state with the LLM's answer in place of the draft when it is usable: an abstention, or text with at
        least one valid citation; otherwise the extractive draft stands."""
        assert state.draft is not None
        self.counters.count_llm(reply.failed)
        draft, answerer = state.draft, state.answerer
        if reply.abstained and not reply.failed:
            draft, answerer = Draft(ABSTAIN_TEXT, None, True, [], draft.confidence), "llm"
        elif reply.answer and reply.cited:
            draft, answerer = Draft(reply.answer, None, False, reply.cited[:state.k], draft.confidence), "llm"
        return dataclasses.replace(state, draft=draft, answerer=answerer,
                                   timings={**state.timings, "llm": _ms(started)})

    def _finish(self, state: AskState) -> Answer:
        answer = _record(state)
        self.counters.count(answer)
        return answer

    def _start(self, question: str, history: object, k: int | None, question_vector: np.ndarray | None = None
               ) -> AskState:
        text = validate_question(question, self.settings.max_question_chars)
        turns = validate_history(history, self.settings.max_question_chars)
        return AskState(question=text, history=turns, k=validate_k(k) or self.settings.top_k,
                        question_vector=question_vector)

    def extractive(self, question: str) -> Answer:
        """The extractive answer alone, not counted in ``counters``: for questions the app asks itself (suggested
        questions), which must neither call an LLM nor count as answers served."""
        return _record(self._prepare.invoke(self._start(question, None, None)))

    def ask(self, question: str, history: Sequence[Turn | BaseMessage | dict[str, str]] | None = None,
            k: int | None = None, question_vector: np.ndarray | None = None,
            config: RunnableConfig | None = None) -> Answer:
        """Answer ``question`` from the corpus, citing the sentences it rests on. ``history``: earlier turns, as
        ``Turn``s, ``{role, content}`` dicts or LangChain messages. ``question_vector`` is the question's vectors
        from ``embed_questions``, when the caller embedded many questions at once. ``config`` reaches every step
        (LangChain callbacks and tracing see the retriever's documents and the LLM call)."""
        return self._chain.invoke(self._start(question, history, k, question_vector), config)

    async def astream(self, question: str, history: Sequence[Turn | BaseMessage | dict[str, str]] | None = None,
                      k: int | None = None, config: RunnableConfig | None = None) -> AsyncIterator[AskEvent]:
        """``ask``, as events: the expected citations once retrieval is done, then the answer text in pieces (token
        by token from an LLM, in one piece when extractive), then the finished answer. Stopping the iteration
        stops the LLM's generation."""
        state = self._start(question, history, k)
        state = await asyncio.to_thread(self._prepare.invoke, state, config)
        assert state.draft is not None
        yield CitationsFound(citations=state.draft.citations)
        offered = self._offered(state)
        if offered is not None:
            assert self.chat_model is not None
            started = time.perf_counter()
            reply = FAILED
            async for piece in stream_generate(self.chat_model, state.question, offered, config):
                if isinstance(piece, str):
                    yield AnswerDelta(text=piece)
                else:
                    reply = piece
            state = self._with_reply(state, reply, started)
        answer = self._finish(state)
        if offered is None:
            yield AnswerDelta(text=answer.answer)
        yield AnswerDone(answer=answer)


def _step(method: Callable[[AskState, RunnableConfig], Any], name: str) -> RunnableLambda:
    """A named chain step whose signature is worked out once, here.

    ``RunnableLambda`` asks ``inspect.signature`` of its function twice per call (does it take ``config``, a
    ``run_manager``?); for a bound method that is rebuilt every time: ~0.4 ms of a ~12 ms ask at 100k sentences.
    A function carrying ``__signature__`` answers at once.
    """

    def step(state: AskState, config: RunnableConfig) -> Any:
        return method(state, config)

    step.__signature__ = inspect.signature(step)  # type: ignore[attr-defined]
    return RunnableLambda(step, name=name)


def _record(state: AskState) -> Answer:
    """The ``Answer`` record of a state whose draft (the LLM's, when it wrote one) is final."""
    draft = state.draft
    assert draft is not None
    timings = {**state.timings, "total": round(sum(state.timings.values()), 2)}
    return Answer(question=state.question, answer=draft.answer, short_answer=draft.short_answer,
                  abstained=draft.abstained, citations=draft.citations, timings_ms=timings,
                  confidence=draft.confidence, answerer=state.answerer,
                  search_query=state.query if state.query != state.question else None)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
