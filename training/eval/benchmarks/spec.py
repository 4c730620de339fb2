"""What a benchmark is: its annotation files, reader, task (which decides the scorer) and paper column."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ...files import check_readable, safe_relative
from ..paper import BENCHMARK_TO_PAPER_COLUMN
from .samples import BenchmarkResult, EvalSample
from .scoring import PRIMARY_METRIC, SCORERS

__all__ = ["TASKS", "BenchmarkSpec", "ImageFolders", "Location", "Reader", "Skipped", "benchmark_spec", "collect"]

logger = logging.getLogger(__name__)

TASKS: tuple[str, ...] = tuple(SCORERS)
"""What a sample asks for; it decides how predictions are scored (see :data:`.scoring.SCORERS`)."""

PathLike = str | Path


class ImageFolders:
    """The folder(s) a benchmark's image paths are relative to; an image is looked up in each in turn."""

    def __init__(self, folders: PathLike | Sequence[PathLike]) -> None:
        self.folders = [Path(folders)] if isinstance(folders, (str, Path)) else [Path(f) for f in folders]
        if not self.folders:
            raise ValueError("no image folder given")

    def path(self, relative: PathLike) -> Path:
        """The first folder's file that exists, else the path in the first folder (reported missing later); a path
        leading out of the folders (``..``) is refused."""
        safe_relative(relative, "image path")
        for folder in self.folders:
            if (folder / relative).is_file():
                return folder / relative
        return self.folders[0] / relative

    def __str__(self) -> str:
        return " + ".join(str(f) for f in self.folders)


@dataclass(frozen=True)
class Skipped:
    """What a reader yields for an annotation it cannot score (counted and reported by reason, never scored)."""

    reason: str


@dataclass(frozen=True)
class Location:
    """Where a benchmark's release lies under ``vlm eval --data-root``: its annotation folder and image folder(s)."""

    annotations: str
    images: tuple[str, ...]


Reader = Callable[[Mapping[str, Path], ImageFolders, str | None], Iterator["EvalSample | Skipped"]]


def collect(items: Iterable[EvalSample | Skipped], limit: int | None) -> tuple[list[EvalSample], Counter[str]]:
    """The samples among `items` (the first `limit`) and the count of skipped ones by reason."""
    samples: list[EvalSample] = []
    skipped: Counter[str] = Counter()
    for item in items:
        if isinstance(item, Skipped):
            skipped[item.reason] += 1
        else:
            samples.append(item)
        if limit is not None and len(samples) >= limit:
            break
    return samples, skipped


