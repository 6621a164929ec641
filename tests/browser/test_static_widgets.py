"""The frame-per-grid-point twins of the book's widgets respond in a real browser, offline.

(In-page figures, which compute on every move, are tested by test_figures.py.)

Runs against the BUILT book (``make test`` builds it first) and one page
written here from a small Explorer: every page of
``_build/html/en`` that contains an ``optbook-widget``, and that page, is opened from
``file://`` in Debian's chromium through Playwright; every control of every
widget is moved with the keyboard (range sliders) or picked (menus), and the
page must show the frame of the new combination and the new value.  No
console error, no uncaught exception, and no request to any other host.

The site root is ``$OPTBOOK_HTML_DIR`` (or ``$OPTBOOK_SITE_DIR``, the
toolchain's name), default ``_build/html/en``; the browser binary is
``$OPTBOOK_CHROMIUM``, default ``/usr/bin/chromium`` (``playwright install``
is not used: the build machine has no access to Playwright's CDN).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(os.environ.get("OPTBOOK_HTML_DIR") or os.environ.get("OPTBOOK_SITE_DIR")
            or ROOT / "_build" / "html" / "en").resolve()
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}

TWIN = re.compile(r'class="optbook-widget"')
LIVE_VIEW = re.compile(r'<script type="application/vnd\.jupyter\.widget-view\+json">')

# `make test` sets OPTBOOK_REQUIRE_SITE=1: there a missing site, or a site with
# no widget at all, is a failure, not a skip.
REQUIRE_SITE = os.environ.get("OPTBOOK_REQUIRE_SITE") == "1"
if not SITE.is_dir():
    if REQUIRE_SITE:
        pytest.fail(f"no built book at {SITE}", pytrace=False)
    pytest.skip(f"no built book at {SITE}: run `make book` (make test builds it first)",
                allow_module_level=True)


def _pages(pattern: re.Pattern) -> list[Path]:
    return sorted(p for p in SITE.rglob("*.html")
                  if pattern.search(p.read_text(encoding="utf-8", errors="replace")))


def _fixture_page() -> Path:
    """A page holding one frame-per-grid-point twin (a slider and a menu, 3 x 2
    frames), so the fallback is tested even while no chapter of the book needs it."""
    import tempfile

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from optbook.figures import Explorer

    def draw(a, kind):
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot([0, 1], [0, a] if kind == "rise" else [a, 0])
        ax.set_title(f"a = {a}, {kind}")
        return fig

    explorer = Explorer(draw, {"a": [1, 2, 3], "kind": ["rise", "fall"]},
                        defaults={"a": 2, "kind": "rise"}, labels={"a": "a", "kind": "kind"})
    path = Path(tempfile.mkdtemp(prefix="optbook-twin-")) / "twin.html"
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'></head><body>"
                    f"{explorer.static_html()}</body></html>", encoding="utf-8")
    return path


WIDGET_PAGES = _pages(TWIN) + [_fixture_page()]
# Figures computed in the page (class "optbook-figure") are tested by
# test_figures.py; the frame-per-grid-point twin remains for Explorers whose
# draw function the page cannot run.  `make test` needs one kind or the other.
FIGURE_PAGES = _pages(re.compile(r'class="optbook-figure"'))
if REQUIRE_SITE and not WIDGET_PAGES and not FIGURE_PAGES:
    pytest.fail(f"no page under {SITE} contains an interactive figure", pytrace=False)


def _is_local(url: str) -> bool:
    parsed = urlparse(url)
    if parsed.scheme in ("file", "data", "blob", "about"):
        return True
    return parsed.scheme in ("http", "https", "ws", "wss") and parsed.hostname in LOCAL_HOSTS


def test_no_page_shows_a_live_widget_placeholder_instead_of_its_twin():
    """MyST-NB must render text/html, not the kernel-only widget view (see _config.yml)."""
    offending = [str(p.relative_to(SITE)) for p in _pages(LIVE_VIEW)]
    assert not offending, f"widget-view placeholders (dead without a kernel) in {offending}"


def _frame_state(root):
    """Index, src and decoded width of the widget's figure."""
    images = root.locator("img.optbook-widget-frame")
    assert images.count() == 1, "a static twin shows exactly one figure"
    frame = images.first
    assert frame.is_visible()
    return {
        "index": int(frame.get_attribute("data-optbook-index")),
        "src": frame.get_attribute("src"),
        # decode() waits for the new data URI; it rejects if the image is broken
        "natural_width": frame.evaluate("img => img.decode().then(() => img.naturalWidth)"),
    }


