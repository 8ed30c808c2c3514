"""SynthVVI: a procedural video visible-infrared person re-identification data set.

``generate_synthvvi(out, seed, train_identities, test_identities, frames, ...)``
writes it in the HITSZ-VCM layout (see :mod:`lsmrl.synth.writer`); the CLI
is ``python -m lsmrl synth``. Captions, their closed vocabulary and attribute
probes come from :mod:`lsmrl.synth.captions`; the difficulty bounds (chance,
colour, attribute oracle and silhouette matchers) are
``python -m lsmrl bounds --root DIR``, built on the features of
:mod:`lsmrl.synth.gap_check`; the README figure is
``python -m lsmrl.synth.preview --out docs/synthvvi.png``.
"""

from lsmrl.synth.cameras import CameraSpec, InfraredSettings, VisibleSettings, make_cameras
from lsmrl.synth.captions import attribute_probes, make_caption, probe_truth, synthvvi_vocabulary, tokenize_caption
from lsmrl.synth.figure import TrackletPlan, plan_tracklet
from lsmrl.synth.generate import SynthConfig, generate_synthvvi
from lsmrl.synth.identities import COLOUR_WORDS, IdentityAttributes, sample_identity

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
