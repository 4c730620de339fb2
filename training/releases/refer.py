"""RefCOCO, RefCOCO+ and RefCOCOg as the REFER toolkit (lichengunc/refer) releases them.

Layout under the REFER data root (``refer.py``: ``DATA_DIR = data_root/<dataset>``, ``IMAGE_DIR =
data_root/images/mscoco/images/train2014``)::

    <root>/refcoco/refs(unc).p   refs(google).p   instances.json
    <root>/refcoco+/refs(unc).p                   instances.json
    <root>/refcocog/refs(umd).p  refs(google).p   instances.json
    <root>/images/mscoco/images/train2014/COCO_train2014_<id:012d>.jpg

``refs(<splitBy>).p`` is a Python 2 pickle of a list of refs ``{ref_id, ann_id, image_id, category_id, split,
sentences: [{sent_id, sent, raw, tokens}], sent_ids, file_name}``, read here with the restricted unpickler of
:mod:`.plain_pickle`; ``instances.json`` is COCO-style ``images`` (``id, file_name, width, height``) and
``annotations`` (``id, image_id, bbox = [x, y, w, h]`` in pixels). Split selection follows ``REFER.getRefIds``:
``testA`` / ``testB`` match every split containing that letter (``testAB`` too), ``test`` every test split.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .plain_pickle import load_plain_pickle

__all__ = [
    "DATASETS",
    "IMAGE_DIR",
    "ReferExpression",
    "read_refer",
    "read_refs",
    "refer_files",
    "select_split",
]

DATASETS: Mapping[str, tuple[str, ...]] = {
    "refcoco": ("unc", "google"),
    "refcoco+": ("unc",),
    "refcocog": ("umd", "google"),
}
"""REFER dataset -> the splitBy values it is released with (the first: the paper's)."""
IMAGE_DIR = "images/mscoco/images/train2014"
RELEASE = "https://github.com/lichengunc/refer (refs pickles: bvision.cs.unc.edu/licheng/MattNet/refer/data/)"


@dataclass(frozen=True)
class ReferExpression:
    """One referring expression (a sentence of a ref) and the annotated box it refers to."""

    ref_id: Any
    sent_id: Any
    text: str
    ann_id: Any
    image_id: Any
    file_name: str
    width: float
    height: float
    bbox: tuple[float, float, float, float]  # x, y, w, h in pixels
    split: str


def refer_files(root: str | os.PathLike[str], dataset: str, split_by: str) -> tuple[Path, Path]:
    """``(refs pickle, instances.json)`` of `dataset` split by `split_by`; ValueError naming valid choices."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown REFER dataset {dataset!r}; valid: {', '.join(DATASETS)}")
    if split_by not in DATASETS[dataset]:
        raise ValueError(f"{dataset} is released split by {', '.join(DATASETS[dataset])}, not {split_by!r}")
    folder = Path(root) / dataset
    return folder / f"refs({split_by}).p", folder / "instances.json"


def _need(record: Any, key: str, where: str) -> Any:
    if not isinstance(record, Mapping) or key not in record:
        raise ValueError(f"{where}: missing field {key!r}")
    return record[key]


def _instances(path: Path) -> tuple[dict[Any, Mapping[str, Any]], dict[Any, Mapping[str, Any]]]:
    """Images and annotations of ``instances.json`` by id."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: REFER's instances.json (from {RELEASE})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    images = {_need(m, "id", f"{path} images[{i}]"): m for i, m in enumerate(_need(data, "images", str(path)))}
    anns = {_need(a, "id", f"{path} annotations[{i}]"): a for i, a in enumerate(_need(data, "annotations", str(path)))}
    return images, anns


def _expressions(ref: Any, where: str, images: Mapping, anns: Mapping, instances: Path) -> Iterator[ReferExpression]:
    ann_id, image_id = _need(ref, "ann_id", where), _need(ref, "image_id", where)
    if ann_id not in anns:
        raise ValueError(f"{where}: ann_id {ann_id!r} is not in the annotations of {instances}")
    if image_id not in images:
        raise ValueError(f"{where}: image_id {image_id!r} is not in the images of {instances}")
    image, ann = images[image_id], anns[ann_id]
    image_where = f"{instances} image {image_id!r}"
    bbox = tuple(float(v) for v in _need(ann, "bbox", f"{instances} annotation {ann_id!r}"))
    for j, sentence in enumerate(_need(ref, "sentences", where)):
        text = str(_need(sentence, "sent", f"{where}.sentences[{j}]")).strip()
        yield ReferExpression(
            ref_id=ref.get("ref_id", where), sent_id=sentence.get("sent_id", j), text=text, ann_id=ann_id,
            image_id=image_id, file_name=str(_need(image, "file_name", image_where)),
            width=float(_need(image, "width", image_where)), height=float(_need(image, "height", image_where)),
            bbox=bbox, split=str(_need(ref, "split", where)),
        )  # fmt: skip


def read_refs(
    refs_path: str | os.PathLike[str], instances: str | os.PathLike[str] | None = None
) -> list[ReferExpression]:
    """Every expression of one ``refs(<splitBy>).p`` (all splits, in the pickle's order), its boxes and image sizes
    from `instances` (default: the ``instances.json`` beside it)."""
    refs_path = Path(refs_path)
    instances = Path(instances) if instances is not None else refs_path.parent / "instances.json"
    if not refs_path.is_file():
        raise FileNotFoundError(f"{refs_path} not found: a REFER refs(<splitBy>).p from {RELEASE}")
    refs = load_plain_pickle(refs_path)
    if not isinstance(refs, list):
        raise ValueError(f"{refs_path}: expected a list of refs, got {type(refs).__name__}")
    images, anns = _instances(instances)
    return [
        e for i, ref in enumerate(refs) for e in _expressions(ref, f"{refs_path} refs[{i}]", images, anns, instances)
    ]


def read_refer(root: str | os.PathLike[str], dataset: str, split_by: str) -> list[ReferExpression]:
    """Every expression of a REFER release (all splits), in the pickle's order."""
    refs_path, instances = refer_files(root, dataset, split_by)
    if not refs_path.is_file():
        raise FileNotFoundError(f"{refs_path} not found: {dataset}'s refs({split_by}).p from {RELEASE}")
    return read_refs(refs_path, instances)


def _matches(split: str, ref_split: str) -> bool:
    """REFER.getRefIds: testA/B/C match splits containing the letter, test every test split, else equality."""
    if split in ("testA", "testB", "testC"):
        return split[-1] in ref_split
    if split == "test":
        return "test" in ref_split
    return split == ref_split


def select_split(expressions: Sequence[ReferExpression], split: str, where: str) -> list[ReferExpression]:
    """The expressions of `split`; ValueError listing the splits the release has when there are none."""
    chosen = [e for e in expressions if _matches(split, e.split)]
    if not chosen:
        valid = {e.split for e in expressions}
        valid |= {"test"} if any("test" in name for name in valid) else set()
        raise ValueError(f"{where}: no expression of split {split!r}; this release has: {', '.join(sorted(valid))}")
    return chosen
