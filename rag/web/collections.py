"""Several named corpora in one deployment: a pipeline per Chroma collection, opened on first use.

Anonymous callers may only pick collections that already exist (made by `rag ingest --collection NAME` or by the
admin through `/api/documents?collection=NAME`); an unknown name is a 404, so nobody can make the server create or
load collections at will. At most ``MAX_OPEN`` pipelines stay open (each holds its snapshot in memory).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict

from starlette.exceptions import HTTPException

from rag.config import COLLECTION_NAME
from rag.pipeline import Pipeline

MAX_OPEN = 8
_NAME = re.compile(COLLECTION_NAME)
_MANIFEST = "_documents"


class Collections:
    """The default pipeline (``RAG_COLLECTION``) and, on demand, one per other existing collection."""

    def __init__(self, default: Pipeline) -> None:
        self.default = default
        self._open: OrderedDict[str, Pipeline] = OrderedDict()
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """Collections of this index that hold a corpus (a sentence collection and its manifest)."""
        found = {c.name for c in self.default.store.client.list_collections()}
        return sorted(n for n in found if not n.endswith(_MANIFEST) and n + _MANIFEST in found
                      and not n.endswith("_eval") and "_eval_" not in n)

    def opened(self) -> list[tuple[str, Pipeline]]:
        """The pipelines open now, by collection name: the default one first."""
        with self._lock:
            others = list(self._open.items())
        return [(self.default.settings.collection, self.default), *others]

    def get(self, name: str | None, create: bool = False) -> Pipeline:
        """The pipeline of collection ``name`` (None: the default); 404 unless it exists or ``create`` (admin)."""
        if not name or name == self.default.settings.collection:
            return self.default
        if not _NAME.match(name) or name.endswith(_MANIFEST):
            raise HTTPException(404, f"no collection named {name!r}")
        with self._lock:
            pipeline = self._open.get(name)
            if pipeline is not None:
                self._open.move_to_end(name)
                return pipeline
        if not create and name not in self.names():
            raise HTTPException(404, f"no collection named {name!r}")
        # Files uploaded to another collection live beside the index, never in the default corpus folder (whose
        # sync at start-up would index them into the default collection).
        settings = self.default.settings.with_overrides(collection=name,
                                                        corpus_dir=self.default.settings.index_dir / "corpora" / name)
        pipeline = Pipeline(settings, chat_model=self.default.chat_model)
        with self._lock:
            pipeline = self._open.setdefault(name, pipeline)
            self._open.move_to_end(name)
            while len(self._open) > MAX_OPEN:
                self._open.popitem(last=False)
        return pipeline
