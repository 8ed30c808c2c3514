"""Person detection for video queries (lsmrl.data.people): a two-person scene built from SynthVVI clips.

The scene pastes two committed SynthVVI test tracklets (visible, 128x64) on a
400x192 textured background: person A walks right through all 16 frames,
person B walks left and leaves after frame 11. Clips are picked by listing
``assets/synthvvi/Test`` (the data set may be regenerated), never by name.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from lsmrl.data.people import (
    DetectionConfig,
    NoPersonFoundError,
    PersonTrack,
    UnknownPersonError,
    Walker,
    check_declared_modality,
    compose_scene,
    crop_box,
    crop_track,
    detect_people,
    is_person_crop,
    preview_frame_index,
    preview_image,
    scan_frame_indices,
    select_track,
    textured_background,
    track_colour,
)
from lsmrl.data.people.crops import padded_box
from lsmrl.data.people.detection import box_iou
from lsmrl.errors import ConfigError, VideoError

# SynthVVI v1 person crops (a person on a plain wall, 12 frames; 8 identities, both modalities), frozen here so
# that these tests do not depend on the shipped split, whose v2 frames are cluttered scenes.
SYNTH_TEST = Path(__file__).resolve().parent / "data" / "people_v1" / "Test"
NUM_FRAMES = 16
B_LAST_FRAME = 11


def _numbered(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".png")), key=lambda p: int(p.stem))


def synth_clip(identity_index: int, modality: str = "rgb") -> np.ndarray:
    """The first camera's tracklet (T, 128, 64, 3) of the identity at that position in the listing."""
    identities = sorted(p for p in SYNTH_TEST.iterdir() if p.is_dir())
    identity = identities[identity_index % len(identities)]
    camera = sorted(p for p in (identity / modality).iterdir() if p.is_dir())[0]
    return np.stack([np.asarray(Image.open(path).convert("RGB")) for path in _numbered(camera)])


def _iou(a, b) -> float:
    return float(box_iou(np.array([a], float), np.array([b], float))[0, 0])


@pytest.fixture(scope="module")
def scene():
    count = len([p for p in SYNTH_TEST.iterdir() if p.is_dir()])
    clip_a, clip_b = synth_clip(0), synth_clip(count - 1)  # identities 201 and 251 of the v1 test split
    walkers = [
        Walker(clip_a, start=(8, 40), velocity=(8, 0)),
        Walker(clip_b, start=(328, 48), velocity=(-8, 0), last_frame=B_LAST_FRAME),
    ]
    frames, truth = compose_scene(walkers, num_frames=NUM_FRAMES, size=(192, 400))
    return frames, truth, (clip_a, clip_b)


@pytest.fixture(scope="module")
def tracks(scene) -> list[PersonTrack]:
    return detect_people(scene[0])


def _hit_rate(track: PersonTrack, truth: dict) -> float:
    """Fraction of the walker's frames where the track's box overlaps the pasted box by IoU > 0.5."""
    return float(np.mean([track.box_at(t) is not None and _iou(track.box_at(t), box) > 0.5 for t, box in truth.items()]))


def test_two_walkers_become_two_tracks_longest_first(scene, tracks):
    _, truth, _ = scene
    assert [t.id for t in tracks] == [1, 2]
    assert [t.length for t in tracks] == [NUM_FRAMES, B_LAST_FRAME + 1]  # A whole clip, B until it leaves
    assert tracks[0].frame_indices == tuple(range(NUM_FRAMES))
    assert tracks[1].frame_indices == tuple(range(B_LAST_FRAME + 1))
    assert _hit_rate(tracks[0], truth[0]) >= 0.8
    assert _hit_rate(tracks[1], truth[1]) >= 0.8
    assert all(t.score > 0 for t in tracks)


def test_track_ids_follow_the_same_person_over_time(scene, tracks):
    _, truth, _ = scene
    for track, own, other in ((tracks[0], truth[0], truth[1]), (tracks[1], truth[1], truth[0])):
        for t in track.frame_indices:
            box = track.box_at(t)
            assert _iou(box, own[t]) > (_iou(box, other[t]) if t in other else 0.0), f"track {track.id} frame {t}"
        centres = [(box[0] + box[2]) / 2 for box in track.boxes]
        slope = np.polyfit(track.frame_indices, centres, 1)[0]
        expected = 8 if track is tracks[0] else -8
        assert abs(slope - expected) < 2, f"track {track.id} moves {slope:.1f} px/frame, the walker {expected}"


