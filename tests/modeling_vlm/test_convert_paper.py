"""Converting the paper's released checkpoints: tiny checkpoints in the released layout, checked against an
independent re-implementation of the paper's forward pass (timm EVA-02 features, projector, image block, GPT-NeoX or
LayerNorm Mamba, written here from gpantaz/vl_mamba's model code, not from ours).

The released layout (gpantaz/vl_mamba and the Hub file listings of gpantaz/{pretrained,finetuned}_*): ``config.json``
plus bf16 safetensors; Pythia keys ``vision_encoder.*``, ``vision_embed_tokens.{0,2}.*``, ``gpt_neox.*``,
``embed_out.weight``; Mamba keys ``backbone.embedding.weight``, ``backbone.layers.N.mixer.{in_proj,conv1d,x_proj,
dt_proj,A_log,D,out_proj}``, ``backbone.layers.N.norm.{weight,bias}``, ``backbone.norm_f.*`` and ``lm_head.weight`` in
the pretrained files only; the fine-tuned 2.8B Mamba files are two shards without an index; the fine-tuned Pythia
``config.json`` has no ``model_type``. The paper's Mamba blocks are ``nn.LayerNorm`` (its MixerModel is built without
``rms_norm``), with mamba_ssm's ``Block`` order: ``residual = h + residual; h = mixer(norm(residual))``.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from safetensors.torch import save_file
from transformers import AutoModelForImageTextToText, AutoProcessor, GPTNeoXConfig, GPTNeoXModel

from modeling_vlm.convert_paper import ConversionError, convert_paper_checkpoint
from modeling_vlm.standalone import export_for_hub

timm = pytest.importorskip("timm")
pytestmark = pytest.mark.timm

ARCH = "eva02_large_patch14_clip_336"
VISION_ARGS = {"patch_size": 14, "embed_dim": 64, "depth": 2, "num_heads": 2}
IMAGE = 28  # 2 x 2 patches of 14 px
WIDTH = 32
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


# ------------------------------------------------------------------------------------------------------------------
# Checkpoints in the released layout
# ------------------------------------------------------------------------------------------------------------------
def _vision_and_projector(generator: torch.Generator) -> dict[str, torch.Tensor]:
    vision = timm.create_model(ARCH, pretrained=False, num_classes=0, img_size=IMAGE, **VISION_ARGS)
    tensors = {f"vision_encoder.{k}": v + 0.02 * torch.randn(v.shape, generator=generator)
               for k, v in vision.state_dict().items()}  # fmt: skip
    for index, shape in ((0, (WIDTH, 64)), (2, (WIDTH, WIDTH))):
        tensors[f"vision_embed_tokens.{index}.weight"] = 0.1 * torch.randn(shape, generator=generator)
        tensors[f"vision_embed_tokens.{index}.bias"] = 0.1 * torch.randn(shape[0], generator=generator)
    return tensors


def _paper_config(vocab: int, backbone: str, with_model_type: bool = True) -> dict[str, Any]:
    common = {"vision_encoder_name": f"timm/{ARCH}", "select_layer": -2, "select_feature": "patch",
              "image_size": IMAGE, "torch_dtype": "bfloat16", "transformers_version": "4.40.2"}  # fmt: skip
    if backbone == "pythia":
        config = {
            "architectures": ["VLCLIPGPTNeoXForCausalLM"], "hidden_size": WIDTH, "num_hidden_layers": 2,
            "num_attention_heads": 4, "intermediate_size": 64, "hidden_act": "gelu", "rotary_pct": 0.25,
            "rotary_emb_base": 10000, "max_position_embeddings": 512, "layer_norm_eps": 1e-5,
            "use_parallel_residual": True, "vocab_size": vocab, "tie_word_embeddings": False, "bos_token_id": 0,
            "eos_token_id": 0, **common,
        }  # fmt: skip
        return {**config, "model_type": "gpt_neox"} if with_model_type else config
    return {
        "architectures": ["VLMambaCLIPLMHeadModel"], "d_model": WIDTH, "hidden_size": WIDTH, "n_layer": 2,
        "vocab_size": vocab, "ssm_cfg": {}, "rms_norm": True, "residual_in_fp32": True, "fused_add_norm": True,
        "pad_vocab_size_multiple": 8, **common,
    }  # fmt: skip


def _mamba_tensors(vocab: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    inner, state, rank, conv = 2 * WIDTH, 16, math.ceil(WIDTH / 16), 4

    def rand(*shape: int, scale: float = 0.1) -> torch.Tensor:
        return scale * torch.randn(shape, generator=generator)

    tensors = {"backbone.embedding.weight": rand(vocab, WIDTH, scale=0.5)}
    for i in range(2):
        p = f"backbone.layers.{i}."
        tensors.update({
            p + "mixer.in_proj.weight": rand(2 * inner, WIDTH), p + "mixer.conv1d.weight": rand(inner, 1, conv),
            p + "mixer.conv1d.bias": rand(inner), p + "mixer.x_proj.weight": rand(rank + 2 * state, inner),
            p + "mixer.dt_proj.weight": rand(inner, rank), p + "mixer.dt_proj.bias": rand(inner) - 2.0,
            p + "mixer.A_log": torch.log(torch.arange(1, state + 1).float()).repeat(inner, 1) + rand(inner, state),
            p + "mixer.D": 1.0 + rand(inner), p + "mixer.out_proj.weight": rand(WIDTH, inner),
            p + "norm.weight": 1.0 + rand(WIDTH), p + "norm.bias": rand(WIDTH),
        })  # fmt: skip
    tensors.update({"backbone.norm_f.weight": 1.0 + rand(WIDTH), "backbone.norm_f.bias": rand(WIDTH)})
    return tensors


def _pythia_tensors(vocab: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    neox = GPTNeoXModel(GPTNeoXConfig(**_pythia_text_fields(_paper_config(vocab, "pythia"))))
    tensors = {f"gpt_neox.{k}": v + 0.01 * torch.randn(v.shape, generator=generator)
               for k, v in neox.state_dict().items()}  # fmt: skip
    tensors["embed_out.weight"] = 0.3 * torch.randn(vocab, WIDTH, generator=generator)
    return tensors


def _pythia_text_fields(config: dict[str, Any]) -> dict[str, Any]:
    drop = {"architectures", "vision_encoder_name", "select_layer", "select_feature", "image_size", "torch_dtype",
            "transformers_version", "model_type"}  # fmt: skip
    return {k: v for k, v in config.items() if k not in drop}


def write_checkpoint(folder: Path, backbone: str, vocab: int, *, stage: str = "pretrained") -> Path:
    """A tiny checkpoint as released: bf16; fine-tuned Mamba without lm_head, in two shards without an index."""
    generator = torch.Generator().manual_seed(0 if backbone == "pythia" else 1)
    tensors = _vision_and_projector(generator)
    tensors.update(_pythia_tensors(vocab, generator) if backbone == "pythia" else _mamba_tensors(vocab, generator))
    if backbone == "mamba" and stage == "pretrained":
        tensors["lm_head.weight"] = tensors["backbone.embedding.weight"].clone()
    tensors = {k: v.to(torch.bfloat16).contiguous() for k, v in tensors.items()}
    folder.mkdir(parents=True)
    config = _paper_config(vocab, backbone, with_model_type=stage == "pretrained")
    (folder / "config.json").write_text(json.dumps(config))
    if backbone == "mamba" and stage == "finetuned":
        names = sorted(tensors)
        half = len(names) // 2
        for i, part in enumerate((names[:half], names[half:]), start=1):
            save_file({k: tensors[k] for k in part}, folder / f"model-{i:05d}-of-00002.safetensors")
    else:
        save_file(tensors, folder / "model.safetensors")
    return folder


# ------------------------------------------------------------------------------------------------------------------
# The paper's forward pass, re-implemented from gpantaz/vl_mamba (VLCLIPGPTNeoXForCausalLM, VLMambaCLIPLMHeadModel)
# ------------------------------------------------------------------------------------------------------------------
def _paper_patch_embeddings(tensors: dict[str, torch.Tensor], pixel_values: torch.Tensor) -> torch.Tensor:
    vision = timm.create_model(ARCH, pretrained=False, num_classes=0, img_size=IMAGE, **VISION_ARGS)
    vision.load_state_dict({k.removeprefix("vision_encoder."): v for k, v in tensors.items()
                            if k.startswith("vision_encoder.")})  # fmt: skip
    features = vision.eval().forward_features(pixel_values)[:, 1:]  # select_feature "patch": the CLS token dropped
    hidden = F.gelu(F.linear(features, tensors["vision_embed_tokens.0.weight"], tensors["vision_embed_tokens.0.bias"]))
    return F.linear(hidden, tensors["vision_embed_tokens.2.weight"], tensors["vision_embed_tokens.2.bias"])


def _mamba_mixer(tensors: dict[str, torch.Tensor], p: str, x: torch.Tensor) -> torch.Tensor:
    """mamba_ssm's Mamba.forward without fused kernels: in_proj, causal conv + SiLU, selective scan, gate, out_proj."""
    length = x.shape[1]
    xz = F.linear(x, tensors[p + "in_proj.weight"]).transpose(1, 2)  # (b, 2 d_inner, l)
    u, z = xz.chunk(2, dim=1)
    conv = tensors[p + "conv1d.weight"]
    u = F.silu(F.conv1d(u, conv, tensors[p + "conv1d.bias"], padding=conv.shape[-1] - 1, groups=u.shape[1]))[
        ..., :length
    ]
    rank, state = tensors[p + "dt_proj.weight"].shape[1], tensors[p + "A_log"].shape[1]
    dt, b_ssm, c_ssm = F.linear(u.transpose(1, 2), tensors[p + "x_proj.weight"]).split([rank, state, state], dim=-1)
    dt = F.softplus(dt @ tensors[p + "dt_proj.weight"].T + tensors[p + "dt_proj.bias"]).transpose(1, 2)  # (b, d, l)
    a = -torch.exp(tensors[p + "A_log"])
    h = torch.zeros(u.shape[0], u.shape[1], state)
    ys = []
    for t in range(length):
        h = torch.exp(dt[:, :, t, None] * a) * h + (dt[:, :, t] * u[:, :, t])[..., None] * b_ssm[:, None, t]
        ys.append((h * c_ssm[:, None, t]).sum(-1))
    y = (torch.stack(ys, dim=-1) + u * tensors[p + "D"][:, None]) * F.silu(z)
    return F.linear(y.transpose(1, 2), tensors[p + "out_proj.weight"])


