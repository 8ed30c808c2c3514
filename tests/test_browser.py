"""The app in a real browser (Debian's chromium through Playwright): open it, run a retrieval, select a match,
open every tab and check that each shows its content; screenshots go to ``test-artifacts/`` (git ignores it).

Skipped only where /usr/bin/chromium is absent *and* ``CI`` is unset; ``.ci/run`` installs chromium, so in CI
this test always runs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.test_app_api import IR2VIS, easy_query

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 180_000  # generous: 2 loaded cores, and the first Grad-CAM imports its library

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists() and not os.environ.get("CI"),
                       reason="Debian chromium is not installed (apt-get install chromium); CI installs it"),
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]


@pytest.fixture(scope="module")
def page(served):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.lsmrl_errors = errors
        yield page
        browser.close()


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _wait_images(page, selector: str, at_least: int = 1) -> None:
    page.wait_for_function(
        "([sel, n]) => Array.from(document.querySelectorAll(sel)).filter(i => i.complete && i.naturalWidth > 0)"
        ".length >= n", arg=[f"{selector} img", at_least], timeout=TIMEOUT_MS)


def _wait_text(page, selector: str, pattern: str) -> str:
    page.wait_for_function("([sel, pattern]) => { const e = document.querySelector(sel);"
                           " return !!e && new RegExp(pattern).test(e.innerText); }",
                           arg=[selector, pattern], timeout=TIMEOUT_MS)
    return page.inner_text(selector)


def _wait_plots(page, container: str, at_least: int = 1) -> None:
    page.wait_for_function("([sel, n]) => document.querySelectorAll(sel + ' .js-plotly-plot').length >= n",
                           arg=[container, at_least], timeout=TIMEOUT_MS)


def _open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def _no_error_toasts(page) -> None:
    toasts = page.locator(".toast-body.error, [data-testid='toast-body'].error")
    assert toasts.count() == 0, toasts.all_inner_texts()


def test_the_app_in_chromium(page, served):
    url, resources = served
    explorer = resources.explorer()
    easy = easy_query(explorer)

    # ---- start-up: the first query is retrieved automatically
    page.goto(url)
    _wait_images(page, "#lsmrl-results", 1)
    _wait_images(page, "#lsmrl-thumbnails", 5)
    assert "AP" in _wait_text(page, "#lsmrl-summary", r"AP")
    assert "Serving" in page.inner_text("#lsmrl-status")

    # ---- run a retrieval: (its direction,) type an easy query, press Retrieve
    if easy["direction"] != IR2VIS:
        page.locator("#tab-retrieval").get_by_text("visible → infrared", exact=True).first.click()
        _wait_text(page, "#lsmrl-summary", r"visible → infrared")
    box = page.locator("#lsmrl-query input")
    box.fill(easy["tid"])
    box.press("Enter")
    page.locator("#lsmrl-retrieve").click()
    summary = _wait_text(page, "#lsmrl-summary", re.escape(easy["tid"]))
    assert f"identity {easy['pid']}" in summary and "first true match at rank 1" in summary
    _wait_images(page, "#lsmrl-results", 10)
    _wait_images(page, "#lsmrl-query-strip", 1)
    first_caption = page.locator("#lsmrl-results .caption-label").first.inner_text()
    assert first_caption.startswith("#1") and f"id {easy['pid']}" in first_caption and "✓" in first_caption

    # ---- click the second match: it is selected for the other tabs
    second = page.locator("#lsmrl-results .thumbnail-item").nth(1)
    second_tid = re.search(r"test/\d+", second.locator(".caption-label").inner_text())
    second.click()
    selected = _wait_text(page, "#lsmrl-selected", r"Selected match")
    assert "rank 2" in selected
    _no_error_toasts(page)
    _shot(page, "1-retrieval")

    # ---- Attention: per-frame maps of the query and the selected match
    _open_tab(page, "Attention")
    attention = _wait_text(page, "#lsmrl-attention-summary", r"Method")
    assert easy["tid"] in attention
    if second_tid:
        assert second_tid.group(0) in attention
    frames = explorer.num_frames
    _wait_images(page, "#lsmrl-attention-query", frames)
    _wait_images(page, "#lsmrl-attention-match", frames)
    _wait_plots(page, "#tab-attention", 1)
    _shot(page, "2-attention")
    page.locator("#lsmrl-attention-method").get_by_text("occlusion", exact=True).click()
    page.locator("#tab-attention").get_by_role("button", name="Explain").click()
    occlusion = _wait_text(page, "#lsmrl-attention-summary", r"Method: occlusion")
    assert "one patch of one frame is hidden" in occlusion
    _wait_images(page, "#lsmrl-attention-query", frames)
    _no_error_toasts(page)
    _shot(page, "2b-occlusion")

    # ---- Prompt diffusion
    _open_tab(page, "Prompt diffusion")
    assert easy["tid"] in _wait_text(page, "#lsmrl-diffusion-summary", r"SD moves")
    _wait_plots(page, "#tab-diffusion", 2)
    _shot(page, "3-diffusion")

    # ---- Modality gap: the UMAP with the selected query highlighted, and the gap table
    _open_tab(page, "Modality gap")
    note = _wait_text(page, "#lsmrl-gap-note", r"Star: query")
    assert easy["tid"] in note
    page.wait_for_function("document.querySelectorAll('#lsmrl-umap .js-plotly-plot .scatterlayer .point').length"
                           " >= 10")
    legend = page.inner_text("#lsmrl-umap")
    assert "visible" in legend and "infrared" in legend and "query" in legend
    _wait_text(page, "#lsmrl-gap-table", r"STFL")
    _shot(page, "4-modality-gap")

    # ---- Failure cases: worst first; choosing a row loads it and shows its impostor
    _open_tab(page, "Failure cases")
    _wait_text(page, "#lsmrl-failures-summary", r"fail at rank 1")
    worst = explorer.failure.worst(IR2VIS, "ap", 1)[0]
    cell = page.locator("#lsmrl-failures-table [data-testid='cell-0-1']")  # row 1 (the worst), column "query"
    cell.wait_for()
    assert cell.inner_text().strip() == worst["tid"]
    cell.click()
    page.wait_for_function("([tid]) => document.body.innerText.includes('Loaded `' + tid + '`') ||"
                           " document.body.innerText.includes('Loaded ' + tid)", arg=[worst["tid"]])
    page.wait_for_function("document.querySelectorAll('#tab-failures img').length >= 1")
    _wait_plots(page, "#tab-failures", 2)
    _shot(page, "5-failures")

    # ---- Model: card, metrics, ablation and the comparison with the baseline
    _open_tab(page, "Model")
    assert "sha256" in _wait_text(page, "#lsmrl-model-card", r"sha256")
    assert "mAP" in _wait_text(page, "#lsmrl-compare-summary", r"mAP")
    _shot(page, "6-model")

    # ---- back to Retrieval: the failure row was loaded there
    _open_tab(page, "Retrieval")
    assert worst["tid"] in _wait_text(page, "#lsmrl-summary", re.escape(worst["tid"]))
    _no_error_toasts(page)
    _shot(page, "7-retrieval-after-failure")
    assert not page.lsmrl_errors, page.lsmrl_errors
