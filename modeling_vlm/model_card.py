"""The model card (README.md) written next to saved weights: backbone, sizes and how to load."""

from __future__ import annotations

import os

from huggingface_hub import ModelCard, ModelCardData
from transformers import PreTrainedModel

from configuration import BACKBONES

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

```python
import modeling_vlm  # registers pythia_vl / mamba_vl with the Auto classes
from transformers import AutoModelForImageTextToText, AutoProcessor

model = AutoModelForImageTextToText.from_pretrained("{repo}")
processor = AutoProcessor.from_pretrained("{repo}")
caption = "Provide a one-sentence caption for the provided image."
messages = [{{"role": "user", "content": [{{"type": "image"}}, {{"type": "text", "text": caption}}]}}]
prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
inputs = processor(images=[image], text=[prompt], return_tensors="pt")
print(processor.batch_decode(model.generate(**inputs, max_new_tokens=30), skip_special_tokens=True))
```
"""


def _human(n: int) -> str:
    """1234567 -> '1.2M'."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return str(n)


def build_model_card(model: PreTrainedModel, repo: str = "path/to/model") -> ModelCard:
    """Describe a Pythia-VL / Mamba-VL in a model card (metadata for the Hub, a table of parts, a loading snippet)."""
    config = model.config
    spec = BACKBONES[config.backbone]
    params = sum(p.numel() for p in model.parameters())
    lm_params = sum(p.numel() for p in model.language_model.parameters())
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag="image-text-to-text",
        tags=["vision-language", spec.text_model_type, config.model_type, "shaking-up-vlms"],
        # Hub ids only: a local path means nothing to a reader of the card on the Hub.
        base_model=[m for m in (config.text_model_id, config.vision_model_id) if m and not os.path.exists(m)] or None,
    )
    content = _TEMPLATE.format(
        card_data=card_data.to_yaml(),
        display_name=spec.display_name,
        params=_human(params),
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
        params_exact=params,
        lm_params=lm_params,
        text_id=config.text_model_id or "trained from scratch",
        repo=repo,
    )
    return ModelCard(content)
