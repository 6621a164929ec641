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
* ``--lang all`` builds both, then the site's root ``_build/html/index.html``
  (it sends the reader to ``en/`` or ``ja/`` by the browser's language,
  English by default) and a forwarding page at each English page's old
  address (``_build/html/book/02-sgd.html`` -> ``en/book/02-sgd.html``).
* ``--builder html`` (the default) writes ``_build/html/<lang>``; for
  Japanese, the notebooks behind the pages' download button
  (``_sources/book/*.ipynb``) are then the Japanese ones
  (``scripts/translate_notebooks.py``: markdown from the catalogs, code and
  outputs unchanged);
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
import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
BUILD = ROOT / "_build"
LANGUAGES = ("en", "ja")
BUILDERS = ("html", "gettext", "singlehtml")

GLOSSARY = ROOT / "book" / "glossary.md"
SEARCH_DICTIONARY = BUILD / "search" / "ja-glossary-terms.csv"
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
TITLES = {"en": "Optimization for Deep Learning", "ja": "深層学習のための最適化"}


def japanese_overrides() -> dict:
    """What changes in the Japanese build, on top of _config.yml."""
    return {
        "language": "ja",
        "html_title": TITLES["ja"],
        "html_theme_options": {"search_bar_text": "この本を検索…"},
        # Janome (a morphological analyser) splits the text into words for
        # the search index; the glossary's Japanese terms are added to its
        # dictionary so that a term such as 学習率 or ウォームアップ is one
        # word (Janome alone makes 学習 + 率, ウォーム + アップ, and the
        # search box looks a typed term up whole).
        "html_search_language": "ja",
        "html_search_options": {"type": "sphinx.search.ja.JanomeSplitter",
                                "user_dic": str(write_search_dictionary()),
                                "user_dic_enc": "utf8"},
    }


def glossary_entries(glossary: Path = GLOSSARY) -> list[list[str]]:
    """The glossary's entries, each the list of its term lines (the English
    term, then the article's Japanese one when there is one): the unindented
    lines of the ``{glossary}`` block, an indented definition closing each."""
    entries, inside, in_definition = [], False, True
    for line in glossary.read_text(encoding="utf-8").splitlines():
        if line.startswith("```{glossary}"):
            inside = True
        elif inside and line.startswith("```"):
            inside = False
        elif inside and line.strip() and not line.startswith(":"):
            if line[0].isspace():
                in_definition = True
            else:
                if in_definition:
                    entries.append([])
                    in_definition = False
                entries[-1].append(line.strip())
    return entries


def glossary_terms_ja(glossary: Path = GLOSSARY) -> list[str]:
    """The Japanese terms of the glossary (term lines with Japanese characters)."""
    return sorted({t for entry in glossary_entries(glossary) for t in entry if CJK.search(t)})


def write_search_dictionary(path: Path = SEARCH_DICTIONARY) -> Path:
    """Janome's user dictionary (IPADIC CSV): each glossary term a common noun
    (context ids 1285, 名詞・一般) with a cost low enough to win over any split."""
    terms = glossary_terms_ja()
    if not terms:
        raise SystemExit(f"{GLOSSARY} gives no Japanese term: the Japanese search "
                         "needs them (its dictionary)")
    rows = [f"{t},1285,1285,-5000,名詞,一般,*,*,*,*,{t},*,*" for t in terms]
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(rows) + "\n"
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path


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
        settings.update(japanese_overrides())
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
    import myst_nb.sphinx_ext
    # MyST-NB writes the notebooks' external files into <outdir>/../jupyter_execute,
    # which for _build/html/<lang> would be inside the published site (and
    # shared by both languages): keep them in _build/jupyter_execute-<lang>.
    myst_nb.sphinx_ext.OUTPUT_FOLDER = os.path.relpath(
        BUILD / f"jupyter_execute-{builder}-{lang}", output_dir(lang, builder).parent)
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
    if lang != "en" and builder == "html":
        # the download button of a Japanese page gives the Japanese notebook,
        # as a reader's notebook (citations, terms and numbers resolved for
        # JupyterLab, as the English pages' downloads are: book_site.py)
        write_translated_reader_notebooks(out / "_sources" / "book", lang)
    return int(result)


def write_translated_reader_notebooks(out_dir: Path, lang: str) -> None:
    """Each notebook translated from the catalogs; each chapter's then made a
    reader's notebook with the translated titles in its links."""
    import reader_notebooks
    import translate_notebooks

    written = translate_notebooks.write_notebooks(out_dir, translate_notebooks.book_notebooks(),
                                                  lang, quiet=True)
    chapters = {p.name: p for p in reader_notebooks.chapter_notebooks(ROOT)}
    catalogs = translate_notebooks.LOCALES / lang / "LC_MESSAGES"
    book = reader_notebooks.translated_book(
        reader_notebooks.load_book(ROOT),
        {page: translate_notebooks.load_translations(page, lang)
         for page, _ in reader_notebooks.toc_pages(ROOT) if (catalogs / f"{page}.po").is_file()})
    for name in written:
        if name in chapters:
            target = out_dir / name
            notebook = json.loads(target.read_text(encoding="utf-8"))
            notebook = reader_notebooks.reader_notebook(chapters[name], book, ROOT, notebook)
            target.write_text(json.dumps(notebook, ensure_ascii=False, indent=1) + "\n",
                              encoding="utf-8")


ROOT_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{en} · {ja}</title>
<link rel="icon" href="en/_static/favicon.svg">
<link rel="alternate" hreflang="en" href="en/index.html">
<link rel="alternate" hreflang="ja" href="ja/index.html">
<script>
/* The reader's first preferred language picks the edition: Japanese for
   ja, ja-JP, ...; English for every other (the default). */
(function () {{
  var langs = navigator.languages && navigator.languages.length
    ? navigator.languages : [navigator.language || ""];
  var lang = String(langs[0] || "").toLowerCase().split("-")[0] === "ja" ? "ja" : "en";
  location.replace(lang + "/index.html" + location.hash);
}})();
</script>
</head>
<body>
<p><a href="en/index.html" hreflang="en">{en} (English)</a></p>
<p><a href="ja/index.html" hreflang="ja" lang="ja">{ja}（日本語）</a></p>
</body>
</html>
"""

MOVED_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Moved: {title}</title>
<meta http-equiv="refresh" content="0; url={url}">
<link rel="canonical" href="{url}">
<link rel="icon" href="{icon}">
</head>
<body><p>This page is now at <a href="{url}">{url}</a>.</p></body>
</html>
"""


def write_root(html_dir: Path = BUILD / "html") -> list[Path]:
    """The site's root: index.html sends the reader to en/ or ja/ by the
    browser's language; every English page's old address (before the two
    editions, book/02-sgd.html) forwards to its place under en/."""
    english = html_dir / "en"
    if not (english / "index.html").is_file():
        raise SystemExit(f"no English site at {english}: build it first")
    written = [html_dir / "index.html"]
    written[0].write_text(ROOT_PAGE.format(**{k: html.escape(v) for k, v in TITLES.items()}),
                          encoding="utf-8")
    for page in sorted(english.rglob("*.html")):
        rel = page.relative_to(english)
        if rel.parts[0] in ("_static", "_sources") or rel.as_posix() == "index.html":
            continue
        up = "../" * (len(rel.parts) - 1)
        target = html_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(MOVED_PAGE.format(
            title=html.escape(rel.as_posix()), url=f"{up}en/{rel.as_posix()}",
            icon=f"{up}en/_static/favicon.svg"), encoding="utf-8")
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lang", choices=(*LANGUAGES, "all"), default="en",
                        help="all: both editions, then the site's root (html only)")
    parser.add_argument("--builder", choices=BUILDERS, default="html")
    parser.add_argument("--all", action="store_true", help="re-read and re-write every page (fresh environment)")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("--write-notebooks", metavar="LANG", choices=LANGUAGES[1:],
                        help="only write that edition's notebooks to LANG/book/ "
                             "(binder/postBuild: the Japanese pages' Binder button opens them)")
    args = parser.parse_args(argv)
    if args.write_notebooks:
        write_translated_reader_notebooks(ROOT / args.write_notebooks / "book", args.write_notebooks)
        return 0
    if args.lang != "all":
        return build(args.lang, args.builder, args.all, args.quiet)
    if args.builder != "html":
        parser.error("--lang all builds the two HTML sites (--builder html)")
    # One process per language: Sphinx keeps its translators (sphinx.locale)
    # in module globals, so a second build in the same process could mix them.
    status = 0
    for lang in LANGUAGES:
        command = [sys.executable, __file__, "--lang", lang]
        command += ["--all"] * args.all + ["--quiet"] * args.quiet
        status = subprocess.call(command) or status
    if status == 0:
        write_root()
    return status


if __name__ == "__main__":
    sys.exit(main())