def _paper_mamba_lm(tensors: dict[str, torch.Tensor], embeddings: torch.Tensor) -> torch.Tensor:
    hidden, residual = embeddings, None
    for i in range(2):
        p = f"backbone.layers.{i}."
        residual = hidden if residual is None else hidden + residual
        normed = F.layer_norm(residual, (WIDTH,), tensors[p + "norm.weight"], tensors[p + "norm.bias"], 1e-5)
        hidden = _mamba_mixer(tensors, p + "mixer.", normed)
    out = F.layer_norm(hidden + residual, (WIDTH,), tensors["backbone.norm_f.weight"], tensors["backbone.norm_f.bias"],
                       1e-5)  # fmt: skip
    return out @ tensors["backbone.embedding.weight"].T  # tied head


def _paper_pythia_lm(tensors: dict[str, torch.Tensor], embeddings: torch.Tensor, vocab: int) -> torch.Tensor:
    config = GPTNeoXConfig(**_pythia_text_fields(_paper_config(vocab, "pythia")))
    neox = GPTNeoXModel(config).eval()
    neox.load_state_dict({k.removeprefix("gpt_neox."): v for k, v in tensors.items() if k.startswith("gpt_neox.")})
    hidden = neox(inputs_embeds=embeddings, attention_mask=torch.ones(embeddings.shape[:2])).last_hidden_state
    return hidden @ tensors["embed_out.weight"].T


