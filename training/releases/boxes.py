"""Annotation boxes that cannot be scored: degenerate, not finite, or outside their image."""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["box_problem"]


def box_problem(bbox: Iterable[float], width: float, height: float) -> str | None:
    """Why an ``[x, y, w, h]`` pixel box cannot be scored (degenerate, not finite, outside the image), or None."""
    x, y, w, h = bbox
    if not all(math.isfinite(v) for v in (x, y, w, h)) or not (width > 0 and height > 0):
        return "box or image size not finite"
    if w <= 0 or h <= 0:
        return "degenerate box (zero or negative width or height)"
    if x < -1 or y < -1 or x + w > width + 1 or y + h > height + 1:  # a pixel of slack for rounding in the release
        return "box outside the image"
    return None
