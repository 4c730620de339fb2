"""The single hook that routes transformers' Mamba to the CPU kernels when the fused CUDA kernels are absent.

What is patched, and why there
------------------------------
``MambaMixer.forward`` looks two module-level functions of ``transformers.models.mamba.modeling_mamba`` up as globals
at call time:

* ``mamba_selective_scan``: every full-sequence scan of the unfused path (evaluation forward, generation prefill).
  Ours is :func:`selective_scan_fast` with the same signature and ``(out, last_state)`` contract.
* ``mamba_inner_fn``: called first in training (no cache); transformers uses its result unless it is ``None``. The
  stock one returns ``None`` without mamba-ssm; ours (CPU tensors, numba installed) runs the rest of the mixer after
  ``in_proj`` -- causal conv + SiLU, ``x_proj``, ``dt_proj``, the fused scan, ``out_proj`` -- on time-major tensors
  in as few calls as possible, as mamba-ssm's CUDA ``mamba_inner_fn`` does on the GPU, and returns ``None`` (so
  transformers' own path runs) for anything else.

Single-token decode steps go through ``mamba_selective_state_update``, already O(1) per token, and are left alone.
Replacing globals rather than subclassing:

* keeps ``MambaForCausalLM`` / ``MambaModel`` themselves unchanged: no copied mixer code to keep in sync,
  ``state-spaces/mamba-*-hf`` checkpoints and ``from_pretrained`` load exactly as before;
* keeps transformers' cache handling (conv/recurrent state, ``return_last_state`` on prefill) unchanged;
* is reversible (:func:`disable_fast_mamba_scan`), which the tests use to compare against transformers' own path.

Where the fused ``mamba_ssm`` kernels import, transformers already dispatches to them, so
:func:`enable_fast_mamba_scan` does nothing there. These globals are not public transformers API: a release without
them keeps its own path (one logged notice), so the models still run.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import threading
from functools import cache
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from .selective_scan import (
    causal_conv1d_silu_time_major,
    mamba_ssm_available,
    numba_available,
    selective_scan_fast,
    selective_scan_time_major,
)

__all__ = ["disable_fast_mamba_scan", "enable_fast_mamba_scan", "fast_mamba_scan_enabled", "scan_path"]

ScanPath = Literal["fused", "fast", "reference"]

logger = logging.getLogger(__name__)
_HOOKED_NAME = "mamba_selective_scan"
_INNER_NAME = "mamba_inner_fn"

_LOCK = threading.Lock()
# transformers' own functions, saved while ours are installed ({} when not installed)
_originals: dict[str, Any] = {}


@cache
def _fused_scan_importable() -> bool:
    # transformers' mamba_selective_scan dispatches to mamba_ssm's selective_scan_fn whenever that imports, even
    # without causal_conv1d; in that case the scan is fused already and must not be replaced either.
    if mamba_ssm_available():
        return True
    if importlib.util.find_spec("mamba_ssm") is None:
        return False
    try:
        import mamba_ssm

        return hasattr(mamba_ssm, "selective_scan_fn")
    except Exception:
        return False


def _modeling_mamba() -> Any:
    from transformers.models.mamba import modeling_mamba

    return modeling_mamba


def _fast_mamba_selective_scan(
    hidden_states: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    use_mambapy: bool = False,
    use_associative_scan: bool = False,
    **kwargs: Any,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Drop-in for transformers' ``mamba_selective_scan`` (same signature) backed by :func:`selective_scan_fast`."""
    # use_mambapy / use_associative_scan select among transformers' slow fallbacks; they are superseded here.
    if kwargs.get("cu_seqlens") is not None or kwargs.get("seq_idx") is not None:
        # packed sequences need per-segment state resets, which only the fused kernels implement
        raise ValueError("packed sequences (cu_seqlens / seq_idx) need the fused mamba-ssm kernels")
    return selective_scan_fast(
        hidden_states,
        dt,
        A,
        B,
        C,
        D=D,
        z=z,
        delta_bias=delta_bias,
        delta_softplus=delta_softplus,
        return_last_state=return_last_state,
    )


class _SplitHalves(torch.autograd.Function):
    """``(b, l, 2d)`` -> its two ``(b, l, d)`` halves, contiguous (the kernels read contiguous rows); the backward
    concatenates their gradients once, where autograd's two slice backwards would zero-fill two full-size gradients
    and add them."""

    @staticmethod
    def forward(ctx, xz):  # type: ignore[override]
        dim = xz.shape[-1] // 2
        return xz[..., :dim].contiguous(), xz[..., dim:].contiguous()

    @staticmethod
    @once_differentiable
    def backward(ctx, dx, dz):  # type: ignore[override]
        if dx is None or dz is None:  # a half that did not reach the loss gets no gradient
            like = dz if dx is None else dx
            dx, dz = (torch.zeros_like(like) if g is None else g for g in (dx, dz))
        return torch.cat([dx, dz], dim=-1)


