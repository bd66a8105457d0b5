"""Several app processes on one Chroma server: same answers, and every process follows another's ingest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from .conftest import ROOT, SEED_QUESTIONS

_WORKER = r"""
import json, sys
from rag import Pipeline
pipeline = Pipeline()
for line in sys.stdin:
    job = json.loads(line)
    if "ingest" in job:
        report = pipeline.ingest([job["ingest"]])
        out = {"total": report.total_sentences}
    else:
        answer = pipeline.ask(job["question"])
        out = {"answer": answer.answer, "abstained": answer.abstained, "sentences": len(pipeline.snapshot()),
               "citations": [[c.source, c.sentence_id, c.start, c.end] for c in answer.citations]}
    print("RESULT " + json.dumps(out), flush=True)
"""


class Worker:
    """An app process (its own index folder and snapshot cache) talking JSON lines."""

    def __init__(self, chroma_url: str, collection: str, index_dir: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
        env.update({"RAG_CHROMA_URL": chroma_url, "RAG_COLLECTION": collection, "RAG_INDEX_DIR": str(index_dir),
                    "ANONYMIZED_TELEMETRY": "False", "PYTHONPATH": str(ROOT)})
        self.proc = subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)

    def call(self, job: dict) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith("RESULT "):
                return json.loads(line.removeprefix("RESULT "))
        raise AssertionError(f"worker exited with {self.proc.wait()}")

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.mark.slow
def test_two_processes_on_one_chroma_server_answer_alike(chroma_server: str, corpus_copy: Path,
                                                        tmp_path: Path) -> None:
    collection = f"mp{uuid.uuid4().hex[:10]}"
    a = Worker(chroma_server, collection, tmp_path / "a")
    b = Worker(chroma_server, collection, tmp_path / "b")
    try:
        total = a.call({"ingest": str(corpus_copy)})["total"]
        assert total > 10
        questions = [json.loads(line)["question"] for line in SEED_QUESTIONS.read_text().splitlines()[:6]]
        for question in questions:
            from_a, from_b = a.call({"question": question}), b.call({"question": question})
            assert from_a == from_b
            assert from_b["sentences"] == total
        # A changes the corpus; B has no snapshot of the new generation and must rebuild it from the server.
        (corpus_copy / "zebra.txt").write_text(
            "Zebras\n\nThe plains zebra lives in the grasslands of East Africa. Its stripes confuse biting flies.",
            encoding="utf-8")
        new_total = a.call({"ingest": str(corpus_copy)})["total"]
        assert new_total == total + 2
        time.sleep(1.5)  # past the generation check interval
        question = "Where does the plains zebra live?"
        from_a, from_b = a.call({"question": question}), b.call({"question": question})
        assert from_a == from_b
        assert from_b["sentences"] == new_total
        assert from_b["citations"][0][0] == "zebra.txt"
        assert any(p.name != ".tmp" for p in (tmp_path / "b" / "cache" / collection).iterdir())
    finally:
        a.close()
        b.close()
