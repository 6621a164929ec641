"""The main line of each of chapters 1-5 reads in at most 25 minutes (issue 20).

Measured by ``scripts/reading_time.py`` (200 words a minute plus 30 s a
figure, up to the "Going deeper" or "Exercises" heading). A page that grows
past the budget moves material into its "Going deeper" section instead.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("reading_time", ROOT / "scripts" / "reading_time.py")
reading_time = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reading_time)
BUDGET_MINUTES = 25.0


@pytest.mark.parametrize("chapter", reading_time.CHAPTERS)
def test_main_line_reads_in_25_minutes(chapter):
    main = reading_time.measure(ROOT / "book" / f"{chapter}.ipynb")["main"]
    minutes = main["words"] / reading_time.WORDS_PER_MINUTE + main["figures"] * reading_time.MINUTES_PER_FIGURE
    assert minutes <= BUDGET_MINUTES, (
        f"{chapter}: the main line reads in {minutes:.1f} minutes ({main['words']} words, "
        f"{main['figures']} figures); move material into 'Going deeper'")


def test_the_measure_counts_words_and_figures(tmp_path):
    """A made-up page: 400 words and one figure before Going deeper, 1,000 after."""
    cells = [{"cell_type": "markdown", "source": ["word " * 400 + "\n\n**Figure 9.1 — A.** b"]},
             {"cell_type": "markdown", "source": ["## Going deeper\n", "word " * 1000]}]
    page = tmp_path / "page.ipynb"
    page.write_text(__import__("json").dumps({"cells": cells}))
    got = reading_time.measure(page)
    # the caption adds four words: "Figure", "9.1", "A." and "b" (a dash is no word)
    assert got["main"]["figures"] == 1 and got["main"]["words"] == 400 + 4
    assert got["main"]["minutes"] == round(404 / 200 + 0.5, 1)
    assert got["rest"]["words"] == 1000 + 2
