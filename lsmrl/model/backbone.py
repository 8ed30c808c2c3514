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
        if int(patches**0.5) ** 2 == patches:
            resize_pos_embed(state, model)
        else:
            source = _grid_with_aspect(patches, tuple(model.visual.grid_size))
            if source is None:
                raise CheckpointError(
                    f"{path}: visual.positional_embedding has {patches} patches, which is neither a square grid "
                    f"nor a grid of the model's aspect ratio {tuple(model.visual.grid_size)}; "
                    "build the model at the image size the weights were trained at"
                )
            state["visual.positional_embedding"] = resize_grid_pos_embed(pos, source, tuple(model.visual.grid_size))
    problems = state_dict_mismatch(model.state_dict(), state)
    if problems:
        raise CheckpointError(
            f"{path} does not match the CLIP config: {problems}. "
            "Check that --clip-model names the architecture these weights were trained for."
        )
    model.load_state_dict(state, strict=True)


def _grid_with_aspect(patches: int, target: tuple[int, int]) -> tuple[int, int] | None:
    """The (rows, cols) grid of ``patches`` cells with the aspect ratio of ``target`` (e.g. 32 -> (8, 4) for (16, 8))."""
    rows, cols = target
    for h in range(1, patches + 1):
        if patches % h == 0 and h * cols == (patches // h) * rows:
            return h, patches // h
    return None


def resize_grid_pos_embed(pos: torch.Tensor, source: tuple[int, int], target: tuple[int, int]) -> torch.Tensor:
    """Bicubic resize of a ViT position embedding (class token first) from a ``source`` to a ``target`` patch grid.

    How a CLIP pretrained at one frame size is fine-tuned at another (open_clip's own helper assumes square
    grids; person crops are 2:1).
    """
    cls, grid = pos[:1], pos[1:]
    width = grid.shape[-1]
    grid = grid.reshape(1, source[0], source[1], width).permute(0, 3, 1, 2).float()
    grid = torch.nn.functional.interpolate(grid, size=target, mode="bicubic", align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(target[0] * target[1], width).to(pos.dtype)
    return torch.cat([cls, grid], dim=0)


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
