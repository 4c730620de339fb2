"""Which checkpoint a run resumes from: the newest complete one; half-written ones are skipped and removed."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from training.checkpoints import find_resume_checkpoint, is_complete_checkpoint, remove_incomplete_checkpoints


def _fake_checkpoint(folder: Path, step: int, *, state: str | None = None, weights: bool = True) -> Path:
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "trainer_state.json").write_text(state if state is not None else json.dumps({"global_step": step}))
    if weights:
        save_file({"w": torch.zeros(2)}, path / "model.safetensors")
    torch.save({"python": 1}, path / "rng_state.pth")
    return path


def test_only_complete_checkpoints_are_resumed(tmp_path: Path) -> None:
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
    removed = remove_incomplete_checkpoints(tmp_path)
    assert sorted(removed) == sorted([half_state, no_weights, wrong_step, truncated, cut_weights])
    assert find_resume_checkpoint(tmp_path) == good and good.is_dir()
    assert find_resume_checkpoint(tmp_path / "missing") is None
