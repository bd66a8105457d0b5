"""What a Prometheus scrape of ``/metrics`` costs: a real ``rag serve`` over the seed corpus, after traffic of asks,
unknown sources and page loads, scraped over loopback while idle and while clients ask.

Run: ``.venv/bin/python -m bench.metrics_scrape [--scrapes 500] [--out bench/results/metrics.json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.corpus import SEED_CORPUS, seed_questions
from bench.measure import load_average, machine, percentiles
from bench.serve import Server
from rag import Pipeline, Settings

ROOT = Path(__file__).resolve().parents[1]


def traffic(url: str, asks: int, misses: int) -> dict[str, int]:
    """Asks cycling through the seed questions, sources that do not exist (each a new path), page loads."""
    questions = [q.question for q in seed_questions()]
    statuses: dict[str, int] = {}
    with httpx.Client(timeout=60) as client:
        calls = [("POST", "/api/ask", questions[i % len(questions)]) for i in range(asks)]
        calls += [("GET", f"/api/sources/{uuid.uuid4().hex}.txt", None) for _ in range(misses)]
        calls += [("GET", path, None) for path in ("/", "/widget.js", "/embed", "/api/health", "/nope") * 10]
        for method, path, question in calls:
            response = client.request(method, url + path, json={"question": question} if question else None)
            statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
    return statuses


def cpu_ms(pid: int) -> float:
    """CPU time (user + system) a process has used so far, in milliseconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def scrape_times(url: str, scrapes: int, path: str = "/metrics") -> tuple[list[float], int, str]:
    """Client-side milliseconds of ``scrapes`` sequential GETs of ``path`` on one connection, the size of the
    last body and the body."""
    times: list[float] = []
    body = ""
    with httpx.Client(timeout=30) as client:
        for _ in range(scrapes):
            started = time.perf_counter()
            response = client.get(url + path)
            times.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            body = response.text
    return times, len(body.encode()), body


async def _asking(url: str, clients: int, stop: asyncio.Event) -> int:
    questions = [q.question for q in seed_questions()]
    done = 0
    async with httpx.AsyncClient(timeout=60) as client:

        async def worker(offset: int) -> None:
            nonlocal done
            i = offset
            while not stop.is_set():
                await client.post(url + "/api/ask", json={"question": questions[i % len(questions)]})
                i, done = i + clients, done + 1

        await asyncio.gather(*(worker(i) for i in range(clients)))
    return done


async def scrape_under_load(url: str, scrapes: int, clients: int) -> tuple[list[float], int]:
    """Scrape times while ``clients`` ask without pause; also the number of asks answered meanwhile."""
    stop = asyncio.Event()
    asking = asyncio.create_task(_asking(url, clients, stop))
    await asyncio.sleep(1.0)
    times = await asyncio.to_thread(lambda: scrape_times(url, scrapes)[0])
    stop.set()
    return times, await asking


def series(body: str) -> dict[str, object]:
    """Samples in a scrape, in all and of the HTTP request counter, the route labels seen, and the server's own
    mean time per scrape (its latency histogram of /metrics)."""
    families = list(text_string_to_metric_families(body))
    samples = [s for f in families for s in f.samples]
    routes = {s.labels["route"] for s in samples if s.name == "citechat_http_requests_total"}
    own = {s.name: s.value for s in samples if s.labels.get("route") == "/metrics"
           and s.name.startswith("citechat_http_request_duration_seconds_")}
    return {"samples": len(samples), "request_counter_series": sum(
        s.name == "citechat_http_requests_total" for s in samples), "route_labels": sorted(routes),
        "server_side_mean_ms": round(1000 * own["citechat_http_request_duration_seconds_sum"]
                                     / own["citechat_http_request_duration_seconds_count"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scrapes", type=int, default=500)
    parser.add_argument("--asks", type=int, default=100)
    parser.add_argument("--misses", type=int, default=400, help="requests for sources that do not exist")
    parser.add_argument("--clients", type=int, default=4, help="clients asking during the loaded scrapes")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "metrics.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="citechat-metrics-") as tmp:
        index_dir = Path(tmp) / "index"
        Pipeline(Settings(index_dir=index_dir, collection="bench", corpus_dir=SEED_CORPUS)).ingest()
        server = Server(index_dir)
        try:
            server.wait_ready(seed_questions()[0].question)
            statuses = traffic(server.url, args.asks, args.misses)
            before = cpu_ms(server.proc.pid)
            health = scrape_times(server.url, args.scrapes, "/api/health")[0]
            between = cpu_ms(server.proc.pid)
            idle, size, body = scrape_times(server.url, args.scrapes)
            after = cpu_ms(server.proc.pid)
            loaded, answered = asyncio.run(scrape_under_load(server.url, args.scrapes // 2, args.clients))
            load = load_average()
        finally:
            server.stop()

    result = {
        "command": "python -m bench.metrics_scrape " + " ".join(
            f"--{k} {v}" for k, v in vars(args).items() if k != "out"),
        "machine": machine(), "load_average": load,
        "traffic_before": {"asks": args.asks, "unknown_sources": args.misses, "statuses": statuses},
        "scrape_bytes": size, **series(body),
        "idle_ms": percentiles(idle), "health_idle_ms": percentiles(health),
        "server_cpu_ms_per_request": {"metrics": round((after - between) / args.scrapes, 2),
                                      "health": round((between - before) / args.scrapes, 2)},
        "while_asking_ms": {**percentiles(loaded), "clients": args.clients, "asks_answered_meanwhile": answered},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("scrape_bytes", "samples", "route_labels", "server_side_mean_ms",
                                            "server_cpu_ms_per_request", "idle_ms", "health_idle_ms",
                                            "while_asking_ms")}, indent=2))


if __name__ == "__main__":
    main()
