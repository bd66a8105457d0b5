"""The "Evaluate" tab of the Gradio app: upload a question file, run it with progress, see and download the report."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder

from rag.errors import RagError
from rag.evaluation.datasets import detect_format, load_dataset
from rag.evaluation.report import render_report
from rag.evaluation.runner import run_eval, write_results_csv, write_results_jsonl, write_summary_json
from rag.pipeline import Pipeline
from rag.web.admin import AdminError, check_token
from rag.web.limits import RateLimiter, client_key
from rag.web.render import summary_html

# SQuAD uploads bring their own corpus: they get a separate index so the app's corpus is never replaced.
_squad_pipelines: dict[str, Pipeline] = {}
_squad_lock = threading.Lock()


def squad_pipeline(app_pipeline: Pipeline) -> Pipeline:
    """A pipeline on a separate index (folder and collection) next to the app's, for SQuAD uploads."""
    s = app_pipeline.settings
    key = f"{s.index_dir.resolve()}|{s.chroma_url}|{s.collection}"
    with _squad_lock:
        if key not in _squad_pipelines:
            settings = s.with_overrides(index_dir=s.index_dir / "eval-squad", collection=f"{s.collection}_eval")
            _squad_pipelines[key] = Pipeline(settings, chat_model=app_pipeline.chat_model,
                                             weights=app_pipeline.weights, abstention=app_pipeline.abstention)
        return _squad_pipelines[key]


class RunFolders:
    """One folder of downloads per evaluation run; only the newest ``keep`` runs stay on disk.

    The folders live inside Gradio's upload folder, so Gradio serves the downloads from there instead of copying
    them into its cache; names are random, so one client cannot guess another's.
    """

    def __init__(self, root: Callable[[], str], keep: int = 8) -> None:
        self.root, self.keep = root, keep
        self._lock = threading.Lock()

    def new(self) -> Path:
        """A fresh folder for one run; the oldest folders beyond ``keep`` are deleted."""
        base = Path(self.root()) / "citechat-eval"
        with self._lock:
            base.mkdir(parents=True, exist_ok=True)
            folder = Path(tempfile.mkdtemp(prefix="run-", dir=base))
            runs = sorted(base.glob("run-*"), key=lambda p: p.stat().st_mtime_ns)
            for old in runs[:-self.keep]:
                shutil.rmtree(old, ignore_errors=True)
            return folder


_RUNS = RunFolders(get_upload_folder)


def _refuse(message: str) -> gr.Error:
    # An expected refusal, shown to the user: no traceback in the server log.
    return gr.Error(message, print_exception=False)


def admit_questions(pipeline: Pipeline, limiter: RateLimiter, client: str, token: str | None, asked: int) -> None:
    """Refuse an evaluation the caller may not run: without the admin token at most ``RAG_PUBLIC_EVAL_QUESTIONS``
    questions, each counted against the caller's rate limit like an ask."""
    settings = pipeline.settings
    if (token or "").strip():
        check_token(settings.admin_token, token)
        return
    allowed = settings.public_eval_questions
    if allowed == 0:
        raise AdminError("evaluation needs the admin token on this server")
    if asked > allowed:
        raise AdminError(f"without the admin token an evaluation may ask at most {allowed} questions, this one "
                         f"asks {asked}: set 'Only the first N questions', or run `rag eval` on your own machine")
    wait = limiter.retry_after(client, cost=asked)
    if wait == float("inf"):
        raise AdminError(f"{asked} questions is more than the {limiter.limit} a client may ask per minute")
    if wait:
        raise AdminError(f"too many questions from this address: retry in {wait:.0f}s")


