"""``vlm plan``: what one of the paper's models needs before the machines are rented.

Parameters per part come from the preset built on the meta device (no memory, no download; the EVA-02 tower needs
timm, otherwise its count measured with timm is used and marked so). Memory per GPU follows the usual ZeRO accounting
for bf16 mixed precision with AdamW, per parameter:

- frozen parameters: 2 bytes (bf16 weights);
- trainable parameters: 2 (bf16 weights) + 2 (bf16 gradients) + 12 (fp32 master weights, Adam's two moments);
- DDP keeps all of it on every GPU; ZeRO-2 divides gradients and optimiser states by the GPUs; ZeRO-3 and FSDP
  (full sharding) divide everything by the GPUs;
- activations, per GPU: ``batch x length x (layers x a x hidden + b x hidden + c x vocab)`` bytes, where ``a``
  (per layer), ``b`` and ``c`` (embeddings, final norm, logits and loss) are measured here by summing the tensors
  autograd saves for backward on small models of the same backbone in bf16, and extrapolated linearly in width,
  depth and vocabulary. With gradient checkpointing each layer keeps only its input (2 x hidden bytes per token)
  and one layer's activations are rebuilt at a time. The frozen vision tower saves nothing for backward. Mamba's
  per-layer figure is that of the scan this library runs where it measures (without mamba-ssm, the selective scan
  keeps its per-step states); mamba-ssm's fused CUDA kernel recomputes them and saves less, so without gradient
  checkpointing the Mamba figure is an upper bound.

The figures leave out the CUDA context, allocator fragmentation and communication buffers (a few GB per GPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from configuration import PRESETS, backbone_spec, config_class_for_backbone

__all__ = ["STRATEGIES", "ActivationModel", "Plan", "activation_model", "format_plan", "plan"]

STRATEGIES = ("ddp", "zero2", "zero3", "fsdp")
EVA02_L_336_PARAMETERS = 303_645_632  # timm 1.0.31 eva02_large_patch14_clip_336 through TimmWrapper (measured)
GIB = 1024**3


@dataclass(frozen=True)
class ActivationModel:
    """Bytes saved for backward per token: ``per_layer x hidden`` per layer, plus ``per_hidden x hidden +
    per_vocab x vocab`` once."""

    per_layer: float
    per_hidden: float
    per_vocab: float

    def bytes_per_token(self, layers: int, hidden: int, vocab: int, checkpointing: bool) -> float:
        if checkpointing:  # every layer's input, plus one layer's activations while it is recomputed
            per_layers = layers * 2 * hidden + self.per_layer * hidden
        else:
            per_layers = layers * self.per_layer * hidden
        return per_layers + self.per_hidden * hidden + self.per_vocab * vocab


def _saved_bytes(backbone: str, hidden: int, layers: int, vocab: int, tokens: int = 64) -> int:
    """Bytes autograd saves per token for one forward of a small Pythia-VL / Mamba-VL language model (bf16)."""
    import transformers

    from modeling_vlm import MODEL_CLASSES

    text = {**PRESETS[backbone]["tiny"].text_config, "hidden_size": hidden, "num_hidden_layers": layers,
            "vocab_size": vocab, "intermediate_size": (4 if backbone == "pythia" else 2) * hidden}  # fmt: skip
    torch.manual_seed(0)
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # the kernel-fallback notices are not news here
    try:
        config = config_class_for_backbone(backbone).from_preset("tiny", text_config=text)
        model = MODEL_CLASSES[backbone](config).language_model.to(torch.bfloat16)
        ids = torch.randint(0, vocab, (1, tokens))
        seen: dict[int, int] = {}

        def pack(tensor: torch.Tensor) -> torch.Tensor:
            storage = tensor.untyped_storage()
            seen[storage.data_ptr()] = max(seen.get(storage.data_ptr(), 0), storage.nbytes())
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(input_ids=ids, labels=ids).loss.backward()
    finally:
        transformers.logging.set_verbosity(verbosity)
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    return sum(size for pointer, size in seen.items() if pointer not in parameters) // tokens


def activation_model(backbone: str) -> ActivationModel:
    """Fit :class:`ActivationModel` for `backbone` from four small measured models."""
    base = _saved_bytes(backbone, 64, 2, 512)
    per_layer = (_saved_bytes(backbone, 64, 4, 512) - base) / (2 * 64)
    per_vocab = (_saved_bytes(backbone, 64, 2, 1024) - base) / 512
    wider = _saved_bytes(backbone, 128, 2, 512)
    per_hidden = (wider - base - 2 * per_layer * 64) / 64
    return ActivationModel(per_layer, max(per_hidden, 0.0), per_vocab)


@dataclass(frozen=True)
class Plan:
    """Parameter counts and per-GPU memory (bytes) of one preset, for each stage and strategy."""

    backbone: str
    preset: str
    parameters: dict[str, int]  # vision_tower, multi_modal_projector, language_model
    vision_measured: bool  # False: the EVA-02 count is the one measured with timm (timm is not installed)
    trainable: dict[str, int]  # per stage
    memory: dict[str, dict[str, dict[str, float]]]  # stage -> strategy -> {weights_gradients_optimizer, ...}
    settings: dict[str, Any]


def _vision_parameters(vision_config: dict[str, Any]) -> tuple[int, bool]:
    try:
        from transformers import AutoConfig, AutoModel

        with torch.device("meta"):
            tower = AutoModel.from_config(AutoConfig.for_model(**vision_config))
        return sum(p.numel() for p in tower.parameters()), True
    except ImportError:  # timm is an optional extra
        return EVA02_L_336_PARAMETERS, False


def _part_counts(backbone: str, preset_name: str) -> tuple[dict[str, int], bool, Any]:
    from transformers import AutoConfig, AutoModelForCausalLM

    preset = PRESETS[backbone][preset_name]
    text = AutoConfig.for_model(**preset.text_config)
    with torch.device("meta"):
        language = AutoModelForCausalLM.from_config(text)
    vision, measured = _vision_parameters(preset.vision_config)
    width = int(preset.vision_config.get("num_features") or preset.vision_config.get("hidden_size"))
    hidden = text.hidden_size
    projector = width * hidden + hidden + hidden * hidden + hidden  # linear_1 + linear_2, with biases
    counts = {"vision_tower": vision, "multi_modal_projector": projector,
              "language_model": sum(p.numel() for p in language.parameters())}  # fmt: skip
    return counts, measured, text


def _per_gpu(frozen: int, trainable: int, activations: float, strategy: str, gpus: int) -> dict[str, float]:
    weights, gradients, optimizer = 2 * (frozen + trainable), 2 * trainable, 12 * trainable
    if strategy == "zero2":
        gradients, optimizer = gradients / gpus, optimizer / gpus
    elif strategy in ("zero3", "fsdp"):
        weights, gradients, optimizer = weights / gpus, gradients / gpus, optimizer / gpus
    states = weights + gradients + optimizer
    return {"weights": weights, "gradients": gradients, "optimizer": optimizer, "activations": activations,
            "total": states + activations}  # fmt: skip


def plan(
    backbone: str, preset: str, *, gpus: int = 8, max_length: int = 1024, batch_size: int = 16,
    gradient_checkpointing: bool = True, fit: ActivationModel | None = None,
) -> Plan:  # fmt: skip
    """The :class:`Plan` of a preset: counts, trainable parameters per stage, and memory per GPU per strategy."""
    if preset not in PRESETS[backbone] or preset == "tiny":
        valid = ", ".join(p for p in PRESETS[backbone] if p != "tiny")
        raise ValueError(f"unknown {backbone} preset {preset!r}; the paper's sizes are: {valid}")
    if gpus < 1 or max_length < 1 or batch_size < 1:
        raise ValueError("gpus, max_length and batch_size must be positive")
    counts, measured, text = _part_counts(backbone, preset)
    fit = fit or activation_model(backbone)
    tokens = batch_size * max_length
    per_token = fit.bytes_per_token(text.num_hidden_layers, text.hidden_size, text.vocab_size, gradient_checkpointing)
    stages = {"alignment": ("multi_modal_projector",), "instruction": ("multi_modal_projector", "language_model")}
    trainable, memory = {}, {}
    for stage, parts in stages.items():
        trainable[stage] = sum(counts[p] for p in parts)
        frozen = sum(counts.values()) - trainable[stage]
        # The alignment stage backpropagates through the frozen language model to reach the projector, so both
        # stages keep the language model's activations.
        memory[stage] = {s: _per_gpu(frozen, trainable[stage], tokens * per_token, s, gpus) for s in STRATEGIES}
    settings = {"gpus": gpus, "max_length": max_length, "batch_size": batch_size,
                "gradient_checkpointing": gradient_checkpointing, "activation_fit": fit.__dict__}  # fmt: skip
    return Plan(backbone, preset, counts, measured, trainable, memory, settings)


def _millions(value: int) -> str:
    return f"{value / 1e6:,.1f}M"


def format_plan(result: Plan, strategies: tuple[str, ...] = STRATEGIES) -> str:
    """The plan as text: parameter table, then memory per GPU for each stage and strategy."""
    name = f"{backbone_spec(result.backbone).display_name}-{result.preset.upper()}"
    s = result.settings
    lines = [f"# vlm plan: {name} on {s['gpus']} GPU(s), batch {s['batch_size']} x {s['max_length']} tokens per GPU, "
             f"bf16 + AdamW, gradient checkpointing {'on' if s['gradient_checkpointing'] else 'off'}", "",
             "part | parameters", "---|---:"]  # fmt: skip
    for part, count in result.parameters.items():
        measured_elsewhere = part == "vision_tower" and not result.vision_measured
        note = " (timm not installed: the count measured with timm)" if measured_elsewhere else ""
        lines.append(f"{part} | {_millions(count)}{note}")
    lines.append(f"total | {_millions(sum(result.parameters.values()))}")
    for stage, by_strategy in result.memory.items():
        header = "strategy | weights | gradients | optimizer | activations | total per GPU"
        lines += ["", f"## stage {stage}: {_millions(result.trainable[stage])} trainable", "", header,
                  "---|---:|---:|---:|---:|---:"]  # fmt: skip
        for strategy in strategies:
            m = by_strategy[strategy]
            cells = [f"{m[k] / GIB:.1f} GiB" for k in ("weights", "gradients", "optimizer", "activations", "total")]
            lines.append(" | ".join([strategy, *cells]))
    fit = result.settings["activation_fit"]
    lines += ["", "Per parameter: frozen 2 B; trainable 2 (weights) + 2 (gradients) + 12 (fp32 master + Adam "
              "moments). ZeRO-2 divides gradients and optimizer by the GPUs; ZeRO-3 / FSDP divide all three.",
              f"Activations per token: {fit['per_layer']:.1f} x hidden per layer (checkpointing: 2 x hidden per layer "
              f"+ one layer) + {fit['per_hidden']:.1f} x hidden + {fit['per_vocab']:.1f} x vocab bytes, measured on "
              "small models in bf16. Not counted: CUDA context, fragmentation, communication buffers."]  # fmt: skip
    return "\n".join(lines)
