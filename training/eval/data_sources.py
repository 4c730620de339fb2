"""Where ``vlm eval`` reads each benchmark from: one data root, per-benchmark folders, or lmms-eval's datasets.

``--data-root DIR`` holds every benchmark's release under a documented folder (:func:`layout_table`, ``vlm eval
--list``), so the paper's whole suite runs in one command over one tree; ``--data NAME=ANNOTATIONS[:IMAGES]`` points
one benchmark elsewhere; ``--annotations DIR --images DIR`` serve every benchmark of the run, as before.
``--source lmms-eval`` reads the Hugging Face datasets lmms-eval evaluates on instead
(:mod:`training.eval.benchmarks.lmms_eval`; local copies under ``--data-root``, else the Hub); a benchmark it lacks
(COCO Karpathy, Visual7W, VSR) is read from files named with ``--data``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .benchmarks import BENCHMARKS, EvalSample, get_benchmark
from .benchmarks.lmms_eval import LMMS_EVAL_DATASETS, load_lmms_eval

__all__ = ["SOURCES", "layout_table", "load_samples", "parse_assignments", "resolve_location"]

SOURCES = ("files", "lmms-eval")


def parse_assignments(values: Sequence[str], what: str) -> dict[str, str]:
    """``["a=x", "b=y"]`` -> ``{"a": "x", "b": "y"}``; ValueError naming a malformed entry or unknown benchmark."""
    parsed = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not rest:
            raise ValueError(f"{what} {value!r} must read BENCHMARK=VALUE")
        get_benchmark(name.strip())  # raises listing the valid names
        parsed[name.strip()] = rest.strip()
    return parsed


def resolve_location(name: str, config: Any) -> tuple[Path, list[Path]]:
    """The annotation folder and image folder(s) of benchmark `name` under the run's options."""
    if name in config.data:
        annotations, _, images = config.data[name].partition(":")
        return Path(annotations), [Path(images or annotations)]
    if config.data_root:
        location = get_benchmark(name).location
        root = Path(config.data_root)
        return root / location.annotations, [root / folder for folder in location.images]
    if config.annotations and config.images:
        return Path(config.annotations), [Path(config.images)]
    raise ValueError(
        f"{name}: no data location: pass --data-root DIR (see vlm eval --list), --data {name}=ANNOTATIONS[:IMAGES], "
        "or --annotations DIR --images DIR"
    )


def load_samples(name: str, config: Any) -> tuple[list[EvalSample], Counter[str]]:
    """The samples of `name` (the first ``config.limit``) and its skipped annotations, from the configured source."""
    split = config.splits.get(name)
    if config.source == "lmms-eval" and name not in config.data:  # --data NAME=... reads that one from files
        if name not in LMMS_EVAL_DATASETS:
            raise ValueError(
                f"{name} has no lmms-eval dataset with images: read it from its release files with "
                f"--data {name}=ANNOTATIONS[:IMAGES] (lmms-eval covers {', '.join(LMMS_EVAL_DATASETS)})"
            )
        return load_lmms_eval(name, root=config.data_root, limit=config.limit, split=split)
    annotations, images = resolve_location(name, config)
    return get_benchmark(name).load_with_report(annotations, images, limit=config.limit, split=split)


def _lmms_eval_name(name: str) -> str:
    dataset = LMMS_EVAL_DATASETS.get(name)
    if dataset is None:
        return "none (release files only)"
    config = f", config {dataset.config}" if dataset.config else ""
    return f"lmms-lab/{dataset.repo} (or lmms-lab-encoder/{dataset.repo}){config}, split {dataset.split}"


def layout_table(specs: Mapping[str, Any] = BENCHMARKS) -> str:
    """What ``vlm eval --list`` prints: per benchmark, the files it reads, its splits, its folders under
    ``--data-root``, the release they come from and its lmms-eval dataset."""
    blocks = ["DATA_ROOT is --data-root; --data NAME=ANNOTATIONS[:IMAGES] or --annotations/--images replace the "
              "folders.", ""]  # fmt: skip
    for name, spec in specs.items():
        files = [f"{file}{' (optional)' if role in spec.optional_files else ''}" for role, file in
                 spec.file_names().items()]  # fmt: skip
        splits = f"{spec.split or '-'}" + (f" (or {', '.join(s for s in spec.splits if s != spec.split)})"
                                           if len(spec.splits) > 1 else "")  # fmt: skip
        splits += f" (splitBy: {', '.join(spec.split_by)})" if spec.split_by else ""
        images = " or ".join(f"DATA_ROOT/{folder}/" for folder in spec.location.images)
        blocks += [
            f"{name}: {spec.description}",
            f"  files:     {', '.join(files)}   (in DATA_ROOT/{spec.location.annotations}/)",
            f"  images:    {images}",
            f"  split:     {splits}",
            f"  release:   {spec.release}",
            f"  lmms-eval: {_lmms_eval_name(name)}",
            "",
        ]
    return "\n".join(blocks).rstrip()
