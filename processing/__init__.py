"""Preprocessing of Pythia-VL / Mamba-VL inputs: the image processor and the multimodal processor."""

from .image_processing_vlm import VLImageProcessor, load_image, to_rgb
from .layout import (
    BOUNDARY_TOKEN,
    IGNORE_INDEX,
    IMAGE_TOKEN,
    LAYOUT_TOKENS,
    ROW_SEPARATOR_TOKEN,
    image_block_ids,
    move_instruction_first,
)
from .processing_vlm import CHAT_TEMPLATE, VLProcessor

__all__ = [
    "BOUNDARY_TOKEN",
    "CHAT_TEMPLATE",
    "IGNORE_INDEX",
    "IMAGE_TOKEN",
    "LAYOUT_TOKENS",
    "ROW_SEPARATOR_TOKEN",
    "VLImageProcessor",
    "VLProcessor",
    "image_block_ids",
    "load_image",
    "move_instruction_first",
    "to_rgb",
]
