"""Load test of ``POST /api/ask`` over loopback: N concurrent clients for D seconds, errors, latency and server RSS.

Run the full version (50 clients, 60 s) against a fresh server over the seed corpus, and append the result to
``docs/benchmarks.md`` under "## Load (reliability)":

    .venv/bin/python -m bench.load --clients 50 --seconds 60 --write-docs

or point it at a running server (``--url http://127.0.0.1:7860 --pid <server pid>``). All clients share one
address, so a server started here runs with ``RAG_RATE_LIMIT_PER_MINUTE=0``; a server you start yourself needs
the same, or every client is throttled together. Loopback only: the URL must be on 127.0.0.1 or localhost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "tests" / "data" / "seed_questions.jsonl"
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Load (reliability)"
# Questions the corpus does not answer and odd inputs are part of real traffic too.
EXTRA = ["What is the capital of Japan?", "who won the 1998 world cup?", "Taraz?", "and then what happened there?",
         "<script>alert(1)</script> when was the attack?", "Когда было нападение?"]


def questions() -> list[str]:
    """The seed questions plus some that must be abstained on."""
    seed = []
    if SEED.exists():
        seed = [json.loads(line)["question"] for line in SEED.read_text(encoding="utf-8").splitlines() if line.strip()]
    return (seed or ["when was the Taraz attack?"]) + EXTRA


@dataclass
class LoadResult:
    """What one run measured."""

    clients: int
    seconds: float
    requests: int = 0
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    throughput_rps: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    rss_mb_start: float | None = None
    rss_mb_end: float | None = None
    rss_mb_max: float | None = None
    rss_growth_pct: float | None = None
    rss_mb_every_10s: list[float] = field(default_factory=list)

    def summary(self) -> str:
        """One line for a terminal."""
        mem = (f", server RSS {self.rss_mb_start:.0f} → {self.rss_mb_end:.0f} MB (max {self.rss_mb_max:.0f}, "
               f"{self.rss_growth_pct:+.1f}%)" if self.rss_mb_start is not None else "")
        return (f"{self.clients} clients × {self.seconds:.0f}s: {self.requests} requests, {self.errors} errors, "
                f"{self.throughput_rps:.1f} req/s, p50 {self.p50_ms:.0f} ms, p95 {self.p95_ms:.0f} ms, "
                f"p99 {self.p99_ms:.0f} ms, max {self.max_ms:.0f} ms{mem}")


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process in MB (Linux /proc), or None when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def check_loopback(url: str) -> None:
    """Refuse anything but loopback: this tool must not load someone else's server."""
    host = urlparse(url).hostname
    if host not in {"127.0.0.1", "localhost", "::1"}:
        raise SystemExit(f"refusing to load {host}: loopback only")


async def _client(url: str, qs: list[str], offset: int, stop_at: float, latencies: list[float],
                  result: LoadResult) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        i = offset
        while time.monotonic() < stop_at:
            question = qs[i % len(qs)]
            i += 1
            started = time.perf_counter()
            try:
                response = await http.post("/api/ask", json={"question": question})
                status = str(response.status_code)
                ok = response.status_code == 200 and "answer" in response.json()
            except (httpx.HTTPError, ValueError) as exc:
                status, ok = type(exc).__name__, False
            latencies.append((time.perf_counter() - started) * 1000)
            result.requests += 1
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if not ok:
                result.errors += 1
                result.error_kinds[status] = result.error_kinds.get(status, 0) + 1


