"""Files every page needs: the site's icon.

Issue 21, item 13: no page named an icon, so a browser asked the server for
``/favicon.ico`` on every page and got a 404. ``_config.yml`` now gives one
(``html.favicon: book/_static/favicon.svg``); each page must link it, and the
file must be in the site.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(os.environ.get("OPTBOOK_SITE_DIR", ROOT / "_build" / "html"))
ICON = re.compile(r'<link\b[^>]*\brel="(?:shortcut )?icon"[^>]*>')
HREF = re.compile(r'\bhref="([^"]+)"')


def _pages() -> list[Path]:
    if not (SITE / "index.html").is_file():
        message = f"no built site at {SITE}: run `make book` first"
        if os.environ.get("OPTBOOK_REQUIRE_SITE") == "1":
            pytest.fail(message)
        pytest.skip(message)
    # _static holds template fragments; the root index.html only redirects
    return sorted(p for p in SITE.rglob("*.html")
                  if p.relative_to(SITE).parts[0] not in ("_static", "_sources")
                  and p.relative_to(SITE).as_posix() != "index.html")


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
