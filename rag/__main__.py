"""``python -m rag``."""

from rag.cli import app

app(prog_name="rag")
