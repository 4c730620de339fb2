"""Standalone model folders: the library's code as flat module files, and the ``auto_map`` that loads it.

A folder written by :func:`export_for_hub` (``vlm export``), :func:`make_standalone` or
``save_pretrained(..., standalone=True)`` loads where this library is not installed::

    AutoModelForImageTextToText.from_pretrained(folder_or_repo, trust_remote_code=True)
    AutoProcessor.from_pretrained(folder_or_repo, trust_remote_code=True)

transformers copies the file an ``auto_map`` entry names plus the files it imports *relatively* (``from .x import y``)
and checks every file's absolute imports against the installed packages. The library's packages import each other by
absolute name, so the code is written as flat files (:data:`CODE_FILES`) generated from the library's own sources,
with only those import statements rewritten: there is one copy of the code to maintain. Optional dependencies
(numba, the fused Mamba kernels) are imported inside ``try`` blocks, which transformers does not require.

In such a flat copy this module serves the same calls by copying its sibling files, so a model loaded from the Hub
and saved again is still a complete standalone folder.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi, get_token

from configuration.configuration_vlm import BACKBONES, CONFIG_CLASSES
from processing.processing_vlm import PROCESSOR_CONFIG, VLProcessor, add_processor_auto_map

from .model_card import write_model_card

__all__ = [
    "CODE_FILES",
    "export_for_hub",
    "flat_sources",
    "make_standalone",
    "mark_standalone",
    "model_auto_map",
    "push_to_hub_standalone",
]

CODE_FILES: Mapping[str, str] = {
    "configuration_vlm": "configuration.configuration_vlm",
    "presets": "configuration.presets",
    "layout": "processing.layout",
    "image_processing_vlm": "processing.image_processing_vlm",
    "processing_vlm": "processing.processing_vlm",
    "modeling_vlm": "modeling_vlm.modeling_vlm",
    "model_card": "modeling_vlm.model_card",
    "mamba_kernels": "modeling_vlm.mamba_kernels",
    "selective_scan": "modeling_vlm.selective_scan",
    "numba_scan": "modeling_vlm.numba_scan",
    "numba_conv": "modeling_vlm.numba_conv",
    "standalone": "modeling_vlm.standalone",
}
"""Flat file name (without ``.py``) -> the library module it is generated from."""
_PACKAGES = ("configuration", "processing", "modeling_vlm")
_LIBRARY = __name__ == CODE_FILES["standalone"]  # False in a flat copy loaded by transformers
MODEL_TYPES = tuple(spec.model_type for spec in BACKBONES.values())
CONFIG_FILE = "config.json"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")


# ------------------------------------------------------------------------------------------------------------------
# The flat code
# ------------------------------------------------------------------------------------------------------------------
def _module_path(module: str) -> Path:
    """The source file of a library module (found, not imported)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ImportError(f"cannot find the source of {module}")
    return Path(spec.origin)


def _exported_names(package: str) -> dict[str, str]:
    """Name -> flat file of everything a package's ``__init__`` re-exports with ``from .x import ...``."""
    names = {}
    for node in ast.parse(_module_path(package).read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            names.update({alias.asname or alias.name: node.module.split(".")[-1] for alias in node.names})
    return names


def _flat_import(node: ast.ImportFrom, exports: Mapping[str, dict[str, str]]) -> str:
    """The relative import(s) that replace ``from <library package>[.module] import ...``."""
    parts = node.module.split(".")
    if len(parts) == 2:  # from configuration.configuration_vlm import X
        target = {alias.name: parts[1] for alias in node.names}
    else:  # from configuration import X: each name from the file that defines it
        target = {alias.name: exports[parts[0]][alias.name] for alias in node.names}
    by_file: dict[str, list[str]] = {}
    for alias in node.names:
        by_file.setdefault(target[alias.name], []).append(
            alias.name if alias.asname is None else f"{alias.name} as {alias.asname}"
        )
    indent = " " * node.col_offset
    return "\n".join(f"{indent}from .{stem} import {', '.join(names)}" for stem, names in sorted(by_file.items()))


def _flatten(source: str, module: str, exports: Mapping[str, dict[str, str]]) -> str:
    """`source` with its absolute imports of the library rewritten as relative imports of flat files."""
    lines = source.splitlines(keepends=True)
    edits = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] in _PACKAGES for a in node.names):
            raise ValueError(f"{module}: `import {node.names[0].name}` cannot be flattened; use `from ... import`")
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module.split(".")[0] in _PACKAGES:
            edits.append((node.lineno, node.end_lineno, _flat_import(node, exports) + "\n"))
        elif isinstance(node, ast.ImportFrom) and node.level > 1:
            raise ValueError(f"{module}: `from {'.' * node.level}...` leaves the package; import it absolutely")
    for start, end, text in sorted(edits, reverse=True):
        lines[start - 1 : end] = [text]
    header = f"# Generated from the `{module}` module of shaking-up-vlms; edit the library, not this copy.\n"
    return header + "".join(lines)


