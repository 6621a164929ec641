"""Every code line of every chapter notebook fits the site's code column (issue 21, item 6).

At 1280 px, 167 of 321 code and output blocks scrolled sideways: 623 of the
3,384 code lines in book/*.ipynb were longer than a code block shows. A code
cell's source is the reader's text, so it is wrapped to the column (outputs,
which a notebook prints, may be wider and scroll with a cue instead:
tests/browser/test_reader_layout.py).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"

CODE_LINE_WIDTH = 77
"""Characters a code cell's ``<pre>`` shows at 1280 px without scrolling.

Measured in headless Chromium (Debian's, as the browser tests use) on the
built site (``_build/html/en/book/*.html``) at a 1280 × 844 viewport: a code
cell's ``pre`` is 684 px wide (``clientWidth``) with 16 px of padding on
each side, so 652 px of text; its font is 14 px monospace (the theme's
``ui-monospace, "Cascadia Code", "Source Code Pro", Menlo, Consolas,
"DejaVu Sans Mono", monospace``, DejaVu Sans Mono here), whose advance is
8.43 px a character (``CanvasRenderingContext2D.measureText`` with the
``pre``'s computed font). 652 / 8.43 = 77.4, so 77 characters fit.
"""

SOLUTION_CODE_LINE_WIDTH = 74
"""A code cell inside an exercise's solution (between ``{solution-start}`` and
``{solution-end}``) sits in the dropdown's box: its ``pre`` is 662 px wide,
(662 - 32) / 8.43 = 74.7."""

HIDDEN_INPUT_CODE_LINE_WIDTH = 75
"""A cell tagged ``hide-input`` shows its source in a collapsible box: 666 px,
(666 - 32) / 8.43 = 75.2."""

SOLUTION_HIDDEN_INPUT_CODE_LINE_WIDTH = 72
"""Both (a ``hide-input`` cell in a solution): 644 px, (644 - 32) / 8.43 = 72.6.

The browser test ``test_code_cells_fit_and_outputs_scroll_with_a_cue``
(tests/browser/test_reader_layout.py) checks the rendered pages themselves:
no code cell's ``pre`` scrolls sideways at 1280 px."""

EXCEPTIONS: dict[tuple[str, str], str] = {}
"""(notebook, cell id) -> why a line of that cell may be longer. None today."""


def cell_widths(cells: list[dict]) -> list[int | None]:
    """The width each code cell's lines must fit (None for a markdown cell)."""
    widths, in_solution = [], False
    for cell in cells:
        if cell["cell_type"] != "code":
            for directive in re.finditer(r"\{solution-(start|end)\}", "".join(cell["source"])):
                in_solution = directive.group(1) == "start"
            widths.append(None)
            continue
        hidden = "hide-input" in cell.get("metadata", {}).get("tags", [])
        widths.append({(False, False): CODE_LINE_WIDTH,
                       (True, False): SOLUTION_CODE_LINE_WIDTH,
                       (False, True): HIDDEN_INPUT_CODE_LINE_WIDTH,
                       (True, True): SOLUTION_HIDDEN_INPUT_CODE_LINE_WIDTH}[in_solution, hidden])
    return widths


def chapter_notebooks() -> list[Path]:
    return sorted(BOOK.glob("*.ipynb"))


def long_lines(notebook: Path) -> list[str]:
    """'cell <index> (id <id>) line <n>: <length> chars over <width>: <line>' for each code line too long."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    found = []
    for index, (cell, width) in enumerate(zip(cells, cell_widths(cells))):
        if width is None or (notebook.name, cell.get("id", "")) in EXCEPTIONS:
            continue
        for number, line in enumerate("".join(cell["source"]).split("\n"), start=1):
            if len(line) > width:
                found.append(f"cell {index} (id {cell.get('id', '?')}) line {number}: "
                             f"{len(line)} chars over {width}: {line.strip()[:60]}")
    return found


def test_the_chapters_have_notebooks():
    assert len(chapter_notebooks()) >= 10


@pytest.mark.parametrize("notebook", chapter_notebooks(), ids=lambda p: p.name)
def test_every_code_line_fits_the_column(notebook):
    found = long_lines(notebook)
    assert not found, (f"{notebook.name}: {len(found)} code lines longer than their "
                       f"column (they scroll sideways at 1280 px):\n" + "\n".join(found))


def _code(cell_id, source, tags=()):
    return {"cell_type": "code", "id": cell_id, "metadata": {"tags": list(tags)},
            "outputs": [], "execution_count": None, "source": source}


def _markdown(text):
    return {"cell_type": "markdown", "id": "m", "metadata": {}, "source": [text]}


def test_the_check_finds_a_long_line(tmp_path):
    """Each context's width is the limit: one more character is reported, with its cell."""
    w, sol, hid, both = (CODE_LINE_WIDTH, SOLUTION_CODE_LINE_WIDTH,
                         HIDDEN_INPUT_CODE_LINE_WIDTH, SOLUTION_HIDDEN_INPUT_CODE_LINE_WIDTH)
    cells = [_markdown("x" * 200),
             _code("fits", ["a = 1\n", "#" * w]),
             _code("wide", ["b = 2\n", "#" * (w + 1)]),
             _code("hidden", ["#" * (hid + 1)], tags=["hide-input"]),
             _markdown("```{solution-end}\n```\n\n```{solution-start} ex\n```"),
             _code("solution-fits", ["#" * sol]),
             _code("solution-wide", ["#" * (sol + 1)]),
             _code("solution-hidden", ["#" * (both + 1)], tags=["hide-input"]),
             _markdown("```{solution-end}\n```"),
             _code("after", ["#" * w])]
    notebook = tmp_path / "probe.ipynb"
    notebook.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                    "nbformat_minor": 5}), encoding="utf-8")
    found = long_lines(notebook)
    assert [f.split(":")[0] for f in found] == [
        "cell 2 (id wide) line 2", "cell 3 (id hidden) line 1",
        "cell 6 (id solution-wide) line 1", "cell 7 (id solution-hidden) line 1"]
    assert found[0].startswith(f"cell 2 (id wide) line 2: {w + 1} chars over {w}")
    assert sol < w and both < hid < w
