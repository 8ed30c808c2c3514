"""Where a model comes from and how it compares: the model card and the per-query comparison of two checkpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lsmrl.analysis.compare import Comparison, compare_all

if TYPE_CHECKING:  # pragma: no cover
    from lsmrl.analysis.explorer import Explorer


class Provenance:
    """``explorer.provenance``: see the module docstring."""

    def __init__(self, explorer: "Explorer"):
        self.explorer = explorer

    def compare(self, other: str = "compare") -> dict[str, Comparison] | None:
        """Main model (A) vs ``other`` (B: "compare" or "baseline") per direction; None if not loaded."""
        ex = self.explorer
        bundle = ex.bundles().get(other)
        if bundle is None or other == "main":
            return None
        label_a = ex.main.path.stem
        label_b = bundle.path.stem if bundle.path.stem != label_a else f"{bundle.path.stem} ({other})"
        return ex.lazy(f"compare/{other}", lambda: compare_all(
            ex.main.records, bundle.records, ex.dataset, label_a=label_a, label_b=label_b))

    def model_card(self, model: str = "main") -> dict:
        """The checkpoint's sidecar (config, training, data, metrics) plus what was checked now, and warnings."""
        ex = self.explorer
        bundle = ex.bundle(model)
        meta = bundle.meta
        warnings_: list[str] = []
        recorded = meta.get("weights_sha256")
        if recorded and recorded != bundle.sha256:
            warnings_.append(f"the weights' sha256 ({bundle.sha256[:12]}) differs from the one in the sidecar "
                             f"({recorded[:12]}): the two files may come from different runs")
        data = meta.get("data") or {}
        notes = []
        recorded_fp = data.get("metrics_fingerprint") or data.get("fingerprint")
        if recorded_fp and recorded_fp != ex.fingerprint:
            # The sidecar's fingerprint hashes the train and the test tracklet lists of the data the model was
            # trained on; the app often serves a test-only copy (assets/synthvvi), whose fingerprint differs
            # although its test split is the same. So: the same test split if the sidecar's test fingerprint
            # matches, or (older sidecars) if every metric recomputed here equals the recorded one.
            same = self._same_test_split(data, meta.get("metrics"), bundle.metrics)
            if same is None or not same[0]:
                warnings_.append(f"the sidecar metrics were computed on other data (fingerprint {recorded_fp} vs "
                                 f"{ex.fingerprint} now{same[1] if same else ''}); the metrics below are "
                                 "recomputed on the current data")
            else:
                notes.append(f"same test split as the sidecar's metrics: {same[1]}")
        served_version = getattr(ex.dataset, "synthvvi_version", None)
        if served_version is not None and data.get("dataset") == "synthvvi":
            trained_version = int(data.get("synthvvi_version") or 1)  # sidecars before versions existed: v1
            if trained_version != served_version:
                warnings_.append(f"this checkpoint was trained on SynthVVI v{trained_version}, the data shown is "
                                 f"SynthVVI v{served_version}: its figures here are not the ones it was trained "
                                 "for; retrain it, or serve data of its own version")
        config = meta.get("model_config") or {}
        if config.get("num_frames") and int(config["num_frames"]) != ex.num_frames:
            warnings_.append(f"tested with T={ex.num_frames} frames (the protocol's); the model config says "
                             f"T={config['num_frames']}")
        if config.get("test_sampling") and config["test_sampling"] != ex.sampling:
            warnings_.append(f"test sampling is {ex.sampling!r} (the protocol's); the model config says "
                             f"{config['test_sampling']!r}")
        training = dict(meta.get("training") or {})
        return {
            "role": bundle.role,
            "checkpoint": str(bundle.path),
            "weights_sha256": bundle.sha256,
            "sidecar_sha256": recorded,
            "sha256_matches": recorded == bundle.sha256 if recorded else None,
            "model_config": config,
            "is_baseline": bool(getattr(bundle.model.config, "is_baseline", False)),
            "training": training,
            "data": data,
            "metrics_sidecar": meta.get("metrics"),
            "metrics_now": bundle.metrics,
            "dataset": ex.dataset.name,
            "data_fingerprint": ex.fingerprint,
            "test_num_frames": ex.num_frames,
            "test_sampling": ex.sampling,
            "camera_filter": ex.dataset.camera_filter,
            "metric": ex.dataset.metric,
            "reranking": False,
            "notes": list(ex.dataset.notes) + notes,
            "warnings": warnings_,
        }


    def test_fingerprint(self) -> str:
        """The fingerprint of the current data's test split alone (what a sidecar's ``test_fingerprint`` is
        compared with)."""
        from dataclasses import replace

        # torch loads when a model is used, not at import
        from lsmrl.engine.extract import data_fingerprint

        ex = self.explorer
        return ex.lazy("test_fingerprint", lambda: data_fingerprint(replace(ex.dataset, train=[])))

    def _same_test_split(self, data: dict, recorded: dict | None, now: dict) -> tuple[bool, str] | None:
        """(same test split?, why) from the sidecar's ``data`` and metrics; None if nothing to compare."""
        test_fp = data.get("test_fingerprint")
        if test_fp:
            mine = self.test_fingerprint()
            return test_fp == mine, f"test-split fingerprint {test_fp} vs {mine}"
        if not isinstance(recorded, dict) or not now:
            return None
        compared = 0
        for direction, values in now.items():
            old = recorded.get(direction)
            if not isinstance(old, dict):
                return False, f"; the sidecar has no {direction} metrics"
            for key in ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP"):
                if key in old and key in values:
                    if abs(float(old[key]) - float(values[key])) > METRIC_TOLERANCE:
                        return False, f"; {direction} {key} {float(old[key]):.2f} recorded vs {float(values[key]):.2f} now"
                    compared += 1
        if not compared:
            return None
        return True, (f"its fingerprint {data.get('metrics_fingerprint') or data.get('fingerprint')} also covers "
                      "the training split, which this copy does not hold, and all "
                      f"{compared} metrics recomputed here equal the recorded ones")

    def chance(self) -> dict[str, dict[str, float]]:
        """What a random ranking scores, per direction (percent): ``{"mAP", "rank1", "num_queries"}``.

        Exact expectations over random orders of each valid query's gallery after the protocol's camera
        rule (N items, n of them true matches): E[Rank-1] = n/N and E[AP] = H_N/N + (n-1)(N-H_N)/(N(N-1)),
        with H_N the N-th harmonic number (AP averages precision at each true match; precision at rank k
        of a true match is 1/k + (k-1)/k (n-1)/(N-1) in expectation)."""
        ex = self.explorer
        return ex.lazy("chance", self._chance)

    def _chance(self) -> dict[str, dict[str, float]]:
        ex = self.explorer
        pids = np.array([t.pid for t in ex.dataset.test])
        cams = np.array([t.camid for t in ex.dataset.test])
        out = {}
        for direction in ex.directions:
            queries, gallery = (np.asarray(a).reshape(-1) for a in ex.dataset.directions[direction])
            aps, r1s = [], []
            for q in queries:
                keep = np.ones(len(gallery), dtype=bool)
                if ex.dataset.camera_filter:
                    keep = ~((pids[gallery] == pids[q]) & (cams[gallery] == cams[q]))
                big_n = int(keep.sum())
                n = int((pids[gallery][keep] == pids[q]).sum())
                if n == 0 or big_n == 0:
                    continue  # skipped by the metric too
                harmonic = float(np.sum(1.0 / np.arange(1, big_n + 1)))
                ap = harmonic / big_n + ((n - 1) * (big_n - harmonic) / (big_n * (big_n - 1)) if big_n > 1 else 0.0)
                aps.append(ap)
                r1s.append(n / big_n)
            out[direction] = {"mAP": 100 * float(np.mean(aps)) if aps else float("nan"),
                              "rank1": 100 * float(np.mean(r1s)) if r1s else float("nan"), "num_queries": len(aps)}
        return out


#: Two metrics (percent) closer than this are the same measurement (sidecars round nothing; float noise only).
METRIC_TOLERANCE = 0.05

__all__ = ["METRIC_TOLERANCE", "Provenance"]
