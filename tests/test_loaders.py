"""Reading files: encodings, binary and empty files, HTML main text."""

from pathlib import Path

import pytest

from rag.errors import CorpusError, RagError
from rag.ingest.loaders import find_files, html_to_text, load_document
from rag.ingest.splitting import split_document


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_utf8_text_is_read_as_is(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path / "a.txt", "Title\n\nCafé “quoted”.".encode()), "a.txt", 10**6)
    assert doc.text == "Title\n\nCafé “quoted”."
    assert doc.title == "Title"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])
def test_bom_encodings_are_decoded(tmp_path: Path, encoding: str) -> None:
    doc = load_document(write(tmp_path / "a.txt", "Résumé of the day.".encode(encoding)), "a.txt", 10**6)
    assert doc.text == "Résumé of the day."


def test_invalid_utf8_falls_back_without_losing_text(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path / "a.txt", "Caf\xe9 society met in 1990.".encode("latin-1")), "a.txt", 10**6)
    assert doc.text == "Café society met in 1990."


@pytest.mark.parametrize("data", [b"", b"   \n\n", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", bytes(range(256))])
def test_empty_and_binary_files_are_rejected_with_reason(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(CorpusError, match="a.txt: (empty|binary)"):
        load_document(write(tmp_path / "a.txt", data), "a.txt", 10**6)


def test_oversized_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="limit"):
        load_document(write(tmp_path / "a.txt", b"x" * 100), "a.txt", 50)


def test_html_keeps_article_text_and_drops_furniture() -> None:
    page = """<html><head><title>Big News</title><style>p{color:red}</style></head><body>
    <nav><a href="/">Home</a> | <a href="/world">World</a></nav>
    <article><h1>Big News</h1><p>The council met on <b>Monday</b>.</p><p>It voted 5&ndash;2.</p></article>
    <script>alert('x')</script><footer>© 2024 Paper</footer></body></html>"""
    text, title = html_to_text(page)
    assert title == "Big News"
    assert "The council met on Monday." in text and "It voted 5–2." in text
    assert "alert" not in text and "Home" not in text and "color" not in text and "©" not in text


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RagError, match="no such file"):
        list(find_files([tmp_path / "nope"]))


def test_find_files_yields_supported_files_relative_to_root(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ["a.txt", "sub/b.md", "c.html", "d.png", "e.pdf", "f.docx", "g.doc", ".hidden.txt"]:
        (tmp_path / name).write_text("Some text here.")
    sources = sorted(source for _, source in find_files([tmp_path]))
    assert sources == ["a.txt", "c.html", "e.pdf", "f.docx", "sub/b.md"]


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_every_line_ending_separates_paragraphs(tmp_path: Path, newline: str) -> None:
    raw = newline.join(["Council notes", "", "The council met on Monday.", "", "It voted five to two."])
    doc = load_document(write(tmp_path / "a.txt", raw.encode()), "a.txt", 10**6)
    assert doc.text == "Council notes\n\nThe council met on Monday.\n\nIt voted five to two."
    assert [s.text for s in split_document(doc)] == ["The council met on Monday.", "It voted five to two."]


def test_markdown_images_and_links_are_reduced_to_their_text(tmp_path: Path) -> None:
    raw = ("# Lanterns\n\nThe festival began in 1802.\r\r![pixel](http://host/pixel.png)\n\n"
           "See [the archive](http://host/login \"Log in\") and [![logo](l.png)](http://x) or [a note][1] at "
           "<https://example.org/a>.\n\n[1]: http://host/ref\n")
    doc = load_document(write(tmp_path / "a.md", raw.encode()), "a.md", 10**6)
    texts = [s.text for s in split_document(doc)]
    assert "http://host" not in doc.text and "](" not in doc.text and "![" not in doc.text
    assert texts[0] == "The festival began in 1802."
    assert "See the archive and logo or a note at https://example.org/a." in texts
    assert not any(t.endswith("!") for t in texts)
    assert doc.title == "Lanterns"


def test_plain_text_keeps_bracketed_text(tmp_path: Path) -> None:
    raw = "He said [sic] that ![this](x) stays as written in a .txt file."
    assert load_document(write(tmp_path / "a.txt", raw.encode()), "a.txt", 10**6).text == raw
