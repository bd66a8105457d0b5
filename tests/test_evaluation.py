"""Batch evaluation: metric functions, file formats, the `rag eval` command, the HTML report, compare, the UI tab."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag import Answer, EvalFileError, Pipeline
from rag.cli import app
from rag.evaluation.compare import compare_runs, load_run
from rag.evaluation.datasets import AnswerStart, Span, load_dataset
from rag.evaluation.evidence import find_spans, folded_with_map
from rag.evaluation.metrics import (
    Cited,
    abstention_scores,
    best_over_golds,
    citation_hits,
    citation_precision,
    citation_recall,
    citation_supports,
    contains_gold,
    exact_match,
    first_hit_rank,
    latency_stats,
    normalize_answer,
    token_f1,
)
from rag.evaluation.report import render_report
from rag.evaluation.runner import read_results_jsonl, run_eval
from rag.evaluation.scoring import check_gates
from tests.conftest import CORPUS, SEED_QUESTIONS, free_port, make_settings

DATA = Path(__file__).parent / "data"
TINY_SQUAD = DATA / "eval_tiny_squad.json"
MALFORMED = DATA / "eval_malformed.jsonl"
CSV_QUESTIONS = DATA / "eval_questions.csv"


# -- metrics ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("The  Denver Broncos!", "denver broncos"),
    ("a", ""),
    ("Theatre of the Absurd", "theatre of absurd"),  # only whole-word articles go
    ("U.S.A.", "usa"),
    ("don't", "dont"),
    ("An apple, a day", "apple day"),
    ("1990–1995", "1990–1995"),  # SQuAD strips ASCII punctuation only: the en dash stays
    ("  Café\tau lait\n", "café au lait"),
    ("THE END.", "end"),
])
def test_normalize_answer_matches_squad_rules(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


def test_exact_match_and_token_f1_hand_computed() -> None:
    assert exact_match("The Broncos.", "broncos") == 1.0
    assert exact_match("Broncos won", "broncos") == 0.0
    # pred {denver, broncos, won} vs gold {denver, broncos}: P = 2/3, R = 1, F1 = 0.8
    assert token_f1("the Denver Broncos won", "Denver Broncos") == pytest.approx(0.8)
    # repeated tokens count once per gold occurrence: P = 1/2, R = 1
    assert token_f1("Paris Paris", "Paris") == pytest.approx(2 / 3)
    assert token_f1("Lyon", "Paris") == 0.0
    assert token_f1("", "") == 1.0 and token_f1("the", "a") == 1.0  # both empty after normalisation
    assert token_f1("Paris", "") == 0.0
    assert best_over_golds(token_f1, "in 2011", ["2011", "in 2011"]) == 1.0
    assert best_over_golds(exact_match, "x", []) == 0.0


def test_contains_gold_uses_token_boundaries_and_unicode_punctuation() -> None:
    answer = "Denver Broncos — “The Denver Broncos defeated the Carolina Panthers.” [1]"
    assert contains_gold(answer, "Carolina Panthers") == 1.0
    assert contains_gold(answer, "the Denver Broncos") == 1.0
    assert contains_gold(answer, "Bronco") == 0.0
    assert contains_gold(answer, "") == 0.0


def test_citation_hits_by_answer_start_offsets() -> None:
    starts = [AnswerStart(source="a.txt", offset=49)]
    assert citation_hits(Cited("a.txt", 10, 50), starts, [])
    assert not citation_hits(Cited("a.txt", 50, 90), starts, [])  # end is exclusive
    assert not citation_hits(Cited("b.txt", 10, 50), starts, [])  # same offsets, other article
    cites = [Cited("a.txt", 0, 9), Cited("b.txt", 10, 50), Cited("a.txt", 40, 60)]
    assert first_hit_rank(cites, starts, []) == 3
    assert citation_precision(cites, starts, []) == pytest.approx(1 / 3)
    assert citation_precision([], starts, []) is None


def test_citation_hits_and_support_with_evidence_spans() -> None:
    spans = [Span(source="a.txt", start=20, end=30, item=0), Span(source="a.txt", start=100, end=300, item=1)]
    assert citation_hits(Cited("a.txt", 15, 40), [], spans)  # contains the whole span
    assert citation_hits(Cited("a.txt", 150, 200), [], spans)  # one sentence of multi-sentence evidence
    overlap = Cited("a.txt", 25, 60)
    assert not citation_hits(overlap, [], spans) and citation_supports(overlap, [], spans)
    cites = [overlap, Cited("a.txt", 400, 450)]
    assert citation_precision(cites, [], spans) == 0.5
    assert citation_recall(cites, spans) == 0.5  # item 0 overlapped, item 1 not
    assert citation_recall([], spans) == 0.0
    # without located spans: substring fallback on the cited text
    assert citation_hits(Cited("x", 0, 5, "Seven people were killed"), [], [], ["people  WERE killed"])
    assert citation_recall([], [], []) is None


def test_abstention_scores_hand_computed() -> None:
    # abstained on: unanswerable (TP), answerable (FP), answerable (FP); answered an unanswerable one (FN)
    scores = abstention_scores([True, True, False, False, True], [False, True, False, True, True])
    assert scores["precision"] == pytest.approx(1 / 3)
    assert scores["recall"] == pytest.approx(1 / 2)
    assert scores["f1"] == pytest.approx(0.4)
    assert scores["false_abstention_rate"] == pytest.approx(2 / 3)
    none = abstention_scores([False, False], [True, True])
    assert none["precision"] is None and none["recall"] is None and none["false_abstention_rate"] == 0.0
    all_answerable = abstention_scores([True, False], [True, True])
    assert all_answerable["precision"] is None and all_answerable["false_abstention_rate"] == 0.5


def test_latency_histogram_keeps_outliers_in_one_overflow_bar() -> None:
    from rag.evaluation.report import latency_bins

    bars = latency_bins([10.0] * 150 + [20.0] * 49 + [5000.0])
    assert sum(count for _, count, _ in bars) == 200
    assert bars[-1][0] == "> 20 ms" and bars[-1][1] == 1.0 and "5000" in bars[-1][2]
    assert bars[0][1] == 150.0


def test_latency_stats_interpolates_percentiles() -> None:
    stats = latency_stats([10.0, 20.0, 30.0, 40.0])
    assert stats["p50_ms"] == 25.0 and stats["p95_ms"] == 38.5 and stats["max_ms"] == 40.0
    assert stats["total_ms"] == 100.0
    assert latency_stats([])["p50_ms"] is None


def test_gates_read_lower_is_better_metrics_as_ceilings() -> None:
    summary = {"metrics": {"f1": 0.5, "false_abstention_rate": 0.1, "mrr": None}}
    assert check_gates(summary, {"f1": 0.5}) == []
    assert check_gates(summary, {"f1": 0.6}) == ["f1 = 0.5 is below 0.6"]
    assert check_gates(summary, {"false_abstention_rate": 0.05}) == ["false_abstention_rate = 0.1 is above 0.05"]
    assert "no value" in check_gates(summary, {"mrr": 0.1})[0]


# -- file formats ----------------------------------------------------------------------------------------------
def test_evidence_is_located_through_nbsp_and_curly_quotes() -> None:
    text = "He said\u00a0“stop”\n now.  Then   left."
    folded, where = folded_with_map(text)
    assert folded == "he said \"stop\" now. then left."
    [span] = find_spans('said "STOP" now', {"a.txt": (folded, where)})
    assert text[span.start:span.end] == "said\u00a0“stop”\n now"


def test_malformed_jsonl_names_the_line_and_skip_bad_keeps_the_rest() -> None:
    with pytest.raises(EvalFileError, match=r"line 3: not valid JSON"):
        load_dataset(MALFORMED)
    dataset = load_dataset(MALFORMED, skip_bad=True)
    assert [q.id for q in dataset.questions] == ["m1", "m2", "m5"]
    assert len(dataset.skipped) == 2
    assert "line 3" in dataset.skipped[0] and "line 4" in dataset.skipped[1] and "'question'" in dataset.skipped[1]
    assert dataset.questions[2].answerable is False


def test_a_file_with_no_valid_question_is_an_error_even_with_skip_bad(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('not json\n{"id": 1}\n', encoding="utf-8")
    with pytest.raises(EvalFileError, match=r"no questions found \(2 malformed entries skipped\)"):
        load_dataset(bad, skip_bad=True)


def test_csv_reads_pipe_and_json_lists(tmp_path: Path) -> None:
    dataset = load_dataset(CSV_QUESTIONS)
    by_id = {q.id: q for q in dataset.questions}
    assert by_id["c1"].answers == ["2011", "in 2011"] and by_id["c1"].answerable
    assert by_id["c2"].answers == ["on the Left Bank", "the Left Bank"]
    assert by_id["c3"].answerable is False and by_id["c3"].answers == []
    bad = tmp_path / "bad.csv"
    bad.write_text('id,question,answerable\nx1,"Where?",true\nx2,"When?",maybe\n', encoding="utf-8")
    with pytest.raises(EvalFileError, match=r"line 3: 'answerable' must be true or false"):
        load_dataset(bad)


def test_squad_contexts_become_articles_with_offset_evidence(tmp_path: Path) -> None:
    dataset = load_dataset(TINY_SQUAD, squad_corpus_dir=tmp_path / "corpus")
    files = sorted(p.name for p in (tmp_path / "corpus").iterdir())
    assert files == ["Charyn_Canyon.txt", "Lake_Balkhash.txt"]
    body = (tmp_path / "corpus" / "Lake_Balkhash.txt").read_text(encoding="utf-8")
    assert body.startswith("Lake Balkhash\n\nLake Balkhash is a large lake")
    paragraphs = body.split("\n\n")
    assert len(paragraphs) == 4 and paragraphs[3] == ""  # title, two contexts in order, trailing newline
    by_id = {q.id: q for q in dataset.questions}
    founded = by_id["bal-3"]
    [start] = founded.answer_starts
    assert body[start.offset:start.offset + 4] == "1937"
    [sentence] = founded.evidence_spans
    assert body[sentence.start:sentence.end] == ("The town of Balkhash was founded on the northern shore in 1937 to "
                                                 "serve a copper smelter.")
    impossible = by_id["cha-x"]
    assert impossible.answerable is False and impossible.answers == [] and impossible.evidence_spans == []
    assert sum(not q.answerable for q in dataset.questions) == 1


def test_squad_without_data_list_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": "1.1",\n "articles": []}', encoding="utf-8")
    with pytest.raises(EvalFileError, match="not a SQuAD file"):
        load_dataset(bad, squad_corpus_dir=tmp_path / "c")
    broken = tmp_path / "broken.json"
    broken.write_text('{"data": [\n{"title": "x",\n]}', encoding="utf-8")
    with pytest.raises(EvalFileError, match="line 3"):
        load_dataset(broken, squad_corpus_dir=tmp_path / "c")


# -- runs ------------------------------------------------------------------------------------------------------
def test_tiny_squad_run_counts_the_impossible_question(settings, tmp_path: Path) -> None:
    pipeline = Pipeline(settings)
    dataset = load_dataset(TINY_SQUAD, squad_corpus_dir=tmp_path / "corpus")
    run = run_eval(pipeline, dataset, k=3, workers=2)
    summary = run.summary
    assert summary["questions"] == 7 and summary["unanswerable"] == 1 and summary["answerable"] == 6
    assert summary["abstention"]["unanswerable"] == 1.0
    assert sorted(pipeline.store.indexed_documents()) == ["Charyn_Canyon.txt", "Lake_Balkhash.txt"]
    assert [r.id for r in run.results] == [q.id for q in dataset.questions]  # input order kept with threads
    for r in run.results:
        assert len(r.citations) <= 3
        for c in r.citations:
            doc = pipeline.store.document(c["source"])
            assert doc is not None and doc.text[c["start"]:c["end"]] == c["text"]
        if r.answerable:
            # the rank is recomputed here by offsets: a citation holding one of the question's answer starts
            q = next(q for q in dataset.questions if q.id == r.id)
            hits = [i for i, c in enumerate(r.citations, 1)
                    if any(a.source == c["source"] and c["start"] <= a.offset < c["end"] for a in q.answer_starts)]
            assert r.evidence_rank == (hits[0] if hits else None)
    assert summary["rank_histogram"]["miss"] + sum(summary["rank_histogram"][str(i)] for i in (1, 2, 3)) == 6


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`rag eval` on the public seed set, writing every output."""
    out = tmp_path_factory.mktemp("seed-eval")
    paths = {"index": out / "index", "out": out / "results.jsonl", "json": out / "summary.json",
             "report": out / "report.html", "csv": out / "results.csv"}
    result = CliRunner().invoke(app, ["eval", str(SEED_QUESTIONS), "--index", str(paths["index"]), "--corpus",
                                      str(CORPUS), "--out", str(paths["out"]), "--json", str(paths["json"]),
                                      "--report", str(paths["report"]), "--csv", str(paths["csv"]), "-k", "3"])
    assert result.exit_code == 0, result.output
    paths["stdout"] = out / "stdout.txt"
    paths["stdout"].write_text(result.stdout, encoding="utf-8")
    return paths


