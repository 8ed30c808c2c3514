"""The two SynthVVI renderers: visible (RGB) and infrared (thermal grey).

Both take the same inputs: an identity, a camera with its background, a
:class:`~lsmrl.data.synth.figure.TrackletPlan` and a random generator (used for
sensor noise only). Both rasterise the same label maps, so the person's geometry
(build, limbs, hair, hat, bag, gait) is identical in the two modalities.

* **Visible**: label -> colour (garment palette, pattern colour, skin tone, hair
  colour), far-side limbs darker, composited over the camera's RGB panorama,
  then camera lighting (gain, white balance, top-to-bottom falloff), a slight
  Gaussian blur and sensor noise.
* **Infrared**: label -> temperature, composited over the camera's temperature
  panorama, then a linear grey mapping (``level + contrast * (T - ambient)``,
  a low-contrast white-hot image), a stronger blur, fixed-pattern column noise
  and sensor noise; the grey image is replicated to 3 channels, like real IR
  frames. **No colour attribute is read**: skin is hottest (its temperature is
  an identity attribute), a garment's temperature falls with its thickness,
  hair and hats insulate, shoes, bags and backpacks sit near ambient.
  **Patterns in IR [our choice]**: stripe and check cells are woven thicker and
  show as a faint 0.6 degree cooler texture; a printed logo is 1.2 degrees
  cooler than its garment. So pattern *geometry* is faintly visible, pattern
  and garment *colours* are not.

Frames are rendered at ``supersample`` x resolution and box-downsampled
(anti-aliasing). Output frames are ``uint8`` arrays of shape (H, W, 3).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from lsmrl.data.synth.cameras import CameraBackground, CameraSpec
from lsmrl.data.synth.figure import (
    BACKPACK,
    BAG,
    FAR,
    HAIR,
    HAT,
    LOGO,
    LOWER,
    NUM_LABELS,
    OCCLUDER,
    SHOE,
    SKIN,
    UPPER,
    TrackletPlan,
    rasterize,
)
from lsmrl.data.synth.identities import HAIR_COLOURS, PALETTE, SKIN_TONES, IdentityAttributes

FAR_SHADE = 0.78  # visible brightness of far-side limbs
FAR_COOLING = 0.6  # infrared: far-side limbs are seen at a grazing angle, slightly cooler
PATTERN_COOLING = 0.6  # degrees: woven stripe/check cells
LOGO_COOLING = 1.2  # degrees: printed logo
PATTERN_SHIFT = 5  # look-up index = label | pattern << 5 (labels < 32 = NUM_LABELS)


def _downsample(image: np.ndarray, s: int) -> np.ndarray:
    """Box-filter an (H*s, W*s[, C]) float32 image down to (H, W[, C])."""
    if s == 1:
        return image
    total = image[0::s, 0::s].copy()
    for dy in range(s):
        for dx in range(s):
            if dy or dx:
                total += image[dy::s, dx::s]
    return total * np.float32(1.0 / (s * s))


def _blur(image: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur of a float image in 0..255 (PIL works on uint8, so round first)."""
    pil = Image.fromarray(np.clip(np.rint(image), 0, 255).astype(np.uint8))
    return np.asarray(pil.filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32)


def _crop(panorama: np.ndarray, pan: int, width: int, s: int) -> np.ndarray:
    x0 = max(0, min(pan * s, panorama.shape[1] - width * s))
    return panorama[:, x0 : x0 + width * s]


def _label_frames(attrs: IdentityAttributes, plan: TrackletPlan, height: int, width: int, s: int):
    for pose in plan.poses:
        yield pose, *rasterize(attrs, pose, plan.direction, plan.occluder, height, width, s)


def visible_lut(attrs: IdentityAttributes, camera: CameraSpec) -> tuple[np.ndarray, np.ndarray]:
    """Colour of every label and the pattern colour of every label (only UPPER uses it)."""
    lut = np.zeros((NUM_LABELS, 3), np.float32)
    acc = attrs.accessories
    shoe_rgb = {"black": (30, 28, 28), "white": (230, 230, 228), "brown": (110, 70, 40)}[attrs.shoes.colour]
    base = {
        SKIN: SKIN_TONES[attrs.body.skin_tone],
        HAIR: HAIR_COLOURS[attrs.hair.colour],
        UPPER: PALETTE[attrs.upper.colour],
        LOWER: PALETTE[attrs.lower.colour],
        SHOE: shoe_rgb,
        BACKPACK: PALETTE[acc.backpack_colour],
        BAG: PALETTE[acc.bag_colour],
        HAT: PALETTE[acc.hat_colour],
        LOGO: PALETTE[attrs.upper.pattern_colour],
        OCCLUDER: camera.visible.occluder_rgb,
    }
    for label, rgb in base.items():
        lut[label] = rgb
        lut[label | FAR] = np.asarray(rgb, np.float32) * FAR_SHADE
    pattern = lut.copy()
    pattern[UPPER] = PALETTE[attrs.upper.pattern_colour]
    pattern[UPPER | FAR] = np.asarray(PALETTE[attrs.upper.pattern_colour], np.float32) * FAR_SHADE
    return lut, pattern


