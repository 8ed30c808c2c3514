"""Person tracking against ground truth (tools/track_eval.py's crossing scenes), blob splitting, appearance cuts,
tracks kept through merged blobs (guided boxes, extension) and pieces of one person joined again (relinking)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from track_eval import SceneSpec, evaluate  # noqa: E402

from lsmrl.data.people import DetectionConfig, PersonTrack, select_track  # noqa: E402
from lsmrl.data.people.appearance import box_histogram, change_points, outlier_fraction  # noqa: E402
from lsmrl.data.people.detection import FrameDetections, split_wide_blob  # noqa: E402
from lsmrl.data.people.query import mixed_track_warning  # noqa: E402
from lsmrl.data.people.tracking import (  # noqa: E402
    LinkedTrack,
    bytetrack_links,
    extend_through_foreground,
    guide_boxes,
    relink_tracks,
    split_by_appearance,
)
from lsmrl.errors import ConfigError  # noqa: E402


@pytest.mark.parametrize("seed, people", [(9, 3), (3, 4)])
def test_crossing_scene_is_tracked_with_one_identity_per_track(seed, people):
    # Seed 9: three people crossing; seed 3: four, where two cross in a merged blob that neither detector
    # splits (a person there was lost for 5 frames and came back as a new track before guided boxes).
    result = evaluate([seed], SceneSpec(), DetectionConfig(), mix_tolerance=0.1)
    scene = result["scenes"][0]
    assert scene["people"] == people and scene["tracks"] == people
    assert result["overall"]["idf1"] >= 0.95
    assert result["overall"]["num_switches"] == 0
    assert result["auto_picks_mixing_identities"] == []
    assert scene["auto"]["main_share"] == 1.0 and not scene["auto"]["looks_mixed"]


def _detections(boxes, foreground=()) -> FrameDetections:
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    return FrameDetections(boxes, np.full(len(boxes), 0.9, np.float32), np.ones(len(boxes), bool),
                           np.asarray(foreground, np.float32).reshape(-1, 4))


def _walker_box(step: int) -> list[float]:
    """A 40x100 person moving 10 px per step to the right."""
    return [100 + 10 * step, 50, 140 + 10 * step, 150]


def _walking_track(steps, colour=None) -> LinkedTrack:
    track = LinkedTrack()
    for step in steps:
        track.add(step, step, np.array(_walker_box(step), float), 0.9, True)
        if colour is not None:
            track.histograms.append(box_histogram(_uniform(colour), (0, 0, 30, 60)))
    return track


def test_a_missed_person_inside_a_motion_blob_gets_the_predicted_box():
    track = _walking_track(range(5))
    blob = [140, 40, 250, 160]  # a wide solid blob: this person and somebody else, overlapping
    config = DetectionConfig()
    guided = guide_boxes({1: track}, 6, _detections([], [blob]), config)
    np.testing.assert_allclose(guided, [_walker_box(6)], atol=1e-3)  # constant velocity: x0 = 100 + 60
    assert len(guide_boxes({1: track}, 6, _detections([_walker_box(6)], [blob]), config)) == 0  # detected
    assert len(guide_boxes({1: track}, 6, _detections([], [[0, 0, 120, 160]]), config)) == 0  # no blob there
    assert len(guide_boxes({1: track}, 6, _detections([], [blob]), DetectionConfig(guide_with_motion=False))) == 0


def test_guided_boxes_keep_one_track_through_a_merged_blob():
    # Detections in steps 0-4 and 9-13; in 5-8 only a merged blob around the person's path.
    per_frame = [_detections([_walker_box(s)]) if s < 5 or s > 8 else
                 _detections([], [[90 + 10 * s, 40, 160 + 10 * s, 160]]) for s in range(14)]
    short_memory = DetectionConfig(max_gap=1)  # ByteTrack alone forgets the track after one missed step
    kept = bytetrack_links(per_frame, list(range(14)), short_memory)
    assert len(kept) == 1 and kept[0].frames == [0, 1, 2, 3, 4, 9, 10, 11, 12, 13]  # guided boxes not recorded
    lost = bytetrack_links(per_frame, list(range(14)), DetectionConfig(max_gap=1, guide_with_motion=False))
    assert len(lost) == 2


def test_a_track_is_extended_through_the_blob_it_walks_out_of():
    track = _walking_track(range(4, 10))
    per_frame = [_detections([], [[80, 40, 200, 160]]) if s < 4 else _detections([_walker_box(s)]) for s in range(12)]
    per_frame[1] = _detections([], [])  # no foreground at step 1: the extension stops there
    extend_through_foreground(track, per_frame, list(range(12)), DetectionConfig())
    assert sorted(track.extrapolated) == [2, 3]
    np.testing.assert_allclose(track.extrapolated[2], _walker_box(2), atol=1e-3)
    frames, boxes = track.dense()
    assert frames == tuple(range(2, 10)) and boxes[0] == tuple(_walker_box(2))


def test_a_track_lost_in_a_gap_is_relinked_only_to_a_piece_that_looks_the_same_where_it_was_heading():
    red, blue = (200, 30, 30), (30, 40, 200)
    config = DetectionConfig()
    before, same = _walking_track(range(5), red), _walking_track(range(9, 14), red)
    joined = relink_tracks([before, same], config)
    assert len(joined) == 1 and joined[0].steps == [0, 1, 2, 3, 4, 9, 10, 11, 12, 13]
    assert len(joined[0].histograms) == 10
    other_colour = relink_tracks([_walking_track(range(5), red), _walking_track(range(9, 14), blue)], config)
    assert len(other_colour) == 2  # where the person was heading, but somebody else
    elsewhere = _walking_track(range(9, 14), red)
    for box in elsewhere.boxes:
        box[[1, 3]] += 150  # the same colours 150 px lower: not where the first track was heading
    assert len(relink_tracks([_walking_track(range(5), red), elsewhere], config)) == 2
    too_late = _walking_track(range(5 + config.relink_max_gap, 10 + config.relink_max_gap), red)
    assert len(relink_tracks([_walking_track(range(5), red), too_late], config)) == 2
    assert len(relink_tracks([_walking_track(range(5), red), _walking_track(range(9, 14), red)],
                             DetectionConfig(relink=False))) == 2


@pytest.mark.parametrize("field, value", [("guide_score", 0.3), ("guide_score", 0.05), ("relink_distance", 0.4),
                                          ("extend_max_steps", -1), ("guide_history", 0)])
def test_tracking_settings_are_validated(field, value):
    with pytest.raises(ConfigError):
        DetectionConfig(**{field: value})


def _two_people_mask(overlap: int) -> np.ndarray:
    """Two 40x120 bodies with 16x20 heads, the second shifted right by 40 - overlap px."""
    mask = np.zeros((140, 80 - overlap + 2), bool)
    for left in (1, 41 - overlap):
        mask[22:140, left : left + 40] = True  # body
        mask[0:22, left + 12 : left + 28] = True  # head
    return mask


def test_a_blob_of_two_people_is_cut_between_their_heads():
    pieces = split_wide_blob(_two_people_mask(overlap=10), person_aspect=2.0)
    assert len(pieces) == 2
    (a0, _, a1, _), (b0, _, b1, _) = pieces
    assert a0 == 1 and b1 == 71  # outer edges of the two bodies (1-41 and 31-71)
    assert 29 <= a1 == b0 <= 43  # the cut lies between the heads (columns 13-28 and 43-58)
    assert all(y1 - y0 == 140 for _, y0, _, y1 in pieces)


def test_a_solid_wide_blob_is_dropped():
    assert split_wide_blob(np.ones((40, 100), bool), person_aspect=2.0) == []


def _uniform(colour, size=(60, 30)) -> np.ndarray:
    return np.full((*size, 3), colour, np.uint8)


def test_a_track_that_changes_colour_is_cut_there():
    red, blue = (200, 30, 30), (30, 40, 200)
    frames = np.stack([_uniform(red)] * 5 + [_uniform(blue)] * 4)
    track = LinkedTrack()
    for t in range(len(frames)):
        track.add(t, t, np.array([0, 0, 30, 60], float), 1.0, True)
    pieces = split_by_appearance(track, frames, DetectionConfig())
    assert [p.frames for p in pieces] == [[0, 1, 2, 3, 4], [5, 6, 7, 8]]
    histograms = [box_histogram(f, (0, 0, 30, 60)) for f in frames]
    assert change_points(np.stack(histograms), 0.4, 3) == [5]
    assert outlier_fraction(np.stack(histograms[:5]), 0.5) == 0.0
    alternating = np.stack([histograms[0], histograms[5]] * 4)
    assert outlier_fraction(alternating, 0.5) == 1.0  # the median of two colours is like neither


def test_auto_skips_a_mixed_track_and_the_query_warns():
    thumb = np.zeros((128, 64, 3), np.uint8)
    long_mixed = PersonTrack(1, tuple(range(20)), ((0, 0, 10, 20),) * 20, 1.0, thumb, 0.45, looks_mixed=True)
    short_clean = PersonTrack(2, tuple(range(12)), ((0, 0, 10, 20),) * 12, 1.0, thumb, 0.0)
    assert select_track([long_mixed, short_clean], "auto") is short_clean
    assert select_track([long_mixed], "auto") is long_mixed
    assert mixed_track_warning(short_clean) is None
    assert "Person 1 may be more than one person: 45%" in mixed_track_warning(long_mixed)
