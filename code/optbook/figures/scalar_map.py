r"""Figure kind ``scalar_map``: an odd quintic :math:`p(s) = a s + b s^3 + c s^5`
applied :math:`k` times to every :math:`s` of a log axis, recomputed in the page.

This is what one Newton--Schulz step does to each singular value of its
normalized input (:func:`optbook.newton_schulz_scalar`), so the figure shows
where ``k`` steps send small and large singular values.  Page side:
``js/src/scalar_map.js``.  Controls: a menu of coefficient presets and four
sliders, ``a``, ``b``, ``c`` (linear) and ``steps`` (integer); moving a
coefficient slider turns the menu to "custom".  The page draws
:math:`p^k(s)` over ``samples`` log-spaced points of ``domain``, a grey
reference curve, the identity :math:`s \mapsto s` (no step), the target line
at 1 and the threshold line, with a dot at every ``marks`` value, and reads out
(:func:`summary`, which the page computes the same way):

* :math:`p^k(s)` at each mark;
* the smallest :math:`s` of the axis whose image reaches ``threshold``: the
  first sample at or above it, refined by 60 bisection steps between that
  sample and the one before (``None`` when no sample reaches it);
* the largest finite value on the axis, where, and how far above 1 it is
  (the overshoot; 0 if it stays at or below 1); or, if some sample overflows
  (an infinity or NaN, as a large coefficient can produce within ten steps),
  the smallest such :math:`s`.

In Jupyter the same figure is a live ipywidgets box (:meth:`ScalarMapExplorer.widget`):
the preset menu sets the three coefficient sliders, and every move redraws
the matplotlib figure and its readout in the kernel.
Chapter 5.3's :func:`optbook.experiments.matrix.newton_schulz_explorer` is the example.
"""
from __future__ import annotations

import io
import math
import numbers
from typing import Mapping, Optional, Sequence

import numpy as np

from ..muon import newton_schulz_scalar
from . import plotting
from .explorer import Explorer
from .kernel import model_id
from .spec import param_spec
from .static import release

__all__ = ["scalar_map_figure", "iterate_map", "sample_grid", "summary", "readout_lines",
           "ScalarMapExplorer", "BISECTIONS"]

BISECTIONS = 60
"""Bisection steps that refine the first sample at or above the threshold."""
PARAM_NAMES = ("a", "b", "c", "steps")


def iterate_map(s, coefficients, steps: int) -> np.ndarray:
    """:math:`p^{steps}(s)` elementwise in float64, ``p(s) = a s + b s^3 + c s^5``.

    :func:`optbook.newton_schulz_scalar` itself (no check that ``s`` lies in
    [0, 1]: the figure's axis is the spec's); overflow gives inf or NaN
    silently, which the figure reads out as such.
    """
    s = np.asarray(s, dtype=float)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(newton_schulz_scalar(s, steps, tuple(float(v) for v in coefficients)),
                          dtype=float)


def sample_grid(domain: Sequence[float], samples: int) -> np.ndarray:
    """``lo * (hi / lo) ** (i / (samples - 1))``, i = 0 .. samples - 1: the page's axis points."""
    lo, hi = float(domain[0]), float(domain[1])
    return np.array([lo * (hi / lo) ** (i / (samples - 1)) for i in range(samples)])


