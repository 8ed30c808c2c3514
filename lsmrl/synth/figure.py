"""The walking figure: a tracklet's motion plan and its per-frame part-label map.

A person is a 2-D articulated figure seen in a three-quarter side view: head
(face, hair, hat), torso (upper garment, sleeves), pelvis and legs (lower
garment or bare skin), shoes and accessories, drawn as polygons, ellipses and
thick lines. Rasterising a pose gives a *label map* (which body part covers each
pixel) plus a *pattern mask* (stripe or check cells of the upper garment). The
two renderers turn the same label map into colours (visible) or temperatures
(infrared), so geometry is identical across modalities by construction.

A :class:`TrackletPlan` fixes everything about a tracklet that is not the
person's appearance: walking direction and the camera's view angle (limb swing
foreshortened by its cosine, the torso seen wider towards a frontal view, the
person growing or shrinking while walking towards or away from the camera),
gait phase per frame, bounding-box jitter and scale errors, crop position over
the camera's background panorama, an optional static occluder (a pole or a
bench in front of the person), an optional passer-by who crosses in front of
the person over several frames, per-frame illumination and motion blur.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from lsmrl.synth.cameras import PANORAMA_CROPS, CameraSpec
from lsmrl.synth.identities import PALETTE, IdentityAttributes

PALETTE_NAMES = tuple(PALETTE)

# Part labels of the label map. FAR is added to parts on the far side of the body (drawn darker).
BACKGROUND = 0
SKIN = 1
HAIR = 2
UPPER = 3
LOWER = 4
SHOE = 5
BACKPACK = 6
BAG = 7
HAT = 8
LOGO = 9
OCCLUDER = 10
PASSER = 11  # a passer-by's clothes
PASSER_SKIN = 12  # a passer-by's head
FAR = 16
NUM_LABELS = 32


@dataclass(frozen=True)
class FramePose:
    phase: float  # gait phase of the near leg, radians
    centre_x: float  # horizontal body centre in the crop, output pixels
    foot_y: float  # ground contact line in the crop, output pixels
    body_height: float  # head-to-foot height, output pixels
    pan: int  # left edge of the crop in the background panorama, output pixels


@dataclass(frozen=True)
class Occluder:
    kind: str  # pole / bench
    x: float  # left edge in panorama coordinates, output pixels
    width: float
    top: float  # crop coordinates, output pixels
    bottom: float


@dataclass(frozen=True)
class Passerby:
    """Another pedestrian crossing in front of the person (crop coordinates, output pixels)."""

    first_frame: int
    x: float  # centre at ``first_frame``
    speed: float  # pixels per frame (signed)
    height: float  # head-to-foot height
    foot_y: float
    colour: str  # key of PALETTE: the passer-by's clothes
    skin_tone: int

    def centre(self, t: int) -> float:
        return self.x + self.speed * (t - self.first_frame)


@dataclass(frozen=True)
class TrackletPlan:
    direction: int  # +1 walks right, -1 walks left
    poses: tuple[FramePose, ...]
    occluder: Occluder | None
    exposure: float  # per-tracklet exposure (visible) / gain (infrared) factor
    view_angle: float = 0.0  # degrees, the camera's (0 = side view)
    passerby: Passerby | None = None
    illumination: tuple[float, ...] = ()  # per-frame brightness factor (clouds, lights, auto-gain); () = all 1
    motion_blur: int = 0  # horizontal motion blur length in output pixels (0 = none)

    def frame_exposure(self, t: int) -> float:
        return self.exposure * (self.illumination[t] if self.illumination else 1.0)

    def to_dict(self) -> dict:
        return {
            "direction": "right" if self.direction > 0 else "left",
            "occluder": self.occluder.kind if self.occluder else "none",
            "passerby": self.passerby is not None,
            "exposure": round(self.exposure, 4),
            "view_angle": round(self.view_angle, 4),
            "motion_blur": self.motion_blur,
            "frames": len(self.poses),
        }


def plan_tracklet(
    rng: np.random.Generator,
    attrs: IdentityAttributes,
    camera: CameraSpec,
    frames: int,
    height: int,
    width: int,
) -> TrackletPlan:
    """Draw a tracklet's motion and nuisances. Uses only geometry and gait, never colours or temperatures."""
    direction = camera.direction if rng.random() < 0.75 else -camera.direction
    view = math.radians(camera.view_angle)
    # crops are normalised to the person's height, like detector boxes: height shows in proportions only;
    # detectors are not exact, so the scale varies per tracklet and per frame
    body_height = min(0.95 * height, height * camera.scale * (1.0 + 0.05 * float(rng.normal())))
    # walking towards (or away from) a camera that does not see the path side-on: the person grows (shrinks)
    drift = camera.approach * 0.25 * math.sin(view) * float(rng.uniform(0.6, 1.0))
    cadence = attrs.gait.cadence * float(rng.uniform(0.94, 1.06))
    phase0 = float(rng.uniform(0.0, 2.0 * math.pi))
    # ground speed: about four leg-length * sin(stride) per gait cycle, foreshortened by the view angle
    leg = 0.47 * attrs.body.leg_ratio * body_height
    speed = 0.8 * 4.0 * leg * math.sin(attrs.gait.stride) * cadence * max(0.2, math.cos(view))
    pano_w = PANORAMA_CROPS * width
    speed = min(speed, (pano_w - width - 1) / max(1, frames - 1))
    travel = speed * (frames - 1)
    start = float(rng.uniform(0.0, max(0.0, pano_w - width - 1 - travel)))
    if direction < 0:
        start += travel
    base_foot = height - (height - body_height) / 2.0 + float(rng.normal(0.0, 1.5))
    jitter = rng.normal(0.0, 1.0, size=(frames, 3))
    poses = []
    for t in range(frames):
        phase = phase0 + 2.0 * math.pi * cadence * t
        grown = body_height * (1.0 + drift * (t / max(1, frames - 1) - 0.5))
        bob = attrs.gait.bounce * grown * math.cos(2.0 * phase)
        poses.append(
            FramePose(
                phase=phase,
                centre_x=width / 2.0 + 2.5 * float(jitter[t, 0]) * width / 64.0,
                foot_y=min(height - 0.5, base_foot + 1.5 * float(jitter[t, 1]) * height / 128.0 - bob),
                body_height=min(0.97 * height, grown * (1.0 + 0.03 * float(jitter[t, 2]))),
                pan=int(round(start + direction * speed * t)),
            )
        )
    occluder = None
    if rng.random() < camera.occlusion_rate:
        when = int(rng.integers(frames))
        kind = "pole" if rng.random() < 0.6 else "bench"
        if kind == "pole":
            occ_w = float(rng.uniform(3.0, 7.0)) * width / 64.0
            top, bottom = 0.0, float(height)
        else:
            occ_w = float(rng.uniform(24.0, 44.0)) * width / 64.0
            top = base_foot - float(rng.uniform(0.18, 0.3)) * body_height
            bottom = base_foot + 2.0
        x = poses[when].pan + width / 2.0 + float(rng.uniform(-10.0, 10.0)) * width / 64.0 - occ_w / 2.0
        occluder = Occluder(kind=kind, x=x, width=occ_w, top=top, bottom=bottom)
    passerby = None
    if rng.random() < camera.passerby_rate:
        # crosses the crop in front of the person over about 6-12 frames
        sign = 1 if rng.random() < 0.5 else -1
        span = float(rng.uniform(6.0, 12.0))
        passer_speed = sign * 1.6 * width / span
        first = int(rng.integers(0, max(1, frames - 4)))
        passer_height = body_height * float(rng.uniform(0.95, 1.15))
        passerby = Passerby(
            first_frame=first,
            x=width / 2.0 - sign * 0.8 * width,
            speed=passer_speed,
            height=passer_height,
            foot_y=min(height + 0.1 * passer_height, base_foot + float(rng.uniform(2.0, 8.0)) * height / 128.0),
            colour=PALETTE_NAMES[int(rng.integers(len(PALETTE_NAMES)))],
            skin_tone=int(rng.integers(5)),
        )
    # illumination: a slow change (clouds, street lights, auto-gain) of up to +-18% over the tracklet
    amplitude = float(rng.uniform(0.0, 0.18))
    period = float(rng.uniform(12.0, 40.0))
    offset = float(rng.uniform(0.0, 2.0 * math.pi))
    illumination = tuple(1.0 + amplitude * math.sin(2.0 * math.pi * t / period + offset) for t in range(frames))
    motion_blur = int(rng.integers(1, 4)) if rng.random() < 0.35 else 0
    return TrackletPlan(
        direction=direction,
        poses=tuple(poses),
        occluder=occluder,
        exposure=float(rng.uniform(0.85, 1.15)),
        view_angle=camera.view_angle,
        passerby=passerby,
        illumination=illumination,
        motion_blur=motion_blur,
    )


