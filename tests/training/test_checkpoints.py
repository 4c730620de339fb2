"""Which checkpoint a run resumes from: the newest complete one; others are set aside, never deleted or unpickled."""

from __future__ import annotations

import json
import pickle
import sys
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from training.checkpoints import (
    COMPLETE_FILE,
    find_resume_checkpoint,
    is_complete_checkpoint,
    mark_complete,
    set_aside_checkpoints,
    set_aside_incomplete_checkpoints,
)


def _fake_checkpoint(folder: Path, step: int, *, state: str | None = None, weights: bool = True) -> Path:
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "trainer_state.json").write_text(state if state is not None else json.dumps({"global_step": step}))
    if weights:
        save_file({"w": torch.zeros(2)}, path / "model.safetensors")
    torch.save({"python": 1}, path / "rng_state.pth")
    return path


def test_only_complete_checkpoints_are_resumed_and_the_others_set_aside(tmp_path: Path) -> None:
    good = _fake_checkpoint(tmp_path, 4)
    assert is_complete_checkpoint(good)
    half_state = _fake_checkpoint(tmp_path, 8, state='{"global_st')  # killed while writing trainer_state.json
    no_weights = _fake_checkpoint(tmp_path, 12, weights=False)
    wrong_step = _fake_checkpoint(tmp_path, 16, state=json.dumps({"global_step": 3}))
    truncated = _fake_checkpoint(tmp_path, 20)
    (truncated / "rng_state_1.pth").write_bytes((truncated / "rng_state.pth").read_bytes()[:10])
    cut_weights = _fake_checkpoint(tmp_path, 24)
    (cut_weights / "model.safetensors").write_bytes((cut_weights / "model.safetensors").read_bytes()[:20])
    (tmp_path / "checkpoint-99").write_text("a file, not a folder")
    for incomplete in (half_state, no_weights, wrong_step, truncated, cut_weights):
        assert not is_complete_checkpoint(incomplete)
    assert find_resume_checkpoint(tmp_path) == good
    moved = set_aside_incomplete_checkpoints(tmp_path)
    assert len(moved) == 5 and all(p.is_dir() and ".incomplete-" in p.name for p in moved)  # renamed, not deleted
    assert {p.name.split(".")[0] for p in moved} == {"checkpoint-8", "checkpoint-12", "checkpoint-16",
                                                     "checkpoint-20", "checkpoint-24"}  # fmt: skip
    assert (moved[0] / "trainer_state.json").is_file()
    assert find_resume_checkpoint(tmp_path) == good and good.is_dir()
    assert find_resume_checkpoint(tmp_path / "missing") is None


def test_a_crafted_rng_state_is_never_unpickled(tmp_path: Path) -> None:
    checkpoint = _fake_checkpoint(tmp_path, 2)
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> tuple:
            return (Path.touch, (marker,))

    (checkpoint / "rng_state.pth").write_bytes(pickle.dumps(Payload()))  # a plain pickle, as an attacker writes it
    torch.save({"ok": 1}, checkpoint / "rng_state_1.pth")
    assert not is_complete_checkpoint(checkpoint)  # not a torch zip archive: judged unreadable, never loaded
    assert not marker.exists()


def test_a_state_from_another_environment_is_kept(tmp_path: Path) -> None:
    # An RNG state that cannot be unpickled here (a class this environment lacks, like numpy 2 types under numpy 1)
    # is still a whole archive: the checkpoint is complete and resumes, rather than being deleted.
    module = types.ModuleType("vlm_only_elsewhere")

    class State:
        pass

    State.__module__ = "vlm_only_elsewhere"
    State.__qualname__ = "State"
    module.State = State  # type: ignore[attr-defined]
    sys.modules["vlm_only_elsewhere"] = module
    checkpoint = _fake_checkpoint(tmp_path, 6)
    torch.save({"generator": State()}, checkpoint / "rng_state.pth")
    del sys.modules["vlm_only_elsewhere"]
    with pytest.raises(Exception):  # noqa: B017  (the unpickle that the old check ran does fail here)
        torch.load(checkpoint / "rng_state.pth", weights_only=False)
    assert is_complete_checkpoint(checkpoint)
    assert set_aside_incomplete_checkpoints(tmp_path) == [] and checkpoint.is_dir()
    (checkpoint / "trainer_state.json").unlink()
    (checkpoint / "trainer_state.json").mkdir()  # reading it raises IsADirectoryError (an OSError)
    [moved] = set_aside_incomplete_checkpoints(tmp_path)
    assert (moved / "model.safetensors").is_file()  # set aside with its weights, not removed


def test_the_completion_record_covers_every_file(tmp_path: Path) -> None:
    checkpoint = _fake_checkpoint(tmp_path, 10)
    (checkpoint / "optimizer.pt").write_bytes(b"x" * 100)
    (checkpoint / "scheduler.pt").write_bytes(b"y" * 10)
    mark_complete(checkpoint)
    assert set(json.loads((checkpoint / COMPLETE_FILE).read_text())["files"]) == {
        "trainer_state.json", "model.safetensors", "rng_state.pth", "optimizer.pt", "scheduler.pt"
    }  # fmt: skip
    assert is_complete_checkpoint(checkpoint)
    (checkpoint / "optimizer.pt").write_bytes(b"x" * 50)  # rewritten by another save, cut short
    assert not is_complete_checkpoint(checkpoint)
    (checkpoint / "optimizer.pt").unlink()
    assert not is_complete_checkpoint(checkpoint)


def test_starting_over_moves_the_earlier_run_aside(tmp_path: Path) -> None:
    old = _fake_checkpoint(tmp_path, 2)
    (old / "optimizer.pt").write_bytes(b"old")
    holder = set_aside_checkpoints(tmp_path)
    assert holder is not None and not old.exists()
    assert (holder / "checkpoint-2" / "optimizer.pt").read_bytes() == b"old"
    assert find_resume_checkpoint(tmp_path) is None
    assert set_aside_checkpoints(tmp_path) is None  # nothing to move
