"""Linking per-frame boxes into tracks: ByteTrack (``supervision``), then a split where the appearance changes.

ByteTrack (Zhang et al. 2022) matches boxes to Kalman-filter predictions by
IoU with the Hungarian algorithm, first the confident boxes, then the weak
ones, and keeps a lost track for ``max_gap`` scanned frames. The frames between
two of a track's detections get linearly interpolated boxes, so every track
covers a run of consecutive frames.

Where two people overlap, neither detector gives their boxes: HOG sees no
whole person and their motion blobs merge into one that is not person-shaped.
The motion blob still says that somebody is there, so a track whose predicted
box (constant velocity from its recent detections) lies inside a blob and
meets no detection gets that predicted box as a *weak* detection: it can only
continue a live track in ByteTrack's second association, never start one, and
it is not kept as one of the track's detections (the frames it covered are
interpolated between real ones). Position alone cannot tell two people apart
where they cross, so each track is then cut where its colours change
(:mod:`~lsmrl.data.people.appearance`), and pieces that one person's track
lost and found again are joined back when the later piece starts where the
earlier one was heading and looks the same (re-identification across a
short gap, :func:`relink_tracks`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import supervision as sv

from lsmrl.data.people.appearance import box_histogram, change_points, histogram_distance, outlier_fraction
from lsmrl.data.people.detection import FrameDetections, box_intersection, box_iou
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
    # Boxes beyond the first and last detection, {frame: box}, where the person was carried on through
    # motion foreground without a detection (see extend_through_foreground); not detections.
    extrapolated: dict[int, np.ndarray] = field(default_factory=dict)

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

    def extend(self, later: LinkedTrack) -> None:
        """Append the detections of ``later``, a piece of the same person that starts after this one ends."""
        self.steps += later.steps
        self.frames += later.frames
        self.boxes += later.boxes
        self.scores += later.scores
        self.from_hog += later.from_hog
        self.histograms += later.histograms

    def pieces(self, cuts: list[int]) -> list[LinkedTrack]:
        """The track cut before each detection index in ``cuts`` (sorted), histograms kept."""
        edges = [0, *cuts, len(self.frames)]
        out = []
        for a, b in zip(edges[:-1], edges[1:]):
            piece = LinkedTrack(self.frames[a:b], self.boxes[a:b], self.scores[a:b], self.steps[a:b],
                                self.from_hog[a:b], self.histograms[a:b])
            out.append(piece)
        return out

    def predicted_box(self, step: int, history: int, from_start: bool = False) -> np.ndarray:
        """The box expected at scan ``step``: centre, width and height each fitted as a straight line over
        the last ``history`` detections, or the first ones with ``from_start`` (to look back in time):
        constant velocity; a single detection stays where it is."""
        part = slice(None, history) if from_start else slice(-history, None)
        steps = np.asarray(self.steps[part], np.float64)
        boxes = np.stack(self.boxes[part])
        centre_size = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2,
                                boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1)
        if len(steps) < 2:
            cx, cy, w, h = centre_size[-1]
        else:
            slope, intercept = np.polyfit(steps, centre_size, 1)
            cx, cy, w, h = slope * step + intercept
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])

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
        """Every frame from the first box to the last (detections and extrapolated boxes), boxes
        interpolated in between."""
        known = sorted({**self.extrapolated, **dict(zip(self.frames, self.boxes))}.items())
        known_frames = [f for f, _ in known]
        boxes = np.stack([box for _, box in known])
        frames = np.arange(known_frames[0], known_frames[-1] + 1)
        columns = [np.interp(frames, known_frames, boxes[:, c]) for c in range(4)]
        dense_boxes = np.rint(np.stack(columns, axis=1)).astype(int)
        return tuple(int(f) for f in frames), tuple(tuple(int(v) for v in box) for box in dense_boxes)




def _confidence(scores: np.ndarray) -> np.ndarray:
    """Detector scores as ByteTrack's confidences in [0, 1]: HOG's SVM margin clipped at 1, a blob's
    ``blob_score`` as it is. ByteTrack multiplies IoU by confidence when matching, so they must not exceed 1."""
    return np.clip(np.asarray(scores, np.float32), 0.0, 1.0)


def guide_boxes(
    tracks: dict[int, LinkedTrack], step: int, detections: FrameDetections, config: DetectionConfig
) -> np.ndarray:
    """Predicted boxes (K, 4) of the tracks that the frame's detections miss but its motion blobs cover.

    A track qualifies when its last detection is at most ``guide_max_steps`` scan steps back, its
    predicted box (:meth:`LinkedTrack.predicted_box`) overlaps no detection by ``guide_iou`` or more, and
    at least ``guide_min_cover`` of that box lies inside one motion blob.
    """
    if not config.guide_with_motion or not len(detections.foreground) or not tracks:
        return np.zeros((0, 4), np.float32)
    live = [t for t in tracks.values() if 0 < step - t.steps[-1] <= config.guide_max_steps]
    if not live:
        return np.zeros((0, 4), np.float32)
    predicted = np.stack([t.predicted_box(step, config.guide_history) for t in live])
    foreground = np.asarray(detections.foreground, np.float64)
    areas = np.clip(predicted[:, 2] - predicted[:, 0], 0, None) * np.clip(predicted[:, 3] - predicted[:, 1], 0, None)
    cover = box_intersection(predicted, foreground).max(axis=1) / np.maximum(areas, 1e-6)
    keep = cover >= config.guide_min_cover
    if len(detections.boxes):
        keep &= box_iou(predicted, np.asarray(detections.boxes, np.float64)).max(axis=1) < config.guide_iou
    return predicted[keep].astype(np.float32)


def bytetrack_links(
    per_frame: list[FrameDetections], frame_indices: list[int], config: DetectionConfig
) -> list[LinkedTrack]:
    """ByteTrack over the scanned frames (one tracker step per scanned frame), every track's detections.

    Each step's detections are joined by :func:`guide_boxes` at confidence
    ``guide_score`` (ByteTrack's weak detections); a track that takes one is
    kept alive but does not record it. ByteTrack reports a track from its
    second detection on (a new track is unconfirmed on its first frame); the
    unreported box of the step before, when it overlaps the track's first box
    by at least ``link_iou``, is put back.
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
        guided = guide_boxes(tracks, step, detections, config)
        taken = np.zeros(len(boxes), bool)
        if len(boxes) or len(guided):
            confidence = np.concatenate([_confidence(detections.scores), np.full(len(guided), config.guide_score,
                                                                                 np.float32)])
            given = sv.Detections(xyxy=np.concatenate([boxes, guided]), confidence=confidence,
                                  data={"index": np.arange(len(boxes) + len(guided))})
            tracked = tracker.update_with_detections(given)
            # With no track to report, ByteTrack returns empty detections without the "index" column.
            for index, track_id in zip(tracked.data.get("index", ()), tracked.tracker_id):
                if index >= len(boxes):
                    continue  # a guided box: the track lives on, its box here will be interpolated
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


def relink_tracks(tracks: list[LinkedTrack], config: DetectionConfig) -> list[LinkedTrack]:
    """Pieces of one person joined again: a track lost (or cut) in a crossing and a later one that goes on.

    A pair (earlier, later) is a candidate when the later track starts after
    the earlier one ends, at most ``relink_max_gap`` scan steps later; its
    first box overlaps the earlier track's predicted box at that step
    (:meth:`LinkedTrack.predicted_box`) by at least ``relink_min_iou``; and
    the mean histograms of the earlier track's last and the later track's
    first ``relink_history`` detections are within ``relink_distance``
    (Bhattacharyya). The closest candidate pair in appearance is joined first,
    then the rest are looked at again, so a person lost twice becomes one
    track. Both conditions are needed: motion alone joins two people who
    cross, colour alone two people dressed alike. Tracks need histograms
    (:func:`split_by_appearance`); without them they are returned as they are.
    """
    tracks = list(tracks)
    if not config.relink or any(not t.histograms for t in tracks):
        return tracks
    while True:
        best: tuple[float, int, int] | None = None
        for i, earlier in enumerate(tracks):
            for j, later in enumerate(tracks):
                gap = later.steps[0] - earlier.steps[-1]
                if i == j or not 0 < gap <= config.relink_max_gap:
                    continue
                predicted = earlier.predicted_box(later.steps[0], config.guide_history)
                if box_iou(predicted[None], later.boxes[0][None])[0, 0] < config.relink_min_iou:
                    continue
                tail = np.mean(earlier.histograms[-config.relink_history:], axis=0)
                head = np.mean(later.histograms[: config.relink_history], axis=0)
                distance = histogram_distance(tail, head)
                if distance <= config.relink_distance and (best is None or distance < best[0]):
                    best = (distance, i, j)
        if best is None:
            return tracks
        _, i, j = best
        tracks[i].extend(tracks[j])
        del tracks[j]


def extend_through_foreground(
    track: LinkedTrack, per_frame: list[FrameDetections], frame_indices: list[int], config: DetectionConfig
) -> None:
    """Carry the track on before its first and after its last detection while a motion blob holds it.

    A person who walks in or out of a merged blob (two people overlapping: no
    person box, one solid blob) is undetected there, though still in view. Step by step
    away from the track's ends, for at most ``extend_max_steps`` scan steps, the
    predicted box (constant velocity over ``guide_history`` detections at that
    end) is kept as long as at least ``guide_min_cover`` of it lies inside one
    of that step's motion blobs and it overlaps no detection by ``guide_iou``
    (a detected person there has a box, and a track, of its own); the first
    step that fails ends the extension. The boxes go to ``track.extrapolated``.
    """
    if config.extend_max_steps == 0:
        return
    for direction in (-1, 1):
        edge = track.steps[0] if direction < 0 else track.steps[-1]
        for offset in range(1, config.extend_max_steps + 1):
            step = edge + direction * offset
            if not 0 <= step < len(per_frame):
                break
            box = track.predicted_box(step, config.guide_history, from_start=direction < 0)
            foreground = np.asarray(per_frame[step].foreground, np.float64)
            area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-6)
            if not len(foreground) or box_intersection(box[None], foreground).max() / area < config.guide_min_cover:
                break
            detected = np.asarray(per_frame[step].boxes, np.float64).reshape(-1, 4)
            if len(detected) and box_iou(box[None], detected).max() >= config.guide_iou:
                break  # somebody is detected there: a track of its own, or a box this one left
            track.extrapolated[frame_indices[step]] = box


def link_detections(
    per_frame: list[FrameDetections],
    frame_indices: list[int],
    config: DetectionConfig,
    frames: np.ndarray | None = None,
) -> list[LinkedTrack]:
    """Tracks with at least ``min(min_track_detections, number of scanned frames)`` detections
    (and, with ``drop_static_ghosts``, not a motion ghost). With ``frames`` (the video, RGB), each
    ByteTrack track is first cut where its appearance changes and carries its colour histograms, and
    pieces of one person are joined again (:func:`relink_tracks`). Each track's ends are then carried on
    through motion foreground (:func:`extend_through_foreground`)."""
    linked = bytetrack_links(per_frame, frame_indices, config)
    if frames is not None:
        linked = [piece for track in linked for piece in split_by_appearance(track, frames, config)]
        linked = relink_tracks(linked, config)
    needed = min(config.min_track_detections, len(frame_indices))
    tracks = [track for track in linked if len(track.frames) >= needed]
    if config.drop_static_ghosts:
        tracks = [track for track in tracks if not track.is_static_motion_ghost(config.ghost_max_shift)]
    for track in tracks:
        extend_through_foreground(track, per_frame, frame_indices, config)
    return tracks
