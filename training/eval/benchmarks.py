"""Readers for the paper's evaluation benchmarks, from their standard annotation files, and the benchmark registry.

Each reader turns local annotation files into :class:`EvalSample` records whose prompt follows the paper's templates
(``shared/paper/README.md``) and whose references are what the benchmark's metric needs. Images are never opened by a
reader (except Visual7W pointing images whose size the annotation omits, see below): ``EvalSample.image_path`` is
resolved against an image root and :meth:`EvalSample.load_image` reports a missing file with its path.

``BENCHMARKS`` maps a name to its :class:`BenchmarkSpec` (reader, metric, default file names, paper column);
:func:`load_benchmark` reads one from an annotation directory and :func:`score_benchmark` scores predictions for it.

=====================  ========================================================  =====================================
benchmark              annotation files (defaults, relative to annotation_dir)   image path
=====================  ========================================================  =====================================
coco_karpathy_test     dataset_coco.json (Karpathy split, split == "test")       root/filepath/filename
nocaps_val             nocaps_val_4500_captions.json                             root/file_name
textcaps_val           TextCaps_0.1_val.json                                     root/<image_id>.jpg
vqav2_val              v2_OpenEnded_mscoco_val2014_questions.json,               root/COCO_val2014_<id:012d>.jpg
                       v2_mscoco_val2014_annotations.json
gqa_testdev            testdev_balanced_questions.json                           root/<imageId>.jpg
v7w_telling            dataset_v7w_telling.json (split == "test")                root/filename
v7w_pointing           dataset_v7w_pointing.json (split == "test")               root/filename
vsr_test               random/test.jsonl (VSR's splits/ folder)                  root/image
pope_<split>           coco_pope_<split>.json (JSON lines)                       root/image
refcoco_testA/B,       refcoco.json / refcoco+.json / refcocog.json, each with   root/file_name
refcoco+_testA/B,      "refs", "annotations", "images" (or "refs" only plus an
refcocog_test          "instances" file, default instances.json)
textvqa_val            TextVQA_0.5.1_val.json                                    root/<image_id>.jpg
ai2d_test              ai2d_test.jsonl (JSON lines or a JSON list)               root/image
=====================  ========================================================  =====================================
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any

from PIL import Image

from . import metrics
from .paper import BENCHMARK_TO_PAPER_COLUMN

__all__ = [
    "BENCHMARKS",
    "CAPTION_PROMPT",
    "GROUNDING_PROMPT",
    "MULTIPLE_CHOICE_PROMPT",
    "TASKS",
    "VQA_PROMPT",
    "VSR_PROMPT",
    "BenchmarkResult",
    "BenchmarkSpec",
    "EvalSample",
    "format_box",
    "get_benchmark",
    "grounding_prompt",
    "load_benchmark",
    "multiple_choice_prompt",
    "score_benchmark",
    "vqa_prompt",
    "vsr_prompt",
]

# The paper's templates (shared/paper/README.md; the same strings as the training templates).
CAPTION_PROMPT = "Provide a one-sentence caption for the provided image."
VQA_PROMPT = "Answer the question using a single word or phrase.\nQuestion: {question}\nAnswer:"
MULTIPLE_CHOICE_PROMPT = (
    "Answer with the option's letter from the given choices directly.\nQuestion: {question}\n{options}\nAnswer:"
)
GROUNDING_PROMPT = "Locate the region that is described by:\n{expression}."
VSR_PROMPT = "Determine if the image matches the description:\n{caption}."

TASKS: tuple[str, ...] = ("caption", "vqa", "short_answer", "multiple_choice", "pointing", "vsr", "pope", "grounding")
"""What a sample asks for; it decides how predictions are scored (see :func:`score_benchmark`)."""

PathLike = str | Path


# ------------------------------------------------------------------------------------------------------------
# Prompts
# ------------------------------------------------------------------------------------------------------------


def _without_final_period(text: str) -> str:
    """Strip whitespace and trailing periods so that templates ending in ``{x}.`` never produce ``..``."""
    return text.strip().rstrip(".").rstrip()


def vqa_prompt(question: str) -> str:
    """Short-VQA prompt: the question in the single-word-or-phrase template."""
    return VQA_PROMPT.format(question=question.strip())


def multiple_choice_prompt(question: str, options: Sequence[str]) -> str:
    """Multiple-choice prompt with lettered options (``A: ...``, one per line)."""
    if not 2 <= len(options) <= len(metrics.OPTION_LETTERS):
        raise ValueError(f"a multiple-choice question needs 2 to 26 options, got {len(options)}: {list(options)!r}")
    lines = "\n".join(f"{metrics.OPTION_LETTERS[i]}: {str(o).strip()}" for i, o in enumerate(options))
    return MULTIPLE_CHOICE_PROMPT.format(question=question.strip(), options=lines)


def grounding_prompt(expression: str) -> str:
    """Grounding prompt for a referring expression."""
    return GROUNDING_PROMPT.format(expression=_without_final_period(expression))


def vsr_prompt(caption: str) -> str:
    """VSR prompt: does the image match the statement?"""
    return VSR_PROMPT.format(caption=_without_final_period(caption))


def format_box(box: Sequence[float]) -> str:
    """A normalised ``(x1, y1, x2, y2)`` box in the paper's text form, e.g. ``[0.12,0.34,0.56,0.78]``."""
    return "[" + ",".join(f"{min(max(float(v), 0.0), 1.0) + 0.0:.2f}" for v in box) + "]"


