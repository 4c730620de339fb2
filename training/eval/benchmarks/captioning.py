"""Captioning benchmarks: COCO Karpathy test, NoCaps val and TextCaps val, scored by CIDEr."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ...templates import CAPTION_PROMPT
from .files import field, list_field, read_json, read_records, str_field
from .samples import EvalSample
from .spec import BenchmarkSpec, ImageFolders, Location, benchmark_spec

__all__ = ["SPECS"]


def _read_coco_karpathy(paths: Mapping[str, Path], images: ImageFolders, split: str | None) -> Iterator[EvalSample]:
    """COCO Karpathy split (``dataset_coco.json``): images[] with split, filepath, filename, sentences[].raw."""
    path = paths["annotations"]
    for i, image in enumerate(list_field(read_json(path), "images", str(path))):
        where = f"{path} images[{i}]"
        if field(image, "split", where) != (split or "test"):
            continue
        sentences = list_field(image, "sentences", where)
        refs = [str_field(s, "raw", f"{where}.sentences[{j}]") for j, s in enumerate(sentences)]
        if not refs:
            raise ValueError(f"{where}: no reference sentences")
        filename = str_field(image, "filename", where)
        sample_id = str(image.get("cocoid", image.get("imgid", i)))
        yield EvalSample(
            sample_id, images.path(Path(image.get("filepath", ""), filename)), CAPTION_PROMPT, refs, "caption", {}
        )


def _read_nocaps(paths: Mapping[str, Path], images: ImageFolders, split: str | None) -> Iterator[EvalSample]:
    """NoCaps val (COCO-style): images[] {id, file_name, domain} and annotations[] {image_id, caption}."""
    path = paths["annotations"]
    data = read_json(path)
    captions: dict[Any, list[str]] = {}
    for j, ann in enumerate(list_field(data, "annotations", str(path))):
        where = f"{path} annotations[{j}]"
        captions.setdefault(field(ann, "image_id", where), []).append(str_field(ann, "caption", where))
    for i, image in enumerate(list_field(data, "images", str(path))):
        where = f"{path} images[{i}]"
        image_id = field(image, "id", where)
        if image_id not in captions:
            raise ValueError(f"{where}: image id {image_id!r} has no captions in 'annotations'")
        extra = {"domain": image["domain"]} if "domain" in image else {}
        file_name = str_field(image, "file_name", where)
        yield EvalSample(str(image_id), images.path(file_name), CAPTION_PROMPT, captions[image_id], "caption", extra)


def _read_textcaps(paths: Mapping[str, Path], images: ImageFolders, split: str | None) -> Iterator[EvalSample]:
    """TextCaps val: data[] with image_id and reference_strs (or one caption_str per entry), grouped by image."""
    path = paths["annotations"]
    refs: dict[str, list[str]] = {}
    for i, entry in enumerate(read_records(path)):
        where = f"{path} data[{i}]"
        image_id = str(field(entry, "image_id", where))
        if "reference_strs" in entry:
            strs = list_field(entry, "reference_strs", where)
            if image_id not in refs:
                refs[image_id] = [s.strip() for s in strs if isinstance(s, str) and s.strip()]
        elif "caption_str" in entry:
            refs.setdefault(image_id, []).append(str_field(entry, "caption_str", where))
        else:
            raise ValueError(f"{where}: missing field 'reference_strs' (or 'caption_str')")
    for image_id, captions in refs.items():
        if not captions:
            raise ValueError(f"{path}: image {image_id!r} has no reference captions")
        yield EvalSample(image_id, images.path(f"{image_id}.jpg"), CAPTION_PROMPT, captions, "caption", {})


SPECS: tuple[BenchmarkSpec, ...] = (
    benchmark_spec("coco_karpathy_test", "caption", "COCO captions, Karpathy split (5,000 test images)",
                   {"annotations": "dataset_coco.json"}, _read_coco_karpathy, split="test", splits=("test", "val"),
                   release="Karpathy's dataset_coco.json (cs.stanford.edu/people/karpathy/deepimagesent) + COCO 2014",
                   location=Location("coco", ("coco",))),
    benchmark_spec("nocaps_val", "caption", "NoCaps validation (4,500 images; CIDEr overall and per domain)",
                   {"annotations": "nocaps_val_4500_captions.json"}, _read_nocaps,
                   release="https://nocaps.org/download (nocaps_val_4500_captions.json + Open Images val images)",
                   location=Location("nocaps", ("nocaps/images",))),
    benchmark_spec("textcaps_val", "caption", "TextCaps validation", {"annotations": "TextCaps_0.1_val.json"},
                   _read_textcaps, release="https://textvqa.org/textcaps/dataset (images: TextVQA train_val)",
                   location=Location("textcaps", ("textvqa/train_images",))),
)  # fmt: skip
