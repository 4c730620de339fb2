"""``vlm demo``: train a small Pythia-VL and Mamba-VL on synthetic images, on the CPU, and compare them side by side.

Nothing is downloaded: the images, the tasks and the tokenizer are generated on the spot. The seven tasks span the
paper's task families, in its prompt templates: captioning, short VQA and grounding on shapes scenes
(:mod:`training.synthetic.shapes`); reading, counting, multiple choice and in-context retrieval from the image
(:mod:`training.synthetic.tasks`). Both models train on the mix of all of them and are scored per task
(:mod:`training.synthetic.scoring`).

Both models share the vision tower design, projector, data, tokenizer, recipe and seed, and their language models are
matched in parameter count (the paper compares models of matched size); every part is trainable because no pretrained
encoder is available offline.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import datasets
import torch
from transformers import Trainer, TrainerCallback

from configuration import backbone_spec
from modeling_vlm import VLForConditionalGeneration, VLImageProcessor, VLProcessor
from processing import LAYOUT_TOKENS

from .collator import VLDataCollator
from .eval.generation import generate_answers
from .eval.metrics import bootstrap_interval, paired_difference_interval
from .files import fresh_folder, write_json, write_text
from .plots import interval_bars, loss_and_accuracy_curves
from .short_runs import build_small_model, short_run_arguments
from .synthetic import shapes, tasks
from .synthetic.scoring import ALL_TASKS, example_scores, image_blind_answers, predictions_by_task
from .synthetic.tokenizer import synthetic_corpus, train_synthetic_tokenizer
from .templates import conversation

logger = logging.getLogger(__name__)


@dataclass
class DemoConfig:
    """Run configuration of the demo (saved beside its results)."""

    out: str = "vlm-demo"
    steps: int = 1500
    seed: int = 0
    backbones: tuple[str, ...] = ("pythia", "mamba")
    tasks: tuple[str, ...] = ALL_TASKS
    train_images: int = 1500  # training examples per task
    eval_images: int = 200  # held-out examples per task: a 10-point gap is resolvable (95% intervals ~ +-7 points)
    seeds: int = 1  # training runs per backbone (seeds seed, seed + 1, ...); scores are averaged over them
    image_size: int = 32
    max_objects: int = 1  # one shape per image: learnable from scratch within the demo's few CPU minutes
    patch_size: int = 8
    batch_size: int = 16
    learning_rate: float = 1e-3
    # The vision tower stays frozen at its random initialisation, as the paper freezes its (pretrained) encoder: a
    # tower trained from scratch with the rest collapses its features and the models go image-blind (measured with
    # Pythia-VL, 1500 steps, 100 examples per task: caption token F1 38.6 trained at 0.1x the rate, 40.6 at 1x, 44.8
    # frozen; VQA 30.0 / 47.5 / 49.0; counting 22 / 20.5 / 32). > 0 trains it at this fraction of the rate.
    vision_learning_rate_scale: float = 0.0
    # Reading at this scale: one large glyph of eight digits (strings of the full alphabet stay at chance here).
    reading_chars: int = 1
    reading_alphabet: str = "23456789"
    max_new_tokens: int = 32
    curve_points: int = 10  # held-out accuracy per task measured this many times during training
    curve_examples: int = 32  # held-out examples per task for those measurements (teacher-forced answers)
    show_progress: bool = True

    def __post_init__(self) -> None:
        for name in self.backbones:
            backbone_spec(name)  # raises listing the valid backbones
        self.tasks = tuple(self.tasks)
        unknown = [t for t in self.tasks if t not in ALL_TASKS]
        if unknown or not self.tasks:
            raise ValueError(f"tasks must be a non-empty subset of {', '.join(ALL_TASKS)}; got {self.tasks}")
        for name in (
            "steps", "seeds", "train_images", "eval_images", "image_size", "patch_size", "batch_size",
            "max_objects", "reading_chars", "max_new_tokens", "curve_points", "curve_examples",
        ):  # fmt: skip
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate!r}.")
        if not self.vision_learning_rate_scale >= 0:
            raise ValueError(
                f"vision_learning_rate_scale must be >= 0 (0: frozen), got {self.vision_learning_rate_scale!r}."
            )
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size={self.image_size} is not a multiple of patch_size={self.patch_size}.")


def build_demo_dataset(config: DemoConfig, num_images: int, seed: int) -> datasets.Dataset:
    """``num_images`` rows of every task of ``config.tasks``: shapes scenes first, then the other synthetic tasks."""
    shapes_tasks = tuple(t for t in shapes.TASKS if t in config.tasks)
    other_tasks = tuple(t for t in config.tasks if t not in shapes.TASKS)
    parts = []
    if shapes_tasks:
        scenes = shapes.SyntheticShapesConfig(
            image_size=config.image_size, max_objects=config.max_objects, tasks=shapes_tasks
        )
        parts.append(shapes.build_synthetic_dataset(num_images, seed=seed, config=scenes))
    if other_tasks:
        # One grid cell per vision patch: the retrieval question names a cell, whose content is one image token.
        tasks_config = tasks.SyntheticTasksConfig(
            image_size=config.image_size,
            cells=config.image_size // config.patch_size,
            max_scene_objects=config.max_objects,
            min_chars=1,
            max_chars=config.reading_chars,
            alphabet=config.reading_alphabet,
        )
        parts.append(
            tasks.build_synthetic_tasks_dataset(num_images, seed=seed, tasks=other_tasks, config=tasks_config)
        )
    return datasets.concatenate_datasets(parts)


def build_processor(config: DemoConfig, train_set: datasets.Dataset) -> VLProcessor:
    """Train the synthetic tokenizer on the training texts and wrap it with the image processor."""
    tokenizer = train_synthetic_tokenizer(synthetic_corpus(train_set), extra_tokens=LAYOUT_TOKENS)
    image_processor = VLImageProcessor(size={"height": config.image_size, "width": config.image_size})
    return VLProcessor(image_processor, tokenizer, image_grid_size=config.image_size // config.patch_size)


def build_model(
    backbone: str, config: DemoConfig, processor: VLProcessor, seed: int | None = None
) -> VLForConditionalGeneration:
    """A randomly initialised demo model of `backbone` at the matched size, its vocabulary the processor's."""
    return build_small_model(
        backbone,
        vocab_size=len(processor.tokenizer),
        image_size=config.image_size,
        patch_size=config.patch_size,
        image_token_id=processor.image_token_id,
        seed=config.seed if seed is None else seed,
    )


