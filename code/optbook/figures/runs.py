"""Figure kind ``runs``: stored curves of training runs, drawn in the page.

Training cannot run in a page, so its results are stored in the page as
numbers (4 significant digits; NaN/inf as null, read as "diverged") and drawn
by the runtime (``js/src/runs.js``; its sibling kind ``heatmap`` is
:mod:`optbook.figures.heatmap`, which shares this module's :class:`Panel` and
rounding), with a still image of the default view for readers without
scripts (drawn here with matplotlib from the same stored numbers)::

    from optbook.figures import Axis, Panel, curves_figure

    curves_figure(
        lambda lr, clip: {"adam": losses[lr, clip, "adam"], "sgd": losses[lr, clip, "sgd"]},
        axes=[Axis("lr", "η", [1e-3, 3e-3, 1e-2, 3e-2, 1e-1]), Axis("clip", "clipping", ["off", "on"])],
        panels=[Panel("training loss", x=eval_steps, ylabel="loss", yscale="log")],
        title="Adam and SGD over η, with and without clipping")

(``losses[...]`` is an array of shape (seeds, len(eval_steps)).)  Keep a
chapter page under 400 KB (``tests/browser/test_figures.py`` checks it):
about 7 bytes per stored number.

* :func:`curves_figure` -- a grid of named axes (a numeric axis is a slider
  that snaps to its stored values, a named one a menu); for the selected grid
  point, panels of curves: several series, each seed thin and the seeds' mean
  thick, reference series in grey, marks (vertical lines, points, bands); a
  hover/keyboard readout of the stored values of every series and seed at the
  nearest x; a list of each series' final value as mean (min–max) over seeds,
  or the step at which a seed diverged (non-finite values are stored as null).
* :func:`heatmap_figure` -- one or more panels over two numeric axes sharing
  one colour scale; each cell the mean over seeds; hover or keyboard focus
  reads out the cell's coordinates, mean, min–max and every seed; the best
  cell of each panel is marked; optionally, clicking a cell draws its stored
  curves in a curves panel.
"""
from __future__ import annotations

import itertools
import math
import numbers
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np

from . import plotting
from .explorer import Explorer

__all__ = ["Axis", "Panel", "Series", "Mark", "Curve", "curves_figure", "round_sig",
           "draw_runs_point"]

DIGITS = 4          # significant digits stored (the readouts print what is stored)
GREY = "#999999"
_CSS_COLOR = re.compile(r"^(#[0-9a-fA-F]{3}|#[0-9a-fA-F]{6}|[a-z]+)$")
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
            "#17becf", "#bcbd22", "#7f7f7f"]


def round_sig(value, digits: int = DIGITS):
    """``value`` rounded to ``digits`` significant digits; NaN/inf -> None (JSON null)."""
    v = float(value)
    if not math.isfinite(v):
        return None
    return float(f"{v:.{digits}g}")


def _rounded(a, digits=DIGITS) -> list:
    a = np.asarray(a, dtype=float)
    if a.ndim == 0:
        return round_sig(a, digits)
    return [_rounded(row, digits) for row in a]


def _is_number(v) -> bool:
    return isinstance(v, (numbers.Real, np.number)) and not isinstance(v, (bool, np.bool_))