def summary(spec: Mapping, a: float, b: float, c: float, steps: int) -> dict:
    """What the page reads out for coefficients ``(a, b, c)`` and ``steps``.

    ``{"marks": [(s, p^k(s))], "reaching": s or None, "largest": (value, s) or None,
    "overflow": s or None}`` (see the module docstring for each).
    """
    coefficients = (float(a), float(b), float(c))
    steps = int(steps)
    s = sample_grid(spec["domain"], spec["samples"])
    y = iterate_map(s, coefficients, steps)
    f = lambda x: float(iterate_map(np.array([x]), coefficients, steps)[0])   # noqa: E731
    threshold = spec["threshold"]
    reaching = None
    above = np.flatnonzero(y >= threshold)
    if above.size:
        i = int(above[0])
        if i == 0:
            reaching = float(s[0])
        else:
            lo, hi = float(s[i - 1]), float(s[i])
            for _ in range(BISECTIONS):
                mid = 0.5 * (lo + hi)
                if f(mid) >= threshold:
                    hi = mid
                else:
                    lo = mid
            reaching = hi
    finite = np.isfinite(y)
    overflow = None if finite.all() else float(s[np.flatnonzero(~finite)[0]])
    largest = None
    if finite.any():
        k = int(np.flatnonzero(finite)[np.argmax(y[finite])])
        largest = (float(y[k]), float(s[k]))
    return {"marks": [(float(m), float(iterate_map(np.array([m]), coefficients, steps)[0]))
                      for m in spec["marks"]],
            "reaching": reaching, "largest": largest, "overflow": overflow}


def _g3(v: float) -> str:
    return "∞" if v == math.inf else "−∞" if v == -math.inf else "NaN" if v != v else f"{v:.3g}"


def readout_lines(spec: Mapping, a: float, b: float, c: float, steps: int) -> list[str]:
    """The readout as text (Jupyter's widget and the still image's alt text; the page
    writes the same numbers with d3's ``.3~g`` format)."""
    got = summary(spec, a, b, c, steps)
    k = int(steps)
    marks = ", ".join(f"s = {_g3(m)} → {_g3(v)}" for m, v in got["marks"])
    lines = [f"after {k} step{'s' * (k != 1)}: {marks}"]
    t = _g3(spec["threshold"])
    lines.append(f"smallest s reaching {t}: "
                 + ("none on the axis" if got["reaching"] is None else _g3(got["reaching"])))
    if got["overflow"] is not None:
        lines.append(f"overflows from s = {_g3(got['overflow'])}")
    elif got["largest"] is not None:
        v, at = got["largest"]
        lines.append(f"largest value: {_g3(v)} at s = {_g3(at)} (overshoot {_g3(max(0.0, v - 1))})")
    return lines


def _check_real(name, v) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
        raise ValueError(f"Invalid {name}: {v!r} (expected a finite number)")
    return float(v)


