"""Check the public seed questions: top citation holds the evidence, the answer holds a gold string, and the
unanswerable ones abstain. Run: ``.venv/bin/python bench/quality/seed.py``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from squad import CACHE, DATA, Tally, configure  # noqa: E402

from rag import Pipeline, Settings  # noqa: E402
from rag.text import normalize_for_match  # noqa: E402

CORPUS = Path(__file__).resolve().parents[2] / "corpus"


def seed_pipeline() -> Pipeline:
    """A pipeline over the seed article (ingested once into the quality cache)."""
    root = CACHE / "seed"
    pipeline = Pipeline(Settings(index_dir=root / "index", collection="seed", corpus_dir=CORPUS, chroma_url=None))
    if not (root / "ingested").exists():
        pipeline.ingest([CORPUS])
        (root / "ingested").write_text("ok")
    return pipeline


def main() -> int:
    configure()
    pipeline = seed_pipeline()
    tally = Tally()
    for line in DATA.seed.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        answer = pipeline.ask(item["question"])
        if item.get("answerable", True):
            top = normalize_for_match(answer.citations[0].text) if answer.citations else ""
            cited = any(normalize_for_match(e) in top for e in item["evidence"])
            said = any(normalize_for_match(g).lower() in normalize_for_match(answer.answer).lower()
                       for g in item["answers"])
            ok = cited and said and not answer.abstained
        else:
            ok = answer.abstained
        tally.check(ok, f"{item['id']} p={answer.confidence:.3f} {item['question']!r} -> "
                        f"{answer.short_answer!r} | {answer.answer[:110]!r}")
    return tally.summary("questions")


if __name__ == "__main__":
    raise SystemExit(main())
