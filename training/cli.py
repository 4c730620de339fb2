"""The ``vlm`` command: ``demo``, ``bench``, ``train``, ``eval``, ``probe``, ``compare``, ``export``, ``push``,
``convert``, ``plan``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from configuration import BACKBONES


def _names(valid: Sequence[str], kind: str) -> Callable[[str], tuple[str, ...]]:
    """An argparse type: a comma-separated, non-empty list of names from ``valid``."""

    def parse(value: str) -> tuple[str, ...]:
        names = tuple(name.strip() for name in value.split(",") if name.strip())
        unknown = [name for name in names if name not in valid]
        if unknown or not names:
            given = ", ".join(unknown) if unknown else repr(value)
            raise argparse.ArgumentTypeError(f"unknown {kind}(s) {given}; valid {kind}s are: {', '.join(valid)}")
        return names

    return parse


_backbones = _names(tuple(BACKBONES), "backbone")


def _task_weights(valid: Sequence[str]) -> Callable[[str], dict[str, float]]:
    """An argparse type: ``task=weight`` pairs, comma-separated (``retrieval=2,counting=1``)."""

    def parse(value: str) -> dict[str, float]:
        weights = {}
        for pair in (p.strip() for p in value.split(",") if p.strip()):
            task, sep, weight = pair.partition("=")
            if not sep or task.strip() not in valid:
                raise argparse.ArgumentTypeError(
                    f"expected task=weight with a task of {', '.join(valid)}, got {pair!r}"
                )
            weights[task.strip()] = _positive_float(weight)
        return weights

    return parse


def _positive_int(value: str) -> int:
    """An argparse type: an integer >= 1 (counts, sizes, steps)."""
    try:
        number = int(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from err
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {number}")
    return number


def _positive_float(value: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        number = float(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value!r}") from err
    if not (number > 0 and number != float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value!r}")
    return number


def _add_demo(subparsers: argparse._SubParsersAction) -> None:
    from .demo import DemoConfig
    from .synthetic.scoring import ALL_TASKS

    defaults = DemoConfig()
    parser = subparsers.add_parser("demo", help="train tiny Pythia-VL and Mamba-VL on synthetic shapes and compare")
    parser.add_argument("--steps", type=_positive_int, default=defaults.steps, help="training steps per model")
    parser.add_argument("--out", default=defaults.out, help="output folder (models, results, plot)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--backbones", type=_backbones, default=defaults.backbones, help="e.g. pythia,mamba")
    parser.add_argument(
        "--tasks", type=_names(ALL_TASKS, "task"), default=defaults.tasks, help=f"any of {','.join(ALL_TASKS)}"
    )
    parser.add_argument(
        "--train-images", type=_positive_int, default=defaults.train_images, help="training examples per task"
    )
    parser.add_argument(
        "--task-weights",
        type=_task_weights(ALL_TASKS),
        default=defaults.task_weights,
        help="training examples of a task relative to --train-images, e.g. retrieval=2 (the default); '' for none",
    )
    parser.add_argument(
        "--choice-answer",
        choices=("letter", "option"),
        default=defaults.choice_answer,
        help="multiple choice answered with the option itself (the default) or its letter (the paper's template)",
    )
    parser.add_argument(
        "--eval-images", type=_positive_int, default=defaults.eval_images, help="held-out examples per task"
    )
    parser.add_argument("--batch-size", type=_positive_int, default=defaults.batch_size)
    parser.add_argument(
        "--seeds", type=_positive_int, default=defaults.seeds, help="training runs per model (seed, seed+1, ...)"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import DemoConfig, run_demo

    config = DemoConfig(
        out=args.out,
        steps=args.steps,
        seed=args.seed,
        backbones=args.backbones,
        tasks=args.tasks,
        train_images=args.train_images,
        task_weights=args.task_weights,
        choice_answer=args.choice_answer,
        eval_images=args.eval_images,
        batch_size=args.batch_size,
        seeds=args.seeds,
        show_progress=not args.no_progress,
    )
    run_demo(config)
    return 0


def _ints(value: str) -> tuple[int, ...]:
    """Comma-separated positive integers."""
    numbers = tuple(_positive_int(v) for v in value.split(",") if v.strip())
    if not numbers:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {value!r}")
    return numbers


def _add_bench(subparsers: argparse._SubParsersAction) -> None:
    from .bench import BENCH_SIZES, BenchConfig

    defaults = BenchConfig()
    parser = subparsers.add_parser("bench", help="measure Pythia-VL and Mamba-VL side by side (speed, memory)")
    parser.add_argument("--size", choices=list(BENCH_SIZES), default=defaults.size, help="matched model sizes")
    parser.add_argument("--device", default=defaults.device)
    parser.add_argument("--dtype", default=defaults.dtype, choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--train-lengths", type=_ints, default=defaults.train_lengths)
    parser.add_argument("--train-batch-size", type=_positive_int, default=defaults.train_batch_size)
    parser.add_argument("--contexts", type=_ints, default=defaults.contexts)
    parser.add_argument("--decode-batch-sizes", type=_ints, default=defaults.decode_batch_sizes)
    parser.add_argument("--decode-tokens", type=_positive_int, default=defaults.decode_tokens)
    parser.add_argument("--repeats", type=_positive_int, default=defaults.repeats)
    parser.add_argument("--backbones", type=_backbones, default=("pythia", "mamba"))
    parser.add_argument("--width", type=_positive_int, help="a custom matched pair at this hidden size (not --size)")
    parser.add_argument("--layers-pythia", type=_positive_int, default=defaults.layers_pythia, help="with --width")
    parser.add_argument("--layers-mamba", type=_positive_int, default=defaults.layers_mamba, help="with --width")
    parser.add_argument("--no-generation", action="store_true", help="training rows only (no --contexts)")
    parser.add_argument("--no-demo-step", action="store_true", help="skip timing the demo's training step")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON instead of a table")


def _run_bench(args: argparse.Namespace) -> int:
    from .bench import BenchConfig, format_table, result_json, run_bench

    config = BenchConfig(
        size=args.size,
        device=args.device,
        dtype=args.dtype,
        train_lengths=args.train_lengths,
        train_batch_size=args.train_batch_size,
        contexts=() if args.no_generation else args.contexts,
        decode_batch_sizes=args.decode_batch_sizes,
        decode_tokens=args.decode_tokens,
        repeats=args.repeats,
        width=args.width,
        layers_pythia=args.layers_pythia,
        layers_mamba=args.layers_mamba,
        demo_step=not args.no_demo_step,
    )
    result = run_bench(config, backbones=args.backbones)
    print(result_json(result) if args.json else format_table(result))
    return 0


def _add_train(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train with a recipe (YAML / JSON) through the transformers Trainer; "
        "several processes: accelerate launch -m training.cli train RECIPE",
    )
    parser.add_argument("recipe", help="recipe file, e.g. training/recipes/stage1_alignment.yaml")
    parser.add_argument("--output-dir", default=None, help="checkpoints, logs and the final model (default: recipe)")
    parser.add_argument("--push-to-hub", action="store_true", default=None, help="push with the Trainer at the end")
    parser.add_argument(
        "--resume",
        default="auto",
        help="auto: from the latest complete checkpoint in the output folder (default); never; or a checkpoint path",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="read every data source and report (records, skips, examples, test leaks); no model, no training",
    )
    parser.add_argument("--json", default=None, help="with --dry-run: also write the report as JSON to this file")


def _dry_run(recipe: Any, json_path: str | None) -> int:
    """Read and report on every data source of the recipe; no model is built."""
    from .data.check import check_data, format_report, report_json
    from .files import write_json

    reports = check_data(recipe)
    print(format_report(reports), flush=True)
    if json_path:
        write_json(json_path, report_json(reports))
    return 1 if any(r.error for r in reports) else 0


def _run_train(args: argparse.Namespace) -> int:
    from .recipe import RecipeError, load_recipe
    from .train import close_process_group, train

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        recipe = load_recipe(args.recipe)
        if args.dry_run:
            return _dry_run(recipe, args.json)
        result = train(recipe, output_dir=args.output_dir, push_to_hub=args.push_to_hub, resume=args.resume)
    except (RecipeError, FileNotFoundError, ValueError) as err:  # a bad recipe, a missing or wrong file
        print(f"vlm train: error: {err}", file=sys.stderr)
        return 2
    print(f"Saved the model, run_recipe.yaml and the model card under {result.output_dir}/", flush=True)
    close_process_group()
    return 0


def _report_errors(command: str, run: Callable[[], object]) -> int:
    """Run a command; bad input (a missing file, an invalid field) ends with one line naming it, not a traceback."""
    try:
        run()
    except (OSError, ValueError) as err:  # missing, unreadable or unwritable paths, a full disk, bad values
        print(f"vlm {command}: error: {err}", file=sys.stderr)
        return 2
    return 0


def _benchmark_names(value: str) -> tuple[str, ...]:
    from .eval.benchmarks import BENCHMARKS

    names = tuple(name.strip() for name in value.split(",") if name.strip())
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown benchmark(s) {', '.join(unknown) or value!r}; valid benchmarks are: {', '.join(BENCHMARKS)}"
        )
    return names


def _add_eval(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="evaluate a saved model on the paper's benchmarks (resumable)")
    parser.add_argument("--model", help="folder of a saved Pythia-VL / Mamba-VL model and processor")
    parser.add_argument("--benchmarks", type=_benchmark_names, help="e.g. vqav2_val,pope_random")
    parser.add_argument("--list", action="store_true", help="print the benchmarks, their files and folders; exit")
    parser.add_argument("--data-root", help="folder holding each benchmark's release under its --list folder")
    parser.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="NAME=ANNOTATIONS[:IMAGES]",
        help="one benchmark's annotation folder (and image folder; default: the same); repeatable",
    )
    parser.add_argument(
        "--split", action="append", default=[], metavar="NAME=SPLIT", help="e.g. refcocog_test=google/val"
    )
    parser.add_argument("--annotations", help="one folder holding the annotation files of every benchmark run")
    parser.add_argument("--images", help="the folder their image paths are relative to (with --annotations)")
    parser.add_argument(
        "--source",
        choices=["files", "lmms-eval"],
        default="files",
        help="lmms-eval: its Hugging Face datasets (a local copy under --data-root, else the Hub)",
    )
    parser.add_argument("--out", default="vlm-eval", help="writes OUT/<model>/<benchmark>/...")
    parser.add_argument("--batch-size", type=_positive_int, default=16)
    parser.add_argument(
        "--max-new-tokens",
        type=_positive_int,
        default=None,
        help="default: 32 (paper style: the paper's)",
    )
    parser.add_argument("--limit", type=_positive_int, default=None, help="only the first N samples of each benchmark")
    parser.add_argument("--instruction-first", action="store_true", help="task instruction before the image")
    parser.add_argument(
        "--prompt-style",
        choices=["ours", "paper"],
        default="ours",
        help="paper: its scripts' prompts, turn-by-turn tokenization and new tokens (for converted checkpoints)",
    )
    parser.add_argument("--name", default=None, help="the model's folder name under OUT (default: its own)")
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _run_eval(args: argparse.Namespace) -> int:
    from .eval.runner import EvalConfig, run_eval

    if args.list:
        from .eval.data_sources import layout_table

        print(layout_table())
        return 0
    for option in ("model", "benchmarks"):
        if getattr(args, option) is None:
            print(f"vlm eval: error: --{option} is required (or --list)", file=sys.stderr)
            return 2

    def run() -> None:
        from .eval.data_sources import parse_assignments

        config = EvalConfig(
            model=args.model,
            benchmarks=args.benchmarks,
            annotations=args.annotations,
            images=args.images,
            data_root=args.data_root,
            data=parse_assignments(args.data, "--data"),
            splits=parse_assignments(args.split, "--split"),
            source=args.source,
            out=args.out,
            batch_size=args.batch_size,
            max_new_tokens=args.max_new_tokens,
            limit=args.limit,
            instruction_first=args.instruction_first,
            prompt_style=args.prompt_style,
            name=args.name,
            device=args.device,
            show_progress=not args.no_progress,
        )
        run_eval(config)

    return _report_errors("eval", run)


def _add_probe(subparsers: argparse._SubParsersAction) -> None:
    from .probes.retrieval import MODALITIES, ProbeConfig

    parser = subparsers.add_parser("probe", help="train both backbones on an analysis probe and compare them")
    parser.add_argument("probe", choices=["retrieval"], help="retrieval: in-context retrieval (hypothesis 2)")
    parser.add_argument("--modality", choices=MODALITIES, default="text", help="symbol sequences or glyph grids")
    parser.add_argument("--lengths", type=_ints, default=None, help="N values (default: the paper's for text)")
    parser.add_argument("--steps", type=_positive_int, default=None, help="training steps per backbone")
    parser.add_argument("--batch-size", type=_positive_int, default=None)
    parser.add_argument("--eval-examples", type=_positive_int, default=None, help="held-out examples per N")
    parser.add_argument("--backbones", type=_backbones, default=("pythia", "mamba"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learning-rate", type=_positive_float, default=ProbeConfig.learning_rate)
    parser.add_argument("--instruction-first", action="store_true", help="image: instruction before the image")
    parser.add_argument("--out", default=None, help="output folder (default: vlm-probe/retrieval-<modality>)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _run_probe(args: argparse.Namespace) -> int:
    from .probes.retrieval import ProbeConfig, run_retrieval_probe

    def run() -> None:
        config = ProbeConfig(
            modality=args.modality,
            lengths=args.lengths,
            steps=args.steps,
            batch_size=args.batch_size,
            eval_examples=args.eval_examples,
            backbones=args.backbones,
            seed=args.seed,
            learning_rate=args.learning_rate,
            instruction_first=args.instruction_first,
            out=args.out or f"vlm-probe/retrieval-{args.modality}",
            show_progress=not args.no_progress,
        )
        run_retrieval_probe(config)

    return _report_errors("probe", run)


def _add_compare(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("compare", help="one report over evaluated models: tables, gaps and plots")
    parser.add_argument("runs", nargs="+", help="vlm eval, vlm demo and vlm probe output folders")
    parser.add_argument("--out", default="vlm-compare", help="output folder (report.md, report.json, plots)")


def _run_compare(args: argparse.Namespace) -> int:
    from .eval.compare import run_compare

    return _report_errors("compare", lambda: run_compare(args.runs, args.out))


def _json_object(value: str) -> dict:
    """An argparse type: a JSON object, e.g. '{"embed_dim": 64}'."""
    try:
        data = json.loads(value)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {value!r}: {err}") from err
    if not isinstance(data, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {value!r}")
    return data


def _add_convert(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert", help="convert one of the paper's released checkpoints (gpantaz/...) into a Pythia-VL / Mamba-VL"
    )
    parser.add_argument("src", help="a paper checkpoint folder, or a Hub id such as gpantaz/finetuned_mambavl_790m")
    parser.add_argument("out", help="the model folder to write (must not exist)")
    parser.add_argument("--tokenizer", default="EleutherAI/gpt-neox-20b", help="GPT-NeoX's tokenizer (id or folder)")
    parser.add_argument(
        "--vision-model-args", type=_json_object, default=None, help="extra timm arguments of the vision tower (JSON)"
    )
    parser.add_argument(
        "--dtype", choices=["float32", "bfloat16", "float16"], default=None, help="default: the source's"
    )


def _run_convert(args: argparse.Namespace) -> int:
    import torch

    from modeling_vlm.convert_paper import convert_paper_checkpoint

    def run() -> None:
        out = convert_paper_checkpoint(
            args.src,
            args.out,
            tokenizer=args.tokenizer,
            vision_model_args=args.vision_model_args,
            dtype=getattr(torch, args.dtype) if args.dtype else None,
        )
        print(f"Converted {args.src} into {out}/ (AutoModelForImageTextToText / AutoProcessor load it)")

    return _report_errors("convert", run)


def _add_export(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="write a standalone copy of a saved model that transformers loads with trust_remote_code alone"
    )
    parser.add_argument("model_dir", help="folder of a saved Pythia-VL / Mamba-VL model and processor")
    parser.add_argument("out_dir", help="the standalone folder to write (must be empty or absent)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT_DIR if it holds files")
    parser.add_argument("--results", nargs="*", default=[], help="vlm eval / vlm demo outputs for the model card")


def _run_export(args: argparse.Namespace) -> int:
    from modeling_vlm.standalone import export_for_hub

    def run() -> None:
        out = export_for_hub(args.model_dir, args.out_dir, overwrite=args.overwrite, results=args.results)
        print(f"Wrote a standalone model folder to {out}/ (load it with trust_remote_code=True)")

    return _report_errors("export", run)


def _add_push(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("push", help="export a saved model standalone and upload it to the Hub")
    parser.add_argument("model_dir", help="folder of a saved Pythia-VL / Mamba-VL model and processor")
    parser.add_argument("repo_id", help="the Hub repository, e.g. my-org/mamba-vl-790m")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--revision", default=None, help="branch to upload to (created if missing)")
    parser.add_argument("--commit-message", default=None)
    parser.add_argument("--results", nargs="*", default=[], help="vlm eval / vlm demo outputs for the model card")


def _run_push(args: argparse.Namespace) -> int:
    from modeling_vlm.standalone import push_to_hub_standalone

    def run() -> None:
        url = push_to_hub_standalone(
            args.model_dir,
            args.repo_id,
            private=args.private,
            revision=args.revision,
            commit_message=args.commit_message,
            results=args.results,
        )
        print(f"Uploaded {args.model_dir} to {url}")

    return _report_errors("push", run)


def _model_name(value: str) -> tuple[str, str]:
    """``mamba-2.8b`` / ``Pythia-VL-1.4B`` -> ``("mamba", "2.8b")``."""
    from configuration import PRESETS

    backbone, _, size = value.lower().replace("-vl", "").partition("-")
    if backbone not in PRESETS or size not in PRESETS[backbone] or size == "tiny":
        sizes = ", ".join(f"{b}-{p}" for b, presets in PRESETS.items() for p in presets if p != "tiny")
        raise argparse.ArgumentTypeError(f"unknown model {value!r}; the paper's are: {sizes}")
    return backbone, size


def _add_plan(subparsers: argparse._SubParsersAction) -> None:
    from .plan import STRATEGIES

    parser = subparsers.add_parser("plan", help="parameters and memory per GPU of a paper model, per stage/strategy")
    parser.add_argument("model", type=_model_name, help="e.g. mamba-2.8b, pythia-1.4b")
    parser.add_argument("--gpus", type=_positive_int, default=8)
    parser.add_argument("--strategy", choices=[*STRATEGIES, "all"], default="all")
    parser.add_argument("--max-length", type=_positive_int, default=1024, help="tokens per sample (the recipes')")
    parser.add_argument("--batch-size", type=_positive_int, default=16, help="samples per GPU (stage 2's)")
    parser.add_argument("--no-gradient-checkpointing", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")


def _run_plan(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from .plan import STRATEGIES, format_plan, plan

    backbone, preset = args.model
    result = plan(backbone, preset, gpus=args.gpus, max_length=args.max_length, batch_size=args.batch_size,
                  gradient_checkpointing=not args.no_gradient_checkpointing)  # fmt: skip
    strategies = STRATEGIES if args.strategy == "all" else (args.strategy,)
    print(json.dumps(asdict(result), indent=2) if args.json else format_plan(result, strategies))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``vlm`` command."""
    parser = argparse.ArgumentParser(prog="vlm", description="Pythia-VL and Mamba-VL (Shaking Up VLMs, EMNLP 2024).")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_demo(subparsers)
    _add_bench(subparsers)
    _add_eval(subparsers)
    _add_probe(subparsers)
    _add_compare(subparsers)
    _add_train(subparsers)
    _add_export(subparsers)
    _add_push(subparsers)
    _add_convert(subparsers)
    _add_plan(subparsers)
    return parser


COMMANDS = {
    "demo": _run_demo,
    "bench": _run_bench,
    "train": _run_train,
    "eval": _run_eval,
    "probe": _run_probe,
    "compare": _run_compare,
    "export": _run_export,
    "push": _run_push,
    "convert": _run_convert,
    "plan": _run_plan,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vlm`` console script.

    Bad input (a missing, unreadable or unwritable path, a full disk, an invalid value) ends with one line naming
    it and exit status 2; ``VLM_TRACEBACK=1`` shows the traceback instead.
    """
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (OSError, ValueError) as err:
        if os.environ.get("VLM_TRACEBACK"):
            raise
        print(f"vlm {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
