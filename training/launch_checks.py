"""A launch that does not fit the machine fails before anything is built, naming the option to change.

``vlm train`` calls :func:`check_launch` first. It reads what ``accelerate launch`` put in the environment
(``WORLD_SIZE``, ``ACCELERATE_USE_FSDP`` / ``ACCELERATE_USE_DEEPSPEED``, ``FSDP_*``, the DeepSpeed config file) and
the recipe's ``training:`` block, and refuses:

- more processes than CPU cores on a machine without a GPU (each process would fight for a core);
- several processes on the CPU without ``training.use_cpu: true`` (each would train alone, unaware of the others);
- GPU-only options on the CPU: FSDP parameter offload, DeepSpeed fp16, an NVMe offload;
- a ZeRO-3 config that cannot honour the final save: without ``stage3_gather_16bit_weights_on_model_save`` the
  saved model would hold no weights.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from .recipe import Recipe, RecipeError

__all__ = ["check_launch"]


def _deepspeed_config(recipe: Recipe) -> tuple[dict[str, Any], str] | None:
    """The DeepSpeed config in use (the recipe's ``training.deepspeed``, or the launch config's file) and its name."""
    value = recipe.training.get("deepspeed") or os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE")
    if not value:
        return None
    if isinstance(value, dict):
        return value, "training.deepspeed"
    try:
        return json.loads(Path(value).read_text(encoding="utf-8")), str(value)
    except (OSError, ValueError) as err:
        raise RecipeError(f"the DeepSpeed config {value!r} cannot be read: {err}") from err


def _check_cpu_launch(recipe: Recipe, world_size: int) -> None:
    cores = os.cpu_count() or 1
    if world_size > cores:
        raise RecipeError(
            f"{world_size} processes on a machine with {cores} CPU cores and no GPU: pass --num_processes {cores} "
            "or fewer to accelerate launch"
        )
    if not recipe.training.get("use_cpu"):
        raise RecipeError(
            f"{world_size} processes on a machine without a GPU need training.use_cpu: true (gloo); without it each "
            "process would train alone"
        )
    if os.environ.get("FSDP_OFFLOAD_PARAMS", "false").lower() == "true":
        raise RecipeError("fsdp_offload_params: true offloads to the CPU from a GPU; on the CPU set it to false")


def _check_deepspeed(config: dict[str, Any], where: str, on_cpu: bool) -> None:
    zero = config.get("zero_optimization") or {}
    if on_cpu and (config.get("fp16") or {}).get("enabled") is True:
        raise RecipeError(f"{where}: fp16.enabled is GPU-only (DeepSpeed's CPU accelerator has no fp16); use bf16")
    for key in ("offload_param", "offload_optimizer"):
        if on_cpu and (zero.get(key) or {}).get("device") == "nvme":
            raise RecipeError(f"{where}: zero_optimization.{key}.device=nvme needs a GPU; remove it on the CPU")
    if zero.get("stage") == 3 and zero.get("stage3_gather_16bit_weights_on_model_save") is False:
        raise RecipeError(
            f"{where}: ZeRO-3 with stage3_gather_16bit_weights_on_model_save: false would save a model without its "
            "weights; set it to true"
        )


def check_launch(recipe: Recipe) -> None:
    """Raise :class:`RecipeError` naming the option when the launch cannot run as configured on this machine."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    on_cpu = not torch.cuda.is_available()
    if world_size > 1 and on_cpu:
        _check_cpu_launch(recipe, world_size)
    deepspeed = _deepspeed_config(recipe)
    if deepspeed is not None:
        _check_deepspeed(*deepspeed, on_cpu=on_cpu)
