"""Linking per-frame boxes into tracks: ByteTrack (``supervision``), then a split where the appearance changes.

ByteTrack (Zhang et al. 2022) matches boxes to Kalman-filter predictions by
IoU with the Hungarian algorithm, first the confident boxes, then the weak
ones, and keeps a lost track for ``max_gap`` scanned frames. The frames between
two of a track's detections get linearly interpolated boxes, so every track
covers a run of consecutive frames. Position alone cannot tell two people
apart where they cross, so each track is then cut where its colours change
(:mod:`~lsmrl.data.people.appearance`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import supervision as sv

from lsmrl.data.people.appearance import box_histogram, change_points, outlier_fraction
from lsmrl.data.people.detection import FrameDetections, box_iou
from lsmrl.data.people.records import Box, DetectionConfig


@dataclass
class LinkedTrack:
    """Detections of one person: original frame indices, boxes (video pixels), scores, scan steps."""

    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    from_hog: list[bool] = field(default_factory=list)
    histograms: list[np.ndarray] = field(default_factory=list)

    def add(self, step: int, frame: int, box: np.ndarray, score: float, from_hog: bool) -> None:
        self.steps.append(step)
        self.frames.append(frame)
        self.boxes.append(np.asarray(box, np.float64))
        self.scores.append(float(score))
        self.from_hog.append(bool(from_hog))

    def is_static_motion_ghost(self, max_shift: float) -> bool:
        """Only motion blobs, none confirmed by HOG, and the box never moves more than ``max_shift``
        of its height: the mark MOG2 leaves where someone stood long enough to be learnt as background."""
        if any(self.from_hog):
            return False
        boxes = np.stack(self.boxes)
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        shift = np.linalg.norm(centres - centres[0], axis=1).max()
        return bool(shift <= max_shift * np.median(boxes[:, 3] - boxes[:, 1]))

    def prepend(self, step: int, frame: int, box: np.ndarray, score: float, from_hog: bool) -> None:
        """A detection before the first one (a track's first box, which ByteTrack does not report)."""
        self.steps.insert(0, step)
        self.frames.insert(0, frame)
        self.boxes.insert(0, np.asarray(box, np.float64))
        self.scores.insert(0, float(score))
        self.from_hog.insert(0, bool(from_hog))

    def pieces(self, cuts: list[int]) -> list[LinkedTrack]:
        """The track cut before each detection index in ``cuts`` (sorted), histograms kept."""
        edges = [0, *cuts, len(self.frames)]
        out = []
        for a, b in zip(edges[:-1], edges[1:]):
            piece = LinkedTrack(self.frames[a:b], self.boxes[a:b], self.scores[a:b], self.steps[a:b],
                                self.from_hog[a:b], self.histograms[a:b])
            out.append(piece)
        return out

    def appearance_outliers(self, distance: float) -> float:
        """Share of the detections whose colours are unlike the track's median (0 without histograms)."""
        return outlier_fraction(np.stack(self.histograms), distance) if self.histograms else 0.0

    @property
    def score(self) -> float:
        return float(np.mean(self.scores))

    @property
    def best_frame(self) -> int:
        return self.frames[int(np.argmax(self.scores))]

    def dense(self) -> tuple[tuple[int, ...], tuple[Box, ...]]:
        """Every frame from the first detection to the last, boxes interpolated between detections."""
        frames = np.arange(self.frames[0], self.frames[-1] + 1)
        boxes = np.stack(self.boxes)
        columns = [np.interp(frames, self.frames, boxes[:, c]) for c in range(4)]
        dense_boxes = np.rint(np.stack(columns, axis=1)).astype(int)
        return tuple(int(f) for f in frames), tuple(tuple(int(v) for v in box) for box in dense_boxes)




def _confidence(scores: np.ndarray) -> np.ndarray:
    """Detector scores as ByteTrack's confidences in [0, 1]: HOG's SVM margin clipped at 1, a blob's
    ``blob_score`` as it is. ByteTrack multiplies IoU by confidence when matching, so they must not exceed 1."""
    return np.clip(np.asarray(scores, np.float32), 0.0, 1.0)


def bytetrack_links(
    per_frame: list[FrameDetections], frame_indices: list[int], config: DetectionConfig
) -> list[LinkedTrack]:
    """ByteTrack over the scanned frames (one tracker step per scanned frame), every track's detections.

    ByteTrack reports a track from its second detection on (a new track is
    unconfirmed on its first frame); the unreported box of the step before, when
    it overlaps the track's first box by at least ``link_iou``, is put back.
    """
    # sv.ByteTrack is marked deprecated in supervision 0.28-0.30 in favour of the `trackers` package, which
    # needs the non-headless opencv-python (see requirements.txt); the class works and is pinned, so its
    # notice is silenced here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tracker = sv.ByteTrack(
            track_activation_threshold=config.track_activation,
            lost_track_buffer=config.max_gap,
            minimum_matching_threshold=1.0 - config.link_iou,
            frame_rate=30,  # lost_track_buffer counts tracker steps (scanned frames) at 30
            minimum_consecutive_frames=1,
        )
    tracks: dict[int, LinkedTrack] = {}
    unreported: list[np.ndarray] = []  # per step: indices of boxes no track took
    for step, (detections, frame) in enumerate(zip(per_frame, frame_indices)):
        boxes = np.asarray(detections.boxes, np.float32).reshape(-1, 4)
        taken = np.zeros(len(boxes), bool)
        if len(boxes):
            given = sv.Detections(xyxy=boxes, confidence=_confidence(detections.scores),
                                  data={"index": np.arange(len(boxes))})
            tracked = tracker.update_with_detections(given)
            # With no track to report, ByteTrack returns empty detections without the "index" column.
            for index, track_id in zip(tracked.data.get("index", ()), tracked.tracker_id):
                track = tracks.setdefault(int(track_id), LinkedTrack())
                track.add(step, frame, boxes[index], detections.scores[index], detections.from_hog[index])
                taken[index] = True
        else:
            tracker.update_with_detections(sv.Detections.empty())
        unreported.append(np.nonzero(~taken)[0])
    linked = list(tracks.values())
    for track in linked:
        step = track.steps[0] - 1
        if step < 0 or not len(unreported[step]):
            continue
        candidates = per_frame[step].boxes[unreported[step]].astype(np.float64)
        overlap = box_iou(track.boxes[0][None], candidates)[0]
        best = int(overlap.argmax())
        if overlap[best] >= config.link_iou:
            index = int(unreported[step][best])
            unreported[step] = np.delete(unreported[step], best)
            detections = per_frame[step]
            track.prepend(step, frame_indices[step], detections.boxes[index], detections.scores[index],
                          detections.from_hog[index])
    return linked


