"""Binder must install the versions that `make book` and CI install.

binder/requirements.txt is read the way pip reads it (``-r`` and ``-c``
lines followed, relative to the file that names them), and every pin of
requirements.txt and constraints.txt must appear in it at the same version.
A local label is allowed on Binder's side only (``2.13.0+cpu`` for
``2.13.0``): PyTorch's CPU index serves it there.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)")
SUPPORTED_PYTHONS = {"3.11", "3.12", "3.13"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path, seen: set[Path] | None = None) -> dict[str, str]:
    """Name -> version of every ``==`` pin in ``path`` and the files it includes."""
    seen = set() if seen is None else seen
    path = path.resolve()
    if path in seen:
        return {}
    seen.add(path)
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        include = re.match(r"^\s*(?:-r|-c|--requirement|--constraint)\s+(\S+)", line)
        if include:
            found.update(pins(path.parent / include.group(1), seen))
            continue
        match = PIN.match(line)
        if match:
            found[canonical(match.group(1))] = match.group(2)
    return found


def test_pin_reader_follows_includes(tmp_path):
    (tmp_path / "base.txt").write_text("numpy==2.4.6\n# comment\nsix==1.17.0 ; python_version < '4'\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "top.txt").write_text("-r ../base.txt\n--extra-index-url x\nTorch==2.13.0+cpu\n")
    assert pins(tmp_path / "sub" / "top.txt") == {
        "numpy": "2.4.6", "six": "1.17.0", "torch": "2.13.0+cpu"}


def test_binder_installs_every_project_pin_at_the_same_version():
    project = pins(ROOT / "requirements.txt") | pins(ROOT / "constraints.txt")
    binder = pins(ROOT / "binder" / "requirements.txt")
    assert len(project) > 100, "constraints.txt should freeze the whole environment"
    missing = sorted(set(project) - set(binder))
    different = sorted(f"{name}: project {project[name]}, binder {binder[name]}"
                       for name in set(project) & set(binder)
                       if binder[name].split("+")[0] != project[name])
    assert not missing, f"binder/requirements.txt does not pin: {missing}"
    assert not different, f"binder/requirements.txt pins other versions: {different}"


def test_binder_python_is_a_supported_one():
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    match = re.fullmatch(r"python-(\d+\.\d+)", runtime)
    assert match, f"binder/runtime.txt should read python-X.Y, not {runtime!r}"
    assert match.group(1) in SUPPORTED_PYTHONS


@pytest.mark.parametrize("name", ["torch", "numpy", "jupyterlab", "ipywidgets"])
def test_binder_gets_the_packages_the_chapters_import(name):
    assert canonical(name) in pins(ROOT / "binder" / "requirements.txt")