# ------------------------------------------------------------------------------------------------------------
# Records
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalSample:
    """One evaluation item: the image (by path, loaded lazily), the prompt and what the metric compares against.

    ``references`` holds caption strings (caption), the human answers (vqa), the gold answer (short_answer), the gold
    option letter (multiple_choice, pointing), ``"True"``/``"False"`` (vsr), ``"yes"``/``"no"`` (pope) or one
    normalised ``[x1, y1, x2, y2]`` box (grounding).
    """

    sample_id: str
    image_path: Path
    prompt: str
    references: list[Any]
    task: str
    extra: dict[str, Any] = field(default_factory=dict)

    def load_image(self) -> Image.Image:
        """The image as RGB; FileNotFoundError naming the path when it is missing."""
        if not self.image_path.is_file():
            raise FileNotFoundError(f"image of sample {self.sample_id!r} not found: {self.image_path}")
        with Image.open(self.image_path) as image:
            return image.convert("RGB")


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


Reader = Callable[[Mapping[str, Path], Path], Iterator[EvalSample]]


@dataclass(frozen=True)
class BenchmarkSpec:
    """A benchmark: its reader, task (which decides the metric), default annotation files and paper column."""

    name: str
    task: str
    description: str
    files: Mapping[str, str]
    reader: Reader
    primary_metric: str
    paper_column: str | None = None
    optional_files: Mapping[str, str] = field(default_factory=dict)

    def resolve_files(self, annotation_dir: PathLike, files: Mapping[str, PathLike] | None = None) -> dict[str, Path]:
        """Annotation paths by role, ``files`` overriding the defaults (relative paths start at ``annotation_dir``).

        Raises FileNotFoundError naming the path of a missing required file and ValueError for an unknown role.
        """
        files = dict(files or {})
        roles = {**self.files, **self.optional_files}
        unknown = sorted(set(files) - set(roles))
        if unknown:
            raise ValueError(f"{self.name}: unknown annotation file role(s) {unknown}; valid: {sorted(roles)}")
        resolved: dict[str, Path] = {}
        for role, default in roles.items():
            path = Path(files.get(role, default))
            path = path if path.is_absolute() else Path(annotation_dir) / path
            if path.is_file():
                resolved[role] = path
            elif role in self.files or role in files:
                raise FileNotFoundError(f"{self.name}: annotation file '{role}' not found: {path}")
        return resolved

    def load(
        self,
        annotation_dir: PathLike,
        image_root: PathLike,
        files: Mapping[str, PathLike] | None = None,
        limit: int | None = None,
    ) -> list[EvalSample]:
        """Read the benchmark's samples (the first ``limit`` of them if given)."""
        paths = self.resolve_files(annotation_dir, files)
        samples = self.reader(paths, Path(image_root))
        return list(itertools.islice(samples, limit) if limit is not None else samples)

    def score(self, predictions: Sequence[object], samples: Sequence[EvalSample]) -> BenchmarkResult:
        """Score one prediction per sample with the benchmark's metric."""
        if len(predictions) != len(samples):
            raise ValueError(f"{self.name}: got {len(predictions)} predictions for {len(samples)} samples")
        for sample in samples:
            if sample.task != self.task:
                raise ValueError(
                    f"{self.name}: sample {sample.sample_id!r} is a {sample.task!r} sample, not {self.task!r}"
                )
        scores, per_sample, notes = _SCORERS[self.task](predictions, samples)
        return BenchmarkResult(self.name, self.primary_metric, scores, per_sample, notes)


