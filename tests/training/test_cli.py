"""The ``vlm`` command's shared argument checks (each subcommand's own runs are tested beside its module)."""

from __future__ import annotations

import pytest

from training.cli import build_parser


def test_unknown_backbone_is_rejected_listing_valid_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--backbones", "pythia,rwkv"])
    assert "rwkv" in capsys.readouterr().err
