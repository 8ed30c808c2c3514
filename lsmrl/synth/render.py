"""The SynthVVI renderers: visible (RGB) and two infrared ones, near-infrared (NIR, the default) and thermal.

All take the same inputs: an identity, a camera with its background, a
:class:`~lsmrl.synth.figure.TrackletPlan` and a random generator (used for
sensor noise only). Both rasterise the same label maps, so the person's geometry
(build, limbs, hair, hat, bag, gait) is identical in the two modalities.

* **Visible**: label -> colour (garment palette, pattern colour, skin tone, hair
  colour), far-side limbs darker, composited over the camera's RGB panorama,
  then camera lighting (gain, white balance, top-to-bottom falloff), a slight
  Gaussian blur and sensor noise.
* **Near-infrared (default, HITSZ-VCM / SYSU-MM01-like night cameras)**: label ->
  NIR reflectance of its material (a fixed table per dye, hair colour, skin tone
  and shoe material in :mod:`~lsmrl.synth.identities`; a pattern or logo
  shows through the reflectance difference of its dye), composited over the
  camera's NIR reflectance panorama, then times the camera's illuminator
  (``gain * (1 - falloff * r^2)`` with ``r`` the distance from the camera's
  optical centre, so a person is darker at the edges of the view) plus a black
  level, blur and sensor noise. No visible colour is read, but the grey is not a
  function of visible luminance either: dyes of different colours can collapse to
  one grey and similar colours can separate.
* **Thermal** (``--infrared thermal``, RegDB-like): label -> temperature, composited over the camera's temperature
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

Every renderer applies the tracklet's per-frame illumination change and its
horizontal motion blur. Frames are rendered at ``supersample`` x resolution and
box-downsampled (anti-aliasing). Output frames are ``uint8`` arrays of shape (H, W, 3).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from lsmrl.synth.cameras import CameraBackground, CameraSpec
from lsmrl.synth.figure import (
    BACKPACK,
    BAG,
    FAR,
    HAIR,
    HAT,
    LOGO,
    LOWER,
    NUM_LABELS,
    OCCLUDER,
    PASSER,
    PASSER_SKIN,
    SHOE,
    SKIN,
    UPPER,
    TrackletPlan,
    rasterize,
)
from lsmrl.synth.identities import (
    ACCESSORY_NIR_FACTOR,
    HAIR_COLOURS,
    HAIR_NIR,
    NIR_REFLECTANCE,
    PALETTE,
    SHOE_NIR,
    SKIN_NIR,
    SKIN_TONES,
    IdentityAttributes,
)

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
    for t, pose in enumerate(plan.poses):
        labels, pattern = rasterize(
            attrs, pose, plan.direction, plan.occluder, height, width, s,
            view_angle=plan.view_angle, passerby=plan.passerby, frame_index=t,
        )
        yield t, pose, labels, pattern


def _motion_blur(image: np.ndarray, length: int) -> np.ndarray:
    """Average of ``length + 1`` horizontally shifted copies (edge pixels repeated)."""
    if length <= 0:
        return image
    padded = np.concatenate([image] + [image[:, -1:]] * length, axis=1)
    total = image.copy()
    for k in range(1, length + 1):
        total += padded[:, k : k + image.shape[1]]
    return total * np.float32(1.0 / (length + 1))


def visible_lut(attrs: IdentityAttributes, camera: CameraSpec, plan: TrackletPlan | None = None) -> tuple[np.ndarray, np.ndarray]:
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
    if plan is not None and plan.passerby is not None:
        base[PASSER] = PALETTE[plan.passerby.colour]
        base[PASSER_SKIN] = SKIN_TONES[plan.passerby.skin_tone]
    for label, rgb in base.items():
        lut[label] = rgb
        lut[label | FAR] = np.asarray(rgb, np.float32) * FAR_SHADE
    pattern = lut.copy()
    pattern[UPPER] = PALETTE[attrs.upper.pattern_colour]
    pattern[UPPER | FAR] = np.asarray(PALETTE[attrs.upper.pattern_colour], np.float32) * FAR_SHADE
    return lut, pattern


def nir_lut(attrs: IdentityAttributes, camera: CameraSpec, plan: TrackletPlan | None = None) -> tuple[np.ndarray, np.ndarray]:
    """NIR reflectance of every label, and of every label's pattern cells (only UPPER has them).

    Reads materials only: each dye's, hair colour's, skin tone's and shoe's NIR reflectance
    from the fixed tables, never a visible RGB value."""
    acc = attrs.accessories
    base = {
        SKIN: SKIN_NIR[attrs.body.skin_tone],
        HAIR: HAIR_NIR[attrs.hair.colour],
        UPPER: NIR_REFLECTANCE[attrs.upper.colour],
        LOWER: NIR_REFLECTANCE[attrs.lower.colour],
        SHOE: SHOE_NIR[attrs.shoes.colour],
        BACKPACK: NIR_REFLECTANCE[acc.backpack_colour] * ACCESSORY_NIR_FACTOR,
        BAG: NIR_REFLECTANCE[acc.bag_colour] * ACCESSORY_NIR_FACTOR,
        HAT: NIR_REFLECTANCE[acc.hat_colour] * ACCESSORY_NIR_FACTOR,
        LOGO: NIR_REFLECTANCE[attrs.upper.pattern_colour],
        OCCLUDER: camera.nir.occluder_reflectance,
    }
    if plan is not None and plan.passerby is not None:
        base[PASSER] = NIR_REFLECTANCE[plan.passerby.colour]
        base[PASSER_SKIN] = SKIN_NIR[plan.passerby.skin_tone]
    lut = np.zeros(NUM_LABELS, np.float32)
    for label, value in base.items():
        lut[label] = value
        lut[label | FAR] = value * (FAR_SHADE if label != OCCLUDER else 1.0)
    pattern = lut.copy()
    pattern[UPPER] = base[LOGO]
    pattern[UPPER | FAR] = base[LOGO] * FAR_SHADE
    return lut, pattern


def infrared_lut(attrs: IdentityAttributes, camera: CameraSpec, plan: TrackletPlan | None = None) -> np.ndarray:
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
        PASSER: skin - 6.0,
        PASSER_SKIN: skin,
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
    lut, pattern_lut = visible_lut(attrs, camera, plan)
    rows = np.arange(height, dtype=np.float32)[:, None, None] / height
    light = settings.gain * (1.0 + settings.top_light * (0.5 - rows))
    light = (light * np.asarray(settings.tint, np.float32)[None, None, :]).astype(np.float32)
    both = np.concatenate([lut, pattern_lut]).astype(np.float32)  # index = label + NUM_LABELS * pattern
    frames = []
    for t, pose, labels, pattern in _label_frames(attrs, plan, height, width, supersample):
        image = np.take(both, labels | (pattern.view(np.uint8) << PATTERN_SHIFT), axis=0)
        bg = _crop(background.visible, pose.pan, width, supersample)
        np.copyto(image, bg, where=(labels == 0)[..., None])
        image = _downsample(image, supersample) * (light * np.float32(plan.frame_exposure(t)))
        image = _motion_blur(image, plan.motion_blur)
        image = _blur(image, settings.blur)
        image += np.float32(settings.noise) * rng.standard_normal(size=image.shape, dtype=np.float32)
        frames.append(np.clip(np.rint(image), 0, 255).astype(np.uint8))
    return frames


def _illuminator(width: int, height: int, pan: int, pano_width: int, falloff: float) -> np.ndarray:
    """Relative illuminator brightness over a crop: 1 - falloff * r^2, r = distance from the panorama's centre
    (the camera's optical axis) in units of half the panorama width."""
    xs = (np.arange(width, dtype=np.float32) + pan - pano_width / 2.0) / (pano_width / 2.0)
    ys = (np.arange(height, dtype=np.float32) - height / 2.0) / (pano_width / 2.0)
    return (1.0 - falloff * (xs[None, :] ** 2 + ys[:, None] ** 2)).astype(np.float32)


def render_nir(
    attrs: IdentityAttributes,
    camera: CameraSpec,
    background: CameraBackground,
    plan: TrackletPlan,
    rng: np.random.Generator,
    height: int,
    width: int,
    supersample: int = 2,
) -> list[np.ndarray]:
    """Near-infrared frames (uint8, H x W x 3 with R = G = B) of one tracklet."""
    settings = camera.nir
    lut, pattern_lut = nir_lut(attrs, camera, plan)
    both = np.concatenate([lut, pattern_lut]).astype(np.float32)  # index = label + NUM_LABELS * pattern
    pano_width = background.nir.shape[1] // supersample
    frames = []
    for t, pose, labels, pattern in _label_frames(attrs, plan, height, width, supersample):
        reflectance = np.take(both, labels | (pattern.view(np.uint8) << PATTERN_SHIFT))
        bg = _crop(background.nir, pose.pan, width, supersample)
        np.copyto(reflectance, bg, where=labels == 0)
        reflectance = _downsample(reflectance, supersample)
        pan = max(0, min(pose.pan, pano_width - width))
        light = _illuminator(width, height, pan, pano_width, settings.falloff)
        grey = np.float32(settings.offset) + np.float32(settings.gain * plan.frame_exposure(t)) * light * reflectance
        grey = _motion_blur(grey, plan.motion_blur)
        grey = _blur(grey, settings.blur)
        grey += np.float32(settings.noise) * rng.standard_normal(size=grey.shape, dtype=np.float32)
        grey = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        frames.append(np.repeat(grey[..., None], 3, axis=2))
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
    lut = infrared_lut(attrs, camera, plan)
    frames = []
    both = np.concatenate([lut, lut - PATTERN_COOLING]).astype(np.float32)  # index = label + NUM_LABELS * pattern
    for t, pose, labels, pattern in _label_frames(attrs, plan, height, width, supersample):
        gain = settings.contrast * plan.frame_exposure(t)
        temperature = np.take(both, labels | (pattern.view(np.uint8) << PATTERN_SHIFT))
        bg = _crop(background.temperature, pose.pan, width, supersample)
        np.copyto(temperature, bg, where=labels == 0)
        temperature = _downsample(temperature, supersample)
        grey = np.float32(settings.level) + np.float32(gain) * (temperature - np.float32(settings.ambient))
        grey = _motion_blur(grey, plan.motion_blur)
        grey = _blur(grey, settings.blur)
        grey += background.column_noise[None, :]
        grey += np.float32(settings.noise) * rng.standard_normal(size=grey.shape, dtype=np.float32)
        grey = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        frames.append(np.repeat(grey[..., None], 3, axis=2))
    return frames
