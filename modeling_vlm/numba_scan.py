"""Parallel numba CPU kernels of the selective scan: the forward recurrence and its adjoint, state in registers.

One recurrence per ``(batch, channel)`` with the state held in a length-``n`` local array. The forward stores the
state only every ``NUMBA_CHUNK_SIZE`` steps; the backward recomputes each chunk's states from its checkpoint into a
small per-thread buffer and runs the reverse (adjoint) recurrence over it. Memory is ``O(b*d*l + b*d*n*l/chunk)``
instead of ``O(b*d*l*n)``.

numba is optional: importing this module raises ``ImportError`` without it, and :mod:`.selective_scan` then runs the
chunked torch scan on the CPU as well (the import sits in a ``try`` so that a folder exported for the Hub loads
where numba is not installed).
"""

from __future__ import annotations

import math

import numpy as np
import torch

try:
    import numba
    from llvmlite import ir
    from numba import njit, prange, types
    from numba.extending import intrinsic
except ImportError as err:  # pragma: no cover - exercised in the clean-interpreter export tests
    raise ImportError(f"the numba CPU scan needs numba (pip install numba): {err}") from err

__all__ = ["NUMBA_CHUNK_SIZE", "numba_backward", "numba_forward"]

# Steps between two stored states in the forward; the backward recomputes this many states per channel into a
# (chunk + 1, n) buffer that stays in L1. 64 keeps the checkpoints at n/64 of a (b, d, l) tensor.
NUMBA_CHUNK_SIZE = 64

# Everything is float32: a float64 literal would silently promote the whole inner loop to float64 (half the SIMD
# width), hence the np.float32 module constants, which numba freezes as typed compile-time constants.
#
# numba has no vectorised exp without Intel SVML (not a dependency), so a scalar libm call per (t, k) would dominate.
# _exp_f32 below is a branch-free Cephes-style expf (range reduction + degree-6 polynomial + exponent-bit scaling);
# being straight-line arithmetic, LLVM vectorises it across the state dimension together with the recurrence.

_F0 = np.float32(0.0)
_F1 = np.float32(1.0)
_HALF = np.float32(0.5)
_LOG2E = np.float32(1.44269504088896341)
_LN2_HI = np.float32(0.693359375)
_LN2_LO = np.float32(-2.12194440e-4)
# Below _EXP_MIN exp underflows float32 -> 0 (returning 0 also avoids denormals, which are slow); fx stays >= -126.
_EXP_MIN = np.float32(-87.33654)
_EXP_MAX = np.float32(88.72283)  # above: exp overflows float32 -> inf
_P0 = np.float32(1.9875691500e-4)
_P1 = np.float32(1.3981999507e-3)
_P2 = np.float32(8.3334519073e-3)
_P3 = np.float32(4.1665795894e-2)
_P4 = np.float32(1.6666665459e-1)
_P5 = np.float32(5.0000001201e-1)
_F127 = np.float32(127.0)
_INF = np.float32(np.inf)


@intrinsic
def _pow2_f32(typingctx, fx):  # pragma: no cover - compiled by numba
    """2**fx for an integral float32 fx in [-126, 127], built in the exponent bits (vectorisable LLVM ops)."""
    if fx != types.float32:
        return None

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        # numba would widen int32 arithmetic to int64 (halving SIMD width), so do it in LLVM IR directly
        e = builder.fptosi(args[0], i32)
        bits = builder.shl(builder.add(e, ir.Constant(i32, 127)), ir.Constant(i32, 23))
        return builder.bitcast(bits, ir.FloatType())

    return types.float32(types.float32), codegen


