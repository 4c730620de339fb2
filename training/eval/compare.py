"""``vlm compare``: one report over any set of evaluated models, Mamba-minus-Transformer gaps included.

Each run folder may be

* a ``vlm eval`` model folder (``metrics.json`` with ``benchmarks``) or the ``vlm eval`` output root holding several;
* a ``vlm demo`` output (``results.json`` with per-backbone ``scores``);
* a ``vlm probe retrieval`` output (``results.json`` with ``"probe": "retrieval"``).

Models are paired for the gaps when they are the two backbones of one demo or probe run, the paper's matched sizes
(Pythia-VL-1B with Mamba-VL-790M, 1.4B with 1.4B, 2.8B with 2.8B), or otherwise the Pythia-VL model of the closest
language-model size (within 25%); only models with the same encoding (instruction first or not) are paired. The same
model evaluated with and without ``--instruction-first`` also gets a task-aware-minus-default table.

Writes ``report.md``, ``report.json``, one bar chart per task family (``family_<family>.png``) and, with probe runs,
``retrieval.png`` (accuracy by N); every score is x100 (CIDEr x100, accuracies in percent).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from configuration import backbone_spec

from ..files import fresh_folder, write_json, write_text
from ..plots import bar_chart, line_chart
from .paper import PAPER_MODELS

__all__ = ["FAMILIES", "ModelEntry", "build_report", "load_runs", "run_compare"]

FAMILIES: tuple[str, ...] = ("captioning", "vqa", "reading", "grounding", "retrieval")
_BENCHMARK_FAMILY = MappingProxyType(
    {
        **dict.fromkeys(("coco_karpathy_test", "nocaps_val"), "captioning"),
        **dict.fromkeys(("textcaps_val", "textvqa_val"), "reading"),
        **dict.fromkeys(("vqav2_val", "gqa_testdev", "v7w_telling", "vsr_test", "ai2d_test"), "vqa"),
        **dict.fromkeys(("pope_random", "pope_popular", "pope_adversarial"), "vqa"),
        **dict.fromkeys(("refcoco_testA", "refcoco_testB", "refcoco+_testA", "refcoco+_testB"), "grounding"),
        **dict.fromkeys(("refcocog_test", "v7w_pointing"), "grounding"),
    }
)
# The demo's synthetic tasks: (family, headline metric).
_SYNTHETIC_TASKS = MappingProxyType(
    {
        "caption": ("captioning", "token_f1"),
        "vqa": ("vqa", "accuracy"),
        "counting": ("vqa", "accuracy"),
        "multiple_choice": ("vqa", "accuracy"),
        "reading": ("reading", "accuracy"),
        "grounding": ("grounding", "accuracy"),
        "retrieval": ("retrieval", "accuracy"),
    }
)
_SIZE_RATIO = 1.25  # closest-size pairing accepts language models at most this many times larger


@dataclass
class ModelEntry:
    """One model's scores gathered from one or more runs (fractions; the report multiplies by 100)."""

    label: str
    backbone: str
    instruction_first: bool = False
    language_model_parameters: int | None = None
    paper_model: str | None = None
    group: str | None = None  # models of one demo/probe run share it
    path: str | None = None  # the saved model's folder, to merge one model's results from several runs
    scores: dict[str, float] = field(default_factory=dict)  # task -> headline score
    retrieval: dict[str, dict[str, float]] = field(default_factory=dict)  # modality -> {N: accuracy}
    sources: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------------------
# Reading runs
# ------------------------------------------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; ValueError naming the file otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def _field(data: dict[str, Any], key: str, path: Path) -> Any:
    """``data[key]`` or ValueError naming the file and the missing field."""
    if key not in data:
        raise ValueError(f"{path}: missing field {key!r}")
    return data[key]


def _from_eval(path: Path, tasks: dict[str, tuple[str, str]]) -> ModelEntry:
    """A ``vlm eval`` model summary."""
    data = _read_json(path)
    entry = ModelEntry(
        label=str(_field(data, "model", path)),
        backbone=str(_field(data, "backbone", path)),
        instruction_first=bool(data.get("instruction_first", False)),
        language_model_parameters=data.get("language_model_parameters"),
        paper_model=data.get("paper_model"),
        path=data.get("model_path"),
        sources=[str(path)],
    )
    for name, record in _field(data, "benchmarks", path).items():
        entry.scores[name] = float(_field(record, "primary", path))
        tasks[name] = (_BENCHMARK_FAMILY.get(name, "other"), str(record.get("primary_metric", "")))
    return entry


