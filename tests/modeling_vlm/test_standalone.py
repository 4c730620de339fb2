"""Standalone folders: the exported code is the library's and loads with transformers alone, from a folder or the Hub.

The loading tests run in a clean interpreter (``python -I``, a fresh ``HF_HOME``, ``HF_HUB_OFFLINE=1``) in which this
library and numba cannot be imported (``_remote_worker.py``): in this process the library's registered classes would
win even with ``trust_remote_code=True``, so only a subprocess proves anything.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from huggingface_hub import ModelCard
from PIL import Image, ImageDraw
from transformers import AutoModelForImageTextToText, AutoProcessor

from configuration import BACKBONES, check_transformers_version
from modeling_vlm import MODEL_CLASSES, VLForConditionalGeneration, VLProcessor
from modeling_vlm.standalone import CODE_FILES, export_for_hub, flat_sources, push_to_hub_standalone

WORKER = Path(__file__).with_name("_remote_worker.py")
PROMPT = "<image>Provide a one-sentence caption for the provided image.\n"
LIBRARY_PACKAGES = ("configuration", "processing", "modeling_vlm")


def _image(path: Path) -> Path:
    image = Image.new("RGB", (32, 32), (255, 255, 255))
    ImageDraw.Draw(image).ellipse((4, 6, 20, 22), fill=(220, 30, 30))
    image.save(path)
    return path


def _saved(model: VLForConditionalGeneration, processor: VLProcessor, folder: Path) -> Path:
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def _hub_cache(folder: Path, hf_home: Path, repo_id: str) -> None:
    """Lay `folder` out as the Hub cache does: ``models--org--name/refs/main`` -> ``snapshots/<commit>/``."""
    repo = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)


def _run_clean(source: str, image: Path, out: Path, hf_home: Path, save_to: Path | None = None) -> dict[str, Any]:
    """Run the worker in a clean interpreter and return its report."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "PYTHON"))}
    env.update(HF_HOME=str(hf_home), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    args = [sys.executable, "-I", str(WORKER), source, str(image), PROMPT, str(out)] + (
        [str(save_to)] if save_to else []
    )
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, cwd=out.parent)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(out.read_text())


def _library_outputs(folder: Path, image: Path) -> dict[str, Any]:
    """What the library computes for the same folder and inputs."""
    model = AutoModelForImageTextToText.from_pretrained(folder).eval()
    processor = AutoProcessor.from_pretrained(folder)
    inputs = processor(images=[Image.open(image).convert("RGB")], text=[PROMPT], return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    generated = model.generate(**inputs, max_new_tokens=4, do_sample=False)[0, inputs["input_ids"].shape[1] :]
    return {"inputs": inputs, "logits": logits, "generated": generated.tolist(), "processor": processor}


def _check_report(report: dict[str, Any], expected: dict[str, Any], backbone: str) -> None:
    model_class = MODEL_CLASSES[backbone].__name__
    assert report["classes"]["model"][0] == model_class and report["base_model"][0] == model_class
    assert report["classes"]["config"][0] == f"{BACKBONES[backbone].display_name.replace('-', '')}Config"
    assert report["classes"]["processor"][0] == "VLProcessor"
    assert report["classes"]["image_processor"][0] == "VLImageProcessor"
    for name, module in report["classes"].values():  # ours, from the folder's code, not the library's
        assert module.startswith("transformers_modules."), (name, module)
    assert report["blocked_loaded"] == []
    assert report["input_ids"] == expected["inputs"]["input_ids"].tolist()
    torch.testing.assert_close(torch.tensor(report["pixel_values"]), expected["inputs"]["pixel_values"])
    torch.testing.assert_close(torch.tensor(report["logits"]), expected["logits"], rtol=1e-5, atol=1e-5)
    assert report["generated"] == expected["generated"]
    decoded = expected["processor"].decode(expected["generated"], skip_special_tokens=True)
    assert report["pipeline"].endswith(decoded)


# ------------------------------------------------------------------------------------------------------------------
# The exported code is the library's
# ------------------------------------------------------------------------------------------------------------------
def _without_imports(source: str) -> str:
    """The module's AST without docstring-level comments and without imports of the library (absolute or flat)."""
    tree = ast.parse(source)

    class Strip(ast.NodeTransformer):
        def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST | None:
            ours = node.level > 0 or (node.module or "").split(".")[0] in LIBRARY_PACKAGES
            return None if ours else node

    return ast.dump(Strip().visit(tree))


def test_flat_code_is_the_library_code_with_only_its_imports_rewritten() -> None:
    sources = flat_sources()
    assert set(sources) == {f"{stem}.py" for stem in CODE_FILES}
    for name, flat in sources.items():
        module = importlib.import_module(CODE_FILES[name.removesuffix(".py")])
        library = Path(module.__file__).read_text()
        assert _without_imports(flat) == _without_imports(library), name
        for node in ast.walk(ast.parse(flat)):
            assert not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module.split(".")[0] in
                        LIBRARY_PACKAGES), f"{name}: absolute import of the library left: {node.module}"  # fmt: skip
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                # Each rewritten name is the very object the library module imported under that name.
                target = importlib.import_module(CODE_FILES[node.module])
                for alias in node.names:
                    same = getattr(target, alias.name) is getattr(module, alias.asname or alias.name)
                    assert same, (name, alias.name)


