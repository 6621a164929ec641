"""Files every page needs: the site's icon.

Issue 21, item 13: no page named an icon, so a browser asked the server for
``/favicon.ico`` on every page and got a 404. ``_config.yml`` now gives one
(``html.favicon: book/_static/favicon.svg``); each page must link it, and the
file must be in the site.
"""
from __future__ import annotations

import re
from pathlib import Path

from built_site import SITE, html_pages

ICON = re.compile(r'<link\b[^>]*\brel="(?:shortcut )?icon"[^>]*>')
HREF = re.compile(r'\bhref="([^"]+)"')


def _pages() -> list[Path]:
    # the root index.html only redirects
    return [p for p in html_pages() if p.relative_to(SITE).as_posix() != "index.html"]


def test_every_page_names_an_icon_that_exists():
    pages = _pages()
    assert pages
    without, missing = [], []
    for page in pages:
        link = ICON.search(page.read_text(encoding="utf-8"))
        if not link:
            without.append(page.relative_to(SITE).as_posix())
            continue
        href = HREF.search(link.group(0)).group(1).split("?")[0]
        if not (page.parent / href).resolve().is_file():
            missing.append(f"{page.relative_to(SITE)}: {href}")
    assert not without, f"{len(without)} pages name no icon: {without[:5]}"
    assert not missing, f"icons that are not in the site: {missing[:5]}"


STILL = re.compile(r'<img class="optbook-figure-static"[^>]*>')


def test_every_figure_still_is_a_lazy_image_file():
    """scripts/book_site.py moves each figure's still image out of the page.

    The notebook keeps it as a data URI (a notebook must stand alone); on the
    site it is a PNG in ``_images`` loaded lazily, so the running figure, which
    hides it, costs a reader with scripts nothing (issue 20: the data URIs had
    pushed chapter 5's page over the 400 KB budget).
    """
    stills, problems = 0, []
    for page in _pages():
        for tag in STILL.findall(page.read_text(encoding="utf-8")):
            stills += 1
            src = re.search(r'\bsrc="([^"]+)"', tag).group(1)
            where = f"{page.relative_to(SITE)}: {src[:60]}"
            if src.startswith("data:") or 'loading="lazy"' not in tag:
                problems.append(f"{where} is inline or not lazy")
            elif not (page.parent / src).resolve().read_bytes().startswith(b"\x89PNG"):
                problems.append(f"{where} is not a PNG file")
    assert stills >= 10, f"only {stills} figure stills in the whole site"
    assert not problems, "\n".join(problems)


PICTURE = re.compile(r'<picture class="optbook-static-figure".*?</picture>', re.S)


def test_every_static_figure_rendering_is_a_lazy_image_file():
    """Both renderings of a notebook's matplotlib figure leave the page too.

    A figure shown with ``plt.show()`` stores a ``text/html`` ``<picture>``
    (optbook.figures.responsive, issue 21 item 3): the wide PNG in ``<img
    src>`` and, for a phone, the stacked PNG in ``<source srcset>``, each a
    data URI. MyST-NB copies that HTML into the page as it is; the build
    moves every URI into ``_images`` and loads the ``<img>`` lazily, so a
    chapter stays under its 400 KB budget.
    """
    pictures, problems = 0, []
    for page in _pages():
        for picture in PICTURE.findall(page.read_text(encoding="utf-8")):
            pictures += 1
            where = page.relative_to(SITE)
            if "data:" in picture:
                problems.append(f"{where}: a data URI is left in {picture[:80]}")
                continue
            img = re.search(r"<img\b[^>]*>", picture).group(0)
            if 'loading="lazy"' not in img:
                problems.append(f"{where}: {img[:80]} is not lazy")
            urls = re.findall(r'\bsrc="([^"]+)"', img)
            urls += [re.match(r"(\S+) 2x$", s.strip()).group(1)
                     for s in re.findall(r'\bsrcset="([^"]+)"', picture)]
            for url in urls:
                if not (page.parent / url).resolve().read_bytes().startswith(b"\x89PNG"):
                    problems.append(f"{where}: {url} is not a PNG file")
    assert pictures >= 10, f"only {pictures} static figures in the whole site"
    assert not problems, "\n".join(problems)
