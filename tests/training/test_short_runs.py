"""The numba kernels compiled in a child process: the first run after an install matches every later run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("numba")

ROOT = Path(__file__).resolve().parents[2]

# Seeded inputs at the demo's shape (b16, 68 tokens, 256 channels, state 16) through the fast path's kernels; prints
# a hash of every output and gradient.
_GRADIENTS = """
import hashlib, torch
from modeling_vlm import numba_conv, numba_scan
g = torch.Generator().manual_seed(0)
b, l, d, n = 16, 68, 256, 16
u, draw, z, dout = (torch.randn(b, l, d, generator=g) for _ in range(4))
A, B, C = -torch.rand(n, d, generator=g) - 0.1, torch.randn(b, l, n, generator=g), torch.randn(b, l, n, generator=g)
D, bias, w = torch.randn(d, generator=g), torch.randn(d, generator=g), torch.randn(d, 4, generator=g)
out, h, saved = numba_scan.scan_forward(u, draw, A, B, C, D, z, bias, True, None)
tensors = [out, h, *numba_scan.scan_backward(saved, True, True, dout, None)]
tensors += [numba_conv.conv_silu_forward(u, w, bias), *numba_conv.conv_silu_backward(u, w, bias, dout)]
print(" ".join(hashlib.sha1(t.contiguous().numpy().tobytes()).hexdigest()[:12] for t in tensors))
"""


def _hashes(cache: Path, *, compile_in_child: bool) -> str:
    prelude = "from training.short_runs import compile_cpu_kernels_in_child\nassert compile_cpu_kernels_in_child()\n"
    code = (prelude if compile_in_child else "") + _GRADIENTS
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout.strip()


def test_the_first_run_on_an_empty_cache_matches_a_run_on_the_warm_cache(tmp_path: Path) -> None:
    cache = tmp_path / "numba-cache"
    first = _hashes(cache, compile_in_child=True)  # empty cache: the child compiles, this process loads
    assert any(cache.rglob("*.nbi"))  # the child left the kernels in the cache
    later = _hashes(cache, compile_in_child=False)  # what every later run does
    assert first == later
    assert len(first.split()) == 2 + 9 + 4  # out, h; the scan's 9 gradients (dz included); the conv and its 3