def paper_logits(
    folder: Path, backbone: str, ids: torch.Tensor, pixel_values: torch.Tensor, vocab: int
) -> torch.Tensor:
    """The paper's model on its own input ids (image positions negative), in float32 from the bf16 tensors."""
    from safetensors.torch import load_file

    tensors = {}
    for file in sorted(folder.glob("*.safetensors")):
        tensors.update({k: v.float() for k, v in load_file(file).items()})
    patches = _paper_patch_embeddings(tensors, pixel_values)
    table = tensors["gpt_neox.embed_in.weight" if backbone == "pythia" else "backbone.embedding.weight"]
    embeddings = table[ids.clamp(min=0)]
    embeddings[ids < 0] = patches.reshape(-1, WIDTH)
    if backbone == "pythia":
        return _paper_pythia_lm(tensors, embeddings, vocab)
    return _paper_mamba_lm(tensors, embeddings)


def paper_pixels(image: Image.Image) -> torch.Tensor:
    """The paper's preprocessing: squashed to IMAGE x IMAGE bilinear, 1/255, CLIP mean/std, channels first."""
    array = np.asarray(image.convert("RGB").resize((IMAGE, IMAGE), Image.BILINEAR), dtype=np.float32) / 255.0
    array = (array - np.array(CLIP_MEAN, dtype=np.float32)) / np.array(CLIP_STD, dtype=np.float32)
    return torch.from_numpy(array.transpose(2, 0, 1)).unsqueeze(0)