def _from_demo(path: Path, tasks: dict[str, tuple[str, str]]) -> list[ModelEntry]:
    """The models of a ``vlm demo`` run (their synthetic-task scores)."""
    data, run = _read_json(path), path.parent
    entries = []
    for backbone, model in _field(data, "models", path).items():
        entry = ModelEntry(
            label=f"{model.get('display_name', backbone)} ({run.name})",
            backbone=backbone,
            language_model_parameters=model.get("language_model_parameters"),
            group=f"run:{run.resolve()}",
            path=str((run / backbone).resolve()),
            sources=[str(path)],
        )
        for task, metrics in _field(model, "scores", path).items():
            family, metric = _SYNTHETIC_TASKS.get(task, ("other", "accuracy"))
            if metric in metrics:
                entry.scores[f"synthetic_{task}"] = float(metrics[metric])
                tasks[f"synthetic_{task}"] = (family, metric)
        entries.append(entry)
    return entries


def _from_probe(path: Path, tasks: dict[str, tuple[str, str]]) -> list[ModelEntry]:
    """The models of a ``vlm probe retrieval`` run (overall accuracy and accuracy by N)."""
    data, run = _read_json(path), path.parent
    modality = str(_field(data, "modality", path))
    instruction_first = bool(data.get("config", {}).get("instruction_first", False))
    entries = []
    for backbone, model in _field(data, "models", path).items():
        entry = ModelEntry(
            label=f"{model.get('display_name', backbone)} ({run.name})",
            backbone=backbone,
            instruction_first=instruction_first,
            language_model_parameters=model.get("parameters") if modality == "text" else None,
            group=f"run:{run.resolve()}",
            sources=[str(path)],
        )
        entry.scores[f"retrieval_{modality}"] = float(_field(model, "accuracy", path))
        entry.retrieval[modality] = {str(n): float(v) for n, v in _field(model, "by_length", path).items()}
        tasks[f"retrieval_{modality}"] = ("retrieval", "accuracy")
        entries.append(entry)
    return entries


def _read_run(run: Path, tasks: dict[str, tuple[str, str]]) -> list[ModelEntry]:
    """Every model found in one run folder."""
    if not run.is_dir():
        raise FileNotFoundError(f"run folder not found: {run}")
    results = run / "results.json"
    if results.is_file():
        data = _read_json(results)
        return _from_probe(results, tasks) if data.get("probe") == "retrieval" else _from_demo(results, tasks)
    summaries = [run / "metrics.json"] if (run / "metrics.json").is_file() else sorted(run.glob("*/metrics.json"))
    summaries = [p for p in summaries if "benchmarks" in _read_json(p)]
    if not summaries:
        raise ValueError(
            f"{run}: no results.json (vlm demo / vlm probe) and no metrics.json with 'benchmarks' (vlm eval) found"
        )
    return [_from_eval(p, tasks) for p in summaries]


def _merge(entries: Iterable[ModelEntry]) -> list[ModelEntry]:
    """One entry per saved model and encoding (an eval of a demo model joins the demo's entry); unique labels."""
    merged: dict[tuple[str, bool], ModelEntry] = {}
    result: list[ModelEntry] = []
    for entry in entries:
        key = (entry.path, entry.instruction_first) if entry.path else None
        if key in merged:
            target = merged[key]
            target.scores.update(entry.scores)
            target.sources += entry.sources
            target.paper_model = target.paper_model or entry.paper_model
            target.group = target.group or entry.group
            continue
        if key:
            merged[key] = entry
        result.append(entry)
    labels: dict[str, int] = {}
    for entry in result:
        labels[entry.label] = labels.get(entry.label, 0) + 1
        if labels[entry.label] > 1:
            entry.label = f"{entry.label} #{labels[entry.label]}"
    return result


def load_runs(runs: Sequence[str | Path]) -> tuple[list[ModelEntry], dict[str, tuple[str, str]]]:
    """The models of all runs (merged per saved model) and ``{task: (family, metric)}``."""
    if not runs:
        raise ValueError("no run folders given")
    tasks: dict[str, tuple[str, str]] = {}
    entries = [entry for run in runs for entry in _read_run(Path(run), tasks)]
    return _merge(entries), tasks


# ------------------------------------------------------------------------------------------------------------
# Pairing
# ------------------------------------------------------------------------------------------------------------


def _pair_key(entry: ModelEntry) -> str | None:
    """The run group, or the paper's matched pair of sizes (1B/790M, 1.4B/1.4B, 2.8B/2.8B)."""
    if entry.group:
        return entry.group
    if entry.paper_model in PAPER_MODELS:
        low = PAPER_MODELS.index(entry.paper_model) // 2 * 2
        return f"paper:{PAPER_MODELS[low]}/{PAPER_MODELS[low + 1]}"
    return None


