"""The paper's published results (Pantazopoulos et al., EMNLP 2024, Table from the vl_mamba README) for comparison.

``PAPER_RESULTS[model][column]`` holds the numbers of ``shared/paper/results_table.csv`` on the paper's scale (CIDEr
x100, accuracies in percent). :func:`compare_with_paper` prints our scores beside them as a markdown table; our scores
are given on the scale the metrics of :mod:`training.eval.metrics` return (fractions, pycocoevalcap CIDEr) and are
multiplied by ``scale`` (100) to match.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "BENCHMARK_TO_PAPER_COLUMN",
    "PAPER_COLUMNS",
    "PAPER_METRICS",
    "PAPER_MODELS",
    "PAPER_PARAMS",
    "PAPER_RESULTS",
    "compare_with_paper",
    "paper_scores",
    "scores_by_column",
]

PAPER_COLUMNS: tuple[str, ...] = (
    "COCO", "NoCaps", "VQAv2", "GQA", "V7W-T", "VSR", "POPE", "RefCOCO-testA", "RefCOCO-testB", "RefCOCO+-testA",
    "RefCOCO+-testB", "RefCOCOg", "V7W-P", "TextCaps", "TextVQA", "AI2D",
)  # fmt: skip

# One row per model, values in PAPER_COLUMNS order (copied from shared/paper/results_table.csv).
_ROWS: tuple[tuple[str, str, tuple[float, ...]], ...] = (
    ("Pythia-VL-1B", "1B", (
        132.89, 97.61, 72.26, 53.79, 81.96, 72.43, 86.77, 76.00,
        62.48, 45.36, 47.44, 67.58, 83.78, 92.73, 35.22, 77.62,
    )),
    ("Mamba-VL-790M", "790M", (
        133.81, 99.00, 71.67, 54.95, 81.82, 75.39, 86.77, 67.84,
        56.35, 57.97, 41.43, 59.16, 74.01, 94.30, 40.72, 79.27,
    )),
    ("Pythia-VL-1.4B", "1.4B", (
        134.06, 100.72, 73.57, 57.05, 83.06, 77.72, 86.40, 82.43,
        68.39, 72.35, 55.16, 72.56, 86.13, 94.60, 37.54, 79.27,
    )),
    ("Mamba-VL-1.4B", "1.4B", (
        134.76, 100.56, 74.46, 58.44, 83.78, 80.18, 85.32, 76.60,
        63.48, 68.40, 52.11, 68.82, 80.18, 98.68, 41.30, 80.86,
    )),
    ("Pythia-VL-2.8B", "2.8B", (
        134.97, 101.27, 75.08, 59.76, 84.34, 80.86, 86.87, 85.39,
        70.82, 75.39, 58.62, 76.24, 86.61, 99.74, 39.14, 81.57,
    )),
    ("Mamba-VL-2.8B", "2.8B", (
        135.53, 102.00, 76.08, 60.41, 85.31, 81.45, 87.33, 79.29,
        64.97, 71.64, 53.94, 71.27, 82.50, 100.47, 42.14, 83.71,
    )),
)  # fmt: skip

PAPER_MODELS: tuple[str, ...] = tuple(name for name, _, _ in _ROWS)
PAPER_PARAMS: Mapping[str, str] = MappingProxyType({name: params for name, params, _ in _ROWS})
PAPER_RESULTS: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {name: MappingProxyType(dict(zip(PAPER_COLUMNS, values, strict=True))) for name, _, values in _ROWS}
)

PAPER_METRICS: Mapping[str, str] = MappingProxyType(
    {
        "COCO": "CIDEr (Karpathy test)",
        "NoCaps": "CIDEr (val)",
        "VQAv2": "VQA accuracy (val)",
        "GQA": "accuracy (test-dev)",
        "V7W-T": "accuracy (telling, test)",
        "VSR": "accuracy (test)",
        # The paper does not say which POPE number it prints; LLaVA-style tables report F1, averaged over the splits.
        "POPE": "F1, mean of random/popular/adversarial",
        "RefCOCO-testA": "accuracy at IoU > 0.5",
        "RefCOCO-testB": "accuracy at IoU > 0.5",
        "RefCOCO+-testA": "accuracy at IoU > 0.5",
        "RefCOCO+-testB": "accuracy at IoU > 0.5",
        "RefCOCOg": "accuracy at IoU > 0.5 (test)",
        "V7W-P": "accuracy (pointing, test)",
        "TextCaps": "CIDEr (val)",
        "TextVQA": "VQA accuracy (val)",
        "AI2D": "accuracy (test)",
    }
)

# Our benchmark names (training.eval.benchmarks.BENCHMARKS) -> the paper's columns; the three POPE splits share one.
BENCHMARK_TO_PAPER_COLUMN: Mapping[str, str] = MappingProxyType(
    {
        "coco_karpathy_test": "COCO",
        "nocaps_val": "NoCaps",
        "vqav2_val": "VQAv2",
        "gqa_testdev": "GQA",
        "v7w_telling": "V7W-T",
        "vsr_test": "VSR",
        "pope_random": "POPE",
        "pope_popular": "POPE",
        "pope_adversarial": "POPE",
        "refcoco_testA": "RefCOCO-testA",
        "refcoco_testB": "RefCOCO-testB",
        "refcoco+_testA": "RefCOCO+-testA",
        "refcoco+_testB": "RefCOCO+-testB",
        "refcocog_test": "RefCOCOg",
        "v7w_pointing": "V7W-P",
        "textcaps_val": "TextCaps",
        "textvqa_val": "TextVQA",
        "ai2d_test": "AI2D",
    }
)


def paper_scores(model_name: str) -> Mapping[str, float]:
    """The published scores of one model, by paper column; ValueError listing the models for an unknown name."""
    if model_name not in PAPER_RESULTS:
        raise ValueError(f"unknown model {model_name!r}; the paper reports: {', '.join(PAPER_MODELS)}")
    return PAPER_RESULTS[model_name]


def scores_by_column(our_scores: Mapping[str, float]) -> dict[str, float]:
    """Our scores keyed by paper column, averaging benchmarks that share one (the three POPE splits).

    Keys may be benchmark names (``BENCHMARK_TO_PAPER_COLUMN``) or paper column names.
    """
    grouped: dict[str, list[float]] = {}
    for key, value in our_scores.items():
        if key in BENCHMARK_TO_PAPER_COLUMN:
            column = BENCHMARK_TO_PAPER_COLUMN[key]
        elif key in PAPER_COLUMNS:
            column = key
        else:
            valid = sorted(BENCHMARK_TO_PAPER_COLUMN) + list(PAPER_COLUMNS)
            raise ValueError(f"unknown score key {key!r}; use a benchmark name or a paper column: {', '.join(valid)}")
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"score for {key!r} must be a finite number, got {value!r}")
        if key in PAPER_COLUMNS and column in grouped:
            raise ValueError(f"paper column {column!r} is given both directly and through its benchmarks")
        grouped.setdefault(column, []).append(float(value))
    return {column: sum(values) / len(values) for column, values in grouped.items()}


def compare_with_paper(our_scores: Mapping[str, float], model_name: str, scale: float = 100.0) -> str:
    """Markdown table of our scores (times ``scale``) beside the paper's for ``model_name``, one row per column."""
    paper = paper_scores(model_name)
    ours = {column: value * scale for column, value in scores_by_column(our_scores).items()}
    lines = [
        f"| Benchmark | Metric | Ours | {model_name} (paper) | Δ |",
        "|---|---|---:|---:|---:|",
    ]
    for column in PAPER_COLUMNS:
        published = paper[column]
        if column in ours:
            mine, delta = f"{ours[column]:.2f}", f"{ours[column] - published:+.2f}"
        else:
            mine, delta = "-", "-"
        lines.append(f"| {column} | {PAPER_METRICS[column]} | {mine} | {published:.2f} | {delta} |")
    return "\n".join(lines)
