"""citechat: answers from a corpus of articles, citing the exact sentences they rest on."""

from rag.config import Settings, get_settings
from rag.errors import CorpusError, EvalFileError, IndexNotReadyError, IngestLockedError, InvalidQuestionError, RagError
from rag.pipeline import Pipeline
from rag.records import Answer, Citation, IngestReport, Sentence, Turn

__all__ = ["Answer", "Citation", "CorpusError", "EvalFileError", "IndexNotReadyError", "IngestLockedError",
           "IngestReport", "InvalidQuestionError", "Pipeline", "RagError", "Sentence", "Settings", "Turn",
           "get_settings"]