def run_load(url: str, clients: int = 50, seconds: float = 60, pid: int | None = None) -> LoadResult:
    """Drive ``clients`` concurrent askers against ``url`` for ``seconds``; sample the server's RSS if ``pid``."""
    check_loopback(url)
    qs = questions()
    result = LoadResult(clients=clients, seconds=seconds)
    latencies: list[float] = []
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            value = rss_mb(pid) if pid else None
            if value is not None:
                samples.append(value)
            done.wait(1.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    async def main() -> None:
        stop_at = time.monotonic() + seconds
        await asyncio.gather(*(_client(url, qs, i * 7, stop_at, latencies, result) for i in range(clients)))

    started = time.monotonic()
    asyncio.run(main())
    elapsed = time.monotonic() - started
    done.set()
    sampler.join(5)
    result.throughput_rps = result.requests / elapsed if elapsed else 0.0
    result.p50_ms, result.p95_ms = _percentile(latencies, 0.5), _percentile(latencies, 0.95)
    result.p99_ms, result.max_ms = _percentile(latencies, 0.99), max(latencies, default=0.0)
    if len(samples) >= 4:
        quarter = max(1, len(samples) // 4)
        # Medians of the first and last quarter: one garbage-collection spike does not count as growth.
        result.rss_mb_start = statistics.median(samples[:quarter])
        result.rss_mb_end = statistics.median(samples[-quarter:])
        result.rss_mb_max = max(samples)
        result.rss_growth_pct = 100 * (result.rss_mb_end - result.rss_mb_start) / result.rss_mb_start
        result.rss_mb_every_10s = [round(v) for v in samples[::10]]
    return result


def warm_up(url: str, rounds: int = 2) -> None:
    """Ask every question a few times so caches and lazy loads are filled before measuring memory."""
    with httpx.Client(base_url=url, timeout=300) as http:
        for _ in range(rounds):
            for question in questions():
                http.post("/api/ask", json={"question": question})


def start_server(port: int) -> tuple[subprocess.Popen[bytes], tempfile.TemporaryDirectory[str]]:
    """`rag serve` over a fresh index of the seed corpus, rate limit off; returns the process and its temp dir."""
    tmp = tempfile.TemporaryDirectory(prefix="rag-load-")
    env = {**os.environ, "RAG_INDEX_DIR": str(Path(tmp.name) / "index"), "RAG_COLLECTION": "loadtest",
           "RAG_RATE_LIMIT_PER_MINUTE": "0", "RAG_CORPUS_DIR": str(ROOT / "corpus"), "HF_HUB_OFFLINE": "1",
           "ANONYMIZED_TELEMETRY": "False", "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, "-m", "rag", "serve", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return proc, tmp
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("the server did not start within 300 s")


def write_docs(result: LoadResult, note: str) -> None:
    """Replace (or add) the "Load (reliability)" section of docs/benchmarks.md; other sections are kept."""
    body = (f"{SECTION}\n\n"
            "`bench/load.py`: concurrent clients POST `/api/ask` over loopback against `rag serve` (seed corpus, "
            "extractive answerer, rate limit off because every client has the same address), cycling through the "
            "seed questions plus six unanswerable or odd ones. Server memory is the resident set of the server "
            "process sampled each second (medians of the first and last quarter of the run).\n\n"
            "| clients | seconds | requests | errors | req/s | p50 ms | p95 ms | p99 ms | max ms | RSS start → end MB "
            "| RSS growth |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
            f"| {result.clients} | {result.seconds:.0f} | {result.requests} | {result.errors} | "
            f"{result.throughput_rps:.1f} | {result.p50_ms:.0f} | {result.p95_ms:.0f} | {result.p99_ms:.0f} | "
            f"{result.max_ms:.0f} | {result.rss_mb_start or 0:.0f} → {result.rss_mb_end or 0:.0f} | "
            f"{result.rss_growth_pct or 0:+.1f}% |\n\n{note}\n")
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n"
    if SECTION in text:
        head, _, rest = text.partition(SECTION)
        following = rest.find("\n## ")
        text = head + body + (rest[following + 1:] if following >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + body
    DOCS.parent.mkdir(exist_ok=True)
    DOCS.write_text(text, encoding="utf-8")


def main() -> None:
    """Command line: start a server (or use --url), warm it up, load it, print and optionally record."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--url", help="a running server (loopback) instead of starting one")
    parser.add_argument("--pid", type=int, help="the running server's pid, to sample its memory")
    parser.add_argument("--port", type=int, default=7871)
    parser.add_argument("--write-docs", action="store_true", help=f"record the run in {DOCS.name}")
    args = parser.parse_args()
    if not 1 <= args.clients <= 200 or not 1 <= args.seconds <= 600:
        raise SystemExit("bounded: 1-200 clients, 1-600 seconds")
    proc = tmp = None
    url, pid = args.url, args.pid
    if url is None:
        proc, tmp = start_server(args.port)
        url, pid = f"http://127.0.0.1:{args.port}", proc.pid
    try:
        warm_up(url)
        result = run_load(url, args.clients, args.seconds, pid)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
        if tmp is not None:
            tmp.cleanup()
    print(result.summary())
    print(json.dumps(asdict(result), indent=2))
    if args.write_docs:
        cpu = os.cpu_count()
        write_docs(result, f"Measured {time.strftime('%Y-%m-%d')} on a {cpu}-core machine shared with other "
                           "jobs; the numbers are for this machine only. A short version (10 clients, ~10 s) runs in "
                           "the test suite (`tests/test_reliability_load.py`) and asserts 0 errors.")


if __name__ == "__main__":
    main()
