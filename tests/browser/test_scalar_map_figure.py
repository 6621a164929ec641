"""Chapter 5.3's Newton–Schulz figure (kind ``scalar_map``): the page computes what optbook computes.

The bundle (``npm run build`` -> ``book/_static/optbook-figures.js``, or
``$OPTBOOK_FIGURES_JS``) runs in headless chromium with no network; no built
site is needed.  Checked against optbook in float64:

* ``iterateMap`` (the page's p^k(s), p(s) = a s + b s^3 + c s^5) against
  ``optbook.newton_schulz_scalar`` for the three presets and other coefficient
  sets, k = 1 .. 10, on the figure's 400 axis points and a few others:
  max relative difference <= 1e-12, overflow (inf, NaN) at the same places;
* ``mapSummary`` (what the readout says) against
  ``optbook.figures.scalar_map.summary``: the marked values, the smallest s
  reaching the threshold, the largest value and where it is, to 1e-12;
* the live figure built from ``optbook.experiments.matrix.newton_schulz_explorer``:
  choosing a preset moves the three coefficient sliders to it, moving a
  slider (pointer-style ``fill`` and the keyboard) redraws the curve and the
  aria-live readout, which shows optbook's numbers at the new values (3 digits),
  and the menu turns to "custom"; nothing in the figure animates when the
  reader asks for reduced motion; at 390 px it fits and its text stays >= 7.5 px.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from scalar_map_readout import check_readout

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = Path(os.environ.get("OPTBOOK_FIGURES_JS")
              or ROOT / "book" / "_static" / "optbook-figures.js")
TOL = 1e-12

if not BUNDLE.is_file():
    message = f"no figure runtime at {BUNDLE}: run `npm ci && npm run build`"
    if os.environ.get("OPTBOOK_REQUIRE_SITE") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)

# the browser fixture (Debian's chromium, no network) is tests/browser/conftest.py's


def _offline_page(browser, html: str = "", width: int = 1280):
    page = browser.new_page(viewport={"width": width, "height": 900})
    remote = []
    page.on("request", lambda r: remote.append(r.url)
            if not r.url.startswith(("about:", "data:", "file:")) else None)
    page.set_content(f"<!doctype html><html><head></head><body>{html}</body></html>")
    page.add_script_tag(content=BUNDLE.read_text(encoding="utf-8"))
    return page, remote


@pytest.fixture(scope="module")
def page(browser):
    page, remote = _offline_page(browser)
    yield page
    assert not remote, f"the runtime requested {remote}"
    page.close()


@pytest.fixture(scope="module")
def figure():
    from optbook.experiments import matrix as MX
    return MX.newton_schulz_explorer()


# (label, coefficients): the presets, the sin(3θ) and sin(5θ) polynomials, a
# coefficient set at the sliders' corners, and one that overflows within ten steps
COEFFICIENTS = [
    ("jordan", (3.4445, -4.7750, 2.0315)), ("cubic", (1.5, -0.5, 0.0)),
    ("classical quintic", (15 / 8, -10 / 8, 3 / 8)), ("sin 3θ", (3.0, -4.0, 0.0)),
    ("corner", (4.0, -6.0, 3.0)), ("overflows", (4.0, 0.0, 3.0)),
    ("odd digits", (2.718281828, -3.14159265, 1.41421356)),
]
CASES = [(label, coefficients, k) for label, coefficients in COEFFICIENTS for k in (1, 2, 5, 7, 10)]


def _points(spec):
    from optbook.figures import scalar_map as SM
    return np.concatenate([SM.sample_grid(spec["domain"], spec["samples"]),
                           [0.0, 1e-3, 2e-3, 0.37, 1.0, 1.2, 1.5]])


def _assert_same(got, want):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape
    finite = np.isfinite(want)
    assert np.array_equal(np.isfinite(got), finite), "overflow at different places"
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.array_equal(got[np.isinf(want)], want[np.isinf(want)])
    a, b = got[finite], want[finite]
    scale = np.maximum(np.abs(a), np.abs(b))
    rel = np.where(scale > 0, np.abs(a - b) / np.where(scale > 0, scale, 1.0), 0.0)
    assert rel.max(initial=0.0) <= TOL, rel.max()


def test_the_cases_cover_overflow_and_every_preset(figure):
    from optbook.figures import scalar_map as SM

    presets = [tuple(c["coefficients"]) for c in figure.spec["choices"]]
    assert set(presets) <= {c for _, c in COEFFICIENTS}
    verdicts = {bool(np.isfinite(SM.iterate_map(_points(figure.spec), c, k)).all())
                for _, c, k in CASES}
    assert verdicts == {True, False}


@pytest.mark.parametrize("label,coefficients,k", CASES, ids=[f"{c[0]}-k{c[2]}" for c in CASES])
def test_iterate_map_matches_optbook(page, figure, label, coefficients, k):
    import optbook

    s = _points(figure.spec)
    with np.errstate(over="ignore", invalid="ignore"):
        want = optbook.newton_schulz_scalar(s, k, coefficients)
    got = page.evaluate("""([s, c, k]) => Array.from(window.optbookFigures.iterateMap(s, c, k),
                           (v) => (Number.isFinite(v) ? v : String(v)))""",
                        [s.tolist(), list(coefficients), k])
    _assert_same([float(v) for v in got], want)


def _close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=TOL, abs_tol=0.0)


@pytest.mark.parametrize("label,coefficients,k", CASES, ids=[f"{c[0]}-k{c[2]}" for c in CASES])
def test_readout_numbers_match_optbook(page, figure, label, coefficients, k):
    from optbook.figures import scalar_map as SM

    want = SM.summary(figure.spec, *coefficients, k)
    got = page.evaluate("""([spec, c, k]) => {
        const r = window.optbookFigures.mapSummary(spec, c, k);
        const num = (v) => (Number.isFinite(v) ? v : String(v));
        return {marks: r.marks.map(([m, v]) => [m, num(v)]), reaching: r.reaching,
                largest: r.largest, overflow: r.overflow}; }""",
                        [figure.spec, list(coefficients), k])
    assert _close(got["reaching"], want["reaching"]), (got["reaching"], want["reaching"])
    assert _close(got["overflow"], want["overflow"])
    if want["largest"] is None:
        assert got["largest"] is None
    else:
        assert all(_close(g, w) for g, w in zip(got["largest"], want["largest"]))
    _assert_same([float(v) for _, v in got["marks"]], [v for _, v in want["marks"]])


# --- the live figure ------------------------------------------------------------------------

def test_live_figure_follows_its_controls(browser, figure):
    spec = figure.spec
    page, remote = _offline_page(browser, figure.static_html())
    try:
        page.wait_for_selector(".optbook-figure[data-optbook-ready]")
        root = page.locator(".optbook-figure")
        assert not root.locator("img.optbook-figure-static").is_visible()
        menu = root.locator('select[data-optbook-param="choice"]')
        assert [o.strip() for o in menu.locator("option").all_inner_texts()] == \
            [c["label"] for c in spec["choices"]] + ["custom"]
        assert root.locator(".optbook-fig-readout[aria-live=polite]").count() == 1
        curve = root.locator("svg path[stroke='%s']" % spec["color"])
        assert curve.count() == 1
        seen, drawn = {check_readout(root, spec)}, {curve.get_attribute("d")}
        # the presets move the three coefficient sliders
        for k, choice in enumerate(spec["choices"]):
            menu.select_option(index=k)
            for name, value in zip("abc", choice["coefficients"]):
                text = root.locator(f'input[data-optbook-param="{name}"]').get_attribute("aria-valuetext")
                assert text == f"{name} = {float(f'{value:.3g}'):g}".replace("-", "−"), text
            assert root.evaluate("r => r.optbookFigure.values.a") == choice["coefficients"][0]
            seen.add(check_readout(root, spec))
            drawn.add(curve.get_attribute("d"))
        assert len(seen) == len(drawn) == len(spec["choices"])
        # a coefficient slider, dragged: the menu says "custom", the curve and readout follow
        a = root.locator('input[data-optbook-param="a"]')
        a.fill("900")
        assert menu.evaluate("s => s.value") == str(len(spec["choices"]))
        seen.add(check_readout(root, spec))
        drawn.add(curve.get_attribute("d"))
        assert len(seen) == len(drawn) == len(spec["choices"]) + 1
        # k with the keyboard, on Jordan's quintic: every step redraws and reads out anew
        menu.select_option(index=0)
        k = root.locator('input[data-optbook-param="steps"]')
        k.focus()
        page.keyboard.press("Home")
        assert root.evaluate("r => r.optbookFigure.values.steps") == 1
        seen, drawn = {check_readout(root, spec)}, {curve.get_attribute("d")}
        for want in range(2, 11):
            page.keyboard.press("ArrowRight")
            assert root.evaluate("r => r.optbookFigure.values.steps") == want
            assert k.get_attribute("aria-valuetext") == f"k = {want}"
            seen.add(check_readout(root, spec))
            drawn.add(curve.get_attribute("d"))
        assert len(seen) == len(drawn) == 10
        # reduced motion: nothing in the figure has a transition or an animation
        page.emulate_media(reduced_motion="reduce")
        moving = root.evaluate("""r => [...r.querySelectorAll('*')].filter(e => {
            const s = getComputedStyle(e);
            return parseFloat(s.transitionDuration) > 0 || s.animationName !== 'none'; }).length""")
        assert moving == 0
        assert not remote, f"the runtime requested {remote}"
    finally:
        page.close()


def test_the_figure_fits_a_phone(browser, figure):
    page, _ = _offline_page(browser, figure.static_html(), width=390)
    try:
        page.wait_for_selector(".optbook-figure[data-optbook-ready]")
        box = page.locator(".optbook-figure-live svg").bounding_box()
        assert box["width"] <= 390
        # rendered font size of every text of the panel: its CSS size times the svg's scale
        smallest = page.evaluate("""() => {
            const svg = document.querySelector('.optbook-figure-live svg');
            const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
            return Math.min(...[...svg.querySelectorAll('text')].filter(t => t.textContent.trim())
                .map(t => parseFloat(getComputedStyle(t).fontSize) * scale)); }""")
        assert smallest >= 7.5, smallest
        text = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector("
                             "'.optbook-fig-readout')).fontSize)")
        assert text >= 11
    finally:
        page.close()
