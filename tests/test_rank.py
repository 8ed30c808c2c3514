"""Ranking metrics (CMC, mAP, mINP) and the two-direction VVI-ReID protocol.

Hand-computed cases first, then agreement with a deliberately naive per-query
reference written here (it shares no code with lsmrl.evaluation).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from lsmrl import evaluate_rank
from lsmrl.data.tracklet import INFRARED, INFRARED_TO_VISIBLE, VISIBLE, VISIBLE_TO_INFRARED, Tracklet, VVIDataset
from lsmrl.evaluation import (
    cosine_distance,
    direction_distmats,
    euclidean_distance,
    evaluate_directions,
    format_metrics_table,
    query_records,
    rank_query,
    top_k_gallery,
)


def one_query(distances, g_pids, g_camids, q_pid=1, q_camid=0, **kwargs):
    return evaluate_rank(np.array([distances], dtype=float), [q_pid], g_pids, [q_camid], g_camids, **kwargs)


# --------------------------------------------------------------------------- hand-computed cases


def test_perfect_ranking_scores_one():
    # true matches (pid 1) at ranks 1 and 2 of 4: AP = (1/1 + 2/2)/2 = 1, INP = 2/2 = 1
    r = one_query([0.1, 0.2, 0.3, 0.4], g_pids=[1, 1, 2, 3], g_camids=[1, 2, 1, 1])
    assert r["mAP"] == 1.0 and r["mINP"] == 1.0
    np.testing.assert_array_equal(r["cmc"], np.ones(20))
    assert r["first_match_rank"].tolist() == [1]
    assert r["num_matches"].tolist() == [2]
    assert r["num_valid"] == 1 and r["num_skipped"] == 0


def test_one_miss_before_the_match():
    # ranking: pid 2 (miss), pid 1 (hit, rank 2), pid 3, pid 1 (hit, rank 4)
    # AP = (1/2 + 2/4) / 2 = 0.5 ; INP = 2 matches / rank 4 = 0.5 ; CMC@1 = 0, CMC@k>=2 = 1
    r = one_query([0.1, 0.2, 0.3, 0.4], g_pids=[2, 1, 3, 1], g_camids=[1, 1, 1, 1])
    assert r["mAP"] == pytest.approx(0.5)
    assert r["mINP"] == pytest.approx(0.5)
    assert r["cmc"][0] == 0.0 and np.all(r["cmc"][1:] == 1.0)
    assert r["first_match_rank"].tolist() == [2]


def test_several_true_matches():
    # 6 gallery items, true matches at ranks 1, 3 and 6
    # AP = (1/1 + 2/3 + 3/6) / 3 = (1 + 0.666.. + 0.5) / 3 = 0.72222.. ; INP = 3 / 6 = 0.5
    distances = [0.6, 0.1, 0.2, 0.3, 0.4, 0.5]  # gallery index 1 ranks first, index 0 last
    g_pids = [1, 1, 7, 1, 8, 9]  # ranked pids: 1, 7, 1, 8, 9, 1
    r = one_query(distances, g_pids=g_pids, g_camids=[5] * 6)
    assert r["ap"][0] == pytest.approx((1 + 2 / 3 + 3 / 6) / 3)
    assert r["mAP"] == pytest.approx(0.7222222222)
    assert r["inp"][0] == pytest.approx(0.5)
    assert r["num_matches"].tolist() == [3]


def test_ties_are_broken_by_gallery_order():
    # all distances equal: a stable sort keeps gallery order
    tied = [0.5, 0.5, 0.5]
    r = one_query(tied, g_pids=[2, 1, 3], g_camids=[1, 1, 1])  # match is 2nd in gallery order -> rank 2
    assert r["first_match_rank"].tolist() == [2] and r["mAP"] == pytest.approx(0.5)
    r = one_query(tied, g_pids=[1, 2, 3], g_camids=[1, 1, 1])  # match is 1st in gallery order -> rank 1
    assert r["first_match_rank"].tolist() == [1] and r["mAP"] == pytest.approx(1.0)
    # a tie only among some items: the strictly closer item still ranks first
    r = one_query([0.3, 0.3, 0.1], g_pids=[1, 2, 3], g_camids=[1, 1, 1])  # order: 2, 0, 1 -> match at rank 2
    assert r["first_match_rank"].tolist() == [2]


def test_query_without_valid_match_is_skipped_and_counted():
    distmat = np.array([[0.1, 0.2, 0.3], [0.1, 0.2, 0.3], [0.3, 0.2, 0.1]])
    q_pids, q_camids = [1, 9, 1], [0, 0, 0]  # pid 9 is not in the gallery
    g_pids, g_camids = [1, 2, 3], [1, 1, 1]
    r = evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids)
    assert r["num_valid"] == 2 and r["num_skipped"] == 1
    assert r["valid"].tolist() == [True, False, True]
    assert math.isnan(r["ap"][1]) and math.isnan(r["inp"][1]) and r["first_match_rank"][1] == -1
    # valid queries: match at rank 1 (AP 1) and at rank 3 (AP 1/3); the skipped one does not count
    assert r["mAP"] == pytest.approx((1 + 1 / 3) / 2)
    assert r["cmc"][0] == pytest.approx(0.5) and r["cmc"][2] == pytest.approx(1.0)


def test_no_valid_query_raises_a_clear_error():
    with pytest.raises(ValueError, match="no query has a true match"):
        one_query([0.1, 0.2], g_pids=[2, 3], g_camids=[1, 1])
    # the only true match is removed by the camera rule
    with pytest.raises(ValueError, match="same-camera"):
        one_query([0.1, 0.2], g_pids=[1, 3], g_camids=[0, 1])


def test_camera_filter_on_and_off():
    # query pid 1, camera 0. Gallery (in distance order):
    #   0: pid 1 cam 0 (d 0.1)  <- same identity AND same camera: removed when the filter is on
    #   1: pid 2 cam 0 (d 0.2)  <- same camera, other identity: always kept
    #   2: pid 1 cam 1 (d 0.3)
    distances, g_pids, g_camids = [0.1, 0.2, 0.3], [1, 2, 1], [0, 0, 1]
    on = one_query(distances, g_pids, g_camids, remove_same_camera=True)
    # ranking [pid2, pid1]: match at rank 2 -> AP = 1/2, INP = 1/2, R1 = 0
    assert on["ap"][0] == pytest.approx(0.5) and on["inp"][0] == pytest.approx(0.5)
    assert on["cmc"][0] == 0.0 and on["num_matches"][0] == 1
    off = one_query(distances, g_pids, g_camids, remove_same_camera=False)
    # ranking [pid1, pid2, pid1]: matches at ranks 1 and 3 -> AP = (1 + 2/3)/2 = 0.8333, INP = 2/3
    assert off["ap"][0] == pytest.approx((1 + 2 / 3) / 2) and off["inp"][0] == pytest.approx(2 / 3)
    assert off["cmc"][0] == 1.0 and off["num_matches"][0] == 2
    # only query -> filter on makes it invalid if its only match shares the camera
    with pytest.raises(ValueError):
        one_query([0.1, 0.2], [1, 2], [0, 0], remove_same_camera=True)
    assert one_query([0.1, 0.2], [1, 2], [0, 0], remove_same_camera=False)["mAP"] == 1.0


def test_rank_query_lists_what_evaluate_rank_counts():
    # the gallery of test_camera_filter_on_and_off, out of distance order: ties keep gallery order
    distances, g_pids, g_camids = [0.3, 0.1, 0.2, 0.2], [1, 1, 2, 3], [1, 0, 0, 0]
    columns, is_match = rank_query(distances, g_pids, g_camids, q_pid=1, q_camid=0)
    assert columns.tolist() == [2, 3, 0] and is_match.tolist() == [False, False, True]  # column 1 removed
    columns, is_match = rank_query(distances, g_pids, g_camids, q_pid=1, q_camid=0, remove_same_camera=False)
    assert columns.tolist() == [1, 2, 3, 0] and is_match.tolist() == [True, False, False, True]
    # the first true match's rank is the one evaluate_rank scores (AP 1/3 for a single match at rank 3)
    assert one_query(distances, g_pids, g_camids)["ap"][0] == pytest.approx(1 / 3)


def test_cmc_length_does_not_depend_on_gallery_size():
    r = one_query([0.2, 0.1], g_pids=[1, 2], g_camids=[1, 1], max_rank=5)
    assert r["cmc"].tolist() == [0.0, 1.0, 1.0, 1.0, 1.0]


def test_bad_inputs():
    with pytest.raises(ValueError, match="NaN"):
        one_query([np.nan, 0.1], g_pids=[1, 2], g_camids=[1, 1])
    with pytest.raises(ValueError, match="g_pids"):
        evaluate_rank(np.zeros((1, 3)), [1], [1, 2], [0], [1, 1])
    with pytest.raises(ValueError, match="2-D"):
        evaluate_rank(np.zeros(3), [1], [1, 2, 3], [0], [1, 1, 1])


def test_accepts_torch_tensors():
    torch = pytest.importorskip("torch")
    tensors = [torch.tensor(x) for x in ([[0.2, 0.1]], [1], [2, 1], [0], [1, 1])]
    r = evaluate_rank(*tensors)
    assert r["mAP"] == 1.0


# --------------------------------------------------------------------------- naive reference


def naive_evaluate(distmat, q_pids, g_pids, q_camids, g_camids, max_rank, remove_same_camera):
    """One query at a time, plain Python lists, ties by gallery index."""
    cmc_sum = [0.0] * max_rank
    aps, inps, firsts, kept_lists = [], [], [], []
    num_valid = 0
    for i in range(len(q_pids)):
        order = sorted(range(len(g_pids)), key=lambda j: (distmat[i][j], j))
        ranked = []  # True/False for each kept gallery item, best first
        kept = []  # the kept gallery indices, best first
        for j in order:
            if remove_same_camera and g_pids[j] == q_pids[i] and g_camids[j] == q_camids[i]:
                continue
            ranked.append(g_pids[j] == q_pids[i])
            kept.append(j)
        kept_lists.append(kept)
        if not any(ranked):
            aps.append(float("nan"))
            inps.append(float("nan"))
            firsts.append(-1)
            continue
        num_valid += 1
        hit_ranks = [k + 1 for k, hit in enumerate(ranked) if hit]
        precisions = [(n + 1) / rank for n, rank in enumerate(hit_ranks)]
        aps.append(sum(precisions) / len(hit_ranks))
        inps.append(len(hit_ranks) / hit_ranks[-1])
        firsts.append(hit_ranks[0])
        for k in range(max_rank):
            if hit_ranks[0] <= k + 1:
                cmc_sum[k] += 1
    valid_aps = [a for a in aps if not math.isnan(a)]
    valid_inps = [a for a in inps if not math.isnan(a)]
    return {
        "cmc": [c / num_valid for c in cmc_sum],
        "mAP": sum(valid_aps) / num_valid,
        "mINP": sum(valid_inps) / num_valid,
        "ap": aps,
        "inp": inps,
        "first_match_rank": firsts,
        "num_skipped": len(q_pids) - num_valid,
        "kept": kept_lists,
    }


@pytest.mark.parametrize("remove_same_camera", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_naive_reference(seed, remove_same_camera):
    rng = np.random.default_rng(seed)
    num_query, num_gallery = 37, 53
    # coarse distances create many ties; few identities and cameras create many filtered items
    distmat = rng.integers(0, 12, size=(num_query, num_gallery)).astype(float)
    q_pids, g_pids = rng.integers(0, 9, num_query), rng.integers(0, 8, num_gallery)  # pid 8 never in gallery
    q_camids, g_camids = rng.integers(0, 3, num_query), rng.integers(0, 3, num_gallery)
    fast = evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=20,
                         remove_same_camera=remove_same_camera, chunk_size=7, topk=60)  # topk > gallery
    slow = naive_evaluate(distmat.tolist(), q_pids.tolist(), g_pids.tolist(), q_camids.tolist(),
                          g_camids.tolist(), 20, remove_same_camera)
    np.testing.assert_allclose(fast["cmc"], slow["cmc"])
    assert fast["mAP"] == pytest.approx(slow["mAP"])
    assert fast["mINP"] == pytest.approx(slow["mINP"])
    np.testing.assert_allclose(fast["ap"], slow["ap"], equal_nan=True)
    np.testing.assert_allclose(fast["inp"], slow["inp"], equal_nan=True)
    assert fast["first_match_rank"].tolist() == slow["first_match_rank"]
    assert fast["num_skipped"] == slow["num_skipped"]
    assert fast["num_skipped"] > 0  # the case is exercised
    for i, kept in enumerate(slow["kept"]):
        n = len(kept)
        assert fast["topk_indices"][i, :n].tolist() == kept and (fast["topk_indices"][i, n:] == -1).all()
        np.testing.assert_array_equal(fast["topk_distances"][i, :n], distmat[i, kept])
        assert np.isnan(fast["topk_distances"][i, n:]).all()
        assert fast["topk_is_match"][i, :n].tolist() == [g_pids[j] == q_pids[i] for j in kept]
        assert not fast["topk_is_match"][i, n:].any()


def test_chunk_size_does_not_change_results():
    rng = np.random.default_rng(5)
    distmat = rng.random((50, 40))
    args = (distmat, rng.integers(0, 6, 50), rng.integers(0, 6, 40), rng.integers(0, 2, 50), rng.integers(0, 2, 40))
    a, b = evaluate_rank(*args, chunk_size=1), evaluate_rank(*args, chunk_size=1000)
    for key in ("cmc", "ap", "inp", "first_match_rank"):
        np.testing.assert_array_equal(a[key], b[key])


# --------------------------------------------------------------------------- distances


def test_distances():
    q = np.array([[3.0, 4.0], [0.0, 0.0]])
    g = np.array([[3.0, 4.0], [-4.0, 3.0], [0.0, 1.0]])
    # cosine: identical -> 0, orthogonal -> 1, (3,4).(0,1)/5 = 0.8 -> 0.2; zero vector -> 1
    np.testing.assert_allclose(cosine_distance(q, g), [[0.0, 1.0, 0.2], [1.0, 1.0, 1.0]], atol=1e-12)
    # euclidean: |(3,4)-(-4,3)| = sqrt(49+1) ; |(3,4)-(0,1)| = sqrt(9+9)
    expected = [[0.0, math.sqrt(50), math.sqrt(18)], [5.0, 5.0, 1.0]]
    np.testing.assert_allclose(euclidean_distance(q, g), expected, atol=1e-6)
    torch = pytest.importorskip("torch")
    out = cosine_distance(torch.tensor(q), torch.tensor(g))
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), cosine_distance(q, g), atol=1e-12)
    np.testing.assert_allclose(euclidean_distance(torch.tensor(q), g).numpy(), euclidean_distance(q, g), atol=1e-6)
    with pytest.raises(ValueError, match="dimension"):
        cosine_distance(q, np.zeros((2, 3)))


# --------------------------------------------------------------------------- the two directions


def assert_same_results(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for name in a:
        assert a[name] == pytest.approx(b[name])


def hitsz_like_dataset(camera_filter: bool = True) -> VVIDataset:
    """Five test identities, cameras that record both modalities (as in HITSZ-VCM).

    Infrared tracklets are the queries of IR->VIS, visible ones its gallery;
    VIS->IR swaps the two sets. Identity 4 has no visible tracklet, so its
    infrared query is always skipped; identity 3's only visible tracklet is on
    the same camera as its infrared one, so with the camera filter that query
    is skipped too.
    """
    rows = [
        # pid, camid, modality
        (0, 1, INFRARED), (0, 2, INFRARED), (1, 1, INFRARED), (2, 3, INFRARED), (3, 2, INFRARED), (4, 1, INFRARED),
        (0, 1, VISIBLE), (0, 3, VISIBLE), (1, 2, VISIBLE), (1, 1, VISIBLE), (2, 3, VISIBLE), (2, 1, VISIBLE),
        (3, 2, VISIBLE),
    ]
    test = [
        Tracklet(pid=p, camid=c, modality=m, frames=(f"{i}/1.jpg",), tid=f"test/{i:05d}")
        for i, (p, c, m) in enumerate(rows)
    ]
    infrared = np.array([i for i, t in enumerate(test) if t.modality == INFRARED])
    visible = np.array([i for i, t in enumerate(test) if t.modality == VISIBLE])
    return VVIDataset(
        name="hitsz-like",
        root=Path("/nonexistent"),
        train=[],
        test=test,
        directions={INFRARED_TO_VISIBLE: (infrared, visible), VISIBLE_TO_INFRARED: (visible, infrared)},
        camera_filter=camera_filter,
    )


def features_for(dataset: VVIDataset, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    identity = rng.normal(size=(5, 8))
    return np.stack([identity[t.pid] + 0.9 * rng.normal(size=8) for t in dataset.test])


@pytest.mark.parametrize("camera_filter", [True, False])
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_directions_equal_two_separate_evaluations(camera_filter, metric):
    dataset = hitsz_like_dataset(camera_filter)
    features = features_for(dataset)
    results = evaluate_directions(features, dataset, metric=metric)
    assert list(results) == [INFRARED_TO_VISIBLE, VISIBLE_TO_INFRARED]
    distance = cosine_distance if metric == "cosine" else euclidean_distance
    pids = np.array([t.pid for t in dataset.test])
    camids = np.array([t.camid for t in dataset.test])
    for name, (q, g) in dataset.directions.items():
        separate = evaluate_rank(distance(features[q], features[g]), pids[q], pids[g], camids[q], camids[g],
                                 remove_same_camera=camera_filter)
        got = results[name]
        assert got["rank1"] == pytest.approx(100 * separate["cmc"][0])
        assert got["rank5"] == pytest.approx(100 * separate["cmc"][4])
        assert got["rank10"] == pytest.approx(100 * separate["cmc"][9])
        assert got["rank20"] == pytest.approx(100 * separate["cmc"][19])
        assert got["mAP"] == pytest.approx(100 * separate["mAP"])
        assert got["mINP"] == pytest.approx(100 * separate["mINP"])
        assert (got["num_query"], got["num_gallery"]) == (len(q), len(g))
        assert got["num_skipped"] == separate["num_skipped"]
    # skipped queries as designed: pid 4 (IR only) always; pid 3 IR query only under the camera filter
    assert results[INFRARED_TO_VISIBLE]["num_skipped"] == (2 if camera_filter else 1)


def test_one_square_distmat_gives_both_directions():
    dataset = hitsz_like_dataset()
    features = features_for(dataset, seed=3)
    square = cosine_distance(features, features)
    from_square = evaluate_directions(dataset=dataset, distmat=square)
    assert_same_results(from_square, evaluate_directions(features, dataset))
    # the reverse direction is the transposed IR->VIS matrix (computed once)
    mats = direction_distmats(features, dataset)
    np.testing.assert_array_equal(mats[VISIBLE_TO_INFRARED], mats[INFRARED_TO_VISIBLE].T)
    assert_same_results(evaluate_directions(dataset=dataset, distmat=mats), from_square)
    with pytest.raises(ValueError, match="exactly one"):
        evaluate_directions(features, dataset, distmat=square)
    with pytest.raises(ValueError, match="test tracklets"):
        evaluate_directions(features[:-1], dataset)


def test_directions_accept_torch_features():
    torch = pytest.importorskip("torch")
    dataset = hitsz_like_dataset()
    features = features_for(dataset, seed=4)
    assert_same_results(evaluate_directions(torch.tensor(features), dataset), evaluate_directions(features, dataset))


def test_query_records_match_the_metrics():
    dataset = hitsz_like_dataset(camera_filter=True)
    features = features_for(dataset, seed=1)
    mats = direction_distmats(features, dataset)
    records = query_records(dataset=dataset, distmat=mats, topk=3)
    results = evaluate_directions(dataset=dataset, distmat=mats)
    for name, (q, g) in dataset.directions.items():
        recs = records[name]
        assert [r.query_index for r in recs] == q.tolist()
        valid = [r for r in recs if r.valid]
        assert len(recs) - len(valid) == results[name]["num_skipped"]
        assert 100 * np.mean([r.ap for r in valid]) == pytest.approx(results[name]["mAP"])
        for row, rec in enumerate(recs):
            query = dataset.test[rec.query_index]
            assert rec.pid == query.pid and rec.camid == query.camid
            assert len(rec.topk_indices) == len(rec.topk_distances) == 3  # >= 4 items remain here
            # the list is what the metric ranks: no same-identity same-camera item, sorted by distance
            for idx, dist, hit in zip(rec.topk_indices, rec.topk_distances, rec.topk_is_match):
                item = dataset.test[idx]
                assert not (item.pid == query.pid and item.camid == query.camid)
                assert hit == (item.pid == query.pid)
                assert dist == pytest.approx(mats[name][row, list(g).index(idx)])
            assert list(rec.topk_distances) == sorted(rec.topk_distances)
            if rec.valid and rec.first_match_rank <= 3:
                assert rec.topk_is_match[rec.first_match_rank - 1]
                assert not any(rec.topk_is_match[: rec.first_match_rank - 1])
            if not rec.valid:
                assert math.isnan(rec.ap) and rec.first_match_rank == -1


def test_top_k_pads_short_rankings():
    top = top_k_gallery(np.array([[0.3, 0.1]]), [1], [1, 2], [0], [0, 0], k=4)
    # pid 1 cam 0 is removed: only gallery item 1 remains
    assert top["indices"].tolist() == [[1, -1, -1, -1]]
    assert top["is_match"].tolist() == [[False, False, False, False]]
    assert np.isnan(top["distances"][0, 1:]).all()


def test_format_metrics_table():
    results = {
        VISIBLE_TO_INFRARED: {"rank1": 64.5, "rank5": 80.0, "rank10": 85.0, "rank20": 90.0, "mAP": 47.7, "mINP": 20.0,
                              "num_query": 5099, "num_gallery": 4584, "num_skipped": 0},
        INFRARED_TO_VISIBLE: {"rank1": 63.7, "rank5": 79.0, "rank10": 84.0, "rank20": 89.0, "mAP": 45.3, "mINP": 19.5,
                              "num_query": 4584, "num_gallery": 5099, "num_skipped": 2},
    }
    lines = format_metrics_table(results).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("IR->VIS: R1 63.70 | R5 79.00 | R10 84.00 | R20 89.00 | mAP 45.30 | mINP 19.50")
    assert "2 skipped" in lines[0]
    assert lines[1].startswith("VIS->IR: R1 64.50 |")


def test_evaluation_imports_without_torch():
    import subprocess
    import sys

    code = "import sys, lsmrl, lsmrl.evaluation; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_within_modality_diagnostic_ranks_each_modality_against_its_other_cameras():
    """Hand-computed: three infrared tracklets on a line (1-D features, euclidean), pids 1, 1, 2, cameras 1, 2, 1.
    Query 0 (pid 1, cam 1) finds its other-camera twin at rank 1 (itself removed: same identity, same camera);
    query 1 likewise; query 2 (pid 2) has no other-camera twin and is skipped. The visible side holds one
    identity in two cameras whose twin ranks second behind another identity: AP 1/2."""
    from lsmrl.data.tracklet import INFRARED_TO_VISIBLE, Tracklet, VVIDataset
    from lsmrl.evaluation.protocols import within_modality_metrics

    spec = [(1, 1, "infrared", 0.0), (1, 2, "infrared", 1.0), (2, 1, "infrared", 5.0),
            (3, 1, "visible", 0.0), (4, 2, "visible", 1.0), (3, 3, "visible", 3.0)]
    test = [Tracklet(pid=p, camid=c, modality=m, frames=(f"{i}/1.jpg",), tid=f"test/{i}")
            for i, (p, c, m, _) in enumerate(spec)]
    dataset = VVIDataset("hand", None, [], test, {INFRARED_TO_VISIBLE: (np.array([0]), np.array([3]))}, True)
    features = np.array([[x] for *_, x in spec])
    within = within_modality_metrics(features, dataset, metric="euclidean")
    infrared, visible = within["infrared_to_infrared"], within["visible_to_visible"]
    assert infrared["rank1"] == 100.0 and infrared["mAP"] == 100.0 and infrared["num_skipped"] == 1
    assert infrared["num_query"] == 3 and infrared["num_gallery"] == 3
    # visible: query 3 (pid 3, cam 1) ranks 4 (d=1) before its twin 5 (d=3): AP 1/2; query 5 (d to 4: 2, to 3: 3)
    # the same: AP 1/2; query 4 has no twin (skipped)
    assert visible["rank1"] == 0.0 and visible["rank5"] == 100.0 and visible["mAP"] == pytest.approx(50.0)
    assert visible["num_skipped"] == 1
