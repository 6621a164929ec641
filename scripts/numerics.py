"""The numeric envelope (numerics.env): read it, apply it, report the kernels in use.

Every stored number of the book is produced and checked under the variables
in ``numerics.env``; see the comments there for what each one pins and why.
This module is the one reader of that file:

* the Makefile exports ``python3 scripts/numerics.py --make`` (and
  ``--make --alternate`` for ``make test-kernels``);
* ``conftest.py`` (repository root) applies :func:`envelope` to every pytest
  run before NumPy or torch is imported, so nbval's kernels inherit it;
* ``scripts/execute_notebooks.py`` and ``scripts/reruns.py`` apply it before
  starting kernels or importing torch.

``python3 scripts/numerics.py`` prints the envelope for this machine;
``--kernels`` also imports NumPy and torch and prints the kernels they
actually chose (``make test`` prints this at the start of each stage that
compares numbers).

Standard library only at import time: the Makefile runs this with the system
Python before the venv exists.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
from pathlib import Path

ENV_FILE = Path(__file__).resolve().parent.parent / "numerics.env"

# The kernel sets a caller can ask for; OPTBOOK_KERNEL_SET names one.
STANDARD = "standard"
ALTERNATE = "alternate"
KERNEL_SET_VARIABLE = "OPTBOOK_KERNEL_SET"


def sections(path: Path = ENV_FILE) -> dict[str, dict[str, str]]:
    """The file's sections, each a dict NAME -> VALUE, in file order."""
    result: dict[str, dict[str, str]] = {}
    current = None
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = result.setdefault(line[1:-1].strip(), {})
            continue
        name, sep, value = line.partition("=")
        if current is None or not sep or not name.strip().isidentifier():
            raise ValueError(f"{path}:{number}: expected NAME=VALUE inside a [section], got {raw!r}")
        current[name.strip()] = value.strip()
    return result


def is_x86_64(machine: str | None = None) -> bool:
    return (machine or platform.machine()).lower() in ("x86_64", "amd64")


def envelope(kernel_set: str | None = None, machine: str | None = None) -> dict[str, str]:
    """The variables to set on this machine for the given kernel set.

    ``kernel_set`` defaults to the environment's OPTBOOK_KERNEL_SET, else
    "standard". Off x86-64 only the [all] section applies (plus the name of
    the kernel set): there is no AVX2 to pin, see the README's
    "Reproducibility".
    """
    kernel_set = kernel_set or os.environ.get(KERNEL_SET_VARIABLE) or STANDARD
    if kernel_set not in (STANDARD, ALTERNATE):
        raise ValueError(f"{KERNEL_SET_VARIABLE} must be {STANDARD!r} or {ALTERNATE!r}, got {kernel_set!r}")
    table = sections()
    result = dict(table["all"])
    if is_x86_64(machine):
        result.update(table["x86_64"])
        if kernel_set == ALTERNATE:
            result.update(table["x86_64 alternate"])
    result[KERNEL_SET_VARIABLE] = kernel_set
    return result


def kernel_variables() -> set[str]:
    """Names that choose torch's and NumPy's CPU kernels, for callers that
    want the machine's own kernels back (benchmarks). OPENBLAS_* is left
    out: the workplace's machines set OPENBLAS_CORETYPE themselves."""
    table = sections()
    names = set(table["x86_64"]) | set(table["x86_64 alternate"])
    return {name for name in names if not name.startswith("OPENBLAS_")}


def mismatches(env: dict[str, str] | None = None, kernel_set: str | None = None) -> dict[str, tuple]:
    """NAME -> (wanted, found) for every variable of the envelope that ``env``
    (default: os.environ) does not hold."""
    env = os.environ if env is None else env
    return {name: (value, env.get(name))
            for name, value in envelope(kernel_set).items() if env.get(name) != value}


def active_kernels() -> dict[str, str]:
    """What NumPy, OpenBLAS and torch actually chose in this process."""
    import ctypes
    import glob

    import numpy
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    report = {"machine": platform.machine(), "numpy": numpy.__version__}
    targets = [t for t in __cpu_dispatch__ if __cpu_features__.get(t)]
    report["numpy SIMD dispatch"] = " ".join(targets) or "baseline only"
    libs = glob.glob(os.path.join(os.path.dirname(numpy.__file__) + ".libs", "*openblas*"))
    report["numpy BLAS core"] = "unknown"
    for lib in libs:
        handle = ctypes.CDLL(lib)
        for symbol in ("scipy_openblas_get_corename64_", "openblas_get_corename"):
            if hasattr(handle, symbol):
                function = getattr(handle, symbol)
                function.restype = ctypes.c_char_p
                report["numpy BLAS core"] = function().decode()
                break
    try:
        import torch
    except ImportError:
        report["torch"] = "not installed"
    else:
        report["torch"] = torch.__version__
        report["torch CPU capability"] = torch.backends.cpu.get_cpu_capability()
        report["torch threads"] = str(torch.get_num_threads())
    return report


def make_assignments(kernel_set: str) -> str:
    """``NAME=VALUE`` words for the Makefile, spaces inside a value as '~'."""
    return " ".join(f"{name}={value.replace(' ', '~')}"
                    for name, value in envelope(kernel_set).items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", choices=(STANDARD, ALTERNATE), default=None,
                        help="kernel set (default: $OPTBOOK_KERNEL_SET, else standard); "
                             "alternate is the second one, of make test-kernels")
    parser.add_argument("--make", action="store_true", help="print NAME=VALUE words for the Makefile")
    parser.add_argument("--shell", action="store_true",
                        help="print export lines for a POSIX shell: eval \"$(python3 scripts/numerics.py --shell)\"")
    parser.add_argument("--kernels", action="store_true",
                        help="also import NumPy and torch and print the kernels they chose")
    args = parser.parse_args(argv)
    kernel_set = args.set or os.environ.get(KERNEL_SET_VARIABLE) or STANDARD
    if args.make:
        print(make_assignments(kernel_set))
        return 0
    if args.shell:
        for name, value in envelope(kernel_set).items():
            print(f"export {name}={shlex.quote(value)}")
        return 0
    print(f"numeric envelope ({kernel_set} kernel set, {platform.machine()}):")
    for name, value in envelope(kernel_set).items():
        found = os.environ.get(name)
        flag = "" if found == value else f"   <- environment has {found!r}"
        print(f"  {name}={value}{flag}")
    if not is_x86_64():
        print("  (not x86-64: CPU kernels are not pinned; kernel-sensitive cells may differ)")
    if args.kernels:
        print("kernels in use:")
        for name, value in active_kernels().items():
            print(f"  {name}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
