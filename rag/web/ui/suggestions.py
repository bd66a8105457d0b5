"""The chat tab's import path for ``SuggestionCache``, which lives in ``rag.web.suggestions`` (shared with the API)."""

from rag.web.suggestions import SuggestionCache

__all__ = ["SuggestionCache"]
