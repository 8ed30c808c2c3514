"""lsmrl.analysis: cache, modality gap, UMAP, failures, comparison, diffusion and the Explorer facade.

Fast on 2 loaded cores: a tiny SynthVVI (6 test identities, 24 test tracklets),
random-init tiny checkpoints (tests/helpers.py) and T=3 test frames. The only
slow part is umap-learn's first fit in the process (~15 s of numba JIT), paid
once by ``test_umap_layouts_are_deterministic_aligned_and_cached``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lsmrl.analysis.cache import AnalysisCache, CacheKey, configure_numba_cache
from lsmrl.analysis.compare import compare_records
from lsmrl.analysis.embedding import align_procrustes, fit_umap, umap_layouts
from lsmrl.analysis.failure_stats import failure_by_attribute
from lsmrl.analysis.failures import (
    QueryOutcome,
    attribute_differences,
    find_impostors,
    flatten_attributes,
    worst_queries,
)
from lsmrl.analysis.modality_gap import gap_metrics
from lsmrl.data.tracklet import INFRARED_TO_VISIBLE, VISIBLE_TO_INFRARED, Tracklet, VVIDataset
from lsmrl.errors import LSMRLError
from lsmrl.evaluation.protocols import query_records
from lsmrl.viz.figures import umap_figure, umap_view_figure

TEST_FRAMES = 3


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    from lsmrl.synth import generate_synthvvi

    root = tmp_path_factory.mktemp("synth")
    generate_synthvvi(root, seed=5, train_identities=4, test_identities=6, frames=12, progress=False, workers=1)
    return root


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Three random-init tiny checkpoints: the model, another to compare, and the frame-wise baseline."""
    from lsmrl.model.checkpoint import save_checkpoint
    from tests.helpers import tiny_model

    out = tmp_path_factory.mktemp("checkpoints")
    paths = {}
    for name, seed, overrides in (("main", 0, {}), ("other", 1, {}),
                                  ("baseline", 2, dict(grouped=False, shift=False, sd=False, cmi=False))):
        torch.manual_seed(seed)
        paths[name] = save_checkpoint(tiny_model(num_classes=4, **overrides), out / f"{name}.safetensors",
                                      metrics={"note": "random init"})
    return paths


@pytest.fixture(scope="module")
def explorer_args(synth_root, checkpoints, tmp_path_factory):
    return dict(checkpoint=checkpoints["main"], dataset="synthvvi", data_root=synth_root,
                compare_checkpoint=checkpoints["other"], baseline_checkpoint=checkpoints["baseline"],
                cache_dir=tmp_path_factory.mktemp("cache"), num_frames=TEST_FRAMES, numba_cache=False)


@pytest.fixture(scope="module")
def explorer(explorer_args):
    from lsmrl.analysis import Explorer

    messages = []
    explorer = Explorer.open(**explorer_args, progress=lambda fraction, message: messages.append((fraction, message)))
    assert messages[-1][0] == 1.0 and all(0.0 <= f <= 1.0 for f, _ in messages)
    return explorer


def _hand_dataset() -> VVIDataset:
    """2 infrared queries, 5 visible gallery items; HITSZ-VCM camera rule."""
    spec = [(1, 1, "infrared"), (2, 1, "infrared"),  # queries 0, 1
            (1, 1, "visible"), (1, 2, "visible"), (2, 2, "visible"), (3, 2, "visible"), (4, 3, "visible")]
    test = [Tracklet(pid, cam, modality, frames=("f.jpg",), tid=f"t{i}") for i, (pid, cam, modality) in enumerate(spec)]
    queries, gallery = np.array([0, 1]), np.array([2, 3, 4, 5, 6])
    attributes = {pid: {"pid": pid, "accessories": {"backpack": pid % 2 == 0, "backpack_colour": "red"},
                        "upper": {"colour": ["red", "blue", "red", "green"][pid - 1], "pattern": "plain",
                                  "pattern_colour": "black"}, "gait": {"stride": 0.5}} for pid in (1, 2, 3, 4)}
    return VVIDataset("hand", None, [], test, {INFRARED_TO_VISIBLE: (queries, gallery),
                                             VISIBLE_TO_INFRARED: (gallery, queries)},
                      camera_filter=True, attributes=attributes)


# q0: item 2 (same identity, same camera) is removed; 4 and 5 are impostors above the true match 3.
# q1: its true match 4 is first.
HAND_DISTANCES = np.array([[0.05, 0.40, 0.10, 0.20, 0.60],
                           [0.30, 0.50, 0.05, 0.20, 0.25]])


def _hand_distmats():
    return {INFRARED_TO_VISIBLE: HAND_DISTANCES, VISIBLE_TO_INFRARED: HAND_DISTANCES.T}


