"""The ``vlm`` console command: ``vlm demo`` (train and compare both models on the CPU) and ``vlm bench``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from configuration import BACKBONES


def _backbones(value: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    unknown = [name for name in names if name not in BACKBONES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown backbone(s) {', '.join(unknown) or value!r}; valid backbones are: {', '.join(BACKBONES)}"
        )
    return names


def _add_demo(subparsers: argparse._SubParsersAction) -> None:
    from .demo import DemoConfig

    defaults = DemoConfig()
    parser = subparsers.add_parser("demo", help="train tiny Pythia-VL and Mamba-VL on synthetic shapes and compare")
    parser.add_argument("--steps", type=int, default=defaults.steps, help="training steps per model")
    parser.add_argument("--out", default=defaults.out, help="output folder (models, results, plot)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--backbones", type=_backbones, default=defaults.backbones, help="e.g. pythia,mamba")
    parser.add_argument("--train-images", type=int, default=defaults.train_images)
    parser.add_argument("--eval-images", type=int, default=defaults.eval_images)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import DemoConfig, run_demo

    config = DemoConfig(
        out=args.out,
        steps=args.steps,
        seed=args.seed,
        backbones=args.backbones,
        train_images=args.train_images,
        eval_images=args.eval_images,
        batch_size=args.batch_size,
        show_progress=not args.no_progress,
    )
    run_demo(config)
    return 0


def _ints(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {value!r}") from err


def _add_bench(subparsers: argparse._SubParsersAction) -> None:
    from .bench import BENCH_SIZES, BenchConfig

    defaults = BenchConfig()
    parser = subparsers.add_parser("bench", help="measure Pythia-VL and Mamba-VL side by side (speed, memory)")
    parser.add_argument("--size", choices=list(BENCH_SIZES), default=defaults.size, help="matched model sizes")
    parser.add_argument("--device", default=defaults.device)
    parser.add_argument("--dtype", default=defaults.dtype, choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--train-lengths", type=_ints, default=defaults.train_lengths)
    parser.add_argument("--train-batch-size", type=int, default=defaults.train_batch_size)
    parser.add_argument("--contexts", type=_ints, default=defaults.contexts)
    parser.add_argument("--decode-batch-sizes", type=_ints, default=defaults.decode_batch_sizes)
    parser.add_argument("--decode-tokens", type=int, default=defaults.decode_tokens)
    parser.add_argument("--repeats", type=int, default=defaults.repeats)
    parser.add_argument("--backbones", type=_backbones, default=("pythia", "mamba"))
    parser.add_argument("--json", action="store_true", help="print the full result as JSON instead of a table")


def _run_bench(args: argparse.Namespace) -> int:
    from .bench import BenchConfig, format_table, result_json, run_bench

    config = BenchConfig(
        size=args.size,
        device=args.device,
        dtype=args.dtype,
        train_lengths=args.train_lengths,
        train_batch_size=args.train_batch_size,
        contexts=args.contexts,
        decode_batch_sizes=args.decode_batch_sizes,
        decode_tokens=args.decode_tokens,
        repeats=args.repeats,
    )
    result = run_bench(config, backbones=args.backbones)
    print(result_json(result) if args.json else format_table(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``vlm`` command."""
    parser = argparse.ArgumentParser(prog="vlm", description="Pythia-VL and Mamba-VL (Shaking Up VLMs, EMNLP 2024).")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_demo(subparsers)
    _add_bench(subparsers)
    return parser


COMMANDS = {"demo": _run_demo, "bench": _run_bench}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vlm`` console script."""
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
