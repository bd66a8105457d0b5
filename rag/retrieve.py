"""Hybrid sentence retrieval: dense (the snapshot's dense index) + lexical (BM25) candidates, re-scored in context."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
from langchain_core.callbacks import BaseCallbackManager, CallbackManager, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig, ensure_config
from pydantic import ConfigDict

from rag.index.embeddings import SentenceEmbeddings
from rag.index.lexical import tokenize
from rag.index.paragraphs import paragraph_windows, term_rows
from rag.index.snapshot import Snapshot

_NAME = re.compile(r"\b(?:[A-Z][\w'’-]*|\w*\d\w*)")


@dataclass(frozen=True)
class FusionWeights:
    """Linear weights over candidate features (a logistic fit on SQuAD tuning articles, see docs/quality.md)."""

    dense: float = 1.0
    lexical: float = 0.0
    coverage: float = 0.525
    para_dense_max: float = 0.0
    para_dense_mean: float = 0.0
    para_lexical: float = 0.0
    para_lexical_sum: float = 0.0
    para_coverage: float = 0.344
    title_coverage: float = 0.0
    rrf: float = 0.0
    rrf_k: float = 60.0
    # Sentences each side of a candidate, inside its paragraph, that its context features look at.
    radius: int = 6

    def scores(self, f: dict[str, np.ndarray]) -> np.ndarray:
        """The weighted sum of the features this object has a weight for, one per candidate."""
        return (self.dense * f["dense"] + self.lexical * f["lexical"] + self.coverage * f["coverage"]
                + self.para_dense_max * f["para_dense_max"] + self.para_dense_mean * f["para_dense_mean"]
                + self.para_lexical * f["para_lexical"] + self.para_coverage * f["para_coverage"]
                + self.para_lexical_sum * f["para_lexical_sum"]
                + self.title_coverage * f["title_coverage"] + self.rrf * f["rrf"])


class _FeatureRow(Mapping[str, float]):
    """One candidate's features, read from the per-feature lists of its search: building ~85 dicts per question
    that nobody reads cost ~0.6 ms, the largest single item of ranking once the arrays were vectorised."""

    __slots__ = ("_columns", "_k")

    def __init__(self, columns: dict[str, list[float]], k: int) -> None:
        self._columns, self._k = columns, k

    def __getitem__(self, name: str) -> float:
        return self._columns[name][self._k]

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


@dataclass
class Candidate:
    """One retrieved sentence row with the features that scored it."""

    row: int
    score: float
    features: Mapping[str, float] = field(default_factory=dict)


class QueryTerms:
    """A query's stemmed content terms with their IDF weights in the snapshot."""

    def __init__(self, query: str, snapshot: Snapshot) -> None:
        self.terms = list(dict.fromkeys(tokenize(query)))
        n = max(len(snapshot), 1)
        freqs = snapshot.lexical.document_frequencies(self.terms)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in zip(self.terms, freqs, strict=True)}
        self.weights = np.array([self.idf[t] for t in self.terms], dtype=np.float64)
        self.total = float(self.weights.sum()) or 1.0
        self.unknown = [t for t, f in zip(self.terms, freqs, strict=True) if f == 0]
        # Unknown names and numbers ("Japan", "2014") mean the corpus lacks the subject; an unknown common word
        # ("located", "flee") usually means the text paraphrases it, so only the former count against answering.
        names = {t for m in _NAME.finditer(query) if m.start() > 0 for t in tokenize(m.group())}
        self.unknown_names = [t for t in self.unknown if t in names]

    def coverage(self, text_terms: set[str]) -> float:
        """IDF-weighted share of the query's terms present in ``text_terms`` (1.0 for a term-less query)."""
        if not self.terms:
            return 1.0
        return sum(w for t, w in self.idf.items() if t in text_terms) / self.total

    def covered(self, mask: np.ndarray) -> float:
        """IDF-weighted share of the query's terms flagged in ``mask`` (1.0 for a term-less query)."""
        return float(self.weights @ mask) / self.total if self.terms else 1.0

    def covered_rows(self, masks: np.ndarray) -> np.ndarray:
        """``covered`` for every row of a boolean (rows × terms) matrix."""
        if not self.terms:
            return np.ones(len(masks))
        return (masks.astype(np.float64) @ self.weights) / self.total

    def presence(self, snapshot: Snapshot, rows: np.ndarray) -> np.ndarray:
        """Boolean matrix: does row ``rows[i]`` contain query term ``j``."""
        out = np.zeros((len(rows), len(self.terms)), dtype=bool)
        for j, term in enumerate(self.terms):
            # Postings are sorted and can hold tens of thousands of rows at 100k sentences: a binary search per
            # candidate row is ~10x cheaper than np.isin, which sorts both arrays.
            postings = term_rows(snapshot, term)
            if len(postings):
                at = np.minimum(np.searchsorted(postings, rows), len(postings) - 1)
                out[:, j] = postings[at] == rows
        return out


