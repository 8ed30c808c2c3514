"""SynthVVI: a procedural video visible-infrared person re-identification data set.

``generate_synthvvi(out, seed, train_identities, test_identities, frames, ...)``
writes it in the HITSZ-VCM layout (see :mod:`lsmrl.data.synth.writer`); the CLI
is ``python -m lsmrl synth``. Captions, their closed vocabulary and attribute
probes come from :mod:`lsmrl.data.synth.captions`; the difficulty bounds (chance,
colour, attribute oracle and silhouette matchers) are
``python -m lsmrl.data.synth.bounds --root DIR``, built on the features of
:mod:`lsmrl.data.synth.gap_check`; the README figure is
``python -m lsmrl.data.synth.preview --out docs/synthvvi.png``.
"""

from lsmrl.data.synth.captions import (
    attribute_probes,
    make_caption,
    probe_truth,
    synthvvi_vocabulary,
    tokenize_caption,
)
from lsmrl.data.synth.cameras import CameraSpec, InfraredSettings, VisibleSettings, make_cameras
from lsmrl.data.synth.figure import TrackletPlan, plan_tracklet
from lsmrl.data.synth.generate import SynthConfig, generate_synthvvi
from lsmrl.data.synth.identities import COLOUR_WORDS, IdentityAttributes, sample_identity

__all__ = [
    "COLOUR_WORDS",
    "CameraSpec",
    "IdentityAttributes",
    "InfraredSettings",
    "SynthConfig",
    "TrackletPlan",
    "VisibleSettings",
    "attribute_probes",
    "generate_synthvvi",
    "make_cameras",
    "make_caption",
    "plan_tracklet",
    "probe_truth",
    "sample_identity",
    "synthvvi_vocabulary",
    "tokenize_caption",
]
