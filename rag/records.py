"""Typed records that cross module boundaries: sentences, citations, answers, ingest reports."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Role = Literal["user", "assistant"]
Answerer = Literal["extractive", "llm"]


class Sentence(BaseModel):
    """One indexed sentence: ``original_text[start:end] == text`` for its source."""

    sentence_id: str
    source: str
    text: str
    start: int
    end: int
    position: int = Field(description="Index of the sentence within its source.")
    title: str = ""
    page: int | None = Field(None, description="The PDF page holding the sentence's start (1-based).")


class Citation(BaseModel):
    """A sentence an answer rests on, with its score (higher is better): the retrieval score; the sentence holding
    the reader's answer span is cited first (or second, after the top candidate, when the reader is less sure of it)
    and carries the best score among the candidates it was placed above."""

    source: str
    sentence_id: str
    text: str
    start: int
    end: int
    score: float
    page: int | None = Field(None, description="The PDF page the sentence starts on (1-based); null for other "
                             "formats.")


class Turn(BaseModel):
    """One earlier message of a chat."""

    role: Role
    content: str


class Answer(BaseModel):
    """What ``Pipeline.ask`` returns; the JSON contract of ``rag ask --json`` and ``POST /api/ask``."""

    question: str
    answer: str
    short_answer: str | None = Field(None, description="The answer span alone, when one was found.")
    abstained: bool
    citations: list[Citation]
    timings_ms: dict[str, float] = Field(default_factory=dict)
    confidence: float = 0.0
    answerer: Answerer = "extractive"
    search_query: str | None = Field(None, description="The question as rewritten from the chat history.")


class IngestReport(BaseModel):
    """Summary of one ingest run."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: list[str] = Field(default_factory=list)
    sentences_added: int = 0
    sentences_removed: int = 0
    total_sentences: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        """One line for the end of ``rag ingest``."""
        return (
            f"added {self.added}, updated {self.updated}, removed {self.removed}, unchanged {self.unchanged} files"
            f" (+{self.sentences_added}/-{self.sentences_removed} sentences, {self.total_sentences} indexed,"
            f" {len(self.skipped)} skipped) in {self.seconds:.1f}s"
        )


class CitationsFound(BaseModel):
    """Streamed first, once retrieval is done: the sentences the answer is expected to cite (the final answer's
    citations may be fewer or others among those retrieved)."""

    citations: list[Citation]


class AnswerDelta(BaseModel):
    """Streamed next: a piece of the answer text, to append to the pieces before it."""

    text: str


class AnswerDone(BaseModel):
    """Streamed last: the finished answer, citations checked; it replaces what the pieces built."""

    answer: Answer


AskEvent = CitationsFound | AnswerDelta | AnswerDone
