"""Read article files (.txt, .md, .html, .pdf, .docx) into text documents, with encoding detection and binary
detection."""

from __future__ import annotations

import bisect
import codecs
import hashlib
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from bs4 import BeautifulSoup

from rag.errors import CorpusError
from rag.ingest.formats import Extracted, docx_text, pdf_text

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".html", ".htm"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | {".pdf", ".docx"}
# Elements that are page furniture rather than article text.
_HTML_DROP = ["script", "style", "noscript", "nav", "header", "footer", "aside", "form", "iframe", "svg", "template"]
_HTML_BLOCKS = ["p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre", "figcaption", "td", "dt", "dd"]


@dataclass(frozen=True)
class Document:
    """One article: ``text`` is what sentence offsets point into (the decoded file, or the text extracted from
    HTML, PDF or DOCX); ``pages`` holds the offset where each PDF page starts (empty for other formats)."""

    source: str
    text: str
    title: str
    file_hash: str
    pages: tuple[int, ...] = ()
    url: str = ""  # where a page fetched by URL came from (after redirects); "" for files

    def page_at(self, offset: int) -> int | None:
        """The 1-based page holding ``offset``, or None for a document without pages."""
        return bisect.bisect_right(self.pages, offset) if self.pages else None


@dataclass(frozen=True)
class SkippedFile:
    """A file that was not ingested, and why."""

    path: str
    reason: str


def decode_bytes(raw: bytes) -> tuple[str, str | None]:
    """Decode file bytes; return the text and a warning when it was not UTF-8 and the encoding was detected."""
    for bom, encoding in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                          (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
                          (codecs.BOM_UTF8, "utf-8-sig")):
        if raw.startswith(bom):
            return raw.decode(encoding), None
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(raw).best()
    if best is not None:
        return str(best), f"not valid UTF-8; decoded as {best.encoding} (detected)"
    # latin-1 never fails, so nothing is lost.
    return raw.decode("latin-1"), "not valid UTF-8 and no encoding detected; decoded as latin-1"


def looks_binary(raw: bytes) -> bool:
    """True for bytes that are not text: NULs (outside UTF-16/32) or many control characters."""
    head = raw[:8192]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return False
    if b"\x00" in head:
        return True
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    return controls > max(4, len(head) // 100)


def html_to_text(markup: str) -> tuple[str, str]:
    """Return (main text, title) of an HTML page: furniture dropped, one paragraph per block."""
    soup = BeautifulSoup(markup, "lxml")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(_HTML_DROP):
        tag.decompose()
    root = soup.find("article") or soup.find("main") or soup.body or soup
    blocks = [" ".join(el.get_text().split()) for el in root.find_all(_HTML_BLOCKS)
              if not el.find(_HTML_BLOCKS)]
    blocks = [b for b in blocks if b]
    if not blocks:
        blocks = [" ".join(line.split()) for line in root.get_text("\n").splitlines() if line.strip()]
    if not title:
        heading = root.find(["h1", "h2"])
        title = heading.get_text(" ", strip=True) if heading else ""
    return "\n\n".join(blocks), title


# Images before links, so a linked image ("[![alt](img)](url)") becomes its alt text.
_MD_IMAGE = re.compile(r"!\[([^\]\n]*)\]\((?:[^()\n]|\([^()\n]*\))*\)")
_MD_LINK = re.compile(r"\[([^\]\n]+)\](?:\((?:[^()\n]|\([^()\n]*\))*\)|\[[^\]\n]*\])")
_MD_REFERENCE = re.compile(r"^ {0,3}\[[^\]\n]+\]:[ \t]*\S.*$", re.MULTILINE)
_MD_AUTOLINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")


def markdown_to_text(text: str) -> str:
    """Markdown images and links reduced to their text (alt text, link text), reference definitions dropped, so
    neither URLs nor "![…]" syntax become part of a cited sentence; headings and paragraphs stay as they are."""
    text = _MD_IMAGE.sub(lambda m: m.group(1), text)
    text = _MD_LINK.sub(lambda m: m.group(1), text)
    text = _MD_REFERENCE.sub("", text)
    return _MD_AUTOLINK.sub(lambda m: m.group(1), text)


def first_line_title(text: str) -> str:
    """The first line when it reads as a title (short, no closing full stop, or a Markdown heading), else ""."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            return stripped.lstrip("#").strip()[:200]
        if len(stripped) <= 150 and not stripped.endswith((".", "!", "?", ":", ";", ",")):
            return stripped
        return ""
    return ""


def load_document(path: Path, source: str, max_bytes: int) -> Document:
    """Read one article file; raises ``CorpusError`` with a reason when it cannot be used."""
    try:  # a file name that is not UTF-8 (Linux allows any bytes) cannot become a Chroma id
        source.encode("utf-8")
    except UnicodeEncodeError:
        printable = source.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
        raise CorpusError(f"{printable}: file name is not valid UTF-8; rename the file") from None
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise CorpusError(f"{source}: {size} bytes is over the {max_bytes}-byte limit (RAG_MAX_FILE_BYTES)")
        raw = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"{source}: cannot read ({exc.strerror or exc})") from exc
    if not raw.strip():
        raise CorpusError(f"{source}: empty file")
    extracted = extract_text(raw, source, path.suffix.lower())
    if not extracted.text.strip():
        raise CorpusError(f"{source}: no text found")
    return Document(source=source, text=extracted.text, title=extracted.title,
                    file_hash=hashlib.sha256(raw).hexdigest()[:32], pages=extracted.pages)


def extract_text(raw: bytes, source: str, suffix: str) -> Extracted:
    """The text of a document's bytes, by its suffix (``.pdf``, ``.docx``, HTML, Markdown, else plain text)."""
    if suffix in (".pdf", ".docx"):
        extracted = pdf_text(raw, source) if suffix == ".pdf" else docx_text(raw, source)
        return extracted if extracted.title else replace(extracted, title=first_line_title(extracted.text))
    if looks_binary(raw):
        raise CorpusError(f"{source}: binary file, not text")
    text, warning = decode_bytes(raw)
    if warning:
        log.warning("%s: %s", source, warning)
    # Universal newlines, as Python's text mode reads files: "\r\n\r\n" and "\r\r" are paragraph breaks too.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if suffix in {".html", ".htm"}:
        return Extracted(*html_to_text(text))
    if suffix in {".md", ".markdown"}:
        text = markdown_to_text(text)
    return Extracted(text, first_line_title(text))


def find_files(paths: Iterable[Path]) -> Iterator[tuple[Path, str]]:
    """Yield (file, source) for every supported file under the paths; sources are relative to each root."""
    for root in paths:
        if not root.exists():
            raise CorpusError(f"{root}: no such file or folder")
        if root.is_file():
            yield root, root.name
            continue
        seen: set[Path] = set()
        # followlinks=False: a symlink loop must not hang ingest.
        for file in sorted(root.rglob("*")):
            if file.suffix.lower() not in SUPPORTED_SUFFIXES or file.name.startswith("."):
                continue
            if file.is_symlink():
                log.warning("%s: symbolic link skipped", file)
                continue
            if not file.is_file():
                continue
            real = file.resolve()
            if real in seen:
                continue
            seen.add(real)
            yield file, file.relative_to(root).as_posix()
