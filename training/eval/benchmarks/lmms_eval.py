"""The benchmarks as lmms-eval reads them: Hugging Face datasets of parquet files with embedded images.

Repos, configs, splits and columns come from lmms-eval's task files (``lmms_eval/tasks/<task>/*.yaml`` and
``utils.py``) and the datasets' cards; lmms-eval moved them from ``lmms-lab/`` to ``lmms-lab-encoder/`` in 2026, so
both prefixes are tried. Rows become the same :class:`EvalSample` records (prompts in our templates) and are scored
by the same metrics as the release files. Images stay in the dataset until their batch is generated.

A local copy (``--data-root DIR``) is a folder per repo, ``DIR/<name>`` or ``DIR/lmms-lab/<name>``, holding the
repo's parquet files as on the Hub (``data/<split>-*.parquet``, or ``<config>/<split>-*.parquet``); without one
only the evaluated split's shards are fetched from the Hub (``snapshot_download``; the cache alone with
``HF_HUB_OFFLINE=1``) and read with ``datasets``. COCO Karpathy, Visual7W and VSR have no lmms-eval dataset with
images, so they are read from their release files only.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from ...releases.boxes import box_problem
from ...templates import CAPTION_PROMPT, OPTION_LETTERS, grounding_prompt, multiple_choice_prompt, vqa_prompt
from .samples import EvalSample
from .spec import Skipped, collect

__all__ = ["LMMS_EVAL_DATASETS", "LmmsEvalDataset", "load_lmms_eval"]

ORGS = ("lmms-lab", "lmms-lab-encoder")


@dataclass(frozen=True)
class LmmsEvalDataset:
    """One lmms-eval dataset: repo name (without the org), config, split, the converter of its rows, and the config
    holding its images when they are not in the rows (GQA)."""

    repo: str
    config: str | None
    split: str
    rows: Callable[[Any, str, Any], Iterator[EvalSample | Skipped]]
    image_config: str | None = None


def _loader(images: Any, index: int) -> Callable[[], Image.Image]:
    """Open one row's image only when asked (stored undecoded: ``{bytes, path}``, as parquet holds it)."""

    def load() -> Image.Image:
        value = images[index]["image"]
        if isinstance(value, Image.Image):
            return value
        if isinstance(value, Mapping) and value.get("bytes"):
            return Image.open(io.BytesIO(value["bytes"]))
        if isinstance(value, Mapping) and value.get("path") and Path(value["path"]).is_file():
            return Image.open(value["path"])
        raise ValueError(f"row {index}: column 'image' holds no image")

    return load


def _sample(images: Any, i: int, where: str, sample_id: Any, prompt: str, refs: list, task: str, extra: dict) -> Any:
    return EvalSample(str(sample_id), Path(f"{where}/{i}"), prompt, refs, task, extra, _loader(images, i))


def _rows(dataset: Any) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """The rows without their images (never decoded here)."""
    columns = [c for c in dataset.column_names if c == "image"]
    return enumerate(dataset.remove_columns(columns))


def _vqav2(dataset: Any, where: str, images: Any) -> Iterator[EvalSample]:
    """question_id, question, answers [{answer, answer_confidence, answer_id}] (lmms-lab/VQAv2 card)."""
    for i, row in _rows(dataset):
        answers = [a["answer"] for a in row["answers"] or []]
        if answers:
            extra = {"question": row["question"], "question_type": row.get("question_type")}
            yield _sample(images, i, where, row["question_id"], vqa_prompt(row["question"]), answers, "vqa", extra)


def _textvqa(dataset: Any, where: str, images: Any) -> Iterator[EvalSample]:
    """question_id, question, answers (10 strings), ocr_tokens (lmms-lab/textvqa card)."""
    for i, row in _rows(dataset):
        extra = {"question": row["question"], "ocr_tokens": list(row.get("ocr_tokens") or [])}
        refs = list(row["answers"] or [])
        yield _sample(images, i, where, row["question_id"], vqa_prompt(row["question"]), refs, "vqa", extra)


