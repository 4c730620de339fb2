"""Multiple-choice benchmarks: Visual7W telling and pointing, AI2D (option letters) and VSR (True/False)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from PIL import Image

from ...templates import OPTION_LETTERS, format_box, multiple_choice_prompt, vsr_prompt
from .files import field, list_field, normalised_box, read_json, read_records, shuffled_options, str_field
from .samples import EvalSample
from .spec import BenchmarkSpec, benchmark_spec

__all__ = ["SPECS"]


def _v7w_images(path: Path, split: str) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(where, image, qa pair) for every question of the Visual7W images in ``split``."""
    for i, image in enumerate(list_field(read_json(path), "images", str(path))):
        where = f"{path} images[{i}]"
        if field(image, "split", where) != split:
            continue
        for j, qa in enumerate(list_field(image, "qa_pairs", where)):
            yield f"{where}.qa_pairs[{j}]", image, qa


def _read_v7w_telling(paths: Mapping[str, Path], image_root: Path, split: str = "test") -> Iterator[EvalSample]:
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
            image_root / str_field(image, "filename", where),
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


def _read_v7w_pointing(paths: Mapping[str, Path], image_root: Path, split: str = "test") -> Iterator[EvalSample]:
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
        image_path = image_root / str_field(image, "filename", where)
        width, height = _image_size(image, image_path)
        candidates = []
        for box_id in ids:
            if box_id not in image_boxes:
                raise ValueError(f"{where}: box id {box_id!r} is not in 'boxes' of {path}")
            b = image_boxes[box_id]
            xywh = [field(b, key, f"{path} box {box_id!r}") for key in ("x", "y", "width", "height")]
            candidates.append(normalised_box(xywh, width, height, f"{path} box {box_id!r}"))
        options = [format_box(c, 1.0, 1.0) for c in candidates]  # candidates are normalised already
        question = str_field(qa, "question", where)
        extra = {"options": options, "candidate_boxes": candidates, "answer_index": index, "box_ids": ids}
        extra["question"] = question
        prompt = multiple_choice_prompt(question, options)
        yield EvalSample(str(qa_id), image_path, prompt, [OPTION_LETTERS[index]], "pointing", extra)


def _read_vsr(paths: Mapping[str, Path], image_root: Path) -> Iterator[EvalSample]:
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
        yield EvalSample(sample_id, image_root / str_field(record, "image", where), prompt, [truth], "vsr", extra)


def _read_ai2d(paths: Mapping[str, Path], image_root: Path) -> Iterator[EvalSample]:
    """AI2D: records {question, options[], answer (index, digit string or letter), image}."""
    path = paths["annotations"]
    for i, record in enumerate(read_records(path)):
        where = f"{path} record {i}"
        options = [str(o).strip() for o in list_field(record, "options", where)]
        answer = field(record, "answer", where)
        if isinstance(answer, str) and answer.strip().isdigit():
            index: Any = int(answer.strip())
        elif isinstance(answer, str) and len(answer.strip()) == 1 and answer.strip().upper() in OPTION_LETTERS:
            index = OPTION_LETTERS.index(answer.strip().upper())
        else:
            index = answer
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(options):
            raise ValueError(f"{where}: field 'answer' must index one of the {len(options)} options, got {answer!r}")
        question = str_field(record, "question", where)
        prompt = multiple_choice_prompt(question, options)
        sample_id = str(record.get("id", record.get("question_id", i)))
        image = image_root / str_field(record, "image", where)
        extra = {"options": options, "answer_index": index, "question": question}
        yield EvalSample(sample_id, image, prompt, [OPTION_LETTERS[index]], "multiple_choice", extra)


SPECS: tuple[BenchmarkSpec, ...] = (
    benchmark_spec("v7w_telling", "multiple_choice", "Visual7W telling, test split",
                   {"annotations": "dataset_v7w_telling.json"}, _read_v7w_telling),
    benchmark_spec("v7w_pointing", "pointing", "Visual7W pointing, test split",
                   {"annotations": "dataset_v7w_pointing.json"}, _read_v7w_pointing),
    benchmark_spec("vsr_test", "vsr", "Visual Spatial Reasoning, test split", {"annotations": "random/test.jsonl"},
                   _read_vsr),
    benchmark_spec("ai2d_test", "multiple_choice", "AI2D diagrams, test split", {"annotations": "ai2d_test.jsonl"},
                   _read_ai2d),
)  # fmt: skip
