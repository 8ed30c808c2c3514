"""The Modality gap and Failure cases tabs in a real browser (Debian's chromium through Playwright): the gap text
follows the gap table's numbers, the camera-pair heatmap explains its diagonal and names its axes, the
per-identity failure table lists every identity worst first, a column filter that empties a table says so and
clears, and plots refit after a window resize. Screenshots go to ``test-artifacts/`` (``_shot``).
"""

from __future__ import annotations

import re

import pytest

from tests.test_app_api import IR2VIS
from tests.test_browser import ARGS, CHROMIUM, TIMEOUT_MS, _open_tab, _shot, _wait_plots, _wait_text

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (apt-get install chromium)"),
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]


@pytest.fixture(scope="module")
def page(served):
    from playwright.sync_api import sync_playwright

    url, _ = served
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)
        page.wait_for_function("document.querySelectorAll('#lsmrl-results img').length > 0")
        yield page
        browser.close()


def _table(page, selector: str) -> tuple[list[str], list[list[str]]]:
    """Headers and body cells of a gradio Dataframe, as the page shows them."""
    return page.evaluate("""(sel) => {
        const box = document.querySelector(sel);
        const headers = [];
        box.querySelectorAll("[data-testid^='header-']").forEach(th => {
            headers[+th.dataset.testid.split('-')[1]] = th.title || th.innerText.trim(); });
        const rows = [];
        box.querySelectorAll("[data-testid^='cell-']").forEach(td => {
            const [, r, c] = td.dataset.testid.split('-');
            (rows[+r] = rows[+r] || [])[+c] = td.innerText.trim(); });
        return [headers, rows.filter(Boolean)];
    }""", selector)


def _rows(page, selector: str) -> int:
    return page.evaluate("(sel) => new Set(Array.from(document.querySelectorAll(sel + \" [data-testid^='cell-']\"))"
                         ".map(td => td.dataset.testid.split('-')[1])).size", selector)


def _open_failures(page) -> None:
    _open_tab(page, "Failure cases")
    _wait_text(page, "#lsmrl-failures-summary", r"fail at rank 1")
    _wait_plots(page, "#tab-failures", 2)


def test_gap_text_follows_its_table(page, served):
    _, resources = served
    rows = resources.explorer().gap.table()
    _open_tab(page, "Modality gap")
    note = _wait_text(page, "#lsmrl-gap-note", r"What the gap table says")
    page.wait_for_function("([n]) => document.querySelectorAll(\"#lsmrl-gap-table [data-testid^='cell-'][data-testid$='-0']\")"
                           ".length === n", arg=[len(rows)])
    headers, cells = _table(page, "#lsmrl-gap-table")
    assert len(cells) == len(rows)
    centroid = {r[0]: float(r[headers.index("centroid distance")]) for r in cells}
    model = {r["label"]: centroid[r["label"]] for r in rows if r["stage"] != "baseline"}
    lowest = min(model, key=model.get)
    assert f"Lowest: {lowest} ({model[lowest]:.3f})" in note
    probes = [float(r[headers.index("modality probe acc.")]) for r in cells if r[0] in model]
    if min(probes) >= 0.9:  # the probe reads the modality everywhere: the text must not claim a closed gap
        assert "not closed" in note and "not evidence of a closed gap" in note
    first, last = list(model)[0], list(model)[-1]
    assert f"{first} {model[first]:.3f}" in note and f"{last} {model[last]:.3f}" in note
    spread = [r[headers.index("cosine spread (collapse check)")] for r in cells]
    assert all(s.endswith(" ok") or s.endswith("⚠ collapsed") for s in spread)
    assert ("collapsed feature space" in note) == any(s.endswith("collapsed") for s in spread)
    _shot(page, "gapfail-gap-1400")


