"""The Japanese edition's message catalogs: extract, update, check (``make catalogs``).

The catalogs are ``locales/<lang>/LC_MESSAGES/book/<page>.po``, one per
page of ``_toc.yml`` (``gettext_compact: false``). ``update`` does what a
change to the English text needs:

1. Sphinx's gettext builder extracts the English pages into
   ``_build/gettext/book/<page>.pot`` (``scripts/build_book.py --builder
   gettext``; ``scripts/book_i18n.py`` keeps display math, code-cell outputs
   and strings with nothing to translate out of them);
2. ``sphinx-intl update`` merges each template into its ``.po``: new strings
   arrive untranslated, changed ones are marked fuzzy with the old
   translation kept as a suggestion, removed ones are dropped
   (``--no-obsolete``). It rewrites a ``.po`` only when the set of its
   strings changed, so an unchanged English page leaves its catalog as it is;
3. a new ``.po`` gets a complete header (sphinx-intl copies the template's
   placeholders: ``PO-Revision-Date: YEAR-MO-DA``, which ``msgfmt -c``
   reports): its revision date is its creation date, the header is not
   fuzzy. Existing catalogs' headers are never touched.

A ``.po`` whose page has left the book is an orphan: ``update`` lists it and
leaves it (its translations may belong to a renamed page); the test
``tests/test_catalogs.py`` fails on it.

One more catalog holds the in-page figures' strings:
``locales/<lang>/LC_MESSAGES/figures.po`` (no page of its own, so not an
orphan). ``update`` collects, from every notebook's stored figure specs
(``book/*.ipynb``, the text/html outputs ``optbook.figures`` writes), the
strings the spec schema marks ``"x-translate"`` (labels, titles, headlines,
legends, notes: ``optbook.figures.translate``) and the still image's alt
text and note and merges them into it the
way sphinx-intl merges a page: new strings untranslated, changed ones fuzzy,
removed ones dropped, the file rewritten only when its messages changed. The
Japanese build swaps them inside each figure's JSON (``scripts/book_i18n.py``).

``stat`` prints translated / fuzzy / untranslated counts per catalog (what
``sphinx-intl stat`` prints).

Usage::

    .venv/bin/python scripts/catalogs.py update          # make catalogs
    .venv/bin/python scripts/catalogs.py update --locale-dir /tmp/copy --no-build
    .venv/bin/python scripts/catalogs.py stat
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(1, str(ROOT / "code"))

import build_book  # noqa: E402

LOCALES = ROOT / "locales"
POT_DIR = ROOT / "_build" / "gettext"
LANGUAGES = ("ja",)
LINE_WIDTH = 76
TRANSLATOR = "The optbook translators"
TEAMS = {"ja": "Japanese edition of Optimization for Deep Learning"}
PLACEHOLDER_DATE = "YEAR-MO-DA"


FIGURES = "figures"          # locales/<lang>/LC_MESSAGES/figures.po
BOOK = ROOT / "book"


def catalog_dir(lang: str, locale_dir: Path = LOCALES) -> Path:
    return locale_dir / lang / "LC_MESSAGES"


def pages(pot_dir: Path = POT_DIR) -> list[str]:
    """The pages the templates cover, as 'book/02-sgd' (relative, no suffix)."""
    return sorted(p.relative_to(pot_dir).with_suffix("").as_posix()
                  for p in pot_dir.rglob("*.pot"))


def po_files(lang: str, locale_dir: Path = LOCALES) -> list[str]:
    """The catalogs of a language, as 'book/02-sgd'."""
    base = catalog_dir(lang, locale_dir)
    return sorted(p.relative_to(base).with_suffix("").as_posix()
                  for p in base.rglob("*.po")
                  if p.relative_to(base).with_suffix("").as_posix() != FIGURES)


def figures_po(lang: str, locale_dir: Path = LOCALES) -> Path:
    """The catalog of the figures' strings (not a page's)."""
    return catalog_dir(lang, locale_dir) / f"{FIGURES}.po"


def figure_strings(book: Path = BOOK) -> list[tuple[str, list[str]]]:
    """[(string, [notebook, ...])] of every figure's display strings, in book order.

    Read from the notebooks' stored outputs: the specs a page shows are the
    ones nbval checks, so the catalog follows what the reader sees.
    """
    import json
    from optbook.figures.translate import display_strings, specs_in_html, static_strings
    found: dict[str, list[str]] = {}
    for nb in sorted(book.glob("*.ipynb")):
        where = nb.relative_to(book.parent).as_posix()
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        for cell in cells:
            for output in cell.get("outputs", []):
                text = output.get("data", {}).get("text/html")
                if not text:
                    continue
                text = "".join(text) if isinstance(text, list) else text
                specs = specs_in_html(text)
                strings = [s for spec in specs for s in display_strings(spec).values()]
                for string in strings + (static_strings(text) if specs else []):
                    places = found.setdefault(string, [])
                    if where not in places:
                        places.append(where)
    return list(found.items())


def update_figures(lang: str, locale_dir: Path = LOCALES, book: Path = BOOK) -> bool:
    """Merge the figures' strings into figures.po; True if the file was (re)written."""
    import io
    from babel.messages import pofile
    from babel.messages.catalog import Catalog
    template = Catalog(project="Optimization for Deep Learning", fuzzy=False)
    for string, places in figure_strings(book):
        template.add(string, locations=[(p, None) for p in places])
    path = figures_po(lang, locale_dir)
    if path.is_file():
        with open(path, "rb") as f:
            catalog = pofile.read_po(f)
        catalog.update(template, update_creation_date=False)
        catalog.obsolete.clear()
    else:
        catalog = Catalog(locale=lang, project=template.project, version="",
                          msgid_bugs_address="", fuzzy=False,
                          header_comment="# The in-page figures' strings (labels, titles, legends, "
                                         "headlines),\n# from the specs the notebooks store "
                                         "(scripts/catalogs.py).\n#")
        catalog.update(template)
        catalog.revision_date = catalog.creation_date
        catalog.last_translator = TRANSLATOR
        catalog.language_team = TEAMS.get(lang, lang)
    for message in catalog:   # babel guesses %-formats ("10 % of peak"); none is one
        message.flags.discard("python-format")
    out = io.BytesIO()
    pofile.write_po(out, catalog, width=LINE_WIDTH, sort_output=False,
                    include_previous=False)
    new = out.getvalue()
    if path.is_file() and path.read_bytes() == new:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(new)
    return True


