"""selective_scan_fast (numba / torch_chunked) against the float32 reference, and the transformers Mamba hook."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import transformers.models.mamba.modeling_mamba as modeling_mamba
from transformers import MambaConfig, MambaForCausalLM

import modeling_vlm.mamba_kernels as mamba_kernels
from modeling_vlm.mamba_kernels import (
    disable_fast_mamba_scan,
    enable_fast_mamba_scan,
    fast_mamba_scan_enabled,
    scan_path,
)
from modeling_vlm.selective_scan import (
    causal_conv1d_silu_time_major,
    mamba_ssm_available,
    numba_available,
    selective_scan_fast,
    selective_scan_reference,
    selective_scan_time_major,
)

try:
    from modeling_vlm.numba_conv import CONV_TILE
except ImportError:  # without numba the kernel tests skip; the constant only sizes their inputs
    CONV_TILE = 32

needs_numba = pytest.mark.skipif(not numba_available(), reason="the numba kernels need numba")

NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias", "initial_state")


def make_inputs(
    b: int,
    d: int,
    length: int,
    n: int,
    *,
    D: bool = True,
    z: bool = True,
    delta_bias: bool = True,
    initial_state: bool = True,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> dict[str, torch.Tensor | None]:
    """Random leaf inputs in mamba_ssm's layout (A kept float32 like transformers does)."""
    g = torch.Generator().manual_seed(seed)
    x = {
        "u": torch.randn(b, d, length, generator=g),
        "delta": torch.randn(b, d, length, generator=g) * 0.5,  # softplus(.) ~ 0.5..1, decays in (0, 1)
        "A": -torch.exp(torch.randn(d, n, generator=g) * 0.5),
        "B": torch.randn(b, n, length, generator=g),
        "C": torch.randn(b, n, length, generator=g),
        "D": torch.randn(d, generator=g) if D else None,
        "z": torch.randn(b, d, length, generator=g) if z else None,
        "delta_bias": torch.randn(d, generator=g) * 0.3 if delta_bias else None,
        "initial_state": torch.randn(b, d, n, generator=g) if initial_state else None,
    }
    for k, v in x.items():
        if v is not None:
            x[k] = (v if k == "A" else v.to(dtype)).requires_grad_()
    return x


def run(fn, x: dict, delta_softplus: bool, backend: str | None = None, seed: int = 1) -> list[torch.Tensor | None]:
    """Outputs (out, last_state) and the gradients of every input for a random cotangent on both outputs."""
    for v in x.values():
        if v is not None:
            v.grad = None
    kwargs = {"backend": backend} if backend else {}
    out, last = fn(**x, delta_softplus=delta_softplus, return_last_state=True, **kwargs)
    g = torch.Generator().manual_seed(seed)
    cotangents = torch.randn(out.shape, generator=g), torch.randn(last.shape, generator=g)
    ((out.float() * cotangents[0]).sum() + (last * cotangents[1]).sum()).backward()
    return [out.detach(), last.detach()] + [None if v is None else v.grad for v in x.values()]


def assert_close(got: list, want: list, tol: float) -> None:
    for name, a, b in zip(("out", "last_state", *NAMES), got, want, strict=True):
        if b is None:
            assert a is None, name
            continue
        assert a is not None and a.shape == b.shape and a.dtype == b.dtype, name
        err = (a.float() - b.float()).abs().max().item() / max(b.float().abs().max().item(), 1e-6)
        assert err < tol, f"{name}: relative error {err:.2e} >= {tol:.0e}"


SHAPES = [  # (b, d, l, n): l=1, odd lengths, one and several numba/torch chunks (64) with remainders
    (1, 1, 1, 16),
    (2, 3, 1, 4),
    (2, 5, 37, 16),
    (1, 7, 130, 16),
    (3, 13, 64, 8),
    (2, 33, 129, 5),
]
OPTIONS = [  # (D, z, delta_bias, initial_state, delta_softplus)
    (True, True, True, True, True),
    (False, False, False, False, False),
    (True, False, True, False, True),
    (False, True, False, True, False),
]


