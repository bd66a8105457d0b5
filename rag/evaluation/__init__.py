"""Batch evaluation: read question files, answer them with a ``Pipeline``, score, report and compare runs."""

from rag.evaluation.datasets import EvalDataset, EvalQuestion, load_dataset
from rag.evaluation.runner import EvalRun, run_eval
from rag.evaluation.scoring import QuestionResult, summarize

__all__ = ["EvalDataset", "EvalQuestion", "EvalRun", "QuestionResult", "load_dataset", "run_eval", "summarize"]