def test_crop_track_returns_the_pasted_person(scene, tracks):
    frames, _, clips = scene
    for track, own_clip, other_clip in ((tracks[0], clips[0], clips[1]), (tracks[1], clips[1], clips[0])):
        crops = crop_track(frames, track, size=(128, 64), margin=0.0)
        assert crops.shape == (track.length, 128, 64, 3) and crops.dtype == np.uint8
        own, other = [], []
        for crop, t in zip(crops, track.frame_indices):
            period = 2 * len(own_clip) - 2
            step = t % period
            index = step if step < len(own_clip) else period - step
            own.append(np.corrcoef(crop.ravel(), own_clip[index].ravel())[0, 1])
            other.append(np.corrcoef(crop.ravel(), other_clip[min(index, len(other_clip) - 1)].ravel())[0, 1])
        assert np.median(own) > 0.7, f"track {track.id}: crops correlate {np.median(own):.2f} with its person"
        assert np.median(own) > np.median(other) + 0.3
    with_margin = crop_track(frames, tracks[0])
    assert with_margin.shape == (NUM_FRAMES, 128, 64, 3)


def test_thumbnail_is_a_2_to_1_crop_of_the_person(tracks, scene):
    _, _, clips = scene
    for track in tracks:
        assert track.thumbnail.dtype == np.uint8 and track.thumbnail.shape == (128, 64, 3)
    centre = tracks[0].thumbnail[16:112, 8:56].astype(float)
    best = max(np.corrcoef(centre.ravel(), cv2.resize(f, (64, 128))[16:112, 8:56].ravel())[0, 1] for f in clips[0])
    assert best > 0.5


def test_padded_box_and_crop_box_keep_the_aspect_and_repeat_the_border():
    assert padded_box((10, 10, 30, 30), margin=0.0, aspect_hw=2.0) == (10, 0, 30, 40)
    assert padded_box((0, 0, 20, 40), margin=0.1, aspect_hw=2.0) == (-2, -4, 22, 44)
    frame = np.zeros((100, 100, 3), np.uint8)
    frame[:, :, 0] = np.arange(100, dtype=np.uint8)[:, None]  # red = row index
    crop = crop_box(frame, (0, 0, 20, 20), size=(40, 20), margin=0.0)  # padded to rows -10..30
    assert crop.shape == (40, 20, 3)
    assert (crop[:10, :, 0] == 0).all()  # rows above the frame repeat row 0
    assert crop[30, 0, 0] == 20


def test_hog_and_motion_each_work_alone(scene):
    frames, truth, _ = scene
    motion_only = detect_people(frames, DetectionConfig(use_hog=False))
    assert len(motion_only) == 2
    assert _hit_rate(motion_only[0], truth[0]) >= 0.8 and _hit_rate(motion_only[1], truth[1]) >= 0.8
    hog_only = detect_people(frames, DetectionConfig(background_subtraction=False))
    # HOG misses some synthetic figures: whatever it finds must be one of the walkers, not clutter.
    for track in hog_only:
        assert max(_hit_rate(track, truth[0]), _hit_rate(track, truth[1])) > 0.3, f"HOG track {track.to_dict()}"


def test_scanning_fewer_frames_interpolates_the_boxes(scene):
    frames, truth, _ = scene
    assert scan_frame_indices(16, 6) == [0, 3, 6, 9, 12, 15]
    sparse = detect_people(frames, DetectionConfig(max_scan_frames=6, min_track_detections=2))
    longest = sparse[0]
    assert longest.frame_indices == tuple(range(NUM_FRAMES))  # every frame, most of them interpolated
    assert _hit_rate(longest, truth[0]) >= 0.8


def test_a_video_without_people_gives_a_clear_error():
    rng = np.random.default_rng(3)
    background = textured_background(192, 400, seed=3)
    frames = np.repeat(background[None], NUM_FRAMES, axis=0).astype(np.int16)
    frames += rng.integers(-3, 4, frames.shape).astype(np.int16)  # sensor noise
    frames = frames.clip(0, 255).astype(np.uint8)
    for t in range(NUM_FRAMES):  # a car: wide, moving, not a person
        frames[t, 120:160, 10 + 12 * t : 110 + 12 * t] = (200, 30, 30)
    with pytest.raises(NoPersonFoundError, match=r"No person was found .* px tall") as caught:
        detect_people(frames)
    assert isinstance(caught.value, VideoError)  # the app titles it as a video problem


