"""PDF and DOCX documents, and legacy encodings: text, offsets and pages come through; hostile files are refused
with a reason while the rest of the ingest goes on. Every fixture is built here."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import docx
import pytest
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter

from rag import Pipeline
from rag.errors import CorpusError
from rag.ingest.loaders import load_document
from rag.ingest.splitting import split_document
from tests.conftest import make_settings

PAGE_ONE = ("The harbour of Varnel opened in 1874. Its first harbour master was Ilse Brandt, who served for "
            "thirty years and wrote the port's rules of navigation that are still in use today.")
PAGE_TWO = "The lighthouse was built in 1902 by the engineer Tomas Reel. It stands 41 metres tall."


def make_pdf(pages: list[str], title: str | None = None) -> bytes:
    pdf = FPDF()
    pdf.core_fonts_encoding = "windows-1252"  # PDF's WinAnsiEncoding: curly quotes and dashes survive
    pdf.set_font("helvetica", size=11)
    if title:
        pdf.set_title(title)
    for text in pages:
        pdf.add_page()
        for para in text.split("\n\n"):
            pdf.multi_cell(0, 6, para)
            pdf.ln(4)
    return bytes(pdf.output())


def make_docx(title: str, paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    document = docx.Document()
    document.add_heading(title, 1)
    for para in paragraphs:
        document.add_paragraph(para)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_pdf_text_offsets_and_pages(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path / "port.pdf", make_pdf([PAGE_ONE, PAGE_TWO], "Port of Varnel")),
                        "port.pdf", 10**7)
    assert doc.title == "Port of Varnel"
    sentences = split_document(doc)
    assert [s.text for s in sentences] == [
        "The harbour of Varnel opened in 1874.",
        "Its first harbour master was Ilse Brandt, who served for thirty years and wrote the port's rules of "
        "navigation that are still in use today.",  # wrapped over two PDF lines, joined back into one sentence
        "The lighthouse was built in 1902 by the engineer Tomas Reel.", "It stands 41 metres tall."]
    assert all(doc.text[s.start:s.end] == s.text for s in sentences)
    assert [s.page for s in sentences] == [1, 1, 2, 2]


def test_docx_paragraphs_heading_and_table(tmp_path: Path) -> None:
    data = make_docx("Port of Varnel", [PAGE_ONE, "“Quoted” text – with dashes survives."],
                     [["Year", "Event"], ["1902", "The lighthouse was lit."]])
    doc = load_document(write(tmp_path / "port.docx", data), "port.docx", 10**7)
    assert doc.title == "Port of Varnel"
    assert doc.text.split("\n\n") == ["Port of Varnel", PAGE_ONE, "“Quoted” text – with dashes survives.", "Year",
                                      "Event", "1902", "The lighthouse was lit."]
    sentences = split_document(doc)
    assert all(doc.text[s.start:s.end] == s.text and s.page is None for s in sentences)
    assert "The lighthouse was lit." in [s.text for s in sentences]


@pytest.mark.parametrize(("encoding", "text"), [
    ("cp1251", "Гавань Варнела открылась в 1874 году. Её первым начальником порта была Ильза Брандт, которая "
               "прослужила тридцать лет."),
    ("shift_jis", "ヴァルネル港は一八七四年に開港しました。最初の港長はイルゼ・ブラントで、三十年間勤めました。"
                  "灯台は一九〇二年に技師トマス・リールによって建てられました。"),
])
def test_legacy_encodings_are_detected(tmp_path: Path, encoding: str, text: str, caplog: pytest.LogCaptureFixture
                                       ) -> None:
    with caplog.at_level("WARNING"):
        doc = load_document(write(tmp_path / "a.txt", text.encode(encoding)), "a.txt", 10**6)
    assert doc.text == text
    assert "not valid UTF-8; decoded as" in caplog.text


def test_scanned_encrypted_and_broken_pdfs_are_refused_with_reasons(tmp_path: Path) -> None:
    scan = FPDF()
    scan.add_page()
    scan.rect(20, 20, 100, 60, style="F")  # a page with a picture and no text layer
    with pytest.raises(CorpusError, match="scan.pdf: the PDF has no text layer"):
        load_document(write(tmp_path / "scan.pdf", bytes(scan.output())), "scan.pdf", 10**7)

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf([PAGE_ONE]))))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-128")
    locked = io.BytesIO()
    writer.write(locked)
    with pytest.raises(CorpusError, match="locked.pdf: encrypted PDF"):
        load_document(write(tmp_path / "locked.pdf", locked.getvalue()), "locked.pdf", 10**7)

    # Encrypted with an empty user password (a "protected" PDF that every viewer opens): read.
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf([PAGE_ONE]))))
    writer.encrypt(user_password="", owner_password="owner", algorithm="AES-128")
    opened = io.BytesIO()
    writer.write(opened)
    assert "Ilse Brandt" in load_document(write(tmp_path / "open.pdf", opened.getvalue()), "open.pdf", 10**7).text

    with pytest.raises(CorpusError, match="cut.pdf: not a readable PDF"):
        load_document(write(tmp_path / "cut.pdf", b"%PDF-1.7\n1 0 obj <</Type /Catalog"), "cut.pdf", 10**7)


def test_docx_zip_bomb_and_non_zip_are_refused_fast(tmp_path: Path) -> None:
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"\0" * (300 * 1024 * 1024))
    assert len(bomb.getvalue()) < 1024 * 1024
    started = time.monotonic()
    with pytest.raises(CorpusError, match="bomb.docx: the DOCX would unpack to 314572808 bytes"):
        load_document(write(tmp_path / "bomb.docx", bomb.getvalue()), "bomb.docx", 10**7)
    assert time.monotonic() - started < 2
    with pytest.raises(CorpusError, match="fake.docx: not a valid DOCX"):
        load_document(write(tmp_path / "fake.docx", b"plain text pretending"), "fake.docx", 10**7)


@pytest.mark.slow
def test_ingest_goes_on_past_bad_documents_and_cites_pages(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write(corpus / "port.pdf", make_pdf([PAGE_ONE, PAGE_TWO], "Port of Varnel"))
    write(corpus / "museum.docx", make_docx("Museum", ["The museum keeps the first lamp of the lighthouse."]))
    write(corpus / "scan.pdf", b"%PDF-1.4\n%%EOF\n")
    write(corpus / "bad.docx", b"PK\x03\x04 not really")
    pipeline = Pipeline(make_settings(tmp_path / "ix"))
    report = pipeline.ingest([corpus])
    assert set(pipeline.store.indexed_documents()) == {"port.pdf", "museum.docx"}
    assert sorted(r.split(":")[0] for r in report.skipped) == ["bad.docx", "scan.pdf"]
    answer = pipeline.ask("Who built the lighthouse?")
    top = answer.citations[0]
    assert (top.source, top.page) == ("port.pdf", 2)
    assert "Tomas Reel" in top.text
    stored = pipeline.store.document("port.pdf")
    assert stored is not None and stored.text[top.start:top.end] == top.text
