"""The Retrieval and Attention tabs in chromium: a video query then a tracklet query leaves nothing of the
video; a scene uploaded in the browser plays and its people are found; an AVI plays (from its H.264 copy) and
sets the direction of its declared modality; the first true match is named under the list wherever it ranks
and one click makes it the match; the per-stage panel shows the explorer's own numbers; a top-k over the
maximum is capped with a note. Screenshots go where ``tests/test_browser.py`` puts them."""

from __future__ import annotations

import re
import subprocess

import pytest

from app import resources as app_resources
from tests.test_app_api import IR2VIS, VIS2IR
from tests.test_browser import (  # noqa: F401
    _close_toasts,
    _open_tab,
    _snap,
    _toasts,
    _wait_images,
    _wait_text,
    page,
    pytestmark,  # noqa: F401  (the same skip rule and warning filters)
)

PLAYING = ("([sel]) => { const v = document.querySelector(sel + ' video');"
           " return !!v && v.readyState >= 1 && isFinite(v.duration) && v.duration > 0 && !v.error; }")


def _checked_direction(page) -> str:
    return page.evaluate("Array.from(document.querySelectorAll('#tab-retrieval input[type=radio]'))"
                         ".filter(r => r.checked && /_to_/.test(r.value)).map(r => r.value)[0]")


def _open_upload(page) -> None:
    if not page.locator("#lsmrl-video").is_visible():
        page.get_by_text("Query by an uploaded video").click()


def _upload(page, path: str, modality: str) -> None:
    _open_upload(page)
    page.locator("#lsmrl-video input[type=file]").set_input_files(path)
    page.locator("#lsmrl-modality").get_by_text(modality, exact=True).click()


def _retrieve(page, tid: str) -> str:
    box = page.locator("#lsmrl-query input")
    box.fill(tid)
    box.press("Enter")
    return _wait_text(page, "#lsmrl-summary", re.escape(tid) + r"[\s\S]*AP")


def _examples() -> dict[str, dict]:
    examples = app_resources.example_videos()
    if not examples:
        pytest.skip("no example clips in this checkout (python app/main.py --build-cache writes them)")
    return {("scene" if e.get("kind") == "scene" else e["modality"]): e for e in examples}


def test_a_video_query_then_a_tracklet_query_leaves_nothing_of_the_video(page, served):
    url, resources = served
    explorer = resources.explorer()
    clip = _examples()["visible"]
    page.goto(url)
    _wait_images(page, "#lsmrl-results", 1)
    _upload(page, clip["path"], "visible")
    page.wait_for_function(PLAYING, arg=["#lsmrl-video-player"])
    page.locator("#lsmrl-video-retrieve").click()
    _wait_text(page, "#lsmrl-summary", r"Uploaded")
    _wait_text(page, "#lsmrl-selected", r"uploaded video")
    page.wait_for_function("() => document.querySelector('#lsmrl-stages').innerText.trim() === ''")
    assert _checked_direction(page) == VIS2IR  # the declared modality decides the direction
    assert not page.locator("#lsmrl-true-match-select").is_visible()

    tracklet = explorer.queries(IR2VIS)[1]
    page.locator("#tab-retrieval").get_by_text("infrared → visible", exact=True).first.click()
    _wait_text(page, "#lsmrl-summary", r"ranked against the visible gallery[\s\S]*AP")  # the direction's first query
    summary = _retrieve(page, tracklet["tid"])
    selected = _wait_text(page, "#lsmrl-selected", "for test tracklet " + re.escape(tracklet["tid"]))
    stages = _wait_text(page, "#lsmrl-stages", r"STFL")
    for text in (summary, selected, stages, page.inner_text("#lsmrl-true-match")):
        assert "Uploaded" not in text and "upload" not in text.lower() and clip["file"] not in text, text
    assert _checked_direction(page) == IR2VIS
    _open_tab(page, "Attention")
    attention = _wait_text(page, "#lsmrl-attention-summary", r"Method")
    assert tracklet["tid"] in attention and "uploaded" not in attention
    assert page.input_value("#lsmrl-attention-query-id textarea, #lsmrl-attention-query-id input") == tracklet["tid"]
    _snap(page, "retrieval-video-then-tracklet")
    _open_tab(page, "Retrieval")


def test_a_scene_uploaded_in_the_browser_plays_and_its_people_are_found(page, served):
    url, _ = served
    scene = _examples().get("scene")
    if scene is None:
        pytest.skip("no example scene in this checkout")
    page.goto(url)
    _wait_images(page, "#lsmrl-results", 1)
    _upload(page, scene["path"], "visible")
    page.wait_for_function(PLAYING, arg=["#lsmrl-video-player"])
    page.locator("#lsmrl-find-people").click()
    _wait_images(page, "#lsmrl-people", 2)
    _wait_images(page, "#lsmrl-people-preview", 1)
    captions = page.locator("#lsmrl-people .caption-label").all_inner_texts()
    assert len(captions) >= 2 and all(re.match(r"person \d+ · frames \d+-\d+ \(\d+ of \d+\) · score \d\.\d\d", c)
                                      for c in captions), captions
    page.locator("#lsmrl-video-retrieve").click()
    summary = _wait_text(page, "#lsmrl-summary", r"Uploaded")
    assert re.search(r"\*?Person \d+\*? of \d+ found", summary) or "Person" in summary, summary
    _wait_images(page, "#lsmrl-results", 5)
    assert not [t for t in _toasts(page) if "Error" in t], _toasts(page)
    _snap(page, "retrieval-scene")