def scalar_map_figure(presets: Sequence[tuple[str, Sequence[float]]], *, preset: int = 0,
                      steps: int = 5, max_steps: int = 10,
                      ranges: Mapping[str, tuple[float, float]] = {"a": (0.0, 4.0),
                                                                  "b": (-6.0, 0.0),
                                                                  "c": (-1.0, 3.0)},
                      domain: tuple[float, float] = (1e-4, 1.0),
                      y_domain: tuple[float, float] = (0.0, 1.4), samples: int = 400,
                      threshold: float = 0.7, marks: Sequence[float] = (1e-3, 1e-2),
                      reference: Optional[tuple[str, Sequence[float], int]] = None,
                      title: str = "", x_label: str = "s", y_label: str = "p^k(s)",
                      color: str = "#332288") -> "ScalarMapExplorer":
    """A ``scalar_map`` figure.

    Args:
        presets: ``[(label, (a, b, c)), ...]``, the menu (at least one); the
            page adds "custom" for slider values that match none.
        preset: the preset shown first; ``steps``: k shown first (1 .. ``max_steps``).
        ranges: the coefficient sliders' ``(min, max)``; every preset must lie inside.
        domain: the log axis of s (``0 < lo < hi``); ``samples`` points on it.
        y_domain: the fixed y range (values outside are clipped; the readout is exact).
        threshold: the readout's "smallest s reaching" level (a dashed line).
        marks: values of s shown as dots and read out.
        reference: optional ``(label, (a, b, c), k)`` drawn in grey.

    Returns a :class:`ScalarMapExplorer` (``spec["kind"] == "scalar_map"``).
    """
    if not presets:
        raise ValueError("Invalid presets: empty (give at least one (label, (a, b, c)))")
    choices = []
    for item in presets:
        try:
            label, coefficients = item
            coefficients = [_check_real("preset coefficient", v) for v in coefficients]
        except (TypeError, ValueError) as error:
            raise ValueError(f"Invalid preset {item!r} (expected (label, (a, b, c))): "
                             f"{error}") from None
        if len(coefficients) != 3:
            raise ValueError(f"Invalid preset {item!r}: {len(coefficients)} coefficients "
                             "(expected a, b, c)")
        choices.append({"label": str(label), "coefficients": coefficients})
    if isinstance(preset, bool) or not isinstance(preset, int) or not 0 <= preset < len(choices):
        raise ValueError(f"Invalid preset: {preset!r} (an index into the {len(choices)} presets)")
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 5:
        raise ValueError(f"Invalid max_steps: {max_steps!r} (an integer >= 5: a slider "
                         "needs at least 5 values)")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= max_steps:
        raise ValueError(f"Invalid steps: {steps!r} (an integer in [1, {max_steps}])")
    lo, hi = (_check_real("domain", v) for v in domain)
    if not 0 < lo < hi:
        raise ValueError(f"Invalid domain: {tuple(domain)!r} (a log axis needs 0 < lo < hi)")
    y0, y1 = (_check_real("y_domain", v) for v in y_domain)
    if not y0 < y1:
        raise ValueError(f"Invalid y_domain: {tuple(y_domain)!r} (need lo < hi)")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 2:
        raise ValueError(f"Invalid samples: {samples!r} (an integer >= 2)")
    threshold = _check_real("threshold", threshold)
    marks = [_check_real("mark", m) for m in marks]
    if any(not lo <= m <= hi for m in marks):
        raise ValueError(f"Invalid marks: {marks!r} (each inside the domain [{lo:g}, {hi:g}])")
    if set(ranges) != {"a", "b", "c"}:
        raise ValueError(f"Invalid ranges: keys {sorted(ranges)!r} (expected a, b, c)")
    first = choices[preset]["coefficients"]
    params = []
    for k, name in enumerate("abc"):
        r0, r1 = ranges[name]
        for choice in choices:
            v = choice["coefficients"][k]
            if not r0 <= v <= r1:
                raise ValueError(f"Invalid preset {choice['label']!r}: {name} = {v:g} lies "
                                 f"outside the slider's range [{r0:g}, {r1:g}]")
        params.append(param_spec(name, name, r0, r1, first[k], scale="linear",
                                 title=f"coefficient {name} of s" + {"a": "", "b": "³",
                                                                      "c": "⁵"}[name]))
    params.append(param_spec("steps", "k", 1, max_steps, steps, scale="int",
                             title="k, the number of steps"))
    ref = None
    if reference is not None:
        label, coefficients, k = reference
        coefficients = [_check_real("reference coefficient", v) for v in coefficients]
        if len(coefficients) != 3 or isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(f"Invalid reference: {reference!r} (expected (label, (a, b, c), k))")
        ref = {"label": str(label), "coefficients": coefficients, "steps": k}
    spec = {"kind": "scalar_map", "params": params, "choices": choices, "choice": preset,
            "choiceLabel": "coefficients", "domain": [lo, hi], "yDomain": [y0, y1],
            "samples": samples, "threshold": threshold, "marks": marks, "reference": ref,
            "color": str(color), "title": str(title), "xLabel": str(x_label),
            "yLabel": str(y_label)}
    grid = {p["name"]: sorted({p["min"], p["value"], p["max"]}) for p in params}
    defaults = {p["name"]: p["value"] for p in params}
    labels = {p["name"]: p["label"] for p in params}
    return ScalarMapExplorer(lambda a, b, c, steps: draw(spec, a, b, c, steps), grid, defaults,
                             labels=labels, title=title or "scalar map", spec=spec,
                             max_frames=1000)


