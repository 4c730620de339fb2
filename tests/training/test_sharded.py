"""FSDP2 and DeepSpeed ZeRO-2/3 for real: 2 CPU processes over gloo through ``accelerate launch`` with the shipped
configs, against the same run in one process; sharded checkpoints, SIGKILL and resume, the final folder, LoRA.

Tolerance: losses agree to rel 1e-4 and weights to 1e-4 absolute (float32; the processes reduce gradients in another
order than one process sums them).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText

from tests.training.parts import save_parts
from tests.training.test_distributed import _env, _free_port, _losses
from training.checkpoints import is_complete_checkpoint
from training.recipe import load_recipe
from training.synthetic.tokenizer import synthetic_corpus, train_synthetic_tokenizer
from training.train import train

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "training" / "accelerate_configs"

pytestmark = pytest.mark.slow


def _launch(config: str, recipe: Path, out: Path, *, wait: bool = True, log: Path | None = None) -> Any:
    """``accelerate launch --config_file <config>.yaml --num_processes 2 -m training.cli train RECIPE``."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / f"{config}.yaml"),
               "--num_processes", "2", "--num_machines", "1", "--main_process_port", str(_free_port()),
               "-m", "training.cli", "train", str(recipe), "--output-dir", str(out)]  # fmt: skip
    if not wait:
        handle = log.open("w") if log else subprocess.DEVNULL
        return subprocess.Popen(command, cwd=ROOT, env=_env(), stdout=handle, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    run = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


def _recipes(tiny_recipe: dict[str, Any], write_recipe: Callable[..., Path], **model: Any) -> tuple[Path, Path]:
    """(2 processes x batch 2, 1 process x batch 4): the same global batch."""
    if model:
        tiny_recipe["model"] = model
    tiny_recipe["training"].update(max_steps=4, per_device_train_batch_size=2)
    two = write_recipe(tiny_recipe, "two.yaml")
    tiny_recipe["training"]["per_device_train_batch_size"] = 4
    return two, write_recipe(tiny_recipe, "one.yaml")


def _assert_matches(sharded: Path, single: Path) -> None:
    assert _losses(sharded) == pytest.approx(_losses(single), rel=1e-4) and len(_losses(single)) == 4
    ours, reference = load_file(sharded / "model.safetensors"), load_file(single / "model.safetensors")
    assert ours.keys() == reference.keys()
    assert max((ours[k] - reference[k]).abs().max().item() for k in reference) < 1e-4


@pytest.mark.parametrize("backbone", ["pythia", "mamba"])
def test_fsdp_matches_one_process_and_saves_an_ordinary_folder(
    tiny_recipe: dict[str, Any], write_recipe: Callable[..., Path], tmp_path: Path, backbone: str
) -> None:
    tiny_recipe["model"]["backbone"] = backbone
    tiny_recipe["training"].update(save_strategy="steps", save_steps=2)
    two, one = _recipes(tiny_recipe, write_recipe)
    run = _launch("fsdp", two, tmp_path / "fsdp")
    assert "Accelerate's fsdp plugin runs over gloo" in run.stderr
    train(load_recipe(one), output_dir=tmp_path / "single")
    _assert_matches(tmp_path / "fsdp", tmp_path / "single")
    checkpoint = tmp_path / "fsdp" / "checkpoint-4"
    assert (checkpoint / "pytorch_model_fsdp_0").is_dir() and (checkpoint / "optimizer_0").is_dir()  # sharded
    assert is_complete_checkpoint(checkpoint) and not (checkpoint / "model.safetensors").exists()
    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "fsdp")  # one process, no FSDP
    head, embeddings = model.get_output_embeddings().weight, model.get_input_embeddings().weight
    assert (head.data_ptr() == embeddings.data_ptr()) == (backbone == "mamba")  # Mamba-VL's head stays tied


