"""Pictures for the explorer: tracklet strips, grids of them, colour bars, explanation-map overlays.

Pure functions on numpy arrays (uint8 RGB, HWC) with PIL for text and resizing;
no UI code and no torch.
The retrieval-list look follows fast-reid's ``visualize_result.py`` (anchors.md
§6): a query strip in blue, gallery strips framed green (same identity) or red
(wrong identity), captions under each strip (rank, similarity, camera).
Explanation maps (:mod:`lsmrl.analysis.attention`) are drawn over their frames
with a jet-like colormap (:func:`overlay`) whose scale :func:`colour_bar` shows.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BORDER = 3
BORDER_COLOURS: dict[str | None, tuple[int, int, int]] = {
    "match": (0x2E, 0x7D, 0x32),  # green #2e7d32
    "wrong": (0xC6, 0x28, 0x28),  # red #c62828
    "query": (0x15, 0x65, 0xC0),  # blue #1565c0
    None: (255, 255, 255),  # no verdict: a white border keeps every strip the same size
}
BACKGROUND = (255, 255, 255)
TEXT_COLOUR = (0x21, 0x21, 0x21)
LINE_PADDING = 2
#: Caption text size in pixels: readable (at least 11 px) where the app shows a strip at about its own size.
LABEL_PX = 15


@lru_cache(maxsize=4)
def _font(scale: int = 1) -> ImageFont.ImageFont:
    try:  # Pillow >= 10.1: a scalable font that ships inside Pillow
        return ImageFont.load_default(size=LABEL_PX * int(scale))
    except (TypeError, OSError):  # no FreeType: the 11-px bitmap font
        return ImageFont.load_default()


def line_height(scale: int = 1) -> int:
    """Pixel height of one caption line (:data:`LABEL_PX` text times ``scale``, plus padding)."""
    left, top, right, bottom = _font(scale).getbbox("Ag|")
    return int(bottom) + 2 * LINE_PADDING


def _text_width(text: str, scale: int = 1) -> int:
    return int(_font(scale).getbbox(text)[2]) if text else 0


def _fit(text: str, width: int, scale: int = 1) -> str:
    """Cut ``text`` so that it fits ``width`` pixels (ending in ".." when cut)."""
    if _text_width(text, scale) <= width:
        return text
    while text and _text_width(text + "..", scale) > width:
        text = text[:-1]
    return text + ".."


def _as_frames(frames_uint8) -> np.ndarray:
    frames = np.asarray(frames_uint8)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    return frames


def _as_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"an image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    return image


def tracklet_strip(frames_uint8, border: str | None = None, label_lines: Sequence[str] = (),
                   scale: int = 1, text_scale: int = 1) -> np.ndarray:
    """Frames side by side inside a 3-px border, caption lines underneath: (H', W', 3) uint8.

    ``border``: None (white), ``"match"`` (green #2e7d32), ``"wrong"`` (red
    #c62828) or ``"query"`` (blue #1565c0). ``scale``: integer nearest-neighbour
    enlargement of the frames; ``text_scale`` the same for the caption text (give
    both when the strip is shown smaller than its pixels, so that the caption stays
    as readable as the frames). Size: ``W' = T*W*scale + 6``,
    ``H' = H*scale + 6 + len(label_lines) * line_height(text_scale)``.
    """
    if border not in BORDER_COLOURS:
        raise ValueError(f"border must be one of None, 'match', 'wrong', 'query', got {border!r}")
    scale = int(scale)
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    frames = _as_frames(frames_uint8)
    row = np.concatenate(list(frames), axis=1)
    if scale > 1:
        row = row.repeat(scale, axis=0).repeat(scale, axis=1)
    height, width = row.shape[:2]
    lines = [str(line) for line in label_lines]
    text_scale = max(1, int(text_scale))
    text_height = len(lines) * line_height(text_scale)
    canvas = np.empty((height + 2 * BORDER + text_height, width + 2 * BORDER, 3), np.uint8)
    canvas[:] = BACKGROUND
    canvas[: height + 2 * BORDER] = BORDER_COLOURS[border]
    canvas[BORDER : BORDER + height, BORDER : BORDER + width] = row
    if lines:
        image = Image.fromarray(canvas)
        draw = ImageDraw.Draw(image)
        top = height + 2 * BORDER
        for number, line in enumerate(lines):
            draw.text((BORDER, top + number * line_height(text_scale) + LINE_PADDING),
                      _fit(line, width, text_scale), fill=TEXT_COLOUR, font=_font(text_scale))
        canvas = np.asarray(image, dtype=np.uint8).copy()
    return canvas


def colour_bar(colours, width: int = 420, height: int = 16, left: str = "0", right: str = "1",
               title: str = "") -> np.ndarray:
    """A horizontal colour bar with its end labels under it: (H, W, 3) uint8.

    ``colours(values in [0, 1]) -> float RGB in [0, 1]`` is the colormap the maps
    are drawn with (e.g. :func:`lsmrl.analysis.attention.jet_colormap`), so the
    bar is exactly the overlay's scale. ``title`` goes above the bar.
    """
    ramp = np.asarray(colours(np.linspace(0.0, 1.0, width, dtype=np.float32)), dtype=np.float32)
    ramp = np.clip(np.rint(ramp * 255.0), 0, 255).astype(np.uint8)
    bar = np.repeat(ramp[None], height, axis=0)
    lines = 2 if title else 1
    canvas = np.empty((height + lines * line_height() + 2, width + 2 * BORDER, 3), np.uint8)
    canvas[:] = BACKGROUND
    top = line_height() if title else 0
    canvas[top: top + height, BORDER: BORDER + width] = bar
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    if title:
        draw.text((BORDER, LINE_PADDING), _fit(title, width), fill=TEXT_COLOUR, font=_font())
    y = top + height + LINE_PADDING
    draw.text((BORDER, y), left, fill=TEXT_COLOUR, font=_font())
    draw.text((BORDER + width - _text_width(right), y), right, fill=TEXT_COLOUR, font=_font())
    return np.asarray(image, dtype=np.uint8).copy()


def _arrange(images: Sequence[np.ndarray], gap: int, background, axis: int) -> np.ndarray:
    """Images along ``axis`` (1: left to right, top-aligned; 0: top to bottom, left-aligned), ``gap`` apart."""
    images = [_as_image(image) for image in images]
    if not images:
        raise ValueError("no images to arrange")
    across = 1 - axis
    size = [0, 0]
    size[axis] = sum(image.shape[axis] for image in images) + gap * (len(images) - 1)
    size[across] = max(image.shape[across] for image in images)
    canvas = np.empty((size[0], size[1], 3), np.uint8)
    canvas[:] = background
    offset = 0
    for image in images:
        if axis == 1:
            canvas[: image.shape[0], offset : offset + image.shape[1]] = image
        else:
            canvas[offset : offset + image.shape[0], : image.shape[1]] = image
        offset += image.shape[axis] + gap
    return canvas


def side_by_side(images: Sequence[np.ndarray], gap: int = 8, background=BACKGROUND) -> np.ndarray:
    """Images left to right, top-aligned, ``gap`` pixels apart, on a white canvas."""
    return _arrange(images, gap, background, axis=1)


def stacked(images: Sequence[np.ndarray], gap: int = 8, background=BACKGROUND) -> np.ndarray:
    """Images top to bottom, left-aligned, ``gap`` pixels apart, on a white canvas."""
    return _arrange(images, gap, background, axis=0)


def ranked_strip_grid(strips: Sequence[np.ndarray], columns: int = 1, gap: int = 8) -> np.ndarray:
    """Strips (e.g. query first, then the ranked gallery) in a grid of ``columns``, filled row by row."""
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    strips = list(strips)
    if not strips:
        raise ValueError("no strips to arrange")
    rows = [side_by_side(strips[i : i + columns], gap) for i in range(0, len(strips), columns)]
    return stacked(rows, gap)


def contribution_bars(frame_contribution, height: int = 40, bar_width: int = 16, gap: int = 2,
                      colour: tuple[int, int, int] = (0x15, 0x65, 0xC0)) -> np.ndarray:
    """A small bar chart image (height, T*(bar_width+gap)-gap, 3) of per-frame shares; the largest bar is full height."""
    values = np.nan_to_num(np.clip(np.asarray(frame_contribution, dtype=np.float64).ravel(), 0.0, None))
    if values.size == 0:
        raise ValueError("no frame contributions")
    peak = values.max()
    fractions = values / peak if peak > 0 else np.zeros_like(values)
    width = values.size * (bar_width + gap) - gap
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = BACKGROUND
    canvas[-1, :] = (0xBD, 0xBD, 0xBD)  # baseline
    for index, fraction in enumerate(fractions):
        bar = int(round(fraction * (height - 1)))
        if bar:
            x = index * (bar_width + gap)
            canvas[height - 1 - bar : height - 1, x : x + bar_width] = colour
    return canvas


def resize_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(T, h, w) float maps resized bilinearly to ``size`` (H, W), frame by frame."""
    maps = np.asarray(maps, dtype=np.float32)
    if maps.shape[-2:] == tuple(size):
        return maps
    height, width = int(size[0]), int(size[1])
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(m), mode="F").resize((width, height),
                                                                                          Image.BILINEAR))
                     for m in maps])


