"""Sphinx extension: what the translation catalogs hold, and what they leave out.

Loaded by ``_config.yml`` (``sphinx.local_extensions: {book_i18n: scripts}``).

The Japanese edition is the English sources plus message catalogs
(``locales/ja/LC_MESSAGES/book/<page>.po``, made by ``make catalogs``).
Sphinx's gettext builder extracts every paragraph, heading, caption, list
item and admonition of a page, and a few things that no translator should
touch. This extension marks those untranslatable before Sphinx extracts or
translates anything (a transform that runs before Sphinx's own ``Locale``
transform, priority 20):

* display math (``$$ ... $$``, ``{math}`` blocks, ``amsmath`` environments):
  formulas are the same in both editions, and a formula in a catalog could
  only drift from the English one;
* everything a notebook's code cell printed (MyST-NB's cell outputs):
  numbers are produced by the code and checked by nbval, so a translated
  copy could silently keep an old number. (Stream and HTML outputs are not
  extracted by Sphinx anyway; a ``text/markdown`` output would be.)

* a paragraph, heading, table cell or glossary term with nothing to translate: only inline math, inline code,
  references to another page by its own title (``{doc}``), citations
  (``{cite:t}``) and text without a Latin letter (numbers, version
  numbers, and the Japanese terms the glossary already gives), e.g. the
  cells of the notation table. ``{term}`` references stay translatable: a
  term's Japanese form is the translator's choice.

In a translated build it also translates the in-page figures: the strings a
reader sees in a figure (slider labels, titles, legends, headlines) live in
the figure's spec, JSON inside a code cell's HTML output, which Sphinx never
extracts. ``scripts/catalogs.py`` collects them into one catalog,
``locales/<lang>/LC_MESSAGES/figures.po``; the transform
``TranslateFigures`` replaces each translated one inside the JSON
(``optbook.figures.translate``) as the page is read, and records the catalog
as a dependency of the page, so a new translation rebuilds it. The words the
runtime writes itself (readouts, "diverged", axis words) come from its own
two-language table (``js/src/i18n.js``), chosen by the page's ``<html lang>``.

Code cells themselves are literal blocks, which Sphinx does not extract
(``gettext_additional_targets`` is empty).

It also gives every page of both sites what ties it to its twin in the
other language (``make book`` builds ``_build/html/en`` and
``_build/html/ja``; a page's twin has the same path under the other one):

* a language switcher in the article header (the template
  ``book/_templates/optbook-language.html``, added to sphinx-book-theme's
  ``article_header_end``): "日本語" on an English page, "English" on a
  Japanese one, linking the twin page;
* ``<link rel="alternate" hreflang>`` to the twin in every page's head;
* on a Japanese page whose catalog is not listed in
  ``locales/ja/complete.txt``, a banner at the top of the article, in
  Japanese, saying that the translation of this page is not finished and
  that what is not translated yet appears in English, with the number of
  translated strings and a link to the English page. The list is checked by
  ``tests/test_catalogs.py``: a listed page has no fuzzy and no
  untranslated string.

On the Japanese site (``language = ja``) it also reorders the glossary
(``book/glossary.md``, a ``{glossary}`` with ``:sorted:``, which Sphinx sorts
by the English term, the first line of each entry): each entry shows its
Japanese term first, and the entries follow the 五十音 order of the
Japanese terms' readings (``glossary_sort_key``: katakana and hiragana
alike, a voiced kana right after its plain one, the long vowel mark ー read
as the vowel before it). The readings come from Janome (``token.reading``),
except where it is wrong or the term mixes digits or Latin letters with kana
(``KANA_READINGS``). Entries without a Japanese term (the article keeps the
English word) follow the kana entries as a group of their own, in A–Z
order: on this site a reader looks up the article's term, and the
kana entries start where a Japanese reader expects あ. Only nodes move, so
every term keeps its anchor (``term-...``) and every ``{term}`` link
resolves as before; the English site is left exactly as Sphinx sorts it.
"""

from __future__ import annotations

import functools

import re
import unicodedata
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.transforms import SphinxTransform


def in_cell_output(node: nodes.Node) -> bool:
    """True if ``node`` sits inside the output area of a notebook code cell."""
    parent = node.parent
    while parent is not None:
        if isinstance(parent, nodes.Element) and (
                parent.get("nb_element") in ("cell_code_output", "mime_bundle")
                or "cell_output" in parent.get("classes", ())):
            return True
        parent = parent.parent
    return False


