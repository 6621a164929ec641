"""Stored reruns: the evidence a chapter quotes but cannot afford to compute.

A claim in the book must survive other seeds and ten times the steps, but a
notebook has about a minute to run. So the longer checks are *reruns*: each is
one function of a chapter's experiments module, declared in that module's
``RERUNS`` tuple with the parameters it is called with (:func:`registry`
collects them; this module imports no chapter at import time). ``make reruns`` (``scripts/reruns.py``) calls
them under the numeric envelope and writes each result, with its provenance,
to ``book/data/reruns/<name>.json``; the notebook loads that file with
:func:`load` and prints it next to the claim, so the reader sees the numbers
and nbval guards the printing. ``tests/test_reruns.py`` checks every file
against this registry (same function, same parameters, provenance complete)
and reruns the cheapest one end to end.

To add one: write the function in the chapter's module (keyword arguments in,
a JSON-able dict out: numbers, lists, nested dicts), add a :class:`Rerun` to
that module's ``RERUNS = (...)`` with ``seeds`` and ``steps`` among its
parameters, run ``make reruns RERUNS=<name>``, and print ``load("<name>")``
in the notebook.
"""
from __future__ import annotations

import dataclasses
import datetime
import importlib
import json
import math
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

__all__ = ["Rerun", "registry", "by_name", "run", "write", "load", "data_dir",
           "PROVENANCE_FIELDS"]

DIGITS = 6  # significant digits stored: more than any printed claim uses

PROVENANCE_FIELDS = ("command", "function", "params", "seeds", "steps", "python",
                     "numpy", "torch", "optbook_commit", "kernel_set", "machine",
                     "created", "seconds")


@dataclasses.dataclass(frozen=True)
class Rerun:
    """One stored rerun.

    name: file stem, ``<chapter number>-<what>``, e.g. ``05-comparison-1500-steps``.
    chapter: the notebook (stem) that prints it.
    claim: one sentence: what the rerun checks.
    function: ``module:function`` under ``optbook.experiments`` (the module
        whose ``RERUNS`` declares it).
    params: keyword arguments of the function; must hold ``seeds`` and ``steps``.
    minutes: rough cost on one core, for ``scripts/reruns.py --list``.
    """

    name: str
    chapter: str
    claim: str
    function: str
    params: dict
    minutes: float

    def __post_init__(self):
        missing = {"seeds", "steps"} - set(self.params)
        if missing:
            raise ValueError(f"rerun {self.name!r}: params must include {sorted(missing)}")


# The chapters' experiment modules, in book order; each may declare RERUNS.
CHAPTER_MODULES = ("foundations", "sgd", "momentum", "adaptive", "adam", "descendants",
                   "schedules", "warmup", "stability", "warmup_causes", "lr_finder",
                   "decay_and_clipping", "training_runs", "debugging", "matrix", "matrix_network",
                   "distributed")


def registry() -> tuple[Rerun, ...]:
    """Every declared rerun, in book order. Parameters are written out in full
    in the declarations, so that a change of parameters without a new run is
    caught by the tests (the stored file's parameters no longer match)."""
    found = []
    for module in CHAPTER_MODULES:
        found += getattr(importlib.import_module(f"optbook.experiments.{module}"), "RERUNS", ())
    return tuple(found)


def by_name(name: str) -> Rerun:
    for rerun in registry():
        if rerun.name == name:
            return rerun
    known = ", ".join(r.name for r in registry()) or "none"
    raise KeyError(f"no rerun named {name!r}; registered: {known}")


def data_dir() -> Path:
    """``book/data/reruns`` of the checkout optbook is installed from, else
    ``data/reruns`` below the working directory (a notebook runs in book/)."""
    root = Path(__file__).resolve().parents[3]  # code/optbook/experiments/ -> checkout
    if (root / "book").is_dir():
        return root / "book" / "data" / "reruns"
    return Path.cwd() / "data" / "reruns"


def _function(path: str):
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(f"optbook.experiments.{module}"), attribute)


def _rounded(value: Any) -> Any:
    """JSON-able copy with floats to DIGITS significant digits; NaN/inf as strings."""
    if isinstance(value, dict):
        return {str(k): _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    if hasattr(value, "tolist"):  # NumPy arrays and scalars, torch tensors
        return _rounded(value.tolist())
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return float(f"{value:.{DIGITS}g}")
    raise TypeError(f"a rerun returned {type(value).__name__}, which is not JSON-able")


def _commit() -> str:
    root = Path(__file__).resolve().parents[3]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "code"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+uncommitted changes in code/" if dirty else "")


def run(name: str) -> dict:
    """Call the rerun's function and return the record :func:`write` stores."""
    import numpy
    import torch

    rerun = by_name(name)
    start = time.perf_counter()
    results = _function(rerun.function)(**rerun.params)
    seconds = time.perf_counter() - start
    return {
        "name": rerun.name,
        "chapter": rerun.chapter,
        "claim": rerun.claim,
        "command": f"make reruns RERUNS={rerun.name}",
        "function": rerun.function,
        "params": _rounded(rerun.params),
        "seeds": _rounded(rerun.params["seeds"]),
        "steps": _rounded(rerun.params["steps"]),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "optbook_commit": _commit(),
        "kernel_set": os.environ.get("OPTBOOK_KERNEL_SET", "none (run outside the envelope)"),
        "machine": platform.machine(),
        "created": datetime.date.today().isoformat(),
        "seconds": round(seconds, 1),
        "results": _rounded(results),
    }


def write(record: dict, directory: Path | None = None) -> Path:
    directory = directory or data_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{record['name']}.json"
    path.write_text(json.dumps(record, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    return path


def load(name: str) -> dict:
    """The stored record of rerun ``name`` (its numbers are in ``["results"]``)."""
    path = data_dir() / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `make reruns RERUNS={name}` "
                                "in the book's checkout")
    return json.loads(path.read_text())
