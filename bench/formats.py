"""Document formats: ingest throughput of the same articles as .txt, .pdf, .docx and web pages by URL (extraction
overhead as a ratio to plain text), and whether the seed article gives the same citations in every format.

Run: ``.venv/bin/python -m bench.formats [--squad FILE] [--out bench/results/formats.json]`` (needs the test
extra: fpdf2 builds the PDFs).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import html
import http.server
import io
import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docx
from fpdf import FPDF

from rag import Pipeline, Settings
from rag.ingest.loaders import load_document
from rag.ingest.web_pages import load_url

ROOT = Path(__file__).resolve().parents[1]
SLICE = ROOT / "tests" / "data" / "squad-v1.1-slice.json"
SEED = ROOT / "tests" / "data" / "seed_questions.jsonl"
FORMATS = ("txt", "pdf", "docx", "url")


def pdf_bytes(title: str, paragraphs: list[str]) -> bytes:
    pdf = FPDF()
    pdf.core_fonts_encoding = "windows-1252"
    pdf.set_font("helvetica", size=11)
    pdf.set_title(title)
    pdf.add_page()
    for para in [title, *paragraphs]:
        # The core fonts speak Windows-1252 only: other characters become "?" in every format alike.
        pdf.multi_cell(0, 6, para.encode("cp1252", "replace").decode("cp1252"))
        pdf.ln(4)
    return bytes(pdf.output())


def docx_bytes(title: str, paragraphs: list[str]) -> bytes:
    document = docx.Document()
    document.add_heading(title, 1)
    for para in paragraphs:
        document.add_paragraph(para.encode("cp1252", "replace").decode("cp1252"))
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def html_text(title: str, paragraphs: list[str]) -> str:
    body = "".join(f"<p>{html.escape(p.encode('cp1252', 'replace').decode('cp1252'))}</p>\n" for p in paragraphs)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body>"
            f"<nav>Home | About</nav><article><h1>{html.escape(title)}</h1>{body}</article>"
            "<footer>Footer text</footer></body></html>")


def write_corpus(articles: list[tuple[str, list[str]]], folder: Path) -> dict[str, Path]:
    """The articles in every format; one folder per format (the "url" one is served over HTTP)."""
    out = {}
    for fmt in FORMATS:
        target = folder / fmt
        target.mkdir(parents=True, exist_ok=True)
        for i, (title, paragraphs) in enumerate(articles):
            name = f"a{i:02d}"
            if fmt == "txt":
                text = "\n\n".join([title, *paragraphs]).encode("cp1252", "replace").decode("cp1252")
                (target / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
            elif fmt == "pdf":
                (target / f"{name}.pdf").write_bytes(pdf_bytes(title, paragraphs))
            elif fmt == "docx":
                (target / f"{name}.docx").write_bytes(docx_bytes(title, paragraphs))
            else:
                (target / f"{name}.html").write_text(html_text(title, paragraphs), encoding="utf-8")
        out[fmt] = target
    return out


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *_: object) -> None:
        pass


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


def ingest(fmt: str, folder: Path, index: Path) -> tuple[Pipeline, dict[str, float]]:
    """A fresh index of one format's corpus: the whole ingest's seconds, the extraction's alone (reading every
    document into text, best of three), articles and sentences."""
    pipeline = Pipeline(Settings(index_dir=index, collection=f"formats-{fmt}", corpus_dir=folder, chroma_url=None))
    # Both graphs load before the clock starts: the question graph and the bulk one ingest uses.
    pipeline.embedder.encode_queries(["warm up"])
    pipeline.embedder.embed_documents(["warm up"])
    with serve(folder) as site:
        files = sorted(folder.iterdir())
        targets: list[str | Path] = [f"{site}/{p.name}" for p in files] if fmt == "url" else [folder]
        extract = []
        for _ in range(3):
            started = time.perf_counter()
            for path in files:
                if fmt == "url":
                    load_url(f"{site}/{path.name}", 10**8)
                else:
                    load_document(path, path.name, 10**8)
            extract.append(time.perf_counter() - started)
        started = time.perf_counter()
        report = pipeline.ingest(targets)
        seconds = time.perf_counter() - started
    return pipeline, {"seconds": round(seconds, 2), "extract_seconds": round(min(extract), 3),
                      "articles": report.added, "sentences": report.total_sentences, "skipped": len(report.skipped)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--squad", type=Path, default=SLICE, help="SQuAD v1.1 file whose articles are rendered")
    parser.add_argument("--work", type=Path, default=Path("/tmp/citechat-formats"))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "formats.json")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    squad = json.loads(args.squad.read_text(encoding="utf-8"))["data"]
    articles = [(a["title"].replace("_", " "), [p["context"] for p in a["paragraphs"]]) for a in squad]
    folders = write_corpus(articles, args.work / "squad")
    throughput = {}
    for fmt in FORMATS:
        _, row = ingest(fmt, folders[fmt], args.work / "index" / fmt)
        throughput[fmt] = row
        print(fmt, row, flush=True)
    for row in throughput.values():
        row["ratio_to_txt"] = round(row["seconds"] / throughput["txt"]["seconds"], 2)
        row["extract_ratio_to_txt"] = round(row["extract_seconds"] / throughput["txt"]["extract_seconds"], 1)

    seed_file = next((ROOT / "corpus").glob("*.txt"))
    seed_text = seed_file.read_text(encoding="utf-8")
    blocks = [b.strip() for b in seed_text.split("\n\n") if b.strip()]
    seed_folders = write_corpus([(blocks[0], blocks[1:])], args.work / "seed")
    questions = [json.loads(line)["question"] for line in SEED.read_text(encoding="utf-8").splitlines()]
    cited: dict[str, list[list[str]]] = {}
    for fmt in FORMATS:
        pipeline, _ = ingest(fmt, seed_folders[fmt], args.work / "seed-index" / fmt)
        cited[fmt] = [[" ".join(c.text.split()) for c in pipeline.ask(q).citations] for q in questions]
    same = {fmt: {"top_citation": sum(a[:1] == b[:1] for a, b in zip(cited["txt"], cited[fmt], strict=True)),
                  "all_citations": sum(a == b for a, b in zip(cited["txt"], cited[fmt], strict=True)),
                  "questions": len(questions)} for fmt in FORMATS if fmt != "txt"}
    result = {"squad_file": str(args.squad), "throughput": throughput, "seed_same_as_txt": same}
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
