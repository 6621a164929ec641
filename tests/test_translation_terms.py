"""The glossary is the Japanese edition's term base (issue 25).

Where an English string of a page uses a glossary term that the article
names in Japanese (``book/glossary.md``: the English term line, then the
article's Japanese one), its translation must use that Japanese term. Terms
inside code, math, links, roles and quoted names are not prose and are
skipped; a plural English form counts as the term, and a translation that
keeps the English word (as the article does with "Momentum SGD") passes.
Spaces are ignored ("2 次モーメント" is "2次モーメント"). The exceptions, where
the translation rightly says it otherwise, are listed with the reason.
"""
from __future__ import annotations

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
NOT_PROSE = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$|``.+?``|`[^`]+`|\{[a-z:]+\}`[^`]*`"
                       r"|\]\([^)]*\)|https?://\S+|\"[^\"]*\"", re.S)

# (catalog, English term) -> why its Japanese term is not in the translation
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("02-sgd", "implicit regularization"):
        "暗黙の正則化: the article's 暗黙の正則化効果 without 効果 reads better inside a list",
    ("03-momentum", "momentum"):
        "'the ball's momentum' is the physical 運動量, not the optimizer",
    ("03-momentum", "Nesterov accelerated gradient"):
        "the method's name, Nesterov の加速勾配法; 先読み is the article's word for its look-ahead",
    ("03-momentum", "overshoot"):
        "the under-damped ball 'overshoots and rings': 行き過ぎて振動する, a motion, not the glossary's step",
    ("04-adaptive", "overshoot"):
        "steps that 'overshoot' are 行き過ぎる steps of the iterate, said as a verb",
    ("06-lr-schedules", "overshoot"):
        "the sharpness 'overshoots' a threshold: 超える, a quantity, not the iterate",
    ("06-stability", "overshoot"):
        "the sharpness and the linear rule 'overshoot': 超える / 行き過ぎ, not the iterate's overshoot",
    ("07-decay-and-clipping", "plateau"):
        "flat regions of an RNN's loss surface (平坦な領域), not the glossary's stall of training",
    ("glossary", "plateau"):
        "the loss surface's plateaus (平坦な領域) in the entry 'loss landscape', not a stall",
}


def term_pairs() -> list[tuple[str, list[str]]]:
    """[(English term, [the article's Japanese terms])] for entries that have one."""
    return [(e[0], [t for t in e[1:] if CJK.search(t)])
            for e in build_book.glossary_entries(GLOSSARY) if any(CJK.search(t) for t in e[1:])]


PAIRS = term_pairs()


def missing_terms(english: str, japanese: str) -> list[str]:
    prose = NOT_PROSE.sub(" ", english)
    squeezed = re.sub(r"\s+", "", japanese)
    return [en for en, ja in PAIRS
            if re.search(r"(?<![\w-])" + re.escape(en) + r"s?(?![\w-])", prose, re.I)
            and not any(re.sub(r"\s+", "", j) in squeezed for j in ja)
            and en.lower() not in japanese.lower()]


@pytest.mark.parametrize("catalog", sorted(CATALOGS.glob("*.po")), ids=lambda p: p.stem)
def test_translations_use_the_glossarys_japanese_terms(catalog):
    with catalog.open("rb") as f:
        po = read_po(f)
    found, used = [], set()
    for message in po:
        if not message.id or not message.string or message.fuzzy or message.string == message.id:
            continue
        for term in missing_terms(message.id, message.string):
            if (catalog.stem, term) in EXCEPTIONS:
                used.add((catalog.stem, term))
                continue
            found.append(f"{term!r} without {dict(PAIRS)[term]}: {message.string[:70]!r}")
    assert not found, f"{catalog.name}:\n" + "\n".join(found)


def test_exceptions_are_still_needed():
    stale = []
    for (stem, term), why in EXCEPTIONS.items():
        path = CATALOGS / f"{stem}.po"
        with path.open("rb") as f:
            po = read_po(f)
        if not any(term in missing_terms(m.id, m.string) for m in po
                   if m.id and m.string and not m.fuzzy and m.string != m.id):
            stale.append((stem, term))
    assert not stale, f"no longer needed, remove from EXCEPTIONS: {stale}"


def test_the_check_sees_a_missing_term():
    assert missing_terms("The learning rate sets the step.", "学習率がステップを決める。") == []
    assert missing_terms("The learning rates differ.", "ステップ幅が異なる。") == ["learning rate"]
    assert missing_terms("Call `learning_rate` or \"learning rate\".", "呼ぶ。") == []
    assert missing_terms("The second moment.", "2 次モーメント。") == []
    assert missing_terms("Momentum SGD.", "Momentum SGD。") == []
