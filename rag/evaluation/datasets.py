"""Read evaluation questions from our JSONL/CSV format or SQuAD JSON into typed ``EvalQuestion`` records."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from rag.errors import EvalFileError
from rag.ingest.loaders import load_document
from rag.ingest.splitting import sentence_spans


class Span(BaseModel):
    """A character range ``[start, end)`` of one corpus document."""

    source: str
    start: int
    end: int
    item: int = Field(default=0, description="Which evidence item (string or SQuAD sentence) the span belongs to.")


class AnswerStart(BaseModel):
    """A gold answer's first character, as an offset into its corpus document (SQuAD only)."""

    source: str
    offset: int


class EvalQuestion(BaseModel):
    """One question to evaluate, with what a correct answer and correct citations look like."""

    id: str
    question: str
    answers: list[str] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list, description="Corpus substrings that support the answer.")
    answerable: bool = True
    source: str | None = Field(default=None, description="The document the question was written about, when known.")
    answer_starts: list[AnswerStart] = Field(default_factory=list)
    evidence_spans: list[Span] = Field(default_factory=list, description="Evidence located in the corpus.")
    line: int = Field(default=0, description="Line (JSONL/CSV) or 1-based question number (SQuAD) in the file.")


# The fields of a JSONL object or CSV header that a question is read from.
FIELDS = ("id", "question", "answers", "evidence", "answerable")


@dataclass
class EvalDataset:
    """The questions of one file, what was skipped, and (for SQuAD) the corpus folder its contexts became."""

    path: Path
    format: str
    questions: list[EvalQuestion]
    skipped: list[str] = field(default_factory=list)
    corpus_dir: Path | None = None
    warnings: list[str] = field(default_factory=list)


def detect_format(path: Path) -> str:
    """``jsonl``, ``csv`` or ``squad`` from the file name; SQuAD files are ``.json``."""
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson"}:
        return "jsonl"
    if suffix in {".csv", ".tsv"}:
        return "csv"
    if suffix == ".json":
        return "squad"
    raise EvalFileError(f"{path.name}: unknown evaluation format {suffix!r} (use .jsonl, .csv or SQuAD .json)")


