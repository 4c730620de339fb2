"""Convert the paper's released checkpoints into Pythia-VL / Mamba-VL folders that transformers loads.

The paper (gpantaz/vl_mamba) released twelve checkpoints, ``gpantaz/{pretrained,finetuned}_{pythiavl_1b,
pythiavl_1.4b,pythiavl_2.8b,mambavl_790m,mambavl_1.4b,mambavl_2.8b}``: a ``config.json`` and bf16 safetensors (one
file, or ``model-0000{1,2}-of-00002.safetensors`` without an index), no tokenizer or processor. Their keys:

===============================================  ==============================================================
paper key                                        ours
===============================================  ==============================================================
``vision_encoder.*`` (a timm EVA-02)             ``vision_tower.timm_model.*`` (``TimmWrapperModel``)
``vision_embed_tokens.0.*`` / ``.2.*``           ``multi_modal_projector.linear_1.*`` / ``linear_2.*``
``gpt_neox.*``, ``embed_out.weight``             ``language_model.gpt_neox.*``, the GPT-NeoX head
``backbone.embedding.weight``                    ``language_model.backbone.embeddings.weight``
``backbone.layers.N.{mixer,norm}.*``             ``language_model.backbone.layers.N.{mixer,norm}.*``
``backbone.norm_f.*``                            ``language_model.backbone.norm_f.*``
``lm_head.weight`` (pretrained Mamba only)       tied to the embeddings (checked equal, then dropped)
===============================================  ==============================================================

The paper's Mamba blocks are ``nn.LayerNorm`` with a bias (its model class never passed ``rms_norm`` on, whatever
``config.json`` says), so Mamba checkpoints convert to ``text_norm="layer_norm"``; the ``.norm.bias`` keys decide,
and a config that contradicts them is refused. The backbone is recognised from the keys, not from the name. Every
source tensor must be used and every target tensor filled, with matching shapes: anything else is an error naming the
file and the key, and the output folder is written only when all of it succeeded (a temporary folder, then a rename).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import snapshot_download
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import AutoModel, AutoTokenizer, GPTNeoXConfig, MambaConfig, PreTrainedTokenizerBase

from configuration.configuration_vlm import CONFIG_CLASSES, VLConfig
from processing import LAYOUT_TOKENS, VLImageProcessor, VLProcessor

from .modeling_vlm import MODEL_CLASSES, VLForConditionalGeneration

__all__ = [
    "DEFAULT_TOKENIZER",
    "PAPER_CHECKPOINTS",
    "ConversionError",
    "PaperCheckpoint",
    "convert_paper_checkpoint",
    "paper_config",
    "paper_state_dict",
    "read_paper_checkpoint",
]

PAPER_CHECKPOINTS: tuple[str, ...] = tuple(
    f"gpantaz/{stage}_{model}"
    for stage in ("pretrained", "finetuned")
    for model in ("pythiavl_1b", "pythiavl_1.4b", "pythiavl_2.8b", "mambavl_790m", "mambavl_1.4b", "mambavl_2.8b")
)
DEFAULT_TOKENIZER = "EleutherAI/gpt-neox-20b"
PAPER_IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP's, as the paper's evaluation defaults
PAPER_IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)
_SHARD = re.compile(r"^model-(\d{5})-of-(\d{5})\.safetensors$")
# mamba_ssm's ssm_cfg keys that shape the weights, and the ones that only set their initialisation.
_SSM_ARCHITECTURE = {"d_state": "state_size", "d_conv": "conv_kernel", "expand": "expand", "dt_rank": "time_step_rank",
                     "bias": "use_bias", "conv_bias": "use_conv_bias"}  # fmt: skip
_SSM_INIT_ONLY = {"dt_min", "dt_max", "dt_init", "dt_scale", "dt_init_floor", "use_fast_path", "layer_idx"}


class ConversionError(ValueError):
    """A source that is not a paper checkpoint, or whose files do not match its config; names the file and key."""


@dataclass
class PaperCheckpoint:
    """A paper checkpoint on disk: its config, backbone (from the keys) and the file holding each tensor."""

    folder: Path
    config: dict[str, Any]
    backbone: str
    keys: dict[str, Path]

    def tensor(self, key: str) -> torch.Tensor:
        """One source tensor, read from its file."""
        with safe_open(os.fspath(self.keys[key]), framework="pt") as handle:
            return handle.get_tensor(key)

    def has(self, prefix: str) -> bool:
        """Whether any key starts with `prefix`."""
        return any(key.startswith(prefix) for key in self.keys)


# ------------------------------------------------------------------------------------------------------------------
# Reading
# ------------------------------------------------------------------------------------------------------------------
def _weight_files(folder: Path) -> list[Path]:
    """``model.safetensors``, or every shard ``model-XXXXX-of-NNNNN.safetensors`` (an index is not required)."""
    single = folder / "model.safetensors"
    shards = sorted(p for p in folder.glob("model-*-of-*.safetensors") if _SHARD.match(p.name))
    if single.is_file() and not shards:
        return [single]
    if not shards:
        raise ConversionError(f"{folder}: no model.safetensors and no model-XXXXX-of-NNNNN.safetensors shards")
    total = int(_SHARD.match(shards[0].name).group(2))
    expected = [folder / f"model-{i:05d}-of-{total:05d}.safetensors" for i in range(1, total + 1)]
    missing = [p.name for p in expected if not p.is_file()]
    if missing:
        raise ConversionError(f"{folder}: weight shard(s) missing: {', '.join(missing)}")
    return expected


def _backbone_from_keys(keys: Mapping[str, Path], folder: Path) -> str:
    """``pythia`` or ``mamba``, from which language model's keys the files hold."""
    found = {name for name, prefix in (("pythia", "gpt_neox."), ("mamba", "backbone.layers.")) if
             any(k.startswith(prefix) for k in keys)}  # fmt: skip
    if len(found) != 1 or not any(k.startswith("vision_embed_tokens.") for k in keys):
        raise ConversionError(
            f"{folder} is not a checkpoint of the paper: expected vision_embed_tokens.* and either gpt_neox.* "
            f"(Pythia-VL) or backbone.layers.* (Mamba-VL) keys, found {'both' if len(found) > 1 else 'neither'}"
        )
    return found.pop()