def _closest_size_pairs(entries: Sequence[ModelEntry]) -> list[tuple[ModelEntry, ModelEntry]]:
    """Each unpaired Mamba model with the unpaired Pythia model closest in language-model size (within 25%)."""
    pythias = [e for e in entries if e.backbone == "pythia" and e.language_model_parameters]
    pairs = []
    for mamba in (e for e in entries if e.backbone == "mamba" and e.language_model_parameters):
        candidates = [p for p in pythias if p.instruction_first == mamba.instruction_first]
        if not candidates:
            continue
        best = min(candidates, key=lambda p: abs(p.language_model_parameters - mamba.language_model_parameters))
        ratio = best.language_model_parameters / mamba.language_model_parameters
        if 1 / _SIZE_RATIO <= ratio <= _SIZE_RATIO:
            pairs.append((best, mamba))
            pythias.remove(best)
    return pairs


def pair_models(entries: Sequence[ModelEntry]) -> list[tuple[ModelEntry, ModelEntry]]:
    """(Pythia-VL, Mamba-VL) pairs: same run or paper size first, then the closest language-model size."""
    groups: dict[tuple[str, bool], dict[str, list[ModelEntry]]] = {}
    loose = []
    for entry in entries:
        key = _pair_key(entry)
        if key is None:
            loose.append(entry)
        else:
            groups.setdefault((key, entry.instruction_first), {}).setdefault(entry.backbone, []).append(entry)
    pairs = []
    for members in groups.values():
        pairs += list(zip(members.get("pythia", []), members.get("mamba", []), strict=False))
        paired = {id(e) for pair in pairs for e in pair}
        loose += [e for side in members.values() for e in side if id(e) not in paired]
    return pairs + _closest_size_pairs(loose)


# ------------------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------------------


def _x100(value: float | None) -> float | None:
    """A fraction on the report's scale (x100, 2 decimals)."""
    return None if value is None else round(100 * value, 2)


def _cell(value: float | None, signed: bool = False) -> str:
    """A table cell: ``-`` for a missing value."""
    return "-" if value is None else (f"{value:+.2f}" if signed else f"{value:.2f}")


def _ordered_tasks(tasks: dict[str, tuple[str, str]]) -> list[str]:
    """Tasks grouped by family in ``FAMILIES`` order, then by name."""
    rank = {family: i for i, family in enumerate(FAMILIES)}
    return sorted(tasks, key=lambda t: (rank.get(tasks[t][0], len(FAMILIES)), t))


def _gap_label(pythia: ModelEntry, mamba: ModelEntry) -> str:
    """Column title of one pair's gaps."""
    return f"{mamba.label} - {pythia.label}"


def _instruction_first_deltas(entries: Sequence[ModelEntry]) -> dict[str, dict[str, float]]:
    """``{model: {task: task-aware minus default}}`` for models evaluated both ways (same saved model)."""
    by_path: dict[str, dict[bool, ModelEntry]] = {}
    for entry in entries:
        if entry.path:
            by_path.setdefault(entry.path, {})[entry.instruction_first] = entry
    deltas = {}
    for pair in by_path.values():
        if True in pair and False in pair:
            aware, plain = pair[True], pair[False]
            common = [t for t in aware.scores if t in plain.scores]
            deltas[plain.label] = {t: round(100 * (aware.scores[t] - plain.scores[t]), 2) for t in common}
    return deltas


