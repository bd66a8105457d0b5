"""Split a ``rag eval --out`` results file of the shared SQuAD files into tuning and held-out articles, with the
held-out answerable questions by question word and their EM misses by whether the top sentence was right.

Run: ``.venv/bin/python bench/quality/eval_split.py results.jsonl``
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from squad import configure, split_articles  # noqa: E402


def _key(name: str) -> str:
    """Titles and file names compared without punctuation (``Victoria_(Australia)`` → ``Victoria__Australia``)."""
    return re.sub(r"\W|_", "", name).lower()


def main() -> None:
    configure()
    tune, held = split_articles()
    rows = [json.loads(line) for line in Path(sys.argv[1]).read_text(encoding="utf-8").splitlines() if line]
    print("| articles | n | hit@1 | MRR | EM | F1 | answer contains gold | abstained |")
    print("|---|---|---|---|---|---|---|---|")
    for label, titles in (("tune", tune), ("held-out", held), ("all", tune + held)):
        keys = {_key(t) for t in titles}
        sel = [r for r in rows if _key(Path(r["source"] or "").stem) in keys and r["answerable"]]
        n = max(len(sel), 1)
        hit1 = sum(r["evidence_rank"] == 1 for r in sel) / n
        mrr = sum(1 / r["evidence_rank"] for r in sel if r["evidence_rank"]) / n
        em = sum(r["em"] or 0 for r in sel) / n
        f1 = sum(r["f1"] or 0 for r in sel) / n
        contains = sum(r["contains_gold"] or 0 for r in sel) / n
        abstained = sum(r["abstained"] for r in sel) / n
        print(f"| {label} | {len(sel)} | {hit1:.3f} | {mrr:.3f} | {em:.3f} | {f1:.3f} | {contains:.3f} |"
              f" {abstained:.3f} |")
    by_type(rows, {_key(t) for t in held})
    if not any(not r["answerable"] for r in rows):
        return
    print("\n| articles | questions | abstention precision | recall | F1 | false abstention |")
    print("|---|---|---|---|---|---|")
    for label, titles in (("tune", tune), ("held-out", held), ("all", tune + held)):
        keys = {_key(t) for t in titles}
        sel = [r for r in rows if _key(Path(r["source"] or "").stem) in keys]
        tp = sum(r["abstained"] and not r["answerable"] for r in sel)
        p = tp / max(sum(r["abstained"] for r in sel), 1)
        rec = tp / max(sum(not r["answerable"] for r in sel), 1)
        f = 2 * p * rec / (p + rec) if p + rec else 0.0
        false = sum(r["abstained"] and r["answerable"] for r in sel) / max(sum(r["answerable"] for r in sel), 1)
        print(f"| {label} | {len(sel)} | {p:.3f} | {rec:.3f} | {f:.3f} | {false:.3f} |")


def by_type(rows: list[dict], held: set[str]) -> None:
    """hit@1 / EM / F1 of the held-out answerable questions per question word (``rag eval``'s ``type``)."""
    sel = [r for r in rows if _key(Path(r["source"] or "").stem) in held and r["answerable"]]
    print("\n| held-out, by type | n | hit@1 / EM / F1 |")
    print("|---|---|---|")
    for kind in ("when", "who", "where", "what", "which", "how many", "how", "why", "other"):
        group = [r for r in sel if r["type"] == kind]
        if group:
            n = len(group)
            hit = sum(r["evidence_rank"] == 1 for r in group) / n
            em, f1 = (sum(r[m] or 0 for r in group) / n for m in ("em", "f1"))
            print(f"| {kind} | {n} | {hit:.3f} / {em:.3f} / {f1:.3f} |")
    right = [r for r in sel if r["evidence_rank"] == 1]
    misses, right_misses = sum(not r["em"] for r in sel), sum(not r["em"] for r in right)
    print(f"\nHeld-out EM misses: {misses}; {right_misses} with the right top sentence (EM there"
          f" {sum(r['em'] or 0 for r in right) / max(len(right), 1):.3f}), {misses - right_misses} with a wrong one.")


if __name__ == "__main__":
    main()
