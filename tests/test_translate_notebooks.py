"""Japanese notebooks: markdown from the catalogs, code and outputs unchanged (issue 25).

``scripts/translate_notebooks.py`` writes the notebook a Japanese page's
download button gives. The translations used here are made up: every message
of a page's catalog becomes 【message】, so that each replaced block can be
seen, and nothing depends on how far the translators are. Checked:

* every message of every notebook's catalog is found in its notebook and
  replaced (none is left over, none is reported missing), including the two
  that sphinx-proof rewrites ("(Title)", "Proof. ...");
* code cells, outputs, cell count and metadata are the English notebook's;
* one translated notebook (chapter 6.3) runs under nbval and gives the
  stored outputs, as the English one does.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import translate_notebooks as T  # noqa: E402


@pytest.fixture(scope="module")
def marked_locales(tmp_path_factory) -> Path:
    """A copy of locales/ in which every message is 'translated' to 【message】."""
    from babel.messages import pofile
    locales = tmp_path_factory.mktemp("locales")
    shutil.copytree(ROOT / "locales", locales, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("*.mo"))
    for path in locales.rglob("*.po"):
        with open(path, "rb") as f:
            catalog = pofile.read_po(f)
        for message in catalog:
            if message.id:
                message.string = f"【{message.id}】"
                message.flags.discard("fuzzy")
        with open(path, "wb") as f:
            pofile.write_po(f, catalog)
    return locales


NOTEBOOKS = T.book_notebooks()


def test_the_book_has_notebooks():
    assert len(NOTEBOOKS) >= 16


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_message_lands_and_code_is_untouched(path, marked_locales):
    page = path.relative_to(ROOT).with_suffix("").as_posix()
    translations = T.load_translations(page, "ja", marked_locales)
    notebook, report = T.translate_notebook(path, "ja", marked_locales)
    assert not report.missing, report.missing[:5]
    left = sorted(set(translations) - report.used)
    assert not left, f"catalog messages not put into the notebook: {left[:5]}"
    english = json.loads(path.read_text(encoding="utf-8"))
    assert len(notebook["cells"]) == len(english["cells"])
    assert notebook["metadata"].pop("optbook") == {"text_language": "ja"}
    assert notebook["metadata"] == english["metadata"]
    for mine, theirs in zip(notebook["cells"], english["cells"]):
        if theirs["cell_type"] == "code":
            assert mine == theirs
        else:
            assert mine["cell_type"] == "markdown" and mine.get("metadata") == theirs.get("metadata")


def test_blocks_inside_directives_titles_and_proofs():
    text = ("## Going on\n\nA paragraph that\nspans two lines.\n\n"
            "```{prf:theorem} Rate of descent\n:label: thm\n\nThe rate is $q$.\n```\n\n"
            "```{prf:proof}\nWrite $e$ for the error.\n```\n\n"
            "- an item\n- another item\n")
    translations = {"Going on": "続き", "A paragraph that spans two lines.": "二行の段落。",
                    "(Rate of descent)": "（降下の速さ）", "The rate is $q$.": "速さは $q$。",
                    "Proof. Write $e$ for the error.": "証明。誤差を $e$ と書く。",
                    "another item": "別の項目"}
    report = T.Report()
    out = T.translate_markdown(text, translations, report)
    assert out == ("## 続き\n\n二行の段落。\n\n"
                   "```{prf:theorem} 降下の速さ\n:label: thm\n\n速さは $q$。\n```\n\n"
                   "```{prf:proof}\n誤差を $e$ と書く。\n```\n\n"
                   "- an item\n- 別の項目\n")
    assert report.used == set(translations) and not report.missing


def test_a_translated_notebook_runs_with_the_stored_outputs(marked_locales):
    # under ROOT, so that conftest.py applies the numeric envelope, as for book/
    out = ROOT / "_build" / "ja-notebook-test"
    shutil.rmtree(out, ignore_errors=True)
    path = ROOT / "book" / "06-stability.ipynb"
    T.write_notebooks(out, [path], "ja", marked_locales, quiet=True)
    written = json.loads((out / path.name).read_text(encoding="utf-8"))
    assert any("【" in "".join(c["source"]) for c in written["cells"] if c["cell_type"] == "markdown")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", str(out / path.name), "--nbval-current-env",
         "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg"),
         "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=ROOT, capture_output=True, text=True, timeout=1200, env=os.environ.copy())
    shutil.rmtree(out, ignore_errors=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
