"""numba CPU kernels of the Mamba mixer's short causal depthwise convolution + SiLU, forward and backward.

Time-major ``(batch, length, channels)`` tensors like the scan's (:mod:`.numba_scan`, whose float32 helpers and torch
plumbing these share). A work item is a batch row x ``CONV_TILE`` steps and runs whole channel rows, so every inner
loop is a long contiguous vector loop. The backward recomputes the pre-activation gradient of its tile and of the
``K - 1`` steps after it (the outputs that read the tile's inputs); the taps' and the bias's gradients are summed per
item and reduced afterwards in a fixed order, so any thread count gives bit-identical results.
"""

from __future__ import annotations

import numpy as np
import torch

try:  # in a try, like numba_scan's, so that transformers' import check passes a Hub folder where numba is absent
    import numba
    from numba import njit, prange
except ImportError as err:  # pragma: no cover - exercised in the clean-interpreter export tests
    raise ImportError(f"the numba CPU conv needs numba (pip install numba): {err}") from err

from .numba_scan import _F0, _F1, _FASTMATH, _np, _numba_threads, _pad, _reduce, _sigmoid, _weight, padded_channels

__all__ = ["CONV_TILE", "conv_silu_backward", "conv_silu_forward"]

# ---------------------------------------------------------------------------------------------------------------------
# Kernels
# ---------------------------------------------------------------------------------------------------------------------

# Steps per work item of the conv kernels: each item runs whole channel rows (long contiguous loops).
CONV_TILE = 32


@njit(fastmath=_FASTMATH, cache=True, inline="always")
def _pre_activation(x, wt, bias, b, t, acc):  # pragma: no cover - compiled by numba
    """acc[c] = bias[c] + sum_k wt[k, c] * x[b, t - K + 1 + k, c], over the taps that fall inside the sequence."""
    width = wt.shape[0]
    for c in range(acc.shape[0]):
        acc[c] = bias[c]
    for k in range(max(0, width - 1 - t), width):
        tt = t - width + 1 + k
        for c in range(acc.shape[0]):
            acc[c] += wt[k, c] * x[b, tt, c]


@njit(parallel=True, fastmath=_FASTMATH, cache=True)
def _conv_fwd(x, wt, bias, out):  # pragma: no cover - compiled by numba
    """out[b, t, c] = silu(bias[c] + sum_k wt[k, c] * x[b, t - K + 1 + k, c]). x, out: (b, l, d); wt: (K, d).

    Work items are (batch row, tile of CONV_TILE steps); each runs over whole rows of channels."""
    bsz, length, dim = x.shape
    tiles = -(-length // CONV_TILE)
    for item in prange(bsz * tiles):
        b = item // tiles
        t0 = (item - b * tiles) * CONV_TILE
        acc = np.empty(dim, dtype=np.float32)
        for t in range(t0, min(t0 + CONV_TILE, length)):
            _pre_activation(x, wt, bias, b, t, acc)
            for c in range(dim):
                out[b, t, c] = acc[c] * _sigmoid(acc[c])


@njit(parallel=True, fastmath=_FASTMATH, cache=True)
def _conv_bwd(x, wt, bias, dout, dx, w_part):  # pragma: no cover - compiled by numba
    """Gradients of _conv_fwd: dx (b, l, d); per-item partials w_part (b * tiles, K + 1, d): the taps', then the
    bias's. An item recomputes the pre-activation gradient of its tile and of the K - 1 steps after it."""
    bsz, length, dim = x.shape
    width = wt.shape[0]
    tiles = -(-length // CONV_TILE)
    for item in prange(bsz * tiles):
        b = item // tiles
        t0 = (item - b * tiles) * CONV_TILE
        t1 = min(t0 + CONV_TILE, length)
        t2 = min(t1 + width - 1, length)  # outputs t0 .. t2 - 1 read the tile's inputs
        gbuf = np.empty((CONV_TILE + width - 1, dim), dtype=np.float32)  # dL/d(pre-activation) at t0 + s
        w_part[item] = _F0
        for t in range(t0, t2):
            g = gbuf[t - t0]
            _pre_activation(x, wt, bias, b, t, g)
            for c in range(dim):
                pre = g[c]
                sg = _sigmoid(pre)
                g[c] = dout[b, t, c] * sg * (_F1 + pre * (_F1 - sg))
        for t in range(t0, t1):
            gb = w_part[item, width]
            g = gbuf[t - t0]
            for c in range(dim):
                dx[b, t, c] = _F0
                gb[c] += g[c]
            for k in range(width):
                tt = t + width - 1 - k  # the output step that read x_t through tap k
                if tt < length:
                    g = gbuf[tt - t0]
                    wk = w_part[item, k]
                    for c in range(dim):
                        dx[b, t, c] += wt[k, c] * g[c]
                        wk[c] += g[c] * x[b, t, c]


# ---------------------------------------------------------------------------------------------------------------------
# torch wrappers
# ---------------------------------------------------------------------------------------------------------------------


def conv_silu_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``silu(causal_depthwise_conv1d(x))`` in the time-major layout: ``x`` ``(b, l, d)``, ``weight`` ``(d, K)``."""
    bsz, length, dim = x.shape
    dp = padded_channels(dim)
    xp, wt = _pad(x, dp), _weight(weight.t(), dp)
    bp = torch.zeros(dp, dtype=torch.float32) if bias is None else _weight(bias, dp)
    out = torch.empty(bsz, length, dp, dtype=torch.float32)
    numba.set_num_threads(_numba_threads())
    _conv_fwd(_np(xp), _np(wt), _np(bp), _np(out))
    return out[..., :dim]


def conv_silu_backward(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, dout: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients ``(dx (b, l, d), dweight (d, K), dbias (d,))`` of :func:`conv_silu_forward`."""
    bsz, length, dim = x.shape
    dp = padded_channels(dim)
    xp, wt, gp = _pad(x, dp), _weight(weight.t(), dp), _pad(dout, dp)
    bp = torch.zeros(dp, dtype=torch.float32) if bias is None else _weight(bias, dp)
    dx = torch.empty(bsz, length, dp, dtype=torch.float32)
    # per work item: the taps' gradients, then the bias's
    w_part = torch.empty(bsz * -(-length // CONV_TILE), wt.shape[0] + 1, dp, dtype=torch.float32)
    numba.set_num_threads(_numba_threads())
    _conv_bwd(_np(xp), _np(wt), _np(bp), _np(gp), _np(dx), _np(w_part))
    w = _reduce(w_part[None])[0]  # (K + 1, dp)
    return dx[..., :dim], w[:-1, :dim].t(), w[-1, :dim]