def read_paper_checkpoint(folder: str | os.PathLike[str]) -> PaperCheckpoint:
    """Read a paper checkpoint folder's config and the index of its tensors (nothing is loaded yet)."""
    folder = Path(folder)
    path = folder / "config.json"
    if not path.is_file():
        raise ConversionError(f"{folder} is not a checkpoint of the paper: {path.name} is missing")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ConversionError(f"{path} is not valid JSON: {err}") from err
    keys: dict[str, Path] = {}
    for file in _weight_files(folder):
        try:
            with safe_open(os.fspath(file), framework="pt") as handle:
                names = list(handle.keys())
        except Exception as err:  # safetensors raises its own types for truncated or foreign files
            raise ConversionError(f"{file} is not a readable safetensors file: {err}") from err
        keys.update(dict.fromkeys(names, file))
    if "vision_encoder_name" not in config:
        raise ConversionError(f"{path} has no vision_encoder_name: not the config of a paper checkpoint")
    return PaperCheckpoint(folder, config, _backbone_from_keys(keys, folder), keys)


# ------------------------------------------------------------------------------------------------------------------
# Configs
# ------------------------------------------------------------------------------------------------------------------
def _vision_config(checkpoint: PaperCheckpoint, model_args: Mapping[str, Any] | None) -> dict[str, Any]:
    """The timm tower of `vision_encoder_name` at the checkpoint's image size; `model_args` extend timm's arguments."""
    name = str(checkpoint.config["vision_encoder_name"])
    if not name.startswith("timm/"):
        raise ConversionError(f"{checkpoint.folder / 'config.json'}: vision_encoder_name={name!r} is not a timm model")
    args = {"img_size": int(checkpoint.config.get("image_size", 336)), **(model_args or {})}
    return {"model_type": "timm_wrapper", "architecture": name.removeprefix("timm/"), "model_args": args}


