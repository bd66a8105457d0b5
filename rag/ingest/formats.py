"""Text out of binary document formats: PDF (its text layer, page by page) and DOCX (paragraphs, headings, tables).

Both return the text that sentence offsets will index, so ``text[start:end]`` of a citation is exactly what
``GET /api/sources/{source}`` serves. Hostile files are refused with a reason instead of exhausting memory or time.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from dataclasses import dataclass

from rag.errors import CorpusError

log = logging.getLogger(__name__)

# An uncompressed DOCX part this many times the compressed file, or past this size, is a zip bomb, not a document.
_MAX_ZIP_RATIO = 100
_MAX_UNZIPPED_BYTES = 200 * 1024 * 1024
# "exam-\nple" is one word broken at a line end; "well-\nknown" loses its hyphen too, a small price for prose.
_CLOSING = (".", "!", "?", ":", "”", '"', "’", "'", ")")
_HYPHEN_BREAK = re.compile(r"(\w)-\n(\w)")


@dataclass(frozen=True)
class Extracted:
    """A document's text, its title ("" when it has none) and the offset in ``text`` where each page starts."""

    text: str
    title: str
    pages: tuple[int, ...] = ()


def _pdf_page_text(raw: str) -> str:
    """One page's extracted lines joined into paragraphs. PDF lines break wherever the column ends, not where
    sentences do, and a paragraph break is rarely a blank line: a line ends its paragraph when it is blank or
    clearly shorter than the page's longest line, and a heading (short, no closing punctuation, after a line that
    could end a paragraph) stands alone."""
    text = _HYPHEN_BREAK.sub(r"\1-\2", raw.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [" ".join(line.split()) for line in text.split("\n")]
    width = max((len(line) for line in lines), default=0)
    paragraphs: list[list[str]] = [[]]
    for line in lines:
        short = len(line) < 0.75 * width
        closed = line.endswith(_CLOSING)
        heading = short and not closed and len(line) < 80
        if heading and paragraphs[-1] and paragraphs[-1][-1].endswith(_CLOSING):
            paragraphs.append([])
        if line:
            paragraphs[-1].append(line)
        if not line or (short and (closed or heading)):
            paragraphs.append([])
    return "\n\n".join(" ".join(p) for p in paragraphs if p)


def pdf_text(raw: bytes, source: str) -> Extracted:
    """The text layer of a PDF, pages separated by a blank line, with each page's start offset."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):  # many "protected" PDFs open with an empty password
            raise CorpusError(f"{source}: encrypted PDF; save an unprotected copy to ingest it")
        texts = [_pdf_page_text(page.extract_text() or "") for page in reader.pages]
        title = str(reader.metadata.get("/Title") or "").strip() if reader.metadata else ""
    except CorpusError:
        raise
    except (PdfReadError, DependencyError, ValueError, KeyError, TypeError, RecursionError, NotImplementedError
            ) as exc:
        raise CorpusError(f"{source}: not a readable PDF ({type(exc).__name__}: {exc})") from None
    if not any(texts):
        raise CorpusError(f"{source}: the PDF has no text layer (a scan?); run OCR on it first")
    # Pages are paragraphs apart, except where a sentence runs on to the next page (no closing punctuation, and the
    # next page starts in lower case): there they join with a space, so the sentence stays whole.
    joined, pages = "", []
    for text in texts:
        if joined and text:
            runs_on = not joined.endswith(_CLOSING) and text[:1].islower()
            joined += " " if runs_on else "\n\n"
        pages.append(len(joined))
        joined += text
    return Extracted(joined, title[:200], tuple(pages))


def _check_zip(raw: bytes, source: str) -> None:
    """Refuse an archive whose parts would unpack to far more than the file itself."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError) as exc:
        raise CorpusError(f"{source}: not a valid DOCX file ({exc})") from None
    if unpacked > _MAX_UNZIPPED_BYTES or unpacked > _MAX_ZIP_RATIO * max(len(raw), 1024 * 1024):
        raise CorpusError(f"{source}: the DOCX would unpack to {unpacked} bytes from {len(raw)}; refused as a zip "
                          "bomb")


def docx_text(raw: bytes, source: str) -> Extracted:
    """A Word document's paragraphs and table cells in document order, one paragraph per block; the title is the
    core property's, else the first Title or Heading 1 paragraph."""
    _check_zip(raw, source)
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(raw))
        blocks: list[str] = []
        heading = ""
        for item in document.iter_inner_content():
            if isinstance(item, Paragraph):
                text = " ".join(item.text.split())
                style = item.style.name if item.style is not None else ""
                if text and not heading and style in ("Title", "Heading 1"):
                    heading = text
                blocks.append(text)
            elif isinstance(item, Table):
                for row in item.rows:
                    # A merged cell is repeated once per grid column it spans; its text counts once.
                    cells = [" ".join(cell.text.split()) for cell in row.cells]
                    blocks += [c for i, c in enumerate(cells) if i == 0 or c != cells[i - 1]]
        title = (document.core_properties.title or "").strip() or heading
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise CorpusError(f"{source}: not a readable DOCX file ({type(exc).__name__}: {exc})") from None
    text = "\n\n".join(b for b in blocks if b)
    if not text:
        raise CorpusError(f"{source}: no text found")
    return Extracted(text, title[:200])