@dataclass(frozen=True)
class Axis:
    """One axis of the stored grid: a slider over numeric ``values``, else a menu.

    ``labels`` are what the reader sees (default: ``f"{v:.4g}"`` for numbers,
    ``str(v)`` otherwise); ``default`` is one of ``values`` (default: the first);
    ``menu=True`` makes a menu of numeric values too (e.g. a two-way switch).
    """

    name: str
    label: str
    values: Sequence
    labels: Optional[Sequence[str]] = None
    default: Any = None
    title: str = ""
    menu: bool = False

    def checked(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"Invalid Axis name: {self.name!r} (use an identifier)")
        values = [v.item() if isinstance(v, np.generic) else v for v in self.values]
        if not values:
            raise ValueError(f"Invalid Axis {self.name!r}: no values")
        if len(set(values)) != len(values):
            raise ValueError(f"Invalid Axis {self.name!r}: repeated values {values}")
        numeric = all(_is_number(v) for v in values)
        if numeric and any(not math.isfinite(float(v)) for v in values):
            raise ValueError(f"Invalid Axis {self.name!r}: non-finite value in {values}")
        labels = list(self.labels) if self.labels is not None else \
            [f"{v:.4g}" if numeric else str(v) for v in values]
        if len(labels) != len(values) or len(set(labels)) != len(labels):
            raise ValueError(f"Invalid Axis {self.name!r} labels: {labels!r} (one distinct label per value)")
        default = values[0] if self.default is None else self.default
        if default not in values:
            raise ValueError(f"Invalid Axis {self.name!r} default: {default!r} (choose from {values})")
        return values, labels, numeric and not self.menu, values.index(default)


@dataclass(frozen=True)
class Mark:
    """A mark on a panel: ``"vline"`` at ``x``, ``"hline"`` at ``y`` (``text`` written on it),
    ``"point"`` at (``x``, ``y``), ``"band"`` from ``x`` to ``x1``.  A ``label`` is also
    listed in the readout (with the mark's colour)."""

    type: str
    x: Optional[float] = None
    y: Optional[float] = None
    x1: Optional[float] = None
    label: str = ""
    text: str = ""
    color: Optional[str] = None

    def spec(self) -> dict:
        need = {"vline": ("x",), "hline": ("y",), "point": ("x", "y"), "band": ("x", "x1")}
        if self.type not in need:
            raise ValueError(f"Invalid Mark type: {self.type!r} (one of {', '.join(need)})")
        for k in need[self.type]:
            if getattr(self, k) is None or not math.isfinite(float(getattr(self, k))):
                raise ValueError(f"Invalid Mark: a {self.type} needs a finite {k} (got {getattr(self, k)!r})")
        out = {"type": self.type}
        if self.type == "band":
            out.update(x0=round_sig(self.x, 6), x1=round_sig(self.x1, 6))
        else:
            out.update({k: round_sig(getattr(self, k), 6) for k in need[self.type]})
        for k in ("label", "text", "color"):
            if getattr(self, k):
                out[k] = getattr(self, k)
        return out


@dataclass(frozen=True)
class Panel:
    """One panel of curves.  ``x``: the x values its series share (e.g. the evaluation
    steps; a :class:`Curve` may bring its own).  ``readout``: ``"final"`` (the last value
    per series), ``"min"`` (the lowest point of the seeds' mean, e.g. over a swept rate)
    or ``"none"``.  ``xlim``/``ylim`` fix the axes (default: every grid point's data)."""

    title: str = ""
    x: Optional[Sequence[float]] = None
    xlabel: str = "step"
    ylabel: str = ""
    xscale: str = "linear"
    yscale: str = "linear"
    xlim: Optional[tuple] = None
    ylim: Optional[tuple] = None
    readout: str = "final"
    marks: Sequence[Mark] = ()
    xsymbol: Optional[str] = None


@dataclass(frozen=True)
class Series:
    """A named series; ``mean``: draw the seeds' mean (thick) over the seeds (thin);
    ``reference``: drawn in grey, beneath the others."""

    name: str
    label: Optional[str] = None
    color: Optional[str] = None
    mean: bool = True
    reference: bool = False


@dataclass(frozen=True)
class Curve:
    """Stored curves of one series: ``y`` of shape (seeds, n) (a 1-D array is one seed),
    optional ``x`` of length n (default: the panel's ``x``)."""

    y: Any
    x: Optional[Sequence[float]] = None


PanelData = Mapping[str, Union[np.ndarray, Curve]]


def _explorer(draw, grid, defaults, labels, title, spec):
    return Explorer(draw, grid, defaults, labels=labels, title=title, spec=spec, dpi=100,
                    colors=64, max_frames=10**9)


# --- kind 1: curves over a grid ------------------------------------------------------------

