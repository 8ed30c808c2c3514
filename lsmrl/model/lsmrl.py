"""The LSMRL model: STFL -> SD -> CMI -> BNNeck, with ablation switches (LSMRL Sec. 3).

``LSMRL(config)`` builds everything from its config alone (the number of
training identities is part of the config, stored in every checkpoint), so a
checkpoint loads for inference without any data set.

``forward(frames, modalities)`` returns every stage by name, so analysis can
compare "before SD", "after SD" and "after CMI" without re-implementing the model:

=================  ============  ==============================================
key                shape         what
=================  ============  ==============================================
``frames``         (B, T, D)     projected class token of every frame
``stfl``           (B, D)        sequence feature: mean over frames (STFL)
``sd``             (B, D)        after semantic diffusion (= ``stfl`` if off)
``cmi``            (B, D)        after cross-modal interaction (= ``sd`` if off)
``embedding``      (B, D)        BNNeck output: the retrieval feature
``logits``         (B, C)        identity logits (training only)
``sd_attention``   (B, C)        SD: the generated prompt's softmax similarity to the
                                 identity prompts ("bank" mode: attention over them), or None
``sd_prompt``      (B, D)        SD: the generated prompt's sentence feature (or None)
``cmi_attention``  (B, C)        CMI attention over the other modality's memory (or None)
=================  ============  ==============================================

What each module does at test time, and why: an SD that attends over the fixed bank of training
identities' prompts and a CMI over a fixed prototype memory act mostly as a constant offset per modality
(44-60% and 27-36% of their residual energy, measured; docs/design.md §2). So SD *generates* a
modality-shared prompt from each sequence (an inversion network into the prompt template, encoded by the
CLIP text encoder and diffused into the frame features by cross-attention), and both SD and CMI centre
their residual per modality, so what they add depends on the input
(:mod:`lsmrl.model.semantic_diffusion`, :mod:`lsmrl.model.cross_modal`, :mod:`lsmrl.model.centring`).
:func:`lsmrl.engine.module_effects.modality_constant_share` measures it.

Checkpoints whose config lacks the keys ``sd_mode``, ``cmi_centred`` and ``shift_edges`` were trained
with the identity-bank SD, the uncentred CMI and the cyclic shift; :meth:`LSMRLConfig.from_dict` gives
them those values (``LEGACY_DEFAULTS``), so they still load and behave as trained.

With ``grouped``, ``shift``, ``sd`` and ``cmi`` all off the model is the
frame-wise CLIP baseline: the mean of the frames' class tokens, trained with
the ID and triplet losses (``modality_losses`` off too).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from lsmrl.data.tracklet import INFRARED, VISIBLE
from lsmrl.model.backbone import BackboneConfig, build_clip, build_tokenizer
from lsmrl.model.cross_modal import INFRARED_ID, VISIBLE_ID, CrossModalInteraction
from lsmrl.model.heads import BNNeck
from lsmrl.model.prompts import PromptLearner, TextEncoder
from lsmrl.model.semantic_diffusion import GeneratedPromptDiffusion, SemanticDiffusion
from lsmrl.model.stfl import DEFAULT_SHIFT_TILE, STFL, STFLConfig


@dataclass
class LSMRLConfig:
    """Everything needed to build the model (and nothing about the data set's files)."""

    clip_model: str = "lsmrl-mini"
    image_size: tuple[int, int] = (128, 64)
    quick_gelu: bool = False
    num_frames: int = 6  # T: frames sampled per tracklet in training and in test (forward accepts any T)
    num_classes: int = 0  # training identities: prompts, classifier, CMI memory
    # ablation switches
    grouped: bool = True
    shift: bool = True
    sd: bool = True
    cmi: bool = True
    modality_losses: bool = True
    # STFL
    grouped_start: int | None = None
    shift_start: int | None = None
    group_size: int = 2
    shift_tile: tuple[tuple[int, ...], ...] = DEFAULT_SHIFT_TILE
    shift_edges: str = "swap"  # "swap": no wrap across the tracklet's ends; "cyclic": TPS's wrap
    # prompts, SD, CMI
    prompt_template: str = "a photo of a x x x x person."
    prompt_context: int = 4
    sd_mode: str = "generated"  # "generated": a prompt per sequence (inversion); "bank": the identity bank
    sd_heads: int = 4
    i2t: bool = True  # image-to-text loss on the STFL feature against the stage-1 prompts (CLIP-ReID)
    cmi_heads: int = 4
    gate_init: float = 0.1
    cmi_momentum: float = 0.9
    cmi_share_weights: bool = False
    cmi_centred: bool = True  # subtract the per-modality mean residual
    mask_own_identity: bool = True  # SD/CMI leave out the own identity in training (test-time conditions)
    tokenizer: dict | None = None  # the word vocabulary of the miniature CLIP
    test_sampling: str = "evenly"

    @classmethod
    def from_dict(cls, data: dict, stored: bool = False) -> "LSMRLConfig":
        """Build from a dict. ``stored`` (a checkpoint's sidecar): keys an older config lacks take the values
        it was trained with (``LEGACY_DEFAULTS``); otherwise (a YAML config) missing keys take the field defaults."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config keys: {unknown}")
        data = {**LEGACY_DEFAULTS, **data} if stored else dict(data)
        if "image_size" in data:
            data["image_size"] = tuple(data["image_size"])
        if "shift_tile" in data:
            data["shift_tile"] = tuple(tuple(row) for row in data["shift_tile"])
        return cls(**data)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def is_baseline(self) -> bool:
        return not (self.grouped or self.shift or self.sd or self.cmi)

    @property
    def needs_prompts(self) -> bool:
        """Whether training learns identity prompts (stage 1): SD and the i2t loss use them."""
        return self.sd or self.i2t


# What configs stored before a key existed meant (they are read with these; new configs get the field defaults).
LEGACY_DEFAULTS = {"sd_mode": "bank", "cmi_centred": False, "shift_edges": "cyclic", "i2t": True}


def modality_ids(modalities, device=None) -> torch.Tensor:
    """``["visible", "infrared", ...]`` (or an id tensor) -> LongTensor of 0 (visible) / 1 (infrared)."""
    if isinstance(modalities, torch.Tensor):
        return modalities.long().to(device)
    lookup = {VISIBLE: VISIBLE_ID, INFRARED: INFRARED_ID}
    return torch.tensor([lookup[m] for m in modalities], dtype=torch.long, device=device)


class LSMRL(nn.Module):
    def __init__(self, config: LSMRLConfig, clip_weights: str | None = None):
        super().__init__()
        self.config = config
        self.clip = build_clip(BackboneConfig(config.clip_model, tuple(config.image_size), config.quick_gelu),
                               weights=clip_weights)
        self.tokenizer = build_tokenizer(config.clip_model, config.tokenizer)
        self.stfl = STFL(self.clip.visual, STFLConfig(
            grouped=config.grouped, shift=config.shift, grouped_start=config.grouped_start,
            shift_start=config.shift_start, group_size=config.group_size, shift_tile=config.shift_tile,
            shift_edges=config.shift_edges))
        dim = self.clip.visual.output_dim
        self.dim = dim
        classes = config.num_classes
        self.prompt_learner = (PromptLearner(self.clip, self.tokenizer, classes, config.prompt_template,
                                             config.prompt_context) if classes > 0 else None)
        self.text_encoder = TextEncoder(self.clip)
        self.semantic_diffusion = None
        if config.sd and classes > 0:
            if config.sd_mode == "generated":
                self.semantic_diffusion = GeneratedPromptDiffusion(
                    dim, classes, self.clip.token_embedding.weight.shape[1], config.prompt_context, config.sd_heads,
                    config.gate_init)
            elif config.sd_mode == "bank":
                self.semantic_diffusion = SemanticDiffusion(dim, classes, config.sd_heads, config.gate_init)
            else:
                raise ValueError(f"sd_mode must be 'generated' or 'bank', got {config.sd_mode!r}")
        self.cross_modal = (CrossModalInteraction(dim, classes, config.cmi_heads, config.gate_init,
                                                  config.cmi_momentum, config.cmi_share_weights, config.cmi_centred)
                            if config.cmi and classes > 0 else None)
        if (config.sd or config.cmi) and classes <= 0:
            raise ValueError("SD and CMI need num_classes > 0 (the training identities' prompts and memories)")
        self.neck = BNNeck(dim, classes)

    # ----------------------------------------------------------------- text side
    def encode_text(self, texts: list[str], normalize: bool = True) -> torch.Tensor:
        """CLIP text features of free text (captions, attribute probes)."""
        tokens = self.tokenizer(texts).to(self.clip.logit_scale.device)
        return self.clip.encode_text(tokens, normalize=normalize)

    def prompt_features(self, labels: torch.Tensor | None = None, chunk: int = 256) -> torch.Tensor:
        """Text features of the identity prompts (all identities if ``labels`` is None)."""
        if self.prompt_learner is None:
            raise RuntimeError("this model has no identity prompts (num_classes = 0)")
        if labels is None:
            labels = torch.arange(self.prompt_learner.num_classes, device=self.clip.logit_scale.device)
        outputs = []
        for start in range(0, len(labels), chunk):
            prompts, tokens = self.prompt_learner(labels[start:start + chunk])
            outputs.append(self.text_encoder(prompts, tokens))
        return torch.cat(outputs)

    @torch.no_grad()
    def refresh_prompt_bank(self) -> None:
        """Encode every identity prompt and hand the result to SD (end of stage 1 / after loading)."""
        if self.semantic_diffusion is not None:
            bank = self.prompt_features()
            if isinstance(self.semantic_diffusion, GeneratedPromptDiffusion):
                self.semantic_diffusion.set_prompt_bank(bank, self.clip.logit_scale.exp().item())
            else:
                self.semantic_diffusion.set_prompt_bank(bank)

    def encode_pseudo_words(self, words: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pseudo-words (B, n_ctx, width) in the prompt template through the text encoder: the sentence
        feature (B, D), every token's feature (B, L, D) and the padding mask (B, L) (True after end-of-text)."""
        prompts, tokens = self.prompt_learner.compose(words)
        sentence, every = self.text_encoder(prompts, tokens, every_token=True)
        end = tokens.argmax(dim=-1)
        padding = torch.arange(tokens.shape[1], device=tokens.device)[None, :] > end[:, None]
        return sentence, every, padding

    def sd_residual(self, stfl: dict, modalities: torch.Tensor) -> dict:
        """SD's uncentred residual of STFL outputs (for calibration: :mod:`lsmrl.engine.calibrate`)."""
        return self.semantic_diffusion.raw_residual(stfl["frame_features"], stfl["sequence"], self.encode_pseudo_words)

    # ----------------------------------------------------------------- image side
    def forward(self, frames: torch.Tensor, modalities, labels: torch.Tensor | None = None) -> dict:
        modalities = modality_ids(modalities, frames.device)
        stfl = self.stfl(frames)
        out = {"frames": stfl["frame_features"], "stfl": stfl["sequence"],
               "sd_attention": None, "sd_prompt": None, "cmi_attention": None}
        features = out["stfl"]
        exclude = labels if (self.training and labels is not None and self.config.mask_own_identity) else None
        if isinstance(self.semantic_diffusion, GeneratedPromptDiffusion):
            sd = self.semantic_diffusion(stfl["frame_features"], features, modalities, self.encode_pseudo_words)
            features, out["sd_attention"], out["sd_prompt"] = sd["features"], sd["attention"], sd["prompt"]
        elif self.semantic_diffusion is not None:
            features, out["sd_attention"] = self.semantic_diffusion(features, exclude)
        out["sd"] = features
        if self.cross_modal is not None:
            if self.training and labels is not None:
                self.cross_modal.update_memory(features, labels, modalities)
            features, out["cmi_attention"] = self.cross_modal(features, modalities, exclude)
        out["cmi"] = features
        out["embedding"], out["logits"] = self.neck(features)
        return out

    @torch.no_grad()
    def embed(self, frames: torch.Tensor, modalities, normalize: bool = True) -> torch.Tensor:
        """Retrieval embeddings of tracklets (B, T, 3, H, W) in eval mode."""
        was_training = self.training
        self.eval()
        try:
            embedding = self(frames, modalities)["embedding"]
        finally:
            self.train(was_training)
        return F.normalize(embedding, dim=-1) if normalize else embedding

    def trainable_summary(self) -> dict[str, int]:
        """Parameter counts per component (shows what each switch adds)."""
        parts = {"clip_visual": self.clip.visual, "neck": self.neck}
        if self.prompt_learner is not None:
            parts["prompt_learner"] = self.prompt_learner
        if self.semantic_diffusion is not None:
            parts["semantic_diffusion"] = self.semantic_diffusion
        if self.cross_modal is not None:
            parts["cross_modal"] = self.cross_modal
        return {name: sum(p.numel() for p in module.parameters()) for name, module in parts.items()}
