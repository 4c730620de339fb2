"""Vision towers inside both models: EVA-02 through TimmWrapperModel (the paper's), CLIP and SigLIP.

Each tower is built offline at a tiny size, runs inside Pythia-VL and Mamba-VL, and saves and reloads to the same
logits. The EVA-02 tests need timm, which needs torchvision: CI runs them in its second virtual environment.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText

from configuration import PRESETS
from configuration.presets import EVA02_VISION_CONFIG
from modeling_vlm import MODEL_CLASSES
from processing import VLImageProcessor, VLProcessor

TINY_EVA02_ARGS = {"img_size": 28, "patch_size": 14, "embed_dim": 64, "depth": 2, "num_heads": 2}


def _config(backbone: str, vocab: int, vision_config: dict[str, Any], grid: int) -> Any:
    text = {**PRESETS[backbone]["tiny"].text_config, "vocab_size": vocab}
    return MODEL_CLASSES[backbone].config_class.from_preset(
        "tiny", text_config=text, vision_config=vision_config, image_grid_size=grid, vision_model_id=None
    )


def _round_trip(backbone: str, config: Any, tokenizer: Any, pixels: int, tmp_path: Path) -> None:
    """Build, run, save and reload; the reloaded model gives the same logits."""
    torch.manual_seed(0)
    model = MODEL_CLASSES[backbone](config).eval()
    processor = VLProcessor(VLImageProcessor(size={"height": pixels, "width": pixels}), tokenizer,
                            image_grid_size=config.image_grid_size)  # fmt: skip
    inputs = processor(
        images=[Image.new("RGB", (40, 30), (200, 40, 90))], text=["<image>Caption:"], return_tensors="pt"
    )
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape[1] == inputs["input_ids"].shape[1] and torch.isfinite(logits).all()
    model.save_pretrained(tmp_path / backbone)
    reloaded = AutoModelForImageTextToText.from_pretrained(tmp_path / backbone).eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**inputs).logits, logits)


@pytest.mark.timm
@pytest.mark.parametrize("backbone", ["pythia", "mamba"])
def test_the_papers_eva02_tower_builds_runs_and_reloads(backbone: str, tokenizer: Any, tmp_path: Path) -> None:
    pytest.importorskip("timm")
    # The paper's preset (EVA-02-L/14 at 336 px) shrunk through timm's model_args: the width is read off the tower.
    vision = {k: v for k, v in copy.deepcopy(EVA02_VISION_CONFIG).items() if k != "num_features"}
    vision["model_args"] = TINY_EVA02_ARGS
    config = _config(backbone, len(tokenizer), vision, grid=2)
    assert config.vision_hidden_size is None
    _round_trip(backbone, config, tokenizer, 28, tmp_path)
    assert AutoModelForImageTextToText.from_pretrained(tmp_path / backbone).config.vision_hidden_size == 64


@pytest.mark.timm
def test_the_papers_full_size_eva02_config_has_its_published_shape() -> None:
    pytest.importorskip("timm")
    config = MODEL_CLASSES["mamba"].config_class.from_preset("790m")
    with torch.device("meta"):
        model = MODEL_CLASSES["mamba"](config)
    timm_model = model.vision_tower.timm_model
    assert (config.vision_hidden_size, config.image_grid_size) == (1024, 24)
    assert tuple(timm_model.patch_embed.grid_size) == (24, 24) and timm_model.num_prefix_tokens == 1
    assert round(sum(p.numel() for p in model.vision_tower.parameters()) / 1e6, 1) == 303.6  # EVA-02-L


def test_a_mismatched_vision_width_is_refused(tokenizer: Any) -> None:
    vision = {**PRESETS["pythia"]["tiny"].vision_config}
    config = _config("pythia", len(tokenizer), vision, grid=4)
    config.vision_hidden_size = 48
    with pytest.raises(ValueError, match="vision_hidden_size=48, but the clip_vision_model tower emits features"):
        MODEL_CLASSES["pythia"](config)


@pytest.mark.parametrize("backbone", ["pythia", "mamba"])
@pytest.mark.parametrize(
    "vision",
    [
        {"model_type": "clip_vision_model", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
         "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        {"model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
         "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
    ],
    ids=["clip", "siglip"],
)  # fmt: skip
def test_clip_and_siglip_towers_run_and_reload(backbone: str, vision: dict, tokenizer: Any, tmp_path: Path) -> None:
    config = _config(backbone, len(tokenizer), vision, grid=4)
    assert config.vision_hidden_size == 32
    _round_trip(backbone, config, tokenizer, 32, tmp_path)
