"""Diff two runs (summary JSON or results JSONL): which metrics moved and which questions changed outcome."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Group
from rich.table import Table
from rich.text import Text

from rag.errors import EvalFileError
from rag.evaluation.registry import LOWER_IS_BETTER
from rag.evaluation.scoring import QuestionResult, summarize


@dataclass
class QuestionChange:
    """One question whose outcome differs between the runs."""

    id: str
    change: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass
class Comparison:
    """Metric deltas (b − a) and per-question changes between run ``a`` and run ``b``."""

    a: str
    b: str
    metrics: list[tuple[str, float | None, float | None, float | None]]
    changes: list[QuestionChange] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"a": self.a, "b": self.b,
                "metrics": [{"metric": m, "a": x, "b": y, "delta": d} for m, x, y, d in self.metrics],
                "changes": [vars(c) for c in self.changes]}


def load_run(path: Path) -> dict[str, Any]:
    """A run's summary: read from a summary JSON, or recomputed from a results JSONL."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EvalFileError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if path.suffix.lower() in {".jsonl", ".ndjson"}:
        try:
            results = [QuestionResult.model_validate_json(line) for line in text.splitlines() if line.strip()]
        except ValidationError as exc:
            raise EvalFileError(f"{path.name}: not a results file written by `rag eval --out`") from exc
        k = max((len(r.citations) for r in results), default=1) or 1
        return summarize(results, k, {"dataset": path.name})
    try:
        summary = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EvalFileError(f"{path.name} line {exc.lineno}: not valid JSON ({exc.msg})") from exc
    if not isinstance(summary, dict) or "metrics" not in summary:
        raise EvalFileError(f"{path.name}: not a summary written by `rag eval --json`")
    return summary


def _outcome_change(before: dict[str, Any], after: dict[str, Any]) -> str | None:
    if before.get("passed") != after.get("passed"):
        return "now passes" if after.get("passed") else "now fails"
    if before.get("abstained") != after.get("abstained"):
        return "now abstains" if after.get("abstained") else "now answers"
    if before.get("rank") != after.get("rank"):
        return f"evidence rank {before.get('rank') or '–'} → {after.get('rank') or '–'}"
    if before.get("f1") != after.get("f1"):
        return f"F1 {before.get('f1') or 0:.2f} → {after.get('f1') or 0:.2f}"
    return None


def compare_runs(a: dict[str, Any], b: dict[str, Any], name_a: str = "a", name_b: str = "b") -> Comparison:
    """Metric-by-metric deltas and the questions whose pass/abstain/rank/F1 changed."""
    names = list(dict.fromkeys([*a["metrics"], *b["metrics"]]))
    rows = []
    for name in names:
        x, y = a["metrics"].get(name), b["metrics"].get(name)
        rows.append((name, x, y, None if x is None or y is None else round(y - x, 4)))
    changes = []
    outcomes_a, outcomes_b = a.get("outcomes", {}), b.get("outcomes", {})
    for qid in list(dict.fromkeys([*outcomes_a, *outcomes_b])):
        before, after = outcomes_a.get(qid), outcomes_b.get(qid)
        if before is None or after is None:
            changes.append(QuestionChange(qid, "only in b" if before is None else "only in a", before, after))
            continue
        change = _outcome_change(before, after)
        if change:
            changes.append(QuestionChange(qid, change, before, after))
    order = {"now fails": 0, "now passes": 1}
    changes.sort(key=lambda c: (order.get(c.change, 2), c.id))
    return Comparison(name_a, name_b, rows, changes)


def comparison_tables(c: Comparison, max_questions: int = 50) -> Group:
    """Rich tables: metrics (green when better, red when worse) and the first changed questions."""
    metrics = Table(title=f"{c.a} → {c.b}", title_justify="left")
    for col, justify in (("metric", "left"), ("a", "right"), ("b", "right"), ("change", "right")):
        metrics.add_column(col, justify=justify)  # type: ignore[arg-type]
    for name, x, y, d in c.metrics:
        style = ""
        if d:
            better = d < 0 if name in LOWER_IS_BETTER else d > 0
            style = "green" if better else "red"
        delta = f"{d:+g}" if d else ("0" if d == 0 else "–")
        metrics.add_row(name, _fmt(x), _fmt(y), Text(delta, style=style))
    questions = Table(title=f"{len(c.changes)} questions changed" + (f" (first {max_questions})"
                                                                     if len(c.changes) > max_questions else ""),
                      title_justify="left")
    questions.add_column("id")
    questions.add_column("change")
    for ch in c.changes[:max_questions]:
        style = "red" if ch.change == "now fails" else "green" if ch.change == "now passes" else ""
        questions.add_row(Text(ch.id), Text(ch.change, style=style))
    return Group(metrics, questions)


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"