def load_dataset(path: Path | str, skip_bad: bool = False, squad_corpus_dir: Path | None = None) -> EvalDataset:
    """Parse an evaluation file; a malformed entry raises ``EvalFileError`` naming its line unless ``skip_bad``.

    For SQuAD files the contexts are written as one article file per title into ``squad_corpus_dir``
    (required then), ready for ``Pipeline.ingest``.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise EvalFileError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EvalFileError(f"{path.name}: not UTF-8 text (byte {exc.start})") from exc
    kind = detect_format(path)
    skipped: list[str] = []
    if kind in ("jsonl", "csv"):
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        rows = (_jsonl_rows(text, path.name, skipped, skip_bad) if kind == "jsonl"
                else _csv_rows(text, delimiter))
        questions = _parse_rows(rows, path.name, skipped, skip_bad)
        return EvalDataset(path, kind, questions, skipped, warnings=_unknown_fields(rows, path.name))
    if squad_corpus_dir is None:
        raise EvalFileError("a SQuAD file needs a folder to write its contexts into")
    questions, corpus = _load_squad(text, path.name, squad_corpus_dir, skipped, skip_bad)
    return EvalDataset(path, kind, questions, skipped, corpus)


# -- our JSONL / CSV format ------------------------------------------------------------------------------------
def _jsonl_rows(text: str, name: str, skipped: list[str], skip_bad: bool) -> list[tuple[int, Any]]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            _bad(f"{name} line {number}: not valid JSON ({exc.msg} at column {exc.colno})", skipped, skip_bad)
        except RecursionError:  # json gives up on very deep nesting with RecursionError, not JSONDecodeError
            _bad(f"{name} line {number}: JSON nested too deeply", skipped, skip_bad)
    return rows


def _csv_rows(text: str, delimiter: str) -> list[tuple[int, Any]]:
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = []
    for row in reader:
        if not any((v or "").strip() for k, v in row.items() if k is not None):
            continue
        extra = row.pop(None, None)  # type: ignore[call-overload]  # cells beyond the header
        row = {(k or "").strip(): v for k, v in row.items()}
        if extra:
            row["__extra__"] = extra
        rows.append((reader.line_num, row))
    return rows


def _parse_rows(rows: list[tuple[int, Any]], name: str, skipped: list[str], skip_bad: bool) -> list[EvalQuestion]:
    questions: list[EvalQuestion] = []
    seen: set[str] = set()
    for number, row in rows:
        try:
            question = _question_from_row(row, number)
            if question.id in seen:
                raise ValueError(f"duplicate id {question.id!r}")
        except ValueError as exc:
            _bad(f"{name} line {number}: {exc}", skipped, skip_bad)
            continue
        seen.add(question.id)
        questions.append(question)
    if not questions:
        raise EvalFileError(f"{name}: no questions found" + (f" ({len(skipped)} malformed entries skipped)"
                                                             if skipped else ""))
    return questions


def _unknown_fields(rows: list[tuple[int, Any]], name: str) -> list[str]:
    """A warning naming fields no row should have: a typo such as 'anwsers' would silently drop the gold."""
    unknown = sorted({str(key) for _, row in rows if isinstance(row, dict) for key in row}
                     - set(FIELDS) - {"__extra__", ""})
    if not unknown:
        return []
    return [f"{name}: ignored unknown field(s) {', '.join(map(repr, unknown[:10]))}; "
            f"the fields read are {', '.join(FIELDS)}"]


def _question_from_row(row: Any, number: int) -> EvalQuestion:
    if not isinstance(row, dict):
        raise ValueError(f"expected an object with a 'question', got {type(row).__name__}")
    if row.get("__extra__"):
        raise ValueError("more cells than columns in the header")
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("'question' is missing or empty")
    raw_id = row.get("id")
    if raw_id is None or (isinstance(raw_id, str) and not raw_id.strip()):
        raw_id = f"line{number}"
    if not isinstance(raw_id, str | int):
        raise ValueError("'id' must be a string or a number")
    answerable = _as_bool(row.get("answerable"), "answerable")
    answers = _as_strings(row.get("answers"), "answers")
    evidence = _as_strings(row.get("evidence"), "evidence")
    if not answerable and answers:
        raise ValueError("an unanswerable question cannot have gold answers")
    return EvalQuestion(id=str(raw_id).strip(), question=question.strip(), answers=answers, evidence=evidence,
                        answerable=answerable, line=number)


def _as_strings(value: Any, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):  # CSV cell: a JSON array, or values separated by '|'
        cell = value.strip()
        if not cell:
            return []
        if cell.startswith("["):
            try:
                value = json.loads(cell)
            except RecursionError:
                raise ValueError(f"{key!r} is nested too deeply") from None
            except json.JSONDecodeError as exc:
                raise ValueError(f"{key!r} is not a valid JSON array ({exc.msg})") from exc
        else:
            return [part.strip() for part in cell.split("|") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key!r} must be a list of strings")
    return [v for v in value if v.strip()]


_TRUE = {"true", "1", "yes", "y"}
_FALSE = {"false", "0", "no", "n"}


def _as_bool(value: Any, key: str) -> bool:
    if value is None or (isinstance(value, str) and not value.strip()):
        return True
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"{key!r} must be true or false, got {value!r}")


def _bad(message: str, skipped: list[str], skip_bad: bool) -> None:
    if not skip_bad:
        raise EvalFileError(message + " (use --skip-bad to skip malformed entries)")
    skipped.append(message)


# -- SQuAD v1.1 / v2.0 -----------------------------------------------------------------------------------------
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def squad_article_split(path: Path) -> tuple[list[str], list[str]]:
    """(tuning, held-out) article titles of a SQuAD file: even positions tune, odd ones are held out. The quality
    figures (docs/quality.md), the fitted coefficients and the reader's training all keep to this split."""
    titles = [a["title"] for a in json.loads(path.read_text(encoding="utf-8"))["data"]]
    return titles[0::2], titles[1::2]


def article_file_name(title: str, taken: set[str]) -> str:
    """A safe, unique ``.txt`` file name for a SQuAD article title."""
    base = _UNSAFE.sub("_", title).strip("._") or "article"
    name, n = f"{base[:120]}.txt", 2
    while name.lower() in taken:
        name, n = f"{base[:120]}-{n}.txt", n + 1
    taken.add(name.lower())
    return name


