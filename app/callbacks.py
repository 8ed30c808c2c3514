"""The app's event handlers, gathered: one handler object per tab (``app/tabs/<tab>.py``) over one shared
:class:`app.tabs.shared.TabContext`.

Every public handler is wrapped by :func:`app.validation.user_errors`, so any
failure reaches the user as a ``gr.Error`` in plain words and the server keeps
running. Handlers hold no per-user data: the per-session state is a
``gr.State`` value (:mod:`app.session`) passed in and returned.

The API names (``ui.py``) map to: ``/retrieve`` -> ``RetrievalTab.retrieve``,
``/retrieve_video`` -> ``RetrievalTab.retrieve_video``, ``/export_ranking`` ->
``RetrievalTab.export_ranking``, ``/attention`` -> ``AttentionTab.attention``,
``/diffusion`` -> ``DiffusionTab.diffusion``, ``/modality_gap`` ->
``GapTab.modality_gap``, ``/failures`` and ``/impostors`` -> ``FailuresTab``,
``/model_card`` and ``/compare`` -> ``ModelTab``.
"""

from __future__ import annotations

from app import resources as app_resources
from app.config import DEFAULT_LIMITS, UploadLimits
from app.tabs.attention import METHOD_NAMES, METHODS, TARGETS, AttentionTab
from app.tabs.diffusion import DiffusionTab
from app.tabs.failures import FailuresTab
from app.tabs.gap import GapTab
from app.tabs.model import ModelTab
from app.tabs.retrieval import ORDERS, RetrievalTab
from app.tabs.shared import ALL, DIRECTION_LABELS, LRU, TabContext, direction_choices, refresh_if_stale


class Callbacks:
    """The handlers of one app: ``retrieval``, ``attention``, ``diffusion``, ``gap``, ``failures``, ``model``
    (one object per tab) over ``ctx``. The endpoints the benchmark scripts call directly are also attributes
    of their own (``retrieve``, ``retrieve_video``, ``modality_gap``, ``frames``)."""

    def __init__(self, resources: "app_resources.Resources", limits: UploadLimits = DEFAULT_LIMITS):
        self.ctx = TabContext(resources, limits)
        self.retrieval = RetrievalTab(self.ctx)
        self.attention = AttentionTab(self.ctx)
        self.diffusion = DiffusionTab(self.ctx)
        self.gap = GapTab(self.ctx)
        self.failures = FailuresTab(self.ctx)
        self.model = ModelTab(self.ctx)
        self.retrieve = self.retrieval.retrieve
        self.retrieve_video = self.retrieval.retrieve_video
        self.modality_gap = self.gap.modality_gap
        self.frames = self.ctx.frames
        self.refresh_if_stale = refresh_if_stale

    @property
    def _frames(self) -> LRU:
        """The decoded-frame cache (``tools/app_bench.py`` swaps it for an empty one to time cold reads)."""
        return self.ctx.frame_cache

    @_frames.setter
    def _frames(self, cache: LRU) -> None:
        self.ctx.frame_cache = cache


__all__ = ["ALL", "Callbacks", "DIRECTION_LABELS", "METHODS", "METHOD_NAMES", "ORDERS", "TARGETS",
           "direction_choices"]
