"""What semantic diffusion (SD) changes (LSMRL Sec. 3.3; anchors §7, feature 5).

SD moves a tracklet's STFL feature towards the identity prompts it attends to
(``sd = stfl + g * attention(stfl, prompt bank)``, see
:mod:`lsmrl.model.semantic_diffusion`). Three views of its effect, all computed
from :func:`lsmrl.engine.extract.extract_stages` output (``stfl``, ``sd``,
``sd_attention``, ``pids``, ``modalities``) plus text features:

1. **One tracklet** (:func:`tracklet_diffusion`): its cosine similarity to every
   identity prompt (``model.prompt_features()``) before SD (``stfl``) and after
   (``sd``), the top identities of each, the top-k SD attention weights, and the
   relative size of the update ``||sd - stfl|| / ||stfl||``. ``listed`` is the
   one list of prompts a view shows: the top-k after SD, each with its rank and
   similarity before SD, its SD attention weight and its identity's attributes
   (the words a reader can check; the prompt itself is "a photo of a X X X X
   person." with X learned for that identity). The prompts belong to
   the **training** identities, so a test tracklet's own identity has no prompt:
   the report then lists the nearest training identities (with their SynthVVI
   attributes, if known); only a training tracklet has a true-identity rank.
2. **The query's ranking with and without SD** (:func:`sd_ranking`): the
   gallery of the query's direction ranked by the STFL feature and by the
   after-SD feature, with the protocol's camera rule
   (:func:`lsmrl.evaluation.rank.rank_query`): the first true match's rank, AP
   and the top-k of each.
3. **The test set** (:func:`cross_modal_shift`): the mean same-identity and
   different-identity cross-modal cosine similarity before vs after SD.
4. **Attribute probes** (SynthVVI; :func:`attribute_probe_table`): for each probe
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

from lsmrl.analysis.failures import describe_attributes, distance_to_similarity, rank_gallery
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
class ListedPrompt:
    """One prompt of the list a view shows (the top-k after SD), with what it was before SD."""

    rank_after: int  # 1-based, by cosine with the after-SD feature
    rank_before: int  # 1-based, by cosine with the STFL feature
    prompt_index: int
    pid: int | None  # training identity of the prompt, if known
    similarity_before: float
    similarity_after: float
    attention: float | None  # SD's attention weight on this prompt (None: the model has no SD)
    words: str = ""  # the identity's attributes in words (SynthVVI), "" if unknown


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
    listed: list[ListedPrompt] = field(default_factory=list)  # exactly top_k (fewer only if fewer prompts)

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
    report.listed = listed_prompts(before, after, np.asarray(attention[index]) if attention is not None else None,
                                   top_k, prompt_pids, attributes)
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


def listed_prompts(before: np.ndarray, after: np.ndarray, attention: np.ndarray | None, top_k: int,
                   prompt_pids: Sequence[int] | None = None,
                   attributes: Mapping[int, Mapping[str, Any]] | None = None) -> list[ListedPrompt]:
    """The ``top_k`` prompts by similarity after SD (stable order), each with its rank before SD.

    ``before``/``after``: (C,) cosine similarities to every prompt; ``attention``: (C,) SD weights or None.
    Ranks count strictly greater similarities plus one, as a ranking would show them.
    """
    before, after = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)
    order_after = np.argsort(-after, kind="stable")
    rank_before = np.empty(len(before), dtype=np.int64)
    rank_before[np.argsort(-before, kind="stable")] = np.arange(1, len(before) + 1)
    out = []
    for position, index in enumerate(order_after[: max(int(top_k), 0)], start=1):
        pid = int(prompt_pids[index]) if prompt_pids is not None else None
        words = describe_attributes(attributes.get(pid)) if attributes and pid is not None else ""
        out.append(ListedPrompt(position, int(rank_before[index]), int(index), pid, float(before[index]),
                                float(after[index]), float(attention[index]) if attention is not None else None,
                                words))
    return out


# --------------------------------------------------------------------------- the query's ranking, without and with SD
@dataclass
class RankedMatch:
    """One gallery item of a query's ranking at one stage."""

    rank: int  # 1-based, after the camera rule
    test_index: int
    tid: str
    pid: int
    camid: int
    is_match: bool
    similarity: float  # the ranking score (cosine similarity, or minus the Euclidean distance)


