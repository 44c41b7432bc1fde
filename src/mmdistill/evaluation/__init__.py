"""Benchmark evaluation through lmms-eval: toy tasks, our model class, score JSON.

`evaluate` is the entry point; lmms-eval itself is imported only when it runs.
"""

from mmdistill.evaluation.runner import BENCHMARKS, evaluate, load_items, summarize
from mmdistill.evaluation.scoring import score_open_ended

__all__ = ["BENCHMARKS", "evaluate", "load_items", "score_open_ended", "summarize"]