def _pope(dataset: Any, where: str, images: Any) -> Iterator[EvalSample]:
    """question_id, question, answer yes/no, category (lmms-lab/POPE config Full)."""
    for i, row in _rows(dataset):
        label = str(row["answer"]).strip().lower()
        if label not in ("yes", "no"):
            raise ValueError(f"{where} row {i}: answer {row['answer']!r} is not yes/no")
        extra = {"question": row["question"], "pope_split": row.get("category")}
        yield _sample(images, i, where, row["question_id"], vqa_prompt(row["question"]), [label], "pope", extra)


def _refcoco(dataset: Any, where: str, images: Any) -> Iterator[EvalSample | Skipped]:
    """question_id, answer (the object's expressions), bbox [x, y, w, h] pixels; the size from the image itself."""
    for i, row in _rows(dataset):
        width, height = _loader(images, i)().size  # the datasets carry no width/height column (lmms-eval does this)
        problem = box_problem(row["bbox"], width, height)
        if problem:
            yield Skipped(problem)
            continue
        x, y, w, h = row["bbox"]
        box = [min(max(v, 0.0), 1.0) for v in (x / width, y / height, (x + w) / width, (y + h) / height)]
        for j, expression in enumerate(row["answer"]):
            extra = {"expression": expression, "file_name": row.get("file_name")}
            prompt = grounding_prompt(expression)
            yield _sample(images, i, where, f"{row['question_id']}_{j}", prompt, [box], "grounding", extra)


def _ai2d(dataset: Any, where: str, images: Any) -> Iterator[EvalSample]:
    """question, options, answer (the index as a string) (lmms-lab/ai2d card); no ids: the row is the id."""
    for i, row in _rows(dataset):
        options, index = [str(o) for o in row["options"]], int(row["answer"])
        extra = {"question": row["question"], "options": options, "answer_index": index}
        prompt = multiple_choice_prompt(row["question"], options)
        yield _sample(images, i, where, i, prompt, [OPTION_LETTERS[index]], "multiple_choice", extra)


def _nocaps(dataset: Any, where: str, images: Any) -> Iterator[EvalSample]:
    """image_id, annotations_captions (lmms-lab/NoCaps card; the domain is not a column)."""
    for i, row in _rows(dataset):
        refs = [c for c in row["annotations_captions"] or [] if c]
        yield _sample(images, i, where, row["image_id"], CAPTION_PROMPT, refs, "caption", {})


def _textcaps(dataset: Any, where: str, images: Any) -> Iterator[EvalSample]:
    """image_id, caption_str / reference_strs (lmms-lab/TextCaps card; split ``val``)."""
    for i, row in _rows(dataset):
        refs = [c for c in (row.get("reference_strs") or row.get("caption_str") or []) if c]
        yield _sample(images, i, where, row["image_id"], CAPTION_PROMPT, refs, "caption", {})


def _gqa(dataset: Any, where: str, images: Any) -> Iterator[EvalSample]:
    """id, imageId, question, answer (testdev_balanced_instructions), the image the row of testdev_balanced_images
    whose ``id`` is the question's ``imageId`` (lmms-eval's ``gqa/utils.py`` join)."""
    row_of = {image_id: i for i, image_id in enumerate(images["id"])}
    for i, row in _rows(dataset):
        if row["imageId"] not in row_of:
            raise ValueError(f"{where} row {i}: imageId {row['imageId']!r} is not in testdev_balanced_images")
        extra = {"question": row["question"], "image_id": row["imageId"]}
        prompt = vqa_prompt(row["question"])
        yield _sample(images, row_of[row["imageId"]], where, row["id"], prompt, [row["answer"]], "short_answer", extra)


LMMS_EVAL_DATASETS: Mapping[str, LmmsEvalDataset] = {
    "vqav2_val": LmmsEvalDataset("VQAv2", None, "validation", _vqav2),
    "textvqa_val": LmmsEvalDataset("textvqa", None, "validation", _textvqa),
    "gqa_testdev": LmmsEvalDataset("GQA", "testdev_balanced_instructions", "testdev", _gqa, "testdev_balanced_images"),
    **{f"pope_{s}": LmmsEvalDataset("POPE", "Full", s, _pope) for s in ("random", "popular", "adversarial")},
    "refcoco_testA": LmmsEvalDataset("RefCOCO", None, "testA", _refcoco),
    "refcoco_testB": LmmsEvalDataset("RefCOCO", None, "testB", _refcoco),
    "refcoco+_testA": LmmsEvalDataset("RefCOCOplus", None, "testA", _refcoco),
    "refcoco+_testB": LmmsEvalDataset("RefCOCOplus", None, "testB", _refcoco),
    "refcocog_test": LmmsEvalDataset("RefCOCOg", None, "test", _refcoco),
    "ai2d_test": LmmsEvalDataset("ai2d", None, "test", _ai2d),
    "nocaps_val": LmmsEvalDataset("NoCaps", None, "validation", _nocaps),
    "textcaps_val": LmmsEvalDataset("TextCaps", None, "val", _textcaps),
}
"""Benchmark -> its lmms-eval dataset (repo name under lmms-lab / lmms-lab-encoder, config, split, converter)."""


