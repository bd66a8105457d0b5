"""citechat: answers from a corpus of articles, citing the exact sentences they rest on.

``import rag`` is cheap: the names below load their modules on first use (``rag.Pipeline`` brings in the model
runtime, Chroma and LangChain).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.config import Settings, get_settings
    from rag.errors import (
        CorpusError,
        EvalFileError,
        IndexNotReadyError,
        IngestLockedError,
        InvalidQuestionError,
        RagError,
    )
    from rag.pipeline import Pipeline
    from rag.records import Answer, Citation, IngestReport, Sentence, Turn

_HOMES = {
    "Settings": "rag.config", "get_settings": "rag.config",
    "CorpusError": "rag.errors", "EvalFileError": "rag.errors", "IndexNotReadyError": "rag.errors",
    "IngestLockedError": "rag.errors", "InvalidQuestionError": "rag.errors", "RagError": "rag.errors",
    "Pipeline": "rag.pipeline",
    "Answer": "rag.records", "Citation": "rag.records", "IngestReport": "rag.records", "Sentence": "rag.records",
    "Turn": "rag.records",
}
__all__ = ["Answer", "Citation", "CorpusError", "EvalFileError", "IndexNotReadyError", "IngestLockedError",
           "IngestReport", "InvalidQuestionError", "Pipeline", "RagError", "Sentence", "Settings", "Turn",
           "get_settings"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
