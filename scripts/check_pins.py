"""Check that the pinned dependencies install on a reader's machine, not only on this one.

``make`` builds its venv with whatever pip finds: on a machine that keeps
wheels of its own (a wheel folder in ``PIP_FIND_LINKS``, a mirror in pip's
config file) a pin can be satisfied by a file no public index serves, such as
torch's local version ``2.13.0+cpu``. A reader then meets
``ResolutionImpossible``. This check looks at the pins as a plain pip on a
plain index sees them (requirements.txt with tests/requirements.txt, under
constraints.txt), for every supported Python, and fails on:

* a pin with a local version label (``+cpu``): public indexes do not serve it
  under that name;
* a torch pin with no wheel on the index for a supported Python on Linux
  x86-64 (wheels for Linux arm64 and macOS arm64 are reported, not required);
* a set that does not resolve on one of the supported Pythons;
* a resolved package whose ``Requires-Python`` leaves out the first release
  of a supported version (soupsieve 3.0.2 and later want 3.11.5; Debian 12
  ships 3.11.2), which the interpreter at hand may be too new to notice.

How. torch is checked by the index's file list (PEP 691 JSON; nothing is
downloaded). Everything else is resolved, for each Python at the same time,
by ``pip --python pythonX.Y install --dry-run --ignore-installed --report``
with pip's configuration files switched off and ``PIP_FIND_LINKS`` removed
(``PIP_INDEX_URL``, if you set one, is kept: it names *your* index). In that
resolution torch is a stand-in: a metadata-only wheel ``torch 2.13.0+cpu``
whose dependencies are those the installed torch declares, which is what a
reader who takes PyTorch's CPU build resolves. Resolving PyPI's torch itself
would mean downloading its CUDA wheels, gigabytes for each Python, wherever
an index does not serve wheel metadata on its own. Nothing is installed.
Interpreters are looked up as ``pythonX.Y`` on PATH and under pyenv.

Usage::

    .venv/bin/python scripts/check_pins.py            # 3.11, 3.12, 3.13
    .venv/bin/python scripts/check_pins.py 3.12       # one version
    .venv/bin/python scripts/check_pins.py --which 3.12   # the interpreter it would use

Exit status 1 on any failure; a supported Python that is not installed fails
too, unless ``--allow-missing`` is given (for machines that have only one).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import parse_wheel_filename

ROOT = Path(__file__).resolve().parent.parent
# The book's requirements, the unit tests' oracles (installed with them by make
# setup), and the frozen constraints both are resolved under.
REQUIREMENTS = (ROOT / "requirements.txt", ROOT / "tests" / "requirements.txt")
CONSTRAINTS = ROOT / "constraints.txt"
PIN_FILES = (*REQUIREMENTS, CONSTRAINTS)
SUPPORTED = ("3.11", "3.12", "3.13")
PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)")
# Platform tags that a torch wheel must (Linux x86-64) or may carry.
TORCH_PLATFORMS = {"Linux x86-64": "manylinux", "Linux arm64": "aarch64", "macOS arm64": "macosx"}
REQUIRED_PLATFORM = "Linux x86-64"


def local_version_pins(path: Path) -> list[str]:
    """Lines of ``path`` that pin a version with a local label (``==1.0+cpu``)."""
    bad = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = PIN.match(line)
        if match and "+" in match.group(2):
            bad.append(f"{path.name}:{number}: {line.strip()}")
    return bad


def pinned_version(name: str) -> str:
    for line in PIN_FILES[0].read_text().splitlines():
        match = PIN.match(line)
        if match and match.group(1).lower() == name:
            return match.group(2)
    raise SystemExit(f"check_pins: requirements.txt pins no {name}")


def find_python(version: str) -> str | None:
    """An interpreter for ``version`` (e.g. "3.12"): pythonX.Y on PATH, else pyenv's.

    pyenv's shims are passed over: a shim for a version that is installed
    but not selected answers "command not found".
    """
    search_path = os.pathsep.join(part for part in os.environ.get("PATH", "").split(os.pathsep)
                                  if not part.rstrip("/").endswith("shims"))
    found = shutil.which(f"python{version}", path=search_path)
    if found:
        return found
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = sorted(pyenv_root.glob(f"versions/{version}.*/bin/python{version}"))
    return str(candidates[-1]) if candidates else None


def plain_pip_environment() -> dict[str, str]:
    """os.environ without what points pip at this machine's own wheels."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT", "PIP_NO_INDEX"}}
    env["PIP_CONFIG_FILE"] = os.devnull  # no /etc/pip.conf, /etc/xdg/pip, ~/.config/pip
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


# --- torch: the index's file list ---------------------------------------------

