"""One place for every setting: environment variables with a ``RAG_`` prefix, overridable by CLI flags."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.errors import RagError

# Defaults for the libraries underneath, applied by ``apply_process_defaults`` from the entry points (the CLI, the
# server, ``Pipeline``) before those libraries load; a value already in the environment wins.
PROCESS_DEFAULTS = {
    # The model ships in a package: nothing may reach for a model hub.
    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error", "TOKENIZERS_PARALLELISM": "false",
    # OpenMP workers that spin while waiting steal the CPU from everything else on a shared machine; measured under
    # load, a 2-thread question embedding took ~1 s spinning vs ~0.18 s passive (docs/benchmarks.md). Read when
    # ONNX Runtime or torch loads.
    "OMP_WAIT_POLICY": "PASSIVE",
    # Chroma's and Gradio's usage reports (read when they are imported).
    "ANONYMIZED_TELEMETRY": "False", "GRADIO_ANALYTICS_ENABLED": "False",
}


def apply_process_defaults() -> None:
    """Set ``PROCESS_DEFAULTS`` in the environment where unset; idempotent."""
    for name, value in PROCESS_DEFAULTS.items():
        os.environ.setdefault(name, value)


# What Chroma accepts as a collection name; the web layer checks names callers send against it too.
COLLECTION_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$"


class Settings(BaseSettings):
    """citechat configuration; every field reads ``RAG_<NAME>`` from the environment."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore")

    corpus_dir: Path = Field(Path("corpus"), description="Folder of articles ingested by default.")
    index_dir: Path = Field(Path(".rag-index"), description="Folder of the persistent index.")
    chroma_url: str | None = Field(None, description="host:port of a Chroma server; embedded store if unset.")
    collection: str = Field("citechat", pattern=COLLECTION_NAME,
                            description="Chroma collection name (3+ characters: letters, digits, '.', '_', '-').")
    embed_batch_size: int = Field(32, ge=1, description="Sentences per embedding batch (grouped by length).")
    embed_threads: int = Field(0, ge=0, description=(
        "Batches embedded side by side in bulk (ingest, an evaluation's questions), one thread each; 0 = every"
        " core. A question being asked is always embedded on one thread."))
    encoder: Literal["onnx", "torch"] = Field("onnx", description=(
        "How MiniLM runs: 'onnx' (ONNX Runtime on a graph exported once from the packaged weights; same vectors,"
        " no torch import when answering) or 'torch' (sentence-transformers). 'onnx' falls back to 'torch' if"
        " the export fails."))
    question_precision: Literal["int8", "float32"] = Field("int8", description=(
        "The packaged model's question vector on ONNX (the one the abstention model reads, and the ranking one with"
        " RAG_QUESTION_ENCODER=packaged): 'int8' (a quantised copy of the graph, made once; ~2x faster, same"
        " retrieval quality within noise) or 'float32'. Indexed sentences always get the full-precision vectors."))
    question_encoder: Literal["tuned", "packaged"] = Field("tuned", description=(
        "What embeds questions for ranking: 'tuned' (the packaged MiniLM fine-tuned on SQuAD questions, shipped as an"
        " int8 graph; docs/quality.md) or 'packaged' (the packaged model itself, as RAG_QUESTION_PRECISION says)."
        " Sentences always get the packaged model's vectors, so either works on any index."))
    question_cache: int = Field(1024, ge=0, description=(
        "Question vectors kept per process, so a repeated question is not embedded again; 0 = off."))
    model_cache_dir: Path | None = Field(None, description=(
        "Folder of the exported ONNX model; unset = $XDG_CACHE_HOME/citechat or ~/.cache/citechat."))
    top_k: int = Field(3, ge=1, le=50, description="Citations returned per answer.")
    candidates: int = Field(50, ge=5, le=1000, description="Candidates fetched from each retriever before fusion.")
    abstain_threshold: float | None = Field(None, ge=0.0, le=1.0, description=(
        "Answer only when P(answerable) is at least this; unset, the abstention model's own: 0.19 with the reader"
        " on, 0.18 with RAG_READER=off, each keeping false abstention at or under 3% on the SQuAD tuning articles on"
        " large and small indexes, 1-4% on held-out ones (docs/quality.md)."))
    reader: Literal["on", "off"] = Field("on", description=(
        "The trained span reader (docs/reader.md) picks the short answer and the sentence holding it among the"
        " top candidates, and its confidence informs abstention; 'off' uses the heuristic span of the best retrieved"
        " sentence and abstains on retrieval features alone."))
    reader_candidates: int = Field(5, ge=1, le=20, description=(
        "Top retrieved sentences whose windows (the sentence and one neighbour each side) the reader reads and"
        " re-orders by what it finds there (READER_RANKING, fitted on five); the short answer comes from the first"
        " one's window. Each window costs one more read (about 13 CPU ms on 2 cores; a question's windows run side"
        " by side on the cores); 1 keeps retrieval's order (docs/reader.md)."))
    max_question_chars: int = Field(2000, ge=10, description="Longer questions are rejected.")
    max_file_bytes: int = Field(20_000_000, ge=1, description="Larger files are skipped with a warning.")
    llm: str | None = Field(None, description=(
        "A generative answerer from any LangChain provider as provider:model (e.g. openai:gpt-4o-mini,"
        " ollama:llama3.2), made by init_chat_model; the provider's package must be installed."))
    llm_base_url: str | None = Field(None, description="OpenAI-compatible endpoint for a generative answerer.")
    llm_model: str | None = Field(None, description="Model name for the OpenAI-compatible endpoint.")
    llm_api_key: str | None = Field(None, description="API key for the endpoint (environment only).")
    llm_timeout: float = Field(60.0, gt=0, le=600, description=(
        "Seconds an OpenAI-compatible endpoint may take per attempt (one retry); then the extractive answer stands."))
    ollama_model: str | None = Field(None, description="Ollama model name (uses RAG_OLLAMA_URL).")
    ollama_url: str = Field("http://127.0.0.1:11434", description="Ollama server address.")
    host: str = Field("127.0.0.1", description="Address the app listens on.")
    port: int = Field(7860, ge=1, le=65535, description="Port the app listens on.")
    admin_token: str | None = Field(None, description="Token required for corpus changes; read-only if unset.")
    allowed_origins: str = Field(
        "http://localhost,http://127.0.0.1",
        description="Comma-separated origins allowed to call the API from a browser (any port of these hosts).",
    )
    rate_limit_per_minute: int = Field(120, ge=0, description=(
        "Asks per minute per client (an evaluation's questions count too); 0 disables."))
    rate_limit_storage: str = Field("memory://", pattern=r"^(memory://|(rediss?|redis\+unix)://\S+)$", description=(
        "Where rate limits are counted: 'memory://' (each process on its own) or a Redis URL"
        " (redis://host:port/db) shared by every worker and machine that names it; checked at start-up. If Redis"
        " stops answering, each process counts on its own and retries it every 30 s."))
    access_log: Literal["json", "off"] = Field("json", description=(
        "One JSON line per HTTP request on stderr (logger citechat.access: request id, route, status, time),"
        " or 'off'."))
    public_eval_questions: int = Field(100, ge=0, description=(
        "Most questions an evaluation run without the admin token may ask; 0 = evaluation needs the token."))
    trusted_proxies: str = Field("", description=(
        "Comma-separated addresses or networks of reverse proxies whose X-Forwarded-For/-Proto name the client"
        " (rate limits, upload ownership); empty = trust none and use the connecting address."))
    max_request_bytes: int = Field(64_000, ge=1000, description="Largest accepted API request body.")

    def with_overrides(self, **overrides: object) -> Settings:
        """Return a copy with the non-None overrides applied (CLI flags win over the environment)."""
        values = {k: v for k, v in overrides.items() if v is not None}
        return type(self).model_validate({**self.model_dump(), **values})


def get_settings(**overrides: object) -> Settings:
    """Read settings from the environment, then apply explicit overrides; a bad value is a ``RagError``."""
    try:
        return Settings().with_overrides(**overrides)
    except ValidationError as exc:  # e.g. RAG_TOP_K=abc: one clear line instead of pydantic's report
        problem = exc.errors()[0]
        name = "_".join(map(str, problem["loc"])).upper()
        raise RagError(f"invalid setting RAG_{name}: {problem['msg']}") from None
