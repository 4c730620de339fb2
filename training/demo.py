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

import logging
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import datasets
import torch
from transformers import Trainer, TrainerCallback

from configuration import backbone_spec
from modeling_vlm import VLForConditionalGeneration, VLImageProcessor, VLProcessor
from processing import LAYOUT_TOKENS

from .collator import VLDataCollator
from .demo_report import (
    ExampleValues,
    compare,
    example_values,
    mean_over_seeds,
    prediction_records,
    score_bars,
    seed_range,
    summarize,
    trained_curves_json,
    training_curves,
    write_jsonl,
    write_report,
)
from .eval.generation import generate_answers
from .files import fresh_folder
from .short_runs import build_small_model, compile_cpu_kernels_in_child, short_run_arguments
from .synthetic import shapes, tasks
from .synthetic.scoring import ALL_TASKS, image_blind_answers
from .synthetic.tokenizer import synthetic_corpus, train_synthetic_tokenizer
from .templates import ChoiceAnswer, check_choice_answer, conversation

logger = logging.getLogger(__name__)


@dataclass
class DemoConfig:
    """Run configuration of the demo (saved beside its results)."""

    out: str = "vlm-demo"
    # 3000 steps (about 4 passes over the training set): measured on the defaults of the time (a 4 x 4 grid, one
    # digit at a random place), 1500 steps left VQA and counting at the image-blind floor (best model +5.5 and +3
    # points) and 3000 lift them to +17 and +19, grounding from +34.5 to +89 and reading from +1.5 to +14.5; the
    # faster CPU Mamba path keeps the run within ten minutes.
    steps: int = 3000
    seed: int = 0
    backbones: tuple[str, ...] = ("pythia", "mamba")
    tasks: tuple[str, ...] = ALL_TASKS
    train_images: int = 1500  # training examples per task (times its weight in task_weights)
    # Retrieval at twice the others' examples: measured on the defaults, Mamba-VL's retrieval went from 22.0 to 53.5
    # (floor 19.5-21.0) and Pythia-VL's stayed at 33; every other task stayed 15+ points above its floor.
    task_weights: dict[str, float] = field(default_factory=lambda: {"retrieval": 2.0})
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
    # Reading at this scale: one or two large digits, centred (measured on the defaults: one digit at a random place
    # reached 18.0 / 26.0 against a floor of 11.5; the full alphabet stays at chance).
    reading_chars: int = 2
    reading_alphabet: str = "23456789"
    center_text: bool = True
    # Counting and retrieval place one object per cell of a grid_cells x grid_cells grid (16 px cells, 2 x 2 vision
    # patches each): on a 4 x 4 grid of one-patch cells counting's 5 px shapes reached at best +19 points above the
    # floor and retrieval +12; the 2 x 2 grid keeps both the count and the look-up by position or by content.
    grid_cells: int = 2
    # Multiple choice answered with the option itself ("option"), not with its letter ("letter", the paper's template):
    # the letter needs the model to bind each option to the letter in front of it, in context, and neither model
    # learns that within the demo's share of the budget (measured on the defaults, Pythia-VL / Mamba-VL, means over
    # seeds 0-2: lettered 26.8 / 34.2 against a floor of 29.5; answered with the option 63.0 / 69.3 against 29.0; the
    # option form costs reading 24 / 17 points and counting 10 / 8, and every task stays 15+ above its floor).
    choice_answer: ChoiceAnswer = "option"
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
            "max_objects", "reading_chars", "grid_cells", "max_new_tokens", "curve_points", "curve_examples",
        ):  # fmt: skip
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        self.task_weights = dict(self.task_weights)
        for task, weight in self.task_weights.items():
            if task not in ALL_TASKS:
                raise ValueError(f"task_weights names an unknown task {task!r}; valid: {', '.join(ALL_TASKS)}")
            if not (isinstance(weight, int | float) and not isinstance(weight, bool) and weight > 0):
                raise ValueError(f"task_weights[{task!r}] must be a positive number, got {weight!r}.")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate!r}.")
        if not self.vision_learning_rate_scale >= 0:
            raise ValueError(
                f"vision_learning_rate_scale must be >= 0 (0: frozen), got {self.vision_learning_rate_scale!r}."
            )
        if self.image_size // self.grid_cells < 5:
            raise ValueError(f"grid_cells={self.grid_cells} leaves cells under 5 px in a {self.image_size} px image.")
        check_choice_answer("choice_answer", self.choice_answer)
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size={self.image_size} is not a multiple of patch_size={self.patch_size}.")


