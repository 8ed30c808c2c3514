"""Video tracklets: decoding in a child process, limits, and a clear VideoError for every bad input."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from lsmrl.data import Tracklet, VideoLimits, load_tracklet, probe_video, read_video_frames, write_video
from lsmrl.data import video as video_module
from lsmrl.data.video import read_video
from lsmrl.errors import VideoError

T, H, W = 24, 64, 32


def _frames(num: int = T, height: int = H, width: int = W) -> np.ndarray:
    """Smooth content (H.264 keeps it well): a per-frame red level, a horizontal green ramp, constant blue."""
    frames = np.zeros((num, height, width, 3), np.uint8)
    frames[..., 0] = (np.arange(num) * 10 % 256)[:, None, None]
    frames[..., 1] = np.linspace(0, 255, width, dtype=np.uint8)[None, None, :]
    frames[..., 2] = 128
    return frames


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("videos")
    paths = {
        "good": write_video(_frames(), folder / "good.mp4", fps=10),
        "one": write_video(_frames(1), folder / "one.mp4", fps=10),
        "ten": write_video(_frames(10), folder / "ten.mp4", fps=10),
    }
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "text.mp4").write_text("this is a text file, not a video\n")
    data = paths["good"].read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (folder / "clip.mov").write_bytes(data)
    for name in ("empty", "text", "truncated", "clip"):
        paths[name] = next(folder.glob(f"{name}.*"))
    return paths


def test_round_trip(videos):
    frames = read_video_frames(videos["good"], 6, "evenly")
    assert frames.shape == (6, H, W, 3) and frames.dtype == np.uint8
    expected = _frames()[[0, 4, 8, 12, 16, 20]].astype(int)
    assert np.abs(frames.astype(int) - expected).mean() < 6
    # the per-frame red level identifies the frame: sampled in order
    assert np.allclose(frames[..., 0].mean(axis=(1, 2)), [0, 40, 80, 120, 160, 200], atol=8)

    info = probe_video(videos["good"])
    assert (info.num_frames, info.width, info.height, info.codec) == (T, W, H, "h264")
    assert info.fps == pytest.approx(10.0)

    uniform = read_video_frames(videos["good"], 4, "uniform")
    assert np.allclose(uniform[..., 0].mean(axis=(1, 2)), [0, 60, 120, 180], atol=8)
    a = read_video_frames(videos["good"], 5, "restricted_random", rng=np.random.default_rng(3))
    b = read_video_frames(videos["good"], 5, "restricted_random", rng=np.random.default_rng(3))
    assert np.array_equal(a, b)

    # one child for both: the same frames as read_video_frames and the same facts as probe_video
    both, info_too = read_video(videos["good"], 6, "evenly")
    assert np.array_equal(both, frames) and info_too == info


def test_at_most_gives_each_frame_of_a_short_video_once(videos):
    frames, info = read_video(videos["good"], 4 * T, "evenly", at_most=True)
    assert info.num_frames == T and len(frames) == T  # not 4T frames with every frame repeated
    assert np.allclose(frames[..., 0].mean(axis=(1, 2)), _frames()[:, 0, 0, 0].astype(float), atol=8)
    assert len(read_video(videos["good"], 4 * T, "evenly")[0]) == 4 * T  # the default repeats, as T-frame sampling


def test_limit_errors_carry_the_childs_verdict(videos):
    with pytest.raises(VideoError) as too_long:
        read_video(videos["ten"], 6, limits=VideoLimits(max_frames=5))
    assert (too_long.value.kind, too_long.value.detail) == ("too_long", "10")
    with pytest.raises(VideoError) as too_big:
        read_video(videos["good"], 6, limits=VideoLimits(max_pixels=32 * 32))
    assert (too_big.value.kind, too_big.value.detail) == ("resolution", f"{W}x{H}")


def test_video_tracklet_and_reduced_size_decode(videos):
    tracklet = Tracklet(pid=7, camid=1, modality="infrared", video=str(videos["good"]), tid="upload")
    assert load_tracklet(tracklet, 6, "evenly").shape == (6, H, W, 3)
    # long side over decode_max_side: decoded at reduced size (width a multiple of 32, aspect kept)
    assert video_module._reduced_size(1920, 1080, 640) == (640, 360)
    assert video_module._reduced_size(32, 64, 64) == (-1, -1)
    wide = write_video(_frames(4, 64, 128), videos["good"].parent / "wide.mp4")
    small = read_video_frames(wide, 3, limits=VideoLimits(decode_max_side=64))
    assert small.shape == (3, 32, 64, 3)
    assert np.abs(small[..., 1].mean(axis=(0, 1)) - np.linspace(0, 255, 64)).mean() < 12


def test_child_stays_light(videos, tmp_path):
    request = {
        "path": str(videos["good"]), "probe_only": False, "num_samples": 6, "mode": "evenly", "seed": None,
        "limits": asdict(VideoLimits()), "out": str(tmp_path / "f.npy"), "sleep_s": 0,
    }
    reply = video_module._run_child(request, 20)
    assert reply["ok"] and reply["indices"] == [0, 4, 8, 12, 16, 20]
    assert reply["heavy_modules"] == []  # no torch, no lsmrl package in the decoding child
    assert "decord" not in sys.modules  # and no decord in this process


@pytest.mark.parametrize(
    "name,limits,fragments",
    [
        ("missing", None, ["video file not found"]),
        ("empty", None, ["is empty (0 bytes)"]),
        ("text", None, ["could not be decoded as a video", "re-encode it as H.264 mp4"]),
        ("truncated", None, ["could not be decoded as a video"]),
        ("clip", None, ["unsupported video extension '.mov'", "mp4, avi, mkv, webm"]),
        ("one", None, ["only 1 frame(s)", "a tracklet needs at least 2 frames"]),
        ("ten", VideoLimits(max_frames=5), ["has 10 frames", "over the limit of 5 frames"]),
        ("good", VideoLimits(max_bytes=100), ["over the limit of 0.0 MB"]),
        ("good", VideoLimits(max_pixels=32 * 32), ["is 32x64", "over the resolution cap of 1,024 pixels"]),
        ("good", VideoLimits(max_decoded_bytes=10_000), ["decoding 6 frames at 32x64", "sample fewer frames"]),
    ],
)
def test_bad_inputs_raise_video_error(videos, tmp_path, name, limits, fragments):
    path = videos.get(name, tmp_path / "missing.mp4")
    with pytest.raises(VideoError) as info:
        read_video_frames(path, 6, limits=limits)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_probe_errors(videos):
    with pytest.raises(VideoError, match="could not be decoded as a video"):
        probe_video(videos["text"])
    with pytest.raises(VideoError, match="is empty"):
        probe_video(videos["empty"])


def test_timeout_kills_the_child(videos):
    start = time.monotonic()
    with pytest.raises(VideoError, match="decoding took longer than 1.5 s"):
        read_video_frames(videos["good"], 6, limits=VideoLimits(timeout_s=1.5), _child_sleep_s=60)
    assert time.monotonic() - start < 10


def test_write_video_pads_odd_sizes(tmp_path):
    path = write_video(_frames(3, 15, 9), tmp_path / "odd.mp4", fps=5)
    assert read_video_frames(path, 3).shape == (3, 16, 10, 3)
    with pytest.raises(ValueError, match="uint8"):
        write_video(np.zeros((2, 4, 4, 3), np.float32), tmp_path / "bad.mp4")
