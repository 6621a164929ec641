"""Sphinx extension that makes the built book self-contained.

Loaded by ``_config.yml`` (``sphinx.local_extensions: {book_site: scripts}``).

* MathJax 3 is served by the site itself. ``make book`` installs the npm
  package ``mathjax`` (pinned in package.json / package-lock.json) into
  ``node_modules``; after a successful HTML build this extension copies the
  parts the pages can load into ``_static/mathjax`` and ``mathjax_path``
  points there. No page asks a CDN for it.
* The interactive figures' runtime, ``book/_static/optbook-figures.js``, is
  built from ``js/`` by ``npm run build`` (esbuild; d3 from npm, pinned in
  package-lock.json) and is not committed.  The build stops with a clear
  message if it is missing: without it every figure would be a still image.
  It is copied into the site after every build, also one with no page to
  rebuild (Sphinx then copies no static file).
* Every top-level ``.css``/``.js`` file in ``book/_static`` is added to every
  page (sorted, so the order is stable). Jupyter Book does this only for a
  ``_static`` folder at the book root; ours lives in ``book/``. Files in
  sub-folders are copied but not linked.
* Citations use round brackets, "Kingma and Ba (2015)" and "(Kingma and
  Ba, 2015)": the referencing style ``author_year_round`` registered here
  (sphinxcontrib-bibtex's own ``author_year`` uses square brackets).
* sphinx-thebe (loaded by Jupyter Book whatever the config says) is removed
  from the pages: with ``launch_buttons.thebe: false`` it never runs, but it
  writes a CDN address for thebe into every page. Live code is offered
  through Binder/Colab/JupyterLab instead.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinxcontrib.bibtex.plugin import register_plugin
from sphinxcontrib.bibtex.style.referencing import BracketStyle
from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle

MATHJAX_PACKAGE = Path("node_modules") / "mathjax" / "es5"
# tex-svg.js is the entry point (TeX in, SVG out, fonts embedded in the JS).
# The folders hold what it loads on demand: TeX extensions through
# `autoload` (input/), the context menu (ui/), accessibility and speech
# (a11y/, sre/), and the other renderer a reader can pick in the menu
# (output/). The other combined bundles, and latest.js (which fetches
# MathJax from a CDN), are left out.
MATHJAX_PARTS = ("tex-svg.js", "input", "output", "ui", "a11y", "adaptors", "sre")
STATIC_DIR = Path("book") / "_static"
FIGURE_RUNTIME = STATIC_DIR / "optbook-figures.js"


def _round() -> BracketStyle:
    return BracketStyle(left="(", right=")")


@dataclasses.dataclass
class RoundAuthorYearStyle(AuthorYearReferenceStyle):
    bracket_parenthetical: BracketStyle = dataclasses.field(default_factory=_round)
    bracket_textual: BracketStyle = dataclasses.field(default_factory=_round)
    bracket_author: BracketStyle = dataclasses.field(default_factory=_round)
    bracket_label: BracketStyle = dataclasses.field(default_factory=_round)
    bracket_year: BracketStyle = dataclasses.field(default_factory=_round)


register_plugin("sphinxcontrib.bibtex.style.referencing", "author_year_round",
                RoundAuthorYearStyle)


def _mathjax_source(app: Sphinx) -> Path:
    return Path(app.confdir) / MATHJAX_PACKAGE


def check_mathjax_installed(app: Sphinx) -> None:
    if app.builder.format != "html":
        return
    entry = _mathjax_source(app) / "tex-svg.js"
    if not entry.is_file():
        raise ExtensionError(
            f"MathJax is missing ({entry}). Run `npm ci` in the repository "
            "root (`make book` does it): the site serves MathJax itself."
        )


def check_figure_runtime(app: Sphinx) -> None:
    if app.builder.format != "html":
        return
    bundle = Path(app.confdir) / FIGURE_RUNTIME
    if not bundle.is_file():
        raise ExtensionError(
            f"The figure runtime is missing ({bundle}). Run `npm ci && npm run build` in "
            "the repository root (`make book` does it): it bundles js/ for the pages."
        )


def link_static_assets(app: Sphinx) -> None:
    static = Path(app.confdir) / STATIC_DIR
    for path in sorted(static.glob("*.css")):
        app.add_css_file(path.name)
    for path in sorted(static.glob("*.js")):
        app.add_js_file(path.name)


def copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    source = _mathjax_source(app)
    target = Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        src = source / part
        if src.is_dir():
            shutil.copytree(src, target / part, dirs_exist_ok=True)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / part)


def copy_figure_runtime(app: Sphinx, exception: Exception | None) -> None:
    """Copy the runtime bundle on every build: Sphinx skips its static files when
    no page is out of date, so after a change to js/ alone the site kept the old one."""
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(Path(app.confdir) / FIGURE_RUNTIME, target / FIGURE_RUNTIME.name)


def _is_thebe_asset(asset) -> bool:
    name = str(getattr(asset, "filename", asset) or "")
    body = str(getattr(asset, "attributes", {}).get("body", ""))
    return "sphinx-thebe" in name or "THEBE_JS_URL" in body


def drop_thebe(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = [a for a in context[key] if not _is_thebe_asset(a)]


def setup(app: Sphinx) -> dict:
    # after sphinx-thebe and the theme have added their assets
    app.connect("html-page-context", drop_thebe, priority=900)
    app.connect("builder-inited", check_mathjax_installed)
    app.connect("builder-inited", check_figure_runtime)
    app.connect("builder-inited", link_static_assets)
    app.connect("build-finished", copy_mathjax)
    app.connect("build-finished", copy_figure_runtime)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
