"""The runtime's own words in either language, for the browser tests' readout parsers.

The figure runtime writes its readouts through ``t(template, values)`` of
``js/src/i18n.js``: the English template, or on a page whose ``<html lang>``
starts with "ja" the entry of its ``JA`` table.  The tests must read both, so
they take the table from that file (node evaluates it: no second copy here):

* ``lang_of(root)``: "ja" or "en", as the runtime decides it for that page;
* ``tr(template, lang, **values)``: the text ``t()`` writes (for exact
  comparisons such as the stored-runs readout list);
* ``pattern(template, lang, **groups)``: a regular expression of that text in
  which each ``{field}`` named in ``groups`` is that group's regex (wrapped in a
  named group) and every other character is literal, to parse a readout line.

Strings that come from the figure's spec (labels, titles) are already
translated in the Japanese build (figures.po); ``ui_text(english, lang)`` reads
that catalog for the texts the page carries outside the runtime (the note for
readers without scripts).
"""
from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
I18N_JS = ROOT / "js" / "src" / "i18n.js"
FIELD = re.compile(r"\{(\w+)\}")


@functools.lru_cache(maxsize=None)
def ja_table() -> dict[str, str]:
    """js/src/i18n.js's JA table, as node reads the module."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is missing: the readout parsers read js/src/i18n.js through it")
    script = (f"import({json.dumps(I18N_JS.as_uri())})"
              ".then(m => process.stdout.write(JSON.stringify(m.JA)))")
    done = subprocess.run([node, "--input-type=module", "-e", script],
                          capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0 or not done.stdout:
        raise RuntimeError(f"could not read the JA table of {I18N_JS}: {done.stderr.strip()}")
    return json.loads(done.stdout)


def template(english: str, lang: str) -> str:
    """The template t() uses on a page in ``lang`` (the English one when JA lacks it)."""
    if lang not in ("en", "ja"):
        raise ValueError(f"unknown page language {lang!r} (the runtime knows 'en' and 'ja')")
    return ja_table().get(english, english) if lang == "ja" else english


def tr(english: str, lang: str, **values) -> str:
    """What t(english, values) writes on a page in ``lang``."""
    return FIELD.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0),
                     template(english, lang))


def pattern(english: str, lang: str, **groups: str) -> str:
    """A regex of t(english)'s text in ``lang``: each field named in ``groups`` becomes
    the named group ``(?P<field>regex)``; every other character matches itself."""
    text = template(english, lang)
    fields = FIELD.findall(text)
    missing = set(groups) - set(fields)
    if missing:
        raise ValueError(f"{english!r} in {lang!r} has no field(s) {sorted(missing)}: {text!r}")
    out, pos, used = [], 0, set()
    for m in FIELD.finditer(text):
        out.append(re.escape(text[pos:m.start()]))
        name = m.group(1)
        if name in groups:
            out.append(f"(?P={name})" if name in used else f"(?P<{name}>{groups[name]})")
            used.add(name)
        else:
            out.append(re.escape(m.group(0)))
        pos = m.end()
    out.append(re.escape(text[pos:]))
    return "".join(out)


def lang_of(root) -> str:
    """The page language as js/src/i18n.js's pageLanguage() decides it, from a locator or page."""
    lang = root.evaluate("x => ((x && x.ownerDocument) || document).documentElement.lang || ''")
    return "ja" if lang.lower().startswith("ja") else "en"


@functools.lru_cache(maxsize=None)
def _figure_catalog(lang: str) -> dict[str, str]:
    sys.path.insert(0, str(ROOT / "scripts"))
    import book_i18n  # noqa: E402  (the build's own reader of figures.po)
    return book_i18n.figure_table(lang)


def ui_text(english: str, lang: str) -> str:
    """A figure string the Python side writes (optbook.figures), as the ``lang`` build shows it."""
    return english if lang == "en" else _figure_catalog(lang).get(english, english)


def english_of(text: str, lang: str) -> str:
    """The English figure string a ``lang`` page shows as ``text`` (itself when untranslated)."""
    if lang == "en":
        return text
    back = {v: k for k, v in _figure_catalog(lang).items()}
    return back.get(text, text)


def lang_of_file(path: Path) -> str:
    """The language of a built page, from its ``<html lang>`` (no browser needed)."""
    head = Path(path).read_text(encoding="utf-8", errors="replace")[:4000]
    m = re.search(r"<html[^>]*\blang=\"([^\"]*)\"", head)
    return "ja" if m and m.group(1).lower().startswith("ja") else "en"
