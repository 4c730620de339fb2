"""Which ``checkpoint-*`` folder a run resumes from: the latest complete one, never a half-written one.

The transformers ``Trainer`` writes a checkpoint in place, in this order: weights, optimizer, scheduler, RNG
state(s), ``trainer_state.json``. :class:`training.trainer.RecipeTrainer` then commits it: once every process has
finished, it writes :data:`COMPLETE_FILE`, listing every file of the folder with its size, atomically. A checkpoint
is complete when that record is there and every file it lists has its size (so a kill at any point of a save, or new
files written over an old run's, never passes); a checkpoint of an older run without the record is judged by its
``trainer_state.json``, weights and RNG states (checked as archives, never unpickled: nothing in a checkpoint runs).

An incomplete checkpoint is never deleted: :func:`set_aside_incomplete_checkpoints` renames it
(``checkpoint-<step>.incomplete-<time>``) before the resumed run writes that step again, and
:func:`set_aside_checkpoints` moves a whole earlier run aside when a run starts over (``--resume never``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import zipfile
from pathlib import Path

from safetensors import safe_open

from .files import set_aside, write_json

__all__ = [
    "CHECKPOINT_PATTERN",
    "COMPLETE_FILE",
    "find_resume_checkpoint",
    "is_complete_checkpoint",
    "list_checkpoints",
    "mark_complete",
    "set_aside_checkpoints",
    "set_aside_incomplete_checkpoints",
]

logger = logging.getLogger(__name__)

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
COMPLETE_FILE = "vlm_checkpoint_complete.json"
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
    """Whether every saved RNG state is a whole archive: ``torch.save`` writes zip files, whose CRCs show a truncated
    or damaged file. Nothing is unpickled (a crafted file could run code) and no numpy version matters."""
    for path in checkpoint.glob("rng_state*.pth"):
        try:
            with zipfile.ZipFile(path) as archive:
                if archive.testzip() is not None:
                    return False
        except (OSError, zipfile.BadZipFile):
            return False
    return True


def _files(checkpoint: Path) -> dict[str, int]:
    """Every file under the checkpoint (relative path -> size), the completion record excepted."""
    return {
        path.relative_to(checkpoint).as_posix(): path.stat().st_size
        for path in sorted(checkpoint.rglob("*"))
        if path.is_file() and path.name != COMPLETE_FILE
    }


def mark_complete(checkpoint: str | os.PathLike[str]) -> Path:
    """Record the checkpoint as complete: every file and its size, written atomically (call once all are saved)."""
    checkpoint = Path(checkpoint)
    return write_json(checkpoint / COMPLETE_FILE, {"files": _files(checkpoint)})


def _matches_record(checkpoint: Path, record: dict) -> bool:
    files = record.get("files")
    if not isinstance(files, dict) or "trainer_state.json" not in files:
        return False
    for name, size in files.items():
        path = checkpoint / name
        if not path.is_file() or path.stat().st_size != size:
            return False
    return _has_weights(checkpoint)


def is_complete_checkpoint(checkpoint: str | os.PathLike[str]) -> bool:
    """Whether a ``checkpoint-<step>`` folder was written completely (see the module docstring)."""
    checkpoint = Path(checkpoint)
    match = CHECKPOINT_PATTERN.match(checkpoint.name)
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text())
        if match is None or int(state["global_step"]) != int(match.group(1)):
            return False
        if (checkpoint / COMPLETE_FILE).exists():
            return _matches_record(checkpoint, json.loads((checkpoint / COMPLETE_FILE).read_text()))
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


def set_aside_incomplete_checkpoints(output_dir: str | os.PathLike[str]) -> list[Path]:
    """Rename the incomplete checkpoints newer than the newest complete one out of the way (never deleted): the run
    writes those steps again. Returns their new paths."""
    moved = []
    for checkpoint in list_checkpoints(output_dir):
        if is_complete_checkpoint(checkpoint):
            break
        target = set_aside(checkpoint, "incomplete")
        if target is not None:
            logger.warning("Set the incomplete checkpoint %s aside as %s before resuming.", checkpoint, target.name)
            moved.append(target)
    return moved


def set_aside_checkpoints(output_dir: str | os.PathLike[str]) -> Path | None:
    """Move every ``checkpoint-*`` of an earlier run into ``<output_dir>/superseded-<time>/`` (a run starting over
    never writes its checkpoints over another run's); the folder, or None when there was none."""
    checkpoints = list_checkpoints(output_dir)
    if not checkpoints:
        return None
    holder = Path(output_dir) / "superseded"
    holder.mkdir(exist_ok=True)
    target = set_aside(holder, "run")
    if target is None:
        raise OSError(f"cannot set the earlier run's checkpoints in {output_dir} aside; move them, or resume")
    for checkpoint in checkpoints:
        os.replace(checkpoint, target / checkpoint.name)
    logger.warning("Starting over: moved %d checkpoint(s) of the earlier run to %s", len(checkpoints), target)
    return target
