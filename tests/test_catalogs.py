"""The Japanese edition's catalogs follow the English text (issue 25, CI gate).

``locales/ja/LC_MESSAGES/book/<page>.po`` holds the Japanese of every
translatable string of a page (``make catalogs``: Sphinx gettext, then
``sphinx-intl update``; ``scripts/catalogs.py``). Checked here:

* the catalogs in git are what ``make catalogs`` makes from the English
  sources now: a change to the English text cannot land without its
  catalogs (new strings untranslated, changed ones fuzzy);
* one catalog per page of ``_toc.yml``, and no orphan (a ``.po`` of no page),
  besides ``figures.po``, the in-page figures' strings
  (``tests/test_figure_translation.py`` checks it);
* ``msgfmt -c`` (GNU gettext) finds nothing to say about any catalog;
* every page listed in ``locales/ja/complete.txt`` is complete: no fuzzy and
  no untranslated string (pages not listed show a banner instead, checked on
  the built site by ``tests/build/test_editions.py``);
* what the extraction leaves out (``scripts/book_i18n.py``): display math,
  strings with nothing to translate; a small Sphinx build of its own;
* the Japanese search's dictionary (``scripts/build_book.py``): Janome alone
  splits 学習率 and ウォームアップ; with the glossary's terms it keeps them whole.
"""
from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import book_i18n  # noqa: E402
import build_book  # noqa: E402
import catalogs  # noqa: E402

LOCALES = ROOT / "locales"
MSGFMT = shutil.which("msgfmt")


def toc_pages() -> list[str]:
    """Every page of _toc.yml ('book/02-sgd'), root included."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))
    walk(toc.get("parts"))
    return sorted(pages)


def _differences(left: Path, right: Path) -> list[str]:
    found = []
    cmp = filecmp.dircmp(left, right)

    def walk(c, prefix=""):
        found.extend(f"only in git: {prefix}{n}" for n in c.left_only)
        found.extend(f"only after make catalogs: {prefix}{n}" for n in c.right_only)
        for name in c.common_files:
            if not filecmp.cmp(Path(c.left) / name, Path(c.right) / name, shallow=False):
                found.append(f"changed by make catalogs: {prefix}{name}")
        for name, sub in c.subdirs.items():
            walk(sub, f"{prefix}{name}/")
    walk(cmp)
    return [f for f in found if not f.endswith(".mo")]


def test_catalogs_are_in_sync_with_the_english_sources(tmp_path):
    copy = tmp_path / "locales"
    shutil.copytree(LOCALES, copy, ignore=shutil.ignore_patterns("*.mo"))
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "catalogs.py"),
                           "update", "--locale-dir", str(copy)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    changed = _differences(LOCALES, copy)
    assert not changed, ("the catalogs do not match the English text; run `make catalogs` "
                         "and commit locales/ (then translate the new and fuzzy strings):\n"
                         + "\n".join(changed) + "\n" + "\n".join(
                             line for line in done.stdout.splitlines()
                             if not line.startswith("Not Changed")))


@pytest.mark.parametrize("lang", catalogs.LANGUAGES)
def test_one_catalog_per_page_and_no_orphan(lang):
    pages, po = set(toc_pages()), set(catalogs.po_files(lang))
    assert not po - pages, f"orphan catalogs (no such page in _toc.yml): {sorted(po - pages)}"
    assert not pages - po, f"pages without a catalog (run make catalogs): {sorted(pages - po)}"
    assert catalogs.figures_po(lang).is_file(), (
        f"no figures catalog locales/{lang}/LC_MESSAGES/figures.po (run make catalogs)")


@pytest.mark.parametrize("lang", catalogs.LANGUAGES)
def test_msgfmt_check_is_clean(lang, tmp_path):
    if MSGFMT is None:
        pytest.fail("msgfmt (GNU gettext) is missing: apt-get install gettext (make msgfmt)")
    said = []
    for page in [*catalogs.po_files(lang), catalogs.FIGURES]:
        path = catalogs.catalog_dir(lang) / f"{page}.po"
        # --check: format strings, header, domain (book text has no keyboard
        # accelerators: "Ma & Yarats" is prose, so no --check-accelerators)
        done = subprocess.run([MSGFMT, "--check", "-o",
                               str(tmp_path / "out.mo"), str(path)],
                              capture_output=True, text=True)
        if done.returncode or done.stderr.strip():
            said.append(done.stderr.strip() or f"{path}: exit status {done.returncode}")
    assert not said, "\n".join(said)


@pytest.mark.parametrize("lang", catalogs.LANGUAGES)
def test_pages_listed_complete_are_complete(lang):
    listed = book_i18n.complete_pages(lang)
    counts = catalogs.stat(lang)
    print(f"\n{lang}: translated / fuzzy / untranslated per catalog (sphinx-intl stat)")
    for page, (done, fuzzy, todo) in counts.items():
        print(f"  {page}: {done} / {fuzzy} / {todo}{'  (complete.txt)' if page in listed else ''}")
    unknown = sorted(listed - set(counts))
    assert not unknown, f"locales/{lang}/complete.txt lists pages with no catalog: {unknown}"
    incomplete = {page: counts[page][1:] for page in sorted(listed) if counts[page][1:] != (0, 0)}
    assert not incomplete, (
        f"pages listed in locales/{lang}/complete.txt still have (fuzzy, untranslated) "
        f"strings: {incomplete}; translate them or take the page off the list")


def test_complete_list_reading(tmp_path):
    (tmp_path / "ja").mkdir()
    assert book_i18n.complete_pages("ja", tmp_path) == set()
    (tmp_path / "ja" / "complete.txt").write_text(
        "# a comment\n\nbook/02-sgd\n  book/intro   # done\n", encoding="utf-8")
    assert book_i18n.complete_pages("ja", tmp_path) == {"book/02-sgd", "book/intro"}


def test_twin_urls():
    assert book_i18n.twin_url("book/02-sgd", "ja", "en") == "../../en/book/02-sgd.html"
    assert book_i18n.twin_url("genindex", "en", "ja") == "../ja/genindex.html"


PAGE = """# A page

