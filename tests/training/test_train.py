"""``vlm train``: recipes run through the Trainer end to end, per stage, with LoRA, skips, resume checks and push."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import transformers.trainer
import yaml
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.utils import FullyShardedDataParallelPlugin
from accelerate.utils.fsdp_utils import fsdp2_prepare_auto_wrap_policy
from PIL import Image
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    set_seed,
)

from modeling_vlm import VLForConditionalGeneration
from processing import VLProcessor
from tests.training.parts import save_parts
from training.checkpoints import COMPLETE_FILE, is_complete_checkpoint
from training.cli import main
from training.data.sources import read_sources
from training.model_loading import build_model_and_processor
from training.recipe import RecipeError, load_recipe, recipe_from_dict
from training.synthetic.tokenizer import synthetic_corpus, train_synthetic_tokenizer
from training.train import RECIPE_FILE, restrict_fsdp_wrap_classes, train

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "training" / "accelerate_configs"
FSDP_CONFIG = CONFIGS / "fsdp.yaml"


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def _changed_parts(before: dict[str, torch.Tensor], model: torch.nn.Module) -> set[str]:
    after = dict(model.named_parameters())
    return {name.split(".")[0] for name, p in before.items() if not torch.equal(p, after[name].detach())}


def _initial_state(recipe_path: Path, output_dir: Path) -> dict[str, torch.Tensor]:
    """The weights a run of the recipe starts from (same seed, same processor)."""
    recipe = load_recipe(recipe_path)
    set_seed(recipe.training["seed"])
    model, _ = build_model_and_processor(recipe, read_sources(recipe.data.train, output_dir, "train", 0), output_dir)
    return _state(model)


def test_tiny_recipe_end_to_end_through_the_cli(
    tiny_recipe: dict[str, Any], write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    tiny_recipe["data"]["eval"] = [{"reader": "synthetic", "kwargs": {"num_images": 2, "image_size": 32, "seed": 9}}]
    tiny_recipe["training"].update(
        max_steps=4, save_strategy="steps", save_steps=2, eval_steps=2, report_to=["tensorboard"]
    )
    out = tmp_path / "run"
    assert main(["train", str(write_recipe(tiny_recipe)), "--output-dir", str(out)]) == 0
    assert is_complete_checkpoint(out / "checkpoint-2") and is_complete_checkpoint(out / "checkpoint-4")
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert [h["step"] for h in history if "eval_loss" in h] == [2, 4]
    assert list(out.glob("runs/*/events.out.tfevents.*"))  # TensorBoard
    saved = load_recipe(out / RECIPE_FILE)  # the run's recipe, beside the checkpoints, loads back
    assert (
        saved.training["output_dir"] == str(out.resolve()) and saved.data == load_recipe(tmp_path / "recipe.yaml").data
    )
    card = (out / "README.md").read_text()
    assert "This model was trained from scratch on" in card and "## Training recipe" in card
    assert "| synthetic | synthetic | 48 | size | 48 |" in card and "max_steps: 4" in card
    assert json.loads((out / "skipped_records.json").read_text())["total"] == {}
    model = AutoModelForImageTextToText.from_pretrained(out)
    assert isinstance(model, VLForConditionalGeneration) and isinstance(
        AutoProcessor.from_pretrained(out), VLProcessor
    )
    record = json.loads((out / "checkpoint-4" / COMPLETE_FILE).read_text())["files"]
    assert {"optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json", "model.safetensors"} <= set(record)
    (out / RECIPE_FILE).write_text("name: [unclosed")  # a truncated run_recipe.yaml must not block the next start
    tiny_recipe["training"]["max_steps"] = 2
    assert main(["train", str(write_recipe(tiny_recipe)), "--output-dir", str(out), "--resume", "never"]) == 0
    [superseded] = out.glob("superseded.run-*")  # the first run's checkpoints, set aside rather than overwritten
    assert sorted(p.name for p in superseded.iterdir()) == ["checkpoint-2", "checkpoint-4"]
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]
    assert load_recipe(out / RECIPE_FILE).training["max_steps"] == 2


@pytest.mark.parametrize(
    ("stage", "backbone", "trainable", "expected"),
    [
        ("alignment", "mamba", {}, {"multi_modal_projector"}),
        ("instruction", "pythia", {}, {"multi_modal_projector", "language_model"}),
        (
            "instruction",
            "pythia",
            {"vision_tower": True, "language_model": False},
            {"multi_modal_projector", "vision_tower"},
        ),
    ],
)
def test_stages_train_their_parts_with_gradient_checkpointing(
    tiny_recipe: dict[str, Any],
    write_recipe: Callable[..., Path],
    tmp_path: Path,
    stage: str,
    backbone: str,
    trainable: dict[str, bool],
    expected: set[str],
) -> None:
    tiny_recipe.update(stage=stage, trainable=trainable, gradient_checkpointing=True)
    tiny_recipe["model"]["backbone"] = backbone
    tiny_recipe["training"]["max_steps"] = 2
    path, out = write_recipe(tiny_recipe), tmp_path / "run"
    result = train(load_recipe(path), output_dir=out)
    model = result.trainer.model
    assert getattr(model, "is_activation_checkpointing", None) or model.is_gradient_checkpointing
    assert _changed_parts(_initial_state(path, out), model) == expected


def _llava_fixture(folder: Path) -> Path:
    """A LLaVA-style JSON file over four images: one fine, one missing, one corrupt, one whose text is far too long."""
    folder.mkdir()
    Image.new("RGB", (40, 30), (220, 30, 30)).save(folder / "red.png")
    Image.new("RGB", (30, 40), (30, 70, 220)).save(folder / "blue.png")
    (folder / "corrupt.jpg").write_bytes(b"\x00not an image\xff" * 8)

    def record(image: str, question: str, answer: str) -> dict[str, Any]:
        turns = [{"from": "human", "value": f"<image>\n{question}"}, {"from": "gpt", "value": answer}]
        return {"image": image, "conversations": turns}

    records = [
        record("red.png", "What colour is the image?", "red"),
        record("missing.png", "What colour is the image?", "green"),
        record("corrupt.jpg", "What colour is the image?", "blue"),
        record("blue.png", "Describe the image in detail. " * 60, "blue"),
        record("blue.png", "What colour is the image?", "blue"),
    ]
    path = folder / "llava.json"
    path.write_text(json.dumps(records))
    return path


def test_skipped_records_are_logged_and_saved(
    tiny_recipe: dict[str, Any],
    write_recipe: Callable[..., Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    annotations = _llava_fixture(tmp_path / "llava")
    source = {"reader": "llava_instruct", "files": {"path": str(annotations)}, "image_root": str(annotations.parent)}
    tiny_recipe["data"] = {"train": [source], "validate": True, "num_samples": 8}
    tiny_recipe.update(max_length=96)
    tiny_recipe["training"].update(max_steps=2, per_device_train_batch_size=4)
    out = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="training"):
        result = train(load_recipe(write_recipe(tiny_recipe)), output_dir=out)
    report = json.loads((out / "skipped_records.json").read_text())
    assert report["total"] == {"missing_image": 1, "corrupt_image": 1, "too_long": 1} == result.skipped["total"]
    assert report["by_dataset"] == {"train/llava_instruct": report["total"]}
    assert {(r["image"], r["reason"]) for r in report["validated_records"]} == {
        ("missing.png", "missing_image"),
        ("corrupt.jpg", "corrupt_image"),
        ("blue.png", "too_long"),
    }
    assert "Skipped 3 unusable record(s)" in caplog.text


def test_pretrained_parts_recipe(
    tiny_recipe: dict[str, Any],
    write_recipe: Callable[..., Path],
    tmp_path: Path,
    synthetic_dataset: Any,
) -> None:
    plain = train_synthetic_tokenizer(synthetic_corpus(synthetic_dataset), vocab_size=300)  # no <image>, ### or &&
    vision, language = save_parts(tmp_path, plain)
    tiny_recipe.update(stage="alignment", model={"vision_model": str(vision), "language_model": str(language)})
    tiny_recipe["training"]["max_steps"] = 2
    result = train(load_recipe(write_recipe(tiny_recipe)), output_dir=tmp_path / "run")
    processor = AutoProcessor.from_pretrained(tmp_path / "run")
    assert processor.image_grid_size == 4 and processor.image_token_id == len(plain)  # <image> was added
    model = result.trainer.model
    assert model.config.image_token_id == processor.image_token_id
    assert not any(p.requires_grad for p in model.language_model.parameters())


def test_lora_recipe_from_a_saved_model(
    tiny_recipe: dict[str, Any],
    write_recipe: Callable[..., Path],
    tmp_path: Path,
    make_model: Callable[..., VLForConditionalGeneration],
    processor: VLProcessor,
) -> None:
    base = make_model("mamba")
    base.save_pretrained(tmp_path / "base")
    processor.save_pretrained(tmp_path / "base")
    tiny_recipe.update(model={"model_name_or_path": str(tmp_path / "base")}, lora={"r": 4, "alpha": 8})
    tiny_recipe["training"]["max_steps"] = 2
    result = train(load_recipe(write_recipe(tiny_recipe)), output_dir=tmp_path / "run")
    assert (tmp_path / "run" / "adapter_model.safetensors").is_file()
    trainable = [name for name, p in result.trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or "multi_modal_projector.modules_to_save" in n for n in trainable)
    assert "## Training recipe" in (tmp_path / "run" / "README.md").read_text()


class _FakeHub:
    """Stands in for the hub client the Trainer pushes through: records what each upload would send."""

    def __init__(self) -> None:
        self.uploads: list[dict[str, Any]] = []

    def create_repo(self, repo_id: str, **kwargs: Any) -> Any:
        return type("RepoUrl", (), {"repo_id": f"user/{repo_id}"})()

    def upload_folder(self, *, folder_path: str, **kwargs: Any) -> None:
        card = (Path(folder_path) / "README.md").read_text()
        config = json.loads((Path(folder_path) / "config.json").read_text())
        files = sorted(p.name for p in Path(folder_path).iterdir())
        self.uploads.append({"files": files, "card": card, "config": config, **kwargs})


def test_push_to_hub_goes_through_the_trainer_with_the_recipe_card(
    tiny_recipe: dict[str, Any], write_recipe: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = _FakeHub()
    monkeypatch.setattr(transformers.trainer, "hf_api", lambda: hub)
    tiny_recipe["training"].update(max_steps=1, hub_model_id="tiny-vl")
    main(["train", str(write_recipe(tiny_recipe)), "--output-dir", str(tmp_path / "run"), "--push-to-hub"])
    final = hub.uploads[-1]
    assert final["repo_id"] == "user/tiny-vl" and final["ignore_patterns"] == ["_*", "checkpoint-*"]
    assert {"model.safetensors", "run_recipe.yaml", "README.md", "skipped_records.json"} <= set(final["files"])
    assert "## Training recipe" in final["card"] and "stage-instruction" in final["card"]
    # What is pushed is standalone: the code files and the auto_map that load it with transformers alone.
    assert {"modeling_vlm.py", "configuration_vlm.py", "processing_vlm.py", "image_processing_vlm.py"} <= set(
        final["files"]
    )
    auto_map = final["config"]["auto_map"]
    assert auto_map["AutoModelForImageTextToText"] == "modeling_vlm.PythiaVLForConditionalGeneration"


def test_bad_input_fails_before_training(
    tiny_recipe: dict[str, Any], write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    tiny_recipe["data"]["train"].append({"reader": "gqa", "files": {"path": "nowhere.json"}, "image_root": "."})
    with pytest.raises(FileNotFoundError, match=r"data\.train\[1\]\.files\.path: .*nowhere\.json. does not exist"):
        train(load_recipe(write_recipe(tiny_recipe)), output_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    recipe = recipe_from_dict({k: v for k, v in tiny_recipe.items() if k != "training"})
    with pytest.raises(RecipeError, match=r"pass --output-dir or set training\.output_dir"):
        train(recipe)


def test_eval_holdout_and_saved_recipe(
    tiny_recipe: dict[str, Any], write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    tiny_recipe["data"]["eval_holdout"] = 4
    tiny_recipe["training"].update(max_steps=2, eval_steps=2)
    out = tmp_path / "run"
    result = train(load_recipe(write_recipe(tiny_recipe)), output_dir=out)
    assert len(result.trainer.train_dataset) == 48 - 4 and len(result.trainer.eval_dataset) == 4
    assert any("eval_loss" in entry for entry in result.trainer.state.log_history)
    saved = yaml.safe_load((out / RECIPE_FILE).read_text())
    assert saved["model"]["preset"] == "tiny" and saved["data"]["eval_holdout"] == 4


@pytest.mark.parametrize(("backbone", "layer"), [("pythia", "GPTNeoXLayer"), ("mamba", "MambaBlock")])
def test_fsdp_wraps_the_listed_classes_the_model_has(
    make_model: Callable[..., VLForConditionalGeneration], monkeypatch: pytest.MonkeyPatch, backbone: str, layer: str
) -> None:
    listed = yaml.safe_load(FSDP_CONFIG.read_text())["fsdp_config"]["fsdp_transformer_layer_cls_to_wrap"]
    assert set(listed.split(",")) == {"GPTNeoXLayer", "MambaBlock", "CLIPEncoderLayer", "SiglipEncoderLayer", "Block"}
    environment = {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2", "FSDP_TRANSFORMER_CLS_TO_WRAP": listed}
    for name, value in {**environment, "FSDP_AUTO_WRAP_POLICY": "TRANSFORMER_BASED_WRAP"}.items():
        monkeypatch.setenv(name, value)
    model = make_model(backbone)
    with pytest.raises(ValueError, match="Could not find the transformer layer class"):  # why the list is filtered
        fsdp2_prepare_auto_wrap_policy(FullyShardedDataParallelPlugin(), model)
    assert restrict_fsdp_wrap_classes(model) == [layer, "CLIPEncoderLayer"]
    policy = fsdp2_prepare_auto_wrap_policy(FullyShardedDataParallelPlugin(), model)
    assert {type(module).__name__ for module in model.modules() if policy(module)} == {layer, "CLIPEncoderLayer"}


def test_accelerate_configs_load() -> None:
    kinds = {}
    for name in ("ddp", "fsdp", "deepspeed_zero2", "deepspeed_zero3"):
        config = load_config_from_file(str(CONFIGS / f"{name}.yaml"))
        kinds[name] = config.distributed_type.value
        if name.startswith("deepspeed"):
            json_config = json.loads((ROOT / config.deepspeed_config["deepspeed_config_file"]).read_text())
            assert json_config["zero_optimization"]["stage"] == int(name[-1])
    assert kinds == {
        "ddp": "MULTI_GPU",
        "fsdp": "FSDP",
        "deepspeed_zero2": "DEEPSPEED",
        "deepspeed_zero3": "DEEPSPEED",
    }


def test_cli_reports_a_bad_recipe_in_one_line(
    tiny_recipe: dict[str, Any], write_recipe: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    tiny_recipe["model"]["backbone"] = "rwkv"
    path = write_recipe(tiny_recipe)
    assert main(["train", str(path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"vlm train: error: {path}: model.backbone='rwkv' is unknown") and "\n" not in error


def test_lora_on_a_preset_saves_the_merged_model(
    tiny_recipe: dict[str, Any], write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    tiny_recipe["lora"] = {"r": 4, "alpha": 8}
    tiny_recipe["training"]["max_steps"] = 2
    result = train(load_recipe(write_recipe(tiny_recipe)), output_dir=tmp_path / "run")
    out = tmp_path / "run"
    assert not (out / "adapter_config.json").exists()  # an adapter of a random base could never be loaded
    loaded = AutoModelForImageTextToText.from_pretrained(out)
    trained = result.trainer.model.state_dict()
    for name, tensor in loaded.state_dict().items():
        torch.testing.assert_close(tensor, trained[name], msg=name)
    assert not any("lora_" in name for name in loaded.state_dict())
