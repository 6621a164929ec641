"""The references page (book/08-references.md) says its list "gathers every
work the chapters cite": every citation key used on any page must appear in
that list, and every key in the list must exist in book/references.bib."""
from __future__ import annotations

import json
import re
from pathlib import Path

BOOK = Path(__file__).resolve().parents[1] / "book"
CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")


def _keys(text: str) -> set[str]:
    return {k.strip() for group in CITE.findall(text) for k in group.split(",")}


def _page_text(path: Path) -> str:
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return path.read_text()


def test_reference_list_names_every_cited_work():
    listed = _keys(_page_text(BOOK / "08-references.md").split("```{bibliography}")[0])
    cited = set()
    for page in sorted(BOOK.glob("*.ipynb")) + sorted(BOOK.glob("*.md")):
        if page.name != "08-references.md":
            cited |= _keys(_page_text(page))
    missing = sorted(cited - listed)
    assert not missing, f"cited in the chapters but not in 08-references.md's list: {missing}"


def test_listed_keys_exist_in_the_bibliography():
    bib = set(re.findall(r"@\w+\{([^,\s]+),", (BOOK / "references.bib").read_text()))
    listed = _keys(_page_text(BOOK / "08-references.md"))
    assert listed <= bib, f"not in references.bib: {sorted(listed - bib)}"
