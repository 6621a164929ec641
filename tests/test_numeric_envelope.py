"""The numeric envelope (numerics.env, scripts/numerics.py, conftest.py) and the
kernel-sensitive cells: the envelope is what this process runs under, the
kernels it names are the ones torch and NumPy chose, and nbval compares a
tagged cell whole under the standard kernel set but only on its verdict lines
under the second one."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("numerics_under_test", ROOT / "scripts" / "numerics.py")
numerics = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(numerics)

X86 = numerics.is_x86_64()
KERNEL_SET = os.environ.get(numerics.KERNEL_SET_VARIABLE)


def test_file_has_the_three_sections_and_parses():
    table = numerics.sections()
    assert set(table) == {"all", "x86_64", "x86_64 alternate"}
    assert table["all"]["PYTHONHASHSEED"] == "0"
    assert {"ATEN_CPU_CAPABILITY", "MKL_CBWR", "NPY_DISABLE_CPU_FEATURES",
            "ONEDNN_MAX_CPU_ISA", "OPENBLAS_CORETYPE"} <= set(table["x86_64"])
    # the alternate set varies the same kernels, and differs in each it varies
    assert set(table["x86_64 alternate"]) <= set(table["x86_64"])
    assert table["x86_64 alternate"]["ATEN_CPU_CAPABILITY"] != table["x86_64"]["ATEN_CPU_CAPABILITY"]


def test_a_malformed_line_is_named(tmp_path):
    bad = tmp_path / "numerics.env"
    bad.write_text("[all]\nPYTHONHASHSEED 0\n")
    with pytest.raises(ValueError, match=r"numerics.env:2: expected NAME=VALUE"):
        numerics.sections(bad)


def test_envelope_by_machine():
    assert "ATEN_CPU_CAPABILITY" not in numerics.envelope("standard", machine="arm64")
    assert numerics.envelope("standard", machine="aarch64")["OMP_NUM_THREADS"] == "1"
    assert numerics.envelope("standard", machine="x86_64")["ATEN_CPU_CAPABILITY"] == "avx2"
    assert numerics.envelope("alternate", machine="x86_64")["ATEN_CPU_CAPABILITY"] == "default"
    with pytest.raises(ValueError, match="OPTBOOK_KERNEL_SET"):
        numerics.envelope("avx512")


def test_this_process_runs_inside_the_envelope():
    # conftest.py applied it before NumPy or torch was imported
    assert numerics.mismatches() == {}


@pytest.mark.skipif(not X86, reason="CPU kernels are pinned on x86-64 only")
def test_torch_and_numpy_use_the_kernels_the_envelope_names():
    kernels = numerics.active_kernels()
    if KERNEL_SET == "standard":
        # AVX2 unless the CPU lacks it (then torch falls back, never goes above)
        assert kernels["torch CPU capability"] in ("AVX2", "DEFAULT")
        assert "X86_V4" not in kernels["numpy SIMD dispatch"].split()
        assert "AVX512_ICL" not in kernels["numpy SIMD dispatch"].split()
    else:
        assert kernels["torch CPU capability"] == "DEFAULT"
        assert kernels["numpy SIMD dispatch"] == "baseline only"
    assert kernels["numpy BLAS core"] == "Haswell"
    assert kernels["torch threads"] == "1"


def test_make_exports_the_same_envelope():
    """The Makefile's exports override the caller's shell (a reader's CPU must
    not choose the kernels): ask make for the values with contrary ones set."""
    env = dict(os.environ, ATEN_CPU_CAPABILITY="avx512", NPY_DISABLE_CPU_FEATURES="",
               OMP_NUM_THREADS="8")
    for name in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "KERNEL_SET"):  # set under make test-kernels
        env.pop(name, None)
    out = subprocess.run(["make", "-s", "-p", "-n", "help"], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True).stdout
    exported = dict(re.findall(r"^(\w+) = (.*)$", out, re.M))
    for name, value in numerics.envelope("standard").items():
        assert exported.get(name) == value, name


# --- kernel-sensitive cells -------------------------------------------------

def _notebook(path: Path, cells: list[tuple[str, str, dict]]) -> None:
    """A notebook whose stored outputs are given: (source, stored stdout, metadata)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for number, (source, stored, metadata) in enumerate(cells, start=1):
        cell = nbformat.v4.new_code_cell(source, metadata=metadata, execution_count=number)
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored)]
        nb.cells.append(cell)
    nbformat.write(nb, path)


