"""How much of what SD and CMI add is the same for every input: the modality-constant share.

For a module with input ``a`` and output ``b`` (SD: ``stfl -> sd``; CMI: ``sd -> cmi``), the residual of
tracklet ``i`` is ``r_i = b_i - a_i``. Over the tracklets of one modality,

    share = ||mean_i r_i||^2 / mean_i ||r_i||^2

is the fraction of the residual's energy that is one constant vector: 1.0 for a module that only shifts
the modality by a fixed offset (which the BNNeck could do for free), near 0 for one whose effect depends
on the input. Uncentred, SD measured 0.44-0.60 and CMI 0.27-0.36 on a demo's test split (docs/design.md §2); the
target is at most 0.3. ``relative_norm`` (mean ||r|| / mean ||a||) says how large the residual is.

Computed from :func:`lsmrl.engine.extract.extract_stages` output (or a ``python -m lsmrl extract`` .npz);
the trainer stores it in the checkpoint's sidecar (``training.module_effects``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping

import numpy as np

MODULES = {"sd": ("stfl", "sd"), "cmi": ("sd", "cmi")}
MODALITY_NAMES = {0: "visible", 1: "infrared"}


def modality_constant_share(features: Mapping[str, np.ndarray]) -> dict[str, dict[str, dict[str, float]]]:
    """``{module: {modality: {"share", "relative_norm", "n"}}}`` for SD and CMI (modules that change nothing
    (output = input, a switched-off module) are left out)."""
    modalities = np.asarray(features["modalities"])
    out: dict[str, dict[str, dict[str, float]]] = {}
    for module, (before, after) in MODULES.items():
        if before not in features or after not in features:
            continue
        start, end = np.asarray(features[before], np.float64), np.asarray(features[after], np.float64)
        residual = end - start
        if not np.any(residual):
            continue
        out[module] = {}
        for code, name in MODALITY_NAMES.items():
            rows = modalities == code
            if not rows.any():
                continue
            r = residual[rows]
            energy = float(np.mean(np.sum(r * r, axis=1)))
            constant = float(np.sum(r.mean(axis=0) ** 2))
            out[module][name] = {
                "share": round(constant / energy, 4) if energy > 0 else 0.0,
                "relative_norm": round(float(np.linalg.norm(r, axis=1).mean()
                                             / max(np.linalg.norm(start[rows], axis=1).mean(), 1e-12)), 4),
                "n": int(rows.sum())}
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("features", help="an .npz written by `python -m lsmrl extract`")


def run(args: argparse.Namespace) -> int:
    with np.load(args.features) as data:
        print(json.dumps(modality_constant_share(dict(data)), indent=2))
    return 0
