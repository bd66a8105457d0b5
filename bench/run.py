"""Run the benchmarks, print a table and write JSON: `make bench` or `python -m bench.run [--quick]`.

Full run (~100k sentences, tens of minutes on 2 cores): corpora of 1k/10k/100k sentences, ingest vs. raw encode,
warm ask latency per size, quality, cold start, HTTP load, memory, and the LangChain tutorial peer on the
largest corpus. ``--quick`` does the same on 1k/10k with fewer questions and shorter HTTP runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.corpus import SEED_CORPUS, build_corpus, seed_questions, squad_questions, use_squad
from bench.measure import load_average, machine, peak_rss_mb

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = {"1k": 1_000, "10k": 10_000, "100k": 100_000, "1m": 1_000_000}
console = Console()


def _log(message: str) -> None:
    console.print(f"[dim]{datetime.now(UTC):%H:%M:%S}[/] {message}", highlight=False)


def splitter_check(corpus: Path, limit: int = 1500) -> dict[str, object]:
    """Our splitter against plain pysbd on the corpus's paragraphs: sentences/s each, paragraphs that differ."""
    import pysbd

    from rag.ingest.cleaning import content_paragraphs
    from rag.ingest.loaders import find_files, load_document
    from rag.ingest.splitting import _split_block

    paragraphs: list[str] = []
    for path, source in find_files([corpus]):
        doc = load_document(path, source, 10**8)
        paragraphs += [p.text for p in content_paragraphs(doc.text, doc.title)]
        if len(paragraphs) >= limit:
            break
    paragraphs = paragraphs[:limit]
    segmenter = pysbd.Segmenter(language="en", clean=False)

    def clean(pieces: list[str]) -> list[str]:
        return [p.strip() for p in pieces if p.strip()]

    started = time.perf_counter()
    reference = [clean(segmenter.segment(p)) for p in paragraphs]
    pysbd_s = time.perf_counter() - started
    started = time.perf_counter()
    ours = [clean(_split_block(p)) for p in paragraphs]
    ours_s = time.perf_counter() - started
    n = sum(len(r) for r in reference)
    return {"paragraphs": len(paragraphs), "sentences": n, "pysbd_per_s": round(n / pysbd_s, 1),
            "ours_per_s": round(n / ours_s, 1), "speedup": round(pysbd_s / ours_s, 1),
            "paragraphs_differing": sum(a != b for a, b in zip(reference, ours, strict=True))}