def _pythia_text_config(config: Mapping[str, Any]) -> GPTNeoXConfig:
    """GPT-NeoX config from the paper's dump (with or without `model_type`; legacy rotary fields included)."""
    known = {f for f in GPTNeoXConfig.__dataclass_fields__} | {"rotary_pct", "rotary_emb_base", "rope_scaling"}
    kept = {k: v for k, v in config.items() if k in known and k not in ("architectures", "transformers_version")}
    return GPTNeoXConfig(**kept)


def _mamba_text_config(config: Mapping[str, Any], path: Path) -> MambaConfig:
    """transformers' MambaConfig from mamba_ssm's field names (the paper's blocks: no fused add-norm, fp32 off)."""
    ssm = dict(config.get("ssm_cfg") or {})
    unknown = sorted(set(ssm) - set(_SSM_ARCHITECTURE) - _SSM_INIT_ONLY)
    if unknown:
        raise ConversionError(f"{path}: ssm_cfg key(s) {unknown} are not understood by the converter")
    for key in ("d_model", "n_layer", "vocab_size"):
        if key not in config:
            raise ConversionError(f"{path}: the Mamba config has no {key!r}")
    arguments = {_SSM_ARCHITECTURE[k]: v for k, v in ssm.items() if k in _SSM_ARCHITECTURE}
    return MambaConfig(
        hidden_size=config["d_model"],
        num_hidden_layers=config["n_layer"],
        vocab_size=config["vocab_size"],
        layer_norm_epsilon=1e-5,
        residual_in_fp32=False,  # the paper's MixerModel was built without it
        tie_word_embeddings=True,
        pad_token_id=0,
        bos_token_id=0,
        eos_token_id=0,
        **arguments,
    )


def _text_norm(checkpoint: PaperCheckpoint) -> str:
    """``layer_norm`` when the blocks carry norm biases; refuse an RMSNorm claim the keys contradict."""
    biases = checkpoint.has("backbone.norm_f.bias") and all(
        f"backbone.layers.{i}.norm.bias" in checkpoint.keys for i in range(int(checkpoint.config["n_layer"]))
    )
    if biases:
        return "layer_norm"
    if any(k.endswith(".norm.bias") or k == "backbone.norm_f.bias" for k in checkpoint.keys):
        raise ConversionError(f"{checkpoint.folder}: some Mamba norms have a bias and some do not")
    return "rms_norm"


def paper_config(
    checkpoint: PaperCheckpoint, *, image_token_id: int, vision_model_args: Mapping[str, Any] | None = None
) -> VLConfig:
    """Our composite config for a paper checkpoint (grid, width and prefix read off the timm tower)."""
    path = checkpoint.folder / "config.json"
    vision = _vision_config(checkpoint, vision_model_args)
    with torch.device("meta"):
        tower = AutoModel.from_config(CONFIG_CLASSES[checkpoint.backbone](vision_config=vision).vision_config)
    grid = getattr(getattr(tower.timm_model, "patch_embed", None), "grid_size", None)
    if not grid or grid[0] != grid[1]:
        raise ConversionError(f"{path}: cannot read a square patch grid from {vision['architecture']}: {grid}")
    extra: dict[str, Any] = {}
    if checkpoint.backbone == "pythia":
        text = _pythia_text_config(checkpoint.config)
    else:
        text, extra = _mamba_text_config(checkpoint.config, path), {"text_norm": _text_norm(checkpoint)}
        if extra["text_norm"] == "rms_norm" and checkpoint.config.get("rms_norm") is False:
            raise ConversionError(f"{path}: rms_norm is false but no norm of the checkpoint has a bias")
    return CONFIG_CLASSES[checkpoint.backbone](
        vision_config=vision,
        text_config=text.to_dict(),
        image_grid_size=int(grid[0]),
        image_token_id=image_token_id,
        vision_hidden_size=int(tower.timm_model.num_features),
        vision_model_id=str(checkpoint.config["vision_encoder_name"]),
        text_model_id=None,
        **extra,
    )


