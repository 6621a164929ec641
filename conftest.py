"""Every pytest run of this repository (unit tests, nbval, browser) runs inside
the numeric envelope of numerics.env, whoever starts it and whatever the
caller's shell says: a reader's CPU must not decide which kernels compute the
numbers that are compared with stored ones.

This file sits at the repository root so that pytest loads it both for
``pytest tests`` and for ``pytest --nbval book/``. It sets the variables
before any test module imports NumPy or torch; nbval's kernels and xdist's
workers are child processes and inherit them. If NumPy or torch was imported
earlier (by a plugin), the kernels are already chosen: then a mismatch is an
error, not a silent difference.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "optbook_numerics", Path(__file__).resolve().parent / "scripts" / "numerics.py")
numerics = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(numerics)

_too_late = [name for name in ("numpy", "torch") if name in sys.modules]
_wrong = numerics.mismatches()
if _too_late and _wrong:
    raise pytest.UsageError(
        f"{' and '.join(_too_late)} was imported before the numeric envelope could be "
        f"applied, and the environment differs from numerics.env in {sorted(_wrong)}. "
        "Run the tests through make (make test, make test-unit, make test-nbval), "
        "or export the envelope first: eval \"$(python3 scripts/numerics.py --shell)\".")
os.environ.update(numerics.envelope())


def pytest_report_header(config):
    kernel_set = os.environ[numerics.KERNEL_SET_VARIABLE]
    where = "x86-64, CPU kernels pinned" if numerics.is_x86_64() else \
        "not x86-64: CPU kernels not pinned, kernel-sensitive cells may differ"
    return f"numeric envelope: numerics.env, {kernel_set} kernel set ({where})"


# --- kernel-sensitive cells --------------------------------------------------
# A notebook cell whose printed numbers change with the CPU's kernels (an
# unstable run, a near-tie) carries the tag "kernel-sensitive" and, in its
# metadata, optbook.verdict: a regular expression selecting the lines the
# prose relies on. On x86-64 under the standard kernel set the envelope makes
# every cell reproducible, so nbval compares it whole. Under the second kernel
# set (make test-kernels), and off x86-64, only its verdict lines are
# compared; a tagged cell without a verdict (a figure of an unstable run) is
# then not compared at all.

KERNEL_SENSITIVE = "kernel-sensitive"


def _verdict_lines(outputs, pattern):
    lines = []
    for output in outputs:
        texts = [output.get("text", "")]
        texts += [output.get("data", {}).get("text/plain", "")]
        for text in texts:
            text = "".join(text) if isinstance(text, list) else text
            lines += [line for line in text.splitlines() if pattern and pattern.search(line)]
    import nbformat

    if not lines:
        return []
    return [nbformat.from_dict({"output_type": "stream", "name": "stdout",
                                "text": "\n".join(lines) + "\n"})]


def _compare_verdicts_only(item):
    import re

    meta = item.cell.metadata.get("optbook", {})
    pattern = re.compile(meta["verdict"]) if meta.get("verdict") else None
    original = item.compare_outputs

    def compare_outputs(test, ref, skip_compare=None):
        return original(_verdict_lines(test, pattern), _verdict_lines(ref, pattern), skip_compare)

    item.compare_outputs = compare_outputs


def pytest_collection_modifyitems(config, items):
    strict = (numerics.is_x86_64()
              and os.environ[numerics.KERNEL_SET_VARIABLE] == numerics.STANDARD)
    if strict:
        return
    for item in items:
        cell = getattr(item, "cell", None)
        if cell is not None and KERNEL_SENSITIVE in cell.metadata.get("tags", []):
            _compare_verdicts_only(item)
