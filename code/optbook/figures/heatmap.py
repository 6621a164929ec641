"""Figure kind ``heatmap``: a stored 2-D grid of results (e.g. η × λ), drawn in the page.

Page side: ``js/src/heatmap.js``.  Panels over two numeric axes sharing one
colour scale, each cell the mean over seeds, the best cell of each panel
outlined; hover or keyboard focus reads a cell's coordinates, mean, min–max
and every seed; with ``curves=`` a click (or Enter) draws the selected
cell's stored curves::

    heatmap_figure({"Adam + L2": l2, "AdamW": adamw},        # (seeds, n_wd, n_lr)
                   x=("lr", "η", lrs), y=("wd", "λ", wds), title="...",
                   curves={"Adam + L2": l2_curves, "AdamW": adamw_curves},  # (..., n)
                   curves_x=eval_steps)
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np

from . import plotting
from .runs import DIGITS, _PALETTE, Panel, _explorer, _mean_curve, _panel_spec, _rounded, round_sig

__all__ = ["heatmap_figure", "draw_heatmap"]


def heatmap_figure(values: Mapping[str, Any], x: tuple, y: tuple, *, title: str,
                   value_label: str = "validation loss", best: str = "min",
                   color_scale: str = "linear", colors: Optional[Mapping[str, str]] = None,
                   curves: Optional[Mapping[str, Any]] = None, curves_x: Optional[Sequence] = None,
                   curves_panel: Optional[Panel] = None, selected: Optional[tuple] = None,
                   digits: int = DIGITS):
    """Panels of a stored 2-D grid sharing one colour scale, drawn in the page.

    Args:
        values: ``{panel label: array (seeds, ny, nx)}`` (NaN/inf: that seed diverged).
        x, y: ``(name, label, values)`` of the columns and rows (numbers, e.g. η and λ;
            a 4th item, a list of labels, overrides how the values are written).
        value_label: what the values are (colour-bar title, readouts).
        best: ``"min"`` or ``"max"``: which cell of each panel is marked best (among
            cells where every seed finished).
        color_scale: ``"linear"`` or ``"log"``.
        colors: ``{panel label: colour}`` for the curves and the readout swatches.
        curves: optional ``{panel label: array (seeds, ny, nx, n)}``: clicking a cell
            draws these curves (every panel's, at that cell) against ``curves_x``
            (length n) in one panel configured by ``curves_panel``.
        selected: ``(row, col)`` selected first (default: the best cell of the first panel).

    Returns an :class:`optbook.figures.Explorer` (``spec["kind"] == "heatmap"``).
    """
    if best not in ("min", "max"):
        raise ValueError(f"Invalid best: {best!r} (min or max)")
    if color_scale not in ("linear", "log"):
        raise ValueError(f"Invalid color_scale: {color_scale!r} (linear or log)")
    if not values:
        raise ValueError("Invalid values: no panels")
    axes = []
    for what, ax in (("x", x), ("y", y)):
        if not (isinstance(ax, (tuple, list)) and len(ax) in (3, 4)):
            raise ValueError(f"Invalid {what}: {ax!r} (expected (name, label, values[, labels]))")
        vals = [float(v) for v in ax[2]]
        labs = list(ax[3]) if len(ax) == 4 else [f"{v:.3g}" for v in vals]
        if len(labs) != len(vals) or not vals:
            raise ValueError(f"Invalid {what}: {len(vals)} values, {len(labs)} labels")
        axes.append({"name": ax[0], "label": ax[1], "values": vals, "labels": labs})
    nx, ny = len(axes[0]["values"]), len(axes[1]["values"])
    panels, arrays = [], {}
    for k, (label, a) in enumerate(values.items()):
        a = np.asarray(a, dtype=float)
        if a.ndim == 2:
            a = a[None]
        if a.ndim != 3 or a.shape[1:] != (ny, nx):
            raise ValueError(f"Invalid values[{label!r}]: shape {a.shape} (expected (seeds, {ny}, {nx}))")
        arrays[label] = a
        panels.append({"label": label, "color": (colors or {}).get(label, _PALETTE[k % len(_PALETTE)]),
                       "values": _rounded(a, digits)})
    finite = np.concatenate([a[np.isfinite(a)].ravel() for a in arrays.values()])
    means = [np.nanmean(np.where(np.isfinite(a), a, np.nan), axis=0) for a in arrays.values()]
    cells = np.concatenate([m[np.isfinite(m)].ravel() for m in means]) if finite.size else finite
    if color_scale == "log":
        cells = cells[cells > 0]
    lo, hi = (float(cells.min()), float(cells.max())) if cells.size else (0.0, 1.0)
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    spec = {"kind": "heatmap", "params": [], "title": title, "x": axes[0], "y": axes[1], "panels": panels,
            "value": {"label": value_label, "best": best, "scale": color_scale,
                      "domain": [round_sig(lo, 6), round_sig(hi, 6)]}}
    if selected is None:
        first = _best_cell(arrays[panels[0]["label"]], best)
        selected = first if first is not None else (0, 0)
    r, c = selected
    if not (0 <= r < ny and 0 <= c < nx):
        raise ValueError(f"Invalid selected: {selected!r} (rows 0..{ny - 1}, columns 0..{nx - 1})")
    spec["selected"] = [int(r), int(c)]
    if curves is not None:
        if set(curves) != set(values):
            raise ValueError(f"Invalid curves: panels {sorted(curves)} != values' {sorted(values)}")
        if curves_x is None:
            raise ValueError("Invalid curves_x: None (give the x of the curves)")
        cp = curves_panel or Panel(title="selected cell", ylabel=value_label)
        cp = Panel(**{**cp.__dict__, "x": list(curves_x)})
        data = []
        for label in values:
            cv = np.asarray(curves[label], dtype=float)
            if cv.shape[:3] != arrays[label].shape or cv.shape[3] != len(curves_x):
                raise ValueError(f"Invalid curves[{label!r}]: shape {cv.shape} (expected "
                                 f"{arrays[label].shape + (len(curves_x),)})")
            data.append([[{"y": _rounded(cv[:, i, j], digits)} for j in range(nx)] for i in range(ny)])
        fake_points = [{"panels": [{"series": {str(p): data[p][i][j] for p in range(len(data))}}]}
                       for i in range(ny) for j in range(nx)]
        spec["curves"] = {"panel": _panel_spec(cp, 0, fake_points), "data": data}

    def draw(view):
        return draw_heatmap(spec)

    return _explorer(draw, {"view": ["default"]}, {}, {}, title, spec)


def _best_cell(a: np.ndarray, best: str):
    ok = np.isfinite(a).all(axis=0)
    if not ok.any():
        return None
    mean = np.where(ok, a.mean(axis=0) if ok.all() else np.where(np.isfinite(a), a, 0).mean(axis=0), np.nan)
    flat = np.nanargmin(mean) if best == "min" else np.nanargmax(mean)
    return tuple(int(i) for i in np.unravel_index(flat, mean.shape))


def _stored(spec_values) -> np.ndarray:
    return np.array(spec_values, dtype=float)     # None -> nan


def draw_heatmap(spec: Mapping):
    """The still image of a ``heatmap`` spec: every panel's seed means on the shared colour
    scale, best cell outlined, and the selected cell's curves if stored."""
    import matplotlib as mpl

    n = len(spec["panels"]) + (1 if "curves" in spec else 0)
    fig, axs = plotting.subplots(1, n, size=(3.3 * n + 0.6, 3.3), pyplot=False)
    axs = np.atleast_1d(axs)
    lo, hi = spec["value"]["domain"]
    norm = mpl.colors.LogNorm(lo, hi) if spec["value"]["scale"] == "log" else mpl.colors.Normalize(lo, hi)
    cmap = mpl.colormaps["viridis" if spec["value"]["best"] == "max" else "viridis_r"]
    xs, ys = spec["x"], spec["y"]
    image = None
    for ax, p in zip(axs, spec["panels"]):
        a = _stored(p["values"])
        with np.errstate(all="ignore"):
            mean = np.where(np.isfinite(a).any(axis=0), np.nanmean(a, axis=0), np.nan)
        image = ax.imshow(mean, origin="lower", cmap=cmap, norm=norm, aspect="auto")
        for i in range(mean.shape[0]):
            for j in range(mean.shape[1]):
                lost = not np.isfinite(a[:, i, j]).all()     # "*": some seed diverged (as the page)
                text = "div." if not np.isfinite(mean[i, j]) else f"{mean[i, j]:.3g}" + ("*" if lost else "")
                shade = cmap(norm(mean[i, j])) if np.isfinite(mean[i, j]) else (1, 1, 1, 1)
                dark = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2] < 0.55
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color="w" if dark else "k")
        b = _best_cell(a, spec["value"]["best"])
        if b is not None:
            ax.add_patch(mpl.patches.Rectangle((b[1] - 0.47, b[0] - 0.47), 0.94, 0.94, fill=False,
                                               edgecolor="#d62728", lw=2.5))
        ax.set_xticks(range(len(xs["labels"])), xs["labels"], fontsize=7)
        ax.set_yticks(range(len(ys["labels"])), ys["labels"], fontsize=7)
        ax.set(xlabel=xs["label"], ylabel=ys["label"], title=p["label"])
        ax.grid(False)
    fig.colorbar(image, ax=list(axs[:len(spec["panels"])]), label=spec["value"]["label"], shrink=0.9)
    if "curves" in spec:
        ax = axs[-1]
        r, c = spec["selected"]
        cp = spec["curves"]["panel"]
        x = np.asarray(cp["x"]["values"], dtype=float)
        for p, panel in enumerate(spec["panels"]):
            yv = _stored(spec["curves"]["data"][p][r][c]["y"])
            for row in yv:
                ax.plot(x, row, color=panel["color"], lw=0.9, alpha=0.55)
            ax.plot(x, _mean_curve(yv), color=panel["color"], lw=2.2, label=panel["label"])
        ax.set_xscale(cp["x"]["scale"]); ax.set_yscale(cp["y"]["scale"])
        ax.set(xlim=cp["x"]["domain"], ylim=cp["y"]["domain"], xlabel=cp["x"]["label"],
               ylabel=cp["y"]["label"], title=f"{xs['label']} = {xs['labels'][c]}, {ys['label']} = {ys['labels'][r]}")
        ax.legend(fontsize=7)
    return fig
