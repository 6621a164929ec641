"""Minutes of reading of each chapter's main line (issue 20's measure).

    .venv/bin/python scripts/reading_time.py                 # chapters 1-5
    .venv/bin/python scripts/reading_time.py book/06-*.ipynb

The main line is every markdown cell before the chapter's "Going deeper"
or "Exercises" heading, whichever comes first (what follows, Going deeper,
exercises, summary and references, is counted as "the rest"); words are counted outside display math (``$$...$$``), and a figure is
a caption opening with ``**Figure N.M``. Reading time is 200 words a minute
plus 30 seconds a figure, the rule of thumb the issue set; code cells and
outputs are not counted (a reader who runs them takes longer).
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

BOOK = Path(__file__).resolve().parents[1] / "book"
CHAPTERS = ("01-foundations", "02-sgd", "03-momentum", "04-adaptive", "05-adam",
            "05-descendants", "05-matrix")
END_OF_MAIN_LINE = re.compile(r"^#+ (Going deeper|Exercises)", re.M)
DISPLAY_MATH = re.compile(r"\$\$.*?\$\$", re.S)
WORD = re.compile(r"[A-Za-z0-9α-ωΑ-Ω][\w'’.,-]*")
FIGURE = re.compile(r"\*\*Figure \d+\.\d+")
WORDS_PER_MINUTE, MINUTES_PER_FIGURE = 200, 0.5


def measure(notebook: Path) -> dict:
    """Words and figures of the main line and of the rest, and minutes of each."""
    parts = {"main": [0, 0], "rest": [0, 0]}
    part = "main"
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"])
        if END_OF_MAIN_LINE.search(text):
            part = "rest"
        parts[part][0] += len(WORD.findall(DISPLAY_MATH.sub("", text)))
        parts[part][1] += len(FIGURE.findall(text))
    return {name: {"words": w, "figures": f,
                   "minutes": round(w / WORDS_PER_MINUTE + f * MINUTES_PER_FIGURE, 1)}
            for name, (w, f) in parts.items()}


def main(paths: list[str]) -> None:
    notebooks = [Path(p) for p in paths] or [BOOK / f"{c}.ipynb" for c in CHAPTERS]
    print(f"{'page':<18}{'main line':>28}{'the rest':>22}")
    for nb in notebooks:
        m, d = measure(nb)["main"], measure(nb)["rest"]
        print(f"{nb.stem:<18}{m['words']:>8,} words {m['figures']:>2} figs {m['minutes']:>5.1f} min"
              f"{d['words']:>8,} words {d['figures']:>2} figs")


if __name__ == "__main__":
    main(sys.argv[1:])
