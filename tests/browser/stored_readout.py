"""What a stored-runs or heatmap figure must print, computed in Python from its spec.

The page computes its readouts in JavaScript (``js/src/runs.js``,
``js/src/heatmap.js``); these functions say the same thing from the stored
numbers with numpy-free Python arithmetic in the same order, so the strings
must match exactly.  Numbers are written as d3's ``.4~g`` (4 significant
digits) and ``String(x)`` (shortest round trip) write them.  The words are the
runtime's (``js/src/i18n.js``) in the page's language, ``lang`` ("en" or "ja"),
through ``readout_i18n.tr``; labels and titles come from the spec as the page
holds it (already translated in the Japanese build).
"""
from __future__ import annotations

import math
import re

from readout_i18n import lang_of, pattern, tr


def g4(v: float) -> str:
    """d3.format(".4~g")(v): JavaScript's toPrecision(4) (the exact double rounded half up
    to 4 digits; exponential below 1e-6 or from 1e4 on), trailing zeros trimmed, a minus
    sign (U+2212) in front of a negative number."""
    from decimal import ROUND_HALF_UP, Decimal

    d = Decimal(abs(float(v)))
    if d == 0:
        return "0"
    e = d.adjusted()
    r = d.quantize(Decimal(1).scaleb(e - 3), rounding=ROUND_HALF_UP)
    if r.adjusted() != e:                 # 9999.6 -> 1.000e+4
        e = r.adjusted()
        r = d.quantize(Decimal(1).scaleb(e - 3), rounding=ROUND_HALF_UP)
    digits = str(r.scaleb(3 - e).to_integral_value())      # the 4 significant digits
    if -6 <= e < 4:
        s = format(r, "f")
        s = s.rstrip("0").rstrip(".") if "." in s else s
    else:
        m = (digits[0] + "." + digits[1:]).rstrip("0").rstrip(".")
        s = f"{m}e{e:+d}"
    return ("−" if v < 0 else "") + s


def js_str(v: float) -> str:
    """String(v) in JavaScript for a finite double: the shortest round-trip digits, written
    positionally for 1e-6 <= |v| < 1e21 and as "1.5e-7" / "1e+21" otherwise."""
    import numpy as np

    v = float(v)
    if v == 0:
        return "0"
    if 1e-6 <= abs(v) < 1e21:
        return np.format_float_positional(v, unique=True, trim="-")
    mantissa, exp = repr(v).split("e")
    return f"{mantissa}e{int(exp):+d}"


def ok(v) -> bool:
    return v is not None and math.isfinite(v)


def seed_mean(ys):
    """Mean over seeds at each x; None where a seed is not finite there."""
    n = max(len(y) for y in ys)
    out = [None] * n
    for t in range(n):
        if all(t < len(y) and ok(y[t]) for y in ys):
            total = 0.0
            for y in ys:
                total += y[t]
            out[t] = total / len(ys)
    return out


def first_bad(y) -> int:
    return next((k for k, v in enumerate(y) if not ok(v)), -1)


def _range(xs) -> str:
    return f"{g4(min(xs))}–{g4(max(xs))}"


