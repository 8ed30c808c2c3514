"""On-disk cache of analysis results, keyed by what they depend on (design.md §5, anchors §6).

Extracting the test split, fitting UMAP (12 s to import umap, ~15 s of JIT on
its first fit on 2 cores) and computing the gap metrics are too slow for a
request path, and all of them are pure functions of

- the checkpoint's weights (their sha256),
- the data set (:func:`lsmrl.engine.extract.data_fingerprint`),
- the test-time frame count and sampling mode,
- a version string of the analysis code that produced the item,
- the item's name (plus any parameters of the item, e.g. UMAP's seed).

:class:`CacheKey` holds these; :class:`AnalysisCache` stores one file per key:

- a numpy array, or a ``dict`` whose values are all numpy arrays, as ``.npz``
  (uncompressed, read back with ``allow_pickle=False``: no pickle is ever loaded);
- anything else JSON-serialisable (dicts, lists of rows) as ``.json``.

Each file also stores its full key, which is checked on reading (so a
truncated-hash collision or a hand-copied file is a miss, not a wrong answer).
Writes are atomic (a temporary file in the same folder, then ``os.replace``), so
a reader never sees half a file and two processes computing the same item
simply both write it. An unreadable file is treated as a miss and recomputed.

:func:`configure_numba_cache` points numba's cache of compiled code at a folder
(``NUMBA_CACHE_DIR``); it only works **before** ``umap`` (hence numba) is imported.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

_KEY_FIELD = "__cache_key__"


@dataclass(frozen=True)
class CacheKey:
    """What an analysis item depends on.

    ``extra`` holds the item's own parameters as sorted ``(name, value)`` pairs
    (values must be JSON-serialisable), e.g. ``(("n_neighbors", 15), ("seed", 0))``.
    """

    checkpoint_sha256: str
    data_fingerprint: str
    num_frames: int
    sampling: str
    version: str
    item: str
    extra: tuple[tuple[str, Any], ...] = ()

    def with_item(self, item: str, **extra: Any) -> "CacheKey":
        """The same checkpoint/data/frames/version, another item; ``extra`` is merged into this key's parameters."""
        merged = dict(self.extra)
        merged.update({k: tuple(v) if isinstance(v, list) else v for k, v in extra.items()})
        return CacheKey(self.checkpoint_sha256, self.data_fingerprint, self.num_frames, self.sampling,
                        self.version, item, tuple(sorted(merged.items())))

    def to_json(self) -> str:
        data = asdict(self)
        data["extra"] = [list(pair) for pair in self.extra]
        return json.dumps(data, sort_keys=True, default=str)

    def digest(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()


def _as_key(key_parts: CacheKey | Mapping[str, Any] | Sequence[Any]) -> tuple[str, str]:
    """``(canonical JSON, a file-name-safe item label)`` of any accepted key form."""
    if isinstance(key_parts, CacheKey):
        return key_parts.to_json(), key_parts.item
    if isinstance(key_parts, Mapping):
        text = json.dumps(dict(key_parts), sort_keys=True, default=str)
        label = str(key_parts.get("item", "item"))
    elif isinstance(key_parts, Sequence) and not isinstance(key_parts, (str, bytes)):
        text = json.dumps(list(key_parts), default=str)
        label = str(key_parts[-1]) if key_parts else "item"
    else:
        raise TypeError(f"key_parts must be a CacheKey, a mapping or a sequence, got {type(key_parts).__name__}")
    return text, label


def _safe_label(label: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in label)
    return cleaned.strip("-.")[:48] or "item"


def _is_array_dict(value: Any) -> bool:
    return isinstance(value, Mapping) and len(value) > 0 and all(
        isinstance(k, str) and isinstance(v, np.ndarray) for k, v in value.items())


class AnalysisCache:
    """A folder of cached analysis items; see the module docstring.

    ``get_or_compute(key_parts, compute_fn)`` returns the stored value for the
    key, or calls ``compute_fn()`` and stores its result. ``hits`` and
    ``misses`` count the two outcomes (per instance; thread-safe). With
    ``root=None`` nothing is stored (every call computes and counts a miss).
    """

    def __init__(self, root: str | os.PathLike | None):
        self.root = Path(root) if root is not None else None
        if self.root is not None:
            self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    # ------------------------------------------------------------------ counters
    @property
    def hits(self) -> int:
        return self._hits

    @property
    def misses(self) -> int:
        return self._misses

    def _count(self, hit: bool) -> None:
        with self._lock:
            if hit:
                self._hits += 1
            else:
                self._misses += 1

    # ------------------------------------------------------------------ paths
    def path_for(self, key_parts: CacheKey | Mapping[str, Any] | Sequence[Any], kind: str) -> Path | None:
        """The file that holds (or would hold) the item; ``kind`` is "npz" or "json"."""
        if self.root is None:
            return None
        text, label = _as_key(key_parts)
        digest = hashlib.sha256(text.encode()).hexdigest()[:24]
        return self.root / f"{_safe_label(label)}-{digest}.{kind}"

    def contains(self, key_parts: CacheKey | Mapping[str, Any] | Sequence[Any]) -> bool:
        """Whether a readable file for the key exists (does not count as a hit or miss)."""
        return self._read(key_parts) is not None

    # ------------------------------------------------------------------ main entry
    def get_or_compute(self, key_parts: CacheKey | Mapping[str, Any] | Sequence[Any],
                       compute_fn: Callable[[], Any]) -> Any:
        """The cached value of ``key_parts``, computing and storing it on a miss.

        ``compute_fn()`` must return a numpy array, a dict of numpy arrays, or a
        JSON-serialisable value. Values come back as stored: arrays as arrays,
        JSON as plain dicts/lists (tuples become lists; NaN is kept).
        """
        found = self._read(key_parts)
        if found is not None:
            self._count(True)
            return found[0]
        self._count(False)
        value = compute_fn()
        self._write(key_parts, value)
        return value

    # ------------------------------------------------------------------ storage
    def _read(self, key_parts) -> tuple[Any] | None:
        if self.root is None:
            return None
        text, _ = _as_key(key_parts)
        for kind in ("npz", "json"):
            path = self.path_for(key_parts, kind)
            if path is None or not path.is_file():
                continue
            try:
                if kind == "npz":
                    with np.load(path, allow_pickle=False) as data:
                        if _KEY_FIELD not in data.files or str(data[_KEY_FIELD]) != text:
                            continue
                        arrays = {name: data[name] for name in data.files if name != _KEY_FIELD}
                    if set(arrays) == {"__array__"}:
                        return (arrays["__array__"],)
                    return (arrays,)
                stored = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(stored, dict) or stored.get("key") != text:
                    continue
                return (stored["value"],)
            except (OSError, ValueError, KeyError, EOFError) as error:
                warnings.warn(f"ignoring unreadable cache file {path} ({error}); recomputing", stacklevel=3)
        return None

    def _write(self, key_parts, value: Any) -> None:
        if self.root is None:
            return
        text, _ = _as_key(key_parts)
        if isinstance(value, np.ndarray) or _is_array_dict(value):
            arrays = {"__array__": value} if isinstance(value, np.ndarray) else dict(value)
            if _KEY_FIELD in arrays:
                raise ValueError(f"{_KEY_FIELD!r} is reserved in cached array dicts")
            for name, array in arrays.items():
                if array.dtype == object:
                    raise ValueError(f"cannot cache array {name!r} of dtype object (no pickle)")
            target = self.path_for(key_parts, "npz")

            def dump(handle) -> None:
                np.savez(handle, **arrays, **{_KEY_FIELD: np.array(text)})
        else:
            target = self.path_for(key_parts, "json")
            payload = json.dumps({"key": text, "value": value})

            def dump(handle) -> None:
                handle.write(payload.encode("utf-8"))
        assert target is not None
        handle = tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp",
                                             delete=False)
        try:
            with handle:
                dump(handle)
            os.replace(handle.name, target)
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise


def configure_numba_cache(directory: str | os.PathLike, *, environ: MutableMapping[str, str] | None = None,
                          overwrite: bool = False) -> Path:
    """Point numba's on-disk cache of compiled functions at ``directory`` (``NUMBA_CACHE_DIR``).

    Call it before ``umap`` is imported: numba reads the variable once, at import.
    An existing ``NUMBA_CACHE_DIR`` is kept unless ``overwrite`` (the user's
    choice wins); the effective folder is returned and created. If numba is
    already imported the setting only affects child processes, and a warning says so.

    Measured on 2 cores: with a warm cache ``import umap`` takes ~3 s instead of
    ~26 s cold; the first UMAP fit of a process still compiles for ~15 s (umap's
    layout functions are not cached by numba), which is why UMAP *results* are
    cached by :class:`AnalysisCache`.
    """
    env = os.environ if environ is None else environ
    existing = env.get("NUMBA_CACHE_DIR")
    if existing and not overwrite:
        path = Path(existing)
    else:
        path = Path(directory)
        env["NUMBA_CACHE_DIR"] = str(path)
    path.mkdir(parents=True, exist_ok=True)
    if environ is None and "numba" in sys.modules and (overwrite or not existing):
        warnings.warn("numba is already imported: NUMBA_CACHE_DIR only takes effect in new processes; "
                      "call configure_numba_cache before importing umap", stacklevel=2)
    return path


def stored_key(path: str | os.PathLike) -> dict | None:
    """The key a cache file stores (``.npz``: its ``__cache_key__`` member; ``.json``: ``key``); None if unreadable."""
    path = Path(path)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:  # reads only the key member
                return json.loads(str(data[_KEY_FIELD]))
        stored = json.loads(path.read_text(encoding="utf-8"))
        return json.loads(stored["key"]) if isinstance(stored, dict) else None
    except Exception:  # noqa: BLE001 - whatever cannot be read is not a cache entry
        return None


#: Names in a key's ``extra`` that hold the sha256 of another checkpoint the item depends on.
DEPENDENT_CHECKPOINT_FIELDS = ("baseline_sha256",)


def key_belongs(key: Mapping[str, Any] | None, checkpoint_sha256s: set[str] | frozenset[str], data_fingerprint: str,
                version: str) -> bool:
    """Whether a stored key can be read by an Explorer of these checkpoints, data and analysis version.

    Every checkpoint the key names (its own and, e.g., the baseline an item was compared with) must be
    among ``checkpoint_sha256s``; a key naming none, another data set or another version does not belong.
    """
    if not isinstance(key, Mapping) or key.get("checkpoint_sha256") not in checkpoint_sha256s:
        return False
    if key.get("data_fingerprint") != data_fingerprint or key.get("version") != version:
        return False
    extra = key.get("extra") or []
    pairs = extra.items() if isinstance(extra, Mapping) else [
        tuple(pair) for pair in extra if isinstance(pair, (list, tuple)) and len(pair) == 2]
    return all(value in checkpoint_sha256s for name, value in pairs if name in DEPENDENT_CHECKPOINT_FIELDS)


__all__ = ["AnalysisCache", "CacheKey", "DEPENDENT_CHECKPOINT_FIELDS", "configure_numba_cache", "key_belongs",
           "stored_key"]