# ------------------------------------------------------------------------------------------------------------
# Scoring by task
# ------------------------------------------------------------------------------------------------------------

_Scored = tuple[dict[str, float], list[float], dict[str, str]]


def _mean(values: Sequence[float]) -> float:
    """Arithmetic mean, 0.0 for an empty sequence."""
    return sum(values) / len(values) if values else 0.0


def _score_caption(predictions: Sequence[object], samples: Sequence[EvalSample]) -> _Scored:
    """CIDEr over the corpus."""
    result = metrics.cider(predictions, [s.references for s in samples])
    return {"cider": result.score}, list(result.per_sample), {"tokenizer": result.tokenizer}


def _score_vqa(predictions: Sequence[object], samples: Sequence[EvalSample]) -> _Scored:
    """VQA accuracy against the human answers."""
    per = [metrics.vqa_score(p, s.references) for p, s in zip(predictions, samples, strict=True)]
    return {"vqa_accuracy": _mean(per)}, per, {}


def _score_short_answer(predictions: Sequence[object], samples: Sequence[EvalSample]) -> _Scored:
    """Exact match against the gold answer."""
    per = [metrics.exact_match_score(p, s.references) for p, s in zip(predictions, samples, strict=True)]
    return {"accuracy": _mean(per)}, per, {}


def _score_multiple_choice(predictions: Sequence[object], samples: Sequence[EvalSample]) -> _Scored:
    """Accuracy of the parsed option (letter, or the option's exact text)."""
    per = [
        float(metrics.parse_choice(p, len(s.extra["options"]), s.extra["options"]) == s.extra["answer_index"])
        for p, s in zip(predictions, samples, strict=True)
    ]
    return {"accuracy": _mean(per)}, per, {}


def _score_pointing(predictions: Sequence[object], samples: Sequence[EvalSample]) -> _Scored:
    """Accuracy of the candidate box picked by IoU with the predicted box (or by the predicted letter)."""
    per = [
        float(metrics.choose_candidate(p, s.extra["candidate_boxes"]) == s.extra["answer_index"])
        for p, s in zip(predictions, samples, strict=True)
    ]
    return {"accuracy": _mean(per)}, per, {}


def _score_vsr(predictions: Sequence[object], samples: Sequence[EvalSample]) -> _Scored:
    """Accuracy of the parsed True/False."""
    per = [
        float(metrics.parse_true_false(p) is (s.references[0] == "True"))
        for p, s in zip(predictions, samples, strict=True)
    ]
    return {"accuracy": _mean(per)}, per, {}


def _score_pope(predictions: Sequence[object], samples: Sequence[EvalSample]) -> _Scored:
    """POPE accuracy / precision / recall / F1 / yes-ratio."""
    labels = [s.references[0] for s in samples]
    per = [float(metrics.parse_yes_no(p) == label) for p, label in zip(predictions, labels, strict=True)]
    return metrics.pope_metrics(predictions, labels), per, {}


def _score_grounding(predictions: Sequence[object], samples: Sequence[EvalSample]) -> _Scored:
    """Accuracy at IoU > 0.5 with the reference box."""
    per = [metrics.grounding_score(p, s.references[0]) for p, s in zip(predictions, samples, strict=True)]
    return {"accuracy": _mean(per)}, per, {}


_SCORERS: Mapping[str, Callable[[Sequence[object], Sequence[EvalSample]], _Scored]] = MappingProxyType(
    {
        "caption": _score_caption,
        "vqa": _score_vqa,
        "short_answer": _score_short_answer,
        "multiple_choice": _score_multiple_choice,
        "pointing": _score_pointing,
        "vsr": _score_vsr,
        "pope": _score_pope,
        "grounding": _score_grounding,
    }
)


# ------------------------------------------------------------------------------------------------------------
# File helpers
# ------------------------------------------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    """Parse a JSON file; ValueError naming the file when it is not valid JSON."""
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err


