"""Composite configurations of Pythia-VL and Mamba-VL: vision tower + MLP projector + language model.

One design, two registered model types. ``config.json`` says which backbone it holds through ``model_type``
(``pythia_vl`` or ``mamba_vl``) and ``text_config.model_type`` (``gpt_neox`` or ``mamba``); everything that differs
between the two backbones is data in :data:`BACKBONES`, never a branch on a name.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Any, ClassVar

import transformers
from packaging.version import Version
from transformers import AutoConfig, PretrainedConfig

from .presets import PRESETS, VLPreset

IMAGE_LAYOUTS = ("rows", "flat")
TEXT_NORMS = ("rms_norm", "layer_norm")
SUPPORTED_TRANSFORMERS = ("5.17", "6")
"""transformers releases this code supports: from the first (included) to the second (excluded)."""


def check_transformers_version(version: str | None = None) -> None:
    """Raise ``ImportError`` naming the supported range when the installed transformers is outside it."""
    version = version or transformers.__version__
    low, high = SUPPORTED_TRANSFORMERS
    if not Version(low) <= Version(Version(version).base_version) < Version(high):
        raise ImportError(
            f"Pythia-VL / Mamba-VL support transformers {low} to {int(Version(high).major) - 1}.x, but "
            f"transformers {version} is installed: pip install 'transformers>={low},<{high}'."
        )


check_transformers_version()


@dataclass(frozen=True)
class BackboneSpec:
    """What a config needs to know about one language backbone."""

    model_type: str  # the composite model type, e.g. "mamba_vl"
    text_model_type: str  # the language model's own model type, e.g. "mamba"
    display_name: str  # e.g. "Mamba-VL"


BACKBONES: dict[str, BackboneSpec] = {
    "pythia": BackboneSpec(model_type="pythia_vl", text_model_type="gpt_neox", display_name="Pythia-VL"),
    "mamba": BackboneSpec(model_type="mamba_vl", text_model_type="mamba", display_name="Mamba-VL"),
}


def backbone_spec(name: str) -> BackboneSpec:
    """Return the spec of a backbone by name ("pythia" or "mamba"), or raise naming the valid ones."""
    if name not in BACKBONES:
        raise ValueError(f"Unknown backbone {name!r}; valid backbones are: {', '.join(sorted(BACKBONES))}.")
    return BACKBONES[name]


def _resolve_sub_config(
    key: str, value: PretrainedConfig | dict[str, Any] | None, default_model_type: str
) -> PretrainedConfig:
    """Turn a sub-config given as a dict (or None) into a config object through ``AutoConfig``."""
    if isinstance(value, PretrainedConfig):
        return value
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ValueError(f"`{key}` must be a dict or a PretrainedConfig, got {type(value).__name__}.")
    kwargs = dict(value)
    model_type = kwargs.pop("model_type", default_model_type)
    return AutoConfig.for_model(model_type, **kwargs)


class VLConfig(PretrainedConfig):
    r"""
    Base configuration of a vision-language model: a frozen vision tower, an MLP projector and a causal LM.

    Args:
        vision_config (`dict` or `PretrainedConfig`, *optional*):
            The vision tower's config (CLIP/SigLIP vision, or `timm_wrapper` for EVA-02). Defaults to a CLIP vision
            config; use a preset for the paper's EVA-02-L/14.
        text_config (`dict` or `PretrainedConfig`, *optional*):
            The language model's config. Its `model_type` must be the backbone's (`gpt_neox` or `mamba`).
        image_token_id (`int`):
            Placeholder id whose embeddings are replaced by projected image features.
        image_grid_size (`int`):
            Patches per image side; the model receives `image_grid_size**2` image features (24 -> 576).
        image_layout (`str`):
            `"rows"` (the paper): a boundary marker, each row of patches followed by a row separator, the last
            separator replaced by the boundary marker. `"flat"`: the patches alone, as in LLaVA.
        instruction_first (`bool`):
            The paper's "task-aware" encoding: the task instruction is placed before the image block.
        boundary_token / row_separator_token (`str`):
            The layout's marker tokens (the paper reuses GPT-NeoX's `###` and `&&`).
        projector_hidden_act (`str`): activation between the projector's two linear layers.
        projector_bias (`bool`): whether the projector's linear layers have biases.
        vision_feature_layer (`int`): which vision hidden state feeds the projector (-1: the last, as in the paper).
            The tower's prefix tokens (CLS, registers) are always dropped: only the `image_grid_size**2` patches
            reach the language model.
        vision_hidden_size (`int`, *optional*):
            Width of the vision features; read from `vision_config` (`hidden_size` or timm's `num_features`) when
            omitted.
        text_model_id / vision_model_id (`str`, *optional*):
            Hub ids (or paths) of the pretrained parts the model was assembled from; informational.
    """

    backbone: ClassVar[str] = ""
    sub_configs = {"vision_config": AutoConfig, "text_config": AutoConfig}

    vision_config: dict | PretrainedConfig | None = None
    text_config: dict | PretrainedConfig | None = None
    image_token_id: int = 50277
    image_grid_size: int = 24
    image_layout: str = "rows"
    instruction_first: bool = False
    boundary_token: str = "###"
    row_separator_token: str = "&&"
    projector_hidden_act: str = "gelu"
    projector_bias: bool = True
    vision_feature_layer: int = -1
    vision_hidden_size: int | None = None
    text_model_id: str | None = None
    vision_model_id: str | None = None
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs: Any) -> None:
        spec = backbone_spec(self.backbone)
        self.vision_config = _resolve_sub_config("vision_config", self.vision_config, "clip_vision_model")
        self.text_config = _resolve_sub_config("text_config", self.text_config, spec.text_model_type)
        # The language model owns its head; mirror its tying so `PreTrainedModel` ties (Mamba) or not (Pythia).
        self.tie_word_embeddings = bool(getattr(self.text_config, "tie_word_embeddings", False))
        if self.vision_hidden_size is None and not getattr(self.vision_config, "model_args", None):
            # timm model_args may change the width, so `num_features` then says nothing: the model reads the tower.
            self.vision_hidden_size = getattr(self.vision_config, "hidden_size", None) or getattr(
                self.vision_config, "num_features", None
            )
        super().__post_init__(**kwargs)
        self._validate_fields(spec)

    def _validate_fields(self, spec: BackboneSpec) -> None:
        """Raise a ValueError naming the first invalid field."""
        if self.text_config.model_type != spec.text_model_type:
            raise ValueError(
                f"text_config.model_type={self.text_config.model_type!r} does not match the {spec.display_name} "
                f"backbone, which needs {spec.text_model_type!r}."
            )
        if self.image_layout not in IMAGE_LAYOUTS:
            raise ValueError(f"image_layout={self.image_layout!r} is not one of {IMAGE_LAYOUTS}.")
        for name in ("instruction_first", "projector_bias"):
            if not isinstance(getattr(self, name), bool):  # a "false" string from a hand-edited config.json is truthy
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}.")
        for name in ("image_grid_size", "vision_hidden_size"):
            value = getattr(self, name)
            if value is None and name == "vision_hidden_size" and self.vision_config.model_type == "timm_wrapper":
                continue  # a timm config names its width only through the architecture: the model reads it
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        vocab_size = self.text_config.vocab_size
        if not 0 <= self.image_token_id < vocab_size:
            raise ValueError(
                f"image_token_id={self.image_token_id} is outside the language model's vocabulary "
                f"(text_config.vocab_size={vocab_size})."
            )
        if not self.boundary_token or not self.row_separator_token:
            raise ValueError("boundary_token and row_separator_token must be non-empty strings.")

    @property
    def num_image_tokens(self) -> int:
        """Number of image features (patches) the projector emits per image."""
        return self.image_grid_size**2

    @property
    def hidden_size(self) -> int:
        """Width of the language model (also the projector's output width)."""
        return self.text_config.hidden_size

    def get_text_config(self, *args: Any, **kwargs: Any) -> PretrainedConfig:
        """Return the language model's config (used by generation and PEFT)."""
        return self.text_config

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> VLConfig:
        """Build the config of a named preset (e.g. ``MambaVLConfig.from_preset("1.4b")``), offline."""
        presets = PRESETS[cls.backbone]
        if name not in presets:
            raise ValueError(
                f"Unknown {BACKBONES[cls.backbone].display_name} preset {name!r}; valid presets are: "
                f"{', '.join(presets)}."
            )
        preset: VLPreset = presets[name]
        kwargs = {
            "vision_config": copy.deepcopy(preset.vision_config),
            "text_config": copy.deepcopy(preset.text_config),
            "image_grid_size": preset.image_grid_size,
            "image_token_id": preset.image_token_id,
            "text_model_id": preset.text_model_id,
            "vision_model_id": preset.vision_model_id,
            **overrides,
        }
        return cls(**kwargs)

    @classmethod
    def from_pretrained_parts(
        cls,
        vision_model_name_or_path: str | os.PathLike[str],
        language_model_name_or_path: str | os.PathLike[str],
        *,
        image_grid_size: int | None = None,
        **kwargs: Any,
    ) -> VLConfig:
        """The composite config of a pretrained vision model and language model (hub ids or local folders).

        The backbone follows the language model's ``model_type``; called on a backbone's class, a language model of
        the other backbone is refused. ``image_grid_size`` defaults to ``image_size // patch_size`` of a ViT config.
        """
        text_config = AutoConfig.from_pretrained(language_model_name_or_path)
        vision_config = AutoConfig.from_pretrained(vision_model_name_or_path)
        # A full CLIP / SigLIP checkpoint carries its vision tower's config as `vision_config`.
        vision_config = getattr(vision_config, "vision_config", None) or vision_config
        config_class = CONFIG_CLASSES[backbone_for_text_config(text_config)]
        if not issubclass(config_class, cls):
            raise ValueError(
                f"{os.fspath(language_model_name_or_path)!r} is a {text_config.model_type!r} language model, which "
                f"builds a {config_class.__name__}, not a {cls.__name__}."
            )
        return config_class(
            vision_config=vision_config,
            text_config=text_config,
            image_grid_size=image_grid_size if image_grid_size is not None else _grid_size(vision_config),
            vision_model_id=os.fspath(vision_model_name_or_path),
            text_model_id=os.fspath(language_model_name_or_path),
            **kwargs,
        )


def backbone_for_text_config(text_config: PretrainedConfig) -> str:
    """The backbone whose language model type is ``text_config.model_type`` (a data lookup, not a name test)."""
    for name, spec in BACKBONES.items():
        if spec.text_model_type == text_config.model_type:
            return name
    valid = ", ".join(spec.text_model_type for spec in BACKBONES.values())
    raise ValueError(f"Language model type {text_config.model_type!r} is not supported; valid types are: {valid}.")


def _grid_size(vision_config: PretrainedConfig) -> int:
    """Patches per side of a ViT config: ``image_size // patch_size``."""
    image_size, patch_size = getattr(vision_config, "image_size", None), getattr(vision_config, "patch_size", None)
    if image_size and patch_size:
        return int(image_size) // int(patch_size)
    raise ValueError(
        f"Cannot infer image_grid_size from the {vision_config.model_type!r} vision config; pass image_grid_size "
        "(24 for EVA-02-L/14 at 336 px)."
    )


class PythiaVLConfig(VLConfig):
    """Configuration of Pythia-VL: the vision-language model on a GPT-NeoX (Pythia) language model."""

    model_type = "pythia_vl"
    backbone: ClassVar[str] = "pythia"


class MambaVLConfig(VLConfig):
    """Configuration of Mamba-VL: the vision-language model on a Mamba language model.

    Args:
        text_norm (`str`): the norm of every Mamba block and of the final layer: `"rms_norm"` (transformers' Mamba,
            the default) or `"layer_norm"` (LayerNorm with a bias: what the paper's released checkpoints hold, although
            their config says `rms_norm: true`).
    """

    model_type = "mamba_vl"
    backbone: ClassVar[str] = "mamba"

    text_norm: str = "rms_norm"

    def _validate_fields(self, spec: BackboneSpec) -> None:
        """Raise a ValueError naming the first invalid field."""
        super()._validate_fields(spec)
        if self.text_norm not in TEXT_NORMS:
            raise ValueError(f"text_norm={self.text_norm!r} is not one of {TEXT_NORMS}.")


CONFIG_CLASSES: dict[str, type[VLConfig]] = {"pythia": PythiaVLConfig, "mamba": MambaVLConfig}


def config_class_for_backbone(name: str) -> type[VLConfig]:
    """Return the config class of a backbone name, or raise listing the valid ones."""
    backbone_spec(name)
    return CONFIG_CLASSES[name]


__all__ = [
    "BACKBONES",
    "SUPPORTED_TRANSFORMERS",
    "BackboneSpec",
    "MambaVLConfig",
    "PythiaVLConfig",
    "VLConfig",
    "backbone_for_text_config",
    "backbone_spec",
    "check_transformers_version",
    "config_class_for_backbone",
]
