"""Every Japanese translation keeps what must not change (issue 25).

A translated string (``locales/ja/LC_MESSAGES/book/<page>.po``) may reorder
and reword its English freely, but these must come through exactly, because a
reader of either edition must see the same mathematics, the same numbers and
links that resolve:

* inline math (``$...$``) and inline code, as multisets;
* the targets of ``{doc}``, ``{ref}``, ``{eq}``, ``{numref}``, ``{prf:ref}``
  and the keys of ``{cite...}`` roles (display text may be translated);
* link targets (URLs);
* every number the English states (the translation may add numbers: "three
  seeds" may become "3 つのシード");
* ``{term}`` roles name a term of the glossary (English or the article's
  Japanese, ``book/glossary.md``), and the same glossary entry as the English;
* bold markers, and Japanese text in every translation that differs from its
  English (a copy is allowed: a name, a formula-only table cell).

Fuzzy and untranslated strings are not checked here: ``test_catalogs.py``
lists them, and the Japanese page shows the English until they are done.
"""
from __future__ import annotations

import collections
import re
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import build_book  # noqa: E402
CATALOGS = ROOT / "locales" / "ja" / "LC_MESSAGES" / "book"
GLOSSARY = ROOT / "book" / "glossary.md"

CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$", re.S)
ROLE = re.compile(r"\{([a-z:]+)\}`([^`]*)`")
CODE = re.compile(r"``(.+?)``|(?<![`}])`([^`]+)`")
URL = re.compile(r"\]\(([^)\s]+)\)|https?://[^\s)>\]]+")
NUMBER = re.compile(r"(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?")
KEEP_CONTENT = ("eq", "numref", "math")


def glossary_index() -> dict[str, int]:
    """Each term of the glossary (lower-cased) -> its entry's number."""
    return {term.lower(): i for i, entry in enumerate(build_book.glossary_entries(GLOSSARY))
            for term in entry}


TERMS = glossary_index()


def _target(content: str) -> str:
    m = re.search(r"<([^>]+)>\s*$", content)
    return (m.group(1) if m else content).strip()


def invariants(text: str) -> dict[str, collections.Counter]:
    math = collections.Counter(m.group(0) for m in MATH.finditer(text))
    rest = MATH.sub(" ", text)
    roles, terms = collections.Counter(), collections.Counter()
    for role, content in ROLE.findall(rest):
        if role == "term":
            target = _target(content).lower()
            terms[TERMS.get(target, f"not in the glossary: {target}")] += 1
        elif role.startswith("cite") or role in KEEP_CONTENT:
            roles[role, content] += 1
        else:
            roles[role, _target(content)] += 1
    rest = ROLE.sub(" ", rest)
    code = collections.Counter(a or b for a, b in CODE.findall(rest))
    urls = collections.Counter(m.group(1) or m.group(0) for m in URL.finditer(rest))
    numbers = collections.Counter(NUMBER.findall(CODE.sub(" ", rest)))
    return {"math": math, "roles": roles, "terms": terms, "code": code,
            "links": urls, "numbers": numbers}


def problems(english: str, japanese: str) -> list[str]:
    if japanese == english:
        return []
    a, b = invariants(english), invariants(japanese)
    found = []
    for kind in ("math", "roles", "terms", "code", "links"):
        if a[kind] != b[kind]:
            found.append(f"{kind}: missing {dict(a[kind] - b[kind])}, "
                         f"added {dict(b[kind] - a[kind])}")
    if a["numbers"] - b["numbers"]:
        found.append(f"numbers missing: {dict(a['numbers'] - b['numbers'])}")
    unknown = [t for t in b["terms"] if isinstance(t, str)]
    if unknown:
        found.append(f"{{term}} targets {unknown}")
    if english.count("**") != japanese.count("**"):
        found.append("bold markers differ")
    if not CJK.search(japanese):
        found.append("no Japanese in a translation that differs from the English")
    return found


def catalogs() -> list[Path]:
    return sorted(CATALOGS.glob("*.po"))


@pytest.mark.parametrize("catalog", catalogs(), ids=lambda p: p.stem)
def test_translations_keep_math_numbers_links_and_terms(catalog):
    with catalog.open("rb") as f:
        po = read_po(f)
    bad = []
    for message in po:
        if not message.id or not message.string or message.fuzzy:
            continue
        for problem in problems(message.id, message.string):
            line = message.locations[0][1] if message.locations else "?"
            bad.append(f"{catalog.name} (source line {line}): {problem}\n  {message.id[:90]!r}")
    assert not bad, "\n".join(bad)


def test_the_checks_catch_what_they_claim():
    """A correct translation passes; each kind of damage is caught."""
    en = ("With {term}`learning rates <learning rate>` of $\\eta = 0.1$ and "
          "`optbook.sgd`, see {doc}`02-sgd` and [the paper](https://a.b/c): "
          "1,000 **steps**.")
    ja = ("{term}`学習率` $\\eta = 0.1$ と `optbook.sgd` では（{doc}`02-sgd` と"
          "[論文](https://a.b/c) を参照）1,000 **ステップ**。")
    assert problems(en, ja) == []
    damaged = {
        "math": ja.replace("0.1$", "0.2$"),
        "code": ja.replace("optbook.sgd", "optbook.adam"),
        "roles": ja.replace("{doc}`02-sgd`", "{doc}`03-momentum`"),
        "links": ja.replace("https://a.b/c", "https://a.b/d"),
        "numbers": ja.replace("1,000", "100"),
        "terms": ja.replace("{term}`学習率`", "{term}`勾配`"),
        "{term} targets": ja.replace("{term}`学習率`", "{term}`学習のレート`"),
        "bold": ja.replace("**ステップ**", "ステップ"),
    }
    for kind, text in damaged.items():
        assert any(p.startswith(kind) for p in problems(en, text)), kind
    assert problems("Adam", "Adam") == []
    assert problems("Adam and SGD", "Adam and SGD.")[-1].startswith("no Japanese")