def test_camera_heatmap_explains_its_diagonal_and_names_its_axes(page):
    _open_failures(page)
    summary = page.inner_text("#lsmrl-failures-summary")
    heatmap = page.locator("#lsmrl-fail-cameras .js-plotly-plot")
    heatmap.wait_for()
    assert heatmap.locator(".g-xtitle").text_content() == "gallery camera (of the top-1 item)"
    assert heatmap.locator(".g-ytitle").text_content() == "query camera"
    title = heatmap.locator(".g-gtitle").text_content()
    assert title.startswith("Rank-1 failures by camera pair")
    if any("✕" in text for text in heatmap.locator(".annotation").all_text_contents()):
        assert "fails by construction" in title and "fail by construction" in summary
    # text on a dark cell is white, on a light cell dark
    colours = page.evaluate("""() => Array.from(document.querySelectorAll('#lsmrl-fail-cameras .annotation-text'))
        .map(t => [t.textContent, t.style.fill])""")
    assert colours and all(re.fullmatch(r"\d+/\d+( ✕)?", text) for text, _ in colours)
    assert {fill.replace(" ", "") for _, fill in colours} <= {"rgb(255,255,255)", "rgb(34,34,34)"}


def test_per_identity_failure_table_lists_every_identity_worst_first(page, served):
    _, resources = served
    expected = resources.explorer().failure.by_identity()
    _open_failures(page)
    _wait_text(page, "#lsmrl-fail-identities-note", r"Rank-1 failures per identity")
    page.locator("#lsmrl-fail-identities [data-testid='cell-0-0']").wait_for()
    headers, cells = _table(page, "#lsmrl-fail-identities")
    assert headers[0] == "identity" and "both failed/queries" in headers and "IR→VIS rate (95% CI)" in headers
    worst = expected[0]
    first = dict(zip(headers, cells[0]))
    assert int(first["identity"]) == worst.pid
    assert first["both failed/queries"] == f"{worst.total.num_failures}/{worst.total.num_queries}"
    low, high = worst.total.interval
    assert first["both rate (95% CI)"] == f"{100 * worst.total.rate:.0f}% ({100 * low:.0f}-{100 * high:.0f}%)"
    rates = [int(row[headers.index("both rate (95% CI)")].split("%")[0]) for row in cells]
    assert rates == sorted(rates, reverse=True)


def test_a_filter_that_empties_the_failure_table_says_so_and_clears(page, served):
    _, resources = served
    _open_failures(page)
    table = page.locator("#lsmrl-failures-table")
    table.locator("[data-testid='cell-0-1']").wait_for()
    before = _rows(page, "#lsmrl-failures-table")
    header = table.locator("[data-testid='header-2']")  # "identity"
    header.hover()
    header.locator("button[aria-label='Open cell menu']").click(force=True)
    page.get_by_role("menuitem", name="Filter", exact=True).click()
    page.locator("input.filter-input").fill("no such identity")
    page.locator("button.check-button").click()
    note = page.locator("#lsmrl-failures-table .lsmrl-filter-note")
    note.wait_for()
    assert "No row matches the column filter on identity" in note.inner_text()
    _shot(page, "gapfail-filter-empty")
    note.get_by_role("button", name="Clear the filter").click()
    page.wait_for_function("() => !document.querySelector('#lsmrl-failures-table .lsmrl-filter-note')")
    table.locator("[data-testid='cell-0-1']").wait_for()
    assert _rows(page, "#lsmrl-failures-table") == before
    assert table.locator("[data-testid='cell-0-1']").inner_text().strip() == \
        resources.explorer().failure.worst(IR2VIS, "ap", 1)[0]["tid"]


def test_plots_refit_after_a_resize_on_another_tab(page):
    _open_failures(page)
    page.set_viewport_size({"width": 900, "height": 1000})
    _open_tab(page, "Modality gap")
    _wait_text(page, "#lsmrl-gap-note", r"What the gap table says")
    # the UMAP's drawing fits its box again (it was drawn for 1400 px) and still shows the query star's trace
    page.wait_for_function("""() => { const p = document.querySelector('#lsmrl-umap .js-plotly-plot');
        const svg = p && p.querySelector('.main-svg');
        return !!svg && svg.getBoundingClientRect().width <= p.getBoundingClientRect().width + 1; }""")
    assert "query" in page.locator("#lsmrl-umap .legendtext").all_text_contents()
    widths = page.evaluate("""() => Array.from(document.querySelectorAll("#lsmrl-gap-table [data-testid^='header-']"))
        .map(th => th.getBoundingClientRect().right)""")
    box = page.evaluate("document.querySelector('#lsmrl-gap-table').getBoundingClientRect().right")
    assert max(widths) <= box + 1, "a gap-table column is cut at 900 px"
    _shot(page, "gapfail-gap-900")
    _open_failures(page)
    _shot(page, "gapfail-failures-900")
    page.set_viewport_size({"width": 1400, "height": 1000})
