"""Render a results JSON of `bench.run` as Markdown tables: `python -m bench.report bench/results/X.json`."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _row(*cells: object) -> str:
    return "| " + " | ".join("-" if c is None else str(c) for c in cells) + " |"


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    return [_row(*header), _row(*["---"] * len(header)), *(_row(*r) for r in rows)]


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else "-"


def render(r: dict) -> str:  # type: ignore[type-arg]
    """The results as Markdown."""
    m = r["machine"]
    out = [f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB RAM, Python {m['python']}, "
           f"torch {m['torch']}, sentence-transformers {m['sentence_transformers']}, chromadb {m['chromadb']}. "
           f"Load average at start {r['load_start']}, at end {r.get('load_end')} (other work shared the cores).",
           "", f"Command: `{r['command']}` (started {r['started']}, finished {r.get('finished')}).", ""]
    s = r["splitter"]
    out += [f"Seed-set hit@1 (seed article alone): **{r['seed_hit1']}**. Splitter: {s['ours_per_s']} sentences/s "
            f"vs plain pysbd {s['pysbd_per_s']} ({s['speedup']}×); {s['paragraphs_differing']} of "
            f"{s['paragraphs']} paragraphs split differently.", ""]
    rows = []
    for size, row in r["ingest"].items():
        if row.get("vectors") == "stand-in":
            rows.append([size, row["sentences"], row["ingest_s"], "stand-in vectors", "-", "-", "-", "-", "-", "-",
                         row["index_mb"]])
        else:
            rows.append([size, row["sentences"], row["ingest_s"], row["ingest_per_s"], row.get("encode_per_s"),
                         row.get("ratio"), row.get("cpu_ratio"), row.get("own_encode_per_s"), row.get("own_ratio"),
                         row["unchanged_resync_s"], row["index_mb"]])
    out += ["**Ingest** (end to end, fresh index, vs `SentenceTransformer.encode` on the same sentences in the "
            "same process, and vs the encoder the ingest runs, alone):", "",
            *_table(["size", "sentences", "ingest s", "ingest sentences/s", "raw encode sentences/s",
                     "ratio (wall)", "ratio (CPU s)", "own encoder sentences/s", "own ratio", "unchanged re-sync s",
                     "index MB"], rows), ""]
    rows = [[size, row["sentences"], row["p50"], row["p95"], row["p99"], row["stage_p50"]["retrieve"],
             row["stage_p50"]["answer"], row["cpu_ms"]["p50"], row["cpu_ms"]["p95"], row.get("steal", "-")]
            for size, row in r["latency"].items()]
    out += ["**Warm `Pipeline.ask` latency** (retrieval + extractive answer, no LLM; CPU = CPU ms of the process "
            "per ask; steal = share of the machine's CPU time the hypervisor gave to other guests meanwhile):", "",
            *_table(["size", "sentences", "p50 ms", "p95 ms", "p99 ms", "retrieve p50", "answer p50", "CPU p50",
                     "CPU p95", "steal"], rows), ""]
    cs, cli = r.get("cold_start_server", {}), r.get("cold_start_cli", {})
    out += [f"**Cold start** on the largest index: `rag ask` process start to printed answer {cli.get('seconds')} s; "
            f"`rag serve --no-ingest` spawn to API ready {cs.get('api_ready_s')} s, to first answer "
            f"{cs.get('first_answer_s')} s, to chat page served {cs.get('ui_ready_s')} s.", "",
            f"**Memory**: server RSS after start {cs.get('rss_after_start_mb')} MB, peak during the HTTP runs "
            f"{r.get('server_peak_rss_mb')} MB (largest index); the benchmark process itself peaked at "
            f"{r.get('bench_process_peak_rss_mb')} MB.", ""]
    if r.get("http"):
        rows = [[h["clients"], h["requests"], h["seconds"], h["rps"], h.get("p50"), h.get("p95"), h.get("p99"),
                 h["errors"]] for h in r["http"]]
        out += ["**HTTP** `POST /api/ask` on loopback against `rag serve` (client in another process on the same "
                "2 cores; questions cycle through the latency set):", "",
                *_table(["clients", "requests", "s", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors"], rows), ""]
    rows = [[size, q["squad_questions"], q["hit1"], q["precision1"], q["precision_all"], q["chars1"],
             q["seed_hit1"]] for size, q in r["quality"].items()]
    out += ["**Citation quality**:", "",
            *_table(["index", "SQuAD questions", "hit@1", "precision@1", "precision (all cited)",
                     "chars in top citation", "seed-set hit@1"], rows), ""]
    p, size = r.get("peer"), r.get("peer_size")
    if p and size:
        q = r["quality"].get(size) or next(iter(r["quality"].values()))
        ing, lat = r["ingest"][size], r["latency"][size]
        rows = [["ingest s", ing["ingest_s"], p["ingest_s"], _ratio(ing["ingest_s"], p["ingest_s"])],
                ["query p50 ms (ours: retrieve + answer)", lat["p50"], p["latency"]["p50"],
                 _ratio(lat["p50"], p["latency"]["p50"])],
                ["query p95 ms", lat["p95"], p["latency"]["p95"], _ratio(lat["p95"], p["latency"]["p95"])],
                ["index MB", ing["index_mb"], p["index_mb"], _ratio(ing["index_mb"], p["index_mb"])]]
        for key, label in (("hit1", "SQuAD hit@1 (top citation holds the answer)"),
                           ("precision1", "citation precision@1"), ("precision_all", "precision, all cited"),
                           ("chars1", "characters in the top citation"), ("seed_hit1", "seed-set hit@1")):
            rows.append([label, q[key], p[key], _ratio(q[key], p[key])])
        out += [f"**Peer baseline** on {size} ({p['chunks']} chunks of ≤1000 characters, k=4):", "",
                *_table(["", "citechat", "LangChain tutorial", "ours/peer"], rows), ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Print the Markdown for one results file."""
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m bench.report RESULTS.json", file=sys.stderr)
        return 2
    print(render(json.loads(Path(args[0]).read_text(encoding="utf-8"))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