def draw(spec: Mapping, a: float, b: float, c: float, steps: int, pyplot: bool = False):
    """The figure at ``(a, b, c)`` and ``steps`` with matplotlib: the still image and
    the Jupyter widget's frame (the page draws the same with d3)."""
    steps = int(steps)
    s = sample_grid(spec["domain"], spec["samples"])
    fig, ax = plotting.subplots(size="single", pyplot=pyplot)
    ax.plot(s, s, ":", color="0.5", linewidth=0.8, label="no step ($s$)")
    ax.axhline(1, color="0.5", linewidth=0.6)
    ax.axhline(spec["threshold"], color="0.6", linewidth=0.6, linestyle="--")
    ref = spec.get("reference")
    if ref:
        ax.plot(s, iterate_map(s, ref["coefficients"], ref["steps"]), color="0.7", linewidth=1,
                label=ref["label"])
    y = iterate_map(s, (a, b, c), steps)
    ax.plot(s, np.where(np.isfinite(y), y, np.nan), color=spec["color"], linewidth=2,
            label=f"$p^{{{steps}}}(s)$, p = ({a:.4g}, {b:.4g}, {c:.4g})")
    marks = np.asarray(spec["marks"], dtype=float)
    ax.plot(marks, iterate_map(marks, (a, b, c), steps), "o", color=spec["color"], markersize=4)
    ax.set(xscale="log", xlim=spec["domain"], ylim=spec["yDomain"], xlabel=spec["xLabel"],
           ylabel=spec["yLabel"], title=spec["title"])
    ax.legend(fontsize=6.5, loc="upper left")
    return fig


class ScalarMapExplorer(Explorer):
    """An :class:`~optbook.figures.Explorer` whose Jupyter widget links the preset menu
    to the coefficient sliders and prints the readout under the figure."""

    def widget(self):
        import ipywidgets as W

        spec = self.spec
        style = {"description_width": "initial"}
        sliders = {}
        for p in spec["params"]:
            common = dict(description=p["label"], value=p["value"], min=p["min"], max=p["max"],
                          continuous_update=True, style=style, layout=W.Layout(width="20em"))
            if p["scale"] == "int":
                sliders[p["name"]] = W.IntSlider(**common)
            else:
                sliders[p["name"]] = W.FloatSlider(step=1e-4, readout_format=".4f", **common)
        custom = len(spec["choices"])
        menu = W.Dropdown(options=[(c["label"], k) for k, c in enumerate(spec["choices"])]
                          + [("custom", custom)], value=spec["choice"],
                          description=spec["choiceLabel"], style=style)
        image = W.Image(value=self.frame(), format="png",
                        width=self._display_size(self.frame())[0],
                        layout=W.Layout(max_width="100%", height="auto"))
        readout = W.HTML()
        busy = []

        def values():
            return {n: s.value for n, s in sliders.items()}

        def redraw(change=None):
            if busy:
                return
            v = values()
            coefficients = [v["a"], v["b"], v["c"]]
            match = [k for k, c in enumerate(spec["choices"])
                     if all(math.isclose(x, y, abs_tol=5e-5) for x, y in zip(c["coefficients"],
                                                                               coefficients))]
            busy.append(1)
            menu.value = match[0] if match else custom
            busy.pop()
            fig = self.figure(**v)
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=self.dpi, facecolor="white")
            release(fig)
            image.value = buffer.getvalue()
            readout.value = "<br>".join(readout_lines(spec, **v))

        def choose(change):
            if busy or change["new"] == custom:
                return
            busy.append(1)
            for name, x in zip("abc", spec["choices"][change["new"]]["coefficients"]):
                sliders[name].value = x
            busy.pop()
            redraw()

        for s in sliders.values():
            s.observe(redraw, names="value")
        menu.observe(choose, names="value")
        readout.value = "<br>".join(readout_lines(spec, **values()))
        box = W.VBox([W.HBox([menu, *sliders.values()], layout=W.Layout(flex_flow="row wrap")),
                      image, readout], model_id=model_id(self))
        self._live = box
        self._controls = {"menu": menu, **sliders, "image": image, "readout": readout}
        return box