def series_line(panel: dict, label: str, data: dict, lang: str = "en") -> str:
    """The readout line of one series (runs.js seriesReadout)."""
    xs = data.get("x") or panel["x"]["values"]
    seeds = data["y"]
    what = f"{panel['y']['label']} " if panel["y"]["label"] else ""
    xname = panel["x"].get("symbol") or panel["x"]["label"]
    if panel["readout"] == "min":
        mean = seed_mean(seeds)
        k = -1
        for t, v in enumerate(mean):
            if ok(v) and (k < 0 or v < mean[k]):
                k = t
        lost = [tr("{x} {value}: {count} of {seeds} seeds diverged", lang,
                   x=xname, value=js_str(x), count=c, seeds=len(seeds))
                for x, c in ((x, sum(not ok(y[t]) for y in seeds)) for t, x in enumerate(xs)) if c]
        if k < 0:
            return tr("{label}: no {x} where every seed finished", lang, label=label, x=xname)
        at = [y[k] for y in seeds]
        text = (tr("{label}: lowest {what}{value}", lang, label=label, what=what, value=g4(mean[k]))
                + (f" ({_range(at)})" if len(seeds) > 1 else "")
                + tr(" at {x} = {value}", lang, x=xname, value=g4(xs[k])))
        return f"{text}; {', '.join(lost)}" if lost else text
    bad = [first_bad(y) for y in seeds]
    diverged = [tr("seed {seed} diverged at {x} {value}", lang, seed=i, x=xname, value=js_str(xs[k]))
                for i, k in enumerate(bad) if k >= 0]
    if all(k >= 0 for k in bad):
        at = min(bad)
        return tr("{label}: every seed diverged (first at {x} {value})" if len(seeds) > 1
                  else "{label}: diverged at {x} {value}", lang,
                  label=label, x=xname, value=js_str(xs[at]))
    live = [y for y, k in zip(seeds, bad) if k < 0]
    finals = [y[-1] for y in live]
    mean = sum(finals) / len(finals)
    text = tr("{label}: final {what}{value}", lang, label=label, what=what, value=g4(mean)) + (
        tr(" ({range}) over {count} seeds", lang, range=_range(finals), count=len(live))
        if len(live) > 1 else "")
    return f"{text}; {', '.join(diverged)}" if diverged else text


def point_of(spec: dict, index: dict) -> dict:
    k = 0
    for a in spec["axes"]:
        k = k * len(a["values"]) + index[a["name"]]
    return spec["points"][k]


def runs_readout(spec: dict, index: dict, lang: str = "en") -> list[str]:
    """Every line of a runs figure's readout list at the grid point ``index``."""
    point = point_of(spec, index)
    lines = []
    for p, data in zip(spec["panels"], point["panels"]):
        for s in spec["series"]:
            d = data["series"].get(s["name"])
            if d is None:
                continue
            lines.append(s["label"] if p["readout"] == "none" else series_line(p, s["label"], d, lang))
        for m in p.get("marks", []) + data.get("marks", []):
            if m.get("label"):
                lines.append(m["label"])
    return lines + list(point.get("notes", []))


def cell_text(spec: dict, panel: dict, row: int, col: int, lang: str = "en") -> str:
    """heatmap.js cellText."""
    seeds = [s[row][col] for s in panel["values"]]
    live = [v for v in seeds if ok(v)]
    where = (f"{spec['x']['label']} = {spec['x']['labels'][col]}, "
             f"{spec['y']['label']} = {spec['y']['labels'][row]}")
    if not live:
        return tr("{panel}, {where}: every seed diverged", lang, panel=panel["label"], where=where)
    mean = sum(live) / len(live)
    spread = f" ({g4(min(live))}–{g4(max(live))})" if len(seeds) > 1 else ""
    lost = len(seeds) - len(live)
    lost_text = tr(", {count} of {seeds} seeds diverged", lang, count=lost, seeds=len(seeds)) if lost else ""
    shown = ", ".join(js_str(v) if ok(v) else tr("diverged", lang) for v in seeds)
    return tr("{panel}, {where}: {value} mean {mean}{spread}; seeds {list}{lost}", lang,
              panel=panel["label"], where=where, value=spec["value"]["label"], mean=g4(mean),
              spread=spread, list=shown, lost=lost_text)


def hover_values(panel: dict, text: str, lang: str = "en"):
    """(x as written, {series label: [seed values, None where diverged]}) from a hover line
    of a runs panel: "<title>, <x name> = <x>: <label>: v, v, v (mean m); <label>: ..."
    (the mean and "[at x]" notes in ``lang``'s words)."""
    xname = panel["x"].get("symbol") or panel["x"]["label"]
    prefix = f"{panel['title']}, {xname} = " if panel["title"] else f"{xname} = "
    assert text.startswith(prefix), (prefix, text)
    x, body = text[len(prefix):].split(": ", 1)
    out = {}
    for part in body.split("; "):
        label, _, values = part.rpartition(": ")
        values = re.sub(f"(?:{pattern(' (mean {value})', lang, value='.*?')})?"
                        f"(?:{pattern(' [at {x}]', lang, x='.*?')})?$", "", values)
        out[label] = [None if v == tr("diverged", lang) else float(v) for v in values.split(", ")]
    return x, out