def split_by_appearance(track: LinkedTrack, frames: np.ndarray, config: DetectionConfig) -> list[LinkedTrack]:
    """The track cut where its colours change (each piece one person), histograms filled in.

    ``frames`` are the video's frames (RGB); histograms are taken at the
    track's real detections only, never at interpolated boxes.
    """
    track.histograms = [box_histogram(frames[f], box) for f, box in zip(track.frames, track.boxes)]
    if not config.appearance_split:
        return [track]
    cuts = change_points(np.stack(track.histograms), config.appearance_split_distance, config.appearance_min_segment)
    return track.pieces(cuts)


def link_detections(
    per_frame: list[FrameDetections],
    frame_indices: list[int],
    config: DetectionConfig,
    frames: np.ndarray | None = None,
) -> list[LinkedTrack]:
    """Tracks with at least ``min(min_track_detections, number of scanned frames)`` detections
    (and, with ``drop_static_ghosts``, not a motion ghost). With ``frames`` (the video, RGB), each
    ByteTrack track is first cut where its appearance changes and carries its colour histograms."""
    linked = bytetrack_links(per_frame, frame_indices, config)
    if frames is not None:
        linked = [piece for track in linked for piece in split_by_appearance(track, frames, config)]
    needed = min(config.min_track_detections, len(frame_indices))
    tracks = [track for track in linked if len(track.frames) >= needed]
    if config.drop_static_ghosts:
        tracks = [track for track in tracks if not track.is_static_motion_ghost(config.ghost_max_shift)]
    return tracks
