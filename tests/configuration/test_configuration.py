"""Composite configs of Pythia-VL and Mamba-VL: presets, validation and serialisation round trips."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoConfig, GPTNeoXConfig, MambaConfig

from configuration import (
    BACKBONES,
    PRESETS,
    MambaVLConfig,
    PythiaVLConfig,
    VLConfig,
    backbone_spec,
    config_class_for_backbone,
)

CONFIG_CLASSES: dict[str, type[VLConfig]] = {"pythia": PythiaVLConfig, "mamba": MambaVLConfig}
TEXT_CONFIG_CLASSES = {"pythia": GPTNeoXConfig, "mamba": MambaConfig}


def _drop_path(config: VLConfig) -> dict[str, Any]:
    """``to_dict`` without the bookkeeping field set by ``from_pretrained``."""
    data = config.to_dict()
    data.pop("_name_or_path", None)
    return data


# ---------------------------------------------------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("backbone", "preset", "hidden", "layers"),
    [
        ("pythia", "1b", 2048, 16),
        ("pythia", "1.4b", 2048, 24),
        ("pythia", "2.8b", 2560, 32),
        ("mamba", "790m", 1536, 48),
        ("mamba", "1.4b", 2048, 48),
        ("mamba", "2.8b", 2560, 64),
    ],
)
def test_paper_presets_have_the_checkpoint_sizes(backbone: str, preset: str, hidden: int, layers: int) -> None:
    config = CONFIG_CLASSES[backbone].from_preset(preset)
    assert type(config) is CONFIG_CLASSES[backbone]
    assert isinstance(config.text_config, TEXT_CONFIG_CLASSES[backbone])
    assert config.text_config.hidden_size == hidden
    assert config.hidden_size == hidden
    assert config.text_config.num_hidden_layers == layers
    # The paper's EVA-02-L/14 at 336 px: a 24x24 grid of 1024-wide features.
    assert config.vision_config.model_type == "timm_wrapper"
    assert config.vision_hidden_size == 1024
    assert config.image_grid_size == 24
    assert config.num_image_tokens == 576
    # The `<image>` placeholder fits both padded vocabularies without resizing.
    assert config.image_token_id == 50277 < config.text_config.vocab_size
    assert config.text_model_id == PRESETS[backbone][preset].text_model_id
    assert config.text_model_id.split("/")[0] in ("EleutherAI", "state-spaces")


@pytest.mark.parametrize("backbone", ["pythia", "mamba"])
def test_model_types_and_tying(backbone: str) -> None:
    config = CONFIG_CLASSES[backbone].from_preset("tiny")
    spec = BACKBONES[backbone]
    assert config.model_type == spec.model_type == {"pythia": "pythia_vl", "mamba": "mamba_vl"}[backbone]
    assert config.text_config.model_type == spec.text_model_type == {"pythia": "gpt_neox", "mamba": "mamba"}[backbone]
    # Mamba ties its head to the embeddings, Pythia does not; the composite mirrors the language model.
    assert config.tie_word_embeddings is (backbone == "mamba")
    assert config.text_config.tie_word_embeddings is (backbone == "mamba")
    assert config.get_text_config() is config.text_config


def test_composite_tying_follows_the_text_config() -> None:
    text_config = {**PRESETS["mamba"]["tiny"].text_config, "tie_word_embeddings": False}
    assert MambaVLConfig.from_preset("tiny", text_config=text_config).tie_word_embeddings is False
    # An explicit composite value cannot contradict the language model.
    assert PythiaVLConfig.from_preset("tiny", tie_word_embeddings=True).tie_word_embeddings is False


@pytest.mark.parametrize("backbone", ["pythia", "mamba"])
def test_tiny_preset(backbone: str) -> None:
    config = CONFIG_CLASSES[backbone].from_preset("tiny")
    assert config.vision_config.model_type == "clip_vision_model"
    assert config.vision_hidden_size == config.vision_config.hidden_size == 32
    assert config.image_grid_size == config.vision_config.image_size // config.vision_config.patch_size == 4
    assert config.num_image_tokens == 16
    assert config.image_token_id == 1
    assert config.text_config.hidden_size == config.hidden_size == 64
    assert config.text_config.vocab_size == 512


def test_presets_are_not_shared_between_configs() -> None:
    config = PythiaVLConfig.from_preset("tiny")
    config.text_config.hidden_size = 8
    assert PRESETS["pythia"]["tiny"].text_config["hidden_size"] == 64
    assert PythiaVLConfig.from_preset("tiny").text_config.hidden_size == 64


def test_overrides_reach_the_config() -> None:
    config = PythiaVLConfig.from_preset("tiny", image_layout="flat", instruction_first=True, image_token_id=5)
    assert (config.image_layout, config.instruction_first, config.image_token_id) == ("flat", True, 5)


@pytest.mark.parametrize("backbone", ["pythia", "mamba"])
def test_defaults_build_without_arguments(backbone: str) -> None:
    config = CONFIG_CLASSES[backbone]()
    assert config.text_config.model_type == BACKBONES[backbone].text_model_type
    assert config.vision_config.model_type == "clip_vision_model"
    assert config.image_layout == "rows"
    assert config.instruction_first is False


# ---------------------------------------------------------------------------------------------------------------------
# Unknown names
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("backbone", "name"), [("pythia", "7b"), ("pythia", "790m"), ("mamba", "1b"), ("mamba", "")])
def test_unknown_preset_lists_the_valid_ones(backbone: str, name: str) -> None:
    with pytest.raises(ValueError, match="preset") as info:
        CONFIG_CLASSES[backbone].from_preset(name)
    message = str(info.value)
    assert repr(name) in message
    for valid in PRESETS[backbone]:
        assert valid in message


@pytest.mark.parametrize("lookup", [backbone_spec, config_class_for_backbone])
def test_unknown_backbone_lists_the_valid_ones(lookup: Any) -> None:
    with pytest.raises(ValueError, match="'gpt2'") as info:
        lookup("gpt2")
    assert "pythia" in str(info.value)
    assert "mamba" in str(info.value)


def test_known_backbones_resolve() -> None:
    assert config_class_for_backbone("pythia") is PythiaVLConfig
    assert config_class_for_backbone("mamba") is MambaVLConfig
    assert backbone_spec("mamba").display_name == "Mamba-VL"


# ---------------------------------------------------------------------------------------------------------------------
# Validation: each invalid field raises a ValueError naming it
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"image_layout": "grid"}, "image_layout"),
        ({"image_layout": "ROWS"}, "image_layout"),
        ({"image_grid_size": 0}, "image_grid_size"),
        ({"image_grid_size": -3}, "image_grid_size"),
        ({"image_grid_size": 2.5}, "image_grid_size"),
        ({"image_grid_size": True}, "image_grid_size"),
        ({"image_token_id": 512}, "image_token_id"),  # == vocab_size of the tiny preset
        ({"image_token_id": 10_000}, "image_token_id"),
        ({"image_token_id": -1}, "image_token_id"),
        ({"vision_hidden_size": 0}, "vision_hidden_size"),
        ({"boundary_token": ""}, "boundary_token"),
        ({"row_separator_token": ""}, "row_separator_token"),
        ({"text_config": 5}, "text_config"),
    ],
)
@pytest.mark.parametrize("backbone", ["pythia", "mamba"])
def test_invalid_field_raises_naming_it(backbone: str, overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=re.escape(field)):
        CONFIG_CLASSES[backbone].from_preset("tiny", **overrides)


def test_image_token_id_is_checked_against_the_text_vocabulary() -> None:
    text_config = {**PRESETS["pythia"]["tiny"].text_config, "vocab_size": 8}
    with pytest.raises(ValueError, match=r"image_token_id.*vocab_size=8"):
        PythiaVLConfig.from_preset("tiny", text_config=text_config, image_token_id=8)
    assert PythiaVLConfig.from_preset("tiny", text_config=text_config, image_token_id=7).image_token_id == 7


@pytest.mark.parametrize(
    ("config_class", "wrong_text"),
    [
        (PythiaVLConfig, {"model_type": "mamba", "vocab_size": 512}),
        (MambaVLConfig, {"model_type": "gpt_neox", "vocab_size": 512}),
        (MambaVLConfig, GPTNeoXConfig(vocab_size=512)),
        (PythiaVLConfig, {"model_type": "llama", "vocab_size": 512}),
    ],
)
def test_text_config_of_the_wrong_model_type_raises(config_class: type[VLConfig], wrong_text: Any) -> None:
    with pytest.raises(ValueError, match="text_config") as info:
        config_class.from_preset("tiny", text_config=wrong_text)
    needed = BACKBONES[config_class.backbone].text_model_type
    assert repr(needed) in str(info.value)


def test_text_config_object_is_kept() -> None:
    text_config = MambaConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1)
    config = MambaVLConfig.from_preset("tiny", text_config=text_config)
    assert config.text_config is text_config
    assert config.hidden_size == 16


# ---------------------------------------------------------------------------------------------------------------------
# Serialisation
# ---------------------------------------------------------------------------------------------------------------------
def _custom(backbone: str) -> VLConfig:
    return CONFIG_CLASSES[backbone].from_preset(
        "tiny",
        image_layout="flat",
        instruction_first=True,
        projector_hidden_act="relu",
        projector_bias=False,
        vision_feature_layer=-2,
        boundary_token="@@",
    )


def _assert_same_fields(loaded: VLConfig, original: VLConfig, backbone: str) -> None:
    assert type(loaded) is CONFIG_CLASSES[backbone]
    assert isinstance(loaded.text_config, TEXT_CONFIG_CLASSES[backbone])
    assert type(loaded.vision_config) is type(original.vision_config)
    for name in (
        "image_layout",
        "instruction_first",
        "projector_hidden_act",
        "projector_bias",
        "vision_feature_layer",
        "boundary_token",
        "row_separator_token",
        "image_grid_size",
        "image_token_id",
        "vision_hidden_size",
        "tie_word_embeddings",
    ):
        assert getattr(loaded, name) == getattr(original, name), name
    assert loaded.text_config.hidden_size == original.text_config.hidden_size
    assert loaded.text_config.num_hidden_layers == original.text_config.num_hidden_layers
    assert loaded.vision_config.to_dict() == original.vision_config.to_dict()
    assert _drop_path(loaded) == _drop_path(original)


@pytest.mark.parametrize("backbone", ["pythia", "mamba"])
def test_to_dict_from_dict_round_trip(backbone: str) -> None:
    original = _custom(backbone)
    data = original.to_dict()
    assert data["model_type"] == BACKBONES[backbone].model_type
    assert data["text_config"]["model_type"] == BACKBONES[backbone].text_model_type
    json.dumps(data)  # plain JSON all the way down
    _assert_same_fields(CONFIG_CLASSES[backbone].from_dict(data), original, backbone)


@pytest.mark.parametrize("backbone", ["pythia", "mamba"])
def test_save_and_auto_config_round_trip(backbone: str, tmp_path: Path) -> None:
    import modeling_vlm  # noqa: F401  (registers the model types with AutoConfig)

    original = _custom(backbone)
    original.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == BACKBONES[backbone].model_type
    assert saved["image_layout"] == "flat"
    _assert_same_fields(AutoConfig.from_pretrained(tmp_path), original, backbone)
    _assert_same_fields(CONFIG_CLASSES[backbone].from_pretrained(tmp_path), original, backbone)


def test_paper_preset_round_trips_with_its_timm_vision_config(tmp_path: Path) -> None:
    import modeling_vlm  # noqa: F401

    original = MambaVLConfig.from_preset("790m")
    original.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    _assert_same_fields(loaded, original, "mamba")
    assert loaded.vision_config.architecture == "eva02_large_patch14_clip_336"
    assert loaded.vision_hidden_size == 1024


def test_invalid_saved_config_fails_on_load(tmp_path: Path) -> None:
    import modeling_vlm  # noqa: F401

    PythiaVLConfig.from_preset("tiny").save_pretrained(tmp_path)
    path = tmp_path / "config.json"
    data = json.loads(path.read_text())
    data["image_layout"] = "spiral"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="image_layout"):
        AutoConfig.from_pretrained(tmp_path)