@dataclass(frozen=True)
class BenchmarkSpec:
    """A benchmark: its reader, task (which decides the metric), annotation files, split and where it lies."""

    name: str
    task: str
    description: str
    files: Mapping[str, str]
    reader: Reader
    primary_metric: str
    paper_column: str | None = None
    optional_files: Mapping[str, str] = field(default_factory=dict)
    split: str | None = None  # the default split (the paper's)
    splits: tuple[str, ...] = ()  # the selectable splits; empty: any the release holds
    split_by: tuple[str, ...] = ()  # for ``<splitBy>/<split>`` splits (REFER): the valid <splitBy> values
    release: str = ""  # where the files come from
    location: Location | None = None

    def check_split(self, split: str | None) -> str | None:
        """The split to read (the default when None); ValueError listing the valid ones for an unknown split."""
        split = self.split if split is None else split
        if self.splits and split not in self.splits:
            raise ValueError(f"{self.name}: unknown split {split!r}; valid splits: {', '.join(self.splits)}")
        if self.split_by and (split is None or split.count("/") != 1):
            raise ValueError(f"{self.name}: split {split!r} must read <splitBy>/<split>, e.g. {self.split}")
        if self.split_by and split.split("/")[0] not in self.split_by:
            raise ValueError(
                f"{self.name}: unknown splitBy {split.split('/')[0]!r} in split {split!r}; valid: "
                f"{', '.join(self.split_by)}"
            )
        return split

    def file_names(self, split: str | None = None) -> dict[str, str]:
        """The default file name of each role (required, then optional) for `split` (default: the paper's); the
        names may hold ``{split}``, and ``{split_by}`` for ``<splitBy>/<split>`` splits."""
        split = self.split if split is None else split
        fields = {"split": split or ""}
        if split and "/" in split:
            fields["split_by"], fields["split"] = split.split("/", 1)
        return {role: name.format(**fields) for role, name in {**self.files, **self.optional_files}.items()}

    def resolve_files(
        self, annotation_dir: PathLike, files: Mapping[str, PathLike] | None = None, split: str | None = None
    ) -> dict[str, Path]:
        """Annotation paths by role, ``files`` overriding the defaults (relative paths start at ``annotation_dir``).

        Raises FileNotFoundError naming the path of a missing required file (and the release it comes from) and
        ValueError for an unknown role.
        """
        files = dict(files or {})
        roles = self.file_names(self.check_split(split))
        unknown = sorted(set(files) - set(roles))
        if unknown:
            raise ValueError(f"{self.name}: unknown annotation file role(s) {unknown}; valid: {sorted(roles)}")
        resolved: dict[str, Path] = {}
        for role, default in roles.items():
            path = Path(files.get(role, default))
            path = path if path.is_absolute() else Path(annotation_dir) / path
            if path.exists():
                resolved[role] = check_readable(path, f"{self.name}: annotation file '{role}'")
            elif role in self.files or role in files:
                source = f" (from {self.release})" if self.release else ""
                raise FileNotFoundError(f"{self.name}: annotation file '{role}' not found: {path}{source}")
        return resolved

    def load_with_report(
        self,
        annotation_dir: PathLike,
        image_root: PathLike | Sequence[PathLike],
        files: Mapping[str, PathLike] | None = None,
        limit: int | None = None,
        split: str | None = None,
    ) -> tuple[list[EvalSample], Counter[str]]:
        """The samples (the first ``limit``) and the count of skipped annotations by reason.

        Zero samples is an error naming the files read and the split looked for: never a score of nothing.
        """
        split = self.check_split(split)
        paths = self.resolve_files(annotation_dir, files, split)
        samples, skipped = collect(self.reader(paths, ImageFolders(image_root), split), limit)
        if not samples:
            read = ", ".join(str(p) for p in paths.values())
            raise ValueError(f"{self.name}: no samples in {read} for split {split!r}" +
                             (f" ({dict(skipped)} skipped)" if skipped else ""))  # fmt: skip
        return samples, skipped

    def load(
        self,
        annotation_dir: PathLike,
        image_root: PathLike | Sequence[PathLike],
        files: Mapping[str, PathLike] | None = None,
        limit: int | None = None,
        split: str | None = None,
    ) -> list[EvalSample]:
        """Read the benchmark's samples (the first ``limit`` of them if given); skipped annotations are logged."""
        samples, skipped = self.load_with_report(annotation_dir, image_root, files, limit, split)
        for reason, count in skipped.items():
            logger.warning("%s: skipped %d annotation(s): %s", self.name, count, reason)
        return samples

    def score(self, predictions: Sequence[object], samples: Sequence[EvalSample]) -> BenchmarkResult:
        """Score one prediction per sample with the benchmark's metric."""
        if len(predictions) != len(samples):
            raise ValueError(f"{self.name}: got {len(predictions)} predictions for {len(samples)} samples")
        for sample in samples:
            if sample.task != self.task:
                raise ValueError(
                    f"{self.name}: sample {sample.sample_id!r} is a {sample.task!r} sample, not {self.task!r}"
                )
        scores, per_sample, notes = SCORERS[self.task](predictions, samples)
        return BenchmarkResult(self.name, self.primary_metric, scores, per_sample, notes)


def benchmark_spec(
    name: str,
    task: str,
    description: str,
    files: Mapping[str, str],
    reader: Reader,
    optional_files: Mapping[str, str] | None = None,
    **details: Any,
) -> BenchmarkSpec:
    """A :class:`BenchmarkSpec` whose metric follows from its task and whose paper column from its name; `details`
    set ``split``, ``splits``, ``split_by``, ``release`` and ``location``."""
    return BenchmarkSpec(
        name=name,
        task=task,
        description=description,
        files=MappingProxyType(dict(files)),
        reader=reader,
        primary_metric=PRIMARY_METRIC[task],
        paper_column=BENCHMARK_TO_PAPER_COLUMN.get(name),
        optional_files=MappingProxyType(dict(optional_files or {})),
        **details,
    )
