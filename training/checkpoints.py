"""Which ``checkpoint-*`` folder a run resumes from: the latest complete one, never a half-written one.

The transformers ``Trainer`` writes a checkpoint in place (no temporary folder), in this order: weights, optimizer,
scheduler, RNG state(s), and ``trainer_state.json`` last. A process killed mid-save therefore leaves a folder without
a readable ``trainer_state.json`` (or with an unreadable file beside it). :func:`is_complete_checkpoint` checks
exactly that, so an interrupted save counts as absent: :func:`find_resume_checkpoint` skips it and
:func:`remove_incomplete_checkpoints` deletes it before the resumed run writes that step again.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

import torch
from safetensors import safe_open

__all__ = [
    "CHECKPOINT_PATTERN",
    "find_resume_checkpoint",
    "is_complete_checkpoint",
    "list_checkpoints",
    "remove_incomplete_checkpoints",
]

logger = logging.getLogger(__name__)

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
# Weights as the Trainer saves them: plain model, PEFT adapter, sharded index, DeepSpeed or FSDP state folders.
_WEIGHT_FILES = ("model.safetensors", "adapter_model.safetensors", "pytorch_model.bin", "adapter_model.bin")
_WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_WEIGHT_FOLDER_MARKERS = ("latest", "pytorch_model_fsdp_0")


def list_checkpoints(output_dir: str | os.PathLike[str]) -> list[Path]:
    """``checkpoint-<step>`` folders of `output_dir`, newest (highest step) first."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := CHECKPOINT_PATTERN.match(p.name))]
    return [path for _, path in sorted(found, reverse=True)]


def _readable_safetensors(path: Path) -> bool:
    """Whether a safetensors file's header parses (a truncated file fails)."""
    try:
        with safe_open(os.fspath(path), framework="pt") as handle:
            handle.keys()
        return True
    except Exception:  # safetensors raises its own error types for truncated files
        return False


def _has_weights(checkpoint: Path) -> bool:
    """Whether the folder holds readable model or adapter weights in a format the Trainer writes."""
    for name in _WEIGHT_INDEXES:
        index = checkpoint / name
        if index.is_file():
            shards = set(json.loads(index.read_text()).get("weight_map", {}).values())
            return bool(shards) and all((checkpoint / shard).is_file() for shard in shards)
    present = [checkpoint / name for name in _WEIGHT_FILES if (checkpoint / name).is_file()]
    if any(path.suffix == ".safetensors" and not _readable_safetensors(path) for path in present):
        return False
    return bool(present) or any((checkpoint / marker).exists() for marker in _WEIGHT_FOLDER_MARKERS)


def _readable_rng_states(checkpoint: Path) -> bool:
    """Whether every saved RNG state (one per process) loads; a kill mid-write leaves a truncated pickle."""
    for path in checkpoint.glob("rng_state*.pth"):
        try:
            torch.load(path, weights_only=False)
        except Exception:  # truncated pickles raise EOFError, UnpicklingError or RuntimeError
            return False
    return True


def is_complete_checkpoint(checkpoint: str | os.PathLike[str]) -> bool:
    """Whether a ``checkpoint-<step>`` folder was written completely (state, weights, RNG states readable)."""
    checkpoint = Path(checkpoint)
    match = CHECKPOINT_PATTERN.match(checkpoint.name)
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text())
        if match is None or int(state["global_step"]) != int(match.group(1)):
            return False
        return _has_weights(checkpoint) and _readable_rng_states(checkpoint)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def find_resume_checkpoint(output_dir: str | os.PathLike[str]) -> Path | None:
    """The newest complete checkpoint of `output_dir`, or None; incomplete ones are logged and skipped."""
    for checkpoint in list_checkpoints(output_dir):
        if is_complete_checkpoint(checkpoint):
            return checkpoint
        logger.warning("Ignoring incomplete checkpoint %s (interrupted while saving).", checkpoint)
    return None


def remove_incomplete_checkpoints(output_dir: str | os.PathLike[str]) -> list[Path]:
    """Delete incomplete checkpoints newer than the newest complete one (the run writes those steps again)."""
    removed = []
    for checkpoint in list_checkpoints(output_dir):
        if is_complete_checkpoint(checkpoint):
            break
        logger.warning("Removing incomplete checkpoint %s before resuming.", checkpoint)
        shutil.rmtree(checkpoint, ignore_errors=True)
        removed.append(checkpoint)
    return removed