def curves_figure(data: Union[Mapping, Callable[..., Any]], *, axes: Sequence[Axis] = (),
                  panels: Sequence[Panel] = (Panel(),), series: Optional[Sequence[Series]] = None,
                  title: str, headline: str = "", marks: Union[Mapping, Callable, None] = None,
                  notes: Union[Mapping, Callable, None] = None,
                  draw: Optional[Callable[..., Any]] = None, digits: int = DIGITS):
    """A figure of stored curves over a grid of axes, drawn in the page.

    Args:
        data: for every grid point, the curves: ``data[key]`` where ``key`` is the tuple
            of axis values in ``axes`` order (a bare value for one axis, ``()`` for
            none), or a function ``data(**point)``.  The value is
            ``{series name: array (seeds, n) or Curve}`` for one panel, or a list of
            such dicts, one per panel.  A series missing at a point is not drawn there.
        axes: the grid's :class:`Axis` list (numeric: slider; otherwise: menu).
        panels: the :class:`Panel` list.
        series: the :class:`Series` (order, labels, colours); default: every name found
            in ``data``, in order of appearance.
        title: one line naming the figure (alt text, text/plain).
        headline: a line above the panels; ``{name}`` is replaced by the axis's label
            of the selected value.
        marks: per grid point, ``{key: [Mark, ...]}`` (one panel) or
            ``{key: [[Mark, ...] per panel]}``, or a function ``marks(**point)``.
        notes: per grid point, lines of text added to the readout (e.g. a diagnosis):
            ``{key: [str, ...]}`` or a function ``notes(**point)``.
        draw: optional ``draw(**point) -> Figure`` for the still image and the kernel
            widget (default: drawn here from the stored data).

    Returns an :class:`optbook.figures.Explorer` (``spec["kind"] == "runs"``).
    """
    axes = list(axes)
    panels = list(panels)
    if not panels:
        raise ValueError("Invalid panels: none (give at least one Panel)")
    for p in panels:
        if p.readout not in ("final", "min", "none"):
            raise ValueError(f"Invalid Panel readout: {p.readout!r} (final, min or none)")
        for s in (p.xscale, p.yscale):
            if s not in ("linear", "log"):
                raise ValueError(f"Invalid Panel scale: {s!r} (linear or log)")
    checked = [a.checked() for a in axes]
    names = [a.name for a in axes]
    if len(set(names)) != len(names):
        raise ValueError(f"Invalid axes: repeated names {names}")

    def lookup(source, point, what):
        if callable(source):
            return source(**point)
        key = tuple(point[n] for n in names)
        for k in (key, key[0] if len(key) == 1 else None):
            if k is not None and k in source:
                return source[k]
        if key == () and len(source) == 1:
            return next(iter(source.values()))
        raise ValueError(f"Invalid {what}: no entry for grid point {point}")

    grid_values = [c[0] for c in checked]
    points, found = [], []
    for combo in itertools.product(*grid_values) if axes else [()]:
        point = dict(zip(names, combo))
        value = lookup(data, point, "data")
        per_panel = [value] if isinstance(value, Mapping) else list(value)
        if len(per_panel) != len(panels):
            raise ValueError(f"Invalid data at {point}: {len(per_panel)} panels of data for "
                             f"{len(panels)} panels")
        pm = [[] for _ in panels]
        if marks is not None:
            m = lookup(marks, point, "marks") if (callable(marks) or marks) else []
            m = list(m)
            pm = [m] if len(panels) == 1 and all(isinstance(x, Mark) for x in m) else [list(x) for x in m]
            if len(pm) != len(panels):
                raise ValueError(f"Invalid marks at {point}: {len(pm)} lists for {len(panels)} panels")
        stored = []
        for i, (pd, pmarks) in enumerate(zip(per_panel, pm)):
            entry = {"series": {}}
            for sname, curve in pd.items():
                if sname not in found:
                    found.append(sname)
                c = curve if isinstance(curve, Curve) else Curve(curve)
                y = np.asarray(c.y, dtype=float)
                if y.ndim == 1:
                    y = y[None, :]
                if y.ndim != 2 or y.shape[1] == 0:
                    raise ValueError(f"Invalid curve {sname!r} at {point}: shape {y.shape} "
                                     "(expected (seeds, n))")
                xs = c.x if c.x is not None else panels[i].x
                if xs is None:
                    raise ValueError(f"Invalid curve {sname!r} at {point}: no x (give Panel.x or Curve.x)")
                if len(xs) != y.shape[1]:
                    raise ValueError(f"Invalid curve {sname!r} at {point}: {y.shape[1]} values "
                                     f"for {len(xs)} x values")
                item = {"y": _rounded(y, digits)}
                if c.x is not None:
                    item["x"] = _rounded(c.x, 6)
                entry["series"][sname] = item
            if pmarks:
                entry["marks"] = [mk.spec() for mk in pmarks]
            stored.append(entry)
        entry = {"panels": stored}
        if notes is not None:
            lines = lookup(notes, point, "notes")
            if isinstance(lines, str) or not all(isinstance(t, str) for t in lines):
                raise ValueError(f"Invalid notes at {point}: {lines!r} (expected a list of strings)")
            if lines:
                entry["notes"] = list(lines)
        points.append(entry)
    if series is None:
        series = [Series(n) for n in found]
    series = list(series)
    unknown = set(found) - {s.name for s in series}
    if unknown:
        raise ValueError(f"Invalid data: series {sorted(unknown)} not in series=")
    series_spec = []
    for k, s in enumerate(series):
        if s.color is not None and not _CSS_COLOR.match(s.color):
            # the page draws with this string: a matplotlib cycle code ("C1") draws nothing
            raise ValueError(f"Invalid color for series {s.name!r}: {s.color!r} "
                             "(a CSS colour such as '#ff7f0e' or 'grey')")
        color = s.color or _series_color(s.name, k)
        # a reference is grey unless it names its own colour (two references, two greys)
        series_spec.append({"name": s.name, "label": s.label or _series_label(s.name),
                            "color": (s.color or GREY) if s.reference else color,
                            "mean": bool(s.mean), "reference": bool(s.reference)})
    panel_spec = [_panel_spec(p, i, points) for i, p in enumerate(panels)]
    spec = {
        "kind": "runs", "params": [], "headline": headline,
        "axes": [{"name": a.name, "label": a.label, "values": list(v), "labels": list(lab),
                  "numeric": num, "value": d, **({"title": a.title} if a.title else {})}
                 for a, (v, lab, num, d) in zip(axes, checked)],
        "panels": panel_spec, "series": series_spec, "points": points,
    }
    grid = {a.name: list(v) for a, (v, *_rest) in zip(axes, checked)} or {"view": ["default"]}
    defaults = {a.name: v[d] for a, (v, _l, _n, d) in zip(axes, checked)}
    labels = {a.name: a.label for a in axes}

    def default_draw(**point):
        index = {a.name: grid_values[i].index(point[a.name]) for i, a in enumerate(axes)}
        return draw_runs_point(spec, index)

    chosen = draw if draw is not None else default_draw
    if not axes:
        chosen = (lambda view: (draw or default_draw)())
    return _explorer(chosen, grid, defaults, labels, title, spec)