def _load_squad(text: str, name: str, folder: Path, skipped: list[str], skip_bad: bool
                ) -> tuple[list[EvalQuestion], Path]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EvalFileError(f"{name} line {exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
    except RecursionError:
        raise EvalFileError(f"{name}: JSON nested too deeply") from None
    articles = data.get("data") if isinstance(data, dict) else None
    if not isinstance(articles, list):
        raise EvalFileError(f"{name}: not a SQuAD file (no top-level 'data' list of articles)")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.txt"):  # the folder mirrors this file: stale articles must not linger
        old.unlink()
    questions: list[EvalQuestion] = []
    taken: set[str] = set()
    seen_ids: set[str] = set()
    for a, article in enumerate(articles):
        where = f"{name} data[{a}]"
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            _bad(f"{where}: an article needs a 'paragraphs' list", skipped, skip_bad)
            continue
        title = str(article.get("title") or f"Article {a + 1}")
        contexts, pending = [], []
        for p, para in enumerate(article["paragraphs"]):
            if not isinstance(para, dict) or not isinstance(para.get("context"), str) or not para["context"].strip():
                _bad(f"{where}.paragraphs[{p}]: a paragraph needs a non-empty 'context'", skipped, skip_bad)
                continue
            contexts.append(para["context"])
            for q, qa in enumerate(para.get("qas") or []):
                try:
                    pending.append((len(contexts) - 1, _squad_question(qa)))
                except ValueError as exc:
                    _bad(f"{where}.paragraphs[{p}].qas[{q}]: {exc}", skipped, skip_bad)
        if not contexts:
            continue
        display = title.replace("_", " ")
        file_name = article_file_name(title, taken)
        # The title line is a heading (not cited); paragraphs follow in order, separated by blank lines.
        body, offsets = display + "\n\n", []
        for context in contexts:
            offsets.append(len(body))
            body += context + "\n\n"
        (folder / file_name).write_bytes(body.encode("utf-8"))
        spans = _document_spans(folder / file_name, file_name)
        for index, (qa_id, question, answers, starts, impossible) in pending:
            if qa_id in seen_ids:
                _bad(f"{where}: duplicate question id {qa_id!r}", skipped, skip_bad)
                continue
            seen_ids.add(qa_id)
            points = [AnswerStart(source=file_name, offset=offsets[index] + s) for s in dict.fromkeys(starts)]
            hits = [(s, e) for s, e in spans if any(s <= pt.offset < e for pt in points)]
            evidence = [Span(source=file_name, start=s, end=e, item=i) for i, (s, e) in enumerate(hits)]
            questions.append(EvalQuestion(
                id=qa_id, question=question, answers=list(dict.fromkeys(answers)), answerable=not impossible,
                source=file_name, answer_starts=points, evidence_spans=evidence,
                evidence=[body[sp.start:sp.end] for sp in evidence], line=len(questions) + len(skipped) + 1))
    if not questions:
        raise EvalFileError(f"{name}: no questions found" + (f" ({len(skipped)} skipped)" if skipped else ""))
    return questions, folder


def _squad_question(qa: Any) -> tuple[str, str, list[str], list[int], bool]:
    if not isinstance(qa, dict):
        raise ValueError("a question must be an object")
    question, qa_id = qa.get("question"), qa.get("id")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("'question' is missing or empty")
    if not isinstance(qa_id, str | int) or not str(qa_id).strip():
        raise ValueError("'id' is missing")
    impossible = bool(qa.get("is_impossible", False))
    raw = qa.get("answers") or []
    if not isinstance(raw, list):
        raise ValueError("'answers' must be a list")
    answers, starts = [], []
    for ans in raw:
        if not isinstance(ans, dict) or not isinstance(ans.get("text"), str) or not isinstance(
                ans.get("answer_start"), int):
            raise ValueError("each answer needs 'text' and an integer 'answer_start'")
        answers.append(ans["text"])
        starts.append(ans["answer_start"])
    if not impossible and not answers:
        raise ValueError("an answerable question needs at least one answer")
    return str(qa_id), question.strip(), answers, starts, impossible


def _document_spans(path: Path, source: str) -> list[tuple[int, int]]:
    """Sentence spans exactly as ingest will split the file (same loader, same splitter)."""
    doc = load_document(path, source, max_bytes=1 << 40)
    return sentence_spans(doc.text, doc.title)
