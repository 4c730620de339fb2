"""Architecture configurations of Pythia-VL and Mamba-VL (no model code is imported here)."""

from .configuration_vlm import (
    BACKBONES,
    SUPPORTED_TRANSFORMERS,
    BackboneSpec,
    MambaVLConfig,
    PythiaVLConfig,
    VLConfig,
    backbone_for_text_config,
    backbone_spec,
    check_transformers_version,
    config_class_for_backbone,
)
from .presets import PRESETS, VLPreset

__all__ = [
    "BACKBONES",
    "PRESETS",
    "SUPPORTED_TRANSFORMERS",
    "BackboneSpec",
    "MambaVLConfig",
    "PythiaVLConfig",
    "VLConfig",
    "VLPreset",
    "backbone_for_text_config",
    "backbone_spec",
    "check_transformers_version",
    "config_class_for_backbone",
]
