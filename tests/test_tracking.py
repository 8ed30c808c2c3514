"""Person tracking against ground truth (tools/track_eval.py's crossing scenes), blob splitting, appearance cuts."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from track_eval import SceneSpec, evaluate  # noqa: E402

from lsmrl.data.people import DetectionConfig, PersonTrack, select_track  # noqa: E402
from lsmrl.data.people.appearance import box_histogram, change_points, outlier_fraction  # noqa: E402
from lsmrl.data.people.detection import split_wide_blob  # noqa: E402
from lsmrl.data.people.query import mixed_track_warning  # noqa: E402
from lsmrl.data.people.tracking import LinkedTrack, split_by_appearance  # noqa: E402


@pytest.mark.parametrize("seed", [9, 12])
def test_crossing_scene_is_tracked_with_one_identity_per_track(seed):
    # Seeds 9 and 12: three people crossing; the tracker currently follows all three without a switch.
    result = evaluate([seed], SceneSpec(), DetectionConfig(), mix_tolerance=0.1)
    scene = result["scenes"][0]
    assert scene["people"] == 3
    assert result["overall"]["idf1"] >= 0.9
    assert result["overall"]["num_switches"] == 0
    assert result["auto_picks_mixing_identities"] == []
    assert scene["auto"]["main_share"] == 1.0 and not scene["auto"]["looks_mixed"]


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
