"""A recipe's sources: the synthetic images rendered for one set of parameters are never reused for another."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from training.data.sources import read_sources
from training.recipe import DataSource


def _pixels(read: object) -> list[np.ndarray]:
    return [np.asarray(Image.open(read.image_root / c.image_path)) for c in read.conversations]  # type: ignore[attr-defined]


def test_synthetic_images_are_cached_per_generation_parameters(tmp_path: Path) -> None:
    def source(**kwargs: object) -> DataSource:
        return DataSource(reader="synthetic", name="shapes", kwargs={"num_images": 3, "image_size": 32, **kwargs})

    [first] = read_sources([source(seed=1)], tmp_path, "train", 0)
    [second] = read_sources([source(seed=2)], tmp_path, "train", 0)  # same output folder, another seed
    [fresh] = read_sources([source(seed=2)], tmp_path / "elsewhere", "train", 0)
    assert first.image_root != second.image_root
    assert [c.turns for c in second.conversations] == [c.turns for c in fresh.conversations]
    for ours, reference in zip(_pixels(second), _pixels(fresh), strict=True):
        np.testing.assert_array_equal(ours, reference)  # seed-2 pixels beside seed-2 captions
    assert any(not np.array_equal(a, b) for a, b in zip(_pixels(first), _pixels(second), strict=True))
    [again] = read_sources([source(seed=1)], tmp_path, "train", 0)
    assert again.image_root == first.image_root  # the same parameters reuse their own render
    [bigger] = read_sources([source(seed=1, image_size=48)], tmp_path, "train", 0)
    assert bigger.image_root != first.image_root
    assert Image.open(bigger.image_root / bigger.conversations[0].image_path).size == (48, 48)
