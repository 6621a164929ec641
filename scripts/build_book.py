"""Build the book in one language with one Sphinx builder (``make book``, ``make catalogs``).

Jupyter Book 1 has no ``language`` option and ``jupyter-book build`` passes
no ``-D`` through to Sphinx, so this script calls the function that command
calls (``jupyter_book.sphinx.build_sphinx``) with the same configuration
(``_config.yml``, ``_toc.yml``, nit-picky) and a few overrides of its own:

* ``--lang en`` (the default) builds the English book, ``--lang ja`` the
  Japanese one: Sphinx's ``language`` is ``ja``, so every string of the
  catalogs in ``locales/ja/LC_MESSAGES`` replaces its English original, the
  theme's own labels are Japanese, and the search index splits Japanese
  text into words with Janome (pure Python; pinned in requirements.txt),
  so that 学習率 is one word of the index, not three characters.
* ``--builder html`` (the default) writes ``_build/html/<lang>``;
  ``--builder gettext`` writes the message templates (one ``.pot`` per page,
  ``gettext_compact: false`` in ``_config.yml``) to ``_build/gettext``;
  ``--builder singlehtml`` writes ``_build/singlehtml`` (English) or
  ``_build/singlehtml-ja`` (Japanese), the page ``make pdf`` prints.

Each (language, builder) pair keeps its own doctrees
(``_build/.doctrees/<builder>-<lang>``): a Japanese build never reuses an
English doctree. Warnings are errors (``-W --keep-going``), as in
``jupyter-book build -W -n --keep-going``.

Usage::

    .venv/bin/python scripts/build_book.py                 # English HTML
    .venv/bin/python scripts/build_book.py --lang ja --all # Japanese HTML, every page
    .venv/bin/python scripts/build_book.py --builder gettext
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"
LANGUAGES = ("en", "ja")
BUILDERS = ("html", "gettext", "singlehtml")

# What changes in the Japanese build, on top of _config.yml.
JAPANESE = {
    "language": "ja",
    "html_title": "深層学習のための最適化",
    "html_search_language": "ja",
    "html_search_options": {"type": "sphinx.search.ja.JanomeSplitter"},
}


def output_dir(lang: str, builder: str) -> Path:
    """Where a build writes: _build/html/<lang>, _build/gettext, _build/singlehtml[-ja]."""
    if builder == "html":
        return BUILD / "html" / lang
    if builder == "gettext":
        return BUILD / "gettext"
    return BUILD / (builder if lang == "en" else f"{builder}-{lang}")


def overrides(lang: str, builder: str = "html") -> dict:
    """The Sphinx settings this build adds to _config.yml's."""
    settings = {"external_toc_path": (ROOT / "_toc.yml").as_posix(),
                "nitpicky": True, "latex_individualpages": False}
    if builder == "gettext":  # the catalogs' header (Project-Id-Version)
        settings["project"] = "Optimization for Deep Learning"
    if lang == "ja":
        settings.update(JAPANESE)
    return settings


def build(lang: str = "en", builder: str = "html", force_all: bool = False,
          quiet: bool = False) -> int:
    """Run one Sphinx build; returns its exit status (0: no warning)."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}: expected one of {LANGUAGES}")
    if builder not in BUILDERS:
        raise ValueError(f"unknown builder {builder!r}: expected one of {BUILDERS}")
    if builder == "gettext" and lang != "en":
        raise ValueError("the message catalogs are extracted from the English "
                         "sources: use --builder gettext without --lang ja")
    from jupyter_book.sphinx import build_sphinx
    os.chdir(ROOT)  # _config.yml's paths (book/_static, book/references.bib) are relative
    out = output_dir(lang, builder)
    print(f"build_book: {builder} ({lang}) -> {out.relative_to(ROOT)}", flush=True)
    result = build_sphinx(
        ROOT, out,
        use_external_toc=True,
        noconfig=True,
        path_config=ROOT / "_config.yml",
        confoverrides=overrides(lang, builder),
        doctreedir=BUILD / ".doctrees" / f"{builder}-{lang}",
        builder=builder,
        force_all=force_all,
        freshenv=force_all,
        warningiserror=True,
        keep_going=True,
        quiet=quiet,
    )
    if isinstance(result, Exception):
        raise result
    return int(result)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lang", choices=LANGUAGES, default="en")
    parser.add_argument("--builder", choices=BUILDERS, default="html")
    parser.add_argument("--all", action="store_true", help="re-read and re-write every page (fresh environment)")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    return build(args.lang, args.builder, args.all, args.quiet)


if __name__ == "__main__":
    sys.exit(main())
