"""``vlm eval``: run a saved model on the paper's benchmarks, resumably, and report the scores beside the paper's.

For each benchmark the samples are read from the annotation files (images stay on disk until their batch), answers are
generated greedily in batches and appended to ``OUT/<model>/<benchmark>/predictions.jsonl`` as each batch finishes;
the scores go to ``metrics.json`` beside them. ``OUT/<model>/metrics.json`` and ``results.md`` summarise every
benchmark evaluated so far. Rerunning the same command after an interruption skips the samples already in
``predictions.jsonl`` (a truncated or malformed line is dropped and its sample generated again).

When the model's language model has the size of one of the paper's six models, the report shows the published numbers
beside ours (:func:`training.eval.paper.compare_with_paper`); otherwise our numbers alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from configuration import PRESETS, VLConfig, backbone_spec

from ..files import read_json, safe_name, write_json, write_text
from .benchmarks import BenchmarkResult, EvalSample, get_benchmark
from .data_sources import SOURCES, load_samples
from .generation import generate_answers, generate_from_ids
from .paper import BENCHMARK_TO_PAPER_COLUMN, PAPER_MODELS, compare_with_paper
from .paper_prompts import PAPER_MAX_NEW_TOKENS, paper_input_ids, paper_turns
from .saved import PREDICTIONS_FILE, check_fingerprint, read_predictions, weights_digest

__all__ = [
    "EvalConfig",
    "evaluate_benchmark",
    "load_model",
    "model_summary",
    "paper_model_for",
    "read_predictions",
    "results_markdown",
    "run_eval",
]

INSTRUCTION_FIRST_SUFFIX = "-instruction-first"
PAPER_PROMPTS_SUFFIX = "-paper-prompts"
LMMS_EVAL_SUFFIX = "-lmms-eval"
PROMPT_STYLES = ("ours", "paper")
DEFAULT_MAX_NEW_TOKENS = 32


@dataclass
class EvalConfig:
    """Run configuration of ``vlm eval`` (saved in each ``metrics.json``)."""

    model: str
    benchmarks: tuple[str, ...]
    annotations: str | None = None  # one folder for every benchmark of the run (with ``images``)
    images: str | None = None
    data_root: str | None = None  # every benchmark's release under its folder (``vlm eval --list``)
    data: dict[str, str] = field(default_factory=dict)  # benchmark -> "ANNOTATIONS[:IMAGES]"
    splits: dict[str, str] = field(default_factory=dict)  # benchmark -> split (default: the paper's)
    source: str = "files"  # "lmms-eval": lmms-eval's Hugging Face datasets (a local copy under data_root, or the Hub)
    out: str = "vlm-eval"
    batch_size: int = 16
    max_new_tokens: int | None = None  # default: 32, or the paper's per benchmark with prompt_style="paper"
    limit: int | None = None  # first N samples of each benchmark
    instruction_first: bool = False  # the paper's task-aware encoding: instruction before the image
    prompt_style: str = "ours"  # "paper": the paper's scripts' turns, tokenization and new tokens
    name: str | None = None  # the model's folder under ``out``; default: the model folder's name
    device: str | None = None  # default: cuda when available, else cpu
    show_progress: bool = True

    def __post_init__(self) -> None:
        """Validate early, naming the offending field and value."""
        if not self.benchmarks:
            raise ValueError("benchmarks is empty; name at least one")
        for name in self.benchmarks:
            get_benchmark(name)  # raises listing the valid names
        for name in ("batch_size", "max_new_tokens"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.source not in SOURCES:
            raise ValueError(f"source={self.source!r} is not one of {', '.join(SOURCES)}")
        if (self.annotations is None) != (self.images is None):
            raise ValueError("annotations and images go together: give both folders, or neither")
        for name in self.data:
            get_benchmark(name)
        for name, split in self.splits.items():
            spec = get_benchmark(name)  # raises listing the valid names
            if self.source == "files":
                spec.check_split(split)  # raises listing the valid splits
        if self.prompt_style not in PROMPT_STYLES:
            raise ValueError(f"prompt_style={self.prompt_style!r} is not one of {', '.join(PROMPT_STYLES)}")
        if self.limit is not None and self.limit <= 0:
            raise ValueError(f"limit must be positive, got {self.limit}")
        if self.name is not None:
            safe_name(self.name, "name")  # it names a folder under `out`: never a path out of it

    @property
    def model_name(self) -> str:
        """The model's folder name under ``out`` (task-aware runs get their own, so the two never mix on resume)."""
        name = self.name or Path(self.model).resolve().name
        name += PAPER_PROMPTS_SUFFIX if self.prompt_style == "paper" else ""
        name += LMMS_EVAL_SUFFIX if self.source == "lmms-eval" else ""  # its sample ids are the datasets' own
        return name + INSTRUCTION_FIRST_SUFFIX if self.instruction_first else name

    def new_tokens(self, benchmark: str) -> int:
        """The generation budget of `benchmark`: the one given, the paper's (paper prompts), or 32."""
        if self.max_new_tokens is not None:
            return self.max_new_tokens
        return PAPER_MAX_NEW_TOKENS[benchmark] if self.prompt_style == "paper" else DEFAULT_MAX_NEW_TOKENS


