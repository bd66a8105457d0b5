"""Fetch a web page by URL for ingestion (bounded in size and time, http/https only), and find its main text."""

from __future__ import annotations

import codecs
import hashlib
import threading
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from urllib.parse import urljoin, urlsplit

import httpx
from charset_normalizer import from_bytes

from rag.errors import CorpusError
from rag.ingest.loaders import Document, extract_text, first_line_title, html_to_text, looks_binary

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# Returned as bytes for a document loader to read; page_text does not read them.
_DOCUMENT_TYPES = frozenset({"application/pdf",
                             "application/vnd.openxmlformats-officedocument.wordprocessingml.document"})
# Text outside text/* (with */*+xml and */*+json); any other type outside text/* is taken to be binary.
_TEXT_APPLICATION_TYPES = frozenset({"application/json", "application/xml", "application/javascript",
                                      "application/yaml", "application/x-yaml", "application/toml"})
_BINARY_MAJOR_TYPES = ("image/", "audio/", "video/", "font/", "model/")
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# The worker's own checks fire at the deadline; this is only how long the caller waits for it to say so.
_JOIN_GRACE_S = 0.25
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _user_agent() -> str:
    try:
        return f"citechat/{version('citechat')}"
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "citechat"


@dataclass(frozen=True)
class FetchedPage:
    """A fetched page's body, as the server sent it (no decoding), with where it finally came from."""

    url: str  # the final URL after redirects
    raw: bytes  # the body bytes
    content_type: str  # media type, lower case, without parameters, e.g. "text/html"
    charset: str | None  # charset parameter of Content-Type, if any


def fetch_page(url: str, max_bytes: int, timeout_s: float = 20.0, max_redirects: int = 5) -> FetchedPage:
    """GET ``url`` (http or https only, on every redirect hop too) and return its body; raises ``CorpusError``
    naming the URL when it cannot be used: bad scheme, too many redirects, connection failure, timeout, HTTP
    status >= 400, a body over ``max_bytes``, or a binary type other than PDF and DOCX.

    The whole fetch, DNS and redirects included, takes at most about ``timeout_s``: it runs in a worker thread
    that the caller stops waiting for at the deadline, because socket timeouts bound each read, not the sum of
    them (a server can send one header byte a second, forever)."""
    if max_bytes < 1 or timeout_s <= 0 or max_redirects < 0:
        raise ValueError("max_bytes and timeout_s must be positive and max_redirects not negative")
    _check_scheme(url, url)
    deadline = time.monotonic() + timeout_s
    client = httpx.Client(
        # trust_env=False: no proxies, certificates or .netrc credentials from the environment.
        trust_env=False, follow_redirects=False, timeout=timeout_s,
        # Only encodings whose expansion per network chunk is bounded (deflate: about 1000x); httpx would
        # otherwise offer br and zstd, where one small chunk can decode to gigabytes past the max_bytes check.
        headers={"User-Agent": _user_agent(), "Accept-Encoding": "gzip, deflate"},
    )
    outcome: list[FetchedPage | Exception] = []

    def work() -> None:
        try:
            with client:
                outcome.append(_fetch(client, url, max_bytes, deadline, timeout_s, max_redirects))
        except Exception as exc:  # handed to the caller's thread, which raises it
            outcome.append(exc)

    worker = threading.Thread(target=work, name="fetch_page", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()) + _JOIN_GRACE_S)
    if not outcome:
        # Closing the client closes its socket, so the worker fails at its next read instead of running on.
        client.close()
        raise CorpusError(f"{url}: timed out after {timeout_s:g} s")
    result = outcome[0]
    if isinstance(result, Exception):
        raise result
    return result


