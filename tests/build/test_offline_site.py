"""The built site must work with no request to any other host.

Runs over _build/html/en after `make book` (``make test`` builds first;
``make book`` builds it too). Fast: it only parses the HTML and CSS files.

Links (``<a href="https://...">``) are fine: following one is the reader's
choice. What is checked is everything a browser fetches by itself when it
opens a page: scripts, stylesheets, preloads, icons, images, frames, media,
CSS ``@import``/``url()``, and URLs that inline scripts would load.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from built_site import SITE, html_pages

# Attributes through which a page makes the browser fetch something.
FETCHING_ATTRIBUTES = {
    "script": ("src",),
    "link": ("href",),  # stylesheet, preload, icon, manifest; see _is_navigation_link
    "img": ("src", "srcset"),
    "iframe": ("src",),
    "frame": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "source": ("src", "srcset"),
    "video": ("src", "poster"),
    "audio": ("src",),
    "track": ("src",),
    "input": ("src",),
}
# <link rel=...> values that are navigation hints, not fetches.
NAVIGATION_RELS = {"index", "search", "next", "prev", "canonical", "author",
                   "license", "alternate", "help", "bookmark", "up"}

EXTERNAL = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)
# Hosts that a script may try to load code or fonts from.
CDN_IN_SCRIPT = re.compile(
    r"https?://(?:cdn\.|unpkg\.com|cdnjs\.|fonts\.googleapis|fonts\.gstatic|"
    r"ajax\.googleapis|code\.jquery|stackpath\.|use\.fontawesome|kit\.fontawesome|"
    r"www\.googletagmanager|plausible\.io|mybinder\.org/static)",
    re.IGNORECASE,
)
CSS_URL = re.compile(r"""(?:@import\s+(?:url\()?|url\()\s*['"]?([^'")\s]+)""", re.IGNORECASE)


class ResourceCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.fetched: list[tuple[str, str]] = []  # (tag, url)
        self.inline_scripts: list[str] = []
        self.inline_styles: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "style"):
            self._in = tag if not attrs.get("src") else None
        if tag == "link" and _is_navigation_link(attrs):
            return
        for name in FETCHING_ATTRIBUTES.get(tag, ()):
            value = attrs.get(name)
            if not value:
                continue
            urls = [part.strip().split(" ")[0] for part in value.split(",")] if name == "srcset" else [value]
            self.fetched.extend((tag, url) for url in urls)
        if attrs.get("style"):
            self.inline_styles.append(attrs["style"])

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in == "script":
            self.inline_scripts.append(data)
        elif self._in == "style":
            self.inline_styles.append(data)


def _is_navigation_link(attrs: dict) -> bool:
    rels = set((attrs.get("rel") or "").lower().split())
    return bool(rels) and rels <= NAVIGATION_RELS


def _pages() -> list[Path]:
    return html_pages()


def _parse(page: Path) -> ResourceCollector:
    collector = ResourceCollector()
    collector.feed(page.read_text(encoding="utf-8"))
    return collector


def _site_path(page: Path, url: str) -> Path:
    local = url.split("#")[0].split("?")[0]
    return (page.parent / local).resolve()


def test_site_has_pages():
    pages = _pages()
    names = {p.relative_to(SITE).as_posix() for p in pages}
    assert "book/intro.html" in names, sorted(names)
    assert "book/08-references.html" in names, sorted(names)


def test_no_page_fetches_from_another_host():
    offenders = []
    for page in _pages():
        collector = _parse(page)
        for tag, url in collector.fetched:
            if EXTERNAL.match(url):
                offenders.append(f"{page.relative_to(SITE)}: <{tag}> {url}")
        for style in collector.inline_styles:
            for url in CSS_URL.findall(style):
                if EXTERNAL.match(url):
                    offenders.append(f"{page.relative_to(SITE)}: inline CSS {url}")
        for script in collector.inline_scripts:
            for match in CDN_IN_SCRIPT.finditer(script):
                offenders.append(f"{page.relative_to(SITE)}: inline script names {match.group(0)}")
    assert not offenders, "external requests:\n" + "\n".join(sorted(set(offenders)))


def test_local_resources_exist():
    # A relative script or stylesheet that is missing would fail silently in
    # the browser (and tempt someone to point it at a CDN).
    missing = []
    for page in _pages():
        for tag, url in _parse(page).fetched:
            if EXTERNAL.match(url) or url.startswith(("data:", "blob:", "#")):
                continue
            if not _site_path(page, url).exists():
                missing.append(f"{page.relative_to(SITE)}: <{tag}> {url}")
    assert not missing, "missing local files:\n" + "\n".join(sorted(set(missing)))


def test_stylesheets_fetch_nothing_external():
    # Fonts and images referenced by the CSS the pages load (theme, Font
    # Awesome, MyST-NB, our own) must be local files too.
    _pages()  # skip or fail as the other tests do when there is no site
    offenders = []
    stylesheets = sorted((SITE / "_static").rglob("*.css"))
    assert stylesheets, "no stylesheets in _static"
    for css in stylesheets:
        for url in CSS_URL.findall(css.read_text(encoding="utf-8", errors="replace")):
            if EXTERNAL.match(url):
                offenders.append(f"{css.relative_to(SITE)}: {url}")
    assert not offenders, "stylesheets load from other hosts:\n" + "\n".join(offenders)


def test_math_pages_use_the_local_mathjax():
    pages_with_math = []
    for page in _pages():
        scripts = [url for tag, url in _parse(page).fetched if tag == "script"]
        mathjax = [url for url in scripts if "mathjax" in url.lower()]
        if not mathjax:
            continue
        pages_with_math.append(page)
        for url in mathjax:
            assert not EXTERNAL.match(url), f"{page.relative_to(SITE)} loads MathJax from {url}"
            assert _site_path(page, url).is_file(), f"{page.relative_to(SITE)}: {url} missing"
    # the landing page and the notation page are full of math
    names = {p.relative_to(SITE).as_posix() for p in pages_with_math}
    assert {"book/intro.html", "book/notation.html"} <= names, sorted(names)
    # what MathJax's autoload fetches on demand must be there as well
    assert (SITE / "_static/mathjax/input/tex/extensions/ams.js").is_file()


# --- in a real browser --------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")


def test_pages_request_nothing_from_other_hosts_in_chromium():
    """Open every page in headless Chromium and record every request it makes.

    Catches what the static checks above cannot: URLs built by scripts at
    run time (MathJax's on-demand loading, theme scripts, widget twins).
    Also checks that MathJax actually typeset the landing page.
    """
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: `apt-get install -y chromium` (make test does it)")
    pages = _pages()
    outside: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu"],
        )
        try:
            # A fresh page per file: index.html redirects (meta refresh) to the
            # landing page, and a redirect still pending must not interrupt the
            # next file's navigation.
            for html_file in pages:
                name = html_file.relative_to(SITE).as_posix()
                page = browser.new_page()
                page.on("request", lambda request, name=name: None
                        if request.url.startswith(LOCAL_SCHEMES)
                        else outside.append(f"{name}: {request.url}"))
                page.goto(html_file.as_uri(), wait_until="load")
                if name == "book/intro.html":
                    page.wait_for_selector("mjx-container svg", timeout=20_000)
                    assert page.locator("mjx-container").count() >= 3
                page.wait_for_timeout(300)  # let late (deferred) loads show up
                page.close()
        finally:
            browser.close()
    assert not outside, "requests to other hosts:\n" + "\n".join(outside)
