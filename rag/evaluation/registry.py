"""The one list of evaluation metrics: key, label, meaning, direction and format. The summary, ``--fail-under``,
the CLI and UI tables, the HTML report and ``--compare`` all read it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Unit = Literal["fraction", "ms"]


@dataclass(frozen=True)
class Metric:
    """One run-level metric of ``summary["metrics"]``."""

    key: str
    label: str
    note: str = ""
    higher_is_better: bool = True
    unit: Unit = "fraction"
    headline: bool = True  # shown in the summary tables and the report's headline chart

    def format(self, value: float | None) -> str:
        """``62.5%`` or ``8 ms``; a metric with no value is ``–``."""
        if value is None:
            return "–"
        return f"{value:.0f} ms" if self.unit == "ms" else f"{value:.1%}"


METRICS: tuple[Metric, ...] = (
    Metric("pass_rate", "pass rate", "answer right (and evidence cited) / abstained when unanswerable"),
    Metric("em", "exact match", "on short answer (else answer), answerable questions"),
    Metric("f1", "token F1", "on short answer (else answer), answerable questions"),
    Metric("contains_gold", "answer contains gold", "full answer text"),
    Metric("hit@1", "hit@1", "first citation contains the evidence"),
    Metric("hit@k", "hit@k", "some citation contains the evidence"),
    Metric("mrr", "MRR", "1/rank of the first citation with the evidence"),
    Metric("citation_precision", "citation precision", "cited sentences that overlap the evidence"),
    Metric("citation_recall", "citation recall", "evidence items overlapped by a citation"),
    Metric("abstain_precision", "abstention precision", "abstentions that were on unanswerable questions"),
    Metric("abstain_recall", "abstention recall", "unanswerable questions abstained on"),
    Metric("abstain_f1", "abstention F1"),
    Metric("false_abstention_rate", "false-abstention rate", "answerable questions abstained on (lower is better)",
           higher_is_better=False),
    Metric("latency_p50_ms", "latency p50", "per question", higher_is_better=False, unit="ms", headline=False),
    Metric("latency_p95_ms", "latency p95", "per question", higher_is_better=False, unit="ms", headline=False),
    Metric("latency_max_ms", "latency max", "per question", higher_is_better=False, unit="ms", headline=False),
)
BY_KEY = {m.key: m for m in METRICS}
HEADLINE = tuple(m for m in METRICS if m.headline)
LOWER_IS_BETTER = frozenset(m.key for m in METRICS if not m.higher_is_better)
