"""The book's in-page figures respond to every control, offline, in a real browser.

Runs against the BUILT book (``make test`` builds it first; the site root is
``$OPTBOOK_HTML_DIR``, default ``_build/html/en``).  Every page holding an
``optbook-figure`` (written by ``optbook.figures``, drawn by the runtime
``_static/optbook-figures.js``) is opened from ``file://`` in chromium with
every request to another host blocked and recorded.  For every figure:

* the runtime took over: the still image and its note are hidden, the
  controls exist, no console error;
* every slider is walked end to end with the keyboard (Home, arrows, End,
  and a sweep of positions), every menu through its options; at each stop the
  shown value and ``aria-valuetext`` carry the symbol and the value, and the
  readout is recomputed: its numbers are compared with optbook's own run at
  the figure's current values (``optbook.figures.spec.spec_runs``, Python), so
  a readout that did not follow the control, or followed it wrongly, fails;
* the phase diagram responds to a click: η L and β jump to the clicked point;
* chapter 5.3's Newton–Schulz map (kind ``scalar_map``): at every stop its
  readout equals ``optbook.figures.scalar_map.summary`` at the figure's values
  (``scalar_map_readout.check_readout``); its step count is an integer slider
  with one position per value;
* a figure of stored runs (kind ``runs``) is walked through every position of
  every slider and menu (``stored_readout.walk_runs_figure``: the readout list
  must be exactly what its stored numbers say, and change at every position),
  and every panel is hovered (the hover line must give the stored values at the
  x it names); a heatmap (kind ``heatmap``) is hovered cell by cell;
* the ported chapter 7 figures show optbook's numbers: hovering the range-test
  panel and the symptom grid's loss panel gives the values optbook computes
  again here (``lr_finder.range_test``, ``debugging.run_setting``).

Also: no chapter page is over 400 KB of HTML, and no page requests anything
from another host.

Either edition: on the Japanese one (``OPTBOOK_HTML_DIR=_build/html/ja``,
``make test-browser`` runs it) the runtime writes its readouts in Japanese
(``js/src/i18n.js``) and the spec's labels are figures.po's; the parsers read
the runtime's templates in the page's language (``readout_i18n``), so the walk
checks the same numbers with the same strength.
"""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest


from figure_runs import runs_at
from readout_i18n import english_of, lang_of, lang_of_file, pattern, ui_text
from scalar_map_readout import check_readout as check_scalar_map_readout
from stored_readout import cell_text, hover_panel, hover_values, js_str, walk_runs_figure

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(os.environ.get("OPTBOOK_HTML_DIR") or os.environ.get("OPTBOOK_SITE_DIR")
            or ROOT / "_build" / "html" / "en").resolve()
REQUIRE_SITE = os.environ.get("OPTBOOK_REQUIRE_SITE") == "1"
MAX_PAGE_BYTES = 400 * 1024
SWEEP = 12                        # slider positions visited besides Home/End/arrows

if not SITE.is_dir():
    if REQUIRE_SITE:
        pytest.fail(f"no built book at {SITE}", pytrace=False)
    pytest.skip(f"no built book at {SITE}: run `make book`", allow_module_level=True)

FIGURE = re.compile(r'class="optbook-figure"')
PAGES = sorted(p for p in SITE.rglob("*.html")
               if FIGURE.search(p.read_text(encoding="utf-8", errors="replace")))
if REQUIRE_SITE and not PAGES:
    pytest.fail(f"no page under {SITE} contains an in-page figure", pytrace=False)


def _is_local(url: str) -> bool:
    return urlparse(url).scheme in ("file", "data", "blob", "about")


def _open(browser, path: Path, width: int = 1280):
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.set_default_timeout(120_000)             # a loaded 2-core machine is slow
    remote, errors = [], []
    page.on("request", lambda r: None if _is_local(r.url) else remote.append(r.url))
    page.route(re.compile(r"^(https?|wss?)://"), lambda r: r.abort())   # offline
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri(), wait_until="domcontentloaded")
    return page, remote, errors