def run_uploaded(pipeline: Pipeline, file_path: str | None, k: float | None, limit: float | None, skip_bad: bool,
                 progress: Any = None, token: str | None = None, *, limiter: RateLimiter,
                 client: str = "unknown", runs: RunFolders | None = None) -> tuple[str, str, list[str]]:
    """Evaluate an uploaded file; returns (summary HTML, report iframe HTML, paths of files to download).

    Question files only ask the app's corpus, so anyone may run a few (bounded and rate-limited, see
    ``admit_questions``); a SQuAD file is indexed first (disk and minutes of CPU), so it needs the admin token like
    any other index change.
    """
    if not file_path:
        raise _refuse("Upload a .jsonl, .csv or SQuAD .json file first.")
    path = Path(file_path)
    scratch = Path(tempfile.mkdtemp(prefix="rag-eval-"))
    try:
        kind = detect_format(path)
        if kind == "squad":
            check_token(pipeline.settings.admin_token, token)
        target = squad_pipeline(pipeline) if kind == "squad" else pipeline
        dataset = load_dataset(path, skip_bad=bool(skip_bad), squad_corpus_dir=scratch / "corpus")
        if kind != "squad":
            asked = len(dataset.questions[:int(limit)] if limit else dataset.questions)
            admit_questions(pipeline, limiter, client, token, asked)
        if progress is not None and kind == "squad":
            progress(0.0, desc="indexing the SQuAD contexts")

        def report_progress(done: int, total: int, score: float) -> None:
            if progress is not None:
                progress((done, total), desc=f"pass rate so far {score:.0%}")

        run = run_eval(target, dataset, k=int(k) if k else None, limit=int(limit) if limit else None,
                       on_progress=report_progress)
    except RagError as exc:
        raise _refuse(str(exc)) from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    out = (runs or _RUNS).new()
    stem = path.stem[:60] or "eval"
    html = render_report(run.summary, run.results)
    write_results_jsonl(out / f"{stem}-results.jsonl", run.results)
    write_results_csv(out / f"{stem}-results.csv", run.results)
    write_summary_json(out / f"{stem}-summary.json", run.summary)
    (out / f"{stem}-report.html").write_text(html, encoding="utf-8")
    files = [str(out / f"{stem}-{name}") for name in ("results.jsonl", "results.csv", "summary.json", "report.html")]
    return summary_html(run.summary), report_iframe(html), files


def report_iframe(html: str, height: int = 760) -> str:
    """The report inside a sandboxed iframe: its script sorts the table, but cannot touch the app's page."""
    digest = hashlib.sha1(html.encode()).hexdigest()[:8]
    return (f'<iframe id="eval-report-{digest}" title="Evaluation report" sandbox="allow-scripts" '
            f'style="width:100%;height:{height}px;border:1px solid #d9dee3;border-radius:8px" '
            f'srcdoc="{escape(html, quote=True)}"></iframe>')


def eval_tab(pipeline: Pipeline, limiter: RateLimiter | None = None) -> None:
    """Build the Evaluate tab's contents inside an open ``gr.Blocks``/``gr.Tab`` context."""
    gr.Markdown("Upload questions to measure answers and citations: our JSONL or CSV format (`id`, `question`, "
                "`answers`, `evidence`, `answerable`), asked against this app's corpus, or a SQuAD v1.1/v2.0 "
                "`.json` file, whose contexts are indexed separately first. Same metrics as `rag eval`.")
    with gr.Row():
        upload = gr.File(label="Questions file (.jsonl, .csv or SQuAD .json)", type="filepath",
                         file_types=[".jsonl", ".csv", ".json"], elem_id="eval-upload")
        with gr.Column():
            k = gr.Slider(1, 20, value=pipeline.settings.top_k, step=1, label="Citations per answer (k)")
            limit = gr.Number(value=0, precision=0, minimum=0, label="Only the first N questions (0 = all)")
            skip_bad = gr.Checkbox(label="Skip malformed lines instead of stopping")
            token = gr.Textbox(label="Admin token (SQuAD files, whose contexts are indexed first, and runs of more "
                                     f"than {pipeline.settings.public_eval_questions} questions)",
                               type="password", elem_id="eval-token")
            run = gr.Button("Run evaluation", variant="primary", elem_id="eval-run")
    summary = gr.HTML(elem_id="eval-summary")
    report = gr.HTML(elem_id="eval-report")
    downloads = gr.File(label="Results (JSONL, CSV, summary JSON, HTML report)", file_count="multiple",
                        interactive=False, elem_id="eval-downloads")

    limiter = limiter or RateLimiter(pipeline.settings.rate_limit_per_minute)

    def on_run(file_path: str | None, k_value: float, limit_value: float, skip: bool, token_value: str,
               request: gr.Request, progress: gr.Progress = gr.Progress()  # noqa: B008
               ) -> tuple[str, str, list[str]]:
        return run_uploaded(pipeline, file_path, k_value, limit_value, skip, progress, token_value,
                            limiter=limiter, client=client_key(request))

    run.click(on_run, [upload, k, limit, skip_bad, token], [summary, report, downloads], api_name="run_eval",
              concurrency_limit=1)
