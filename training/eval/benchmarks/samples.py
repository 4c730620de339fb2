"""A benchmark's records: :class:`EvalSample` (an image, a prompt, references) and :class:`BenchmarkResult`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from processing import load_image, to_rgb

__all__ = ["BenchmarkResult", "EvalSample"]


@dataclass(frozen=True)
class EvalSample:
    """One evaluation item: the image (by path, loaded lazily), the prompt and what the metric compares against.

    ``references`` holds caption strings (caption), the human answers (vqa), the gold answer (short_answer), the gold
    option letter (multiple_choice, pointing), ``"True"``/``"False"`` (vsr), ``"yes"``/``"no"`` (pope) or one
    normalised ``[x1, y1, x2, y2]`` box (grounding).
    """

    sample_id: str
    image_path: Path  # for an image embedded in a dataset: where it comes from, e.g. "lmms-lab/POPE/random/12"
    prompt: str
    references: list[Any]
    task: str
    extra: dict[str, Any] = field(default_factory=dict)
    image_loader: Callable[[], Image.Image] | None = field(default=None, compare=False, repr=False)

    @property
    def embedded(self) -> bool:
        """Whether the image comes from a dataset row rather than a file."""
        return self.image_loader is not None

    def load_image(self) -> Image.Image:
        """The image as RGB, converted exactly as in training and in the processor (transparency on white, 16-bit
        rescaled: :func:`processing.to_rgb`); FileNotFoundError naming the path when it is missing, ValueError when
        it cannot be decoded."""
        if self.image_loader is not None:
            try:
                image = self.image_loader()
                image.load()
                return to_rgb(image)
            except (OSError, SyntaxError, Image.DecompressionBombError) as err:
                where = f"the image of sample {self.sample_id!r} ({self.image_path})"
                raise ValueError(f"cannot decode {where}: {err}") from err
        if not self.image_path.is_file():
            raise FileNotFoundError(f"image of sample {self.sample_id!r} not found: {self.image_path}")
        return load_image(self.image_path)


@dataclass(frozen=True)
class BenchmarkResult:
    """Scores of one benchmark run: all metrics, the headline one, per-sample scores and notes (e.g. tokenizer)."""

    benchmark: str
    primary_metric: str
    scores: dict[str, float]
    per_sample: list[float]
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def primary(self) -> float:
        """The headline score (``scores[primary_metric]``)."""
        return self.scores[self.primary_metric]
