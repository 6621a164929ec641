"""readout_i18n (the browser tests' reader of the runtime's words) agrees with the runtime.

No browser: node runs js/src/i18n.js's own ``t()`` on every template of its JA
table and on its English key, with sample values, and the Python side must
write the same text (``tr``) and parse it back (``pattern``) to the same values.
So a Japanese readout the walk over ``_build/html/ja`` reads is read with the
table the page was built with, and the parsers' templates exist in that table.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

import readout_i18n as R

if shutil.which("node") is None:
    pytest.skip("node is missing (the figure runtime's tests need it too)", allow_module_level=True)

# The templates the readout parsers read (test_figures.py, stored_readout.py,
# scalar_map_readout.py): each must be a key of the runtime's JA table, or the
# Japanese walk would look for English words on a Japanese page.
PARSED = [
    "{label}: diverged at step {step}",
    "{label}: f − f* after {steps} steps = {value}",
    "{label}: expected loss at step {mid} = {a}, after {steps} steps = {b}",
    "after {steps} step: {marks}", "after {steps} steps: {marks}",
    "smallest s reaching {threshold}: ", "none on the axis", "overflows from s = {s}",
    "largest value: {v} at s = {s} (overshoot {over})",
    "{x} {value}: {count} of {seeds} seeds diverged", "{label}: no {x} where every seed finished",
    "{label}: lowest {what}{value}", " at {x} = {value}", "seed {seed} diverged at {x} {value}",
    "{label}: every seed diverged (first at {x} {value})", "{label}: diverged at {x} {value}",
    "{label}: final {what}{value}", " ({range}) over {count} seeds", " (mean {value})", " [at {x}]",
    "{panel}, {where}: every seed diverged", ", {count} of {seeds} seeds diverged",
    "diverged (step {step})",
    "{panel}, {where}: {value} mean {mean}{spread}; seeds {list}{lost}", "diverged",
]


def _values(template):
    return {name: f"<{name}{k}>" for k, name in enumerate(dict.fromkeys(R.FIELD.findall(template)))}


def _node_t(cases):
    """[t(template, values, lang)] as js/src/i18n.js writes them."""
    script = (f"import({json.dumps(R.I18N_JS.as_uri())}).then(m => process.stdout.write("
              f"JSON.stringify({json.dumps(cases)}.map(([s, v, l]) => m.t(s, v, l)))))")
    done = subprocess.run(["node", "--input-type=module", "-e", script],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_the_parsers_templates_are_in_the_runtimes_table():
    missing = [s for s in PARSED if s not in R.ja_table()]
    assert not missing, f"templates the parsers read that js/src/i18n.js does not translate: {missing}"


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_tr_writes_what_the_runtime_writes_and_pattern_reads_it_back(lang):
    table = R.ja_table()
    assert len(table) >= 40
    cases = [[s, _values(s), lang] for s in table]
    for (s, values, _), written in zip(cases, _node_t(cases)):
        assert R.tr(s, lang, **values) == written, s
        groups = {name: "<[^<>]*>" for name in values}      # adjacent fields stay apart
        m = re.fullmatch(R.pattern(s, lang, **groups), written)
        assert m and m.groupdict() == values, (s, written)
    if lang == "ja":              # the table is really used: Japanese text, not the English key
        assert R.tr("{label}: diverged at step {step}", lang, label="GD", step=3) == "GD：ステップ 3 で発散"


def test_bad_input_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="unknown page language 'fr'"):
        R.tr("diverged", "fr")
    with pytest.raises(ValueError, match="no field"):
        R.pattern("{label}: diverged at step {step}", "ja", steps=r"\d+")