def test_seed_run_writes_results_in_the_ask_json_form(seed_run: dict[str, Path]) -> None:
    ids = [json.loads(line)["id"] for line in SEED_QUESTIONS.read_text(encoding="utf-8").splitlines() if line]
    lines = [json.loads(line) for line in seed_run["out"].read_text(encoding="utf-8").splitlines()]
    assert [row["id"] for row in lines] == ids
    pipeline = Pipeline(make_settings(seed_run["index"]).with_overrides(collection="citechat"))
    for row in lines:
        assert {"id", "question", "answer", "abstained", "citations", "latency_ms"} <= set(row)
        assert row["latency_ms"] > 0
        for c in row["citations"]:
            assert set(c) == {"source", "sentence_id", "text", "start", "end", "score", "page"}
            assert c["source"] == "000_73fbcd4ae28f32ae.txt"  # relative to the corpus root
            assert pipeline.store.document(c["source"]).text[c["start"]:c["end"]] == c["text"]
    summary = json.loads(seed_run["json"].read_text(encoding="utf-8"))
    assert summary["questions"] == 10 and summary["unanswerable"] == 2
    # pass rate and hit@1 agree with the rows: recomputed independently here
    rows = read_results_jsonl(seed_run["out"])
    assert summary["metrics"]["pass_rate"] == pytest.approx(sum(r.passed for r in rows) / 10, abs=1e-4)
    with_evidence = [r for r in rows if r.has_evidence]
    assert len(with_evidence) == 8
    assert summary["metrics"]["hit@1"] == pytest.approx(
        sum(r.evidence_rank == 1 for r in with_evidence) / 8, abs=1e-4)
    assert set(summary["by_type"]) >= {"when", "who", "where", "what"}
    assert "pass rate" in seed_run["stdout"].read_text(encoding="utf-8")
    header = seed_run["csv"].read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("id,question,answer,short_answer,abstained,passed")


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.codes: list[str] = []
        self.tags: list[str] = []
        self._in_code = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.urls += [v or "" for k, v in attrs if k in {"src", "href", "action", "srcset", "xlink:href"}]
        self._in_code = tag == "code"

    def handle_endtag(self, tag: str) -> None:
        self._in_code = False

    def handle_data(self, data: str) -> None:
        if self._in_code:
            self.codes.append(data)


