"""The reader's notebooks (scripts/reader_notebooks.py) print what the built site prints.

The site's numbers and citation texts come from Sphinx, sphinx-proof,
sphinx-exercise and sphinxcontrib-bibtex; the reader's notebooks compute
them from the sources on their own.  For every chapter page: each labelled
equation's number, each labelled definition/theorem/algorithm/exercise's
"Kind N.M", and the text of every citation, in order, must be the site's.
"""
from __future__ import annotations

import functools
import re
import sys
from pathlib import Path

import pytest

from built_site import ROOT, SITE, require_site

sys.path.insert(0, str(ROOT / "scripts"))
import reader_notebooks as R  # noqa: E402

bs4 = pytest.importorskip("bs4")

# The reader's notebooks are the English edition's: their numbers and
# citation texts are checked against the English site. On the Japanese site
# ("定義 3.1") tests/build/test_editions.py checks the Japanese download.
if SITE.name == "ja":
    pytest.skip("the reader's notebooks are checked against the English site; "
                "the Japanese download is checked by test_editions.py", allow_module_level=True)

CHAPTERS = [p.stem for p in R.chapter_notebooks()]


@pytest.fixture(scope="module")
def book():
    return R.load_book()


@functools.lru_cache(maxsize=None)
def _site(stem):
    html = (require_site() / "book" / f"{stem}.html").read_text(encoding="utf-8")
    return bs4.BeautifulSoup(html, "html.parser")


def _text(node) -> str:
    return re.sub(r"\s+", " ", node.get_text()).strip()


@pytest.mark.parametrize("stem", CHAPTERS)
def test_numbers_are_the_sites(book, stem):
    soup = _site(stem)
    page = f"book/{stem}"
    mine = {label: t for label, t in book.targets.items() if t.page == page}
    checked = 0
    for label, target in mine.items():
        if target.kind == "equation":
            node = soup.find(id=f"equation-{label}")
            assert node is not None, label
            assert _text(node.find(class_="eqno")).replace("#", "") == target.text, label
        elif target.kind != "section":
            node = soup.find(id=label)
            assert node is not None, label
            shown = _text(node.find(class_="caption-number"))
            assert shown == target.text, (label, shown, target.text)
        else:
            continue
        checked += 1
    site_equations = len(soup.select(".math-wrapper .eqno, div.math .eqno, span.eqno"))
    assert sum(t.kind == "equation" for t in mine.values()) == site_equations
    assert checked == sum(t.kind != "section" for t in mine.values())


@pytest.mark.parametrize("stem", CHAPTERS)
def test_citation_texts_are_the_sites(book, stem):
    soup = _site(stem)
    site = [_text(s) for s in soup.select("span.bibtex-citation")]
    mine = []
    for text in R.page_markdown(R.page_path(f"book/{stem}")):
        for m in R.ROLE.finditer(text):
            if m.group(1).startswith("cite"):
                keys = [k.strip() for k in m.group(2).split(",")]
                mine.append(R.citation(m.group(1), keys, book.bibliography, links=False))
    assert mine == site


@pytest.mark.parametrize("stem", CHAPTERS)
def test_download_button_serves_the_readers_notebook(book, stem):
    """sphinx-book-theme's download button links to _sources/book/<stem>.ipynb;
    scripts/book_site.py replaces that copy of the source by the reader's notebook."""
    import json

    served = require_site() / "_sources" / "book" / f"{stem}.ipynb"
    assert f'href="../_sources/book/{stem}.ipynb"' in \
        (require_site() / "book" / f"{stem}.html").read_text(encoding="utf-8")
    nb = json.loads(served.read_text(encoding="utf-8"))
    assert nb == R.reader_notebook(ROOT / "book" / f"{stem}.ipynb", book)