def flat_sources() -> dict[str, str]:
    """``{file name: source}`` of the standalone code: generated from the library, or read from this flat copy."""
    if not _LIBRARY:
        here = Path(__file__).resolve().parent
        return {f"{stem}.py": (here / f"{stem}.py").read_text(encoding="utf-8") for stem in CODE_FILES}
    exports = {package: _exported_names(package) for package in _PACKAGES}
    return {
        f"{stem}.py": _flatten(_module_path(module).read_text(encoding="utf-8"), module, exports)
        for stem, module in CODE_FILES.items()
    }


# ------------------------------------------------------------------------------------------------------------------
# auto_map and standalone folders
# ------------------------------------------------------------------------------------------------------------------
def model_auto_map(config_class: str, model_class: str) -> dict[str, str]:
    """The ``auto_map`` of ``config.json``: AutoConfig, AutoModel and AutoModelForImageTextToText."""
    config_file = CONFIG_CLASSES["pythia"].__module__.rsplit(".", 1)[-1]  # the flat file of the config classes
    return {
        "AutoConfig": f"{config_file}.{config_class}",
        "AutoModel": f"modeling_vlm.{model_class}",
        "AutoModelForImageTextToText": f"modeling_vlm.{model_class}",
    }


def mark_standalone(model: Any) -> None:
    """Make every later ``save_pretrained`` of `model` (checkpoints and Hub pushes included) a standalone folder."""
    model.config.auto_map = model_auto_map(type(model.config).__name__, type(model).__name__)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON through a temporary file and a rename, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _read_config(folder: Path) -> dict[str, Any]:
    """``config.json`` of a Pythia-VL / Mamba-VL folder; ValueError naming what is wrong otherwise."""
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise ValueError(f"{folder} is not a Pythia-VL / Mamba-VL model folder: {CONFIG_FILE} is missing")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(config, dict) or config.get("model_type") not in MODEL_TYPES:
        found = config.get("model_type") if isinstance(config, dict) else None
        raise ValueError(f"{path}: model_type is {found!r}, not one of {', '.join(MODEL_TYPES)}")
    return config


def make_standalone(folder: str | os.PathLike[str]) -> None:
    """Make a saved model folder load with transformers alone: write the code files and every ``auto_map``."""
    folder = Path(folder)
    config = _read_config(folder)
    model_class = (config.get("architectures") or [None])[0]
    if not model_class:
        raise ValueError(f"{folder / CONFIG_FILE}: no `architectures` entry names the model class")
    backbone = next(name for name, spec in BACKBONES.items() if spec.model_type == config["model_type"])
    config_class = CONFIG_CLASSES[backbone].__name__
    for name, text in flat_sources().items():
        (folder / name).write_text(text, encoding="utf-8")
    config["auto_map"] = {**config.get("auto_map", {}), **model_auto_map(config_class, model_class)}
    _write_json(folder / CONFIG_FILE, config)
    if (folder / PROCESSOR_CONFIG).is_file():
        add_processor_auto_map(folder)


# ------------------------------------------------------------------------------------------------------------------
# Export
# ------------------------------------------------------------------------------------------------------------------
def _check_model_folder(folder: Path) -> dict[str, Any]:
    """The config of a complete model folder (config, safetensors weights, processor); ValueError naming a gap."""
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    config = _read_config(folder)
    missing = []
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        missing.append(f"weights ({' or '.join(WEIGHT_FILES)})")
    if not (folder / PROCESSOR_CONFIG).is_file():
        missing.append(f"processor ({PROCESSOR_CONFIG})")
    if not any((folder / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json")):
        missing.append("tokenizer (tokenizer.json / tokenizer_config.json)")
    if missing:
        raise ValueError(f"{folder} is not a complete Pythia-VL / Mamba-VL model folder: missing {'; '.join(missing)}")
    return config


def _weight_files(folder: Path) -> list[str]:
    """The weight files to copy: one safetensors file, or a sharded index and every shard it names."""
    index = folder / WEIGHT_FILES[1]
    if not index.is_file():
        return [WEIGHT_FILES[0]]
    shards = sorted(set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values()))
    absent = [name for name in shards if not (folder / name).is_file()]
    if not shards or absent:
        raise ValueError(f"{index} names missing weight shard(s): {', '.join(absent) or '(none listed)'}")
    return [WEIGHT_FILES[1], *shards]


def _prepare_target(out_dir: Path, model_dir: Path, overwrite: bool) -> None:
    """Refuse an output folder that holds other files (unless `overwrite`) or that is the model folder itself."""
    if out_dir.resolve() == model_dir.resolve() or model_dir.resolve() in out_dir.resolve().parents:
        raise ValueError(f"the output folder {out_dir} must lie outside the model folder {model_dir}")
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} is not empty; pass overwrite=True (--overwrite) to replace it")