A sentence to translate, with $\\eta$ inside.

$$
\\theta_{t+1} = \\theta_t - \\eta\\, g_t
$$

$\\beta_1$, $\\beta_2$

`optbook.adam`

学習率

| symbol | meaning |
|---|---|
| $\\eta$ | learning rate |
"""


def test_extraction_leaves_out_math_and_strings_with_nothing_to_translate(tmp_path):
    (tmp_path / "index.md").write_text(PAGE, encoding="utf-8")
    (tmp_path / "conf.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT / 'scripts')!r})\n"
        "extensions = ['myst_parser', 'book_i18n']\n"
        "myst_enable_extensions = ['dollarmath']\n"
        "gettext_uuid = False\ngettext_location = False\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "sphinx", "-b", "gettext", "-q", "-W",
                           str(tmp_path), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    from babel.messages.pofile import read_po
    with open(tmp_path / "out" / "index.pot", "rb") as f:
        ids = sorted(m.id for m in read_po(f) if m.id)
    assert ids == sorted(["A page", "A sentence to translate, with $\\eta$ inside.",
                          "symbol", "meaning", "learning rate"])


def test_glossary_gives_the_search_dictionary():
    terms = build_book.glossary_terms_ja()
    assert {"学習率", "ウォームアップ", "確率的勾配降下法", "鞍点"} <= set(terms)
    assert not [t for t in terms if not build_book.CJK.search(t)]


def test_janome_keeps_glossary_terms_whole_only_with_the_dictionary(tmp_path):
    from sphinx.search.ja import JanomeSplitter
    sentence = "ウォームアップは学習率を徐々に上げる。"
    plain = JanomeSplitter({}).split(sentence)
    assert "学習率" not in plain and "ウォームアップ" not in plain   # why the dictionary exists
    path = build_book.write_search_dictionary(tmp_path / "terms.csv")
    words = JanomeSplitter({"user_dic": str(path), "user_dic_enc": "utf8"}).split(sentence)
    assert words[:4] == ["ウォームアップ", "は", "学習率", "を"]
