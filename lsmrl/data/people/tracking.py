"""Linking per-frame boxes into tracks: greedy IoU matching against a constant-velocity prediction.

A track that finds no box for more than ``max_gap`` scanned frames ends; the
frames between two of its detections get linearly interpolated boxes, so every
track covers a run of consecutive frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

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

    def predict(self, frame: int, history: int = 4) -> np.ndarray:
        """The last box moved on to ``frame`` at its centre's mean velocity over the last ``history`` detections.

        Only the centre moves and over several detections: one box that caught
        just the legs would otherwise send the prediction off by half a body.
        """
        if len(self.frames) < 2:
            return self.boxes[-1]
        first = max(0, len(self.frames) - history)
        centre = lambda box: np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])  # noqa: E731
        velocity = (centre(self.boxes[-1]) - centre(self.boxes[first])) / (self.frames[-1] - self.frames[first])
        shift = velocity * (frame - self.frames[-1])
        return self.boxes[-1] + np.concatenate([shift, shift])

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


def link_detections(
    per_frame: list[FrameDetections], frame_indices: list[int], config: DetectionConfig
) -> list[LinkedTrack]:
    """Tracks with at least ``min(min_track_detections, number of scanned frames)`` detections
    (and, with ``drop_static_ghosts``, not a motion ghost)."""
    active: list[LinkedTrack] = []
    finished: list[LinkedTrack] = []
    for step, (detections, frame) in enumerate(zip(per_frame, frame_indices)):
        boxes, scores, from_hog = detections.boxes, detections.scores, detections.from_hog
        still_active = []
        for track in active:
            (still_active if step - track.steps[-1] - 1 <= config.max_gap else finished).append(track)
        active = still_active
        matched_tracks: set[int] = set()
        matched_boxes: set[int] = set()
        if active and len(boxes):
            predicted = np.stack([track.predict(frame) for track in active])
            last = np.stack([track.boxes[-1] for track in active])
            # The better of "moved on" and "stayed": a walker who stops is not lost to an old velocity.
            candidates = boxes.astype(np.float64)
            overlap = np.maximum(box_iou(predicted, candidates), box_iou(last, candidates))
            # Greedy: the best overlapping pair first, so one good match is never taken by a weaker one.
            for flat in np.argsort(-overlap, axis=None, kind="stable"):
                t, b = np.unravel_index(flat, overlap.shape)
                if overlap[t, b] < config.link_iou:
                    break
                if t in matched_tracks or b in matched_boxes:
                    continue
                active[t].add(step, frame, boxes[b], scores[b], from_hog[b])
                matched_tracks.add(int(t))
                matched_boxes.add(int(b))
        for b in range(len(boxes)):
            if b not in matched_boxes:
                track = LinkedTrack()
                track.add(step, frame, boxes[b], scores[b], from_hog[b])
                active.append(track)
    finished.extend(active)
    needed = min(config.min_track_detections, len(frame_indices))
    tracks = [track for track in finished if len(track.frames) >= needed]
    if config.drop_static_ghosts:
        tracks = [track for track in tracks if not track.is_static_motion_ghost(config.ghost_max_shift)]
    return tracks
