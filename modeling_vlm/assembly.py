"""Assemble a new vision-language model from pretrained parts: only the projector starts from random weights.

This is how the paper's models begin stage 1: a pretrained vision encoder (EVA-02-L/14 through timm, or a CLIP /
SigLIP vision tower) and a pretrained language model (Pythia or Mamba), joined by a freshly initialised projector.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, PretrainedConfig

from configuration import BACKBONES, config_class_for_backbone

from .modeling_vlm import MODEL_CLASSES, VLForConditionalGeneration


def _vision_config(config: PretrainedConfig) -> PretrainedConfig:
    """A full CLIP / SigLIP checkpoint carries its vision tower's config as ``vision_config``."""
    return getattr(config, "vision_config", None) or config


def _backbone_of(text_config: PretrainedConfig) -> str:
    """The backbone whose language model type matches `text_config` (data lookup, not a name test)."""
    for name, spec in BACKBONES.items():
        if spec.text_model_type == text_config.model_type:
            return name
    valid = ", ".join(spec.text_model_type for spec in BACKBONES.values())
    raise ValueError(f"Language model type {text_config.model_type!r} is not supported; valid types are: {valid}.")


def _grid_size(vision_config: PretrainedConfig, image_grid_size: int | None) -> int:
    """Patches per side: given, or image_size // patch_size from a ViT config."""
    if image_grid_size is not None:
        return image_grid_size
    image_size, patch_size = getattr(vision_config, "image_size", None), getattr(vision_config, "patch_size", None)
    if image_size and patch_size:
        return int(image_size) // int(patch_size)
    raise ValueError(
        f"Cannot infer image_grid_size from the {vision_config.model_type!r} vision config; pass image_grid_size "
        "(24 for EVA-02-L/14 at 336 px)."
    )


def assemble_from_pretrained(
    vision_model_name_or_path: str | os.PathLike[str],
    language_model_name_or_path: str | os.PathLike[str],
    *,
    image_grid_size: int | None = None,
    dtype: torch.dtype | None = None,
    **config_kwargs: Any,
) -> VLForConditionalGeneration:
    """
    Build Pythia-VL or Mamba-VL (picked from the language model's type) from a pretrained vision model and language
    model (hub ids or local paths). Both parts keep their pretrained weights; only the projector is initialised.
    `config_kwargs` set the composite config's other fields (e.g. ``image_token_id``, ``image_layout``).
    """
    text_config = AutoConfig.from_pretrained(language_model_name_or_path)
    vision_config = _vision_config(AutoConfig.from_pretrained(vision_model_name_or_path))
    backbone = _backbone_of(text_config)
    config = config_class_for_backbone(backbone)(
        vision_config=vision_config,
        text_config=text_config,
        image_grid_size=_grid_size(vision_config, image_grid_size),
        vision_model_id=os.fspath(vision_model_name_or_path),
        text_model_id=os.fspath(language_model_name_or_path),
        **config_kwargs,
    )
    # Build the composite on the meta device (no memory, no random init of the towers), then put the real parts in.
    with torch.device("meta"):
        model = MODEL_CLASSES[backbone](config)
    model.vision_tower = AutoModel.from_pretrained(vision_model_name_or_path, config=vision_config, dtype=dtype)
    model.language_model = AutoModelForCausalLM.from_pretrained(language_model_name_or_path, dtype=dtype)
    projector_dtype = dtype or torch.get_default_dtype()
    model.multi_modal_projector.to_empty(device=model.language_model.device).to(projector_dtype)
    model._init_weights(model.multi_modal_projector)
    model.freeze_vision_tower()
    return model
