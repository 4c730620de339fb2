"""The single hook that routes transformers' Mamba full-sequence scan to :func:`selective_scan_fast`.

Why patch ``transformers.models.mamba.modeling_mamba.mamba_selective_scan``
--------------------------------------------------------------------------
``MambaMixer.forward`` looks that module-level function up as a global at call time for every full-sequence scan
(training forward and generation prefill); single-token decode steps go through ``mamba_selective_state_update``,
which is already O(1) per token and is left alone. Replacing that one global therefore:

* keeps ``MambaForCausalLM`` / ``MambaModel`` themselves unchanged: no subclass, no copied mixer code to keep in
  sync, checkpoints and ``from_pretrained`` load exactly as before;
* keeps transformers' cache handling (conv/recurrent state, ``return_last_state`` on prefill) unchanged, since our
  function returns the same ``(out, last_state)`` contract;
* is reversible (:func:`disable_fast_mamba_scan`), which the tests use to compare against the original fallback.

Where the fused ``mamba_ssm`` kernels import, transformers' function already dispatches to them (and training uses
the fully fused ``mamba_inner_fn``), so :func:`enable_fast_mamba_scan` does nothing there. That global is not public
transformers API: a release without it keeps its own scan (one logged notice), so the models still run.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import threading
from functools import cache
from typing import Any, Literal

import torch

from .selective_scan import mamba_ssm_available, selective_scan_fast

__all__ = ["disable_fast_mamba_scan", "enable_fast_mamba_scan", "fast_mamba_scan_enabled", "scan_path"]

ScanPath = Literal["fused", "fast", "reference"]

logger = logging.getLogger(__name__)
_HOOKED_NAME = "mamba_selective_scan"

_LOCK = threading.Lock()
# transformers' own mamba_selective_scan, saved while ours is installed (None when not installed)
_original_scan: Any = None


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
    """Install the fast scan unless fused kernels exist; idempotent. Returns whether it is installed."""
    with _LOCK:
        global _original_scan
        module = _modeling_mamba()
        if getattr(module, _HOOKED_NAME, None) is _fast_mamba_selective_scan:
            return True
        if _fused_scan_importable():
            return False
        if not hasattr(module, _HOOKED_NAME):
            _warn_no_hook_point()
            return False
        _original_scan = module.mamba_selective_scan
        module.mamba_selective_scan = _fast_mamba_selective_scan
        return True


def disable_fast_mamba_scan() -> None:
    """Restore transformers' original ``mamba_selective_scan`` (no-op when ours is not installed)."""
    with _LOCK:
        global _original_scan
        module = _modeling_mamba()
        if module.mamba_selective_scan is _fast_mamba_selective_scan and _original_scan is not None:
            module.mamba_selective_scan = _original_scan
        _original_scan = None
