"""fetch_page and page_text against a local HTTP server on 127.0.0.1: redirects, schemes, limits, charsets."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rag.errors import CorpusError
from rag.ingest.web_pages import FetchedPage, fetch_page, page_text

LIMIT = 1_000_000
BIG = 50 * 1024 * 1024
CHUNK = 64 * 1024

ARTICLE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>The Tides of Fundy</title></head><body>
<nav><a href="/">Home</a> <a href="/about">About</a> Site navigation menu</nav>
<article><h1>The Tides of Fundy</h1>
<p>The Bay of Fundy has the highest tides in the world, reaching sixteen metres between low and high water.</p>
<p>Twice a day, about one hundred billion tonnes of seawater flow in and out of the bay.</p>
<p>The shape and length of the bay resonate with the ocean tide, which amplifies its rise and fall.</p>
</article>
<footer><p>Copyright 2024 Ocean Notes, all rights reserved, footer small print.</p></footer>
</body></html>"""
PARAGRAPHS = [
    "The Bay of Fundy has the highest tides in the world, reaching sixteen metres between low and high water.",
    "Twice a day, about one hundred billion tonnes of seawater flow in and out of the bay.",
    "The shape and length of the bay resonate with the ocean tide, which amplifies its rise and fall.",
]
RUSSIAN = [
    "Байкал — самое глубокое озеро на планете и крупнейший природный резервуар пресной воды.",
    "Озеро расположено в Восточной Сибири, на границе Иркутской области и Республики Бурятия.",
    "В Байкал впадают более трёхсот рек, а вытекает из него только одна — Ангара.",
    "Вода в озере настолько прозрачна, что камни на дне видны на глубине до сорока метров.",
]
JAPANESE = (
    "富士山は日本で最も高い山であり、標高は三千七百七十六メートルです。"
    "静岡県と山梨県にまたがる活火山で、最後の噴火は千七百七年の宝永大噴火でした。\n"
    "古くから信仰の対象とされ、多くの芸術作品の題材にもなってきました。"
    "二千十三年には世界文化遺産に登録され、毎年夏には多くの登山者が山頂を目指します。\n"
    "山頂からの日の出はご来光と呼ばれ、その美しさは多くの人々を魅了しています。\n"
)


def _russian_page(meta: str = "") -> bytes:
    body = "".join(f"<p>{p}</p>\n" for p in RUSSIAN)
    return f"<html><head>{meta}<title>Озеро Байкал</title></head><body><article>{body}</article></body></html>".encode(
        "cp1251")


@dataclass
class Site:
    """The test server: its base URL, and per path how many body bytes it sent and when its handler ended."""

    base: str
    sent: dict[str, int] = field(default_factory=dict)
    done: dict[str, threading.Event] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.base + path

    def wait_done(self, path: str) -> int:
        assert self.done[path].wait(10), f"{path}: the handler did not end"
        return self.sent[path]


