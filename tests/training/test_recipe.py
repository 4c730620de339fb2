"""Recipes: the shipped stages load with the paper's settings; unknown keys, names and bad values fail early."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from training.recipe import STAGES, RecipeError, load_recipe, recipe_to_dict, save_recipe
from training.train import training_arguments

RECIPES = Path(__file__).resolve().parents[2] / "training" / "recipes"
PAPER_MIXTURE = {
    "llava_instruct", "coco_captions", "vqav2", "gqa", "aokvqa", "ai2d", "docvqa", "infographicvqa", "ocrvqa",
    "textcaps", "grit", "refcoco", "refcoco+", "refcocog", "visual_genome", "visual7w", "vsr",
}  # fmt: skip


@pytest.fixture
def data_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("VLM_DATA_ROOT", str(tmp_path / "datasets"))
    return tmp_path / "datasets"


def test_stage1_alignment_recipe(data_root: Path) -> None:
    recipe = load_recipe(RECIPES / "stage1_alignment.yaml")
    assert recipe.stage == "alignment"
    assert recipe.trainable_parts() == {"vision_tower": False, "multi_modal_projector": True, "language_model": False}
    assert [source.reader for source in recipe.data.train] == ["llava_pretrain"]
    assert recipe.data.train[0].files["path"] == str(data_root / "LLaVA-Pretrain" / "blip_laion_cc_sbu_558k.json")
    training = recipe.training
    assert (training["learning_rate"], training["lr_scheduler_type"], training["warmup_steps"]) == (
        1e-3,
        "cosine",
        0.03,
    )
    assert recipe.gradient_checkpointing


def test_stage2_instruction_recipe(data_root: Path) -> None:
    recipe = load_recipe(RECIPES / "stage2_instruction.yaml")
    assert recipe.stage == "instruction"
    assert recipe.trainable_parts() == {"vision_tower": False, "multi_modal_projector": True, "language_model": True}
    assert {source.reader for source in recipe.data.train} == PAPER_MIXTURE
    training = recipe.training
    assert training["learning_rate"] == 2e-5 and training["lr_scheduler_type"] == "cosine"
    assert training["warmup_steps"] == 0.03 and training["weight_decay"] == 0.0 and training["bf16"] is True
    assert recipe.max_length == 1024
    assert Path(training["deepspeed"]).is_file()  # resolved against the recipe's folder
    assert next(s for s in recipe.data.train if s.reader == "grit").kwargs["max_records"] > 0  # subsampled


def test_round_trip_yaml_and_json(tiny_recipe: dict[str, Any], write_recipe: Callable[..., Path]) -> None:
    recipe = load_recipe(write_recipe(tiny_recipe))
    assert load_recipe(write_recipe(tiny_recipe, "recipe.json")) == recipe
    for name in ("saved.yaml", "saved.json"):
        saved = save_recipe(recipe, Path(str(recipe.path)).with_name(name))
        reloaded = load_recipe(saved)
        assert recipe_to_dict(reloaded) == recipe_to_dict(recipe)


def test_exponent_floats_and_stage_defaults(write_recipe: Callable[..., Path], tiny_recipe: dict[str, Any]) -> None:
    path = write_recipe(tiny_recipe)
    path.write_text(path.read_text().replace("learning_rate: 0.001", "learning_rate: 1e-3"))
    recipe = load_recipe(path)
    assert recipe.training["learning_rate"] == 1e-3  # YAML 1.1 would read "1e-3" as a string
    assert set(STAGES) == {"alignment", "instruction"}


def _edit(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A copy of `data` with `dotted` (e.g. ``data.train.0.reader``) set to `value`."""
    data = copy.deepcopy(data)
    *parents, last = dotted.split(".")
    node: Any = data
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    node[last] = value
    return data