def infrared_lut(attrs: IdentityAttributes, camera: CameraSpec) -> np.ndarray:
    """Temperature (degrees Celsius) of every label. Reads thermal attributes only, never a colour."""
    thermal = attrs.thermal
    ambient = camera.infrared.ambient
    skin = thermal.skin_temperature
    upper = skin - 2.5 - 6.5 * thermal.upper_thickness
    temperatures = {
        SKIN: skin,
        HAIR: skin - 5.5,
        UPPER: upper,
        LOWER: skin - 2.5 - 6.5 * thermal.lower_thickness,
        SHOE: ambient + 5.0,
        BACKPACK: ambient + 1.5,
        BAG: ambient + 1.0,
        HAT: skin - 8.0,
        LOGO: upper - LOGO_COOLING,
        OCCLUDER: camera.infrared.occluder_temperature,
    }
    lut = np.zeros(NUM_LABELS, np.float32)
    for label, value in temperatures.items():
        lut[label] = value
        lut[label | FAR] = value - (FAR_COOLING if label != OCCLUDER else 0.0)
    return lut


def render_visible(
    attrs: IdentityAttributes,
    camera: CameraSpec,
    background: CameraBackground,
    plan: TrackletPlan,
    rng: np.random.Generator,
    height: int,
    width: int,
    supersample: int = 2,
) -> list[np.ndarray]:
    """RGB frames (uint8, H x W x 3) of one tracklet."""
    settings = camera.visible
    lut, pattern_lut = visible_lut(attrs, camera)
    rows = np.arange(height, dtype=np.float32)[:, None, None] / height
    light = settings.gain * plan.exposure * (1.0 + settings.top_light * (0.5 - rows))
    light = (light * np.asarray(settings.tint, np.float32)[None, None, :]).astype(np.float32)
    both = np.concatenate([lut, pattern_lut]).astype(np.float32)  # index = label + NUM_LABELS * pattern
    frames = []
    for pose, labels, pattern in _label_frames(attrs, plan, height, width, supersample):
        image = np.take(both, labels | (pattern.view(np.uint8) << PATTERN_SHIFT), axis=0)
        bg = _crop(background.visible, pose.pan, width, supersample)
        np.copyto(image, bg, where=(labels == 0)[..., None])
        image = _downsample(image, supersample) * light
        image = _blur(image, settings.blur)
        image += np.float32(settings.noise) * rng.standard_normal(size=image.shape, dtype=np.float32)
        frames.append(np.clip(np.rint(image), 0, 255).astype(np.uint8))
    return frames


def render_infrared(
    attrs: IdentityAttributes,
    camera: CameraSpec,
    background: CameraBackground,
    plan: TrackletPlan,
    rng: np.random.Generator,
    height: int,
    width: int,
    supersample: int = 2,
) -> list[np.ndarray]:
    """Thermal frames (uint8, H x W x 3 with R = G = B) of one tracklet."""
    settings = camera.infrared
    lut = infrared_lut(attrs, camera)
    gain = settings.contrast * plan.exposure
    frames = []
    both = np.concatenate([lut, lut - PATTERN_COOLING]).astype(np.float32)  # index = label + NUM_LABELS * pattern
    for pose, labels, pattern in _label_frames(attrs, plan, height, width, supersample):
        temperature = np.take(both, labels | (pattern.view(np.uint8) << PATTERN_SHIFT))
        bg = _crop(background.temperature, pose.pan, width, supersample)
        np.copyto(temperature, bg, where=labels == 0)
        temperature = _downsample(temperature, supersample)
        grey = np.float32(settings.level) + np.float32(gain) * (temperature - np.float32(settings.ambient))
        grey = _blur(grey, settings.blur)
        grey += background.column_noise[None, :]
        grey += np.float32(settings.noise) * rng.standard_normal(size=grey.shape, dtype=np.float32)
        grey = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        frames.append(np.repeat(grey[..., None], 3, axis=2))
    return frames
