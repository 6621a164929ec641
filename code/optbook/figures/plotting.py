"""The book's one plotting style, and the figure helpers every chapter reuses.

Call :func:`use_style` once at the top of a chapter::

    from optbook.figures import plotting
    plotting.use_style()                      # rcParams + crisp retina PNG in Jupyter

    fig, (ax1, ax2) = plotting.subplots(1, 2, size="wide")
    land = landscapes.quadratic(10)
    plotting.contour(ax1, land)               # log-spaced levels, minima marked
    run = landscapes.trajectory(optbook.sgd(0.1), land, steps=30)
    plotting.plot_path(ax1, run, "sgd")       # start o, end o, divergence X
    plotting.loss_curve(ax2, run, "sgd", minimum=land.min_value)   # log y

What stays the same across the whole book:

* **Colour per optimizer** (:data:`OPTIMIZER_COLORS`, :func:`color`): an
  optimizer is drawn in the same colour in every figure.  The twelve colours
  come from the colour-blind-safe palettes of Okabe & Ito (2008, "Color
  Universal Design") and Paul Tol (2021, "Colour schemes", SRON/EPS/TN/09-002),
  assigned so that optimizers the book compares with each other (SGD /
  momentum / Nesterov; AdaGrad / RMSprop / Adam; Adam / Adam+L2 / AdamW;
  AdamW / Adafactor / LAMB / Lion / Sophia) stay distinguishable under
  simulated deuteranopia, protanopia and tritanopia (Machado et al. 2009).
  Landscape contours are light grey so that colour is left to the optimizers.
* **Figure sizes** (:data:`FIGSIZES`): ``"single"`` (one panel in the text
  column), ``"wide"`` (two panels side by side), ``"square"`` (a landscape).
* **Fonts, line widths, grid** (:data:`STYLE`, applied by :func:`use_style`).
  Figure text is English: the default font (DejaVu Sans) has no CJK glyphs.
* **Output format**: retina PNG in notebooks.  nbval skips ``image/png`` when
  comparing outputs, whereas ``image/svg+xml`` is text it would compare (and
  matplotlib's SVG carries a date and generated ids), so PNG keeps the
  notebooks testable and the pictures sharp.

Pure-figure code (widgets, functions that *return* a figure) should pass
``pyplot=False`` to :func:`subplots`: the figure is then not registered with
pyplot, is never shown twice by the inline backend, and is freed when dropped.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
from cycler import cycler

__all__ = ["OPTIMIZER_COLORS", "OPTIMIZER_LABELS", "ALIASES", "FIGSIZES", "STYLE",
           "CONTOUR_COLOR", "canonical_name", "color", "label", "use_style", "style_context",
           "subplots",
           "contour", "plot_path", "loss_curve", "log_levels"]

# --- colours ---------------------------------------------------------------------

OPTIMIZER_COLORS: dict[str, str] = {
    "sgd": "#000000",        # black            (Okabe-Ito)  the baseline
    "momentum": "#009E73",   # bluish green     (Okabe-Ito)
    "nesterov": "#D55E00",   # vermillion       (Okabe-Ito)
    "adagrad": "#0072B2",    # blue             (Okabe-Ito)
    "rmsprop": "#88CCEE",    # cyan             (Tol muted)
    "adam": "#999933",       # olive            (Tol muted)
    "adam_l2": "#AA3377",    # purple           (Tol bright)
    "adamw": "#332288",      # indigo           (Tol muted)
    "adafactor": "#CC79A7",  # reddish purple   (Okabe-Ito)
    "lamb": "#117733",       # green            (Tol muted)
    "lion": "#CCBB44",       # yellow           (Tol bright)
    "sophia": "#882255",     # wine             (Tol muted)
}
"""Canonical optimizer name -> hex colour.  Never reassign: figures across
chapters rely on it."""

OPTIMIZER_LABELS: dict[str, str] = {
    "sgd": "SGD", "momentum": "Momentum", "nesterov": "Nesterov", "adagrad": "AdaGrad",
    "rmsprop": "RMSprop", "adam": "Adam", "adam_l2": "Adam + L2", "adamw": "AdamW",
    "adafactor": "Adafactor", "lamb": "LAMB", "lion": "Lion", "sophia": "Sophia",
}
"""Canonical optimizer name -> legend label."""

ALIASES: dict[str, str] = {
    "gd": "sgd", "gradient_descent": "sgd", "heavy_ball": "momentum", "nag": "nesterov",
    "adam+l2": "adam_l2",
}
"""Other spellings accepted by :func:`color` and :func:`label`."""

_ALIAS_LABELS = {"gd": "GD", "gradient_descent": "gradient descent", "heavy_ball": "heavy ball",
                 "nag": "NAG"}

CONTOUR_COLOR = "0.72"
"""Grey of landscape contour lines."""


def canonical_name(name: str) -> str:
    """``"Adam-L2"`` -> ``"adam_l2"``, ``"GD"`` -> ``"sgd"``; ValueError if unknown."""
    if not isinstance(name, str):
        raise ValueError(f"Invalid optimizer name: {name!r} (expected a string)")
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    key = ALIASES.get(key, key)
    if key not in OPTIMIZER_COLORS:
        raise ValueError(f"Invalid optimizer name: {name!r} (choose from "
                         f"{', '.join(OPTIMIZER_COLORS)}, or pass color=... explicitly)")
    return key


def color(name: str) -> str:
    """The book-wide colour of optimizer ``name`` (aliases such as ``"gd"`` allowed).

    Raises ``ValueError`` for a name the book does not know; plot helpers take
    an explicit ``color=`` for anything that is not an optimizer.
    """
    return OPTIMIZER_COLORS[canonical_name(name)]


def label(name: str) -> str:
    """Legend label: ``"adamw"`` -> ``"AdamW"``, ``"gd"`` -> ``"GD"``."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_") if isinstance(name, str) else name
    if key in _ALIAS_LABELS:
        return _ALIAS_LABELS[key]
    return OPTIMIZER_LABELS[canonical_name(name)]


