"""A diverging run stays inside its panel and is marked as JupyterLab marks it.

Issue 21, item 7: in the in-page figures a diverging path was drawn across
the panel's title and axis labels, with no sign that it diverged, while the
JupyterLab figures (``optbook.figures.plotting``) clip to the axes and mark it. Now
(``js/src/draw.js``) the paths and curves are clipped to the plot area; a
diverged run's path ends in an X where it last leaves the area, with the note
"diverged (step t)", and its loss curve ends in an X, as
``optbook.figures.plotting.plot_path`` and ``loss_curve`` draw them.

Chapter 3's first figure, every slider at its end (both optimizers diverge),
at 1280 and 390 px: the plot areas exclude the titles and axis labels, every
path lies in one, each diverged run has its X and note, and the X stands
where optbook's ``_exit_point`` puts it (to 2 px).
"""
from __future__ import annotations

import json
import math
import re

import pytest

from optbook.figures.plotting import _exit_point

from figure_runs import runs_at
from readout_i18n import lang_of, pattern, tr
from site_audit import SITE, WIDTHS, open_page

CHAPTER = SITE / "book" / "03-momentum.html"

GEOMETRY = r"""(root) => {
  const rect = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  return [...root.querySelectorAll('svg.optbook-fig-svg')].map(svg => {
    const plot = svg.querySelector('g.optbook-fig-plot');
    const clipId = plot && (plot.getAttribute('clip-path') || '').match(/#([^)]+)/);
    const clip = clipId && svg.querySelector('#' + CSS.escape(clipId[1]) + ' rect');
    // a clip path's rect is not drawn: its box in the page comes from the SVG's transform
    const box = r => {
      const m = svg.getScreenCTM(), a = r.x.baseVal.value, b = r.y.baseVal.value;
      const p = new DOMPoint(a, b).matrixTransform(m);
      const q = new DOMPoint(a + r.width.baseVal.value, b + r.height.baseVal.value).matrixTransform(m);
      return [p.x, p.y, q.x, q.y];
    };
    return {
      label: svg.getAttribute('aria-label') || '',
      clip: clip ? box(clip) : null,
      unclipped_lines: [...svg.querySelectorAll('path[stroke-width="1.6"]')].filter(p => !p.closest('g.optbook-fig-plot')).length,
      labels: [...svg.querySelectorAll('text.optbook-fig-title, text.optbook-fig-axis, .tick text')]
        .filter(t => t.textContent.trim() && t.getClientRects().length).map(t => [t.textContent.trim(), rect(t)]),
      crosses: [...svg.querySelectorAll('path.optbook-fig-diverged')].filter(p => p.getAttribute('display') !== 'none')
        .map(p => ({stroke: p.getAttribute('stroke'), box: rect(p)})),
      notes: [...svg.querySelectorAll('text.optbook-fig-diverged-note')].filter(t => t.getAttribute('display') !== 'none')
        .map(t => t.textContent),
    };
  });
}"""


def _overlap(a, b) -> bool:
    return min(a[2], b[2]) - max(a[0], b[0]) > 1 and min(a[3], b[3]) - max(a[1], b[1]) > 1


@pytest.mark.parametrize("width", WIDTHS)
def test_diverged_runs_are_clipped_and_marked_like_jupyterlab(browser, width):
    page = open_page(browser, CHAPTER, width)
    try:
        root = page.locator(".optbook-figure").first
        spec = json.loads(root.locator("script.optbook-figure-spec").text_content())
        sliders = root.locator("input[type=range]")
        for i in range(sliders.count()):
            sliders.nth(i).focus()
            page.keyboard.press("End")
        readout = root.locator(".optbook-fig-readout").first.inner_text()
        lang = lang_of(root)          # the runtime's words: English or Japanese (js/src/i18n.js)
        line = pattern("{label}: diverged at step {step}", lang, label=".+?", step=r"\d+")
        diverged = dict(re.findall(f"^{line}$", readout, re.M))
        assert len(diverged) >= 1, f"no run diverges with every slider at its end: {readout}"
        panels = root.evaluate(GEOMETRY)
        state = root.evaluate("r => ({values: r.optbookFigure.values,"
                              " choice: r.querySelector('select') ? r.querySelector('select').selectedIndex : 0})")
    finally:
        page.close()

    paths, losses = panels[-2], panels[-1]       # the path panel, then the loss panel
    for panel in (paths, losses):
        assert panel["clip"], f"{panel['label']}: no plot area clips the curves"
        assert panel["unclipped_lines"] == 0, f"{panel['label']}: curves drawn outside the plot area"
        crossing = [text for text, box in panel["labels"] if _overlap(box, panel["clip"])]
        assert not crossing, f"{panel['label']}: the plot area covers labels {crossing}"
        assert len(panel["crosses"]) == len(diverged), (panel["label"], panel["crosses"], diverged)
    assert sorted(paths["notes"]) == sorted(tr("diverged (step {step})", lang, step=s)
                                            for s in diverged.values())

    # the X on the path panel stands where optbook.figures.plotting puts it
    land, runs = runs_at(spec, state)
    x0, y0, x1, y1 = paths["clip"]
    to_px = lambda p: (x0 + (p[0] - land.xlim[0]) / (land.xlim[1] - land.xlim[0]) * (x1 - x0),
                       y1 - (p[1] - land.ylim[0]) / (land.ylim[1] - land.ylim[0]) * (y1 - y0))
    colours = {opt["name"]: opt.get("color") or "#000" for opt in spec["optimizers"]}
    for opt in spec["optimizers"]:
        run = runs[opt["name"]]
        if run.diverged_at is None:
            continue
        mark = to_px(_exit_point(run.path[:run.diverged_at], land.xlim, land.ylim))
        cross = next(c for c in paths["crosses"] if c["stroke"] == colours[opt["name"]])
        centre = ((cross["box"][0] + cross["box"][2]) / 2, (cross["box"][1] + cross["box"][3]) / 2)
        assert math.dist(centre, mark) < 2.0, (opt["name"], centre, mark)
