"""Every argument, config field and path is untrusted: one-line errors naming it, no hang, no write outside the
output folder, no silently reused or overwritten output (hardening issue, item 18)."""

from __future__ import annotations

import errno
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from processing import load_image
from training.cli import main
from training.recipe import RecipeError, recipe_from_dict


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "--model", "m", "--benchmarks", "pope_random", "--batch-size", "0"],
        ["eval", "--model", "m", "--benchmarks", "pope_random", "--limit", "-3"],
        ["demo", "--steps", "-1"],
        ["demo", "--train-images", "0"],
        ["bench", "--contexts", "64,0"],
        ["bench", "--repeats", "zero"],
        ["probe", "retrieval", "--learning-rate", "0"],
    ],
)
def test_zero_negative_and_non_numeric_sizes_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "expected a positive" in capsys.readouterr().err


def _compare_runs(root: Path) -> Path:
    run = root / "probe"
    run.mkdir(parents=True)
    models = {b: {"display_name": b, "parameters": 1, "accuracy": 0.5, "by_length": {"20": 0.5}}
              for b in ("pythia", "mamba")}  # fmt: skip
    (run / "results.json").write_text(json.dumps({"probe": "retrieval", "modality": "text", "models": models}))
    return run


def test_a_full_disk_is_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import training.eval.compare as compare

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(compare, "write_text", full)
    assert main(["compare", str(_compare_runs(tmp_path)), "--out", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vlm compare: error: [Errno 28] No space left on device") and "Traceback" not in err


def test_an_earlier_output_folder_is_set_aside_not_mixed_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, out = _compare_runs(tmp_path), tmp_path / "report"
    out.mkdir()
    (out / "stale_plot.png").write_bytes(b"old")
    assert main(["compare", str(run), "--out", str(out)]) == 0
    assert not (out / "stale_plot.png").exists() and (out / "report.json").is_file()
    [previous] = tmp_path.glob("report.previous-*")
    assert (previous / "stale_plot.png").read_bytes() == b"old"
    assert main(["compare", str(run), "--out", str(run)]) == 2  # never moves an input aside
    assert "holds the run" in capsys.readouterr().err and (run / "results.json").is_file()


def test_a_fifo_is_refused_instead_of_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "image.png"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def load() -> None:
        try:
            load_image(fifo)
        except FileNotFoundError as err:
            outcome.append(err)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "load_image blocked on a FIFO"
    assert "not a regular file" in str(outcome[0])
    from training.data.readers import read_gqa

    annotations = tmp_path / "train_balanced_questions.json"
    os.mkfifo(annotations)
    with pytest.raises(ValueError, match="is not a regular file"):
        read_gqa(annotations)


def test_dot_dot_names_and_paths_stay_inside_their_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], processor: Any
) -> None:
    from training.data.dataset import ConversationDataset
    from training.data.readers import Conversation
    from training.eval.benchmarks import load_benchmark

    argv = ["eval", "--model", "m", "--benchmarks", "pope_random", "--annotations", "a", "--images", "i"]
    assert main([*argv, "--name", "../../elsewhere"]) == 2
    assert "name='../../elsewhere' must be a plain name" in capsys.readouterr().err
    (tmp_path / "coco_pope_random.json").write_text(
        json.dumps({"question_id": 1, "image": "../../etc/secret.jpg", "text": "Is there a dog?", "label": "no"})
    )
    with pytest.raises(ValueError, match=r"'\.\./\.\./etc/secret\.jpg' leads out of its folder"):
        load_benchmark("pope_random", tmp_path, tmp_path / "images")
    Image.new("RGB", (8, 8)).save(tmp_path / "inside.png")
    dataset = ConversationDataset([Conversation("../inside.png", [("q", "a")], "x")], tmp_path / "sub", processor)
    assert dataset.build_example(0) == "unsafe_path"
    source = {"reader": "synthetic", "name": "../x", "kwargs": {"num_images": 2}}
    with pytest.raises(RecipeError, match=r"data\.train\[0\]\.name='\.\./x' must be a plain name"):
        recipe_from_dict({"model": {"backbone": "pythia", "preset": "tiny"}, "data": {"train": [source]}})


def test_string_booleans_in_saved_configs_are_refused(tmp_path: Path, make_model: Any, processor: Any) -> None:
    from transformers import AutoConfig, AutoProcessor

    make_model("pythia").save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "instruction_first": "false"}))
    with pytest.raises(ValueError, match="instruction_first must be true or false, got 'false'"):
        AutoConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(config))
    processor_config = json.loads((tmp_path / "processor_config.json").read_text())
    (tmp_path / "processor_config.json").write_text(json.dumps({**processor_config, "instruction_first": "no"}))
    with pytest.raises(ValueError, match="instruction_first must be true or false, got 'no'"):
        AutoProcessor.from_pretrained(tmp_path)