def test_an_avi_upload_plays_from_its_h264_copy(page, served, tmp_path):
    import imageio_ffmpeg

    url, _ = served
    clip = _examples()["visible"]
    avi = tmp_path / "person.avi"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", clip["path"], "-c:v", "mpeg4",
                    str(avi)], check=True)
    page.goto(url)
    _wait_images(page, "#lsmrl-results", 1)
    _close_toasts(page)
    _upload(page, str(avi), "visible")
    page.wait_for_function(PLAYING, arg=["#lsmrl-video-player"])
    assert "playable" in page.evaluate("document.querySelector('#lsmrl-video-player video').src")
    assert "NaN" not in page.inner_text("#lsmrl-video-player")
    page.locator("#lsmrl-video-retrieve").click()
    summary = _wait_text(page, "#lsmrl-summary", r"Uploaded")
    assert "person.avi" in summary  # the query read the uploaded file, not the copy
    page.wait_for_function("() => Array.from(document.querySelectorAll('#tab-retrieval input[type=radio]'))"
                           ".some(r => r.checked && r.value === 'visible_to_infrared')")
    assert not [t for t in _toasts(page) if "Error" in t or "not playable" in t], _toasts(page)
    _snap(page, "retrieval-avi")


def test_the_first_true_match_past_top_k_is_named_and_selected_in_one_click(page, served):
    url, resources = served
    explorer = resources.explorer()
    rows = [r for r in explorer.queries(IR2VIS) if r["valid"]]
    far = max(rows, key=lambda r: (r["first_match_rank"], -r["test_index"]))
    own = explorer.retrieve(far["tid"], IR2VIS, 1)["first_match"]
    page.goto(url)
    _wait_images(page, "#lsmrl-results", 1)
    top_k = page.locator("#lsmrl-top-k input")
    top_k.fill("500")
    top_k.press("Enter")
    _retrieve(page, far["tid"])
    summary = _wait_text(page, "#lsmrl-summary", r"over the maximum")
    assert "Top-k 500 is over the maximum of 50" in summary
    line = _wait_text(page, "#lsmrl-true-match", re.escape(own["tid"]))
    assert f"rank {own['rank']}" in line and f"similarity {own['similarity']:.3f}" in line
    page.wait_for_function("([n]) => document.querySelectorAll('#lsmrl-results .thumbnail-item').length === n",
                           arg=[min(50, own["rank"])])  # capped, not cut to nothing (images load lazily)
    page.locator("#lsmrl-true-match-select").click()
    selected = _wait_text(page, "#lsmrl-selected", re.escape(f"(rank {own['rank']})"))
    assert own["tid"] in selected
    _snap(page, "retrieval-true-match")

    _open_tab(page, "Attention")
    attention = _wait_text(page, "#lsmrl-attention-summary", re.escape(own["tid"]))
    assert "same identity" in attention
    # any gallery id can be typed; one outside the gallery is refused in words
    box = page.locator("#lsmrl-attention-match-id textarea, #lsmrl-attention-match-id input").first
    box.fill(explorer.queries(IR2VIS)[1]["tid"])
    _close_toasts(page)
    page.locator("#tab-attention").get_by_role("button", name="Explain").click()
    refused = _wait_text(page, "#lsmrl-attention-summary", r"not in the gallery")
    assert "infrared → visible" in refused
    _snap(page, "attention-refused-match")
    _close_toasts(page)
    _open_tab(page, "Retrieval")
    top_k.fill("10")
    top_k.press("Enter")


def test_the_stage_panel_shows_the_explorers_numbers(page, served):
    url, resources = served
    explorer = resources.explorer()
    query = explorer.queries(IR2VIS)[0]
    own = explorer.failure.stage_ranks(query["tid"], IR2VIS)
    page.goto(url)
    _wait_images(page, "#lsmrl-results", 1)
    _retrieve(page, query["tid"])
    _wait_text(page, "#lsmrl-stages", r"final embedding")
    rows = page.evaluate("Array.from(document.querySelectorAll('#lsmrl-stages tbody tr'))"
                         ".map(r => Array.from(r.cells).map(c => c.innerText.trim()))")
    assert [r[0] for r in rows] == ["STFL", "after SD", "after CMI", "final embedding"]
    for row, stage in zip(rows, own):
        assert row[1] == str(stage.first_match_rank) and row[2] == f"{stage.first_match_similarity:.3f}"
        assert row[3] == stage.top_impostor_tid and row[5] == f"{stage.margin:+.3f}"
    moves = " → ".join(str(s.first_match_rank) for s in own)
    assert moves in page.inner_text("#lsmrl-stages")
    assert own[-1].first_match_rank == query["first_match_rank"]
    for width in (1400, 900):
        page.set_viewport_size({"width": width, "height": 1000})
        _snap(page, f"retrieval-stages-{width}")
    page.set_viewport_size({"width": 1440, "height": 1000})
