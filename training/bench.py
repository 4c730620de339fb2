"""``vlm bench``: Pythia-VL and Mamba-VL measured side by side, in one run, at matched size.

Training: tokens/s of a forward + backward pass at 640 tokens (576 image + 64 text, the paper's samples) and 2048.
``--width W --layers-pythia N --layers-mamba M`` measures any matched pair instead of a named size (Pythia with 4W
MLPs and 64-wide heads, Mamba with expand 2), and the demo's own training step (its models, batch and lengths,
forward + backward + AdamW) is timed too, so the short-sequence regime has its own ratio.
Generation: prefill latency, decode tokens/s at batch 1 and 32, and memory at contexts of 1k, 4k and 16k tokens. The
generation state is measured exactly as the bytes the cache holds (Pythia's KV cache grows with the context, Mamba's
recurrent state does not); on CUDA the peak allocated memory is reported too. Every Mamba figure sits beside its Pythia
figure with the ratio, and the Mamba scan path that ran (fused kernels, fast scan or reference loop) is recorded.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

from configuration import PRESETS, BackboneSpec, backbone_spec, config_class_for_backbone
from modeling_vlm import MODEL_CLASSES, VLForConditionalGeneration, generation_cache
from modeling_vlm.mamba_kernels import scan_path

from .short_runs import MATCHED_TEXT_SIZES

IMAGE_TOKENS_GRID = 24  # 24 x 24 = 576 image tokens, as with EVA-02-L/14 at 336 px

# Matched sizes: "tiny" for the CPU (the demo's language models), "1b" for the paper's Pythia-1B / Mamba-790M pair.
BENCH_SIZES: dict[str, Mapping[str, str | Mapping[str, int]]] = {
    "tiny": MATCHED_TEXT_SIZES,
    "1b": {"pythia": "1b", "mamba": "790m"},
}
# A cheap vision tower that still emits 24 x 24 patches: the benchmark measures the language backbones.
BENCH_VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}


@dataclass
class BenchConfig:
    """What to measure (run configuration of ``vlm bench``)."""

    size: str = "tiny"
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    dtype: str = "float32"
    train_lengths: tuple[int, ...] = (640, 2048)
    train_batch_size: int = 2
    contexts: tuple[int, ...] = (1024, 4096, 16384)
    decode_batch_sizes: tuple[int, ...] = (1, 32)
    decode_tokens: int = 32
    repeats: int = 3
    seed: int = 0
    width: int | None = None  # a custom matched pair instead of `size`: hidden size of both language models
    layers_pythia: int = 4
    layers_mamba: int = 8  # two Mamba layers (~6 W^2 parameters each) per Pythia layer (~12 W^2)
    demo_step: bool = True  # also time the demo's training step (its models, batch and sequence lengths)

    def __post_init__(self) -> None:
        if self.size not in BENCH_SIZES:
            raise ValueError(f"Unknown bench size {self.size!r}; valid sizes are: {', '.join(BENCH_SIZES)}.")
        for name in ("width", "layers_pythia", "layers_mamba", "train_batch_size", "repeats", "decode_tokens"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if self.width is not None and self.width % 16:
            raise ValueError(f"width={self.width} is not a multiple of 16 (attention heads and the Mamba dt rank).")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"dtype={self.dtype!r} is not one of float32, bfloat16, float16.")
        too_short = [n for n in (*self.train_lengths, *self.contexts) if n <= _image_block_length()]
        if too_short:
            raise ValueError(
                f"Lengths {too_short} leave no room for text after the {_image_block_length()}-token image."
            )


@dataclass
class BenchResult:
    """All figures of one run; ``rows`` hold one measurement each with both backbones and their ratio."""

    config: dict[str, Any]
    mamba_scan_path: str
    device_name: str
    parameters: dict[str, int]
    rows: list[dict[str, Any]] = field(default_factory=list)


def _image_block_length() -> int:
    return 1 + IMAGE_TOKENS_GRID * (IMAGE_TOKENS_GRID + 1)  # the paper's rows layout: 601 positions


def matched_text_sizes(width: int, layers_pythia: int, layers_mamba: int) -> dict[str, dict[str, int]]:
    """Text-config overrides of a Pythia / Mamba pair at hidden size `width` (Pythia's and Mamba's own ratios)."""
    return {
        "pythia": {
            "hidden_size": width,
            "num_hidden_layers": layers_pythia,
            "num_attention_heads": max(1, width // 64) if width % 64 == 0 else width // 16,
            "intermediate_size": 4 * width,
        },
        "mamba": {
            "hidden_size": width,
            "num_hidden_layers": layers_mamba,
            "intermediate_size": 2 * width,
            "time_step_rank": math.ceil(width / 16),
        },
    }


def build_bench_model(backbone: str, config: BenchConfig) -> VLForConditionalGeneration:
    """A randomly initialised model of the benchmark size (vision tower kept small, 24 x 24 patches)."""
    if config.width is not None:
        size: str | Mapping[str, int] = matched_text_sizes(config.width, config.layers_pythia, config.layers_mamba)[
            backbone
        ]
    else:
        size = BENCH_SIZES[config.size][backbone]
    preset = PRESETS[backbone]["tiny" if isinstance(size, Mapping) else size]
    text_config = {**preset.text_config, **(size if isinstance(size, Mapping) else {})}
    vision_config = {**PRESETS[backbone]["tiny"].vision_config, **BENCH_VISION, "image_size": 48, "patch_size": 2}
    model_config = config_class_for_backbone(backbone)(
        vision_config=vision_config,
        text_config=text_config,
        image_grid_size=IMAGE_TOKENS_GRID,
        image_token_id=1,
    )
    torch.manual_seed(config.seed)
    model = MODEL_CLASSES[backbone](model_config)
    return model.to(device=config.device, dtype=getattr(torch, config.dtype))


def _inputs(model: VLForConditionalGeneration, batch: int, length: int) -> dict[str, torch.Tensor]:
    """Random text around one image block per sequence: ``length`` tokens in all."""
    config = model.config
    block = torch.full((_image_block_length(),), 2, dtype=torch.long)
    block[1:].view(IMAGE_TOKENS_GRID, IMAGE_TOKENS_GRID + 1)[:, :IMAGE_TOKENS_GRID] = config.image_token_id
    text = torch.randint(4, config.text_config.vocab_size, (batch, length - len(block)))  # (B, L - 601)
    input_ids = torch.cat([block.expand(batch, -1), text], dim=1)  # (B, L)
    pixel_values = torch.randn(batch, 3, 48, 48, dtype=model.dtype)
    return {"input_ids": input_ids.to(model.device), "pixel_values": pixel_values.to(model.device)}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn: Callable[[], Any], device: str, repeats: int) -> float:
    """Median seconds of `repeats` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def train_tokens_per_second(model: VLForConditionalGeneration, config: BenchConfig, length: int) -> float:
    """Tokens per second of forward + backward at `length` tokens per sequence."""
    model.train()
    inputs = _inputs(model, config.train_batch_size, length)
    labels = inputs["input_ids"].clone()

    def step() -> None:
        model(**inputs, labels=labels).loss.backward()
        model.zero_grad(set_to_none=True)

    return config.train_batch_size * length / _timed(step, config.device, config.repeats)


