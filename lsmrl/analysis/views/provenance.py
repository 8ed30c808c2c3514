"""Where a model comes from and how it compares: the model card and the per-query comparison of two checkpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
        recorded_fp = data.get("fingerprint")
        if recorded_fp and recorded_fp != ex.fingerprint:
            warnings_.append(f"the sidecar metrics were computed on other data (fingerprint {recorded_fp} vs "
                             f"{ex.fingerprint} now); the metrics below are recomputed on the current data")
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
            "notes": list(ex.dataset.notes),
            "warnings": warnings_,
        }


__all__ = ["Provenance"]
