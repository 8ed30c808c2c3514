"""What person detection produces and how it is tuned: :class:`PersonTrack`, :class:`DetectionConfig`, its errors."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lsmrl.errors import ConfigError, VideoError

Box = tuple[int, int, int, int]
"""A box in frame pixels: (x0, y0, x1, y1), x1/y1 exclusive."""


class PersonDetectionError(VideoError):
    """Person detection could not give what was asked (its message says what to do)."""


class NoPersonFoundError(PersonDetectionError):
    """The detector found no person in the video."""


class UnknownPersonError(PersonDetectionError):
    """A person (track) id was asked for that the detector did not find."""


@dataclass(frozen=True)
class DetectionConfig:
    """Knobs of :func:`~lsmrl.data.people.detect_people` (every part can be switched off for ablations).

    Sizes in ``detect_*`` and ``hog_*`` are at *detection resolution*: each frame is
    resized so that its long side lies in [``detect_min_long_side``,
    ``detect_max_long_side``]. HOG's window is 64x128 px, so it only finds people
    about 100 px tall or more at that resolution; upscaling small videos lets it
    see smaller people, downscaling large ones bounds the time. ``min_box_height``
    is in the video's own pixels. ``max_gap`` and ``min_track_detections`` count
    *scanned* frames (at most ``max_scan_frames`` of them, evenly spaced).
    """

    detect_min_long_side: int = 480
    detect_max_long_side: int = 800
    max_scan_frames: int = 48

    # OpenCV's HOG + linear SVM people detector (Dalal & Triggs), its model ships in the wheel.
    use_hog: bool = True
    hog_win_stride: int = 8
    hog_padding: int = 16
    hog_scale: float = 1.05
    hog_hit_threshold: float = 0.0
    hog_group_threshold: int = 2
    hog_min_score: float = 0.5
    # HOG's training windows hold a 96 px person in 128 px (a margin around the body): keep this
    # fraction of the window's (width, height) around its centre so crop_track's margin is the only one.
    hog_box_shrink: tuple[float, float] = (0.8, 0.85)

    # MOG2 background subtraction: moving person-shaped blobs, for static cameras only.
    background_subtraction: bool = True
    bg_var_threshold: float = 25.0
    bg_background_ratio: float = 0.6
    bg_learning_passes: int = 2
    bg_min_frames: int = 5
    bg_max_foreground_fraction: float = 0.3
    blob_aspect_range: tuple[float, float] = (1.2, 4.5)
    # A blob lower than ``blob_split_aspect`` times its width is several people side by side (or crossing):
    # it is cut into ``round(width * person_aspect / height)`` (at least 2) person-shaped boxes at the
    # valleys of its foreground's column profile (see detection.split_wide_blob); pieces that are not
    # person-shaped are dropped. A blob that would hold more than blob_max_people is dropped whole: a car, a
    # long shadow or a crowd, none of which gives one person's crops.
    blob_split_aspect: float = 1.6
    person_aspect: float = 2.0
    blob_max_people: int = 3
    blob_min_fill: float = 0.3
    blob_score: float = 0.5
    # A HOG box that a blob confirms takes the blob's (tighter, pixel-accurate) extent.
    refine_with_motion: bool = True
    refine_iou: float = 0.4

    min_box_height: int = 32
    nms_iou: float = 0.4
    # A box mostly inside a better one (a HOG hit on the legs, a blob of the torso) is the same person.
    nms_containment: float = 0.7

    # A track of motion blobs alone that never moves is a "ghost" (see LinkedTrack.is_static_motion_ghost).
    drop_static_ghosts: bool = True
    ghost_max_shift: float = 0.1

    # ByteTrack (supervision): a box joins a track when IoU x confidence >= link_iou (HOG's margin clipped at
    # 1, a blob's blob_score); boxes of confidence >= track_activation + 0.1 start tracks; a track is kept
    # through max_gap scanned frames without a box.
    link_iou: float = 0.2
    track_activation: float = 0.25
    max_gap: int = 12
    min_track_detections: int = 3

    # Tracks kept through overlaps (see tracking.guide_boxes): a track whose detection is missing, last seen
    # at most guide_max_steps scan steps back, whose predicted box (a straight-line fit of centre and size
    # over its last guide_history detections) overlaps no detection by guide_iou and lies at least
    # guide_min_cover inside a motion blob, gets that box as a weak detection of confidence guide_score.
    # ByteTrack's second association takes boxes of confidence in (0.1, track_activation): such a box keeps a
    # live track going but never starts one.
    guide_with_motion: bool = True
    guide_score: float = 0.2
    guide_max_steps: int = 12
    guide_history: int = 8
    guide_iou: float = 0.5
    guide_min_cover: float = 0.9
    # A track's ends are carried on through motion blobs, the same predicted boxes, for at most
    # extend_max_steps scan steps (0: off; see tracking.extend_through_foreground).
    extend_max_steps: int = 8

    # Appearance: a track is cut where the HSV histogram of its boxes changes (Bhattacharyya distance of the
    # mean histograms before and after above appearance_split_distance, both sides at least
    # appearance_min_segment detections). A track with more than appearance_max_outliers of its detections
    # farther than appearance_outlier_distance from its median histogram "looks mixed": "auto" avoids it
    # and a query from it is warned about.
    appearance_split: bool = True
    appearance_split_distance: float = 0.4
    appearance_min_segment: int = 3
    appearance_outlier_distance: float = 0.5
    appearance_max_outliers: float = 0.25
    # Re-identification across short gaps (see tracking.relink_tracks): a track that starts at most
    # relink_max_gap scan steps after another ended, where that one was heading (IoU >= relink_min_iou with
    # its predicted box), and whose first relink_history histograms are within relink_distance of the other's
    # last ones, continues it. relink_distance stays below appearance_split_distance, or relinking would join
    # again what the appearance split has just cut.
    relink: bool = True
    relink_max_gap: int = 16
    relink_min_iou: float = 0.3
    relink_history: int = 3
    relink_distance: float = 0.35

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.detect_min_long_side <= self.detect_max_long_side:
            problems.append("need 0 < detect_min_long_side <= detect_max_long_side")
        if self.max_scan_frames < 1:
            problems.append("max_scan_frames must be at least 1")
        if not self.use_hog and not self.background_subtraction:
            problems.append("enable use_hog or background_subtraction (or both): nothing would detect people")
        if self.hog_win_stride < 1 or self.hog_padding < 0 or self.hog_scale <= 1.0:
            problems.append("need hog_win_stride >= 1, hog_padding >= 0 and hog_scale > 1")
        if not all(0 < s <= 1 for s in self.hog_box_shrink):
            problems.append("hog_box_shrink values must lie in (0, 1]")
        low, high = self.blob_aspect_range
        if not 0 < low < high:
            problems.append("blob_aspect_range must be (low, high) with 0 < low < high")
        if self.blob_split_aspect <= 0 or self.person_aspect <= 0:
            problems.append("need blob_split_aspect > 0 and person_aspect > 0")
        if self.blob_max_people < 2:
            problems.append("blob_max_people must be at least 2")
        if self.appearance_min_segment < 1:
            problems.append("appearance_min_segment must be at least 1")
        if self.bg_learning_passes < 1:
            problems.append("bg_learning_passes must be at least 1")
        for name in ("bg_background_ratio", "refine_iou", "nms_iou", "nms_containment", "link_iou", "blob_min_fill", "bg_max_foreground_fraction",
                     "track_activation", "appearance_split_distance", "appearance_outlier_distance",
                     "appearance_max_outliers", "guide_iou", "guide_min_cover", "relink_min_iou",
                     "relink_distance"):
            if not 0 < getattr(self, name) <= 1:
                problems.append(f"{name} must lie in (0, 1]")
        if not 0.1 < self.guide_score < self.track_activation:
            problems.append("guide_score must lie in (0.1, track_activation): ByteTrack's weak detections")
        if self.guide_max_steps < 1 or self.guide_history < 1 or self.relink_max_gap < 1 or self.relink_history < 1:
            problems.append("need guide_max_steps, guide_history, relink_max_gap and relink_history >= 1")
        if self.relink_distance >= self.appearance_split_distance:
            problems.append("relink_distance must be below appearance_split_distance")
        if self.extend_max_steps < 0:
            problems.append("extend_max_steps must be >= 0")
        if self.ghost_max_shift < 0:
            problems.append("ghost_max_shift must be >= 0")
        if self.max_gap < 0 or self.min_track_detections < 1 or self.min_box_height < 1:
            problems.append("need max_gap >= 0, min_track_detections >= 1 and min_box_height >= 1")
        if problems:
            raise ConfigError("invalid DetectionConfig: " + "; ".join(problems))


@dataclass(frozen=True)
class PersonTrack:
    """One person followed over a video.

    ``frame_indices`` are consecutive indices into the frames given to
    :func:`~lsmrl.data.people.detect_people`; ``boxes[i]`` is the person's box in
    frame ``frame_indices[i]`` (frames between two detections get an interpolated
    box). ``score`` is the mean detector score of the real detections (HOG's SVM
    margin, or ``blob_score`` for a motion blob). ``thumbnail`` is a uint8 HxWx3
    crop of the frame where the detector was most confident.
    ``appearance_outliers`` is the share of its detections whose colours are
    unlike the track's median (see :mod:`~lsmrl.data.people.appearance`);
    ``looks_mixed`` is True when that share is above the configured bound: the
    track probably holds more than one person.
    """

    id: int
    frame_indices: tuple[int, ...]
    boxes: tuple[Box, ...]
    score: float
    thumbnail: np.ndarray = field(repr=False, compare=False)
    appearance_outliers: float = 0.0
    looks_mixed: bool = False

    @property
    def length(self) -> int:
        """Number of frames the person is tracked in."""
        return len(self.frame_indices)

    def box_at(self, frame_index: int) -> Box | None:
        """The box in ``frame_index``, or None where the track does not cover that frame."""
        if not self.frame_indices or not self.frame_indices[0] <= frame_index <= self.frame_indices[-1]:
            return None
        return self.boxes[frame_index - self.frame_indices[0]]

    def to_dict(self) -> dict:
        """JSON-ready summary (no thumbnail): id, length, score, appearance check, frame_indices, boxes."""
        return {
            "id": self.id,
            "length": self.length,
            "score": round(float(self.score), 4),
            "appearance_outliers": round(float(self.appearance_outliers), 4),
            "looks_mixed": bool(self.looks_mixed),
            "frame_indices": list(self.frame_indices),
            "boxes": [list(box) for box in self.boxes],
        }
