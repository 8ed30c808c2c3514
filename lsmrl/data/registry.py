"""Data set registry (torchreid style) and the printed statistics table.

``build_dataset("hitsz-vcm", root)`` returns a :class:`~lsmrl.data.tracklet.VVIDataset`;
readers register themselves with ``@register_dataset(name)``. The built-in
readers (``hitsz-vcm``, ``buptcampus``, ``synthvvi``) are imported on first use.
"""

from __future__ import annotations

import importlib
import inspect
import os
from typing import Callable

import numpy as np

from lsmrl.data.tracklet import DIRECTIONS, MODALITIES, VVIDataset
from lsmrl.errors import ConfigError

Reader = Callable[..., VVIDataset]

_REGISTRY: dict[str, Reader] = {}
_BUILTIN_MODULES = (
    "lsmrl.data.datasets.hitsz_vcm",
    "lsmrl.data.datasets.buptcampus",
    "lsmrl.data.datasets.synthvvi",
)
_ALIASES = {"vcm": "hitsz-vcm", "hitsz": "hitsz-vcm", "vcm-hitsz": "hitsz-vcm", "bupt": "buptcampus"}


def _normalise(name: str) -> str:
    key = name.strip().lower().replace("_", "-")
    return _ALIASES.get(key, key)


def register_dataset(name: str) -> Callable[[Reader], Reader]:
    """Decorator: register ``reader(root, **options) -> VVIDataset`` under ``name``."""

    def decorator(reader: Reader) -> Reader:
        key = _normalise(name)
        existing = _REGISTRY.get(key)
        if existing is not None and existing is not reader and (
            existing.__module__, existing.__qualname__) != (reader.__module__, reader.__qualname__):
            raise ValueError(f"a data set named {key!r} is already registered ({existing.__module__})")
        _REGISTRY[key] = reader
        return reader

    return decorator


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def available_datasets() -> list[str]:
    """Names accepted by :func:`build_dataset`."""
    _load_builtins()
    return sorted(_REGISTRY)


def build_dataset(name: str, root: str | os.PathLike, **kwargs) -> VVIDataset:
    """Read the data set ``name`` at ``root``. Options (``kwargs``) are passed to its reader.

    Raises :class:`~lsmrl.errors.ConfigError` for an unknown name or option and
    :class:`~lsmrl.errors.DatasetLayoutError` for a malformed folder.
    """
    _load_builtins()
    key = _normalise(name)
    reader = _REGISTRY.get(key)
    if reader is None:
        raise ConfigError(f"unknown data set {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    parameters = inspect.signature(reader).parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    unknown = [k for k in kwargs if k not in parameters or k == "root"]
    if unknown and not accepts_any:
        options = [p for p in parameters if p != "root"]
        raise ConfigError(
            f"data set {key!r} has no option {', '.join(map(repr, unknown))}; its options: {', '.join(options) or 'none'}"
        )
    return reader(root, **kwargs)


# --------------------------------------------------------------------------- statistics
def _frames_summary(tracklets) -> str:
    counts = [t.num_frames for t in tracklets if t.frames]
    videos = sum(1 for t in tracklets if not t.frames)
    if not counts:
        return f"video x{videos}" if videos else "-"
    text = f"{min(counts)}/{np.mean(counts):.1f}/{max(counts)}"
    return text + (f" (+{videos} videos)" if videos else "")


def _table(header: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    """Aligned text table: the first ``left`` columns left-aligned, the others right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]

    def line(cells):
        return "  ".join(
            str(c).ljust(w) if i < left else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    return [rule, line(header), rule, *(line(r) for r in rows), rule]


def dataset_statistics(ds: VVIDataset) -> str:
    """A printable table: per split and modality #ids, #tracklets and frames min/mean/max;
    per direction #query/#gallery; the protocol and the notes."""
    lines = [
        f"Data set {ds.name} at {ds.root}",
        f"protocol: camera filter {'on' if ds.camera_filter else 'off'}; "
        f"test sampling {ds.test_sampling} x {ds.test_num_frames} frames; "
        f"distance {getattr(ds, 'metric', 'cosine')}",
    ]
    rows = []
    for split, tracklets in (("train", ds.train), ("test", ds.test)):
        for modality in MODALITIES:
            subset = [t for t in tracklets if t.modality == modality]
            rows.append([split, modality, str(len({t.pid for t in subset})), str(len(subset)), _frames_summary(subset)])
        rows.append([split, "all", str(len({t.pid for t in tracklets})), str(len(tracklets)), _frames_summary(tracklets)])
    lines += _table(["split", "modality", "#ids", "#tracklets", "frames min/mean/max"], rows, left=2)

    rows = []
    for direction in DIRECTIONS:
        if direction not in ds.directions:
            continue
        query, gallery = ds.directions[direction]
        rows.append([
            direction,
            str(len(query)),
            str(len({ds.test[int(i)].pid for i in query})),
            str(len(gallery)),
            str(len({ds.test[int(i)].pid for i in gallery})),
        ])
    lines += _table(["direction", "#query", "#query ids", "#gallery", "#gallery ids"], rows)
    if ds.notes:
        lines.append("notes:")
        lines += [f"  - {note}" for note in ds.notes]
    return "\n".join(lines)
