"""The CLIP backbone, built by open_clip from a named model config (design.md §2, §3).

* ``ViT-B-16`` is open_clip's own config; LSMRL's paper setting feeds it
  non-square frames (288x144 or 256x128), so the patch grid is (18, 9) or (16, 8)
  and the position embeddings of square-trained weights are resized on load.
* ``lsmrl-mini`` is our miniature CLIP (``configs/lsmrl-mini.json``), registered
  with open_clip so that it goes through the very same ``create_model`` path.
  It uses a closed word vocabulary (:mod:`lsmrl.model.tokenizer`).

Weights come only from a local file the user names (safetensors, or a state
dict read with ``torch.load(weights_only=True)``). Nothing is downloaded unless
the user explicitly passes an open_clip pretrained *tag*.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import open_clip
import torch
from open_clip.model import resize_pos_embed

from lsmrl.errors import CheckpointError
from lsmrl.model.tokenizer import WordTokenizer

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def register_model_configs() -> None:
    """Make our model configs (``lsmrl-mini``) known to open_clip; safe to call repeatedly."""
    if "lsmrl-mini" not in open_clip.list_models():
        open_clip.add_model_config(CONFIG_DIR)


def clip_model_config(name: str) -> dict:
    register_model_configs()
    config = open_clip.get_model_config(name)
    if config is None:
        raise CheckpointError(
            f"unknown CLIP model config {name!r}; known: lsmrl-mini, ViT-B-16, ... "
            f"(see open_clip.list_models())"
        )
    return config


@dataclass
class BackboneConfig:
    """Which CLIP to build and at which input size (H, W)."""

    name: str = "lsmrl-mini"
    image_size: tuple[int, int] = (128, 64)
    quick_gelu: bool = False  # True for OpenAI-format weights (design.md §5)


def build_clip(config: BackboneConfig, weights: str | Path | None = None,
               pretrained_tag: str | None = None) -> open_clip.CLIP:
    """Build the open_clip CLIP of ``config``; load ``weights`` (a local file) if given.

    ``pretrained_tag`` (e.g. ``"openai"``) asks open_clip to fetch weights; it is
    never used implicitly.
    """
    clip_model_config(config.name)  # raises a clear error for an unknown name
    root_logger = logging.getLogger()
    level = root_logger.level
    if pretrained_tag is None:  # open_clip warns "no pretrained weights" on the root logger: expected here
        root_logger.setLevel(logging.ERROR)
    try:
        model = open_clip.create_model(
            config.name,
            pretrained=pretrained_tag,
            force_quick_gelu=config.quick_gelu,
            force_image_size=tuple(config.image_size),
            device="cpu",
        )
    finally:
        root_logger.setLevel(level)
    if weights is not None:
        load_clip_weights(model, weights)
    return model


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict without unpickling arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as error:  # safetensors raises its own error types
            raise CheckpointError(f"{path} is not a valid safetensors file ({error})") from error
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(
            f"{path} could not be read as a weights-only torch file ({type(error).__name__}: {error}). "
            "Only safetensors files and plain state dicts are loaded (never arbitrary pickles); "
            "convert TorchScript/OpenAI .pt archives with `torch.jit.load(f).state_dict()` "
            "and save them with safetensors."
        ) from error
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def state_dict_mismatch(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor], shown: int = 5) -> str:
    """A readable list of missing, unexpected and mis-shaped keys ("" when ``state`` fits ``own``)."""
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mis_shaped = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    parts = []
    if missing:
        parts.append(f"missing {len(missing)} keys (e.g. {missing[:shown]})")
    if unexpected:
        parts.append(f"unexpected {len(unexpected)} keys (e.g. {unexpected[:shown]})")
    if mis_shaped:
        shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in mis_shaped[:shown]]
        parts.append(f"{len(mis_shaped)} keys of another shape ({'; '.join(shapes)})")
    return ", ".join(parts)


def load_clip_weights(model: open_clip.CLIP, path: str | Path) -> None:
    """Load CLIP weights (OpenAI or open_clip key names) from a local file, strictly.

    Position embeddings trained on a square grid are resized to the model's grid.
    Any missing, unexpected or mis-shaped key is an error that lists the keys.
    """
    state = read_state_dict(path)
    state = {k: v for k, v in state.items() if k not in ("input_resolution", "context_length", "vocab_size")}
    pos = state.get("visual.positional_embedding")
    if pos is not None and pos.shape != model.visual.positional_embedding.shape:
        patches = pos.shape[0] - 1
        if int(patches**0.5) ** 2 != patches:
            raise CheckpointError(
                f"{path}: visual.positional_embedding has {patches} patches, which is not a square grid "
                f"and does not match the model's grid {tuple(model.visual.grid_size)}; "
                "build the model at the image size the weights were trained at"
            )
        resize_pos_embed(state, model)
    problems = state_dict_mismatch(model.state_dict(), state)
    if problems:
        raise CheckpointError(
            f"{path} does not match the CLIP config: {problems}. "
            "Check that --clip-model names the architecture these weights were trained for."
        )
    model.load_state_dict(state, strict=True)


def build_tokenizer(name: str, tokenizer_config: dict | None = None):
    """The tokenizer of a model: our word tokenizer for the miniature CLIP, open_clip's otherwise."""
    if tokenizer_config and tokenizer_config.get("type") == "word":
        return WordTokenizer(tokenizer_config["words"], tokenizer_config["vocab_size"],
                             tokenizer_config["context_length"])
    if name == "lsmrl-mini":
        raise CheckpointError(
            "the miniature CLIP needs its word vocabulary (tokenizer config), which is stored "
            "in its checkpoint's JSON sidecar; none was given"
        )
    return open_clip.get_tokenizer(name)
