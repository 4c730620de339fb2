"""Launches that cannot run as configured fail at start, naming the option (``training.launch_checks``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from training.cli import main
from training.launch_checks import check_launch
from training.recipe import RecipeError, load_recipe


@pytest.fixture
def recipe(tiny_recipe: dict[str, Any], write_recipe: Callable[..., Path]) -> Any:
    return load_recipe(write_recipe(tiny_recipe))


def test_more_processes_than_cores_or_no_use_cpu_on_the_cpu(recipe: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setenv("WORLD_SIZE", str((os.cpu_count() or 1) + 1))
    with pytest.raises(
        RecipeError, match=r"processes on a machine with \d+ CPU cores and no GPU: pass --num_processes"
    ):
        check_launch(recipe)
    monkeypatch.setenv("WORLD_SIZE", "2")
    check_launch(recipe)  # the tiny recipe sets training.use_cpu: true
    recipe.training["use_cpu"] = False
    with pytest.raises(RecipeError, match=r"need training\.use_cpu: true .* each process would train alone"):
        check_launch(recipe)


def test_gpu_only_options_on_the_cpu(recipe: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("FSDP_OFFLOAD_PARAMS", "true")
    with pytest.raises(RecipeError, match="fsdp_offload_params: true offloads to the CPU from a GPU"):
        check_launch(recipe)
    monkeypatch.delenv("FSDP_OFFLOAD_PARAMS")
    config = tmp_path / "ds.json"
    for body, message in [
        ({"fp16": {"enabled": True}, "zero_optimization": {"stage": 2}}, "fp16.enabled is GPU-only"),
        ({"zero_optimization": {"stage": 3, "offload_param": {"device": "nvme"}}}, r"offload_param\.device=nvme"),
        ({"zero_optimization": {"stage": 3, "stage3_gather_16bit_weights_on_model_save": False}},
         "would save a model without its weights"),
    ]:  # fmt: skip
        config.write_text(json.dumps(body))
        monkeypatch.setenv("ACCELERATE_DEEPSPEED_CONFIG_FILE", str(config))
        with pytest.raises(RecipeError, match=message):
            check_launch(recipe)
    for name in ("deepspeed_zero2.json", "deepspeed_zero3.json"):  # the shipped configs pass
        shipped = Path(__file__).resolve().parents[2] / "training" / "accelerate_configs" / name
        monkeypatch.setenv("ACCELERATE_DEEPSPEED_CONFIG_FILE", str(shipped))
        check_launch(recipe)


def test_the_cli_reports_a_bad_launch_before_training(
    tiny_recipe: dict[str, Any], write_recipe: Callable[..., Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    tiny_recipe["training"]["use_cpu"] = False
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", str(write_recipe(tiny_recipe)), "--output-dir", str(tmp_path / "run")]) == 2
    assert "need training.use_cpu: true" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # nothing was built or written


def test_qlora_is_refused_clearly_where_bitsandbytes_cannot_run(
    tiny_recipe: dict[str, Any], write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    import importlib.util

    import torch

    tiny_recipe["lora"] = {"r": 4, "alpha": 8, "load_in_4bit": True}
    with pytest.raises(RecipeError, match=r"lora\.load_in_4bit quantises a saved model"):
        load_recipe(write_recipe(tiny_recipe))  # a random preset has nothing to quantise
    tiny_recipe["model"] = {"model_name_or_path": str(tmp_path / "base")}
    if torch.cuda.is_available() and importlib.util.find_spec("bitsandbytes"):
        pytest.skip("this machine can run QLoRA")
    with pytest.raises(RecipeError, match=r"needs (bitsandbytes|a CUDA GPU)"):
        load_recipe(write_recipe(tiny_recipe))