def demo_step_seconds(backbones: tuple[str, ...], config: BenchConfig) -> tuple[str, dict[str, float]]:
    """Median seconds of one demo training step (forward, backward, AdamW) per backbone, on one demo batch of the
    default demo's data, tokenizer and models; returns the batch's shape as text too."""
    from .collator import VLDataCollator
    from .demo import DemoConfig, build_demo_dataset, build_model, build_optimizer, build_processor, training_set

    demo = DemoConfig(seed=config.seed, show_progress=False)
    data = build_demo_dataset(demo, num_images=_DEMO_BENCH_IMAGES, seed=config.seed)
    processor = build_processor(demo, data)
    rows = training_set(data.shuffle(seed=config.seed), processor)
    collate = VLDataCollator(pad_token_id=processor.tokenizer.pad_token_id)
    batch = collate([rows[i] for i in range(demo.batch_size)])
    seconds = {}
    for backbone in backbones:
        model = build_model(backbone, demo, processor).to(config.device).train()
        optimizer = build_optimizer(model, demo)
        inputs = {k: v.to(config.device) for k, v in batch.items()}

        def step(
            model: VLForConditionalGeneration = model,
            optimizer: torch.optim.Optimizer = optimizer,
            inputs: dict[str, torch.Tensor] = inputs,
        ) -> None:
            model(**inputs).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        seconds[backbone] = _timed(step, config.device, max(config.repeats, 5))
    lengths = batch["attention_mask"].sum(1) if "attention_mask" in batch else batch["input_ids"].new_tensor([0])
    shape = f"demo b{demo.batch_size} x {int(lengths.min())}-{batch['input_ids'].shape[1]} tokens"
    return shape, seconds