def training_set(dataset: datasets.Dataset, processor: VLProcessor) -> datasets.Dataset:
    """Tokenize lazily: each row becomes ``input_ids`` / ``labels`` / ``pixel_values`` when the Trainer reads it."""

    def transform(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        examples = [
            processor.build_training_example(conversation(prompt, answer), images=[image])
            for image, prompt, answer in zip(batch["image"], batch["prompt"], batch["answer"], strict=True)
        ]
        return {key: [example[key] for example in examples] for key in ("input_ids", "labels", "pixel_values")}

    return dataset.with_transform(transform)


class TrainingExamples(torch.utils.data.Dataset):
    """Every row tokenized and its image preprocessed once, for all models and seeds of a run (the lazy
    :func:`training_set` would redo it at every epoch of every model)."""

    def __init__(self, dataset: datasets.Dataset, processor: VLProcessor) -> None:
        rows = training_set(dataset, processor)
        self.examples = [rows[i] for i in range(len(rows))]

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.examples[index]


def build_optimizer(model: VLForConditionalGeneration, config: DemoConfig) -> torch.optim.Optimizer:
    """AdamW (no weight decay, as in the paper) with the vision tower at a scaled learning rate."""
    vision = [p for n, p in model.named_parameters() if n.startswith("vision_tower.") and p.requires_grad]
    rest = [p for n, p in model.named_parameters() if not n.startswith("vision_tower.") and p.requires_grad]
    groups = [
        {"params": rest, "lr": config.learning_rate},
        {"params": vision, "lr": config.learning_rate * config.vision_learning_rate_scale},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.learning_rate, weight_decay=0.0)


def curve_subset(eval_set: datasets.Dataset, per_task: int) -> datasets.Dataset:
    """The first `per_task` held-out rows of every task: the examples of the accuracy curves during training."""
    seen: dict[str, int] = defaultdict(int)
    keep = []
    for index, task in enumerate(eval_set["task"]):
        if seen[task] < per_task:
            seen[task] += 1
            keep.append(index)
    return eval_set.select(keep)


@torch.no_grad()
def answer_accuracy(
    model: VLForConditionalGeneration, batches: list[tuple[str, dict[str, torch.Tensor]]]
) -> dict[str, float]:
    """Per task, the mean fraction of answer tokens that are the model's top prediction (teacher forcing).

    One forward pass per batch instead of generation, cheap enough to run many times during training; graded, so the
    long answers (captions, boxes) show progress before they come out whole.
    """
    was_training = model.training
    model.eval()
    scores: dict[str, list[float]] = defaultdict(list)
    for task, batch in batches:
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits  # (B, L, V)
        labels = batch["labels"][:, 1:]  # (B, L-1): token t+1 is predicted at position t
        answer = labels != -100
        hits = (logits[:, :-1].argmax(-1) == labels) & answer
        scores[task].extend((hits.sum(1) / answer.sum(1).clamp_min(1)).tolist())
    model.train(was_training)
    return {task: sum(values) / len(values) for task, values in scores.items()}


class HeldOutAccuracyCallback(TrainerCallback):
    """Measures :func:`answer_accuracy` on fixed held-out batches every `every` steps and at the last step."""

    def __init__(self, batches: list[tuple[str, dict[str, torch.Tensor]]], every: int) -> None:
        self.batches = batches
        self.every = every
        self.history: dict[str, dict[int, float]] = defaultdict(dict)

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if state.global_step % self.every == 0 or state.global_step == state.max_steps:
            for task, accuracy in answer_accuracy(model, self.batches).items():
                self.history[task][state.global_step] = accuracy


def curve_batches(
    curve_set: datasets.Dataset, processor: VLProcessor, batch_size: int
) -> list[tuple[str, dict[str, torch.Tensor]]]:
    """The curve examples as collated batches, one task per batch."""
    rows = training_set(curve_set, processor)
    collate = VLDataCollator(pad_token_id=processor.tokenizer.pad_token_id)
    by_task: dict[str, list[int]] = defaultdict(list)
    for index, task in enumerate(curve_set["task"]):
        by_task[task].append(index)
    batches = []
    for task, indices in by_task.items():
        for start in range(0, len(indices), batch_size):
            batches.append((task, collate([rows[i] for i in indices[start : start + batch_size]])))
    return batches


@dataclass
class TrainedModel:
    """One backbone trained with one seed."""

    model: VLForConditionalGeneration
    history: list[dict[str, float]]
    curves: dict[str, dict[int, float]]
    seconds: float


def train_backbone(
    backbone: str,
    config: DemoConfig,
    processor: VLProcessor,
    train_set: datasets.Dataset | TrainingExamples,
    seed: int | None = None,
    curve_set: datasets.Dataset | None = None,
) -> TrainedModel:
    """Train one demo model with the transformers Trainer (held-out accuracy curves on `curve_set`)."""
    seed = config.seed if seed is None else seed
    model = build_model(backbone, config, processor, seed)
    if config.vision_learning_rate_scale == 0:  # a frozen vision tower, as in the paper (here: random, not pretrained)
        model.vision_tower.requires_grad_(False)
    args = short_run_arguments(
        str(Path(config.out) / backbone / "trainer"),
        steps=config.steps,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        seed=seed,
        show_progress=config.show_progress,
        use_cpu=True,
    )
    callbacks = []
    if curve_set is not None:
        every = max(1, config.steps // config.curve_points)
        callbacks.append(HeldOutAccuracyCallback(curve_batches(curve_set, processor, config.batch_size), every))
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_set if isinstance(train_set, TrainingExamples) else training_set(train_set, processor),
        data_collator=VLDataCollator(pad_token_id=processor.tokenizer.pad_token_id),
        # Our optimizer, the Trainer's schedule: the vision tower gets a smaller learning rate.
        optimizers=(build_optimizer(model, config), None),
        callbacks=callbacks,
    )
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    history = [entry for entry in trainer.state.log_history if "loss" in entry]
    curves = {task: dict(points) for task, points in callbacks[0].history.items()} if callbacks else {}
    return TrainedModel(model, history, curves, seconds)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------------------------------------------------------------
# Scores with intervals, and the comparison with the paper's findings
# ---------------------------------------------------------------------------------------------------------------------

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


def _mean_over_seeds(runs: list[ExampleValues]) -> ExampleValues:
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
                True: "as the paper found",
                False: "the opposite of the paper's finding",
                None: "(no finding in the paper)",
            }
            verdict = f"{names[c['ahead']]} ahead, {relation[c['agrees_with_paper']]}"
            paper = ""
        learned = "" if c["learned"] else "; neither model is 15 points above the image-blind floor"
        lines.append(
            f"- {label}: Mamba-VL - Pythia-VL = {gap}: {verdict}" + (f" ({paper})" if paper else "") + learned
        )
    return lines


