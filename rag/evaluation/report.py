"""A single self-contained HTML report of a run: summary, inline SVG plots, a sortable table of every question."""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from typing import Any

from rag.evaluation.registry import HEADLINE
from rag.evaluation.scoring import QuestionResult

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d232a;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.muted{color:#5c6670}.grid{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #d9dee3;border-radius:8px;padding:8px 12px;min-width:120px}
.card b{display:block;font-size:20px}.plots{display:flex;flex-wrap:wrap;gap:24px}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #e5e8eb;padding:4px 6px;
text-align:left;vertical-align:top}th{background:#f3f5f7;position:sticky;top:0}
table.sortable th{cursor:pointer;user-select:none}table.sortable th:after{content:" \\2195";color:#9aa3ab}
td.num{text-align:right;white-space:nowrap}.pass{color:#17803d;font-weight:bold}.fail{color:#c0262d;font-weight:bold}
.cite{font-size:12px;color:#39424a;margin:2px 0}.cite.hit{border-left:3px solid #17803d;padding-left:4px}
.cite.miss{border-left:3px solid #d0d5da;padding-left:4px}code{font-size:12px}
"""

# Sorts by the cell's data-v (numbers numerically, text alphabetically); a second click reverses.
_JS = """
document.querySelectorAll("table.sortable").forEach(function(t){
  t.querySelectorAll("th").forEach(function(th,i){
    th.addEventListener("click",function(){
      var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows),dir=th.dataset.dir==="asc"?-1:1;
      th.dataset.dir=dir===1?"asc":"desc";
      rows.sort(function(a,b){
        var x=a.cells[i].dataset.v!==undefined?a.cells[i].dataset.v:a.cells[i].textContent;
        var y=b.cells[i].dataset.v!==undefined?b.cells[i].dataset.v:b.cells[i].textContent;
        var nx=parseFloat(x),ny=parseFloat(y);
        if(!isNaN(nx)&&!isNaN(ny)&&String(nx)===x.trim()&&String(ny)===y.trim())return dir*(nx-ny);
        return dir*x.localeCompare(y);
      });
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
});
"""



def bar_chart(title: str, bars: Sequence[tuple[str, float, str]], unit: str = "%", width: int = 420) -> str:
    """A horizontal bar chart as inline SVG; ``bars`` are (label, value, annotation) with values ≥ 0."""
    row, label_w, top = 22, 120, 26
    height = top + row * max(len(bars), 1) + 8
    peak = max((v for _, v, _ in bars), default=0.0) or 1.0
    scale = 1.0 if unit == "%" else peak
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{escape(title)}"><text x="0" y="16" font-size="13" font-weight="bold">{escape(title)}'
             "</text>"]
    span = width - label_w - 80
    for i, (label, value, note) in enumerate(bars):
        y = top + i * row
        w = max(0.0, min(1.0, value / scale)) * span
        shown = f"{100 * value:.1f}%" if unit == "%" else f"{value:g}"
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" font-size="12" text-anchor="end">{escape(label[:18])}'
                     f'</text><rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="14" fill="#3b82c4"/>'
                     f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" font-size="11">{escape(shown)} '
                     f'{escape(note)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def latency_bins(latencies: Sequence[float], bins: int = 12) -> list[tuple[str, float, str]]:
    """Histogram bars of latencies (ms): equal-width bins up to the 99th percentile, then one overflow bar."""
    if not latencies:
        return []
    ordered = sorted(latencies)
    lo, top = ordered[0], ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    width = (top - lo) / bins or 1.0
    counts = [0] * bins
    over = 0
    for v in ordered:
        if v > top:
            over += 1
        else:
            counts[min(bins - 1, int((v - lo) / width))] += 1
    bars = [(f"{lo + i * width:.0f}–{lo + (i + 1) * width:.0f} ms", float(c), "") for i, c in enumerate(counts)]
    if over:
        bars.append((f"> {top:.0f} ms", float(over), f"(max {ordered[-1]:.0f} ms)"))
    return bars


def _cell(value: Any, sort: Any = None, cls: str = "") -> str:
    attr = f' data-v="{escape(str(sort))}"' if sort is not None else ""
    klass = f' class="{cls}"' if cls else ""
    return f"<td{klass}{attr}>{value}</td>"


def _num(value: float | None, digits: int = 2) -> str:
    return _cell("–" if value is None else f"{value:.{digits}f}", -1 if value is None else round(value, 4), "num")


# Citations shown in full per question (plus the one with the evidence); the rest are counted, which keeps a
# 10k-question report with k = 10 to a few megabytes.
SHOWN_CITATIONS = 3


def _citations_html(r: QuestionResult) -> str:
    out = []
    for i, c in enumerate(r.citations, 1):
        if i > SHOWN_CITATIONS and r.evidence_rank != i:
            continue
        hit = "hit" if r.evidence_rank == i else "miss"
        out.append(f'<div class="cite {hit}">[{i}] <code>{escape(str(c["source"]))} '
                   f'[{int(c["start"])}:{int(c["end"])}]</code> {escape(str(c["text"]))}</div>')
    hidden = len(r.citations) - len(out)
    if hidden > 0:
        out.append(f'<div class="muted">+{hidden} more citations in the results file</div>')
    return "".join(out) or '<span class="muted">none</span>'


def _question_rows(results: Sequence[QuestionResult]) -> str:
    rows = []
    # Failures first, then by id, so the report opens on what needs attention.
    for r in sorted(results, key=lambda r: (r.passed, r.id)):
        mark = '<span class="pass">✓ pass</span>' if r.passed else '<span class="fail">✗ fail</span>'
        gold = " | ".join(r.answers) if r.answerable else "(unanswerable)"
        answer = escape(r.answer) + (f'<div class="muted">error: {escape(r.error)}</div>' if r.error else "")
        rows.append("<tr>" + _cell(mark, int(r.passed)) + _cell(f"<code>{escape(r.id)}</code>", r.id)
                    + _cell(escape(r.type)) + _cell(escape(r.question)) + _cell(answer, r.answer)
                    + _cell(escape(r.short_answer or "")) + _cell(escape(gold))
                    + _cell(_citations_html(r), r.evidence_rank or 99)
                    + _cell("–" if r.evidence_rank is None else str(r.evidence_rank), r.evidence_rank or 99, "num")
                    + _num(r.f1) + _cell(f"{r.latency_ms:.0f}", r.latency_ms, "num") + "</tr>")
    return "".join(rows)


def _breakdown_table(title: str, groups: dict[str, dict[str, Any]]) -> str:
    cols = ["n", "pass_rate", "em", "f1", "contains_gold", "hit@1", "mrr", "abstained"]
    head = "".join(f"<th>{escape(c)}</th>" for c in ["group", *cols])
    body = []
    for name, g in groups.items():
        cells = [_cell(escape(name), name)]
        for c in cols:
            cells.append(_cell(str(g[c]), g[c], "num") if c == "n" else _num(g[c]))
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<h2>{escape(title)}</h2><table class=\"sortable\"><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def render_report(summary: dict[str, Any], results: Sequence[QuestionResult], title: str | None = None) -> str:
    """The whole report as one HTML string: no external scripts, styles, fonts or images."""
    m = summary["metrics"]
    name = title or f"Evaluation of {summary.get('dataset', 'questions')}"
    cards = "".join(f'<div class="card"><b>{metric.format(m[metric.key])}</b>{escape(metric.label)}</div>'
                    for metric in HEADLINE if m.get(metric.key) is not None)
    lat = summary.get("latency", {})
    cards += "".join(f'<div class="card"><b>{lat[key]:.0f} ms</b>latency {key[:3]}</div>'
                     for key in ("p50_ms", "p95_ms", "max_ms") if lat.get(key) is not None)
    timing = summary.get("timing", {})
    facts = (f"{summary['questions']} questions ({summary['answerable']} answerable, {summary['unanswerable']} "
             f"unanswerable), k = {summary['k']}, {summary.get('errors', 0)} errors, "
             f"{len(summary.get('skipped') or [])} skipped lines; "
             + ", ".join(f"{escape(k)} {v}" for k, v in timing.items() if isinstance(v, int | float)))
    by_type = [(t, g["pass_rate"] or 0.0, f"n={g['n']}") for t, g in summary.get("by_type", {}).items()]
    f1_type = [(t, g["f1"], f"n={g['n']}") for t, g in summary.get("by_type", {}).items() if g["f1"] is not None]
    ranks = [(f"rank {k}" if k != "miss" else "not cited", float(v), "")
             for k, v in summary.get("rank_histogram", {}).items()]
    plots = [bar_chart("Pass rate by question type", by_type), bar_chart("Token F1 by question type", f1_type),
             bar_chart("Latency histogram (questions)", latency_bins([r.latency_ms for r in results]), unit="n"),
             bar_chart("Rank of the first citation with the evidence", ranks, unit="n")]
    notes = "".join(f"<li>{escape(w)}</li>" for w in [*(summary.get("skipped") or []),
                                                      *(summary.get("warnings") or [])][:200])
    head = "".join(f"<th>{h}</th>" for h in ["mark", "id", "type", "question", "answer", "short answer", "gold",
                                             "citations", "rank", "F1", "ms"])
    # Raw text inside <script>: escape "<" (and so any "</script>") the JSON way, not the HTML way.
    data = json.dumps({k: v for k, v in summary.items() if k != "outcomes"}, ensure_ascii=False).replace("<", "\\u003c")
    return (
        f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(name)}</title>"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{_CSS}</style></head><body>"
        f"<h1>{escape(name)}</h1><p class=\"muted\">{facts}. Created {escape(str(summary.get('created', '')))}."
        f"</p><div class=\"grid\">{cards}</div>"
        f"<h2>Plots</h2><div class=\"plots\">{''.join(plots)}</div>"
        + _breakdown_table("By question type", summary.get("by_type", {}))
        + _breakdown_table("By source", summary.get("by_source", {}))
        + (f"<h2>Notes</h2><ul>{notes}</ul>" if notes else "")
        + f"<h2>Questions (failures first; click a header to sort)</h2><table class=\"sortable\" id=\"questions\">"
        f"<thead><tr>{head}</tr></thead><tbody>{_question_rows(results)}</tbody></table>"
        f"<script type=\"application/json\" id=\"summary\">{data}</script><script>{_JS}</script></body></html>"
    )
