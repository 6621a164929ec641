"""The site served over HTTP, as a reader's browser gets it from a web server.

Some things only happen over HTTP: Sphinx's search page fetches each
result's page to show a snippet of it (``file://`` forbids that fetch), and a
browser asks a server for the site's icon. A local server
(``http.server`` on 127.0.0.1, a free port) serves ``_build/html/en``; every
request elsewhere is aborted.

* Search-result snippets show math as text, not TeX (issue 21, item 13:
  "raw TeX shows in search-result snippets"; ``optbook-search.js``).
* No page asks the server for a file it does not have (item 13: the
  favicon was a 404 on every page; the static check that every page names
  an icon that exists is in ``tests/build/test_site_files.py``).
"""
from __future__ import annotations

import functools
import http.server
import re
import threading
from urllib.parse import urlparse

import pytest

from site_audit import SITE, settle, site_pages

site_pages()                      # skip or fail as the other browser tests do without a site

RAW_TEX = re.compile(r"\\[A-Za-z]+|\\[()\[\]]|\$\$")


@pytest.fixture(scope="module")
def server():
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(SITE)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _open(browser, url: str, width: int = 1280):
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.set_default_timeout(120_000)
    local = urlparse(url).netloc
    page.route(re.compile(r"^(https?|wss?)://"),
               lambda route: route.continue_() if urlparse(route.request.url).netloc == local
               else route.abort())
    return page


def test_search_snippets_show_math_as_text(browser, server):
    page = _open(browser, server)
    try:
        page.goto(f"{server}/search.html?q=momentum+velocity", wait_until="load")
        page.wait_for_function("document.querySelectorAll('#search-results li p.context').length >= 3")
        page.wait_for_timeout(500)    # the remaining snippets arrive
        snippets = page.locator("#search-results li p.context").all_inner_texts()
    finally:
        page.close()
    raw = [s for s in snippets if RAW_TEX.search(s)]
    assert not raw, f"{len(raw)} of {len(snippets)} snippets show TeX, e.g. {raw[0][:200]!r}"
    assert any(re.search(r"[βηθ∇]", s) for s in snippets), snippets[:3]


@pytest.mark.parametrize("name", ["book/intro.html", "book/03-momentum.html", "search.html"])
def test_no_page_asks_the_server_for_a_missing_file(browser, server, name):
    page = _open(browser, server)
    missing = []
    page.on("response", lambda r: missing.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    try:
        page.goto(f"{server}/{name}", wait_until="load")
        settle(page)
        page.wait_for_timeout(300)
    finally:
        page.close()
    assert not missing, missing
