"""Corpus changes from the web (the HTTP API and the UI's corpus tab alike): the admin-token check, safe file names,
adding a file or a page by URL, removing an article."""

from __future__ import annotations

import contextlib
import hmac
import os
import re
import tempfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from rag.errors import CorpusError
from rag.ingest.loaders import SUPPORTED_SUFFIXES, extract_text
from rag.ingest.web_pages import is_url
from rag.pipeline import Pipeline
from rag.records import IngestReport

UPLOAD_SUFFIXES = tuple(sorted(SUPPORTED_SUFFIXES))
_NAME = re.compile(r"^[\w][\w .()-]{0,150}$")


class AdminError(CorpusError):
    """A corpus change was refused: no token configured, a wrong token, or a bad file name."""


class UploadTooLargeError(AdminError):
    """An uploaded document is over ``RAG_MAX_FILE_BYTES``."""


def check_token(configured: str | None, given: str | None) -> None:
    """Raise ``AdminError`` unless an admin token is configured and ``given`` matches it (constant time)."""
    if not configured:
        raise AdminError("the corpus is read-only: set RAG_ADMIN_TOKEN to allow changes")
    if not given or not hmac.compare_digest(configured.encode(), given.strip().encode()):
        raise AdminError("wrong admin token")


def safe_article_name(name: str, default_suffix: str = ".txt") -> str:
    """A plain file name for the corpus folder; rejects paths, traversal and unsupported types."""
    name = (name or "").strip()
    if not name:
        raise AdminError("the article needs a file name")
    if ("/" in name or "\\" in name or name.startswith(".") or ".." in name
            or PurePosixPath(name).is_absolute() or PureWindowsPath(name).drive):
        raise AdminError(f"{name!r}: a plain file name is required (no folders, no '..')")
    if not _NAME.match(name):
        raise AdminError(f"{name!r}: use letters, digits, spaces, '.', '-', '_' and '()' only")
    suffix = PurePosixPath(name).suffix.lower()
    if not suffix:
        name += default_suffix
    elif suffix not in SUPPORTED_SUFFIXES:
        raise AdminError(f"{name!r}: only {', '.join(UPLOAD_SUFFIXES)} files are accepted")
    return name


def check_size(name: str, data: bytes, max_bytes: int) -> None:
    """``UploadTooLargeError`` when an uploaded article is over ``RAG_MAX_FILE_BYTES``."""
    if len(data) > max_bytes:
        raise UploadTooLargeError(f"{name}: {len(data)} bytes is over the {max_bytes}-byte limit "
                                  "(RAG_MAX_FILE_BYTES)")


def _inside(folder: Path, name: str) -> Path:
    """``folder/name``, refusing anything that would resolve outside ``folder`` (e.g. through a symlink)."""
    root = folder.resolve()
    target = (root / name).resolve()
    if target.parent != root:
        raise AdminError(f"{name!r} would be written outside the corpus folder")
    return target


def save_article(corpus_dir: Path, name: str, data: bytes, max_bytes: int) -> Path:
    """Write one article into the corpus folder atomically and return its path."""
    if not data.strip():
        raise AdminError(f"{name}: the article is empty")
    check_size(name, data, max_bytes)
    corpus_dir.mkdir(parents=True, exist_ok=True)
    target = _inside(corpus_dir, safe_article_name(name))
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, target)
    return target


def remove_article(corpus_dir: Path, source: str) -> None:
    """Delete an article's file from the corpus folder (sources are paths relative to it)."""
    root = corpus_dir.resolve()
    target = (root / source).resolve()
    if root not in target.parents:
        raise AdminError(f"{source!r} is not inside the corpus folder")
    if not target.is_file():
        raise AdminError(f"{source!r} is not a file in the corpus folder {corpus_dir}")
    target.unlink()


def add_file(pipeline: Pipeline, name: str, data: bytes) -> IngestReport:
    """Save one uploaded document into the corpus folder and index it (that article only). The document is read
    before it is saved, so one that cannot be read never enters the folder: ``CorpusError`` says why."""
    settings = pipeline.settings
    check_size(name, data, settings.max_file_bytes)  # before reading it: a large PDF takes a while to parse
    name = safe_article_name(name)
    extract_text(data, name, PurePosixPath(name).suffix.lower())
    path = save_article(settings.corpus_dir, name, data, settings.max_file_bytes)
    return _ingest_one(pipeline, str(path))


def add_url(pipeline: Pipeline, url: str) -> IngestReport:
    """Fetch and index one web page, PDF or DOCX by its http(s) URL."""
    if not is_url(url):
        raise AdminError(f"{url!r}: a URL must start with http:// or https://")
    return _ingest_one(pipeline, url)


def _ingest_one(pipeline: Pipeline, target: str) -> IngestReport:
    # One article, not the folder: prune=False leaves every other article as it is.
    report = pipeline.ingest([target], prune=False)
    if report.skipped and not (report.added or report.updated or report.unchanged):
        raise CorpusError("; ".join(report.skipped))
    return report


def remove_document(pipeline: Pipeline, source: str) -> IngestReport:
    """Remove an article from the index, and its file from the corpus folder when it has one there (else a later
    folder sync would add it back). ``LookupError`` when no article has that name."""
    doc = pipeline.store.document(source)
    if doc is None:
        raise LookupError(f"no indexed source named {source!r}")
    if not doc.url:
        with contextlib.suppress(AdminError):  # ingested from another folder: only the index holds it
            remove_article(pipeline.settings.corpus_dir, source)
    return pipeline.remove([source])


def list_articles(pipeline: Pipeline) -> list[tuple[str, str, int]]:
    """(source, title, sentence count) of every indexed article, by source."""
    docs = pipeline.store.indexed_documents()
    return [(source, doc.title, doc.sentences) for source, doc in sorted(docs.items())]
