"""Per-frame person boxes: OpenCV's HOG people detector, MOG2 motion blobs, and NMS between them.

Every function works on frames already resized to detection resolution and
returns boxes in the *video's* pixels (divided by ``scale``), as float arrays
of shape (N, 4) = (x0, y0, x1, y1) with scores of shape (N,).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from lsmrl.data.people.records import DetectionConfig
from lsmrl.errors import LSMRLError

_EMPTY = (np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))


def detection_scale(height: int, width: int, config: DetectionConfig) -> float:
    """Factor that brings the frame's long side into the configured detection range."""
    long_side = max(height, width)
    if long_side < config.detect_min_long_side:
        return config.detect_min_long_side / long_side
    if long_side > config.detect_max_long_side:
        return config.detect_max_long_side / long_side
    return 1.0


def resize_for_detection(frames: list[np.ndarray], scale: float) -> list[np.ndarray]:
    if scale == 1.0:
        return [np.ascontiguousarray(frame) for frame in frames]
    interpolation = cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA
    return [cv2.resize(frame, None, fx=scale, fy=scale, interpolation=interpolation) for frame in frames]


def people_hog() -> cv2.HOGDescriptor:
    """A fresh HOG descriptor with OpenCV's default people SVM (64x128 window, trained on INRIA)."""
    if not hasattr(cv2, "HOGDescriptor"):  # opencv 5 dropped it; requirements.txt pins <5
        raise LSMRLError(
            f"OpenCV {cv2.__version__} has no HOGDescriptor; install `opencv-python-headless>=4.8,<5`"
        )
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    return hog


def hog_boxes(
    hog: cv2.HOGDescriptor, image: np.ndarray, scale: float, config: DetectionConfig
) -> tuple[np.ndarray, np.ndarray]:
    """HOG detections in one frame (already at detection resolution), shrunk to the body."""
    rects, weights = hog.detectMultiScale(
        image,
        hitThreshold=config.hog_hit_threshold,
        winStride=(config.hog_win_stride, config.hog_win_stride),
        padding=(config.hog_padding, config.hog_padding),
        scale=config.hog_scale,
        groupThreshold=config.hog_group_threshold,
    )
    if len(rects) == 0:
        return _EMPTY
    rects = np.asarray(rects, np.float32).reshape(-1, 4)
    scores = np.asarray(weights, np.float32).reshape(-1)
    keep = scores >= config.hog_min_score
    rects, scores = rects[keep], scores[keep]
    keep_w, keep_h = config.hog_box_shrink
    cx, cy = rects[:, 0] + rects[:, 2] / 2, rects[:, 1] + rects[:, 3] / 2
    half_w, half_h = rects[:, 2] * keep_w / 2, rects[:, 3] * keep_h / 2
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1) / scale
    return boxes.astype(np.float32), scores


@dataclass(frozen=True)
class MotionFrame:
    """One frame's motion evidence in video pixels: person-shaped ``boxes`` (N, 4) with ``scores`` (N,),
    and ``blobs`` (M, 4), the bounding box of every foreground blob at least ``min_box_height`` tall,
    person-shaped or not (a solid blob of two people who overlap is not a person box, but it says that
    the people a tracker expects there are still present)."""

    boxes: np.ndarray
    scores: np.ndarray
    blobs: np.ndarray


_NO_MOTION = MotionFrame(_EMPTY[0], _EMPTY[1], _EMPTY[0])


