"""Headless Chromium (Debian's, via Playwright) against the real app: the chat UI on a desktop and a phone, the
widget on a host page of another origin (streaming, suggestions, errors told apart), text contrast, and an article
carrying XSS payloads. Screenshots go to test-artifacts/, and with RAG_UPDATE_SCREENSHOTS=1 the documentation's
to docs/img/."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rag import Pipeline
from rag.web.server import build_app, widget_script
from tests.conftest import ARTIFACTS, ROOT, free_port
from tests.contrast import AA, text_contrasts
from tests.live_server import LiveApp, ServerThread, seed_copy_pipeline, serve_folder, shared_app, start_app
from tests.openai_server import FakeOpenAI, FakeOpenAIThread
from tests.openai_server import Script as LLMScript
from tests.sse_script import Script, serve_script

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = "/usr/bin/chromium"
FIRST_LOAD_MS = 180_000
ANSWER_MS = 120_000
WIDGET_SNIPPET = '<script src="{url}/widget.js" data-title="Ask the article" async></script>'
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DOCS_IMG = ROOT / "docs" / "img"
TARAZ = "when was the Taraz attack?"
OFF_TOPIC = "What is the boiling point of liquid nitrogen on Neptune?"

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test.sh does it)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-background-networking", "--disable-component-update"])
        yield b
        b.close()


@pytest.fixture
def live_app(tmp_path_factory: pytest.TempPathFactory) -> LiveApp:
    return shared_app(tmp_path_factory)


@pytest.fixture
def host_page(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder for host pages, served from a different port than the app."""
    with serve_folder(tmp_path) as url:
        yield tmp_path, url