# ------------------------------------------------------------------------------------------------------------
# Model and paper size
# ------------------------------------------------------------------------------------------------------------


def load_model(path: str | Path, device: str | None = None) -> tuple[Any, Any]:
    """The model (in eval mode, on ``device``) and processor saved under ``path``."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    import modeling_vlm  # noqa: F401  (registers pythia_vl / mamba_vl with the Auto classes)

    if not Path(path).is_dir():
        raise FileNotFoundError(f"model folder not found: {path}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = AutoModelForImageTextToText.from_pretrained(path).to(device).eval()
    return model, AutoProcessor.from_pretrained(path)


def paper_model_for(config: VLConfig) -> str | None:
    """The paper's model whose language model has this config's size (same backbone, width, depth), if any."""
    backbone = type(config).backbone
    text = config.text_config
    for preset_name, preset in PRESETS[backbone].items():
        size = (preset.text_config["hidden_size"], preset.text_config["num_hidden_layers"])
        if size == (text.hidden_size, text.num_hidden_layers):
            candidate = f"{backbone_spec(backbone).display_name}-{preset_name.upper()}"
            if candidate in PAPER_MODELS:
                return candidate
    return None


def _check_samples(name: str, samples: Sequence[EvalSample]) -> None:
    """Sample ids must be unique (resuming keys on them) and every image file must exist."""
    seen: set[str] = set()
    for sample in samples:
        if sample.sample_id in seen:
            raise ValueError(f"{name}: sample id {sample.sample_id!r} occurs twice; resuming needs unique ids")
        seen.add(sample.sample_id)
    missing = [s.image_path for s in samples if not s.embedded and not s.image_path.is_file()]
    if missing:
        raise FileNotFoundError(f"{name}: {len(missing)} image file(s) not found, the first: {missing[0]}")


def _generate_missing(
    model: Any, processor: Any, pending: Sequence[EvalSample], path: Path, config: EvalConfig, desc: str
) -> int:
    """Generate answers for ``pending`` batch by batch, appending each batch to ``path`` as soon as it is done; a
    sample whose image cannot be read is recorded as failed (redone next run). Returns the number that failed."""
    starts = range(0, len(pending), config.batch_size)
    failed = 0
    with path.open("a", encoding="utf-8") as handle:
        for start in tqdm(starts, desc=desc, disable=not config.show_progress, leave=False):
            batch, images, records = [], [], []
            for sample in pending[start : start + config.batch_size]:
                try:
                    images.append(sample.load_image())
                    batch.append(sample)
                except (FileNotFoundError, ValueError) as err:
                    records.append({"sample_id": sample.sample_id, "prediction": None, "error": str(err)})
            answers = _answers(model, processor, batch, images, config, desc) if batch else []
            for sample, answer in zip(batch, answers, strict=True):
                records.append({"sample_id": sample.sample_id, "prediction": answer, "references": sample.references})
            failed += sum("error" in r for r in records)
            handle.write("".join(json.dumps(r) + "\n" for r in records))
            handle.flush()
    return failed


def _answers(
    model: Any, processor: Any, batch: Sequence[EvalSample], images: Sequence[Any], config: EvalConfig, name: str
) -> list[str]:
    """Greedy answers for one batch in the configured prompt style."""
    if config.prompt_style == "paper":
        ids = [paper_input_ids(processor, paper_turns(name, s), config.instruction_first) for s in batch]
        return generate_from_ids(model, processor, list(images), ids, config.new_tokens(name))
    prompts = [s.prompt for s in batch]
    return generate_answers(model, processor, list(images), prompts, len(batch), config.new_tokens(name), False)


def _fingerprint(config: EvalConfig, name: str, processor: Any, weights: str) -> dict[str, Any]:
    """Everything that decides a benchmark's answers: the model and the generation settings."""
    return {
        "model_path": str(Path(config.model).resolve()),
        "weights_sha256": weights,
        "prompt_style": config.prompt_style,
        "instruction_first": bool(processor.instruction_first),
        "max_new_tokens": config.new_tokens(name),
        "source": config.source,
        "split": config.splits.get(name, get_benchmark(name).split),
    }


