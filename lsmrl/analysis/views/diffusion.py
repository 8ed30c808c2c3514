"""Prompt diffusion (SD): the identity prompts, what SD changes for one tracklet (its prompts and its ranking of
the gallery with and without SD), and the attribute probes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lsmrl.analysis.diffusion import (
    DiffusionResult,
    ProbeRow,
    SDRanking,
    attribute_probe_table,
    cross_modal_shift,
    probe_text_features,
    prompt_identities,
    sd_ranking,
    tracklet_diffusion,
)
from lsmrl.errors import LSMRLError
from lsmrl.evaluation.protocols import direction_distmats

if TYPE_CHECKING:  # pragma: no cover
    from lsmrl.analysis.explorer import Explorer


class DiffusionAnalysis:
    """``explorer.diffusion``: see the module docstring."""

    def __init__(self, explorer: "Explorer"):
        self.explorer = explorer

    def prompt_features(self) -> np.ndarray:
        """(C, D) identity prompt features of the main model (computed once)."""
        ex = self.explorer

        def compute() -> np.ndarray:
            import torch

            model = ex.main.model
            if model.prompt_learner is None:
                raise LSMRLError("this checkpoint has no identity prompts (num_classes = 0)")
            with ex.model_lock, torch.no_grad():
                return model.prompt_features().float().cpu().numpy()

        return ex.lazy("prompts", compute)

    def prompt_pids(self) -> list[int] | None:
        """The training pid of each prompt label (None if unknown: a test-only data set and no ``train_pids``
        in the checkpoint sidecar's ``data`` section)."""
        return prompt_identities(len(self.prompt_features()), self.explorer.dataset, self.explorer.main.meta)

    def identity_attributes(self) -> dict[int, dict]:
        """``{pid: attributes}`` of the data set, plus the sidecar's ``data.train_attributes`` if the trainer
        stored them (a test-only data set has no attributes of the training identities behind the prompts)."""
        ex = self.explorer
        stored = ((ex.main.meta.get("data") or {}).get("train_attributes") or {})
        merged = {int(pid): attrs for pid, attrs in stored.items()}
        merged.update(ex.dataset.attributes or {})
        return merged

    def probe_table(self) -> list:
        """SynthVVI attribute probes before/after SD over the test set (cached); [] without attributes."""
        ex = self.explorer
        if not ex.dataset.attributes:
            return []

        def compute_rows() -> list[dict]:
            from dataclasses import asdict

            with ex.model_lock:
                text = probe_text_features(ex.main.model)
            return [asdict(r) for r in attribute_probe_table(ex.main.features, text, ex.dataset.attributes)]

        def load():
            rows = ex.cache.get_or_compute(ex.cache_key("attribute_probes"), compute_rows)
            return [ProbeRow(**r) for r in rows]

        return ex.lazy("probes", load)

    def stage_distances(self, stage: str) -> dict[str, np.ndarray]:
        """``{direction: (num_query, num_gallery)}`` distances by one stage's features of the main model, with the
        data set's metric (computed once per stage)."""
        ex = self.explorer
        return ex.lazy(f"distmats/{stage}", lambda: direction_distmats(ex.main.features[stage], ex.dataset,
                                                                       metric=ex.dataset.metric))

    def ranking(self, query: str | int, top_k: int = 5, direction: str | None = None) -> SDRanking:
        """The tracklet's ranking of its direction's gallery by the STFL feature and by the after-SD feature
        (default direction: the one whose queries have the tracklet's modality)."""
        ex = self.explorer
        index = ex.test_index(query)
        direction = direction or ex.direction_of(index)
        if direction is None:
            raise LSMRLError(f"no direction of this data set has {ex.dataset.test[index].modality} queries")
        row = ex.query_row(index, direction)
        gallery = np.asarray(ex.dataset.directions[direction][1]).reshape(-1)
        distances = {stage: self.stage_distances(stage)[direction][row] for stage in ("stfl", "sd")}
        return sd_ranking(distances, gallery, ex.dataset, index, direction, top_k)

    def of(self, query: str | int, top_k: int = 5) -> DiffusionResult:
        """SD's effect on one tracklet (any test tracklet): its prompts, its ranking with and without SD (when it
        is a query of a direction), the test-set shift, and the probe table."""
        ex = self.explorer
        index = ex.test_index(query)
        report = tracklet_diffusion(ex.main.features, index, self.prompt_features(), self.prompt_pids(),
                                    self.identity_attributes(), ex.dataset.test[index], top_k)
        shift = ex.lazy("cross_modal_shift", lambda: cross_modal_shift(ex.main.features))
        ranking, note = None, ""
        direction = ex.direction_of(index)
        if direction is None or not ex.is_query(index, direction):
            note = (f"{report.tid} is not a query of any direction of this data set's protocol, so it has no "
                    "ranking to compare")
        else:
            ranking = self.ranking(index, top_k, direction)
        return DiffusionResult(report, shift, self.probe_table(), ranking, note)


__all__ = ["DiffusionAnalysis"]