def paper_image_block(grid: int, boundary: int, separator: int) -> list[int]:
    """The paper's visual tokens: the boundary, each row of -1 placeholders then the separator; the last one the
    boundary again."""
    ids = [boundary]
    for _ in range(grid):
        ids += [-1] * grid + [separator]
    ids[-1] = boundary
    return ids


# ------------------------------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------------------------------
@pytest.fixture
def tokenizer_dir(tokenizer: Any, tmp_path: Path) -> Path:
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    return tmp_path / "tokenizer"


def convert(source: Path, out: Path, tokenizer_dir: Path, **kwargs: Any) -> Path:
    """The converter with the tiny tower's timm arguments (``--vision-model-args``)."""
    return convert_paper_checkpoint(source, out, tokenizer=tokenizer_dir, vision_model_args=VISION_ARGS, **kwargs)


def _vocab(tokenizer: Any) -> int:
    return -(-(len(tokenizer) + 3) // 8) * 8  # the paper pads to a multiple of 8; <image> must fit in the rows


def _image() -> Image.Image:
    image = Image.new("RGB", (40, 30), (250, 250, 250))
    ImageDraw.Draw(image).rectangle((3, 4, 25, 20), fill=(20, 120, 220))
    return image


@pytest.mark.parametrize(
    ("backbone", "stage"),
    [("pythia", "pretrained"), ("pythia", "finetuned"), ("mamba", "pretrained"), ("mamba", "finetuned")],
)
def test_converted_model_gives_the_papers_logits_and_inputs(
    backbone: str, stage: str, tokenizer: Any, tokenizer_dir: Path, tmp_path: Path
) -> None:
    vocab = _vocab(tokenizer)
    source = write_checkpoint(tmp_path / "paper", backbone, vocab, stage=stage)
    out = convert(source, tmp_path / "converted", tokenizer_dir, dtype=torch.float32)
    model = AutoModelForImageTextToText.from_pretrained(out).eval()
    processor = AutoProcessor.from_pretrained(out)
    assert model.config.vision_config.model_type == "timm_wrapper" and model.config.image_grid_size == 2
    assert getattr(model.config, "text_norm", "layer_norm") == "layer_norm"
    text = "Provide a one-sentence caption for the provided image."
    inputs = processor(images=[_image()], text=["<image>" + text], return_tensors="pt")
    # The processor gives the paper's pixels and image block (its placeholders where the paper puts negative ids).
    torch.testing.assert_close(inputs["pixel_values"], paper_pixels(_image()), rtol=0, atol=1e-6)
    boundary, separator = tokenizer.convert_tokens_to_ids(["###", "&&"])
    block = paper_image_block(2, boundary, separator)
    text_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    paper_ids = torch.tensor([block + text_ids])
    ours = paper_ids.masked_fill(paper_ids < 0, processor.image_token_id)
    assert inputs["input_ids"].tolist() == ours.tolist()
    with torch.no_grad():
        logits = model(**inputs).logits
        expected = paper_logits(source, backbone, paper_ids, inputs["pixel_values"], vocab)
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)  # float32 precision (measured: <= 2e-6)
    assert model.generate(**inputs, max_new_tokens=3, do_sample=False).shape[1] == inputs["input_ids"].shape[1] + 3