_optimizer_label = label     # the helpers below have a parameter called ``label``


# --- style -----------------------------------------------------------------------

FIGSIZES: dict[str, tuple[float, float]] = {
    "single": (4.8, 3.2),
    "wide": (9.0, 3.4),
    "square": (4.2, 4.0),
}
"""Figure sizes in inches by name."""

STYLE: dict[str, Any] = {
    "figure.figsize": FIGSIZES["single"],
    "figure.dpi": 100,
    "figure.facecolor": "white",
    "figure.constrained_layout.use": True,
    "savefig.dpi": 150,
    "savefig.facecolor": "white",
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
    "lines.markersize": 5,
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "0.85",
    "grid.linewidth": 0.6,
    "grid.alpha": 1.0,
    "axes.prop_cycle": cycler(color=list(OPTIMIZER_COLORS.values())),
    "image.cmap": "viridis",
    "mathtext.fontset": "dejavusans",
}


def style_context():
    """A ``with`` block in the book's style that restores rcParams afterwards.

    Widgets render their frames inside it, so a frame looks the same whether
    or not the notebook called :func:`use_style`.
    """
    import matplotlib as mpl

    return mpl.rc_context(STYLE)


def use_style(inline_format: Optional[str] = "retina") -> None:
    """Apply :data:`STYLE` to matplotlib's rcParams.

    Inside IPython it also selects the inline figure format via
    ``matplotlib_inline.backend_inline.set_matplotlib_formats`` (default
    ``"retina"``: a PNG at twice the resolution, shown at normal size), and
    registers :func:`optbook.figures.responsive.figure_html` as the
    ``text/html`` formatter of matplotlib Figures: the site shows the figure
    as drawn on a wide screen and its panels stacked in one column on a
    phone.  Pass ``inline_format=None`` to leave both alone.
    """
    import matplotlib as mpl

    mpl.rcParams.update(STYLE)
    if inline_format is None:
        return
    try:
        from IPython import get_ipython
    except ImportError:          # not in IPython: nothing to configure
        return
    if get_ipython() is None:
        return
    from matplotlib_inline.backend_inline import set_matplotlib_formats
    set_matplotlib_formats(inline_format)
    # every shown figure also gets a text/html twin: the figure and, for a
    # phone, its panels stacked in one column (issue 21; figures.responsive)
    from . import responsive
    responsive.register(reuse_png=inline_format == "retina")


