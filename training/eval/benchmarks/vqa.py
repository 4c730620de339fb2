"""Short-answer benchmarks: VQAv2 val and TextVQA val (VQA accuracy), GQA test-dev (exact match)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from ...templates import vqa_prompt
from .files import field, list_field, read_json, read_records, str_field
from .samples import EvalSample
from .spec import BenchmarkSpec, ImageFolders, Location, benchmark_spec

__all__ = ["SPECS"]


def _read_vqav2(paths: Mapping[str, Path], images: ImageFolders, split: str | None) -> Iterator[EvalSample]:
    """VQAv2 val: questions[] {question_id, image_id, question} joined to annotations[] {question_id, answers}."""
    q_path, a_path = paths["questions"], paths["annotations"]
    annotations = {}
    for j, ann in enumerate(list_field(read_json(a_path), "annotations", str(a_path))):
        annotations[field(ann, "question_id", f"{a_path} annotations[{j}]")] = (j, ann)
    for i, question in enumerate(list_field(read_json(q_path), "questions", str(q_path))):
        where = f"{q_path} questions[{i}]"
        qid = field(question, "question_id", where)
        if qid not in annotations:
            raise ValueError(f"{where}: question_id {qid!r} has no entry in {a_path}")
        j, ann = annotations[qid]
        answers = [
            str_field(a, "answer", f"{a_path} annotations[{j}].answers[{k}]")
            for k, a in enumerate(list_field(ann, "answers", f"{a_path} annotations[{j}]"))
        ]
        if not answers:
            raise ValueError(f"{a_path} annotations[{j}]: no answers")
        image_id = int(field(question, "image_id", where))
        extra = {k: ann[k] for k in ("question_type", "answer_type", "multiple_choice_answer") if k in ann}
        extra["question"] = str_field(question, "question", where)
        prompt = vqa_prompt(extra["question"])
        yield EvalSample(str(qid), images.path(f"COCO_val2014_{image_id:012d}.jpg"), prompt, answers, "vqa", extra)


def _read_textvqa(paths: Mapping[str, Path], images: ImageFolders, split: str | None) -> Iterator[EvalSample]:
    """TextVQA val: data[] {question_id, image_id, question, answers[10]}."""
    path = paths["annotations"]
    for i, entry in enumerate(read_records(path)):
        where = f"{path} data[{i}]"
        answers = [a.strip() for a in list_field(entry, "answers", where) if isinstance(a, str)]
        if not answers:
            raise ValueError(f"{where}: no answers")
        image_id = str(field(entry, "image_id", where))
        question = str_field(entry, "question", where)
        sample_id = str(entry.get("question_id", i))
        extra = {"image_id": image_id, "question": question, "ocr_tokens": list(entry.get("ocr_tokens") or [])}
        yield EvalSample(sample_id, images.path(f"{image_id}.jpg"), vqa_prompt(question), answers, "vqa", extra)


def _read_gqa(paths: Mapping[str, Path], images: ImageFolders, split: str | None) -> Iterator[EvalSample]:
    """GQA test-dev balanced: {question_id: {imageId, question, answer}}."""
    path = paths["questions"]
    data = read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object mapping question ids to questions")
    for qid, entry in data.items():
        where = f"{path} [{qid!r}]"
        question = str_field(entry, "question", where)
        answer = str_field(entry, "answer", where)
        image = images.path(f"{field(entry, 'imageId', where)}.jpg")
        yield EvalSample(str(qid), image, vqa_prompt(question), [answer], "short_answer", {"question": question})


SPECS: tuple[BenchmarkSpec, ...] = (
    benchmark_spec("vqav2_val", "vqa", "VQAv2 validation",
                   {"questions": "v2_OpenEnded_mscoco_val2014_questions.json",
                    "annotations": "v2_mscoco_val2014_annotations.json"}, _read_vqav2,
                   release="https://visualqa.org/download.html (val questions + annotations; COCO val2014 images)",
                   location=Location("vqav2", ("coco/val2014",))),
    benchmark_spec("textvqa_val", "vqa", "TextVQA validation", {"annotations": "TextVQA_0.5.1_val.json"},
                   _read_textvqa, release="https://textvqa.org/dataset (TextVQA_0.5.1_val.json + train_val images)",
                   location=Location("textvqa", ("textvqa/train_images",))),
    benchmark_spec("gqa_testdev", "short_answer", "GQA test-dev balanced",
                   {"questions": "testdev_balanced_questions.json"}, _read_gqa,
                   release="https://cs.stanford.edu/people/dorarad/gqa/download.html (questions1.2 + images)",
                   location=Location("gqa", ("gqa/images",))),
)  # fmt: skip
