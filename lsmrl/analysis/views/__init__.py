"""The analyses of an :class:`lsmrl.analysis.Explorer`, one object per analysis (``explorer.<name>``).

=====================  ===============================  ==============================================
attribute              class                            what
=====================  ===============================  ==============================================
``explorer.uploads``   :class:`UploadRetrieval`         rank the gallery for an uploaded clip
``explorer.gap``       :class:`GapAnalysis`             gap metrics per stage, UMAP layouts and figure
``explorer.diffusion`` :class:`DiffusionAnalysis`       identity prompts, what SD changes, probes
``explorer.failure``   :class:`FailureAnalysis`         worst queries, failure rates, impostors
``explorer.provenance`` :class:`Provenance`             model card and checkpoint comparison
``explorer.attention`` :class:`AttentionAnalysis`       per-frame explanation maps
=====================  ===============================  ==============================================

Each holds a reference to its Explorer (the data, the loaded models, the cache, the
model lock) and nothing else, so the Explorer stays the one thing to open and share.
"""

from lsmrl.analysis.views.attention import AttentionAnalysis
from lsmrl.analysis.views.diffusion import DiffusionAnalysis
from lsmrl.analysis.views.failures import FailureAnalysis
from lsmrl.analysis.views.gap import GapAnalysis
from lsmrl.analysis.views.provenance import Provenance
from lsmrl.analysis.views.uploads import UploadRetrieval

__all__ = ["AttentionAnalysis", "DiffusionAnalysis", "FailureAnalysis", "GapAnalysis", "Provenance",
           "UploadRetrieval"]
