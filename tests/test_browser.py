"""Headless Chromium (Debian's, via Playwright) against the real app: the chat UI, the widget on a host page of
another origin, and an article carrying XSS payloads. Screenshots go to test-artifacts/."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ARTIFACTS
from tests.live_server import LiveApp, serve_folder, shared_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = "/usr/bin/chromium"
FIRST_LOAD_MS = 180_000
ANSWER_MS = 120_000
WIDGET_SNIPPET = '<script src="{url}/widget.js" data-title="Ask the article" async></script>'

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

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

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


def test_chat_answers_with_citations(browser: object, live_app: LiveApp) -> None:
    view = open_chat(browser, live_app, viewport={"width": 1100, "height": 900})
    try:
        message = ask_in_chat(view.page, "when was the Taraz attack?")
        assert "2011" in message.locator(".cc-answer").inner_text()
        sources = message.locator("li.cc-source")
        assert sources.count() >= 1
        assert any("Taraz" in sources.nth(i).locator("mark").inner_text() for i in range(sources.count()))
        marker = message.locator("a.cc-marker").first
        marker.click()
        target = marker.get_attribute("href")
        assert target and view.page.locator(target).get_attribute("class").find("cc-flash") >= 0
        view.shot("chat-answer")
        assert not view.external, f"requests left the machine: {view.external}"
    finally:
        view.close()


def test_follow_up_abstention_suggestions_and_clear(browser: object, live_app: LiveApp) -> None:
    first_q, follow_q = "when was the Taraz attack?", "and where did it happen?"
    first = live_app.pipeline.ask(first_q)
    with_history = live_app.pipeline.ask(follow_q, history=[{"role": "user", "content": first_q},
                                                            {"role": "assistant", "content": first.answer}])
    assert with_history.answer != live_app.pipeline.ask(follow_q).answer, "precondition: history changes the answer"
    view = open_chat(browser, live_app, viewport={"width": 1100, "height": 900})
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
        off_topic = ask_in_chat(page, "What is the boiling point of liquid nitrogen on Neptune?")
        assert off_topic.locator(".cc-abstain").count() == 1 and off_topic.locator(".cc-sources").count() == 0
        view.shot("chat-abstention")
    finally:
        view.close()


def test_chat_fits_a_phone_screen(browser: object, live_app: LiveApp) -> None:
    view = open_chat(browser, live_app, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        ask_in_chat(view.page, "when was the Taraz attack?")
        widths = view.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], f"horizontal scrolling on a phone: {widths}"
        assert view.page.locator("#cc-send").is_visible()
        view.shot("chat-phone")
    finally:
        view.close()


def test_widget_on_a_host_page(browser: object, live_app: LiveApp, host_page: tuple[Path, str]) -> None:
    folder, host_url = host_page
    (folder / "index.html").write_text(
        "<!doctype html><html><head><title>Host</title><style>button{background:red!important}"
        "*{font-family:serif}</style></head><body><h1>A host page</h1><p>Some article text.</p>"
        + WIDGET_SNIPPET.format(url=live_app.url) + "</body></html>", encoding="utf-8")
    view = Page(browser, {_host(live_app.url), _host(host_url)}, viewport={"width": 1100, "height": 800})
    page = view.page
    try:
        page.goto(host_url + "/index.html", timeout=FIRST_LOAD_MS)
        bubble = page.locator("#citechat-widget .bubble")
        bubble.click(timeout=FIRST_LOAD_MS)
        assert bubble.evaluate("b => getComputedStyle(b).backgroundColor") != "rgb(255, 0, 0)", \
            "host styles leaked into the widget"
        page.fill("#citechat-widget input", "when was the Taraz attack?")
        page.click("#citechat-widget form button")
        answer = page.locator("#citechat-widget .msg.bot:not(.pending)").last
        answer.locator(".cite").first.wait_for(timeout=ANSWER_MS)
        assert "2011" in answer.inner_text()
        cites = answer.locator(".cite")
        taraz = next(i for i in range(cites.count()) if "Taraz" in cites.nth(i).inner_text())
        cites.nth(taraz).click()
        context = answer.locator(".source").nth(taraz).locator(".context mark")
        context.wait_for(timeout=30_000)
        assert "Taraz" in context.inner_text()
        view.shot("widget-host-page")
        assert page.evaluate("getComputedStyle(document.querySelector('h1')).fontFamily") == "serif", \
            "the widget changed the host page's styles"
        assert not view.external, f"requests left the machine: {view.external}"
    finally:
        view.close()


def test_iframe_embed(browser: object, live_app: LiveApp, host_page: tuple[Path, str]) -> None:
    folder, host_url = host_page
    (folder / "frame.html").write_text(
        f'<!doctype html><html><body><iframe id="chat" src="{live_app.url}/embed" '
        'style="width:380px;height:560px"></iframe></body></html>', encoding="utf-8")
    view = Page(browser, {_host(live_app.url), _host(host_url)})
    try:
        view.page.goto(host_url + "/frame.html", timeout=FIRST_LOAD_MS)
        frame = view.page.frame_locator("#chat")
        frame.locator("#citechat-widget input").fill("when was the Taraz attack?", timeout=FIRST_LOAD_MS)
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
