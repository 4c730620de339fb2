"""``vlm plan``: the paper's sizes built on the meta device against their published counts, the memory arithmetic,
and the activation fit against a model it was not fitted on."""

from __future__ import annotations

import pytest

from training.cli import main
from training.plan import STRATEGIES, _saved_bytes, activation_model, plan

# Total parameters as published: Pythia's README table (EleutherAI/pythia, "Models"), exact; the Mamba checkpoints'
# model cards (state-spaces/mamba-*-hf, safetensors "Model size": 793M, 1.37B, 2.77B params), rounded there.
PUBLISHED = {("pythia", "1b"): 1_011_781_632, ("pythia", "1.4b"): 1_414_647_808, ("pythia", "2.8b"): 2_775_208_960,
             ("mamba", "790m"): 793e6, ("mamba", "1.4b"): 1.37e9, ("mamba", "2.8b"): 2.77e9}  # fmt: skip


@pytest.fixture(scope="module")
def fits() -> dict:
    return {backbone: activation_model(backbone) for backbone in ("pythia", "mamba")}


@pytest.mark.parametrize(("backbone", "preset"), list(PUBLISHED))
def test_language_models_have_the_published_sizes(backbone: str, preset: str, fits: dict) -> None:
    result = plan(backbone, preset, fit=fits[backbone])
    assert result.parameters["language_model"] == pytest.approx(PUBLISHED[backbone, preset], rel=0.01)
    hidden = {"1b": 2048, "1.4b": 2048, "2.8b": 2560, "790m": 1536}[preset]
    assert result.parameters["multi_modal_projector"] == 1024 * hidden + hidden + hidden * hidden + hidden
    assert result.trainable["alignment"] == result.parameters["multi_modal_projector"]
    assert (
        result.trainable["instruction"]
        == result.parameters["multi_modal_projector"] + result.parameters["language_model"]
    )


def test_memory_divides_as_each_strategy_shards(fits: dict) -> None:
    result = plan("pythia", "1.4b", gpus=4, fit=fits["pythia"])
    total = sum(result.parameters.values())
    trainable = result.trainable["instruction"]
    ddp, zero2, zero3, fsdp = (result.memory["instruction"][s] for s in STRATEGIES)
    assert ddp["weights"] == 2 * total and ddp["gradients"] == 2 * trainable and ddp["optimizer"] == 12 * trainable
    assert zero2["weights"] == ddp["weights"] and zero2["optimizer"] == ddp["optimizer"] / 4
    assert zero3 == fsdp and zero3["weights"] == ddp["weights"] / 4 and zero3["gradients"] == ddp["gradients"] / 4
    assert len({m["activations"] for m in (ddp, zero2, zero3)}) == 1  # per-GPU batch: not sharded
    off = plan("pythia", "1.4b", gpus=4, gradient_checkpointing=False, fit=fits["pythia"])
    assert off.memory["instruction"]["ddp"]["activations"] > 3 * ddp["activations"]


@pytest.mark.parametrize("backbone", ["pythia", "mamba"])
def test_the_activation_fit_predicts_a_model_it_was_not_fitted_on(backbone: str, fits: dict) -> None:
    fit = fits[backbone]
    predicted = fit.bytes_per_token(layers=3, hidden=96, vocab=768, checkpointing=False)
    assert _saved_bytes(backbone, 96, 3, 768) == pytest.approx(predicted, rel=0.05)


def test_plan_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "mamba-2.8b", "--gpus", "8", "--strategy", "zero3"]) == 0
    out = capsys.readouterr().out
    assert "# vlm plan: Mamba-VL-2.8B on 8 GPU(s)" in out and "language_model | 2,768.3M" in out
    assert "zero3 |" in out and "ddp |" not in out and "fp32 master + Adam" in out
    with pytest.raises(SystemExit):
        main(["plan", "mamba-7b"])
    assert "the paper's are: pythia-1b" in capsys.readouterr().err


@pytest.mark.timm
def test_the_eva02_tower_count_is_measured_with_timm() -> None:
    pytest.importorskip("timm")
    from configuration.presets import EVA02_VISION_CONFIG
    from training.plan import EVA02_L_336_PARAMETERS, _vision_parameters

    count, measured = _vision_parameters(EVA02_VISION_CONFIG)
    assert measured and count == EVA02_L_336_PARAMETERS
    assert count == pytest.approx(304e6, rel=0.01)  # EVA-02-L: "304M" (Fang et al., EVA-02, Table 1)
