"""CPU speed of the selective scan backends and of a tiny Mamba training step vs GPT-NeoX.

Usage::

    python benchmarks/scan_speed.py [--threads N] [--reps R] [--vocab V] [--skip-slow]

1. One layer-sized scan call (b=2, d=512, l=600, n=16), forward + backward: reference loop, numba, torch_chunked.
2. One training step (forward, backward, AdamW step) of a 4-layer, width-256 model on 2 x 600 tokens:
   MambaForCausalLM with transformers' fallback scan, MambaForCausalLM with our fast scan, and GPTNeoXForCausalLM
   of the same width/depth. The first call of each is a warm-up (numba loads its cached kernels there).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from modeling_vlm.mamba_kernels import disable_fast_mamba_scan, enable_fast_mamba_scan, scan_path
from modeling_vlm.selective_scan import selective_scan_fast, selective_scan_reference


def _time(fn: Callable[[], object], reps: int) -> float:
    """Median wall time of fn() in ms after one warm-up call."""
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def bench_scan(reps: int, skip_slow: bool) -> None:
    """Forward + backward of one layer-sized selective scan per backend."""
    b, d, length, n = 2, 512, 600, 16
    g = torch.Generator().manual_seed(0)
    inputs = [
        torch.randn(b, d, length, generator=g),  # u
        torch.randn(b, d, length, generator=g) * 0.5,  # delta (pre-softplus)
        -torch.exp(torch.randn(d, n, generator=g) * 0.5),  # A
        torch.randn(b, n, length, generator=g),  # B
        torch.randn(b, n, length, generator=g),  # C
        torch.ones(d),  # D
        torch.randn(b, d, length, generator=g),  # z
        torch.randn(d, generator=g) * 0.1,  # delta_bias
    ]
    for t in inputs:
        t.requires_grad_(True)

    def run(backend: str) -> Callable[[], None]:
        def step() -> None:
            for t in inputs:
                t.grad = None
            if backend == "reference":
                out = selective_scan_reference(*inputs, delta_softplus=True)
            else:
                out = selective_scan_fast(*inputs, delta_softplus=True, backend=backend)
            out.sum().backward()

        return step

    print(f"== selective scan fwd+bwd, b={b} d={d} l={length} n={n} (ms per call, median of {reps})")
    for backend in ("reference", "numba", "torch_chunked"):
        if backend == "reference" and skip_slow:
            continue
        print(f"  {backend:14s} {_time(run(backend), 1 if backend == 'reference' else reps):9.1f}")


def bench_models(reps: int, vocab: int, skip_slow: bool) -> None:
    """One AdamW training step of tiny Mamba (fallback / fast scan) and GPT-NeoX models."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, MambaConfig, MambaForCausalLM

    width, layers, batch, length = 256, 4, 2, 600
    torch.manual_seed(0)
    ids = torch.randint(0, vocab, (batch, length))
    mamba = MambaForCausalLM(
        MambaConfig(vocab_size=vocab, hidden_size=width, num_hidden_layers=layers, state_size=16, expand=2)
    )
    neox = GPTNeoXForCausalLM(
        GPTNeoXConfig(
            vocab_size=vocab,
            hidden_size=width,
            num_hidden_layers=layers,
            num_attention_heads=4,
            intermediate_size=4 * width,
            max_position_embeddings=2048,
        )
    )

    def train_step(model: torch.nn.Module) -> Callable[[], None]:
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            model(input_ids=ids, labels=ids).loss.backward()
            opt.step()

        return step

    n_mamba = sum(p.numel() for p in mamba.parameters()) / 1e6
    n_neox = sum(p.numel() for p in neox.parameters()) / 1e6
    print(f"== training step, {layers} layers, width {width}, vocab {vocab}, {batch} x {length} tokens (ms)")
    results = {}
    if not skip_slow:
        disable_fast_mamba_scan()
        assert scan_path() == "reference", scan_path()
        results["mamba, transformers fallback"] = _time(train_step(mamba), 1)
    enable_fast_mamba_scan()
    results[f"mamba, {scan_path()} scan"] = _time(train_step(mamba), reps)
    disable_fast_mamba_scan()
    results["gpt-neox"] = _time(train_step(neox), reps)
    for name, ms in results.items():
        print(f"  {name:30s} {ms:9.1f}")
    print(f"  params: mamba {n_mamba:.2f}M, gpt-neox {n_neox:.2f}M")
    fast = next(v for k, v in results.items() if k.startswith("mamba, fast"))
    print(f"  mamba (fast) / gpt-neox = {fast / results['gpt-neox']:.2f}x")


def main() -> None:
    """Parse arguments and run both benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None, help="torch (and numba) threads; default: torch's")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--vocab", type=int, default=1024)
    parser.add_argument("--skip-slow", action="store_true", help="skip the reference loop and transformers' fallback")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    bench_scan(args.reps, args.skip_slow)
    bench_models(args.reps, args.vocab, args.skip_slow)


if __name__ == "__main__":
    main()
