"""The two editions, English and Japanese, and what ties them (issue 25).

``make book`` builds ``_build/html/en`` and ``_build/html/ja``
(``scripts/build_book.py --lang all``). Checked on the built files:

* the root ``index.html`` sends the reader to ``en/`` or ``ja/`` by the
  browser's first language, with plain links for a browser without scripts;
  an English page's old address (``book/02-sgd.html``) forwards to ``en/``;
* every page of each edition links to its twin in the other one (the
  switcher in the article header and ``<link rel="alternate">``), and the
  twin exists;
* the Japanese pages are Japanese pages: ``lang="ja"``, the Japanese title,
  the search placeholder; and a page whose catalog is not listed in
  ``locales/ja/complete.txt`` shows the banner saying its translation is not
  finished, a listed page does not, and no English page does;
* the Japanese pages' download button gives the Japanese notebook
  (``scripts/translate_notebooks.py``);
* the Japanese search index holds 学習率 and ウォームアップ as words.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from built_site import ROOT, SITE, require_site

sys.path.insert(0, str(ROOT / "scripts"))

import book_i18n  # noqa: E402
import build_book  # noqa: E402

HTML = SITE.parent  # _build/html: en/, ja/ and the root
SWITCHER = re.compile(r'<a class="btn btn-sm optbook-language" href="([^"]+)"\s+hreflang="(\w+)"')
ALTERNATE = re.compile(r'<link rel="alternate" hreflang="(\w+)" href="([^"]+)"')
BANNER = "optbook-translation-banner"


def _pages(lang: str) -> list[Path]:
    site = HTML / lang
    if not (site / "index.html").is_file():
        require_site()
        pytest.fail(f"no {lang} edition at {site}: run `make book`")
    return sorted(p for p in site.rglob("*.html")
                  if p.relative_to(site).parts[0] not in ("_static", "_sources")
                  and p.relative_to(site).as_posix() != "index.html")


def test_root_picks_the_edition_by_language():
    require_site()
    root = (HTML / "index.html").read_text(encoding="utf-8")
    assert 'location.replace(lang + "/index.html"' in root
    assert '=== "ja" ? "ja" : "en"' in root
    for lang in ("en", "ja"):
        assert f'href="{lang}/index.html"' in root
        assert (HTML / lang / "index.html").is_file()


def test_old_english_addresses_forward_to_en():
    pages = _pages("en")
    missing = []
    for page in pages:
        rel = page.relative_to(HTML / "en")
        old = HTML / rel
        url = "../" * (len(rel.parts) - 1) + f"en/{rel.as_posix()}"
        if not old.is_file() or f'content="0; url={url}"' not in old.read_text(encoding="utf-8"):
            missing.append(rel.as_posix())
    assert not missing, f"old addresses that do not forward to en/: {missing}"


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_every_page_links_to_its_twin(lang):
    other = "ja" if lang == "en" else "en"
    wrong = []
    for page in _pages(lang):
        text = page.read_text(encoding="utf-8")
        rel = page.relative_to(HTML / lang).as_posix()
        switch = SWITCHER.search(text)
        alternate = ALTERNATE.search(text)
        if not switch or not alternate:
            wrong.append(f"{rel}: no switcher or no alternate link")
            continue
        for href, hreflang in (switch.groups(), alternate.groups()[::-1]):
            target = (page.parent / href).resolve()
            if hreflang != other or target != (HTML / other / rel).resolve() or not target.is_file():
                wrong.append(f"{rel}: {href} ({hreflang})")
    assert not wrong, "\n".join(wrong)


def test_japanese_pages_are_japanese():
    page = (HTML / "ja" / "book" / "02-sgd.html").read_text(encoding="utf-8")
    assert '<html lang="ja"' in page
    assert build_book.TITLES["ja"] in page.split("</title>")[0]
    assert 'placeholder="この本を検索…"' in page
    english = (HTML / "en" / "book" / "02-sgd.html").read_text(encoding="utf-8")
    assert '<html lang="en"' in english and 'placeholder="Search this book..."' in english


def test_banner_on_exactly_the_pages_not_listed_complete():
    complete = book_i18n.complete_pages("ja")
    wrong = []
    for page in _pages("ja"):
        rel = page.relative_to(HTML / "ja").with_suffix("").as_posix()
        has_catalog = (ROOT / "locales" / "ja" / "LC_MESSAGES" / f"{rel}.po").is_file()
        shown = BANNER in page.read_text(encoding="utf-8")
        if shown != (has_catalog and rel not in complete):
            wrong.append(f"{rel}: banner {'shown' if shown else 'missing'}")
    assert not wrong, "\n".join(wrong)
    assert not [p for p in _pages("en") if BANNER in p.read_text(encoding="utf-8")]


def test_japanese_download_gives_the_japanese_readers_notebook():
    """The Japanese page's download: the notebook translated from the catalogs,
    then made a reader's notebook (citations, terms and numbers resolved for
    JupyterLab, links titled in Japanese), as the English pages' are."""
    import reader_notebooks
    import translate_notebooks
    page = (HTML / "ja" / "book" / "02-sgd.html").read_text(encoding="utf-8")
    assert 'href="../_sources/book/02-sgd.ipynb"' in page
    served = json.loads((HTML / "ja" / "_sources" / "book" / "02-sgd.ipynb").read_text("utf-8"))
    source = ROOT / "book" / "02-sgd.ipynb"
    translated, _ = translate_notebooks.translate_notebook(source, "ja")
    book = reader_notebooks.translated_book(
        reader_notebooks.load_book(ROOT),
        {p: translate_notebooks.load_translations(p, "ja")
         for p, _ in reader_notebooks.toc_pages(ROOT)
         if (ROOT / "locales" / "ja" / "LC_MESSAGES" / f"{p}.po").is_file()})
    expected = reader_notebooks.reader_notebook(source, book, ROOT, translated)
    assert served == json.loads(json.dumps(expected))
    assert served["metadata"]["optbook"]["text_language"] == "ja"
    text = "".join("".join(c["source"]) for c in served["cells"] if c["cell_type"] == "markdown")
    assert "{cite" not in text and "{term}" not in text
    assert "確率的勾配降下法" in text


def test_japanese_search_index_has_glossary_terms_as_words():
    _pages("ja")
    text = (HTML / "ja" / "searchindex.js").read_text(encoding="utf-8")
    index = json.loads(text[text.index("(") + 1:text.rindex(")")])
    docnames = index["docnames"]
    for term in ("学習率", "ウォームアップ"):
        assert term in index["terms"], f"{term} is not a word of the Japanese search index"
        hits = index["terms"][term]
        hits = [hits] if isinstance(hits, int) else hits
        assert "book/glossary" in [docnames[i] for i in hits]


def test_japanese_sidebar_captions_are_translated():
    """The toc's part captions come from the root page's catalog (book_i18n)."""
    _pages("ja")
    ja = (HTML / "ja" / "book" / "03-momentum.html").read_text(encoding="utf-8")
    en = (HTML / "en" / "book" / "03-momentum.html").read_text(encoding="utf-8")
    assert re.findall(r'caption-text">([^<]*)', ja) == ["章", "付録"]
    assert re.findall(r'caption-text">([^<]*)', en) == ["Chapters", "Appendices"]
