"""Profile warm asks or an ingest with pyinstrument: `python -m bench.profile ask --index DIR`.

Writes a text profile to stdout and, with ``--html FILE``, pyinstrument's HTML view.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from pyinstrument import Profiler

from bench.corpus import squad_questions, use_squad
from bench.ours import settings_for
from rag import Pipeline


def main(argv: list[str] | None = None) -> int:
    """Profile ``ask`` (N warm questions on an existing index) or ``ingest`` (a corpus into a fresh index)."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("what", choices=["ask", "ingest"])
    parser.add_argument("--index", required=True, help="Index folder (ingest: recreated).")
    parser.add_argument("--corpus", help="Corpus folder for ingest.")
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--squad", type=Path, help="SQuAD v1.1 file (default: the repository's slice).")
    parser.add_argument("--html", help="Also write pyinstrument's HTML here.")
    args = parser.parse_args(argv)
    if args.squad:
        use_squad(args.squad)
    index = Path(args.index)
    profiler = Profiler(interval=0.0005)
    if args.what == "ask":
        pipeline = Pipeline(settings_for(index))
        pipeline.warm_up()
        questions = squad_questions(args.questions, seed=11)
        for q in questions[:10]:
            pipeline.ask(q.question)
        profiler.start()
        for q in questions:
            pipeline.ask(q.question)
        profiler.stop()
    else:
        if not args.corpus:
            parser.error("ingest needs --corpus")
        shutil.rmtree(index, ignore_errors=True)
        pipeline = Pipeline(settings_for(index))
        pipeline.embedder.encode(["warm up"])
        profiler.start()
        pipeline.ingest([args.corpus])
        profiler.stop()
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    if args.html:
        Path(args.html).write_text(profiler.output_html(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
