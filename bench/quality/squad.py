"""SQuAD as a citechat corpus: one article file per SQuAD article, gold answer offsets mapped into it.

The index is built once with ``Pipeline.ingest`` under ``$CITECHAT_QUALITY_CACHE`` (default
``/tmp/citechat-quality``) and reused by every experiment.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rag import Pipeline, Settings
from rag.evaluation.datasets import squad_article_split
from rag.index.onnx_model import QUESTION_MODEL, question_model_dir

REPO_DATA = Path(__file__).resolve().parents[2] / "tests" / "data"
CACHE = Path(os.environ.get("CITECHAT_QUALITY_CACHE", "/tmp/citechat-quality"))


@dataclass
class DataFiles:
    """The evaluation files the quality scripts read: the repository's own by default, larger ones by flag
    (``--squad-v11``, ``--squad-v20``, ``--seed``; see ``configure``)."""

    v11: Path = REPO_DATA / "squad-v1.1-slice.json"
    v20_file: Path | None = None
    seed: Path = REPO_DATA / "seed_questions.jsonl"
    # Fold question encoders (``python -m rag.train_questions --fold N``), fold 0 first: a tuning question is embedded
    # by the one that never saw its article, so fits on tuning articles see the vectors unseen text gets.
    question_folds: list[Path] = field(default_factory=list)

    @property
    def v20(self) -> Path:
        """The SQuAD v2.0 file; the repository ships none, so a script that needs one says how to pass it."""
        if self.v20_file is None:
            sys.exit("this script needs SQuAD v2.0 questions: --squad-v20 PATH "
                     "(the team's SQuAD 2.0 slice, e.g. SQUAD_V20.json)")
        return self.v20_file


DATA = DataFiles()


def configure() -> None:
    """Take ``--squad-v11 PATH``, ``--squad-v20 PATH`` and ``--seed PATH`` off the command line into ``DATA``,
    leaving the script's own arguments in ``sys.argv``."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--squad-v11", type=Path, help="SQuAD v1.1 file (default: the repository's slice)")
    parser.add_argument("--squad-v20", type=Path, help="SQuAD v2.0 file (needed by abstention.py)")
    parser.add_argument("--seed", type=Path, help="seed questions JSONL (default: the repository's)")
    parser.add_argument("--question-folds", help="fold question encoder folders, fold 0 first (comma-separated)")
    known, rest = parser.parse_known_args(sys.argv[1:])
    for path in (known.squad_v11, known.squad_v20, known.seed):
        if path is not None and not path.is_file():
            sys.exit(f"{path}: no such file")
    DATA.v11 = known.squad_v11 or DATA.v11
    DATA.v20_file = known.squad_v20 or DATA.v20_file
    DATA.seed = known.seed or DATA.seed
    if known.question_folds:
        DATA.question_folds = [Path(p) for p in known.question_folds.split(",")]
        missing = [p for p in DATA.question_folds if not (p / "question.int8.onnx").is_file()]
        if missing:
            sys.exit(f"{missing[0]}: no question.int8.onnx (train it with python -m rag.train_questions --fold N)")
    sys.argv[1:] = rest


@dataclass
class Question:
    """One SQuAD question with its article, paragraph span and answers mapped to article offsets."""

    qid: str
    text: str
    article: str
    source: str
    paragraph: tuple[int, int]
    answers: list[str]
    answer_starts: list[int] = field(default_factory=list)
    answerable: bool = True


def question_tag() -> str:
    """What the question vectors of this run depend on, for cache file names: "" for the packaged encoder (its
    caches predate the tuned one), else the shipped and fold graphs' digest."""
    if Settings().question_encoder == "packaged":
        return ""
    return "-tuned-" + graphs_tag((question_model_dir() / QUESTION_MODEL,
                                   *(f / QUESTION_MODEL for f in DATA.question_folds)))


@functools.cache
def graphs_tag(graphs: tuple[Path, ...]) -> str:
    """A short digest of model graphs' bytes, for cache file names."""
    # Hashed once per run: the graphs are tens of MB and a run asks for several cache names.
    digest = hashlib.sha256(b"".join(hashlib.sha256(g.read_bytes()).digest() for g in graphs))
    return digest.hexdigest()[:12]


def article_file_name(title: str) -> str:
    """A file name for a SQuAD article title."""
    return f"{title}.txt"


def write_articles(path: Path, folder: Path) -> dict[str, list[int]]:
    """Write each article as ``Title\\n\\npara\\n\\npara…``; return each article's paragraph offsets."""
    folder.mkdir(parents=True, exist_ok=True)
    offsets: dict[str, list[int]] = {}
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        title = article["title"].replace("_", " ")
        text, starts = title, []
        for para in article["paragraphs"]:
            text += "\n\n"
            starts.append(len(text))
            text += para["context"]
        (folder / article_file_name(article["title"])).write_text(text + "\n", encoding="utf-8")
        offsets[article["title"]] = starts
    return offsets


def load_questions(path: Path, offsets: dict[str, list[int]], sources: dict[str, str]) -> list[Question]:
    """Every question of a SQuAD file, with article-level answer offsets."""
    out = []
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        starts = offsets[article["title"]]
        for i, para in enumerate(article["paragraphs"]):
            base = starts[i]
            span = (base, base + len(para["context"]))
            for qa in para["qas"]:
                impossible = bool(qa.get("is_impossible", False))
                answers = [a["text"] for a in qa["answers"]]
                out.append(Question(qa["id"], qa["question"], article["title"], sources[article["title"]], span,
                                    answers, [base + a["answer_start"] for a in qa["answers"]], not impossible))
    return out


def build_index(name: str = "squad11", squad: Path | None = None) -> tuple[Pipeline, dict[str, list[int]]]:
    """A pipeline over the SQuAD articles (ingested on first use, then reused; one cache per file)."""
    squad = squad or DATA.v11
    name = f"{name}-{squad.stem}"
    root = CACHE / name
    folder = root / "articles"
    offsets = write_articles(squad, folder)
    settings = Settings(index_dir=root / "index", collection=name, corpus_dir=folder, chroma_url=None)
    pipeline = Pipeline(settings)
    if not (root / "ingested").exists():
        report = pipeline.ingest([folder], show_progress=True)
        print(report.summary())
        (root / "ingested").write_text("ok")
    return pipeline, offsets


def source_by_title(pipeline: Pipeline) -> dict[str, str]:
    """Map SQuAD article titles to the index's source names."""
    found = {}
    for source in set(pipeline.snapshot().sources):
        found[Path(source).stem] = source
    return found


def split_articles(path: Path | None = None) -> tuple[list[str], list[str]]:
    """(tune titles, held-out titles) of the v1.1 file: ``rag.evaluation.datasets.squad_article_split``."""
    return squad_article_split(path or DATA.v11)


class Tally:
    """Pass/fail checks of a harness script: each printed as it runs, a summary line and an exit code at the end."""

    def __init__(self) -> None:
        self.total = self.failed = 0

    def check(self, ok: bool, line: str) -> None:
        """Count one check and print it."""
        self.total += 1
        self.failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {line}")

    def summary(self, noun: str) -> int:
        """Print how many passed; the process exit code (1 if any failed)."""
        print(f"{self.total - self.failed}/{self.total} {noun} ok")
        return 1 if self.failed else 0
