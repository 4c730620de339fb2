"""The paper's evaluation benchmarks: readers of their standard annotation files, their scorers, and the registry.

One module per family keeps each benchmark's files, reader and prompt side by side (:mod:`.captioning`,
:mod:`.vqa`, :mod:`.choice`, :mod:`.pope`, :mod:`.grounding`); :mod:`.samples` holds the records, :mod:`.scoring`
scores each task and :mod:`.spec` describes a benchmark.

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

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from . import captioning, choice, grounding, pope, vqa
from .samples import BenchmarkResult, EvalSample
from .spec import TASKS, BenchmarkSpec, PathLike

__all__ = [
    "BENCHMARKS",
    "TASKS",
    "BenchmarkResult",
    "BenchmarkSpec",
    "EvalSample",
    "get_benchmark",
    "load_benchmark",
    "score_benchmark",
]

BENCHMARKS: Mapping[str, BenchmarkSpec] = MappingProxyType(
    {spec.name: spec for module in (captioning, vqa, choice, pope, grounding) for spec in module.SPECS}
)
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