# --------------------------------------------------------------------------- cache
def test_cache_round_trips_arrays_and_json_and_counts_hits(tmp_path):
    cache = AnalysisCache(tmp_path)
    key = CacheKey("sha", "fp", 6, "evenly", "v1", "features")
    calls = []

    def arrays():
        calls.append(1)
        return {"stfl": np.arange(6, dtype=np.float32).reshape(3, 2), "pids": np.array([1, 2, 3])}

    first = cache.get_or_compute(key, arrays)
    second = cache.get_or_compute(key, arrays)
    assert len(calls) == 1 and (cache.hits, cache.misses) == (1, 1)
    np.testing.assert_array_equal(first["stfl"], second["stfl"])
    assert second["pids"].dtype == first["pids"].dtype

    rows = [{"stage": "sd", "value": 0.5, "missing": None}]
    assert cache.get_or_compute(key.with_item("gap"), lambda: rows) == rows
    assert cache.get_or_compute(key.with_item("gap"), lambda: pytest.fail("recomputed")) == rows
    single = cache.get_or_compute(("a", 1, "array"), lambda: np.ones(3))
    np.testing.assert_array_equal(cache.get_or_compute(("a", 1, "array"), lambda: None), single)
    assert (cache.hits, cache.misses) == (3, 3)
    # another version is another item; no temporary files are left behind
    other = CacheKey("sha", "fp", 6, "evenly", "v2", "features")
    assert cache.get_or_compute(other, lambda: {"x": np.zeros(1)})["x"].shape == (1,)
    assert cache.misses == 4
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))
    # a corrupt file is a miss, not an error
    path = cache.path_for(key, "npz")
    path.write_bytes(b"not an npz")
    with pytest.warns(UserWarning, match="unreadable cache file"):
        again = cache.get_or_compute(key, arrays)
    assert len(calls) == 2 and again["stfl"].shape == (3, 2)


def test_configure_numba_cache_sets_the_variable_unless_the_user_did(tmp_path):
    env: dict[str, str] = {}
    assert configure_numba_cache(tmp_path / "numba", environ=env) == tmp_path / "numba"
    assert env["NUMBA_CACHE_DIR"] == str(tmp_path / "numba") and (tmp_path / "numba").is_dir()
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "mine")}
    assert configure_numba_cache(tmp_path / "numba2", environ=env) == tmp_path / "mine"
    assert env["NUMBA_CACHE_DIR"] == str(tmp_path / "mine")


# --------------------------------------------------------------------------- modality gap
def _constructed(shift: float, seed: int = 0, identities: int = 20, per_modality: int = 4, dim: int = 16):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(identities, dim))
    offset = np.zeros(dim)
    offset[0] = shift
    features, pids, modalities = [], [], []
    for pid, centre in enumerate(centres):
        for modality in (0, 1):
            for _ in range(per_modality):
                features.append(centre + (offset if modality else 0) + 0.3 * rng.normal(size=dim))
                pids.append(pid)
                modalities.append(modality)
    return np.array(features, dtype=np.float32), np.array(pids), np.array(modalities)


def test_gap_metrics_order_aligned_and_shifted_modalities():
    aligned, pids, modalities = _constructed(shift=0.0)
    shifted, _, _ = _constructed(shift=6.0)
    rows = gap_metrics({"aligned": aligned, "shifted": shifted}, pids, modalities)
    a, s = rows
    assert [a["stage"], s["stage"]] == ["aligned", "shifted"]
    assert s["centroid_distance"] > 3 * a["centroid_distance"]
    assert s["probe_accuracy"] >= 0.97
    assert abs(a["probe_accuracy"] - 0.5) <= 0.2
    assert a["same_id_cross_sim"] > s["same_id_cross_sim"]
    assert a["cross_sim_gap"] > s["cross_sim_gap"] > 0  # identities still separate, less so across the gap
    assert a["same_id_cross_sim"] > a["diff_id_cross_sim"]
    # words work as modality labels too
    words = np.where(modalities == 1, "infrared", "visible")
    assert gap_metrics({"aligned": aligned}, pids, words)[0]["centroid_distance"] == pytest.approx(
        a["centroid_distance"])


# --------------------------------------------------------------------------- UMAP
def test_procrustes_undoes_rotation_reflection_scale_and_shift():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(50, 2))
    angle = 1.1
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) @ np.diag([1, -1])
    moved = 3.0 * reference @ rotation + np.array([5.0, -2.0]) + 0.01 * rng.normal(size=(50, 2))
    aligned, alignment = align_procrustes(reference, moved)
    assert alignment.disparity_after < 1e-3 < alignment.disparity_before
    np.testing.assert_allclose(aligned, reference, atol=0.05)


