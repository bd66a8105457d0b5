"""The `rag` command: --json contract and exit codes, run as a real subprocess."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import CORPUS


def rag(*args: str, index: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rag", *args, "--index", str(index)], capture_output=True,
                          text=True, timeout=300, env={**__import__("os").environ, "RAG_COLLECTION": "clitest"})


@pytest.mark.slow  # real `rag` subprocesses, each loading the model
def test_cli_ingest_ask_json_and_errors(tmp_path: Path) -> None:
    index = tmp_path / "ix"
    done = rag("ingest", str(CORPUS), index=index)
    assert done.returncode == 0, done.stderr
    assert "added 1" in done.stdout and "unchanged 0" in done.stdout

    again = rag("ingest", str(CORPUS), "--json", index=index)
    assert json.loads(again.stdout)["unchanged"] == 1

    asked = rag("ask", "when was the Taraz attack?", "--json", "-k", "2", index=index)
    assert asked.returncode == 0, asked.stderr
    data = json.loads(asked.stdout)
    assert "2011" in data["answer"] and not data["abstained"] and len(data["citations"]) == 2
    original = next(CORPUS.glob("*.txt")).read_text(encoding="utf-8")
    for c in data["citations"]:
        assert original[c["start"]:c["end"]] == c["text"]

    empty = rag("ask", "   ", index=index)
    assert empty.returncode != 0 and "empty" in empty.stderr and "Traceback" not in empty.stderr
    missing = rag("ingest", str(tmp_path / "nowhere"), index=index)
    assert missing.returncode != 0 and "no such file" in missing.stderr


@pytest.mark.slow  # real `rag` subprocesses, each loading the model
def test_cli_ask_without_index_says_to_ingest(tmp_path: Path) -> None:
    result = rag("ask", "anything?", index=tmp_path / "fresh")
    assert result.returncode != 0 and "rag ingest" in result.stderr and "Traceback" not in result.stderr


def test_version_is_the_installed_distributions() -> None:
    from importlib.metadata import version

    out = subprocess.run([sys.executable, "-m", "rag", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"citechat {version('citechat')}"
