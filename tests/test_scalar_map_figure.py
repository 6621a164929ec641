"""Figure kind ``scalar_map`` (optbook.figures.scalar_map) and chapter 5.3's Newton–Schulz figure.

Oracles: closed forms.  ``3 sin θ - 4 sin^3 θ = sin 3θ`` and
``5 sin θ - 20 sin^3 θ + 16 sin^5 θ = sin 5θ``, so ``k`` steps of those two
odd polynomials send ``sin θ`` to ``sin(3^k θ)`` and ``sin(5^k θ)``; and
``p(s) = 2 s`` sends ``s`` to ``2^k s``, so its readout (smallest s reaching
the threshold, largest value) is known exactly.  The page's side is
``tests/browser/test_scalar_map_figure.py``.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from optbook.figures import scalar_map as SM
from optbook.figures import scalar_map_figure
from optbook.figures import spec as F

PRESETS = [("quintic", (3.4445, -4.7750, 2.0315)), ("cubic", (1.5, -0.5, 0.0))]


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_sin_3theta_and_sin_5theta_iterates(k):
    theta = np.linspace(0.0, math.pi / 2, 41)
    np.testing.assert_allclose(SM.iterate_map(np.sin(theta), (3.0, -4.0, 0.0), k),
                               np.sin(3 ** k * theta), atol=1e-9 * 3 ** k)
    np.testing.assert_allclose(SM.iterate_map(np.sin(theta), (5.0, -20.0, 16.0), k),
                               np.sin(5 ** k * theta), atol=1e-9 * 5 ** k)


def test_one_step_is_the_polynomial():
    s = np.geomspace(1e-4, 1.5, 50)
    np.testing.assert_allclose(SM.iterate_map(s, (3.4445, -4.7750, 2.0315), 1),
                               np.polyval([2.0315, 0, -4.7750, 0, 3.4445, 0], s), rtol=1e-13)


def test_the_axis_is_log_spaced():
    s = SM.sample_grid((1e-4, 1.0), 401)
    assert s[0] == 1e-4 and s[-1] == pytest.approx(1.0, rel=1e-15)
    np.testing.assert_allclose(np.diff(np.log10(s)), 0.01, rtol=1e-9)


def _figure(**kwargs):
    return scalar_map_figure(PRESETS, **{"title": "t", **kwargs})


@pytest.mark.parametrize("k", [1, 3, 10])
def test_readout_of_the_doubling_map_is_known_exactly(k):
    spec = _figure(ranges={"a": (0, 4), "b": (-6, 0), "c": (-1, 3)}).spec
    got = SM.summary(spec, 2.0, 0.0, 0.0, k)
    assert got["reaching"] == pytest.approx(0.7 / 2 ** k, rel=1e-14)
    assert got["largest"] == (pytest.approx(2.0 ** k, rel=1e-14), pytest.approx(1.0, rel=1e-14))
    assert got["overflow"] is None
    assert got["marks"] == [(1e-3, pytest.approx(2 ** k * 1e-3)), (1e-2, pytest.approx(2 ** k * 1e-2))]
    lines = SM.readout_lines(spec, 2.0, 0.0, 0.0, k)
    assert lines[1] == f"smallest s reaching 0.7: {0.7 / 2 ** k:.3g}"
    assert lines[2] == f"largest value: {2.0 ** k:.3g} at s = 1 (overshoot {2.0 ** k - 1:.3g})"


def test_readout_when_nothing_reaches_and_when_it_overflows():
    spec = _figure().spec
    got = SM.summary(spec, 0.5, 0.0, 0.0, 3)               # s / 8: never reaches 0.7
    assert got["reaching"] is None and got["largest"][0] == pytest.approx(1 / 8)
    assert "none on the axis" in SM.readout_lines(spec, 0.5, 0.0, 0.0, 3)[1]
    got = SM.summary(spec, 4.0, 0.0, 3.0, 10)               # grows like s^(5^k): overflows
    assert got["overflow"] is not None and got["overflow"] < 1e-3
    assert SM.readout_lines(spec, 4.0, 0.0, 3.0, 10)[2].startswith("overflows from s = ")


def test_jordans_five_steps_put_the_axis_above_0002_between_068_and_12():
    """The chapter's printed claim, read off the figure's own readout machinery."""
    from optbook.experiments import matrix as MX

    spec = MX.newton_schulz_explorer().spec
    got = SM.summary(spec, *MX.NS_COEFFICIENTS, 5)
    assert 0.0015 < got["reaching"] < 0.002
    assert got["largest"][0] == pytest.approx(1.2, abs=0.01)
    cubic = SM.summary(spec, *MX.CUBIC_COEFFICIENTS, 5)
    assert cubic["reaching"] > 0.1 and cubic["largest"][0] <= 1.0


def test_newton_schulz_explorer_spec():
    from optbook.experiments import matrix as MX

    e = MX.newton_schulz_explorer()
    F.validate(e.spec)
    assert e.spec["kind"] == "scalar_map"
    assert [tuple(c["coefficients"]) for c in e.spec["choices"]] == list(MX.NS_CHOICES.values())
    assert [p["name"] for p in e.spec["params"]] == ["a", "b", "c", "steps"]
    assert [p["value"] for p in e.spec["params"]] == [*MX.NS_COEFFICIENTS, 5]
    steps = e.spec["params"][3]
    assert (steps["min"], steps["max"], steps["scale"]) == (1, 10, "int")
    assert e.spec["reference"] == {"label": "Jordan's quintic, 5 steps (reference)",
                                   "coefficients": list(MX.NS_COEFFICIENTS), "steps": 5}
    assert 'data-optbook-kind="scalar_map"' in e.static_html()
    text = repr(e)
    assert "computed in the page" in text and "coefficients: [Jordan's quintic" in text


def test_the_still_image_draws_the_map():
    import matplotlib
    matplotlib.use("Agg")
    e = _figure()
    fig = e.figure(a=1.5, b=-0.5, c=0.0, steps=3)
    line = next(ln for ln in fig.axes[0].lines if ln.get_linewidth() == 2)
    np.testing.assert_allclose(line.get_ydata(), SM.iterate_map(line.get_xdata(), (1.5, -0.5, 0), 3))
    assert fig.axes[0].get_xscale() == "log"


@pytest.mark.parametrize("kwargs, match", [
    (dict(presets=[]), "Invalid presets: empty"),
    (dict(presets=[("x", (1.0, 2.0))]), r"Invalid preset .*2 coefficients"),
    (dict(presets=[("x", (1.0, "b", 0.0))]), r"Invalid preset .*preset coefficient"),
    (dict(presets=[("x", (5.0, -1.0, 0.0))]), r"Invalid preset 'x': a = 5 lies outside .*\[0, 4\]"),
    (dict(presets=PRESETS, preset=2), r"Invalid preset: 2 \(an index into the 2 presets\)"),
    (dict(presets=PRESETS, steps=0), r"Invalid steps: 0 \(an integer in \[1, 10\]\)"),
    (dict(presets=PRESETS, max_steps=3), r"Invalid max_steps: 3"),
    (dict(presets=PRESETS, domain=(0.0, 1.0)), r"Invalid domain: \(0.0, 1.0\) \(a log axis"),
    (dict(presets=PRESETS, y_domain=(1.0, 0.0)), r"Invalid y_domain"),
    (dict(presets=PRESETS, samples=1), r"Invalid samples: 1"),
    (dict(presets=PRESETS, marks=(2.0,)), r"Invalid marks: \[2.0\]"),
    (dict(presets=PRESETS, threshold=math.nan), r"Invalid threshold: nan"),
    (dict(presets=PRESETS, ranges={"a": (0, 4)}), r"Invalid ranges: keys \['a'\]"),
    (dict(presets=PRESETS, reference=("r", (1.0, 0.0, 0.0), -1)), r"Invalid reference"),
])
def test_bad_input_is_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        scalar_map_figure(title="t", **kwargs)


def test_jupyter_widget_presets_move_the_sliders_and_the_readout_follows():
    import matplotlib
    matplotlib.use("Agg")
    pytest.importorskip("ipywidgets")
    e = _figure()
    box = e.widget()
    c = e._controls
    assert box is e._live
    assert c["menu"].value == 0 and (c["a"].value, c["b"].value, c["c"].value) == PRESETS[0][1]
    first_image, first_readout = c["image"].value, c["readout"].value
    assert first_readout == "<br>".join(SM.readout_lines(e.spec, *PRESETS[0][1], 5))
    c["menu"].value = 1                                     # the cubic
    assert (c["a"].value, c["b"].value, c["c"].value) == PRESETS[1][1]
    assert c["readout"].value == "<br>".join(SM.readout_lines(e.spec, *PRESETS[1][1], 5))
    assert c["image"].value != first_image
    c["steps"].value = 9
    assert c["readout"].value.startswith("after 9 steps:")
    c["a"].value = 2.0                                      # no preset: "custom"
    assert c["menu"].value == len(PRESETS)
    assert c["readout"].value == "<br>".join(SM.readout_lines(e.spec, 2.0, -0.5, 0.0, 9))
    c["a"].value = 1.5                                      # back on the cubic
    assert c["menu"].value == 1