def build_report(entries: Sequence[ModelEntry], tasks: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """The report's numbers (x100): per-task table, Mamba-minus-Pythia gaps, task-aware deltas, retrieval by N."""
    order = _ordered_tasks(tasks)
    table = {t: {e.label: _x100(e.scores.get(t)) for e in entries} for t in order}
    gaps = {}
    for pythia, mamba in pair_models(entries):
        common = [t for t in order if t in pythia.scores and t in mamba.scores]
        gaps[_gap_label(pythia, mamba)] = {t: round(100 * (mamba.scores[t] - pythia.scores[t]), 2) for t in common}
    retrieval = {
        e.label: {m: {n: _x100(v) for n, v in curve.items()} for m, curve in e.retrieval.items()}
        for e in entries
        if e.retrieval
    }
    models = [
        {k: v for k, v in vars(e).items() if k not in ("scores", "retrieval")}
        | {"display_name": backbone_spec(e.backbone).display_name}
        for e in entries
    ]
    return {
        "models": models,
        "tasks": {t: {"family": tasks[t][0], "metric": tasks[t][1]} for t in order},
        "table": table,
        "gaps": gaps,
        "instruction_first_deltas": _instruction_first_deltas(entries),
        "retrieval": retrieval,
    }


def _markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]], text_columns: int) -> list[str]:
    """A Markdown table: the first ``text_columns`` columns left-aligned, the numbers right-aligned."""
    align = ["---" if i < text_columns else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _differences(title: str, columns: dict[str, dict[str, float]], tasks: dict[str, Any]) -> list[str]:
    """A section of signed differences per task (rows without any value are left out)."""
    rows = [[t, tasks[t]["family"], *(_cell(columns[c].get(t), True) for c in columns)] for t in tasks]
    rows = [row for row in rows if any(cell != "-" for cell in row[2:])]
    return ["", title, "", *_markdown_table(["task", "family", *columns], rows, 2)]


def _models_section(models: Sequence[dict[str, Any]]) -> list[str]:
    """Who is compared: backbone, paper size, encoding, language-model size."""
    rows = [
        [m["label"], m["display_name"], m["paper_model"] or "-", "yes" if m["instruction_first"] else "no",
         _count(m["language_model_parameters"])]
        for m in models
    ]  # fmt: skip
    header = ["model", "backbone", "paper model", "instruction first", "LM parameters"]
    return ["", "## Models", "", *_markdown_table(header, rows, 4)]


def _count(value: int | None) -> str:
    """A parameter count with thousands separators, ``-`` when unknown."""
    return "-" if value is None else f"{value:,}"


def report_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: models, scores, gaps, task-aware deltas and retrieval by N."""
    tasks, labels = report["tasks"], [m["label"] for m in report["models"]]
    lines = [
        "# Model comparison",
        "",
        "Scores x100 (CIDEr x100, accuracies in %).",
        *_models_section(report["models"]),
    ]
    rows = [[t, tasks[t]["family"], tasks[t]["metric"], *(_cell(report["table"][t][m]) for m in labels)]
            for t in tasks]  # fmt: skip
    lines += ["", "## Scores by task", "", *_markdown_table(["task", "family", "metric", *labels], rows, 3)]
    if report["gaps"]:
        lines += _differences("## Mamba - Transformer gaps (points)", report["gaps"], tasks)
    if report["instruction_first_deltas"]:
        title = "## Task-aware encoding: instruction first - default (points)"
        lines += _differences(title, report["instruction_first_deltas"], tasks)
    for modality in sorted({m for curves in report["retrieval"].values() for m in curves}):
        curves = {label: c[modality] for label, c in report["retrieval"].items() if modality in c}
        lengths = sorted({n for c in curves.values() for n in c}, key=int)
        lines += ["", f"## In-context retrieval ({modality}): accuracy (%) by N", ""]
        rows = [[n, modality, *(_cell(c.get(n)) for c in curves.values())] for n in lengths]
        lines += _markdown_table(["N", "modality", *curves], rows, 2)
    if report.get("plots"):
        lines += ["", "Plots: " + ", ".join(report["plots"])]
    return "\n".join(lines) + "\n"


def _write_plots(report: dict[str, Any], out: Path) -> list[str]:
    """One bar chart per task family and a line chart of retrieval accuracy by N; returns the file names."""
    names = []
    families = dict.fromkeys(info["family"] for info in report["tasks"].values())
    for family in families:
        values = {t: report["table"][t] for t, info in report["tasks"].items() if info["family"] == family}
        bar_chart(values, out / f"family_{family}.png", f"{family} (x100)")
        names.append(f"family_{family}.png")
    modalities = sorted({m for curves in report["retrieval"].values() for m in curves})
    if modalities:
        panels = [
            (f"retrieval ({m})", "N", {label: {int(n): v / 100 for n, v in c[m].items()}
                                      for label, c in report["retrieval"].items() if m in c})
            for m in modalities
        ]  # fmt: skip
        line_chart(panels, out / "retrieval.png")
        names.append("retrieval.png")
    return names


def run_compare(runs: Sequence[str | Path], out: str | Path) -> dict[str, Any]:
    """Read the runs, write report.md, report.json and the plots to ``out``, print the report; return its numbers."""
    target = Path(out).resolve()
    for run in runs:
        if target == Path(run).resolve() or target in Path(run).resolve().parents:
            raise ValueError(f"--out {out} holds the run {run}; write the report elsewhere")
    entries, tasks = load_runs(runs)
    report = build_report(entries, tasks)
    out = fresh_folder(out)
    report["plots"] = _write_plots(report, out)
    text = report_markdown(report)
    write_text(out / "report.md", text)
    write_json(out / "report.json", report)
    print(text + f"\nSaved report.md, report.json and {len(report['plots'])} plot(s) under {out}/", flush=True)
    return report
