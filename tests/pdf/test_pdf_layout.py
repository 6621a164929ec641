"""The PDF's pages: no empty framed box, no placeholder address.

Issue 21, items 13 and 11.

* A code cell that did not fit at the foot of a page left its frame behind,
  empty (pp. 55 and 58 of the PDF the issue paged through; 40-odd pages in
  all): MyST-NB's grey, margin-lined box of the cell stayed while the theme
  moved the code, which it keeps unbroken, to the next page.
  ``optbook-print.css`` now keeps short cells whole and gives each part of a
  long one its own frame. Checked on the printed pages themselves: each page
  is rendered (``pdftoppm``, 50 dpi, grey) and every tinted box, a run of
  rows tinted across at least half of the text column, must hold text (some
  row with more dark pixels than a box's coloured margin line has).
* No placeholder address; the title page names the repository only when the
  build was given one (``OPTBOOK_REPOSITORY``, as for the site).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
PDF = Path(os.environ.get("OPTBOOK_PDF") or ROOT / "_build" / "pdf" / "optimization-for-deep-learning.pdf")

if not PDF.is_file():
    if os.environ.get("OPTBOOK_REQUIRE_PDF") == "1":
        raise RuntimeError(f"{PDF} is missing: run `make pdf`")
    pytest.skip(f"{PDF} not built (make pdf)", allow_module_level=True)

DPI = 50
MIN_BOX_ROWS = 6          # 3 mm: a frame's paddings alone; box shadows are 4-5 rows
MARGIN_LINE_PIXELS = 3    # a box's coloured left margin: dark in every row, 1-2 px wide


def empty_boxes(pdf: Path) -> list[tuple[int, float, float]]:
    """(page, top in mm, height in mm) of every tinted box with no text in it."""
    found = []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["pdftoppm", "-r", str(DPI), "-gray", "-png", str(pdf), f"{tmp}/p"], check=True)
        for png in sorted(Path(tmp).glob("p-*.png")):
            page = int(png.stem.split("-")[1])
            pixels = np.asarray(Image.open(png).convert("L"), dtype=np.int16)
            width = pixels.shape[1]
            column = pixels[:, int(width * 0.08):int(width * 0.92)]
            tinted = ((column >= 200) & (column <= 252)).sum(axis=1)
            dark = (column < 140).sum(axis=1)
            inside = tinted + dark >= 0.5 * column.shape[1]
            start = None
            for y, flag in enumerate(list(inside) + [False]):
                if flag and start is None:
                    start = y
                elif not flag and start is not None:
                    if y - start >= MIN_BOX_ROWS and dark[start:y].max() <= MARGIN_LINE_PIXELS:
                        mm = 25.4 / DPI
                        found.append((page, round(start * mm, 1), round((y - start) * mm, 1)))
                    start = None
    return found


def test_no_page_ends_in_an_empty_framed_box():
    boxes = empty_boxes(PDF)
    assert not boxes, (f"{len(boxes)} empty framed boxes (page, top mm, height mm): {boxes[:12]}")


def _text() -> str:
    done = subprocess.run(["pdftotext", "-enc", "UTF-8", str(PDF), "-"],
                          capture_output=True, text=True, check=True)
    return done.stdout


def test_no_placeholder_address_and_the_repository_only_when_given():
    sys.path.insert(0, str(ROOT / "scripts"))
    from book_site import repository_address

    text = _text()
    for placeholder in ("REPLACE-WITH-OWNER", "<repository URL>"):
        assert placeholder not in text
    title_page = text.split("\f", 1)[0]
    url = repository_address()
    if url:
        assert url in " ".join(title_page.split())
    else:
        assert "The live book" not in title_page and "github.com" not in title_page
