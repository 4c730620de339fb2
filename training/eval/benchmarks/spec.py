"""What a benchmark is: its annotation files, reader, task (which decides the scorer) and paper column."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from ..paper import BENCHMARK_TO_PAPER_COLUMN
from .samples import BenchmarkResult, EvalSample
from .scoring import PRIMARY_METRIC, SCORERS

__all__ = ["TASKS", "BenchmarkSpec", "Reader", "benchmark_spec"]

TASKS: tuple[str, ...] = tuple(SCORERS)
"""What a sample asks for; it decides how predictions are scored (see :data:`.scoring.SCORERS`)."""

PathLike = str | Path


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
        scores, per_sample, notes = SCORERS[self.task](predictions, samples)
        return BenchmarkResult(self.name, self.primary_metric, scores, per_sample, notes)


def benchmark_spec(
    name: str,
    task: str,
    description: str,
    files: Mapping[str, str],
    reader: Reader,
    optional_files: Mapping[str, str] | None = None,
) -> BenchmarkSpec:
    """A :class:`BenchmarkSpec` whose metric follows from its task and whose paper column from its name."""
    return BenchmarkSpec(
        name=name,
        task=task,
        description=description,
        files=MappingProxyType(dict(files)),
        reader=reader,
        primary_metric=PRIMARY_METRIC[task],
        paper_column=BENCHMARK_TO_PAPER_COLUMN.get(name),
        optional_files=MappingProxyType(dict(optional_files or {})),
    )
