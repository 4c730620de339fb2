"""The paper's evaluation suite: metrics, benchmark readers and the published results to compare against.

- :mod:`training.eval.metrics`: every metric: CIDEr (pycocoevalcap; Java PTB tokenizer when available, else a
  Python imitation), VQA accuracy with the official VQAv2 normalisation, exact match, option letters, True/False,
  POPE, grounding accuracy at IoU > 0.5, Visual7W pointing, and the synthetic tasks' token F1 and IoU. Empty,
  malformed and overlong predictions score as wrong.
- :mod:`training.eval.benchmarks`: readers of the benchmarks' standard annotation files into :class:`EvalSample`
  records with the paper's prompts, the ``BENCHMARKS`` registry, :func:`load_benchmark` and :func:`score_benchmark`.
- :mod:`training.eval.paper`: ``PAPER_RESULTS`` (the six models' published numbers) and :func:`compare_with_paper`.
- :mod:`training.eval.generation`: greedy batched generation (:func:`generate_answers`), shared with the demo.
- :mod:`training.eval.runner`: ``vlm eval`` (:func:`run_eval`): batched greedy generation, resumable predictions,
  metrics and the Markdown report beside the paper's numbers.
- :mod:`training.eval.compare`: ``vlm compare`` (:func:`run_compare`): one report over evaluated models, with
  Mamba-minus-Transformer gaps and plots.
"""

from .benchmarks import (
    BENCHMARKS,
    BenchmarkResult,
    BenchmarkSpec,
    EvalSample,
    get_benchmark,
    load_benchmark,
    score_benchmark,
)
from .compare import run_compare
from .metrics import (
    CiderResult,
    choose_candidate,
    cider,
    exact_match_accuracy,
    grounding_accuracy,
    multiple_choice_accuracy,
    parse_choice,
    parse_true_false,
    parse_yes_no,
    pointing_accuracy,
    pope_metrics,
    true_false_accuracy,
    vqa_accuracy,
    vqa_normalize,
    vqa_score,
)
from .paper import BENCHMARK_TO_PAPER_COLUMN, PAPER_COLUMNS, PAPER_MODELS, PAPER_RESULTS, compare_with_paper
from .runner import EvalConfig, run_eval

__all__ = [
    "BENCHMARKS",
    "BENCHMARK_TO_PAPER_COLUMN",
    "PAPER_COLUMNS",
    "PAPER_MODELS",
    "PAPER_RESULTS",
    "BenchmarkResult",
    "BenchmarkSpec",
    "CiderResult",
    "EvalConfig",
    "EvalSample",
    "choose_candidate",
    "cider",
    "compare_with_paper",
    "exact_match_accuracy",
    "get_benchmark",
    "grounding_accuracy",
    "load_benchmark",
    "multiple_choice_accuracy",
    "parse_choice",
    "parse_true_false",
    "parse_yes_no",
    "pointing_accuracy",
    "pope_metrics",
    "run_compare",
    "run_eval",
    "score_benchmark",
    "true_false_accuracy",
    "vqa_accuracy",
    "vqa_normalize",
    "vqa_score",
]
