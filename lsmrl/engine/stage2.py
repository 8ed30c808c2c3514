"""Stage 2: train the image side of LSMRL with every loss; the stage-1 prompts are frozen.

Losses (LSMRL Sec. 3.5; design.md §6), each switchable through its weight and the model switches:

* identity level: label-smoothed ID cross-entropy on the BNNeck logits,
  cross-modal batch-hard triplet on the final pre-BN feature, and (``i2t``, its
  own switch) CLIP-ReID's image-to-text cross-entropy of the *encoder's own*
  sequence feature (STFL) against the frozen identity prompts (not after SD and
  CMI, where it would pull towards the tracklet's own prompt while SD mixes in
  the others');
* SD ("generated" mode): its generated prompt's sentence feature is classified
  against the identity prompts (``sd_prompt``: close to the identity's learnt
  prompt) and the visible and infrared prompts of an identity are pulled
  together (``sd_modality``: modality-shared);
* modality level (``modality_losses``): the hetero-center triplet loss and the
  cross-modal contrastive loss.

The text side (prompts, text encoder) stays frozen, so the prompt features are
computed once. New modules (SD, CMI, neck) learn ``head_lr_scale`` x faster.
"""

from __future__ import annotations

import torch

from lsmrl.config import Stage2Config, TrainConfig
from lsmrl.engine.optim import adamw, warmup_cosine
from lsmrl.losses.contrastive import image_text_cross_entropy
from lsmrl.losses.identity import CrossEntropyLabelSmooth, TripletLoss
from lsmrl.losses.modality import cross_modal_contrastive_loss, cross_modal_prompt_consistency, hetero_center_loss
from lsmrl.model.lsmrl import LSMRL


def set_trainable(model: LSMRL, config: Stage2Config) -> None:
    """Freeze the text side and the first ``freeze_blocks`` ViT blocks; train the rest of the image side."""
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    visual = model.clip.visual
    for parameter in visual.parameters():
        parameter.requires_grad_(True)
    if config.freeze_blocks > 0:
        for module in (visual.conv1, visual.ln_pre):
            module.requires_grad_(False)
        visual.class_embedding.requires_grad_(False)
        visual.positional_embedding.requires_grad_(False)
        for block in visual.transformer.resblocks[: config.freeze_blocks]:
            block.requires_grad_(False)
    for module in (model.semantic_diffusion, model.cross_modal, model.neck):
        if module is not None:
            module.requires_grad_(True)
    model.neck.bn.bias.requires_grad_(False)  # BNNeck keeps its shift at 0
    # SD's generated prompts go through the frozen text encoder: gradients reach the inversion network through it


def build_optimizer(model: LSMRL, config: Stage2Config):
    heads = [p for m in (model.semantic_diffusion, model.cross_modal, model.neck) if m is not None
             for p in m.parameters()]
    head_ids = {id(p) for p in heads}
    backbone = [p for p in model.clip.visual.parameters() if id(p) not in head_ids]
    optimizer = adamw([{"params": backbone}, {"params": heads, "lr_scale": config.head_lr_scale}],
                      config.lr, config.weight_decay)
    return optimizer, warmup_cosine(optimizer, config.warmup_steps, config.steps)


class Stage2Losses:
    """Computes every enabled stage-2 loss term from a forward output."""

    def __init__(self, model: LSMRL, config: TrainConfig):
        self.config = config
        self.weights = config.losses
        stage = config.stage2
        self.id_loss = CrossEntropyLabelSmooth(model.config.num_classes, stage.label_smoothing)
        self.triplet = TripletLoss(stage.triplet_margin, cross_modal=True)
        self.use_text = model.config.i2t and self.weights.i2t > 0 and model.prompt_learner is not None
        self.use_sd_prompt = model.config.sd and model.config.sd_mode == "generated"
        self.use_modality = model.config.modality_losses
        self.text_features = None
        if self.use_text or self.use_sd_prompt:
            with torch.no_grad():
                self.text_features = model.prompt_features().detach()
        self.logit_scale = (1.0 / stage.i2t_temperature if stage.i2t_temperature
                            else model.clip.logit_scale.exp().item())

    def __call__(self, out: dict, labels: torch.Tensor, modalities: torch.Tensor) -> dict[str, torch.Tensor]:
        stage = self.config.stage2
        feature = out["cmi"].float()  # losses in fp32 whatever autocast computed the forward in
        terms = {"id": self.id_loss(out["logits"].float(), labels),
                 "triplet": self.triplet(feature, labels, modalities)}
        if self.use_text:  # the encoder's own feature, as CLIP-ReID (not after SD/CMI)
            terms["i2t"] = image_text_cross_entropy(out["stfl"].float(), self.text_features.to(feature.device), labels,
                                                    logit_scale=self.logit_scale, normalize=True)
        if self.use_sd_prompt and out.get("sd_prompt") is not None:
            prompt = out["sd_prompt"].float()
            if self.weights.sd_prompt > 0:
                terms["sd_prompt"] = image_text_cross_entropy(prompt, self.text_features.to(feature.device), labels,
                                                              logit_scale=self.logit_scale, normalize=True)
            if self.weights.sd_modality > 0:
                terms["sd_modality"] = cross_modal_prompt_consistency(prompt, labels, modalities)
        if self.use_modality:
            terms["modality_center"] = hetero_center_loss(feature, labels, modalities, margin=stage.center_margin)
            terms["modality_contrastive"] = cross_modal_contrastive_loss(
                feature, labels, modalities, temperature=stage.contrastive_temperature)
        return terms
