"""Typed errors raised by the ``rag`` API; the CLI turns each into a message and a non-zero exit."""


class RagError(Exception):
    """Base class of every error citechat raises on purpose."""

    exit_code = 1


class InvalidQuestionError(RagError, ValueError):
    """The question is empty, too long or not text."""

    exit_code = 2


class CorpusError(RagError):
    """A path does not exist, or no readable article was found."""

    exit_code = 3


class IndexNotReadyError(RagError):
    """The index is missing or empty: run ``rag ingest`` first."""

    exit_code = 4


class IngestLockedError(RagError):
    """Another ingest holds the index lock."""

    exit_code = 5


class EvalFileError(RagError):
    """An evaluation file could not be parsed."""

    exit_code = 6