@dataclass
class StageRanking:
    """A query's ranking of its gallery by one stage's features."""

    stage: str  # "stfl" (before SD) or "sd" (after SD)
    first_match_rank: int | None  # None when no true match is left after the camera rule
    ap: float | None
    top: list[RankedMatch]


@dataclass
class SDRanking:
    """The query's ranking before SD (STFL feature) and after SD, on the same gallery and camera rule."""

    direction: str
    query_index: int
    gallery_size: int  # items ranked, after the camera rule
    num_matches: int  # true matches among them
    before: StageRanking
    after: StageRanking

    def to_dict(self) -> dict:
        return asdict(self)


def _stage_ranking(stage: str, distances: np.ndarray, gallery: np.ndarray, dataset, query, top_k: int,
                   metric: str) -> tuple[StageRanking, int, int]:
    """(the stage's ranking, items ranked after the camera rule, true matches among them)."""
    test = dataset.test
    g_pids = np.array([test[i].pid for i in gallery])
    g_cams = np.array([test[i].camid for i in gallery])
    ranked, is_match = rank_gallery(distances, gallery, g_pids, g_cams, query.pid, query.camid,
                                    dataset.camera_filter)
    distance_of = dict(zip(gallery.tolist(), np.asarray(distances, dtype=np.float64).tolist()))
    hits = np.flatnonzero(is_match)
    first = int(hits[0]) + 1 if len(hits) else None
    ap = float(np.mean(np.arange(1, len(hits) + 1) / (hits + 1))) if len(hits) else None
    top = []
    for position in range(min(int(top_k), len(ranked))):
        index = int(ranked[position])
        t = test[index]
        top.append(RankedMatch(position + 1, index, t.tid or str(index), int(t.pid), int(t.camid),
                               bool(is_match[position]),
                               float(distance_to_similarity(distance_of[index], metric))))
    return StageRanking(stage, first, ap, top), len(ranked), len(hits)


def sd_ranking(distances: Mapping[str, Any], gallery: Sequence[int], dataset, query_index: int, direction: str,
               top_k: int = 5, before: str = "stfl", after: str = "sd") -> SDRanking:
    """The query's ranking of ``gallery`` (test indices) by the ``before`` and the ``after`` stage.

    ``distances``: ``{stage: (G,) distances of the query to gallery}``, as
    :func:`lsmrl.evaluation.protocols.direction_distmats` computes them with ``dataset.metric``. The ranking
    is the protocol's (:func:`~lsmrl.analysis.failures.rank_gallery`: stable sort, the camera rule), and AP is
    the protocol's (mean precision at each true match).
    """
    gallery = np.asarray(gallery, dtype=np.int64).reshape(-1)
    query = dataset.test[int(query_index)]
    (first, size, matches), (second, _, _) = (
        _stage_ranking(stage, np.asarray(distances[stage], dtype=np.float64).reshape(-1), gallery, dataset, query,
                       top_k, dataset.metric) for stage in (before, after))
    return SDRanking(direction, int(query_index), size, matches, first, second)


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
    ranking: SDRanking | None = None  # None when no direction has queries of the tracklet's modality
    ranking_note: str = ""  # why there is no ranking

    def to_dict(self) -> dict:
        return {"tracklet": self.tracklet.to_dict(), "cross_modal": dict(self.cross_modal),
                "ranking": self.ranking.to_dict() if self.ranking is not None else None,
                "ranking_note": self.ranking_note,
                "probes": [asdict(r) for r in self.probes], "probe_summary": probe_summary(self.probes)}


__all__ = ["DiffusionResult", "ListedPrompt", "ProbeRow", "PromptScore", "RankedMatch", "SDRanking", "StageRanking",
           "TrackletDiffusion", "attribute_probe_table", "cross_modal_shift", "listed_prompts", "probe_summary",
           "probe_text_features", "prompt_identities", "sd_ranking", "tracklet_diffusion"]
