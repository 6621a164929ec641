"""Re-execute the book's notebooks in place, so their stored outputs match the code.

Usage (``make execute`` runs the first form)::

    .venv/bin/python scripts/execute_notebooks.py            # every book/*.ipynb
    .venv/bin/python scripts/execute_notebooks.py book/01-foundations.ipynb

The book is built from the outputs stored in the notebooks
(``execute_notebooks: "off"`` in _config.yml), and ``make test`` re-runs each
notebook with nbval and compares. This script is the one way those outputs
are produced, so that both runs see the same conditions:

* the kernel is ipykernel on *this* interpreter (the venv's python), whatever
  kernel specs the user has installed elsewhere;
* the environment is the numeric envelope of ``numerics.env`` (hash seed,
  one BLAS/OpenMP thread and, on x86-64, the AVX2 kernel set), whatever the
  caller's shell says, so that the outputs do not depend on the core count
  or on the CPU. nbval runs under the same file (Makefile, conftest.py).
  Random generators are seeded by the notebooks themselves;
* no widget state is saved (``store_widget_state=False``): saved state makes
  MyST-NB load the widget manager from a CDN, and the static HTML uses each
  widget's text/html twin instead;
* live widget views (``application/vnd.jupyter.widget-view+json``) are not
  stored: their model ids are random, and without saved state the model
  they point to does not exist when the file is opened. What stays is each
  widget's ``text/html`` static twin (and ``text/plain``), which is what the
  HTML book shows; running the cell brings the live widget back;
* no timing metadata is recorded, and volatile metadata is dropped, so a
  re-run that changes nothing changes no byte of the file.

Prints each notebook's wall time. A notebook whose cell raises is left
unchanged; the others are still run, and the exit status is then 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import NATIVE_KERNEL_NAME, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

import numerics

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"

KERNELSPEC = {
    "name": NATIVE_KERNEL_NAME,  # "python3"
    "display_name": "Python 3 (ipykernel)",
    "language": "python",
}

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

# Metadata that tools add and that would make the committed file change on
# every run or on every machine.
VOLATILE_NOTEBOOK_METADATA = ("widgets", "papermill", "vscode", "toc-autonumbering")
VOLATILE_CELL_METADATA = ("execution", "ExecuteTime", "papermill", "collapsed", "scrolled")


def this_interpreter_kernel() -> AsyncKernelManager:
    """A kernel manager that starts ipykernel on sys.executable.

    ``kernel_dirs=[]`` hides user and system kernel specs, so a ``python3``
    spec pointing to another Python cannot be picked up by accident.
    """
    specs = KernelSpecManager(kernel_dirs=[], ensure_native_kernel=True)
    return AsyncKernelManager(kernel_name=NATIVE_KERNEL_NAME, kernel_spec_manager=specs)


def normalize(nb: nbformat.NotebookNode) -> None:
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    for key in VOLATILE_NOTEBOOK_METADATA:
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)


def coalesce_streams(nb: nbformat.NotebookNode) -> None:
    """Merge consecutive stdout (or stderr) chunks of a cell into one output.

    How a cell's printing is cut into chunks depends on flush timing, so
    without this two identical runs can store differently split outputs.
    """
    for cell in nb.cells:
        merged = []
        for output in cell.get("outputs", []):
            if (output.get("output_type") == "stream" and merged
                    and merged[-1].get("output_type") == "stream"
                    and merged[-1]["name"] == output["name"]):
                merged[-1]["text"] += output["text"]
            else:
                merged.append(output)
        if "outputs" in cell:
            cell["outputs"] = merged


def drop_widget_views(nb: nbformat.NotebookNode) -> list[int]:
    """Remove live widget views from the outputs; return the code cells
    (counted from 1) whose widget had no static twin to fall back on."""
    bare = []
    code_cells = (c for c in nb.cells if c.cell_type == "code")
    for number, cell in enumerate(code_cells, start=1):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data:
                del data[WIDGET_VIEW]
                if "text/html" not in data:
                    bare.append(number)
    return bare


def execute(path: Path, timeout: int) -> float:
    nb = nbformat.read(path, as_version=4)
    normalize(nb)
    client = NotebookClient(
        nb,
        km=this_interpreter_kernel(),
        timeout=timeout,
        allow_errors=False,  # cells that must raise carry the tag raises-exception
        record_timing=False,
        store_widget_state=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute(cleanup_kc=True)  # shut the kernel down after each notebook
    elapsed = time.perf_counter() - start
    normalize(nb)
    coalesce_streams(nb)
    bare = drop_widget_views(nb)
    if bare:
        print(f"{path}: note: code cell(s) {bare} show a widget without a text/html "
              "static twin; the HTML book will show only its text/plain form")
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to run (default: every book/*.ipynb)")
    parser.add_argument("--timeout", type=int, default=600,
                        help="seconds allowed per cell (default: 600)")
    args = parser.parse_args(argv)

    paths = args.notebooks or sorted(BOOK.glob("*.ipynb"))
    if not paths:
        print(f"no notebooks in {BOOK}")
        return 0
    missing = [p for p in paths if not p.is_file()]
    if missing:
        print("no such notebook: " + ", ".join(map(str, missing)), file=sys.stderr)
        return 2

    os.environ.update(numerics.envelope())
    total = 0.0
    failed = []
    for path in paths:
        start = time.perf_counter()
        try:
            seconds = execute(path.resolve(), args.timeout)
        except Exception as exc:  # a failed notebook is left as it was
            failed.append(path)
            print(f"{path}: FAILED after {time.perf_counter() - start:.1f} s "
                  "(file left unchanged)", flush=True)
            print(f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            continue
        total += seconds
        print(f"{path}: {seconds:.1f} s", flush=True)
    done = len(paths) - len(failed)
    print(f"{done} notebook(s) executed in {total:.1f} s"
          + (f"; FAILED: {', '.join(map(str, failed))}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
