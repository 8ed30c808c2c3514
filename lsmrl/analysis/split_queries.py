"""What an explorer knows of its test split: tracklet ids, rows, sources, directions and their queries.

:class:`SplitQueries` answers the questions the app and the analyses ask of the
test split (which index a tracklet id has, whether a tracklet is a query of a
direction, which modality a direction's queries have, where a tracklet's frames
are) without reaching into the data set's records; :class:`~lsmrl.analysis.explorer.Explorer`
builds on it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lsmrl.data.tracklet import DIRECTIONS, INFRARED_TO_VISIBLE, Tracklet, VVIDataset
from lsmrl.errors import LSMRLError


class SplitQueries:
    """Lookups over ``dataset.test`` and the protocol's query lists (``dataset.directions``)."""

    def __init__(self, dataset: VVIDataset):
        self.dataset = dataset
        self._tid_index = {t.tid: i for i, t in enumerate(dataset.test) if t.tid}
        self._query_rows: dict[str, dict[int, int]] = {
            name: {int(q): row for row, q in enumerate(np.asarray(idx[0]).reshape(-1))}
            for name, idx in dataset.directions.items()}
        self._gallery_sets: dict[str, frozenset[int]] = {
            name: frozenset(np.asarray(idx[1]).reshape(-1).tolist()) for name, idx in dataset.directions.items()}

    def check_direction(self, direction: str) -> str:
        if direction not in self.dataset.directions:
            raise LSMRLError(f"unknown direction {direction!r}; this data set has {sorted(self.dataset.directions)}")
        return direction

    def test_index(self, query: str | int) -> int:
        """A tracklet id or a test index -> the index into ``dataset.test``."""
        if isinstance(query, (int, np.integer)) and not isinstance(query, bool):
            index = int(query)
            if not 0 <= index < len(self.dataset.test):
                raise LSMRLError(f"test index {index} is out of range (0..{len(self.dataset.test) - 1})")
            return index
        if isinstance(query, str):
            if query in self._tid_index:
                return self._tid_index[query]
            if query.strip().isdigit():
                return self.test_index(int(query.strip()))
            raise LSMRLError(f"no test tracklet with id {query!r}")
        raise LSMRLError(f"a query is a tracklet id or a test index, got {type(query).__name__}")

    def is_gallery(self, query: str | int, direction: str) -> bool:
        """Whether ``query`` (a tracklet id or test index) is in the gallery of ``direction``."""
        return self.test_index(query) in self._gallery_sets[self.check_direction(direction)]

    def query_row(self, index: int, direction: str) -> int:
        rows = self._query_rows[self.check_direction(direction)]
        if index not in rows:
            t = self.dataset.test[index]
            raise LSMRLError(f"{t.tid or index} ({t.modality}) is not a query of {direction}; "
                             f"pick a query of that direction (see Explorer.queries)")
        return rows[index]

    def tracklet_row(self, index: int) -> dict:
        t = self.dataset.test[index]
        return {"tid": t.tid or str(index), "test_index": int(index), "pid": int(t.pid), "camid": int(t.camid),
                "modality": t.modality}

    def tracklet_source(self, index: int) -> str:
        """Where test tracklet ``index``'s frames are, relative to the data set's folder (never a server path)."""
        return relative_source(self.dataset, self.dataset.test[index])

    def is_query(self, index: int, direction: str) -> bool:
        """Whether test tracklet ``index`` is a query of ``direction`` (the protocol may leave some out)."""
        return int(index) in self._query_rows[self.check_direction(direction)]

    def query_modality(self, direction: str) -> str | None:
        """The modality of ``direction``'s queries (None when it has none)."""
        rows = self._query_rows[self.check_direction(direction)]
        return self.dataset.test[next(iter(rows))].modality if rows else None

    def direction_of(self, query: str | int) -> str | None:
        """The direction whose queries are of ``query``'s modality (None when no direction has such queries)."""
        modality = self.dataset.test[self.test_index(query)].modality
        return next((d for d in self.directions if self.query_modality(d) == modality), None)

    def default_query(self) -> str | None:
        """The query the app and its API page start from: :func:`first_query` of the data set."""
        return first_query(self.dataset)

    @property
    def directions(self) -> list[str]:
        return [d for d in DIRECTIONS if d in self.dataset.directions] + [
            d for d in self.dataset.directions if d not in DIRECTIONS]


def first_query(dataset: VVIDataset) -> str | None:
    """The tracklet id of the first query of the first direction (infrared to visible when the data set has it)."""
    for name in (INFRARED_TO_VISIBLE, *dataset.directions):
        if name in dataset.directions and len(dataset.directions[name][0]):
            tracklet = dataset.test[int(dataset.directions[name][0][0])]
            return tracklet.tid or None
    return None


def relative_source(dataset: VVIDataset, tracklet: Tracklet) -> str:
    """Where a tracklet's frames are, relative to the data set's folder (its frame folder, or its video); a
    path outside that folder is reduced to its last two parts, so no server path leaves the explorer."""
    source = tracklet.video or (str(Path(tracklet.frames[0]).parent) if tracklet.frames else "")
    if not source:
        return ""
    path = Path(source)
    root = getattr(dataset, "root", None)
    if root is not None:
        try:
            return path.resolve().relative_to(Path(root).resolve()).as_posix()
        except (ValueError, OSError):
            pass
    return Path(*path.parts[-2:]).as_posix() if len(path.parts) >= 2 else path.name



__all__ = ["SplitQueries", "first_query", "relative_source"]