def _read_records(path: Path) -> list[dict[str, Any]]:
    """Records of a JSON-lines file, a JSON list, or a JSON object with a ``data`` list."""
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        records = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{lineno}: not a valid JSON line ({err})") from err
        data = records
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if isinstance(data, dict):  # a single JSON-lines record
        data = [data]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise ValueError(f"{path}: expected JSON lines, a JSON list of objects or an object with a 'data' list")
    return data


def _field(record: Any, key: str, where: str) -> Any:
    """``record[key]``, or ValueError naming the place and the missing field."""
    if not isinstance(record, Mapping):
        raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if key not in record:
        raise ValueError(f"{where}: missing field {key!r}")
    return record[key]


def _list_field(record: Any, key: str, where: str) -> list[Any]:
    """``record[key]`` that must be a list."""
    value = _field(record, key, where)
    if not isinstance(value, list):
        raise ValueError(f"{where}: field {key!r} must be a list, got {type(value).__name__}")
    return value


def _str_field(record: Any, key: str, where: str) -> str:
    """``record[key]`` that must be a non-empty string."""
    value = _field(record, key, where)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: field {key!r} must be a non-empty string, got {value!r}")
    return value.strip()


def _normalised_box(xywh: Sequence[Any], width: Any, height: Any, where: str) -> list[float]:
    """COCO ``[x, y, w, h]`` pixels -> ``[x1, y1, x2, y2]`` divided by the image size, clamped to [0, 1]."""
    try:
        x, y, w, h = (float(v) for v in xywh)
        width, height = float(width), float(height)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: bad box {xywh!r} or image size {width!r}x{height!r}") from err
    if not (width > 0 and height > 0) or not all(math.isfinite(v) for v in (x, y, w, h)) or w < 0 or h < 0:
        raise ValueError(f"{where}: bad box {list(xywh)!r} or image size {width!r}x{height!r}")
    values = (x / width, y / height, (x + w) / width, (y + h) / height)
    return [min(max(v, 0.0), 1.0) for v in values]


def _shuffled_options(correct: Any, wrong: Sequence[Any], seed: str) -> tuple[list[Any], int]:
    """The correct option among the wrong ones in a fixed pseudo-random order (seeded by ``seed``), and its index."""
    options = [correct, *wrong]
    order = list(range(len(options)))
    random.Random(seed).shuffle(order)
    return [options[i] for i in order], order.index(0)


# ------------------------------------------------------------------------------------------------------------
# Readers
# ------------------------------------------------------------------------------------------------------------


def _read_coco_karpathy(paths: Mapping[str, Path], image_root: Path, split: str = "test") -> Iterator[EvalSample]:
    """COCO Karpathy split (``dataset_coco.json``): images[] with split, filepath, filename, sentences[].raw."""
    path = paths["annotations"]
    for i, image in enumerate(_list_field(_read_json(path), "images", str(path))):
        where = f"{path} images[{i}]"
        if _field(image, "split", where) != split:
            continue
        sentences = _list_field(image, "sentences", where)
        refs = [_str_field(s, "raw", f"{where}.sentences[{j}]") for j, s in enumerate(sentences)]
        if not refs:
            raise ValueError(f"{where}: no reference sentences")
        filename = _str_field(image, "filename", where)
        sample_id = str(image.get("cocoid", image.get("imgid", i)))
        yield EvalSample(
            sample_id, image_root / image.get("filepath", "") / filename, CAPTION_PROMPT, refs, "caption", {}
        )


def _read_nocaps(paths: Mapping[str, Path], image_root: Path) -> Iterator[EvalSample]:
    """NoCaps val (COCO-style): images[] {id, file_name, domain} and annotations[] {image_id, caption}."""
    path = paths["annotations"]
    data = _read_json(path)
    captions: dict[Any, list[str]] = {}
    for j, ann in enumerate(_list_field(data, "annotations", str(path))):
        where = f"{path} annotations[{j}]"
        captions.setdefault(_field(ann, "image_id", where), []).append(_str_field(ann, "caption", where))
    for i, image in enumerate(_list_field(data, "images", str(path))):
        where = f"{path} images[{i}]"
        image_id = _field(image, "id", where)
        if image_id not in captions:
            raise ValueError(f"{where}: image id {image_id!r} has no captions in 'annotations'")
        extra = {"domain": image["domain"]} if "domain" in image else {}
        file_name = _str_field(image, "file_name", where)
        yield EvalSample(str(image_id), image_root / file_name, CAPTION_PROMPT, captions[image_id], "caption", extra)


