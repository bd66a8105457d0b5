"""The web UI's pieces: escaping, citation context, safe corpus changes, suggestions, CORS origins, rate limit;
then the corpus tab in a real browser (add and remove an article with the admin token, read-only without)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag import Answer, Citation, Pipeline
from rag.errors import IndexNotReadyError, InvalidQuestionError, RagError
from rag.web.admin import AdminError, check_token, remove_article, safe_article_name, save_article
from rag.web.limits import RateLimiter
from rag.web.render import (
    answer_html,
    articles_html,
    citation_context,
    context_for,
    display_text,
    message_html,
    question_html,
    summary_html,
    user_message,
)
from rag.web.server import origin_regex
from rag.web.suggestions import answerable_suggestions, candidate_questions
from rag.web.ui.corpus_tab import add_articles, delete_article, sign_in
from rag.web.ui.eval_tab import RunFolders
from tests.conftest import ARTIFACTS
from tests.contrast import AA, text_contrasts
from tests.live_server import ADMIN_TOKEN, LiveApp, shared_app, start_app

PAYLOAD = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1">'


def no_progress(*_: object, **__: object) -> None:
    return None


def make_answer(text: str, citations: list[Citation], abstained: bool = False) -> Answer:
    return Answer(question="q", answer=text, abstained=abstained, citations=citations)


def cite(text: str, source: str = "a.txt", start: int = 0) -> Citation:
    return Citation(source=source, sentence_id="s1", text=text, start=start, end=start + len(text), score=0.5)


# -- rendering ----------------------------------------------------------------------------------------------------
def test_message_html_escapes_everything_from_the_corpus() -> None:
    citation = cite(PAYLOAD, source=f"{PAYLOAD}.txt")
    answer = make_answer(f"{PAYLOAD} [1] [7]", [citation])
    ctx = context_for(citation, f"Before {PAYLOAD} after.")
    html = message_html(answer, "cc-x", [ctx], {citation.source: PAYLOAD})
    assert "<script" not in html and "<img" not in html and "onerror=\"" not in html
    assert html.count("&lt;script&gt;") >= 4
    assert 'href="#cc-x-1"' in html and "#cc-x-7" not in html, "only markers with a citation become links"


LINE_BREAKS = ["\r", "\r\n", "\n", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


@pytest.mark.parametrize("newline", LINE_BREAKS, ids=[repr(b) for b in LINE_BREAKS])
def test_corpus_text_cannot_end_the_html_block_with_any_line_break(newline: str) -> None:
    injected = f"It ended in 1802.{newline}{newline}![pixel](http://host/p.png) and [a link](http://host/login)"
    text = f"Before. {injected} After."
    citation = cite(injected, start=len("Before. "))
    answer = make_answer(f"{injected} [1]", [citation])
    html = message_html(answer, "cc-z", [context_for(citation, text)], {"a.txt": injected})
    assert not any(b in html for b in LINE_BREAKS), "one line: the Markdown renderer keeps it one HTML block"
    assert "<img" not in html and "<a href=\"http" not in html


def test_bidi_controls_are_shown_not_obeyed_and_citations_stay_verbatim() -> None:
    stored = "Written by \u202enalpak ecnerwal\u202c today."
    assert display_text(stored) == "Written by \u27e8U+202E\u27e9nalpak ecnerwal\u27e8U+202C\u27e9 today."
    citation = cite(stored)
    html = message_html(make_answer("x [1]", [citation]), "a", [context_for(citation, stored)], {})
    assert "\u202e" not in html and "U+202E" in html
    assert citation.text == stored


def test_questions_are_shown_as_text_not_markdown() -> None:
    html = question_html("see ![x](http://host/p.png) **bold** <b>b</b>\r\rnext")
    assert html.startswith('<div class="cc-question">') and "\r" not in html
    assert "&lt;b&gt;" in html and "![x](http://host/p.png)" in html


def test_eval_summary_escapes_the_uploaded_file_name() -> None:
    summary = {"dataset": f"{PAYLOAD}\r\r![p](http://h/p.png).jsonl", "questions": 2, "answerable": 2,
               "unanswerable": 0, "k": 3, "metrics": {"pass_rate": 0.5}}
    html = summary_html(summary)
    assert "<script" not in html and "&lt;script&gt;" in html and "2 questions" in html and "\r" not in html


def test_abstention_looks_different_and_has_no_sources() -> None:
    html = message_html(make_answer("The corpus does not say.", [], abstained=True), "cc-y", [], {})
    assert 'class="cc-abstain"' in html and "cc-sources" not in html


def test_streamed_prefix_hides_sources_until_done() -> None:
    answer = make_answer("one two three [1]", [cite("x")])
    partial = message_html(answer, "a", [context_for(answer.citations[0], None)], {}, text="one two")
    assert "cc-sources" not in partial and "three" not in partial


def test_articles_table_escapes_titles() -> None:
    html = articles_html([("x.txt", PAYLOAD, 3)])
    assert "<script" not in html and "&lt;script&gt;" in html and ">3<" in html


def test_citation_context_is_the_paragraph_around_the_sentence() -> None:
    text = "Title\n\nFirst one. Second one.\nThird one.\n\nOther paragraph."
    start = text.index("Second")
    ctx = citation_context(text, start, start + len("Second one."))
    assert (ctx.before, ctx.sentence, ctx.after) == ("First one. ", "Second one.", " Third one.")


@pytest.mark.parametrize("newline", ["\r\n", "\r", "\n"])
def test_citation_context_stops_at_blank_lines_of_any_line_ending(newline: str) -> None:
    text = newline.join(["Earlier paragraph.", "", "First one. Second one.", "", "Later paragraph."])
    start = text.index("Second")
    ctx = citation_context(text, start, start + len("Second one."))
    assert (ctx.before, ctx.sentence, ctx.after) == ("First one. ", "Second one.", "")


def test_citation_context_trims_long_paragraphs() -> None:
    text = "word " * 2000 + "TARGET. " + "word " * 2000
    start = text.index("TARGET")
    ctx = citation_context(text, start, start + 7, max_chars=200)
    assert ctx.sentence == "TARGET." and len(ctx.before) + len(ctx.after) <= 210
    assert ctx.before.startswith("…") and ctx.after.endswith("…")


@given(st.text(alphabet="ab .\n", max_size=200), st.data())
def test_citation_context_always_contains_the_sentence(text: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    ctx = citation_context(text, start, end, max_chars=10_000)
    flat = text.replace("\n", " ")
    assert ctx.sentence == text[start:end].replace("\n", " ")
    assert ctx.before + ctx.sentence + ctx.after in flat


def test_context_falls_back_to_the_sentence_when_offsets_are_stale() -> None:
    ctx = context_for(cite("Hello there.", start=3), "Completely different text now.")
    assert (ctx.before, ctx.sentence, ctx.after) == ("", "Hello there.", "")


@pytest.mark.parametrize(("error", "shown"), [
    (InvalidQuestionError("the question is 2500 characters long; the limit is 2000 (RAG_MAX_QUESTION_CHARS)"),
     "The question is 2500 characters long; the limit is 2000."),
    (IndexNotReadyError("the index in /srv/secret/.rag-index is empty: run `rag ingest` first"),
     "The articles are being prepared; please try again in a moment."),
    (RagError("chroma at 10.0.0.5:8000 is unreachable"), "Sorry, answering failed; please try again later."),
])
def test_visitors_are_told_why_without_setting_names_or_server_paths(error: RagError, shown: str) -> None:
    assert user_message(error) == shown


def test_answer_html_marks_only_known_citation_numbers() -> None:
    html = answer_html(make_answer("see [1] and [2]", [cite("x")]), "z")
    assert html.count("cc-marker") == 1


# -- corpus changes -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../evil.txt", "/etc/passwd", "a/b.txt", "..\\evil.txt", "C:\\evil.txt",
                                  ".hidden.txt", "run.exe", "x.py", "", "  ", "a\x00.txt", "..", "ok..txt"])
def test_unsafe_upload_names_are_rejected(name: str) -> None:
    with pytest.raises(AdminError):
        safe_article_name(name)


@pytest.mark.parametrize(("name", "expected"), [("notes.md", "notes.md"), ("My article (2).txt", "My article (2).txt"),
                                                ("page.HTML", "page.HTML"), ("pasted", "pasted.txt")])
def test_safe_upload_names_are_kept(name: str, expected: str) -> None:
    assert safe_article_name(name) == expected


def test_save_refuses_a_symlink_out_of_the_corpus(tmp_path: Path) -> None:
    corpus, outside = tmp_path / "corpus", tmp_path / "outside.txt"
    corpus.mkdir()
    outside.write_text("keep me")
    (corpus / "link.txt").symlink_to(outside)
    with pytest.raises(AdminError):
        save_article(corpus, "link.txt", b"overwritten", 1000)
    assert outside.read_text() == "keep me"


def test_save_and_remove_stay_inside_the_corpus(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    path = save_article(corpus, "new.txt", b"Some text.", 1000)
    assert path == (corpus / "new.txt").resolve() and path.read_bytes() == b"Some text."
    with pytest.raises(AdminError):
        save_article(corpus, "big.txt", b"x" * 2000, 1000)
    with pytest.raises(AdminError):
        remove_article(corpus, "../outside.txt")
    remove_article(corpus, "new.txt")
    assert not path.exists()


def test_admin_token_check() -> None:
    with pytest.raises(AdminError, match="read-only"):
        check_token(None, "anything")
    for wrong in ["", None, "secret2", "secre"]:
        with pytest.raises(AdminError, match="wrong"):
            check_token("secret", wrong)
    check_token("secret", "secret")


def test_add_articles_refuses_a_wrong_token(seed_pipeline: Pipeline, tmp_path: Path) -> None:
    settings = seed_pipeline.settings.with_overrides(corpus_dir=tmp_path / "corpus", admin_token="right")
    pipeline = Pipeline(settings)
    status = add_articles(pipeline, "wrong", None, "x.txt", "Some text.", "", no_progress)  # type: ignore[arg-type]
    assert status.startswith("Error") and not (tmp_path / "corpus" / "x.txt").exists()


# -- suggestions, CORS, rate limit --------------------------------------------------------------------------------
def test_suggestions_come_from_the_corpus_and_are_answerable(seed_pipeline: Pipeline) -> None:
    snapshot = seed_pipeline.snapshot()
    candidates = list(candidate_questions(snapshot))
    assert candidates and all(q.endswith("?") for q, _ in candidates)
    corpus_text = " ".join(snapshot.texts)
    for question, source in candidates:
        subject = question.split(" ", 2)[2].removeprefix("in ").rstrip("?")
        assert subject in corpus_text and source in snapshot.sources
    suggestions = answerable_suggestions(seed_pipeline)
    assert suggestions
    assert all(not seed_pipeline.ask(q).abstained for q in suggestions)


def test_origin_regex() -> None:
    import re

    default = re.compile(origin_regex("http://localhost,http://127.0.0.1"))
    assert default.match("http://localhost:5173") and default.match("http://127.0.0.1")
    assert not default.match("http://evil.example") and not default.match("http://localhost.evil.example")
    assert not default.match("https://localhost")
    exact = re.compile(origin_regex("https://intranet.example:8443"))
    assert exact.match("https://intranet.example:8443") and not exact.match("https://intranet.example:9999")
    assert re.compile(origin_regex("*")).match("http://anything")


def test_rate_limiter_counts_per_client() -> None:
    limiter = RateLimiter(2)
    assert [limiter.retry_after("a") for _ in range(3)][:2] == [0.0, 0.0]
    assert limiter.retry_after("a") > 0 and limiter.retry_after("b") == 0.0
    assert all(RateLimiter(0).retry_after("a") == 0.0 for _ in range(100))


def test_rate_limiter_charges_a_batch_at_once() -> None:
    limiter = RateLimiter(5)
    assert limiter.retry_after("a", cost=3) == 0.0
    assert limiter.retry_after("a", cost=3) > 0, "3 + 3 is over 5: refused, and nothing counted"
    assert limiter.retry_after("a", cost=2) == 0.0
    assert limiter.retry_after("a") > 0
    assert limiter.retry_after("b", cost=6) == float("inf"), "more than the limit never fits"


def test_evaluation_downloads_keep_only_the_newest_runs(tmp_path: Path) -> None:
    runs = RunFolders(lambda: str(tmp_path), keep=3)
    made = []
    for n in range(7):
        folder = runs.new()
        (folder / "results.jsonl").write_text("x" * 1000)
        os.utime(folder, ns=(n * 10**9, n * 10**9))
        made.append(folder)
    assert sorted(p.name for p in (tmp_path / "citechat-eval").iterdir()) == sorted(p.name for p in made[-3:])


# -- the corpus tab in a browser ------------------------------------------------------------------------------------
CHROMIUM = "/usr/bin/chromium"
LOAD_MS = 180_000


@pytest.fixture(scope="module")
def page_factory() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-background-networking", "--disable-component-update"])
        yield browser
        browser.close()


@pytest.fixture
def live_app(tmp_path_factory: pytest.TempPathFactory) -> LiveApp:
    return shared_app(tmp_path_factory)


def open_corpus_tab(browser: object, url: str) -> object:
    page = browser.new_page(viewport={"width": 1100, "height": 1000})  # type: ignore[attr-defined]
    page.goto(url + "/", timeout=LOAD_MS)
    page.get_by_role("tab", name="Corpus").click(timeout=LOAD_MS)
    page.locator("#cc-articles table").wait_for(timeout=LOAD_MS)
    return page


def status_is(page: object, prefix: str, timeout: int = 180_000) -> None:
    page.wait_for_function(  # type: ignore[attr-defined]
        f"document.querySelector('#cc-status textarea').value.startsWith({prefix!r})", timeout=timeout)


def listed(page: object, name: str, present: bool = True) -> None:
    check = f"document.querySelector('#cc-articles').innerText.includes({name!r})"
    page.wait_for_function(check if present else f"!{check}", timeout=60_000)  # type: ignore[attr-defined]


def remove_via_ui(page: object, name: str) -> None:
    page.locator("#cc-remove-choice input").click()  # type: ignore[attr-defined]
    page.get_by_role("option", name=name).click()  # type: ignore[attr-defined]
    page.click("#cc-remove")  # type: ignore[attr-defined]
    status_is(page, "Removed")
    listed(page, name, present=False)


ADMIN_CONTROLS = "#cc-upload, #cc-paste, #cc-url, #cc-add, #cc-remove, #cc-remove-choice"


def visible(page: object, selector: str) -> int:
    """How many elements matching ``selector`` are on screen."""
    found = page.locator(selector)  # type: ignore[attr-defined]
    return sum(found.nth(i).is_visible() for i in range(found.count()))


def sign_in_as(page: object, token: str) -> None:
    page.get_by_text("Admin sign-in").click()  # type: ignore[attr-defined]
    page.locator("#cc-token input").fill(token)  # type: ignore[attr-defined]
    page.click("#cc-signin-button")  # type: ignore[attr-defined]


def test_sign_in_counts_tries_and_hands_back_only_a_right_token(seed_pipeline: Pipeline) -> None:
    pipeline = Pipeline(seed_pipeline.settings.with_overrides(admin_token="right"))
    limiter = RateLimiter(2)
    assert sign_in(pipeline, limiter, "c", "wrong") == ("", "Wrong admin token.")
    assert sign_in(pipeline, limiter, "c", " right ") == ("right", "")
    checked, message = sign_in(pipeline, limiter, "c", "right")
    assert checked == "" and message.startswith("Too many tries")


def test_corpus_actions_check_the_token_themselves(seed_pipeline: Pipeline, tmp_path: Path) -> None:
    settings = seed_pipeline.settings.with_overrides(corpus_dir=tmp_path / "corpus", admin_token="right")
    pipeline = Pipeline(settings)
    source = sorted(pipeline.store.indexed_documents())[0]
    for token in ("", "wrong"):
        assert delete_article(pipeline, token, source, no_progress).startswith("Error")  # type: ignore[arg-type]
    assert pipeline.store.document(source) is not None


@pytest.mark.browser
def test_corpus_tab_shows_admin_controls_only_after_sign_in(page_factory: object, live_app: LiveApp,
                                                              tmp_path: Path) -> None:
    page = open_corpus_tab(page_factory, live_app.url)
    pasted, uploaded = "glimmerfen.md", "quillmark.html"
    upload = tmp_path / uploaded
    upload.write_text("<html><head><title>Quillmark</title></head><body><article><p>The Quillmark observatory was"
                      " built on Mount Ferrow by astronomer Ilse Varga in 1911.</p></article></body></html>")
    try:
        assert "000_" in page.locator("#cc-articles").inner_text()
        assert visible(page, ADMIN_CONTROLS) == 0 and visible(page, "#cc-token") == 0, "admin controls for all"
        sign_in_as(page, "not-the-token")
        page.get_by_text("Wrong admin token.").wait_for(timeout=60_000)
        assert visible(page, ADMIN_CONTROLS) == 0
        assert page.locator("#cc-token input").input_value() == ""

        page.locator("#cc-token input").fill(ADMIN_TOKEN)
        page.click("#cc-signin-button")
        page.locator("#cc-add").wait_for(timeout=60_000)
        assert visible(page, "#cc-signin") == 0 and visible(page, "#cc-remove") == 1
        low = [m for m in text_contrasts(page, ".gradio-container") if float(m["ratio"]) < AA]
        assert not low, f"text under {AA}:1 contrast: {low}"
        page.locator("#cc-name").locator("input, textarea").fill(pasted)
        page.locator("#cc-paste textarea").fill("# Glimmerfen\n\nThe Glimmerfen bridge was opened by engineer"
                                                " Tova Renke in 1962. It spans the river Ossel.\n")
        page.locator("#cc-upload input[type=file]").set_input_files(str(upload))
        page.wait_for_timeout(1000)  # let the upload finish before submitting
        page.click("#cc-add")
        status_is(page, "Saved")
        listed(page, pasted)
        listed(page, uploaded)
        assert (live_app.corpus_dir / pasted).exists() and (live_app.corpus_dir / uploaded).exists()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "corpus-tab.png"), full_page=True)
        ask = live_app.pipeline.ask
        assert any(c.source == pasted for c in ask("Who opened the Glimmerfen bridge?").citations)
        assert any(c.source == uploaded for c in ask("Who built the Quillmark observatory?").citations)

        remove_via_ui(page, pasted)
        remove_via_ui(page, uploaded)
        assert not (live_app.corpus_dir / pasted).exists() and not (live_app.corpus_dir / uploaded).exists()
        assert live_app.pipeline.store.document(pasted) is None and live_app.pipeline.store.document(uploaded) is None

        page.click("#cc-signout")
        page.get_by_text("Admin sign-in").wait_for(timeout=30_000)
        assert visible(page, ADMIN_CONTROLS) == 0
    finally:
        page.close()
        leftovers = [live_app.corpus_dir / n for n in (pasted, uploaded) if (live_app.corpus_dir / n).exists()]
        for path in leftovers:  # leave the shared corpus as it was
            path.unlink()
        if leftovers:
            live_app.pipeline.ingest([live_app.corpus_dir])


@pytest.mark.browser
def test_corpus_tab_is_read_only_without_a_token(page_factory: object, live_app: LiveApp) -> None:
    read_only = Pipeline(live_app.settings.model_copy(update={"admin_token": None}))
    assert read_only.settings.admin_token is None
    with start_app(read_only) as server:
        page = open_corpus_tab(page_factory, server.url)
        try:
            assert page.locator("#cc-readonly").inner_text() == "This corpus is read-only."
            assert page.locator(f"{ADMIN_CONTROLS}, #cc-token, #cc-signin").count() == 0
            assert "000_" in page.locator("#cc-articles").inner_text()
        finally:
            page.close()


def test_the_chat_refuses_past_the_rate_limit_without_naming_a_setting(seed_pipeline: Pipeline) -> None:
    from rag.web.ui.chat import answer_stream

    limiter = RateLimiter(1)

    async def ask() -> str:
        updates = [u async for u in answer_stream(seed_pipeline, limiter, "when was the Taraz attack?", [], [], "c")]
        return str(updates[-1][0][-1]["content"])

    # A thread of its own: Playwright's sync API, used earlier in this module, leaves an event loop on this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert "2011" in pool.submit(asyncio.run, ask()).result()
        refusal = pool.submit(asyncio.run, ask()).result()
    assert re.search(r"Too many questions at once; please try again in \d+ s\.", refusal)
    assert "RAG_" not in refusal
