"""The demo's report in a real browser: headless Chromium opens the file offline and every
section's charts draw, with no console error and no request beyond the file itself.

One browser start and one page for the whole suite. Chromium is Debian's package: installed
when missing where this process may (root with apt-get), else the test is skipped with the
reason. The screenshot goes to $BGGSCORE_TEST_ARTIFACTS when set (CI keeps it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.report.conftest import ReportDemo
from tests.support.browser import chromium, drawn_share, ensure_chromium

from bggscore.report.page import CHARTS, SECTIONS

READY = "document.body && document.body.dataset.rendered === 'done'"
# per chart: how it went, its SVG's size and how many marks it drew
CHART_STATE = """
Array.prototype.map.call(document.querySelectorAll("[data-chart]"), function (el) {
  var svg = el.querySelector("svg");
  var box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  return {chart: el.dataset.chart, section: el.closest("section").id,
          rendered: el.dataset.rendered, width: box.width, height: box.height,
          marks: svg ? svg.querySelectorAll('g[class*="mark-"] > *').length : 0};
})
"""


@pytest.fixture(scope="module")
def browser_path() -> str:
    found, why = ensure_chromium()
    if found is None:
        pytest.skip(why)
    return found


def test_the_report_draws_every_section_offline(
    report_demo: ReportDemo, browser_path: str, tmp_path: Path
) -> None:
    folder = Path(os.environ.get("BGGSCORE_TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    url = report_demo.page.resolve().as_uri()
    with chromium(browser_path) as browser:
        browser.open(url, READY)
        charts = browser.evaluate(CHART_STATE)
        png = browser.screenshot(folder / "report.png")
        drawn = drawn_share(browser, png)
        errors, requests = browser.page.errors, browser.page.requests

    assert errors == []
    # nothing but the file (and the screenshot the test itself decoded) was fetched
    assert {url.split(":", 1)[0] for url in requests} <= {"file", "data"}, requests
    assert sum(url.startswith("file:") for url in requests) == 1
    expected = {(section, chart) for section, names in CHARTS.items() for chart in names}
    assert {(c["section"], c["chart"]) for c in charts} == expected
    for chart in charts:
        assert chart["rendered"] == "ok", chart
        assert chart["width"] > 100 and chart["height"] > 50, chart
        assert chart["marks"] > 0, chart
    assert {c["section"] for c in charts} == {key for key, _ in SECTIONS}
    # the screenshot is the page drawn: many colours, a good share off the background
    assert drawn["width"] >= 1000 and drawn["height"] > 2000, drawn
    assert drawn["share"] > 0.05 and drawn["colours"] > 100, drawn


def test_without_chromium_the_reason_to_skip_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.support import browser

    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    found, why = browser.ensure_chromium()
    assert found is None and "no apt-get" in why
    monkeypatch.setattr(
        browser.shutil, "which", lambda name: "/usr/bin/apt-get" if name == "apt-get" else None
    )
    monkeypatch.setattr(browser.os, "geteuid", lambda: 1000)
    found, why = browser.ensure_chromium()
    assert found is None and "needs root" in why
