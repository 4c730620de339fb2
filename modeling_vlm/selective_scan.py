"""Selective scan (Mamba S6 recurrence) without the fused CUDA kernels.

transformers' Mamba falls back to a Python time loop that materialises ``(batch, channels, length, state)`` tensors
when ``mamba-ssm`` is not installed; on CPU that makes a Mamba training step hundreds of times slower than a
same-sized GPT-NeoX step. This module provides:

* :func:`selective_scan_reference` -- plain PyTorch time loop in float32; the ground truth (autograd through it).
* :func:`selective_scan_fast` -- same maths behind a ``torch.autograd.Function`` with an explicit backward:

  - ``"numba"`` backend (default on CPU where numba is installed): the fused, vectorised kernels of
    :mod:`.numba_scan` (16 channels' recurrences in the SIMD lanes, state in registers, ``softplus``, ``D`` and the
    ``silu(z)`` gate computed inside the kernels), checkpointed every 64 steps and recomputed in the backward.
    Memory is ``O(b*d*l + b*d*n*l/chunk)`` instead of ``O(b*d*l*n)``. :func:`selective_scan_time_major` is the
    same scan on ``(batch, length, channels)`` tensors, which the fused Mamba mixer path uses without transposes.
  - ``"torch_chunked"`` backend (default on CUDA/other devices, and on the CPU without numba): the sequence is cut
    into chunks, each chunk is solved with a log-depth (Kogge-Stone) parallel scan in PyTorch, chunks are chained
    through their boundary states, and the backward recomputes one chunk at a time (so peak memory is one chunk's
    ``(b, d, chunk, n)`` tensors).
  - ``"reference"``: :func:`selective_scan_reference`.

* :func:`mamba_ssm_available` -- whether the fused ``mamba_ssm`` + ``causal_conv1d`` kernels import.

Conventions follow mamba-ssm's ``selective_scan_fn``: ``u``/``delta``/``z`` are ``(b, d, l)``, ``A`` is ``(d, n)``
(negative), ``B``/``C`` are ``(b, n, l)``, ``D``/``delta_bias`` are ``(d,)``, ``initial_state`` is ``(b, d, n)``::

    delta_t = softplus(delta_t + delta_bias)            (bias / softplus optional)
    h_t     = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t
    out_t   = (C_t . h_t + D * u_t) * silu(z_t)        (D / z optional)

All maths is float32; ``out`` is returned in ``u``'s dtype and the last state (``return_last_state=True``) in float32,
like mamba-ssm.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from functools import cache
from typing import Literal

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

try:  # numba is optional: without it the chunked torch scan runs on the CPU too
    from .numba_conv import conv_silu_backward, conv_silu_forward
    from .numba_scan import scan_backward as numba_scan_backward
    from .numba_scan import scan_forward as numba_scan_forward
except ImportError:
    conv_silu_backward = conv_silu_forward = numba_scan_backward = numba_scan_forward = None

__all__ = [
    "ScanBackend",
    "causal_conv1d_silu_time_major",
    "mamba_ssm_available",
    "numba_available",
    "selective_scan_fast",
    "selective_scan_reference",
    "selective_scan_time_major",
]

ScanBackend = Literal["numba", "torch_chunked", "reference"]

logger = logging.getLogger(__name__)

# Chunk length of the torch backend: log2(64) = 6 scan levels; one chunk's (b, d, 64, n) tensors are the peak memory.
TORCH_CHUNK_SIZE = 64


# ---------------------------------------------------------------------------------------------------------------------
# Fused-kernel detection
# ---------------------------------------------------------------------------------------------------------------------


@cache
def mamba_ssm_available() -> bool:
    """Whether the fused ``mamba_ssm`` selective-scan and ``causal_conv1d`` CUDA kernels import (cached)."""
    for module, attribute in (("mamba_ssm", "selective_scan_fn"), ("causal_conv1d", "causal_conv1d_fn")):
        if importlib.util.find_spec(module) is None:
            return False
        try:
            # A wheel built against another torch/CUDA raises at import time (ImportError, OSError, RuntimeError ...):
            # treat every failure as "not available" rather than breaking model construction.
            if not hasattr(importlib.import_module(module), attribute):
                return False
        except Exception:
            return False
    return True


# ---------------------------------------------------------------------------------------------------------------------
# Reference implementation
# ---------------------------------------------------------------------------------------------------------------------


def _check_shapes(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor) -> None:
    if u.dim() != 3 or delta.shape != u.shape:
        raise ValueError(f"u and delta must be (batch, dim, length); got {tuple(u.shape)} and {tuple(delta.shape)}")
    bsz, dim, length = u.shape
    if A.dim() != 2 or A.shape[0] != dim:
        raise ValueError(f"A must be (dim, state) with dim={dim}; got {tuple(A.shape)}")
    n = A.shape[1]
    for name, t in (("B", B), ("C", C)):
        if tuple(t.shape) != (bsz, n, length):
            raise ValueError(f"{name} must be (batch, state, length)={(bsz, n, length)}; got {tuple(t.shape)}")


def selective_scan_reference(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    initial_state: torch.Tensor | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Ground-truth selective scan: float32 PyTorch time loop, differentiable by autograd."""
    _check_shapes(u, delta, A, B, C)
    dtype_in = u.dtype
    u_f, dt = u.float(), delta.float()  # (b, d, l)
    A_f, B_f, C_f = A.float(), B.float(), C.float()  # (d, n), (b, n, l), (b, n, l)
    if delta_bias is not None:
        dt = dt + delta_bias.float()[:, None]
    if delta_softplus:
        dt = F.softplus(dt)
    bsz, dim, length = u.shape
    h = (
        initial_state.float() if initial_state is not None else u_f.new_zeros(bsz, dim, A.shape[1])  # (b, d, n)
    )
    ys = []
    for t in range(length):
        dA = torch.exp(dt[:, :, t, None] * A_f)  # (b, d, n)
        h = dA * h + (dt[:, :, t] * u_f[:, :, t])[:, :, None] * B_f[:, None, :, t]  # (b, d, n)
        ys.append((h * C_f[:, None, :, t]).sum(-1))  # (b, d)
    y = torch.stack(ys, dim=-1) if ys else u_f.new_zeros(bsz, dim, 0)  # (b, d, l)
    out = _apply_skip_and_gate(y, u_f, D, z).to(dtype_in)
    return (out, h) if return_last_state else out