def run(args: argparse.Namespace) -> dict[str, object]:
    """Every benchmark in order; returns the results dict (also written as JSON)."""
    from bench.ours import ingest_run, latency_run, quality_run, seed_hit1
    from bench.peer import peer_run
    from bench.serve import Server, cli_cold_start, http_run

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    sizes = args.sizes.split(",")
    largest = sizes[-1]
    latency_qs = squad_questions(args.questions, seed=11)
    quality_qs = squad_questions(args.questions, seed=7)
    seed_qs = seed_questions()
    out: dict[str, object] = {"started": datetime.now(UTC).isoformat(timespec="seconds"),
                              "command": args.command, "machine": machine(), "load_start": load_average(),
                              "quick": args.quick}

    _log("seed-set hit@1 on the seed article alone")
    out["seed_hit1"] = seed_hit1(work / "index-seed", SEED_CORPUS, seed_qs)
    corpora = {}
    for size in sizes:
        _log(f"corpus {size}")
        corpora[size] = build_corpus(work / f"corpus-{size}", SIZES[size])
    _log("splitter vs pysbd")
    out["splitter"] = splitter_check(corpora[sizes[min(1, len(sizes) - 1)]])

    out["ingest"], out["latency"] = {}, {}
    for size in reversed(sizes):  # the largest first, while the machine is freshest
        _log(f"ingest {size}")
        index, saved = work / f"index-{size}", work / f"index-{size}" / "bench-ingest.json"
        if args.reuse and saved.exists():
            out["ingest"][size] = {**json.loads(saved.read_text(encoding="utf-8")), "reused": True}
        else:
            out["ingest"][size] = ingest_run(corpora[size], index, args.batch_size,
                                             reference=SIZES[size] <= SIZES[args.reference_max],
                                             stand_in=args.stand_in and SIZES[size] > SIZES[args.reference_max])
        _log(f"  {out['ingest'][size]}")
    for size in sizes:
        _log(f"latency {size}")
        out["latency"][size] = latency_run(work / f"index-{size}", latency_qs)
        _log(f"  {out['latency'][size]}")

    out["quality"] = {}
    peer_size = args.peer_size or (args.reference_max if args.stand_in else largest)
    for size in sorted(set(sizes[-2:]) | ({peer_size} & set(sizes)), key=lambda s: SIZES[s]):
        _log(f"quality on {size}")
        asked = [q for q in quality_qs if (corpora[size] / q.source).exists()]
        out["quality"][size] = quality_run(work / f"index-{size}", corpora[size], asked, seed_qs)
        _log(f"  {out['quality'][size]}")
    out["bench_process_peak_rss_mb"] = peak_rss_mb()
    index = work / f"index-{largest}"

    _log("cold start: rag ask")
    out["cold_start_cli"] = cli_cold_start(index, latency_qs[0].question)
    if not args.skip_http:
        _log("cold start: rag serve, then HTTP load")
        server = Server(index)
        try:
            out["cold_start_server"] = server.wait_ready(latency_qs[1].question)
            out["http"] = http_run(server, latency_qs, [int(c) for c in args.clients.split(",")],
                                   args.http_seconds, args.http_max_requests)
            out["server_peak_rss_mb"] = server.peak_rss_mb()
        finally:
            server.stop()
    if not args.skip_peer and peer_size in corpora:
        _log(f"peer (LangChain tutorial pipeline) on {peer_size}")
        asked = [q for q in quality_qs if (corpora[peer_size] / q.source).exists()]
        out["peer_size"] = peer_size
        out["peer"] = peer_run(corpora[peer_size], work / f"peer-{peer_size}", asked, seed_qs, latency_qs)
    out["load_end"] = load_average()
    out["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    return out


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"


def print_tables(r: dict) -> None:  # type: ignore[type-arg]
    """The results as tables."""
    m = r["machine"]
    console.print(f"\n[bold]{m['cpu']}[/], {m['cores']} cores, {m['memory_gb']} GB; load {r['load_start']} → "
                  f"{r.get('load_end')}; seed-set hit@1 {r['seed_hit1']}")
    s = r["splitter"]
    console.print(f"splitter: {s['ours_per_s']:.0f} sentences/s vs pysbd {s['pysbd_per_s']:.0f} "
                  f"({s['speedup']}x), {s['paragraphs_differing']} of {s['paragraphs']} paragraphs differ")
    t = Table("size", "sentences", "ingest s", "ingest/s", "raw encode/s", "ratio", "CPU ratio", "own encoder/s",
              "own ratio", "re-sync s", "index MB",
              title="Ingest (end to end vs SentenceTransformer.encode, and vs our encoder alone, same sentences)")
    for size, row in r["ingest"].items():
        if row.get("vectors") == "stand-in":
            t.add_row(size, str(row["sentences"]), "stand-in vectors", "-", "-", "-", "-", "-", "-", "-",
                      str(row["index_mb"]))
            continue
        t.add_row(size, str(row["sentences"]), str(row["ingest_s"]), str(row["ingest_per_s"]),
                  str(row.get("encode_per_s")), str(row.get("ratio")), str(row.get("cpu_ratio")),
                  str(row.get("own_encode_per_s")), str(row.get("own_ratio")), str(row["unchanged_resync_s"]),
                  str(row["index_mb"]))
    console.print(t)
    t = Table("size", "sentences", "p50 ms", "p95 ms", "p99 ms", "retrieve p50", "answer p50", "CPU p50",
              "CPU p95", "steal", title="Warm Pipeline.ask latency (no LLM; CPU = CPU ms of the process per ask; "
                                        "steal = CPU share the hypervisor gave to other guests)")
    for size, row in r["latency"].items():
        t.add_row(size, str(row["sentences"]), str(row["p50"]), str(row["p95"]), str(row["p99"]),
                  str(row["stage_p50"]["retrieve"]), str(row["stage_p50"]["answer"]), str(row["cpu_ms"]["p50"]),
                  str(row["cpu_ms"]["p95"]), str(row.get("steal", "-")))
    console.print(t)
    cs = r.get("cold_start_server", {})
    console.print(f"cold start: rag ask {r['cold_start_cli']['seconds']} s; rag serve API ready "
                  f"{cs.get('api_ready_s')} s, first answer {cs.get('first_answer_s')} s, UI ready "
                  f"{cs.get('ui_ready_s')} s; server RSS after start {cs.get('rss_after_start_mb')} MB, peak "
                  f"{r.get('server_peak_rss_mb')} MB")
    if r.get("http"):
        t = Table("clients", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors",
                  title="HTTP POST /api/ask on loopback")
        for row in r["http"]:
            t.add_row(str(row["clients"]), str(row["requests"]), str(row["rps"]), str(row.get("p50")),
                      str(row.get("p95")), str(row.get("p99")), str(row["errors"]))
        console.print(t)
    for size, q in r["quality"].items():
        console.print(f"quality on {size}: SQuAD hit@1 {q['hit1']}, citation precision@1 {q['precision1']}, "
                      f"seed-set hit@1 {q['seed_hit1']} ({q['squad_questions']} + {q['seed_questions']} questions)")
    p, size = r.get("peer"), r.get("peer_size")
    if p and size:
        q = r["quality"].get(size) or next(iter(r["quality"].values()))
        t = Table("", "citechat", "LangChain tutorial", "ours/peer", title=f"Peer baseline on {size}")
        ours_ingest = r["ingest"][size]["ingest_s"]
        lat = r["latency"][size]
        t.add_row("ingest s", str(ours_ingest), str(p["ingest_s"]), _ratio(ours_ingest, p["ingest_s"]))
        t.add_row("query p50 ms (ours: retrieve+answer)", str(lat["p50"]), str(p["latency"]["p50"]),
                  _ratio(lat["p50"], p["latency"]["p50"]))
        t.add_row("query p95 ms", str(lat["p95"]), str(p["latency"]["p95"]), _ratio(lat["p95"], p["latency"]["p95"]))
        t.add_row("index MB", str(r["ingest"][size]["index_mb"]), str(p["index_mb"]),
                  _ratio(r["ingest"][size]["index_mb"], p["index_mb"]))
        for key, label in (("hit1", "SQuAD hit@1 (top citation holds the answer)"),
                           ("precision1", "citation precision @1"), ("precision_all", "precision, all returned"),
                           ("chars1", "characters in top citation"), ("seed_hit1", "seed-set hit@1")):
            t.add_row(label, str(q[key]), str(p[key]), _ratio(q[key], p[key]))
        console.print(t)


def main(argv: list[str] | None = None) -> int:
    """Parse flags, run, print, save."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1k/10k sentences, 100 questions, 5 s HTTP levels.")
    parser.add_argument("--sizes", help="Comma-separated corpus sizes, smallest first (1k,10k,100k,1m).")
    parser.add_argument("--questions", type=int, help="SQuAD questions for latency and quality.")
    parser.add_argument("--squad", type=Path, help="SQuAD v1.1 file for corpora and questions (default: the "
                        "repository's slice, tests/data/squad-v1.1-slice.json; the figures in docs/benchmarks.md "
                        "use the team's 17-article file).")
    parser.add_argument("--clients", default="1,4,16,50", help="HTTP concurrency levels.")
    parser.add_argument("--http-seconds", type=float, help="Duration of each HTTP level.")
    parser.add_argument("--http-max-requests", type=int, default=3000, help="Cap on requests per HTTP level.")
    parser.add_argument("--batch-size", type=int, default=32,
                        help="Batch size of the raw encode reference (the default RAG_EMBED_BATCH_SIZE).")
    parser.add_argument("--workdir", default=os.environ.get("BENCH_WORKDIR", "/tmp/citechat-bench"),
                        help="Corpora and indexes go here (default /tmp/citechat-bench).")
    parser.add_argument("--reference-max", default="10k", choices=list(SIZES),
                        help="Largest size whose sentences are also encoded by the bare model (the ratio).")
    parser.add_argument("--reuse", action="store_true",
                        help="Reuse an index (and its recorded ingest numbers) from an earlier run in the workdir.")
    parser.add_argument("--stand-in", action="store_true",
                        help="Sizes above --reference-max get stand-in vectors for synthetic filler (bench/standin.py):"
                             " latency and memory only, for a machine too busy to embed them in time.")
    parser.add_argument("--peer-size", choices=list(SIZES), help="Corpus the peer runs on (default: the largest"
                        " corpus with real vectors).")
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--out", help="JSON file to write (default bench/results/<time>-<size>.json).")
    parser.add_argument("--clean", action="store_true", help="Delete the work folder afterwards.")
    args = parser.parse_args(argv)
    if args.squad:
        use_squad(args.squad)
    args.sizes = args.sizes or ("1k,10k" if args.quick else "1k,10k,100k")
    args.questions = args.questions or (100 if args.quick else 300)
    args.http_seconds = args.http_seconds or (5.0 if args.quick else 15.0)
    args.command = "python -m bench.run " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    unknown = [s for s in args.sizes.split(",") if s not in SIZES]
    if unknown:
        parser.error(f"unknown size {unknown[0]!r}; choose from {', '.join(SIZES)}")
    results = run(args)
    print_tables(results)
    RESULTS.mkdir(exist_ok=True)
    largest = args.sizes.split(",")[-1]
    target = Path(args.out) if args.out else RESULTS / f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{largest}.json"
    target.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    console.print(f"results: {target}")
    if args.clean:
        shutil.rmtree(args.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