def _tasks_config(config: DemoConfig) -> tasks.SyntheticTasksConfig:
    """Generation options of the reading, counting, multiple-choice and retrieval rows."""
    return tasks.SyntheticTasksConfig(
        image_size=config.image_size,
        cells=config.grid_cells,
        max_objects=min(6, config.grid_cells**2),
        max_count=min(4, config.grid_cells**2),
        max_items=min(6, config.grid_cells**2),
        max_scene_objects=config.max_objects,
        choice_answer=config.choice_answer,
        center_text=config.center_text,
        min_chars=1,
        max_chars=config.reading_chars,
        alphabet=config.reading_alphabet,
    )


def _task_rows(
    config: DemoConfig, task_names: tuple[str, ...], num_images: int, seed: int, first_image: int = 0
) -> datasets.Dataset:
    """Rows of ``num_images`` images from ``first_image`` on for each of ``task_names`` (all shapes tasks or all
    others)."""
    if task_names[0] in shapes.TASKS:
        scenes = shapes.SyntheticShapesConfig(
            image_size=config.image_size, max_objects=config.max_objects, tasks=task_names
        )
        return shapes.build_synthetic_dataset(num_images, seed=seed, config=scenes, first_image=first_image)
    return tasks.build_synthetic_tasks_dataset(
        num_images, seed=seed, tasks=task_names, config=_tasks_config(config), first_image=first_image
    )


def build_demo_dataset(
    config: DemoConfig, num_images: int, seed: int, weights: Mapping[str, float] | None = None
) -> datasets.Dataset:
    """``num_images`` rows of every task of ``config.tasks`` (``round(num_images * weight)`` for a weighted task).

    Shapes scenes come first, then the other synthetic tasks; a task's extra rows (weight > 1) are its next images,
    appended at the end, and a weight < 1 keeps its first images.
    """
    groups = [g for g in (tuple(t for t in shapes.TASKS if t in config.tasks),
                          tuple(t for t in config.tasks if t not in shapes.TASKS)) if g]  # fmt: skip
    dataset = datasets.concatenate_datasets([_task_rows(config, group, num_images, seed) for group in groups])
    counts = {task: max(1, round(num_images * (weights or {}).get(task, 1.0))) for task in config.tasks}
    if any(count < num_images for count in counts.values()):
        seen: dict[str, int] = defaultdict(int)
        keep = []
        for index, task in enumerate(dataset["task"]):
            seen[task] += 1
            if seen[task] <= counts[task]:
                keep.append(index)
        dataset = dataset.select(keep)
    extra = [
        _task_rows(config, (task,), count - num_images, seed, first_image=num_images)
        for task, count in counts.items()
        if count > num_images
    ]
    return datasets.concatenate_datasets([dataset, *extra]) if extra else dataset


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
    examples: TrainingExamples,
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
        train_dataset=examples,
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


@dataclass
class _RunData:
    """What every model of a run shares: the data, the processor and the progress printer."""

    config: DemoConfig
    out: Path
    processor: VLProcessor
    examples: TrainingExamples
    eval_set: datasets.Dataset
    curve_set: datasets.Dataset
    seeds: list[int]
    progress: _Progress


