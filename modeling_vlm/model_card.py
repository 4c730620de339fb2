"""The model card (README.md) written next to saved weights: Hub metadata, architecture, how to load, recipe, results.

The YAML header is what the Hub reads (``library_name``, ``pipeline_tag``, ``base_model``, ``license``, ``tags`` and a
``model-index`` with evaluation results, built by ``huggingface_hub``'s :class:`~huggingface_hub.ModelCardData`).
Results come from the files ``vlm eval`` and ``vlm demo`` write: a ``vlm eval`` model folder's ``metrics.json``
(``benchmarks``) or a ``vlm demo`` output's ``results.json`` (``models``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from safetensors import safe_open

from configuration.configuration_vlm import BACKBONES, CONFIG_CLASSES, VLConfig

__all__ = ["build_model_card", "eval_results_from", "write_model_card"]

LICENSE = "apache-2.0"
_TEMPLATE = """---
{card_data}
---

# {display_name} ({params})

A vision-language model from the reproduction of *Shaking Up VLMs: Comparing Transformers and Structured State
Space Models for Vision & Language Modeling* (Pantazopoulos et al., EMNLP 2024): a vision tower, an MLP projector
and a {lm_kind} language model.

| part | value |
| --- | --- |
| backbone | `{model_type}` (language model `{text_type}`, {text_layers} layers, width {text_width}) |
| vision tower | `{vision_type}` ({vision_id}), {num_image_tokens} image tokens ({grid}x{grid}) |
| image layout | `{layout}`{instruction_first} |
| parameters | {params_exact:,} in all, {lm_params:,} in the language model |
| language model weights from | {text_id} |

## How to load
{loading}
```python
caption = "Provide a one-sentence caption for the provided image."
messages = [{{"role": "user", "content": [{{"type": "image"}}, {{"type": "text", "text": caption}}]}}]
prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
inputs = processor(images=[image], text=[prompt], return_tensors="pt")
print(processor.batch_decode(model.generate(**inputs, max_new_tokens=30), skip_special_tokens=True))
```
"""
_WITHOUT_LIBRARY = """
With transformers alone (5.17 to 5.x): the model's code ships in this folder.

```python
from transformers import AutoModelForImageTextToText, AutoProcessor

model = AutoModelForImageTextToText.from_pretrained("{repo}", trust_remote_code=True)
processor = AutoProcessor.from_pretrained("{repo}", trust_remote_code=True)
```
"""
_WITH_LIBRARY = """
With the shaking-up-vlms library installed, which registers the classes with the Auto classes:

```python
import modeling_vlm
from transformers import AutoModelForImageTextToText, AutoProcessor

model = AutoModelForImageTextToText.from_pretrained("{repo}")
processor = AutoProcessor.from_pretrained("{repo}")
```
"""


def _human(n: int) -> str:
    """1234567 -> '1.2M'."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return str(n)


# ------------------------------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------------------------------
def _read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from `path`, or None when it is absent or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _from_eval_summary(summary: Mapping[str, Any]) -> list[EvalResult]:
    """One result per benchmark of a ``vlm eval`` summary (headline metric, x100)."""
    results = []
    for name, record in summary.get("benchmarks", {}).items():
        results.append(
            EvalResult(
                task_type="image-text-to-text",
                dataset_type=name,
                dataset_name=record.get("paper_column") or name,
                metric_type=record["primary_metric"],
                metric_value=round(100 * float(record["primary"]), 2),
                metric_name=f"{record['primary_metric']} (x100, vlm eval, {record.get('num_samples', '?')} samples)",
            )
        )
    return results


def _from_demo(results: Mapping[str, Any], backbone: str) -> list[EvalResult]:
    """Every score of `backbone`'s model in a ``vlm demo`` results file (synthetic tasks, x100)."""
    entry = results.get("models", {}).get(backbone, {})
    return [
        EvalResult(
            task_type="image-text-to-text",
            dataset_type=f"vlm-demo-{task}",  # one dataset per task: the Hub groups results by dataset type
            dataset_name=f"vlm demo: {task}",
            metric_type=metric,
            metric_value=round(100 * float(value), 2),
            metric_name=f"{metric} (x100, vlm demo)",
        )
        for task, scores in entry.get("scores", {}).items()
        for metric, value in scores.items()
    ]


def eval_results_from(paths: Iterable[str | os.PathLike[str]], backbone: str) -> list[EvalResult]:
    """Results found in ``vlm eval`` model folders and ``vlm demo`` outputs (folders or their JSON files)."""
    found: list[EvalResult] = []
    for path in map(Path, paths):
        for name in ("metrics.json", "results.json") if path.is_dir() else (path.name,):
            data = _read_json(path / name if path.is_dir() else path)
            if data and "benchmarks" in data:
                found.extend(_from_eval_summary(data))
            elif data and "models" in data:
                found.extend(_from_demo(data, backbone))
    return found


