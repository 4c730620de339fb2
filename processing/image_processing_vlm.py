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
    """Convert a PIL image of any mode to 8-bit RGB, deciding by the mode alone:

    - transparency (an alpha band, or a palette / ``transparency`` entry) is composited on white;
    - ``I;16*`` and ``I`` (how PIL opens 16-bit PNG and TIFF files) are 16-bit samples: 0..65535 maps to 0..255, and a
      value outside that range raises;
    - ``F`` is float samples in [0, 1]; a value outside raises;
    - every other mode converts with PIL.

    An empty (zero-size) image raises ``ValueError``.
    """
    if image.width == 0 or image.height == 0:
        raise ValueError(f"empty image ({image.width}x{image.height})")
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
    """Map the samples of a wide mode to 0..255 by the mode's nominal range; ValueError for values outside it."""
    peak = 1.0 if mode == "F" else 65535.0
    low, high = float(np.nanmin(array)), float(np.nanmax(array))
    if not (np.isfinite(array).all() and low >= 0.0 and high <= peak):
        raise ValueError(
            f"mode {mode!r} image with samples in [{low:g}, {high:g}]: expected [0, {peak:g}] "
            f"({'float in [0, 1]' if mode == 'F' else '16-bit'}); convert it to 8-bit RGB first"
        )
    return np.clip(np.rint(array / peak * 255.0), 0, 255).astype(np.uint8)


def _channels_last(array: np.ndarray, channels_first: bool) -> np.ndarray:
    """(H, W) or a 3-D array with 1, 3 or 4 channels -> (H, W, C): channels first for tensors (torchvision's
    layout), last for arrays (numpy / PIL's), the other way only when the expected axis cannot be channels."""
    if array.ndim == 2:
        return array[:, :, None]
    if array.ndim != 3:
        raise ValueError(f"an image array must be (H, W), (H, W, C) or (C, H, W); got shape {array.shape}")
    first, last = array.shape[0] in (1, 3, 4), array.shape[-1] in (1, 3, 4)
    if first and (channels_first or not last):
        return np.moveaxis(array, 0, -1)
    if last:
        return array
    raise ValueError(f"image array of shape {array.shape} has no 1, 3 or 4-channel axis")


def array_to_image(value: Any) -> Image.Image:
    """An array or tensor as an RGB image, deciding by dtype: ``uint8`` is 0..255, ``uint16`` 0..65535, floats are
    [0, 1] (the torchvision convention; values outside raise), anything else raises; an empty array raises.
    Tensors are (C, H, W), arrays (H, W, C), unless only the other layout has a channel axis."""
    is_tensor = hasattr(value, "detach")
    array = np.asarray(value.detach().cpu() if is_tensor else value)
    if array.size == 0:
        raise ValueError(f"empty image array (shape {array.shape})")
    array = _channels_last(array, channels_first=is_tensor)
    if array.dtype == np.uint8:
        pixels = array
    elif array.dtype == np.uint16:
        pixels = np.rint(array.astype(np.float64) / 65535.0 * 255.0).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        low, high = float(np.nanmin(array)), float(np.nanmax(array))
        if not (np.isfinite(array).all() and low >= 0.0 and high <= 1.0):
            raise ValueError(f"float image values must lie in [0, 1] (got [{low:g}, {high:g}]); pass uint8 for 0..255")
        pixels = np.rint(array.astype(np.float64) * 255.0).astype(np.uint8)
    else:
        raise ValueError(f"image array of dtype {array.dtype} is ambiguous: pass uint8 (0..255) or float (0..1)")
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[pixels.shape[-1]]
    return to_rgb(Image.fromarray(pixels[:, :, 0] if mode == "L" else pixels, mode=mode))


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """Open and fully decode an image file as RGB; raise ``FileNotFoundError`` / ``ValueError`` naming the file when
    it is missing, not a regular file (a FIFO or device would block), unreadable, too large or empty."""
    if not os.path.isfile(path):
        kind = "not found" if not os.path.lexists(path) else "not a regular file"
        raise FileNotFoundError(f"Image file {kind}: {os.fspath(path)!r}")
    try:
        with Image.open(path) as image:
            image.load()  # decode now: a truncated file fails here, not later inside a batch
            return to_rgb(image)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"Image file not found: {os.fspath(path)!r}") from err
    except Image.DecompressionBombError as err:
        raise ValueError(f"Image file {os.fspath(path)!r} is too large to decode safely: {err}") from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"Cannot decode image file {os.fspath(path)!r}: {err}") from err


def _prepare(image: Any) -> Any:
    """Load paths, normalise PIL modes and turn arrays / tensors into RGB images (see :func:`array_to_image`)."""
    if isinstance(image, (str, os.PathLike)):
        return load_image(image)
    if isinstance(image, Image.Image):
        return to_rgb(image)
    if isinstance(image, (list, tuple)):
        return [_prepare(item) for item in image]
    if hasattr(image, "shape") and len(image.shape) == 4:  # a batch (N, ...) of images
        return [array_to_image(item) for item in image]
    return array_to_image(image)


class VLImageProcessor(PilBackend):
    r"""
    Image processor for Pythia-VL and Mamba-VL (saved as ``preprocessor_config.json``).

    Defaults follow the paper: bilinear resize to 336x336 (no padding, no crop), rescale by 1/255, normalise with
    the OpenAI-CLIP mean and std. Accepts PIL images of any mode (:func:`to_rgb`), image file paths
    (:func:`load_image`), and arrays or tensors decided by dtype (:func:`array_to_image`: uint8 0..255, floats 0..1).
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


__all__ = ["VLImageProcessor", "array_to_image", "load_image", "to_rgb"]