class Page:
    """A page that records dialogs and requests to other hosts (nothing may load from the internet)."""

    def __init__(self, browser: object, allowed_hosts: set[str], **context: object) -> None:
        self.context = browser.new_context(**context)  # type: ignore[attr-defined]
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.external: list[str] = []
        self.page.on("dialog", self._on_dialog)
        self.page.on("request", lambda r: self._on_request(r.url, allowed_hosts))

    def _on_dialog(self, dialog: object) -> None:
        self.dialogs.append(dialog.message)  # type: ignore[attr-defined]
        dialog.dismiss()  # type: ignore[attr-defined]

    def _on_request(self, url: str, allowed: set[str]) -> None:
        host = url.split("/")[2] if "://" in url else ""
        if url.startswith(("http://", "https://")) and host not in allowed:
            self.external.append(url)

    def shot(self, name: str, docs: bool = False) -> None:
        """A full-page screenshot in test-artifacts/; with ``docs`` and RAG_UPDATE_SCREENSHOTS=1 the visible part
        also becomes docs/img/<name>.png."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        if docs and os.environ.get("RAG_UPDATE_SCREENSHOTS") == "1":
            self.page.screenshot(path=str(DOCS_IMG / f"{name}.png"))

    def close(self) -> None:
        self.context.close()


def _host(url: str) -> str:
    return url.split("/")[2]


def ask_in_chat(page: object, question: str) -> object:
    """Type a question into the Gradio chat, send it, and wait until its sources list is rendered."""
    count = page.locator(".cc-message").count()  # type: ignore[attr-defined]
    page.fill("#cc-question textarea", question)  # type: ignore[attr-defined]
    page.click("#cc-send")  # type: ignore[attr-defined]
    last = page.locator(".cc-message").nth(count)  # type: ignore[attr-defined]
    last.locator(".cc-sources, .cc-abstain").first.wait_for(timeout=ANSWER_MS)
    return last


def open_chat(browser: object, app: LiveApp, **context: object) -> Page:
    view = Page(browser, {_host(app.url)}, **context)
    view.page.goto(app.url + "/", timeout=FIRST_LOAD_MS)
    view.page.wait_for_selector("#cc-question textarea", timeout=FIRST_LOAD_MS)
    return view


def below_aa(page: object, selector: str, required: set[str], texts: tuple[str, ...] = ()) -> list[dict[str, object]]:
    """The texts under ``selector`` with contrast under WCAG AA; fails when an element of one of the ``required``
    classes, or a text starting with one of ``texts``, was not measured (the check would miss it)."""
    measured = text_contrasts(page, selector)
    classes = {c for m in measured for c in str(m["classes"]).split()}
    assert required <= classes, f"not measured: {required - classes}"
    missing = [t for t in texts if not any(str(m["text"]).startswith(t) for m in measured)]
    assert not missing, f"not measured: {missing}"
    return [m for m in measured if float(m["ratio"]) < AA]  # type: ignore[arg-type]


def test_chat_answers_with_citations(browser: object, live_app: LiveApp) -> None:
    view = open_chat(browser, live_app, viewport=DESKTOP)
    try:
        message = ask_in_chat(view.page, TARAZ)
        assert "2011" in message.locator(".cc-answer").inner_text()
        sources = message.locator("li.cc-source")
        assert sources.count() >= 1
        assert any("Taraz" in sources.nth(i).locator("mark").inner_text() for i in range(sources.count()))
        view.page.wait_for_timeout(600)  # past the chat's own scrolling, for the screenshot
        view.shot("chat-desktop", docs=True)
        marker = message.locator("a.cc-marker").first
        marker.click()
        target = marker.get_attribute("href")
        assert target and view.page.locator(target).get_attribute("class").find("cc-flash") >= 0
        assert not view.external, f"requests left the machine: {view.external}"
    finally:
        view.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_chat_text_meets_wcag_aa_contrast(browser: object, live_app: LiveApp, scheme: str) -> None:
    view = open_chat(browser, live_app, viewport=DESKTOP, color_scheme=scheme)
    try:
        ask_in_chat(view.page, TARAZ)
        ask_in_chat(view.page, OFF_TOPIC)
        low = below_aa(view.page, ".gradio-container", {"cc-abstain", "cc-name", "cc-score", "cc-answer",
                                                        "cc-marker", "cc-suggestion"})
        assert not low, f"text under {AA}:1 contrast: {low}"
    finally:
        view.close()


def test_chat_column_keeps_its_width_after_an_answer(browser: object, live_app: LiveApp) -> None:
    view = open_chat(browser, live_app, viewport=DESKTOP)
    width = "document.querySelector('#cc-chat').getBoundingClientRect().width"
    try:
        before = view.page.evaluate(width)
        ask_in_chat(view.page, TARAZ)
        view.page.wait_for_timeout(500)
        after = view.page.evaluate(width)
        assert before == after, f"the chat column went from {before} to {after} px"
        assert before >= 800, f"the chat column is {before} px wide on a 1280 px screen"
    finally:
        view.close()


def test_follow_up_abstention_suggestions_and_clear(browser: object, live_app: LiveApp) -> None:
    first_q, follow_q = TARAZ, "and where did it happen?"
    first = live_app.pipeline.ask(first_q)
    with_history = live_app.pipeline.ask(follow_q, history=[{"role": "user", "content": first_q},
                                                            {"role": "assistant", "content": first.answer}])
    assert with_history.answer != live_app.pipeline.ask(follow_q).answer, "precondition: history changes the answer"
    view = open_chat(browser, live_app, viewport=DESKTOP)
    try:
        page = view.page
        ask_in_chat(page, first_q)
        follow = ask_in_chat(page, follow_q)
        assert " ".join(follow.locator(".cc-answer").inner_text().split()) == " ".join(with_history.answer.split())

        page.click("#cc-clear")
        page.wait_for_function("document.querySelectorAll('.cc-message').length === 0", timeout=30_000)
        suggestion = page.locator("button.cc-suggestion").first
        suggestion.wait_for(timeout=FIRST_LOAD_MS)
        label = suggestion.inner_text()
        suggestion.click()
        page.locator(".cc-message").first.locator(".cc-sources, .cc-abstain").first.wait_for(timeout=ANSWER_MS)
        assert label in page.locator("#cc-chat").inner_text()
        off_topic = ask_in_chat(page, OFF_TOPIC)
        assert off_topic.locator(".cc-abstain").count() == 1 and off_topic.locator(".cc-sources").count() == 0
        view.shot("chat-abstention")
    finally:
        view.close()


# Where the newest answer's first line is, against the chat's scrolling box and the window.
_ANSWER_START = """() => {
  const answers = document.querySelectorAll('#cc-chat .cc-message');
  const message = answers[answers.length - 1];
  let box = message.parentElement;
  while (box && !(box.scrollHeight > box.clientHeight && /auto|scroll/.test(getComputedStyle(box).overflowY))) {
    box = box.parentElement;
  }
  const start = message.querySelector('.cc-answer, .cc-abstain').getBoundingClientRect();
  const view = box.getBoundingClientRect();
  return {top: start.top, boxTop: view.top, boxBottom: view.bottom, messageHeight: message.offsetHeight,
          boxHeight: box.clientHeight, windowHeight: window.innerHeight};
}"""


def test_chat_on_a_phone_fits_and_shows_the_start_of_a_long_answer(browser: object, live_app: LiveApp) -> None:
    view = open_chat(browser, live_app, **PHONE)
    try:
        ask_in_chat(view.page, TARAZ)
        view.page.wait_for_timeout(3000)  # past the chat's own scrolling (300 ms after each update) and ours
        where = view.page.evaluate(_ANSWER_START)
        assert where["messageHeight"] > where["boxHeight"], f"precondition: an answer taller than the chat {where}"
        assert where["boxTop"] - 1 <= where["top"] < where["boxBottom"] - 20, f"the answer's start is hidden: {where}"
        assert 0 <= where["top"] < where["windowHeight"], f"the answer's start is off screen: {where}"
        widths = view.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], f"horizontal scrolling on a phone: {widths}"
        assert view.page.locator("#cc-send").is_visible()
        view.shot("chat-phone", docs=True)
    finally:
        view.close()


# -- the widget ------------------------------------------------------------------------------------------------------
def host_with_widget(folder: Path, src: str, name: str = "index.html", attributes: str = "") -> str:
    """Write a host page carrying the widget loaded from ``src`` (a base URL), with hostile styles it must not pick
    up; returns its file name."""
    (folder / name).write_text(
        "<!doctype html><html><head><meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>Host</title><style>button{background:red!important}*{font-family:serif}</style></head><body>"
        "<h1>A host page</h1><p>Some article text.</p>"
        f'<script src="{src}/widget.js" data-title="Ask the article" {attributes} async></script></body></html>',
        encoding="utf-8")
    return name


class Widget:
    """The widget on a host page: open it, ask, read its messages."""

    def __init__(self, view: Page) -> None:
        self.view, self.page = view, view.page

    def open(self, url: str) -> Widget:
        self.page.goto(url, timeout=FIRST_LOAD_MS)
        self.page.locator("#citechat-widget .bubble").click(timeout=FIRST_LOAD_MS)
        return self

    def ask(self, question: str) -> object:
        """Send ``question`` and wait for its finished reply (an answer or an error)."""
        replies = self.page.locator("#citechat-widget .msg.bot:not(.welcome)")
        count = replies.count()
        self.page.fill("#citechat-widget input", question)
        self.page.click("#citechat-widget form button")
        reply = replies.nth(count)
        reply.and_(self.page.locator("[aria-busy=false]")).wait_for(timeout=ANSWER_MS)
        return reply


def test_widget_on_a_host_page_streams_the_answer(browser: object, live_app: LiveApp,
                                                  host_page: tuple[Path, str]) -> None:
    folder, host_url = host_page
    page_name = host_with_widget(folder, live_app.url)
    view = Page(browser, {_host(live_app.url), _host(host_url)}, viewport=DESKTOP)
    posted: list[str] = []
    view.page.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)
    page = view.page
    try:
        widget = Widget(view).open(f"{host_url}/{page_name}")
        assert page.locator("#citechat-widget .bubble").evaluate("b => getComputedStyle(b).backgroundColor") \
            != "rgb(255, 0, 0)", "host styles leaked into the widget"
        answer = widget.ask(TARAZ)
        assert "2011" in answer.inner_text()
        assert posted == [live_app.url + "/api/ask/stream"], "the widget asks the streaming route, once"
        cites = answer.locator(".cite")
        taraz = next(i for i in range(cites.count()) if "Taraz" in cites.nth(i).inner_text())
        cites.nth(taraz).click()
        context = answer.locator(".source").nth(taraz).locator(".context mark")
        context.wait_for(timeout=30_000)
        assert "Taraz" in context.inner_text()
        view.shot("widget-desktop", docs=True)
        assert page.evaluate("getComputedStyle(document.querySelector('h1')).fontFamily") == "serif", \
            "the widget changed the host page's styles"
        assert not view.external, f"requests left the machine: {view.external}"
    finally:
        view.close()


def test_widget_opens_with_a_welcome_and_two_suggested_questions(browser: object, live_app: LiveApp,
                                                                  host_page: tuple[Path, str]) -> None:
    expected = httpx.get(live_app.url + "/api/suggestions", params={"n": 2}, timeout=120).json()["questions"]
    assert len(expected) == 2, "precondition: the corpus yields two suggestions"
    folder, host_url = host_page
    view = Page(browser, {_host(live_app.url), _host(host_url)}, **PHONE)
    try:
        Widget(view).open(f"{host_url}/{host_with_widget(folder, live_app.url)}")
        welcome = view.page.locator("#citechat-widget .msg.welcome")
        assert welcome.is_visible() and welcome.inner_text().startswith("Hi!")
        chips = view.page.locator("#citechat-widget .suggestion")
        chips.nth(1).wait_for(timeout=30_000)
        assert [chips.nth(i).inner_text() for i in range(chips.count())] == expected
        view.shot("widget-phone", docs=True)
        chips.first.click()
        assert view.page.locator("#citechat-widget .msg.user").inner_text() == expected[0]
        reply = view.page.locator("#citechat-widget .msg.bot:not(.welcome)").first
        reply.locator(".cite").first.wait_for(timeout=ANSWER_MS)
        assert view.page.locator("#citechat-widget .suggestion").count() == 0, "suggestions go once a question is asked"
        widths = view.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], f"horizontal scrolling on a phone: {widths}"
        view.shot("widget-phone-answer")
    finally:
        view.close()


def test_widget_text_meets_wcag_aa_contrast(browser: object, live_app: LiveApp, host_page: tuple[Path, str]) -> None:
    folder, host_url = host_page
    view = Page(browser, {_host(live_app.url), _host(host_url)}, viewport=DESKTOP)
    try:
        widget = Widget(view).open(f"{host_url}/{host_with_widget(folder, live_app.url)}")
        view.page.locator("#citechat-widget .suggestion").first.wait_for(timeout=30_000)
        low = below_aa(view.page, "#citechat-widget", {"welcome", "suggestion"})
        widget.ask(TARAZ)
        widget.ask(OFF_TOPIC)
        # A question over the server's length limit: the input's own limit is lifted to send one.
        view.page.locator("#citechat-widget input").evaluate("i => { i.maxLength = 100000; }")
        refused = widget.ask("why " * 600)
        assert "error" in (refused.get_attribute("class") or "")
        low += below_aa(view.page, "#citechat-widget", {"user", "text", "marker", "cite", "name", "error"},
                        texts=("The corpus does not say",))
        assert not low, f"text under {AA}:1 contrast: {low}"
        assert "RAG_" not in view.page.locator("#citechat-widget .log").inner_text(), "a setting name reached users"
    finally:
        view.close()


def scripted_host(folder: Path, host_url: str, api: str) -> str:
    """A host page whose widget (this checkout's widget.js, served with the page) talks to ``api``."""
    (folder / "widget.js").write_text(widget_script(), encoding="utf-8")
    return host_with_widget(folder, host_url, "scripted.html", f"data-api={api}")


PROVISIONAL = [{"source": "a.txt", "sentence_id": "a1", "text": "The festival began in 1987.", "start": 0,
                "end": 27, "score": 0.9},
               {"source": "b.txt", "sentence_id": "b1", "text": "Lanterns were made of paper.", "start": 0,
                "end": 28, "score": 0.5}]
XSS_DELTA = '<img src=x onerror="window.__xss=1">'


def test_widget_renders_the_stream_as_it_arrives(browser: object, host_page: tuple[Path, str]) -> None:
    final = {"question": "q", "answer": f"It began in 1987 [1]. {XSS_DELTA}", "abstained": False,
             "citations": PROVISIONAL[:1]}
    script = Script(events=[("status", {"stage": "searching"}, 0.0),
                            ("citations", {"citations": PROVISIONAL}, 0.0),
                            ("delta", {"text": "It began "}, 1.5),
                            ("delta", {"text": f"in 1987 [1]. {XSS_DELTA}"}, 1.5),
                            ("answer", final, 0.0)])
    folder, host_url = host_page
    with serve_script(script) as api:
        view = Page(browser, {_host(api), _host(host_url)}, viewport=DESKTOP)
        page = view.page
        try:
            Widget(view).open(f"{host_url}/{scripted_host(folder, host_url, api)}")
            page.fill("#citechat-widget input", "when did it begin?")
            page.click("#citechat-widget form button")
            reply = page.locator("#citechat-widget .msg.bot:not(.welcome)").first
            reply.get_by_text("It began").wait_for(timeout=10_000)
            assert reply.get_attribute("aria-busy") == "true", "the first words show before the answer is done"
            assert reply.locator(".cite").count() == 2, "the retrieved sources show while the text streams"
            assert reply.locator(".marker").count() == 0
            reply.and_(page.locator("[aria-busy=false]")).wait_for(timeout=10_000)
            assert reply.locator(".cite").count() == 1, "the final answer's citations replace the provisional ones"
            assert reply.locator(".marker").count() == 1
            assert XSS_DELTA in reply.inner_text() and reply.locator("img").count() == 0
            assert page.evaluate("typeof window.__xss") == "undefined"
            assert script.asked == ["/api/ask/stream"]
        finally:
            view.close()


@pytest.mark.parametrize("stream", ["missing", "empty"])
def test_widget_falls_back_to_ask_when_streaming_fails_before_any_event(
        browser: object, host_page: tuple[Path, str], stream: str) -> None:
    script = Script(answer={"question": "q", "answer": "Whole answer [1].", "abstained": False,
                            "citations": PROVISIONAL[:1]},
                    stream_status=404 if stream == "missing" else 200)
    folder, host_url = host_page
    with serve_script(script) as api:
        view = Page(browser, {_host(api), _host(host_url)}, viewport=DESKTOP)
        try:
            widget = Widget(view).open(f"{host_url}/{scripted_host(folder, host_url, api)}")
            reply = widget.ask("anything?")
            assert "Whole answer" in reply.inner_text() and reply.locator(".cite").count() == 1
            assert script.asked == ["/api/ask/stream", "/api/ask"]
        finally:
            view.close()


@pytest.fixture(scope="module")
def strict_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The shared corpus served without the UI, to pages from http://localhost only, one ask a minute per client."""
    live = shared_app(tmp_path_factory)
    pipeline = Pipeline(live.settings.model_copy(update={"allowed_origins": "http://localhost",
                                                         "rate_limit_per_minute": 1}))
    with ServerThread(build_app(pipeline, ui=False), free_port()) as server:
        yield server.url


def test_widget_tells_unreachable_not_allowed_and_rate_limited_apart(
        browser: object, strict_app: str, host_page: tuple[Path, str]) -> None:
    folder, host_url = host_page
    port = host_url.rsplit(":", 1)[1]
    closed = f"http://127.0.0.1:{free_port()}"
    cases = [(closed, f"{host_url}/{host_with_widget(folder, strict_app, 'down.html', f'data-api={closed}')}"),
             (strict_app, f"{host_url}/{host_with_widget(folder, strict_app, 'refused.html')}"),
             (strict_app, f"http://localhost:{port}/{host_with_widget(folder, strict_app, 'allowed.html')}")]
    said = []
    for api, url in cases:
        view = Page(browser, {_host(api), _host(url), f"localhost:{port}"}, viewport=DESKTOP)
        try:
            widget = Widget(view).open(url)
            replies = [widget.ask(TARAZ).inner_text() for _ in range(2 if api == strict_app else 1)]
            said.append(replies[-1])
        finally:
            view.close()
    unreachable, refused, limited = said
    assert unreachable.startswith("Server unreachable")
    assert refused == "This page is not allowed to use the bot."
    wait = re.fullmatch(r"Too many questions: try again in (\d+) s\.", limited)
    assert wait and 1 <= int(wait.group(1)) <= 60, limited
    assert not any("RAG_" in text for text in said)


def test_iframe_embed(browser: object, live_app: LiveApp, host_page: tuple[Path, str]) -> None:
    folder, host_url = host_page
    (folder / "frame.html").write_text(
        f'<!doctype html><html><body><iframe id="chat" src="{live_app.url}/embed" '
        'style="width:380px;height:560px"></iframe></body></html>', encoding="utf-8")
    view = Page(browser, {_host(live_app.url), _host(host_url)})
    try:
        view.page.goto(host_url + "/frame.html", timeout=FIRST_LOAD_MS)
        frame = view.page.frame_locator("#chat")
        frame.locator("#citechat-widget .msg.welcome").wait_for(timeout=FIRST_LOAD_MS)
        frame.locator("#citechat-widget input").fill(TARAZ, timeout=FIRST_LOAD_MS)
        frame.locator("#citechat-widget form button").click()
        frame.locator("#citechat-widget .cite").first.wait_for(timeout=ANSWER_MS)
        assert "2011" in frame.locator("#citechat-widget .msg.bot").last.inner_text()
    finally:
        view.close()


def test_xss_payloads_never_run(browser: object, live_app: LiveApp, host_page: tuple[Path, str]) -> None:
    question = "When was the Zorblat lantern festival first held?"
    view = open_chat(browser, live_app, viewport={"width": 1100, "height": 900})
    page = view.page
    try:
        message = ask_in_chat(page, question)
        shown = message.inner_text()
        assert "onerror" in shown or "<script>" in shown, "the payload should be visible as text"
        page.get_by_role("tab", name="Corpus").click()
        page.locator("#cc-articles table").wait_for(timeout=30_000)
        assert "<script>" in page.locator("#cc-articles").inner_text()
        page.wait_for_timeout(500)
        view.shot("xss-chat")
        assert page.evaluate("typeof window.__xss") == "undefined"
        assert page.locator("#cc-chat img[src='x'], #cc-articles img, #cc-chat script").count() == 0
        assert view.dialogs == []
    finally:
        view.close()

    folder, host_url = host_page
    (folder / "index.html").write_text("<!doctype html><html><body><h1>Host</h1>"
                                       + WIDGET_SNIPPET.format(url=live_app.url) + "</body></html>", encoding="utf-8")
    widget = Page(browser, {_host(live_app.url), _host(host_url)})
    try:
        widget.page.goto(host_url + "/index.html", timeout=FIRST_LOAD_MS)
        widget.page.locator("#citechat-widget .bubble").click(timeout=FIRST_LOAD_MS)
        widget.page.fill("#citechat-widget input", question)
        widget.page.click("#citechat-widget form button")
        cite = widget.page.locator("#citechat-widget .cite").first
        cite.wait_for(timeout=ANSWER_MS)
        cite.click()
        widget.page.locator("#citechat-widget .context mark").first.wait_for(timeout=30_000)
        widget.page.wait_for_timeout(500)
        widget.shot("xss-widget")
        assert widget.page.evaluate("typeof window.__xss") == "undefined"
        assert widget.page.locator("#citechat-widget img").count() == 0
        assert widget.dialogs == []
    finally:
        widget.close()


@pytest.mark.parametrize(("path", "rendered"), [("/docs", ".swagger-ui .info"), ("/redoc", ".redoc-wrap")])
def test_api_docs_load_from_the_app_itself(browser: object, live_app: LiveApp, path: str, rendered: str) -> None:
    view = Page(browser, {_host(live_app.url)}, viewport={"width": 1100, "height": 800})
    try:
        view.page.goto(live_app.url + path, timeout=FIRST_LOAD_MS)
        view.page.locator(rendered).first.wait_for(timeout=60_000)
        assert "citechat" in view.page.locator(rendered).first.inner_text()
        view.page.get_by_text("/api/ask/stream").first.wait_for(timeout=30_000)
        view.shot(f"api-docs{path.replace('/', '-')}")
        assert not view.external, f"requests left the machine: {view.external}"
    finally:
        view.close()


def test_widget_streams_a_real_llm_clients_tokens(browser: object, host_page: tuple[Path, str],
                                                  tmp_path: Path) -> None:
    reply = json.dumps({"answer": "The Taraz attack took place in 2011, as the first cited sentence says [S1].",
                        "citations": ["S1", "S99"], "abstain": False})
    fake = FakeOpenAI(default=LLMScript(reply, chunk=4, delay_s=0.1))
    folder, host_url = host_page
    with FakeOpenAIThread(fake, free_port()) as endpoint:
        pipeline = seed_copy_pipeline(tmp_path, llm_base_url=endpoint.base_url, llm_model="test-model",
                                      rate_limit_per_minute=0)
        with start_app(pipeline) as server:
            view = Page(browser, {_host(server.url), _host(host_url)}, viewport=DESKTOP)
            page = view.page
            try:
                Widget(view).open(f"{host_url}/{host_with_widget(folder, server.url)}")
                page.fill("#citechat-widget input", TARAZ)
                page.click("#citechat-widget form button")
                answer = page.locator("#citechat-widget .msg.bot:not(.welcome)").first
                answer.get_by_text("The Taraz attack took").wait_for(timeout=ANSWER_MS)
                assert answer.get_attribute("aria-busy") == "true", "the model's first words show while it writes"
                assert "as the first cited sentence says" not in answer.inner_text()
                answer.and_(page.locator("[aria-busy=false]")).wait_for(timeout=ANSWER_MS)
                assert "The Taraz attack took place in 2011, as the first cited sentence says" in answer.inner_text()
                assert answer.locator(".cite").count() == 1, "the invented S99 is dropped from the final sources"
            finally:
                view.close()
    call, = fake.calls
    assert call.stream and call.finished