def test_no_chapter_page_is_over_400_kb():
    sizes = {str(p.relative_to(SITE)): p.stat().st_size for p in SITE.rglob("*.html")
             if "_static" not in p.parts}
    assert sizes, "no pages"
    big = {k: v for k, v in sizes.items() if v > MAX_PAGE_BYTES}
    assert not big, f"pages over {MAX_PAGE_BYTES} bytes: {big}"


def _readout_numbers(text: str, lang: str = "en"):
    """[(label, "diverged", step) | (label, "gap", value)] from the readout lines,
    written in ``lang`` (the runtime's templates, js/src/i18n.js)."""
    diverged = pattern("{label}: diverged at step {step}", lang, label=".+?", step=r"\d+")
    gap = pattern("{label}: f − f* after {steps} steps = {value}", lang,
                  label=".+?", steps=r"\d+", value=r"\S+")
    out = []
    for line in text.strip().splitlines():
        m = re.fullmatch(diverged, line.strip())
        if m:
            out.append((m["label"], "diverged", int(m["step"])))
            continue
        m = re.fullmatch(gap, line.strip())
        assert m, f"unreadable readout line {line!r}"
        out.append((m["label"], "gap", float(m["value"])))
    return out


def _check_schedule_figure(root, spec):
    """Chapter 6.1's figure: both final losses equal optbook.experiments.schedules' (3 digits)."""
    from optbook.experiments import schedules as S

    state = root.evaluate("r => ({values: r.optbookFigure.values, choice: r.optbookFigure.choice})")
    v = state["values"]
    shape = spec["choices"][state["choice"]]["value"]
    assert root.locator('select[data-optbook-param="choice"]').evaluate(
        "s => s.selectedIndex") == state["choice"]
    steps = spec["steps"]
    mid = spec["checkpoint"]
    # the cooldown-shape and final-rate menus and the noise slider (chapter 6.1)
    cooldown, end = v.get("cooldown", "linear"), v.get("end_frac", 0.0)
    noise = v.get("noise", 1.0)
    expected = [S.nqm_loss(S.nqm_schedule(s, v["peak"], steps, v["warmup_frac"],
                                          v["cooldown_frac"], cooldown,
                                          end if s != "constant" else 0.0), noise=noise)
                for s in (shape, "constant")]
    lines = root.locator(".optbook-fig-readout").inner_text().strip().splitlines()
    assert len(lines) == 2, lines
    line_re = pattern("{label}: expected loss at step {mid} = {a}, after {steps} steps = {b}",
                      lang_of(root), label=".+?", mid=str(mid), steps=str(steps),
                      a=r"\S+", b=r"\S+")
    for line, loss in zip(lines, expected):
        m = re.fullmatch(line_re, line.strip())
        assert m, f"unreadable readout line {line!r}"
        for shown, want in ((m["a"], loss[mid]), (m["b"], loss[-1])):
            assert math.isclose(float(shown), float(f"{want:.3g}"), rel_tol=1e-12), (line, v, want)


def _check_against_optbook(root, spec):
    """The readout equals optbook's runs at the figure's current values (3 significant digits)."""
    if spec["kind"] == "schedule":
        return _check_schedule_figure(root, spec)
    if spec["kind"] == "scalar_map":             # chapter 5.3's Newton–Schulz map
        check_scalar_map_readout(root, spec)
        return
    state = root.evaluate("""r => ({values: r.optbookFigure.values,
        choice: r.querySelector("select") ? r.querySelector("select").selectedIndex : 0})""")
    land, runs = runs_at(spec, state)
    values = state["values"]
    shown = _readout_numbers(root.locator(".optbook-fig-readout").inner_text(), lang_of(root))
    assert len(shown) == len(spec["optimizers"])
    for (label, kind, number), opt in zip(shown, spec["optimizers"]):
        run = runs[opt["name"]]
        if run.diverged:
            assert (kind, number) == ("diverged", run.diverged_at), (label, values)
        else:
            gap = float(run.values[-1] - land.min_value)
            assert kind == "gap", (label, values)
            assert math.isclose(number, float(f"{gap:.3g}"), rel_tol=1e-12, abs_tol=1e-300), \
                (label, values, number, gap)