# rows per demo task for the demo-step benchmark: enough for the tokenizer to learn the demo's vocabulary
_DEMO_BENCH_IMAGES = 200


def cache_bytes(cache: Any) -> int:
    """Bytes held by every tensor of a generation cache (KV tensors, conv and recurrent states)."""
    seen: set[int] = set()

    def tensors(obj: Any, depth: int = 0) -> Iterator[torch.Tensor]:
        if isinstance(obj, torch.Tensor):
            yield obj
        elif depth < 4 and isinstance(obj, (list, tuple, dict)):
            for item in obj.values() if isinstance(obj, dict) else obj:
                yield from tensors(item, depth + 1)
        elif depth < 4 and hasattr(obj, "__dict__"):
            for item in vars(obj).values():
                yield from tensors(item, depth + 1)

    total = 0
    for tensor in tensors(cache):
        if tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            total += tensor.numel() * tensor.element_size()
    return total


def _cache_kwargs(outputs: Any) -> dict[str, Any]:
    cache = generation_cache(outputs)
    if not cache:
        raise RuntimeError("The model returned no generation cache.")
    return cache


def _prefill(model: VLForConditionalGeneration, config: BenchConfig, batch: int, context: int) -> tuple[Any, float]:
    """Run the prompt once; return (outputs, seconds)."""
    inputs = _inputs(model, batch, context)
    _sync(config.device)
    start = time.perf_counter()
    outputs = model(**inputs, use_cache=True, logits_to_keep=1)
    _sync(config.device)
    return outputs, time.perf_counter() - start


def _batched_state(outputs: Any, batch: int) -> tuple[dict[str, Any], torch.Tensor]:
    """The batch-1 prefill's cache and next token, repeated to `batch` rows (a copy: the original stays intact)."""
    cache = copy.deepcopy(_cache_kwargs(outputs))
    # Beam search's row selection, with every new row taken from row 0: works for KV and recurrent caches alike.
    next(iter(cache.values())).reorder_cache(torch.zeros(batch, dtype=torch.long, device=outputs.logits.device))
    token = outputs.logits[:, -1:].argmax(-1).repeat(batch, 1)  # (B, 1)
    return cache, token