def test_report_is_self_contained_and_lists_every_question(seed_run: dict[str, Path]) -> None:
    html = seed_run["report"].read_text(encoding="utf-8")
    parser = _Collector()
    parser.feed(html)
    ids = {json.loads(line)["id"] for line in SEED_QUESTIONS.read_text(encoding="utf-8").splitlines() if line}
    assert ids <= set(parser.codes)
    assert parser.urls == []  # nothing loaded from anywhere
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html
    assert parser.tags.count("svg") == 4 and "link" not in parser.tags
    # failures first: no failing row after a passing one
    marks = re.findall(r'<tr><td data-v="[01]"><span class="(pass|fail)">', html)
    assert len(marks) == len(ids) and marks == sorted(marks, key=lambda m: m == "pass")


def test_report_escapes_question_text() -> None:
    from rag.evaluation.scoring import QuestionResult, summarize

    evil = QuestionResult(id="<script>x</script>", question="<img src=x onerror=alert(1)>", answer="</td><b>",
                          abstained=False, latency_ms=5.0, citations=[{"source": "a\"b", "sentence_id": "s",
                                                                       "text": "<i>t</i>", "start": 0, "end": 1,
                                                                       "score": 1.0}])
    html = render_report(summarize([evil], 3, {"dataset": "</title><script>"}), [evil])
    parser = _Collector()
    parser.feed(html)
    assert "<img" not in html and "<script>x" not in html and "</title><script>" not in html
    assert parser.urls == [] and parser.tags.count("script") == 2  # the summary JSON and the sort script