# ------------------------------------------------------------------------------------------------------------------
# Weights
# ------------------------------------------------------------------------------------------------------------------
def _rename(key: str, backbone: str, head: str) -> str | None:
    """Our name of a paper key (None: the tied Mamba head, checked separately)."""
    rules = [
        ("vision_encoder.", "vision_tower.timm_model."),
        ("vision_embed_tokens.0.", "multi_modal_projector.linear_1."),
        ("vision_embed_tokens.2.", "multi_modal_projector.linear_2."),
    ]
    if backbone == "pythia":
        rules += [("gpt_neox.", "language_model.gpt_neox."), ("embed_out.weight", head)]
    else:
        rules += [("backbone.embedding.", "language_model.backbone.embeddings."),
                  ("backbone.", "language_model.backbone.")]  # fmt: skip
        if key == "lm_head.weight":
            return None
    for old, new in rules:
        if key.startswith(old):
            return new + key[len(old) :]
    return "unmapped:" + key


def _head_key(model: VLForConditionalGeneration) -> str:
    """The state-dict key of the language model's output embedding in `model`."""
    head = model.language_model.get_output_embeddings()
    name = next(n for n, m in model.language_model.named_modules() if m is head)
    return f"language_model.{name}.weight"


def paper_state_dict(checkpoint: PaperCheckpoint, model: VLForConditionalGeneration) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors under `model`'s names; every source used, every target filled, shapes equal."""
    targets = model.state_dict()
    tied = {k for k in targets if k == "language_model.lm_head.weight"} if checkpoint.backbone == "mamba" else set()
    head, converted, unused = _head_key(model), {}, []
    for key, file in checkpoint.keys.items():
        name = _rename(key, checkpoint.backbone, head)
        if name is None:
            _check_tied_head(checkpoint)
            continue
        if name not in targets:
            unused.append(f"{key} ({file.name})")
            continue
        tensor = checkpoint.tensor(key)
        if tuple(tensor.shape) != tuple(targets[name].shape):
            raise ConversionError(
                f"{file}: {key} has shape {tuple(tensor.shape)}, but {name} needs {tuple(targets[name].shape)}"
            )
        converted[name] = tensor
    missing = sorted(set(targets) - set(converted) - tied)
    if unused or missing:
        raise ConversionError(
            f"{checkpoint.folder}: the keys do not match a {type(model).__name__}: "
            f"unexpected {unused[:8]}{' ...' if len(unused) > 8 else ''}; "
            f"missing {missing[:8]}{' ...' if len(missing) > 8 else ''}"
        )
    return converted


def _check_tied_head(checkpoint: PaperCheckpoint) -> None:
    """A pretrained Mamba file stores its tied head: it must equal the embeddings."""
    if "backbone.embedding.weight" not in checkpoint.keys:
        return  # reported as missing by the caller
    if not torch.equal(checkpoint.tensor("lm_head.weight"), checkpoint.tensor("backbone.embedding.weight")):
        raise ConversionError(
            f"{checkpoint.keys['lm_head.weight']}: lm_head.weight differs from backbone.embedding.weight, "
            "but Mamba-VL ties its head to the embeddings"
        )


