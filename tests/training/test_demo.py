"""``vlm demo``: its settings validated by the command and the config, its table, and a tiny run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoModelForImageTextToText, AutoProcessor

from training.cli import build_parser, main
from training.demo import DemoConfig, build_demo_dataset
from training.demo_report import results_table
from training.synthetic.scoring import ALL_TASKS


def test_demo_tasks_are_validated_by_the_cli_and_the_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert build_parser().parse_args(["demo", "--tasks", "caption, retrieval"]).tasks == ("caption", "retrieval")
    assert build_parser().parse_args(["demo"]).tasks == ALL_TASKS
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--tasks", "caption,ocr"])
    err = capsys.readouterr().err
    assert "unknown task(s) ocr" in err and "valid tasks are: caption, vqa, grounding" in err
    with pytest.raises(ValueError, match="tasks must be a non-empty subset of caption, vqa"):
        DemoConfig(tasks=("ocr",))
    with pytest.raises(ValueError, match="tasks must be"):
        DemoConfig(tasks=())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"seeds": 0}, "seeds"),
        ({"eval_images": -1}, "eval_images"),
        ({"batch_size": 0}, "batch_size"),
        ({"image_size": 0}, "image_size"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"steps": True}, "steps"),
        ({"grid_cells": 0}, "grid_cells"),
        ({"grid_cells": 8}, "grid_cells=8 leaves cells under 5 px"),
        ({"choice_answer": "text"}, "choice_answer must be 'letter' or 'option', got 'text'"),
    ],
)
def test_demo_config_refuses_non_positive_sizes(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        DemoConfig(**kwargs)


def test_demo_cli_refuses_zero_seeds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--seeds", "0"])
    assert "expected a positive integer, got 0" in capsys.readouterr().err


def test_demo_table_shows_only_the_tasks_that_ran() -> None:
    model = {"language_model_parameters": 1000, "final_loss": 0.5, "train_seconds": 3.0}
    results = {
        "models": {
            "pythia": {**model, "display_name": "Pythia-VL", "scores": {"retrieval": {"accuracy": 0.25}}},
            "mamba": {**model, "display_name": "Mamba-VL", "scores": {"retrieval": {"accuracy": 0.5}}},
        }
    }
    table = results_table(results)
    assert "| Retrieval accuracy | 25.0 | 50.0 |" in table.splitlines()
    assert "Caption" not in table and "Reading" not in table


TIMING_KEYS = {"train_seconds", "total_seconds", "path", "out"}


def _without_timing(value: object) -> object:
    """results.json without what differs between two identical runs (wall-clock times, output paths)."""
    if isinstance(value, dict):
        return {k: _without_timing(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [_without_timing(v) for v in value]
    return value


@pytest.mark.slow
def test_demo_runs_end_to_end_reproducibly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import training.demo_report as demo

    plotted: list[dict] = []
    real_bars = demo.interval_bars

    def spy(categories, series, floor, path, title):  # the numbers drawn in scores.png
        plotted.append({"series": series, "floor": floor})
        return real_bars(categories, series, floor, path, title)

    monkeypatch.setattr(demo, "interval_bars", spy)
    args = ["demo", "--steps", "4", "--train-images", "8", "--eval-images", "3", "--no-progress"]
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        assert main([*args, "--out", str(out)]) == 0
    results = [json.loads((out / "results.json").read_text()) for out in outs]
    # Same seed, same thread count: the same numbers and the same predictions, bit for bit.
    assert _without_timing(results[0]) == _without_timing(results[1])
    for backbone in ("pythia", "mamba"):
        assert (outs[0] / backbone / "predictions.jsonl").read_bytes() == (
            outs[1] / backbone / "predictions.jsonl"
        ).read_bytes()
    out, result = outs[0], results[0]
    assert set(result["models"]) == {"pythia", "mamba"} and result["seeds"] == [0]
    table = (out / "results.md").read_text()
    for backbone, entry in result["models"].items():
        assert set(entry["scores"]) == set(ALL_TASKS)
        assert entry["final_loss"] > 0
        assert f"{entry['language_model_parameters']:,}" in table
        model = AutoModelForImageTextToText.from_pretrained(out / backbone)
        assert model.config.model_type == f"{backbone}_vl"
        AutoProcessor.from_pretrained(out / backbone)
        predictions = (out / backbone / "predictions.jsonl").read_text().splitlines()
        assert len(predictions) == 3 * len(ALL_TASKS)
        assert {json.loads(line)["task"] for line in predictions} == set(ALL_TASKS)
        # held-out accuracy curves: every task, measured at steps 1..4 (4 steps, 10 points asked)
        assert set(entry["held_out_curves"]) == set(ALL_TASKS)
        assert all(set(points) == {"1", "2", "3", "4"} for points in entry["held_out_curves"].values())
        for task, metrics in entry["scores"].items():
            for metric, score in metrics.items():
                low, high = entry["intervals"][task][metric]
                assert low <= score <= high
    for name in ("training_curves.png", "scores.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The table holds the JSON's numbers: score [interval] for both models, then the image-blind baseline.
    for label, task in (
        ("Caption token F1", "caption"),
        ("Reading accuracy", "reading"),
        ("Retrieval accuracy", "retrieval"),
    ):
        row = next(line for line in table.splitlines() if line.startswith(f"| {label} |"))
        metric = "token_f1" if task == "caption" else "accuracy"
        entries = [(m["scores"], m["intervals"]) for m in (result["models"][b] for b in ("pythia", "mamba"))]
        entries.append((result["image_blind"], result["image_blind_intervals"]))
        cells = [
            f"{100 * s[task][metric]:.1f} [{100 * i[task][metric][0]:.1f}, {100 * i[task][metric][1]:.1f}]"
            for s, i in entries
        ]
        assert row == f"| {label} | " + " | ".join(cells) + " |"
    # ... and so does the bar chart (primary metric per task, with its interval, and the floor)
    drawn = plotted[0]
    for backbone in ("pythia", "mamba"):
        entry = result["models"][backbone]
        assert drawn["series"][entry["display_name"]]["caption"] == (
            entry["scores"]["caption"]["token_f1"],
            entry["intervals"]["caption"]["token_f1"],
        )
    assert drawn["floor"]["grounding"] == result["image_blind"]["grounding"]["accuracy"]
    # One comparison per task, its interval around the paired difference of the two models' scores.
    for task, comparison in result["comparison"].items():
        metric = comparison["metric"]
        gap = result["models"]["mamba"]["scores"][task][metric] - result["models"]["pythia"]["scores"][task][metric]
        assert comparison["mamba_minus_pythia"] == pytest.approx(gap)
        assert comparison["interval"][0] <= comparison["mamba_minus_pythia"] <= comparison["interval"][1]
    assert "Mamba-VL against Pythia-VL" in table
    # The language models are matched in size, as in the paper (within 10%).
    sizes = [entry["language_model_parameters"] for entry in result["models"].values()]
    assert max(sizes) / min(sizes) < 1.1


@pytest.mark.slow
def test_demo_seeds_average_runs_and_report_their_spread(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    args = ["demo", "--steps", "2", "--train-images", "4", "--eval-images", "2", "--seeds", "2", "--no-progress"]
    assert main([*args, "--backbones", "pythia", "--tasks", "vqa,counting", "--out", str(out)]) == 0
    result = json.loads((out / "results.json").read_text())
    entry = result["models"]["pythia"]
    assert result["seeds"] == [0, 1] and [s["seed"] for s in entry["per_seed"]] == [0, 1]
    assert (out / "pythia").is_dir() and (out / "pythia-seed1").is_dir()
    for task in ("vqa", "counting"):
        per_seed = [s["scores"][task]["accuracy"] for s in entry["per_seed"]]
        assert entry["scores"][task]["accuracy"] == pytest.approx(sum(per_seed) / 2)
        assert entry["seed_range"][task]["accuracy"] == [min(per_seed), max(per_seed)]
    assert "comparison" not in result  # one backbone: nothing to compare


def test_comparison_lines_state_the_direction_against_the_paper() -> None:
    from training.demo_report import comparison_lines

    def entry(ahead: str | None, finding: str | None, learned: bool) -> dict[str, object]:
        agrees = None if ahead is None or finding is None else ahead == finding
        return {"mamba_minus_pythia": 0.1, "interval": (0.05, 0.15), "ahead": ahead, "paper_finding": finding,
                "agrees_with_paper": agrees, "learned": learned}  # fmt: skip

    results = {
        "models": {"pythia": {"display_name": "Pythia-VL"}, "mamba": {"display_name": "Mamba-VL"}},
        "comparison": {
            "caption": entry("mamba", "mamba", True),
            "grounding": entry("mamba", "pythia", True),
            "counting": entry("mamba", None, True),
            "vqa": entry(None, "mamba", False),
        },
    }
    caption, grounding, counting, vqa = comparison_lines(results)
    assert caption.startswith("- Captioning (token F1): Mamba-VL - Pythia-VL = +10.0 points [+5.0, +15.0]: ")
    assert caption.endswith(": Mamba-VL ahead, as the paper found")
    assert grounding.endswith(": Mamba-VL ahead, the opposite of the paper's finding")
    assert counting.endswith(": Mamba-VL ahead (no finding in the paper)")
    assert vqa.endswith(
        ": within the 95% interval of no difference (the paper found Mamba-VL ahead); neither model is 15 points above"
        " the image-blind floor"
    )


def test_task_weights_scale_a_tasks_training_images_and_keep_the_others() -> None:
    config = DemoConfig(tasks=("vqa", "counting", "retrieval"), task_weights={"retrieval": 2.0, "counting": 0.5})
    weighted = build_demo_dataset(config, 6, seed=0, weights=config.task_weights)
    plain = build_demo_dataset(config, 6, seed=0)
    ids = {
        task: [i for t, i in zip(weighted["task"], weighted["image_id"], strict=True) if t == task]
        for task in config.tasks
    }
    assert sorted(ids["vqa"]) == list(range(6))
    assert sorted(ids["counting"]) == list(range(3))  # a weight < 1 keeps the first images
    assert sorted(ids["retrieval"]) == list(range(12))  # > 1 adds the next images, not repeats
    # The extra rows are the rows those images give on their own: the same prompts and answers as a longer plain run.
    longer = build_demo_dataset(DemoConfig(tasks=("retrieval",)), 12, seed=0)
    retrieval = weighted.filter(lambda row: row["task"] == "retrieval")
    assert retrieval["answer"] == longer["answer"] and retrieval["prompt"] == longer["prompt"]
    assert plain["task"].count("retrieval") == 6  # the evaluation set is built without weights


@pytest.mark.parametrize(
    ("weights", "message"),
    [({"ocr": 1.0}, "unknown task 'ocr'"), ({"vqa": 0.0}, "task_weights\\['vqa'\\] must be a positive number")],
)
def test_demo_config_refuses_bad_task_weights(weights: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DemoConfig(task_weights=weights)


def test_demo_multiple_choice_is_answered_with_the_option_unless_asked_for_the_letter(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = build_parser()
    assert parser.parse_args(["demo"]).choice_answer == DemoConfig().choice_answer == "option"
    assert parser.parse_args(["demo", "--choice-answer", "letter"]).choice_answer == "letter"
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--choice-answer", "text"])
    assert "invalid choice: 'text'" in capsys.readouterr().err
    for answer_with in ("option", "letter"):
        rows = build_demo_dataset(DemoConfig(tasks=("multiple_choice",), choice_answer=answer_with), 20, seed=0)
        for prompt, answer in zip(rows["prompt"], rows["answer"], strict=True):
            options = dict(line.split(": ", 1) for line in prompt.splitlines() if line[1:3] == ": ")
            assert (answer in options) if answer_with == "letter" else (answer in options.values()), prompt


def test_demo_cli_parses_task_weights(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    assert parser.parse_args(["demo"]).task_weights == DemoConfig().task_weights == {"retrieval": 2.0}
    assert parser.parse_args(["demo", "--task-weights", "retrieval=3, counting=0.5"]).task_weights == {
        "retrieval": 3.0,
        "counting": 0.5,
    }
    assert parser.parse_args(["demo", "--task-weights", ""]).task_weights == {}
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--task-weights", "ocr=2"])
    assert "got 'ocr=2'" in capsys.readouterr().err