def _positions(controls) -> list[int]:
    out = []
    for k in range(controls.count()):
        control = controls.nth(k)
        if control.evaluate("c => c.tagName") == "SELECT":
            out.append(control.evaluate("c => c.selectedIndex"))
        else:
            out.append(int(control.input_value()))
    return out


def _shown_value(control) -> str:
    """The value a reader sees: a slider's <output> label, or a menu's selected option."""
    if control.evaluate("c => c.tagName") == "SELECT":
        return control.evaluate("c => c.options[c.selectedIndex].text")
    output = control.locator("xpath=..").locator("output.optbook-widget-value")
    assert output.count() == 1, "a slider needs exactly one value label"
    return output.inner_text()


def _expected_index(positions, sizes) -> int:
    index = 0
    for position, size in zip(positions, sizes):
        index = index * size + position
    return index


def _check_widget(page, root):
    controls = root.locator("[data-optbook-param]")
    assert controls.count() >= 1
    labels = [json.loads(controls.nth(k).get_attribute("data-optbook-labels"))
              for k in range(controls.count())]
    sizes = [len(values) for values in labels]
    frames = json.loads(root.locator("script.optbook-widget-frames").text_content())
    assert len(frames) == _expected_index([s - 1 for s in sizes], sizes) + 1
    assert root.get_attribute("data-optbook-ready") is not None, "inline script did not run"

    def check_consistent():
        positions = _positions(controls)
        state = _frame_state(root)
        assert state["index"] == _expected_index(positions, sizes)
        assert state["natural_width"] > 0, "the visible frame did not decode"
        for k, position in enumerate(positions):
            assert _shown_value(controls.nth(k)) == labels[k][position]
        return state

    check_consistent()
    for k in range(controls.count()):
        control = controls.nth(k)
        size = sizes[k]
        if size < 2:
            continue
        moves = []
        if control.evaluate("c => c.tagName") == "SELECT":
            current = _positions(controls)[k]
            moves.append(lambda: control.select_option(index=(current + 1) % size))
        else:
            control.focus()
            at_end = _positions(controls)[k] == size - 1
            moves.append(lambda: page.keyboard.press("Home" if at_end else "End"))
            moves.append(lambda: page.keyboard.press("ArrowRight" if at_end else "ArrowLeft"))
        for move in moves:
            before = check_consistent()
            old_value = _shown_value(control)
            move()
            after = check_consistent()
            assert after["index"] != before["index"]
            assert after["src"] != before["src"], "the shown figure did not change"
            assert _shown_value(control) != old_value, "the value label did not change"


@pytest.mark.parametrize(
    "page_path", WIDGET_PAGES,
    ids=lambda p: str(p.relative_to(SITE)) if p.is_relative_to(SITE) else "fixture-" + p.name)
def test_static_widgets_respond_offline(browser, page_path):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors, foreign = [], []
    page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))

    def guard(route):
        if _is_local(route.request.url):
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    try:
        page.goto(page_path.as_uri(), wait_until="load")
        expected = len(TWIN.findall(page_path.read_text(encoding="utf-8")))
        roots = page.locator("div.optbook-widget")
        assert roots.count() == expected
        for i in range(roots.count()):
            root = roots.nth(i)
            root.scroll_into_view_if_needed()
            _check_widget(page, root)
        page.wait_for_timeout(200)        # let late console messages arrive
    finally:
        context.close()
    assert not foreign, f"requests to other hosts: {foreign}"
    assert not errors, errors