def evaluate_benchmark(
    model: Any,
    processor: Any,
    name: str,
    samples: Sequence[EvalSample],
    out_dir: Path,
    config: EvalConfig,
    skipped: Mapping[str, int] | None = None,
    weights: str = "",
) -> BenchmarkResult:
    """Generate the answers not yet in ``out_dir/predictions.jsonl`` (made under this model's fingerprint), score all
    ``samples``, write metrics.json (with the annotations the reader ``skipped``, by reason)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / PREDICTIONS_FILE
    stale = check_fingerprint(out_dir, _fingerprint(config, name, processor, weights))
    if stale:
        print(f"{name}: {stale}; starting fresh", flush=True)
    saved = read_predictions(path)
    pending = [s for s in samples if s.sample_id not in saved]
    reused = len(samples) - len(pending)
    if reused:
        print(f"{name}: resuming, reusing {reused} of {len(samples)} saved predictions", flush=True)
    failed = _generate_missing(model, processor, pending, path, config, name)
    if failed:
        print(f"{name}: {failed} image(s) could not be read; scored as wrong (see {path}, redone next run)")
    saved = read_predictions(path)
    result = get_benchmark(name).score([saved.get(s.sample_id) for s in samples], samples)
    record = {
        "benchmark": name,
        "model": config.model_name,
        "task": get_benchmark(name).task,
        "primary_metric": result.primary_metric,
        "primary": result.primary,
        "scores": result.scores,
        "num_samples": len(samples),
        "skipped": dict(skipped or {}),
        "unreadable_images": failed,
        "reused_predictions": reused,
        "split": config.splits.get(name, get_benchmark(name).split),
        "source": config.source,
        "paper_column": BENCHMARK_TO_PAPER_COLUMN.get(name),
        "notes": result.notes,
        "instruction_first": bool(processor.instruction_first),
        "prompt_style": config.prompt_style,
        "max_new_tokens": config.new_tokens(name),
        "config": asdict(config),
    }
    write_json(out_dir / "metrics.json", record)
    return result


# ------------------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------------------


def model_summary(model_dir: Path, info: dict[str, Any]) -> dict[str, Any]:
    """``info`` plus every benchmark's metrics.json found under ``model_dir`` (so partial runs accumulate)."""
    benchmarks = {}
    for path in sorted(model_dir.glob("*/metrics.json")):
        record = read_json(path, "benchmark metrics")
        if not isinstance(record, dict) or "benchmark" not in record:
            print(f"warning: {path} is unreadable or incomplete; left out of the summary (rerun that benchmark)")
            continue
        benchmarks[record["benchmark"]] = {k: v for k, v in record.items() if k not in ("config", "model")}
    return {**info, "benchmarks": benchmarks}


def results_markdown(summary: dict[str, Any]) -> str:
    """Our scores (x100) as a Markdown table, and the paper comparison when the model has a paper model's size."""
    lines = [
        f"# vlm eval: {summary['model']}",
        "",
        "| benchmark | task | metric | score (x100) | samples |",
        "|---|---|---|---:|---:|",
    ]
    for name, record in summary["benchmarks"].items():
        row = [name, record["task"], record["primary_metric"], f"{100 * record['primary']:.2f}"]
        lines.append("| " + " | ".join([*row, str(record["num_samples"])]) + " |")
    notes = sorted({f"{k}: {v}" for r in summary["benchmarks"].values() for k, v in r["notes"].items()})
    notes += [
        f"{name}: {count} annotation(s) skipped, not scored ({reason})"
        for name, record in summary["benchmarks"].items()
        for reason, count in record.get("skipped", {}).items()
    ]
    if notes:
        lines += ["", "Notes: " + "; ".join(notes)]
    paper_model = summary.get("paper_model")
    ours = {n: r["primary"] for n, r in summary["benchmarks"].items() if n in BENCHMARK_TO_PAPER_COLUMN}
    if paper_model and ours:
        lines += ["", f"## Compared with the paper's {paper_model}", "", compare_with_paper(ours, paper_model)]
    return "\n".join(lines) + "\n"


def _model_info(model: Any, processor: Any, config: EvalConfig) -> dict[str, Any]:
    """What the summary records about the model: path, backbone, sizes, paper model, encoding."""
    backbone = type(model.config).backbone
    return {
        "model": config.model_name,
        "model_path": str(Path(config.model).resolve()),
        "backbone": backbone,
        "display_name": backbone_spec(backbone).display_name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "language_model_parameters": sum(p.numel() for p in model.language_model.parameters()),
        "paper_model": paper_model_for(model.config),
        "instruction_first": bool(processor.instruction_first),
    }


def run_eval(config: EvalConfig) -> dict[str, Any]:
    """Evaluate the model on every benchmark (resuming from saved predictions); return the model summary."""
    samples, skipped = {}, {}
    for name in config.benchmarks:  # read every annotation file first: a bad path fails before the model loads
        samples[name], skipped[name] = load_samples(name, config)
        _check_samples(name, samples[name])
        for reason, count in skipped[name].items():
            print(f"{name}: skipped {count} annotation(s), not scored: {reason}", flush=True)
    model, processor = load_model(config.model, config.device)
    if config.instruction_first:
        processor.instruction_first = True
    model_dir = Path(config.out) / config.model_name
    weights = weights_digest(config.model)
    for name, items in samples.items():
        result = evaluate_benchmark(model, processor, name, items, model_dir / name, config, skipped[name], weights)
        print(f"{name}: {result.primary_metric} = {100 * result.primary:.2f} ({len(items)} samples)", flush=True)
    summary = model_summary(model_dir, _model_info(model, processor, config))
    write_json(model_dir / "metrics.json", summary)
    report = results_markdown(summary)
    write_text(model_dir / "results.md", report)
    print("\n" + report, flush=True)
    print(f"Saved predictions, metrics.json and results.md under {model_dir}/", flush=True)
    return summary
