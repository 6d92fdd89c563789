"""A manager's dashboard in the browser: every chart drawn by Chart.js with the page's figures."""

from __future__ import annotations

import json
from typing import Any

from tests.browser.conftest import KPI_MANAGER, Console
from tests.browser.drive import Page, expect

# Month-by-month lines; the bar charts of the as-of month (deadlines per officer, the holdout)
# come before them on the page, each with its own categories.
LINE_CHARTS = ["chart-par", "chart-collection", "chart-behaviour", "chart-contact", "chart-reach"]
# What Chart.js drew on each canvas: its data, and how many of the canvas's pixels it painted.
_DRAWN = """() => [...document.querySelectorAll("canvas")].map((canvas) => {
  const chart = Chart.getChart(canvas);
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] > 0) { painted += 1; } }
  return {
    id: canvas.id,
    painted: painted,
    labels: chart ? chart.data.labels : null,
    datasets: chart ? chart.data.datasets.map((d) => ({label: d.label, data: d.data})) : [],
  };
})"""


def test_a_manager_sees_every_chart_drawn_with_the_figures(console: Console, page: Page) -> None:
    console.sign_in(page, KPI_MANAGER)
    page.get_by_role("link", name="Dashboard").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Branch dashboard")
    page.wait_for_function("() => window.Chart && Chart.getChart('chart-contact')")
    console.shot(page, "manager-dashboard")
    block: dict[str, Any] = json.loads(page.locator("#dashboard-data").text_content() or "")
    drawn: list[dict[str, Any]] = page.evaluate(_DRAWN)

    expected = [(bar, bar["labels"]) for bar in block["bars"]] + [
        (line, block["labels"]) for line in block["charts"]
    ]
    assert [chart["id"] for chart in drawn] == [f"chart-{e['id']}" for e, _ in expected]
    assert [chart["id"] for chart in drawn][-len(LINE_CHARTS) :] == LINE_CHARTS
    for chart, (figures, labels) in zip(drawn, expected, strict=True):
        assert chart["labels"] == labels and chart["labels"], chart["id"]
        assert chart["datasets"], chart["id"]
        assert [(d["label"], d["data"]) for d in chart["datasets"]] == [
            (s["label"], s["values"]) for s in figures["series"]
        ]
        values = [v for d in chart["datasets"] for v in d["data"]]
        assert any(v is not None for v in values), chart["id"]
        assert chart["painted"] > 0, chart["id"]
    assert all(len(line["labels"]) == 6 for line in drawn[-len(LINE_CHARTS) :])
    par = {d["label"]: d["data"] for d in drawn[-len(LINE_CHARTS)]["datasets"]}
    assert par["Portfolio at risk over 30 days (KES)"][-1] > 0
