"""Fused, vectorised numba CPU kernels of the Mamba mixer's selective scan (the conv's are in :mod:`.numba_conv`).

Layout: time-major ``(batch, length, channels)`` for every per-channel tensor, so that each parallel work item of the
scan (one batch row x ``LANES`` adjacent channels) keeps ``LANES`` independent recurrences in the SIMD lanes of a
register and reads contiguous channel vectors at every step; ``B``/``C`` are ``(batch, length, state)`` (shared by all
channels). The scan kernels see the channel axis split as ``(channels // LANES, LANES)`` (a free view): indexed by a
plain loop counter, the lane axis needs none of numba's negative-index wrap-around, so LLVM loads and stores whole
vectors (with ``c0 + j`` indices it emitted gathers and scatters: 1.5-2x slower). Each step software-prefetches the
rows it reads a few steps ahead: an item's rows lie ``channels * 4`` bytes apart, a stride the hardware prefetchers
do not follow across pages, and cold rows cost the backward ~1.6x.

Selective scan (forward and adjoint) with everything element-wise fused in::

    delta_t = softplus(dt_t + dt_bias)                     (softplus optional, dt_bias zeros when absent)
    h_t     = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t
    out_t   = (C_t . h_t + D * u_t) * silu(z_t)            (gate optional, D zeros when absent)

so nothing of size ``(b, l, d, n)`` and no ``(b, l, d)`` temporaries for ``delta``, the skip or the gate exist. The
forward stores the state every ``NUMBA_CHUNK_SIZE`` steps; the backward recomputes each chunk into a per-item buffer
(``(chunk + 1, n, LANES)`` floats, in L1/L2) and runs the reverse recurrence over it, recomputing ``delta`` and the
gate's input on the way. Memory is ``O(b*l*d + b*d*n*l/chunk)``.

Determinism: work items are fixed by the shapes (never by the thread count), each runs sequentially, and every sum
across items (``dA``, ``dB``, ``dC``, ``dD``, ``dt_bias``, conv weights) is done afterwards in a fixed order, so
``torch.set_num_threads(1)`` and any other thread count give bit-identical results.

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
    from numba.core import cgutils
    from numba.extending import intrinsic
except ImportError as err:  # pragma: no cover - exercised in the clean-interpreter export tests
    raise ImportError(f"the numba CPU scan needs numba (pip install numba): {err}") from err

__all__ = [
    "LANES",
    "NUMBA_CHUNK_SIZE",
    "scan_backward",
    "scan_forward",
]

# Steps between two stored states in the forward (the backward recomputes this many states per work item).
NUMBA_CHUNK_SIZE = 64
# Channels per work item, held in SIMD lanes: 16 float32 = one AVX-512 register or two AVX2 registers. Channel
# counts that are not a multiple are zero-padded by the wrappers (zero A, u, D: the padded lanes stay at zero).
LANES = 16
# Steps ahead that the kernels prefetch the rows they read (see the module docstring).
_PF = 6

# Everything is float32: a float64 literal would silently promote the whole inner loop to float64 (half the SIMD
# width), hence the np.float32 module constants, which numba freezes as typed compile-time constants.
#
# numba has no vectorised exp/log without Intel SVML (not a dependency), so a scalar libm call per (t, k) would
# dominate. _exp_f32 / _log_f32 below are branch-free Cephes-style polynomials with exponent-bit manipulation; being
# straight-line arithmetic, LLVM vectorises them across the lanes together with the recurrence.
# "contract" (fused multiply-add) and "reassoc" only: no approximations of division or of special values.
_FASTMATH = {"contract", "reassoc"}

_F0 = np.float32(0.0)
_F1 = np.float32(1.0)
_HALF = np.float32(0.5)
_LOG2E = np.float32(1.44269504088896341)
_LN2 = np.float32(0.6931471805599453)
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
_SQRTH = np.float32(0.70710678118654752)
_L0 = np.float32(7.0376836292e-2)
_L1 = np.float32(-1.1514610310e-1)
_L2 = np.float32(1.1676998740e-1)
_L3 = np.float32(-1.2420140846e-1)
_L4 = np.float32(1.4249322787e-1)
_L5 = np.float32(-1.6668057665e-1)
_L6 = np.float32(2.0000714765e-1)
_L7 = np.float32(-2.4999993993e-1)
_L8 = np.float32(3.3333331174e-1)
# softplus(x) = x above _SP_HI and exp(x) below -_SP_HI, both exact in float32 to < 1 ulp
_SP_HI = np.float32(15.0)
_SP_LO = np.float32(-15.0)


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


def _prefetch_codegen(write: int):
    # llvm.prefetch(address, rw, locality 3 = keep in all levels, data cache) at the address of arr[indices, 0...]
    def codegen(context, builder, signature, args):  # pragma: no cover - compiled by numba
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        idx = [context.cast(builder, v, t, types.intp) for v, t in zip(args[1:], signature.args[1:], strict=True)]
        idx += [context.get_constant(types.intp, 0)] * (aryty.ndim - len(idx))
        ptr = cgutils.get_item_pointer2(
            context, builder, ary.data, cgutils.unpack_tuple(builder, ary.shape),
            cgutils.unpack_tuple(builder, ary.strides), aryty.layout, idx, wraparound=False, boundscheck=False,
        )  # fmt: skip
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        name = "llvm.prefetch.p0" if str(i8p) == "ptr" else "llvm.prefetch.p0i8"  # opaque / typed pointers
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), name)
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(write), i32(3), i32(1)])
        return context.get_dummy_value()

    return codegen


@intrinsic
def _prefetch(typingctx, arr, i, j, k):
    """Hint the cache line of ``arr[i, j, k, 0...]`` into L1 for reading (no effect on any result)."""
    return types.void(arr, i, j, k), _prefetch_codegen(0)


@intrinsic
def _prefetchw(typingctx, arr, i, j, k):
    """Hint the cache line of ``arr[i, j, k, 0...]`` into L1 for writing."""
    return types.void(arr, i, j, k), _prefetch_codegen(1)


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


@intrinsic
def _frexp_f32(typingctx, x):  # pragma: no cover - compiled by numba
    """(mantissa in [0.5, 1), exponent as float32) of a positive normal float32, read from its bits."""
    if x != types.float32:
        return None

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        bits = builder.bitcast(args[0], i32)
        exponent = builder.sub(builder.lshr(bits, ir.Constant(i32, 23)), ir.Constant(i32, 126))
        mantissa_bits = builder.or_(builder.and_(bits, ir.Constant(i32, 0x007FFFFF)), ir.Constant(i32, 0x3F000000))
        mantissa = builder.bitcast(mantissa_bits, ir.FloatType())
        return context.make_tuple(builder, signature.return_type, (mantissa, builder.sitofp(exponent, ir.FloatType())))

    return types.UniTuple(types.float32, 2)(types.float32), codegen


@njit(fastmath=False, cache=True, inline="always")
def _log_f32(x):  # pragma: no cover - compiled by numba
    """float32 natural log of a positive normal x (Cephes logf), ~1 ulp, vectorisable."""
    m, e = _frexp_f32(x)
    if m < _SQRTH:
        e = e - _F1
        m = m + m
    m = m - _F1
    z = m * m
    p = ((((((((_L0 * m + _L1) * m + _L2) * m + _L3) * m + _L4) * m + _L5) * m + _L6) * m + _L7) * m + _L8) * m * z
    return m + (p - _HALF * z) + e * _LN2


@njit(fastmath=False, cache=True, inline="always")
def _softplus(x):  # pragma: no cover - compiled by numba
    """log(1 + exp(x)) with log1p's accuracy for small exp(x) (Goldberg's correction: log(w) * ex / (w - 1))."""
    ex = _exp_f32(min(x, _SP_HI))
    w = _F1 + ex
    res = _log_f32(w) * (ex / (w - _F1))
    if x > _SP_HI:
        res = x
    if x < _SP_LO:
        res = ex
    return res


@njit(fastmath=False, cache=True, inline="always")
def _sigmoid(x):  # pragma: no cover - compiled by numba
    return _F1 / (_F1 + _exp_f32(-x))


# ---------------------------------------------------------------------------------------------------------------------
# Selective scan
# ---------------------------------------------------------------------------------------------------------------------


@njit(parallel=True, fastmath=_FASTMATH, cache=True)
def _scan_fwd(u, draw, At, Bt, Ct, D, z, bias, softplus, gate, h0, out, ckpt, h_last):  # pragma: no cover
    """Forward. With the channel axis d split as (blocks, LANES): u, draw, z, out: (b, l, d); At: (n, d); Bt, Ct:
    (b, l, n); D, bias: (d,); h0, h_last: (b, n, d); ckpt: (b, n_chunks, n, d) = state before step j * chunk."""
    bsz, length, blocks = u.shape[:3]
    n = At.shape[0]
    for item in prange(bsz * blocks):
        b = item // blocks
        blk = item - b * blocks
        h = h0[b, :, blk].copy()  # (n, LANES)
        a = At[:, blk].copy()
        acc = np.empty(LANES, dtype=np.float32)
        dt = np.empty(LANES, dtype=np.float32)
        dtu = np.empty(LANES, dtype=np.float32)
        for t in range(length):
            tp = min(t + _PF, length - 1)
            _prefetch(u, b, tp, blk)
            _prefetch(draw, b, tp, blk)
            _prefetchw(out, b, tp, blk)
            if gate:
                _prefetch(z, b, tp, blk)
            if t % NUMBA_CHUNK_SIZE == 0:
                ckpt[b, t // NUMBA_CHUNK_SIZE, :, blk] = h
            for j in range(LANES):
                x = draw[b, t, blk, j] + bias[blk, j]
                d_ = _softplus(x) if softplus else x
                ut = u[b, t, blk, j]
                dt[j] = d_
                dtu[j] = d_ * ut
                acc[j] = D[blk, j] * ut
            for k in range(n):
                bk = Bt[b, t, k]
                ck = Ct[b, t, k]
                for j in range(LANES):
                    hk = _exp_f32(dt[j] * a[k, j]) * h[k, j] + dtu[j] * bk
                    h[k, j] = hk
                    acc[j] += hk * ck
            if gate:
                for j in range(LANES):
                    zz = z[b, t, blk, j]
                    out[b, t, blk, j] = acc[j] * zz * _sigmoid(zz)
            else:
                for j in range(LANES):
                    out[b, t, blk, j] = acc[j]
        h_last[b, :, blk] = h


@njit(parallel=True, fastmath=_FASTMATH, cache=True)
def _scan_bwd(
    u, draw, At, Bt, Ct, D, z, bias, softplus, gate, ckpt, dout, dh_last,
    du, ddraw, dz, dh0, w_part, bc_part,
):  # fmt: skip  # pragma: no cover
    """Adjoint, in the forward's layout. Per-item partial sums: w_part (b, n + 2, d) holds dA, dD and dbias,
    bc_part (b, blocks, 2, l, n) dB and dC; the wrapper reduces them in a fixed order.

    One function on purpose (tests/test_layout.py exempts it from the length limit): split into inlined helpers that
    take row views of the lane buffers, LLVM no longer vectorised the reverse loop (measured 1.5-2x slower).
    """
    bsz, length, blocks = u.shape[:3]
    n = At.shape[0]
    n_chunks = ckpt.shape[1]
    for item in prange(bsz * blocks):
        b = item // blocks
        blk = item - b * blocks
        a = np.empty((n, LANES), dtype=np.float32)
        hbuf = np.empty((NUMBA_CHUNK_SIZE + 1, n, LANES), dtype=np.float32)  # states h_{t0-1} .. h_{t1-1}
        ebuf = np.empty((NUMBA_CHUNK_SIZE, n, LANES), dtype=np.float32)  # exp(delta_t * A) of the chunk
        dtbuf = np.empty((NUMBA_CHUNK_SIZE, LANES), dtype=np.float32)
        ybuf = np.empty((NUMBA_CHUNK_SIZE, LANES), dtype=np.float32)
        adj = np.empty((n, LANES), dtype=np.float32)  # dL/dh_t flowing back from later steps
        dA = np.zeros((n, LANES), dtype=np.float32)
        dDl = np.zeros(LANES, dtype=np.float32)
        dbl = np.zeros(LANES, dtype=np.float32)
        g = np.empty(LANES, dtype=np.float32)
        gdt = np.empty(LANES, dtype=np.float32)
        gdu = np.empty(LANES, dtype=np.float32)
        for k in range(n):
            for j in range(LANES):
                a[k, j] = At[k, blk, j]
                adj[k, j] = dh_last[b, k, blk, j]
        for jc in range(n_chunks - 1, -1, -1):
            t0 = jc * NUMBA_CHUNK_SIZE
            t1 = min(t0 + NUMBA_CHUNK_SIZE, length)
            for k in range(n):
                for j in range(LANES):
                    hbuf[0, k, j] = ckpt[b, jc, k, blk, j]
            for t in range(t0, t1):  # recompute the chunk's states from its checkpoint
                s = t - t0
                tp = min(t + _PF, length - 1)
                _prefetch(draw, b, tp, blk)
                _prefetch(u, b, tp, blk)
                _prefetch(dout, b, t, blk)
                _prefetchw(du, b, t, blk)
                _prefetchw(ddraw, b, t, blk)
                if gate:
                    _prefetch(z, b, t, blk)
                    _prefetchw(dz, b, t, blk)
                for j in range(LANES):
                    x = draw[b, t, blk, j] + bias[blk, j]
                    dtbuf[s, j] = _softplus(x) if softplus else x
                    ybuf[s, j] = _F0
                for k in range(n):
                    bk = Bt[b, t, k]
                    ck = Ct[b, t, k]
                    for j in range(LANES):
                        e = _exp_f32(dtbuf[s, j] * a[k, j])
                        ebuf[s, k, j] = e
                        hk = e * hbuf[s, k, j] + dtbuf[s, j] * u[b, t, blk, j] * bk
                        hbuf[s + 1, k, j] = hk
                        ybuf[s, j] += hk * ck  # y_t = C_t . h_t, for the gate's gradient
            for t in range(t1 - 1, t0 - 1, -1):
                s = t - t0
                if gate:
                    for j in range(LANES):
                        ut = u[b, t, blk, j]
                        zz = z[b, t, blk, j]
                        sg = _sigmoid(zz)
                        go = dout[b, t, blk, j]
                        dz[b, t, blk, j] = go * (ybuf[s, j] + D[blk, j] * ut) * sg * (_F1 + zz * (_F1 - sg))
                        g[j] = go * zz * sg  # dL/d(y_t + D u_t)
                else:
                    for j in range(LANES):
                        g[j] = dout[b, t, blk, j]
                for j in range(LANES):
                    dDl[j] += g[j] * u[b, t, blk, j]
                    gdt[j] = _F0
                    gdu[j] = _F0
                for k in range(n):
                    ck = Ct[b, t, k]
                    bk = Bt[b, t, k]
                    dcb = _F0
                    dbb = _F0
                    for j in range(LANES):
                        dtj = dtbuf[s, j]
                        ut = u[b, t, blk, j]
                        ak = adj[k, j] + g[j] * ck  # total dL/dh_t
                        e = ebuf[s, k, j]
                        gl = ak * hbuf[s, k, j] * e  # dL/d(delta_t A_k) through exp
                        dA[k, j] += gl * dtj
                        gdt[j] += gl * a[k, j] + ak * ut * bk
                        gdu[j] += ak * bk
                        dcb += g[j] * hbuf[s + 1, k, j]
                        dbb += ak * dtj * ut
                        adj[k, j] = ak * e  # dL/dh_{t-1} through this step
                    bc_part[b, blk, 0, t, k] = dbb
                    bc_part[b, blk, 1, t, k] = dcb
                for j in range(LANES):
                    dd = gdt[j]
                    if softplus:
                        dd = dd * _sigmoid(draw[b, t, blk, j] + bias[blk, j])
                    ddraw[b, t, blk, j] = dd
                    dbl[j] += dd
                    du[b, t, blk, j] = gdu[j] * dtbuf[s, j] + g[j] * D[blk, j]
        for k in range(n):
            for j in range(LANES):
                dh0[b, k, blk, j] = adj[k, j]
                w_part[b, k, blk, j] = dA[k, j]
        for j in range(LANES):
            w_part[b, n, blk, j] = dDl[j]
            w_part[b, n + 1, blk, j] = dbl[j]


@njit(parallel=True, fastmath=False, cache=True)
def _sum_middle(x, out):  # pragma: no cover - compiled by numba
    """out[i, k] = sum over m of x[i, m, k], m in increasing order (deterministic, whatever the thread count)."""
    rows, middle, width = x.shape
    tiles = (width + 255) // 256
    for item in prange(rows * tiles):
        i = item // tiles
        k0 = (item - i * tiles) * 256
        k1 = min(k0 + 256, width)
        for k in range(k0, k1):
            out[i, k] = x[i, 0, k]
        for m in range(1, middle):
            for k in range(k0, k1):
                out[i, k] += x[i, m, k]


# ---------------------------------------------------------------------------------------------------------------------
# torch wrappers (float32 CPU tensors in, float32 out)
# ---------------------------------------------------------------------------------------------------------------------


def _numba_threads() -> int:
    # Follow torch's intra-op thread setting (users cap it with torch.set_num_threads) within numba's pool size.
    return max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def _lanes(t: torch.Tensor) -> np.ndarray:
    """A contiguous ``(..., d)`` tensor as the kernels' ``(..., d // LANES, LANES)`` array (a view): the lane index
    is then a loop counter that numba's negative-index wrap-around provably never touches, so LLVM vectorises the
    lane loops with plain loads instead of gathers."""
    return _np(t.view(*t.shape[:-1], -1, LANES))  # torch's view refuses to copy, numpy's reshape would not


def padded_channels(dim: int) -> int:
    """The channel count the kernels run at: ``dim`` rounded up to a multiple of :data:`LANES`."""
    return -(-dim // LANES) * LANES


def _pad(t: torch.Tensor, dim: int, copy: bool = False) -> torch.Tensor:
    """float32 contiguous tensor (the input itself when it already is one and ``copy`` is False) with the last axis
    zero-padded to ``dim``."""
    t = t.detach().float()
    if t.shape[-1] != dim:
        return torch.nn.functional.pad(t, (0, dim - t.shape[-1])).contiguous()
    return t.clone(memory_format=torch.contiguous_format) if copy else t.contiguous()


def _weight(t: torch.Tensor, dim: int) -> torch.Tensor:
    """A private float32 copy of a weight-like tensor (A, D, biases, conv taps), padded to ``dim`` channels.

    Never a view of the parameter itself: ``.numpy()`` pins a tensor's storage (makes it non-resizable), and FSDP
    frees its unsharded parameters by resizing their storage to zero after each use.
    """
    return _pad(t, dim, copy=True)


def _reduce(parts: torch.Tensor) -> torch.Tensor:
    """Sum ``(rows, m, ...)`` partials over ``m`` in a fixed order -> ``(rows, ...)``."""
    rows, middle = parts.shape[:2]
    out = torch.empty((rows, *parts.shape[2:]), dtype=torch.float32)
    _sum_middle(_np(parts.reshape(rows, middle, -1)), _np(out.view(rows, -1)))
    return out


def scan_forward(
    u: torch.Tensor,
    draw: torch.Tensor,
    At: torch.Tensor,
    Bt: torch.Tensor,
    Ct: torch.Tensor,
    D: torch.Tensor | None,
    z: torch.Tensor | None,
    bias: torch.Tensor | None,
    softplus: bool,
    h0: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
    """Fused forward: ``out (b, l, d)``, last state ``(b, n, d)`` and what :func:`scan_backward` needs.

    ``u``/``draw``/``z``: ``(b, l, d)``; ``At``: ``(n, d)``; ``Bt``/``Ct``: ``(b, l, n)``; ``D``/``bias``: ``(d,)``;
    ``h0``: ``(b, n, d)``. Any float dtype or strides; computed in float32.
    """
    bsz, length, dim = u.shape
    n = At.shape[0]
    dp = padded_channels(dim)
    zeros = torch.zeros(dp, dtype=torch.float32)
    gate = z is not None
    args = (
        _pad(u, dp), _pad(draw, dp), _weight(At, dp), Bt.detach().float().contiguous(),
        Ct.detach().float().contiguous(), zeros if D is None else _weight(D, dp),
        _pad(z, dp) if gate else zeros.view(1, 1, -1), zeros if bias is None else _weight(bias, dp),
    )  # fmt: skip
    h0p = torch.zeros(bsz, n, dp, dtype=torch.float32) if h0 is None else _weight(h0, dp)
    out = torch.empty(bsz, length, dp, dtype=torch.float32)
    ckpt = torch.empty(bsz, max(1, math.ceil(length / NUMBA_CHUNK_SIZE)), n, dp, dtype=torch.float32)
    h_last = torch.empty(bsz, n, dp, dtype=torch.float32)
    numba.set_num_threads(_numba_threads())
    u_, draw_, At_, Bt_, Ct_, D_, z_, bias_ = args
    _scan_fwd(
        _lanes(u_), _lanes(draw_), _lanes(At_), _np(Bt_), _np(Ct_), _lanes(D_), _lanes(z_), _lanes(bias_),
        bool(softplus), gate, _lanes(h0p), _lanes(out), _lanes(ckpt), _lanes(h_last),
    )  # fmt: skip
    saved = (*args, ckpt)
    return out[..., :dim], h_last[..., :dim], saved


def scan_backward(
    saved: tuple[torch.Tensor, ...], softplus: bool, gate: bool, dout: torch.Tensor, dh_last: torch.Tensor | None
) -> tuple[torch.Tensor, ...]:
    """Gradients ``(du, ddraw, dAt, dBt, dCt, dD, dz, dbias, dh0)`` (``dz`` None without a gate), float32."""
    u, draw, At, Bt, Ct, D, z, bias, ckpt = saved
    bsz, length, dp = u.shape
    n = At.shape[0]
    dim = dout.shape[-1]
    blocks = dp // LANES
    dout = _pad(dout, dp)
    dh_last = torch.zeros(bsz, n, dp, dtype=torch.float32) if dh_last is None else _pad(dh_last, dp)
    du, ddraw = torch.empty_like(u), torch.empty_like(u)
    dz = torch.empty_like(u) if gate else u.new_empty(1, 1, LANES)
    dh0 = torch.empty(bsz, n, dp, dtype=torch.float32)
    w_part = torch.empty(bsz, n + 2, dp, dtype=torch.float32)  # per row: dA (n rows), dD, dbias
    bc_part = torch.empty(bsz, blocks, 2, length, n, dtype=torch.float32)  # per row and item: dB, dC
    numba.set_num_threads(_numba_threads())
    _scan_bwd(
        _lanes(u), _lanes(draw), _lanes(At), _np(Bt), _np(Ct), _lanes(D), _lanes(z), _lanes(bias), bool(softplus),
        gate, _lanes(ckpt), _lanes(dout), _lanes(dh_last), _lanes(du), _lanes(ddraw), _lanes(dz), _lanes(dh0),
        _lanes(w_part), _np(bc_part),
    )  # fmt: skip
    w = _reduce(w_part[None])[0][:, :dim]
    bc = _reduce(bc_part)
    return (
        du[..., :dim], ddraw[..., :dim], w[:n], bc[:, 0], bc[:, 1], w[n], dz[..., :dim] if gate else None, w[n + 1],
        dh0[..., :dim],
    )  # fmt: skip
