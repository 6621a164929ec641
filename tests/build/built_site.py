"""Where the tests of tests/build find the built site, and what they do without one.

``make test-site`` sets OPTBOOK_REQUIRE_SITE=1: there a missing site is a
failure, never a skip. A plain ``pytest tests`` before any build skips.
OPTBOOK_SITE_DIR points the tests at another build.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The English edition (make book builds _build/html/en and _build/html/ja);
# OPTBOOK_SITE_DIR=_build/html/ja runs these tests over the Japanese one.
SITE = Path(os.environ.get("OPTBOOK_SITE_DIR", ROOT / "_build" / "html" / "en")).resolve()


def require_site() -> Path:
    if not (SITE / "index.html").is_file():
        message = f"no built site at {SITE}: run `make book` first"
        if os.environ.get("OPTBOOK_REQUIRE_SITE") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return SITE


def html_pages() -> list[Path]:
    """Every page of the site; _static holds theme template fragments (Jinja
    macros) and _sources the pages' sources, neither of them pages."""
    return sorted(p for p in require_site().rglob("*.html")
                  if p.relative_to(SITE).parts[0] not in ("_static", "_sources"))