# ------------------------------------------------------------------------------------------------------------------
# The card
# ------------------------------------------------------------------------------------------------------------------
def _recipe_section(recipe: Mapping[str, Any]) -> str:
    """Markdown describing the ``vlm train`` recipe that made the model."""
    sources = recipe.get("data", {}).get("train", [])
    rows = "\n".join(f"| {s.get('name') or s.get('reader')} | {s.get('reader')} | {s.get('weight') or 'size'} |"
                     for s in sources)  # fmt: skip
    text = yaml.safe_dump(dict(recipe), sort_keys=False)
    return (
        f"\n## Training recipe\n\n`{recipe.get('name') or 'vlm train'}`, stage **{recipe.get('stage')}**.\n\n"
        f"| dataset | reader | weight |\n|---|---|---|\n{rows}\n\n"
        f"<details><summary>run_recipe.yaml</summary>\n\n```yaml\n{text}```\n\n</details>\n"
    )


def _results_section(results: list[EvalResult]) -> str:
    """Markdown table of the results that also go into the ``model-index``."""
    rows = "\n".join(f"| {r.dataset_name} | {r.metric_name} | {r.metric_value:.2f} |" for r in results)
    return f"\n## Results\n\n| benchmark | metric | score |\n|---|---|---:|\n{rows}\n"


def build_model_card(
    config: VLConfig,
    num_parameters: int,
    language_model_parameters: int,
    repo: str = "path/to/model",
    *,
    standalone: bool = False,
    recipe: Mapping[str, Any] | None = None,
    eval_results: list[EvalResult] | None = None,
) -> ModelCard:
    """The card of a Pythia-VL / Mamba-VL: Hub metadata, a table of parts, how to load it, recipe and results."""
    spec = BACKBONES[config.backbone]
    tags = ["vision-language", spec.text_model_type, config.model_type, "shaking-up-vlms"]
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag="image-text-to-text",
        license=LICENSE,
        tags=[*tags, "custom_code"] if standalone else tags,
        # Hub ids only: a local path means nothing to a reader of the card on the Hub.
        base_model=[m for m in (config.text_model_id, config.vision_model_id) if m and not os.path.exists(m)] or None,
        model_name=repo if eval_results else None,
        eval_results=eval_results or None,
    )
    loading = (_WITHOUT_LIBRARY if standalone else "") + _WITH_LIBRARY
    content = _TEMPLATE.format(
        card_data=card_data.to_yaml(),
        display_name=spec.display_name,
        params=_human(num_parameters),
        lm_kind="Transformer (Pythia / GPT-NeoX)" if spec.text_model_type == "gpt_neox" else "Mamba state-space",
        model_type=config.model_type,
        text_type=config.text_config.model_type,
        text_layers=config.text_config.num_hidden_layers,
        text_width=config.text_config.hidden_size,
        vision_type=config.vision_config.model_type,
        vision_id=config.vision_model_id or "trained from scratch",
        num_image_tokens=config.num_image_tokens,
        grid=config.image_grid_size,
        layout=config.image_layout,
        instruction_first=", instruction first (task-aware)" if config.instruction_first else "",
        params_exact=num_parameters,
        lm_params=language_model_parameters,
        text_id=config.text_model_id or "trained from scratch",
        loading=loading.format(repo=repo),
    )
    content += _recipe_section(recipe) if recipe else ""
    content += _results_section(eval_results) if eval_results else ""
    return ModelCard(content)


def _parameter_counts(folder: Path) -> tuple[int, int]:
    """(all, language model) parameters of a saved folder, read from the safetensors headers (nothing loaded)."""
    index = _read_json(folder / "model.safetensors.index.json")
    files = sorted(set(index["weight_map"].values())) if index else ["model.safetensors"]
    total = language = 0
    for name in files:
        with safe_open(os.fspath(folder / name), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 - a safetensors handle is not a dict
                count = 1
                for dim in handle.get_slice(key).get_shape():
                    count *= dim
                total += count
                language += count if key.startswith("language_model.") else 0
    return total, language


def write_model_card(
    folder: str | os.PathLike[str],
    *,
    recipe: str | os.PathLike[str] | None = None,
    results: Iterable[str | os.PathLike[str]] = (),
    repo: str | None = None,
) -> Path:
    """Write ``folder/README.md`` for the saved model in `folder` (a standalone folder when it has an auto_map)."""
    folder = Path(folder)
    data = _read_json(folder / "config.json") or {}
    config_class = next((c for c in CONFIG_CLASSES.values() if c.model_type == data.get("model_type")), None)
    if config_class is None:
        raise ValueError(f"{folder / 'config.json'} is not the config of a Pythia-VL / Mamba-VL")
    config = config_class.from_pretrained(folder)
    recipe_data = None
    if recipe is not None and Path(recipe).is_file():
        recipe_data = yaml.safe_load(Path(recipe).read_text(encoding="utf-8"))
    total, language = _parameter_counts(folder)
    card = build_model_card(
        config,
        total,
        language,
        repo or folder.name,
        standalone=bool(data.get("auto_map")),
        recipe=recipe_data if isinstance(recipe_data, dict) else None,
        eval_results=eval_results_from(results, config.backbone),
    )
    path = folder / "README.md"
    card.save(path)
    return path
