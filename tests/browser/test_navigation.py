"""The sidebar buttons work: the drawers open on a phone and their links lead on; the sidebar collapses on a laptop.

Issue 21, item 1: under sphinx-book-theme 1.3.0, pydata-sphinx-theme 0.17.1
renders a second ``.primary-toggle`` (and ``.secondary-toggle``) and both
themes' scripts bind the first one, which is hidden at every width
(pydata-sphinx-theme#2451): the hamburger and "On this page" buttons did
nothing at 390 px, and the collapse button did nothing at 1280 px.
``book/_static/optbook-theme-fixes.js`` hands the visible buttons' clicks to
the bound ones. The tests click what a reader sees.
"""
from __future__ import annotations

from site_audit import DESKTOP, PHONE, SITE, open_page

CHAPTER = SITE / "book" / "03-momentum.html"


def _visible(page, selector):
    buttons = page.locator(selector)
    shown = [buttons.nth(i) for i in range(buttons.count()) if buttons.nth(i).is_visible()]
    assert len(shown) == 1, f"{len(shown)} visible {selector} buttons"
    return shown[0]


def test_the_navigation_drawer_opens_on_a_phone_and_its_links_lead_on(browser):
    page = open_page(browser, CHAPTER, PHONE)
    try:
        drawer = page.locator("#pst-primary-sidebar-modal")
        assert not drawer.evaluate("d => d.open")
        _visible(page, ".primary-toggle").click()
        page.wait_for_function("document.getElementById('pst-primary-sidebar-modal').open")
        link = drawer.get_by_role("link", name="2. Stochastic gradient descent")
        assert link.is_visible()
        link.click()
        page.wait_for_url("**/book/02-sgd.html")
        assert "Stochastic gradient descent" in page.title()
    finally:
        page.close()


def test_the_on_this_page_drawer_opens_on_a_phone_and_takes_the_reader_there(browser):
    page = open_page(browser, CHAPTER, PHONE)
    try:
        _visible(page, ".secondary-toggle").click()
        page.wait_for_function("document.getElementById('pst-secondary-sidebar-modal').open")
        drawer = page.locator("#pst-secondary-sidebar-modal")
        link = drawer.locator("a[href^='#']").nth(3)
        target = link.get_attribute("href")
        link.click()
        page.wait_for_function(f"location.hash === {target!r}")
        # the drawer closes, so the reader sees the section it led to
        page.wait_for_function("!document.getElementById('pst-secondary-sidebar-modal').open")
        top = page.evaluate(f"document.getElementById({target[1:]!r}).getBoundingClientRect().top")
        assert -5 < top < 300, top
    finally:
        page.close()


def test_the_sidebar_collapses_and_comes_back_on_a_laptop(browser):
    page = open_page(browser, CHAPTER, DESKTOP)
    try:
        sidebar = page.locator("#pst-primary-sidebar")
        link = sidebar.get_by_role("link", name="2. Stochastic gradient descent")
        assert link.is_visible()
        button = _visible(page, ".primary-toggle")
        button.click()
        page.wait_for_function("getComputedStyle(document.getElementById('pst-primary-sidebar')).visibility === 'hidden'")
        assert not link.is_visible()
        assert not page.evaluate("document.getElementById('pst-primary-sidebar-modal').open")
        button.click()
        page.wait_for_function("getComputedStyle(document.getElementById('pst-primary-sidebar')).visibility === 'visible'")
        assert link.is_visible()
    finally:
        page.close()