def test_converted_model_saves_reloads_and_exports(tokenizer: Any, tokenizer_dir: Path, tmp_path: Path) -> None:
    source = write_checkpoint(tmp_path / "paper", "mamba", _vocab(tokenizer), stage="finetuned")
    out = convert(source, tmp_path / "converted", tokenizer_dir)
    model = AutoModelForImageTextToText.from_pretrained(out)
    assert next(model.parameters()).dtype == torch.bfloat16  # the checkpoint's own dtype by default
    assert model.language_model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    model.save_pretrained(tmp_path / "again")
    again = AutoModelForImageTextToText.from_pretrained(tmp_path / "again")
    for (name, a), b in zip(model.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    exported = export_for_hub(out, tmp_path / "exported")
    assert (exported / "modeling_vlm.py").is_file() and json.loads((exported / "config.json").read_text())["text_norm"]


def _broken(source: Path, tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    shutil.copytree(source, folder)
    return folder


def test_bad_checkpoints_are_refused_by_file_and_key(tokenizer: Any, tokenizer_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    vocab = _vocab(tokenizer)
    source = write_checkpoint(tmp_path / "paper", "mamba", vocab, stage="finetuned")
    out = tmp_path / "out"
    shard = _broken(source, tmp_path, "missing-shard")
    (shard / "model-00002-of-00002.safetensors").unlink()
    cases = [(shard, r"model-00002-of-00002\.safetensors")]
    for name, edit, match in (
        ("extra-key", lambda t: {**t, "backbone.extra": torch.zeros(1)}, r"unexpected \['backbone\.extra"),
        ("missing-key", lambda t: {k: v for k, v in t.items() if k != "backbone.norm_f.weight"}, "norm_f.weight"),
        ("bad-shape", lambda t: {**t, "backbone.norm_f.bias": torch.zeros(3)}, r"norm_f\.bias has shape \(3,\)"),
        ("mixed-norms", lambda t: {k: v for k, v in t.items() if k != "backbone.layers.1.norm.bias"}, "some Mamba"),
    ):  # fmt: skip
        folder = _broken(source, tmp_path, name)
        key = "backbone.norm_f.weight" if name == "missing-key" else "backbone.layers.1.norm.bias"
        file = next(f for f in sorted(folder.glob("*.safetensors")) if key in load_file(f))
        save_file(edit(load_file(file)), file)
        cases.append((folder, match))
    other = tmp_path / "not-paper"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "llama"}))
    save_file({"model.embed_tokens.weight": torch.zeros(2, 2)}, other / "model.safetensors")
    cases.append((other, "vision_encoder_name"))
    for folder, match in cases:
        with pytest.raises(ConversionError, match=match):
            convert(folder, out, tokenizer_dir)
        assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
