"""Named collections in one index: `--collection` keeps corpora apart, and a collection stamped by another embedding
model is refused with a clear message instead of being mixed with or searched by ours."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag import Pipeline, Settings
from rag.errors import IndexMismatchError
from rag.index.store import STAMP, SentenceStore


def corpus(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.mark.slow
def test_cli_collections_keep_corpora_apart(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")} | {"RAG_INDEX_DIR": str(tmp_path / "ix")}
    help_centre = corpus(tmp_path / "help", "reset.txt", "Resetting\n\nTo reset the router, hold the red button "
                                                          "for ten seconds.\n")
    blog = corpus(tmp_path / "blog", "launch.txt", "Launch\n\nThe company launched its first router in 2019 in "
                                                   "Tallinn.\n")

    def rag(*args: str) -> dict:
        run = subprocess.run([sys.executable, "-m", "rag", *args, "--json"], capture_output=True, text=True,
                             env=env, timeout=300)
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout)

    assert rag("ingest", str(help_centre), "--collection", "help-centre")["added"] == 1
    assert rag("ingest", str(blog), "--collection", "blog")["added"] == 1  # the help centre is not pruned
    for collection, source in (("help-centre", "reset.txt"), ("blog", "launch.txt")):
        answer = rag("ask", "When was the first router launched and how is it reset?", "--collection", collection)
        assert {c["source"] for c in answer["citations"]} == {source}


def test_a_collection_of_another_model_is_refused(tmp_path: Path) -> None:
    settings = Settings(index_dir=tmp_path / "ix", collection="foreign")
    store = SentenceStore(settings)
    assert {k: store.sentences.metadata[k] for k in STAMP} == STAMP  # new collections are stamped
    store.sentences.modify(metadata={"embedding_model": "intfloat/e5-large", "dimension": 1024, "schema": 1})
    with pytest.raises(IndexMismatchError, match="made with intfloat/e5-large .1024-d.*new collection") as caught:
        Pipeline(settings).ask("Anything?")
    assert caught.value.exit_code == 4


def test_an_unstamped_collection_is_stamped_and_kept(tmp_path: Path) -> None:
    settings = Settings(index_dir=tmp_path / "ix", collection="older")
    store = SentenceStore(settings)
    store.sentences.modify(metadata={"note": "made before stamps"})  # what a collection of an older release holds
    reopened = SentenceStore(settings)
    assert {k: reopened.sentences.metadata[k] for k in STAMP} == STAMP
    assert reopened.sentences.metadata["note"] == "made before stamps"