def _check_slider(page, root, spec, control, param):
    label = param["label"]
    output = control.locator("xpath=..").locator("output")
    seen = set()

    def stop():
        text = control.get_attribute("aria-valuetext")
        assert text.startswith(f"{label} = "), text
        assert output.inner_text() == text.split(" = ", 1)[1]
        _check_against_optbook(root, spec)
        seen.add(root.locator(".optbook-fig-readout").inner_text())

    control.focus()
    for key in ["Home", "ArrowRight", "ArrowRight", "End", "ArrowLeft"]:
        page.keyboard.press(key)
        stop()
    top = int(control.get_attribute("max"))
    if param["scale"] == "int":                   # a count: every value has a position
        assert top == param["max"] - param["min"] and top >= 4, f"{label}: {top + 1} positions"
    else:
        assert top >= 50, f"{label}: {top + 1} positions (need >= 50 or continuous)"
    for k in range(SWEEP + 1):
        control.fill(str(round(k * top / SWEEP)))      # fires input, like a drag
        stop()
    assert len(seen) >= 3, f"{label}: the readout barely changed across the slider: {seen}"
    control.fill(str(round(top / 2)))


@pytest.mark.parametrize("path", PAGES, ids=[p.name for p in PAGES])
def test_every_control_of_every_figure_responds(browser, path):
    page, remote, errors = _open(browser, path)
    roots = page.locator(".optbook-figure")
    n = roots.count()
    assert n >= 1
    page.wait_for_function(f"document.querySelectorAll('.optbook-figure[data-optbook-ready]').length === {n}")
    for i in range(n):
        root = roots.nth(i)
        spec = json.loads(root.locator("script.optbook-figure-spec").text_content())
        for still in root.locator(".optbook-figure-static").all():
            assert not still.is_visible(), "the still image/note stays hidden once the figure runs"
        if spec["kind"] == "runs":
            walk_runs_figure(page, root, spec)
            for k in range(len(spec["panels"])):
                hover_panel(page, root, spec, k)
            continue
        if spec["kind"] == "heatmap":
            _walk_heatmap(root, spec)
            continue
        sliders = root.locator("input[type=range]")
        assert sliders.count() == len(spec["params"])
        for k, param in enumerate(spec["params"]):
            _check_slider(page, root, spec, sliders.nth(k), param)
        menus = root.locator("select")
        for k in range(menus.count()):
            menu = menus.nth(k)
            for option in range(menu.locator("option").count()):
                menu.select_option(index=option)
                _check_against_optbook(root, spec)
        if spec["kind"] == "phase":
            _check_phase_click(page, root)
    assert not errors, errors
    assert not remote, f"requests to other hosts: {remote}"
    page.close()


def _walk_heatmap(root, spec):
    """Every cell of every panel, hovered: the readout names its coordinates and seeds."""
    cells = root.locator(".optbook-heat-cell")
    lang = lang_of(root)
    ny, nx = len(spec["y"]["values"]), len(spec["x"]["values"])
    assert cells.count() == len(spec["panels"]) * ny * nx
    for p, panel in enumerate(spec["panels"]):
        for r in range(ny):
            for c in range(nx):
                cells.nth((p * ny + r) * nx + c).hover()
                assert root.locator(".optbook-fig-hover").inner_text() == cell_text(
                    spec, panel, r, c, lang)


def _check_phase_click(page, root):
    diagram = root.locator("svg.optbook-fig-svg").first
    box = diagram.bounding_box()
    before = root.evaluate("r => ({...r.optbookFigure.values})")
    page.mouse.click(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.3)
    after = root.evaluate("r => ({...r.optbookFigure.values})")
    assert after != before, "clicking the phase diagram did not move the point"
    sliders = root.locator("input[type=range]")
    assert sliders.nth(0).get_attribute("aria-valuetext").endswith(
        root.locator("output").nth(0).inner_text())


@pytest.mark.parametrize("path", PAGES[:1], ids=[p.name for p in PAGES[:1]])
def test_without_scripts_the_reader_sees_the_image_and_how_to_get_the_live_figure(browser, path):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(path.as_uri())
    root = page.locator(".optbook-figure").first
    assert root.locator("img.optbook-figure-static").is_visible()
    note = root.locator(".optbook-figure-note")
    from optbook.figures.static import NO_SCRIPT_NOTE
    assert note.is_visible() and note.inner_text().strip() == ui_text(NO_SCRIPT_NOTE, lang_of_file(path))
    assert root.locator("input, select").count() == 0, "no control that would do nothing"
    context.close()