def test_umap_layouts_are_deterministic_aligned_and_cached(tmp_path, monkeypatch):
    features, pids, modalities = _constructed(shift=2.0, identities=10, per_modality=3)  # 60 points
    rng = np.random.default_rng(1)
    stages = {"stfl": features, "sd": features + 0.3 * rng.normal(size=features.shape).astype(np.float32)}
    once = fit_umap(features)
    assert once.shape == (60, 2) and once.dtype == np.float32
    np.testing.assert_array_equal(once, fit_umap(features))  # fixed seed: identical

    cache = AnalysisCache(tmp_path)
    key = CacheKey("sha", "fp", 6, "evenly", "test", "features")
    layouts = umap_layouts(stages, cache=cache, key=key)
    assert layouts["stfl"].shape == layouts["sd"].shape == (60, 2)
    np.testing.assert_array_equal(layouts["stfl"], once)
    before, after = layouts["sd__disparity"]
    assert after <= before
    assert cache.misses == 1

    import lsmrl.analysis.embedding as embedding

    monkeypatch.setattr(embedding, "fit_umap", lambda *a, **k: pytest.fail("UMAP refitted instead of cached"))
    cached = umap_layouts(stages, cache=cache, key=key)
    assert (cache.hits, cache.misses) == (1, 1)
    np.testing.assert_array_equal(cached["sd"], layouts["sd"])

    meta = {"test_index": list(range(60)), "tid": [f"t{i}" for i in range(60)], "pid": pids.tolist(),
            "camid": [1] * 60, "modality": ["infrared" if m else "visible" for m in modalities]}
    figure = umap_figure(layouts, meta, "sd", highlight_query=0, highlight_matches=[1, 2], match_correct=[True, False])
    traces = {trace.name: trace for trace in figure.data}
    assert len(traces["visible"].x) == 30 and len(traces["infrared"].x) == 30
    assert "identity" in traces["visible"].text[0] and "camera" in traces["infrared"].text[0]
    assert len(traces["query"].x) == 1 and len(traces["top matches"].x) == 2
    assert "after SD" in figure.layout.title.text
    # coloured by identity: the query's and its matches' identities each have a legend entry, the rest one trace
    by_id = umap_figure(layouts, meta, "sd", highlight_query=0, highlight_matches=[1, 2, 3],
                        match_correct=[True, False, False], colour_by="identity")
    names = [trace.name for trace in by_id.data]
    highlighted = list(dict.fromkeys(int(pids[i]) for i in (0, 1, 2, 3)))
    assert names[0] == "other identities" and names[-2:] == ["top matches", "query"]
    assert names[1:-2] == [f"id {pid}" + (" (query)" if pid == pids[0] else "") for pid in highlighted]
    assert sum(len(t.x) for t in by_id.data[:-2]) == 60
    for trace, pid in zip(by_id.data[1:-2], highlighted):
        assert len(trace.x) == int(np.sum(pids == pid)) and len(set(trace.marker.symbol)) >= 1
    with pytest.raises(ValueError, match="colour_by"):
        umap_figure(layouts, meta, "sd", colour_by="camera")


# --------------------------------------------------------------------------- failures
def test_failures_impostors_and_margins_on_a_hand_built_case():
    dataset = _hand_dataset()
    records = query_records(dataset=dataset, distmat=_hand_distmats())
    worst = worst_queries(records, INFRARED_TO_VISIBLE)
    assert [o.query_index for o in worst] == [0, 1]
    assert worst[0].ap == pytest.approx(1 / 3) and worst[1].ap == 1.0
    assert [o.ap for o in worst] == sorted(o.ap for o in worst)

    gallery = dataset.directions[INFRARED_TO_VISIBLE][1]
    failed = find_impostors(0, HAND_DISTANCES[0], gallery, dataset, direction=INFRARED_TO_VISIBLE,
                            attributes=dataset.attributes)
    assert [i.test_index for i in failed.impostors] == [4, 5]  # item 2 is removed by the camera rule
    assert failed.num_impostors == 2 and failed.first_match.test_index == 3 and failed.first_match.rank == 3
    assert failed.margin == pytest.approx((1 - 0.10) - (1 - 0.40)) and failed.margin > 0
    assert failed.best_impostor.test_index == 4
    assert failed.impostors[0].attribute_differences == [
        {"field": "accessories.backpack", "query": False, "other": True},
        {"field": "upper.colour", "query": "red", "other": "blue"}]

    correct = find_impostors(1, HAND_DISTANCES[1], gallery, dataset)
    assert correct.impostors == [] and correct.first_match.rank == 1
    assert correct.margin == pytest.approx((1 - 0.20) - (1 - 0.05)) and correct.margin < 0

    # the JSON form of the records gives the same order
    from lsmrl.engine.extract import records_to_json

    as_json = json.loads(json.dumps(records_to_json(records, dataset)))
    assert [o.query_index for o in worst_queries(as_json, INFRARED_TO_VISIBLE)] == [0, 1]


def test_attribute_helpers_and_failure_rate_ratio():
    nested = {"pid": 3, "accessories": {"bag": False, "bag_colour": "red", "hat": True, "hat_colour": "blue"},
              "upper": {"pattern": "plain", "pattern_colour": "green", "colour": "red"}}
    assert flatten_attributes(nested) == {"accessories.bag": False, "accessories.hat": True,
                                          "accessories.hat_colour": "blue", "upper.pattern": "plain",
                                          "upper.colour": "red"}
    assert attribute_differences(nested, None) == []

    attributes = {pid: {"accessories": {"backpack": pid <= 3}, "lower": {"kind": "skirt" if pid == 1 else "trousers"}}
                  for pid in range(1, 7)}
    failed = {1, 2, 4}
    outcomes = [QueryOutcome(INFRARED_TO_VISIBLE, pid, f"q{pid}", pid, 1, True, 0.5, 0.5,
                             2 if pid in failed else 1, 1, (), (), ()) for pid in range(1, 7)]
    rows = failure_by_attribute(outcomes, attributes, "infrared", min_support=2)
    backpack = next(r for r in rows if r["field"] == "accessories.backpack")
    assert backpack["value"] is True and backpack["rate_with"] == pytest.approx(2 / 3)
    assert backpack["rate_without"] == pytest.approx(1 / 3) and backpack["rate_ratio"] == pytest.approx(2.0)
    assert "infrared queries with accessories.backpack fail 2.00x" in backpack["summary"]
    assert not any(r["field"] == "lower.kind" and r["value"] == "skirt" for r in rows)  # 1 query < min_support