class _Canvas:
    """ImageDraw wrapper that takes output-pixel coordinates and draws at supersampled resolution."""

    def __init__(self, height: int, width: int, supersample: int) -> None:
        self.s = supersample
        self.image = Image.new("L", (width * supersample, height * supersample), BACKGROUND)
        self.draw = ImageDraw.Draw(self.image)

    def polygon(self, points, label: int) -> None:
        self.draw.polygon([(x * self.s, y * self.s) for x, y in points], fill=label)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, label: int) -> None:
        s = self.s
        self.draw.ellipse([(cx - rx) * s, (cy - ry) * s, (cx + rx) * s, (cy + ry) * s], fill=label)

    def chord_top(self, cx: float, cy: float, rx: float, ry: float, label: int) -> None:
        s = self.s
        self.draw.chord([(cx - rx) * s, (cy - ry) * s, (cx + rx) * s, (cy + ry) * s], 180, 360, fill=label)

    def rect(self, x0: float, y0: float, x1: float, y1: float, label: int, radius: float = 0.0) -> None:
        s = self.s
        box = [min(x0, x1) * s, min(y0, y1) * s, max(x0, x1) * s, max(y0, y1) * s]
        if radius > 0:
            self.draw.rounded_rectangle(box, radius=radius * s, fill=label)
        else:
            self.draw.rectangle(box, fill=label)

    def limb(self, p0, p1, thickness: float, label: int) -> None:
        """A segment with rounded ends."""
        s = self.s
        w = max(1, int(round(thickness * s)))
        self.draw.line([(p0[0] * s, p0[1] * s), (p1[0] * s, p1[1] * s)], fill=label, width=w)
        r = thickness / 2.0
        for x, y in (p0, p1):
            self.draw.ellipse([(x - r) * s, (y - r) * s, (x + r) * s, (y + r) * s], fill=label)