def _write_export(model_dir: Path, tmp: Path, results: Iterable[str | os.PathLike[str]], repo: str) -> None:
    """Weights, config, processor, tokenizer, code, auto_map and model card of `model_dir`, into `tmp`."""
    for name in _weight_files(model_dir):
        shutil.copyfile(model_dir / name, tmp / name)
    for name in (CONFIG_FILE, "generation_config.json"):
        if (model_dir / name).is_file():
            shutil.copyfile(model_dir / name, tmp / name)
    VLProcessor.from_pretrained(model_dir).save_pretrained(tmp)
    make_standalone(tmp)
    beside = [model_dir.parent / "results.json"] if _demo_lists(model_dir.parent / "results.json", model_dir) else []
    card_results = [model_dir, *beside, *results]
    write_model_card(tmp, recipe=model_dir / "run_recipe.yaml", results=card_results, repo=repo)


def _demo_lists(results_file: Path, model_dir: Path) -> bool:
    """Whether a ``vlm demo`` results file next to the model folder lists that folder as one of its models."""
    try:
        models = json.loads(results_file.read_text(encoding="utf-8")).get("models", {})
        return any(Path(entry.get("path", "")).resolve() == model_dir.resolve() for entry in models.values())
    except (OSError, ValueError, AttributeError):
        return False


def export_for_hub(
    model_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    results: Iterable[str | os.PathLike[str]] = (),
    repo: str | None = None,
) -> Path:
    """Write a standalone copy of a saved Pythia-VL / Mamba-VL to `out_dir` (atomically: all of it or nothing).

    `results` are ``vlm eval`` model folders (``OUT/<model>``) or ``vlm demo`` output folders whose scores go into the
    model card's ``model-index``; ``results.json`` / ``metrics.json`` in the model folder are read too. `repo` is the
    name the card's loading snippet uses (default: the output folder's name).
    """
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    _check_model_folder(model_dir)
    _prepare_target(out_dir, model_dir, overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        _write_export(model_dir, tmp, results, repo or out_dir.name)
        if out_dir.exists():
            aside = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
            os.replace(out_dir, aside / out_dir.name)
            os.replace(tmp, out_dir)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


# ------------------------------------------------------------------------------------------------------------------
# Push
# ------------------------------------------------------------------------------------------------------------------
def push_to_hub_standalone(
    model_dir: str | os.PathLike[str],
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    results: Iterable[str | os.PathLike[str]] = (),
    api: Any = None,
) -> str:
    """Export `model_dir` into a temporary folder and upload it to `repo_id` (``huggingface_hub``); return its URL.

    `api` defaults to ``huggingface_hub.HfApi()``; without a token (``hf auth login`` or ``HF_TOKEN``) nothing is
    exported or uploaded and a ``PermissionError`` says how to log in.
    """
    api = api if api is not None else HfApi()
    if not (getattr(api, "token", None) or get_token()):
        raise PermissionError(
            "not logged in to the Hugging Face Hub: run `hf auth login` (or set the HF_TOKEN environment variable) "
            f"with a token that may write to {repo_id}"
        )
    with tempfile.TemporaryDirectory(prefix="vlm-push-") as tmp:
        folder = export_for_hub(model_dir, Path(tmp) / Path(repo_id).name, results=results, repo=repo_id)
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        api.upload_folder(
            repo_id=repo_id,
            folder_path=os.fspath(folder),
            revision=revision,
            commit_message=commit_message or f"Upload {Path(model_dir).name} (standalone, vlm push)",
        )
    return f"{url}/tree/{revision}" if revision else str(url)