def torch_wheel_platforms(version: str, index: str) -> dict[str, set[str]]:
    """Python "3.12" -> the platforms (keys of TORCH_PLATFORMS) with a torch ``version`` wheel."""
    request = urllib.request.Request(f"{index.rstrip('/')}/torch/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        files = json.load(response)["files"]
    found: dict[str, set[str]] = {}
    for file in files:
        if not file["filename"].endswith(".whl") or file.get("yanked"):
            continue
        _, wheel_version, _, tags = parse_wheel_filename(file["filename"])
        if str(wheel_version) != version:
            continue
        for tag in tags:
            match = re.fullmatch(r"cp3(\d+)", tag.interpreter)
            for platform, marker in TORCH_PLATFORMS.items():
                if match and marker in tag.platform:
                    found.setdefault(f"3.{match.group(1)}", set()).add(platform)
    return found


def torch_stand_in(directory: Path, version: str) -> Path:
    """A metadata-only wheel ``torch {version}+cpu`` declaring the installed torch's dependencies."""
    requires = [r for r in metadata.requires("torch") or [] if "extra ==" not in r]
    name = f"torch-{version}+cpu.dist-info"
    lines = ["Metadata-Version: 2.1", "Name: torch", f"Version: {version}+cpu",
             f"Requires-Python: {metadata.metadata('torch')['Requires-Python'] or '>=3'}"]
    lines += [f"Requires-Dist: {requirement}" for requirement in requires]
    wheel = directory / f"torch-{version}+cpu-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(f"{name}/METADATA", "\n".join(lines) + "\n")
        archive.writestr(f"{name}/WHEEL", "Wheel-Version: 1.0\nGenerator: check_pins\n"
                                          "Root-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{name}/RECORD", "")
    return wheel


# --- everything else: pip's resolver --------------------------------------------

def start_resolution(python: str, stand_ins: Path, report: Path) -> subprocess.Popen:
    """Start resolving the pinned set for ``python``; pip writes ``report``."""
    command = [sys.executable, "-m", "pip", "--python", python, "install", "--dry-run",
               "--ignore-installed", "--quiet", "--report", str(report),
               "--find-links", str(stand_ins),
               *[arg for path in REQUIREMENTS for arg in ("-r", str(path))],
               "-c", str(CONSTRAINTS)]
    return subprocess.Popen(command, env=plain_pip_environment(), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def requires_python_admits(requires_python: str | None, version: str) -> bool:
    """Whether a Requires-Python specifier (None: any) admits ``version``."""
    return not requires_python or SpecifierSet(requires_python).contains(version)


def outcome(process: subprocess.Popen, report: Path, first_release: str) -> tuple[bool, str]:
    """(ok, summary or the end of pip's error) of a finished resolution.

    ``first_release`` ("3.12.0") is checked against every package's
    Requires-Python: the set must serve the whole minor version.
    """
    output, _ = process.communicate()
    if process.returncode != 0:
        lines = [line for line in output.splitlines()
                 if line.strip() and not line.startswith("WARNING: Location")]
        return False, "\n    ".join(lines[-12:])
    installed = json.loads(report.read_text())["install"]
    summary = f"{len(installed)} packages resolve"
    too_new = [f"{item['metadata']['name']}=={item['metadata']['version']} "
               f"(Requires-Python {item['metadata']['requires_python']})"
               for item in installed
               if not requires_python_admits(item["metadata"].get("requires_python"), first_release)]
    if too_new:
        return False, f"{summary}, but not on Python {first_release}: " + ", ".join(too_new)
    return True, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("versions", nargs="*", default=list(SUPPORTED),
                        help="Python versions to resolve for (default: %(default)s)")
    parser.add_argument("--allow-missing", action="store_true",
                        help="skip, rather than fail on, a Python that is not installed")
    parser.add_argument("--which", metavar="X.Y",
                        help="only print the interpreter used for Python X.Y (make test-pythons)")
    args = parser.parse_args(argv)
    if args.which:
        python = find_python(args.which)
        if python is None:
            print(f"check_pins: no interpreter for Python {args.which} "
                  "(pythonX.Y on PATH or under pyenv)", file=sys.stderr)
            return 1
        print(python)
        return 0

    failures = []
    for path in PIN_FILES:
        for line in local_version_pins(path):
            failures.append(f"local version label, served by no public index: {line}")
    for line in failures:
        print(f"FAIL {line}")

    start = time.monotonic()
    torch_version = pinned_version("torch")
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple")
    platforms = torch_wheel_platforms(torch_version, index)
    for version in args.versions:
        has = platforms.get(version, set())
        ok = REQUIRED_PLATFORM in has
        print(f"{'ok  ' if ok else 'FAIL'} torch {torch_version} wheels for Python {version}: "
              f"{', '.join(sorted(has)) or 'none'}")
        if not ok:
            failures.append(f"torch {torch_version} has no {REQUIRED_PLATFORM} wheel for Python {version}")

    running = {}
    with tempfile.TemporaryDirectory() as tmp:
        stand_ins = Path(tmp) / "stand-ins"
        stand_ins.mkdir()
        torch_stand_in(stand_ins, torch_version)
        for version in args.versions:
            python = find_python(version)
            if python is None:
                message = f"Python {version}: no interpreter found (pythonX.Y on PATH or pyenv)"
                print(("skip " if args.allow_missing else "FAIL ") + message)
                if not args.allow_missing:
                    failures.append(message)
                continue
            report = Path(tmp) / f"report-{version}.json"
            running[version] = (python, report, start_resolution(python, stand_ins, report))
        for version, (python, report, process) in running.items():
            ok, summary = outcome(process, report, f"{version}.0")
            print(f"{'ok  ' if ok else 'FAIL'} Python {version} ({python}): {summary}")
            if not ok:
                failures.append(f"Python {version} does not resolve")
    print(f"check_pins: {len(running)} resolution(s) in {time.monotonic() - start:.0f} s")
    if failures:
        print(f"check_pins: {len(failures)} problem(s); pins must resolve from a public index "
              "on every supported Python", file=sys.stderr)
        return 1
    print(f"check_pins: the pinned set resolves on Python {', '.join(args.versions)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