def subplots(nrows: int = 1, ncols: int = 1, *, size: str | tuple = "single",
             pyplot: bool = True, **kwargs):
    """``(fig, axes)`` at a named size (:data:`FIGSIZES`) with constrained layout.

    ``pyplot=True`` goes through ``plt.subplots`` (the notebook shows the
    figure at the end of the cell).  ``pyplot=False`` builds a bare
    ``matplotlib.figure.Figure``: use it in functions that return a figure,
    e.g. the ``draw`` function of a widget.
    """
    if isinstance(size, str):
        if size not in FIGSIZES:
            raise ValueError(f"Invalid size: {size!r} (choose from {', '.join(FIGSIZES)} "
                             "or pass (width, height) in inches)")
        figsize = FIGSIZES[size]
    else:
        figsize = tuple(size)
    kwargs.setdefault("layout", "constrained")
    if pyplot:
        import matplotlib.pyplot as plt
        return plt.subplots(nrows, ncols, figsize=figsize, **kwargs)
    from matplotlib.figure import Figure
    layout = kwargs.pop("layout")
    fig = Figure(figsize=figsize, layout=layout)
    axes = fig.subplots(nrows, ncols, **kwargs)
    return fig, axes


# --- landscapes -------------------------------------------------------------------

def log_levels(values: np.ndarray, num: int = 12, decades: float = 3.0,
               minimum: Optional[float] = None) -> np.ndarray:
    """``num`` increasing levels ``minimum + geomspace(span / 10**decades, span)``.

    ``span`` is ``max(values) - minimum`` (``minimum`` defaults to
    ``min(values)``).  Geometric spacing shows the floor of a valley and its
    walls in the same picture.
    """
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise ValueError("Invalid values: no finite value to place contour levels in")
    low = float(finite.min()) if minimum is None else float(minimum)
    span = float(finite.max()) - low
    if not span > 0:
        raise ValueError(f"Invalid values: constant ({low}); contours need a range")
    return low + np.geomspace(span * 10.0 ** (-decades), span, num)


def contour(ax, landscape, *, levels=None, num: int = 14, grid_num: int = 201,
            decades: float = 3.0, show_minima: bool = True, color: str = CONTOUR_COLOR,
            linewidths: float = 0.8):
    """Draw the contour lines of ``landscape`` on ``ax`` and fix the view to its window.

    ``landscape`` needs ``value(X, Y)`` (vectorised over meshgrid arrays),
    ``xlim``, ``ylim`` and ``minima`` (an ``optbook.landscapes.Landscape``).
    Levels are log-spaced: the landscape's own ``contour_levels(num)`` when
    it says its values span many decades (``log_contours``), otherwise
    :func:`log_levels` with ``decades`` decades above the minimum.  Minima are
    marked with a star.  Returns the ``QuadContourSet``.
    """
    for attr in ("value", "xlim", "ylim"):
        if not hasattr(landscape, attr):
            raise ValueError(f"Invalid landscape: {landscape!r} has no {attr!r}")
    X, Y = np.meshgrid(np.linspace(*landscape.xlim, grid_num),
                       np.linspace(*landscape.ylim, grid_num))
    Z = np.asarray(landscape.value(X, Y), dtype=float)
    if levels is None:
        if getattr(landscape, "log_contours", False) and hasattr(landscape, "contour_levels"):
            levels = landscape.contour_levels(num)
        else:
            levels = log_levels(Z, num, decades, minimum=getattr(landscape, "min_value", None))
    cs = ax.contour(X, Y, Z, levels=levels, colors=color, linewidths=linewidths, zorder=1)
    if show_minima:
        for mx, my in getattr(landscape, "minima", ()):
            ax.plot([mx], [my], marker="*", markersize=11, color="0.25",
                    markeredgecolor="white", markeredgewidth=0.6, linestyle="none", zorder=4)
    ax.set_xlim(*landscape.xlim)
    ax.set_ylim(*landscape.ylim)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel(r"$\theta_1$")
    ax.set_ylabel(r"$\theta_2$")
    ax.grid(False)
    return cs


