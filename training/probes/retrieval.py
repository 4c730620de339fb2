"""In-context retrieval probe (the paper's hypothesis 2): can the language model find an item it has seen in context?

The examples (:mod:`training.synthetic.retrieval`) are symbol sequences (``text``, as in the paper's released code)
or glyph grids with one vision patch per cell (``image``); ``instruction_first`` trains and evaluates the image probe
with the paper's task-aware encoding.

Both backbones are trained from scratch at matched size (:data:`training.short_runs.MATCHED_TEXT_SIZES`) with the
transformers ``Trainer`` on a mix of all N, with a tokenizer trained on the probe's corpus, then scored by greedy
exact match per N and per target position (binned). :func:`run_retrieval_probe` writes ``results.json``,
``results.md``, ``retrieval_curves.png`` and each model's ``predictions.jsonl`` to the output folder.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel, Trainer, set_seed

from configuration import backbone_spec
from modeling_vlm import VLImageProcessor, VLProcessor
from modeling_vlm.mamba_kernels import enable_fast_mamba_scan
from processing import IGNORE_INDEX, LAYOUT_TOKENS

from ..collator import VLDataCollator
from ..eval.generation import generate_answers
from ..files import fresh_folder, write_json, write_text
from ..plots import line_chart
from ..short_runs import build_small_model, compile_cpu_kernels_in_child, short_run_arguments, small_text_config
from ..synthetic.retrieval import RetrievalExample, grid_example, symbol_vocabulary, text_example
from ..synthetic.tokenizer import train_synthetic_tokenizer
from ..templates import conversation

__all__ = ["IMAGE_LENGTHS", "MODALITIES", "PAPER_LENGTHS", "ProbeConfig", "run_retrieval_probe", "summarize"]

PAPER_LENGTHS: tuple[int, ...] = (20, 30, 50, 70, 80, 100, 200, 300, 400, 500, 576, 600)
"""The paper's context lengths (576 = EVA-02's image patches)."""
IMAGE_LENGTHS: tuple[int, ...] = (4, 9, 16, 25, 36)
"""Default grid sizes of the multimodal probe on the CPU (a 6 x 6 grid at most)."""
MODALITIES: tuple[str, ...] = ("text", "image")
_POSITION_BINS = 10

_DEFAULTS: MappingProxyType[str, MappingProxyType[str, Any]] = MappingProxyType(
    {
        "text": MappingProxyType({"lengths": PAPER_LENGTHS, "steps": 60, "batch_size": 8, "eval_examples": 16}),
        "image": MappingProxyType({"lengths": IMAGE_LENGTHS, "steps": 150, "batch_size": 16, "eval_examples": 16}),
    }
)


@dataclass
class ProbeConfig:
    """Run configuration of the retrieval probe (saved in ``results.json``); None fields take modality defaults."""

    modality: str = "text"
    lengths: tuple[int, ...] | None = None  # N values: PAPER_LENGTHS (text) or IMAGE_LENGTHS (image)
    steps: int | None = None  # training steps per backbone: 60 (text) or 150 (image)
    batch_size: int | None = None  # 8 (text) or 16 (image)
    eval_examples: int | None = None  # held-out examples per N: 16
    backbones: tuple[str, ...] = ("pythia", "mamba")
    seed: int = 0
    learning_rate: float = 2e-3
    num_symbols: int | None = None  # text: symbol vocabulary, at least max N (default max(64, max N))
    cell_size: int = 12  # image: pixels per grid cell, also the vision patch size
    instruction_first: bool = False  # image: task instruction before the image, in training and evaluation
    out: str = "vlm-probe"
    show_progress: bool = True

    def __post_init__(self) -> None:
        """Fill the modality's defaults and validate, naming the offending field."""
        if self.modality not in MODALITIES:
            raise ValueError(f"modality={self.modality!r} is not one of {', '.join(MODALITIES)}")
        for name, value in _DEFAULTS[self.modality].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        self.lengths = tuple(sorted({int(n) for n in self.lengths}))
        if not self.lengths or self.lengths[0] < 2:
            raise ValueError(f"lengths must be integers >= 2, got {self.lengths}")
        for name in ("steps", "batch_size", "eval_examples"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in self.backbones:
            backbone_spec(name)  # raises listing the valid backbones
        if self.num_symbols is None:
            self.num_symbols = max(64, self.lengths[-1])
        if self.num_symbols < self.lengths[-1]:
            raise ValueError(f"num_symbols={self.num_symbols} is below the longest N={self.lengths[-1]}")
        if self.instruction_first and self.modality == "text":
            raise ValueError("instruction_first needs modality='image': the text probe has no image to move it before")
        if self.cell_size < 8:
            raise ValueError(f"cell_size must be >= 8 pixels, got {self.cell_size}")

    @property
    def grid_side(self) -> int:
        """Columns (and rows) of the image grid: the smallest square holding the longest N."""
        return math.isqrt(self.lengths[-1] - 1) + 1


# ------------------------------------------------------------------------------------------------------------
# The two probes: tokenizer/processor, model, training encoding and greedy prediction
# ------------------------------------------------------------------------------------------------------------


class _TextProbe:
    """Language-only probe: the backbones' causal language models on symbol sequences."""

    def __init__(self, config: ProbeConfig) -> None:
        self.config = config
        symbols = symbol_vocabulary(config.num_symbols)
        examples = [self.example(n, i, "train") for n in config.lengths for i in range(8)]
        corpus = [f"{e.prompt}\n{e.answer}" for e in examples]
        # Registered before training, each symbol stays one token whatever its neighbours.
        self.tokenizer = train_synthetic_tokenizer(corpus, extra_tokens=symbols, vocab_size=len(symbols) + 512)
        self.max_new_tokens = len(str(config.lengths[-1])) + 1

    def example(self, n: int, index: int, split: str) -> RetrievalExample:
        """The ``index``-th example of length ``n`` in ``split``."""
        return text_example(n, self.config.seed, index, self.config.num_symbols, split)

    def build_model(self, backbone: str) -> PreTrainedModel:
        """A randomly initialised causal LM of ``backbone`` at the demo's size."""
        enable_fast_mamba_scan()  # Mamba's fast CPU scan (a no-op where the fused kernels exist)
        config = small_text_config(backbone, len(self.tokenizer), self.config.lengths[-1] + 64)
        set_seed(self.config.seed)
        return AutoModelForCausalLM.from_config(AutoConfig.for_model(**config))

    def encode(self, example: RetrievalExample) -> dict[str, Any]:
        """``prompt\\n`` then ``answer<eos>``; only the answer is in the loss (as in the VL chat format)."""
        prompt = self.tokenizer.encode(example.prompt + "\n", add_special_tokens=False)
        answer = self.tokenizer.encode(example.answer + self.tokenizer.eos_token, add_special_tokens=False)
        return {"input_ids": prompt + answer, "labels": [IGNORE_INDEX] * len(prompt) + answer}

    @torch.inference_mode()
    def predict(self, model: PreTrainedModel, examples: Sequence[RetrievalExample]) -> list[str]:
        """Greedy answers; prompts of equal token length are batched, so no padding is ever needed."""
        model.eval()
        prompts = [self.tokenizer.encode(e.prompt + "\n", add_special_tokens=False) for e in examples]
        by_length: dict[int, list[int]] = {}
        for i, ids in enumerate(prompts):
            by_length.setdefault(len(ids), []).append(i)
        answers = [""] * len(examples)
        for rows in by_length.values():
            for start in range(0, len(rows), self.config.batch_size):
                chunk = rows[start : start + self.config.batch_size]
                ids = torch.tensor([prompts[i] for i in chunk], device=model.device)  # (B, T)
                output = model.generate(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    max_new_tokens=self.max_new_tokens,
                    do_sample=False,
                    pad_token_id=self.tokenizer.pad_token_id,
                    eos_token_id=self.tokenizer.eos_token_id,
                )
                texts = self.tokenizer.batch_decode(output[:, ids.shape[1] :], skip_special_tokens=True)
                for i, text in zip(chunk, texts, strict=True):
                    answers[i] = text.strip()
        return answers


class _ImageProbe:
    """Multimodal probe: Pythia-VL / Mamba-VL on glyph grids, one vision patch per cell."""

    def __init__(self, config: ProbeConfig) -> None:
        self.config = config
        corpus = [t for n in config.lengths for i in range(16) for t in self._texts(self.example(n, i, "train"))]
        tokenizer = train_synthetic_tokenizer(corpus, extra_tokens=LAYOUT_TOKENS)
        pixels = config.grid_side * config.cell_size
        image_processor = VLImageProcessor(size={"height": pixels, "width": pixels})
        self.processor = VLProcessor(
            image_processor, tokenizer, image_grid_size=config.grid_side, instruction_first=config.instruction_first
        )
        self.tokenizer = self.processor.tokenizer
        self.max_new_tokens = 16

    @staticmethod
    def _texts(example: RetrievalExample) -> list[str]:
        """Prompt and answer, plus every glyph so that all of them are in the tokenizer's corpus."""
        return [example.prompt, example.answer, " ".join(example.context)]

    def example(self, n: int, index: int, split: str) -> RetrievalExample:
        """The ``index``-th example with ``n`` filled cells in ``split``."""
        return grid_example(n, self.config.seed, index, self.config.grid_side, self.config.cell_size, split)

    def build_model(self, backbone: str) -> PreTrainedModel:
        """A randomly initialised VL model of ``backbone`` at the matched size, one patch per grid cell."""
        return build_small_model(
            backbone,
            vocab_size=len(self.processor.tokenizer),
            image_size=self.config.grid_side * self.config.cell_size,
            patch_size=self.config.cell_size,
            image_token_id=self.processor.image_token_id,
            seed=self.config.seed,
            instruction_first=self.config.instruction_first,
        )

    def encode(self, example: RetrievalExample) -> dict[str, Any]:
        """The processor's training example (answer-only labels, task-aware layout when configured)."""
        return self.processor.build_training_example(
            conversation(example.prompt, example.answer), images=[example.image]
        )

    def predict(self, model: PreTrainedModel, examples: Sequence[RetrievalExample]) -> list[str]:
        """Greedy answers in left-padded batches."""
        images, prompts = [e.image for e in examples], [e.prompt for e in examples]
        return generate_answers(
            model, self.processor, images, prompts, self.config.batch_size, self.max_new_tokens, show_progress=False
        )


_PROBES: MappingProxyType[str, Callable[[ProbeConfig], _TextProbe | _ImageProbe]] = MappingProxyType(
    {"text": _TextProbe, "image": _ImageProbe}
)


# ------------------------------------------------------------------------------------------------------------
# Training, scoring and the report
# ------------------------------------------------------------------------------------------------------------


class _OnDemand(torch.utils.data.Dataset):
    """Training examples made from their index when the Trainer asks (deterministic, nothing held in memory)."""

    def __init__(self, length: int, make: Callable[[int], dict[str, Any]]) -> None:
        self.length, self.make = length, make

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.make(index)


def _train(
    model: PreTrainedModel, probe: _TextProbe | _ImageProbe, config: ProbeConfig, out: Path
) -> tuple[list[dict[str, float]], float]:
    """Train on a balanced mix of all N with the transformers Trainer; return the loss history and seconds."""
    lengths = config.lengths

    def make(index: int) -> dict[str, Any]:
        return probe.encode(probe.example(lengths[index % len(lengths)], index // len(lengths), "train"))

    args = short_run_arguments(
        str(out / "trainer"),
        steps=config.steps,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        seed=config.seed,
        show_progress=config.show_progress,
        logs=20,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=_OnDemand(config.steps * config.batch_size, make),
        data_collator=VLDataCollator(pad_token_id=probe.tokenizer.pad_token_id),
    )
    start = time.perf_counter()
    trainer.train()
    return [e for e in trainer.state.log_history if "loss" in e], time.perf_counter() - start


def _mean(values: Sequence[float]) -> float:
    """Arithmetic mean, 0.0 for an empty sequence."""
    return sum(values) / len(values) if values else 0.0


def _bin_label(index: int, width: int) -> str:
    """``"11-20"`` for bin 1 of width 10; a lone position for width 1."""
    low, high = index * width + 1, (index + 1) * width
    return str(low) if low == high else f"{low}-{high}"


def summarize(examples: Sequence[RetrievalExample], predictions: Sequence[str]) -> dict[str, Any]:
    """Exact-match accuracy overall, by N, by target position (10 equal-width bins up to the longest N) and kind."""
    if len(examples) != len(predictions):
        raise ValueError(f"got {len(predictions)} predictions for {len(examples)} examples")
    correct = [float(p.strip() == e.answer) for e, p in zip(examples, predictions, strict=True)]
    width = max(1, math.ceil(max((e.n for e in examples), default=1) / _POSITION_BINS))
    by_length: dict[int, list[float]] = {}
    by_position: dict[int, list[float]] = {}
    by_kind: dict[str, list[float]] = {}
    for example, score in zip(examples, correct, strict=True):
        by_length.setdefault(example.n, []).append(score)
        by_position.setdefault((example.position - 1) // width, []).append(score)
        by_kind.setdefault(example.kind, []).append(score)
    return {
        "accuracy": _mean(correct),
        "num_examples": len(correct),
        "by_length": {str(n): _mean(by_length[n]) for n in sorted(by_length)},
        "by_position": {_bin_label(b, width): _mean(by_position[b]) for b in sorted(by_position)},
        "by_kind": {k: _mean(v) for k, v in sorted(by_kind.items())},
    }


def results_table(results: dict[str, Any]) -> str:
    """Markdown tables of accuracy (%) by N and by target position, one column per backbone and the gap."""
    models = results["models"]
    names = list(models)
    gap = "pythia" in models and "mamba" in models
    columns = [models[n]["display_name"] for n in names] + (["Mamba - Pythia"] if gap else [])
    header = "| {} | " + " | ".join(columns) + " |"
    sections = []
    for key, label in (("by_length", "N"), ("by_position", "target position")):
        lines = [header.format(label), "|---" + "|---:" * (len(names) + gap) + "|"]
        for row in models[names[0]][key]:
            values = [100 * models[n][key][row] for n in names]
            delta = [f"{100 * (models['mamba'][key][row] - models['pythia'][key][row]):+.1f}"] if gap else []
            lines.append(f"| {row} | " + " | ".join([*(f"{v:.1f}" for v in values), *delta]) + " |")
        sections.append("\n".join(lines))
    overall = " | ".join(f"{models[n]['display_name']} {100 * models[n]['accuracy']:.1f}" for n in names)
    return f"Exact-match accuracy (%), overall: {overall}\n\n" + "\n\n".join(sections)


def _write_outputs(results: dict[str, Any], out: Path) -> str:
    """Write results.json, results.md and retrieval_curves.png; return the Markdown tables."""
    table = results_table(results)
    write_json(out / "results.json", results)
    title = f"# In-context retrieval probe ({results['modality']})\n\n"
    write_text(out / "results.md", title + table + "\n")
    models = results["models"]
    line_chart(
        [
            ("accuracy by context length", "N", {m["display_name"]: {int(n): v for n, v in m["by_length"].items()}
                                                 for m in models.values()}),
            ("accuracy by target position", "position", {m["display_name"]: m["by_position"]
                                                         for m in models.values()}),
        ],
        out / "retrieval_curves.png",
    )  # fmt: skip
    return table


def _probe_backbone(
    probe: _TextProbe | _ImageProbe, backbone: str, held_out: Sequence[RetrievalExample], config: ProbeConfig
) -> dict[str, Any]:
    """Train one backbone, save its held-out predictions and return its scores."""
    display = backbone_spec(backbone).display_name
    print(f"\n== {display}: training on the {config.modality} retrieval probe for {config.steps} steps ==", flush=True)
    model = probe.build_model(backbone)
    out = Path(config.out) / backbone
    history, seconds = _train(model, probe, config, out)
    predictions = probe.predict(model, held_out)
    with (out / "predictions.jsonl").open("w") as handle:
        for example, prediction in zip(held_out, predictions, strict=True):
            record = {"n": example.n, "position": example.position, "kind": example.kind, "answer": example.answer}
            handle.write(json.dumps({**record, "prediction": prediction}) + "\n")
    return {
        "display_name": display,
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": round(seconds, 1),
        "final_loss": history[-1]["loss"] if history else None,
        **summarize(held_out, predictions),
    }


def run_retrieval_probe(config: ProbeConfig) -> dict[str, Any]:
    """Train each backbone on the probe, score it on held-out examples, write and print the report."""
    out = fresh_folder(config.out)
    probe = _PROBES[config.modality](config)
    held_out = [probe.example(n, i, "eval") for n in config.lengths for i in range(config.eval_examples)]
    results: dict[str, Any] = {"probe": "retrieval", "modality": config.modality, "config": asdict(config)}
    results["models"] = {}
    if "mamba" in config.backbones:
        compile_cpu_kernels_in_child()  # this process then loads them: the first run matches every later one
    for backbone in config.backbones:
        results["models"][backbone] = _probe_backbone(probe, backbone, held_out, config)
        table = _write_outputs(results, out)  # after each backbone, so a long run keeps what it has finished
    print("\n" + table + f"\n\nSaved results.json, results.md and retrieval_curves.png under {out}/", flush=True)
    return results
