"""scripts/reader_notebooks.py: what it rewrites and what it refuses.

(Its numbers and citation texts are checked against the built site in
tests/build/test_reader_notebooks.py; JupyterLab's rendering of every
chapter in tests/browser/test_jupyterlab.py.)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import reader_notebooks as R  # noqa: E402


@pytest.fixture(scope="module")
def book():
    return R.load_book()


def _markdown(nb):
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


@pytest.mark.parametrize("path", R.chapter_notebooks(), ids=lambda p: p.stem)
def test_reader_notebook_keeps_code_and_resolves_what_jupyterlab_cannot(book, path):
    source = json.loads(path.read_text(encoding="utf-8"))
    reader = R.reader_notebook(path, book)
    # code cells and outputs untouched, one cell for one cell
    assert [c["cell_type"] for c in reader["cells"]] == [c["cell_type"] for c in source["cells"]]
    assert [c for c in reader["cells"] if c["cell_type"] == "code"] == \
        [c for c in source["cells"] if c["cell_type"] == "code"]
    text = _markdown(reader)
    for role in ("{cite", "{term}", "{doc}"):
        assert role not in text, role
    # a {ref}/{eq}/{prf:ref} left as a role points into this notebook
    page = f"book/{path.stem}"
    for m in R.ROLE.finditer(text):
        target = (R.EXPLICIT.match(m.group(2)) or [None, None, m.group(2)])[2].strip()
        assert book.targets[target].page == page, m.group(0)
    # no display equation is left to JupyterLab's own numbering
    assert "\n$$" not in "\n" + text


def test_citations_read_author_year(book):
    assert R.citation("cite:t", ["polyak1964some"], book.bibliography, links=False) == "Polyak (1964)"
    assert R.citation("cite:p", ["kingma2015adam"], book.bibliography, links=False) == \
        "(Kingma and Ba, 2015)"
    assert R.citation("cite:p", ["you2020lamb"], book.bibliography, links=False) == \
        "(You et al., 2020)"


def test_an_unknown_citation_key_or_label_is_a_clear_error(book, tmp_path):
    with pytest.raises(ValueError, match="nosuchkey2020"):
        R.citation("cite:p", ["nosuchkey2020"], book.bibliography)
    m = R.ROLE.search("see {eq}`no-such-label`")
    with pytest.raises(ValueError, match="no-such-label"):
        R._rewrite_role(m, "book/03-momentum", book)
    stray = tmp_path / "03-momentum.ipynb"          # not the book's page of that name
    stray.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    with pytest.raises(ValueError, match="not a page of _toc.yml"):
        R.reader_notebook(stray, book)


def test_labelled_equations_carry_the_site_number_and_others_none(book):
    nb = R.reader_notebook(ROOT / "book" / "05-descendants.ipynb", book)
    text = _markdown(nb)
    # chapter 5 counts on from 05-adam's six labelled equations
    assert ":enumerator: 5.7" in text
    # chapter 3 has unlabelled display equations, which the site leaves unnumbered
    text = _markdown(R.reader_notebook(ROOT / "book" / "03-momentum.ipynb", book))
    assert ":enumerated: false" in text
    assert ":enumerator: 3.16" in text and ":enumerator: 3.17" not in text