def _fetch(client: httpx.Client, url: str, max_bytes: int, deadline: float, timeout_s: float,
           max_redirects: int) -> FetchedPage:
    current = url
    visited = [url]
    for _ in range(max_redirects + 1):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CorpusError(f"{url}: timed out after {timeout_s:g} s")
        try:
            # Each socket operation may take at most what is left of the whole fetch.
            request = client.build_request("GET", current, timeout=httpx.Timeout(remaining))
            response = client.send(request, stream=True)
            try:
                location = _redirect_location(url, response)
                if location is None:
                    return _read_page(url, response, max_bytes, deadline, timeout_s)
            finally:
                response.close()
        except httpx.TimeoutException:
            raise CorpusError(f"{url}: timed out after {timeout_s:g} s") from None
        except httpx.ConnectError as exc:
            raise CorpusError(f"{url}: could not connect to {_host(current)} ({exc})") from exc
        except httpx.TransportError as exc:
            raise CorpusError(f"{url}: the connection to {_host(current)} failed ({exc})") from exc
        except httpx.DecodingError as exc:
            raise CorpusError(f"{url}: the compressed body could not be decoded ({exc})") from exc
        except httpx.InvalidURL as exc:
            raise CorpusError(f"{url}: not a valid URL: {current} ({exc})") from exc
        _check_scheme(url, location)
        visited.append(location)
        current = location
    # A repeat alone is no loop (a site may set a cookie and redirect to itself), so it only names the failure.
    if len(set(visited)) < len(visited):
        raise CorpusError(f"{url}: redirect loop (more than {max_redirects} redirects, through {current})")
    raise CorpusError(f"{url}: more than {max_redirects} redirects (the last went to {current})")


def _redirect_location(url: str, response: httpx.Response) -> str | None:
    """The absolute URL a redirect response points to; None when the response is the page itself."""
    status = response.status_code
    if status >= 400:
        reason = f" {response.reason_phrase}" if response.reason_phrase else ""
        raise CorpusError(f"{url}: the server answered HTTP {status}{reason} for {response.url}")
    if 300 <= status < 400:
        location = response.headers.get("location", "").strip()
        if status not in _REDIRECT_STATUSES or not location:
            raise CorpusError(f"{url}: HTTP {status} from {response.url} is not a redirect that can be followed")
        return urljoin(str(response.url), location)
    return None


def _read_page(url: str, response: httpx.Response, max_bytes: int, deadline: float,
               timeout_s: float) -> FetchedPage:
    content_type, charset = _parse_content_type(response.headers.get("content-type", ""))
    if content_type:
        _check_type(url, content_type)
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise CorpusError(f"{url}: {int(length)} bytes is over the {max_bytes}-byte limit")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise CorpusError(f"{url}: the body is over the {max_bytes}-byte limit")
        if time.monotonic() > deadline:  # a server sending a byte at a time never trips the read timeout
            raise CorpusError(f"{url}: timed out after {timeout_s:g} s")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not content_type:
        content_type = _sniff_type(url, raw)
    return FetchedPage(url=str(response.url), raw=raw, content_type=content_type, charset=charset)


def _check_scheme(url: str, target: str) -> None:
    parts = urlsplit(target)
    scheme = parts.scheme.lower()
    where = "" if target == url else f"redirected to {target}, but "
    if scheme not in ("http", "https"):
        shown = f"'{scheme}'" if scheme else "no scheme"
        raise CorpusError(f"{url}: {where}only http and https URLs can be fetched, not {shown}")
    if not parts.hostname:
        raise CorpusError(f"{url}: {where}the URL has no host")


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


def _parse_content_type(header: str) -> tuple[str, str | None]:
    """(media type in lower case, charset or None) from a Content-Type header."""
    media, *params = header.split(";")
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return media.strip().lower(), charset


def _is_text_type(content_type: str) -> bool:
    """True for a media type whose body is text (HTML included)."""
    return (content_type.startswith("text/") or content_type in _HTML_TYPES or content_type in _TEXT_APPLICATION_TYPES
            or content_type.endswith(("+xml", "+json")))


def _check_type(url: str, content_type: str) -> None:
    if content_type.startswith(_BINARY_MAJOR_TYPES):  # before the +xml rule: image/svg+xml is not an article
        raise CorpusError(f"{url}: {content_type} is not supported; only web pages, text, PDF and DOCX are")
    if _is_text_type(content_type) or content_type in _DOCUMENT_TYPES:
        return
    raise CorpusError(f"{url}: {content_type} is not supported; only web pages, text, PDF and DOCX are")


