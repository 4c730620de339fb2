"""Small matched models and short ``Trainer`` runs: what the demo, the probes and the CPU bench share.

The language models are matched in parameter count, as the paper compares models of matched size: a Pythia layer of
width d holds ~12 d^2 weights, a Mamba layer (expand 2) ~7 d^2, so 7 Mamba layers stand against 4 Pythia layers
(Mamba-790M has 48 layers where Pythia-1B has 16). Everything is trained from scratch: no pretrained part is
available offline.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from types import MappingProxyType
from typing import Any

from transformers import TrainingArguments, set_seed

from configuration import PRESETS, config_class_for_backbone
from modeling_vlm import MODEL_CLASSES, VLForConditionalGeneration

__all__ = [
    "MATCHED_TEXT_SIZES",
    "SMALL_VISION_SIZE",
    "build_small_model",
    "compile_cpu_kernels_in_child",
    "short_run_arguments",
    "small_text_config",
]

logger = logging.getLogger(__name__)

MATCHED_TEXT_SIZES: MappingProxyType[str, MappingProxyType[str, int]] = MappingProxyType(
    {
        "pythia": MappingProxyType(
            {"hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 512}
        ),
        "mamba": MappingProxyType({"hidden_size": 128, "num_hidden_layers": 7, "intermediate_size": 256}),
    }
)
"""Language model sizes of the two backbones, matched in parameter count (~0.9M each with a 512-token vocabulary)."""
SMALL_VISION_SIZE: MappingProxyType[str, int] = MappingProxyType(
    {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4}
)
"""A small CLIP-style vision tower, trained from scratch with the rest."""


def small_text_config(backbone: str, vocab_size: int, min_positions: int = 0) -> dict[str, Any]:
    """The matched-size language model config of ``backbone``, with room for ``min_positions`` positions."""
    config = {**PRESETS[backbone]["tiny"].text_config, **MATCHED_TEXT_SIZES[backbone], "vocab_size": vocab_size}
    if "max_position_embeddings" in config:  # only position-embedded backbones need room for the longest context
        config["max_position_embeddings"] = max(config["max_position_embeddings"], min_positions)
    return config


def build_small_model(
    backbone: str,
    *,
    vocab_size: int,
    image_size: int,
    patch_size: int,
    image_token_id: int,
    seed: int,
    **config_kwargs: Any,
) -> VLForConditionalGeneration:
    """A randomly initialised (seeded) model of ``backbone`` at the matched size, one image token per patch."""
    preset = PRESETS[backbone]["tiny"]
    vision_config = {**preset.vision_config, **SMALL_VISION_SIZE, "image_size": image_size, "patch_size": patch_size}
    model_config = config_class_for_backbone(backbone).from_preset(
        "tiny",
        text_config=small_text_config(backbone, vocab_size),
        vision_config=vision_config,
        image_grid_size=image_size // patch_size,
        image_token_id=image_token_id,
        **config_kwargs,
    )
    set_seed(seed)
    return MODEL_CLASSES[backbone](model_config)


def short_run_arguments(
    output_dir: str,
    *,
    steps: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    show_progress: bool,
    logs: int = 40,
    **overrides: Any,
) -> TrainingArguments:
    """The paper's schedule (cosine, 3% warmup, no weight decay) over `steps` steps, no checkpoints, `logs` logs."""
    arguments: dict[str, Any] = {
        "output_dir": output_dir,
        "max_steps": steps,
        "per_device_train_batch_size": batch_size,
        "learning_rate": learning_rate,
        "lr_scheduler_type": "cosine",
        "warmup_steps": max(1, steps // 33),  # the paper's 3% warmup
        "weight_decay": 0.0,
        "logging_steps": max(1, steps // logs),
        "save_strategy": "no",
        "report_to": [],
        "seed": seed,
        "data_seed": seed,
        "remove_unused_columns": False,  # the collator needs the image columns
        "dataloader_num_workers": 0,
        "disable_tqdm": not show_progress,
    }
    return TrainingArguments(**{**arguments, **overrides})


# Every numba kernel of the fast CPU Mamba path, called once on tiny float32 inputs (their compiled signatures do not
# depend on sizes, and the flags are runtime arguments).
_COMPILE_KERNELS = """
import torch
from modeling_vlm import numba_conv, numba_scan
x, w, bias = torch.randn(1, 3, 16), torch.randn(16, 4), torch.randn(16)
out, h, saved = numba_scan.scan_forward(
    x, x, -torch.rand(2, 16), torch.randn(1, 3, 2), torch.randn(1, 3, 2), bias, x, bias, True, None
)
numba_scan.scan_backward(saved, True, True, x, None)
numba_conv.conv_silu_backward(x, w, bias, numba_conv.conv_silu_forward(x, w, bias))
"""


def compile_cpu_kernels_in_child() -> bool:
    """Compile the fast CPU Mamba path's numba kernels in a child process, which leaves them in numba's cache.

    The process that compiles a kernel gets results that differ in the last bit (the scan's ``dB``, in about half its
    entries) from every process that loads the same kernel from numba's cache; the cause is not found (the same
    machine code, inputs and thread count; a process that compiled gets the compiling run's result even from the
    cache). With the compile in a child, this process loads the kernels, so the first run after an install agrees bit
    for bit with every later one. Seconds when the cache is warm. Returns False (and this process compiles on first
    use, as before) where numba is missing or the child fails, e.g. on a read-only cache location.
    """
    from modeling_vlm.selective_scan import numba_available

    if not numba_available():
        return False
    try:
        run = subprocess.run(
            [sys.executable, "-c", _COMPILE_KERNELS], capture_output=True, text=True, timeout=900, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        logger.warning("Compiling the numba kernels in a child process failed (%s); compiling here instead.", err)
        return False
    if run.returncode:
        logger.warning(
            "Compiling the numba kernels in a child process failed; compiling here instead:\n%s", run.stderr[-2000:]
        )
        return False
    return True