def motion_boxes(images: list[np.ndarray], scale: float, config: DetectionConfig) -> list[MotionFrame]:
    """Person-shaped foreground blobs of MOG2 in every frame (nothing where the camera seems to move).

    A blob too wide for one upright person is cut into person-shaped boxes
    (:func:`split_wide_blob`); when it cannot be cut, or would hold more than
    ``blob_max_people``, it gives no person box (a box around several people
    gives mixed crops) but stays among the frame's ``blobs``.

    MOG2 first learns the background from *all* scanned frames, then labels each
    frame with the learning frozen: a person walking through a short clip is then
    not learnt as background from the first frame on (which would leave a "ghost"
    where they stood). A person who stands still most of the clip is background:
    HOG has to find them.
    """
    if len(images) < config.bg_min_frames:
        return [_NO_MOTION for _ in images]
    subtractor = cv2.createBackgroundSubtractorMOG2(
        history=len(images), varThreshold=config.bg_var_threshold, detectShadows=True
    )
    # MOG2 starts its model from the first frame alone; after a single pass over a short clip that
    # frame's people would still be background. A lower background ratio than OpenCV's 0.9 keeps
    # only the dominant colour of a pixel as background: a walker covering a pixel for a third of a
    # short clip is otherwise learnt as one of its background modes.
    subtractor.setBackgroundRatio(config.bg_background_ratio)
    for _ in range(config.bg_learning_passes):
        for image in images:
            subtractor.apply(image, learningRate=-1)
    masks = [subtractor.apply(image, learningRate=0) for image in images]
    fractions = [float((mask == 255).mean()) for mask in masks]
    if float(np.median(fractions)) > config.bg_max_foreground_fraction:
        return [_NO_MOTION for _ in images]  # most frames are "foreground": a moving camera or a light change
    height = images[0].shape[0]
    # Closing joins a body split by similar-coloured clothes; its size follows the frame's height.
    close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (max(3, height // 30), max(3, height // 15)))
    open_ = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    low, high = config.blob_aspect_range
    results = []
    for mask, fraction in zip(masks, fractions):
        if fraction > config.bg_max_foreground_fraction:
            results.append(_NO_MOTION)
            continue
        foreground = cv2.morphologyEx((mask == 255).astype(np.uint8), cv2.MORPH_OPEN, open_)
        foreground = cv2.morphologyEx(foreground, cv2.MORPH_CLOSE, close)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(foreground, connectivity=8)
        boxes, scores, blobs = [], [], []
        for label, (x, y, w, h, _) in enumerate(stats[1:count], start=1):
            if h / scale < config.min_box_height:
                continue
            blobs.append([x, y, x + w, y + h])
            blob = labels[y : y + h, x : x + w] == label
            if h / max(w, 1) >= config.blob_split_aspect:
                pieces = [(0, 0, w, h)]
            elif blob_people(w, h, config.person_aspect) <= config.blob_max_people:
                pieces = split_wide_blob(blob, config.person_aspect)
            else:
                continue  # far too wide for a few people side by side: a car, a shadow, a crowd
            for px0, py0, px1, py1 in pieces:
                pw, ph = px1 - px0, py1 - py0
                if ph / scale < config.min_box_height or not low <= ph / max(pw, 1) <= high:
                    continue
                if blob[py0:py1, px0:px1].mean() < config.blob_min_fill:
                    continue
                boxes.append([x + px0, y + py0, x + px1, y + py1])
                scores.append(config.blob_score)
        results.append(MotionFrame(np.asarray(boxes, np.float32).reshape(-1, 4) / scale,
                                   np.asarray(scores, np.float32).reshape(-1),
                                   np.asarray(blobs, np.float32).reshape(-1, 4) / scale))
    return results


def blob_people(width: int, height: int, person_aspect: float) -> int:
    """How many upright people of height/width ``person_aspect`` side by side make a blob this wide (at least 2)."""
    return max(2, int(round(width * person_aspect / max(height, 1))))


def split_wide_blob(mask: np.ndarray, person_aspect: float, valley: float = 0.6) -> list[tuple[int, int, int, int]]:
    """Person-shaped boxes (x0, y0, x1, y1, in ``mask``'s pixels) of a blob too wide for one upright person,
    or [] when the blob does not look like several people.

    ``mask`` (h, w) is the blob's foreground in its bounding box. The blob is
    taken to hold :func:`blob_people` people side by side; each cut between
    two of them is the column with the least foreground in the top 20% of the
    blob (heads and shoulders, apart even when bodies overlap), searched in
    the middle 80% of the span around each even cut position. A cut must be a
    valley: at most ``valley`` times the lower of the two peaks beside it. A
    solid blob (a car, a box, a shadow) has no such valleys and gives [].
    Each piece is shrunk to its own foreground's rows and columns.
    """
    mask = np.asarray(mask, bool)
    height, width = mask.shape
    people = blob_people(width, height, person_aspect)
    profile = mask[: max(1, int(round(0.2 * height)))].sum(axis=0).astype(np.float64)
    window = max(1, width // (4 * people))
    smooth = np.convolve(profile, np.ones(window) / window, mode="same")
    span = width / people
    edges = [0]
    for i in range(1, people):
        lo = int(round(i * span - 0.4 * span))
        hi = max(lo + 1, int(round(i * span + 0.4 * span)))
        edges.append(lo + int(np.argmin(smooth[lo:hi])))
    edges.append(width)
    for before, cut, after in zip(edges[:-2], edges[1:-1], edges[2:]):
        peak = min(smooth[before:cut].max(initial=0.0), smooth[cut:after].max(initial=0.0))
        if peak <= 0 or smooth[cut] > valley * peak:
            return []
    pieces = []
    for a, b in zip(edges[:-1], edges[1:]):
        part = mask[:, a:b]
        rows, cols = np.nonzero(part.any(axis=1))[0], np.nonzero(part.any(axis=0))[0]
        if len(rows) and len(cols):
            pieces.append((a + int(cols[0]), int(rows[0]), a + int(cols[-1]) + 1, int(rows[-1]) + 1))
    return pieces


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of (x0, y0, x1, y1) boxes."""
    inter = _intersection(a, b)
    area_a, area_b = _area(a), _area(b)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-6)


def _area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def box_intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection areas (len(a), len(b)) of (x0, y0, x1, y1) boxes."""
    return _intersection(a, b)


def _intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    return np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)


def suppress_overlaps(boxes: np.ndarray, scores: np.ndarray, iou: float, containment: float) -> np.ndarray:
    """Indices kept by greedy NMS (best score first); a box also goes when ``containment`` of the
    smaller of it and a kept box lies inside the other."""
    order = np.argsort(-scores, kind="stable")
    ordered = boxes[order]
    overlap = box_iou(ordered, ordered)
    inter = _intersection(ordered, ordered)
    areas = _area(ordered)
    contained = inter / np.maximum(np.minimum(areas[:, None], areas[None, :]), 1e-6)
    kept: list[int] = []
    for i in range(len(ordered)):
        if all(overlap[i, j] <= iou and contained[i, j] <= containment for j in kept):
            kept.append(i)
    return order[kept]


def refine_with_blobs(
    hog: tuple[np.ndarray, np.ndarray], blobs: tuple[np.ndarray, np.ndarray], min_iou: float
) -> tuple[np.ndarray, np.ndarray]:
    """HOG boxes moved onto the motion blob they agree with (IoU >= ``min_iou``), keeping HOG's score.

    HOG's box is a window at a quantised scale and stride with a margin around the
    body; a blob that agrees with it is the moving body's own extent, the tighter box.
    """
    (boxes, scores), (blob_boxes, _) = hog, blobs
    if not len(boxes) or not len(blob_boxes):
        return hog
    overlap = box_iou(boxes, blob_boxes)
    best = overlap.argmax(axis=1)
    agree = overlap[np.arange(len(boxes)), best] >= min_iou
    refined = boxes.copy()
    refined[agree] = blob_boxes[best[agree]]
    return refined, scores


@dataclass(frozen=True)
class FrameDetections:
    """One frame's people after NMS: boxes (N, 4) in video pixels, scores (N,), and which came from HOG;
    ``foreground`` (M, 4) are the frame's motion blobs (:class:`MotionFrame`), which tracking uses to keep
    a person it expects inside a blob that gave no person box."""

    boxes: np.ndarray
    scores: np.ndarray
    from_hog: np.ndarray
    foreground: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))