def _fast_mamba_inner_fn(
    xz: torch.Tensor,
    conv1d_weight: torch.Tensor,
    conv1d_bias: torch.Tensor | None,
    x_proj_weight: torch.Tensor,
    delta_proj_weight: torch.Tensor,
    out_proj_weight: torch.Tensor,
    out_proj_bias: torch.Tensor | None,
    A: torch.Tensor,
    B: torch.Tensor | None = None,
    C: torch.Tensor | None = None,
    D: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = True,
    b_rms_weight: torch.Tensor | None = None,
    c_rms_weight: torch.Tensor | None = None,
    dt_rms_weight: torch.Tensor | None = None,
    b_c_dt_rms_eps: float = 1e-6,
    **kwargs: Any,
) -> torch.Tensor | None:
    """CPU stand-in for mamba-ssm's ``mamba_inner_fn`` (same signature, same maths): the mixer after ``in_proj``.

    conv + SiLU and the whole selective scan run in the numba kernels on time-major ``(b, l, d)`` tensors, the three
    projections in ``F.linear``: no transposed copies, no per-step element-wise ops. Like the CUDA function it reads
    the ``x_proj`` / ``dt_proj`` / ``out_proj`` / ``conv1d`` weights directly (so LoRA belongs on ``in_proj`` only)
    and uses SiLU. Returns None, which makes transformers run its own unfused path, for what it does not cover:
    tensors off the CPU, input-dependent ``B``/``C`` given from outside, the B/C/dt RMS norms, packed sequences.
    """
    if (
        xz.device.type != "cpu"
        or B is not None
        or C is not None
        or any(w is not None for w in (b_rms_weight, c_rms_weight, dt_rms_weight))
        or any(v is not None for v in kwargs.values())
    ):
        return None
    dim = xz.shape[1] // 2
    rank, n = delta_proj_weight.shape[1], A.shape[1]
    # xz.transpose(1, 2) is in_proj's (b, l, 2d) output as it was computed (no copy)
    x, z = _SplitHalves.apply(xz.transpose(1, 2))
    xc = causal_conv1d_silu_time_major(x, conv1d_weight.reshape(dim, -1), conv1d_bias)  # (b, l, d) float32
    x_dbl = F.linear(xc.to(x_proj_weight.dtype), x_proj_weight)  # (b, l, rank + 2n)
    dt_low, B_t, C_t = torch.split(x_dbl, [rank, n, n], dim=-1)
    dt = F.linear(dt_low, delta_proj_weight)  # (b, l, d); bias and softplus are applied inside the scan kernel
    y = selective_scan_time_major(xc, dt, A, B_t, C_t, D, z, delta_bias, delta_softplus)  # (b, l, d) float32
    bias = None if out_proj_bias is None else out_proj_bias.to(out_proj_weight.dtype)
    return F.linear(y.to(out_proj_weight.dtype), out_proj_weight, bias)


def fast_mamba_scan_enabled() -> bool:
    """Whether our scan is currently installed in transformers' Mamba module."""
    return getattr(_modeling_mamba(), _HOOKED_NAME, None) is _fast_mamba_selective_scan


@cache
def _warn_no_hook_point() -> None:
    logger.warning(
        "transformers %s has no modeling_mamba.%s to route to the fast scan; Mamba keeps transformers' own scan.",
        importlib.metadata.version("transformers"),
        _HOOKED_NAME,
    )


def scan_path() -> ScanPath:
    """Which full-sequence scan transformers' Mamba uses now: fused mamba-ssm kernels, our fast scan, or its loop."""
    if fast_mamba_scan_enabled():
        return "fast"
    if _fused_scan_importable():
        return "fused"
    return "reference"


def enable_fast_mamba_scan() -> bool:
    """Install the fast scan (and the CPU training path) unless fused kernels exist; idempotent.

    Returns whether the scan is installed."""
    with _LOCK:
        module = _modeling_mamba()
        if getattr(module, _HOOKED_NAME, None) is _fast_mamba_selective_scan:
            return True
        if _fused_scan_importable():
            return False
        if not hasattr(module, _HOOKED_NAME):
            _warn_no_hook_point()
            return False
        _originals[_HOOKED_NAME] = getattr(module, _HOOKED_NAME)
        module.mamba_selective_scan = _fast_mamba_selective_scan
        # transformers calls mamba_inner_fn in training (no cache) and uses its result unless it is None; a release
        # without that global simply keeps the unfused training path, which goes through the scan above
        if numba_available() and hasattr(module, _INNER_NAME):
            _originals[_INNER_NAME] = getattr(module, _INNER_NAME)
            setattr(module, _INNER_NAME, _fast_mamba_inner_fn)
        return True


def disable_fast_mamba_scan() -> None:
    """Restore transformers' original functions (no-op when ours are not installed)."""
    with _LOCK:
        module = _modeling_mamba()
        ours = {_HOOKED_NAME: _fast_mamba_selective_scan, _INNER_NAME: _fast_mamba_inner_fn}
        for name, original in _originals.items():
            if getattr(module, name, None) is ours[name]:
                setattr(module, name, original)
        _originals.clear()