@pytest.mark.parametrize("backend", ["numba", "torch_chunked"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "".join("DzbhS"[i] if f else "-" for i, f in enumerate(o)))
def test_fast_matches_reference_float32(backend: str, shape: tuple, options: tuple) -> None:
    D, z, bias, h0, softplus = options
    x = make_inputs(*shape, D=D, z=z, delta_bias=bias, initial_state=h0)
    want = run(selective_scan_reference, x, softplus)
    got = run(selective_scan_fast, x, softplus, backend=backend)
    assert_close(got, want, 1e-4)


@pytest.mark.parametrize("backend", ["numba", "torch_chunked"])
def test_bfloat16_inputs(backend: str) -> None:
    x = make_inputs(2, 6, 70, 16, dtype=torch.bfloat16)
    want = run(selective_scan_reference, x, True)
    got = run(selective_scan_fast, x, True, backend=backend)
    assert got[0].dtype == torch.bfloat16 and got[1].dtype == torch.float32
    assert_close(got, want, 2e-2)


def test_non_contiguous_inputs_and_partial_grads() -> None:
    b, d, length, n = 2, 9, 45, 16
    g = torch.Generator().manual_seed(3)
    # transformers-like layouts: u, z are transposed views of (b, l, d), B and C of (b, l, n)
    u = torch.randn(b, length, d, generator=g).transpose(1, 2)
    z = torch.randn(b, length, 2 * d, generator=g).transpose(1, 2)[:, :d]
    delta = torch.randn(b, d, length, generator=g).requires_grad_()
    A = -torch.exp(torch.randn(n, d, generator=g)).t()
    B = torch.randn(b, length, n, generator=g).transpose(1, 2).requires_grad_()
    C = torch.randn(b, length, n, generator=g).transpose(1, 2)
    assert not u.is_contiguous() and not A.is_contiguous() and not B.is_contiguous()
    outs = []
    for fn in (selective_scan_reference, selective_scan_fast):
        delta.grad = B.grad = None
        out = fn(u, delta, A, B, C, z=z, delta_softplus=True)
        out.square().sum().backward()
        outs.append((out.detach(), delta.grad.clone(), B.grad.clone()))
    for a, b_ in zip(*outs, strict=True):
        assert (a - b_).abs().max() <= 1e-4 * b_.abs().max()


def test_no_grad_and_long_decay() -> None:
    # large delta * |A| makes exp underflow to 0; the fast path must not produce nan/inf there
    x = make_inputs(1, 4, 20, 16, z=False)
    with torch.no_grad():
        x["delta"].mul_(200.0)
        want = selective_scan_reference(**x, delta_softplus=True)
        got = selective_scan_fast(**x, delta_softplus=True)
    assert torch.isfinite(got).all()
    assert (got - want).abs().max() <= 1e-4 * want.abs().max()


@pytest.mark.parametrize(
    "dtypes",
    [
        {"u": torch.float16, "delta": torch.float16, "B": torch.float16, "C": torch.float16, "z": torch.float16},
        {"u": torch.bfloat16, "delta": torch.float32, "B": torch.float16, "z": torch.bfloat16, "D": torch.bfloat16},
    ],
    ids=["float16", "mixed"],
)
def test_half_and_mixed_dtypes_match_reference_on_the_same_values(dtypes: dict) -> None:
    # The kernels compute in float32 whatever comes in; the reference does too, so on identical (already rounded)
    # inputs only the final cast to u's dtype differs.
    x = make_inputs(2, 24, 70, 16)
    for name, dtype in dtypes.items():
        x[name] = x[name].detach().to(dtype).requires_grad_()
    want = run(selective_scan_reference, x, True)
    got = run(selective_scan_fast, x, True, backend="numba")
    assert got[0].dtype == dtypes["u"] and got[1].dtype == torch.float32
    for name, grad in zip(NAMES, got[2:], strict=True):
        assert grad is None or grad.dtype == x[name].dtype, name
    assert_close(got, want, 1e-2)
    # the float32 result before the cast is what the reference computes, to float32 precision
    with torch.no_grad():
        out32 = selective_scan_fast(**{**x, "u": x["u"].float()}, delta_softplus=True, backend="numba")
        ref32 = selective_scan_reference(**{**x, "u": x["u"].float()}, delta_softplus=True)
    assert (out32 - ref32).abs().max() <= 1e-4 * ref32.abs().max()


@needs_numba
def test_softplus_over_its_whole_range() -> None:
    # One step per channel, so each output is softplus(dt_c) * u_c * (B . C) alone and is checked elementwise:
    # dt from -40 to 40 crosses both cut-offs of the kernels' softplus (+-15) and its log1p-accurate middle.
    d, n = 161, 4
    delta = torch.linspace(-40, 40, d).view(1, d, 1).requires_grad_()
    u, A = torch.ones(1, d, 1), -torch.ones(d, n)
    B, C = torch.ones(1, n, 1), torch.full((1, n, 1), 0.25)
    outs = []
    for fn in (selective_scan_reference, selective_scan_fast):
        delta.grad = None
        out = fn(u, delta, A, B, C, delta_softplus=True)
        out.sum().backward()
        outs.append((out.detach(), delta.grad.clone()))
    (out, grad), (out_ref, grad_ref) = outs[1], outs[0]
    torch.testing.assert_close(out, out_ref, rtol=1e-5, atol=0)  # softplus(dt) itself, relative per element
    torch.testing.assert_close(grad, grad_ref, rtol=1e-5, atol=0)  # sigmoid(dt)


@needs_numba
@pytest.mark.parametrize("gate", [True, False])
def test_thread_count_gives_identical_results(gate: bool) -> None:
    x = make_inputs(3, 40, 130, 16, z=gate)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = run(selective_scan_fast, x, True, backend="numba")
        torch.set_num_threads(max(2, threads))
        many = run(selective_scan_fast, x, True, backend="numba")
    finally:
        torch.set_num_threads(threads)
    for name, a, b in zip(("out", "last_state", *NAMES), one, many, strict=True):
        assert (a is None and b is None) or torch.equal(a, b), name


@needs_numba
def test_time_major_entry_reads_strided_views() -> None:
    b, d, length, n = 2, 24, 70, 16
    g = torch.Generator().manual_seed(5)
    xz = torch.randn(b, length, 2 * d, generator=g, requires_grad=True)  # like in_proj's output
    x_dbl = torch.randn(b, length, 3 + 2 * n, generator=g, requires_grad=True)  # like x_proj's output
    delta = torch.randn(b, length, d, generator=g, requires_grad=True)
    A = -torch.exp(torch.randn(d, n, generator=g))
    D, bias = torch.randn(d, generator=g), torch.randn(d, generator=g)
    u, z = xz[..., :d], xz[..., d:]
    B, C = x_dbl[..., 3 : 3 + n], x_dbl[..., 3 + n :]
    assert not u.is_contiguous() and not B.is_contiguous()
    results = []
    for fn in ("time_major", "reference"):
        xz.grad = x_dbl.grad = delta.grad = None
        if fn == "time_major":
            out = selective_scan_time_major(u, delta, A, B, C, D, z, bias, True)
        else:
            args = (t.transpose(1, 2) for t in (u, delta))
            out = selective_scan_reference(*args, A, B.transpose(1, 2), C.transpose(1, 2), D, z.transpose(1, 2),
                                           bias, True).transpose(1, 2)  # fmt: skip
        (out * torch.linspace(-1, 1, d)).sum().backward()
        results.append((out.detach(), xz.grad.clone(), x_dbl.grad.clone(), delta.grad.clone()))
    for got, want in zip(*results, strict=True):
        assert (got - want).abs().max() <= 1e-4 * want.abs().max()


@needs_numba
@pytest.mark.parametrize(
    ("with_bias", "length"),
    # lengths: shorter than the taps, one step, and across the kernels' CONV_TILE-step work items (not a multiple)
    [(True, 37), (False, 37), (True, 1), (True, 3), (False, 2 * CONV_TILE + 3)],
)
def test_causal_conv_silu_matches_torch(with_bias: bool, length: int) -> None:
    # transformers' unfused path: silu(F.conv1d(x, w, b, padding=K-1, groups=d)[..., :l]) on (b, d, l)
    b, d, width = 3, 40, 4
    g = torch.Generator().manual_seed(2)
    x = torch.randn(b, length, 2 * d, generator=g)[..., :d].requires_grad_()
    w = torch.randn(d, width, generator=g, requires_grad=True)
    bias = torch.randn(d, generator=g, requires_grad=True) if with_bias else None
    cot = torch.randn(b, length, d, generator=g)
    results = []
    for fn in ("numba", "torch"):
        for t in (x, w, bias):
            if t is not None:
                t.grad = None
        if fn == "numba":
            out = causal_conv1d_silu_time_major(x, w, bias)
        else:
            conv = F.conv1d(x.transpose(1, 2), w[:, None], bias, padding=width - 1, groups=d)[..., :length]
            out = F.silu(conv).transpose(1, 2)
        (out * cot).sum().backward()
        results.append([out.detach()] + [t.grad.clone() for t in (x, w, bias) if t is not None])
    for got, want in zip(*results, strict=True):
        assert (got - want).abs().max() <= 1e-5 * want.abs().max()


@needs_numba
def test_causal_conv_silu_identical_for_any_thread_count() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 2 * CONV_TILE + 5, 48, generator=g, requires_grad=True)
    w = torch.randn(48, 4, generator=g, requires_grad=True)
    bias = torch.randn(48, generator=g, requires_grad=True)
    cot = torch.randn(x.shape, generator=g)
    threads = torch.get_num_threads()
    results = []
    try:
        for count in (1, max(2, threads)):
            torch.set_num_threads(count)
            x.grad = w.grad = bias.grad = None
            out = causal_conv1d_silu_time_major(x, w, bias)
            (out * cot).sum().backward()
            results.append((out.detach(), x.grad, w.grad, bias.grad))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)


