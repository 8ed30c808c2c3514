"""SynthVVI cameras: their settings and their procedural backgrounds.

**Camera ids [our choice]: HITSZ-VCM style.** Each camera id ``1..n`` records
*both* modalities (a day/night surveillance camera): it has one viewpoint
(walking direction, person scale, horizon) and two sets of imaging settings,
:class:`VisibleSettings` and :class:`InfraredSettings`. That is what makes the
HITSZ-VCM protocol's camera filter meaningful (gallery tracklets with the
query's identity *and* camera are removed). Frame folders are therefore
``rgb/D<cam>`` and ``ir/D<cam>`` with the same ``<cam>``.

A background is a panorama three crops wide (ground and wall) that the crop
window slides over while the person walks. It is deterministic per camera: its
random generator is derived from ``(seed, CAMERA_DOMAIN, camid)``. The visible
panorama is RGB; the infrared one is a temperature map (degrees Celsius) with
the same structure (bricks, windows, kerb) but its own values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from lsmrl.synth.identities import _round_floats  # one rounding rule for every JSON value

CAMERA_DOMAIN = 1  # SeedSequence domain tag for cameras (identities use 0)
WALL_TEXTURES = ("bricks", "panels", "windows", "plain")
PANORAMA_CROPS = 3  # the panorama is this many crops wide


@dataclass(frozen=True)
class VisibleSettings:
    gain: float  # global brightness
    tint: tuple[float, float, float]  # per-channel white balance
    top_light: float  # brightness falloff from top to bottom of the frame
    blur: float  # Gaussian blur radius in output pixels
    noise: float  # sensor noise sigma (0..255 scale)
    wall_rgb: tuple[int, int, int]
    ground_rgb: tuple[int, int, int]
    occluder_rgb: tuple[int, int, int]
    shadow: float  # brightness inside cast shadows (sunlight; NIR and thermal have none)


@dataclass(frozen=True)
class InfraredSettings:
    """The thermal camera (``--infrared thermal``, RegDB-like)."""

    ambient: float  # air temperature, degrees Celsius
    wall_temperature: float
    ground_temperature: float
    occluder_temperature: float
    level: float  # grey value of the ambient temperature
    contrast: float  # grey levels per degree
    blur: float
    noise: float
    column_noise: float  # fixed-pattern column offsets (sigma, grey levels)


@dataclass(frozen=True)
class NirSettings:
    """The near-infrared night camera (default infrared): grey = illuminator x reflectance + offset."""

    gain: float  # grey levels of a perfect reflector at the illuminator's centre
    offset: float  # black level
    falloff: float  # illuminator fall-off: brightness 1 - falloff * r^2 at normalised distance r from the centre
    blur: float
    noise: float
    wall_reflectance: float
    ground_reflectance: float
    occluder_reflectance: float


@dataclass(frozen=True)
class CameraSpec:
    camid: int
    direction: int  # usual walking direction in this view: +1 right, -1 left
    view_angle: float  # degrees between the walking direction and the image plane (0 = side view)
    approach: int  # +1 people walk towards the camera (they grow), -1 away from it
    scale: float  # person height as a fraction of the crop height (detector margin)
    horizon: float  # where the wall meets the ground, fraction of the frame height
    wall_texture: str
    occlusion_rate: float  # chance that a tracklet of this camera has a static occluder (pole, bench)
    passerby_rate: float  # chance that a passer-by crosses in front of the person
    visible: VisibleSettings
    infrared: InfraredSettings
    nir: NirSettings

    def to_dict(self) -> dict:
        return _round_floats(asdict(self))


@dataclass(frozen=True)
class CameraBackground:
    """Panoramas at render resolution: ``visible`` (H, W', 3) float32 0..255, ``temperature`` (H, W') float32
    degrees, ``nir`` (H, W') float32 reflectance 0..1."""

    visible: np.ndarray
    temperature: np.ndarray
    nir: np.ndarray
    column_noise: np.ndarray  # (W,) fixed-pattern offsets of the thermal sensor, output resolution


def camera_rng(seed: int, camid: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, CAMERA_DOMAIN, camid, stream]))