# --- optimizer paths and losses -----------------------------------------------------

def _unpack_run(data, diverged, diverged_at, field):
    """Accept a ``landscapes.Trajectory`` or a plain array; return (array, diverged_at)."""
    if hasattr(data, "path") and hasattr(data, "values"):
        array = np.asarray(getattr(data, field), dtype=float)
        if diverged_at is None:
            diverged_at = getattr(data, "diverged_at", None)
        if diverged is None:
            diverged = getattr(data, "diverged", False)
    else:
        array = np.asarray(data, dtype=float)
    if diverged_at is not None:
        # the Trajectory convention: rows from diverged_at on repeat the last accepted point
        array = array[:diverged_at]
        diverged = True
    # a non-finite row also ends the run: everything before it is drawn
    bad = ~np.isfinite(array.reshape(len(array), -1)).all(axis=1)
    if bad.any():
        first = int(np.argmax(bad))
        array = array[:first]
        diverged = True
        diverged_at = first if diverged_at is None else diverged_at
    if diverged and diverged_at is None:
        diverged_at = len(array)
    return array, (diverged_at if diverged else None)


def _resolve_color(name, color_):
    if color_ is not None:
        return color_
    if name is None:
        raise ValueError("Invalid name: None (give an optimizer name or color=...)")
    return color(name)


def _exit_point(path: np.ndarray, xlim, ylim) -> np.ndarray:
    """Where the path last leaves the box ``xlim x ylim`` (or its last point if inside)."""
    lo = np.array([min(xlim), min(ylim)])
    hi = np.array([max(xlim), max(ylim)])
    inside = np.all((path >= lo) & (path <= hi), axis=1)
    if inside[-1] or not inside.any():
        return path[-1]
    i = int(np.flatnonzero(inside)[-1])            # last point inside; i + 1 is outside
    a, b = path[i], path[i + 1]
    d = b - a
    # largest s in [0, 1] keeping a + s d in the box, per coordinate
    with np.errstate(divide="ignore", invalid="ignore"):
        s_hi = np.where(d > 0, (hi - a) / d, np.inf)
        s_lo = np.where(d < 0, (lo - a) / d, np.inf)
    s = float(min(1.0, s_hi.min(), s_lo.min()))
    return a + s * d