@needs_numba
def test_time_major_entry_refuses_bad_shapes() -> None:
    u = torch.randn(2, 10, 8)
    with pytest.raises(ValueError, match="B must be"):
        selective_scan_time_major(u, u, -torch.ones(8, 4), torch.randn(2, 10, 5), torch.randn(2, 10, 4))
    with pytest.raises(ValueError, match="weight"):
        causal_conv1d_silu_time_major(u, torch.randn(7, 4), None)


# ---------------------------------------------------------------------------------------------------------------------
# transformers hook
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture
def restore_scan():
    """Start from transformers' own scan and put back whatever was installed before (other tests may enable ours)."""
    was_enabled = fast_mamba_scan_enabled()
    disable_fast_mamba_scan()
    original = modeling_mamba.mamba_selective_scan
    yield original
    disable_fast_mamba_scan()
    assert modeling_mamba.mamba_selective_scan is original
    if was_enabled:
        enable_fast_mamba_scan()


@pytest.fixture
def fast_calls(restore_scan, monkeypatch) -> list[tuple[str, int]]:
    """Records (path, length) of every call that reaches our scans through the hook (so equality checks are not
    vacuous): "scan" for transformers' mamba_selective_scan, "inner" for the fused training path."""
    calls: list[tuple[str, int]] = []

    def spy(name: str, real, length_axis: int):
        def wrapper(*args, **kwargs):
            calls.append((name, args[0].shape[length_axis]))
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(mamba_kernels, "selective_scan_fast", spy("scan", mamba_kernels.selective_scan_fast, -1))
    monkeypatch.setattr(
        mamba_kernels, "selective_scan_time_major", spy("inner", mamba_kernels.selective_scan_time_major, 1)
    )
    return calls


