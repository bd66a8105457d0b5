"""The app as a user runs it: cold start of `rag ask` and `rag serve`, HTTP load on loopback, peak memory."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.corpus import Question
from bench.measure import load_average, peak_rss_mb, percentiles, rss_mb

RAG = Path(sys.executable).with_name("rag")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(index_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    # No rate limit: the load test is one client address sending hundreds of requests a minute. No question
    # cache: the clients cycle through the question set, and every request must embed its question.
    env.update({"RAG_INDEX_DIR": str(index_dir), "RAG_COLLECTION": "bench", "RAG_RATE_LIMIT_PER_MINUTE": "0",
                "RAG_QUESTION_CACHE": "0",
                "ANONYMIZED_TELEMETRY": "False", "GRADIO_ANALYTICS_ENABLED": "False"})
    return env


def cli_cold_start(index_dir: Path, question: str) -> dict[str, float]:
    """Wall time of a fresh `rag ask` process: interpreter start, imports, model, snapshot, one answer."""
    started = time.perf_counter()
    done = subprocess.run([str(RAG), "ask", question, "--json"], env=_env(index_dir), capture_output=True,
                          text=True, timeout=300)
    elapsed = time.perf_counter() - started
    return {"seconds": round(elapsed, 2), "exit_code": done.returncode}


class Server:
    """`rag serve --no-ingest` in a child process, timed from spawn to API ready and to UI ready."""

    def __init__(self, index_dir: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([str(RAG), "serve", "--no-ingest", "--port", str(self.port)],
                                     env=_env(index_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.timings: dict[str, float] = {}

    def wait_ready(self, question: str, timeout: float = 300) -> dict[str, float]:
        """Seconds from spawn to: /api/health 200, first answer, and the chat page (/) served."""
        deadline = self.started + timeout
        with httpx.Client(timeout=30) as client:
            while time.perf_counter() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"rag serve exited with {self.proc.returncode}")
                try:
                    if client.get(f"{self.url}/api/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
            self.timings["api_ready_s"] = time.perf_counter() - self.started
            client.post(f"{self.url}/api/ask", json={"question": question}).raise_for_status()
            self.timings["first_answer_s"] = time.perf_counter() - self.started
            page = client.get(f"{self.url}/")
            page.raise_for_status()
            self.timings["ui_ready_s"] = time.perf_counter() - self.started
        self.timings["rss_after_start_mb"] = rss_mb(self.proc.pid)
        return {k: round(v, 2) for k, v in self.timings.items()}

    def peak_rss_mb(self) -> float:
        """Peak resident memory of the server process so far."""
        return peak_rss_mb(self.proc.pid)

    def stop(self) -> None:
        """Terminate the child server."""
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def _load(url: str, questions: list[Question], clients: int, seconds: float, max_requests: int
                ) -> dict[str, object]:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    sent = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def worker(offset: int) -> None:
            nonlocal sent
            i = offset
            while time.perf_counter() < deadline and sent < max_requests:
                sent += 1
                q = questions[i % len(questions)].question
                i += clients
                t = time.perf_counter()
                try:
                    r = await client.post(f"{url}/api/ask", json={"question": q})
                    key = str(r.status_code)
                except httpx.HTTPError as exc:
                    key = type(exc).__name__
                latencies.append((time.perf_counter() - t) * 1000)
                statuses[key] = statuses.get(key, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        elapsed = time.perf_counter() - started
    ok = statuses.get("200", 0)
    return {"clients": clients, "requests": len(latencies), "seconds": round(elapsed, 2),
            "rps": round(ok / elapsed, 1), "errors": len(latencies) - ok, "statuses": statuses,
            **{k: v for k, v in percentiles(latencies).items() if k in ("p50", "p95", "p99")}}


def http_run(server: Server, questions: list[Question], levels: list[int], seconds: float,
             max_requests: int) -> list[dict[str, object]]:
    """Requests/s, latency and errors of POST /api/ask at each concurrency level (bounded in time and count)."""
    out = []
    for clients in levels:
        result = asyncio.run(_load(server.url, questions, clients, seconds, max_requests))
        result["load"] = load_average()
        out.append(result)
    return out
