"""The entry points: find the people in a video, pick one, and tell a scene from a ready-made person crop."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from lsmrl.data.people.crops import thumbnail_of
from lsmrl.data.people.detection import (
    FrameDetections,
    detect_frame_boxes,
    detection_scale,
    hog_boxes,
    people_hog,
    resize_for_detection,
)
from lsmrl.data.people.records import DetectionConfig, NoPersonFoundError, PersonTrack, UnknownPersonError
from lsmrl.data.people.tracking import link_detections
from lsmrl.errors import VideoError

AUTO = "auto"


def _checked_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0 or min(frames.shape[1:3]) < 8:
        raise VideoError(f"expected video frames as a (T, H, W, 3) array with T >= 1, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise VideoError(f"expected uint8 frames (0-255), got {frames.dtype}")
    return frames


def scan_frame_indices(num_frames: int, max_scan_frames: int) -> list[int]:
    """All frames, or ``max_scan_frames`` evenly spaced ones (first and last included)."""
    if num_frames <= max_scan_frames:
        return list(range(num_frames))
    return [int(i) for i in np.unique(np.linspace(0, num_frames - 1, max_scan_frames).round().astype(int))]


def detect_people(frames: np.ndarray, config: DetectionConfig = DetectionConfig()) -> list[PersonTrack]:
    """The people in a video, longest track first, ids 1, 2, ... in that order.

    ``frames``: (T, H, W, 3) uint8, RGB (the detectors do not look at hue; the
    appearance check does, and with BGR frames it still compares a track with
    itself consistently).
    Raises :class:`NoPersonFoundError` when no track survives.
    """
    frames = _checked_frames(frames)
    indices = scan_frame_indices(len(frames), config.max_scan_frames)
    height, width = frames.shape[1:3]
    scale = detection_scale(height, width, config)
    images = resize_for_detection([frames[i] for i in indices], scale)
    per_frame = detect_frame_boxes(images, scale, (height, width), config)
    return people_from_detections(frames, indices, per_frame, config, scale)


def people_from_detections(
    frames: np.ndarray,
    indices: list[int],
    per_frame: list[FrameDetections],
    config: DetectionConfig = DetectionConfig(),
    scale: float = 1.0,
) -> list[PersonTrack]:
    """The tracks of :func:`detect_people` from its per-frame detections (``per_frame[k]`` in frame
    ``indices[k]``; ``scale`` the detection scale, for the error message): the linking step alone, so that
    tracking settings can be compared on the same detections without running the detectors again."""
    height, width = frames.shape[1:3]
    linked = link_detections(per_frame, indices, config, frames=frames)
    if not linked:
        detectors = " and ".join(
            name for name, on in (("the HOG people detector", config.use_hog),
                                  ("background subtraction", config.background_subtraction)) if on
        )  # fmt: skip
        # HOG's smallest window is 128 px with a body of about 96 px inside it, at detection resolution.
        smallest = int(round(96 / scale))
        raise NoPersonFoundError(
            f"No person was found in the video ({len(indices)} frames scanned with {detectors}). The detector "
            f"needs people seen whole and upright, at least about {smallest} px tall in this {width}x{height} "
            "video; upload a video where the person is larger, or crop the person yourself and upload that "
            "clip (a portrait clip of about 2:1 is used whole)."
        )
    # Longest first; ties: the more confident, then the leftmost (a stable order for equal tracks).
    linked.sort(key=lambda t: (-(t.frames[-1] - t.frames[0]), -t.score, float(t.boxes[0][0])))
    tracks = []
    for track_id, track in enumerate(linked, start=1):
        frame_indices, boxes = track.dense()
        thumbnail = thumbnail_of(frames, frame_indices, boxes, track.best_frame)
        outliers = track.appearance_outliers(config.appearance_outlier_distance)
        tracks.append(PersonTrack(track_id, frame_indices, boxes, track.score, thumbnail, outliers,
                                  looks_mixed=outliers > config.appearance_max_outliers))
    return tracks


def select_track(tracks: Sequence[PersonTrack], person: int | str = AUTO) -> PersonTrack:
    """The track ``person`` names: its id (an int or a digit string), or ``"auto"``.

    ``"auto"`` is the longest track that does not look mixed (``looks_mixed``:
    its colours say it holds more than one person); when every track looks
    mixed, the longest of them (:func:`~lsmrl.data.people.person_query` then
    warns).
    """
    if not tracks:
        raise NoPersonFoundError("No person was detected, so there is no person to choose.")
    if isinstance(person, str):
        if person.strip().lower() == AUTO:
            return max(tracks, key=lambda t: (not t.looks_mixed, t.length, t.score))
        if not person.strip().isdigit():
            raise UnknownPersonError(f"person must be a track id or {AUTO!r}, not {person!r}")
        person = int(person)
    for track in tracks:
        if track.id == person:
            return track
    ids = ", ".join(str(t.id) for t in tracks)
    raise UnknownPersonError(
        f"There is no person {person} in this video: the detected people are {ids}. Choose one of them, or "
        f"{AUTO!r} for the longest track."
    )


def is_person_crop(
    frames: np.ndarray,
    config: DetectionConfig = DetectionConfig(),
    aspect_range: tuple[float, float] = (1.5, 3.0),
    smaller_than: float = 0.5,
    probe_frames: int = 3,
) -> bool:
    """True when the clip already is a person crop, to be used whole (as before person detection).

    The clip must be portrait (H/W in ``aspect_range``, about 2:1), and HOG's
    most confident person over ``probe_frames`` evenly spaced frames must be at
    least ``smaller_than`` of the frame's height: a confident, much smaller
    person means a scene. Each probe frame is first padded (its border
    repeated) by 1/8 of its height and 1/4 of its width, so HOG's window, which
    holds a margin around the body, fits a person who fills the frame. A
    portrait clip in which HOG finds nobody counts as a crop, so a scene whose
    people HOG misses is used whole too.
    """
    frames = _checked_frames(frames)
    height, width = frames.shape[1:3]
    if not aspect_range[0] <= height / width <= aspect_range[1]:
        return False
    if not config.use_hog:
        return True
    picks = np.unique(np.linspace(0, len(frames) - 1, min(probe_frames, len(frames))).round().astype(int))
    pad_y, pad_x = height // 8, width // 4
    padded = [cv2.copyMakeBorder(frames[i], pad_y, pad_y, pad_x, pad_x, cv2.BORDER_REPLICATE) for i in picks]
    scale = detection_scale(*padded[0].shape[:2], config)
    hog = people_hog()
    best_score, best_height = -np.inf, None
    for image in resize_for_detection(padded, scale):
        boxes, scores = hog_boxes(hog, image, scale, config)
        if len(boxes) and scores.max() > best_score:
            best = int(scores.argmax())
            best_score, best_height = float(scores[best]), float(boxes[best, 3] - boxes[best, 1])
    return best_height is None or best_height >= smaller_than * height
