"""What semantic diffusion (SD) changes (LSMRL Sec. 3.3; anchors §7, feature 5).

SD moves a tracklet's STFL feature towards the identity prompts it attends to
(``sd = stfl + g * attention(stfl, prompt bank)``, see
:mod:`lsmrl.model.semantic_diffusion`). Three views of its effect, all computed
from :func:`lsmrl.engine.extract.extract_stages` output (``stfl``, ``sd``,
``sd_attention``, ``pids``, ``modalities``) plus text features:

1. **One tracklet** (:func:`tracklet_diffusion`): its cosine similarity to every
   identity prompt (``model.prompt_features()``) before SD (``stfl``) and after
   (``sd``), the top identities of each, the top-k SD attention weights, and the
   relative size of the update ``||sd - stfl|| / ||stfl||``. The prompts belong to
   the **training** identities, so a test tracklet's own identity has no prompt:
   the report then lists the nearest training identities (with their SynthVVI
   attributes, if known); only a training tracklet has a true-identity rank.
2. **The test set** (:func:`cross_modal_shift`): the mean same-identity and
   different-identity cross-modal cosine similarity before vs after SD.
3. **Attribute probes** (SynthVVI; :func:`attribute_probe_table`): for each probe
   of :func:`lsmrl.synth.captions.attribute_probes`, the score
   ``cos(f, text(positive caption)) - cos(f, text(negative caption))`` of every
   tracklet, split by modality and by the identity's true attribute
   (:func:`~lsmrl.synth.captions.probe_truth`), before and after SD. The
   AUC of the score between positive and negative identities (0.5 = the feature
   does not carry the attribute in the text direction) and the mean
   difference show which semantics SD carries into infrared (e.g. colour,
   invisible in infrared frames, can only come from the prompts).

The prompt of label ``c`` belongs to the ``c``-th training identity in sorted
order (:func:`lsmrl.engine.data.label_map`); :func:`prompt_identities` recovers
that list from the data set's train split or the checkpoint sidecar.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lsmrl.analysis.failures import describe_attributes
from lsmrl.analysis.modality_gap import l2_normalise, modality_mask, pair_similarity_means
from lsmrl.synth.captions import attribute_probes, probe_truth


# --------------------------------------------------------------------------- prompt identities
def prompt_identities(num_prompts: int, dataset=None, checkpoint_meta: Mapping[str, Any] | None = None
                      ) -> list[int] | None:
    """The training pid of every prompt label, or None when it cannot be known.

    Sources, in order: ``checkpoint_meta["data"]["train_pids"]`` (if the trainer
    stored it), then the sorted pids of ``dataset.train`` when their number
    equals ``num_prompts``. A test-only data set (the embedded demo) has no train
    split: prompts are then reported by label only.
    """
    stored = ((checkpoint_meta or {}).get("data") or {}).get("train_pids")
    if stored and len(stored) == num_prompts:
        return [int(p) for p in stored]
    if dataset is not None and dataset.train:
        pids = sorted({t.pid for t in dataset.train})
        if len(pids) == num_prompts:
            return [int(p) for p in pids]
    return None


# --------------------------------------------------------------------------- one tracklet
@dataclass
class PromptScore:
    """One identity prompt's score for a tracklet (a similarity or an attention weight)."""

    rank: int
    prompt_index: int
    pid: int | None  # training identity of the prompt, if known
    score: float
    description: str = ""  # SynthVVI attributes of that identity, if known


@dataclass
class TrackletDiffusion:
    """SD's effect on one tracklet."""

    test_index: int
    tid: str
    pid: int
    modality: str
    update_ratio: float  # ||sd - stfl|| / ||stfl||
    before: list[PromptScore]  # top prompts by cosine with stfl
    after: list[PromptScore]  # top prompts by cosine with sd
    attention: list[PromptScore]  # top SD attention weights (empty if the model has no SD)
    similarity_before: list[float]  # cosine to every prompt (index = prompt label)
    similarity_after: list[float]
    prompt_pids: list[int] | None
    true_prompt_index: int | None = None  # only for a training identity
    true_rank_before: int | None = None
    true_rank_after: int | None = None
    description: str = ""  # the tracklet's own identity attributes (SynthVVI)
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _top(scores: np.ndarray, k: int, prompt_pids: Sequence[int] | None,
         attributes: Mapping[int, Mapping[str, Any]] | None) -> list[PromptScore]:
    order = np.argsort(-scores, kind="stable")[:k]
    out = []
    for rank, index in enumerate(order, start=1):
        pid = int(prompt_pids[index]) if prompt_pids is not None else None
        text = describe_attributes(attributes.get(pid)) if attributes and pid is not None else ""
        out.append(PromptScore(rank, int(index), pid, float(scores[index]), text))
    return out


