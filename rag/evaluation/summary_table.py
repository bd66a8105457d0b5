"""The end-of-run summary as rows and a rich table (CLI); the UI renders the same rows as HTML."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from rag.evaluation.registry import HEADLINE


def summary_rows(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(label, value, note) rows: the headline metrics that have a value, then latency and timing."""
    m = summary["metrics"]
    rows = [(metric.label, metric.format(m[metric.key]), metric.note) for metric in HEADLINE
            if m.get(metric.key) is not None]
    lat = summary.get("latency", {})
    if lat.get("p50_ms") is not None:
        rows.append(("latency p50 / p95 / max", f"{lat['p50_ms']:.0f} / {lat['p95_ms']:.0f} / {lat['max_ms']:.0f} ms",
                     "per question"))
    timing = summary.get("timing", {})
    if timing:
        parts = ", ".join(f"{label} {timing.get(key) or 0:.1f} s" for key, label in (
            ("ingest_s", "ingest"), ("load_s", "load"), ("embed_questions_s", "question embedding"),
            ("answer_s", "answering")))
        cpu = sum((timing.get("cpu_s") or {}).values())
        rows.append(("time", f"{timing.get('total_s') or 0:.1f} s", parts + (f"; {cpu:.0f} CPU s" if cpu else "")))
    return rows


def headline(summary: dict[str, Any]) -> str:
    return (f"{summary.get('dataset', '')}: {summary['questions']} questions ({summary['answerable']} answerable, "
            f"{summary['unanswerable']} unanswerable), k = {summary['k']}, {summary.get('errors', 0)} errors")


def rich_table(summary: dict[str, Any]) -> Table:
    """The summary as a rich table for the terminal."""
    table = Table(title=headline(summary), title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("", style="dim")
    for label, value, note in summary_rows(summary):
        table.add_row(label, value, note)
    return table
