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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``vlm`` command."""
    parser = argparse.ArgumentParser(prog="vlm", description="Pythia-VL and Mamba-VL (Shaking Up VLMs, EMNLP 2024).")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_demo(subparsers)
    return parser


COMMANDS = {"demo": _run_demo}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vlm`` console script."""
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