def jet_colormap(values: np.ndarray) -> np.ndarray:
    """A jet-like colormap (blue -> cyan -> yellow -> red) in numpy: values in [0, 1] -> float RGB in [0, 1]."""
    x = np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0)[..., None]
    centres = np.array([0.75, 0.5, 0.25], dtype=np.float32)  # red, green, blue peaks
    return np.clip(1.5 - np.abs(4.0 * (x - centres)), 0.0, 1.0)


def overlay(frames_uint8: np.ndarray, maps: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend jet-coloured maps over frames: (T, H, W, 3) uint8 + (T, H, W) in [0, 1] -> (T, H, W, 3) uint8.

    Single frames (H, W, 3) + (H, W) work too. Maps of another size are resized bilinearly.
    """
    frames = np.asarray(frames_uint8)
    maps = np.asarray(maps, dtype=np.float32)
    single = frames.ndim == 3
    if single:
        frames, maps = frames[None], maps[None] if maps.ndim == 2 else maps
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if maps.ndim != 3 or maps.shape[0] != frames.shape[0]:
        raise ValueError(f"maps must be (T, h, w) with T = {frames.shape[0]}, got {maps.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    maps = np.nan_to_num(resize_maps(maps, frames.shape[1:3]))
    colours = jet_colormap(maps) * 255.0
    blended = (1.0 - alpha) * frames.astype(np.float32) + alpha * colours
    out = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out[0] if single else out
