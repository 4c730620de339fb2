"""Referring-expression grounding: RefCOCO and RefCOCO+ testA/testB, RefCOCOg test (accuracy at IoU > 0.5).

Read from the REFER release (:mod:`training.releases.refer`): ``<dataset>/refs(<splitBy>).p`` and
``<dataset>/instances.json`` under the annotation folder, images ``COCO_train2014_*.jpg``. The split is
``<splitBy>/<split>``: the paper's by default (``unc/testA``, ``unc/testB``; ``umd/test`` for RefCOCOg), any other
of the release selectable (e.g. ``google/val``). One sample per expression; an annotation whose box is degenerate
or outside its image is skipped and counted, never scored.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path

from ...releases.boxes import box_problem
from ...releases.refer import DATASETS, IMAGE_DIR, RELEASE, read_refer, select_split
from ...templates import grounding_prompt
from .samples import EvalSample
from .spec import BenchmarkSpec, ImageFolders, Location, Skipped, benchmark_spec

__all__ = ["SPECS"]


def _read_refer(
    paths: Mapping[str, Path], images: ImageFolders, split: str | None, *, dataset: str
) -> Iterator[EvalSample | Skipped]:
    """One sample per expression of `split` (``<splitBy>/<split>``); boxes normalised by the image size."""
    split_by, name = str(split).split("/", 1)
    root = paths["refs"].parent.parent
    expressions = select_split(read_refer(root, dataset, split_by), name, f"{dataset} refs({split_by}).p")
    for e in expressions:
        problem = box_problem(e.bbox, e.width, e.height)
        if problem:
            yield Skipped(problem)
            continue
        x, y, w, h = e.bbox
        box = [min(max(v, 0.0), 1.0) for v in (x / e.width, y / e.height, (x + w) / e.width, (y + h) / e.height)]
        extra = {"ref_id": e.ref_id, "ann_id": e.ann_id, "image_id": e.image_id, "expression": e.text}
        yield EvalSample(f"{e.ref_id}_{e.sent_id}", images.path(e.file_name), grounding_prompt(e.text), [box],
                         "grounding", extra)  # fmt: skip


def _spec(dataset: str, split: str) -> BenchmarkSpec:
    split_by = DATASETS[dataset][0]  # the paper's: unc, or umd for RefCOCOg
    return benchmark_spec(
        f"{dataset}_{split}", "grounding", f"{dataset} {split} (referring expression grounding)",
        {"refs": f"{dataset}/refs({{split_by}}).p", "instances": f"{dataset}/instances.json"},
        partial(_read_refer, dataset=dataset), split=f"{split_by}/{split}", split_by=DATASETS[dataset],
        release=RELEASE, location=Location("refer", (f"refer/{IMAGE_DIR}", "coco/train2014")),
    )  # fmt: skip


SPECS: tuple[BenchmarkSpec, ...] = tuple(
    _spec(dataset, split)
    for dataset, split in (("refcoco", "testA"), ("refcoco", "testB"), ("refcoco+", "testA"), ("refcoco+", "testB"),
                           ("refcocog", "test"))
)  # fmt: skip
