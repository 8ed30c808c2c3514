"""Checkpoints: safetensors weights + a JSON sidecar; never a pickle.

``<name>.safetensors`` holds the state dict; ``<name>.json`` holds
``{"format", "model_config", "training", "data", "metrics", "weights_sha256", ...}``.
The model is rebuilt from ``model_config`` alone, so loading needs neither the
data set nor a class count. Every mismatch is refused with a message that names
the file and the offending keys (CLIP-ReID #8/#10/#57, torchreid #482).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from lsmrl.errors import CheckpointError
from lsmrl.model.backbone import state_dict_mismatch
from lsmrl.model.lsmrl import LSMRL, LSMRLConfig

FORMAT = "lsmrl-checkpoint-1"


def sidecar_path(weights: str | Path) -> Path:
    return Path(weights).with_suffix(".json")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(model: LSMRL, path: str | Path, **sections) -> Path:
    """Write ``path`` (.safetensors) and its JSON sidecar; ``sections`` go into the JSON."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"checkpoint names end in .safetensors, got {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"format": FORMAT})
    meta = {"format": FORMAT, "model_config": model.config.to_dict(), "weights_sha256": file_sha256(path)}
    meta.update(sections)
    write_checkpoint_meta(path, meta)
    return path


def write_checkpoint_meta(path: str | Path, meta: dict) -> None:
    """Write ``meta`` as the JSON sidecar of the weights ``path`` (the weights are not touched)."""
    sidecar_path(path).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")


def read_checkpoint_meta(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.suffix != ".safetensors":
        raise CheckpointError(
            f"{path.name} is not a .safetensors checkpoint. LSMRL checkpoints are safetensors weights "
            "plus a JSON sidecar (pickled .pt/.pth files are never loaded); train or convert with "
            "`python -m lsmrl train`."
        )
    meta_path = sidecar_path(path)
    if not meta_path.is_file():
        raise CheckpointError(f"{path.name} has no JSON sidecar {meta_path.name} next to it (model config)")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{meta_path} is not valid JSON ({error})") from error
    if meta.get("format") != FORMAT or "model_config" not in meta:
        raise CheckpointError(f"{meta_path} is not an LSMRL checkpoint sidecar (format {meta.get('format')!r})")
    return meta


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[LSMRL, dict]:
    """Rebuild the model from the sidecar and load the weights strictly; returns (model in eval mode, meta)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    meta = read_checkpoint_meta(path)
    try:
        config = LSMRLConfig.from_dict(meta["model_config"], stored=True)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{sidecar_path(path).name}: invalid model config ({error})") from error
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is not a valid safetensors file ({error})") from error
    model = LSMRL(config)
    own = model.state_dict()
    # A checkpoint without the prompt template's buffers gets them rebuilt from the loaded CLIP below.
    template = {k for k in own if k.startswith("prompt_learner.") and k.split(".")[-1] in ("prefix", "suffix")}
    rebuild = bool(template) and not (template & set(state))
    problems = state_dict_mismatch({k: v for k, v in own.items() if not (rebuild and k in template)}, state)
    if problems:
        raise CheckpointError(
            f"{path.name}: the weights do not match the model config in {sidecar_path(path).name}: "
            f"{problems}. The two files must come from the same training run."
        )
    model.load_state_dict(state, strict=not rebuild)
    if rebuild:
        # the text side is frozen in training, so the loaded token embedding is the one the prompts were learnt with
        model.prompt_learner.rebuild_template(model.clip)
    return model.to(device).eval(), meta


def store_half_precision(path: str | Path) -> dict:
    """Rewrite the weights of checkpoint ``path`` with every fp32 tensor stored as fp16 (half the size).

    The model is still built and run in fp32: ``load_model`` copies the stored values into fp32
    parameters. fp16 keeps 11 significant bits, so embeddings move by about 1e-3 relative; evaluate
    the stored file again (``python -m lsmrl eval --record``) so that the sidecar's metrics are the
    ones this file gives. Returns ``{"bytes_before", "bytes_after"}``; the sidecar gets the new
    sha256 and ``"storage_dtype": "float16"``.
    """
    from safetensors.torch import load_file, save_file

    path = Path(path)
    meta = read_checkpoint_meta(path)
    before = path.stat().st_size
    state = load_file(str(path))
    half = {k: (v.half() if v.dtype == torch.float32 else v).contiguous() for k, v in state.items()}
    save_file(half, str(path), metadata={"format": FORMAT})
    meta["weights_sha256"] = file_sha256(path)
    meta["storage_dtype"] = "float16"
    write_checkpoint_meta(path, meta)
    return {"bytes_before": before, "bytes_after": path.stat().st_size}