def _read_textcaps(paths: Mapping[str, Path], image_root: Path) -> Iterator[EvalSample]:
    """TextCaps val: data[] with image_id and reference_strs (or one caption_str per entry), grouped by image."""
    path = paths["annotations"]
    refs: dict[str, list[str]] = {}
    for i, entry in enumerate(_read_records(path)):
        where = f"{path} data[{i}]"
        image_id = str(_field(entry, "image_id", where))
        if "reference_strs" in entry:
            strs = _list_field(entry, "reference_strs", where)
            if image_id not in refs:
                refs[image_id] = [s.strip() for s in strs if isinstance(s, str) and s.strip()]
        elif "caption_str" in entry:
            refs.setdefault(image_id, []).append(_str_field(entry, "caption_str", where))
        else:
            raise ValueError(f"{where}: missing field 'reference_strs' (or 'caption_str')")
    for image_id, captions in refs.items():
        if not captions:
            raise ValueError(f"{path}: image {image_id!r} has no reference captions")
        yield EvalSample(image_id, image_root / f"{image_id}.jpg", CAPTION_PROMPT, captions, "caption", {})


def _read_vqav2(paths: Mapping[str, Path], image_root: Path) -> Iterator[EvalSample]:
    """VQAv2 val: questions[] {question_id, image_id, question} joined to annotations[] {question_id, answers}."""
    q_path, a_path = paths["questions"], paths["annotations"]
    annotations = {}
    for j, ann in enumerate(_list_field(_read_json(a_path), "annotations", str(a_path))):
        annotations[_field(ann, "question_id", f"{a_path} annotations[{j}]")] = (j, ann)
    for i, question in enumerate(_list_field(_read_json(q_path), "questions", str(q_path))):
        where = f"{q_path} questions[{i}]"
        qid = _field(question, "question_id", where)
        if qid not in annotations:
            raise ValueError(f"{where}: question_id {qid!r} has no entry in {a_path}")
        j, ann = annotations[qid]
        answers = [
            _str_field(a, "answer", f"{a_path} annotations[{j}].answers[{k}]")
            for k, a in enumerate(_list_field(ann, "answers", f"{a_path} annotations[{j}]"))
        ]
        if not answers:
            raise ValueError(f"{a_path} annotations[{j}]: no answers")
        image_id = int(_field(question, "image_id", where))
        extra = {k: ann[k] for k in ("question_type", "answer_type", "multiple_choice_answer") if k in ann}
        prompt = vqa_prompt(_str_field(question, "question", where))
        yield EvalSample(str(qid), image_root / f"COCO_val2014_{image_id:012d}.jpg", prompt, answers, "vqa", extra)


def _read_textvqa(paths: Mapping[str, Path], image_root: Path) -> Iterator[EvalSample]:
    """TextVQA val: data[] {question_id, image_id, question, answers[10]}."""
    path = paths["annotations"]
    for i, entry in enumerate(_read_records(path)):
        where = f"{path} data[{i}]"
        answers = [a.strip() for a in _list_field(entry, "answers", where) if isinstance(a, str)]
        if not answers:
            raise ValueError(f"{where}: no answers")
        image_id = str(_field(entry, "image_id", where))
        prompt = vqa_prompt(_str_field(entry, "question", where))
        sample_id = str(entry.get("question_id", i))
        yield EvalSample(sample_id, image_root / f"{image_id}.jpg", prompt, answers, "vqa", {"image_id": image_id})


def _read_gqa(paths: Mapping[str, Path], image_root: Path) -> Iterator[EvalSample]:
    """GQA test-dev balanced: {question_id: {imageId, question, answer}}."""
    path = paths["questions"]
    data = _read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object mapping question ids to questions")
    for qid, entry in data.items():
        where = f"{path} [{qid!r}]"
        prompt = vqa_prompt(_str_field(entry, "question", where))
        answer = _str_field(entry, "answer", where)
        image = image_root / f"{_field(entry, 'imageId', where)}.jpg"
        yield EvalSample(str(qid), image, prompt, [answer], "short_answer", {})


