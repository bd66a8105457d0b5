"""Corpus changes from the web UI: the admin-token check, safe file names, saving and removing articles."""

from __future__ import annotations

import hmac
import os
import re
import tempfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from rag.errors import CorpusError
from rag.ingest.loaders import SUPPORTED_SUFFIXES
from rag.pipeline import Pipeline
from rag.records import IngestReport

UPLOAD_SUFFIXES = tuple(sorted(SUPPORTED_SUFFIXES))
_NAME = re.compile(r"^[\w][\w .()-]{0,150}$")


class AdminError(CorpusError):
    """A corpus change was refused: no token configured, a wrong token, or a bad file name."""


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
    if len(data) > max_bytes:
        raise AdminError(f"{name}: {len(data)} bytes is over the {max_bytes}-byte limit (RAG_MAX_FILE_BYTES)")
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


def resync(pipeline: Pipeline) -> IngestReport:
    """Bring the index in line with the corpus folder after a change."""
    return pipeline.ingest([pipeline.settings.corpus_dir])


def list_articles(pipeline: Pipeline) -> list[tuple[str, str, int]]:
    """(source, title, sentence count) of every indexed article, by source."""
    docs = pipeline.store.indexed_documents()
    return [(source, doc.title, doc.sentences) for source, doc in sorted(docs.items())]
