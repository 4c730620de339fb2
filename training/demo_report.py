"""The demo's statistics and report: scores with bootstrap intervals, the paired comparison of the two backbones
read against the paper's findings, the Markdown table, ``results.json`` and the plots.

:mod:`training.demo` trains and evaluates; this module only turns per-example values into what is written and shown.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets

from .eval.metrics import bootstrap_interval, paired_difference_interval
from .files import write_json, write_text
from .plots import interval_bars, loss_and_accuracy_curves
from .synthetic.scoring import example_scores, predictions_by_task

PRIMARY_METRIC: dict[str, str] = {
    "caption": "token_f1",
    "vqa": "accuracy",
    "grounding": "accuracy",
    "reading": "accuracy",
    "counting": "accuracy",
    "multiple_choice": "accuracy",
    "retrieval": "accuracy",
}
"""The metric each task is judged on (grounding: accuracy at IoU > 0.5)."""
PAPER_FINDING: dict[str, str] = {
    "caption": "mamba",
    "vqa": "mamba",
    "reading": "mamba",
    "grounding": "pythia",
    "retrieval": "pythia",
}
"""Which backbone the paper found ahead on each task family (Mamba-VL: captioning, VQA, reading; Pythia-VL: visual
grounding and in-context retrieval). Counting and multiple choice have no stated direction."""
LEARNED_MARGIN = 0.15  # a task counts as learned when a model beats the image-blind floor by 15 points


ExampleValues = dict[str, dict[str, list[float]]]  # {task: {metric: per-example values}}


def example_values(eval_set: datasets.Dataset, predictions: list[str]) -> ExampleValues:
    """Per-example values of every metric of every task, in row order."""
    return {
        task: example_scores(task, preds, refs)
        for task, (preds, refs) in predictions_by_task(eval_set, predictions).items()
    }


def mean_over_seeds(runs: list[ExampleValues]) -> ExampleValues:
    """Each example's value averaged over the seeds' runs (the same held-out examples in the same order)."""
    return {
        task: {metric: [sum(v) / len(v) for v in zip(*(r[task][metric] for r in runs), strict=True)] for metric in m}
        for task, m in runs[0].items()
    }


def summarize(
    values: ExampleValues, seed: int
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, list[float]]]]:
    """``(scores, intervals)``: each metric's mean and its 95% bootstrap interval over the held-out examples."""
    scores: dict[str, dict[str, float]] = {}
    intervals: dict[str, dict[str, list[float]]] = {}
    for task, metrics in values.items():
        for metric, per_example in metrics.items():
            interval = bootstrap_interval(per_example, seed=seed)
            scores.setdefault(task, {})[metric] = interval.mean
            intervals.setdefault(task, {})[metric] = [interval.low, interval.high]
    return scores, intervals


def compare(pythia: ExampleValues, mamba: ExampleValues, blind: ExampleValues, seed: int) -> dict[str, Any]:
    """Per task: Mamba - Pythia on the primary metric with its paired 95% interval, and how it reads."""
    comparison = {}
    for task in pythia:
        metric = PRIMARY_METRIC[task]
        diff = paired_difference_interval(pythia[task][metric], mamba[task][metric], seed=seed)
        ahead = None if not diff.excludes(0.0) else ("mamba" if diff.mean > 0 else "pythia")
        expected = PAPER_FINDING.get(task)
        floor = sum(blind[task][metric]) / len(blind[task][metric])
        best = max(sum(v[task][metric]) / len(v[task][metric]) for v in (pythia, mamba))
        comparison[task] = {
            "metric": metric,
            "mamba_minus_pythia": diff.mean,
            "interval": [diff.low, diff.high],
            "ahead": ahead,
            "paper_finding": expected,
            "agrees_with_paper": None if ahead is None or expected is None else ahead == expected,
            "learned": best - floor >= LEARNED_MARGIN,
        }
    return comparison


def comparison_lines(results: dict[str, Any]) -> list[str]:
    """Plain sentences on each task: resolved or not, in which direction, and against the paper's finding."""
    names = {b: m["display_name"] for b, m in results["models"].items()}
    lines = []
    for task, c in results.get("comparison", {}).items():
        label = _TASK_LABELS[task]
        low, high = c["interval"]
        gap = f"{100 * c['mamba_minus_pythia']:+.1f} points [{100 * low:+.1f}, {100 * high:+.1f}]"
        paper = (
            f"the paper found {names.get(c['paper_finding'], '-')} ahead"
            if c["paper_finding"]
            else "no finding in the paper"
        )
        if c["ahead"] is None:
            verdict = "within the 95% interval of no difference"
        else:
            relation = {
                True: ", as the paper found",
                False: ", the opposite of the paper's finding",
                None: " (no finding in the paper)",
            }
            verdict = f"{names[c['ahead']]} ahead{relation[c['agrees_with_paper']]}"
            paper = ""
        learned = "" if c["learned"] else "; neither model is 15 points above the image-blind floor"
        lines.append(
            f"- {label}: Mamba-VL - Pythia-VL = {gap}: {verdict}" + (f" ({paper})" if paper else "") + learned
        )
    return lines


def trained_curves_json(curves: dict[str, dict[int, float]]) -> dict[str, dict[str, float]]:
    """JSON-friendly curves (string steps)."""
    return {task: {str(step): acc for step, acc in points.items()} for task, points in curves.items()}


