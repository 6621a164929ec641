"""The stored reruns (book/data/reruns, made by `make reruns`) against their registry
(optbook.experiments.reruns), the notebooks that print them, and one fresh run."""

from __future__ import annotations

import inspect
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest

from optbook.experiments import reruns

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
DATA = BOOK / "data" / "reruns"
NAMES = [r.name for r in reruns.registry()]


def _markdown_and_outputs(chapter: str) -> tuple[list[str], str, str]:
    nb = json.loads((BOOK / f"{chapter}.ipynb").read_text())
    markdown = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    outputs = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if "text" in out:
                outputs.append("".join(out["text"]))
            for key in ("text/plain", "text/html", "text/markdown"):
                if key in out.get("data", {}):
                    outputs.append("".join(out["data"][key]))
    return markdown, code, "\n".join(outputs)


def test_registry_is_well_formed():
    assert len(NAMES) == len(set(NAMES)), "two reruns share a name"
    for rerun in reruns.registry():
        assert re.fullmatch(r"\d\d-[a-z0-9-]+", rerun.name), rerun.name
        assert rerun.name[:2] == rerun.chapter[:2], f"{rerun.name} is printed by {rerun.chapter}"
        assert (BOOK / f"{rerun.chapter}.ipynb").is_file(), rerun.chapter
        function = reruns._function(rerun.function)
        inspect.signature(function).bind(**rerun.params)  # the parameters fit the function


def test_every_file_belongs_to_a_registered_rerun():
    stored = sorted(p.stem for p in DATA.glob("*.json")) if DATA.is_dir() else []
    assert sorted(NAMES) == stored, "run `make reruns` for a new rerun, delete files of removed ones"


@pytest.mark.parametrize("name", NAMES)
def test_stored_file_matches_its_definition(name):
    rerun = reruns.by_name(name)
    record = reruns.load(name)
    missing = [field for field in reruns.PROVENANCE_FIELDS if field not in record]
    assert not missing, f"{name}: provenance fields missing: {missing}"
    # Parameters changed since the file was written: the stored numbers are stale.
    assert record["function"] == rerun.function
    assert record["params"] == reruns._rounded(rerun.params), f"{name}: rerun `make reruns RERUNS={name}`"
    assert record["seeds"] == reruns._rounded(rerun.params["seeds"])
    assert record["command"] == f"make reruns RERUNS={name}"
    assert record["kernel_set"] == "standard", f"{name} was not written under the numeric envelope"
    assert record["results"], f"{name} stores no results"


@pytest.mark.parametrize("name", NAMES)
def test_chapter_prints_its_rerun(name):
    rerun = reruns.by_name(name)
    _, code, _ = _markdown_and_outputs(rerun.chapter)
    assert re.search(rf"""load\(\s*["']{re.escape(name)}["']\s*\)""", code), \
        f"{rerun.chapter} never loads {name}"


NUMBER = re.compile(r"(?<![\w.^{])\d+\.\d+(?![\w.])")
LABEL = re.compile(r"\b(?:[Ff]igures?|[Ff]ig\.|[Ss]ections?|[Tt]ables?|[Dd]efinition|[Tt]heorem|"
                   r"[Ee]xercises?|[Ee]quations?|[Ee]q\.|[Cc]hapters?)\s+\d+\.\d+")


@pytest.mark.parametrize("chapter", sorted({r.chapter for r in reruns.registry()}))
def test_prose_quoting_a_rerun_uses_printed_numbers(chapter):
    """Every decimal number in a paragraph that cites a rerun is printed somewhere
    in the notebook's outputs (where the reruns' files are printed)."""
    markdown, _, outputs = _markdown_and_outputs(chapter)
    printed = set(NUMBER.findall(outputs))
    absent = []
    for text in markdown:
        for paragraph in re.split(r"\n\s*\n", text):
            if "rerun" not in paragraph.lower():
                continue
            prose = re.sub(r"\$[^$]*\$", "", paragraph)  # numbers inside math are symbols/parameters
            prose = LABEL.sub("", prose)  # "Figure 7.5", "section 6.2": labels, not results
            absent += [n for n in NUMBER.findall(prose) if n not in printed]
    assert not absent, f"{chapter}: numbers quoted near a rerun but printed nowhere: {absent}"


def _close(a, b, rtol):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], rtol) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y, rtol) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return rtol is None or math.isclose(a, b, rel_tol=rtol, abs_tol=1e-12)
    return a == b or (rtol is None and isinstance(a, (int, float)) and isinstance(b, (int, float)))


@pytest.mark.skipif(not NAMES, reason="no rerun registered")
def test_cheapest_rerun_reproduces_its_stored_file():
    """The pipeline end to end: the cheapest rerun, run now, gives its file's numbers
    to the stored digits under the standard kernel set. Under another kernel set
    (make test-kernels) the numbers of a training run may move, so there only the
    record's structure (keys, lengths, types) is compared."""
    cheapest = min(reruns.registry(), key=lambda r: r.minutes)
    fresh = reruns.run(cheapest.name)
    stored = reruns.load(cheapest.name)
    standard = os.environ.get("OPTBOOK_KERNEL_SET") == "standard"
    assert _close(fresh["results"], stored["results"], 1e-9 if standard else None), \
        f"{cheapest.name} no longer reproduces: rerun `make reruns RERUNS={cheapest.name}`"
    assert np.isfinite(fresh["seconds"])
