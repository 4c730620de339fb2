"""Pythia-VL and Mamba-VL models; importing this package registers them with the transformers Auto classes."""

from configuration import MambaVLConfig, PythiaVLConfig, VLConfig
from processing import VLImageProcessor, VLProcessor

from .modeling_vlm import (
    MODEL_CLASSES,
    MambaVLForConditionalGeneration,
    PythiaVLForConditionalGeneration,
    VLCausalLMOutputWithPast,
    VLForConditionalGeneration,
    VLMultiModalProjector,
    VLPreTrainedModel,
    generation_cache,
)
from .registration import register_auto_classes

register_auto_classes()

__all__ = [
    "MODEL_CLASSES",
    "MambaVLConfig",
    "MambaVLForConditionalGeneration",
    "PythiaVLConfig",
    "PythiaVLForConditionalGeneration",
    "VLCausalLMOutputWithPast",
    "VLConfig",
    "VLForConditionalGeneration",
    "VLImageProcessor",
    "VLMultiModalProjector",
    "VLPreTrainedModel",
    "VLProcessor",
    "generation_cache",
]