def tracklet_diffusion(features: Mapping[str, np.ndarray], index: int, prompt_features: Any,
                       prompt_pids: Sequence[int] | None = None,
                       attributes: Mapping[int, Mapping[str, Any]] | None = None, tracklet=None,
                       top_k: int = 5) -> TrackletDiffusion:
    """SD's effect on tracklet ``index`` of ``features`` (an ``extract_stages`` dict).

    ``prompt_features``: (C, D) identity prompt features (``model.prompt_features()``);
    ``prompt_pids``: their training pids (:func:`prompt_identities`);
    ``attributes``: ``{pid: attributes}`` (``dataset.attributes``);
    ``tracklet``: the :class:`~lsmrl.data.tracklet.Tracklet` (for its tid and modality).
    """
    prompts = l2_normalise(np.asarray(prompt_features))
    stfl = np.asarray(features["stfl"][index], dtype=np.float32)
    sd = np.asarray(features["sd"][index], dtype=np.float32)
    before = prompts @ (stfl / max(float(np.linalg.norm(stfl)), 1e-12))
    after = prompts @ (sd / max(float(np.linalg.norm(sd)), 1e-12))
    pid = int(features["pids"][index]) if "pids" in features else (tracklet.pid if tracklet else -1)
    if tracklet is not None:
        modality = tracklet.modality
    else:
        modality = "infrared" if int(np.asarray(features["modalities"])[index]) == 1 else "visible"
    attention = features.get("sd_attention")
    report = TrackletDiffusion(
        test_index=int(index), tid=(tracklet.tid if tracklet is not None else str(index)), pid=pid, modality=modality,
        update_ratio=float(np.linalg.norm(sd - stfl) / max(float(np.linalg.norm(stfl)), 1e-12)),
        before=_top(before, top_k, prompt_pids, attributes), after=_top(after, top_k, prompt_pids, attributes),
        attention=_top(np.asarray(attention[index]), top_k, prompt_pids, attributes) if attention is not None else [],
        similarity_before=before.tolist(), similarity_after=after.tolist(),
        prompt_pids=list(prompt_pids) if prompt_pids is not None else None,
        description=describe_attributes(attributes.get(pid)) if attributes else "")
    if prompt_pids is not None and pid in prompt_pids:
        true = list(prompt_pids).index(pid)
        report.true_prompt_index = true
        report.true_rank_before = int(np.sum(before > before[true])) + 1
        report.true_rank_after = int(np.sum(after > after[true])) + 1
        report.note = (f"training identity {pid}: its prompt ranks {report.true_rank_before} before SD "
                       f"and {report.true_rank_after} after")
    else:
        report.note = ("test identity (unseen in training, no prompt of its own): "
                       "the nearest training identities' prompts are listed")
        if prompt_pids is None:
            report.note += " by prompt label (the training identities are not known here)"
    if attention is None:
        report.note += "; this model has no SD (sd = stfl)"
    return report


# --------------------------------------------------------------------------- the test set
def cross_modal_shift(features: Mapping[str, np.ndarray], before: str = "stfl", after: str = "sd") -> dict[str, float]:
    """Mean same-/different-identity cross-modal cosine similarity before and after SD (and their gaps)."""
    infrared = modality_mask(features["modalities"])
    pids = np.asarray(features["pids"])
    out: dict[str, float] = {}
    for name, stage in (("before", before), ("after", after)):
        x = l2_normalise(features[stage])
        same, diff = pair_similarity_means(x[~infrared], x[infrared], pids[~infrared], pids[infrared])
        out[f"same_id_cross_sim_{name}"] = same
        out[f"diff_id_cross_sim_{name}"] = diff
        out[f"gap_{name}"] = same - diff
    out["same_id_change"] = out["same_id_cross_sim_after"] - out["same_id_cross_sim_before"]
    out["gap_change"] = out["gap_after"] - out["gap_before"]
    return out


# --------------------------------------------------------------------------- attribute probes
@dataclass
class ProbeRow:
    """One probe in one modality at one stage."""

    probe: str
    modality: str
    stage: str
    num_positive: int  # tracklets of identities that have the attribute
    num_negative: int
    mean_positive: float | None  # mean probe score (cos pos - cos neg) over positive tracklets
    mean_negative: float | None
    mean_difference: float | None  # mean_positive - mean_negative
    auc: float | None  # P(score of a positive > score of a negative); None if a side is empty


