"""The paper's evaluation benchmarks: readers of their files as released, their scorers, and the registry.

One module per family keeps each benchmark's files, reader and prompt side by side (:mod:`.captioning`,
:mod:`.vqa`, :mod:`.choice`, :mod:`.pope`, :mod:`.grounding`); :mod:`.samples` holds the records, :mod:`.scoring`
scores each task, :mod:`.spec` describes a benchmark and :mod:`.lmms_eval` reads lmms-eval's datasets instead.

Each reader turns local annotation files into :class:`EvalSample` records whose prompt follows the paper's templates
(``shared/paper/README.md``) and whose references are what the benchmark's metric needs. Images are never opened by a
reader (except Visual7W pointing images whose size the annotation omits): ``EvalSample.image_path`` is resolved
against the benchmark's image folder(s) and :meth:`EvalSample.load_image` reports a missing file with its path. An
annotation that cannot be scored (a degenerate box, one outside its image) is skipped and counted, never scored;
a benchmark that yields no sample at all is an error naming the files read and the split.

``BENCHMARKS`` maps a name to its :class:`BenchmarkSpec` (reader, metric, default file names, splits, release,
folders under ``vlm eval --data-root``); :func:`load_benchmark` reads one and :func:`score_benchmark` scores
predictions for it. ``vlm eval --list`` prints every benchmark's files and folders.

=====================  ==========================================================  ===================================
benchmark              annotation files (relative to its annotation folder)        image path (in its image folder)
=====================  ==========================================================  ===================================
coco_karpathy_test     dataset_coco.json (Karpathy split, split == "test")         filepath/filename
nocaps_val             nocaps_val_4500_captions.json                               file_name
textcaps_val           TextCaps_0.1_val.json                                       <image_id>.jpg
vqav2_val              v2_OpenEnded_mscoco_val2014_questions.json,                 COCO_val2014_<id:012d>.jpg
                       v2_mscoco_val2014_annotations.json
gqa_testdev            testdev_balanced_questions.json                             <imageId>.jpg
v7w_telling            dataset_v7w_telling.json (split == "test")                  filename
v7w_pointing           dataset_v7w_pointing.json (split == "test")                 filename
vsr_test               random/test.jsonl or zeroshot/test.jsonl (VSR's splits/)    image (COCO train2017 or val2017)
pope_<split>           coco_pope_<split>.json (JSON lines)                         image
refcoco_testA/B,       <dataset>/refs(<splitBy>).p (a Python 2 pickle, read        file_name of instances.json
refcoco+_testA/B,      without running code) + <dataset>/instances.json (REFER);   (COCO train2014)
refcocog_test          split unc/testA, unc/testB; umd/test for RefCOCOg
textvqa_val            TextVQA_0.5.1_val.json                                      <image_id>.jpg
ai2d_test              questions/<n>.png.json (+ annotations/, ai2d_test_ids.csv   <n>.png (the release's images/)
                       beside or inside the folder)
=====================  ==========================================================  ===================================
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
    image_root: PathLike | Sequence[PathLike],
    files: Mapping[str, PathLike] | None = None,
    limit: int | None = None,
    split: str | None = None,
) -> list[EvalSample]:
    """Samples of benchmark ``name`` read from ``annotation_dir`` (``files`` overrides default file names; ``split``
    the paper's split); ``image_root`` is one image folder or several searched in turn."""
    return get_benchmark(name).load(annotation_dir, image_root, files=files, limit=limit, split=split)


def score_benchmark(name: str, predictions: Sequence[object], samples: Sequence[EvalSample]) -> BenchmarkResult:
    """Score one prediction per sample with benchmark ``name``'s metric."""
    return get_benchmark(name).score(predictions, samples)
