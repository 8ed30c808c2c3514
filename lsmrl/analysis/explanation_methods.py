"""The names of the explanation methods (:mod:`lsmrl.analysis.attention`), free of torch.

The explorer checks a requested method against them without loading the
explanation code, which imports torch and pytorch-grad-cam.
"""

from __future__ import annotations

#: How a Grad-CAM map weighs the hooked layer's channels: Grad-CAM averages each channel's gradient over the
#: frame's grid; HiResCAM multiplies gradient and activation token by token (Draelos & Carin 2020).
CAM_WEIGHTINGS = ("gradcam", "hirescam")
#: What :func:`lsmrl.analysis.attention.explain` takes.
EXPLANATION_METHODS = CAM_WEIGHTINGS + ("occlusion", "rollout")
