"""Multi-turn conversations from ``tests/data/conversations*.jsonl``, played against a pipeline."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rag import Pipeline
from rag.text import normalize_for_match

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"


@dataclass
class TurnResult:
    """What one turn produced and whether it met its expectation."""

    question: str
    search_query: str | None
    answer: str
    top_citation: str
    ok: bool


def load_conversations() -> list[dict]:
    """Every conversation of every ``conversations*.jsonl`` file."""
    return [json.loads(line) for path in sorted(DATA.glob("conversations*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def turn_ok(turn: dict, answer) -> bool:  # type: ignore[no-untyped-def]
    """Abstained when expected; else the top citation holds an evidence string and the answer a gold one."""
    if turn.get("abstain"):
        return bool(answer.abstained)
    if answer.abstained or not answer.citations:
        return False
    top = normalize_for_match(answer.citations[0].text)
    said = normalize_for_match(answer.answer).lower()
    return (any(normalize_for_match(e) in top for e in turn["evidence"])
            and any(normalize_for_match(g).lower() in said for g in turn["answers"]))


def play(pipeline: Pipeline, conversation: dict) -> list[TurnResult]:
    """Ask each turn with the earlier turns (questions and the bot's answers) as history."""
    history: list[dict[str, str]] = []
    results = []
    for turn in conversation["turns"]:
        answer = pipeline.ask(turn["question"], history=history)
        top = answer.citations[0].text if answer.citations else ""
        results.append(TurnResult(turn["question"], answer.search_query, answer.answer, top, turn_ok(turn, answer)))
        history += [{"role": "user", "content": turn["question"]}, {"role": "assistant", "content": answer.answer}]
    return results
