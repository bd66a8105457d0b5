"""Launch the citechat web app (chat UI + HTTP API) with settings from RAG_* environment variables."""

from rag.cli import app

if __name__ == "__main__":
    app(["serve"], prog_name="rag")
