"""Readers of the official data set layouts; each registers itself with :func:`lsmrl.data.registry.register_dataset`."""

from lsmrl.data.datasets.buptcampus import read_buptcampus
from lsmrl.data.datasets.hitsz_vcm import read_hitsz_vcm, read_vcm_layout
from lsmrl.data.datasets.synthvvi import read_synthvvi, read_synthvvi_json

__all__ = ["read_buptcampus", "read_hitsz_vcm", "read_vcm_layout", "read_synthvvi", "read_synthvvi_json"]