# ------------------------------------------------------------------------------------------------------------------
# Loading with transformers alone
# ------------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["pythia", "mamba"])
def test_exported_folder_loads_with_transformers_alone_and_round_trips(
    backbone: str, make_model: Callable, processor: VLProcessor, tmp_path: Path
) -> None:
    saved = _saved(make_model(backbone), processor, tmp_path / "saved")
    exported = export_for_hub(saved, tmp_path / "exported")
    image = _image(tmp_path / "image.png")
    expected = _library_outputs(exported, image)
    # A local folder, then the same files as a Hub cache snapshot loaded as "org/name" (the Hub code path).
    report = _run_clean(str(exported), image, tmp_path / "folder.json", tmp_path / "hf1", tmp_path / "resaved")
    _check_report(report, expected, backbone)
    _hub_cache(exported, tmp_path / "hf2", f"org/{backbone}-vl")
    _check_report(_run_clean(f"org/{backbone}-vl", image, tmp_path / "hub.json", tmp_path / "hf2"), expected, backbone)
    # Saved again by the remote-loaded classes: still complete, and it loads in another clean interpreter.
    assert {f"{stem}.py" for stem in CODE_FILES} <= {p.name for p in (tmp_path / "resaved").iterdir()}
    _check_report(_run_clean(str(tmp_path / "resaved"), image, tmp_path / "again.json", tmp_path / "hf3"), expected,
                  backbone)  # fmt: skip


