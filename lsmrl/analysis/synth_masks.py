"""SynthVVI tracklets with their person masks, for checking where attention maps look.

:func:`render_tracklet_with_masks` repeats, for one tracklet, exactly the draws
of :func:`lsmrl.data.synth.generate.render_identity` (same random streams, same
renderers), so its frames are the generator's frames before JPEG compression.
The mask comes from the same part-label map the renderers colour
(:func:`lsmrl.data.synth.figure.rasterize`): a pixel belongs to the person when
its label is a body part, garment or carried item, i.e. neither background nor
an occluder (a pole or bench in front of the person hides it). Coverage is the
box-downsampled share of the supersampled pixels, like the renderers'
anti-aliasing; the boolean mask is coverage >= 0.5.

The synth package itself is not changed: this module only calls its public
functions (and the generator's seeding helpers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lsmrl.data.synth.cameras import make_cameras, render_background
from lsmrl.data.synth.figure import BACKGROUND, FAR, OCCLUDER, plan_tracklet, rasterize
from lsmrl.data.synth.generate import ATTRIBUTE_STREAM, SynthConfig, choose_cameras, identity_rng
from lsmrl.data.synth.identities import sample_identity
from lsmrl.data.synth.render import render_infrared, render_visible


@dataclass
class SynthTrackletWithMasks:
    """One rendered SynthVVI tracklet: frames (F, H, W, 3) uint8, masks (F, H, W) bool, coverage float32."""

    frames: np.ndarray
    masks: np.ndarray
    coverage: np.ndarray
    pid: int
    modality: str
    camid: int
    index: int  # the identity's tracklet number: infrared ones first, then visible (as the generator)

    @property
    def area_fraction(self) -> float:
        """Mean share of the frame covered by the person (what a map that ignores the person scores)."""
        return float(self.coverage.mean())


def person_coverage(labels: np.ndarray, supersample: int) -> np.ndarray:
    """Supersampled label map (H*s, W*s) -> share (H, W) of each output pixel covered by the person."""
    part = labels & (FAR - 1)
    person = ((part != BACKGROUND) & (part != OCCLUDER)).astype(np.float32)
    s = int(supersample)
    height, width = person.shape[0] // s, person.shape[1] // s
    return person.reshape(height, s, width, s).mean(axis=(1, 3))


def render_tracklet_with_masks(
    pid: int,
    index: int = 0,
    *,
    seed: int = 0,
    frames: int = 12,
    height: int = 128,
    width: int = 64,
    cameras: int = 6,
    supersample: int = 2,
    infrared_tracklets: int = 2,
    visible_tracklets: int = 2,
) -> SynthTrackletWithMasks:
    """Render tracklet ``index`` of identity ``pid`` of the SynthVVI set made with these generator flags.

    ``index`` counts the identity's tracklets as the generator does: ``0 ..
    infrared_tracklets - 1`` are infrared, the next ``visible_tracklets`` visible.
    The flags must equal the data set's (``info/synthvvi.json`` -> ``args``) to
    reproduce its frames; any values give a valid, consistent tracklet.
    """
    config = SynthConfig(seed=seed, frames=frames, height=height, width=width, cameras=cameras,
                         supersample=supersample, infrared_tracklets=infrared_tracklets,
                         visible_tracklets=visible_tracklets, train_identities=0,
                         test_identities=max(1, pid))
    config.validate()
    if not 0 <= index < infrared_tracklets + visible_tracklets:
        raise ValueError(f"index must be in [0, {infrared_tracklets + visible_tracklets}), got {index}")
    # the draws of generate.render_identity, in the same order
    rng = identity_rng(seed, pid, ATTRIBUTE_STREAM)
    attrs = sample_identity(rng, pid)
    plan_modalities = [("infrared", cam) for cam in choose_cameras(rng, infrared_tracklets, cameras)]
    plan_modalities += [("visible", cam) for cam in choose_cameras(rng, visible_tracklets, cameras)]
    modality, camid = plan_modalities[index]
    camera = make_cameras(seed, cameras)[camid - 1]
    background = render_background(camera, seed, height, width, supersample)
    t_rng = identity_rng(seed, pid, 1 + index)
    plan = plan_tracklet(t_rng, attrs, camera, frames, height, width)
    render = render_visible if modality == "visible" else render_infrared
    images = render(attrs, camera, background, plan, t_rng, height, width, supersample)
    coverage = np.stack([
        person_coverage(rasterize(attrs, pose, plan.direction, plan.occluder, height, width, supersample)[0],
                        supersample)
        for pose in plan.poses
    ]).astype(np.float32)
    return SynthTrackletWithMasks(frames=np.stack(images), masks=coverage >= 0.5, coverage=coverage,
                                  pid=pid, modality=modality, camid=camid, index=index)
