"""The named sequence features of one LSMRL forward, in pipeline order.

``stfl``: the mean of the frames' class tokens after STFL; ``sd``: after
semantic diffusion; ``cmi``: after cross-modal interaction; ``embedding``: the
retrieval feature (after the BNNeck). A module that is switched off passes its
input through, so every stage is always present. Kept free of torch so that the
data and analysis code can name the stages without loading the model.
"""

from __future__ import annotations

STAGES = ("stfl", "sd", "cmi", "embedding")