def probe_text_features(model, probes: Mapping[str, tuple[str, str]] | None = None) -> dict[str, np.ndarray]:
    """``{"names", "positive", "negative"}``: L2-normalised text features of every probe's two captions."""
    import torch

    probes = dict(probes if probes is not None else attribute_probes())
    names = list(probes)
    with torch.no_grad():
        positive = model.encode_text([probes[n][0] for n in names]).float().cpu().numpy()
        negative = model.encode_text([probes[n][1] for n in names]).float().cpu().numpy()
    return {"names": np.array(names), "positive": l2_normalise(positive), "negative": l2_normalise(negative)}


def _auc(positive: np.ndarray, negative: np.ndarray) -> float | None:
    """Mann-Whitney AUC with average ranks for ties."""
    if positive.size == 0 or negative.size == 0:
        return None
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([positive, negative]))
    return float((ranks[: positive.size].sum() - positive.size * (positive.size + 1) / 2)
                 / (positive.size * negative.size))


def attribute_probe_table(features: Mapping[str, np.ndarray], probe_features: Mapping[str, np.ndarray],
                          attributes: Mapping[int, Mapping[str, Any]] | None,
                          stages: Sequence[str] = ("stfl", "sd")) -> list[ProbeRow]:
    """One :class:`ProbeRow` per (probe, modality, stage); empty without attributes (not SynthVVI).

    Identities for which a two-sided probe is undefined (``probe_truth`` is None,
    e.g. "tall" for a medium-height person) are left out of that probe.
    """
    if not attributes:
        return []
    pids = np.asarray(features["pids"])
    infrared = modality_mask(features["modalities"])
    names = [str(n) for n in probe_features["names"]]
    scores = {}
    for stage in stages:
        x = l2_normalise(features[stage])
        scores[stage] = x @ np.asarray(probe_features["positive"]).T - x @ np.asarray(probe_features["negative"]).T
    rows = []
    for column, name in enumerate(names):
        truth = np.array([_truth(probe_truth, attributes.get(int(p)), name) for p in pids], dtype=object)
        for modality, mask in (("visible", ~infrared), ("infrared", infrared)):
            pos = mask & (truth == True)  # noqa: E712  (object array of True/False/None)
            neg = mask & (truth == False)  # noqa: E712
            for stage in stages:
                s = scores[stage][:, column]
                sp, sn = s[pos.astype(bool)], s[neg.astype(bool)]
                mp = float(sp.mean()) if sp.size else None
                mn = float(sn.mean()) if sn.size else None
                rows.append(ProbeRow(name, modality, stage, int(sp.size), int(sn.size), mp, mn,
                                     mp - mn if mp is not None and mn is not None else None, _auc(sp, sn)))
    return rows


def _truth(probe_truth, attrs, name: str):
    if not attrs:
        return None
    try:
        return probe_truth(attrs, name)
    except (KeyError, TypeError):
        return None


def probe_summary(rows: Sequence[ProbeRow], before: str = "stfl", after: str = "sd") -> list[dict]:
    """Wide form: one row per (probe, modality) with AUC and mean difference before/after SD and the change."""
    table: dict[tuple[str, str], dict] = {}
    for r in rows:
        entry = table.setdefault((r.probe, r.modality), {"probe": r.probe, "modality": r.modality,
                                                          "num_positive": r.num_positive,
                                                          "num_negative": r.num_negative})
        tag = "before" if r.stage == before else "after" if r.stage == after else r.stage
        entry[f"auc_{tag}"] = r.auc
        entry[f"mean_difference_{tag}"] = r.mean_difference
    out = []
    for entry in table.values():
        a, b = entry.get("auc_before"), entry.get("auc_after")
        entry["auc_change"] = b - a if a is not None and b is not None else None
        out.append(entry)
    return out


@dataclass
class DiffusionResult:
    """Everything the SD view shows for one query: the tracklet, the test-set shift and the probe table."""

    tracklet: TrackletDiffusion
    cross_modal: dict[str, float]
    probes: list[ProbeRow] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"tracklet": self.tracklet.to_dict(), "cross_modal": dict(self.cross_modal),
                "probes": [asdict(r) for r in self.probes], "probe_summary": probe_summary(self.probes)}


__all__ = ["DiffusionResult", "ProbeRow", "PromptScore", "TrackletDiffusion", "attribute_probe_table",
           "cross_modal_shift", "probe_summary", "probe_text_features", "prompt_identities",
           "tracklet_diffusion"]
