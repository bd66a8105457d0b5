"""Sync the index with a set of articles (files and web pages): add new, replace changed, remove deleted, skip
unchanged."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from rag.config import Settings
from rag.errors import CorpusError, IngestLockedError
from rag.index.embeddings import SentenceEmbeddings
from rag.index.snapshot import Snapshot, cache_root, cached_snapshot
from rag.index.store import IndexedDocument, SentenceStore, lock_path, pid_path
from rag.ingest.loaders import Document, find_files, load_document
from rag.ingest.splitting import split_document
from rag.ingest.web_pages import is_url, load_url, web_source
from rag.records import IngestReport, Sentence

log = logging.getLogger(__name__)
# Sentences embedded per flush: large enough to keep the model busy, small enough to bound memory.
FLUSH_SENTENCES = 2048


@dataclass
class _Pending:
    doc: Document
    sentences: list[Sentence]
    stale_ids: list[str]
    old_ids: set[str]


@contextmanager
def ingest_lock(settings: Settings) -> Iterator[None]:
    """Hold the index's ingest lock; a second ingest fails at once with a clear message.

    The operating system drops the lock with its process, so a killed ingest never leaves a stale one. The
    holder's process id goes to a file of its own (``ingest.pid``): the lock file itself is truncated by every
    attempt to take it."""
    lock = FileLock(lock_path(settings), timeout=0)
    try:
        lock.acquire()
    except Timeout as exc:
        raise IngestLockedError(f"another ingest is running on {settings.index_dir}; try again when it ends"
                                ) from exc
    holder = pid_path(settings)
    try:
        holder.write_text(str(os.getpid()), encoding="ascii")
        yield
    finally:
        holder.unlink(missing_ok=True)
        lock.release()


class _Writer:
    """Embeds pending articles in large batches; a background thread writes them, each batch's manifest last.

    Chroma's writes (SQLite + HNSW insert) overlap the next batch's splitting and embedding instead of adding
    to them; the queue holds one batch, so memory stays bounded and errors surface at the next hand-off.
    """

    def __init__(self, store: SentenceStore, embedder: SentenceEmbeddings, report: IngestReport,
                 progress: Progress | None, task: TaskID | None, previous: Snapshot | None) -> None:
        self.store, self.embedder, self.report = store, embedder, report
        self.progress, self.task = progress, task
        self.previous = previous
        self.pending: list[_Pending] = []
        self.size = 0
        # Everything written, kept so the new snapshot is built from it instead of re-read from Chroma.
        self.written: list[Sentence] = []
        self.written_vectors: list[np.ndarray] = []
        self._queue: queue.Queue[tuple[list[_Pending], np.ndarray, set[str]] | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)
        self._thread.start()

    def _write_loop(self) -> None:
        while (job := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._write(*job)
                except BaseException as exc:  # re-raised in the ingesting thread
                    self._error = exc

    def _write(self, items: list[_Pending], vectors: np.ndarray, known: set[str]) -> None:
        sentences = [s for item in items for s in item.sentences]
        self.store.upsert_sentences(sentences, vectors,
                                    [item.doc.file_hash for item in items for _ in item.sentences])
        self.store.delete_sentences([sid for item in items for sid in item.stale_ids])
        self.store.put_documents([IndexedDocument(item.doc.source, item.doc.file_hash, item.doc.title,
                                                  len(item.sentences), item.doc.text, item.doc.url)
                                  for item in items])
        offset = 0
        for item in items:
            n = len(item.sentences)
            self.report.sentences_added += len([s for s in item.sentences if s.sentence_id not in known])
            self.report.sentences_removed += len(item.stale_ids)
            self.written.extend(item.sentences)
            self.written_vectors.append(vectors[offset:offset + n])
            offset += n
            if self.progress is not None and self.task is not None:
                self.progress.advance(self.task, n)

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Write what is pending, wait for the writer thread, and raise its error if it had one."""
        try:
            self.flush()
        finally:
            self.stop()
        self._check()

    def stop(self) -> None:
        """End the writer thread after the batches already handed over (idempotent)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _known_vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        """Stored vectors of sentences that were already indexed: from the old snapshot, else from Chroma."""
        if not ids:
            return {}
        if self.previous is not None:
            rows = self.previous.row_of
            return {sid: np.asarray(self.previous.vectors[rows[sid]]) for sid in ids if sid in rows}
        return self.store.embeddings_for(ids)

    def add(self, item: _Pending) -> None:
        self.pending.append(item)
        self.size += len(item.sentences)
        if self.size >= FLUSH_SENTENCES:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        sentences = [s for item in self.pending for s in item.sentences]
        # Sentences already stored (same text, same article) keep their vectors: no re-embedding. Only ids the
        # article had before can be known, so a new article costs no lookup at all.
        known = self._known_vectors([s.sentence_id for item in self.pending for s in item.sentences
                                     if s.sentence_id in item.old_ids])
        todo = [i for i, s in enumerate(sentences) if s.sentence_id not in known]
        vectors = np.zeros((len(sentences), self.embedder.dimension), dtype=np.float32)
        fresh = self.embedder.encode([sentences[i].text for i in todo])
        for j, i in enumerate(todo):
            vectors[i] = fresh[j]
        for i, s in enumerate(sentences):
            if s.sentence_id in known:
                vectors[i] = known[s.sentence_id]
        self._check()
        self._queue.put((self.pending, vectors, set(known)))
        self.pending, self.size = [], 0


def _previous_snapshot(store: SentenceStore, settings: Settings, generation: str) -> Snapshot | None:
    """The snapshot the store is in now, when it can be trusted; the ingest then updates it in memory.

    A new collection is an empty snapshot; a cached snapshot of the current generation is exact; anything else
    (an interrupted ingest left a ``dirty-`` tag, no cache on this machine) means reading Chroma back instead.
    """
    if generation == "empty" and store.count() == 0:
        return Snapshot.from_sentences(generation, [], np.zeros((0, 0), np.float32))
    return cached_snapshot(settings.index_dir, settings.collection, generation)


def ingest(paths: Sequence[Path | str], settings: Settings, prune: bool = True,
           show_progress: bool = False) -> IngestReport:
    """Bring the index in line with the articles under ``paths`` (files, folders, or http(s) URLs of web pages,
    PDFs and DOCX files) and return what changed.

    With ``prune`` (the default) articles from files that are not under the given files and folders are removed,
    so the index mirrors the given corpus; pages ingested by URL stay until removed. Safe to interrupt: the next
    run finishes the job.
    """
    started = time.perf_counter()
    urls = [str(p) for p in paths if isinstance(p, str) and is_url(p)]
    roots = [Path(p) for p in paths if not (isinstance(p, str) and is_url(p))]
    max_bytes = settings.max_file_bytes
    files: list[tuple[str, str, Callable[[], Document]]] = [
        (str(path), source, partial(load_document, path, source, max_bytes)) for path, source in find_files(roots)]
    files += [(url, web_source(url), partial(load_url, url, max_bytes)) for url in dict.fromkeys(urls)]
    report = IngestReport()
    with ingest_lock(settings):
        store = SentenceStore(settings)
        manifest = store.indexed_documents()
        previous_generation = store.generation()
        previous = _previous_snapshot(store, settings, previous_generation)
        stored = previous.ids_by_source() if previous is not None else store.sentence_ids_by_source()
        embedder = SentenceEmbeddings.from_settings(settings)
        seen: set[str] = set()
        replaced: set[str] = set()
        store.mark_dirty()
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), disable=not show_progress, transient=False)
        with progress:
            files_task = progress.add_task("files", total=len(files))
            sentences_task = progress.add_task("sentences", total=0)
            writer = _Writer(store, embedder, report, progress, sentences_task, previous)
            try:
                for path, source, load in files:
                    progress.advance(files_task)
                    if source in seen:
                        report.skipped.append(f"{path}: same source name as an earlier file")
                        continue
                    try:
                        doc = load()
                    except CorpusError as exc:
                        log.warning("skipped %s", exc)
                        report.skipped.append(str(exc))
                        continue
                    seen.add(source)
                    entry = manifest.get(source)
                    old_ids = stored.get(source, set())
                    if entry and entry.file_hash == doc.file_hash and entry.sentences == len(old_ids):
                        report.unchanged += 1
                        continue
                    sentences = split_document(doc)
                    if not sentences:
                        report.skipped.append(f"{source}: no sentences of prose found")
                        seen.discard(source)
                        continue
                    new_ids = {s.sentence_id for s in sentences}
                    if entry or old_ids:
                        report.updated += 1
                    else:
                        report.added += 1
                    progress.update(sentences_task, total=(progress.tasks[1].total or 0) + len(sentences))
                    replaced.add(source)
                    writer.add(_Pending(doc, sentences, sorted(old_ids - new_ids), old_ids))
                writer.close()
            finally:
                writer.stop()
        if not seen:
            # Nothing readable: refuse rather than prune the whole index down to nothing. Nothing was written.
            store.restore_generation(previous_generation)
            raise CorpusError(f"no readable article in {', '.join(map(str, [*roots, *urls])) or 'the given paths'}"
                              + (f" ({len(report.skipped)} skipped: {'; '.join(report.skipped[:3])})"
                                 if report.skipped else ""))
        if prune and roots:
            web = {source for source, entry in manifest.items() if entry.url}
            for source in sorted((set(manifest) | set(stored)) - seen - web):
                _delete_source(store, stored, source, report)
                replaced.add(source)
        vectors = (np.concatenate(writer.written_vectors) if writer.written_vectors
                   else np.zeros((0, embedder.dimension), np.float32))
        report.total_sentences = _publish(store, settings, previous, replaced, writer.written, vectors, show_progress)
    report.seconds = time.perf_counter() - started
    return report


def remove_documents(sources: Sequence[str], settings: Settings) -> IngestReport:
    """Remove articles from the index by source name (the way to drop a page ingested by URL), under the same
    lock and with the same crash safety as ``ingest``; ``CorpusError`` names any source that is not indexed."""
    started = time.perf_counter()
    report = IngestReport()
    with ingest_lock(settings):
        store = SentenceStore(settings)
        manifest = store.indexed_documents()
        previous = _previous_snapshot(store, settings, store.generation())
        stored = previous.ids_by_source() if previous is not None else store.sentence_ids_by_source()
        unknown = [source for source in sources if source not in manifest and source not in stored]
        if unknown:
            raise CorpusError(f"not in the index: {', '.join(map(repr, unknown))}")
        store.mark_dirty()
        for source in dict.fromkeys(sources):
            _delete_source(store, stored, source, report)
        report.total_sentences = _publish(store, settings, previous, set(sources), [],
                                          np.zeros((0, _dimension(previous)), np.float32), False)
    report.seconds = time.perf_counter() - started
    return report


def _dimension(snapshot: Snapshot | None) -> int:
    """The vector size of a snapshot's rows (MiniLM's 384 when there is none yet)."""
    return int(snapshot.vectors.shape[1]) if snapshot is not None and snapshot.vectors.ndim == 2 else 384


def _delete_source(store: SentenceStore, stored: dict[str, set[str]], source: str, report: IngestReport) -> None:
    gone = sorted(stored.get(source, set()))
    store.delete_sentences(gone)
    store.delete_document(source)
    report.removed += 1
    report.sentences_removed += len(gone)


def _publish(store: SentenceStore, settings: Settings, previous: Snapshot | None, replaced: set[str],
             written: list[Sentence], vectors: np.ndarray, show_progress: bool) -> int:
    """Build and cache the new snapshot, then publish its generation; returns its number of sentences.

    The snapshot is cached before the new generation is published: a server that sees the new tag then loads it
    from disk instead of rebuilding it from Chroma while this process does the same."""
    generation = uuid.uuid4().hex
    with Progress(SpinnerColumn(), TextColumn("search index"), TimeElapsedColumn(), disable=not show_progress,
                  transient=True) as building:
        building.add_task("snapshot", total=None)
        if previous is not None:
            snapshot = previous.with_changes(generation, replaced, written, vectors)
        else:
            snapshot = Snapshot.from_store(store, generation)
        snapshot.save(cache_root(settings.index_dir, settings.collection))
    store.mark_clean(generation)
    return len(snapshot)