def _top_rows(scores: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` rows with the highest positive scores; ties at the cut go to the lowest rows, so it is stable."""
    matched = np.flatnonzero(scores > 0)  # usually a few thousand rows of 100k: only those are ranked
    if len(matched) <= n:
        return matched
    values = scores[matched]
    cut = np.partition(values, len(values) - n)[len(values) - n]
    above = matched[values > cut]
    return np.concatenate([above, matched[values == cut][: n - len(above)]])


def search(query: str, snapshot: Snapshot, embedder: SentenceEmbeddings, n_candidates: int,
           weights: FusionWeights = FusionWeights(), query_vector: np.ndarray | None = None) -> list[Candidate]:
    """Candidates for ``query``, best first, scored by dense + lexical + paragraph-context features.
    ``query_vector``: the question's ranking and evidence vectors (``SentenceEmbeddings.encode_questions``), or its
    ranking vector alone (the evidence vector is then embedded here)."""
    if len(snapshot) == 0:
        return []
    # Embedding the question on another thread while the lexical side runs here measured ~0.5 ms slower per ask
    # (the thread hand-off and the GIL cost more than the overlap saves), so it is done inline.
    if query_vector is None:
        qv, ev = embedder.encode_questions([query])[0]
    elif query_vector.ndim == 2:
        qv, ev = query_vector
    else:
        qv = query_vector
        ev = qv if embedder.question_encoder == "packaged" else embedder.encode_packaged_queries([query])[0]
    bm25 = snapshot.lexical.scores(query)
    lex_hits = [int(r) for r in _top_rows(bm25, n_candidates)]
    terms = QueryTerms(query, snapshot)
    dense_hits = snapshot.dense.search(qv, n_candidates)
    rows = sorted({r for r, _ in dense_hits} | set(lex_hits))
    if not rows:
        return []
    # Every candidate's paragraph window is scored too: context sentences can earn their own citation.
    row_ids = np.array(rows, dtype=np.int64)
    lo, hi = paragraph_windows(snapshot, row_ids, weights.radius)
    ctx = np.unique(np.concatenate([np.arange(a, b + 1) for a, b in zip(lo.tolist(), hi.tolist(), strict=True)]))
    sims = np.asarray(snapshot.vectors[ctx] @ qv, dtype=np.float64)
    same = ev is qv or np.array_equal(ev, qv)
    evidence_sims = sims if same else np.asarray(snapshot.vectors[ctx] @ ev, dtype=np.float64)
    present = terms.presence(snapshot, ctx)
    bm25_max = float(bm25.max()) or 1.0
    dense_rank = {r: i for i, (r, _) in enumerate(dense_hits)}
    lex_rank = {r: i for i, r in enumerate(sorted(lex_hits, key=lambda r: -bm25[r]))}
    n, width = len(rows), len(ctx)
    own = np.searchsorted(ctx, row_ids)
    # window[k, j]: ctx row j is in candidate k's paragraph window; others: the same without the candidate itself.
    # A window is a run of consecutive rows, all of them in ctx, so it is one contiguous slice of ctx.
    at = np.arange(width)
    window = (at >= np.searchsorted(ctx, lo)[:, None]) & (at <= np.searchsorted(ctx, hi)[:, None])
    others = window.copy()
    others[np.arange(n), own] = False
    has_others = others.any(axis=1)
    para_present = (window.astype(np.float64) @ present.astype(np.float64)) > 0
    title_of: dict[str, np.ndarray] = {}
    for source in {snapshot.sources[r] for r in rows}:
        title = snapshot.title_terms(source)
        title_of[source] = np.array([t in title for t in terms.terms], dtype=bool)
    in_title = np.array([title_of[snapshot.sources[r]] for r in rows]).reshape(n, len(terms.terms))
    ctx_bm25 = bm25[ctx].astype(np.float64)
    own_sims = sims[own]

    def para_max(similarities: np.ndarray) -> np.ndarray:
        # A one-sentence paragraph has no context: its own similarity stands in (neutral, not a penalty).
        own_similarity = similarities[own]
        return np.where(has_others, np.where(others, similarities, -np.inf).max(axis=1), own_similarity)

    feats = {
        "dense": own_sims,
        "lexical": bm25[rows].astype(np.float64) / bm25_max,
        "coverage": terms.covered_rows(present[own]),
        "para_dense_max": para_max(sims),
        "para_dense_mean": (window * sims).sum(axis=1) / window.sum(axis=1),
        "para_lexical": np.where(has_others, np.where(others, ctx_bm25, 0.0).max(axis=1), 0.0) / bm25_max,
        "para_lexical_sum": (window * ctx_bm25).sum(axis=1) / bm25_max,
        "para_coverage": terms.covered_rows(para_present),
        "title_coverage": terms.covered_rows(in_title),
        "context_coverage": terms.covered_rows(para_present | in_title),
        # The packaged model's similarities, which the abstention model reads (the ranking ones when it ranks too).
        "evidence_dense": evidence_sims[own],
        "evidence_para_dense_max": para_max(evidence_sims),
        "rrf": np.array([1 / (weights.rrf_k + dense_rank.get(r, 1000)) + 1 / (weights.rrf_k + lex_rank.get(r, 1000))
                         for r in rows]),
    }
    constant = {"unknown_terms": float(len(terms.unknown)), "unknown_names": float(len(terms.unknown_names)),
                "query_terms": float(len(terms.terms))}
    scores = weights.scores(feats).tolist()
    columns = {name: values.tolist() for name, values in feats.items()} | {
        name: [value] * n for name, value in constant.items()}
    candidates = [Candidate(r, scores[k], _FeatureRow(columns, k)) for k, r in enumerate(rows)]
    candidates.sort(key=lambda c: -c.score)
    return candidates


class SentenceRetriever(BaseRetriever):
    """LangChain retriever over the index: each ``Document`` is one sentence with its offsets and score. It asks
    ``snapshots`` for the index on every query, so it follows ingests."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    snapshots: Callable[[], Snapshot]
    embedder: SentenceEmbeddings
    k: int = 3
    n_candidates: int = 50
    weights: FusionWeights = FusionWeights()

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        snapshot = self.snapshots()
        hits = search(query, snapshot, self.embedder, self.n_candidates, self.weights)
        return [to_document(snapshot, c) for c in hits[: self.k]]

    def candidates(self, query: str, k: int, config: RunnableConfig | None = None,
                   query_vector: np.ndarray | None = None) -> tuple[Snapshot, list[Candidate]]:
        """Every fused candidate (what answering needs), reported to ``config``'s callbacks as this retriever's run
        with the top ``k`` as its documents, so tracing sees what ``invoke`` would have returned."""
        config = ensure_config(config)
        parent = config.get("callbacks")
        if isinstance(parent, BaseCallbackManager) and not parent.handlers:
            # Inside a chain nobody listens to: configuring a callback manager would cost ~0.2 ms for nothing.
            snapshot = self.snapshots()
            return snapshot, search(query, snapshot, self.embedder, self.n_candidates, self.weights, query_vector)
        manager = CallbackManager.configure(config.get("callbacks"), None, inheritable_tags=config.get("tags"),
                                            local_tags=self.tags, inheritable_metadata=config.get("metadata"),
                                            local_metadata=self.metadata)
        run = manager.on_retriever_start(None, query, name=self.get_name())
        try:
            snapshot = self.snapshots()
            hits = search(query, snapshot, self.embedder, self.n_candidates, self.weights, query_vector)
        except Exception as exc:
            run.on_retriever_error(exc)
            raise
        run.on_retriever_end([to_document(snapshot, c) for c in hits[:k]])
        return snapshot, hits


def to_document(snapshot: Snapshot, candidate: Candidate) -> Document:
    """A candidate as a LangChain ``Document`` (id = sentence id, metadata = offsets, score, features)."""
    s = snapshot.sentence(candidate.row)
    return Document(id=s.sentence_id, page_content=s.text,
                    metadata={"source": s.source, "sentence_id": s.sentence_id, "start": s.start, "end": s.end,
                              "position": s.position, "title": s.title, "page": s.page, "row": candidate.row,
                              "score": candidate.score, **candidate.features})
