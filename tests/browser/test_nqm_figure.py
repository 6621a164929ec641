"""Chapter 6.1's noisy-quadratic explorer: its new controls compute what optbook computes.

The bundle (``npm run build`` -> ``book/_static/optbook-figures.js``, or
``$OPTBOOK_FIGURES_JS``) runs in headless chromium with no network; no built site
is needed. Checked in float64 against ``optbook.experiments.schedules``:

* ``nqmSchedule`` / ``nqmLoss`` for every shape x WSD cooldown shape (linear,
  1 - sqrt(x), cosine) x final rate (0, 10 % of the peak) x noise scale, over
  settings with exact-half step counts: max relative difference <= 1e-9;
* the live figure built from ``optbook.experiments.schedules.schedule_figure``'s HTML: after choosing
  a cooldown shape and a final rate in their menus and moving the noise slider,
  its readout shows ``nqm_loss`` of ``nqm_schedule`` at those values (3 digits).
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = Path(os.environ.get("OPTBOOK_FIGURES_JS")
              or ROOT / "book" / "_static" / "optbook-figures.js")
TOL = 1e-9

if not BUNDLE.is_file():
    message = f"no figure runtime at {BUNDLE}: run `npm ci && npm run build`"
    if os.environ.get("OPTBOOK_REQUIRE_SITE") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)


# the browser fixture (Debian's chromium, no network) is tests/browser/conftest.py's


def _offline_page(browser, html: str = ""):
    page = browser.new_page()
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


def _max_rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = np.maximum(np.abs(a), np.abs(b))
    return float(np.max(np.where(scale > 0, np.abs(a - b) / np.where(scale > 0, scale, 1.0), 0.0)))


# (shape, peak, warmup_frac, cooldown_frac, cooldown, end_frac, noise); fractions with
# exact-half step counts (Python's round goes to even) among them
SETTINGS = [(shape, peak, warm, cool, cooldown, end, noise)
            for shape in ("constant", "cosine", "linear", "wsd")
            for cooldown in ("linear", "1-sqrt", "cosine")
            for end in (0.0, 0.1)
            for peak, warm, cool, noise in [(0.5, 0.0, 0.1, 1.0), (1.9, 0.0125, 0.4, 0.3),
                                            (0.731, 0.333, 0.0125, 2.0), (1.99, 0.5, 1.0, 0.0)]
            if shape == "wsd" or cooldown == "linear"]


def test_there_are_enough_settings():
    # WSD: 3 cooldowns x 2 final rates x 4 settings; the others: 2 final rates x 4 settings
    assert len(SETTINGS) == 3 * 2 * 4 + 3 * 2 * 4


@pytest.mark.parametrize("setting", SETTINGS, ids=[",".join(map(str, s)) for s in SETTINGS])
def test_nqm_rules_match_optbook_in_float64(page, setting):
    from optbook.experiments import schedules as S

    spec = S.schedule_figure().spec
    shape, peak, warm, cool, cooldown, end, noise = setting
    etas = S.nqm_schedule(shape, peak, spec["steps"], warm, cool, cooldown, end)
    loss = S.nqm_loss(etas, noise=noise)
    got = page.evaluate("""([spec, s]) => {
        const F = window.optbookFigures;
        const etas = F.nqmSchedule(s[0], s[1], spec.steps, s[2], s[3], s[4], s[5]);
        const loss = F.nqmLoss(etas, spec.curvatures, s[6], spec.start);
        return {etas: Array.from(etas), loss: Array.from(loss)}; }""", [spec, list(setting)])
    assert len(got["etas"]) == len(etas) and len(got["loss"]) == len(loss)
    assert _max_rel(got["etas"], etas) <= TOL
    assert _max_rel(got["loss"], loss) <= TOL


def test_nqm_defaults_keep_the_first_editions_rules(page):
    """Without the new arguments the page computes the linear cooldown to 0 (the old call)."""
    from optbook.experiments import schedules as S

    etas = S.nqm_schedule("wsd", 0.9, 200, 0.05, 0.3)
    got = page.evaluate("() => Array.from(window.optbookFigures.nqmSchedule('wsd', 0.9, 200, 0.05, 0.3))")
    assert _max_rel(got, etas) <= TOL


def _readout(root, steps, mid):
    lines = root.locator(".optbook-fig-readout").inner_text().strip().splitlines()
    out = []
    for line in lines:
        m = re.match(rf"(.+?): expected loss at step {mid} = (\S+), after {steps} steps = (\S+)$",
                     line.strip())
        assert m, f"unreadable readout line {line!r}"
        out.append((float(m.group(2)), float(m.group(3))))
    return out


def _set_slider(root, name, value, spec):
    """Move slider ``name`` to the position nearest ``value``; returns the value it shows."""
    p = next(p for p in spec["params"] if p["name"] == name)
    control = root.locator(f'input[data-optbook-param="{name}"]')
    top = int(control.get_attribute("max"))
    pos = round((value - p["min"]) / (p["max"] - p["min"]) * top)
    control.fill(str(pos))
    return root.evaluate(f"r => r.optbookFigure.values[{name!r}]")


def test_live_figure_menus_and_noise_slider_follow_optbook(browser):
    from optbook.experiments import schedules as S

    e = S.schedule_figure(shape="wsd", peak=0.5, cooldown_frac=0.2)
    spec = e.spec
    page, remote = _offline_page(browser, e.static_html())
    try:
        page.wait_for_selector(".optbook-figure[data-optbook-ready]")
        root = page.locator(".optbook-figure")
        menus = {m: root.locator(f'select[data-optbook-param="{m}"]')
                 for m in ("choice", "cooldown", "end_frac")}
        assert [o.strip() for o in menus["cooldown"].locator("option").all_inner_texts()] == \
            ["linear", "1 − √s", "cosine"]
        assert [o.strip() for o in menus["end_frac"].locator("option").all_inner_texts()] == \
            ["0", "10 % of peak"]
        steps, mid = spec["steps"], spec["checkpoint"]
        seen = set()
        for shape_i, shape in enumerate(S.NQM_SHAPES):
            menus["choice"].select_option(index=shape_i)
            for c_i, cooldown in enumerate(S.NQM_COOLDOWNS):
                menus["cooldown"].select_option(index=c_i)
                for e_i, end in enumerate((0.0, 0.1)):
                    menus["end_frac"].select_option(index=e_i)
                    for noise in (0.0, 0.6, 2.0):
                        shown_noise = _set_slider(root, "noise", noise, spec)
                        v = root.evaluate("r => r.optbookFigure.values")
                        assert v["cooldown"] == cooldown and v["end_frac"] == end
                        assert v["noise"] == pytest.approx(noise, abs=0.02)
                        want = [S.nqm_loss(S.nqm_schedule(shape, v["peak"], steps, v["warmup_frac"],
                                                          v["cooldown_frac"], cooldown, end),
                                           noise=shown_noise),
                                S.nqm_loss(S.nqm_schedule("constant", v["peak"], steps,
                                                          v["warmup_frac"], v["cooldown_frac"]),
                                           noise=shown_noise)]
                        got = _readout(root, steps, mid)
                        for (at_mid, at_end), loss in zip(got, want):
                            for shown, value in ((at_mid, loss[mid]), (at_end, loss[-1])):
                                assert math.isclose(shown, float(f"{value:.3g}"), rel_tol=1e-12), \
                                    (shape, cooldown, end, noise, shown, value)
                        seen.add(got[0][1])
        # the controls matter: WSD's three cooldowns, two final rates, three noise levels
        # and the other shapes give many different final losses
        assert len(seen) >= 20
        headline = root.locator(".optbook-fig-headline").inner_text()
        assert "noise σ" in headline
        assert not remote, f"the runtime requested {remote}"
    finally:
        page.close()
