"""Losses against hand-computed values on tiny 2-D inputs (arithmetic in the comments)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lsmrl.losses import (
    CrossEntropyLabelSmooth,
    LossWeights,
    SupConLoss,
    TripletLoss,
    cross_modal_contrastive_loss,
    hetero_center_loss,
    image_text_cross_entropy,
    image_to_text_contrastive,
    modality_centers,
    text_to_image_contrastive,
)

VIS, IR = 0, 1


def t(values, **kwargs):
    return torch.tensor(values, dtype=torch.float64, **kwargs)


# --------------------------------------------------------------------------- identity level


def test_label_smoothing_hand_value():
    # K = 2, logits (ln 3, 0) -> p = (3/4, 1/4); target 0, eps 0.1 -> smoothed target (0.95, 0.05)
    # loss = 0.95 * -ln(3/4) + 0.05 * -ln(1/4) = 0.95 * 0.287682 + 0.05 * 1.386294 = 0.342613
    loss = CrossEntropyLabelSmooth(num_classes=2, epsilon=0.1)(t([[math.log(3), 0.0]]), torch.tensor([0]))
    assert loss.item() == pytest.approx(0.3426126869)


def test_label_smoothing_matches_torch():
    torch.manual_seed(0)
    logits, targets = torch.randn(6, 5), torch.randint(0, 5, (6,))
    assert CrossEntropyLabelSmooth(5, epsilon=0.0)(logits, targets).item() == pytest.approx(
        F.cross_entropy(logits, targets).item(), abs=1e-6
    )
    assert CrossEntropyLabelSmooth(5, epsilon=0.1)(logits, targets).item() == pytest.approx(
        F.cross_entropy(logits, targets, label_smoothing=0.1).item(), abs=1e-6
    )
    with pytest.raises(ValueError):
        CrossEntropyLabelSmooth(4)(logits, targets)


# Four samples in 2-D:      p0 = (0, 0) id 0 visible     p1 = (3, 0) id 0 infrared
#                           p2 = (1, 0) id 1 visible     p3 = (0, 4) id 1 infrared
# Distances: d01 = 3, d02 = 1, d03 = 4, d12 = 2, d13 = 5, d23 = sqrt(17) = 4.1231
TRIPLET_FEATURES = [[0.0, 0.0], [3.0, 0.0], [1.0, 0.0], [0.0, 4.0]]
TRIPLET_LABELS = [0, 0, 1, 1]
TRIPLET_MODALITIES = [VIS, IR, VIS, IR]


def test_triplet_cross_modal_hand_value():
    # cross-modal mining (candidates of the other modality only), margin 0.3:
    #   p0: pos p1 (3), neg p3 (4)            -> max(0, 3 - 4 + 0.3)          = 0
    #   p1: pos p0 (3), neg p2 (2)            -> max(0, 3 - 2 + 0.3)          = 1.3
    #   p2: pos p3 (4.1231), neg p1 (2)       -> max(0, 4.1231 - 2 + 0.3)     = 2.4231
    #   p3: pos p2 (4.1231), neg p0 (4)       -> max(0, 4.1231 - 4 + 0.3)     = 0.4231
    #   mean = 4.1462 / 4 = 1.036553; satisfied triplets: p0 only -> 1/4
    loss_fn = TripletLoss(margin=0.3, cross_modal=True)
    loss, satisfied = loss_fn(t(TRIPLET_FEATURES), torch.tensor(TRIPLET_LABELS), torch.tensor(TRIPLET_MODALITIES),
                              return_stats=True)
    assert loss.item() == pytest.approx(1.0365528128, abs=1e-6)
    assert satisfied == pytest.approx(0.25)


def test_triplet_all_modality_hand_value():
    # all-modality mining:
    #   p0: pos p1 (3), neg min(d02 = 1, d03 = 4) = 1        -> 2.3
    #   p1: pos p0 (3), neg min(d12 = 2, d13 = 5) = 2        -> 1.3
    #   p2: pos p3 (4.1231), neg min(d02 = 1, d12 = 2) = 1   -> 3.4231
    #   p3: pos p2 (4.1231), neg min(d03 = 4, d13 = 5) = 4   -> 0.4231
    #   mean = 7.4462 / 4 = 1.861553
    loss = TripletLoss(margin=0.3, cross_modal=False)(t(TRIPLET_FEATURES), torch.tensor(TRIPLET_LABELS))
    assert loss.item() == pytest.approx(1.8615528128, abs=1e-6)


def test_cross_modal_mining_picks_other_modality_samples():
    features, labels, modalities = t(TRIPLET_FEATURES), torch.tensor(TRIPLET_LABELS), torch.tensor(TRIPLET_MODALITIES)
    _, _, pos_c, neg_c, valid_c = TripletLoss(cross_modal=True).mine(features, labels, modalities)
    _, _, _, neg_a, _ = TripletLoss(cross_modal=False).mine(features, labels, modalities)
    assert valid_c.all()
    # hardest negative of p0: p3 (infrared) across modalities, p2 (visible, closer) without the constraint
    assert neg_c[0].item() == 3 and neg_a[0].item() == 2
    # every mined sample is of the other modality than its anchor
    mods = torch.tensor(TRIPLET_MODALITIES)
    assert (mods[pos_c] != mods).all() and (mods[neg_c] != mods).all()


def test_triplet_soft_margin_and_degenerate_batches():
    features = t(TRIPLET_FEATURES, requires_grad=True)
    labels, modalities = torch.tensor(TRIPLET_LABELS), torch.tensor(TRIPLET_MODALITIES)
    d_ap, d_an, _, _, _ = TripletLoss(cross_modal=True).mine(features, labels, modalities)
    soft = TripletLoss(margin=None, cross_modal=True)(features, labels, modalities)
    assert soft.item() == pytest.approx(F.softplus(d_ap - d_an).mean().item())
    # one modality only: no cross-modal pair at all -> zero that still backpropagates
    zero = TripletLoss(cross_modal=True)(features, labels, torch.zeros(4, dtype=torch.long))
    assert zero.item() == 0.0 and zero.requires_grad
    zero.backward()
    with pytest.raises(ValueError, match="modalities"):
        TripletLoss(cross_modal=True)(features, labels)


def test_triplet_cosine_metric():
    # cosine distance 1 - cos: p0' = (1, 0), p1' = (0, 1), p2' = (1, 1), p3' = (-1, 0), all-modality mining
    #   cos(p0', p1') = 0 -> d 1 ; cos(p0', p2') = 0.7071 -> d 0.2929 ; cos(p0', p3') = -1 -> d 2
    #   p0': pos p1' (1), neg min(0.2929, 2) -> 1 - 0.2929 + 0.3 = 1.0071
    features = t([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    d_ap, d_an, _, _, _ = TripletLoss(cross_modal=False, metric="cosine").mine(features, torch.tensor([0, 0, 1, 1]))
    assert d_ap[0].item() == pytest.approx(1.0) and d_an[0].item() == pytest.approx(1 - math.sqrt(0.5))


# --------------------------------------------------------------------------- image-text (CLIP-ReID)


def test_supcon_hand_values():
    # images i0 = (1, 0) label 0, i1 = (0, 1) label 1; texts of the batch's labels T0 = (1, 0), T1 = (0, 1)
    # i2t, temperature 1: i0 logits (1, 0) -> -log softmax at T0 = ln(1 + e^-1) = 0.313262; i1 the same
    images, texts, labels = t([[1.0, 0.0], [0.0, 1.0]]), t([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1])
    assert image_to_text_contrastive(images, texts, labels).item() == pytest.approx(0.3132616875)
    assert text_to_image_contrastive(texts, images, labels).item() == pytest.approx(0.3132616875)
    # temperature 0.5 doubles the logits: ln(1 + e^-2) = 0.126928
    assert image_to_text_contrastive(images, texts, labels, temperature=0.5).item() == pytest.approx(0.1269280110)


def test_supcon_several_positives():
    # images i0 = (1, 0) l0, i1 = (0, 1) l1, i2 = (1, 1) l0 ; texts (T0, T1, T0), T0 = (1, 0), T1 = (0, 1)
    #   i0 logits (1, 0, 1), positives j = 0, 2: each -log p = ln(2e + 1) - 1 = 0.861995
    #   i1 logits (0, 1, 0), positive j = 1:       -log p = ln(e + 2) - 1  = 0.551445
    #   i2 logits (1, 1, 1), positives j = 0, 2: each -log p = ln 3        = 1.098612
    #   mean = (0.861995 + 0.551445 + 1.098612) / 3 = 0.837351
    images = t([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    texts = t([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    labels = torch.tensor([0, 1, 0])
    assert image_to_text_contrastive(images, texts, labels).item() == pytest.approx(0.8373506022)
    assert SupConLoss()(images, texts, labels, labels).item() == pytest.approx(0.8373506022)


def test_contrastive_lower_for_aligned_than_shuffled():
    torch.manual_seed(1)
    images = F.normalize(torch.randn(8, 16), dim=1)
    labels = torch.arange(8)
    aligned = image_to_text_contrastive(images, images.clone(), labels, temperature=0.1)
    shuffled = image_to_text_contrastive(images, images[torch.roll(labels, 1)], labels, temperature=0.1)
    assert aligned.item() < shuffled.item()


def test_image_text_cross_entropy_hand_value():
    # image (1, 0), class texts (1, 0), (0, 1), (-1, 0), logit scale 2 -> logits (2, 0, -2)
    # -log p = (ln(e^2 + 1 + e^-2) - 2, +2, +4) = (0.142932, 2.142932, 4.142932)
    # eps 0:   0.142932
    # eps 0.1: 0.9 * 0.142932 + (0.1 / 3) * (0.142932 + 2.142932 + 4.142932) = 0.342932
    image, texts, label = t([[1.0, 0.0]]), t([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]), torch.tensor([0])
    assert image_text_cross_entropy(image, texts, label, logit_scale=2.0, epsilon=0.0).item() == pytest.approx(
        0.1429316285
    )
    assert image_text_cross_entropy(image, texts, label, logit_scale=2.0, epsilon=0.1).item() == pytest.approx(
        0.3429316285
    )


# --------------------------------------------------------------------------- modality level


def test_modality_centers():
    features = t([[-1.0, 0.0], [1.0, 0.0], [0.0, 3.0], [2.0, 0.0]])
    labels, modalities = torch.tensor([5, 5, 5, 7]), torch.tensor([VIS, VIS, IR, VIS])
    ids, centers, present, is_ir = modality_centers(features, labels, modalities)
    assert ids.tolist() == [5, 7]
    # rows: vis 5, vis 7, ir 5, ir 7 (absent)
    assert centers.tolist() == [[0.0, 0.0], [2.0, 0.0], [0.0, 3.0], [0.0, 0.0]]
    assert present.tolist() == [True, True, True, False] and is_ir.tolist() == [False, False, True, True]


# Centres: id 0 visible (0, 0) (mean of (-1, 0) and (1, 0)), id 0 infrared (0, 3),
#          id 1 visible (2, 0), id 1 infrared (2, 3) (mean of (2, 2) and (2, 4)).
# d(same identity) = 3 for both; d(c0v, c1v) = d(c0r, c1r) = 2; d(c0v, c1r) = d(c0r, c1v) = sqrt(13) = 3.6056
CENTER_FEATURES = [[-1.0, 0.0], [1.0, 0.0], [0.0, 3.0], [2.0, 0.0], [2.0, 2.0], [2.0, 4.0]]
CENTER_LABELS = [0, 0, 0, 1, 1, 1]
CENTER_MODALITIES = [VIS, VIS, IR, VIS, IR, IR]


def test_hetero_center_hand_values():
    features, labels, mods = t(CENTER_FEATURES), torch.tensor(CENTER_LABELS), torch.tensor(CENTER_MODALITIES)
    # negatives of both modalities (Liu et al.): every anchor's nearest other-identity centre is at 2
    #   each of the 4 anchors: max(0, 0.3 + 3 - 2) = 1.3 -> mean 1.3
    assert hetero_center_loss(features, labels, mods, margin=0.3).item() == pytest.approx(1.3)
    # negatives of the other modality only: nearest is at sqrt(13) = 3.6056
    #   each anchor: max(0, 0.3 + 3 - 3.6056) = 0
    assert hetero_center_loss(features, labels, mods, margin=0.3, negatives="cross_modal").item() == pytest.approx(0.0)
    #   with margin 1: 1 + 3 - 3.6056 = 0.394449
    assert hetero_center_loss(features, labels, mods, margin=1.0, negatives="cross_modal").item() == pytest.approx(
        4 - math.sqrt(13)
    )


def test_hetero_center_zero_when_centres_coincide_positive_when_shifted():
    # id 0 at (0, 0) and id 1 at (5, 0) in both modalities: same-identity distance ~0 < 5 - margin
    base = t([[0.0, 0.0], [0.0, 0.0], [5.0, 0.0], [5.0, 0.0]])
    labels, mods = torch.tensor([0, 0, 1, 1]), torch.tensor([VIS, IR, VIS, IR])
    assert hetero_center_loss(base, labels, mods).item() == pytest.approx(0.0, abs=1e-5)
    # shift the infrared samples by (0, 6): same-identity distance 6 > nearest other centre (5)
    #   each anchor: max(0, 0.3 + 6 - 5) = 1.3
    shifted = base + t([[0.0, 0.0], [0.0, 6.0], [0.0, 0.0], [0.0, 6.0]])
    assert hetero_center_loss(shifted, labels, mods).item() == pytest.approx(1.3)


def test_hetero_center_skips_identities_missing_a_modality():
    features = t(CENTER_FEATURES + [[1.0, 0.5]], requires_grad=True)  # id 2, visible only, near id 0's centre
    labels, mods = torch.tensor(CENTER_LABELS + [2]), torch.tensor(CENTER_MODALITIES + [VIS])
    loss = hetero_center_loss(features, labels, mods)
    # id 2 is no anchor but is a negative, centre c2v = (1, 0.5):
    #   c0v (0, 0): nearest other centre c2v at sqrt(1 + 0.25) = 1.1180 -> 0.3 + 3 - 1.1180 = 2.1820
    #   c1v (2, 0): likewise c2v at 1.1180                                -> 2.1820
    #   c0r (0, 3): c2v at sqrt(1 + 6.25) = 2.6926, c1r at 2 -> nearest 2 -> 0.3 + 3 - 2 = 1.3
    #   c1r (2, 3): likewise                                               -> 1.3
    #   mean = (2 * 2.1820 + 2 * 1.3) / 4 = 1.7410
    expected = (2 * (0.3 + 3 - math.sqrt(1.25)) + 2 * 1.3) / 4
    assert loss.item() == pytest.approx(expected)
    # nothing with both modalities -> zero with requires_grad
    lonely = hetero_center_loss(features[:2], labels[:2], mods[:2])
    assert lonely.item() == 0.0 and lonely.requires_grad
    lonely.backward()


def test_cross_modal_contrastive_hand_value():
    # visible v0 = (1, 0) id 0, v1 = (0, 1) id 1 ; infrared r0 = (2, 0) id 0, r1 = (0, 3) id 1 (normalised first)
    # temperature 1: v0 logits (1, 0) -> ln(1 + e^-1) = 0.313262, same for every anchor in both directions
    features = t([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [0.0, 3.0]])
    labels, mods = torch.tensor([0, 1, 0, 1]), torch.tensor([VIS, VIS, IR, IR])
    assert cross_modal_contrastive_loss(features, labels, mods, temperature=1.0).item() == pytest.approx(0.3132616875)
    # temperature 0.5: ln(1 + e^-2) = 0.126928 ; with swapped identities (shuffled pairs): ln(1 + e^2) = 2.126928
    assert cross_modal_contrastive_loss(features, labels, mods, temperature=0.5).item() == pytest.approx(0.1269280110)
    shuffled = torch.tensor([0, 1, 1, 0])
    assert cross_modal_contrastive_loss(features, shuffled, mods, temperature=0.5).item() == pytest.approx(2.1269280110)


def test_cross_modal_contrastive_lower_for_aligned_than_shuffled_and_skips():
    torch.manual_seed(2)
    people = torch.randn(6, 32)
    visible, infrared = people + 0.1 * torch.randn(6, 32), people + 0.1 * torch.randn(6, 32)
    features = torch.cat([visible, infrared])
    mods = torch.tensor([VIS] * 6 + [IR] * 6)
    aligned = cross_modal_contrastive_loss(features, torch.arange(6).repeat(2), mods)
    shuffled = cross_modal_contrastive_loss(features, torch.cat([torch.arange(6), torch.arange(6).roll(1)]), mods)
    assert aligned.item() < shuffled.item()
    # no identity in both modalities -> zero with requires_grad
    features.requires_grad_(True)
    none = cross_modal_contrastive_loss(features, torch.arange(12), mods)
    assert none.item() == 0.0 and none.requires_grad


# --------------------------------------------------------------------------- gradients and weights


def test_gradients_flow_through_every_loss():
    torch.manual_seed(3)
    features = torch.randn(8, 6, requires_grad=True)
    texts = torch.randn(8, 6, requires_grad=True)
    class_texts = torch.randn(4, 6)
    logits = torch.randn(8, 4, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    mods = torch.tensor([VIS, IR] * 4)
    losses = {
        "id": CrossEntropyLabelSmooth(4)(logits, labels),
        "triplet": TripletLoss(margin=10.0)(features, labels, mods),  # large margin: hinge active
        "i2t": image_text_cross_entropy(features, class_texts, labels),
        "i2t_supcon": image_to_text_contrastive(features, texts, labels)
        + text_to_image_contrastive(texts, features, labels),
        "modality_center": hetero_center_loss(features, labels, mods, margin=10.0),
        "modality_contrastive": cross_modal_contrastive_loss(features, labels, mods),
    }
    for name, loss in losses.items():
        grads = torch.autograd.grad(loss, [p for p in (features, texts, logits) if p.requires_grad], allow_unused=True)
        used = [g for g in grads if g is not None]
        assert used, name
        assert all(torch.isfinite(g).all() for g in used), name
        assert any(g.abs().sum() > 0 for g in used), name


def test_loss_weights():
    weights = LossWeights()
    assert weights.as_dict() == {"id": 1.0, "triplet": 1.0, "i2t": 1.0, "sd_prompt": 1.0, "sd_modality": 1.0,
                                 "modality_center": 1.0, "modality_contrastive": 1.0}
    total = LossWeights(id=0.25, triplet=2.0).total({"id": torch.tensor(4.0), "triplet": torch.tensor(1.0)})
    assert total.item() == pytest.approx(0.25 * 4 + 2 * 1)
    with pytest.raises(KeyError):
        weights.total({"center": torch.tensor(1.0)})
    with pytest.raises(ValueError):
        LossWeights(id=-1.0)


def test_cross_modal_prompt_consistency_hand_value():
    from lsmrl.losses import cross_modal_prompt_consistency

    prompts = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [3.0, 3.0]])
    labels, modalities = torch.tensor([0, 0, 1, 1, 2]), torch.tensor([0, 1, 0, 1, 0])
    # identity 0: orthogonal visible/infrared prompts -> 1; identity 1: identical -> 0; identity 2: one modality only
    assert cross_modal_prompt_consistency(prompts, labels, modalities).item() == pytest.approx(0.5)
    assert cross_modal_prompt_consistency(prompts[4:], labels[4:], modalities[4:]).item() == 0.0
