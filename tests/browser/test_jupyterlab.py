"""In JupyterLab, after running the cell, a figure is a live kernel widget with continuous sliders.

Starts JupyterLab headless (no token, a free local port, a temporary folder)
on a scratch notebook holding one of the book's figures and a MyST
admonition, opens it in chromium, runs the cells, moves the β₁ slider with
the keyboard, and checks that the figure (an image the kernel redraws)
changes.  Also checks that jupyterlab-myst renders the ``{note}``
admonition instead of showing it as raw text.

Every chapter, as a reader opens it (the reader's notebook of
scripts/reader_notebooks.py, which Binder, ``make lab`` and the site's
download button serve): its rendered markdown shows no "⚠" citation and no
link JupyterLab cannot resolve ("Cross reference target was not found"),
every citation of the site's page as the same author-year text, every
{term} as its text, and the site's equation, definition and exercise
numbers in the site's order.  Chapter 3, run whole, shows its phase
diagram's (ηλ, β) plane in the kernel widget.  ``OPTBOOK_LAB_SOURCES=1``
opens the book's sources instead (what JupyterLab showed before the
reader's notebooks: these tests then fail).

Marked ``jupyterlab``: skipped where chromium or JupyterLab is missing unless
``OPTBOOK_REQUIRE_SITE=1`` (CI), where it must run.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import reader_notebooks  # noqa: E402

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


NEWTON_SCHULZ_CELL = "from optbook.experiments import matrix as MX\n\nMX.newton_schulz_explorer()"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


STATIC_FIGURE_CELL = ("import matplotlib.pyplot as plt\n"
                      "from optbook.figures import plotting\n"
                      "plotting.use_style()\n"
                      "fig, axes = plotting.subplots(1, 2, size='wide')\n"
                      "axes[0].plot([0, 1], label='a'); axes[0].legend(fontsize=8)\n"
                      "axes[1].plot([1, 0]); axes[1].set_xlabel('step')\n"
                      "fig.suptitle('a static figure')\n"
                      "plt.show()")


def _figures_notebook():
    """A notebook as the book stores it: a figure's output already in the file
    (untrusted when opened, so JupyterLab sanitizes its text/html), then a
    cell that draws one live."""
    import matplotlib

    matplotlib.use("Agg")
    from optbook.figures import plotting, responsive

    with plotting.style_context():
        fig, axes = plotting.subplots(1, 2, size="wide", pyplot=False)
        axes[0].plot([0, 1])
        fig.suptitle("a stored figure")
        html = responsive.figure_html(fig)
    # as plt.show() stores it: the <picture> alone, no second copy as image/png
    stored = nbformat.v4.new_code_cell("# a figure stored in the file", outputs=[
        nbformat.v4.new_output("display_data", data={
            "text/html": html, "text/plain": "<Figure size 900x340 with 2 Axes>"})])
    nb = nbformat.v4.new_notebook(cells=[stored, nbformat.v4.new_code_cell(STATIC_FIGURE_CELL)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lab")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(NOTE), nbformat.v4.new_code_cell(FIGURE_CELL)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "scratch.ipynb")
    nbformat.write(_figures_notebook(), folder / "figures.ipynb")
    ns = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(NEWTON_SCHULZ_CELL)])
    ns.metadata["kernelspec"] = nb.metadata["kernelspec"]
    nbformat.write(ns, folder / "newton_schulz.ipynb")
    if os.environ.get("OPTBOOK_LAB_SOURCES") == "1":
        for path in reader_notebooks.chapter_notebooks():
            (folder / path.name).write_bytes(path.read_bytes())
    else:
        reader_notebooks.write_reader_notebooks(folder)
    # every cell rendered, not only those in view (JupyterLab 4 renders a
    # long notebook lazily as it scrolls): the tests read the whole notebook
    settings = folder / ".config" / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    port = _free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(folder / ".config"),
           "JUPYTER_RUNTIME_DIR": str(folder / ".runtime")}
    proc = subprocess.Popen(
        [str(JUPYTER), "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         "--ServerApp.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
         f"--ServerApp.root_dir={folder}", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--LabApp.extension_manager=readonly", "--LabApp.expose_app_in_browser=True",
         "--allow-root"],
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


def _open_notebook(p, lab: str, name: str):
    """Chromium on a notebook of the test's JupyterLab, once its kernel is idle."""
    browser = p.chromium.launch(executable_path=CHROMIUM,
                                args=["--headless", "--no-sandbox", "--disable-gpu"])
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{lab}/lab/tree/{name}?reset")   # a fresh workspace: only this notebook open
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle'], "
                           ".jp-Toolbar-kernelStatus", timeout=120_000)
    return browser, page