TAGGED = {"tags": ["kernel-sensitive"], "optbook": {"verdict": "^verdict:"}}


def _nbval(directory: Path, kernel_set: str) -> dict[str, str]:
    env = dict(os.environ, OPTBOOK_KERNEL_SET=kernel_set)
    env.pop("PYTEST_XDIST_WORKER", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", str(directory), "--nbval-current-env",
         "-p", "no:cacheprovider", "-p", "no:xdist", "-rA", "-q", f"--rootdir={ROOT}",
         "-c", str(ROOT / "pyproject.toml")],
        cwd=ROOT, env=env, capture_output=True, text=True)
    outcomes = {name: outcome for outcome, name in
                re.findall(r"^(PASSED|FAILED) \S*?(\w+)\.ipynb::Cell \d+", result.stdout, re.M)}
    if not outcomes:
        pytest.fail(f"nbval ran nothing:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")
    return outcomes


@pytest.fixture
def scratch_book():
    """A folder inside the checkout (so that pytest loads the root conftest.py
    for it, as for book/), in _build (ignored by git), removed afterwards."""
    import shutil
    import tempfile

    (ROOT / "_build").mkdir(exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="kernel-sensitive-", dir=ROOT / "_build"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.skipif(not X86, reason="the second kernel set exists on x86-64 only")
def test_tagged_cells_keep_their_verdict_under_the_second_kernel_set(scratch_book):
    tmp_path = scratch_book
    # Each notebook's cell prints "verdict: ok" and "detail: 2"; the stored
    # output differs from that in the detail, in the verdict, or not at all.
    source = 'print("verdict: ok")\nprint("detail: 2")'
    _notebook(tmp_path / "tagged_detail_moved.ipynb", [(source, "verdict: ok\ndetail: 1\n", TAGGED)])
    _notebook(tmp_path / "tagged_verdict_moved.ipynb", [(source, "verdict: no\ndetail: 2\n", TAGGED)])
    _notebook(tmp_path / "untagged_detail_moved.ipynb", [(source, "verdict: ok\ndetail: 1\n", {})])
    _notebook(tmp_path / "unchanged.ipynb", [(source, "verdict: ok\ndetail: 2\n", TAGGED)])
    alternate = _nbval(tmp_path, "alternate")
    assert alternate == {"tagged_detail_moved": "PASSED", "tagged_verdict_moved": "FAILED",
                         "untagged_detail_moved": "FAILED", "unchanged": "PASSED"}
    # under the standard set every cell is compared whole, tagged or not
    standard = _nbval(tmp_path, "standard")
    assert standard == {"tagged_detail_moved": "FAILED", "tagged_verdict_moved": "FAILED",
                        "untagged_detail_moved": "FAILED", "unchanged": "PASSED"}


def _book_cells():
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        for number, cell in enumerate(code):
            yield path.stem, number, cell


TAGGED_CELLS = [(name, number, cell) for name, number, cell in _book_cells()
                if "kernel-sensitive" in cell["metadata"].get("tags", [])]


@pytest.mark.parametrize("name, number, cell", TAGGED_CELLS,
                         ids=[f"{n}-cell{k}" for n, k, _ in TAGGED_CELLS])
def test_every_tagged_cell_has_a_verdict_that_its_output_shows(name, number, cell):
    """A verdict must select at least one stored line; a tagged cell with no
    verdict may only be a figure (no printed text to compare)."""
    texts = ["".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
             for o in cell.get("outputs", []) if o.get("output_type") == "stream"]
    verdict = cell["metadata"].get("optbook", {}).get("verdict")
    if verdict is None:
        assert not any(t.strip() for t in texts), \
            f"{name} cell {number} prints text but has no optbook.verdict"
        return
    pattern = re.compile(verdict)
    lines = [line for text in texts for line in text.splitlines() if pattern.search(line)]
    assert lines, f"{name} cell {number}: verdict {verdict!r} selects no stored line"
