"""Typed errors raised by the ``rag`` API; the CLI turns each into a message and a non-zero exit."""


class RagError(Exception):
    """Base class of every error citechat raises on purpose."""

    exit_code = 1


class MissingExtraError(RagError):
    """A feature needs an optional part of citechat that is not installed (``pip install 'citechat[web]'``)."""

    exit_code = 8  # 7 is `rag eval --fail-under`'s missed gate

    def __init__(self, feature: str, extra: str, missing: str) -> None:
        super().__init__(f"{feature} needs the '{extra}' extra ({missing} is not installed): "
                         f"pip install 'citechat[{extra}]'")


class InvalidQuestionError(RagError, ValueError):
    """The question is empty, too long or not text."""

    exit_code = 2


class CorpusError(RagError):
    """A path does not exist, or no readable article was found."""

    exit_code = 3


class IndexNotReadyError(RagError):
    """The index is missing or empty: run ``rag ingest`` first."""

    exit_code = 4


class IndexMismatchError(IndexNotReadyError):
    """The collection was made by another embedding model, vector size or schema."""


class IngestLockedError(RagError):
    """Another ingest holds the index lock."""

    exit_code = 5


class EvalFileError(RagError):
    """An evaluation file could not be parsed."""

    exit_code = 6
