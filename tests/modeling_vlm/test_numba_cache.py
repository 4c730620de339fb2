"""The numba kernels give the same bits in the process that compiles them as in later ones that load numba's cache.

A demo's first run compiles the kernels and later runs load them from ``__pycache__``; with ``reassoc`` fast-math the
two code paths once summed a three-factor product in ``dB`` in different orders, so the first run's Mamba-VL differed
from every later one. Here two processes share a fresh ``NUMBA_CACHE_DIR``: the first compiles the kernels and writes
the cache, the second loads them from it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from modeling_vlm.selective_scan import numba_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not numba_available(), reason="the numba kernels need numba"),
]

ROOT = Path(__file__).resolve().parents[2]
WORKER = """
import sys, torch
from modeling_vlm.numba_conv import conv_silu_backward, conv_silu_forward
from modeling_vlm.numba_scan import scan_backward, scan_forward
g = torch.Generator().manual_seed(0)
b, l, d, n = 4, 100, 48, 16
u, dr, z, go = (torch.randn(b, l, d, generator=g) for _ in range(4))
A, B, C = -4 * torch.rand(n, d, generator=g), torch.randn(b, l, n, generator=g), torch.randn(b, l, n, generator=g)
D, bias, w = torch.randn(d, generator=g), 0.1 * torch.randn(d, generator=g), torch.randn(d, 4, generator=g)
out, h_last, saved = scan_forward(u, dr - 3, A, B, C, D, z, bias, True, None)
grads = [t for t in scan_backward(saved, True, True, go, None) if t is not None]
torch.save([out, h_last, *grads, conv_silu_forward(u, w, bias), *conv_silu_backward(u, w, bias, go)], sys.argv[1])
"""


def test_compiling_and_cached_kernels_give_identical_bits(tmp_path: Path) -> None:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    results = []
    for run in ("compiles", "loads"):
        out = tmp_path / f"{run}.pt"
        subprocess.run([sys.executable, "-c", WORKER, str(out)], check=True, env=env, cwd=ROOT, timeout=600)
        results.append(torch.load(out))
    assert any((tmp_path / "cache").rglob("*.nbc"))  # the second process did load compiled kernels
    for index, (first, later) in enumerate(zip(*results, strict=True)):
        assert torch.equal(first, later), f"output {index} differs between the compiling and the cached run"
