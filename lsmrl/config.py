"""Typed training configs: YAML files (with ``_base_`` inheritance) plus dotted CLI overrides.

The discipline follows CLIP-ReID: file, then ``key.sub=value`` overrides, then
the resolved config is dumped into the run directory and into every
checkpoint's sidecar, so any figure can be traced back to its exact settings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from lsmrl.errors import ConfigError
from lsmrl.losses.weights import LossWeights
from lsmrl.model.lsmrl import LSMRLConfig

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


@dataclass
class DataConfig:
    dataset: str = "synthvvi"
    root: str = ""
    # T (frames per tracklet) is ``model.num_frames``, one value for training and test: training
    # draws one random frame of each of T chunks, the test protocol the first frame of each chunk.
    workers: int = 0
    identities_per_batch: int = 8  # P
    tracklets_per_modality: int = 1  # K (per identity and modality)
    flip_prob: float = 0.5
    padding: int = 4
    erase_prob: float = 0.0
    visible_grayscale_prob: float = 0.0  # random grayscale of visible training tracklets (VI-ReID augmentation)
    visible_channel_prob: float = 0.0  # random single channel (R, G or B) of visible tracklets (CAJ augmentation)
    # Training frames decoded and resized once into RAM (lsmrl.engine.frame_bank) instead of read every step.
    frames_in_ram: bool = True
    # A validation draw (python -m lsmrl synth --seed S --train-identities 0): tuning reads it, never the test split.
    val_root: str = ""


@dataclass
class PretrainConfig:
    """Contrastive image-caption pretraining of the miniature CLIP (design.md §3). The defaults are the
    embedded demo's recipe: SynthVVI's native 128x64 frames (patch 8: a 16x8 grid), bf16 autocast where
    it measures faster than fp32 on this machine (``mixed_precision``; ``LSMRL_PRECISION`` decides otherwise)."""

    image_size: tuple[int, int] = (128, 64)
    mixed_precision: bool = True
    steps: int = 1500
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 30
    log_every: int = 10
    # A visible frame shown in grey is paired with the identity's colour-free (infrared) caption: the words
    # then describe only what the pixels show, and the image encoder learns shape semantics both modalities share.
    visible_grayscale_prob: float = 0.0
    # Which captions the frames meet. "modality": visible frames their colour caption, infrared frames the
    # colour-free one (the text targets differ by modality from the first step). "shared": frames of both
    # modalities meet the identity's colour-free caption, visible frames also their colour caption (with
    # probability visible_full_caption_prob), and every caption of an identity is a positive for every frame of
    # it, so one text describes a person in both modalities (the language bridge LSMRL's SD needs).
    caption_mode: str = "modality"
    visible_full_caption_prob: float = 0.5
    # Each "with"/"wearing" item of a caption left out with this probability (captions.drop_clauses), so that
    # captions cannot be memorised as whole strings. Keep it small: short partial captions collapsed the model.
    clause_dropout: float = 0.0
    # Frames decoded once into RAM and augmented batch-wise (lsmrl.engine.frame_bank) instead of read per step.
    frames_in_ram: bool = True

    def __post_init__(self) -> None:
        if self.caption_mode not in ("modality", "shared"):
            raise ValueError(f"pretrain.caption_mode must be 'modality' or 'shared', got {self.caption_mode!r}")
        for name in ("visible_full_caption_prob", "clause_dropout", "visible_grayscale_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"pretrain.{name} must lie in [0, 1], got {getattr(self, name)}")


@dataclass
class Stage1Config:
    """CLIP-ReID stage 1: identity prompts on cached, frozen image features."""

    steps: int = 400
    batch_size: int = 64
    lr: float = 3.5e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 20
    feature_passes: int = 2  # augmented passes over the train set whose features are cached
    log_every: int = 50
    # i2t negatives: "batch" (CLIP-ReID: the prompts of the batch's identities) or "all" (every identity's prompt,
    # a cross-entropy over the whole bank: the measure prompt_top1_train is taken over all of them too)
    negatives: str = "batch"

    def __post_init__(self) -> None:
        if self.negatives not in ("batch", "all"):
            raise ValueError(f"stage1.negatives must be 'batch' or 'all', got {self.negatives!r}")


@dataclass
class Stage2Config:
    """Stage 2: the image encoder, SD, CMI and the neck with every loss; prompts frozen."""

    steps: int = 300
    lr: float = 5e-5  # CLIP's image encoder
    head_lr_scale: float = 10.0  # SD, CMI, neck: new modules learn faster (VLD uses 25x)
    weight_decay: float = 1e-4
    warmup_steps: int = 30
    freeze_blocks: int = 0  # the first N ViT blocks (and the patch embedding) stay frozen
    label_smoothing: float = 0.1
    triplet_margin: float = 0.3
    center_margin: float = 0.3
    contrastive_temperature: float = 0.1
    i2t_temperature: float | None = None  # None: CLIP's learnt logit scale
    log_every: int = 10
    checkpoint_every: int = 100
    # Validation mAP every N steps on data.val_root (a draw of its own seed: never the test split), in the run
    # log. Mid-run figures use the training-time CMI memory and centres; the end-of-run calibration refreshes them.
    validate_every: int = 200


@dataclass
class TrainConfig:
    seed: int = 0
    model: LSMRLConfig = field(default_factory=LSMRLConfig)
    data: DataConfig = field(default_factory=DataConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    stage1: Stage1Config = field(default_factory=Stage1Config)
    stage2: Stage2Config = field(default_factory=Stage2Config)
    losses: LossWeights = field(default_factory=LossWeights)
    amp: bool = True  # mixed precision (lsmrl.engine.precision): bf16 where it measures faster, CUDA bf16/fp16; LSMRL_PRECISION overrides

    def to_dict(self) -> dict:
        return asdict(self)


def _merge(base: dict, update: dict) -> dict:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path in seen:
        raise ConfigError(f"config inheritance loop through {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML ({error})") from error
    base = data.pop("_base_", None)
    if base:
        data = _merge(_read_yaml((path.parent / base).resolve(), seen + (path,)), data)
    return data


def _set_dotted(data: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted}: {key} is not a section")
    node[keys[-1]] = value


def _build(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {data!r}")
    if cls is LSMRLConfig:
        try:
            return LSMRLConfig.from_dict(data)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{where}: {error}") from error
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        moved = {"num_frames": "model.num_frames (one T for training and test)",
                 "test_frames": "model.num_frames (one T for training and test)"} if cls is DataConfig else {}
        hint = "".join(f"; {where}.{k} is now {moved[k]}" for k in unknown if k in moved)
        raise ConfigError(f"{where}: unknown keys {unknown}; known: {sorted(known)}{hint}")
    values = {}
    for name, value in data.items():
        kind = hints[name]
        values[name] = _build(kind, value, f"{where}.{name}") if is_dataclass(kind) else value
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {error}") from error


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config (or the defaults) and apply ``key.sub=value`` overrides."""
    data: dict = {}
    if path is not None:
        candidate = Path(path)
        if not candidate.is_file() and (CONFIG_DIR / candidate).is_file():
            candidate = CONFIG_DIR / candidate  # a bundled config by name
        data = _read_yaml(candidate.resolve())
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        _set_dotted(data, key.strip(), _parse_value(raw))
    return _build(TrainConfig, data, "config")


def _parse_value(raw: str):
    """YAML scalar parsing, plus floats YAML 1.1 reads as strings (``5e-4``)."""
    value = yaml.safe_load(raw)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def dump_config(config: TrainConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(_plain(config.to_dict()), sort_keys=False))


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