def test_wilson_interval_matches_the_closed_form_and_small_groups():
    from lsmrl.analysis.failure_stats import wilson_interval

    low, high = wilson_interval(30, 36)
    assert low == pytest.approx(0.6811, abs=1e-3) and high == pytest.approx(0.9213, abs=1e-3)  # by hand
    low, high = wilson_interval(2, 2)  # "2/2" is not a certain failure: the interval is wide
    assert high == 1.0 and low == pytest.approx(0.3424, abs=1e-3)
    assert wilson_interval(0, 3)[0] == 0.0 and wilson_interval(0, 3)[1] == pytest.approx(0.5615, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_chance_metrics_are_the_expectation_of_random_rankings(explorer):
    """The closed form of Provenance.chance() against random rankings of the same galleries (camera rule
    applied as the metric applies it)."""
    from lsmrl.evaluation.rank import evaluate_rank

    dataset = explorer.dataset
    chance = explorer.provenance.chance()
    rng = np.random.default_rng(0)
    pids = np.array([t.pid for t in dataset.test])
    cams = np.array([t.camid for t in dataset.test])
    for direction in (INFRARED_TO_VISIBLE, VISIBLE_TO_INFRARED):
        queries, gallery = (np.asarray(a).reshape(-1) for a in dataset.directions[direction])
        maps, rank1 = [], []
        for _ in range(300):
            distmat = rng.random((len(queries), len(gallery)))
            result = evaluate_rank(distmat, pids[queries], pids[gallery], cams[queries], cams[gallery],
                                   remove_same_camera=dataset.camera_filter)
            maps.append(100 * result["mAP"])
            rank1.append(100 * result["cmc"][0])
        assert chance[direction]["mAP"] == pytest.approx(np.mean(maps), rel=0.05)
        assert chance[direction]["rank1"] == pytest.approx(np.mean(rank1), abs=3.0)


# --------------------------------------------------------------------------- the Explorer
def test_explorer_retrieve_follows_pids_and_the_camera_rule(explorer):
    dataset = explorer.dataset
    queries = explorer.queries(INFRARED_TO_VISIBLE)
    assert len(queries) == len(dataset.directions[INFRARED_TO_VISIBLE][0])
    assert {"tid", "test_index", "pid", "camid", "modality", "ap", "inp", "first_match_rank"} <= set(queries[0])
    for row in queries[:4]:
        result = explorer.retrieve(row["tid"], INFRARED_TO_VISIBLE, top_k=5)
        assert result == explorer.retrieve(row["test_index"], INFRARED_TO_VISIBLE, top_k=5)
        items = result["items"]
        assert len(items) == 5 and [i["rank"] for i in items] == [1, 2, 3, 4, 5]
        assert all(i["modality"] == "visible" for i in items)
        for item in items:
            assert item["is_match"] == (item["pid"] == row["pid"])
            assert not (item["pid"] == row["pid"] and item["camid"] == row["camid"])  # camera rule
        sims = [i["similarity"] for i in items]
        assert sims == sorted(sims, reverse=True)
        full = explorer.retrieve(row["tid"], INFRARED_TO_VISIBLE, top_k=1000)["items"]
        first = next(i["rank"] for i in full if i["is_match"])
        assert first == result["first_match_rank"] == row["first_match_rank"]
        # impostors: exactly the items above the first true match
        report = explorer.failure.impostors(row["tid"], INFRARED_TO_VISIBLE)
        assert [i.test_index for i in report.impostors] == [i["test_index"] for i in full[: first - 1]]
        assert (report.margin > 0) == (first > 1)
        assert set(report.first_match.stage_similarities) == {"baseline", "stfl", "sd", "cmi", "embedding"}
    visible_query = explorer.queries(VISIBLE_TO_INFRARED)[0]["tid"]
    with pytest.raises(LSMRLError, match="not a query"):
        explorer.retrieve(visible_query, INFRARED_TO_VISIBLE)
    with pytest.raises(LSMRLError, match="no test tracklet"):
        explorer.retrieve("test/nope", INFRARED_TO_VISIBLE)

    # an uploaded clip: the query's own frames rank the gallery as its stored feature does (no camera rule)
    q = queries[0]["test_index"]
    frames = explorer.tracklet_frames(q)
    assert frames.dtype == np.uint8 and frames.shape[0] == TEST_FRAMES and frames.shape[-1] == 3
    uploaded = explorer.uploads.retrieve(frames, "infrared", top_k=4)
    assert uploaded["direction"] == INFRARED_TO_VISIBLE and len(uploaded["items"]) == 4
    gallery = dataset.directions[INFRARED_TO_VISIBLE][1]
    stored = 1 - explorer.main.distmats[INFRARED_TO_VISIBLE][0]
    expected = [int(gallery[c]) for c in np.argsort(-stored, kind="stable")[:4]]
    assert [i["test_index"] for i in uploaded["items"]] == expected
    assert uploaded["items"][0]["similarity"] == pytest.approx(stored.max(), abs=1e-4)


def test_explorer_failures_gap_diffusion_and_card(explorer):
    failures = explorer.failure.worst(INFRARED_TO_VISIBLE)
    aps = [row["ap"] for row in failures]
    assert aps == sorted(aps) and len(failures) == sum(row["valid"] for row in explorer.queries())
    stats = explorer.failure.statistics(INFRARED_TO_VISIBLE)
    assert stats.num_failures == sum(not row["rank1_correct"] for row in failures)
    assert sum(r["num_queries"] for r in stats.by_camera_pair) == stats.num_valid
    assert stats.histogram["num_positive"] > 0 and stats.histogram["num_negative"] > 0

    rows = explorer.gap_table()
    assert [r["stage"] for r in rows] == ["baseline", "stfl", "sd", "cmi", "embedding"]
    final = rows[-1]
    assert final["mAP_infrared_to_visible"] == pytest.approx(explorer.metrics()[INFRARED_TO_VISIBLE]["mAP"])
    assert 0.0 <= final["probe_accuracy"] <= 1.0
    hits = explorer.cache.hits
    assert explorer.gap_table() == rows and explorer.cache.hits == hits  # memoised in the Explorer

    result = explorer.diffusion.of(failures[0]["tid"])
    report = result.tracklet
    assert report.update_ratio > 0 and len(report.before) == len(report.after) == 4
    assert report.prompt_pids == [1, 2, 3, 4] and report.true_prompt_index is None  # a test identity
    assert len(report.attention) == 4 and report.before[0].description
    assert set(result.cross_modal) >= {"same_id_cross_sim_before", "same_id_cross_sim_after"}
    probes = result.probes
    assert {r.modality for r in probes} == {"visible", "infrared"} and {r.stage for r in probes} == {"stfl", "sd"}
    assert all(r.auc is None or 0.0 <= r.auc <= 1.0 for r in probes)
    json.dumps(result.to_dict())  # JSON-ready for the app's API

    from lsmrl.viz.figures import probe_figure, prompt_similarity_figure

    assert len(prompt_similarity_figure(report).data) == 2 and len(probe_figure(probes).data) == 4

    card = explorer.provenance.model_card()
    assert card["sha256_matches"] is True and card["test_num_frames"] == TEST_FRAMES
    assert set(card["metrics_now"]) == {INFRARED_TO_VISIBLE, VISIBLE_TO_INFRARED}

    # every figure builder produces a valid plotly figure with hover text
    from lsmrl.viz.figures import (
        ap_change_figure,
        attribute_failure_figure,
        camera_pair_figure,
        gap_figure,
        sd_attention_figure,
        similarity_histogram_figure,
    )

    for figure in (gap_figure(rows), sd_attention_figure(report), similarity_histogram_figure(stats.histogram),
                   camera_pair_figure(stats), attribute_failure_figure(stats),
                   ap_change_figure(explorer.provenance.compare()[INFRARED_TO_VISIBLE])):
        assert figure.data and all(trace.hovertemplate for trace in figure.data)
        json.loads(figure.to_json())


def test_compare_matches_each_models_own_records(explorer):
    comparisons = explorer.provenance.compare()
    assert set(comparisons) == {INFRARED_TO_VISIBLE, VISIBLE_TO_INFRARED}
    for direction, comparison in comparisons.items():
        ap_a = {o.query_index: o.ap for o in explorer.main.records[direction] if o.valid}
        ap_b = {o.query_index: o.ap for o in explorer.compare_bundle.records[direction] if o.valid}
        assert len(comparison.changes) == len(ap_a)
        deltas = [c.ap_change for c in comparison.changes]
        assert deltas == sorted(deltas)
        for change in comparison.changes:
            assert change.ap_a == ap_a[change.query_index] and change.ap_b == ap_b[change.query_index]
            assert change.ap_change == pytest.approx(change.ap_b - change.ap_a)
        summary = comparison.summary
        assert summary["fixed"] == len(comparison.fixed) and summary["broken"] == len(comparison.broken)
        assert summary["improved"] + summary["worsened"] + summary["unchanged"] == len(comparison.changes)
        assert summary["mAP_a"] == pytest.approx(explorer.metrics()[direction]["mAP"])
        assert summary["mAP_b"] == pytest.approx(explorer.metrics("compare")[direction]["mAP"])
    # the JSON records of both models give the same comparison
    from lsmrl.engine.extract import records_to_json

    dataset = explorer.dataset
    from_json = compare_records(records_to_json(explorer.main.records, dataset),
                                records_to_json(explorer.compare_bundle.records, dataset), INFRARED_TO_VISIBLE,
                                dataset)
    assert [c.query_index for c in from_json.changes] == [
        c.query_index for c in comparisons[INFRARED_TO_VISIBLE].changes]
    assert explorer.provenance.compare("baseline") is not None


def test_explorer_umap_and_reopening_are_served_from_the_cache(explorer, explorer_args):
    from lsmrl.analysis import Explorer

    coords, meta = explorer.gap.umap("sd")
    assert coords.shape == (len(explorer.dataset.test), 2) and meta["tid"][0] == explorer.dataset.test[0].tid
    q = explorer.queries()[0]["tid"]
    view = explorer.gap.view("embedding", query=q, top_k=3)
    result = explorer.retrieve(q, top_k=3)
    assert view.query_row == result["query"]["test_index"]
    assert view.match_rows == [item["test_index"] for item in result["items"]]
    assert view.match_correct == [item["is_match"] for item in result["items"]]
    figure = umap_view_figure(view)
    assert {t.name for t in figure.data} == {"visible", "infrared", "query", "top matches"}

    again = Explorer.open(**explorer_args)
    assert again.cache.misses == 0 and again.cache.hits == 3  # the three checkpoints' features
    assert again.main.extract_seconds == 0.0
    assert again.umap_cached()
    np.testing.assert_array_equal(again.gap.umap("sd")[0], coords)
    assert again.cache.misses == 0


def test_explorer_attention_maps(explorer):
    attention = pytest.importorskip("lsmrl.analysis.attention")
    q = explorer.failure.worst()[0]["tid"]
    out = explorer.attention.explain(q, method="gradcam")
    maps = out["query_maps"]
    assert isinstance(maps, attention.AttentionMaps)
    assert maps.maps.shape[0] == TEST_FRAMES and maps.maps.shape[1:] == out["query_frames"].shape[1:3]
    assert out["match"]["test_index"] == explorer.retrieve(q, top_k=1)["items"][0]["test_index"]
    assert out["match_maps"].maps.shape[0] == TEST_FRAMES
    prompt = explorer.attention.explain(q, target="prompt", both=False)
    assert prompt["prompt"]["pid"] in (1, 2, 3, 4) and prompt["match_maps"] is None
    rollout = explorer.attention.explain(q, method="rollout", both=False)
    assert rollout["query_maps"].method == "rollout"
    hires = explorer.attention.explain(q, method="hirescam", both=False)
    assert hires["query_maps"].method == "gradcam" and hires["query_maps"].weighting == "hirescam"
    occlusion = explorer.attention.explain(q, method="occlusion", both=False)
    assert occlusion["query_maps"].method == "occlusion"
    assert occlusion["query_maps"].score == pytest.approx(out["query_maps"].score, abs=1e-5)  # the same target
    with pytest.raises(LSMRLError, match="method must be one of"):
        explorer.attention.explain(q, method="scorecam")
    assert set(attention.EXPLANATION_METHODS) == {"gradcam", "hirescam", "occlusion", "rollout"}


# --------------------------------------------------------------------------- per-identity failures, collapse
def _outcome(direction: str, pid: int, valid: bool, first_rank: int):
    from lsmrl.analysis.failures import QueryOutcome

    return QueryOutcome(direction, 0, f"t{pid}", pid, 1, valid, 0.5 if valid else float("nan"), 0.5, first_rank,
                        1 if valid else 0, (), (), ())


def test_failure_by_identity_counts_rates_wilson_and_order_by_hand():
    from lsmrl.analysis.failure_stats import failure_by_identity

    ir, vis = "infrared_to_visible", "visible_to_infrared"
    outcomes = {ir: [_outcome(ir, 1, True, 1), _outcome(ir, 1, True, 4), _outcome(ir, 2, True, 2),
                     _outcome(ir, 2, True, 7), _outcome(ir, 3, False, -1), _outcome(ir, 4, False, -1)],
                vis: [_outcome(vis, 1, True, 3), _outcome(vis, 3, True, 1)]}
    rows = failure_by_identity(outcomes)
    # identity 4 has no valid query: left out; worst first: 2 (2/2), 1 (2/3), 3 (0/1)
    assert [r.pid for r in rows] == [2, 1, 3]
    two, one, three = rows
    assert (two.total.num_failures, two.total.num_queries, two.total.rate) == (2, 2, 1.0)
    assert set(two.by_direction) == {ir}
    # Wilson 2/2: centre (1 + 1.96^2/4) / (1 + 1.96^2/2) = 0.6712, half 1.96 * 0.49 / 2.9208 = 0.3288
    assert two.total.interval == pytest.approx((0.3424, 1.0), abs=1e-4)
    assert (one.by_direction[ir].num_failures, one.by_direction[ir].num_queries) == (1, 2)
    assert (one.by_direction[vis].num_failures, one.by_direction[vis].num_queries) == (1, 1)
    assert one.total.rate == pytest.approx(2 / 3)
    # Wilson 2/3: centre 0.5731, half 1.96 * sqrt(2/27 + 3.8416/36) / 2.2805 = 0.3654
    assert one.total.interval == pytest.approx((0.2077, 0.9385), abs=1e-4)
    assert (three.total.num_failures, three.total.num_queries) == (0, 1) and set(three.by_direction) == {vis}


def test_cosine_statistics_and_the_collapse_flag_by_hand():
    from lsmrl.analysis.modality_gap import COLLAPSE_SPREAD, cosine_statistics, gap_findings, stage_gap

    # pairs of [e1, e2, e1]: cosines 0, 1, 0 (each twice): mean 1/3, std sqrt(1/3 - 1/9)
    mean, spread = cosine_statistics(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32))
    assert mean == pytest.approx(1 / 3, abs=1e-6) and spread == pytest.approx(np.sqrt(2 / 9), abs=1e-6)
    rng = np.random.default_rng(0)
    pids = np.repeat(np.arange(10), 4)
    modalities = np.tile([0, 0, 1, 1], 10)
    # every feature = one shared direction + a 1% wobble: collapsed, with a tiny but nonzero centroid distance
    collapsed = np.ones((40, 16)) + 0.01 * rng.normal(size=(40, 16)) + 0.005 * modalities[:, None]
    row = stage_gap(collapsed, pids, modalities)
    assert row["collapsed"] and row["cosine_spread"] < COLLAPSE_SPREAD and row["mean_cosine"] > 0.99
    spread_out = rng.normal(size=(40, 16))
    assert not stage_gap(spread_out, pids, modalities)["collapsed"]
    text = " ".join(gap_findings([dict(row, stage="baseline", label="baseline (frame-wise CLIP)")]))
    assert "collapsed feature space" in text and f"{row['centroid_distance']:.3f}" in text


