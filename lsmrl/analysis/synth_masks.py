"""SynthVVI tracklets with their person masks, for checking where attention maps look.

:func:`render_tracklet_with_masks` repeats, for one tracklet, exactly the draws
of :func:`lsmrl.synth.generate.render_identity` (same random streams, same
renderers), so its frames are the generator's frames before JPEG compression.
The mask comes from the same part-label map the renderers colour
(:func:`lsmrl.synth.figure.rasterize`): a pixel belongs to the person when
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

from lsmrl.synth.cameras import make_cameras, render_background
from lsmrl.synth.figure import BACKGROUND, FAR, OCCLUDER, PASSER, PASSER_SKIN, rasterize
from lsmrl.synth.generate import SynthConfig, identity_plan, render_tracklet_frames, tracklet_plan


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
    # poles, benches and passers-by in front of the person hide it
    person = ((part != BACKGROUND) & (part != OCCLUDER) & (part != PASSER) & (part != PASSER_SKIN)).astype(np.float32)
    s = int(supersample)
    height, width = person.shape[0] // s, person.shape[1] // s
    return person.reshape(height, s, width, s).mean(axis=(1, 3))


def render_tracklet_with_masks(
    pid: int,
    index: int = 0,
    *,
    seed: int = 0,
    frames: int | tuple[int, int] = (16, 32),
    infrared: str = "nir",
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
    frame_range = (frames, frames) if isinstance(frames, int) else (int(frames[0]), int(frames[1]))
    config = SynthConfig(seed=seed, frames=frame_range, infrared=infrared, height=height, width=width,
                         cameras=cameras, supersample=supersample, infrared_tracklets=infrared_tracklets,
                         visible_tracklets=visible_tracklets, train_identities=0, test_identities=max(1, pid))
    config.validate()
    if not 0 <= index < infrared_tracklets + visible_tracklets:
        raise ValueError(f"index must be in [0, {infrared_tracklets + visible_tracklets}), got {index}")
    # the generator's own draws, in its order (generate.identity_plan / tracklet_plan)
    attrs, plan_modalities = identity_plan(config, pid)
    modality, camid = plan_modalities[index]
    camera = make_cameras(seed, cameras)[camid - 1]
    background = render_background(camera, seed, height, width, supersample)
    plan, t_rng = tracklet_plan(config, attrs, camera, pid, index)
    images = render_tracklet_frames(config, attrs, modality, camera, background, plan, t_rng)
    coverage = np.stack([
        person_coverage(rasterize(attrs, pose, plan.direction, plan.occluder, height, width, supersample,
                                  view_angle=plan.view_angle, passerby=plan.passerby, frame_index=t)[0],
                        supersample)
        for t, pose in enumerate(plan.poses)
    ]).astype(np.float32)
    return SynthTrackletWithMasks(frames=np.stack(images), masks=coverage >= 0.5, coverage=coverage,
                                  pid=pid, modality=modality, camid=camid, index=index)
