"""Hybrid sentence retrieval: dense (Chroma) + lexical (BM25) candidates, re-scored with their context."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from rag.catalog import Catalog
from rag.embeddings import SentenceEmbeddings
from rag.lexical import tokenize
from rag.store import SentenceStore


@dataclass(frozen=True)
class FusionWeights:
    """How candidate features combine into one retrieval score (tuned on held-out SQuAD, see docs)."""

    dense: float = 1.0
    lexical: float = 0.6
    coverage: float = 0.5
    context_dense: float = 0.25
    context_lexical: float = 0.15
    rrf_k: float = 60.0
    rrf: float = 0.0


@dataclass
class Candidate:
    """One retrieved sentence row with the features that scored it."""

    row: int
    score: float
    features: dict[str, float] = field(default_factory=dict)


class QueryTerms:
    """A query's stemmed content terms with their IDF weights in the catalog."""

    def __init__(self, query: str, catalog: Catalog) -> None:
        self.terms = list(dict.fromkeys(tokenize(query)))
        n = max(len(catalog), 1)
        freqs = catalog.lexical.document_frequencies(self.terms)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in zip(self.terms, freqs, strict=True)}
        self.total = sum(self.idf.values()) or 1.0
        self.unknown = [t for t, f in zip(self.terms, freqs, strict=True) if f == 0]

    def coverage(self, text_terms: set[str]) -> float:
        """IDF-weighted share of the query's terms present in ``text_terms`` (1.0 for a term-less query)."""
        if not self.terms:
            return 1.0
        return sum(w for t, w in self.idf.items() if t in text_terms) / self.total


def search(query: str, catalog: Catalog, store: SentenceStore, embedder: SentenceEmbeddings, n_candidates: int,
           weights: FusionWeights = FusionWeights(), query_vector: np.ndarray | None = None) -> list[Candidate]:
    """Candidates for ``query``, best first, scored by dense + lexical + context features."""
    if len(catalog) == 0:
        return []
    qv = embedder.encode([query])[0] if query_vector is None else query_vector
    dense_hits = [(catalog.row_of[sid], sim) for sid, sim in store.query(qv, n_candidates) if sid in catalog.row_of]
    bm25 = catalog.lexical.scores(query)
    top_lex = np.argpartition(-bm25, min(n_candidates, len(bm25) - 1))[:n_candidates]
    lex_hits = [int(r) for r in top_lex if bm25[r] > 0]
    rows = sorted({r for r, _ in dense_hits} | set(lex_hits))
    if not rows:
        return []
    # Neighbours are scored too so a context sentence can earn its own citation.
    context_rows = sorted({n for r in rows for n in catalog.neighbours(r)})
    sims = catalog.vectors[context_rows] @ qv
    sim_of = dict(zip(context_rows, sims.tolist(), strict=True))
    bm25_max = float(bm25.max()) or 1.0
    terms = QueryTerms(query, catalog)
    dense_rank = {r: i for i, (r, _) in enumerate(dense_hits)}
    lex_rank = {r: i for i, r in enumerate(sorted(lex_hits, key=lambda r: -bm25[r]))}
    candidates = []
    for r in rows:
        near = [n for n in catalog.neighbours(r) if n != r]
        own_terms = set(tokenize(catalog.texts[r]))
        ctx_terms = own_terms.union(*(tokenize(catalog.texts[n]) for n in near),
                                    tokenize(catalog.titles.get(catalog.sources[r], "")))
        f = {
            "dense": sim_of[r],
            "lexical": float(bm25[r]) / bm25_max,
            "coverage": terms.coverage(own_terms),
            "context_coverage": terms.coverage(ctx_terms),
            "context_dense": max((sim_of[n] for n in near), default=0.0),
            "context_lexical": max((float(bm25[n]) for n in near), default=0.0) / bm25_max,
            "rrf": 1 / (weights.rrf_k + dense_rank.get(r, 1000)) + 1 / (weights.rrf_k + lex_rank.get(r, 1000)),
            "unknown_terms": float(len(terms.unknown)),
            "query_terms": float(len(terms.terms)),
        }
        score = (weights.dense * f["dense"] + weights.lexical * f["lexical"] + weights.coverage * f["coverage"]
                 + weights.context_dense * f["context_dense"] + weights.context_lexical * f["context_lexical"]
                 + weights.rrf * f["rrf"])
        candidates.append(Candidate(r, score, f))
    candidates.sort(key=lambda c: -c.score)
    return candidates


class SentenceRetriever(BaseRetriever):
    """LangChain retriever over the catalog: each ``Document`` is one sentence with its offsets and score."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    catalog: Catalog
    store: SentenceStore
    embedder: SentenceEmbeddings
    k: int = 3
    n_candidates: int = 50
    weights: FusionWeights = FusionWeights()

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        hits = search(query, self.catalog, self.store, self.embedder, self.n_candidates, self.weights)
        return [to_document(self.catalog, c) for c in hits[: self.k]]


def to_document(catalog: Catalog, candidate: Candidate) -> Document:
    """A candidate as a LangChain ``Document`` (id = sentence id, metadata = offsets, score, features)."""
    s = catalog.sentence(candidate.row)
    return Document(id=s.sentence_id, page_content=s.text,
                    metadata={"source": s.source, "sentence_id": s.sentence_id, "start": s.start, "end": s.end,
                              "position": s.position, "title": s.title, "row": candidate.row,
                              "score": candidate.score, **candidate.features})
