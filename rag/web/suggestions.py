"""Example questions derived from the corpus itself, kept only when the bot can answer them; shared by the chat UI
and ``GET /api/suggestions`` (the widget's welcome)."""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator

from rag.index.snapshot import Snapshot
from rag.pipeline import Pipeline
from rag.web.collections import MAX_OPEN, Collections

log = logging.getLogger(__name__)

_WORD = r"[A-Z][\w'-]*[a-z][\w'-]*"
# A person-like name (two or more capitalised words) right next to a speech verb: "X said", "said X".
_SPEAKER = re.compile(rf"\b({_WORD}(?: {_WORD}){{1,2}}) (?:has |had )?(?:said|says|told|claimed|announced|wrote)\b"
                      rf"|\b(?:said|says|told|according to) ({_WORD}(?: {_WORD}){{1,2}})")
# A capitalised place after "in"/"at", possibly "in the southern city of X".
_PLACE = re.compile(rf"\b(?:in|at|near) (?:the (?:\w+ )?(?:city|town|region|village|province) of )?({_WORD})"
                    r"(?![\w’'-])")
_SKIP = {"The", "A", "An", "In", "On", "It", "He", "She", "They", "We", "I", "This", "That", "But", "And",
         "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "January", "February",
         "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}
_MAX_SOURCES = 12
_SENTENCES_PER_SOURCE = 25
_MAX_CANDIDATES = 8
MAX_SUGGESTIONS = 4


def candidate_questions(snapshot: Snapshot) -> Iterator[tuple[str, str]]:
    """(question, source) pairs from sentence patterns: places ("What happened in X?"), speakers ("Who is X?")."""
    sources = sorted(set(snapshot.sources))
    stride = max(1, len(sources) // _MAX_SOURCES)
    chosen = set(sources[::stride][:_MAX_SOURCES])
    per_source: dict[str, int] = {}
    seen: set[str] = set()
    for text, source in zip(snapshot.texts, snapshot.sources, strict=True):
        if source not in chosen or per_source.get(source, 0) >= _SENTENCES_PER_SOURCE:
            continue
        per_source[source] = per_source.get(source, 0) + 1
        subjects = [("Who is {}?", a or b) for a, b in _SPEAKER.findall(text)]
        subjects += [("What happened in {}?", place) for place in _PLACE.findall(text)]
        for template, subject in subjects:
            question = template.format(subject)
            if subject.split()[0] in _SKIP or question in seen:
                continue
            seen.add(question)
            yield question, source


def answerable_suggestions(pipeline: Pipeline, limit: int = MAX_SUGGESTIONS) -> list[str]:
    """Up to ``limit`` candidate questions that the pipeline answers (no abstention), one per source first."""
    scored: list[tuple[float, str, str]] = []
    for n, (question, source) in enumerate(candidate_questions(pipeline.snapshot())):
        if n >= _MAX_CANDIDATES:
            break
        try:
            answer = pipeline.extractive(question)
        except Exception as exc:  # suggestions are optional: a failure must not break the page
            log.warning("suggestion %r failed: %s", question, exc)
            continue
        if not answer.abstained:
            scored.append((answer.confidence, question, source))
    scored.sort(reverse=True)
    picked: list[str] = []
    used_sources: set[str] = set()
    for _, question, source in scored:  # best per source first, then the rest
        if source not in used_sources:
            picked.append(question)
            used_sources.add(source)
    picked += [q for _, q, _ in scored if q not in picked]
    return picked[:limit]


class SuggestionCache:
    """Suggestions computed once per index generation (the corpus changes rarely, asking costs time)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self._lock = threading.Lock()
        self._generation: str | None = None
        self._questions: list[str] = []

    def stale(self) -> bool:
        """Whether ``get`` has to compute them (first use, or the index changed since)."""
        try:
            return self.pipeline.snapshot().generation != self._generation
        except Exception:  # get() will find no index either, and answer at once with no suggestions
            return False

    def get(self) -> list[str]:
        """Current suggestions; recomputed when the index changed."""
        with self._lock:
            try:
                generation = self.pipeline.snapshot().generation
            except Exception as exc:  # optional feature: an unreachable index just means no suggestions
                log.warning("no suggestions: %s", exc)
                return []
            if generation != self._generation:
                self._questions = answerable_suggestions(self.pipeline)
                self._generation = generation
            return list(self._questions)


class Suggestions:
    """A ``SuggestionCache`` per open collection (the default's kept for good), so the chat UI and the HTTP API
    compute each collection's suggestions once."""

    def __init__(self, collections: Collections) -> None:
        self.collections = collections
        self.default = SuggestionCache(collections.default)
        self._others: OrderedDict[str, SuggestionCache] = OrderedDict()
        self._lock = threading.Lock()

    def for_collection(self, name: str | None) -> SuggestionCache:
        """The cache of collection ``name`` (None: the default); an unknown name is ``Collections.get``'s 404."""
        pipeline = self.collections.get(name)
        if pipeline is self.collections.default:
            return self.default
        key = pipeline.settings.collection
        with self._lock:
            cache = self._others.get(key)
            if cache is None or cache.pipeline is not pipeline:  # reopened since: the old pipeline is gone
                cache = self._others[key] = SuggestionCache(pipeline)
            self._others.move_to_end(key)
            while len(self._others) > MAX_OPEN:
                self._others.popitem(last=False)
            return cache
