"""Registration of Pythia-VL and Mamba-VL with the transformers Auto classes (run once by ``import modeling_vlm``)."""

from __future__ import annotations

from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText, AutoProcessor

# The class itself: older 5.x releases export a placeholder needing torchvision as `transformers.AutoImageProcessor`.
from transformers.models.auto.image_processing_auto import AutoImageProcessor

from configuration import MambaVLConfig, PythiaVLConfig
from processing import VLImageProcessor, VLProcessor

from .modeling_vlm import MambaVLForConditionalGeneration, PythiaVLForConditionalGeneration


def register_auto_classes() -> None:
    """Register both model types with AutoConfig, AutoModel(ForImageTextToText), AutoProcessor, AutoImageProcessor."""
    pairs = ((PythiaVLConfig, PythiaVLForConditionalGeneration), (MambaVLConfig, MambaVLForConditionalGeneration))
    for config_class, model_class in pairs:
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        AutoModel.register(config_class, model_class, exist_ok=True)
        AutoModelForImageTextToText.register(config_class, model_class, exist_ok=True)
        AutoProcessor.register(config_class, VLProcessor, exist_ok=True)
        _register_image_processor(config_class)


def _register_image_processor(config_class: type) -> None:
    """Map a config to :class:`VLImageProcessor` in AutoImageProcessor, across transformers 5.x releases."""
    try:  # transformers >= 5.2x names backends explicitly
        AutoImageProcessor.register(config_class, image_processor_classes={"pil": VLImageProcessor}, exist_ok=True)
    except TypeError:
        AutoImageProcessor.register(config_class, slow_image_processor_class=VLImageProcessor, exist_ok=True)