def plot_path(ax, path, name: Optional[str] = None, *, color: Optional[str] = None,
              label: Optional[str] = None, diverged: Optional[bool] = None,
              diverged_at: Optional[int] = None, markers: bool = True, **line_kwargs):
    """Draw an optimizer's path: a line through the iterates, a hollow start
    marker, a filled end marker -- or, if the run diverged, an ``X`` where the
    path leaves the view and the note "diverged (step t)".

    ``path`` is an ``(n, 2)`` array or a ``landscapes.Trajectory`` (whose
    ``diverged_at`` is used).  Rows that are not finite end the path and count
    as divergence, so a NaN never reaches matplotlib.  Colour and label come
    from the optimizer ``name`` unless given.  Returns the ``Line2D`` of the
    path (its data are exactly the drawn iterates).
    """
    points, diverged_at = _unpack_run(path, diverged, diverged_at, "path")
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"Invalid path: shape {points.shape} (expected (n, 2))")
    c = _resolve_color(name, color)
    if label is None and name is not None:
        label = _optimizer_label(name)
    line, = ax.plot(points[:, 0], points[:, 1], color=c, label=label, zorder=3,
                    **{"linewidth": 1.4, "marker": ".", "markersize": 3.5, **line_kwargs})
    if not markers or len(points) == 0:
        return line
    ax.plot(points[:1, 0], points[:1, 1], marker="o", markersize=6, color=c,
            markerfacecolor="white", markeredgewidth=1.4, linestyle="none", zorder=5)
    if diverged_at is None:
        ax.plot(points[-1:, 0], points[-1:, 1], marker="o", markersize=5.5, color=c,
                markeredgecolor="white", markeredgewidth=0.6, linestyle="none", zorder=5)
        return line
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    mark = _exit_point(points, xlim, ylim) if len(points) > 1 else points[-1]
    ax.plot([mark[0]], [mark[1]], marker="X", markersize=9, color=c, markeredgecolor="white",
            markeredgewidth=0.8, linestyle="none", zorder=6, clip_on=False)
    # put the note on the side of the marker that faces the centre of the view
    centre = np.array([sum(xlim) / 2, sum(ylim) / 2])
    dx, dy = np.sign(centre - mark)
    ax.annotate(f"diverged (step {diverged_at})", xy=(mark[0], mark[1]),
                xytext=(10 * (dx or 1), 10 * (dy or 1)), textcoords="offset points",
                ha="left" if dx >= 0 else "right", va="bottom" if dy >= 0 else "top",
                fontsize=8.5, color=c, zorder=6,
                bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.85))
    return line


def loss_curve(ax, values, name: Optional[str] = None, *, steps=None, minimum: float = 0.0,
               color: Optional[str] = None, label: Optional[str] = None,
               diverged: Optional[bool] = None, diverged_at: Optional[int] = None,
               xlabel: str = "step", ylabel: Optional[str] = None, **line_kwargs):
    """Plot a loss against steps on a logarithmic y axis.

    ``values`` is a 1-D array or a ``landscapes.Trajectory`` (its ``values``).
    ``minimum`` is subtracted first (pass ``landscape.min_value`` to plot the
    suboptimality :math:`f(\\theta_t) - f^*`); values that are then not
    positive are left out of the log plot rather than clipped.  A run that
    diverged (``diverged_at``, or a non-finite value) ends with an ``X``.
    Returns the ``Line2D`` (its y data are exactly ``values - minimum``).
    """
    y, diverged_at = _unpack_run(values, diverged, diverged_at, "values")
    if y.ndim != 1:
        raise ValueError(f"Invalid values: shape {y.shape} (expected a 1-D array)")
    y = y - float(minimum)
    x = np.arange(len(y)) if steps is None else np.asarray(steps, dtype=float)[:len(y)]
    if len(x) != len(y):
        raise ValueError(f"Invalid steps: {len(x)} steps for {len(y)} values")
    c = _resolve_color(name, color)
    if label is None and name is not None:
        label = _optimizer_label(name)
    ax.set_yscale("log", nonpositive="mask")
    line, = ax.plot(x, y, color=c, label=label, **line_kwargs)
    if diverged_at is not None and len(y):
        ax.plot(x[-1:], y[-1:], marker="X", markersize=9, color=c, markeredgecolor="white",
                markeredgewidth=0.8, linestyle="none", zorder=6)
    ax.set_xlabel(xlabel)
    if ylabel is None:
        ylabel = r"$f(\theta_t) - f^*$" if minimum != 0.0 else "loss"
    ax.set_ylabel(ylabel)
    return line
