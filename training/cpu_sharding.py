"""FSDP and DeepSpeed over gloo on a machine without a GPU, through the shipped Accelerate configs.

torch's FSDP2 (``fully_shard``) and DeepSpeed's CPU accelerator both run over gloo, but Accelerate (1.x) turns
either on only for GPU-like distributed types: on the CPU it starts the processes as plain data parallel
(``MULTI_CPU``) and silently ignores ``distributed_type: FSDP`` / ``DEEPSPEED``. :func:`enable` lets the
``AcceleratorState`` of such a launch take the plugin Accelerate built from the launch config, exactly as it would
on GPUs; everything after (wrapping, sharded checkpoints, ZeRO engines) is Accelerate's and the library's own code.

It is installed by ``vlm train`` only when it applies: no CUDA device, several processes, and a launch config that
asks for FSDP or DeepSpeed (``ACCELERATE_USE_FSDP`` / ``ACCELERATE_USE_DEEPSPEED``).
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

import torch

__all__ = ["applies", "enable", "requested_strategy"]

logger = logging.getLogger(__name__)

_INSTALLED = False


def requested_strategy() -> str | None:
    """``"fsdp"`` or ``"deepspeed"`` when the launch config asks for one, else None."""
    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
        return "fsdp"
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        return "deepspeed"
    return None


def applies() -> bool:
    """Whether this process is one of several, on the CPU, launched for FSDP or DeepSpeed."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available() and bool(requested_strategy())


def _take_plugin(state: Any, deepspeed_plugin: Any, fsdp_plugin: Any) -> None:
    from accelerate.utils import DistributedType

    if state.distributed_type != DistributedType.MULTI_CPU:
        return
    if fsdp_plugin is not None and requested_strategy() == "fsdp":
        state.distributed_type = DistributedType.FSDP
        state.fsdp_plugin = fsdp_plugin
    elif deepspeed_plugin is not None and requested_strategy() == "deepspeed":
        state.distributed_type = DistributedType.DEEPSPEED
        plugin = deepspeed_plugin if not isinstance(deepspeed_plugin, dict) else next(iter(deepspeed_plugin.values()))
        plugin.set_mixed_precision(state._mixed_precision)
        plugin.select(_from_accelerator_state=True)
        state.deepspeed_plugins = deepspeed_plugin
        state._mixed_precision = "no"  # DeepSpeed handles mixed precision through its config, as on GPUs


def enable() -> None:
    """Patch ``AcceleratorState`` so a CPU launch takes its FSDP / DeepSpeed plugin (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return
    from accelerate.state import AcceleratorState

    original = AcceleratorState.__init__

    @functools.wraps(original)
    def init(self: Any, *args: Any, deepspeed_plugin: Any = None, fsdp_plugin: Any = None, **kwargs: Any) -> None:
        original(self, *args, deepspeed_plugin=deepspeed_plugin, fsdp_plugin=fsdp_plugin, **kwargs)
        _take_plugin(self, deepspeed_plugin, fsdp_plugin)

    AcceleratorState.__init__ = init  # type: ignore[method-assign]
    _INSTALLED = True
    logger.info("CPU launch of %s: Accelerate's %s plugin runs over gloo", requested_strategy(), requested_strategy())
