"""From tracks to pixels: the model's person crops, thumbnails and the annotated preview frame."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from lsmrl.data.people.records import Box, PersonTrack
from lsmrl.errors import VideoError

# Tableau-10 (RGB): distinct at a glance, and the same id keeps its colour across previews.
_PALETTE = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)  # fmt: skip
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def track_colour(track_id: int) -> tuple[int, int, int]:
    """The RGB colour a track is drawn in."""
    return _PALETTE[(track_id - 1) % len(_PALETTE)]


def padded_box(box: Sequence[float], margin: float, aspect_hw: float) -> tuple[int, int, int, int]:
    """``box`` grown by ``margin`` of its size on every side, then widened or heightened (centred) to ``aspect_hw``."""
    x0, y0, x1, y1 = (float(v) for v in box)
    width, height = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    width, height = width * (1 + 2 * margin), height * (1 + 2 * margin)
    if height / width < aspect_hw:
        height = width * aspect_hw
    else:
        width = height / aspect_hw
    left, top = int(round(cx - width / 2)), int(round(cy - height / 2))
    return left, top, left + max(1, int(round(width))), top + max(1, int(round(height)))


def crop_box(frame: np.ndarray, box: Sequence[float], size: tuple[int, int] = (128, 64), margin: float = 0.1) -> np.ndarray:
    """One (H, W, 3) crop of ``box`` with a margin, padded to the aspect of ``size`` and resized to it.

    Parts of the padded box outside the frame repeat the frame's border pixels
    (no black bars, which the model never saw in training crops).
    """
    out_h, out_w = size
    frame_h, frame_w = frame.shape[:2]
    x0, y0, x1, y1 = padded_box(box, margin, out_h / out_w)
    # Keep at least one pixel of the frame inside so there is something to replicate.
    cx0, cy0 = min(max(x0, 0), frame_w - 1), min(max(y0, 0), frame_h - 1)
    cx1, cy1 = max(min(x1, frame_w), cx0 + 1), max(min(y1, frame_h), cy0 + 1)
    region = frame[cy0:cy1, cx0:cx1]
    region = cv2.copyMakeBorder(
        region, cy0 - y0 if y0 < cy0 else 0, max(y1 - cy1, 0), cx0 - x0 if x0 < cx0 else 0, max(x1 - cx1, 0),
        cv2.BORDER_REPLICATE,
    )
    shrinking = region.shape[0] > out_h
    return cv2.resize(region, (out_w, out_h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def crop_track(
    frames: np.ndarray, track: PersonTrack, size: tuple[int, int] = (128, 64), margin: float = 0.1
) -> np.ndarray:
    """The track's person crops, (track.length, H, W, 3) uint8, in frame order.

    ``frames`` are the frames the track was detected in; ``size`` is the model's
    input (H, W) and sets the aspect every box is padded to before resizing.
    """
    if track.length == 0:
        raise VideoError(f"person {track.id} has no frames to crop")
    if track.frame_indices[-1] >= len(frames):
        raise VideoError(
            f"person {track.id} is tracked up to frame {track.frame_indices[-1]} but only {len(frames)} frames "
            "were given: pass the same frames that detect_people saw"
        )
    crops = [crop_box(frames[f], box, size, margin) for f, box in zip(track.frame_indices, track.boxes)]
    return np.stack(crops).astype(np.uint8)


def preview_frame_index(tracks: Sequence[PersonTrack], num_frames: int) -> int:
    """The frame where the most tracks are visible (ties: the one nearest the middle of the video)."""
    if num_frames < 1:
        raise VideoError("a preview needs at least one frame")
    visible = np.zeros(num_frames, int)
    for track in tracks:
        visible[track.frame_indices[0] : track.frame_indices[-1] + 1] += 1
    middle_distance = np.abs(np.arange(num_frames) - (num_frames - 1) / 2)
    return int(np.lexsort((middle_distance, -visible))[0])


def _dashed_rectangle(image: np.ndarray, p0, p1, colour, thickness: int, dash: int) -> None:
    (x0, y0), (x1, y1) = p0, p1
    for a, b, horizontal, fixed in ((x0, x1, True, y0), (x0, x1, True, y1), (y0, y1, False, x0), (y0, y1, False, x1)):
        for start in range(a, b, 2 * dash):
            end = min(start + dash, b)
            q0, q1 = ((start, fixed), (end, fixed)) if horizontal else ((fixed, start), (fixed, end))
            cv2.line(image, q0, q1, colour, thickness)


def preview_image(
    frame: np.ndarray,
    tracks: Sequence[PersonTrack],
    frame_index: int | None = None,
    min_height: int = 360,
    text_height: int = 12,
) -> np.ndarray:
    """``frame`` with every track's box and a numbered marker (the track's id) in the track's colour.

    With ``frame_index`` (the index of ``frame`` in the video) a track that does
    not cover that frame is drawn dashed at its nearest box; without it, every
    track is drawn at the middle of its run. Frames lower than ``min_height`` are
    upscaled first, and marker text is at least ``text_height`` px high (capitals),
    so markers stay readable on small videos. Markers never overlap each other
    (:func:`place_labels`): where people stand close, a marker moves to another
    corner of its box or is stacked below the one in the way. Returns a new uint8
    (H', W', 3) image; the app lists the tracks (thumbnail, frames, score) beside it.
    """
    scale = max(1.0, min_height / frame.shape[0])
    image = np.ascontiguousarray(frame if scale == 1.0 else cv2.resize(frame, None, fx=scale, fy=scale), np.uint8).copy()
    height = image.shape[0]
    text_px = max(text_height, int(round(0.035 * height)))
    (_, cap_height), _ = cv2.getTextSize("0", _FONT, 1.0, 1)
    font_scale = text_px / cap_height
    thickness = max(2, height // 240)
    text_thickness = max(2, int(round(text_px / 8)))  # a marker is one or two digits: bold enough to read
    pad = max(2, text_px // 4)
    drawn = []
    for track in tracks:
        if frame_index is None:
            box, present = track.boxes[track.length // 2], True
        else:
            box = track.box_at(frame_index)
            present = box is not None
            if not present:
                box = track.boxes[0] if frame_index < track.frame_indices[0] else track.boxes[-1]
        x0, y0, x1, y1 = (int(round(v * scale)) for v in box)
        colour = track_colour(track.id)
        if present:
            cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), colour, thickness)
        else:
            _dashed_rectangle(image, (x0, y0), (x1 - 1, y1 - 1), colour, max(1, thickness - 1), dash=3 * thickness)
        (width, cap), baseline = cv2.getTextSize(str(track.id), _FONT, font_scale, text_thickness)
        drawn.append(((x0, y0, x1, y1), (width + 2 * pad, cap + baseline + 2 * pad), str(track.id), colour, cap))
    spots = place_labels([box for box, *_ in drawn], [size for _, size, *_ in drawn], image.shape[:2])
    for (x, y), (_, (w, h), text, colour, cap) in zip(spots, drawn):
        cv2.rectangle(image, (x, y), (x + w, y + h), colour, cv2.FILLED)
        luminance = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
        ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
        cv2.putText(image, text, (x + pad, y + pad + cap), _FONT, font_scale, ink, text_thickness, cv2.LINE_AA)
    return image


def place_labels(boxes: Sequence[tuple[int, int, int, int]], sizes: Sequence[tuple[int, int]],
                 image_size: tuple[int, int]) -> list[tuple[int, int]]:
    """Top-left corners of one label per box (``sizes``: (width, height) each) such that no two labels overlap
    and each stays inside the image (``image_size``: height, width).

    Each label tries, in order, the spots just above its box's left and right corners, then just inside the
    box's top and bottom corners; when all of them touch a label already placed, it goes just below the
    lowest label in its way (and, at the image's bottom edge, into the first free row from the top)."""
    height, width = image_size
    placed: list[tuple[int, int, int, int]] = []

    def clamp(x: int, y: int, w: int, h: int) -> tuple[int, int]:
        return max(0, min(x, width - w)), max(0, min(y, height - h))

    def free(x: int, y: int, w: int, h: int) -> bool:
        return all(x + w <= a or a + c <= x or y + h <= b or b + d <= y for a, b, c, d in placed)

    out = []
    for (x0, y0, x1, y1), (w, h) in zip(boxes, sizes):
        candidates = [(x0, y0 - h), (x1 - w, y0 - h), (x0, y0), (x1 - w, y0), (x0, y1 - h), (x1 - w, y1 - h)]
        spot = next((s for s in (clamp(*c, w, h) for c in candidates) if free(*s, w, h)), None)
        if spot is None:
            x, y = clamp(x0, y0, w, h)
            while not free(x, y, w, h) and y + h < height:
                y = max(b + d for a, b, c, d in placed if not (x + w <= a or a + c <= x or y + h <= b or b + d <= y))
            if y + h > height or not free(x, min(y, height - h), w, h):
                y = next((row for row in range(0, height - h + 1, max(1, h // 2)) if free(x, row, w, h)),
                         height - h)
            spot = (x, min(y, height - h))
        placed.append((*spot, w, h))
        out.append(spot)
    return out


def thumbnail_of(frames: np.ndarray, track_frames: Sequence[int], boxes: Sequence[Box], frame: int, height: int = 128) -> np.ndarray:
    """The crop (2:1, ``height`` px high) of ``frame``'s box: what a person list shows."""
    box = boxes[list(track_frames).index(frame)]
    return crop_box(frames[frame], box, (height, height // 2), margin=0.1)