def _series_color(name: str, k: int) -> str:
    try:
        return plotting.color(name)
    except (ValueError, KeyError):
        return _PALETTE[k % len(_PALETTE)]


def _series_label(name: str) -> str:
    try:
        return plotting.label(name)
    except (ValueError, KeyError):
        return name


def _extent(values, log: bool):
    v = np.array([x for x in values if x is not None], dtype=float)
    v = v[np.isfinite(v)]
    if log:
        v = v[v > 0]
    if not len(v):
        return [1.0, 10.0] if log else [0.0, 1.0]
    lo, hi = float(v.min()), float(v.max())
    if lo == hi:
        lo, hi = (lo / 2, hi * 2) if log else (lo - 0.5, hi + 0.5)
    return [lo, hi]


def _panel_spec(p: Panel, i: int, points: list) -> dict:
    xs, ys = [], []
    for pt in points:
        for item in pt["panels"][i]["series"].values():
            xs.extend(item.get("x") or (p.x if p.x is not None else []))
            for row in item["y"]:
                ys.extend(row)
    xdom = list(p.xlim) if p.xlim else _extent([float(x) for x in xs], p.xscale == "log")
    ydom = list(p.ylim) if p.ylim else _extent(ys, p.yscale == "log")
    if not p.ylim and p.yscale == "linear":      # a little air above and below
        pad = 0.04 * (ydom[1] - ydom[0])
        ydom = [ydom[0] - pad, ydom[1] + pad]
    out = {"title": p.title, "readout": p.readout,
           "x": {"label": p.xlabel, "scale": p.xscale, "domain": [float(v) for v in xdom]},
           "y": {"label": p.ylabel, "scale": p.yscale, "domain": [float(v) for v in ydom]},
           "marks": [m.spec() for m in p.marks]}
    if p.x is not None:
        out["x"]["values"] = _rounded(p.x, 6)
    if p.xsymbol:
        out["x"]["symbol"] = p.xsymbol
    return out


