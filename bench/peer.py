"""The peer: LangChain's RAG tutorial pipeline on the same corpus, model and questions.

RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True) → Chroma through
``langchain-chroma`` with our ``SentenceEmbeddings`` (the same MiniLM model) → ``as_retriever(k=4)``.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import chromadb
from langchain_chroma import Chroma
from langchain_core.documents import Document
from langchain_text_splitters import RecursiveCharacterTextSplitter

from bench.citations import Cited, mean, score_seed, score_squad
from bench.corpus import Question
from bench.measure import dir_mb, percentiles
from rag.index.embeddings import SentenceEmbeddings
from rag.ingest.loaders import find_files


def _load(corpus: Path) -> list[Document]:
    return [Document(page_content=path.read_text(encoding="utf-8"), metadata={"source": source})
            for path, source in find_files([corpus])]


def peer_run(corpus: Path, folder: Path, squad: list[Question], seed: list[Question],
             latency_questions: list[Question]) -> dict[str, object]:
    """Ingest time, warm query latency and citation quality of the tutorial pipeline."""
    shutil.rmtree(folder, ignore_errors=True)
    embeddings = SentenceEmbeddings(question_cache=0)  # like ours in the benchmark: every query is embedded
    embeddings.embed_query("warm up the model")
    started = time.perf_counter()
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True)
    chunks = splitter.split_documents(_load(corpus))
    store = Chroma(collection_name="peer", embedding_function=embeddings, persist_directory=str(folder),
                   client_settings=chromadb.Settings(anonymized_telemetry=False))
    store.add_documents(chunks)
    ingest_s = time.perf_counter() - started
    retriever = store.as_retriever(search_kwargs={"k": 4})

    def cited(question: str) -> list[Cited]:
        return [Cited(d.metadata["source"], d.metadata["start_index"],
                      d.metadata["start_index"] + len(d.page_content), d.page_content)
                for d in retriever.invoke(question)]

    for q in latency_questions[:10]:
        retriever.invoke(q.question)
    samples = []
    for q in latency_questions:
        t = time.perf_counter()
        retriever.invoke(q.question)
        samples.append((time.perf_counter() - t) * 1000)
    rows = [score_squad(q, cited(q.question), corpus) for q in squad]
    seed_hits = [score_seed(q, cited(q.question)) for q in seed]
    return {"chunks": len(chunks), "ingest_s": round(ingest_s, 2), "index_mb": dir_mb(folder),
            "latency": percentiles(samples), "squad_questions": len(rows), "hit1": mean(rows, "hit1"),
            "precision1": mean(rows, "precision1"), "precision_all": mean(rows, "precision_all"),
            "chars1": mean(rows, "chars1"), "seed_hit1": round(sum(seed_hits) / max(1, len(seed_hits)), 4)}