def test_compare_shows_changed_metrics_and_questions(seed_run: dict[str, Path], tmp_path: Path) -> None:
    a = load_run(seed_run["json"])
    b = json.loads(json.dumps(a))
    first = next(iter(b["outcomes"]))
    b["outcomes"][first]["passed"] = not b["outcomes"][first]["passed"]
    b["metrics"]["f1"] = (a["metrics"]["f1"] or 0) + 0.1
    comparison = compare_runs(a, b)
    assert [c.id for c in comparison.changes] == [first]
    delta = {m: d for m, _, _, d in comparison.metrics}
    assert delta["f1"] == pytest.approx(0.1) and delta["em"] == 0
    changed = tmp_path / "b.json"
    changed.write_text(json.dumps(b), encoding="utf-8")
    saved = tmp_path / "diff.json"
    result = CliRunner().invoke(app, ["eval", "--compare", str(seed_run["json"]), str(changed), "--json", str(saved)])
    assert result.exit_code == 0, result.output
    assert first in result.stdout and "1 questions changed" in result.stdout
    assert [c["id"] for c in json.loads(saved.read_text(encoding="utf-8"))["changes"]] == [first]
    # a results JSONL compares too (its summary is recomputed)
    assert load_run(seed_run["out"])["metrics"] == {**a["metrics"]}


