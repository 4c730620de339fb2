"""Several processes and resume, end to end in subprocesses: 2-process DDP (gloo) vs 1 process; SIGKILL and resume."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from training.checkpoints import is_complete_checkpoint
from training.recipe import load_recipe
from training.train import train

ROOT = Path(__file__).resolve().parents[2]
DDP_CONFIG = ROOT / "training" / "accelerate_configs" / "ddp.yaml"
WORKER = Path(__file__).with_name("_distributed_worker.py")

pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    """The test's environment for a child process: the repository importable, one thread per process."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _losses(output_dir: Path) -> list[float]:
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    return [entry["loss"] for entry in history if "loss" in entry]


def _weights(output_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(output_dir / "model.safetensors")


def test_two_processes_match_one_process(
    tiny_recipe: dict[str, Any], write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    tiny_recipe["training"].update(max_steps=6, per_device_train_batch_size=2)  # global batch 2 x 2
    two = write_recipe(tiny_recipe, "two.yaml")
    tiny_recipe["training"]["per_device_train_batch_size"] = 4  # global batch 1 x 4
    one = write_recipe(tiny_recipe, "one.yaml")
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(DDP_CONFIG)]
    launch += ["--num_processes", "2", "--num_machines", "1", "--main_process_port", str(_free_port())]
    command = [*launch, str(WORKER), str(two), str(tmp_path / "ddp")]
    run = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-4000:]
    train(load_recipe(one), output_dir=tmp_path / "single")

    ranks = [json.loads((tmp_path / "ddp" / f"weights-rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["sha256"] == ranks[1]["sha256"]  # both ranks hold identical weights
    ddp, single = _losses(tmp_path / "ddp"), _losses(tmp_path / "single")
    assert len(ddp) == len(single) == 6
    assert ddp == pytest.approx(single, rel=1e-4)
    ddp_weights, single_weights = _weights(tmp_path / "ddp"), _weights(tmp_path / "single")
    assert max((ddp_weights[k] - single_weights[k]).abs().max().item() for k in single_weights) < 1e-4


def _train_command(recipe: Path, output_dir: Path, resume: str) -> list[str]:
    """``vlm train`` as a fresh process."""
    return [
        sys.executable,
        "-m",
        "training.cli",
        "train",
        str(recipe),
        "--output-dir",
        str(output_dir),
        "--resume",
        resume,
    ]


def _run(command: list[str]) -> str:
    """Run to the end; return stderr (the log)."""
    run = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-4000:]
    return run.stderr


def test_sigkill_mid_training_then_resume_matches_an_uninterrupted_run(
    tiny_recipe: dict[str, Any], write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    tiny_recipe["training"].update(max_steps=40, save_strategy="steps", save_steps=4)
    recipe, out = write_recipe(tiny_recipe), tmp_path / "killed"
    command = _train_command(recipe, out, "auto")
    with (tmp_path / "killed.log").open("w") as log:
        first = subprocess.Popen(command, cwd=ROOT, env=_env(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 240
        while (
            first.poll() is None and not is_complete_checkpoint(out / "checkpoint-4") and time.monotonic() < deadline
        ):
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert first.returncode == -signal.SIGKILL, (tmp_path / "killed.log").read_text()[-4000:]
    assert not (out / "model.safetensors").exists()  # killed before the end of training
    steps = sorted(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*"))
    half_written = out / "checkpoint-36"  # what a kill during a save leaves: no trainer_state.json
    half_written.mkdir()
    (half_written / "model.safetensors").write_bytes(b"\x00" * 16)

    log = _run(command)  # the same command again
    resumed_from = re.search(r"Resuming from \S*checkpoint-(\d+)", log)
    assert resumed_from and int(resumed_from.group(1)) in steps and int(resumed_from.group(1)) >= 4
    assert f"Set the incomplete checkpoint {half_written} aside" in log
    assert list(out.glob("checkpoint-36.incomplete-*"))  # kept, renamed: never deleted
    # The reference runs the same way, as a fresh process (in-process runs differ from subprocesses by float noise).
    _run(_train_command(recipe, tmp_path / "uninterrupted", "never"))

    resumed, reference = _weights(out), _weights(tmp_path / "uninterrupted")
    assert resumed.keys() == reference.keys()
    for name in reference:
        torch.testing.assert_close(resumed[name], reference[name], rtol=1e-5, atol=1e-6, msg=name)
    assert _losses(out) == pytest.approx(_losses(tmp_path / "uninterrupted"), rel=1e-5)