def test_bad_frames_are_refused():
    with pytest.raises(VideoError, match=r"\(T, H, W, 3\)"):
        detect_people(np.zeros((64, 32, 3), np.uint8))
    with pytest.raises(VideoError, match="uint8"):
        detect_people(np.zeros((2, 64, 32, 3), np.float32))
    with pytest.raises(ConfigError, match="nothing would detect people"):
        DetectionConfig(use_hog=False, background_subtraction=False)


def test_select_track_by_id_or_auto(tracks):
    assert select_track(tracks).id == 1  # "auto": the longest
    assert select_track(tracks, 2) is tracks[1]
    assert select_track(tracks, "2") is tracks[1]
    with pytest.raises(UnknownPersonError, match="no person 7 .* 1, 2"):
        select_track(tracks, 7)
    with pytest.raises(UnknownPersonError, match="track id or 'auto'"):
        select_track(tracks, "everyone")


def test_track_to_dict_and_box_at(tracks):
    summary = tracks[1].to_dict()
    assert summary["id"] == 2 and summary["length"] == B_LAST_FRAME + 1
    assert len(summary["boxes"]) == len(summary["frame_indices"]) == summary["length"]
    assert tracks[1].box_at(B_LAST_FRAME + 1) is None and tracks[1].box_at(0) == tuple(summary["boxes"][0])


def test_person_crops_are_recognised_and_scenes_are_not(scene):
    for index in (0, 1):
        for modality in ("rgb", "ir"):
            assert is_person_crop(synth_clip(index, modality)), f"identity #{index} {modality} is a crop"
    assert not is_person_crop(scene[0])  # landscape
    # Portrait 2:1 frames with a person 0.4 of their height: a scene (HOG misses a few such figures).
    scenes_found = 0
    for index in range(3, 8):
        clip = synth_clip(index)
        portrait = np.repeat(textured_background(320, 160, seed=index)[None], len(clip), axis=0)
        portrait[:, 150:278, 48:112] = clip
        scenes_found += not is_person_crop(portrait)
    assert scenes_found >= 3


def test_preview_draws_every_track_with_readable_labels(scene, tracks):
    frames, _, _ = scene
    index = preview_frame_index(tracks, len(frames))
    assert index <= B_LAST_FRAME  # both people are visible there
    image = preview_image(frames[index], tracks, frame_index=index)
    assert image.dtype == np.uint8 and image.shape == (360, 750, 3)  # small frames are upscaled
    for track in tracks:
        assert (image == track_colour(track.id)).all(axis=-1).sum() > 200, f"track {track.id} not drawn"

    # Label text height measured in pixels, on a plain frame.
    plain = np.full((192, 400, 3), 90, np.uint8)
    track = PersonTrack(1, (0,), ((150, 60, 214, 188),), 1.0, np.zeros((128, 64, 3), np.uint8))
    drawn = preview_image(plain, [track], frame_index=0)
    fill = (drawn == track_colour(1)).all(axis=-1)
    rows, cols = np.nonzero(fill[: int(60 * drawn.shape[0] / 192)])  # the label sits above the box
    label = drawn[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    ink_rows = np.nonzero((label.min(axis=-1) > 200).any(axis=1))[0]  # white text on the blue label
    assert ink_rows.max() - ink_rows.min() + 1 >= 11


def test_modality_check_warns_on_contradictions():
    colour = synth_clip(0, "rgb")
    infrared = synth_clip(0, "ir")
    assert "colour" in check_declared_modality(colour, "infrared")
    assert check_declared_modality(colour, "visible") is None
    assert "greyscale" in check_declared_modality(infrared, "visible")
    assert check_declared_modality(infrared, "infrared") is None
    # A grey version of a colour clip with codec-like noise (channels within a few levels) is still grey.
    rng = np.random.default_rng(0)
    grey = np.repeat(np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in colour])[..., None], 3, axis=-1)
    noisy = (grey.astype(np.int16) + rng.integers(-2, 3, grey.shape)).clip(0, 255).astype(np.uint8)
    assert "greyscale" in check_declared_modality(noisy, "visible")
    with pytest.raises(VideoError, match="visible, infrared"):
        check_declared_modality(colour, "thermal")


def test_opencv_has_the_hog_people_detector():
    # requirements.txt pins opencv-python-headless<5: OpenCV 5 removed HOGDescriptor.
    assert int(cv2.__version__.split(".")[0]) == 4 and hasattr(cv2, "HOGDescriptor")