def _v7w_images(path: Path, split: str) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(where, image, qa pair) for every question of the Visual7W images in ``split``."""
    for i, image in enumerate(_list_field(_read_json(path), "images", str(path))):
        where = f"{path} images[{i}]"
        if _field(image, "split", where) != split:
            continue
        for j, qa in enumerate(_list_field(image, "qa_pairs", where)):
            yield f"{where}.qa_pairs[{j}]", image, qa


def _read_v7w_telling(paths: Mapping[str, Path], image_root: Path, split: str = "test") -> Iterator[EvalSample]:
    """Visual7W telling: images[].qa_pairs[] {qa_id, question, answer, multiple_choices[3]}, options in fixed order."""
    path = paths["annotations"]
    for where, image, qa in _v7w_images(path, split):
        qa_id = _field(qa, "qa_id", where)
        wrong = [str(c).strip() for c in _list_field(qa, "multiple_choices", where)]
        options, index = _shuffled_options(_str_field(qa, "answer", where), wrong, f"v7w_telling:{qa_id}")
        extra = {"options": options, "answer_index": index, "type": qa.get("type")}
        yield EvalSample(
            str(qa_id),
            image_root / _str_field(image, "filename", where),
            multiple_choice_prompt(_str_field(qa, "question", where), options),
            [metrics.OPTION_LETTERS[index]],
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
    data = _read_json(path)
    boxes = {}
    for k, box in enumerate(data.get("boxes", []) if isinstance(data, dict) else []):
        boxes[_field(box, "box_id", f"{path} boxes[{k}]")] = box
    for where, image, qa in _v7w_images(path, split):
        image_boxes = {**boxes, **{b["box_id"]: b for b in image.get("boxes", []) if isinstance(b, dict)}}
        qa_id = _field(qa, "qa_id", where)
        wrong = _list_field(qa, "multiple_choices", where)
        ids, index = _shuffled_options(_field(qa, "answer", where), wrong, f"v7w_pointing:{qa_id}")
        image_path = image_root / _str_field(image, "filename", where)
        width, height = _image_size(image, image_path)
        candidates = []
        for box_id in ids:
            if box_id not in image_boxes:
                raise ValueError(f"{where}: box id {box_id!r} is not in 'boxes' of {path}")
            b = image_boxes[box_id]
            xywh = [_field(b, key, f"{path} box {box_id!r}") for key in ("x", "y", "width", "height")]
            candidates.append(_normalised_box(xywh, width, height, f"{path} box {box_id!r}"))
        options = [format_box(c) for c in candidates]
        extra = {"options": options, "candidate_boxes": candidates, "answer_index": index, "box_ids": ids}
        prompt = multiple_choice_prompt(_str_field(qa, "question", where), options)
        yield EvalSample(str(qa_id), image_path, prompt, [metrics.OPTION_LETTERS[index]], "pointing", extra)


def _read_vsr(paths: Mapping[str, Path], image_root: Path) -> Iterator[EvalSample]:
    """VSR: JSON lines {image, caption, label 0/1, relation}; the reference is "True" or "False"."""
    path = paths["annotations"]
    for i, record in enumerate(_read_records(path)):
        where = f"{path} record {i}"
        label = _field(record, "label", where)
        if label not in (0, 1, True, False, "0", "1", "True", "False", "true", "false"):
            raise ValueError(f"{where}: field 'label' must be 0/1 or true/false, got {label!r}")
        truth = "True" if str(label).lower() in ("1", "true") else "False"
        prompt = vsr_prompt(_str_field(record, "caption", where))
        extra = {"relation": record["relation"]} if "relation" in record else {}
        sample_id = str(record.get("id", i))
        yield EvalSample(sample_id, image_root / _str_field(record, "image", where), prompt, [truth], "vsr", extra)


def _read_pope(paths: Mapping[str, Path], image_root: Path, split: str) -> Iterator[EvalSample]:
    """POPE: JSON lines {question_id, image, text, label yes/no}; asked in the short-VQA template."""
    path = paths["questions"]
    for i, record in enumerate(_read_records(path)):
        where = f"{path} record {i}"
        label = str(_field(record, "label", where)).strip().lower()
        if label not in ("yes", "no"):
            raise ValueError(f"{where}: field 'label' must be 'yes' or 'no', got {record['label']!r}")
        prompt = vqa_prompt(_str_field(record, "text", where))
        sample_id = str(record.get("question_id", i))
        image = image_root / _str_field(record, "image", where)
        yield EvalSample(sample_id, image, prompt, [label], "pope", {"pope_split": split})


def _read_refcoco(paths: Mapping[str, Path], image_root: Path, split: str) -> Iterator[EvalSample]:
    """RefCOCO/+/g: refs[] {ref_id, image_id, split, ann_id, sentences[].sent} with COCO annotations (bbox xywh) and
    images (width, height, file_name) in the same file or in the 'instances' file; one sample per sentence."""
    path = paths["refs"]
    data = _read_json(path)
    refs = _list_field(data, "refs", str(path))
    coco, coco_path = data, path
    if "annotations" not in data or "images" not in data:
        if "instances" not in paths:
            raise FileNotFoundError(
                f"{path} has no 'annotations'/'images'; pass the COCO instances file as files={{'instances': ...}}"
            )
        coco_path = paths["instances"]
        coco = _read_json(coco_path)
    anns = {
        _field(a, "id", f"{coco_path} annotations[{k}]"): a
        for k, a in enumerate(_list_field(coco, "annotations", str(coco_path)))
    }
    images = {
        _field(m, "id", f"{coco_path} images[{k}]"): m
        for k, m in enumerate(_list_field(coco, "images", str(coco_path)))
    }
    for i, ref in enumerate(refs):
        where = f"{path} refs[{i}]"
        if _field(ref, "split", where) != split:
            continue
        ann_id, image_id = _field(ref, "ann_id", where), _field(ref, "image_id", where)
        if ann_id not in anns:
            raise ValueError(f"{where}: ann_id {ann_id!r} is not in the annotations of {coco_path}")
        if image_id not in images:
            raise ValueError(f"{where}: image_id {image_id!r} is not in the images of {coco_path}")
        image = images[image_id]
        img_where = f"{coco_path} image {image_id!r}"
        box = _normalised_box(
            _field(anns[ann_id], "bbox", f"{coco_path} annotation {ann_id!r}"),
            _field(image, "width", img_where),
            _field(image, "height", img_where),
            f"{coco_path} annotation {ann_id!r}",
        )
        image_path = image_root / _str_field(image, "file_name", img_where)
        ref_id = ref.get("ref_id", i)
        for j, sentence in enumerate(_list_field(ref, "sentences", where)):
            expression = _str_field(sentence, "sent", f"{where}.sentences[{j}]")
            sample_id = f"{ref_id}_{sentence.get('sent_id', j)}"
            extra = {"ref_id": ref_id, "ann_id": ann_id, "image_id": image_id}
            yield EvalSample(sample_id, image_path, grounding_prompt(expression), [box], "grounding", extra)


def _read_ai2d(paths: Mapping[str, Path], image_root: Path) -> Iterator[EvalSample]:
    """AI2D: records {question, options[], answer (index, digit string or letter), image}."""
    path = paths["annotations"]
    for i, record in enumerate(_read_records(path)):
        where = f"{path} record {i}"
        options = [str(o).strip() for o in _list_field(record, "options", where)]
        answer = _field(record, "answer", where)
        if isinstance(answer, str) and answer.strip().isdigit():
            index: Any = int(answer.strip())
        elif isinstance(answer, str) and len(answer.strip()) == 1 and answer.strip().upper() in metrics.OPTION_LETTERS:
            index = metrics.OPTION_LETTERS.index(answer.strip().upper())
        else:
            index = answer
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(options):
            raise ValueError(f"{where}: field 'answer' must index one of the {len(options)} options, got {answer!r}")
        prompt = multiple_choice_prompt(_str_field(record, "question", where), options)
        sample_id = str(record.get("id", record.get("question_id", i)))
        image = image_root / _str_field(record, "image", where)
        extra = {"options": options, "answer_index": index}
        yield EvalSample(sample_id, image, prompt, [metrics.OPTION_LETTERS[index]], "multiple_choice", extra)


# ------------------------------------------------------------------------------------------------------------
# Registry
# ------------------------------------------------------------------------------------------------------------

_PRIMARY_METRIC: Mapping[str, str] = MappingProxyType(
    {
        "caption": "cider",
        "vqa": "vqa_accuracy",
        "short_answer": "accuracy",
        "multiple_choice": "accuracy",
        "pointing": "accuracy",
        "vsr": "accuracy",
        "pope": "f1",
        "grounding": "accuracy",
    }
)


def _build_registry() -> Mapping[str, BenchmarkSpec]:
    """All benchmarks of the paper's evaluation, keyed by name (read-only)."""
    specs: list[tuple[str, str, str, dict[str, str], Reader]] = [
        ("coco_karpathy_test", "caption", "COCO captions, Karpathy test split (5,000 images)",
         {"annotations": "dataset_coco.json"}, _read_coco_karpathy),
        ("nocaps_val", "caption", "NoCaps validation (4,500 images)",
         {"annotations": "nocaps_val_4500_captions.json"}, _read_nocaps),
        ("textcaps_val", "caption", "TextCaps validation", {"annotations": "TextCaps_0.1_val.json"}, _read_textcaps),
        ("vqav2_val", "vqa", "VQAv2 validation",
         {"questions": "v2_OpenEnded_mscoco_val2014_questions.json",
          "annotations": "v2_mscoco_val2014_annotations.json"}, _read_vqav2),
        ("textvqa_val", "vqa", "TextVQA validation", {"annotations": "TextVQA_0.5.1_val.json"}, _read_textvqa),
        ("gqa_testdev", "short_answer", "GQA test-dev balanced",
         {"questions": "testdev_balanced_questions.json"}, _read_gqa),
        ("v7w_telling", "multiple_choice", "Visual7W telling, test split",
         {"annotations": "dataset_v7w_telling.json"}, _read_v7w_telling),
        ("v7w_pointing", "pointing", "Visual7W pointing, test split",
         {"annotations": "dataset_v7w_pointing.json"}, _read_v7w_pointing),
        ("vsr_test", "vsr", "Visual Spatial Reasoning, test split", {"annotations": "random/test.jsonl"}, _read_vsr),
        ("ai2d_test", "multiple_choice", "AI2D diagrams, test split", {"annotations": "ai2d_test.jsonl"}, _read_ai2d),
    ]  # fmt: skip
    for split in ("random", "popular", "adversarial"):
        specs.append((f"pope_{split}", "pope", f"POPE ({split}) on COCO val2014",
                      {"questions": f"coco_pope_{split}.json"}, partial(_read_pope, split=split)))  # fmt: skip
    for dataset, split in [("refcoco", "testA"), ("refcoco", "testB"), ("refcoco+", "testA"), ("refcoco+", "testB"),
                           ("refcocog", "test")]:  # fmt: skip
        specs.append((f"{dataset}_{split}", "grounding", f"{dataset} {split} (referring expression grounding)",
                      {"refs": f"{dataset}.json"}, partial(_read_refcoco, split=split)))  # fmt: skip
    registry = {}
    for name, task, description, files, reader in specs:
        registry[name] = BenchmarkSpec(
            name=name,
            task=task,
            description=description,
            files=MappingProxyType(files),
            reader=reader,
            primary_metric=_PRIMARY_METRIC[task],
            paper_column=BENCHMARK_TO_PAPER_COLUMN.get(name),
            optional_files=MappingProxyType({"instances": "instances.json"} if task == "grounding" else {}),
        )
    return MappingProxyType(registry)


BENCHMARKS: Mapping[str, BenchmarkSpec] = _build_registry()
"""Benchmark name -> :class:`BenchmarkSpec` (read-only)."""


def get_benchmark(name: str) -> BenchmarkSpec:
    """The spec of benchmark ``name``; ValueError listing the valid names for an unknown one."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; valid names: {', '.join(sorted(BENCHMARKS))}")
    return BENCHMARKS[name]


def load_benchmark(
    name: str,
    annotation_dir: PathLike,
    image_root: PathLike,
    files: Mapping[str, PathLike] | None = None,
    limit: int | None = None,
) -> list[EvalSample]:
    """Samples of benchmark ``name`` read from ``annotation_dir`` (``files`` overrides default file names)."""
    return get_benchmark(name).load(annotation_dir, image_root, files=files, limit=limit)


def score_benchmark(name: str, predictions: Sequence[object], samples: Sequence[EvalSample]) -> BenchmarkResult:
    """Score one prediction per sample with benchmark ``name``'s metric."""
    return get_benchmark(name).score(predictions, samples)
