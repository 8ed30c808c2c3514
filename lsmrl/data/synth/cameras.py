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

from lsmrl.data.synth.identities import _round_floats  # one rounding rule for every JSON value

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


@dataclass(frozen=True)
class InfraredSettings:
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
class CameraSpec:
    camid: int
    direction: int  # usual walking direction in this view: +1 right, -1 left
    scale: float  # person height as a fraction of the crop height (detector margin)
    horizon: float  # where the wall meets the ground, fraction of the frame height
    wall_texture: str
    occlusion_rate: float  # chance that a tracklet of this camera has an occluder
    visible: VisibleSettings
    infrared: InfraredSettings

    def to_dict(self) -> dict:
        return _round_floats(asdict(self))


@dataclass(frozen=True)
class CameraBackground:
    """Panoramas at render resolution: ``visible`` (H, W', 3) float32 0..255, ``temperature`` (H, W') float32."""

    visible: np.ndarray
    temperature: np.ndarray
    column_noise: np.ndarray  # (W,) fixed-pattern offsets of the infrared sensor, output resolution


def camera_rng(seed: int, camid: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, CAMERA_DOMAIN, camid, stream]))


def make_cameras(seed: int, count: int) -> tuple[CameraSpec, ...]:
    """Cameras ``1..count``, each drawn from its own generator."""
    return tuple(_make_camera(camera_rng(seed, camid, 0), camid) for camid in range(1, count + 1))


def _muted_colour(rng: np.random.Generator, low: int, high: int) -> tuple[int, int, int]:
    base = rng.uniform(low, high)
    return tuple(int(np.clip(base + rng.uniform(-22, 22), 0, 255)) for _ in range(3))  # type: ignore[return-value]


def _make_camera(rng: np.random.Generator, camid: int) -> CameraSpec:
    tint_warm = float(rng.uniform(-0.05, 0.05))
    visible = VisibleSettings(
        gain=float(rng.uniform(0.8, 1.05)),
        tint=(1.0 + tint_warm, 1.0, 1.0 - tint_warm),
        top_light=float(rng.uniform(0.0, 0.18)),
        blur=float(rng.uniform(0.3, 0.7)),
        noise=float(rng.uniform(1.5, 4.0)),
        wall_rgb=_muted_colour(rng, 70, 200),
        ground_rgb=_muted_colour(rng, 60, 170),
        occluder_rgb=_muted_colour(rng, 50, 200),
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
    return CameraSpec(
        camid=camid,
        direction=1 if rng.random() < 0.5 else -1,
        scale=float(rng.uniform(0.86, 0.92)),
        horizon=float(rng.uniform(0.45, 0.7)),
        wall_texture=WALL_TEXTURES[int(rng.integers(len(WALL_TEXTURES)))],
        occlusion_rate=float(rng.uniform(0.1, 0.35)),
        visible=visible,
        infrared=infrared,
    )


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """Low-frequency noise in about [-1, 1]: a coarse random grid resized bicubically."""
    coarse = rng.normal(0.0, 0.5, size=(max(2, height // cell + 2), max(2, width // cell + 2))).astype(np.float32)
    image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.float32)


def render_background(camera: CameraSpec, seed: int, height: int, width: int, supersample: int = 1) -> CameraBackground:
    """Both panoramas of one camera for ``height x width`` frames rendered at ``supersample`` x resolution.

    The panoramas are ``(height * supersample) x (PANORAMA_CROPS * width * supersample)``;
    the column noise is at output resolution.

    Texture structure (brick grid, windows, kerb) is shared by the two modalities;
    the visible one turns it into colours, the infrared one into temperatures.
    """
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
    visible = np.clip(colour, 0, 255).astype(np.float32)

    # --- infrared temperatures
    ir = camera.infrared
    wall_t = ir.wall_temperature + 0.4 * cell_jitter - 0.3 * seams + 0.6 * smooth
    ground_t = ir.ground_temperature + 0.3 * band_jitter + 0.8 * smooth - 0.5 * kerb + 0.8 * depth
    temperature = np.where(wall, wall_t, ground_t)
    temperature = np.where(windows, ir.ambient - 3.0 + 0.3 * smooth, temperature) + 0.08 * fine
    return CameraBackground(
        visible=visible,
        temperature=temperature.astype(np.float32),
        column_noise=column_noise,
    )
