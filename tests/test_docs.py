"""Docs match the code: every setting is in the README table, and the README's commands exist."""

from rag.config import Settings

from .conftest import ROOT


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [f"RAG_{name.upper()}" for name in Settings.model_fields if f"`RAG_{name.upper()}`" not in readme]
    assert missing == [], "run: .venv/bin/python scripts/settings_table.py"


def test_readme_starts_with_the_two_make_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert readme.index("make run") < readme.index("make test") < readme.index("## A tour")
    assert "\nrun:" in makefile and "\ntest:" in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
