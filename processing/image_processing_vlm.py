"""Image processor of Pythia-VL / Mamba-VL: RGB, bilinear resize to a square, rescale, CLIP normalisation.

The paper's EVA-02-L/14 at 336 px takes every image resized to 336x336 without aspect-ratio padding, scaled by
1/255 and normalised with the OpenAI-CLIP mean and std. The heavy lifting is transformers' ``PilBackend``; this file
adds what the paper's inputs need on top: any PIL mode (L, P, RGBA, CMYK, 16-bit, float) becomes 8-bit RGB, and an
image given as a path that cannot be decoded raises an error naming the file.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from transformers.image_processing_backends import PilBackend
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, PILImageResampling

from configuration.configuration_vlm import check_transformers_version

check_transformers_version()  # an exported copy may be loaded alone, by AutoImageProcessor

# PIL modes whose samples are wider than 8 bits; `Image.convert("RGB")` would clip them instead of rescaling.
_WIDE_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert a PIL image of any mode to 8-bit RGB (transparency composited on white, wide modes rescaled)."""
    if image.mode == "RGB":
        return image
    if image.mode in _WIDE_MODES:
        gray = _wide_to_uint8(np.asarray(image, dtype=np.float64), image.mode)  # (H, W)
        return Image.fromarray(gray).convert("RGB")  # a 2-D uint8 array is mode "L"
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _wide_to_uint8(array: np.ndarray, mode: str) -> np.ndarray:
    """Map samples of a wide mode to 0..255 by their nominal range (not the image's own, so flat images keep level)."""
    low, high = float(array.min()), float(array.max())
    if mode == "F" and low >= 0.0 and high <= 1.0:
        peak = 1.0  # float images in [0, 1]
    elif mode.startswith("I;16") or (high > 255 and high <= 65535 and low >= 0):
        peak = 65535.0  # 16-bit samples, also when PIL opened them as 32-bit "I"
    elif low >= 0 and high <= 255:
        peak = 255.0  # 8-bit samples stored in a wide mode
    else:  # values outside every nominal range: stretch what is there
        array, peak = array - low, max(high - low, 1e-12)
    return np.clip(np.rint(array / peak * 255.0), 0, 255).astype(np.uint8)


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """Open and fully decode an image file as RGB; raise ``ValueError`` naming the file if it is unreadable."""
    try:
        with Image.open(path) as image:
            image.load()  # decode now: a truncated file fails here, not later inside a batch
            return to_rgb(image)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"Image file not found: {os.fspath(path)!r}") from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"Cannot decode image file {os.fspath(path)!r}: {err}") from err


def _prepare(image: Any) -> Any:
    """Load paths and normalise PIL modes; arrays and tensors pass through unchanged."""
    if isinstance(image, (str, os.PathLike)):
        return load_image(image)
    if isinstance(image, Image.Image):
        return to_rgb(image)
    if isinstance(image, (list, tuple)):
        return [_prepare(item) for item in image]
    return image


class VLImageProcessor(PilBackend):
    r"""
    Image processor for Pythia-VL and Mamba-VL (saved as ``preprocessor_config.json``).

    Defaults follow the paper: bilinear resize to 336x336 (no padding, no crop), rescale by 1/255, normalise with
    the OpenAI-CLIP mean and std. Accepts PIL images of any mode, arrays, tensors, or image file paths.
    """

    model_input_names = ["pixel_values"]
    resample = PILImageResampling.BILINEAR
    image_mean = OPENAI_CLIP_MEAN
    image_std = OPENAI_CLIP_STD
    size = {"height": 336, "width": 336}
    default_to_square = True
    do_resize = True
    do_center_crop = False
    do_pad = False
    do_rescale = True
    do_normalize = True
    do_convert_rgb = True

    def preprocess(self, images: Any, *args: Any, **kwargs: Any) -> BatchFeature:
        """Convert inputs to RGB (loading paths) and run the resize / rescale / normalise pipeline."""
        return super().preprocess(_prepare(images), *args, **kwargs)


__all__ = ["VLImageProcessor", "load_image", "to_rgb"]