def _run_seed(run: _RunData, backbone: str, seed: int) -> tuple[TrainedModel, ExampleValues, dict[str, Any]]:
    """Train one backbone with one seed, evaluate it, save it; return it, its per-example values and its record."""
    config, display = run.config, backbone_spec(backbone).display_name
    run.progress.begin(f"{display}, seed {seed}: training for {config.steps} steps")
    trained = train_backbone(backbone, config, run.processor, run.examples, seed, run.curve_set)
    run.progress.end()
    run.progress.begin(f"{display}, seed {seed}: evaluating on {len(run.eval_set)} held-out examples")
    predictions = generate_answers(
        trained.model, run.processor, run.eval_set["image"], run.eval_set["prompt"], batch_size=config.batch_size,
        max_new_tokens=config.max_new_tokens, show_progress=config.show_progress,
    )  # fmt: skip
    run.progress.end()
    values = example_values(run.eval_set, predictions)
    save_dir = run.out / (backbone if seed == run.seeds[0] else f"{backbone}-seed{seed}")
    trained.model.save_pretrained(save_dir)
    run.processor.save_pretrained(save_dir)
    write_jsonl(save_dir / "predictions.jsonl", prediction_records(run.eval_set, predictions))
    record = {
        "seed": seed,
        "scores": summarize(values, config.seed)[0],
        "train_seconds": round(trained.seconds, 1),
        "final_loss": trained.history[-1]["loss"] if trained.history else None,
        "path": str(save_dir),
    }
    return trained, values, record


def _run_backbone(run: _RunData, backbone: str) -> tuple[dict[str, Any], ExampleValues, TrainedModel]:
    """Every seed of one backbone: its ``results.json`` entry, its seed-averaged values and its first model."""
    runs, per_seed, first = [], [], None
    for seed in run.seeds:
        trained, values, record = _run_seed(run, backbone, seed)
        runs.append(values)
        per_seed.append(record)
        first = first or trained
    averaged = mean_over_seeds(runs)
    scores, intervals = summarize(averaged, run.config.seed)
    entry = {
        "display_name": backbone_spec(backbone).display_name,
        "parameters": _count(first.model),
        "language_model_parameters": _count(first.model.language_model),
        "train_seconds": round(sum(s["train_seconds"] for s in per_seed) / len(per_seed), 1),
        "final_loss": per_seed[0]["final_loss"],
        "scores": scores,
        "intervals": intervals,
        "seed_range": seed_range(per_seed),
        "per_seed": per_seed,
        "path": per_seed[0]["path"],
        "held_out_curves": trained_curves_json(first.curves),
    }
    return entry, averaged, first


def run_demo(config: DemoConfig) -> dict[str, Any]:
    """Train, evaluate, save and compare the demo models; return the results written to ``results.json``."""
    start = time.perf_counter()
    out = fresh_folder(config.out)
    train_set = build_demo_dataset(config, config.train_images, seed=config.seed, weights=config.task_weights)
    eval_set = build_demo_dataset(config, config.eval_images, seed=config.seed + 10_000)
    processor = build_processor(config, train_set)
    seeds = [config.seed + k for k in range(config.seeds)]
    results: dict[str, Any] = {"config": asdict(config), "seeds": seeds, "models": {}}
    # The floor of a model that ignores the image: each prompt's most frequent training answer.
    blind = example_values(eval_set, image_blind_answers(train_set, eval_set))
    results["image_blind"], results["image_blind_intervals"] = summarize(blind, config.seed)
    phases = [(kind, b) for b in config.backbones for _ in seeds for kind in ("train", "eval")]
    run = _RunData(
        config, out, processor, TrainingExamples(train_set, processor), eval_set,
        curve_subset(eval_set, config.curve_examples), seeds, _Progress(phases, start),
    )  # fmt: skip
    if "mamba" in config.backbones:
        compile_cpu_kernels_in_child()  # this process then loads them: the first run matches every later one
    values: dict[str, ExampleValues] = {}
    curves: dict[str, dict[str, dict[int, float]]] = {}
    losses: dict[str, dict[int, float]] = {}
    for backbone in config.backbones:
        results["models"][backbone], values[backbone], first = _run_backbone(run, backbone)
        display = results["models"][backbone]["display_name"]
        curves[display] = first.curves
        losses[display] = {h["step"]: h["loss"] for h in first.history}
    if {"pythia", "mamba"} <= set(values):
        results["comparison"] = compare(values["pythia"], values["mamba"], blind, config.seed)
    results["total_seconds"] = round(time.perf_counter() - start, 1)
    write_report(results, out)
    training_curves(losses, curves, out / "training_curves.png")
    score_bars(results, out / "scores.png")
    return results
