"""The built glossary of both editions (issue 25).

On the Japanese site (``_build/html/ja/book/glossary.html``) each entry
shows its Japanese term first, and the entries follow the 五十音 order of
the Japanese terms' readings, then the entries without a Japanese term in
A–Z order (``scripts/book_i18n.py``; the sort key is checked in
tests/test_glossary_order.py). The English page stays as Sphinx's
``:sorted:`` makes it: English term first, A–Z by it. Every ``{term}`` link
of either site leads to an anchor that exists.
"""
from __future__ import annotations

import re
import sys
import unicodedata
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from built_site import ROOT, SITE, require_site

sys.path.insert(0, str(ROOT / "scripts"))

import book_i18n  # noqa: E402

HTML = SITE.parent  # _build/html: en/ and ja/
GLOSSARY = ROOT / "book" / "glossary.md"
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")


class GlossaryList(HTMLParser):
    """The entries of the page's ``<dl class="... glossary">``: each a list
    of its term lines (the ``<dt>`` texts, without the ¶ link)."""

    def __init__(self):
        super().__init__()
        self.entries: list[list[str]] = []
        self.ids: list[list[str]] = []
        self.depth = 0  # inside the glossary's <dl>, counting nested <dl>s
        self.dt: list[str] | None = None
        self.in_headerlink = False
        self.new_entry = True

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "dl" and (self.depth or "glossary" in (attrs.get("class") or "").split()):
            self.depth += 1
        elif self.depth == 1 and tag == "dt":
            if self.new_entry:
                self.entries.append([])
                self.ids.append([])
                self.new_entry = False
            self.dt = []
            self.ids[-1].append(attrs.get("id"))
        elif self.depth == 1 and tag == "dd":
            self.new_entry = True
        elif self.dt is not None and tag == "a" and "headerlink" in (attrs.get("class") or ""):
            self.in_headerlink = True

    def handle_endtag(self, tag):
        if tag == "dl" and self.depth:
            self.depth -= 1
        elif tag == "dt" and self.dt is not None:
            self.entries[-1].append("".join(self.dt).strip())
            self.dt = None
        elif tag == "a":
            self.in_headerlink = False

    def handle_data(self, data):
        if self.dt is not None and not self.in_headerlink:
            self.dt.append(data)


def built_glossary(lang: str) -> GlossaryList:
    require_site()
    page = HTML / lang / "book" / "glossary.html"
    if not page.is_file():
        pytest.fail(f"no {page}: run `make book`")
    parser = GlossaryList()
    parser.feed(page.read_text(encoding="utf-8"))
    assert parser.entries, f"no <dl class='glossary'> in {page}"
    return parser


def source_entries() -> list[list[str]]:
    """The term lines of each entry of book/glossary.md, as written."""
    entries, inside, in_term = [], False, False
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines():
        if line.startswith("```{glossary}"):
            inside = True
        elif inside and line.startswith("```"):
            break
        elif inside and line and not line[0].isspace() and not line.startswith(":"):
            if not in_term:
                entries.append([])
            entries[-1].append(line.strip())
            in_term = True
        elif inside and line.strip():
            in_term = False
    return entries


def test_japanese_glossary_in_gojuon_order_japanese_term_first():
    built = built_glossary("ja").entries
    source = source_entries()
    assert len(built) == len(source)
    expected = []
    for terms in source:
        japanese = next((t for t in terms if JAPANESE.search(t)), None)
        english = terms[0]
        first = [japanese] if japanese else []
        expected.append((book_i18n.glossary_sort_key(japanese, english),
                         first + [t for t in terms if t != japanese]))
    expected = [terms for _, terms in sorted(expected)]
    assert built == expected
    # by hand: the first kana entries, the last one, then the Latin group
    firsts = [terms[0] for terms in built]
    assert firsts[:8] == ["鞍点", "暗黙の正則化効果", "1次モーメント", "異方性",
                          "ウォームアップ", "L2正則化", "オーバーシュート", "オプティマイザ"]
    kana = [t for t in firsts if JAPANESE.search(t)]
    assert firsts[:len(kana)] == kana, "a Latin-letter entry among the kana ones"
    assert kana[-3:] == ["モーメンタム", "モーメンタム係数", "モデルパラメータ"]
    assert firsts[len(kana):len(kana) + 3] == ["all-reduce", "AMSGrad", "convex function"]
    assert firsts[-1] == "ZeRO"


def test_english_glossary_as_sphinx_sorts_it():
    built = built_glossary("en").entries
    expected = sorted(source_entries(),
                      key=lambda terms: unicodedata.normalize("NFD", terms[0].lower()))
    assert built == expected
    assert built[0] == ["adaptive learning rate", "適応的学習率"]


def term_links(lang: str) -> list[tuple[Path, str, Path, str]]:
    """(page, href, target file, anchor) of every link to a glossary term."""
    site = HTML / lang
    links = []
    for page in sorted(site.rglob("*.html")):
        if page.relative_to(site).parts[0] in ("_static", "_sources"):
            continue
        text = page.read_text(encoding="utf-8")
        for href in re.findall(r'<a class="reference internal" href="([^"]*#term-[^"]*)"', text):
            parts = urlsplit(href)
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            links.append((page, href, target, unquote(parts.fragment)))
    return links


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_every_term_link_resolves(lang):
    require_site()
    links = term_links(lang)
    assert len(links) > 100, f"only {len(links)} term links on the {lang} site"
    ids: dict[Path, set[str]] = {}
    broken = []
    for page, href, target, anchor in links:
        if target not in ids:
            ids[target] = (set(re.findall(r'\bid="([^"]+)"', target.read_text(encoding="utf-8")))
                           if target.is_file() else set())
        if anchor not in ids[target]:
            broken.append(f"{page.relative_to(HTML)}: {href}")
    assert not broken, f"{len(broken)} term links lead nowhere: {broken[:10]}"
    # every entry of the glossary keeps an anchor on each of its terms
    glossary = built_glossary(lang)
    assert all(all(ids_) for ids_ in glossary.ids)