def _segment(origin, length: float, angle: float, direction: int, foreshorten: float = 0.85):
    """End point of a segment hanging from ``origin`` at ``angle`` from vertical (positive = forward)."""
    return (
        origin[0] + direction * length * math.sin(angle) * foreshorten,
        origin[1] + length * math.cos(angle),
    )


def rasterize(
    attrs: IdentityAttributes,
    pose: FramePose,
    direction: int,
    occluder: Occluder | None,
    height: int,
    width: int,
    supersample: int = 2,
    view_angle: float = 0.0,
    passerby: Passerby | None = None,
    frame_index: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Label map (uint8, supersampled) and the upper garment's pattern mask (bool) of one frame.

    ``view_angle`` (degrees) foreshortens the forward/backward swing of limbs by its
    cosine and widens the torso towards a frontal view.
    """
    canvas = _Canvas(height, width, supersample)
    view = math.radians(view_angle)
    swing = 0.85 * math.cos(view)  # horizontal projection of a limb swinging in the walking plane
    frontal = 1.0 + 0.45 * math.sin(view)  # shoulders and hips seen wider from the front or back
    body, gait, thermal = attrs.body, attrs.gait, attrs.thermal
    d = direction
    ph = pose.body_height
    cx = pose.centre_x
    top = pose.foot_y - ph
    ws = body.width_scale * 0.97 / body.height_scale * frontal  # a tall person is slimmer relative to their height
    ut = thermal.upper_thickness

    def y(frac: float) -> float:
        return top + frac * ph

    leg_len = 0.47 * body.leg_ratio * ph
    y_hip = pose.foot_y - leg_len - 0.03 * ph
    y_sh = y(0.175)
    sw = 0.105 * ws * ph * (1.0 + 0.12 * ut)  # shoulder half width
    hw = 0.085 * ws * ph  # hip half width
    waist = 0.082 * ws * ph * (1.0 + 0.1 * ut)
    ry = 0.062 * ph * body.head_scale
    rx = 0.05 * ph * body.head_scale
    head = (cx + d * 0.012 * ph, top + ry)

    upper_arm, forearm = 0.16 * ph, 0.15 * ph
    arm_w = (0.042 * ws + 0.012 * ut) * ph
    thigh, shin = 0.5 * leg_len, 0.5 * leg_len - 0.02 * ph
    thigh_w = 0.07 * ws * ph
    shin_w = 0.055 * ws * ph
    kind = attrs.lower.kind

    def leg(phase: float, offset: float, far: int) -> None:
        hip = (cx + offset, y_hip + 0.02 * ph)
        hip_angle = gait.stride * math.sin(phase)
        flex = 1.1 * gait.stride * max(0.0, math.cos(phase))
        knee = _segment(hip, thigh, hip_angle, d, swing)
        ankle = _segment(knee, shin, hip_angle - flex, d, swing)
        thigh_label = (SKIN if kind == "skirt" else LOWER) | far
        shin_label = (LOWER if kind == "trousers" else SKIN) | far
        canvas.limb(hip, knee, thigh_w, thigh_label)
        canvas.limb(knee, ankle, shin_w, shin_label)
        if attrs.shoes.kind == "boots":
            boot_top = _segment(ankle, 0.08 * ph, math.pi + hip_angle - flex, d, swing)
            canvas.limb(boot_top, ankle, shin_w * 1.1, SHOE | far)
        foot_x = ankle[0] + d * 0.022 * ph
        canvas.ellipse(foot_x, ankle[1] + 0.012 * ph, 0.045 * ph, 0.02 * ph, SHOE | far)

    def arm(angle: float, offset: float, far: int) -> None:
        shoulder = (cx + offset, y_sh + 0.025 * ph)
        elbow = _segment(shoulder, upper_arm, angle, d, 0.82 * swing)
        wrist = _segment(elbow, forearm, angle * 1.3 + 0.15, d, 0.82 * swing)
        canvas.limb(shoulder, elbow, arm_w, UPPER | far)
        sleeve = UPPER if attrs.upper.sleeves == "long" else SKIN
        canvas.limb(elbow, wrist, arm_w * 0.9, sleeve | far)
        canvas.ellipse(wrist[0], wrist[1] + 0.012 * ph, 0.022 * ph, 0.026 * ph, SKIN | far)

    phase = pose.phase
    near_off, far_off = 0.3 * hw, -0.3 * hw
    # far side first
    arm(gait.arm_swing * math.sin(phase), -0.8 * sw, FAR)
    leg(phase + math.pi, far_off, FAR)
    if attrs.accessories.backpack:
        canvas.rect(cx - d * 0.35 * sw, y(0.2), cx - d * (sw + 0.075 * ph), y(0.46), BACKPACK, 0.02 * ph)
    if attrs.hair.length == "long":
        hx = head[0] - d * 0.25 * rx
        canvas.polygon(
            [(hx - 1.1 * rx, head[1]), (hx + 1.1 * rx, head[1]), (hx + 1.05 * rx, y(0.31)), (hx - 1.05 * rx, y(0.31))],
            HAIR,
        )
    # pelvis / skirt and near leg
    canvas.polygon(
        [(cx - waist, y_hip - 0.06 * ph), (cx + waist, y_hip - 0.06 * ph), (cx + hw, y_hip + 0.06 * ph), (cx - hw, y_hip + 0.06 * ph)],
        LOWER,
    )
    leg(phase, near_off, 0)
    if kind == "skirt":
        hem = y_hip + 0.2 * ph
        canvas.polygon(
            [(cx - waist, y_hip - 0.05 * ph), (cx + waist, y_hip - 0.05 * ph), (cx + 1.7 * hw, hem), (cx - 1.7 * hw, hem)],
            LOWER,
        )
    # torso
    canvas.ellipse(cx, y(0.16), 0.022 * ph, 0.03 * ph, SKIN)  # neck
    canvas.polygon(
        [
            (cx - 0.8 * sw, y_sh - 0.012 * ph),
            (cx + 0.8 * sw, y_sh - 0.012 * ph),
            (cx + sw, y_sh + 0.03 * ph),
            (cx + waist, y(0.36)),
            (cx + 1.04 * hw, y_hip - 0.01 * ph),
            (cx - 1.04 * hw, y_hip - 0.01 * ph),
            (cx - waist, y(0.36)),
            (cx - sw, y_sh + 0.03 * ph),
        ],
        UPPER,
    )
    if attrs.upper.pattern == "logo":
        lx, ly = cx + d * 0.3 * sw, y_sh + 0.09 * ph
        canvas.rect(lx - 0.035 * ph, ly - 0.03 * ph, lx + 0.035 * ph, ly + 0.03 * ph, LOGO)
    if attrs.accessories.backpack:
        strap0 = (cx + d * 0.3 * sw, y_sh)
        canvas.limb(strap0, (strap0[0] + d * 0.02 * ph, y(0.36)), 0.018 * ph, BACKPACK)
    # head
    canvas.ellipse(head[0] - d * 0.12 * rx, head[1] - 0.1 * ry, 1.06 * rx, 1.02 * ry, HAIR)
    canvas.ellipse(head[0] + d * 0.12 * rx, head[1] + 0.14 * ry, 0.93 * rx, 0.88 * ry, SKIN)
    if attrs.accessories.hat:
        canvas.chord_top(head[0], head[1] - 0.2 * ry, 1.12 * rx, 1.0 * ry, HAT)
        brim_x0 = head[0] - d * 1.1 * rx
        brim_x1 = head[0] + d * 1.75 * rx
        canvas.rect(brim_x0, head[1] - 0.3 * ry, brim_x1, head[1] - 0.12 * ry, HAT)
    if attrs.accessories.bag:
        bx = cx + d * 0.55 * hw
        bag_top = y_hip - 0.02 * ph
        strap_from = (cx - d * 0.7 * sw, y_sh + 0.01 * ph)
        canvas.limb(strap_from, (bx + d * 0.04 * ph, bag_top), 0.014 * ph, BAG)
        canvas.rect(bx, bag_top, bx + d * 0.1 * ph, bag_top + 0.1 * ph, BAG, 0.015 * ph)
    arm(-gait.arm_swing * math.sin(phase), 0.8 * sw, 0)
    if occluder is not None:
        x0 = occluder.x - pose.pan
        canvas.rect(x0, occluder.top, x0 + occluder.width, occluder.bottom, OCCLUDER)
    if passerby is not None and frame_index >= passerby.first_frame:
        _draw_passerby(canvas, passerby, frame_index)

    labels = np.asarray(canvas.image, dtype=np.uint8)
    pattern = _pattern_mask(attrs, labels, cx, y_sh, ph, supersample)
    return labels, pattern


def _draw_passerby(canvas: _Canvas, passerby: Passerby, t: int) -> None:
    """A plain pedestrian silhouette (head, torso, two legs) in front of everything else."""
    ph, cx, foot = passerby.height, passerby.centre(t), passerby.foot_y
    if not -0.3 * ph < cx < canvas.image.width / canvas.s + 0.3 * ph:
        return
    top = foot - ph
    canvas.ellipse(cx, top + 0.065 * ph, 0.05 * ph, 0.065 * ph, PASSER_SKIN)
    canvas.rect(cx - 0.12 * ph, top + 0.15 * ph, cx + 0.12 * ph, top + 0.55 * ph, PASSER, 0.03 * ph)
    stride = 0.09 * ph * math.sin(0.9 * t)
    for side in (-1, 1):
        canvas.limb((cx + side * 0.05 * ph, top + 0.53 * ph), (cx + side * stride, foot - 0.02 * ph), 0.075 * ph, PASSER)


def _pattern_mask(attrs: IdentityAttributes, labels: np.ndarray, cx: float, y_sh: float, ph: float, s: int) -> np.ndarray:
    """Stripe or check cells on the upper garment (sleeves included)."""
    kind = attrs.upper.pattern
    if kind not in ("stripes", "checks"):
        return np.zeros(labels.shape, bool)
    period = attrs.upper.pattern_period * ph * s
    rows = np.floor((np.arange(labels.shape[0]) - y_sh * s) / period).astype(np.int64) % 2 == 1
    mask = np.broadcast_to(rows[:, None], labels.shape)
    if kind == "checks":
        cols = np.floor((np.arange(labels.shape[1]) - cx * s) / period).astype(np.int64) % 2 == 1
        mask = mask ^ cols[None, :]
    return mask & ((labels & (FAR - 1)) == UPPER)
