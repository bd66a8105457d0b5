"""A short load run (10 clients, ~10 s) over loopback: every request answered, none failed.

The full run (50 clients, 60 s, server memory sampled) is ``python -m bench.load``; see docs/benchmarks.md.
"""

from __future__ import annotations

import os

import pytest

from bench.load import run_load, warm_up
from rag import Pipeline
from tests.live_server import LiveApp, shared_app, start_app


@pytest.fixture
def live_app(tmp_path_factory: pytest.TempPathFactory) -> LiveApp:
    return shared_app(tmp_path_factory)


@pytest.mark.slow
def test_ten_clients_for_ten_seconds_get_no_errors(live_app: LiveApp) -> None:
    # Same index as the shared app; rate limit off because every client comes from 127.0.0.1.
    pipeline = Pipeline(live_app.settings.with_overrides(rate_limit_per_minute=0))
    with start_app(pipeline) as server:
        warm_up(server.url, rounds=1)
        result = run_load(server.url, clients=10, seconds=10, pid=os.getpid())
    print(result.summary())
    assert result.errors == 0, result.error_kinds
    assert result.requests >= 10 and result.statuses == {"200": result.requests}


def test_load_tool_refuses_non_loopback_targets() -> None:
    with pytest.raises(SystemExit, match="loopback only"):
        run_load("http://example.com:80", clients=1, seconds=1)