@torch.inference_mode()
def generation_figures(model: VLForConditionalGeneration, config: BenchConfig, context: int) -> dict[str, Any]:
    """Prefill latency (batch 1) and, per decode batch size, decode tokens/s and state memory at `context` tokens."""
    model.eval()
    if config.device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    prefilled, prefill_seconds = _prefill(model, config, 1, context)
    figures: dict[str, Any] = {"prefill_s": prefill_seconds}
    for batch in config.decode_batch_sizes:
        # Prefilling 32 x 16k tokens would dominate the run; the decode speed only needs the state of that length.
        cache, token = _batched_state(prefilled, batch)
        step_seconds = []
        for step in range(config.decode_tokens + 2):  # two warm-up steps, then one timing per token
            _sync(config.device)
            start = time.perf_counter()
            outputs = model(input_ids=token, use_cache=True, **cache)
            cache, token = _cache_kwargs(outputs), outputs.logits[:, -1:].argmax(-1)
            _sync(config.device)
            if step >= 2:
                step_seconds.append(time.perf_counter() - start)
        per_token = sorted(step_seconds)[len(step_seconds) // 2]  # median: robust to a noisy shared machine
        figures[f"decode_ms_per_token@b{batch}"] = 1000 * per_token
        figures[f"decode_tokens_per_s@b{batch}"] = batch / per_token
        figures[f"state_mib@b{batch}"] = cache_bytes(next(iter(cache.values()))) / 2**20
        if config.device.startswith("cuda"):
            figures[f"peak_memory_mib@b{batch}"] = torch.cuda.max_memory_allocated() / 2**20
        del cache, outputs
    return figures


def _row(measurement: str, setting: str, unit: str, values: dict[str, float]) -> dict[str, Any]:
    pythia, mamba = values.get("pythia"), values.get("mamba")
    ratio = mamba / pythia if pythia and mamba is not None and pythia > 0 else None
    return {"measurement": measurement, "setting": setting, "unit": unit, **values, "mamba/pythia": ratio}


def _measurements(config: BenchConfig) -> list[tuple[str, Callable[[VLForConditionalGeneration], dict[str, float]]]]:
    """(setting, function returning {column: value}) pairs, run for each backbone."""
    items: list[tuple[str, Callable[[VLForConditionalGeneration], dict[str, float]]]] = []
    for length in config.train_lengths:
        items.append(
            (f"train@{length}", lambda m, n=length: {"train_tokens_per_s": train_tokens_per_second(m, config, n)})
        )
    for context in config.contexts:
        items.append((f"generate@{context}", lambda m, n=context: generation_figures(m, config, n)))
    return items


_UNITS = {
    "train_step_s": "s",
    "train_tokens_per_s": "tok/s",
    "prefill_s": "s",
    "decode_ms_per_token": "ms",
    "decode_tokens_per_s": "tok/s",
}


def run_bench(config: BenchConfig, backbones: tuple[str, ...] = ("pythia", "mamba")) -> BenchResult:
    """Measure every backbone on every setting; return the rows with Mamba / Pythia ratios."""
    specs: dict[str, BackboneSpec] = {b: backbone_spec(b) for b in backbones}
    models = {b: build_bench_model(b, config) for b in specs}
    device_name = torch.cuda.get_device_name() if config.device.startswith("cuda") else "cpu"
    result = BenchResult(
        config=asdict(config),
        mamba_scan_path=scan_path(),
        device_name=device_name,
        parameters={b: sum(p.numel() for p in m.language_model.parameters()) for b, m in models.items()},
    )
    measurements = _measurements(config)
    collected: dict[str, dict[str, dict[str, float]]] = {}
    with tqdm(total=len(measurements) * len(models), desc="vlm bench") as progress:
        for setting, measure in measurements:
            for backbone, model in models.items():
                progress.set_postfix_str(f"{specs[backbone].display_name} {setting}")
                for column, value in measure(model).items():
                    collected.setdefault(f"{setting}|{column}", {})[backbone] = value
                progress.update()
    if config.demo_step:
        shape, seconds = demo_step_seconds(tuple(models), config)
        collected[f"{shape}|train_step_s"] = seconds
    for key, values in collected.items():
        setting, column = key.split("|")
        name, _, at_batch = column.partition("@")
        result.rows.append(_row(name, f"{setting} {at_batch}".strip(), _UNITS.get(name, "MiB"), values))
    result.rows.extend(_growth_rows(config, collected))
    return result


def _growth_rows(config: BenchConfig, collected: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """Decode latency and state size at the longest context over the shortest: flat (1.0) means context-free."""
    if len(config.contexts) < 2:
        return []
    short, long = min(config.contexts), max(config.contexts)
    rows = []
    for batch in config.decode_batch_sizes:
        for name in ("decode_ms_per_token", "state_mib"):
            first = collected[f"generate@{short}|{name}@b{batch}"]
            last = collected[f"generate@{long}|{name}@b{batch}"]
            growth = {b: last[b] / first[b] for b in first if first[b] > 0}
            rows.append(_row(f"{name} growth", f"{long} / {short} b{batch}", "x", growth))
    return rows


def format_table(result: BenchResult) -> str:
    """A Markdown table of the rows."""
    lines = [
        f"device: {result.device_name}; Mamba scan path: {result.mamba_scan_path}; "
        f"LM parameters: {', '.join(f'{k} {v:,}' for k, v in result.parameters.items())}",
        "",
        "| measurement | setting | unit | Pythia-VL | Mamba-VL | Mamba / Pythia |",
        "|---|---|---|---|---|---|",
    ]
    for row in result.rows:
        cells = [_fmt(row.get("pythia")), _fmt(row.get("mamba")), _fmt(row.get("mamba/pythia"))]
        lines.append(f"| {row['measurement']} | {row['setting']} | {row['unit']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"


def result_json(result: BenchResult) -> str:
    """The full result as JSON."""
    return json.dumps(asdict(result), indent=2)
