"""What a ``scalar_map`` figure's readout must say, computed in Python (optbook.figures.scalar_map).

``check_readout(root, spec)`` reads the figure's aria-live readout and its
current values (``root.optbookFigure.values``) and asserts that every number
equals :func:`optbook.figures.scalar_map.summary` at those values, rounded to
the 3 significant digits the page prints; it returns the readout's text.
Used by ``test_scalar_map_figure.py`` and by ``test_figures.py``'s walk over
the built book.  The words are the runtime's (js/src/i18n.js) in the page's
language (English or Japanese), through ``readout_i18n``.
"""
from __future__ import annotations

import math
import re

from readout_i18n import lang_of, pattern, tr

NUMBER = r"(−?[\d.]+(?:e[−+-]?\d+)?|∞|−∞|NaN)"


def _number(text: str) -> float:
    text = text.replace("−", "-")
    special = {"∞": math.inf, "-∞": -math.inf, "NaN": math.nan}
    return special[text] if text in special else float(text)


def _g3(v: float) -> float:
    return v if not math.isfinite(v) else float(f"{v:.3g}")


def check_readout(root, spec) -> str:
    """The aria-live readout holds optbook's summary at the figure's current values."""
    from optbook.figures import scalar_map as SM

    v = root.evaluate("r => ({...r.optbookFigure.values})")
    want = SM.summary(spec, v["a"], v["b"], v["c"], v["steps"])
    lines = root.locator(".optbook-fig-readout[aria-live]").inner_text().strip().splitlines()
    k = v["steps"]
    lang = lang_of(root)
    after = "after {steps} step: {marks}" if k == 1 else "after {steps} steps: {marks}"
    m = re.fullmatch(pattern(after, lang, steps=str(k), marks=".*"), lines[0].strip())
    assert m, lines[0]
    marks = re.findall(rf"s = {NUMBER} → {NUMBER}", m["marks"])
    assert len(marks) == len(want["marks"])
    for (s, value), (ws, wv) in zip(marks, want["marks"]):
        assert _number(s) == _g3(ws)
        got = _number(value)
        assert (math.isnan(got) and math.isnan(wv)) or got == _g3(wv), (lines[0], wv)
    level = re.escape(f"{spec['threshold']:.3g}")
    none = re.escape(tr("none on the axis", lang))
    m = re.fullmatch(pattern("smallest s reaching {threshold}: ", lang, threshold=level)
                     + f"({none}|{NUMBER})", lines[1].strip())
    assert m, lines[1]
    if want["reaching"] is None:
        assert m.group(2) == tr("none on the axis", lang)
    else:
        assert _number(m.group(2)) == _g3(want["reaching"]), (lines[1], want["reaching"])
    if want["overflow"] is not None:
        m = re.fullmatch(pattern("overflows from s = {s}", lang, s=NUMBER), lines[2].strip())
        assert m and _number(m.group(1)) == _g3(want["overflow"]), (lines[2], want["overflow"])
    else:
        m = re.fullmatch(pattern("largest value: {v} at s = {s} (overshoot {over})", lang,
                                 v=NUMBER, s=NUMBER, over=NUMBER), lines[2].strip())
        assert m, lines[2]
        value, at = want["largest"]
        assert [_number(m[g]) for g in ("v", "s", "over")] == [
            _g3(value), _g3(at), _g3(max(0.0, value - 1))]
    return "\n".join(lines)
