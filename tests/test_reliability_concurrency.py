"""Concurrency: asks keep answering while another process ingests; a second ingest is refused at once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from rag import Answer, IngestLockedError, Pipeline, Settings
from rag.ingest.sync import ingest

from .conftest import CORPUS

pytestmark = pytest.mark.slow  # other processes ingest and hold locks for seconds
NEW_ARTICLES = 60


def rag_ingest(corpus: Path, settings: Settings) -> subprocess.Popen[str]:
    env = {**os.environ, "RAG_COLLECTION": settings.collection, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "rag", "ingest", str(corpus), "--index", str(settings.index_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def holds_lock(settings: Settings, procs: list[subprocess.Popen[str]], timeout: float = 180
               ) -> subprocess.Popen[str]:
    """The process that took the ingest lock (it writes its pid into ingest.pid)."""
    lock = settings.index_dir / "ingest.pid"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        holder = lock.read_text().strip() if lock.exists() else ""
        for proc in procs:
            if holder == str(proc.pid):
                return proc
        time.sleep(0.02)
    raise AssertionError("no ingest took the lock")


def test_asks_answer_during_another_process_ingest_and_second_ingest_is_refused(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    settings = Settings(index_dir=tmp_path / "ix", collection=f"conc{uuid.uuid4().hex[:8]}")
    ingest([corpus], settings)
    server = Pipeline(settings)  # long-lived, like `rag serve`
    server.warm_up()
    before = len(server.snapshot())
    for i in range(NEW_ARTICLES):
        # Filler sentences keep the writer busy for seconds: the loser must find the lock taken even when it
        # starts late on a loaded machine (the ingest got ~1.4x faster and this window shrank with it).
        filler = " ".join(f"On crossing {i} the deck hands counted {j * 7 + i} gulls over bay {j}." for j in range(14))
        (corpus / f"new{i:03d}.txt").write_text(
            f"Bulletin {i}\n\nThe ferry number {i} to Zanzibar left at {i % 12 + 1} o'clock. "
            f"Its captain was named Okafor{i}. The crossing took {i + 2} hours.\n\n{filler}\n")

    # Two ingests started together: whichever takes the lock first writes, the other must give up at once.
    first, second = rag_ingest(corpus, settings), rag_ingest(corpus, settings)
    writer = holds_lock(settings, [first, second])
    loser = second if writer is first else first

    # Asks from several threads while the other process writes: every one is a normal answer.
    answers: list[Answer] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def asker(question: str) -> None:
        while not done.is_set():
            try:
                answers.append(server.ask(question))
            except BaseException as exc:  # noqa: BLE001 - any error at all is the failure being tested
                errors.append(exc)

    threads = [threading.Thread(target=asker, args=(q,)) for q in
               ["when was the Taraz attack?", "Who was the captain of ferry 7?"]]
    for t in threads:
        t.start()
    _, loser_err = loser.communicate(timeout=300)
    assert loser.returncode == IngestLockedError.exit_code, loser_err[-2000:]
    assert "another ingest is running" in loser_err and "Traceback" not in loser_err
    assert writer.poll() is None, "the writer ended before the loser gave up: the test proves nothing"
    out, err = writer.communicate(timeout=600)
    asked_during_ingest = len(answers)
    # Keep asking a little after the ingest: the long-lived pipeline must pick up the new generation.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(server.snapshot()) == before:
        time.sleep(0.5)
    done.set()
    for t in threads:
        t.join(120)
    assert writer.returncode == 0, err[-2000:]
    assert not errors, repr(errors[:3])
    assert asked_during_ingest >= 4, f"only {asked_during_ingest} asks overlapped the ingest"
    assert all(a.answer for a in answers)
    assert len(server.snapshot()) > before, "the running pipeline never saw the other process's ingest"
    answer = server.ask("Who was the captain of ferry 7?")
    assert any(c.source.startswith("new") for c in answer.citations)
    print(f"asks during ingest: {asked_during_ingest}")


def test_lock_is_released_when_the_holder_is_killed(tmp_path: Path) -> None:
    """The lock dies with its process: a SIGKILLed ingest never leaves a stale lock that blocks the next one."""
    settings = Settings(index_dir=tmp_path / "ix", collection=f"lock{uuid.uuid4().hex[:8]}")
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                               "from rag.config import Settings\nfrom rag.ingest.sync import ingest_lock\n"
                               f"s = Settings(index_dir={str(settings.index_dir)!r})\n"
                               "with ingest_lock(s):\n    print('locked', flush=True)\n    time.sleep(600)\n"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        from rag.ingest.sync import ingest_lock

        try:
            with ingest_lock(settings):
                raise AssertionError("the lock was granted while held")
        except IngestLockedError as exc:
            assert "another ingest is running" in str(exc)
        holder.kill()
        holder.wait(30)
        with ingest_lock(settings):
            pass
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