def test_gap_findings_follow_the_numbers_not_a_fixed_claim():
    from lsmrl.analysis.modality_gap import gap_findings, umap_caveat

    def row(stage, label, centroid, probe, separation):
        return {"stage": stage, "label": label, "centroid_distance": centroid, "probe_accuracy": probe,
                "probe_chance": 0.5, "cross_sim_gap": separation, "collapsed": False}

    # the numbers of a user's table: the centres do not move closer and the probe reads the modality everywhere
    rows = [row("stfl", "STFL", 0.216, 0.98, 0.31), row("sd", "after SD", 0.219, 0.99, 0.32),
            row("cmi", "after CMI", 0.192, 0.99, 0.35), row("embedding", "final embedding", 0.246, 0.985, 0.47)]
    text = " ".join(gap_findings(rows))
    assert "Lowest: after CMI (0.192)" in text
    assert "Final embedding ends 0.030 above STFL: the centres do not move closer" in text
    assert "accuracy 0.980-0.990 at every stage" in text and "**not closed**" in text
    assert "largest: final embedding" in text
    assert "not** evidence of a closed gap" in umap_caveat(rows[-1])
    # a pipeline that does close the gap reads the other way
    closing = [row("stfl", "STFL", 0.30, 0.99, 0.3), row("embedding", "final embedding", 0.05, 0.52, 0.5)]
    text = " ".join(gap_findings(closing))
    assert "ends 0.250 below STFL: the centres move closer" in text and "Near chance at final embedding" in text
    assert "not closed" not in text


