"""What the browser tests share: Debian's chromium, launched once per module by Playwright."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Playwright's own browser download is impossible offline; the tests drive
# the distribution's chromium (`make chromium` installs it).
CHROMIUM = os.environ.get("OPTBOOK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (make chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
