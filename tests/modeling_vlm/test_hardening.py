"""Inputs that used to give silently wrong answers: beams of multi-image samples, right-padded batches, image
placeholders without images, integer pixels, and an image grid smaller than the tower's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from PIL import Image

from processing import VLProcessor

COLOURS = {"R": (220, 20, 20), "G": (20, 200, 20), "B": (20, 20, 220), "Y": (230, 220, 20)}


def _image(name: str) -> Image.Image:
    return Image.new("RGB", (32, 32), COLOURS[name])


@pytest.mark.parametrize("backbone", ["pythia", "mamba"])
def test_beams_keep_each_samples_own_images(
    backbone: str, make_model: Callable[..., Any], processor: VLProcessor, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = make_model(backbone)
    seen: list[torch.Tensor] = []
    original = model.get_image_features
    monkeypatch.setattr(model, "get_image_features", lambda pixels: seen.append(pixels) or original(pixels))
    inputs = processor(images=[_image(c) for c in "RGBY"], text=["<image><image> a", "<image><image> b"],
                       return_tensors="pt")  # fmt: skip
    model.generate(**inputs, max_new_tokens=2, num_beams=2, num_return_sequences=2, do_sample=False)
    single = {
        c: processor(images=[_image(c)], text=["<image>"], return_tensors="pt")["pixel_values"][0] for c in "RGBY"
    }
    order = ["".join(c for c in "RGBY" if torch.equal(row, single[c])) for row in seen[0]]
    assert order == ["R", "G", "R", "G", "B", "Y", "B", "Y"]  # (R, G) per beam of sample 0, not (R, R) / (G, G)


@pytest.mark.parametrize("backbone", ["pythia", "mamba"])
def test_a_batch_generates_what_each_prompt_generates_alone(
    backbone: str, make_model: Callable[..., Any], processor: VLProcessor
) -> None:
    model = make_model(backbone)
    prompts = ["<image> what shape", "<image> what colour is the big shape on the left of the image"]
    images = [_image("R"), _image("G")]
    batch = processor(images=images, text=prompts, return_tensors="pt")  # the README's pattern, default padding
    together = model.generate(**batch, max_new_tokens=4, do_sample=False)[:, batch["input_ids"].shape[1] :]
    for row, (image, prompt) in enumerate(zip(images, prompts, strict=True)):
        alone = processor(images=[image], text=[prompt], return_tensors="pt")
        expected = model.generate(**alone, max_new_tokens=4, do_sample=False)[0, alone["input_ids"].shape[1] :]
        assert together[row].tolist() == expected.tolist(), f"prompt {row}"


@pytest.mark.parametrize("backbone", ["pythia", "mamba"])
def test_placeholders_without_images_and_integer_pixels_are_refused(
    backbone: str, make_model: Callable[..., Any], processor: VLProcessor
) -> None:
    model = make_model(backbone)
    inputs = processor(images=[_image("R")], text=["<image> what colour"], return_tensors="pt")
    with pytest.raises(ValueError, match=r"input_ids hold 16 image placeholder\(s\) .* but no pixel_values"):
        model(input_ids=inputs["input_ids"])
    with pytest.raises(ValueError, match="but no pixel_values"):
        model.generate(input_ids=inputs["input_ids"], max_new_tokens=2)
    with pytest.raises(ValueError, match=r"pixel_values must be floating point .* got torch\.uint8"):
        model(input_ids=inputs["input_ids"], pixel_values=torch.full((1, 3, 32, 32), 200, dtype=torch.uint8))
    text_only = processor(text=["what colour"], return_tensors="pt")
    assert model(**text_only).logits.shape[1] == text_only["input_ids"].shape[1]  # no image: fine


def test_an_image_grid_smaller_than_the_towers_is_refused(make_config: Callable[..., Any]) -> None:
    import modeling_vlm

    config = make_config("pythia")
    config.image_grid_size = config.image_grid_size - 1  # 3x3 of a 4x4-patch tower: 7 patches would be dropped
    message = r"image_grid_size=3 gives 9 image tokens, but the clip_vision_model tower makes 16 patches per image"
    with pytest.raises(ValueError, match=message + r" \(4 per side .*set image_grid_size=4"):
        modeling_vlm.MODEL_CLASSES["pythia"](config)