# --------------------------------------------------------------------------- SD: ranking before/after, listed prompts
def test_sd_ranking_on_a_hand_built_case():
    """q0 before SD: item 2 is removed by the camera rule, items 4 and 5 rank above the true match 3 (rank 3,
    AP 1/3); after SD the true match comes first (rank 1, AP 1) on the same four gallery items."""
    from lsmrl.analysis.diffusion import sd_ranking

    dataset = _hand_dataset()
    gallery = dataset.directions[INFRARED_TO_VISIBLE][1]
    distances = {"stfl": HAND_DISTANCES[0], "sd": np.array([0.05, 0.01, 0.30, 0.20, 0.60])}
    ranking = sd_ranking(distances, gallery, dataset, 0, INFRARED_TO_VISIBLE, top_k=2)
    assert (ranking.gallery_size, ranking.num_matches) == (4, 1)
    assert ranking.before.first_match_rank == 3 and ranking.before.ap == pytest.approx(1 / 3)
    assert [m.tid for m in ranking.before.top] == ["t4", "t5"] and not any(m.is_match for m in ranking.before.top)
    assert ranking.after.first_match_rank == 1 and ranking.after.ap == pytest.approx(1.0)
    assert [(m.tid, m.is_match) for m in ranking.after.top] == [("t3", True), ("t5", False)]
    assert ranking.after.top[0].similarity == pytest.approx(1 - 0.01)  # cosine: 1 - distance


