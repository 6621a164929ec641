"""Keyboard and screen-reader readers: axe-core over every page, the tab order, live readouts, motion.

* axe-core (pinned in package.json, run offline from node_modules) checks
  every built page at 390 and 1280 px against the WCAG 2.0/2.1 A and AA
  rules: no critical and no serious violation may remain (issue 21, item 9:
  1 critical, 143 serious and 54 minor on the book's 20 pages at 1280 px
  before: the theme's Search and colour-mode buttons, the sidebar's unnamed
  <summary>, ``doc-biblioentry`` roles in a list on the references page, and
  links in definition and theorem boxes at 4.2:1). Minor ones are reported
  in the failure message of the same test when anything else fails.
* Equations are not tab stops (item 8: MathJax's default made 549 of
  chapter 3's 761 stops equations): the only equations in the tab order are
  those that scroll, which need the keyboard to scroll them; and from the top
  of chapter 3 the Tab key reaches the first figure's first control in at
  most ``MAX_TABS_TO_FIGURE`` presses.
* Every interactive figure announces its readout: moving its first control
  changes the text of a live region inside the figure (item 10).
* With the system set to reduce motion, nothing on any page moves: no
  transition and no animation is left (item 10; the themes' sidebar,
  header, copy-button and toggle transitions had none of it).
"""
from __future__ import annotations

import pytest

from site_audit import SITE, WIDTHS, audit, open_page, page_id, site_pages

PAGES = site_pages()
CASES = [(path, width) for width in WIDTHS for path in PAGES]
IDS = [f"{page_id(path)}@{width}" for path, width in CASES]
BLOCKING = ("critical", "serious")
MAX_TABS_TO_FIGURE = 200


def _describe(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"[{v['impact']}] {v['id']} ({len(v['nodes'])}): {v['help']}")
        lines += [f"    {n['target']}" for n in v["nodes"][:4]]
    return "\n".join(lines)


@pytest.mark.parametrize("path,width", CASES, ids=IDS)
def test_axe_finds_nothing_critical_or_serious(browser, path, width):
    violations = audit(browser, path, width)["axe"]
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    assert not blocking, (f"axe-core on {page_id(path)} at {width} px:\n{_describe(blocking)}"
                          f"\n(other findings: {_describe([v for v in violations if v not in blocking]) or 'none'})")


@pytest.mark.parametrize("path,width", CASES, ids=IDS)
def test_only_equations_that_scroll_are_tab_stops(browser, path, width):
    stops = audit(browser, path, width)["tab_stops"]
    assert stops["positive"] == 0, "a positive tabindex reorders the page"
    assert stops["math"] == stops["scrolling_math"], (
        f"{page_id(path)} at {width} px: {stops['math']} of {stops['total']} tab stops are equations, "
        f"{stops['scrolling_math']} of them scroll")


@pytest.mark.parametrize("width", WIDTHS)
def test_the_keyboard_reaches_chapter_3s_first_figure_soon(browser, width):
    page = open_page(browser, SITE / "book" / "03-momentum.html", width)
    try:
        page.locator("body").focus()
        for presses in range(1, MAX_TABS_TO_FIGURE + 1):
            page.keyboard.press("Tab")
            if page.evaluate("() => !!(document.activeElement && document.activeElement.closest('.optbook-figure'))"):
                break
        else:
            where = page.evaluate("() => document.activeElement && document.activeElement.outerHTML.slice(0, 120)")
            pytest.fail(f"{MAX_TABS_TO_FIGURE} Tab presses at {width} px and no figure control yet (at {where})")
    finally:
        page.close()
    assert presses <= MAX_TABS_TO_FIGURE


FIGURE_PAGES = [p for p in PAGES if 'class="optbook-figure"' in p.read_text(encoding="utf-8", errors="replace")]


@pytest.mark.parametrize("path", FIGURE_PAGES, ids=[page_id(p) for p in FIGURE_PAGES])
def test_every_figure_announces_what_its_controls_change(browser, path):
    figures = audit(browser, path, WIDTHS[1])["live"]
    assert figures, f"{page_id(path)}: no figure found"
    silent = [(i, f) for i, f in enumerate(figures)
              if f["control"] == "none" or not f["regions"] or not f["changed"]]
    assert not silent, (f"{page_id(path)}: figures whose live regions say nothing when a control "
                        f"moves (index, what was found): {silent}")


@pytest.mark.parametrize("path,width", CASES, ids=IDS)
def test_nothing_moves_when_the_reader_asks_for_reduced_motion(browser, path, width):
    found = audit(browser, path, width)["reduced_motion"]
    assert not found["moving"], f"{page_id(path)} at {width} px still animates: {found['moving']}"
    assert found["scroll"] != "smooth"