@njit(fastmath=False, cache=True, inline="always")
def _exp_f32(x):  # pragma: no cover - compiled by numba
    """float32 exp, ~1 ulp, vectorisable."""
    xc = min(max(x, _EXP_MIN), _EXP_MAX)
    fx = np.floor(xc * _LOG2E + _HALF)  # x = fx * ln2 + r, |r| <= ln2/2
    r = xc - fx * _LN2_HI - fx * _LN2_LO
    p = ((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5
    p = p * r * r + r + _F1
    # fx <= 128 (= 128 only at the upper clamp, which is mapped to inf below)
    res = p * _pow2_f32(min(fx, _F127))
    if x <= _EXP_MIN:
        res = _F0
    if x >= _EXP_MAX:
        res = _INF
    return res


@njit(parallel=True, fastmath=False, cache=True)
def _scan_fwd_numba(u, delta, A, Bt, Ct, h0, chunk, y, ckpt, h_last):  # pragma: no cover - compiled by numba
    """Forward recurrence; writes y (b, d, l), checkpoints (b, d, n_chunks, n) and the last state (b, d, n)."""
    # u, delta, y: (b, d, l); A: (d, n); Bt, Ct: (b, l, n) (time-major so B_t/C_t are contiguous n-vectors)
    # h0, h_last: (b, d, n); ckpt: (b, d, ceil(l / chunk), n) = state *before* step j * chunk
    bsz, dim, length = u.shape
    n = A.shape[1]
    for i in prange(bsz * dim):
        b = i // dim
        c = i - b * dim
        h = np.empty(n, dtype=np.float32)  # state of this (b, c) recurrence
        prod = np.empty(n, dtype=np.float32)
        a = A[c]
        for k in range(n):
            h[k] = h0[b, c, k]
        for t in range(length):
            if t % chunk == 0:
                ck = ckpt[b, c, t // chunk]
                for k in range(n):
                    ck[k] = h[k]
            dt = delta[b, c, t]
            dtu = dt * u[b, c, t]
            bt = Bt[b, t]
            ct = Ct[b, t]
            # vectorised over the state: n independent lanes (exp, fma)
            for k in range(n):
                hk = _exp_f32(dt * a[k]) * h[k] + dtu * bt[k]
                h[k] = hk
                prod[k] = hk * ct[k]
            # the reduction stays sequential (fastmath=False forbids reassociation); it is off the h recurrence's
            # critical path, so out-of-order execution overlaps it with the next steps
            acc = _F0
            for k in range(n):
                acc += prod[k]
            y[b, c, t] = acc
        for k in range(n):
            h_last[b, c, k] = h[k]


@njit(fastmath=False, cache=True, inline="always")
def _recompute_chunk(u, delta, a, Bt, b, c, t0, t1, hbuf, ebuf):  # pragma: no cover - compiled by numba
    """States h_{t0} .. h_{t1-1} into hbuf[1:] from h_{t0-1} in hbuf[0], and each step's exp(delta_t * A) in ebuf."""
    n = a.shape[0]
    for t in range(t0, t1):
        s = t - t0
        dt = delta[b, c, t]
        dtu = dt * u[b, c, t]
        bt = Bt[b, t]
        for k in range(n):
            e = _exp_f32(dt * a[k])
            ebuf[s, k] = e
            hbuf[s + 1, k] = e * hbuf[s, k] + dtu * bt[k]


@njit(fastmath=False, cache=True, inline="always")
def _reverse_chunk(
    u, delta, a, Bt, Ct, dy, b, c, t0, t1, hbuf, ebuf, adj, dA_acc, scratch, dBb, dCb, du, ddelta
):  # pragma: no cover - compiled by numba
    """Adjoint steps t1-1 .. t0: adj_t = dy_t * C_t + exp(delta_{t+1} A) * adj_{t+1}, and every input's gradient."""
    n = a.shape[0]
    tmp_dt = scratch[0]
    tmp_du = scratch[1]
    for t in range(t1 - 1, t0 - 1, -1):
        s = t - t0
        g = dy[b, c, t]
        dt = delta[b, c, t]
        ut = u[b, c, t]
        dtu = dt * ut
        bt = Bt[b, t]
        ct = Ct[b, t]
        dbt = dBb[t]
        dct = dCb[t]
        for k in range(n):
            hk = hbuf[s + 1, k]
            dct[k] += g * hk  # y_t = C_t . h_t
            ak = adj[k] + g * ct[k]  # total dL/dh_t
            e = ebuf[s, k]
            gl = ak * hbuf[s, k] * e  # dL/d(delta_t * A_k) through exp
            dA_acc[k] += gl * dt
            tmp_dt[k] = gl * a[k] + ak * ut * bt[k]  # dL/d delta_t, per state
            tmp_du[k] = ak * bt[k]  # dL/d u_t / delta_t, per state
            dbt[k] += ak * dtu
            adj[k] = ak * e  # dL/dh_{t-1} from this step
        acc_dt = _F0
        acc_du = _F0
        for k in range(n):
            acc_dt += tmp_dt[k]
            acc_du += tmp_du[k]
        ddelta[b, c, t] = acc_dt
        du[b, c, t] = acc_du * dt


@njit(parallel=True, fastmath=False, cache=True)
def _scan_bwd_numba(
    u, delta, A, Bt, Ct, ckpt, dy, dh_last, chunk, n_blocks, du, ddelta, dA_part, dBt_part, dCt_part, dh0
):  # pragma: no cover - compiled by numba
    """Reverse (adjoint) recurrence over recomputed chunks; writes gradients of all scan inputs."""
    # u, delta, dy, du, ddelta: (b, d, l); A: (d, n); Bt, Ct: (b, l, n); ckpt: (b, d, n_chunks, n)
    # dh_last, dh0, dA_part: (b, d, n)  (dA summed over batch by the caller)
    # dBt_part, dCt_part: (b, n_blocks, l, n): B/C are shared by all channels of a batch row, so each parallel work
    # item (one batch row x one block of channels) accumulates into its own slice; the caller sums over blocks.
    bsz, dim, length = u.shape
    n = A.shape[1]
    n_chunks = ckpt.shape[2]
    block = (dim + n_blocks - 1) // n_blocks
    for item in prange(bsz * n_blocks):
        b = item // n_blocks
        blk = item - b * n_blocks
        hbuf = np.empty((chunk + 1, n), dtype=np.float32)  # h_{t0-1} .. h_{t1-1} of the current chunk
        ebuf = np.empty((chunk, n), dtype=np.float32)  # exp(delta_t * A) of the current chunk
        adj = np.empty(n, dtype=np.float32)  # dL/dh_t flowing back from later steps
        dA_acc = np.empty(n, dtype=np.float32)
        scratch = np.empty((2, n), dtype=np.float32)  # per-state terms of dL/d delta_t and dL/d u_t
        for c in range(blk * block, min(dim, (blk + 1) * block)):
            a = A[c]
            for k in range(n):
                adj[k] = dh_last[b, c, k]
                dA_acc[k] = _F0
            for j in range(n_chunks - 1, -1, -1):
                t0 = j * chunk
                t1 = min(t0 + chunk, length)
                for k in range(n):
                    hbuf[0, k] = ckpt[b, c, j, k]
                _recompute_chunk(u, delta, a, Bt, b, c, t0, t1, hbuf, ebuf)
                _reverse_chunk(
                    u, delta, a, Bt, Ct, dy, b, c, t0, t1, hbuf, ebuf, adj, dA_acc, scratch,
                    dBt_part[b, blk], dCt_part[b, blk], du, ddelta,
                )  # fmt: skip
            for k in range(n):
                dh0[b, c, k] = adj[k]
                dA_part[b, c, k] = dA_acc[k]


def _numba_threads() -> int:
    # Follow torch's intra-op thread setting (users cap it with torch.set_num_threads) within numba's pool size.
    return max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def numba_forward(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, Bt: torch.Tensor, Ct: torch.Tensor, h0: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The scan's outputs y (b, d, l), last state (b, d, n) and state checkpoints (b, d, n_chunks, n)."""
    # all float32 contiguous CPU; u, delta: (b, d, l); A: (d, n); Bt, Ct: (b, l, n); h0: (b, d, n)
    bsz, dim, length = u.shape
    n = A.shape[1]
    chunk = NUMBA_CHUNK_SIZE
    y = torch.empty(bsz, dim, length, dtype=torch.float32)
    ckpt = torch.empty(bsz, dim, max(1, math.ceil(length / chunk)), n, dtype=torch.float32)
    h_last = torch.empty(bsz, dim, n, dtype=torch.float32)
    numba.set_num_threads(_numba_threads())
    _scan_fwd_numba(_np(u), _np(delta), _np(A), _np(Bt), _np(Ct), _np(h0), chunk, _np(y), _np(ckpt), _np(h_last))
    return y, h_last, ckpt


def numba_backward(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    Bt: torch.Tensor,
    Ct: torch.Tensor,
    ckpt: torch.Tensor,
    dy: torch.Tensor,
    dh_last: torch.Tensor,
) -> tuple[torch.Tensor, ...]:
    """Gradients (du, ddelta, dA, dBt, dCt, dh0) of the scan from dy and dh_last, recomputing from checkpoints."""
    bsz, dim, length = u.shape
    n = A.shape[1]
    threads = _numba_threads()
    # Enough work items for load balance (~4 per thread) while keeping the per-block dB/dC partials small.
    n_blocks = max(1, min(dim, math.ceil(4 * threads / bsz)))
    du = torch.empty_like(u)
    ddelta = torch.empty_like(delta)
    dA_part = torch.empty(bsz, dim, n, dtype=torch.float32)
    dBt_part = torch.zeros(bsz, n_blocks, length, n, dtype=torch.float32)
    dCt_part = torch.zeros(bsz, n_blocks, length, n, dtype=torch.float32)
    dh0 = torch.empty(bsz, dim, n, dtype=torch.float32)
    numba.set_num_threads(threads)
    _scan_bwd_numba(
        _np(u), _np(delta), _np(A), _np(Bt), _np(Ct), _np(ckpt), _np(dy), _np(dh_last),
        NUMBA_CHUNK_SIZE, n_blocks,
        _np(du), _np(ddelta), _np(dA_part), _np(dBt_part), _np(dCt_part), _np(dh0),
    )  # fmt: skip
    return du, ddelta, dA_part.sum(0), dBt_part.sum(1), dCt_part.sum(1), dh0
