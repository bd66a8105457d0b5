"""What ``rag eval`` does, kept out of ``rag/cli.py``: options in, files and a summary table out, an exit code."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from rag.config import get_settings
from rag.errors import EvalFileError
from rag.evaluation.compare import compare_runs, comparison_tables, load_run
from rag.evaluation.datasets import detect_format, load_dataset
from rag.evaluation.registry import BY_KEY
from rag.evaluation.report import render_report
from rag.evaluation.runner import run_eval, write_results_csv, write_results_jsonl, write_summary_json
from rag.evaluation.scoring import check_gates
from rag.evaluation.summary_table import rich_table

# Exit code when a --fail-under gate is not met (bad input uses the RagError codes).
GATE_FAILED = 7


@dataclass
class EvalOptions:
    """The flags of ``rag eval``."""

    file: Path
    index: Path | None = None
    corpus: list[Path] = field(default_factory=list)
    out: Path | None = None
    summary_json: Path | None = None
    report: Path | None = None
    csv: Path | None = None
    k: int | None = None
    workers: int = 1
    skip_bad: bool = False
    fail_under: list[str] = field(default_factory=list)
    limit: int | None = None
    collection: str | None = None


def parse_gates(specs: list[str]) -> dict[str, float]:
    """``["f1=0.6", "hit@1=0.7"]`` → ``{"f1": 0.6, "hit@1": 0.7}``; ``EvalFileError`` for a malformed one."""
    gates = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            gates[name.strip()] = float(value)
        except ValueError:
            raise EvalFileError(f"--fail-under {spec!r}: expected METRIC=VALUE, e.g. f1=0.6") from None
    return gates


def squad_index(settings_index: Path, file: Path) -> Path:
    """The default index of a SQuAD file: its own folder beside the main index, so that index is not pruned."""
    tag = hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:8]
    return settings_index.parent / f"{settings_index.name}-eval-{file.stem[:40]}-{tag}"


def evaluate(options: EvalOptions, out: Console, err: Console) -> int:
    """Run ``rag eval``; returns the exit code (0, or ``GATE_FAILED`` when a ``--fail-under`` gate is missed)."""
    from rag.pipeline import Pipeline  # imported late: it loads torch, which --help does not need

    gates = parse_gates(options.fail_under)
    unknown = [g for g in gates if g not in list(BY_KEY)]
    if unknown:
        raise EvalFileError(f"--fail-under: unknown metric {unknown[0]!r}; one of {', '.join(list(BY_KEY))}")
    kind = detect_format(options.file)
    settings = get_settings(index_dir=options.index, collection=options.collection)
    if kind == "squad" and options.index is None:
        index = squad_index(settings.index_dir, options.file)
        # On a Chroma server the folder does not separate indexes: the collection name must.
        collection = f"{settings.collection}_eval_{index.name[-8:]}" if settings.chroma_url else None
        settings = settings.with_overrides(index_dir=index, collection=collection)
        err.print(f"SQuAD contexts are indexed in {index} (pass --index to choose)", markup=False, highlight=False)
    dataset = load_dataset(options.file, skip_bad=options.skip_bad,
                           squad_corpus_dir=settings.index_dir / "eval-corpus" / options.file.stem[:60])
    for message in dataset.skipped:
        err.print(f"skipped: {message}", style="yellow", markup=False, highlight=False)
    pipeline = Pipeline(settings)
    tty = err.is_terminal
    progress = Progress(TextColumn("answering"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("pass rate {task.fields[score]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                        console=err, disable=not tty, transient=False)
    with progress:
        total = min(len(dataset.questions), options.limit or len(dataset.questions))
        task = progress.add_task("answering", total=total, score="–")

        step = max(1, total // 10)

        def advance(done: int, total: int, score: float) -> None:
            progress.update(task, completed=done, score=f"{score:.1%}")
            if not tty and (done % step == 0 or done == total):  # logs get a line every 10% instead of a bar
                err.print(f"answered {done}/{total}, pass rate {score:.1%}", markup=False, highlight=False)

        run = run_eval(pipeline, dataset, k=options.k, workers=options.workers, limit=options.limit,
                       corpus=options.corpus, on_progress=advance, show_ingest_progress=tty)
    if run.ingest is not None:
        err.print(f"ingest: {run.ingest.summary()}", markup=False, highlight=False)
    for message in run.warnings[len(dataset.skipped):][:20]:
        err.print(f"warning: {message}", style="yellow", markup=False, highlight=False)
    if options.out:
        write_results_jsonl(options.out, run.results)
    if options.csv:
        write_results_csv(options.csv, run.results)
    if options.summary_json:
        write_summary_json(options.summary_json, run.summary)
    if options.report:
        options.report.parent.mkdir(parents=True, exist_ok=True)
        options.report.write_text(render_report(run.summary, run.results), encoding="utf-8")
    out.print(rich_table(run.summary))
    failures = check_gates(run.summary, gates)
    for failure in failures:
        err.print(f"gate failed: {failure}", style="bold red", markup=False, highlight=False)
    return GATE_FAILED if failures else 0


def compare(a: Path, b: Path, out: Console, json_path: Path | None = None) -> int:
    """Print how run ``b`` differs from run ``a`` (summary JSON or results JSONL files); optionally save it as JSON."""
    comparison = compare_runs(load_run(a), load_run(b), a.name, b.name)
    out.print(comparison_tables(comparison))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(comparison.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return 0