LATIN = re.compile(r"[A-Za-z]")


def nothing_to_translate(node: nodes.Node) -> bool:
    """True if ``node`` holds no prose: math, code, own-title links, letterless text."""
    if isinstance(node, (nodes.math, nodes.literal, addnodes.index)):
        return True
    if isinstance(node, nodes.Text):
        return not LATIN.search(node.astext())
    if isinstance(node, addnodes.pending_xref):
        by_own_title = node.get("reftype") == "doc" and not node.get("refexplicit")
        citation = node.get("refdomain") == "cite"
        return by_own_title or citation
    if isinstance(node, nodes.Element) and node.children:
        return all(nothing_to_translate(child) for child in node.children)
    return False


class MarkUntranslatable(SphinxTransform):
    """Mark display math and code-cell outputs ``translatable = False``."""

    default_priority = 10  # before sphinx.transforms.i18n.Locale (20)

    def apply(self, **kwargs) -> None:
        for node in self.document.findall(nodes.math_block):
            node["translatable"] = False
        for node in self.document.findall(nodes.TextElement):
            if in_cell_output(node) or nothing_to_translate(node):
                node["translatable"] = False


FIGURE_SPEC = 'class="optbook-figure-spec"'


def figure_table(lang: str, locales: Path | None = None) -> dict[str, str]:
    """{English: translation} of figures.po: translated, not fuzzy ({} without one)."""
    path = (locales or LOCALES) / lang / "LC_MESSAGES" / "figures.po"
    if not path.is_file():
        return {}
    from babel.messages import pofile
    with open(path, "rb") as f:
        catalog = pofile.read_po(f)
    return {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy}


class TranslateFigures(SphinxTransform):
    """In a translated build, swap the figures' display strings in their specs."""

    default_priority = 30

    def apply(self, **kwargs) -> None:
        lang = self.config.language
        if not lang or lang == "en":
            return
        raws = [n for n in self.document.findall(nodes.raw)
                if n.get("format") == "html" and FIGURE_SPEC in n.astext()]
        if not raws:
            return
        path = LOCALES / lang / "LC_MESSAGES" / "figures.po"
        if path.is_file():
            self.env.note_dependency(str(path))
        table = figure_table(lang)
        if not table:
            return
        try:
            from optbook.figures.translate import translate_html
        except ImportError:
            import sys
            sys.path.insert(0, str(LOCALES.parent / "code"))
            from optbook.figures.translate import translate_html
        for node in raws:
            text = translate_html(node.astext(), table)
            node.replace(node.children[0], nodes.Text(text))


LANGUAGES = ("en", "ja")
SWITCH_LABEL = {"en": "English", "ja": "日本語"}
SWITCH_TITLE = {"en": "Read this page in English",
                "ja": "このページを日本語で読む"}
TEMPLATES = Path(__file__).resolve().parent.parent / "book" / "_templates"
LOCALES = Path(__file__).resolve().parent.parent / "locales"
COMPLETE = "complete.txt"
BANNER = (
    '<div class="admonition optbook-translation-banner" lang="ja" role="note">\n'
    '<p class="admonition-title">翻訳中のページ</p>\n'
    "<p>このページの日本語訳はまだ完成していません（{done} / {total} 件翻訳済み）。"
    "未翻訳の部分は英語のまま表示されています。"
    '<a href="{twin}" hreflang="en" lang="en">English original</a></p>\n'
    "</div>\n")


def complete_pages(lang: str, locales: Path = LOCALES) -> set[str]:
    """The pages listed in locales/<lang>/complete.txt ('book/02-sgd'; # comments)."""
    path = locales / lang / COMPLETE
    if not path.is_file():
        return set()
    lines = (line.split("#", 1)[0].strip() for line in path.read_text("utf-8").splitlines())
    return {line for line in lines if line}


def translation_counts(lang: str, page: str, locales: Path = LOCALES) -> tuple[int, int] | None:
    """(translated and not fuzzy, all) strings of a page's catalog, None without one."""
    path = locales / lang / "LC_MESSAGES" / f"{page}.po"
    if not path.is_file():
        return None
    from babel.messages import pofile
    with open(path, "rb") as f:
        catalog = pofile.read_po(f)
    messages = [m for m in catalog if m.id]
    done = sum(1 for m in messages if m.string and not m.fuzzy)
    return done, len(messages)


