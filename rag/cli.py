"""The ``rag`` command: a thin shell over the ``rag`` API."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from rag.config import apply_process_defaults, get_settings
from rag.errors import MissingExtraError, RagError

if TYPE_CHECKING:
    from rag.pipeline import Pipeline
    from rag.records import Answer

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich", pretty_exceptions_enable=False,
                  help="citechat: answers from your articles, citing the exact sentences.")
err = Console(stderr=True, soft_wrap=True)

IndexOpt = Annotated[Path | None, typer.Option("--index", help="Index folder [env: RAG_INDEX_DIR].")]
CollectionOpt = Annotated[str | None, typer.Option("--collection", help="Named corpus inside the index "
                                                   "[env: RAG_COLLECTION].")]


def _fail(exc: RagError) -> None:
    # Plain echo: a message that scripts grep must not be wrapped at the terminal width.
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(exc.exit_code)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"citechat {version('citechat')}")
        raise typer.Exit()


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show debug logs.")] = False,
         show_version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                    help="Print the version and exit.")] = False) -> None:
    """citechat: answers from your articles, citing the exact sentences."""
    apply_process_defaults()
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(message)s")


@app.command()
def ingest(
    # Text, not Path: Path("https://host/page") would fold the URL's "//".
    paths: Annotated[list[str] | None, typer.Argument(
        help="Files, folders or http(s) URLs of web pages, PDFs and DOCX files [default: RAG_CORPUS_DIR].")] = None,
    index: IndexOpt = None,
    collection: CollectionOpt = None,
    keep: Annotated[bool, typer.Option("--keep", help="Keep indexed files that are not under PATHS.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Index articles (.txt, .md, .html, .pdf, .docx, web pages by URL): new ones added, changed ones replaced,
    deleted ones removed (pages ingested by URL stay until removed).

    Example: [bold]rag ingest corpus/ https://example.org/article.html[/]
    """
    from rag.pipeline import Pipeline

    try:
        settings = get_settings(index_dir=index, collection=collection)
        report = Pipeline(settings).ingest(paths or [settings.corpus_dir], prune=not keep,
                                           show_progress=not as_json and sys.stderr.isatty())
    except RagError as exc:
        _fail(exc)
    for reason in report.skipped:
        err.print(f"[yellow]skipped:[/] {reason}")
    print(report.model_dump_json(indent=2) if as_json else report.summary())


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    k: Annotated[int | None, typer.Option("-k", help="Citations to return [env: RAG_TOP_K].", min=1, max=50)] = None,
    index: IndexOpt = None,
    collection: CollectionOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
) -> None:
    """Answer a question from the index, citing sentences.

    Example: [bold]rag ask "when was the Taraz attack?" --json[/]
    """
    from rag.pipeline import Pipeline

    try:
        pipeline = Pipeline(get_settings(index_dir=index, collection=collection))
        if as_json:
            print(json.dumps(pipeline.ask(question, k=k).model_dump(), ensure_ascii=False, indent=2))
            return
        answer = asyncio.run(_print_streamed(pipeline, question, k))
    except RagError as exc:
        _fail(exc)
    out = Console()
    for i, c in enumerate(answer.citations, 1):
        page = f" page {c.page}" if c.page else ""
        out.print(f"[{i}] {c.source}{page} #{c.sentence_id} [{c.start}:{c.end}] score {c.score:.3f}", markup=False,
                  style="dim")


async def _print_streamed(pipeline: Pipeline, question: str, k: int | None) -> Answer:
    """Print the answer's text as it is written (an LLM's tokens as they come); return the finished answer. When
    the checked answer differs from what was printed (the LLM's citations were invalid), it is printed after."""
    from rag.records import AnswerDelta, AnswerDone

    shown = ""
    async for event in pipeline.astream(question, k=k):
        if isinstance(event, AnswerDelta):
            print(event.text, end="", flush=True)
            shown += event.text
        elif isinstance(event, AnswerDone):
            if event.answer.answer != shown:
                print(("\n" if shown else "") + event.answer.answer, end="")
            print(flush=True)
            return event.answer
    raise AssertionError("a stream ends with the finished answer")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address [env: RAG_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [env: RAG_PORT].")] = None,
    index: IndexOpt = None,
    collection: CollectionOpt = None,
    no_ingest: Annotated[bool, typer.Option("--no-ingest", help="Do not sync the corpus folder first.")] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Processes sharing the port (needs "
                                         "RAG_CHROMA_URL; serves the API, widget and /embed, not the Gradio UI)."
                                         )] = 1,
) -> None:
    """Run the chat UI and HTTP API; ingests the corpus folder first when it changed.

    Example: [bold]rag serve --port 7860[/]
    """
    try:
        from rag.web.server import serve as run_server
    except ModuleNotFoundError as exc:
        _fail(MissingExtraError("rag serve", "web", str(exc.name)))
    try:
        run_server(get_settings(index_dir=index, host=host, port=port, collection=collection),
                   ingest_first=not no_ingest, workers=workers)
    except RagError as exc:
        _fail(exc)


@app.command("eval")
def eval_command(
    file: Annotated[Path | None, typer.Argument(help="Questions: our .jsonl/.csv, or a SQuAD v1.1/v2.0 .json.")] = None,
    index: IndexOpt = None,
    collection: CollectionOpt = None,
    corpus: Annotated[list[Path] | None, typer.Option("--corpus", help="Ingest these first (index mirrors them).")
                      ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Results: one JSON line per question.")] = None,
    summary_json: Annotated[Path | None, typer.Option("--json", help="Summary JSON (metrics, breakdowns).")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Self-contained HTML report.")] = None,
    csv: Annotated[Path | None, typer.Option("--csv", help="Results as CSV.")] = None,
    k: Annotated[int | None, typer.Option("-k", help="Citations per answer [env: RAG_TOP_K].", min=1, max=50)] = None,
    workers: Annotated[int, typer.Option("--workers", help="Questions answered in parallel.", min=1, max=32)] = 1,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Report and skip malformed entries.")] = False,
    fail_under: Annotated[list[str] | None, typer.Option("--fail-under", metavar="METRIC=VALUE",
                                                         help="Exit 7 if METRIC misses VALUE (repeatable).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N questions.", min=1)] = None,
    compare: Annotated[tuple[Path, Path] | None, typer.Option("--compare", help="Diff two summary JSON or results"
                                                              " JSONL files instead of running.")] = None,
) -> None:
    """Answer a file of questions and score answers, citations, abstentions and latency.

    Example: [bold]rag eval questions.jsonl --report report.html --fail-under f1=0.5[/]
    """
    from rag.evaluation.command import EvalOptions, evaluate
    from rag.evaluation.command import compare as compare_runs

    try:
        if compare:
            raise typer.Exit(compare_runs(compare[0], compare[1], Console(), summary_json))
        if file is None:
            err.print("[bold red]error:[/] give a questions FILE, or --compare A B")
            raise typer.Exit(2)
        code = evaluate(EvalOptions(file, index, corpus or [], out, summary_json, report, csv, k, workers, skip_bad,
                                    fail_under or [], limit, collection), Console(), err)
    except RagError as exc:
        _fail(exc)
    raise typer.Exit(code)
