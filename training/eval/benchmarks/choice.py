"""Multiple-choice benchmarks: Visual7W telling and pointing, AI2D (option letters) and VSR (True/False).

VSR's split picks its release file: ``random/test.jsonl`` (the paper's) or ``zeroshot/test.jsonl``; VSR images
span COCO ``train2017`` and ``val2017``, so both folders are searched.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from PIL import Image

from ...releases.ai2d import RELEASE as AI2D_RELEASE
from ...releases.ai2d import TEST_IDS_RELEASE as AI2D_TEST_IDS
from ...releases.ai2d import as_dict as ai2d_extra
from ...releases.ai2d import read_ai2d
from ...releases.boxes import box_problem
from ...templates import OPTION_LETTERS, format_box, multiple_choice_prompt, vsr_prompt
from .files import field, list_field, normalised_box, read_json, read_records, shuffled_options, str_field
from .samples import EvalSample
from .spec import BenchmarkSpec, ImageFolders, Location, Skipped, benchmark_spec

__all__ = ["SPECS"]


def _v7w_images(path: Path, split: str) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(where, image, qa pair) for every question of the Visual7W images in ``split``."""
    for i, image in enumerate(list_field(read_json(path), "images", str(path))):
        where = f"{path} images[{i}]"
        if field(image, "split", where) != split:
            continue
        for j, qa in enumerate(list_field(image, "qa_pairs", where)):
            yield f"{where}.qa_pairs[{j}]", image, qa


def _read_v7w_telling(paths: Mapping[str, Path], images: ImageFolders, split: str | None) -> Iterator[EvalSample]:
    """Visual7W telling: images[].qa_pairs[] {qa_id, question, answer, multiple_choices[3]}, options in fixed order."""
    path = paths["annotations"]
    for where, image, qa in _v7w_images(path, split):
        qa_id = field(qa, "qa_id", where)
        wrong = [str(c).strip() for c in list_field(qa, "multiple_choices", where)]
        options, index = shuffled_options(str_field(qa, "answer", where), wrong, f"v7w_telling:{qa_id}")
        extra = {"options": options, "answer_index": index, "type": qa.get("type")}
        extra["question"] = str_field(qa, "question", where)
        yield EvalSample(
            str(qa_id),
            images.path(str_field(image, "filename", where)),
            multiple_choice_prompt(extra["question"], options),
            [OPTION_LETTERS[index]],
            "multiple_choice",
            extra,
        )


def _image_size(image: Mapping[str, Any], path: Path) -> tuple[float, float]:
    """(width, height) from the annotation if present, else from the image file's header (no pixels decoded)."""
    if "width" in image and "height" in image:
        return float(image["width"]), float(image["height"])
    if not path.is_file():
        raise FileNotFoundError(f"image not found (its size is needed to normalise the candidate boxes): {path}")
    with Image.open(path) as img:
        return float(img.width), float(img.height)


def _candidate_boxes(
    ids: list[Any], boxes: Mapping[Any, Any], width: float, height: float, where: str
) -> list[list[float]] | Skipped:
    """The candidates' boxes normalised by the image size, or why one of them cannot be scored."""
    candidates = []
    for box_id in ids:
        if box_id not in boxes:
            raise ValueError(f"{where}: box id {box_id!r} is not in 'boxes'")
        xywh = [float(field(boxes[box_id], key, f"{where} box {box_id!r}")) for key in ("x", "y", "width", "height")]
        problem = box_problem(xywh, width, height)
        if problem:
            return Skipped(problem)
        candidates.append(normalised_box(xywh, width, height, f"{where} box {box_id!r}"))
    return candidates