def detect_frame_boxes(
    images: list[np.ndarray], scale: float, frame_shape: tuple[int, int], config: DetectionConfig
) -> list[FrameDetections]:
    """The people in each detection-resolution image (boxes clipped to the frame, at least ``min_box_height``)."""
    height, width = frame_shape
    per_frame_motion = motion_boxes(images, scale, config) if config.background_subtraction else None
    hog = people_hog() if config.use_hog else None
    results = []
    for k, image in enumerate(images):
        hog_part = hog_boxes(hog, image, scale, config) if hog is not None else _EMPTY
        motion = per_frame_motion[k] if per_frame_motion is not None else _NO_MOTION
        motion_part = (motion.boxes, motion.scores)
        if config.refine_with_motion:
            hog_part = refine_with_blobs(hog_part, motion_part, config.refine_iou)
        boxes = np.concatenate([hog_part[0], motion_part[0]])
        scores = np.concatenate([hog_part[1], motion_part[1]])
        from_hog = np.arange(len(boxes)) < len(hog_part[0])
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
        keep = np.nonzero((boxes[:, 3] - boxes[:, 1]) >= config.min_box_height)[0]
        if len(keep):
            keep = keep[suppress_overlaps(boxes[keep], scores[keep], config.nms_iou, config.nms_containment)]
        results.append(FrameDetections(boxes[keep], scores[keep], from_hog[keep], motion.blobs))
    return results
