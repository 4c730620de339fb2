"""The ``vlm`` command's shared argument checks (each subcommand's own runs are tested beside its module)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from processing import VLProcessor
from training.cli import build_parser, main


def test_unknown_backbone_is_rejected_listing_valid_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--backbones", "pythia,rwkv"])
    assert "rwkv" in capsys.readouterr().err


def test_export_and_push_report_bad_input_in_one_line(
    make_model: Callable, processor: VLProcessor, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    (tmp_path / "empty").mkdir()
    assert main(["export", str(tmp_path / "empty"), str(tmp_path / "out")]) == 2
    assert "vlm export: error:" in capsys.readouterr().err and not (tmp_path / "out").exists()
    saved = tmp_path / "saved"
    make_model("pythia").save_pretrained(saved)
    processor.save_pretrained(saved)
    assert main(["export", str(saved), str(tmp_path / "out")]) == 0
    assert "trust_remote_code=True" in capsys.readouterr().out and (tmp_path / "out" / "modeling_vlm.py").is_file()
    assert main(["export", str(saved), str(tmp_path / "out")]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export", str(saved), str(tmp_path / "out"), "--overwrite"]) == 0
    monkeypatch.setattr("modeling_vlm.standalone.get_token", lambda: None)
    monkeypatch.setattr("modeling_vlm.standalone.HfApi", lambda: type("NoLogin", (), {"token": None})())
    assert main(["push", str(saved), "me/model"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vlm push: error: not logged in") and "hf auth login" in err


def test_convert_reports_what_is_not_a_paper_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "src").mkdir()
    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "out")]) == 2
    assert "config.json is missing" in capsys.readouterr().err and not (tmp_path / "out").exists()
    assert main(["convert", "not/a/hub/id", str(tmp_path / "out")]) == 2
    assert "neither a checkpoint folder nor a Hub id" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["convert", "a", "b", "--vision-model-args", "[1, 2]"])
    assert "expected a JSON object" in capsys.readouterr().err


def test_train_destroys_the_process_group_after_a_finished_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # gloo's worker threads, left to interpreter shutdown, can abort a finished rank (pytorch/pytorch#190489)
    import torch.distributed as dist

    import training.recipe
    import training.train

    class Result:
        output_dir = tmp_path / "run"

    monkeypatch.setattr(training.recipe, "load_recipe", lambda path: object())
    monkeypatch.setattr(training.train, "train", lambda recipe, **kwargs: Result())
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        assert main(["train", str(tmp_path / "recipe.yaml")]) == 0
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    assert "Saved the model" in capsys.readouterr().out
