"""Every figure of chapters 1-7 is numbered, captioned and short (issue 20).

A figure is a code cell whose output is an image, an in-page figure or a static
figure's ``<picture>`` (``optbook-static-figure``, from ``plt.show()``). Its
caption is the paragraph that opens with ``**Figure N.M`` in the markdown cell
right after it. The rules the editor's pass set, held here so a later edit
cannot quietly break them:

* the caption follows its figure directly (no table or paragraph in between);
* N is the chapter, and M runs 1, 2, 3, ... across the chapter's pages in the
  order of ``_toc.yml``, so "Figure 5.6" is the sixth figure of chapter 5;
* a caption says what to look at in at most 60 words, every whitespace-separated
  token counted, the bold title included.

Figures inside exercises' solutions are exempt (a solution may plot a check).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CAPTION = re.compile(r"^\*\*Figure (\d+)\.(\d+)\b.*?(?=\n\n|\Z)", re.S | re.M)
MAX_WORDS = 60


def _pages() -> list[str]:
    """Chapter notebooks in the order of _toc.yml."""
    text = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    files = re.findall(r"file:\s*(\S+)", text)
    return [f for f in files if (ROOT / f"{f}.ipynb").exists() and re.match(r"book/0[1-7]-", f)]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def _is_figure(cell: dict) -> bool:
    if cell["cell_type"] != "code":
        return False
    for out in cell.get("outputs", []):
        data = out.get("data", {})
        if any(k.startswith("image/") for k in data):
            return True
        html = "".join(data.get("text/html", ""))
        if "optbook-figure" in html or "optbook-static-figure" in html:
            return True
    return False


def _in_solution(cells: list[dict], i: int) -> bool:
    """Whether cell i lies between a solution-start and its solution-end."""
    depth = 0
    for cell in cells[:i]:
        text = _source(cell)
        depth += text.count("{solution-start}") - text.count("{solution-end}")
    return depth > 0


def _figures_and_captions():
    for page in _pages():
        cells = json.loads((ROOT / f"{page}.ipynb").read_text(encoding="utf-8"))["cells"]
        for i, cell in enumerate(cells):
            if _is_figure(cell) and not _in_solution(cells, i):
                after = cells[i + 1] if i + 1 < len(cells) else None
                text = _source(after) if after and after["cell_type"] == "markdown" else ""
                yield page, i, CAPTION.search(text.lstrip()) if text.lstrip().startswith("**Figure") else None


def test_every_figure_has_a_caption_right_after_it():
    missing = [f"{page} cell {i}" for page, i, caption in _figures_and_captions() if caption is None]
    assert not missing, "figures without a '**Figure N.M' caption in the next cell:\n" + "\n".join(missing)


def test_figures_are_numbered_in_page_order_within_each_chapter():
    seen: dict[int, list[tuple[str, int]]] = {}
    problems = []
    for page, i, caption in _figures_and_captions():
        if caption is None:
            continue
        chapter, number = int(caption.group(1)), int(caption.group(2))
        expected_chapter = int(Path(page).name[:2])
        if chapter != expected_chapter:
            problems.append(f"{page} cell {i}: Figure {chapter}.{number} in chapter {expected_chapter}")
        seen.setdefault(chapter, []).append((page, number))
    for chapter, numbers in seen.items():
        got = [n for _, n in numbers]
        if got != list(range(1, len(got) + 1)):
            problems.append(f"chapter {chapter}: figures numbered {got}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", _pages())
def test_captions_are_at_most_60_words(page):
    cells = json.loads((ROOT / f"{page}.ipynb").read_text(encoding="utf-8"))["cells"]
    long = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "markdown":
            for caption in CAPTION.finditer(_source(cell)):
                words = len(caption.group(0).split())
                if words > MAX_WORDS:
                    long.append(f"cell {i}: Figure {caption.group(1)}.{caption.group(2)} has {words} words")
    assert not long, "\n".join(long)