@pytest.mark.parametrize("path", PAGES, ids=[p.name for p in PAGES])
def test_figures_fit_a_phone(browser, path):
    page, _, errors = _open(browser, path, width=390)
    page.wait_for_selector(".optbook-figure[data-optbook-ready]")
    too_wide = page.evaluate("""() => Array.from(document.querySelectorAll('.optbook-figure-live svg'))
        .filter(s => s.getBoundingClientRect().width > 390).length""")
    assert too_wide == 0
    assert not errors, errors
    page.close()


def _stored_figure(browser, name, title_start):
    path = next((p for p in PAGES if p.name == name), None)
    if path is None:
        pytest.skip(f"{name} not in the built book")
    page, _, errors = _open(browser, path)
    page.wait_for_selector(".optbook-figure[data-optbook-ready]")
    roots = page.locator('.optbook-figure[data-optbook-kind="runs"]')
    for i in range(roots.count()):
        spec = json.loads(roots.nth(i).locator("script.optbook-figure-spec").text_content())
        alt = english_of(roots.nth(i).locator("img").get_attribute("alt"), lang_of(page))
        if spec["panels"] and alt.startswith(title_start):
            return page, roots.nth(i), spec, errors
    pytest.fail(f"no stored-runs figure titled {title_start!r} on {name}")


def _r4(v):
    return None if not math.isfinite(v) else float(f"{v:.4g}")


def _keyboard_read(page, root, spec, panel, presses):
    svg = root.locator(".optbook-fig-panels svg.optbook-fig-svg").nth(panel)
    svg.focus()
    page.keyboard.press("Home")
    for _ in range(presses):
        page.keyboard.press("ArrowRight")
    return hover_values(spec["panels"][panel], root.locator(".optbook-fig-hover").inner_text(),
                        lang_of(page))


def test_range_test_figure_shows_optbooks_range_test(browser):
    """Chapter 7.2: the range-test panel at (SGD, seed 1) holds what lr_finder.range_test
    computes here, at the rate it names (keyboard readout, 11th rate of the ramp)."""
    from optbook.experiments import lr_finder, set_seed

    page, root, spec, errors = _stored_figure(browser, "07-optimizer-and-lr.html", "LR range test")
    root.locator('[data-optbook-axis="optimizer"]').select_option(label="sgd")
    lang = lang_of(page)
    root.locator('[data-optbook-axis="seed"]').select_option(label=ui_text("seed 1", lang))
    set_seed(0)
    test = lr_finder.range_test("sgd", seed=1)
    x, values = _keyboard_read(page, root, spec, 0, 10)
    assert float(x) == pytest.approx(test.lrs[10], rel=1e-5)
    assert values[ui_text("minibatch loss", lang)] == [_r4(test.losses[10])]
    assert values[ui_text("smoothed (β = 0.98)", lang)] == [_r4(test.smoothed[10])]
    assert not errors, errors
    page.close()


def test_symptom_figure_shows_optbooks_runs(browser):
    """Chapter 7.5: the loss panel at η = 0.25, no clipping, no warmup holds the training
    loss debugging.run_setting computes here, for every seed, at the step it names."""
    from dataclasses import replace

    from optbook.experiments import debugging, set_seed

    page, root, spec, errors = _stored_figure(browser, "07-debugging.html", "learning rate × clipping")
    lrs = spec["axes"][0]["values"]
    root.locator('[data-optbook-axis="lr"]').fill(str(lrs.index(0.25)))
    steps = len(spec["panels"][0]["x"]["values"])
    set_seed(0)
    runs = [debugging.run_setting(replace(debugging.Setting(steps=steps), lr=0.25), seed)
            for seed in (0, 1, 2)]
    x, values = _keyboard_read(page, root, spec, 0, 40)
    assert x == "41"
    assert values[ui_text("SGD + momentum", lang_of(page))] == [
        _r4(r.history.train_loss[40]) for r in runs]
    assert not errors, errors
    page.close()