def seed_range(per_seed: list[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """Each metric's lowest and highest score over the seeds (the spread between training runs)."""
    spread: dict[str, dict[str, list[float]]] = {}
    for task, metrics in per_seed[0]["scores"].items():
        for metric in metrics:
            seen = [s["scores"][task][metric] for s in per_seed]
            spread.setdefault(task, {})[metric] = [min(seen), max(seen)]
    return spread


def prediction_records(eval_set: datasets.Dataset, predictions: list[str]) -> list[dict[str, Any]]:
    return [
        {"task": task, "prompt": prompt, "answer": answer, "prediction": prediction}
        for task, prompt, answer, prediction in zip(
            eval_set["task"], eval_set["prompt"], eval_set["answer"], predictions, strict=True
        )
    ]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    write_text(path, "".join(json.dumps(record) + "\n" for record in records))


REPORT_ROWS = (
    ("caption", "exact_match", "Caption exact match"),
    ("caption", "token_f1", "Caption token F1"),
    ("vqa", "accuracy", "VQA accuracy"),
    ("grounding", "accuracy", "Grounding acc. (IoU>0.5)"),
    ("grounding", "mean_iou", "Grounding mean IoU"),
    ("reading", "accuracy", "Reading accuracy"),
    ("counting", "accuracy", "Counting accuracy"),
    ("multiple_choice", "accuracy", "Multiple choice accuracy"),
    ("retrieval", "accuracy", "Retrieval accuracy"),
)
_TASK_LABELS = {
    "caption": "Captioning (token F1)",
    "vqa": "VQA",
    "grounding": "Grounding (IoU > 0.5)",
    "reading": "Reading",
    "counting": "Counting",
    "multiple_choice": "Multiple choice",
    "retrieval": "In-context retrieval",
}


def _cell(score: float | None, interval: list[float] | None) -> str:
    if score is None:
        return "-"
    if interval is None:
        return f"{100 * score:.1f}"
    return f"{100 * score:.1f} [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"


def results_table(results: dict[str, Any]) -> str:
    """The side-by-side Markdown table of scores (with 95% intervals where known), sizes and training time."""
    models = results["models"]
    names = list(models)
    blind = results.get("image_blind")
    columns = [models[n]["display_name"] for n in names] + (["image-blind baseline"] if blind else [])
    lines = ["| metric | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for task, metric, label in REPORT_ROWS:
        if all(task not in models[n]["scores"] for n in names):
            continue  # a task left out of this run
        cells = [
            _cell(
                models[n]["scores"].get(task, {}).get(metric), models[n].get("intervals", {}).get(task, {}).get(metric)
            )
            for n in names
        ]
        if blind:
            cells.append(
                _cell(
                    blind.get(task, {}).get(metric), results.get("image_blind_intervals", {}).get(task, {}).get(metric)
                )
            )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    pad = " | -" if blind else ""
    lines.append(
        "| LM parameters | " + " | ".join(f"{models[n]['language_model_parameters']:,}" for n in names) + pad + " |"
    )
    lines.append("| final train loss | " + " | ".join(f"{models[n]['final_loss']:.3f}" for n in names) + pad + " |")
    lines.append("| train time (s) | " + " | ".join(f"{models[n]['train_seconds']:.0f}" for n in names) + pad + " |")
    return "\n".join(lines)


def write_report(results: dict[str, Any], out: Path) -> None:
    """Write ``results.json`` and ``results.md`` and print the table and the comparison."""
    table = results_table(results)
    config = results.get("config", {})
    seeds = results.get("seeds", [])
    header = (
        f"Scores in %, {config.get('eval_images', '?')} held-out examples per task, mean over "
        f"{len(seeds)} seed(s) {seeds}; [95% bootstrap interval over the examples]."
    )
    sentences = comparison_lines(results)
    text = "# vlm demo: Pythia-VL vs Mamba-VL on synthetic tasks\n\n" + header + "\n\n" + table + "\n"
    if sentences:
        text += "\nMamba-VL against Pythia-VL, paired over the same examples:\n\n" + "\n".join(sentences) + "\n"
    write_json(out / "results.json", results)
    write_text(out / "results.md", text)
    print("\n" + header + "\n\n" + table + "\n", flush=True)
    if sentences:
        print("Mamba-VL against Pythia-VL (paired 95% intervals):\n" + "\n".join(sentences) + "\n", flush=True)
    print(
        f"Saved models, predictions, results.json, results.md, training_curves.png and scores.png under {out}/",
        flush=True,
    )


def training_curves(
    losses: dict[str, dict[int, float]], curves: dict[str, dict[str, dict[int, float]]], path: Path
) -> None:
    """The training loss and, per model, held-out accuracy per task against the step."""
    accuracies = {f"{name}: held-out answer-token accuracy": per_task for name, per_task in curves.items()}
    loss_and_accuracy_curves(losses, accuracies, path, title="vlm demo: training (answers teacher-forced)")


def score_bars(results: dict[str, Any], path: Path) -> None:
    """The final table's primary metrics as bars with their 95% intervals, the image-blind floor as a marker."""
    models = results["models"]
    tasks = [t for t in PRIMARY_METRIC if any(t in m["scores"] for m in models.values())]
    series = {}
    for m in models.values():
        series[m["display_name"]] = {
            t: (m["scores"][t][PRIMARY_METRIC[t]], m.get("intervals", {}).get(t, {}).get(PRIMARY_METRIC[t]))
            for t in tasks if t in m["scores"]
        }  # fmt: skip
    blind = results.get("image_blind", {})
    floor = {t: blind[t][PRIMARY_METRIC[t]] for t in tasks if t in blind}
    interval_bars({_TASK_LABELS[t]: t for t in tasks}, series, floor, path, title="vlm demo: held-out scores")
