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


def loss_and_accuracy_curves(
    losses: Mapping[str, Mapping[int, float]],
    accuracies: Mapping[str, Mapping[str, Mapping[int, float]]],
    path: Path,
    title: str,
) -> None:
    """The training loss of every model (log scale) next to one panel per model of ``{series: {step: accuracy}}``."""
    plt = _pyplot()
    panels = 1 + len(accuracies)
    figure, axes = plt.subplots(1, panels, figsize=(5.0 * panels, 4), squeeze=False)
    loss_axis = axes[0][0]
    for name, points in losses.items():
        loss_axis.plot(list(points), list(points.values()), label=name)
    loss_axis.set(xlabel="step", ylabel="training loss", yscale="log", title="training loss")
    loss_axis.legend(fontsize="small")
    for axis, (name, series) in zip(axes[0][1:], accuracies.items(), strict=True):
        for label, points in series.items():
            axis.plot(list(points), list(points.values()), marker=".", label=label)
        axis.set(xlabel="step", ylabel="held-out accuracy", title=name, ylim=(-0.02, 1.02))
        axis.legend(fontsize="x-small", ncol=2)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def interval_bars(
    categories: Mapping[str, str],
    series: Mapping[str, Mapping[str, tuple[float, Sequence[float] | None]]],
    floor: Mapping[str, float],
    path: Path,
    title: str,
    floor_label: str = "image-blind floor",
) -> None:
    """Grouped bars (x100) with their intervals as error bars and a floor marker per category.

    ``categories`` maps each shown label to its key; ``series`` maps a name to ``{key: (value, [low, high])}``.
    """
    plt = _pyplot()
    keys = list(categories.values())
    width = 0.8 / max(1, len(series))
    figure, axis = plt.subplots(figsize=(max(6.0, 1.3 * len(keys)), 4.2))
    for k, (name, points) in enumerate(series.items()):
        xs, ys, errors = [], [], [[], []]
        for i, key in enumerate(keys):
            if key not in points:
                continue
            value, interval = points[key]
            xs.append(i + (k - (len(series) - 1) / 2) * width)
            ys.append(100 * value)
            low, high = interval if interval is not None else (value, value)
            errors[0].append(100 * (value - low))
            errors[1].append(100 * (high - value))
        axis.bar(xs, ys, width=width, yerr=errors, capsize=3, label=name)
    marked = [(i, 100 * floor[key]) for i, key in enumerate(keys) if key in floor]
    if marked:
        for n, (i, value) in enumerate(marked):
            axis.hlines(
                value, i - 0.45, i + 0.45, colors="black", linestyles="dashed", label=floor_label if n == 0 else None
            )
    axis.set_xticks(range(len(keys)), list(categories), rotation=20, ha="right")
    axis.set_ylabel("score (x100), 95% interval")
    axis.set_ylim(0, 105)
    axis.set_title(title)
    axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