# ------------------------------------------------------------------------------------------------------------------
# Processor and the conversion
# ------------------------------------------------------------------------------------------------------------------
def paper_tokenizer(name_or_path: str | os.PathLike[str], vocab_size: int) -> PreTrainedTokenizerBase:
    """GPT-NeoX's tokenizer with ``<image>`` added (pad = eos); it must fit the language model's vocabulary rows."""
    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    for token in LAYOUT_TOKENS[1:]:
        if len(tokenizer.encode(token, add_special_tokens=False)) != 1:
            raise ConversionError(f"tokenizer {name_or_path}: {token!r} is not one token, as in GPT-NeoX's")
    tokenizer.add_special_tokens({"additional_special_tokens": [LAYOUT_TOKENS[0]]})
    tokenizer.pad_token = tokenizer.eos_token
    if len(tokenizer) > vocab_size:
        raise ConversionError(
            f"tokenizer {name_or_path} has {len(tokenizer)} tokens with {LAYOUT_TOKENS[0]}, more than the "
            f"checkpoint's {vocab_size} vocabulary rows"
        )
    return tokenizer


def _source_folder(src: str | os.PathLike[str]) -> Path:
    """A local folder as is; a Hub id downloaded (config and safetensors only) with huggingface_hub."""
    if Path(src).is_dir():
        return Path(src)
    if Path(src).exists() or os.fspath(src).count("/") != 1:
        raise ConversionError(f"{src} is neither a checkpoint folder nor a Hub id such as {PAPER_CHECKPOINTS[0]}")
    try:
        return Path(snapshot_download(os.fspath(src), allow_patterns=["*.json", "*.safetensors"]))
    except Exception as err:  # offline, unknown repo, no access: say which
        raise ConversionError(f"cannot download {src} from the Hub: {err}") from err


def _load_converted(config: VLConfig, state: dict[str, torch.Tensor], folder: Path) -> VLForConditionalGeneration:
    """Load the converted tensors through ``from_pretrained`` (which also builds every non-persistent buffer)."""
    config.save_pretrained(folder)
    save_file({k: v.contiguous() for k, v in state.items()}, os.fspath(folder / "model.safetensors"))
    dtype = next(iter(state.values())).dtype
    model, info = MODEL_CLASSES[config.backbone].from_pretrained(folder, dtype=dtype, output_loading_info=True)
    leftovers = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if leftovers:  # paper_state_dict has checked this already; transformers' own check must agree
        raise ConversionError(f"transformers could not load every converted tensor: {leftovers}")
    return model


def convert_paper_checkpoint(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    tokenizer: str | os.PathLike[str] = DEFAULT_TOKENIZER,
    vision_model_args: Mapping[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Convert a paper checkpoint (folder or Hub id) into a saved model + processor at `out` (atomically).

    `tokenizer` is GPT-NeoX's (a Hub id or a local copy), `vision_model_args` extra timm constructor arguments (for
    other tower sizes), `dtype` the weights' dtype (default: the checkpoint's, bf16 for the released ones).
    """
    checkpoint = read_paper_checkpoint(_source_folder(src))
    out = Path(out)
    if out.exists():
        raise ConversionError(f"{out} exists; choose a new output folder")
    text_tokenizer = paper_tokenizer(tokenizer, int(checkpoint.config["vocab_size"]))
    config = paper_config(
        checkpoint,
        image_token_id=text_tokenizer.convert_tokens_to_ids(LAYOUT_TOKENS[0]),
        vision_model_args=vision_model_args,
    )
    with torch.device("meta"):
        state = paper_state_dict(checkpoint, MODEL_CLASSES[checkpoint.backbone](config))
    if dtype is not None:
        state = {k: v.to(dtype) for k, v in state.items()}
    image_size = int(checkpoint.config.get("image_size", 336))
    image_processor = VLImageProcessor(
        size={"height": image_size, "width": image_size}, image_mean=PAPER_IMAGE_MEAN, image_std=PAPER_IMAGE_STD
    )
    processor = VLProcessor(image_processor, text_tokenizer, image_grid_size=config.image_grid_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / "raw").mkdir()
        model = _load_converted(config, state, tmp / "raw")
        model.save_pretrained(tmp / "model")
        processor.save_pretrained(tmp / "model")
        os.replace(tmp / "model", out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