def make_cameras(seed: int, count: int) -> tuple[CameraSpec, ...]:
    """Cameras ``1..count``, each drawn from its own generator."""
    return tuple(_make_camera(camera_rng(seed, camid, 0), camid) for camid in range(1, count + 1))


def _muted_colour(rng: np.random.Generator, low: int, high: int) -> tuple[int, int, int]:
    base = rng.uniform(low, high)
    return tuple(int(np.clip(base + rng.uniform(-22, 22), 0, 255)) for _ in range(3))  # type: ignore[return-value]


def _make_camera(rng: np.random.Generator, camid: int) -> CameraSpec:
    tint_warm = float(rng.uniform(-0.08, 0.08))
    visible = VisibleSettings(
        gain=float(rng.uniform(0.75, 1.1)),
        tint=(1.0 + tint_warm, 1.0, 1.0 - tint_warm),
        top_light=float(rng.uniform(0.0, 0.25)),
        blur=float(rng.uniform(0.3, 0.8)),
        noise=float(rng.uniform(2.0, 5.0)),
        wall_rgb=_muted_colour(rng, 70, 200),
        ground_rgb=_muted_colour(rng, 60, 170),
        occluder_rgb=_muted_colour(rng, 50, 200),
        shadow=float(rng.uniform(0.45, 0.7)),
    )
    ambient = float(rng.uniform(8.0, 22.0))
    infrared = InfraredSettings(
        ambient=ambient,
        wall_temperature=ambient + float(rng.uniform(-1.0, 4.0)),
        ground_temperature=ambient + float(rng.uniform(-2.0, 3.0)),
        occluder_temperature=ambient + float(rng.uniform(-1.0, 2.0)),
        level=float(rng.uniform(55, 95)),
        contrast=float(rng.uniform(5.0, 7.0)),
        blur=float(rng.uniform(0.8, 1.3)),
        noise=float(rng.uniform(2.0, 4.5)),
        column_noise=float(rng.uniform(0.5, 2.0)),
    )
    nir = NirSettings(
        gain=float(rng.uniform(170.0, 240.0)),
        offset=float(rng.uniform(6.0, 22.0)),
        falloff=float(rng.uniform(0.25, 0.6)),
        blur=float(rng.uniform(0.5, 1.0)),
        noise=float(rng.uniform(2.5, 5.0)),
        wall_reflectance=float(rng.uniform(0.25, 0.6)),
        ground_reflectance=float(rng.uniform(0.15, 0.45)),
        occluder_reflectance=float(rng.uniform(0.2, 0.7)),
    )
    return CameraSpec(
        camid=camid,
        direction=1 if rng.random() < 0.5 else -1,
        view_angle=float(rng.uniform(0.0, 60.0)),
        approach=1 if rng.random() < 0.5 else -1,
        scale=float(rng.uniform(0.74, 0.9)),
        horizon=float(rng.uniform(0.4, 0.7)),
        wall_texture=WALL_TEXTURES[int(rng.integers(len(WALL_TEXTURES)))],
        occlusion_rate=float(rng.uniform(0.15, 0.4)),
        passerby_rate=float(rng.uniform(0.15, 0.35)),
        visible=visible,
        infrared=infrared,
        nir=nir,
    )


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """Low-frequency noise in about [-1, 1]: a coarse random grid resized bicubically."""
    coarse = rng.normal(0.0, 0.5, size=(max(2, height // cell + 2), max(2, width // cell + 2))).astype(np.float32)
    image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.float32)


# Background materials of the clutter map. Each has a visible colour, a NIR reflectance and a temperature.
WALL, GROUND, GLASS, DOOR, TRIM, METAL, SIGN, PRINT, FOLIAGE, BIN = range(10)
# (visible RGB or None = the camera's own colour, NIR reflectance, temperature above ambient) [our choice]:
# foliage is dark green by day and very bright in NIR (chlorophyll), glass is dark in NIR (the illuminator's
# light is reflected away) and cold in thermal, signs are retro-reflective white in NIR.
_MATERIALS = {
    GLASS: ((62, 72, 88), 0.06, -3.0),
    DOOR: (None, None, 0.5),
    TRIM: ((40, 38, 36), 0.12, 0.2),
    METAL: ((90, 94, 100), 0.45, -0.5),
    SIGN: (None, 0.88, 0.3),
    PRINT: ((25, 25, 30), 0.08, 0.3),
    FOLIAGE: ((46, 88, 40), 0.82, -1.2),
    BIN: (None, None, 0.0),
}


def _draw_clutter(rng: np.random.Generator, draw, pano_w: int, height: int, horizon: float, unit: float, texture: str) -> list:
    """Doors, signs, railings, lamp posts, bushes and bins drawn into the material map; returns shadow polygons."""
    # doors: tall rectangles standing on the kerb, with a dark trim
    for _ in range(int(rng.integers(1, 3))):
        w = rng.uniform(18, 28) * unit
        x = rng.uniform(0, pano_w - w)
        top = horizon - rng.uniform(0.55, 0.8) * horizon
        draw.rectangle([x - 2 * unit, top - 2 * unit, x + w + 2 * unit, horizon], fill=TRIM)
        draw.rectangle([x, top, x + w, horizon], fill=DOOR)
        if rng.random() < 0.5:  # a glazed panel in the door
            draw.rectangle([x + 0.25 * w, top + 0.1 * (horizon - top), x + 0.75 * w, top + 0.4 * (horizon - top)], fill=GLASS)
    # signs with text-like print lines
    for _ in range(int(rng.integers(1, 4))):
        w, h = rng.uniform(14, 34) * unit, rng.uniform(8, 16) * unit
        x, y = rng.uniform(0, pano_w - w), rng.uniform(0.05, 0.6) * max(horizon - h, 1.0)
        draw.rectangle([x, y, x + w, y + h], fill=SIGN)
        lines = int(rng.integers(1, 4))
        for k in range(lines):
            ly = y + (k + 0.6) * h / (lines + 0.4)
            draw.rectangle([x + 0.12 * w, ly - 0.9 * unit, x + (0.45 + 0.4 * rng.random()) * w, ly + 0.9 * unit], fill=PRINT)
    # a railing along part of the kerb: top rail, mid rail and posts
    if rng.random() < 0.6:
        x0 = rng.uniform(0, pano_w * 0.5)
        x1 = min(pano_w, x0 + rng.uniform(0.3, 0.6) * pano_w)
        rail_top = horizon - rng.uniform(18, 28) * unit
        for y in (rail_top, (rail_top + horizon) / 2):
            draw.rectangle([x0, y, x1, y + 1.6 * unit], fill=METAL)
        step = rng.uniform(7, 12) * unit
        for x in np.arange(x0, x1, step):
            draw.rectangle([x, rail_top, x + 1.4 * unit, horizon], fill=METAL)
    # lamp posts: thin, full height
    for _ in range(int(rng.integers(0, 3))):
        x = rng.uniform(0, pano_w)
        draw.rectangle([x, 0, x + rng.uniform(2, 4) * unit, horizon + rng.uniform(4, 12) * unit], fill=METAL)
    # bushes at the wall's foot and bins
    for _ in range(int(rng.integers(0, 3))):
        cx, r = rng.uniform(0, pano_w), rng.uniform(8, 16) * unit
        for _ in range(4):
            ox, oy, rr = rng.uniform(-r, r), rng.uniform(-0.5 * r, 0.2 * r), r * rng.uniform(0.5, 0.8)
            draw.ellipse([cx + ox - rr, horizon + oy - rr, cx + ox + rr, horizon + oy + rr], fill=FOLIAGE)
    for _ in range(int(rng.integers(0, 2))):
        x, w, h = rng.uniform(0, pano_w), rng.uniform(8, 12) * unit, rng.uniform(12, 18) * unit
        draw.rectangle([x, horizon + 2 * unit - h, x + w, horizon + 2 * unit], fill=BIN)
    # cast shadows (sunlight, visible only): slanted bands across wall and ground
    shadows = []
    for _ in range(int(rng.integers(0, 3))):
        x, w, slant = rng.uniform(0, pano_w), rng.uniform(10, 40) * unit, rng.uniform(-0.8, 0.8) * height
        shadows.append([(x, 0), (x + w, 0), (x + w + slant, height), (x + slant, height)])
    return shadows


def render_background(camera: CameraSpec, seed: int, height: int, width: int, supersample: int = 1) -> CameraBackground:
    """The three panoramas (visible, temperature, NIR reflectance) of one camera for ``height x width``
    frames rendered at ``supersample`` x resolution.

    The panoramas are ``(height * supersample) x (PANORAMA_CROPS * width * supersample)``;
    the column noise is at output resolution.

    Structure (wall texture, doors, signs, railings, lamp posts, bushes, bins) is
    shared by the modalities: a material map that each modality turns into its
    own values (colours, temperatures, NIR reflectances). Cast shadows darken
    only the visible panorama. The clutter makes the person one high-contrast
    object among several, so attention maps have something to avoid.
    """
    from PIL import ImageDraw

    rng = camera_rng(seed, camera.camid, 1)
    column_noise = rng.normal(0.0, camera.infrared.column_noise, size=width).astype(np.float32)
    height, width = height * supersample, width * supersample
    pano_w = PANORAMA_CROPS * width
    unit = height / 128.0  # texture sizes are given for a 128-pixel-high frame
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(pano_w, dtype=np.float32)[None, :]
    horizon = camera.horizon * height
    wall = np.broadcast_to(ys < horizon, (height, pano_w))

    # --- wall structure: per-cell jitter and seam lines
    cell_jitter = np.zeros((height, pano_w), np.float32)
    seams = np.zeros((height, pano_w), np.float32)
    windows = np.zeros((height, pano_w), bool)
    if camera.wall_texture == "bricks":
        bh = rng.uniform(6, 10) * unit
        bw = rng.uniform(14, 24) * unit
        row = np.floor(ys / bh)
        shifted = xs + (row % 2) * bw / 2
        col = np.floor(shifted / bw)
        values = rng.uniform(-1, 1, size=(int(height / bh) + 2, int(pano_w / bw) + 3)).astype(np.float32)
        cell_jitter = values[row.astype(int), col.astype(int)]
        seams = (((ys % bh) < 1.0 * unit) | ((shifted % bw) < 1.0 * unit)).astype(np.float32)
    elif camera.wall_texture == "panels":
        pw = rng.uniform(20, 40) * unit
        col = np.floor(xs / pw)
        values = rng.uniform(-1, 1, size=int(pano_w / pw) + 2).astype(np.float32)
        cell_jitter = np.broadcast_to(values[col.astype(int)], (height, pano_w)).copy()
        seams = np.broadcast_to((xs % pw) < 1.5 * unit, (height, pano_w)).astype(np.float32)
    elif camera.wall_texture == "windows":
        period = rng.uniform(40, 60) * unit
        win_w = period * rng.uniform(0.4, 0.6)
        top = horizon * rng.uniform(0.1, 0.3)
        bottom = horizon * rng.uniform(0.6, 0.85)
        windows = ((xs % period) < win_w) & (ys > top) & (ys < bottom)
        windows = np.broadcast_to(windows, (height, pano_w))
    smooth = _smooth_noise(rng, height, pano_w, max(4, int(16 * unit)))
    fine = rng.normal(0.0, 1.0, size=(height, pano_w)).astype(np.float32)

    # ground: kerb line at the horizon and perspective bands below it
    depth = np.clip((ys - horizon) / max(1.0, height - horizon), 0.0, 1.0)
    band = np.floor(np.sqrt(depth) * 6.0)
    band_values = rng.uniform(-1, 1, size=8).astype(np.float32)
    band_jitter = np.broadcast_to(band_values[band.astype(int)], (height, pano_w))
    kerb = np.broadcast_to((ys >= horizon) & (ys < horizon + 2.5 * unit), (height, pano_w))

    # --- clutter: a material map drawn with PIL, and shadow polygons
    material_image = Image.new("L", (pano_w, height), 255)  # 255 = plain wall/ground
    draw = ImageDraw.Draw(material_image)
    shadow_polygons = _draw_clutter(rng, draw, pano_w, height, horizon, unit, camera.wall_texture)
    materials = np.asarray(material_image, dtype=np.uint8)
    shadow_image = Image.new("L", (pano_w, height), 0)
    shadow_draw = ImageDraw.Draw(shadow_image)
    for polygon in shadow_polygons:
        shadow_draw.polygon(polygon, fill=255)
    shadow = np.asarray(shadow_image, dtype=np.float32) / 255.0
    door_rgb = np.asarray(_muted_colour(rng, 40, 170), np.float32)
    bin_rgb = np.asarray(_muted_colour(rng, 40, 140), np.float32)
    sign_rgb = np.asarray((235, 235, 230) if rng.random() < 0.5 else _muted_colour(rng, 150, 230), np.float32)
    door_nir, bin_nir = float(rng.uniform(0.1, 0.7)), float(rng.uniform(0.1, 0.6))
    texture = 1.0 + 0.06 * smooth + 0.04 * fine / 2.0

    # --- visible colours
    vis = camera.visible
    wall_rgb = np.array(vis.wall_rgb, np.float32)
    ground_rgb = np.array(vis.ground_rgb, np.float32)
    window_rgb = np.array([60, 70, 85], np.float32) * rng.uniform(0.7, 1.3)
    wall_lum = 1.0 + 0.08 * cell_jitter - 0.18 * seams + 0.06 * smooth
    ground_lum = 1.0 + 0.05 * band_jitter + 0.08 * smooth - 0.12 * kerb + 0.15 * depth
    lum = np.where(wall, wall_lum, ground_lum)[..., None]
    colour = np.where(wall[..., None], wall_rgb, ground_rgb) * lum + 2.0 * fine[..., None]
    colour = np.where(windows[..., None], window_rgb * (1.0 + 0.1 * smooth[..., None]), colour)

    # --- NIR reflectance (the illuminator and the sensor are applied per frame)
    wall_r = camera.nir.wall_reflectance * (1.0 + 0.1 * cell_jitter - 0.25 * seams + 0.08 * smooth)
    ground_r = camera.nir.ground_reflectance * (1.0 + 0.08 * band_jitter + 0.1 * smooth - 0.2 * kerb)
    nir = np.where(wall, wall_r, ground_r)
    nir = np.where(windows, 0.06 + 0.01 * smooth, nir)

    # --- thermal temperatures
    ir = camera.infrared
    wall_t = ir.wall_temperature + 0.4 * cell_jitter - 0.3 * seams + 0.6 * smooth
    ground_t = ir.ground_temperature + 0.3 * band_jitter + 0.8 * smooth - 0.5 * kerb + 0.8 * depth
    temperature = np.where(wall, wall_t, ground_t)
    temperature = np.where(windows, ir.ambient - 3.0 + 0.3 * smooth, temperature)

    for material, (rgb, reflectance, warmth) in _MATERIALS.items():
        where = materials == material
        if not where.any():
            continue
        if material == DOOR:
            rgb, reflectance = door_rgb, door_nir
        elif material == BIN:
            rgb, reflectance = bin_rgb, bin_nir
        elif material == SIGN:
            rgb = sign_rgb
        colour[where] = np.asarray(rgb, np.float32) * texture[where][:, None]
        nir[where] = reflectance * texture[where]
        temperature[where] = ir.ambient + warmth + 0.3 * smooth[where]
    colour *= (1.0 - (1.0 - vis.shadow) * shadow)[..., None]
    temperature = temperature - 1.0 * shadow + 0.08 * fine
    return CameraBackground(
        visible=np.clip(colour, 0, 255).astype(np.float32),
        temperature=temperature.astype(np.float32),
        nir=np.clip(nir, 0.0, 1.0).astype(np.float32),
        column_noise=column_noise,
    )
