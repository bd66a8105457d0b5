"""Play the multi-turn conversations of tests/data against the seed index and the 17-article SQuAD index.

Run: ``.venv/bin/python bench/quality/conversations.py``
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))
from seed import seed_pipeline  # noqa: E402
from squad import Tally, build_index, configure  # noqa: E402

from bench.conversations import load_conversations, play  # noqa: E402


def main() -> int:
    configure()
    pipelines = {"seed": seed_pipeline(), "squad": build_index()[0]}
    tally = Tally()
    for conv in load_conversations():
        for r in play(pipelines[conv["corpus"].split(":")[0]], conv):
            tally.check(r.ok, f"{conv['id']}: {r.question!r} query={r.search_query!r}\n      -> {r.answer[:150]!r}")
    return tally.summary("turns")


if __name__ == "__main__":
    raise SystemExit(main())