def test_a_still_track_of_motion_blobs_alone_is_a_ghost():
    from lsmrl.data.people.tracking import LinkedTrack

    def track(boxes, from_hog):
        linked = LinkedTrack()
        for step, (box, hog) in enumerate(zip(boxes, from_hog)):
            linked.add(step, step, np.array(box, float), 2.0 if hog else 0.5, hog)
        return linked

    still = [(100, 40, 150, 140), (101, 40, 151, 141), (100, 41, 150, 140)]
    walking = [(100, 40, 150, 140), (112, 40, 162, 140), (124, 40, 174, 140)]
    assert track(still, [False] * 3).is_static_motion_ghost(max_shift=0.1)
    assert not track(still, [False, True, False]).is_static_motion_ghost(max_shift=0.1)  # HOG saw a person
    assert not track(walking, [False] * 3).is_static_motion_ghost(max_shift=0.1)  # 24 px > 0.1 x 100 px


def test_the_scene_survives_h264_and_the_safe_decoder(scene, tmp_path):
    """The app's path: an uploaded mp4, decoded in a child process, then detection and the modality check."""
    from lsmrl.data.video import read_video_frames
    from lsmrl.data.video_write import write_video

    frames, truth, _ = scene
    decoded = read_video_frames(write_video(frames, tmp_path / "scene.mp4", fps=8), None, mode="all")
    assert decoded.shape == frames.shape
    tracks = detect_people(decoded)
    assert [t.length for t in tracks] == [NUM_FRAMES, B_LAST_FRAME + 1]
    assert _hit_rate(tracks[0], truth[0]) >= 0.8 and _hit_rate(tracks[1], truth[1]) >= 0.8
    assert not is_person_crop(decoded)
    assert check_declared_modality(decoded, "infrared") is not None
    grey = np.repeat(np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])[..., None], 3, axis=-1)
    grey_decoded = read_video_frames(write_video(grey, tmp_path / "grey.mp4", fps=8), None, mode="all")
    assert check_declared_modality(grey_decoded, "visible") is not None
    assert check_declared_modality(grey_decoded, "infrared") is None


def test_person_query_uses_a_crop_whole_and_a_scene_by_person(scene, tracks):
    from lsmrl.data.people import person_query

    frames, truth, _ = scene
    crop = synth_clip(0)
    whole = person_query(crop, declared="visible")
    assert whole.used_whole_clip and whole.frames is not None and np.array_equal(whole.frames, crop)
    assert whole.modality_warning is None

    auto = person_query(frames, declared="infrared", size=(256, 128))
    assert auto.person.id == 1 and [t.id for t in auto.tracks] == [1, 2]
    assert auto.frames.shape == (NUM_FRAMES, 256, 128, 3)
    assert "colour" in auto.modality_warning
    second = person_query(frames, person="2", tracks=tracks)  # the tracks of an earlier detection
    assert second.person is tracks[1] and len(second.frames) == B_LAST_FRAME + 1
    assert _hit_rate(second.person, truth[1]) >= 0.8
    with pytest.raises(UnknownPersonError):
        person_query(frames, person=3, tracks=tracks)
    # a crop check the caller already has is used as it is (no HOG): the same answers as computing it
    assert person_query(crop, declared="visible", is_crop=True).used_whole_clip
    assert person_query(frames, tracks=tracks, is_crop=False).person.id == auto.person.id


def test_markers_of_people_standing_together_never_overlap():
    from lsmrl.data.people.crops import place_labels

    # three people almost on top of each other, near the top edge: every corner spot is taken once
    boxes = [(100, 5, 160, 125), (104, 6, 164, 126), (108, 7, 168, 127), (300, 50, 360, 170)]
    spots = place_labels(boxes, [(24, 20)] * len(boxes), (200, 400))
    rects = [(x, y, x + 24, y + 20) for x, y in spots]
    for i, a in enumerate(rects):
        assert 0 <= a[0] and a[2] <= 400 and 0 <= a[1] and a[3] <= 200
        for b in rects[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    assert spots[3] == (300, 30)  # a person standing alone keeps the spot above its box
    # the drawn preview holds one marker per track, in the track's colour
    plain = np.full((192, 400, 3), 90, np.uint8)
    crowd = [PersonTrack(i + 1, (0,), ((150 + 4 * i, 60, 214 + 4 * i, 188),), 1.0, np.zeros((128, 64, 3), np.uint8))
             for i in range(3)]
    drawn = preview_image(plain, crowd, frame_index=0)
    for track in crowd:
        assert (drawn == track_colour(track.id)).all(axis=-1).sum() > 100