def test_fsdp_resumes_after_sigkill_from_its_sharded_checkpoint(
    tiny_recipe: dict[str, Any], write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    tiny_recipe["model"]["backbone"] = "mamba"
    tiny_recipe["training"].update(max_steps=40, save_strategy="steps", save_steps=4, per_device_train_batch_size=2)
    recipe, out = write_recipe(tiny_recipe), tmp_path / "killed"
    first = _launch("fsdp", recipe, out, wait=False, log=tmp_path / "killed.log")
    deadline = time.monotonic() + 300
    while first.poll() is None and not is_complete_checkpoint(out / "checkpoint-4") and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # the launcher and both training processes, at once
    first.wait()
    assert not (out / "model.safetensors").exists()  # killed before the end of training
    resumed = _launch("fsdp", recipe, out)
    assert "Resuming from" in resumed.stderr and "checkpoint-40" not in resumed.stderr.split("Resuming from")[1][:80]
    _launch("fsdp", recipe, tmp_path / "uninterrupted")
    ours, reference = load_file(out / "model.safetensors"), load_file(tmp_path / "uninterrupted" / "model.safetensors")
    assert max((ours[k] - reference[k]).abs().max().item() for k in reference) < 1e-5
    assert _losses(out)[-4:] == pytest.approx(_losses(tmp_path / "uninterrupted")[-4:], rel=1e-5)


def test_deepspeed_zero2_matches_one_process(
    tiny_recipe: dict[str, Any], write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    pytest.importorskip("deepspeed")
    two, one = _recipes(tiny_recipe, write_recipe)
    run = _launch("deepspeed_zero2", two, tmp_path / "zero2")
    assert "Accelerate's deepspeed plugin runs over gloo" in run.stderr
    train(load_recipe(one), output_dir=tmp_path / "single")
    _assert_matches(tmp_path / "zero2", tmp_path / "single")


def test_deepspeed_zero3_trains_a_model_assembled_from_pretrained_parts(
    tiny_recipe: dict[str, Any], write_recipe: Callable[..., Path], tmp_path: Path, synthetic_dataset: Any
) -> None:
    pytest.importorskip("deepspeed")
    plain = train_synthetic_tokenizer(synthetic_corpus(synthetic_dataset), vocab_size=300)
    vision, language = save_parts(tmp_path, plain)
    two, one = _recipes(tiny_recipe, write_recipe, vision_model=str(vision), language_model=str(language))
    _launch("deepspeed_zero3", two, tmp_path / "zero3")
    weights = load_file(tmp_path / "zero3" / "model.safetensors")
    assert all(t.numel() > 0 for t in weights.values())  # gathered from the partitions, not empty placeholders
    train(load_recipe(one), output_dir=tmp_path / "single")
    _assert_matches(tmp_path / "zero3", tmp_path / "single")
    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "zero3")
    assert model.config.vision_model_id == str(vision)


@pytest.mark.parametrize("config", ["ddp", "fsdp"])
def test_lora_adapters_are_saved_once_and_reload(
    tiny_recipe: dict[str, Any],
    write_recipe: Callable[..., Path],
    tmp_path: Path,
    make_model: Callable[..., Any],
    processor: Any,
    config: str,
) -> None:
    from peft import PeftModel

    make_model("mamba").save_pretrained(tmp_path / "base")
    processor.save_pretrained(tmp_path / "base")
    tiny_recipe.update(model={"model_name_or_path": str(tmp_path / "base")}, lora={"r": 4, "alpha": 8})
    tiny_recipe["training"].update(max_steps=3, per_device_train_batch_size=2)
    _launch(config, write_recipe(tiny_recipe), tmp_path / "run")
    adapter = json.loads((tmp_path / "run" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(tmp_path / "base")
    assert not (tmp_path / "run" / "model.safetensors").exists()  # the adapter only, written by the main process
    saved = load_file(tmp_path / "run" / "adapter_model.safetensors")
    assert saved and all("lora_" in k or "multi_modal_projector" in k for k in saved)  # adapters + projector
    model = PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained(tmp_path / "base"), tmp_path / "run")
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and any(torch.count_nonzero(p) for p in lora_b)  # trained (lora_B starts at zero)