def _make_handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # chunked bodies need it

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path
            site.headers[path] = dict(self.headers.items())
            site.done[path] = threading.Event()
            site.sent[path] = 0
            try:
                ROUTES[path](self)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client hung up, which is what the limit tests want
            finally:
                site.done[path].set()

        def page(self, body: bytes, content_type: str, status: int = 200) -> None:
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            site.sent[self.path] = len(body)

        def redirect(self, location: str, status: int = 302) -> None:
            self.send_response(status)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def big(self, chunked: bool) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(BIG))
            self.end_headers()
            block = b"x" * CHUNK
            # "Forever" is bounded at 4x BIG so a client that never hangs up cannot hang the suite.
            while site.sent[self.path] < (4 * BIG if chunked else BIG):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
                site.sent[self.path] += len(block)

        def dribble(self, data: bytes) -> None:
            """One byte every 0.5 s."""
            for i in range(len(data)):
                self.wfile.write(data[i:i + 1])
                site.sent[self.path] += 1
                time.sleep(0.5)

        def slow_body(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.dribble(b"y" * 100)

    ROUTES: dict[str, Callable[[Handler], None]] = {
        "/article": lambda h: h.page(ARTICLE.encode(), "text/html; charset=utf-8"),
        "/ru-header": lambda h: h.page(_russian_page(), "text/html; charset=windows-1251"),
        "/ru-none": lambda h: h.page(_russian_page(), "text/html"),
        "/ru-meta": lambda h: h.page(_russian_page('<meta charset="windows-1251">'), "text/html"),
        "/ru-wrong-header": lambda h: h.page(_russian_page(), "text/html; charset=utf-8"),
        "/sjis": lambda h: h.page(JAPANESE.encode("shift_jis"), "text/plain"),
        "/no-type": lambda h: h.page(ARTICLE.encode(), ""),
        "/r1": lambda h: h.redirect("/r2", 301),
        "/r2": lambda h: h.redirect("r3", 307),  # relative to /r2
        "/r3": lambda h: h.redirect(site.url("/article"), 308),
        "/to-file": lambda h: h.redirect("file:///etc/passwd"),
        "/to-ftp": lambda h: h.redirect("ftp://127.0.0.1/pub/article.html"),
        "/loop": lambda h: h.redirect("/loop"),
        "/error": lambda h: h.page(b"<html><body>oops</body></html>", "text/html", status=500),
        "/big-length": lambda h: h.big(chunked=False),
        "/big-chunked": lambda h: h.big(chunked=True),
        "/png": lambda h: h.page(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png"),
        "/pdf": lambda h: h.page(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "application/pdf"),
        "/slow-body": lambda h: h.slow_body(),
        # The status line and headers themselves, a byte at a time: no body read ever starts.
        "/slow-headers": lambda h: h.dribble(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nok"),
    }

    return Handler


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    state = Site(base=f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _make_handler(state)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def _refused(url: str, timeout_s: float = 20.0, max_redirects: int = 5) -> tuple[str, float]:
    """The CorpusError message fetch_page raises for ``url``, and how long it took."""
    start = time.monotonic()
    with pytest.raises(CorpusError) as info:
        fetch_page(url, LIMIT, timeout_s=timeout_s, max_redirects=max_redirects)
    return str(info.value), time.monotonic() - start


def test_article_main_text_without_furniture(site: Site) -> None:
    page = fetch_page(site.url("/article"), LIMIT)
    assert (page.url, page.content_type, page.charset) == (site.url("/article"), "text/html", "utf-8")
    assert site.headers["/article"]["User-Agent"].startswith("citechat")
    # Only encodings whose expansion is bounded per chunk, so the size limit holds for compressed bodies too.
    assert site.headers["/article"]["Accept-Encoding"] == "gzip, deflate"
    text, title = page_text(page)
    assert title == "The Tides of Fundy"
    assert "\n\n".join(PARAGRAPHS) in text
    for furniture in ("Site navigation menu", "About", "Copyright", "footer small print"):
        assert furniture not in text


def test_falls_back_to_beautifulsoup_when_trafilatura_finds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("trafilatura.bare_extraction", lambda *a, **k: None)
    text, title = page_text(FetchedPage("http://example.test/a", ARTICLE.encode(), "text/html", None))
    assert title == "The Tides of Fundy"
    assert "\n\n".join(PARAGRAPHS) in text and "Copyright" not in text


@pytest.mark.parametrize("path", ["/ru-header", "/ru-none", "/ru-meta", "/ru-wrong-header"])
def test_cp1251_page_decodes(site: Site, path: str) -> None:
    text, title = page_text(fetch_page(site.url(path), LIMIT))
    assert title == "Озеро Байкал"
    for paragraph in RUSSIAN:
        assert paragraph in text


def test_shift_jis_text_without_charset(site: Site) -> None:
    page = fetch_page(site.url("/sjis"), LIMIT)
    assert (page.content_type, page.charset) == ("text/plain", None)
    assert page_text(page) == (JAPANESE, "")


def test_missing_content_type_is_sniffed(site: Site) -> None:
    page = fetch_page(site.url("/no-type"), LIMIT)
    assert page.content_type == "text/html"
    assert page_text(page)[1] == "The Tides of Fundy"


def test_redirect_chain_is_followed(site: Site) -> None:
    page = fetch_page(site.url("/r1"), LIMIT)
    assert page.url == site.url("/article")
    assert page_text(page)[1] == "The Tides of Fundy"
    message, _ = _refused(site.url("/r1"), max_redirects=2)
    assert "more than 2 redirects" in message and site.url("/r1") in message


@pytest.mark.parametrize(("path", "scheme"), [("/to-file", "file"), ("/to-ftp", "ftp")])
def test_redirect_to_other_scheme_is_refused(site: Site, path: str, scheme: str) -> None:
    message, _ = _refused(site.url(path))
    assert f"'{scheme}'" in message and site.url(path) in message


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "javascript:alert(1)", "http:///nohost"])
def test_other_scheme_is_refused_up_front(url: str) -> None:
    message, _ = _refused(url)
    assert url in message and ("only http and https" in message or "no host" in message)


def test_redirect_loop_is_refused(site: Site) -> None:
    message, elapsed = _refused(site.url("/loop"))
    assert "redirect loop" in message
    assert elapsed < 5


def test_server_error_is_refused(site: Site) -> None:
    message, _ = _refused(site.url("/error"))
    assert "HTTP 500" in message and site.url("/error") in message


@pytest.mark.parametrize("path", ["/big-length", "/big-chunked"])
def test_oversized_body_is_refused_without_reading_it(site: Site, path: str) -> None:
    message, elapsed = _refused(site.url(path))
    assert f"{LIMIT}-byte limit" in message
    assert elapsed < 5
    # The server stops at the first write after the client hung up: far less than it meant to send.
    assert site.wait_done(path) < BIG


@pytest.mark.parametrize("path", ["/slow-body", "/slow-headers"])
def test_slow_server_is_cut_off_at_the_timeout(site: Site, path: str) -> None:
    message, elapsed = _refused(site.url(path), timeout_s=2)
    assert "timed out after 2 s" in message
    assert 1.5 < elapsed < 3


def test_image_is_refused(site: Site) -> None:
    message, _ = _refused(site.url("/png"))
    assert "image/png is not supported" in message


def test_pdf_is_returned_for_a_document_loader(site: Site) -> None:
    page = fetch_page(site.url("/pdf"), LIMIT)
    assert page.content_type == "application/pdf" and page.raw.startswith(b"%PDF-1.4")
    with pytest.raises(CorpusError, match="application/pdf"):
        page_text(page)


def test_unreachable_port_is_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    message, elapsed = _refused(f"http://127.0.0.1:{port}/")
    assert "could not connect" in message and str(port) in message
    assert elapsed < 5


def test_environment_proxy_is_ignored(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, dead)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert fetch_page(site.url("/article"), LIMIT).url == site.url("/article")
