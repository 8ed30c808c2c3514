"""The records every reader produces: :class:`Tracklet` and :class:`VVIDataset`.

Readers (HITSZ-VCM, BUPTCampus, SynthVVI) turn an official on-disk layout into
these records; everything downstream (sampling, training, evaluation, the app)
only sees them. Modality is a word, never a code: ``"visible"`` or ``"infrared"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

VISIBLE = "visible"
INFRARED = "infrared"
MODALITIES = (VISIBLE, INFRARED)

INFRARED_TO_VISIBLE = "infrared_to_visible"
VISIBLE_TO_INFRARED = "visible_to_infrared"
DIRECTIONS = (INFRARED_TO_VISIBLE, VISIBLE_TO_INFRARED)
#: Each cross-modal direction's (query modality, gallery modality).
DIRECTION_MODALITIES = {INFRARED_TO_VISIBLE: (INFRARED, VISIBLE), VISIBLE_TO_INFRARED: (VISIBLE, INFRARED)}


@dataclass(frozen=True)
class Tracklet:
    """One tracklet: a short sequence of one person seen by one camera in one modality.

    Either ``frames`` (paths of frame images, in temporal order) or ``video``
    (path of a video file) is set.
    """

    pid: int  # identity label as in the data set (not relabelled)
    camid: int  # camera id as in the data set
    modality: str  # "visible" or "infrared"
    frames: tuple[str, ...] = ()
    video: str | None = None
    tid: str = ""  # stable, human-readable id, e.g. "test/00042"
    caption: str | None = None  # SynthVVI only: text made from the attributes

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {self.modality!r}")
        if not self.frames and not self.video:
            raise ValueError(f"tracklet {self.tid or self.pid} has neither frames nor a video")

    @property
    def num_frames(self) -> int:
        return len(self.frames)


@dataclass
class VVIDataset:
    """A VVI-ReID data set: train tracklets, test tracklets and the two retrieval directions.

    ``directions[name] = (query_indices, gallery_indices)`` index into ``test``.
    ``camera_filter`` is the protocol's rule: if True, gallery items with the
    query's identity *and* camera are removed before ranking (HITSZ-VCM).
    """

    name: str
    root: Path
    train: list[Tracklet]
    test: list[Tracklet]
    directions: dict[str, tuple[np.ndarray, np.ndarray]]
    camera_filter: bool
    test_sampling: str = "evenly"  # how frames are drawn at test time
    test_num_frames: int = 6
    metric: str = "cosine"  # the protocol's distance (BUPTCampus's official evaluation: euclidean)
    notes: list[str] = field(default_factory=list)  # protocol remarks shown with the statistics
    attributes: dict | None = None  # SynthVVI: per-identity attributes
    synthvvi_version: int | None = None  # SynthVVI: the generator version that wrote the data (None: not SynthVVI)

    def query(self, direction: str) -> list[Tracklet]:
        return [self.test[i] for i in self.directions[direction][0]]

    def gallery(self, direction: str) -> list[Tracklet]:
        return [self.test[i] for i in self.directions[direction][1]]
