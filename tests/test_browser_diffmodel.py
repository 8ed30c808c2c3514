"""The Prompt diffusion and Model tabs in chromium: the query's ranking with and without SD, as many prompts as
the slider says with their words on the page, and the model's standing across fresh draws (Model tab and
banner), checked against the explorer and the evidence JSON. Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

import json

from app import config as app_config
from tests.test_browser import (  # noqa: F401  (page: the fixture)
    TIMEOUT_MS,
    _no_error_toasts,
    _open_tab,
    _shot,
    _wait_images,
    _wait_text,
    page,
    pytestmark,  # noqa: F401  (the same skip and warning filters)
)

#: The body rows of a gr.Dataframe in Gradio 6.31 (a virtual table of div rows and grid cells).
ROWS = " .virtual-body [role='row']"


def _rows(page, selector: str) -> list[list[str]]:
    """The body cells of a gr.Dataframe, as text."""
    return page.eval_on_selector_all(selector + ROWS, "rows => rows.map(r => Array.from("
                                     "r.querySelectorAll(\"[role='gridcell']\")).map(c => c.innerText.trim()))")


def _wait_rows(page, selector: str, count: int) -> None:
    page.wait_for_function("([sel, n]) => document.querySelectorAll(sel).length === n",
                           arg=[selector + ROWS, count], timeout=TIMEOUT_MS)


def _bars(page, selector: str) -> list[int]:
    """Bars per trace of the plotly chart inside ``selector``."""
    return page.eval_on_selector(f"{selector} .js-plotly-plot", "p => p.data.map(t => t.x.length)")


def test_diffusion_tab_ranking_before_after_sd_and_listed_prompts(page, served):
    url, resources = served
    explorer = resources.explorer()
    query = explorer.default_query()
    page.goto(url)
    _wait_images(page, "#lsmrl-results", 1)  # the first query is retrieved and handed to the other tabs
    _open_tab(page, "Prompt diffusion")
    line = _wait_text(page, "#lsmrl-diffusion-ranking", r"Ranking with and without SD")
    expected = explorer.diffusion.ranking(query, 5)
    assert f"first true match at rank {expected.before.first_match_rank} by the STFL feature" in line
    assert f"and {expected.after.first_match_rank} by the after-SD feature" in line
    assert f"the same {expected.gallery_size} gallery items" in line
    _wait_rows(page, "#lsmrl-diffusion-after", 5)
    assert [r[1] for r in _rows(page, "#lsmrl-diffusion-before")] == [m.tid for m in expected.before.top]
    assert [r[1] for r in _rows(page, "#lsmrl-diffusion-after")] == [m.tid for m in expected.after.top]
    # five prompts listed: five rows, their words on the page, five bars per trace
    listed = explorer.diffusion.of(query, 5).tracklet.listed
    _wait_rows(page, "#lsmrl-diffusion-prompts", 5)
    rows = _rows(page, "#lsmrl-diffusion-prompts")
    assert [r[3] for r in rows] == [p.words or "attributes unknown" for p in listed]
    assert all(len(r[3]) > 10 for r in rows)  # the demo knows its training identities' attributes
    page.wait_for_function("() => document.querySelector('#lsmrl-diffusion-similarity .js-plotly-plot')")
    assert _bars(page, "#lsmrl-diffusion-similarity") == [5, 5]
    _shot(page, "diffmodel-diffusion-k5")
    # the slider says 3: three prompts, three matches each side, three bars
    number = page.locator("#lsmrl-diffusion-k input[type='number']")
    number.fill("3")
    number.press("Enter")
    page.locator("#lsmrl-diffusion-show").click()
    _wait_rows(page, "#lsmrl-diffusion-prompts", 3)
    _wait_rows(page, "#lsmrl-diffusion-before", 3)
    page.wait_for_function("() => document.querySelector('#lsmrl-diffusion-similarity .js-plotly-plot')"
                           ".data[0].x.length === 3", timeout=TIMEOUT_MS)
    assert [r[3] for r in _rows(page, "#lsmrl-diffusion-prompts")] == [p.words or "attributes unknown"
                                                                       for p in listed[:3]]
    assert "top 3 prompts" in page.inner_text("#lsmrl-diffusion-ranking")
    _no_error_toasts(page)
    _shot(page, "diffmodel-diffusion-k3")


def test_model_tab_and_banner_show_the_standing_across_fresh_draws(page, served):
    url, resources = served
    explorer = resources.explorer()
    evidence = explorer.provenance.draws()
    page.goto(url)
    _wait_images(page, "#lsmrl-results", 1)
    _open_tab(page, "Model")
    text = _wait_text(page, "#lsmrl-draws", r"Standing across fresh draws")
    if evidence.standing is None:
        assert "No evidence of fresh draws" in text
        return
    report = json.loads((app_config.DEFAULT_CHECKPOINT.parent / evidence.standing.source).read_text())
    _wait_rows(page, "#lsmrl-draws-table", 6)
    rows = {(r[0], r[1]): r for r in _rows(page, "#lsmrl-draws-table")}
    for key, name in (("infrared_to_visible", "infrared → visible"), ("visible_to_infrared", "visible → infrared"),
                      ("both_directions", "both directions (mean)")):
        for metric, label in (("rank1", "Rank-1"), ("mAP", "mAP")):
            mine = report["summary"]["model"][key][metric]
            lead = report["difference"][key][metric]
            row = rows[(name, label)]
            assert row[2] == f"{mine['mean']:.1f} ± {mine['sd']:.1f}"
            assert row[5] == f"{lead['ci95'][0]:+.1f} to {lead['ci95'][1]:+.1f}"
    both = report["summary"]["model"]["both_directions"]["mAP"]
    banner = _wait_text(page, "#lsmrl-banner", r"fresh draws")
    assert f"Across {len(report['seeds'])} fresh draws" in banner and f"{both['mean']:.1f} ± {both['sd']:.1f}" in banner
    lead = report["difference"]["both_directions"]["mAP"]
    assert f"{lead['ci95'][0]:+.1f} to {lead['ci95'][1]:+.1f}" in banner
    assert "infrared_to_visible" not in page.inner_text("#tab-model")
    _no_error_toasts(page)
    _shot(page, "diffmodel-model")