def test_listed_prompts_are_exactly_k_with_their_rank_before_sd():
    from lsmrl.analysis.diffusion import listed_prompts

    before, after = np.array([0.1, 0.5, 0.3, 0.2]), np.array([0.4, 0.1, 0.2, 0.6])
    listed = listed_prompts(before, after, np.array([0.1, 0.2, 0.3, 0.4]), 2, [10, 11, 12, 13],
                            {13: {"hair": {"length": "long", "colour": "red"}}})
    assert [(p.rank_after, p.prompt_index, p.pid, p.rank_before) for p in listed] == [(1, 3, 13, 3), (2, 0, 10, 4)]
    assert listed[0].words == "long red hair" and listed[1].words == ""
    assert listed[0].attention == pytest.approx(0.4) and listed[0].similarity_before == pytest.approx(0.2)
    assert len(listed_prompts(before, after, None, 9)) == 4 and listed_prompts(before, after, None, 9)[0].attention is None


def test_explorer_sd_ranking_is_the_protocol_ranking(explorer):
    """Ranked by the final embedding, the same code gives exactly what the explorer's retrieval gives; the
    diffusion view lists exactly k prompts and ranks every query before and after SD."""
    from lsmrl.analysis.diffusion import sd_ranking

    for direction in explorer.directions:
        gallery = explorer.dataset.directions[direction][1]
        for query in explorer.queries(direction):
            row = explorer.query_row(query["test_index"], direction)
            distances = {"embedding": explorer.diffusion.stage_distances("embedding")[direction][row]}
            ranking = sd_ranking(distances, gallery, explorer.dataset, query["test_index"], direction, 5,
                                 before="embedding", after="embedding")
            retrieved = explorer.retrieve(query["tid"], direction, 5)
            assert ranking.before.first_match_rank == query["first_match_rank"]
            assert ranking.before.ap == pytest.approx(query["ap"]) if query["valid"] else ranking.before.ap is None
            assert [m.tid for m in ranking.before.top] == [item["tid"] for item in retrieved["items"]]
    query = explorer.queries(explorer.directions[0])[0]
    result = explorer.diffusion.of(query["tid"], top_k=3)
    assert len(result.tracklet.listed) == 3 and result.ranking is not None
    assert result.ranking.direction == explorer.directions[0] and len(result.ranking.after.top) == 3
    assert result.to_dict()["ranking"]["before"]["stage"] == "stfl"


