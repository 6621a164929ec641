"""The figures' strings on the Japanese site (issue 25, "Figures").

The spec schema marks the strings a reader sees (``"x-translate"``);
``optbook.figures.translate`` finds them in a spec and swaps them;
``scripts/catalogs.py`` keeps them in ``locales/ja/LC_MESSAGES/figures.po``;
``scripts/book_i18n.py`` swaps them in the Japanese build. Checked here
against hand-written specs (what must and must not be picked), the stored
figures of the notebooks (every translated spec still passes the schema),
and the catalog (complete, same ``{…}`` fields as the English, in sync).
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from optbook.figures import spec as F
from optbook.figures import translate as T

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import book_i18n  # noqa: E402
import catalogs  # noqa: E402

RUNS = {
    "kind": "runs", "params": [], "headline": "{optimizer}, 3 seeds",
    "axes": [{"name": "optimizer", "label": "optimizer", "title": "the optimizer",
              "values": ["adam", "sgd"], "labels": ["Adam", "0.1"], "numeric": False,
              "value": 0}],
    "panels": [{"title": "validation loss", "readout": "final",
                "x": {"label": "step", "scale": "linear", "domain": [0, 1]},
                "y": {"label": "loss", "scale": "log", "domain": [0.1, 1]},
                "marks": [{"type": "hline", "y": 0.5, "text": "chance", "color": "#999"}]}],
    "series": [{"name": "adam", "label": "Adam run", "color": "#0072B2", "mean": True,
                "reference": False}],
    "points": [{"panels": [{"series": {"adam": {"y": [[1.0, 0.5]]}}}], "notes": ["a note"]}],
}


def test_display_strings_are_the_marked_ones_only():
    found = T.display_strings(RUNS)
    assert found == {
        ("headline",): "{optimizer}, 3 seeds",
        ("axes", 0, "label"): "optimizer", ("axes", 0, "title"): "the optimizer",
        ("axes", 0, "labels", 0): "Adam",               # "0.1": nothing to translate
        ("panels", 0, "title"): "validation loss",
        ("panels", 0, "x", "label"): "step", ("panels", 0, "y", "label"): "loss",
        ("panels", 0, "marks", 0, "text"): "chance",
        ("series", 0, "label"): "Adam run",
        ("points", 0, "notes", 0): "a note",
    }  # not: kind, names, values ("adam"), colours, scales, readout


def test_regime_bands_and_references_are_found_through_the_schema():
    paths = {"regimes": {"param": "lr", "bands": [[0.1, "converges"]], "last": "diverges"}}
    found = set(T.display_strings({"kind": "paths", **paths}).values())
    assert found == {"converges", "diverges"}
    smap = {"kind": "scalar_map", "reference": {"label": "Jordan's quintic", "coefficients": [1, 2, 3],
                                                "steps": 5}, "title": "T x"}
    assert set(T.display_strings(smap).values()) == {"Jordan's quintic", "T x"}


def test_an_unknown_kind_is_a_clear_error():
    with pytest.raises(ValueError, match="Invalid spec kind: 'pie'"):
        T.display_strings({"kind": "pie"})


def test_translate_spec_swaps_only_what_the_table_has():
    out = T.translate_spec(RUNS, {"validation loss": "検証損失", "adam": "ADAM", "Adam": "アダム"})
    assert out["panels"][0]["title"] == "検証損失"
    assert out["axes"][0]["values"] == ["adam", "sgd"]     # a name, not a label
    assert out["axes"][0]["labels"] == ["アダム", "0.1"]
    assert out["series"][0]["name"] == "adam" and out["series"][0]["label"] == "Adam run"
    assert RUNS["panels"][0]["title"] == "validation loss"  # the input is left alone


def stored_figure_html():
    for nb in sorted((ROOT / "book").glob("*.ipynb")):
        for cell in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
            for output in cell.get("outputs", []):
                text = output.get("data", {}).get("text/html")
                text = "".join(text) if isinstance(text, list) else text
                if text and T.SPEC_SCRIPT.search(text):
                    yield nb.name, text


def test_an_empty_table_gives_the_stored_html_back_byte_for_byte():
    found = list(stored_figure_html())
    assert len(found) >= 10
    for name, text in found:
        assert T.translate_html(text, {}) == text, name


def test_every_stored_figure_translated_still_passes_the_schema():
    table = book_i18n.figure_table("ja")
    assert table, "locales/ja/LC_MESSAGES/figures.po has no translation"
    for name, text in stored_figure_html():
        translated = T.translate_html(text, table)
        for spec in T.specs_in_html(translated):
            F.validate(spec)
            left = [s for s in T.display_strings(spec).values() if s in table and table[s] != s]
            assert not left, (name, left)
        # the still image's alt text and the note under it (readers without scripts)
        assert T.static_strings(text) and not set(T.static_strings(translated)) & set(table), name


def test_alt_text_and_note_are_swapped_and_escaped():
    from optbook.figures.static import figure_html, NO_SCRIPT_NOTE
    png = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000100")
    page = figure_html(RUNS, png, (1, 1), "Adam's \"loss\"")
    assert T.static_strings(page) == ["Adam's \"loss\"", NO_SCRIPT_NOTE]
    out = T.translate_html(page, {"Adam's \"loss\"": "Adam の「損失」 & <x>", NO_SCRIPT_NOTE: "静止画像。"})
    assert 'alt="Adam の「損失」 &amp; &lt;x&gt;"' in out and "<em>静止画像。</em>" in out
    assert T.translate_html(page, {}) == page


def figures_catalog(lang="ja"):
    from babel.messages import pofile
    with open(catalogs.figures_po(lang), "rb") as f:
        return [m for m in pofile.read_po(f) if m.id]


def test_every_translation_keeps_the_placeholders_of_its_original():
    broken = [(m.id, m.string) for m in figures_catalog()
              if m.string and T.placeholders(m.id) != T.placeholders(m.string)]
    assert not broken, "translations whose {…} fields differ from the English:\n" + "\n".join(
        f"  {i!r} -> {s!r}" for i, s in broken)


def test_placeholders():
    assert T.placeholders("Adam: η = {lr:g}, β₁ = {b1}") == ["{b1}", "{lr:g}"]
    assert T.placeholders("no field") == []


def test_the_figures_catalog_is_complete():
    messages = figures_catalog()
    assert len(messages) >= 100
    todo = [m.id for m in messages if not m.string or m.fuzzy]
    assert not todo, f"untranslated or fuzzy in figures.po: {todo}"


def test_the_figures_catalog_is_in_sync_with_the_stored_figures(tmp_path):
    copy = tmp_path / "locales"
    shutil.copytree(catalogs.LOCALES, copy, ignore=shutil.ignore_patterns("*.mo"))
    assert not catalogs.update_figures("ja", copy), (
        "figures.po does not match the notebooks' figures: run `make catalogs`")
    ids = {m.id for m in figures_catalog()}
    assert ids == {s for s, _ in catalogs.figure_strings()}


def test_update_figures_merges_new_changed_and_removed_strings(tmp_path):
    from babel.messages import pofile
    book = tmp_path / "book"
    book.mkdir()

    def notebook(*labels):
        spec = {**RUNS, "series": [{**RUNS["series"][0], "label": label} for label in labels]}
        html = '<script type="application/json" class="optbook-figure-spec">' + T.dump_spec(spec) + "</script>"
        cell = {"cell_type": "code", "outputs": [{"data": {"text/html": html}}]}
        (book / "a.ipynb").write_text(json.dumps({"cells": [cell]}), encoding="utf-8")

    notebook("first run", "second run")
    assert catalogs.update_figures("ja", tmp_path, book)
    path = catalogs.figures_po("ja", tmp_path)
    with open(path, "rb") as f:
        cat = pofile.read_po(f)
    cat["first run"].string = "最初の実行"
    cat["second run"].string = "二番目の実行"
    with open(path, "wb") as f:
        pofile.write_po(f, cat)
    catalogs.update_figures("ja", tmp_path, book)
    assert not catalogs.update_figures("ja", tmp_path, book)   # unchanged: not rewritten
    notebook("first run", "second runs")
    assert catalogs.update_figures("ja", tmp_path, book)
    with open(path, "rb") as f:
        cat = pofile.read_po(f)
    assert cat["first run"].string == "最初の実行" and not cat["first run"].fuzzy
    assert cat["second runs"].fuzzy and cat["second runs"].string == "二番目の実行"
    assert "second run" not in cat and not cat.obsolete
