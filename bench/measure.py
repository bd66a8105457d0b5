"""Small measuring helpers: percentiles, process memory, folder sizes, a description of the machine."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    """p50/p95/p99/mean of latencies in milliseconds."""
    if not samples_ms:
        return {"n": 0}
    a = np.asarray(samples_ms, dtype=float)
    return {"n": len(a), "p50": round(float(np.percentile(a, 50)), 2), "p95": round(float(np.percentile(a, 95)), 2),
            "p99": round(float(np.percentile(a, 99)), 2), "mean": round(float(a.mean()), 2)}


def _status_mb(field: str, pid: int | None) -> float:
    """A kB field of /proc/<pid>/status in MB (0.0 if absent)."""
    status = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    for line in status.splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def peak_rss_mb(pid: int | None = None) -> float:
    """Peak resident memory (VmHWM) of a process in MB; this process by default."""
    return _status_mb("VmHWM", pid)


def rss_mb(pid: int | None = None) -> float:
    """Current resident memory (VmRSS) of a process in MB."""
    return _status_mb("VmRSS", pid)


def dir_mb(path: Path) -> float:
    """Bytes on disk under a folder, in MB."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_blocks * 512
    return round(total / 2**20, 1)


def load_average() -> list[float]:
    """1/5/15-minute load averages (other work on the machine skews every number)."""
    return [round(x, 2) for x in os.getloadavg()]


def cpu_times() -> list[int]:
    """The machine's CPU time counters (jiffies) from /proc/stat: user … steal."""
    return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def steal_share(before: list[int], after: list[int]) -> float:
    """Share of CPU time the hypervisor gave to other guests between two ``cpu_times`` readings.

    The load average only sees this machine's own work; on a shared host, steal is what made the same code
    measure 15 ms one minute and 20 ms the next.
    """
    delta = [b - a for a, b in zip(before, after, strict=True)]
    return round(delta[7] / max(1, sum(delta)), 3)


def machine() -> dict[str, object]:
    """CPU, cores, memory and software versions."""
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    import chromadb
    import sentence_transformers
    import torch

    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem_kb / 2**20, 1),
            "python": platform.python_version(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "sentence_transformers": sentence_transformers.__version__, "chromadb": chromadb.__version__,
            "platform": platform.platform()}


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """Measure a block: the list holds the elapsed seconds afterwards."""
    out: list[float] = []
    started = time.perf_counter()
    try:
        yield out
    finally:
        out.append(time.perf_counter() - started)