# --- walking a figure in the page (Playwright) ------------------------------------------

def readout_lines(root, selector=".optbook-fig-readout") -> list[str]:
    return [t.strip() for t in root.locator(selector).first.inner_text().strip().splitlines() if t.strip()]


def walk_runs_figure(page, root, spec) -> int:
    """Every position of every axis control: the shown value, aria-valuetext and the whole
    readout list match the spec's stored point; the figure changes at every position.
    Returns how many positions were checked."""
    index = {a["name"]: a["value"] for a in spec["axes"]}
    lang = lang_of(root)
    state = lambda: (root.locator(".optbook-fig-headline").inner_text(), tuple(readout_lines(root)))

    def check(where):
        assert readout_lines(root) == runs_readout(spec, index, lang), (where, index)

    check("default")
    checked = 1
    for a in spec["axes"]:
        control = root.locator(f'[data-optbook-axis="{a["name"]}"]')
        n = len(a["values"])
        if a["numeric"]:
            assert control.get_attribute("max") == str(n - 1)
            control.focus()
            page.keyboard.press("Home")
            positions = [("Home", 0)] + [("ArrowRight", k) for k in range(1, n)] + [("End", n - 1)]
            previous = None
            for key, k in positions:
                if key != "Home":
                    page.keyboard.press(key)
                index[a["name"]] = k
                text = control.get_attribute("aria-valuetext")
                assert text == f"{a['label']} = {a['labels'][k]}", text
                assert control.locator("xpath=..").locator("output").inner_text() == a["labels"][k]
                check(f"{a['name']} at {k}")
                now = state()
                if key == "ArrowRight":
                    assert now != previous, f"{a['name']}: position {k} changed nothing"
                previous = now
                checked += 1
        else:
            previous = None
            for k in range(n):
                control.select_option(index=k)
                index[a["name"]] = k
                check(f"{a['name']} = {a['labels'][k]}")
                now = state()
                assert now != previous, f"{a['name']}: option {k} changed nothing"
                previous = now
                checked += 1
        # back to the default, so each axis is walked from the figure's default view
        if a["numeric"]:
            control.fill(str(a["value"]))
        else:
            control.select_option(index=a["value"])
        index[a["name"]] = a["value"]
    check("back at the default")
    return checked


def hover_panel(page, root, spec, i: int, fractions=(0.1, 0.5, 0.9)):
    """Point at panel i at several x; return [(x written, {label: values})] and check each
    hover line against the stored values of the current grid point."""
    index = root.evaluate("r => r.optbookFigure.index")
    point = point_of(spec, index)
    panel, data = spec["panels"][i], point["panels"][i]
    svg = root.locator(".optbook-fig-panels svg.optbook-fig-svg").nth(i)
    svg.scroll_into_view_if_needed()
    box = svg.bounding_box()
    labels = {s["name"]: s["label"] for s in spec["series"]}
    lang = lang_of(root)
    seen = []
    for f in fractions:
        page.mouse.move(box["x"] + box["width"] * (54 + f * (430 - 66)) / 430, box["y"] + box["height"] / 2)
        x, values = hover_values(panel, root.locator(".optbook-fig-hover").inner_text(), lang)
        assert set(values) == {labels[n] for n in data["series"]}
        matched = 0
        for name, d in data["series"].items():
            written = [js_str(v) for v in (d.get("x") or panel["x"]["values"])]
            if x in written:            # the series read at the x the line names
                k = written.index(x)
                assert values[labels[name]] == [y[k] for y in d["y"]], (name, x)
                matched += 1
        assert matched, f"hover at {x}: no series stored at that x"
        seen.append((x, values))
    return seen
