"""The English and Japanese editions in the browser (issue 25).

A local server (``http.server`` on 127.0.0.1) serves ``_build/html``, both
editions and the root, as a web host would:

* the root opens the Japanese edition for a browser whose language is
  Japanese and the English one for any other;
* the language switcher in the article header is visible and leads from an
  English chapter to the same chapter in Japanese and back, at 1280 and
  390 px; the Japanese chapter's in-page figures start, as the English ones do;
* the Japanese search finds 学習率 and ウォームアップ, the glossary among the pages.
"""
from __future__ import annotations

import functools
import http.server
import re
import threading
from urllib.parse import quote, urlparse

import pytest

from site_audit import SITE, WIDTHS, settle, site_pages

site_pages()                      # skip or fail as the other browser tests do without a site
HTML = SITE.parent                # _build/html: en/, ja/ and the root
CHAPTER = "book/03-momentum.html"


@pytest.fixture(scope="module")
def server():
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            functools.partial(Quiet, directory=str(HTML)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _open(browser, url: str, width: int = 1280, **context):
    page = browser.new_page(viewport={"width": width, "height": 844}, **context)
    page.set_default_timeout(120_000)
    local = urlparse(url).netloc
    page.route(re.compile(r"^(https?|wss?)://"),
               lambda route: route.continue_() if urlparse(route.request.url).netloc == local
               else route.abort())
    return page


@pytest.mark.parametrize("locale, edition", [("ja-JP", "ja"), ("ja", "ja"),
                                             ("en-US", "en"), ("fr-FR", "en")])
def test_root_opens_the_edition_of_the_browser_language(browser, server, locale, edition):
    page = _open(browser, server, locale=locale)
    try:
        page.goto(f"{server}/", wait_until="load")
        page.wait_for_url(re.compile(rf"/{edition}/book/intro\.html"))
        assert page.evaluate("document.documentElement.lang") == edition
    finally:
        page.close()


def _switch(page, to: str) -> None:
    link = page.locator("a.optbook-language")
    assert link.count() == 1
    link.scroll_into_view_if_needed()
    box = link.bounding_box()
    width = page.viewport_size["width"]
    assert box and box["width"] > 0 and box["x"] >= 0 and box["x"] + box["width"] <= width, box
    # on the header's line, beside the theme's buttons (not pushed above them)
    bar = page.locator(".bd-header-article").bounding_box()
    assert bar["y"] <= box["y"] and box["y"] + box["height"] <= bar["y"] + bar["height"], (box, bar)
    assert link.get_attribute("hreflang") == to
    link.click()
    page.wait_for_url(re.compile(rf"/{to}/{re.escape(CHAPTER)}$"))
    page.wait_for_load_state("load")


@pytest.mark.parametrize("width", WIDTHS)
def test_switcher_leads_to_the_twin_and_back(browser, server, width):
    page = _open(browser, f"{server}/en/{CHAPTER}", width)
    try:
        page.goto(f"{server}/en/{CHAPTER}", wait_until="load")
        assert page.locator("a.optbook-language").inner_text().strip() == "日本語"
        _switch(page, "ja")
        settle(page)
        assert page.evaluate("document.documentElement.lang") == "ja"
        figures = page.locator(".optbook-figure").count()
        assert figures > 0
        assert page.locator(".optbook-figure[data-optbook-ready]").count() == figures
        assert page.locator("a.optbook-language").inner_text().strip() == "English"
        _switch(page, "en")
        assert page.evaluate("document.documentElement.lang") == "en"
    finally:
        page.close()


@pytest.mark.parametrize("term", ["学習率", "ウォームアップ"])
def test_japanese_search_finds_glossary_terms(browser, server, term):
    page = _open(browser, server)
    try:
        page.goto(f"{server}/ja/search.html?q={quote(term)}", wait_until="load")
        page.wait_for_function("document.querySelectorAll('#search-results li').length >= 1")
        hrefs = page.eval_on_selector_all("#search-results li a", "as => as.map(a => a.href)")
        assert any("/ja/book/glossary.html" in h for h in hrefs), hrefs
    finally:
        page.close()


# What the first figure of chapter 3 (momentum paths on a quadratic) shows in
# each edition: its slider labels come from the figure's spec (figures.po on
# the Japanese site), its readout from the runtime's own table (js/src/i18n.js).
FIGURE_WORDS = {
    "en": {"labels": ["landscape", "η / base η", "β"], "readout": "steps ="},
    "ja": {"labels": ["目的関数", "η / 基準の η", "β"], "readout": "ステップ後の f − f* ="},
}


@pytest.mark.parametrize("edition", ["ja", "en"])
@pytest.mark.parametrize("width", WIDTHS)
def test_figure_controls_and_readouts_speak_the_page_language(browser, server, edition, width):
    page = _open(browser, f"{server}/{edition}/{CHAPTER}", width)
    try:
        page.goto(f"{server}/{edition}/{CHAPTER}", wait_until="load")
        settle(page)
        figure = page.locator(".optbook-figure[data-optbook-ready]").first
        words = FIGURE_WORDS[edition]
        labels = figure.locator(".optbook-fig-name").all_inner_texts()
        assert labels == words["labels"], labels
        readout = figure.locator(".optbook-fig-readout li")
        before = readout.all_inner_texts()
        assert before and all(words["readout"] in line for line in before), before
        other = FIGURE_WORDS["en" if edition == "ja" else "ja"]["readout"]
        assert not any(other in line for line in before), before
        value = figure.locator(".optbook-fig-value").first
        shown = value.inner_text()
        slider = figure.locator("input[type=range]").first
        slider.focus()
        slider.press("End")
        page.wait_for_function(
            "([el, old]) => el.textContent !== old", arg=[value.element_handle(), shown])
        after = readout.all_inner_texts()
        assert after != before, "the figure did not respond to its slider"
        assert all(words["readout"] in line or ("発散" if edition == "ja" else "diverged") in line
                   for line in after), after
        # nothing sticks out of the figure at this width
        overflow = figure.evaluate("el => el.scrollWidth - el.clientWidth")
        assert overflow <= 1, f"the figure is {overflow}px wider than its box"
    finally:
        page.close()