def test_fail_under_turns_the_run_into_a_gate(seed_run: dict[str, Path]) -> None:
    base = ["eval", str(SEED_QUESTIONS), "--index", str(seed_run["index"])]
    summary = json.loads(seed_run["json"].read_text(encoding="utf-8"))
    reached = summary["metrics"]["hit@k"]
    ok = CliRunner().invoke(app, [*base, "--fail-under", f"hit@k={reached}"])
    assert ok.exit_code == 0, ok.output
    failed = CliRunner().invoke(app, [*base, "--fail-under", "pass_rate=1.01", "--limit", "2"])
    assert failed.exit_code == 7 and "gate failed: pass_rate" in failed.stderr
    unknown = CliRunner().invoke(app, [*base, "--fail-under", "speed=3"])
    assert unknown.exit_code == EvalFileError.exit_code and "unknown metric 'speed'" in unknown.stderr


def test_malformed_file_exits_non_zero_with_the_line_number(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RAG_CHROMA_URL"}
    proc = subprocess.run([sys.executable, "-m", "rag", "eval", str(MALFORMED), "--index", str(tmp_path / "i")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == EvalFileError.exit_code
    assert "line 3" in proc.stderr and "--skip-bad" in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_fields_are_named_in_a_warning(tmp_path: Path) -> None:
    typo = tmp_path / "typo.jsonl"
    typo.write_text(json.dumps({"id": "t1", "question": "When was the Taraz attack?", "anwsers": ["2011"],
                                "note": "x"}) + "\n", encoding="utf-8")
    dataset = load_dataset(typo)
    assert dataset.questions[0].answers == [] and len(dataset.warnings) == 1
    assert "'anwsers', 'note'" in dataset.warnings[0] and "answers" in dataset.warnings[0]
    header = tmp_path / "ok.csv"
    header.write_text("id,question,answers,\nq1,When was the Taraz attack?,2011,\n", encoding="utf-8")
    assert load_dataset(header).warnings == []  # a trailing empty column is not a field
    result = CliRunner().invoke(app, ["eval", str(typo), "--index", str(tmp_path / "i"), "--corpus", str(CORPUS),
                                      "--json", str(tmp_path / "s.json")])
    assert result.exit_code == 0, result.output
    assert "ignored unknown field(s) 'anwsers'" in result.stderr
    summary = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert any("anwsers" in w for w in summary["warnings"])


def test_skip_bad_reports_and_skips(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", str(MALFORMED), "--skip-bad", "--index", str(tmp_path / "i"),
                                      "--corpus", str(CORPUS), "--json", str(tmp_path / "s.json")])
    assert result.exit_code == 0, result.output
    assert "skipped:" in result.stderr and "line 3" in result.stderr and "line 4" in result.stderr
    summary = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert summary["questions"] == 3 and len(summary["skipped"]) == 2


# -- the UI tab ------------------------------------------------------------------------------------------------
def test_eval_tab_runs_an_upload_over_http(seed_pipeline: Pipeline) -> None:
    import gradio as gr
    from gradio_client import Client, handle_file

    from rag.web.ui.eval_tab import eval_tab

    app_pipeline = Pipeline(seed_pipeline.settings.with_overrides(admin_token="t0ken"))  # same index, a token
    with gr.Blocks() as demo, gr.Tab("Evaluate"):
        eval_tab(app_pipeline)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        # question files only ask the corpus: no token needed
        markdown, report, files = client.predict(handle_file(str(SEED_QUESTIONS)), 3, 0, False, "",
                                                 api_name="/run_eval")
        assert "10 questions" in markdown and "pass rate" in markdown
        assert report.startswith("<iframe") and 'sandbox="allow-scripts"' in report
        for qid in ("p01", "p09", "p10"):
            assert f"&lt;code&gt;{qid}&lt;/code&gt;" in report  # the whole report, escaped into srcdoc
        names = sorted(Path(f).name for f in files)
        assert names == ["seed_questions-report.html", "seed_questions-results.csv",
                         "seed_questions-results.jsonl", "seed_questions-summary.json"]
        results = next(f for f in files if f.endswith("results.jsonl"))
        rows = [json.loads(line) for line in Path(results).read_text(encoding="utf-8").splitlines()]
        assert len(rows) == 10
        with pytest.raises(Exception, match="line 3"):
            client.predict(handle_file(str(MALFORMED)), 3, 0, False, "", api_name="/run_eval")
        _, _, skipped_files = client.predict(handle_file(str(MALFORMED)), 3, 0, True, "", api_name="/run_eval")
        summary = json.loads(Path(next(f for f in skipped_files if f.endswith("summary.json"))).read_text())
        assert summary["questions"] == 3
        # a SQuAD upload is indexed separately: the app's own corpus stays as it was
        before = sorted(seed_pipeline.store.indexed_documents())
        for wrong in ("", "guess"):  # a SQuAD file is indexed first, which needs the admin token
            with pytest.raises(Exception, match="admin token"):
                client.predict(handle_file(str(TINY_SQUAD)), 3, 0, False, wrong, api_name="/run_eval")
        squad_markdown, _, _ = client.predict(handle_file(str(TINY_SQUAD)), 3, 0, False, "t0ken",
                                              api_name="/run_eval")
        assert "7 questions (6 answerable, 1 unanswerable)" in squad_markdown
        assert sorted(seed_pipeline.store.indexed_documents()) == before == ["000_73fbcd4ae28f32ae.txt"]
    finally:
        demo.close()


def test_pass_mark_judges_the_short_answer_not_the_quoted_sentence() -> None:
    from rag.evaluation.datasets import EvalQuestion
    from rag.evaluation.scoring import score_question

    def reply(**fields: object) -> Answer:
        return Answer.model_validate({"question": q.question, **fields})

    q = EvalQuestion(id="q", question="Who was targeted?", answers=["Kazakh speakers"], evidence=["Kazakh speakers"])
    cite = {"source": "a.txt", "sentence_id": "s", "text": "It targeted Kazakh speakers.", "start": 0, "end": 28,
            "score": 1.0}
    wrong_span = score_question(q, reply(answer="Middle East — “It targeted Kazakh speakers.” [1]",
                                    short_answer="Middle East", abstained=False, citations=[cite]), 5.0)
    assert wrong_span.contains_gold == 1.0 and wrong_span.evidence_rank == 1 and not wrong_span.passed
    partial = score_question(q, reply(answer="speakers — …", short_answer="speakers", abstained=False,
                                 citations=[cite]), 5.0)
    assert partial.f1 == pytest.approx(2 / 3) and partial.passed  # F1 ≥ 0.5 counts as right
    sentence_only = score_question(q, reply(answer="It targeted Kazakh speakers. [1]", short_answer=None,
                                       abstained=False, citations=[cite]), 5.0)
    assert sentence_only.passed
    uncited = score_question(q, reply(answer="Kazakh speakers", short_answer="Kazakh speakers", abstained=False,
                                 citations=[]), 5.0)
    assert uncited.em == 1.0 and not uncited.passed  # right words, no supporting citation
    abstained = score_question(q, reply(answer="The corpus does not say.", abstained=True, citations=[]), 5.0)
    assert abstained.f1 == 0.0 and not abstained.passed