def _apply_skip_and_gate(
    y: torch.Tensor, u_f: torch.Tensor, D: torch.Tensor | None, z: torch.Tensor | None
) -> torch.Tensor:
    # y, u_f: (b, d, l) float32; D: (d,); z: (b, d, l)
    if D is not None:
        y = y + u_f * D.float()[:, None]
    if z is not None:
        y = y * F.silu(z.float())
    return y


# ---------------------------------------------------------------------------------------------------------------------
# Chunked PyTorch scan (any device)
# ---------------------------------------------------------------------------------------------------------------------


def _torch_chunk(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, Bt: torch.Tensor, Ct: torch.Tensor, h0: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Differentiable scan of one chunk; returns y (b, d, T) and the chunk's last state (b, d, n)."""
    # u, delta: (b, d, T); A: (d, n); Bt, Ct: (b, T, n); h0: (b, d, n)
    length = u.shape[-1]
    a = torch.exp(delta[..., None] * A[:, None, :])  # (b, d, T, n) per-step decay
    x = (delta * u)[..., None] * Bt[:, None]  # (b, d, T, n) per-step input
    # Kogge-Stone inclusive scan of the affine maps h -> a*h + x: log2(T) levels of elementwise work. Products of
    # decays in (0, 1] can only underflow to 0 (the correct limit), unlike exp(-cumsum) formulations.
    offset = 1
    while offset < length:
        x = torch.cat([x[:, :, :offset], x[:, :, offset:] + a[:, :, offset:] * x[:, :, :-offset]], dim=2)
        a = torch.cat([a[:, :, :offset], a[:, :, offset:] * a[:, :, :-offset]], dim=2)
        offset *= 2
    h = x + a * h0[:, :, None, :]  # (b, d, T, n) states of the chunk
    # multiply + sum rather than einsum: elementwise ops are not down-cast by autocast, so this stays float32
    y = (h * Ct[:, None]).sum(-1)  # (b, d, T)
    return y, h[:, :, -1]


def _torch_chunked_forward(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, Bt: torch.Tensor, Ct: torch.Tensor, h0: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    chunk = TORCH_CHUNK_SIZE
    length = u.shape[-1]
    ys, ckpts = [], []
    h = h0
    for t0 in range(0, length, chunk):
        ckpts.append(h)
        y, h = _torch_chunk(u[..., t0 : t0 + chunk], delta[..., t0 : t0 + chunk], A, Bt[:, t0 : t0 + chunk],
                            Ct[:, t0 : t0 + chunk], h)  # fmt: skip
        ys.append(y)
    ckpt = torch.stack(ckpts, dim=2) if ckpts else h0[:, :, None]  # (b, d, n_chunks, n)
    y = torch.cat(ys, dim=-1) if ys else u.new_zeros(u.shape)
    return y, h, ckpt


def _torch_chunked_backward(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    Bt: torch.Tensor,
    Ct: torch.Tensor,
    ckpt: torch.Tensor,
    dy: torch.Tensor,
    dh_last: torch.Tensor,
) -> tuple[torch.Tensor, ...]:
    chunk = TORCH_CHUNK_SIZE
    length = u.shape[-1]
    du, ddelta = torch.zeros_like(u), torch.zeros_like(delta)
    dA = torch.zeros_like(A)
    dBt, dCt = torch.zeros_like(Bt), torch.zeros_like(Ct)
    dh = dh_last
    # Gradient checkpointing per chunk, last chunk first: recompute one chunk with autograd from its stored initial
    # state and push (dy_chunk, dL/dh_end) through it, which yields dL/dh_start for the previous chunk.
    for j in reversed(range(ckpt.shape[2])):
        sl = slice(j * chunk, min((j + 1) * chunk, length))
        with torch.enable_grad():
            leaves = [
                t.detach().requires_grad_()
                for t in (u[..., sl], delta[..., sl], A, Bt[:, sl], Ct[:, sl], ckpt[:, :, j])
            ]
            y, h_end = _torch_chunk(*leaves)
            grads = torch.autograd.grad((y, h_end), leaves, (dy[..., sl], dh))
        du[..., sl], ddelta[..., sl] = grads[0], grads[1]
        dA += grads[2]
        dBt[:, sl], dCt[:, sl] = grads[3], grads[4]
        dh = grads[5]
    return du, ddelta, dA, dBt, dCt, dh


# ---------------------------------------------------------------------------------------------------------------------
# autograd wrapper
# ---------------------------------------------------------------------------------------------------------------------


class _SelectiveScanCore(torch.autograd.Function):
    """y_t = C_t . h_t with h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t; saves only O(b*d*l + b*d*n*l/chunk)."""

    @staticmethod
    def forward(ctx, u, delta, A, Bt, Ct, h0):  # type: ignore[override]
        # u, delta: (b, d, l); A: (d, n); Bt, Ct: (b, l, n); h0: (b, d, n); all float32 contiguous
        y, h_last, ckpt = _torch_chunked_forward(u, delta, A, Bt, Ct, h0)
        ctx.save_for_backward(u, delta, A, Bt, Ct, ckpt)
        return y, h_last

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, dh_last):  # type: ignore[override]
        u, delta, A, Bt, Ct, ckpt = ctx.saved_tensors
        dy = torch.zeros_like(u) if dy is None else dy.float().contiguous()
        dh_last = torch.zeros_like(ckpt[:, :, 0]) if dh_last is None else dh_last.float().contiguous()
        grads = _torch_chunked_backward(u, delta, A, Bt, Ct, ckpt, dy, dh_last)  # du, ddelta, dA, dBt, dCt, dh0
        # one reverse sweep yields all gradients together; only drop those autograd does not want
        return tuple(g if need else None for g, need in zip(grads, ctx.needs_input_grad, strict=True))


class _FusedNumbaScan(torch.autograd.Function):
    """The whole selective scan (softplus, D skip, silu gate included) in the numba kernels, time-major tensors."""

    @staticmethod
    def forward(ctx, u, draw, At, Bt, Ct, D, z, bias, h0, softplus):  # type: ignore[override]
        # u, draw, z: (b, l, d); At: (n, d); Bt, Ct: (b, l, n); D, bias: (d,); h0: (b, n, d); any float dtype
        out, h_last, saved = numba_scan_forward(u, draw, At, Bt, Ct, D, z, bias, softplus, h0)
        ctx.softplus, ctx.gate = softplus, z is not None
        ctx.dtypes = tuple(None if t is None else t.dtype for t in (u, draw, At, Bt, Ct, D, z, bias, h0))
        ctx.out_shape = out.shape
        ctx.save_for_backward(*saved)
        return out, h_last

    @staticmethod
    @once_differentiable
    def backward(ctx, dout, dh_last):  # type: ignore[override]
        saved = ctx.saved_tensors
        if dout is None:
            dout = torch.zeros(ctx.out_shape, dtype=torch.float32)
        grads = numba_scan_backward(saved, ctx.softplus, ctx.gate, dout, dh_last)
        # du, ddraw, dAt, dBt, dCt, dD, dz, dbias, dh0: one reverse sweep yields them all; cast to the inputs' dtypes
        grads = tuple(
            g.to(dtype) if need and g is not None else None
            for g, need, dtype in zip(grads, ctx.needs_input_grad[:9], ctx.dtypes, strict=True)
        )
        return (*grads, None)


def numba_available() -> bool:
    """Whether the numba CPU kernels imported (numba is installed)."""
    return numba_scan_forward is not None


@cache
def _warn_without_numba() -> None:
    logger.warning("numba is not installed: the Mamba scan runs the slower torch path on the CPU (pip install numba).")


def _default_backend(device: torch.device) -> ScanBackend:
    if device.type != "cpu":
        return "torch_chunked"
    if not numba_available():
        _warn_without_numba()
        return "torch_chunked"
    return "numba"


def selective_scan_fast(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    initial_state: torch.Tensor | None = None,
    *,
    backend: ScanBackend | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Selective scan with an explicit, memory-lean backward; ``backend`` defaults to numba on CPU, torch elsewhere."""
    _check_shapes(u, delta, A, B, C)
    backend = backend or _default_backend(u.device)
    if backend == "reference" or u.shape[-1] == 0:  # empty sequences: nothing to gain, avoid empty-chunk corner cases
        return selective_scan_reference(
            u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, initial_state
        )
    if backend == "numba" and u.device.type != "cpu":
        raise ValueError("the numba backend runs on CPU tensors only; use backend='torch_chunked'")
    if backend == "numba" and not numba_available():
        raise ValueError("the numba backend needs numba (pip install numba); use backend='torch_chunked'")
    if backend not in ("numba", "torch_chunked"):
        raise ValueError(f"unknown backend {backend!r}")

    dtype_in = u.dtype
    if backend == "numba":
        # the kernels are time-major: u and B/C arrive from transformers as transposed views of (b, l, .) tensors,
        # so these transposes are mostly free
        out, h_last = _FusedNumbaScan.apply(
            u.transpose(1, 2), delta.transpose(1, 2), A.t(), B.transpose(1, 2), C.transpose(1, 2), D,
            None if z is None else z.transpose(1, 2), delta_bias,
            None if initial_state is None else initial_state.transpose(1, 2), bool(delta_softplus),
        )  # fmt: skip
        out = out.transpose(1, 2).to(dtype_in)  # (b, d, l)
        return (out, h_last.transpose(1, 2).contiguous()) if return_last_state else out

    return _chunked_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, initial_state)


def _chunked_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None,
    z: torch.Tensor | None,
    delta_bias: torch.Tensor | None,
    delta_softplus: bool,
    return_last_state: bool,
    initial_state: torch.Tensor | None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The ``torch_chunked`` backend of :func:`selective_scan_fast` (same arguments)."""
    dtype_in = u.dtype
    bsz, dim, _ = u.shape
    # Elementwise pre/post-processing stays in (autograd-tracked) PyTorch: it is O(b*d*l), negligible next to the
    # O(b*d*l*n) scan, and keeps the chunked torch scan down to the recurrence itself.
    u_f = u.float()  # (b, d, l)
    dt = delta.float()  # (b, d, l)
    if delta_bias is not None:
        dt = dt + delta_bias.float()[:, None]
    if delta_softplus:
        dt = F.softplus(dt)
    # Time-major B/C: (b, l, n) so B_t, C_t are contiguous n-vectors. transformers passes B as a transposed view of a
    # (b, l, n) tensor, so this is usually free.
    Bt = B.float().transpose(1, 2).contiguous()
    Ct = C.float().transpose(1, 2).contiguous()
    h0 = u_f.new_zeros(bsz, dim, A.shape[1]) if initial_state is None else initial_state.float().contiguous()
    y, h_last = _SelectiveScanCore.apply(
        u_f.contiguous(), dt.contiguous(), A.float().contiguous(), Bt, Ct, h0
    )  # (b, d, l), (b, d, n)
    out = _apply_skip_and_gate(y, u_f, D, z).to(dtype_in)
    return (out, h_last) if return_last_state else out


def selective_scan_time_major(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
) -> torch.Tensor:
    """:func:`selective_scan_fast` on time-major tensors, on the CPU with numba: ``u``/``delta``/``z`` ``(b, l, d)``,
    ``A`` ``(d, n)``, ``B``/``C`` ``(b, l, n)``; returns float32 ``(b, l, d)``. Strided views are read as they are."""
    if not numba_available():
        raise ValueError("selective_scan_time_major needs numba (pip install numba)")
    if u.device.type != "cpu":
        raise ValueError("selective_scan_time_major runs on CPU tensors only")
    _check_shapes(u.transpose(1, 2), delta.transpose(1, 2), A, B.transpose(1, 2), C.transpose(1, 2))
    out, _ = _FusedNumbaScan.apply(u, delta, A.t(), B, C, D, z, delta_bias, None, bool(delta_softplus))
    return out


class _CausalConvSiLU(torch.autograd.Function):
    """``silu(causal depthwise conv1d)`` on time-major tensors in the numba kernels (Mamba's short convolution)."""

    @staticmethod
    def forward(ctx, x, weight, bias):  # type: ignore[override]
        ctx.dtypes = (x.dtype, weight.dtype, None if bias is None else bias.dtype)
        ctx.save_for_backward(x, weight, bias)
        return conv_silu_forward(x, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, dout):  # type: ignore[override]
        x, weight, bias = ctx.saved_tensors
        grads = conv_silu_backward(x, weight, bias, dout)
        return tuple(
            g.to(dtype) if need else None
            for g, need, dtype in zip(grads, ctx.needs_input_grad, ctx.dtypes, strict=True)
        )


def causal_conv1d_silu_time_major(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``silu(conv1d(x, weight, bias, padding=K-1, groups=d)[:l])`` with ``x`` ``(b, l, d)`` (strided views read as
    they are) and ``weight`` ``(d, K)``; float32 ``(b, l, d)`` out. CPU with numba only."""
    if not numba_available() or x.device.type != "cpu":
        raise ValueError("causal_conv1d_silu_time_major runs on CPU tensors with numba installed")
    if x.dim() != 3 or weight.dim() != 2 or weight.shape[0] != x.shape[-1]:
        raise ValueError(
            f"x must be (batch, length, d) and weight (d, K); got {tuple(x.shape)}, {tuple(weight.shape)}"
        )
    return _CausalConvSiLU.apply(x, weight, bias)
