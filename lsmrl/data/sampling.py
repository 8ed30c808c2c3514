"""Frame transforms and tracklet loading (which frames: :mod:`lsmrl.data.frame_indices`).

Two things live here:

- :func:`build_transform`: a :class:`FrameTransform` that turns a list of frames
  (PIL images or HWC uint8 arrays) into a ``(T, 3, H, W)`` float tensor normalised
  with CLIP's mean/std. Training augmentations (flip, pad-and-crop, optional
  random erasing) are drawn **once per tracklet** from a passed
  ``torch.Generator``, so all frames of a tracklet get the same flip/crop/erase
  (BUPTCampus flips the whole tracklet for the same reason).

- :func:`load_tracklet`: the sampled frames of a :class:`~lsmrl.data.tracklet.Tracklet`
  as a ``(T, H, W, 3)`` uint8 array, read with PIL for frame folders and through
  :mod:`lsmrl.data.video` (a child process) for video files.

torch is imported when a transform is built, not at import: the app's upload
checks and the data readers use this module without loading torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from lsmrl.data.frame_indices import sample_frame_indices
from lsmrl.data.video import VideoLimits, read_video_frames
from lsmrl.errors import VideoError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from lsmrl.data.tracklet import Tracklet

#: CLIP's normalisation (OpenAI CLIP and open_clip's OPENAI_DATASET_MEAN/STD).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


# --------------------------------------------------------------------------- transforms
def _to_uint8_hwc(frame: Any) -> np.ndarray:
    """A PIL image or an array (HW, HW1, HW3, HW4) as an HWC uint8 RGB array."""
    if hasattr(frame, "convert") and hasattr(frame, "size"):  # PIL image
        return np.asarray(frame.convert("RGB"), dtype=np.uint8)
    array = np.asarray(frame)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"a frame must be HxW, HxWx1, HxWx3 or HxWx4, got shape {array.shape}")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 4:
        array = array[:, :, :3]
    if array.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (0..255), got dtype {array.dtype}")
    return array


@dataclass
class FrameTransform:
    """Frames -> ``(T, 3, H, W)`` float32 tensor, resized (bicubic, antialiased) and normalised.

    With ``train=True``: a horizontal flip with probability ``flip_prob``, zero
    padding by ``padding`` pixels followed by a random ``H x W`` crop, and
    (``erase_prob > 0``) random erasing of one rectangle filled with 0 in the
    normalised space (= the mean colour), each drawn once per call and applied
    to every frame. Call as ``transform(frames, generator=g)`` with a
    ``torch.Generator`` for reproducible augmentations.
    """

    image_size: tuple[int, int] = (288, 144)
    train: bool = False
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    flip_prob: float = 0.5
    padding: int = 10
    erase_prob: float = 0.0
    erase_area: tuple[float, float] = (0.02, 0.4)
    erase_aspect: tuple[float, float] = (0.3, 3.3)

    def __post_init__(self) -> None:
        height, width = (int(v) for v in self.image_size)
        if height < 1 or width < 1:
            raise ValueError(f"image_size must be positive (H, W), got {self.image_size}")
        self.image_size = (height, width)

    def __call__(self, frames: Sequence[Any], generator: "torch.Generator | None" = None) -> "torch.Tensor":
        import torch
        import torch.nn.functional as F

        if len(frames) == 0:
            raise ValueError("no frames to transform")
        height, width = self.image_size
        arrays = [_to_uint8_hwc(f) for f in frames]
        # frames of one tracklet may differ in size: resize each group of equal size at once
        groups: dict[tuple[int, int], list[int]] = {}
        for index, array in enumerate(arrays):
            groups.setdefault(array.shape[:2], []).append(index)
        video = torch.empty((len(arrays), 3, height, width), dtype=torch.float32)
        for shape, indices in groups.items():
            x = torch.from_numpy(np.stack([arrays[i] for i in indices])).permute(0, 3, 1, 2).float() / 255.0
            if shape != (height, width):
                x = F.interpolate(x, size=(height, width), mode="bicubic", align_corners=False, antialias=True)
            video[indices] = x
        video.clamp_(0.0, 1.0)  # (T, 3, H, W) in [0, 1]; bicubic may overshoot

        if self.train:
            def uniform() -> float:
                return float(torch.rand((), generator=generator))

            if uniform() < self.flip_prob:
                video = video.flip(-1)
            if self.padding > 0:
                pad = int(self.padding)
                video = F.pad(video, (pad, pad, pad, pad), value=0.0)
                top = int(torch.randint(0, 2 * pad + 1, (), generator=generator))
                left = int(torch.randint(0, 2 * pad + 1, (), generator=generator))
                video = video[:, :, top : top + height, left : left + width]

        mean = torch.tensor(self.mean, dtype=video.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=video.dtype).view(1, 3, 1, 1)
        video = (video - mean) / std

        if self.train and self.erase_prob > 0 and uniform() < self.erase_prob:
            area = height * width
            for _ in range(10):  # as torchvision's RandomErasing: up to 10 tries
                target = area * (self.erase_area[0] + (self.erase_area[1] - self.erase_area[0]) * uniform())
                log_lo, log_hi = math.log(self.erase_aspect[0]), math.log(self.erase_aspect[1])
                aspect = math.exp(log_lo + (log_hi - log_lo) * uniform())
                eh, ew = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
                if 0 < eh < height and 0 < ew < width:
                    top = int(torch.randint(0, height - eh + 1, (), generator=generator))
                    left = int(torch.randint(0, width - ew + 1, (), generator=generator))
                    video[:, :, top : top + eh, left : left + ew] = 0.0
                    break
        return video.contiguous()


def build_transform(
    image_size: tuple[int, int] = (288, 144),
    train: bool = False,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
    *,
    flip_prob: float = 0.5,
    padding: int = 10,
    erase_prob: float = 0.0,
) -> FrameTransform:
    """A :class:`FrameTransform` (test: resize + normalise; train: plus tracklet-consistent flip/crop/erase)."""
    return FrameTransform(
        image_size=tuple(image_size),
        train=train,
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
        flip_prob=flip_prob,
        padding=padding,
        erase_prob=erase_prob,
    )


# --------------------------------------------------------------------------- loading
def _read_image(path: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError:
        raise VideoError(f"frame file not found: {path}") from None
    except (UnidentifiedImageError, OSError) as error:
        raise VideoError(f"frame file {path} could not be read as an image ({error})") from None


def load_tracklet(
    tracklet: "Tracklet",
    num_samples: int,
    mode: str = "evenly",
    rng: np.random.Generator | None = None,
    *,
    size: tuple[int, int] | None = None,
    limits: VideoLimits | None = None,
) -> np.ndarray:
    """The sampled frames of ``tracklet`` as a ``(T, H, W, 3)`` uint8 RGB array.

    Frame folders are read with PIL (converted to RGB); video tracklets are
    decoded in a child process by :func:`lsmrl.data.video.read_video_frames`
    (with ``limits``). Frames of different sizes are resized (bilinear) to
    ``size`` (H, W) if given, else to the first sampled frame's size.
    Unreadable input raises :class:`~lsmrl.errors.VideoError`.
    """
    if tracklet.frames:
        indices = sample_frame_indices(len(tracklet.frames), num_samples, mode, rng)
        cache: dict[int, np.ndarray] = {}
        frames = []
        for index in indices.tolist():
            if index not in cache:
                cache[index] = _read_image(tracklet.frames[index])
            frames.append(cache[index])
    else:
        video = read_video_frames(tracklet.video, num_samples, mode, limits=limits or VideoLimits(), rng=rng)
        frames = list(video)

    target = (int(size[0]), int(size[1])) if size is not None else frames[0].shape[:2]
    if any(f.shape[:2] != target for f in frames):
        from PIL import Image

        frames = [
            f if f.shape[:2] == target
            else np.asarray(Image.fromarray(f).resize((target[1], target[0]), Image.BILINEAR))
            for f in frames
        ]
    return np.stack(frames, axis=0)
