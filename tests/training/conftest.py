"""Fixtures of the recipe tests: the shipped tiny synthetic recipe as data, and a writer of recipe files."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

RECIPES = Path(__file__).resolve().parents[2] / "training" / "recipes"


@pytest.fixture(scope="session")
def shipped_tiny_recipe() -> dict[str, Any]:
    return yaml.safe_load((RECIPES / "tiny_synthetic.yaml").read_text())


@pytest.fixture
def tiny_recipe(shipped_tiny_recipe: dict[str, Any]) -> dict[str, Any]:
    """The shipped tiny recipe, shortened for tests: 4 steps, no eval, no checkpoints, no loggers."""
    data = copy.deepcopy(shipped_tiny_recipe)
    data["data"]["train"][0]["kwargs"]["num_images"] = 16
    data["data"].pop("eval")
    data["training"].update(
        max_steps=4, logging_steps=1, save_strategy="no", report_to=[], per_device_train_batch_size=4
    )
    for key in ("eval_steps", "save_steps", "save_total_limit"):
        data["training"].pop(key)
    return data


@pytest.fixture
def write_recipe(tmp_path: Path) -> Callable[..., Path]:
    """``write_recipe(data, name="recipe.yaml")`` -> the path of a YAML (or ``.json``) recipe under tmp_path."""

    def _write(data: dict[str, Any], name: str = "recipe.yaml") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(data) if path.suffix == ".json" else yaml.safe_dump(data, sort_keys=False))
        return path

    return _write