def test_enable_disable_idempotent(restore_scan) -> None:
    assert not mamba_ssm_available()  # this test environment has no fused kernels
    original, original_inner = restore_scan, modeling_mamba.mamba_inner_fn
    assert scan_path() == "reference"
    assert enable_fast_mamba_scan() and enable_fast_mamba_scan()
    assert fast_mamba_scan_enabled() and scan_path() == "fast"
    assert modeling_mamba.mamba_selective_scan is not original and modeling_mamba.mamba_inner_fn is not original_inner
    disable_fast_mamba_scan()
    disable_fast_mamba_scan()
    assert modeling_mamba.mamba_selective_scan is original and scan_path() == "reference"
    assert modeling_mamba.mamba_inner_fn is original_inner


def tiny_mamba(**overrides) -> MambaForCausalLM:
    torch.manual_seed(0)
    config = MambaConfig(
        **{"vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 2, "state_size": 16, "expand": 2, **overrides}
    )
    return MambaForCausalLM(config)


def forward_backward(model: MambaForCausalLM, ids: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    out = model(input_ids=ids, labels=ids)
    out.loss.backward()
    return out.logits.detach(), {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


MIXER_VARIANTS = {  # MambaConfig overrides: default; channels not a multiple of 16 with out_proj bias, no conv bias
    "default": {},
    "d40-bias": {"hidden_size": 20, "use_bias": True, "use_conv_bias": False, "time_step_rank": 3},
}


@pytest.mark.parametrize("variant", MIXER_VARIANTS)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_mamba_model_logits_and_grads_match(fast_calls: list, mode: str, variant: str) -> None:
    # train: the fused mixer path (mamba_inner_fn); eval: transformers' unfused mixer with our scan
    model = tiny_mamba(**MIXER_VARIANTS[variant]).train(mode == "train")
    ids = torch.randint(0, 100, (2, 37), generator=torch.Generator().manual_seed(0))
    disable_fast_mamba_scan()
    logits_ref, grads_ref = forward_backward(model, ids)
    assert enable_fast_mamba_scan()
    logits, grads = forward_backward(model, ids)
    assert fast_calls == [("inner" if mode == "train" else "scan", 37)] * 2  # one call per layer
    torch.testing.assert_close(logits, logits_ref, rtol=1e-4, atol=1e-5)
    assert grads.keys() == grads_ref.keys() and len(grads) > 0
    for name, g in grads.items():
        scale = grads_ref[name].abs().max().clamp_min(1e-8)
        assert (g - grads_ref[name]).abs().max() <= 1e-3 * scale, name


def test_mamba_generate_matches(fast_calls: list) -> None:
    model = tiny_mamba().eval()
    ids = torch.randint(0, 100, (2, 11), generator=torch.Generator().manual_seed(1))
    kwargs = {"max_new_tokens": 8, "do_sample": False, "pad_token_id": 0}
    disable_fast_mamba_scan()
    with torch.no_grad():
        want = model.generate(ids, **kwargs)
    assert enable_fast_mamba_scan()
    with torch.no_grad():
        got = model.generate(ids, **kwargs)
    assert (
        fast_calls == [("scan", 11)] * 2
    )  # prefill goes through the hook, decode steps use mamba_selective_state_update
    assert got.shape == (2, 19) and torch.equal(got, want)