def test_figure_is_a_live_widget_with_continuous_sliders_and_myst_renders(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser, page = _open_notebook(p, lab, "scratch.ipynb")
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


def test_static_figures_show_the_wide_rendering_in_jupyterlab(lab):
    """A figure's text/html (optbook.figures.responsive's <picture>) looks right
    in JupyterLab: stored in the file (untrusted: the sanitizer keeps the <img>
    and drops the <picture>) and drawn live by plt.show() (trusted), the reader
    sees the wide figure, whole, no wider than the output area."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser, page = _open_notebook(p, lab, "figures.ipynb")
        time.sleep(2)
        images = ".jp-OutputArea-output img"
        page.wait_for_selector(images, timeout=60_000)          # the stored one
        page.locator(".jp-Notebook .jp-Cell").nth(1).click()
        page.keyboard.press("Shift+Enter")
        page.wait_for_function(f"() => document.querySelectorAll('{images}').length >= 2",
                               timeout=180_000)
        page.wait_for_function(f"() => [...document.querySelectorAll('{images}')]"
                               ".every(i => i.complete && i.naturalWidth > 0)", timeout=60_000)
        shown = page.evaluate(f"""() => [...document.querySelectorAll('{images}')].map(i => ({{
            alt: i.alt, width: i.getBoundingClientRect().width, height: i.getBoundingClientRect().height,
            natural: i.naturalWidth, naturalHeight: i.naturalHeight,
            area: i.closest('.jp-OutputArea-output').getBoundingClientRect().width,
            picture: !!i.closest('picture')}}))""")
        page.screenshot(path=str(Path(os.environ.get("OPTBOOK_SCREENSHOT_DIR", "/tmp"))
                                 / "jupyterlab-static-figures.png"), full_page=True)
        browser.close()
    assert [s["alt"] for s in shown] == ["a stored figure", "a static figure"], shown
    for s in shown:
        assert 0 < s["width"] <= s["area"] + 1, s
        # the wide rendering (1800 px for a 9-inch figure), at its own aspect ratio
        assert s["natural"] == 1800, s
        assert abs(s["width"] / s["height"] - s["natural"] / s["naturalHeight"]) < 0.02, s
    assert shown[1]["picture"]                                  # trusted: the <picture> is kept


def test_newton_schulz_figure_is_live_in_jupyterlab(lab):
    """Chapter 5.3's scalar_map figure in JupyterLab: the kernel's widget (a preset
    menu linked to the coefficient sliders, k, the image and the readout) responds:
    choosing the classical cubic moves a to 1.5, redraws the image, and the readout
    gives the cubic's numbers (optbook.figures.scalar_map.readout_lines)."""
    from playwright.sync_api import sync_playwright

    from optbook.experiments import matrix as MX
    from optbook.figures import scalar_map as SM

    spec = MX.newton_schulz_explorer().spec
    cubic = SM.readout_lines(spec, *MX.CUBIC_COEFFICIENTS, 5)
    with sync_playwright() as p:
        browser, page = _open_notebook(p, lab, "newton_schulz.ipynb")
        time.sleep(2)
        page.locator(".jp-Notebook .jp-Cell").first.click()
        page.keyboard.press("Shift+Enter")
        menu = page.locator(".jupyter-widgets select").first
        menu.wait_for(timeout=180_000)
        image = page.locator(".jupyter-widgets img, .widget-image").first
        image.wait_for(timeout=60_000)
        before = image.get_attribute("src")
        readout = page.locator(".widget-html-content").last
        assert readout.inner_text().splitlines()[0] == \
            SM.readout_lines(spec, *MX.NS_COEFFICIENTS, 5)[0]
        menu.select_option(label="classical cubic")
        page.wait_for_function(
            "([sel, old]) => { const i = document.querySelector(sel); return i && i.src !== old; }",
            arg=[".jupyter-widgets img, .widget-image", before], timeout=60_000)
        page.wait_for_function("([sel, want]) => document.querySelectorAll(sel)[document"
                               ".querySelectorAll(sel).length - 1].innerText.includes(want)",
                               arg=[".widget-html-content", cubic[0]], timeout=60_000)
        assert readout.inner_text().splitlines() == cubic
        assert page.locator(".widget-readout").first.inner_text() == "1.5000"   # a
        browser.close()


# ---------------------------------------------------------------- every chapter

CHAPTERS = [p.name for p in reader_notebooks.chapter_notebooks()]
NUMBERED = re.compile(r"^(Definition|Theorem|Lemma|Proposition|Algorithm|Corollary|Exercise) [0-9.]+$")


def _site_page(name: str) -> dict:
    """What the built site prints on a chapter's page: citations, equation and item numbers."""
    import bs4

    # the English edition (_build/html/book/ holds only redirects to en/)
    site = Path(os.environ.get("OPTBOOK_SITE_DIR", ROOT / "_build" / "html" / "en"))
    page = site / "book" / name.replace(".ipynb", ".html")
    if not page.is_file():
        if REQUIRE:
            pytest.fail(f"no built site at {site}: run `make book` first")
        pytest.skip(f"no built site at {site}")
    soup = bs4.BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
    # a chapter page, not a redirect: every chapter cites something
    assert soup.select("span.bibtex-citation"), f"{page} is not a chapter page (a redirect?)"

    def text(node):
        return " ".join(node.get_text().split())

    return {"citations": [text(n) for n in soup.select("span.bibtex-citation")],
            "equations": [text(n).replace("#", "") for n in soup.select("span.eqno")],
            "numbered": [t for t in (text(n) for n in soup.select("span.caption-number"))
                         if NUMBERED.match(t)]}


READ_MARKDOWN = """() => {
  const cells = [...document.querySelectorAll('.jp-MarkdownCell')];
  const md = cells.map(c => c.querySelector('.myst, .jp-RenderedMarkdown')).filter(Boolean);
  const all = (sel) => md.flatMap(m => [...m.querySelectorAll(sel)]);
  return {
    cells: cells.length, rendered: md.length,
    text: md.map(m => m.textContent).join('\\n'),
    notFound: all('[title="Citation Not Found"]').map(e => e.innerText),
    dead: all('a[href="#"]').map(e => e.innerText),
    italics: all('em').map(e => e.innerText),
    equations: all('a[title="Link to this Equation"]').map(e => e.innerText.trim()),
    numbered: all('a[title^="Link to this "]').map(e => e.innerText.replace(/\\s+/g, ' ').trim()),
  };
}"""


def _terms(name: str) -> list[str]:
    """The text of every {term} role of a chapter's source."""
    out = []
    for text in reader_notebooks.page_markdown(ROOT / "book" / name):
        for m in reader_notebooks.ROLE.finditer(text):
            if m.group(1) == "term":
                explicit = reader_notebooks.EXPLICIT.match(m.group(2))
                out.append(" ".join((explicit.group(1) if explicit else m.group(2)).split()))
    return out


@pytest.fixture(scope="module")
def lab_page(lab):
    """One JupyterLab page for every chapter: each is opened, read and closed
    in turn (reloading JupyterLab per chapter would double the time)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{lab}/lab?reset")
        page.wait_for_function("() => !!window.jupyterapp", timeout=120_000)   # expose_app_in_browser
        page.evaluate("() => window.jupyterapp.started")
        yield page
        browser.close()


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_renders_citations_terms_and_the_sites_numbers(lab_page, name):
    site = _site_page(name)
    page = lab_page
    page.evaluate("() => window.jupyterapp.commands.execute('application:close-all')")
    page.wait_for_function("() => !document.querySelector('.jp-NotebookPanel')", timeout=60_000)
    page.evaluate("(path) => window.jupyterapp.commands.execute('docmanager:open', {path})", name)
    page.wait_for_selector(".jp-Notebook .jp-MarkdownCell", timeout=120_000)
    # every markdown cell rendered by jupyterlab-myst, cross-references resolved
    page.wait_for_function(
        "() => { const c = [...document.querySelectorAll('.jp-MarkdownCell')];"
        " return c.length > 0 && c.every(x => x.querySelector('.myst, .jp-RenderedMarkdown')); }",
        timeout=120_000)
    page.wait_for_timeout(1000)
    shown = page.evaluate(READ_MARKDOWN)
    assert shown["rendered"] == shown["cells"], shown["cells"]
    text = " ".join(shown["text"].split())
    assert shown["notFound"] == [] and "⚠" not in text, shown["notFound"][:5]
    # a link JupyterLab cannot resolve is href="#": hovering it says
    # "Cross reference target was not found"
    assert shown["dead"] == [], shown["dead"][:10]
    assert "Cross reference target was not found" not in text
    # each of the site's citations, in the site's words and order
    at = 0
    for citation in site["citations"]:
        found = text.find(citation, at)
        assert found >= 0, f"{citation!r} (after character {at}) not in the notebook's text"
        at = found + len(citation)
    italics = {" ".join(t.split()) for t in shown["italics"]}
    missing = [t for t in _terms(name) if t not in italics]
    assert missing == [], missing
    # numbers as on the site: equations (3.1), (3.2), ...; Definition 3.1, Exercise 3.2, ...
    assert shown["equations"] == site["equations"]
    numbered = [t for t in shown["numbered"] if NUMBERED.match(t)]
    assert numbered == site["numbered"]


PHASE_NOTEBOOK = "03-momentum.ipynb"
UNDER_DAMPED = (0xfb, 0xe3, 0xc8)      # the diagram's under-damped fill (optbook.figures.phase)
DIVERGES = (0xd9, 0xd9, 0xd9)


def test_phase_diagram_widget_draws_the_phase_plane(lab_page):
    """Chapter 3 run whole: the phase figure's kernel widget shows the (ηλ, β)
    plane (its under-damped and divergent regions) left of the paths, as the
    caption below it says, and moving β redraws it."""
    page = lab_page
    page.evaluate("() => window.jupyterapp.commands.execute('application:close-all')")
    page.wait_for_function("() => !document.querySelector('.jp-NotebookPanel')", timeout=60_000)
    page.evaluate("(path) => window.jupyterapp.commands.execute('docmanager:open', {path})",
                  PHASE_NOTEBOOK)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle'], "
                           ".jp-Toolbar-kernelStatus", timeout=120_000)
    time.sleep(2)                                       # the kernel connects
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    # the phase widget: the one whose sliders are η L and β
    widget = page.locator(".jupyter-widgets.widget-vbox", has=page.locator(
        ".widget-label", has_text="η L")).first
    widget.wait_for(timeout=600_000)
    image = widget.locator("img").first
    image.wait_for(timeout=60_000)
    measure = """(img) => new Promise(done => {
      const go = () => {
        const c = document.createElement('canvas');
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        const g = c.getContext('2d'); g.drawImage(img, 0, 0);
        const third = Math.floor(c.width / 3);
        const px = g.getImageData(0, 0, c.width, c.height).data;
        const near = (i, [r, gg, b]) => Math.abs(px[i] - r) <= 12 && Math.abs(px[i + 1] - gg) <= 12
                                       && Math.abs(px[i + 2] - b) <= 12;
        const count = {left: {under: 0, diverges: 0}, rest: {under: 0, diverges: 0}};
        for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++) {
          const i = 4 * (y * c.width + x), side = x < third ? count.left : count.rest;
          if (near(i, UNDER)) side.under++;
          if (near(i, DIVERGES)) side.diverges++;
        }
        done({w: c.width, h: c.height, src: img.src, ...count});
      };
      img.complete && img.naturalWidth ? go() : img.addEventListener('load', go, {once: true});
    })""".replace("UNDER", str(list(UNDER_DAMPED))).replace("DIVERGES", str(list(DIVERGES)))
    before = image.evaluate(measure)
    # move β with the keyboard: the figure is redrawn by the kernel
    handle = widget.locator(".widget-slider .noUi-handle, .widget-slider .slider-handle").nth(1)
    handle.focus()
    for _ in range(20):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("([img, old]) => img.src !== old",
                           arg=[image.element_handle(), before["src"]], timeout=120_000)
    after = image.evaluate(measure)
    for frame in (before, after):
        area = frame["w"] * frame["h"] / 3
        # the left third is the (ηλ, β) plane: a large under-damped region and a divergent one
        assert frame["left"]["under"] > 0.15 * area, frame
        assert frame["left"]["diverges"] > 0.03 * area, frame
        assert frame["rest"]["under"] < 0.01 * area, frame      # the paths have no such fill
