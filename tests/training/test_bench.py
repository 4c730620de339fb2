"""``vlm bench``: every figure of a tiny run in its JSON, the state-size relations, and bad settings refused."""

from __future__ import annotations

import json

import pytest

from training.bench import BenchConfig
from training.cli import main

BENCH_ARGS = [
    "bench",
    "--json",
    "--train-lengths", "640",
    "--contexts", "640,700",
    "--decode-batch-sizes", "1,2",
    "--decode-tokens", "2",
    "--repeats", "1",
    "--no-demo-step",
]  # fmt: skip


def pythia_parameters(width: int, layers: int, vocab: int = 512) -> int:
    """GPT-NeoX parameter count from its architecture (untied head, biased linears, two LayerNorms per layer)."""
    per_layer = 2 * 2 * width + (3 * width * width + 3 * width) + (width * width + width)
    per_layer += (width * 4 * width + 4 * width) + (4 * width * width + width)
    return vocab * width + layers * per_layer + 2 * width + vocab * width


def mamba_parameters(width: int, layers: int, vocab: int = 512, state: int = 16, conv: int = 4) -> int:
    """Mamba (v1) parameter count from its mixer: in_proj, depthwise conv, x_proj, dt_proj, A_log, D, out_proj."""
    inner, rank = 2 * width, -(-width // 16)
    per_layer = width + width * 2 * inner + (inner * conv + inner) + inner * (rank + 2 * state)
    per_layer += (rank * inner + inner) + inner * state + inner + inner * width
    return vocab * width + layers * per_layer + width  # head tied to the embedding


def test_bench_custom_width_and_demo_step(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "--json", "--width", "64", "--layers-pythia", "1", "--layers-mamba", "2", "--no-generation"]
    assert main([*args, "--train-lengths", "640", "--repeats", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["parameters"] == {"pythia": pythia_parameters(64, 1), "mamba": mamba_parameters(64, 2)}
    rows = {row["setting"]: row for row in result["rows"]}
    assert not any(setting.startswith("generate@") for setting in rows)
    (demo,) = [row for setting, row in rows.items() if setting.startswith("demo b16")]
    assert demo["measurement"] == "train_step_s" and demo["unit"] == "s"
    assert demo["pythia"] > 0 and demo["mamba/pythia"] == pytest.approx(demo["mamba"] / demo["pythia"])


def test_bench_json_emits_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(BENCH_ARGS) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["mamba_scan_path"] in ("fused", "fast", "reference")
    assert set(result["parameters"]) == {"pythia", "mamba"}
    rows = {(row["measurement"], row["setting"]): row for row in result["rows"]}
    expected = {("train_tokens_per_s", "train@640")}
    for context in (640, 700):
        expected.add(("prefill_s", f"generate@{context}"))
        for batch in (1, 2):
            for name in ("decode_ms_per_token", "decode_tokens_per_s", "state_mib"):
                expected.add((name, f"generate@{context} b{batch}"))
    for batch in (1, 2):
        expected |= {(f"{n} growth", f"700 / 640 b{batch}") for n in ("decode_ms_per_token", "state_mib")}
    assert expected <= set(rows)
    for row in rows.values():
        assert row["pythia"] > 0 and row["mamba"] > 0
        assert row["mamba/pythia"] == pytest.approx(row["mamba"] / row["pythia"])
    # Pythia's KV cache grows with the context and the batch; Mamba's recurrent state does not grow with the context.
    assert rows[("state_mib", "generate@700 b1")]["pythia"] > rows[("state_mib", "generate@640 b1")]["pythia"]
    assert rows[("state_mib", "generate@700 b1")]["mamba"] == rows[("state_mib", "generate@640 b1")]["mamba"]
    assert rows[("state_mib", "generate@640 b2")]["mamba"] == pytest.approx(
        2 * rows[("state_mib", "generate@640 b1")]["mamba"]
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"size": "huge"}, "size"),
        ({"dtype": "int8"}, "dtype"),
        ({"contexts": (100,)}, "Lengths"),
        ({"width": 0}, "width"),
        ({"width": 72}, "multiple of 16"),
        ({"layers_mamba": -1}, "layers_mamba"),
    ],
)
def test_bench_config_rejects_bad_values(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        BenchConfig(**kwargs)
