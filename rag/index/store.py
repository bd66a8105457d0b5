"""Chroma, embedded or server: the single source of truth for sentences, their vectors and the manifest."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.config import Settings
from rag.errors import IndexMismatchError, RagError
from rag.records import Sentence

if TYPE_CHECKING:
    import chromadb

log = logging.getLogger(__name__)
_PAGE = 5000
_GENERATION_KEY = "generation"
# Every sentence collection carries this: vectors of another model, size or layout must never be mixed in.
STAMP: dict[str, str | int] = {"embedding_model": "sentence-transformers/all-MiniLM-L6-v2", "dimension": 384,
                               "schema": 1}


@dataclass(frozen=True)
class IndexedDocument:
    """Manifest entry of one ingested article."""

    source: str
    file_hash: str
    title: str
    sentences: int
    text: str
    url: str = ""  # set for pages ingested by URL: a folder sync leaves them alone


def make_client(settings: Settings) -> chromadb.api.ClientAPI:
    import chromadb  # on first use: importing it costs ~1 s

    """A Chroma client: ``HttpClient`` when ``RAG_CHROMA_URL`` is set, else a persistent folder."""
    chroma_settings = chromadb.Settings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma_url:
        address = settings.chroma_url.removeprefix("http://").rstrip("/")
        host, _, port = address.partition(":")
        try:
            return chromadb.HttpClient(host=host, port=int(port or 8000), settings=chroma_settings)
        except Exception as exc:  # chromadb raises plain ValueError/ConnectionError here
            raise RagError(f"cannot reach the Chroma server at {settings.chroma_url}: {exc}") from exc
    path = settings.index_dir / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


class SentenceStore:
    """Sentences (with embeddings) and the per-article manifest, in two Chroma collections."""

    def __init__(self, settings: Settings, client: chromadb.api.ClientAPI | None = None) -> None:
        self.settings = settings
        self.client = client or make_client(settings)
        # embedding_function=None: Chroma's default would download a model; we always pass vectors.
        self.sentences = self.client.get_or_create_collection(
            settings.collection, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
        )
        self._check_stamp()
        # Manifest rows carry a 1-d placeholder vector: Chroma wants one, nothing searches it.
        self.documents = self.client.get_or_create_collection(
            f"{settings.collection}_documents", embedding_function=None
        )

    def _check_stamp(self) -> None:
        """Stamp a new (or older, unstamped) collection with the embedding model, vector size and schema; refuse
        one stamped by another model or layout, whose vectors must not be mixed with or searched by ours."""
        meta = dict(self.sentences.metadata or {})
        found = {key: meta.get(key) for key in STAMP}
        if all(value is None for value in found.values()):
            self.sentences.modify(metadata={**meta, **STAMP})
        elif found != STAMP:
            raise IndexMismatchError(
                f"collection {self.settings.collection!r} was made with {found['embedding_model']} "
                f"({found['dimension']}-d vectors, schema {found['schema']}); this citechat uses "
                f"{STAMP['embedding_model']} ({STAMP['dimension']}-d, schema {STAMP['schema']}): ingest into a new "
                "collection (--collection / RAG_COLLECTION) or index folder")

    # -- manifest -------------------------------------------------------------------------------------------
    def indexed_documents(self, with_text: bool = False) -> dict[str, IndexedDocument]:
        """Every article in the manifest, by source."""
        include = ["metadatas", "documents"] if with_text else ["metadatas"]
        result: dict[str, IndexedDocument] = {}
        for ids, metas, docs in self._pages(self.documents, include):
            for i, (source, meta) in enumerate(zip(ids, metas, strict=True)):
                result[source] = IndexedDocument(source, str(meta.get("file_hash", "")), str(meta.get("title", "")),
                                                 int(meta.get("sentences", 0)), docs[i] if docs else "",
                                                 str(meta.get("url", "")))
        return result

    def document(self, source: str) -> IndexedDocument | None:
        """One manifest entry with its text, or None."""
        got = self.documents.get(ids=[source], include=["metadatas", "documents"])
        if not got["ids"]:
            return None
        metas, docs = got["metadatas"] or [{}], got["documents"] or [""]
        meta = metas[0]
        return IndexedDocument(source, str(meta.get("file_hash", "")), str(meta.get("title", "")),
                               int(str(meta.get("sentences", 0))), docs[0], str(meta.get("url", "")))

    def put_document(self, source: str, file_hash: str, title: str, sentences: int, text: str) -> None:
        """Record an article as fully ingested (written last, so a crash leaves it absent or stale)."""
        self.put_documents([IndexedDocument(source, file_hash, title, sentences, text)])

    def put_documents(self, entries: list[IndexedDocument]) -> None:
        """Record several articles as fully ingested in one write per page."""
        for i in range(0, len(entries), _PAGE):
            batch = entries[i:i + _PAGE]
            placeholders: list[list[float]] = [[0.0] for _ in batch]
            self.documents.upsert(ids=[e.source for e in batch], embeddings=placeholders,  # type: ignore[arg-type]
                                  documents=[e.text for e in batch],
                                  metadatas=[_document_metadata(e) for e in batch])

    def delete_document(self, source: str) -> None:
        """Remove an article's manifest entry."""
        self.documents.delete(ids=[source])

    # -- sentences ------------------------------------------------------------------------------------------
    def sentence_ids_by_source(self) -> dict[str, set[str]]:
        """Ids of all stored sentences grouped by source, read from Chroma itself (not the manifest)."""
        grouped: dict[str, set[str]] = {}
        for ids, metas, _ in self._pages(self.sentences, ["metadatas"]):
            for sid, meta in zip(ids, metas, strict=True):
                grouped.setdefault(str(meta["source"]), set()).add(sid)
        return grouped

    def embeddings_for(self, ids: list[str]) -> dict[str, np.ndarray]:
        """Stored vectors of the given ids (missing ids are absent from the result)."""
        found: dict[str, np.ndarray] = {}
        for i in range(0, len(ids), _PAGE):
            got = self.sentences.get(ids=ids[i:i + _PAGE], include=["embeddings"])
            for sid, vec in zip(got["ids"], got["embeddings"] if got["embeddings"] is not None else [], strict=True):
                found[sid] = np.asarray(vec, dtype=np.float32)
        return found

    def upsert_sentences(self, sentences: list[Sentence], vectors: np.ndarray, file_hash: str | list[str]) -> None:
        """Insert or replace sentences with their vectors (``file_hash``: one for all, or one per sentence)."""
        if not sentences:
            return
        hashes = [file_hash] * len(sentences) if isinstance(file_hash, str) else file_hash
        for i in range(0, len(sentences), _PAGE):
            batch = sentences[i:i + _PAGE]
            self.sentences.upsert(
                ids=[s.sentence_id for s in batch],
                embeddings=vectors[i:i + _PAGE],
                documents=[s.text for s in batch],
                metadatas=[_sentence_metadata(s, h) for s, h in zip(batch, hashes[i:i + _PAGE], strict=True)],
            )

    def delete_sentences(self, ids: list[str]) -> None:
        """Remove sentences by id."""
        for i in range(0, len(ids), _PAGE):
            self.sentences.delete(ids=ids[i:i + _PAGE])

    def count(self) -> int:
        """Number of stored sentences."""
        return self.sentences.count()

    def iter_all(self) -> Iterator[tuple[list[str], list[dict], list[str], np.ndarray]]:
        """Every stored sentence, a page at a time: ids, metadata, texts, vectors."""
        yield from self._pages(self.sentences, ["metadatas", "documents", "embeddings"], with_vectors=True)

    # -- generation: which snapshot of the collection local caches were built from ----------------------------
    def generation(self) -> str:
        """Current generation tag; starts with ``dirty-`` while an ingest is writing."""
        # Read it afresh: a Collection object keeps the metadata it was opened with, so a long-lived store (the
        # server's) would never see another process's ingest finish.
        fresh = self.client.get_collection(self.documents.name, embedding_function=None)
        meta = fresh.metadata or {}
        return str(meta.get(_GENERATION_KEY, "empty"))

    def mark_dirty(self) -> None:
        """Flag the collection as being written, so no cache is trusted until ``mark_clean``."""
        self.documents.modify(metadata={_GENERATION_KEY: f"dirty-{uuid.uuid4().hex}"})

    def restore_generation(self, tag: str) -> None:
        """Put back the tag an ingest found, when it ends without writing anything."""
        self.documents.modify(metadata={_GENERATION_KEY: tag})

    def mark_clean(self, tag: str) -> None:
        """Publish ``tag`` (new, not ``dirty-``) as the collection's generation after a complete ingest."""
        self.documents.modify(metadata={_GENERATION_KEY: tag})

    @staticmethod
    def _pages(collection, include, with_vectors=False):  # type: ignore[no-untyped-def]
        offset = 0
        while True:
            got = collection.get(include=include, limit=_PAGE, offset=offset)
            ids = got["ids"]
            if not ids:
                return
            metas = got.get("metadatas") or [{}] * len(ids)
            docs = got.get("documents")
            if with_vectors:
                yield ids, metas, docs, np.asarray(got["embeddings"], dtype=np.float32)
            else:
                yield ids, metas, docs
            offset += len(ids)


def _document_metadata(entry: IndexedDocument) -> dict[str, str | int]:
    """A manifest entry's Chroma metadata (``url`` only for pages ingested by URL: Chroma stores no None)."""
    meta: dict[str, str | int] = {"file_hash": entry.file_hash, "title": entry.title, "sentences": entry.sentences}
    if entry.url:
        meta["url"] = entry.url
    return meta


def _sentence_metadata(sentence: Sentence, file_hash: str) -> dict[str, str | int]:
    """A sentence's Chroma metadata; Chroma stores no None, so a sentence without a page has no "page" key."""
    meta: dict[str, str | int] = {"source": sentence.source, "start": sentence.start, "end": sentence.end,
                                  "position": sentence.position, "title": sentence.title, "file_hash": file_hash}
    if sentence.page:
        meta["page"] = sentence.page
    return meta


def lock_path(settings: Settings) -> Path:
    """The file ingests lock so that two never write at once."""
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    return settings.index_dir / "ingest.lock"


def pid_path(settings: Settings) -> Path:
    """The file naming the process that holds the ingest lock."""
    return settings.index_dir / "ingest.pid"
