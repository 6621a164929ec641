"""The licences page names every npm package whose code the site ships, with its licence.

The shipped packages are the ``dependencies`` of package.json (build tools
such as esbuild are ``devDependencies``: nothing of theirs reaches a page)
and everything they depend on, as package-lock.json records them; a new
dependency without a line on book/licenses.md fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def shipped_packages() -> dict[str, tuple[str, str]]:
    lock = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    manifest = json.loads((ROOT / "package.json").read_text())
    found: dict[str, tuple[str, str]] = {}

    def visit(name: str) -> None:
        entry = lock.get(f"node_modules/{name}")
        if entry is None or name in found:
            return
        found[name] = (entry["version"], entry.get("license", "?"))
        for dependency in entry.get("dependencies", {}):
            visit(dependency)

    for name in manifest.get("dependencies", {}):
        visit(name)
    return found


def notice_rows() -> dict[str, tuple[str, str]]:
    text = (ROOT / "book" / "licenses.md").read_text()
    rows = re.findall(r"^\|\s*([@\w./-]+)\s*\|\s*([\w.+-]+)\s*\|\s*([^|]+?)\s*\|$", text, re.M)
    return {name: (version, licence) for name, version, licence in rows}


def test_the_figures_and_the_math_are_among_the_shipped_packages():
    shipped = shipped_packages()
    assert "mathjax" in shipped and "d3" in shipped


def test_every_shipped_npm_package_is_noticed_with_its_version_and_licence():
    rows = notice_rows()
    wrong = {name: (expected, rows.get(name)) for name, expected in shipped_packages().items()
             if rows.get(name) != expected}
    assert not wrong, f"book/licenses.md is out of date (package: (lock, page)): {wrong}"
