"""Whether a training source holds what ``vlm eval`` scores: its images and prompts against the evaluation split.

Each reader is paired with the benchmarks whose evaluation split could share its images (:data:`LEAK_CHECKS`: the
same dataset's test split, and COCO Karpathy test for the sources drawn from COCO 2017, whose train images include
most of val2014). The benchmarks' files are read from the data root laid out as ``vlm eval --list`` says. Images are
compared by COCO id where the file name carries one (``COCO_val2014_000000000042.jpg`` and ``000000000042.jpg`` are
one image), else by file name; an item is an image with its prompt.

A shared item (the same image with the same prompt) is a leak; shared images under different prompts are reported
beside it, as VSR's random split and COCO 2017 training sources share images with their test sets by design.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..eval.benchmarks import get_benchmark
from .readers.conversation import Conversation

__all__ = ["LEAK_CHECKS", "LeakReport", "check_leaks", "image_key"]

LEAK_CHECKS: Mapping[str, tuple[str, ...]] = {
    "coco_captions": ("coco_karpathy_test",),
    "llava_instruct": ("coco_karpathy_test",),
    "aokvqa": ("coco_karpathy_test",),
    "vqav2": ("vqav2_val",),
    "gqa": ("gqa_testdev",),
    "ai2d": ("ai2d_test",),
    "textcaps": ("textcaps_val",),
    "refcoco": ("refcoco_testA", "refcoco_testB"),
    "refcoco+": ("refcoco+_testA", "refcoco+_testB"),
    "refcocog": ("refcocog_test",),
    "visual7w": ("v7w_telling",),
    "vsr": ("vsr_test",),
}
"""Reader -> the benchmarks whose evaluation split it is checked against."""

_COCO = re.compile(r"(?:COCO_(?:train|val|test)20\d\d_)?(\d{12})\.jpg$")


def image_key(path: str | Path) -> str:
    """The identity of an image: ``coco:<id>`` for COCO file names, else the file name."""
    name = Path(path).name
    match = _COCO.fullmatch(name)
    return f"coco:{int(match.group(1))}" if match else name


@dataclass
class LeakReport:
    """One training source against one benchmark's evaluation split."""

    benchmark: str
    shared_items: int = 0  # the same image with the same prompt: trained on what is scored
    shared_images: int = 0  # images in both, under different prompts
    training_images: int = 0
    evaluation_images: int = 0
    examples: list[str] = field(default_factory=list)
    error: str | None = None  # why the check could not run (the benchmark's files are missing, ...)

    @property
    def status(self) -> str:
        """``leak``, ``shared images``, ``clean`` or ``not checked``."""
        if self.error:
            return "not checked"
        return "leak" if self.shared_items else "shared images" if self.shared_images else "clean"


def _training_items(conversations: Iterable[Conversation]) -> tuple[set[str], set[tuple[str, str]]]:
    images, items = set(), set()
    for conversation in conversations:
        if conversation.image_path is None:
            continue
        key = image_key(conversation.image_path)
        images.add(key)
        items.update((key, user) for user, _ in conversation.turns)
    return images, items


def _evaluation_samples(benchmark: str, data_root: Path) -> Sequence[Any]:
    spec = get_benchmark(benchmark)
    location = spec.location
    images = [data_root / folder for folder in location.images]
    return spec.load_with_report(data_root / location.annotations, images)[0]


def check_leaks(reader: str, conversations: Sequence[Conversation], data_root: str | Path) -> list[LeakReport]:
    """One report per benchmark of :data:`LEAK_CHECKS` for `reader` (none for a reader without one)."""
    images, items = _training_items(conversations)
    reports = []
    for benchmark in LEAK_CHECKS.get(reader, ()):
        report = LeakReport(benchmark, training_images=len(images))
        try:
            samples = _evaluation_samples(benchmark, Path(data_root))
        except (FileNotFoundError, ValueError) as err:
            report.error = str(err)
            reports.append(report)
            continue
        eval_images = {image_key(s.image_path) for s in samples}
        shared = [(image_key(s.image_path), s.prompt) for s in samples if (image_key(s.image_path), s.prompt) in items]
        report.evaluation_images = len(eval_images)
        report.shared_items = len(set(shared))
        report.shared_images = len(images & eval_images)
        report.examples = [f"{key}: {prompt!r}" for key, prompt in shared[:2]] or sorted(images & eval_images)[:2]
        reports.append(report)
    return reports
