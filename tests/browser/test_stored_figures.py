"""The stored-runs and heatmap figures, end to end: Python data -> page -> what the reader sees.

A page is written here from known arrays with ``optbook.figures.curves_figure`` and
``heatmap_figure`` and opened in chromium with the runtime the book ships
(``book/_static/optbook-figures.js``, built by ``npm run build``).  Every
position of every slider and menu is visited (keyboard and selection), and the
readout list must be exactly what ``stored_readout`` computes from the spec; the
hover readout and the keyboard readout must give the original Python arrays'
values (rounded to 4 significant digits) at the x they name; every heatmap cell
is hovered and the best cell is the argmin of the seed means numpy computes.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from optbook import figures
from optbook.figures import Axis, Curve, Mark, Panel, Series

from stored_readout import (cell_text, hover_values, js_str, readout_lines, series_line,
                            walk_runs_figure)

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "book" / "_static" / "optbook-figures.js"
if not BUNDLE.exists():
    pytest.skip(f"{BUNDLE} missing: run `npm run build`", allow_module_level=True)

LRS = [0.01, 0.03, 0.1, 0.3, 1.0]
STEPS = np.arange(0, 101, 5)
SWEEP = np.geomspace(1e-4, 1.0, 9)


def losses(lr, case):
    """(3 seeds, 21 evals): exp decay at rate lr, seed offsets; case "noisy" adds a wiggle;
    at lr = 1 seed 2 diverges at the 13th evaluation (NaN from there)."""
    t = STEPS / 100
    y = np.array([np.exp(-3 * lr * t) * (1 + 0.01 * s) + 0.1 * s / 7 for s in range(3)])
    if case == "noisy":
        y = y + 0.01 * np.sin(np.arange(len(STEPS)))[None] * np.array([[1], [2], [3]])
    if lr == 1.0:
        y[2, 12:] = np.nan
    return y


def sweep(case):
    y = np.array([(np.log10(SWEEP) + 2.5 + 0.1 * s) ** 2 / 4 + 0.3 for s in range(3)])
    if case == "noisy":
        y[:, -1] = np.inf
    return y


def runs_figure():
    return figures.curves_figure(
        lambda lr, case: [{"adam": losses(lr, case), "ref": losses(0.01, "plain")},
                          {"sgd": Curve(sweep(case), x=SWEEP)}],
        axes=[Axis("lr", "η", LRS, default=0.1), Axis("case", "case", ["plain", "noisy"])],
        panels=[Panel("training loss", x=STEPS, ylabel="loss", yscale="log"),
                Panel("sweep", xlabel="fixed η", ylabel="validation loss", xscale="log", readout="min",
                      xsymbol="η", marks=[Mark("hline", y=0.3, text="floor")])],
        series=[Series("adam"), Series("ref", "reference", reference=True), Series("sgd", mean=True)],
        marks=lambda lr, case: [[Mark("vline", x=50, label=f"a mark at lr {lr:g}")], []],
        notes=lambda lr, case: [f"note: {case}"],
        title="test curves", headline="η = {lr}, {case}")


def heatmap_data():
    rng = np.random.default_rng(3)
    values = {"Adam + L2": rng.random((3, 4, 5)) + 0.5, "AdamW": rng.random((3, 4, 5)) + 0.5}
    values["AdamW"][1, 3, 4] = np.inf            # one diverged seed
    curves = {k: rng.random((3, 4, 5, 6)) for k in values}
    return values, curves


def heatmap_figure():
    values, curves = heatmap_data()
    return figures.heatmap_figure(values, x=("lr", "η", np.geomspace(1e-4, 1e-2, 5)),
                                  y=("wd", "λ", [0.0, 0.01, 0.1, 1.0]), title="test heatmap",
                                  curves=curves, curves_x=np.arange(6) * 20,
                                  curves_panel=Panel("selected cell", ylabel="validation loss"))


@pytest.fixture(scope="module")
def page(browser, tmp_path_factory):
    figures = [runs_figure(), heatmap_figure()]
    body = "\n".join(f.static_html() for f in figures)
    path = tmp_path_factory.mktemp("stored") / "figures.html"
    path.write_text(f'<!doctype html><html><head><meta charset="utf-8"></head><body>{body}'
                    f'<script src="{BUNDLE.as_uri()}"></script></body></html>', encoding="utf-8")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(path.as_uri())
    page.wait_for_function("document.querySelectorAll('.optbook-figure[data-optbook-ready]').length === 2")
    yield page, figures, errors
    assert not errors, errors
    page.close()


def r4(v):
    return None if not math.isfinite(v) else float(f"{v:.4g}")


def test_runs_figure_every_control_position_gives_the_stored_readout(page):
    page, figures, _ = page
    root = page.locator(".optbook-figure").nth(0)
    spec = figures[0].spec
    assert walk_runs_figure(page, root, spec) == 1 + (len(LRS) + 1) + 2
    # a diverged seed is named with its step, and the final value is over the other two
    root.locator('[data-optbook-axis="lr"]').fill(str(len(LRS) - 1))
    lines = readout_lines(root)
    y = losses(1.0, "plain")
    finals = [r4(v) for v in y[:2, -1]]
    assert lines[0] == (f"Adam: final loss {float(f'{sum(finals) / 2:.4g}'):g} "
                        f"({min(finals):g}–{max(finals):g}) over 2 seeds; seed 2 diverged at step 60")


def test_runs_figure_hover_and_keyboard_read_the_python_arrays(page):
    page, figures, _ = page
    root = page.locator(".optbook-figure").nth(0)
    spec = figures[0].spec
    root.locator('[data-optbook-axis="lr"]').fill("1")                   # lr = 0.03
    root.locator('[data-optbook-axis="case"]').select_option(index=1)   # noisy
    svg = root.locator(".optbook-fig-panels svg").nth(0)
    svg.scroll_into_view_if_needed()
    box = svg.bounding_box()
    # pointer at the middle of the plotting area: step 50 of 100
    page.mouse.move(box["x"] + box["width"] * (54 + 0.5 * (430 - 66)) / 430, box["y"] + box["height"] / 2)
    x, values = hover_values(spec["panels"][0], root.locator(".optbook-fig-hover").inner_text())
    assert x == "50"
    k = list(STEPS).index(50)
    assert values["Adam"] == [r4(v) for v in losses(0.03, "noisy")[:, k]]
    assert values["reference"] == [r4(v) for v in losses(0.01, "plain")[:, k]]
    # keyboard: focus the panel, Home = first stored x, ArrowRight = the next one
    svg.focus()
    page.keyboard.press("Home")
    x, values = hover_values(spec["panels"][0], root.locator(".optbook-fig-hover").inner_text())
    assert x == "0" and values["Adam"] == [r4(v) for v in losses(0.03, "noisy")[:, 0]]
    page.keyboard.press("ArrowRight")
    x, _ = hover_values(spec["panels"][0], root.locator(".optbook-fig-hover").inner_text())
    assert x == "5"
    # the log-x sweep panel: End = the largest rate, where case "noisy" diverged on every seed
    sweep_svg = root.locator(".optbook-fig-panels svg").nth(1)
    sweep_svg.focus()
    page.keyboard.press("End")
    x, values = hover_values(spec["panels"][1], root.locator(".optbook-fig-hover").inner_text())
    assert x == js_str(float(f"{SWEEP[-1]:.6g}")) and values["SGD"] == [None, None, None]
    page.keyboard.press("ArrowLeft")
    x, values = hover_values(spec["panels"][1], root.locator(".optbook-fig-hover").inner_text())
    assert values["SGD"] == [r4(v) for v in sweep("noisy")[:, -2]]
    # readout "min": the lowest seed mean of the sweep, where it is, and where seeds diverged
    line = next(t for t in readout_lines(root) if t.startswith("SGD"))
    stored = [[r4(v) for v in row[:-1]] for row in sweep("noisy")]
    means = [sum(col) / 3 for col in zip(*stored)]
    j = int(np.argmin(means))
    assert line == (f"SGD: lowest validation loss {float(f'{means[j]:.4g}'):g} "
                    f"({min(col[j] for col in [stored[0], stored[1], stored[2]]):g}–"
                    f"{max(stored[s][j] for s in range(3)):g}) at η = {float(f'{SWEEP[j]:.4g}'):g}; "
                    "η 1: 3 of 3 seeds diverged")


def test_heatmap_every_cell_reads_out_its_seeds_and_the_best_is_marked(page):
    page, figures, _ = page
    root = page.locator(".optbook-figure").nth(1)
    spec = figures[1].spec
    values, curves = heatmap_data()
    ny, nx = 4, 5
    cells = root.locator(".optbook-heat-cell")
    assert cells.count() == 2 * ny * nx
    for p, (label, a) in enumerate(values.items()):
        for r in range(ny):
            for c in range(nx):
                cells.nth(p * ny * nx + r * nx + c).hover()
                text = root.locator(".optbook-fig-hover").inner_text()
                assert text == cell_text(spec, spec["panels"][p], r, c)
                shown = text.split("; seeds ")[1].split(", ")[:3]
                assert shown == [js_str(r4(v)) if math.isfinite(v) else "diverged" for v in a[:, r, c]]
        # the best cell: all seeds finite, lowest mean (numpy on the original arrays)
        mean = np.where(np.isfinite(a).all(axis=0), a.mean(axis=0), np.inf)
        br, bc = np.unravel_index(np.argmin(mean), mean.shape)
        best = root.locator("svg.optbook-fig-svg").nth(p).locator(".optbook-heat-best").bounding_box()
        cell = cells.nth(p * ny * nx + br * nx + bc).locator("rect").bounding_box()
        assert abs(best["x"] - cell["x"]) < 3 and abs(best["y"] - cell["y"]) < 3
        assert readout_lines(root)[p] == "best of " + cell_text(spec, spec["panels"][p], br, bc)
    # keyboard: focus the first panel, move, Enter selects -> the curves of that cell
    svg = root.locator("svg.optbook-fig-svg").nth(0)
    svg.focus()
    r0, c0 = spec["selected"]
    page.keyboard.press("ArrowRight" if c0 < nx - 1 else "ArrowLeft")
    c1 = c0 + 1 if c0 < nx - 1 else c0 - 1
    assert root.locator(".optbook-fig-hover").inner_text() == cell_text(spec, spec["panels"][0], r0, c1)
    page.keyboard.press("Enter")
    assert f"η = {spec['x']['labels'][c1]}" in root.locator(".optbook-fig-headline").inner_text()
    lines = readout_lines(root, ".optbook-fig-curve-readout")
    want = [series_line(spec["curves"]["panel"], label, {"y": [[r4(v) for v in row]
                                                               for row in curves[label][:, r0, c1]]})
            for label in values]
    assert lines == want
    # a click selects too
    cells.nth(ny * nx + 0).click()
    lines = readout_lines(root, ".optbook-fig-curve-readout")
    assert lines[1] == series_line(spec["curves"]["panel"], "AdamW",
                                   {"y": [[r4(v) for v in row] for row in curves["AdamW"][:, 0, 0]]})


def test_stored_figures_fit_a_phone(browser, page):
    page, figures, _ = page
    page.set_viewport_size({"width": 390, "height": 900})
    too_wide = page.evaluate("""() => Array.from(document.querySelectorAll('.optbook-figure-live svg'))
        .filter(s => s.getBoundingClientRect().width > 390).length""")
    assert too_wide == 0
    page.set_viewport_size({"width": 1280, "height": 900})