@pytest.mark.parametrize(
    ("dotted", "value", "message"),
    [
        ("optimiser", "adam", r"unknown key optimiser"),
        ("data.train.0.weigth", 2, r"data\.train\[0\]\.weigth; did you mean weight"),
        ("data.train.0.reader", "coco_captionz", r"data\.train\[0\]\.reader: unknown dataset reader 'coco_captionz'"),
        ("model.backbone", "rwkv", r"model\.backbone='rwkv' is unknown; valid backbones: pythia, mamba"),
        ("model.preset", "7b", r"model\.preset='7b' is unknown"),
        ("stage", "pretraining", r"stage='pretraining' is unknown"),
        ("training.warmup_ratio", 0.03, r"training\.warmup_ratio; use warmup_steps"),
        ("training.learnig_rate", 1e-3, r"training\.learnig_rate; did you mean learning_rate"),
        ("training.learning_rate", "fast", r"training\.learning_rate must be a number, got 'fast'"),
        ("training.max_steps", 2.5, r"training\.max_steps must be an integer"),
        ("training.gradient_checkpointing", True, r"training\.gradient_checkpointing is set by the recipe"),
        ("training.eval_strategy", "steps", r"eval_strategy='steps' needs data\.eval"),
        ("max_length", 0, r"max_length must be a positive"),
        ("data.train.0.weight", -1, r"data\.train\[0\]\.weight must be a positive number"),
        ("data.train.0.kwargs.num_images", 0, r"num_images must be a positive integer"),
        ("data.train.0.kwargs.shapes", 3, r"data\.train\[0\]\.kwargs\.shapes"),
        ("data.train.0.kwargs.max_objects", 9, r"max_objects must be in \[1, 3\]"),
        ("data.train.0.files", {"path": "x.json"}, r"synthetic source generates its images"),
        ("model.model_name_or_path", "some/model", r"model needs exactly one of"),
        ("trainable.vision_tower", "yes", r"trainable\.vision_tower must be true or false"),
        ("lora.r", 8, r"lora: LoRA adapts the language model, which the alignment stage keeps frozen"),
        ("model.dtype", "float16", r"model\.dtype=float16 trains without float32 master weights .*training\.fp16"),
        ("data.train.0.kwargs.image_size", "32", r"kwargs\.image_size must be an integer, got '32'"),
        ("training.use_cpu", "false", r"training\.use_cpu must be true or false, got 'false'"),
        ("training.fp16_full_eval", "no", r"training\.fp16_full_eval must be true or false"),
    ],
)
def test_bad_recipes_name_the_key_and_file(
    tiny_recipe: dict[str, Any], write_recipe: Callable[..., Path], dotted: str, value: Any, message: str
) -> None:
    data = _edit(tiny_recipe, dotted, value)
    if dotted.startswith("lora"):
        data["stage"] = "alignment"
    path = write_recipe(data)
    with pytest.raises(RecipeError, match=message) as error:
        load_recipe(path)
    assert str(error.value).startswith(str(path))


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"reader": "vqav2", "files": {"questions_path": "q.json"}, "image_root": "x"}, r"needs annotations_path"),
        ({"reader": "gqa", "files": {"path": "q.json", "extra": "e"}, "image_root": "x"}, r"files\.extra; "),
        ({"reader": "gqa", "files": {"path": "q.json"}, "image_root": "x", "kwargs": {"turns": 3}}, r"kwargs\.turns"),
        ({"reader": "gqa", "files": {"path": "q.json"}}, r"data\.train\[1\]\.image_root is missing"),
        ({"reader": "gqa", "files": {"path": 3}, "image_root": "x"}, r"files\.path must be a string, got 3"),
        (
            {
                "reader": "llava_pretrain",
                "files": {"path": "p.json"},
                "image_root": "x",
                "kwargs": {"use_caption_prompt": "false"},
            },
            r"kwargs\.use_caption_prompt must be true or false, got 'false'",
        ),
        (
            {"reader": "grit", "files": {"path": "g"}, "image_root": "x", "kwargs": {"max_records": "10"}},
            r"kwargs\.max_records must be an integer, got '10'",
        ),
    ],
)
def test_bad_reader_arguments(
    tiny_recipe: dict[str, Any], write_recipe: Callable[..., Path], source: dict[str, Any], message: str
) -> None:
    tiny_recipe["data"]["train"].append(source)
    with pytest.raises(RecipeError, match=message):
        load_recipe(write_recipe(tiny_recipe))


def test_duplicate_names_and_unset_variables(tiny_recipe: dict[str, Any], write_recipe: Callable[..., Path]) -> None:
    twice = copy.deepcopy(tiny_recipe)
    twice["data"]["train"].append(copy.deepcopy(twice["data"]["train"][0]))
    with pytest.raises(RecipeError, match=r"source name\(s\) synthetic repeat"):
        load_recipe(write_recipe(twice))
    tiny_recipe["data"]["root"] = "${VLM_TEST_UNSET_VARIABLE}/data"
    with pytest.raises(RecipeError, match=r"data\.root=.*VLM_TEST_UNSET_VARIABLE is not set"):
        load_recipe(write_recipe(tiny_recipe))


def test_relative_paths_resolve_against_the_recipe(tmp_path: Path, write_recipe: Callable[..., Path]) -> None:
    data = {
        "model": {"preset": "tiny", "backbone": "mamba"},
        "data": {"root": "datasets", "train": [{"reader": "gqa", "files": {"path": "q.json"}, "image_root": "img"}]},
    }
    recipe = load_recipe(write_recipe(data))
    assert recipe.data.train[0].files["path"] == str(tmp_path / "datasets" / "q.json")
    assert recipe.data.train[0].image_root == str(tmp_path / "datasets" / "img")


def test_bad_training_values_fail_when_arguments_are_built(
    tiny_recipe: dict[str, Any], write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    tiny_recipe["training"]["lr_scheduler_type"] = "cosine_annealing"
    path = write_recipe(tiny_recipe)
    with pytest.raises(RecipeError, match=r"cosine_annealing is not a valid SchedulerType") as error:
        training_arguments(load_recipe(path), tmp_path / "out")
    assert str(path) in str(error.value)