# ---------------------------------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------------------------------


class _Progress:
    """Prints each phase (per model and seed) with the time spent and an estimate of the time left."""

    def __init__(self, phases: list[tuple[str, str]], start: float) -> None:
        self.phases = phases  # (kind, backbone) of every phase, in order
        self.durations: list[float] = []
        self.start = start  # time.perf_counter() at the start of the run (data generation included)
        self._phase_start = self.start

    def begin(self, text: str) -> None:
        index = len(self.durations)
        left = self._estimate_left(index)
        estimate = f"; about {left:.0f} s left" if left is not None else ""
        elapsed = time.perf_counter() - self.start
        print(f"\n== [{index + 1}/{len(self.phases)}] {text} ({elapsed:.0f} s so far{estimate}) ==", flush=True)
        self._phase_start = time.perf_counter()

    def end(self) -> None:
        self.durations.append(time.perf_counter() - self._phase_start)

    def _estimate_left(self, index: int) -> float | None:
        done = dict(enumerate(self.durations))
        total = 0.0
        for i in range(index, len(self.phases)):
            kind, backbone = self.phases[i]
            same = [d for j, d in done.items() if self.phases[j] == (kind, backbone)]
            similar = [d for j, d in done.items() if self.phases[j][0] == kind]
            if not same and not similar:
                return None
            total += sum(same) / len(same) if same else sum(similar) / len(similar)
        return total