def _read_v7w_pointing(
    paths: Mapping[str, Path], images: ImageFolders, split: str | None
) -> Iterator[EvalSample | Skipped]:
    """Visual7W pointing: qa_pairs[] whose answer and multiple_choices are box ids into ``boxes`` {box_id, x, y,
    width, height}; the prompt lists the four candidate boxes as options and the reference is the gold letter."""
    path = paths["annotations"]
    data = read_json(path)
    boxes = {}
    for k, box in enumerate(data.get("boxes", []) if isinstance(data, dict) else []):
        boxes[field(box, "box_id", f"{path} boxes[{k}]")] = box
    for where, image, qa in _v7w_images(path, split):
        image_boxes = {**boxes, **{b["box_id"]: b for b in image.get("boxes", []) if isinstance(b, dict)}}
        qa_id = field(qa, "qa_id", where)
        wrong = list_field(qa, "multiple_choices", where)
        ids, index = shuffled_options(field(qa, "answer", where), wrong, f"v7w_pointing:{qa_id}")
        image_path = images.path(str_field(image, "filename", where))
        width, height = _image_size(image, image_path)
        candidates = _candidate_boxes(ids, image_boxes, width, height, f"{where} ({path})")
        if isinstance(candidates, Skipped):
            yield candidates
            continue
        options = [format_box(c, 1.0, 1.0) for c in candidates]  # candidates are normalised already
        question = str_field(qa, "question", where)
        extra = {"options": options, "candidate_boxes": candidates, "answer_index": index, "box_ids": ids}
        extra["question"] = question
        prompt = multiple_choice_prompt(question, options)
        yield EvalSample(str(qa_id), image_path, prompt, [OPTION_LETTERS[index]], "pointing", extra)


def _read_vsr(paths: Mapping[str, Path], images: ImageFolders, split: str | None) -> Iterator[EvalSample]:
    """VSR: JSON lines {image, caption, label 0/1, relation}; the reference is "True" or "False"."""
    path = paths["annotations"]
    for i, record in enumerate(read_records(path)):
        where = f"{path} record {i}"
        label = field(record, "label", where)
        if label not in (0, 1, True, False, "0", "1", "True", "False", "true", "false"):
            raise ValueError(f"{where}: field 'label' must be 0/1 or true/false, got {label!r}")
        truth = "True" if str(label).lower() in ("1", "true") else "False"
        caption = str_field(record, "caption", where)
        extra = {"caption": caption, **({"relation": record["relation"]} if "relation" in record else {})}
        prompt = vsr_prompt(caption)
        sample_id = str(record.get("id", i))
        yield EvalSample(sample_id, images.path(str_field(record, "image", where)), prompt, [truth], "vsr", extra)


def _read_ai2d(paths: Mapping[str, Path], images: ImageFolders, split: str | None) -> Iterator[EvalSample]:
    """AI2D from its release: ``questions/*.png.json``, the split from ``ai2d_test_ids.csv`` (options lettered)."""
    for q in read_ai2d(paths["questions"].parent, split or "test", paths.get("test_ids")):
        yield EvalSample(q.question_id, images.path(q.image), multiple_choice_prompt(q.question, q.options),
                         [OPTION_LETTERS[q.answer_index]], "multiple_choice", ai2d_extra(q))  # fmt: skip


V7W_RELEASE = "http://vision.stanford.edu/yukezhu/visual7w_toolkit/ (dataset_v7w_*.zip, visual7w_images.zip)"
VSR_RELEASE = "https://github.com/cambridgeltl/visual-spatial-reasoning (data/splits/{random,zeroshot}/test.jsonl)"

SPECS: tuple[BenchmarkSpec, ...] = (
    benchmark_spec("v7w_telling", "multiple_choice", "Visual7W telling", {"annotations": "dataset_v7w_telling.json"},
                   _read_v7w_telling, split="test", splits=("test", "val", "train"), release=V7W_RELEASE,
                   location=Location("visual7w", ("visual7w/images",))),
    benchmark_spec("v7w_pointing", "pointing", "Visual7W pointing", {"annotations": "dataset_v7w_pointing.json"},
                   _read_v7w_pointing, split="test", splits=("test", "val", "train"), release=V7W_RELEASE,
                   location=Location("visual7w", ("visual7w/images",))),
    benchmark_spec("vsr_test", "vsr", "Visual Spatial Reasoning, test split (random or zero-shot)",
                   {"annotations": "{split}/test.jsonl"}, _read_vsr, split="random", splits=("random", "zeroshot"),
                   release=VSR_RELEASE, location=Location("vsr", ("coco/train2017", "coco/val2017"))),
    benchmark_spec("ai2d_test", "multiple_choice", "AI2D diagrams (the test ids of ai2d_test_ids.csv)",
                   {"questions": "questions"}, _read_ai2d, optional_files={"test_ids": "ai2d_test_ids.csv"},
                   split="test", splits=("test", "train", "all"), release=f"{AI2D_RELEASE} + {AI2D_TEST_IDS}",
                   location=Location("ai2d", ("ai2d/images",))),
)  # fmt: skip
