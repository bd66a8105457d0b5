"""Benchmark corpora: the seed article, SQuAD articles (the repository's slice, or a file given with ``--squad``),
and synthetic Faker news articles."""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED_CORPUS = ROOT / "corpus"
DATA = ROOT / "tests" / "data"
SEED_QUESTIONS = DATA / "seed_questions.jsonl"
SQUAD_SLICE = DATA / "squad-v1.1-slice.json"
_squad_file = SQUAD_SLICE
# Average sentences per SQuAD paragraph is ~5; synthetic articles use the same paragraph shape.
_SENTENCES_PER_PARAGRAPH = (3, 7)
_PARAGRAPHS_PER_ARTICLE = (4, 12)


@dataclass(frozen=True)
class Question:
    """A benchmark question with where its answer is: gold answer spans in the source file's text.

    ``evidence`` (seed set) are substrings a correct top citation must contain; ``answer_spans`` (SQuAD) are
    (start, end) character offsets of the gold answers in the article text of ``source``.
    """

    qid: str
    question: str
    answers: list[str]
    evidence: list[str] = field(default_factory=list)
    source: str = ""
    answer_spans: list[tuple[int, int]] = field(default_factory=list)


def seed_questions() -> list[Question]:
    """The seed set (questions about the seed article), answerable ones only."""
    out = []
    for line in SEED_QUESTIONS.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("answerable", True):
            out.append(Question(row["id"], row["question"], row["answers"], row["evidence"]))
    return out


def use_squad(path: Path) -> None:
    """Take SQuAD articles and questions from ``path`` (``--squad``) instead of the repository's slice."""
    global _squad_file
    if not path.is_file():
        raise SystemExit(f"{path}: no such SQuAD file")
    _squad_file = path


def _squad_articles() -> list[tuple[str, list[dict]]]:
    data = json.loads(_squad_file.read_text(encoding="utf-8"))["data"]
    return [(a["title"], a["paragraphs"]) for a in data]


def squad_article_text(title: str, paragraphs: list[dict]) -> tuple[str, list[int]]:
    """The text file written for a SQuAD article, and where each paragraph's context starts in it."""
    text = f"{title.replace('_', ' ')}\n\n"
    starts = []
    for i, p in enumerate(paragraphs):
        context = p["context"]
        lead = len(context) - len(context.lstrip())
        starts.append(len(text) - lead)
        text += context.strip() + ("\n\n" if i < len(paragraphs) - 1 else "\n")
    return text, starts


def squad_questions(limit: int, seed: int = 7) -> list[Question]:
    """A fixed random sample of SQuAD v1.1 questions with their answers' offsets in the written articles."""
    rows = []
    for title, paragraphs in _squad_articles():
        _, starts = squad_article_text(title, paragraphs)
        for p, base in zip(paragraphs, starts, strict=True):
            for qa in p["qas"]:
                answers = list(dict.fromkeys(a["text"] for a in qa["answers"]))
                spans = sorted({(base + a["answer_start"], base + a["answer_start"] + len(a["text"]))
                                for a in qa["answers"]})
                rows.append(Question(qa["id"], qa["question"], answers, [], f"squad/{title}.txt", spans))
    random.Random(seed).shuffle(rows)
    return rows[:limit]


def write_squad(folder: Path, budget: int) -> int:
    """One text file per SQuAD article (title line, paragraphs between blank lines) until ~``budget`` sentences.

    Returns the approximate number of sentences written (a SQuAD sentence is ~140 characters).
    """
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for title, paragraphs in _squad_articles():
        if written >= budget:
            break
        text, _ = squad_article_text(title, paragraphs)
        (folder / f"{title}.txt").write_text(text, encoding="utf-8")
        written += len(text) // 140
    return written


class _NewsWriter:
    """Realistic-looking, unique news sentences: names, places, dates, numbers around Faker prose."""

    def __init__(self, seed: int) -> None:
        from faker import Faker

        self.fake = Faker("en_US")
        self.fake.seed_instance(seed)
        self.rng = random.Random(seed)
        self.templates = [
            "{name}, a spokesperson for {company}, said on {date} that {clause}.",
            "In {city}, officials reported that {clause}, according to {name}.",
            "The {adj} report by {company} found that {clause}.",
            "{clause_cap}, and {number} residents of {city} were affected by the decision.",
            "According to figures released in {year}, {clause}.",
            "{name} told reporters in {city} that {clause}.",
            "{clause_cap}.",
            "{clause_cap}, while {clause}.",
            "By {date}, about {number} people in {country} had signed the petition, and {clause}.",
            "The committee led by {name} voted {small} to {small2} on the {adj} proposal.",
        ]

    def clause(self) -> str:
        words = self.fake.sentence(nb_words=self.rng.randint(6, 14), variable_nb_words=True).rstrip(".")
        return words[0].lower() + words[1:]

    def sentence(self) -> str:
        template = self.rng.choice(self.templates)
        clause = self.clause()
        return template.format(
            name=self.fake.name(), company=self.fake.company(),
            date=self.fake.date_between("-10y").strftime("%B %d, %Y"),
            city=self.fake.city(), country=self.fake.country(), year=self.rng.randint(1990, 2025),
            number=f"{self.rng.randint(2, 90000):,}", small=self.rng.randint(2, 9), small2=self.rng.randint(0, 9),
            adj=self.fake.word(), clause=self.clause(), clause_cap=clause[0].upper() + clause[1:],
        )

    def article(self) -> tuple[str, int]:
        title = self.fake.catch_phrase().title()
        paragraphs, count = [], 0
        for _ in range(self.rng.randint(*_PARAGRAPHS_PER_ARTICLE)):
            n = self.rng.randint(*_SENTENCES_PER_PARAGRAPH)
            paragraphs.append(" ".join(self.sentence() for _ in range(n)))
            count += n
        return f"{title}\n\n" + "\n\n".join(paragraphs) + "\n", count


def build_corpus(folder: Path, target_sentences: int, seed: int = 13) -> Path:
    """Write seed + SQuAD + synthetic articles under ``folder`` until ~``target_sentences``; reused if present.

    SQuAD articles come first (all 17 are ~3.6k sentences), then synthetic ones; sentence counts are
    estimates here, the benchmark reports the real count after splitting.
    """
    stamp = folder / ".complete"
    if stamp.exists() and stamp.read_text() == str(target_sentences):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for path in SEED_CORPUS.glob("*.txt"):
        shutil.copy(path, folder / path.name)
    remaining = target_sentences - 15 - write_squad(folder / "squad", target_sentences - 15)
    writer = _NewsWriter(seed)
    (folder / "news").mkdir()
    i = 0
    while remaining > 0:
        text, count = writer.article()
        (folder / "news" / f"{i // 1000:03d}").mkdir(exist_ok=True)
        (folder / "news" / f"{i // 1000:03d}" / f"article-{i:06d}.txt").write_text(text, encoding="utf-8")
        remaining -= count
        i += 1
    stamp.write_text(str(target_sentences))
    return folder


def subset_corpus(folder: Path, size_name: str) -> Path:
    """The canonical location of a generated corpus under a work folder."""
    return folder / f"corpus-{size_name}"