# --------------------------------------------------------------------------- standing across fresh draws
def _draws_report(sha: str, model_maps: list[float], compare_maps: list[float]) -> dict:
    """An eval-draws report as lsmrl.engine.draws writes it, from per-draw mAP (Rank-1 = mAP - 10)."""
    from lsmrl.engine.draws import paired_difference, summarise

    def draw(value):
        return {name: {"rank1": value - 10, "mAP": value} for name in
                ("infrared_to_visible", "visible_to_infrared", "both_directions")}

    model, compare = [draw(v) for v in model_maps], [draw(v) for v in compare_maps]
    return {"checkpoint": {"path": "checkpoints/m.safetensors", "weights_sha256": sha},
            "compare": {"path": "checkpoints/b.safetensors", "weights_sha256": "b" * 64}, "identities": 100,
            "seeds": [101, 102, 103], "synthvvi_version": 2, "precision": "fp32",
            "summary": {"model": summarise(model), "compare": summarise(compare)},
            "difference": paired_difference(model, compare)}


def test_find_draws_reads_the_evidence_of_these_weights_and_says_when_there_is_none(tmp_path):
    from lsmrl.analysis.views.provenance import find_draws

    checkpoint = tmp_path / "m.safetensors"
    assert "there is none" in find_draws(checkpoint, "a" * 64).note
    (tmp_path / "evidence").mkdir()
    report = _draws_report("a" * 64, [40.0, 42.0, 44.0], [41.0, 40.0, 41.0])
    (tmp_path / "evidence" / "eval_draws_101-103.json").write_text(json.dumps(report))
    evidence = find_draws(checkpoint, "a" * 64, baseline_sha256="b" * 64)
    standing = evidence.standing
    assert standing.source == "evidence/eval_draws_101-103.json" and standing.seeds == [101, 102, 103]
    row = standing.row("both_directions", "mAP")
    assert (row.model.mean, row.model.sd, row.model.n) == (42.0, 2.0, 3)
    assert row.compare.mean == pytest.approx(40.67) and row.lead.per_draw == [-1.0, 2.0, 3.0]
    assert row.lead.mean == pytest.approx(1.33) and row.lead.reversals == 1
    low, high = row.lead.ci95  # mean ± t(0.975, 2) * sd / sqrt(3), sd of (-1, 2, 3) = 2.0817
    assert low == pytest.approx(4 / 3 - 4.302653 * 2.081666 / 3 ** 0.5, abs=0.01) and high > 0 > low
    assert standing.row("infrared_to_visible", "rank1").model.mean == 32.0
    missing = find_draws(checkpoint, "c" * 64)
    assert missing.standing is None and "of other weights" in missing.note and "cccccccccccc" in missing.note
    # the sidecar may name the file; then only that file counts
    (tmp_path / "elsewhere.json").write_text(json.dumps(_draws_report("a" * 64, [50.0, 50.0], [49.0, 48.0])))
    named = find_draws(checkpoint, "a" * 64, {"evidence": {"draws": "elsewhere.json"}})
    assert named.standing.row("both_directions", "mAP").model.mean == 50.0 and "sidecar" not in named.note
