"""Streaming through ``/api/ask/stream``: time to the first citation, to the first token and to the finished answer,
with a scripted OpenAI-compatible server replying at a fixed token rate, and the server's own overhead per streamed
answer (the whole stream minus the same reply streamed straight from the endpoint by the same client).

Run: ``.venv/bin/python -m bench.streaming [--asks 20] [--tokens-per-s 50] [--out bench/results/streaming.json]``
(needs the web and llm extras; the endpoint is ``tests/openai_server.py``, started as a program).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.measure import machine, percentiles
from bench.serve import RAG, _env, _free_port

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "tests" / "data" / "seed_questions.jsonl"
# 31 tokens of 4 characters: a short answer as an LLM writes one.
REPLY = json.dumps({"answer": "The attack in Taraz took place in 2011, when a gunman killed seven people [S1].",
                    "citations": ["S1"], "abstain": False})


def wait_until_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def stream_once(url: str, question: str) -> dict[str, float]:
    """Milliseconds from the request to the citations, the first piece of text and the finished answer; "llm" is
    1 when the LLM wrote the answer."""
    marks: dict[str, float] = {}
    started = time.perf_counter()
    with httpx.stream("POST", url + "/api/ask/stream", json={"question": question}, timeout=120) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
                key = {"citations": "first_citation_ms", "delta": "first_token_ms", "answer": "answer_ms"}.get(name)
                if key and key not in marks:
                    marks[key] = (time.perf_counter() - started) * 1000
            elif line.startswith("data: ") and "answer_ms" in marks:
                marks["llm"] = float(json.loads(line[6:])["answerer"] == "llm")
    return marks


async def direct(base_url: str, asks: int) -> list[dict[str, float]]:
    """The same reply streamed by the same client straight from the endpoint: the model's share of the time."""
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(base_url=base_url, model="bench", api_key="not-needed", temperature=0)  # type: ignore[arg-type]
    samples = []
    for _ in range(asks + 1):  # the first one warms the client
        started = time.perf_counter()
        first = None
        async for _chunk in model.astream("when was the Taraz attack?"):
            first = first or (time.perf_counter() - started) * 1000
        samples.append({"first_token_ms": first or 0.0, "answer_ms": (time.perf_counter() - started) * 1000})
    return samples[1:]


def summarise(samples: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    return {key: percentiles([s[key] for s in samples]) for key in samples[0] if key != "llm"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asks", type=int, default=20)
    parser.add_argument("--tokens-per-s", type=float, default=50.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "streaming.json")
    args = parser.parse_args()
    questions = [json.loads(line)["question"] for line in SEED.read_text(encoding="utf-8").splitlines() if line]
    work = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        index = work / "index"
        env = _env(index)
        subprocess.run([str(RAG), "ingest", str(ROOT / "corpus")], env=env, check=True, capture_output=True)
        llm_port = _free_port()
        procs.append(subprocess.Popen([sys.executable, str(ROOT / "tests" / "openai_server.py"), "--port",
                                       str(llm_port), "--tokens-per-s", str(args.tokens_per_s), "--reply", REPLY]))
        base_url = f"http://127.0.0.1:{llm_port}/v1"
        wait_until_up(f"http://127.0.0.1:{llm_port}/", procs[-1])
        results: dict[str, object] = {"machine": machine(), "asks": args.asks, "tokens_per_s": args.tokens_per_s,
                                      "reply_tokens": -(-len(REPLY) // 4)}
        for mode, extra in [("extractive", {}), ("llm", {"RAG_LLM_BASE_URL": base_url, "RAG_LLM_MODEL": "bench"})]:
            port = _free_port()
            procs.append(subprocess.Popen([str(RAG), "serve", "--no-ingest", "--port", str(port)],
                                          env={**env, **extra}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            url = f"http://127.0.0.1:{port}"
            wait_until_up(url + "/api/health", procs[-1])
            stream_once(url, questions[0])  # warm
            samples = [stream_once(url, questions[i % len(questions)]) for i in range(args.asks)]
            # Questions the bot abstains on never reach the LLM: they would flatter its timings.
            results[mode] = summarise([s for s in samples if s.get("llm", 1.0) or mode == "extractive"])
            procs.pop().terminate()
        results["endpoint_direct"] = summarise(asyncio.run(direct(base_url, args.asks)))
        llm, endpoint = results["llm"], results["endpoint_direct"]
        assert isinstance(llm, dict)
        results["server_overhead_ms"] = {
            "p50": round(llm["answer_ms"]["p50"] - endpoint["answer_ms"]["p50"], 1),
            "first_token_p50": round(llm["first_token_ms"]["p50"] - endpoint["first_token_ms"]["p50"], 1)}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(json.dumps({k: v for k, v in results.items() if k != "machine"}, indent=2))
    finally:
        for proc in procs:
            proc.terminate()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
