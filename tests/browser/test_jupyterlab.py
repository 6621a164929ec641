"""In JupyterLab, after running the cell, a figure is a live kernel widget with continuous sliders.

Starts JupyterLab headless (no token, a free local port, a temporary folder)
on a scratch notebook holding one of the book's figures and a MyST
admonition, opens it in chromium, runs the cells, moves the β₁ slider with
the keyboard, and checks that the figure (an image the kernel redraws)
changes.  Also checks that jupyterlab-myst renders the ``{note}``
admonition instead of showing it as raw text.

Marked ``jupyterlab``: skipped where chromium or JupyterLab is missing unless
``OPTBOOK_REQUIRE_SITE=1`` (CI), where it must run.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

CHROMIUM = os.environ.get("OPTBOOK_CHROMIUM", "/usr/bin/chromium")
REQUIRE = os.environ.get("OPTBOOK_REQUIRE_SITE") == "1"
JUPYTER = Path(sys.executable).with_name("jupyter-lab")

pytestmark = pytest.mark.jupyterlab

if not (Path(CHROMIUM).exists() and JUPYTER.exists()):
    if REQUIRE:
        pytest.fail(f"need {CHROMIUM} and {JUPYTER} for the JupyterLab test", pytrace=False)
    pytest.skip("no chromium or JupyterLab here", allow_module_level=True)

NOTE = "```{note}\nThis admonition must render as a box.\n```"
FIGURE_CELL = "from optbook.experiments import adam as A\n\nA.adam_betas_figure(steps=40)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lab")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(NOTE), nbformat.v4.new_code_cell(FIGURE_CELL)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "scratch.ipynb")
    port = _free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(folder / ".config"),
           "JUPYTER_RUNTIME_DIR": str(folder / ".runtime")}
    proc = subprocess.Popen(
        [str(JUPYTER), "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         "--ServerApp.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
         f"--ServerApp.root_dir={folder}", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--LabApp.extension_manager=readonly", "--allow-root"],
        cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/api/status", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.terminate()
        pytest.fail("JupyterLab did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_figure_is_a_live_widget_with_continuous_sliders_and_myst_renders(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{lab}/lab/tree/scratch.ipynb")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle'], "
                               ".jp-Toolbar-kernelStatus", timeout=120_000)
        time.sleep(2)                                   # the kernel connects
        # run every cell: Run > Run All Cells
        page.locator(".jp-Notebook").click()
        page.keyboard.press("Escape")
        page.evaluate("() => window.jupyterapp && window.jupyterapp.commands.execute('notebook:run-all-cells')")
        if not page.evaluate("() => !!window.jupyterapp"):
            page.locator(".jp-Notebook .jp-Cell").first.click()
            for _ in range(2):
                page.keyboard.press("Shift+Enter")
        slider = page.locator(".widget-slider .noUi-handle, .widget-slider .slider-handle, "
                              ".jupyter-widgets .noUi-handle").first
        slider.wait_for(timeout=180_000)
        image = page.locator(".jupyter-widgets img, .widget-image").first
        image.wait_for(timeout=60_000)
        before = image.get_attribute("src")
        readouts = page.locator(".widget-readout")
        assert readouts.count() >= 3                     # η, β₁, β₂
        # β₁ is the second slider; move it with the keyboard, as a reader would
        handle = page.locator(".widget-slider .noUi-handle").nth(1)
        handle.focus()
        shown = readouts.nth(1).inner_text()
        for _ in range(15):
            page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "([sel, old]) => { const i = document.querySelector(sel); return i && i.src !== old; }",
            arg=[".jupyter-widgets img, .widget-image", before], timeout=60_000)
        assert readouts.nth(1).inner_text() != shown
        # MyST in JupyterLab: the note is a rendered admonition, not ```{note} text
        markdown = page.locator(".jp-MarkdownCell").first.inner_text()
        assert "```" not in markdown and "{note}" not in markdown
        assert "This admonition must render as a box." in markdown
        browser.close()