def twin_url(pagename: str, lang: str, other: str) -> str:
    """The relative URL of a page's twin: ja/book/02-sgd.html -> ../../en/book/02-sgd.html."""
    return "../" * (pagename.count("/") + 1) + f"{other}/{pagename}.html"


def add_switcher(app: Sphinx, config) -> None:
    """Load book/_templates and put the switcher in the article header."""
    if str(TEMPLATES) not in config.templates_path:
        config.templates_path.append(str(TEMPLATES))
    options = config.html_theme_options
    end = list(options.get("article_header_end") or ["article-header-buttons.html"])
    if "optbook-language.html" not in end:
        options["article_header_end"] = ["optbook-language.html", *end]


def page_context(app: Sphinx, pagename: str, templatename: str, context: dict,
                 doctree) -> None:
    if app.builder.name != "html":  # the single page that make pdf prints
        return
    lang = app.config.language if app.config.language in LANGUAGES else "en"
    other = "ja" if lang == "en" else "en"
    url = twin_url(pagename, lang, other)
    context["optbook_twin"] = {"url": url, "lang": other, "label": SWITCH_LABEL[other],
                               "title": SWITCH_TITLE[other]}
    context["metatags"] = context.get("metatags", "") + (
        f'<link rel="alternate" hreflang="{other}" href="{url}" />\n')
    if lang == "en" or doctree is None or "body" not in context:
        return
    if pagename in complete_pages(lang):
        return
    counts = translation_counts(lang, pagename)
    if counts is None:
        return
    context["body"] = BANNER.format(done=counts[0], total=counts[1], twin=url) + context["body"]


@functools.lru_cache(maxsize=None)
def _root_translations(lang: str, root_doc: str) -> dict[str, str]:
    """{English: translation} of the root page's catalog (it holds the toc's captions)."""
    path = LOCALES / lang / "LC_MESSAGES" / f"{root_doc}.po"
    if not path.is_file():
        return {}
    from babel.messages import pofile
    with open(path, "rb") as f:
        catalog = pofile.read_po(f)
    return {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy}


def translate_toc_captions(app: Sphinx, doctree) -> None:
    """The sidebar's part captions ("Chapters", "Appendices") in the page's language.

    sphinx-external-toc inserts the root page's toctrees after Sphinx has
    translated the page, so their captions, though extracted into the root
    page's catalog, stay English; this puts the catalog's translation in."""
    lang = app.config.language
    if lang in (None, "", "en"):
        return
    translations = _root_translations(lang, app.config.root_doc)
    for node in doctree.findall(addnodes.toctree):
        caption = node.get("caption")
        if caption and caption in translations:
            node["caption"] = translations[caption]


JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")  # kana, kanji
# Readings (katakana) where Janome's is wrong (前処理: ゼン, 極: ゴク, 汎: ヒロシ,
# 異方: アヤカタ) or where it has none (digits, Latin letters).
KANA_READINGS = {
    "1次モーメント": "イチジモーメント",
    "2次モーメント": "ニジモーメント",
    "2次情報": "ニジジョウホウ",
    "L2正則化": "エルツーセイソクカ",
    "前処理行列": "マエショリギョウレツ",
    "極分解": "キョクブンカイ",
    "汎化": "ハンカ",
    "異方性": "イホウセイ",
}
IGNORED = "・ 　"  # ニュートン・シュルツ反復: the dot is not read
SMALL = dict(zip("ァィゥェォッャュョヮヵヶ", "アイウエオツヤユヨワカケ"))
VOWELS = {v: column for column, v_row in zip(
    "アイウエオ", ("アカサタナハマヤラワ", "イキシチニヒミリヰ", "ウクスツヌフムユル",
                   "エケセテネヘメレヱ", "オコソトノホモヨロヲ")) for v in v_row}
LONG = "ー"


def katakana(text: str) -> str:
    """Hiragana turned into katakana; everything else unchanged."""
    return "".join(chr(ord(c) + 0x60) if "\u3041" <= c <= "\u3096" else c for c in text)


@functools.lru_cache(maxsize=1)
def _tokenizer():
    from janome.tokenizer import Tokenizer
    return Tokenizer()


