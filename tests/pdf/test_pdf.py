"""The book's PDF (``make pdf``): every chapter in it, its equations typeset, no missing glyphs.

Reads _build/pdf/optimization-for-deep-learning.pdf with poppler's
``pdftotext`` and ``pdffonts``. ``make test`` builds the PDF first (stage
*pdf*); run alone, these tests skip when there is no PDF unless
OPTBOOK_REQUIRE_PDF=1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PDF = ROOT / "_build" / "pdf" / "optimization-for-deep-learning.pdf"

if not PDF.is_file():
    if os.environ.get("OPTBOOK_REQUIRE_PDF") == "1":
        raise RuntimeError(f"{PDF} is missing: run `make pdf`")
    pytest.skip(f"{PDF} not built (make pdf)", allow_module_level=True)
if shutil.which("pdftotext") is None:
    raise RuntimeError("pdftotext is missing: apt-get install -y poppler-utils")


def normalized(text: str) -> str:
    """Whitespace folded, soft hyphens dropped, typographic quotes made plain."""
    text = text.replace("\u00ad", "").replace("\u2019", "'").replace("\u2018", "'")
    return " ".join(text.split())


@pytest.fixture(scope="module")
def text() -> str:
    done = subprocess.run(["pdftotext", "-enc", "UTF-8", str(PDF), "-"],
                          capture_output=True, text=True, check=True)
    return normalized(done.stdout)


@pytest.fixture(scope="module")
def fonts() -> list[dict[str, str]]:
    done = subprocess.run(["pdffonts", str(PDF)], capture_output=True, text=True, check=True)
    lines = done.stdout.splitlines()
    header = lines[0]
    # Columns: name type encoding emb sub uni object ID (fixed-width, dashes under the header).
    starts = [m.start() for m in re.finditer(r"\S+", lines[1])]
    names = ["name", "type", "encoding", "emb", "sub", "uni", "object"]
    rows = []
    for line in lines[2:]:
        cells = [line[a:b].strip() for a, b in zip(starts, starts[1:] + [None])]
        rows.append(dict(zip(names, cells)))
    assert "emb" in header
    return rows


def document_titles() -> list[str]:
    """The first heading of every page in _toc.yml, as the reader sees it."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc["parts"]:
        for chapter in part["chapters"]:
            files.append(chapter["file"])
            files += [section["file"] for section in chapter.get("sections", [])]
    titles = []
    for name in files:
        path = next(p for p in (ROOT / f"{name}.md", ROOT / f"{name}.ipynb") if p.exists())
        if path.suffix == ".ipynb":
            cells = json.loads(path.read_text())["cells"]
            source = next("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        else:
            source = path.read_text()
        heading = next(line for line in source.splitlines() if line.startswith("# "))
        titles.append(heading[2:].strip())
    return titles


@pytest.mark.parametrize("title", document_titles())
def test_every_chapter_and_section_is_in_the_pdf(text, title):
    plain = re.sub(r"[*_`]", "", title)
    assert normalized(plain) in text


def test_title_page_and_contents(text):
    assert text.startswith("Optimization for Deep Learning")
    assert "Contents" in text[:3000]


def test_equations_are_typeset_not_raw_tex(text):
    # Code cells legitimately print TeX (matplotlib labels), so look for what
    # only the prose holds: display-math delimiters, environments, and the
    # introduction's first inline equation, theta_{t+1} = theta_t - eta grad L.
    assert "$$" not in text and "\\begin{" not in text
    assert "\\nabla_\\theta\\mathcal" not in text


def test_japanese_glossary_terms_render(text):
    for term in ("学習率", "確率的勾配降下法", "ウォームアップ"):
        assert term in text
    # Chromium embeds the CJK glyphs as Type 3 fonts without a name, so the
    # font is checked where the PDF was printed: fontconfig must have one
    # that covers every character of the terms (fonts-noto-cjk), or Chromium
    # would have drawn empty boxes.
    for char in "学習率確率的勾配降下法ウォームアップ":
        done = subprocess.run(["fc-list", f":charset={ord(char):x}", "family"],
                              capture_output=True, text=True, check=True)
        assert done.stdout.strip(), f"no installed font has {char!r}"


def test_every_font_is_embedded_and_none_is_a_fallback_box(fonts):
    assert fonts, "pdffonts found no fonts"
    not_embedded = [row["name"] for row in fonts if row["emb"] != "yes"]
    assert not not_embedded
    # Chromium draws a glyph no font has with LastResort/"notdef" fallbacks.
    assert not [row["name"] for row in fonts if "LastResort" in row["name"]]


def test_every_chapter_starts_a_page_after_title_and_contents():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    chapters = sum(len(part["chapters"]) for part in toc["parts"])
    done = subprocess.run(["pdfinfo", str(PDF)], capture_output=True, text=True, check=True)
    pages = int(re.search(r"Pages:\s+(\d+)", done.stdout).group(1))
    assert pages >= chapters + 2, (pages, chapters)


def test_interactive_figures_print_a_frame_and_say_where_the_live_one_is(text):
    # optbook-print.css adds this line under every in-page figure.
    assert "Interactive figure, printed at its default setting" in text
