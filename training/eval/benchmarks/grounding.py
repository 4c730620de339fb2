"""Referring-expression grounding: RefCOCO and RefCOCO+ testA/testB, RefCOCOg test (accuracy at IoU > 0.5)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path

from ...templates import grounding_prompt
from .files import field, list_field, normalised_box, read_json, str_field
from .samples import EvalSample
from .spec import BenchmarkSpec, benchmark_spec

__all__ = ["SPECS"]


def _read_refcoco(paths: Mapping[str, Path], image_root: Path, split: str) -> Iterator[EvalSample]:
    """RefCOCO/+/g: refs[] {ref_id, image_id, split, ann_id, sentences[].sent} with COCO annotations (bbox xywh) and
    images (width, height, file_name) in the same file or in the 'instances' file; one sample per sentence."""
    path = paths["refs"]
    data = read_json(path)
    refs = list_field(data, "refs", str(path))
    coco, coco_path = data, path
    if "annotations" not in data or "images" not in data:
        if "instances" not in paths:
            raise FileNotFoundError(
                f"{path} has no 'annotations'/'images'; pass the COCO instances file as files={{'instances': ...}}"
            )
        coco_path = paths["instances"]
        coco = read_json(coco_path)
    anns = {
        field(a, "id", f"{coco_path} annotations[{k}]"): a
        for k, a in enumerate(list_field(coco, "annotations", str(coco_path)))
    }
    images = {
        field(m, "id", f"{coco_path} images[{k}]"): m for k, m in enumerate(list_field(coco, "images", str(coco_path)))
    }
    for i, ref in enumerate(refs):
        where = f"{path} refs[{i}]"
        if field(ref, "split", where) != split:
            continue
        ann_id, image_id = field(ref, "ann_id", where), field(ref, "image_id", where)
        if ann_id not in anns:
            raise ValueError(f"{where}: ann_id {ann_id!r} is not in the annotations of {coco_path}")
        if image_id not in images:
            raise ValueError(f"{where}: image_id {image_id!r} is not in the images of {coco_path}")
        image = images[image_id]
        img_where = f"{coco_path} image {image_id!r}"
        box = normalised_box(
            field(anns[ann_id], "bbox", f"{coco_path} annotation {ann_id!r}"),
            field(image, "width", img_where),
            field(image, "height", img_where),
            f"{coco_path} annotation {ann_id!r}",
        )
        image_path = image_root / str_field(image, "file_name", img_where)
        ref_id = ref.get("ref_id", i)
        for j, sentence in enumerate(list_field(ref, "sentences", where)):
            expression = str_field(sentence, "sent", f"{where}.sentences[{j}]")
            sample_id = f"{ref_id}_{sentence.get('sent_id', j)}"
            extra = {"ref_id": ref_id, "ann_id": ann_id, "image_id": image_id, "expression": expression}
            yield EvalSample(sample_id, image_path, grounding_prompt(expression), [box], "grounding", extra)


SPECS: tuple[BenchmarkSpec, ...] = tuple(
    benchmark_spec(f"{dataset}_{split}", "grounding", f"{dataset} {split} (referring expression grounding)",
                   {"refs": f"{dataset}.json"}, partial(_read_refcoco, split=split),
                   optional_files={"instances": "instances.json"})
    for dataset, split in (("refcoco", "testA"), ("refcoco", "testB"), ("refcoco+", "testA"), ("refcoco+", "testB"),
                           ("refcocog", "test"))
)  # fmt: skip