def reading(term: str) -> str:
    """The reading of a Japanese term in katakana: KANA_READINGS, else
    Janome's reading of each word, else (a word Janome does not know, such as
    シャーディング) the word itself if it is written in kana."""
    term = term.strip()
    if term in KANA_READINGS:
        return KANA_READINGS[term]
    if not term:
        raise ValueError("an empty glossary term has no reading")
    parts = []
    for token in _tokenizer().tokenize(term):
        word = token.reading if token.reading not in ("*", "", None) else token.surface
        word = katakana(word)
        if not all(c in IGNORED or c == LONG or "\u30a1" <= c <= "\u30f6" for c in word):
            raise ValueError(
                f"no kana reading for {token.surface!r} in the glossary term {term!r}: "
                "add the term's reading to KANA_READINGS in scripts/book_i18n.py")
        parts.append(word)
    return "".join(parts)


def gojuon_key(kana: str) -> tuple:
    """A sort key for a reading in 五十音 order (as JIS X 4061 sorts kana):
    first by the plain kana (ガ as カ, ャ as ヤ, ー as the vowel before it;
    hiragana as katakana), then by voicing (カ, ガ, パ: plain, dakuten,
    handakuten), then small after full-size kana and ー after a written vowel."""
    primary, voicing, size = [], [], []
    for c in katakana(kana):
        if c in IGNORED:
            continue
        if c == LONG:
            if not primary:
                raise ValueError(f"{kana!r} starts with the long vowel mark ー")
            primary.append(VOWELS.get(primary[-1], primary[-1]))
            voicing.append(0)
            size.append(2)
            continue
        base, *marks = unicodedata.normalize("NFD", c)
        if not "\u30a1" <= base <= "\u30f6":
            raise ValueError(f"{c!r} in {kana!r} is not a kana")
        primary.append(SMALL.get(base, base))
        voicing.append(1 if "\u3099" in marks else 2 if "\u309a" in marks else 0)
        size.append(1 if base in SMALL else 0)
    return "".join(primary), tuple(voicing), tuple(size)


def glossary_sort_key(japanese: str | None, english: str) -> tuple:
    """Kana entries first in 五十音 order of the Japanese term's reading, then
    the entries without a Japanese term in A–Z order of the English one."""
    if japanese:
        return (0, gojuon_key(reading(japanese)), japanese)
    return (1, unicodedata.normalize("NFD", english.lower()), english)


def japanese_term(item: nodes.Element) -> nodes.term | None:
    """The first term line of a glossary entry written in Japanese."""
    for child in item.children:
        if isinstance(child, nodes.term) and JAPANESE.search(child.astext()):
            return child
    return None


class JapaneseGlossaryOrder(SphinxTransform):
    """On the Japanese site: every glossary entry shows its Japanese term
    first, and the entries follow the 五十音 order of those terms."""

    default_priority = 510  # after i18n (20) and Sphinx's GlossarySorter (500)

    def apply(self, **kwargs) -> None:
        if self.config.language != "ja":
            return
        for glossary in self.document.findall(addnodes.glossary):
            if not glossary.get("sorted"):
                continue
            for dlist in glossary.findall(nodes.definition_list):
                keyed = []
                for item in dlist.children:
                    terms = [c for c in item.children if isinstance(c, nodes.term)]
                    japanese = japanese_term(item)
                    if japanese is not None and japanese is not terms[0]:
                        item.remove(japanese)
                        item.insert(0, japanese)
                    english = next((t.astext() for t in terms if t is not japanese), "")
                    keyed.append((glossary_sort_key(
                        japanese.astext() if japanese is not None else None, english), item))
                dlist[:] = [item for _, item in sorted(keyed, key=lambda pair: pair[0])]


def setup(app: Sphinx) -> dict:
    app.add_transform(MarkUntranslatable)
    app.add_transform(TranslateFigures)
    app.add_transform(JapaneseGlossaryOrder)
    app.connect("doctree-read", translate_toc_captions, priority=900)
    app.connect("config-inited", add_switcher)
    app.connect("html-page-context", page_context)
    # env_version: a build whose saved environment was made by another
    # version of this extension re-reads every page (an incremental build
    # would otherwise keep the glossary in its old order). Bump it when the
    # glossary's order (KANA_READINGS, gojuon_key) changes.
    return {"env_version": 1, "parallel_read_safe": True, "parallel_write_safe": True}
