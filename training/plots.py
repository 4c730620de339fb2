"""Small matplotlib helpers shared by the reports: bar charts, line charts and loss curves written straight to PNG."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    """matplotlib's pyplot on the non-interactive Agg backend (no display on servers and CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bar_chart(
    values: Mapping[str, Mapping[str, float | None]], path: Path, title: str, ylabel: str = "score (x100)"
) -> None:
    """Grouped bars: one group per category (outer key), one bar per series (inner key) that has any value."""
    plt = _pyplot()
    categories = list(values)
    series = list(dict.fromkeys(name for row in values.values() for name, v in row.items() if v is not None))
    width = 0.8 / max(1, len(series))
    figure, axis = plt.subplots(figsize=(max(5.0, 1.2 * len(categories) * max(1, len(series)) / 2), 4))
    for k, name in enumerate(series):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(categories))]
        ys = [values[c].get(name) for c in categories]
        axis.bar([x for x, y in zip(xs, ys, strict=True) if y is not None], [y for y in ys if y is not None],
                 width=width, label=name)  # fmt: skip
    axis.set_xticks(range(len(categories)), categories, rotation=20, ha="right")
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def line_chart(
    panels: Sequence[tuple[str, str, Mapping[str, Mapping[Any, float]]]], path: Path, ylabel: str = "accuracy"
) -> None:
    """One panel per ``(title, xlabel, {series: {x: y}})``; numeric x on a linear axis, other x as categories."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for axis, (title, xlabel, series) in zip(axes[0], panels, strict=True):
        for name, points in series.items():
            xs = list(points)
            axis.plot(xs if all(isinstance(x, int | float) for x in xs) else [str(x) for x in xs],
                      list(points.values()), marker="o", label=name)  # fmt: skip
        axis.set_title(title)
        axis.set_xlabel(xlabel)
        axis.set_ylabel(ylabel)
        axis.set_ylim(-0.02, 1.02)
        axis.tick_params(axis="x", labelrotation=30)
        axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def loss_curves(series: Mapping[str, Mapping[int, float]], path: Path, title: str) -> None:
    """Training loss against step, one line per ``{name: {step: loss}}``, on a log scale."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    for name, points in series.items():
        axis.plot(list(points), list(points.values()), label=name)
    axis.set_xlabel("step")
    axis.set_ylabel("training loss")
    axis.set_yscale("log")
    axis.set_title(title)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