def test_numba_is_optional_in_the_library(tmp_path: Path) -> None:
    """With numba blocked, the library imports and Mamba-VL trains on the torch scan, with a one-line notice."""
    script = (
        "import importlib.abc, sys\n"
        "class B(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in ('numba', 'llvmlite'): raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, B())\n"
        "import torch\n"
        "from modeling_vlm.selective_scan import numba_available, selective_scan_fast\n"
        "u = torch.randn(1, 4, 9, requires_grad=True)\n"
        "out = selective_scan_fast(u, torch.rand(1, 4, 9), -torch.rand(4, 3), torch.randn(1, 3, 9), "
        "torch.randn(1, 3, 9))\n"
        "out.sum().backward()\n"
        "print(numba_available(), u.grad.shape, 'numba' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    root = Path(__file__).resolve().parents[2]
    args = [sys.executable, "-c", script]
    done = subprocess.run(args, env=env, capture_output=True, text=True, cwd=root, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["False", "torch.Size([1,", "4,", "9])", "False"]
    assert done.stderr.count("numba is not installed") == 1


# ------------------------------------------------------------------------------------------------------------------
# Saving
# ------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backbone", ["pythia", "mamba"])
def test_save_pretrained_writes_code_only_with_the_auto_map_that_needs_it(
    backbone: str, make_model: Callable, processor: VLProcessor, tmp_path: Path
) -> None:
    plain = _saved(make_model(backbone), processor, tmp_path / "plain")
    assert "auto_map" not in json.loads((plain / "config.json").read_text())
    assert "auto_map" not in json.loads((plain / "processor_config.json").read_text())
    assert not list(plain.glob("*.py"))
    # A library model loaded from a standalone folder (library classes win here) saves a standalone folder again.
    exported = export_for_hub(plain, tmp_path / "exported")
    model = AutoModelForImageTextToText.from_pretrained(exported)
    assert type(model) is MODEL_CLASSES[backbone]
    again = _saved(model, AutoProcessor.from_pretrained(exported), tmp_path / "again")
    assert {p.name for p in again.glob("*.py")} == {f"{stem}.py" for stem in CODE_FILES}
    assert (
        json.loads((again / "config.json").read_text())["auto_map"]
        == json.loads((exported / "config.json").read_text())["auto_map"]
    )
    processor_config = json.loads((again / "processor_config.json").read_text())
    assert processor_config["auto_map"] == {"AutoProcessor": "processing_vlm.VLProcessor"}
    assert processor_config["image_processor"]["auto_map"] == {
        "AutoImageProcessor": "image_processing_vlm.VLImageProcessor"
    }
    # ... unless asked for an ordinary save: then no auto_map at all (none that points at missing files).
    model.save_pretrained(tmp_path / "ordinary", standalone=False)
    assert "auto_map" not in json.loads((tmp_path / "ordinary" / "config.json").read_text())
    assert model.config.auto_map  # the model itself keeps it


def test_transformers_versions_outside_the_supported_range_are_refused_by_name() -> None:
    for version in ("5.16.2", "6.0.0", "4.57.1"):
        with pytest.raises(ImportError, match=rf"support transformers 5\.17 to 5\.x, but transformers {version}"):
            check_transformers_version(version)
    check_transformers_version("5.17.0")
    check_transformers_version("5.99.0.dev0")


# ------------------------------------------------------------------------------------------------------------------
# The model card
# ------------------------------------------------------------------------------------------------------------------
def test_card_metadata_parses_and_carries_the_results_of_the_folder(
    make_model: Callable, processor: VLProcessor, tmp_path: Path
) -> None:
    demo = tmp_path / "demo"
    saved = _saved(make_model("mamba"), processor, demo / "mamba")
    (demo / "results.json").write_text(json.dumps({"models": {
        "mamba": {"path": str(demo / "mamba"), "scores": {"vqa": {"accuracy": 0.375}, "grounding": {"mean_iou": 0.5}}},
        "pythia": {"path": str(demo / "pythia"), "scores": {"vqa": {"accuracy": 0.125}}},
    }}))  # fmt: skip
    evaluated = tmp_path / "vlm-eval" / "mamba"
    evaluated.mkdir(parents=True)
    (evaluated / "metrics.json").write_text(json.dumps({"model": "mamba", "benchmarks": {"vqav2_val": {
        "benchmark": "vqav2_val", "task": "vqa", "primary_metric": "vqa_accuracy", "primary": 0.61234,
        "num_samples": 10, "paper_column": "VQAv2"}}}))  # fmt: skip
    recipe = "name: tiny\nstage: instruction\ndata:\n  train:\n  - {reader: synthetic}\n"
    (saved / "run_recipe.yaml").write_text(recipe)
    card = ModelCard.load(export_for_hub(saved, tmp_path / "out", results=[evaluated]) / "README.md")
    data = card.data
    assert data.library_name == "transformers" and data.pipeline_tag == "image-text-to-text"
    assert data.license == "apache-2.0" and {"mamba", "mamba_vl", "custom_code"} <= set(data.tags)
    scores = {(r.dataset_name, r.metric_type): r.metric_value for r in data.eval_results}
    assert scores == {("vlm demo: vqa", "accuracy"): 37.5, ("vlm demo: grounding", "mean_iou"): 50.0,
                      ("VQAv2", "vqa_accuracy"): 61.23}  # fmt: skip
    assert "trust_remote_code=True" in card.text and "## Training recipe" in card.text and "## Results" in card.text
    assert "base_model" not in data.to_dict()  # trained from scratch: no base model to name


# ------------------------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------------------------
def test_export_refuses_what_is_not_a_complete_model_folder_and_writes_nothing(
    make_model: Callable, processor: VLProcessor, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"config\.json is missing"):
        export_for_hub(tmp_path / "empty", out)
    saved = _saved(make_model("pythia"), processor, tmp_path / "saved")
    for name, match in (("model.safetensors", "missing weights"), ("processor_config.json", "missing processor")):
        broken = tmp_path / f"without-{name}"
        shutil.copytree(saved, broken)
        (broken / name).unlink()
        with pytest.raises(ValueError, match=match):
            export_for_hub(broken, out)
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "llava"}))
    with pytest.raises(ValueError, match="model_type is 'llava'"):
        export_for_hub(other, out)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        export_for_hub(saved, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    export_for_hub(saved, out, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "modeling_vlm.py").is_file()
    with pytest.raises(ValueError, match="outside the model folder"):
        export_for_hub(saved, saved / "export")


class _FakeHfApi:
    """Stands in for ``huggingface_hub.HfApi``: records the calls and what an upload would send."""

    def __init__(self, token: str | None = "hf_test") -> None:
        self.token = token
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def create_repo(self, repo_id: str, **kwargs: Any) -> str:
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        return f"https://huggingface.co/{repo_id}"

    def create_branch(self, repo_id: str, **kwargs: Any) -> None:
        self.calls.append(("create_branch", {"repo_id": repo_id, **kwargs}))

    def upload_folder(self, *, folder_path: str, **kwargs: Any) -> None:
        folder = Path(folder_path)
        files = sorted(p.name for p in folder.iterdir())
        card = ModelCard.load(folder / "README.md")
        self.calls.append(("upload_folder", {"files": files, "card": card, **kwargs}))


def test_push_uploads_the_standalone_folder(
    make_model: Callable, processor: VLProcessor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = _saved(make_model("mamba"), processor, tmp_path / "saved")
    api = _FakeHfApi()
    url = push_to_hub_standalone(saved, "me/mamba-vl", private=True, revision="v1", commit_message="hi", api=api)
    assert url == "https://huggingface.co/me/mamba-vl/tree/v1"
    assert [name for name, _ in api.calls] == ["create_repo", "create_branch", "upload_folder"]
    assert api.calls[0][1]["private"] is True and api.calls[1][1]["branch"] == "v1"
    upload = api.calls[2][1]
    assert upload["repo_id"] == "me/mamba-vl" and upload["revision"] == "v1" and upload["commit_message"] == "hi"
    expected = {f"{stem}.py" for stem in CODE_FILES} | {"model.safetensors", "config.json", "processor_config.json"}
    assert expected <= set(upload["files"])
    assert 'from_pretrained("me/mamba-vl", trust_remote_code=True)' in upload["card"].text
    monkeypatch.setattr("modeling_vlm.standalone.get_token", lambda: None)  # no HF_TOKEN, no stored login
    with pytest.raises(PermissionError, match="hf auth login"):
        push_to_hub_standalone(saved, "me/mamba-vl", api=_FakeHfApi(token=None))
