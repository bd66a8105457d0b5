"""The web app: FastAPI with the Gradio chat mounted (placeholder until the UI lands)."""

from __future__ import annotations

import logging

from rag.config import Settings
from rag.pipeline import Pipeline

log = logging.getLogger(__name__)


def build_app(pipeline: Pipeline):  # type: ignore[no-untyped-def]
    """FastAPI app serving the chat UI at / and the HTTP API under /api."""
    import gradio as gr
    from fastapi import FastAPI

    api = FastAPI(title="citechat")

    @api.get("/api/health")
    def health() -> dict[str, object]:
        return {"status": "ok", "sentences": len(pipeline.catalog())}

    def respond(message: str, history: list[dict]) -> str:
        turns = [{"role": m["role"], "content": str(m["content"])} for m in history
                 if m.get("role") in ("user", "assistant") and isinstance(m.get("content"), str)]
        answer = pipeline.ask(message, history=turns)
        sources = "\n".join(f"[{i}] {c.source}: {c.text}" for i, c in enumerate(answer.citations, 1))
        return f"{answer.answer}\n\n{sources}" if sources else answer.answer

    chat = gr.ChatInterface(respond, title="citechat")
    return gr.mount_gradio_app(api, chat, path="/")


def serve(settings: Settings, ingest_first: bool = True) -> None:
    """Sync the corpus (unless told not to), load everything, then serve until interrupted."""
    import uvicorn

    pipeline = Pipeline(settings)
    if ingest_first and settings.corpus_dir.exists():
        print(pipeline.ingest([settings.corpus_dir]).summary(), flush=True)
    pipeline.warm_up()
    uvicorn.run(build_app(pipeline), host=settings.host, port=settings.port, log_level="warning")
