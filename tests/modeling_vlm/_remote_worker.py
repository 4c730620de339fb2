"""Run by test_standalone.py in a clean interpreter: load a standalone folder with transformers alone, report on it.

``python -I _remote_worker.py SOURCE IMAGE PROMPT OUT_JSON [SAVE_TO]``. Before transformers is imported a
``sys.meta_path`` blocker (placed first, ahead of the editable install's own finder) makes this library's packages and
numba unimportable, so only the code shipped in SOURCE can serve. SOURCE is a folder or a Hub id resolved from
``HF_HOME``'s cache (``HF_HUB_OFFLINE=1``). The report holds the classes, the processor's outputs, the logits, the
greedy generation and the pipeline's text, so the test compares them with the library's; with SAVE_TO the loaded
processor and model are saved there again.
"""

from __future__ import annotations

import importlib.abc
import json
import sys

BLOCKED = ("configuration", "processing", "modeling_vlm", "training", "numba", "llvmlite")


class _Blocker(importlib.abc.MetaPathFinder):
    """Refuses the blocked top-level packages the way a missing package fails."""

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None


def _classes(objects: dict[str, object]) -> dict[str, list[str]]:
    return {key: [type(obj).__name__, type(obj).__module__] for key, obj in objects.items()}


def main(source: str, image_path: str, prompt: str, out_json: str, save_to: str | None = None) -> None:
    sys.meta_path.insert(0, _Blocker())
    import torch
    from PIL import Image
    from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText, AutoProcessor, pipeline

    config = AutoConfig.from_pretrained(source, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(source, trust_remote_code=True)
    model = AutoModelForImageTextToText.from_pretrained(source, trust_remote_code=True).eval()
    base = AutoModel.from_pretrained(source, trust_remote_code=True)
    image = Image.open(image_path).convert("RGB")
    inputs = processor(images=[image], text=[prompt], return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    generated = model.generate(**inputs, max_new_tokens=4, do_sample=False)[0, inputs["input_ids"].shape[1] :]
    pipe = pipeline("image-text-to-text", model=source, trust_remote_code=True)
    report = {
        "classes": _classes(
            {"config": config, "processor": processor, "image_processor": processor.image_processor, "model": model}
        ),
        "base_model": _classes({"base": base})["base"],
        "input_ids": inputs["input_ids"].tolist(),
        "pixel_values": inputs["pixel_values"].tolist(),
        "logits": logits.tolist(),
        "generated": generated.tolist(),
        "pipeline": pipe(images=image, text=prompt, max_new_tokens=4)[0]["generated_text"],
        "blocked_loaded": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED),
    }
    if save_to:
        processor.save_pretrained(save_to)
        model.save_pretrained(save_to)
    with open(out_json, "w", encoding="utf-8") as handle:
        json.dump(report, handle)


if __name__ == "__main__":
    main(*sys.argv[1:])