def _sniff_type(url: str, raw: bytes) -> str:
    """The type of a body sent without Content-Type: HTML when it starts like HTML, else text unless binary."""
    head = raw[:1024].lower()
    if b"<!doctype html" in head or b"<html" in head or b"<body" in head:
        return "text/html"
    if looks_binary(raw):
        raise CorpusError(f"{url}: no Content-Type, and the body is binary")
    return "text/plain"


def _decode(page: FetchedPage) -> str:
    """The page's bytes as text: a BOM, else the header's charset when it names a codec that decodes the bytes,
    else charset-normalizer's guess (which reads a <meta> or XML declaration first and checks it)."""
    raw = page.raw
    # A BOM outranks the header, as in browsers: latin-1 never fails, so a UTF-8 file served as latin-1 would
    # otherwise come out as mojibake.
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            return raw.decode(encoding, errors="replace")
    if page.charset:
        try:
            return raw.decode(page.charset)
        except (LookupError, UnicodeDecodeError):
            pass  # an unknown name, or a server that says UTF-8 about a cp1251 file
    best = from_bytes(raw).best()
    if best is not None:
        return str(best)
    return raw.decode("utf-8", errors="replace")


def page_text(page: FetchedPage) -> tuple[str, str]:
    """(main text, title) of a fetched HTML page: trafilatura's main-text extraction (paragraphs separated by a
    blank line, no comments/tables noise), falling back to rag.ingest.loaders.html_to_text (BeautifulSoup) when
    trafilatura finds nothing. Plain-text pages (text/plain, text/markdown) are returned decoded as they are
    (title ''). Decode bytes with the charset from the header when given and valid, else charset-normalizer
    (`from charset_normalizer import from_bytes`); see _decode for the order. PDF and DOCX pages raise
    ``CorpusError``: their bytes are for a document loader."""
    if not _is_text_type(page.content_type):
        raise CorpusError(f"{page.url}: {page.content_type} is not a web page or text; read it as a document")
    text = _decode(page)
    if page.content_type not in _HTML_TYPES:
        return text, ""
    import trafilatura  # on first use: it imports a large set of modules

    extracted = trafilatura.bare_extraction(text, url=page.url, include_comments=False, include_tables=False,
                                            with_metadata=True)
    main = getattr(extracted, "text", None) or ""
    title = getattr(extracted, "title", None) or ""
    # trafilatura writes one paragraph per line; the corpus separates paragraphs by a blank line.
    paragraphs = [" ".join(line.split()) for line in main.splitlines() if line.strip()]
    if not paragraphs:
        return html_to_text(text)
    if not title:
        title = html_to_text(text)[1]
    return "\n\n".join(paragraphs), title


def is_url(target: str) -> bool:
    """True for what ``rag ingest`` reads as a web address rather than a path."""
    return target.lower().startswith(("http://", "https://"))


def web_source(url: str) -> str:
    """The source name of a page: host and path (and query), without the scheme or a fragment, so the same page
    keeps one source when it is ingested again."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    return f"{parts.netloc.lower()}{path}" + (f"?{parts.query}" if parts.query else "")


# A document served by URL is read by the same extractors as a file with this suffix.
_SUFFIX_OF_TYPE = {"application/pdf": ".pdf",
                   "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx"}


def load_url(url: str, max_bytes: int, timeout_s: float = 20.0) -> Document:
    """Fetch ``url`` and read it as a document: a web page's main text, a text file, or a PDF or DOCX."""
    page = fetch_page(url, max_bytes, timeout_s)
    source = web_source(url)
    suffix = _SUFFIX_OF_TYPE.get(page.content_type)
    if suffix:
        extracted = extract_text(page.raw, source, suffix)
        text, title, pages = extracted.text, extracted.title, extracted.pages
    else:
        text, title = page_text(page)
        text, pages = text.replace("\r\n", "\n").replace("\r", "\n"), ()
        title = title or first_line_title(text)
    if not text.strip():
        raise CorpusError(f"{url}: no text found")
    return Document(source=source, text=text, title=title, file_hash=hashlib.sha256(page.raw).hexdigest()[:32],
                    pages=pages, url=page.url)
