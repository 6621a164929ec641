"""Every decimal number that the prose of chapters 1-5 quotes must be one the
notebook prints, or be listed below with the reason it is not.

The prose is the markdown of each notebook outside math (``$...$``, ``$$...$$``),
inline code, fenced code blocks, directive options and figure numbers; a
"decimal number" is one with a decimal point (``0.41``, ``1,623.5``). A quoted
number is found if some number in the notebook's printed outputs (stdout and
``text/plain``; not the HTML of the interactive figures) rounds to it at the
precision it is quoted with: prose ``0.41`` is found by an output ``0.4142``,
prose ``6.57`` by ``6.5731``. Signs are ignored (prose writes ``−`` where code
prints ``-``).

What is not found is either wrong, and then the prose is fixed, or it is listed
in :data:`EXCEPTIONS` with a one-line reason: a number derived from printed ones,
a deliberate bracket around a kernel-sensitive range, a citation. A number
printed in another section of the book is listed in :data:`ELSEWHERE`, and is
looked up there. Listed numbers must still occur in the prose, so that the list
shrinks when the text changes.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
CHAPTERS = ("01-foundations", "02-sgd", "03-momentum", "04-adaptive", "05-adam",
            "05-descendants", "05-matrix")

# (notebook, number as quoted, a few words of the prose around it) -> why it is not printed
EXCEPTIONS = {
    ("02-sgd", "0.94", "training accuracy between 0.88 and 0.94"):
        "upper end of a bracket around the printed 0.885-0.934 of a kernel-sensitive "
        "cell (its verdict line is 'above 0.85: 3/3'), not a printed value",
    ("02-sgd", "0.23", "0.23 to 0.31"):
        "a bracket around the printed training losses 0.237-0.304 (|B| = 512) of the "
        "same kernel-sensitive cell",
    ("02-sgd", "5.3", "a factor of 1.5 to 5.3"):
        "a ratio of printed numbers: 1184/225 = 5.26 (the widest seed range of B_simple)",
    ("04-adaptive", "6.5", "lecture 6.5"): "a citation: Tieleman and Hinton's lecture 6.5",
    ("04-adaptive", "8.5", "section 8.5"): "a citation: section 8.5 of Goodfellow et al.",
    ("05-descendants", "0.011", "by\n0.001 to 0.011 by step 150"):
        "differences of printed numbers: step-150 value minus lowest value of each "
        "optimizer (LAMB 0.453 - 0.442 = 0.011)",
}

# (notebook, number as quoted) -> the notebook that prints it
ELSEWHERE = {
    ("05-descendants", "7.27"): "05-adam",    # the bound (adam-step-bound) for the defaults
    ("05-descendants", "4.97"): "05-adam",    # the peak step after a tenfold jump, 4.969
}

DECIMAL = re.compile(r"(?<![\w./])(\d{1,3}(?:,\d{3})+\.\d+|\d+\.\d+)(?!\d|\.\d)")
OUTPUT_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?")
FIGURE = re.compile(r"\b(?:Figures?|Table|Fig\.)\s+\d+\.\d+(?:\s*(?:,|and|–|-)\s*\d+\.\d+)*")


def _source(cell: dict) -> str:
    source = cell["source"]
    return "".join(source) if isinstance(source, list) else source


def _notebook(stem: str) -> dict:
    return json.loads((BOOK / f"{stem}.ipynb").read_text())


def prose(markdown: str) -> str:
    """The markdown without what is not prose (math, code, directive options, figure numbers)."""
    text = re.sub(r"^```[^\n{]*\n.*?^```", " ", markdown, flags=re.S | re.M)  # code blocks
    text = re.sub(r"^```.*$", " ", text, flags=re.M)              # directive fences
    text = re.sub(r"^:[\w-]+:.*$", " ", text, flags=re.M)         # directive options
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)         # display math
    text = re.sub(r"\$[^$]+\$", " ", text)                        # inline math
    text = re.sub(r"`[^`]*`", " ", text)                          # inline code, roles
    text = re.sub(r"\]\([^)]*\)", "]", text)                      # link targets
    return FIGURE.sub(" ", text)


def quoted_numbers(stem: str) -> list[tuple[str, str]]:
    """(number, the prose around it) for every decimal number in the notebook's prose."""
    found = []
    for cell in _notebook(stem)["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        text = prose(_source(cell))
        for match in DECIMAL.finditer(text):
            found.append((match.group(1), text[max(0, match.start() - 80):match.end() + 40]))
    return found


def printed_numbers(stem: str) -> list[float]:
    values = []
    for cell in _notebook(stem)["cells"]:
        for output in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            for text in (output.get("text", ""), output.get("data", {}).get("text/plain", "")):
                text = "".join(text) if isinstance(text, list) else text
                for match in OUTPUT_NUMBER.finditer(text):
                    try:
                        values.append(abs(float(match.group(0).replace(",", ""))))
                    except ValueError:
                        pass
    return values


def rounds_to(value: float, quoted: str) -> bool:
    digits = quoted.replace(",", "")
    decimals = len(digits.split(".")[1])
    return abs(value - float(digits)) <= 0.5 * 10.0 ** -decimals * (1 + 1e-9)


def is_printed(quoted: str, values: list[float]) -> bool:
    return any(rounds_to(v, quoted) for v in values)


def _listed(stem: str, number: str, context: str) -> bool:
    flat = " ".join(context.split())
    return any(s == stem and n == number and " ".join(words.split()) in flat
               for (s, n, words) in EXCEPTIONS)


@pytest.mark.parametrize("stem", CHAPTERS)
def test_every_quoted_number_is_printed_or_explained(stem):
    values = printed_numbers(stem)
    missing = []
    for number, context in quoted_numbers(stem):
        if is_printed(number, values) or _listed(stem, number, context):
            continue
        if (stem, number) in ELSEWHERE:
            other = ELSEWHERE[stem, number]
            assert is_printed(number, printed_numbers(other)), (
                f"{stem}: {number} is said to be printed in {other}, which does not print it")
            continue
        missing.append(f"{number}   (...{' '.join(context.split())}...)")
    assert not missing, (f"{stem}: numbers in the prose that no output prints "
                         "(fix the prose, or list them in EXCEPTIONS with the reason):\n  "
                         + "\n  ".join(missing))


@pytest.mark.parametrize("key", sorted(EXCEPTIONS))
def test_listed_exceptions_are_still_in_the_prose(key):
    stem, number, words = key
    assert any(n == number and " ".join(words.split()) in " ".join(c.split())
               for n, c in quoted_numbers(stem)), f"{key} is no longer in the prose: unlist it"


@pytest.mark.parametrize("key", sorted(ELSEWHERE))
def test_numbers_printed_elsewhere_are_still_quoted(key):
    stem, number = key
    assert any(n == number for n, _ in quoted_numbers(stem)), f"{key}: unlist it"


def test_the_matching_rule():
    assert rounds_to(0.4142, "0.41") and rounds_to(6.5731, "6.57") and rounds_to(1623.0, "1,623.0")
    assert not rounds_to(0.416, "0.41") and not rounds_to(0.934, "0.94")
    assert [n for n, _ in [(m.group(1), 0) for m in DECIMAL.finditer(
        "from 0.0012–0.027, Python 3.11.7, 1,623.5 and −0.020")]] == [
        "0.0012", "0.027", "1,623.5", "0.020"]
    assert "4.5" not in prose("see Figure 4.5 and $0.5$, `lr=0.1`")