def _mean_curve(ys: np.ndarray) -> np.ndarray:
    """Mean over seeds; NaN where any seed is not finite (as the page draws it)."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(ys).all(axis=0), ys.mean(axis=0), np.nan)


def draw_runs_point(spec: Mapping, index: Mapping[str, int]):
    """The still image of one grid point of a ``runs`` spec, drawn from the stored data
    as the page draws it (thin seeds, thick mean, grey references, marks)."""

    axes = spec["axes"]
    k = 0
    for a in axes:
        k = k * len(a["values"]) + index[a["name"]]
    point = spec["points"][k]
    n = len(spec["panels"])
    fig, axs = plotting.subplots(1, n, size="wide" if n > 1 else "single", pyplot=False)
    axs = np.atleast_1d(axs)
    for ax, p, data in zip(axs, spec["panels"], point["panels"]):
        for s in sorted(spec["series"], key=lambda s: not s["reference"]):
            d = data["series"].get(s["name"])
            if d is None:
                continue
            xs = np.asarray(d.get("x") or p["x"]["values"], dtype=float)
            ys = np.array([[np.nan if v is None else v for v in row] for row in d["y"]], dtype=float)
            many = s["mean"] and len(ys) > 1
            for row in ys:
                ax.plot(xs, row, color=s["color"], lw=0.9 if many else 1.5, alpha=0.55 if many else 0.9)
            label = s["label"]
            if many:
                ax.plot(xs, _mean_curve(ys), color=s["color"], lw=2.2, label=f"{label} (mean)")
            else:
                ax.plot([], [], color=s["color"], label=label)
        for m in p.get("marks", []) + data.get("marks", []):
            c = m.get("color", "k")
            if m["type"] == "vline":
                ax.axvline(m["x"], color=c, ls="--", lw=1, label=m.get("label") or None)
            elif m["type"] == "hline":
                ax.axhline(m["y"], color=c, ls=":", lw=0.9, label=m.get("text") or m.get("label") or None)
            elif m["type"] == "point":
                ax.plot([m["x"]], [m["y"]], "D", color=c, label=m.get("label") or None)
            else:
                ax.axvspan(m["x0"], m["x1"], color=c if "color" in m else "0.87", label=m.get("label") or None)
        ax.set_xscale(p["x"]["scale"])
        ax.set_yscale(p["y"]["scale"])
        ax.set(xlim=p["x"]["domain"], ylim=p["y"]["domain"], xlabel=p["x"]["label"],
               ylabel=p["y"]["label"], title=p["title"])
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
    head = _headline(spec, index)
    if point.get("notes"):
        head = "; ".join([head] + point["notes"]) if head else "; ".join(point["notes"])
    if head:
        fig.suptitle(head, fontsize=9)
    return fig


def _headline(spec, index) -> str:
    shown = {a["name"]: a["labels"][index[a["name"]]] for a in spec["axes"]}
    import re
    return re.sub(r"\{(\w+)\}", lambda m: shown.get(m.group(1), m.group(0)), spec.get("headline", ""))
