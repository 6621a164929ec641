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
  rebuild (Sphinx then copies no static file), and so are the assets below.
* Every top-level ``.css``/``.js`` file in ``book/_static`` is added to every
  page (sorted, so the order is stable). Jupyter Book does this only for a
  ``_static`` folder at the book root; ours lives in ``book/``. Files in
  sub-folders are copied but not linked. Adding or removing one rewrites
  every page (the list is a config value, ``optbook_static_assets``).
* Citations use round brackets, "Kingma and Ba (2015)" and "(Kingma and
  Ba, 2015)": the referencing style ``author_year_round`` registered here
  (sphinxcontrib-bibtex's own ``author_year`` uses square brackets).
* The repository's address is one setting: the environment variable
  ``OPTBOOK_REPOSITORY`` (``make book REPOSITORY=https://github.com/OWNER/NAME``).
  Set, it turns on the GitHub, "open issue", Binder and Colab buttons
  (sphinx-book-theme's options) and the content of every
  ``{optbook-if-repository}`` block, with ``{repository}`` replaced by the
  address; unset or empty (the default), none of them appears. An address
  that is still a placeholder stops the build.
* The still image of every in-page figure (what a reader without scripts
  sees, and what a notebook shows before its kernel runs) is a PNG data URI
  in the notebook's output, so that the notebook stands alone. On the site it
  becomes a file in ``_images`` (named by its hash) loaded lazily: the running
  figure hides it, so a reader with scripts never downloads it, and the page's
  HTML stays small (chapter 5's was 70 KB of base64 heavier).
* sphinx-thebe (loaded by Jupyter Book whatever the config says) is removed
  from the pages: with ``launch_buttons.thebe: false`` it never runs, but it
  writes a CDN address for thebe into every page. Live code is offered
  through Binder/Colab/JupyterLab instead.
* The download button of a chapter serves its reader's notebook
  (``scripts/reader_notebooks.py``: citations, terms, links and numbers
  resolved for JupyterLab), not the source.
"""

from __future__ import annotations

import dataclasses
import base64
import hashlib
import os
import re
import shutil
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util.docutils import SphinxDirective
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


REPOSITORY_VARIABLE = "OPTBOOK_REPOSITORY"
# https://github.com/OWNER/NAME (or gitlab.com, bitbucket.org): what
# sphinx-book-theme can build its buttons from.
REPOSITORY_PATTERN = re.compile(
    r"^https://(github\.com|gitlab\.com|bitbucket\.org)/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
PLACEHOLDERS = ("REPLACE-WITH-OWNER", "<repository URL>", "/OWNER/")


def repository_address(environ=os.environ) -> str:
    """The repository's address from the environment, "" when none is set."""
    url = environ.get(REPOSITORY_VARIABLE, "").strip().rstrip("/")
    if url.endswith(".git"):
        url = url[:-4]
    if not url:
        return ""
    if any(mark in url for mark in PLACEHOLDERS) or not REPOSITORY_PATTERN.match(url):
        raise ExtensionError(
            f"{REPOSITORY_VARIABLE}={url!r} is not a repository address: give "
            "https://github.com/OWNER/NAME (make book REPOSITORY=...), or nothing "
            "for a book without repository buttons.")
    return url


def repository_theme_options(options: dict, url: str, language: str = "en") -> dict:
    """sphinx-book-theme's options with the repository buttons on (``url``) or off ("").

    On a translated edition (``language`` not English) the Binder button opens
    the translated notebook, which binder/postBuild writes to ``<language>/book/``
    (the theme's ``path_to_docs``), and there is no Colab button: Colab reads
    notebooks from the repository itself, which holds only the English ones."""
    options = dict(options or {})
    launch = dict(options.get("launch_buttons") or {})
    if url:
        options.update(repository_url=url, use_repository_button=True, use_issues_button=True)
        if language and language != "en":
            options["path_to_docs"] = language
            launch.pop("colab_url", None)
    else:
        options.pop("repository_url", None)
        options.update(use_repository_button=False, use_issues_button=False,
                       use_edit_page_button=False, use_source_button=False)
        # without an address sphinx-book-theme would draw no launch button
        # anyway; say so here rather than rely on it
        for key in ("binderhub_url", "colab_url", "jupyterhub_url", "deepnote_url"):
            launch.pop(key, None)
    if launch or "launch_buttons" in options:
        options["launch_buttons"] = launch
    return options


def configure_repository(app: Sphinx, config) -> None:
    url = repository_address()
    config.optbook_repository = url
    config.html_theme_options = repository_theme_options(config.html_theme_options, url,
                                                         config.language or "en")


class IfRepository(SphinxDirective):
    """Content that needs the repository's address: parsed only when one is set.

    ``{repository}`` in the content stands for the address (code blocks
    included, since the text is replaced before it is parsed)::

        :::{optbook-if-repository}
        ```python
        %pip install "optbook @ git+{repository}"
        ```
        :::
    """

    has_content = True

    def run(self) -> list[nodes.Node]:
        url = self.config.optbook_repository
        if not url:
            return []
        lines = StringList([line.replace("{repository}", url) for line in self.content],
                           items=self.content.items)
        holder = nodes.Element()
        self.state.nested_parse(lines, self.content_offset, holder)
        return holder.children


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


def _static_assets(confdir: str | Path) -> list[str]:
    static = Path(confdir) / STATIC_DIR
    return sorted(p.name for p in static.glob("*.css")) + sorted(p.name for p in static.glob("*.js"))


def record_static_assets(app: Sphinx, config) -> None:
    """Name the linked assets in the config, so that adding or removing one
    rewrites every page (a config value of kind "html" is part of the hash in
    the build info; otherwise pages that had not changed kept the old list)."""
    config.optbook_static_assets = _static_assets(app.confdir)


def link_static_assets(app: Sphinx) -> None:
    for name in _static_assets(app.confdir):
        if name.endswith(".css"):
            app.add_css_file(name)
        else:
            app.add_js_file(name)


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
    """Copy the runtime bundle and the other linked assets on every build: Sphinx
    skips its static files when no page is out of date, so after a change to js/
    (or to a .css/.js file of book/_static) alone the site kept the old one."""
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(Path(app.confdir) / FIGURE_RUNTIME, target / FIGURE_RUNTIME.name)
    for name in _static_assets(app.confdir):
        shutil.copy2(Path(app.confdir) / STATIC_DIR / name, target / name)


def _is_thebe_asset(asset) -> bool:
    name = str(getattr(asset, "filename", asset) or "")
    body = str(getattr(asset, "attributes", {}).get("body", ""))
    return "sphinx-thebe" in name or "THEBE_JS_URL" in body


def drop_thebe(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = [a for a in context[key] if not _is_thebe_asset(a)]


def list_the_bibliography(app: Sphinx, pagename: str, templatename: str, context: dict,
                          doctree) -> None:
    """Bibliography entries are list items, not the deprecated ``doc-biblioentry``.

    docutils' HTML5 writer (``visit_citation``, which sphinxcontrib-bibtex's
    citations go through) writes each entry as ``<div role="doc-biblioentry">``
    inside ``<div role="list">``. DPUB-ARIA 1.1 deprecated that role because it
    is no valid child of a list (w3c/dpub-aria#22): axe-core reports the role
    (aria-deprecated-role, once per entry) and the list
    (aria-required-children, critical). The role becomes ``listitem``.
    """
    body = context.get("body")
    if body and 'role="doc-biblioentry"' in body:
        context["body"] = body.replace('role="doc-biblioentry"', 'role="listitem"')


FIGURE_STILL = re.compile(
    r'(<img class="optbook-figure-static"[^>]*?) src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
# a notebook's static matplotlib figure (optbook.figures.responsive): a <picture>
# with the wide PNG in its <img> and the phone's stacked PNG in a <source srcset>
STATIC_PICTURE = re.compile(r'<picture class="optbook-static-figure".*?</picture>', re.S)
DATA_PNG = re.compile(r'data:image/png;base64,([A-Za-z0-9+/=]+)')


def externalize_figure_stills(app: Sphinx, pagename: str, templatename: str, context: dict,
                              doctree) -> None:
    """Each figure's still image: a data URI in the notebook, a lazy file on the site.

    Two kinds: the still of an in-page figure (hidden once the figure runs),
    and both renderings of a static matplotlib figure's ``<picture>`` (the
    wide ``<img src>`` and the phone's ``<source srcset>``), which MyST-NB
    copies into the page as they are in the notebook's ``text/html``.
    """
    body = context.get("body")
    # the PDF's single page (singlehtml) is printed, never downloaded: it keeps the URIs
    if app.builder.name != "html" or not body or (
            "optbook-figure-static" not in body and "optbook-static-figure" not in body):
        return
    images = Path(app.outdir) / app.builder.imagedir

    def png_file(data: str, prefix: str) -> str:
        png = base64.b64decode(data)
        name = f"{prefix}-{hashlib.sha256(png).hexdigest()[:16]}.png"
        images.mkdir(parents=True, exist_ok=True)
        if not (images / name).exists():
            (images / name).write_bytes(png)
        return context["pathto"](f"{app.builder.imagedir}/{name}", 1)

    def to_file(match: re.Match) -> str:
        return f'{match.group(1)} loading="lazy" src="{png_file(match.group(2), "optbook-still")}"'

    def picture_to_files(match: re.Match) -> str:
        picture = DATA_PNG.sub(lambda m: png_file(m.group(1), "optbook-figure"), match.group(0))
        return picture.replace("<img ", '<img loading="lazy" decoding="async" ', 1)

    body = FIGURE_STILL.sub(to_file, body)
    context["body"] = STATIC_PICTURE.sub(picture_to_files, body)


def serve_reader_notebooks(app: Sphinx, exception: Exception | None) -> None:
    """The download button serves the reader's notebook of each chapter.

    sphinx-book-theme's download button links to ``_sources/book/<chapter>.ipynb``,
    a copy of the source, whose citations, glossary terms and links to other
    pages JupyterLab cannot resolve (scripts/reader_notebooks.py says why).
    After every HTML build those copies are replaced by the reader's notebooks.
    """
    sources = Path(app.outdir) / "_sources" / "book"
    if exception is not None or app.builder.name != "html" or not sources.is_dir():
        return
    import reader_notebooks     # beside this file (sphinx.local_extensions: scripts)

    root = Path(app.confdir)
    chapters = [p for p in reader_notebooks.chapter_notebooks(root)
                if (sources / p.name).exists()]
    reader_notebooks.write_reader_notebooks(sources, chapters, root)


def setup(app: Sphinx) -> dict:
    # after sphinx-thebe and the theme have added their assets
    app.connect("html-page-context", drop_thebe, priority=900)
    app.connect("html-page-context", list_the_bibliography)
    app.connect("html-page-context", externalize_figure_stills)
    app.connect("builder-inited", check_mathjax_installed)
    app.connect("builder-inited", check_figure_runtime)
    app.add_config_value("optbook_static_assets", [], "html")
    # the repository's address (OPTBOOK_REPOSITORY): a change re-reads every page
    app.add_config_value("optbook_repository", "", "env")
    app.connect("config-inited", configure_repository)
    app.add_directive("optbook-if-repository", IfRepository)
    app.connect("config-inited", record_static_assets)
    app.connect("builder-inited", link_static_assets)
    app.connect("build-finished", copy_mathjax)
    app.connect("build-finished", copy_figure_runtime)
    app.connect("build-finished", serve_reader_notebooks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