# ------------------------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------------------------
def _split_files(folder: Path, config: str | None, split: str) -> list[str]:
    """The parquet shards of one split in a copy of a repo (``data/`` or the config's folder), as on the Hub."""
    return sorted(str(p) for p in folder.glob(f"{config or 'data'}/{split}-*.parquet"))


def _local_files(root: Path, repo: str, config: str | None, split: str) -> tuple[list[str], str]:
    """The shards of one split in a local copy of the repo under `root`, and where they came from."""
    folders = [root / repo, *(root / org / repo for org in ORGS)]
    for folder in folders:
        files = _split_files(folder, config, split)
        if files:
            return files, f"{folder}/{split}"
    raise FileNotFoundError(
        f"no {config or 'data'}/{split}-*.parquet under {' or '.join(str(f) for f in folders)} (a copy of the Hub "
        f"dataset {ORGS[0]}/{repo})"
    )


def _hub_files(repo: str, config: str | None, split: str) -> tuple[list[str], str]:
    """The shards of one split from the Hub (either org; only that split's files are fetched; the cache when
    ``HF_HUB_OFFLINE=1``), and where they came from."""
    from huggingface_hub import snapshot_download

    pattern = f"{config or 'data'}/{split}-*.parquet"
    errors = []
    for org in ORGS:
        try:
            folder = snapshot_download(f"{org}/{repo}", repo_type="dataset", allow_patterns=[pattern])
        except Exception as err:  # not under this org, offline without a cache, no access, ...
            errors.append(f"{org}/{repo}: {type(err).__name__}: {err}")
            continue
        files = _split_files(Path(folder), config, split)
        if files:
            return files, f"{org}/{repo}/{split}"
        errors.append(f"{org}/{repo}: no {pattern}")
    raise FileNotFoundError(f"cannot load lmms-eval's {repo} ({config or 'default'}, {split}): {'; '.join(errors)}")


def _dataset(repo: str, config: str | None, split: str, root: str | os.PathLike[str] | None) -> tuple[Any, str]:
    """One split as a ``datasets.Dataset`` (images left undecoded), from the local copy under `root` or the Hub;
    and where it came from."""
    import datasets

    files, where = (
        _local_files(Path(root), repo, config, split) if root is not None else _hub_files(repo, config, split)
    )
    dataset = datasets.load_dataset("parquet", data_files={split: files}, split=split)
    if "image" in dataset.column_names:
        dataset = dataset.cast_column("image", datasets.Image(decode=False))
    return dataset, where


def load_lmms_eval(
    name: str, *, root: str | os.PathLike[str] | None = None, limit: int | None = None, split: str | None = None
) -> tuple[list[EvalSample], Counter[str]]:
    """The samples of benchmark `name` from lmms-eval's dataset, and the count of skipped rows by reason.

    `root` holds local copies of the repos (else the Hub); `split` overrides the split lmms-eval evaluates.
    """
    if name not in LMMS_EVAL_DATASETS:
        raise ValueError(
            f"{name} has no lmms-eval dataset with images; read it from its release files (--source files). "
            f"lmms-eval covers: {', '.join(LMMS_EVAL_DATASETS)}"
        )
    spec = LMMS_EVAL_DATASETS[name]
    split = split or spec.split
    dataset, where = _dataset(spec.repo, spec.config, split, root)
    images = _dataset(spec.repo, spec.image_config, split, root)[0] if spec.image_config else dataset
    samples, skipped = collect(spec.rows(dataset, where, images), limit)
    if not samples:
        raise ValueError(f"{name}: no samples in lmms-eval's {spec.repo} ({spec.config or 'default'}, split {split})")
    return samples, skipped
