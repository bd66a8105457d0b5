"""The metric registry is the one list: the summary computes exactly its metrics, and every face shows them."""

from __future__ import annotations

from rag.evaluation.registry import BY_KEY, HEADLINE, LOWER_IS_BETTER
from rag.evaluation.report import render_report
from rag.evaluation.scoring import check_gates, summarize
from rag.evaluation.summary_table import summary_rows


def test_the_summary_computes_exactly_the_registered_metrics() -> None:
    assert list(summarize([], 3)["metrics"]) == list(BY_KEY)


def test_tables_and_report_show_every_headline_metric_with_a_value() -> None:
    summary = summarize([], 3)
    summary["metrics"] = {key: 0.5 for key in BY_KEY}
    labels = [label for label, _, _ in summary_rows(summary)]
    assert labels[:len(HEADLINE)] == [m.label for m in HEADLINE]
    html = render_report(summary, [])
    assert all(f"<b>50.0%</b>{m.label}" in html for m in HEADLINE)


def test_gates_follow_each_metrics_direction() -> None:
    summary = summarize([], 3)
    summary["metrics"] = {key: 0.5 for key in BY_KEY}
    for key in BY_KEY:
        failed = check_gates(summary, {key: 0.4})
        assert bool(failed) == (key in LOWER_IS_BETTER), key
