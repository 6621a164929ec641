"""The Japanese edition's PDF (``make pdf`` prints both editions).

Reads _build/pdf/optimization-for-deep-learning-ja.pdf with poppler's
``pdftotext``, ``pdffonts`` and ``pdfinfo``: a Japanese title page and
contents, every page's Japanese title (from its catalog), equations typeset,
every font embedded. Skips when there is no PDF unless OPTBOOK_REQUIRE_PDF=1.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from test_pdf import document_titles, normalized

ROOT = Path(__file__).resolve().parents[2]
PDF = ROOT / "_build" / "pdf" / "optimization-for-deep-learning-ja.pdf"
CATALOGS = ROOT / "locales" / "ja" / "LC_MESSAGES"

if not PDF.is_file():
    if os.environ.get("OPTBOOK_REQUIRE_PDF") == "1":
        raise RuntimeError(f"{PDF} is missing: run `make pdf`")
    pytest.skip(f"{PDF} not built (make pdf)", allow_module_level=True)


@pytest.fixture(scope="module")
def text() -> str:
    done = subprocess.run(["pdftotext", "-enc", "UTF-8", str(PDF), "-"],
                          capture_output=True, text=True, check=True)
    return normalized(done.stdout)


def japanese_titles() -> list[str]:
    """Each page's first heading as its catalog translates it."""
    titles = []
    for catalog in sorted(CATALOGS.glob("book/*.po")):
        with catalog.open("rb") as f:
            po = read_po(f)
        strings = {m.id: m.string for m in po if m.id and m.string}
        found = [strings[t] for t in document_titles() if t in strings]
        titles += found[:1]
    return titles


@pytest.mark.parametrize("title", japanese_titles())
def test_every_page_has_its_japanese_title(text, title):
    assert normalized(re.sub(r"[*_`]", "", title)) in text


def test_japanese_title_page_and_contents(text):
    assert text.startswith("深層学習のための最適化")
    assert "目次" in text[:3000]


def test_equations_are_typeset_not_raw_tex(text):
    assert "$$" not in text and "\\begin{" not in text


def test_every_font_is_embedded():
    done = subprocess.run(["pdffonts", str(PDF)], capture_output=True, text=True, check=True)
    rows = done.stdout.splitlines()[2:]
    assert rows, "pdffonts found no fonts"
    assert not [r for r in rows if " no " in r.split("  ")[-1] or "LastResort" in r]