def orphans(lang: str, locale_dir: Path = LOCALES, pot_dir: Path = POT_DIR) -> list[str]:
    """Catalogs with no template, i.e. of a page that is no longer in the book."""
    return sorted(set(po_files(lang, locale_dir)) - set(pages(pot_dir)))


def complete_header(path: Path, lang: str) -> bool:
    """Give a new catalog a real header; returns True if the file was rewritten."""
    from babel.messages import pofile
    with open(path, "rb") as f:
        catalog = pofile.read_po(f)
    header = catalog.mime_headers
    revision = dict(header).get("PO-Revision-Date", "")
    if not revision.startswith(PLACEHOLDER_DATE) and not catalog.fuzzy:
        return False
    catalog.revision_date = catalog.creation_date
    catalog.last_translator = TRANSLATOR
    catalog.language_team = TEAMS.get(lang, lang)
    catalog.fuzzy = False
    with open(path, "wb") as f:
        pofile.write_po(f, catalog, width=LINE_WIDTH)
    return True


FORMAT_FLAGS = {"python-format", "python-brace-format"}


def strip_format_flags(path: Path) -> bool:
    """Drop the python-format flags babel guesses from a message's "%" or braces.

    The messages are book text, not format strings: with the flag, msgfmt -c
    rejects a translation of "10% of" that does not repeat "% o". Returns True
    if the file was rewritten."""
    from babel.messages import pofile
    with open(path, "rb") as f:
        catalog = pofile.read_po(f)
    for message in catalog:     # babel re-adds the flag as it reads a message
        message.flags -= FORMAT_FLAGS
    out = io.BytesIO()
    pofile.write_po(out, catalog, width=LINE_WIDTH)
    if out.getvalue() == path.read_bytes():
        return False
    path.write_bytes(out.getvalue())
    return True


def update(locale_dir: Path = LOCALES, pot_dir: Path = POT_DIR,
           languages=LANGUAGES, build: bool = True) -> dict:
    """Extract (unless build=False), merge into the .po files, complete new headers."""
    from sphinx_intl import basic
    if build:
        status = build_book.build("en", "gettext", force_all=True, quiet=True)
        if status:
            raise SystemExit(f"the gettext build failed (exit status {status})")
    if not any(pot_dir.rglob("*.pot")):
        raise SystemExit(f"no .pot file under {pot_dir}: run the gettext build first")
    result = basic.update(str(locale_dir), str(pot_dir), tuple(languages),
                          line_width=LINE_WIDTH, ignore_obsolete=True, jobs=1)
    for lang in languages:
        if update_figures(lang, locale_dir):
            print(f"Update: {figures_po(lang, locale_dir)}")
        for page in po_files(lang, locale_dir):
            complete_header(catalog_dir(lang, locale_dir) / f"{page}.po", lang)
            strip_format_flags(catalog_dir(lang, locale_dir) / f"{page}.po")
        lost = orphans(lang, locale_dir, pot_dir)
        if lost:
            print(f"orphan catalogs ({lang}): no page of the book has them; "
                  f"move their translations or delete them: {', '.join(lost)}")
    return result


def stat(lang: str = "ja", locale_dir: Path = LOCALES) -> dict[str, tuple[int, int, int]]:
    """{page: (translated, fuzzy, untranslated)} for a language's catalogs (and 'figures')."""
    from babel.messages import pofile
    counts = {}
    names = po_files(lang, locale_dir)
    if figures_po(lang, locale_dir).is_file():
        names.append(FIGURES)
    for page in names:
        with open(catalog_dir(lang, locale_dir) / f"{page}.po", "rb") as f:
            catalog = pofile.read_po(f)
        messages = [m for m in catalog if m.id]
        fuzzy = sum(1 for m in messages if m.fuzzy)
        untranslated = sum(1 for m in messages if not m.fuzzy and not m.string)
        counts[page] = (len(messages) - fuzzy - untranslated, fuzzy, untranslated)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("update", help="extract the English text and update the catalogs")
    up.add_argument("--locale-dir", type=Path, default=LOCALES)
    up.add_argument("--no-build", action="store_true",
                    help="use the templates already in _build/gettext")
    st = sub.add_parser("stat", help="translated, fuzzy, untranslated per catalog")
    st.add_argument("--locale-dir", type=Path, default=LOCALES)
    args = parser.parse_args(argv)
    if args.command == "update":
        update(args.locale_dir, build=not args.no_build)
        return 0
    for lang in LANGUAGES:
        total = [0, 0, 0]
        for page, (done, fuzzy, todo) in stat(lang, args.locale_dir).items():
            print(f"{lang}/{page}.po: {done} translated, {fuzzy} fuzzy, {todo} untranslated")
            total = [a + b for a, b in zip(total, (done, fuzzy, todo))]
        print(f"{lang} total: {total[0]} translated, {total[1]} fuzzy, {total[2]} untranslated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