def run_demo(config: DemoConfig) -> dict[str, Any]:
    """Train, evaluate, save and compare the demo models; return the results written to ``results.json``."""
    start = time.perf_counter()
    out = fresh_folder(config.out)
    train_set = build_demo_dataset(config, config.train_images, seed=config.seed)
    eval_set = build_demo_dataset(config, config.eval_images, seed=config.seed + 10_000)
    curve_set = curve_subset(eval_set, config.curve_examples)
    processor = build_processor(config, train_set)
    seeds = [config.seed + k for k in range(config.seeds)]
    results: dict[str, Any] = {"config": asdict(config), "seeds": seeds, "models": {}}
    # The floor of a model that ignores the image: each prompt's most frequent training answer.
    blind = example_values(eval_set, image_blind_answers(train_set, eval_set))
    scores, intervals = summarize(blind, config.seed)
    results["image_blind"] = scores
    results["image_blind_intervals"] = intervals
    examples = TrainingExamples(train_set, processor)
    progress = _Progress([(kind, b) for b in config.backbones for _ in seeds for kind in ("train", "eval")], start)
    values: dict[str, ExampleValues] = {}
    curves: dict[str, dict[str, dict[int, float]]] = {}
    losses: dict[str, dict[int, float]] = {}
    for backbone in config.backbones:
        display = backbone_spec(backbone).display_name
        runs, per_seed = [], []
        for seed in seeds:
            progress.begin(f"{display}, seed {seed}: training for {config.steps} steps")
            trained = train_backbone(backbone, config, processor, examples, seed, curve_set)
            progress.end()
            progress.begin(f"{display}, seed {seed}: evaluating on {len(eval_set)} held-out examples")
            predictions = generate_answers(
                trained.model, processor, eval_set["image"], eval_set["prompt"], batch_size=config.batch_size,
                max_new_tokens=config.max_new_tokens, show_progress=config.show_progress,
            )  # fmt: skip
            progress.end()
            runs.append(example_values(eval_set, predictions))
            save_dir = out / (backbone if seed == seeds[0] else f"{backbone}-seed{seed}")
            trained.model.save_pretrained(save_dir)
            processor.save_pretrained(save_dir)
            _write_jsonl(save_dir / "predictions.jsonl", _prediction_records(eval_set, predictions))
            per_seed.append({
                "seed": seed,
                "scores": summarize(runs[-1], config.seed)[0],
                "train_seconds": round(trained.seconds, 1),
                "final_loss": trained.history[-1]["loss"] if trained.history else None,
                "path": str(save_dir),
            })  # fmt: skip
            if seed == seeds[0]:
                curves[display] = trained.curves
                losses[display] = {h["step"]: h["loss"] for h in trained.history}
                model = trained.model
        values[backbone] = _mean_over_seeds(runs)
        scores, intervals = summarize(values[backbone], config.seed)
        results["models"][backbone] = {
            "display_name": display,
            "parameters": _count(model),
            "language_model_parameters": _count(model.language_model),
            "train_seconds": round(sum(s["train_seconds"] for s in per_seed) / len(per_seed), 1),
            "final_loss": per_seed[0]["final_loss"],
            "scores": scores,
            "intervals": intervals,
            "seed_range": _seed_range(per_seed),
            "per_seed": per_seed,
            "path": per_seed[0]["path"],
            "held_out_curves": trained_curves_json(curves[display]),
        }
    if {"pythia", "mamba"} <= set(values):
        results["comparison"] = compare(values["pythia"], values["mamba"], blind, config.seed)
    results["total_seconds"] = round(time.perf_counter() - progress.start, 1)
    write_report(results, out)
    training_curves(losses, curves, out / "training_curves.png")
    score_bars(results, out / "scores.png")
    return results


def trained_curves_json(curves: dict[str, dict[int, float]]) -> dict[str, dict[str, float]]:
    """JSON-friendly curves (string steps)."""
    return {task: {str(step): acc for step, acc in points.items()} for task, points in curves.items()}


def _seed_range(per_seed: list[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """Each metric's lowest and highest score over the seeds (the spread between training runs)."""
    spread: dict[str, dict[str, list[float]]] = {}
    for task, metrics in per_seed[0]["scores"].items():
        for metric in metrics:
            seen = [s["scores"][task][metric] for s in per_seed]
            spread.setdefault(task, {})[metric] = [min(seen), max(seen)]
    return spread


def _prediction_records(eval_set: datasets.Dataset, predictions: list[str]) -> list[dict[str, Any]]:
    return [
        {"task": task, "prompt": prompt, "answer": answer, "prediction": prediction}
        for task, prompt, answer, prediction in zip(
            eval_set["task"], eval_set["prompt"], eval_set["answer"], predictions, strict=True
        )
    ]


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
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
