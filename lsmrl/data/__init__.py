"""Data: tracklet records, data set readers, frame sampling, video decoding and the identity sampler.

Importing ``lsmrl.data`` is cheap: numpy only (torch and PIL load when a
transform or a loader runs; decord only ever loads in a child process).
"""

from lsmrl.data.frame_indices import SAMPLING_MODES, sample_frame_indices
from lsmrl.data.registry import available_datasets, build_dataset, dataset_statistics, register_dataset
from lsmrl.data.samplers import CrossModalIdentitySampler
from lsmrl.data.sampling import CLIP_MEAN, CLIP_STD, FrameTransform, build_transform, load_tracklet
from lsmrl.data.tracklet import (
    DIRECTIONS,
    INFRARED,
    INFRARED_TO_VISIBLE,
    MODALITIES,
    VISIBLE,
    VISIBLE_TO_INFRARED,
    Tracklet,
    VVIDataset,
)
from lsmrl.data.video import VideoInfo, VideoLimits, probe_video, read_video_frames
from lsmrl.data.video_write import write_video

__all__ = [
    "Tracklet",
    "VVIDataset",
    "VISIBLE",
    "INFRARED",
    "MODALITIES",
    "INFRARED_TO_VISIBLE",
    "VISIBLE_TO_INFRARED",
    "DIRECTIONS",
    "build_dataset",
    "register_dataset",
    "available_datasets",
    "dataset_statistics",
    "sample_frame_indices",
    "SAMPLING_MODES",
    "build_transform",
    "FrameTransform",
    "CLIP_MEAN",
    "CLIP_STD",
    "load_tracklet",
    "read_video_frames",
    "probe_video",
    "write_video",
    "VideoLimits",
    "VideoInfo",
    "CrossModalIdentitySampler",
]
