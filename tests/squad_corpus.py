"""A SQuAD article as a test corpus: written as ``Title\\n\\npara\\n\\npara…`` and ingested once per session."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from rag import Pipeline
from tests.conftest import SQUAD_SLICE, make_settings

_lock = threading.Lock()
_built: dict[str, SquadCorpus] = {}


@dataclass
class SquadCorpus:
    """The pipeline over one article, its source name, and its questions with answer offsets in the file."""

    pipeline: Pipeline
    source: str
    paragraphs: int
    questions: list[tuple[str, list[int], list[str]]]


def build(title: str, root: Path) -> SquadCorpus:
    """Write the article, ingest it into a fresh embedded index, map answer starts to article offsets."""
    article = next(a for a in json.loads(SQUAD_SLICE.read_text(encoding="utf-8"))["data"] if a["title"] == title)
    text, questions = title.replace("_", " "), []
    for para in article["paragraphs"]:
        text += "\n\n"
        base = len(text)
        text += para["context"]
        questions += [(qa["question"], [base + a["answer_start"] for a in qa["answers"]],
                       [a["text"] for a in qa["answers"]]) for qa in para["qas"]]
    folder = root / "articles"
    folder.mkdir(parents=True)
    (folder / f"{title}.txt").write_text(text + "\n", encoding="utf-8")
    pipeline = Pipeline(make_settings(root / "index"))
    pipeline.ingest([folder])
    return SquadCorpus(pipeline, f"{title}.txt", len(article["paragraphs"]), questions)


@pytest.fixture(scope="session")
def normans(tmp_path_factory: pytest.TempPathFactory) -> SquadCorpus:
    """The SQuAD v1.1 'Normans' article (a held-out article of the quality tuning split), ingested once."""
    with _lock:
        if "Normans" not in _built:
            _built["Normans"] = build("Normans", tmp_path_factory.mktemp("normans"))
        return _built["Normans"]
