"""Figure kind ``paths``: optimizers on a 2-D landscape, recomputed in the page.

Page side: ``js/src/paths.js``.  An optimizer figure is one call; every
numeric parameter becomes a continuous slider::

    from optbook.figures import optimizer_explorer

    optimizer_explorer(
        lambda lr, beta: {"momentum": optbook.momentum(lr, beta),
                          "nesterov": optbook.nesterov(lr, beta)},
        grid={"lr": [0.01, 0.02, 0.04], "beta": [0.5, 0.9, 0.99]},  # slider ends, defaults
        defaults={"lr": 0.02, "beta": 0.9}, landscape=landscapes.quadratic(25),
        labels={"lr": "η", "beta": "β"}, title="η = {lr:g}, β = {beta:g}", steps=100)

``make(**params) -> {optimizer name: optbook optimizer}`` is traced once
(:func:`optbook.figures.spec.trace_optimizers`) into the spec; something a
spec cannot say (``2 * lr``, a custom ``chain``) makes the figure fall back to
the frame-per-grid-point twin.  A chapter that writes its spec by hand (a
menu of landscapes, noise drawn in the spec, two variants of one rule) gives
it to :func:`spec_figure`, with :func:`optimizer_entry` for each optimizer.

The page draws the paths on the landscape's contours, ``f - f*`` against
steps and a readout of where each run ended (or the step at which it
diverged); ``tests/browser/test_figure_parity.py`` checks its numbers
against optbook's in float64.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from ..base import GradientTransformation
from ..landscapes import trajectory
from . import plotting
from . import spec as F
from .explorer import Explorer, _is_numeric

__all__ = ["Runs", "optimizer_runs", "draw_runs", "optimizer_explorer", "spec_figure",
           "optimizer_entry", "standard_normals"]



Runs = dict  # name -> landscapes.Trajectory


def optimizer_runs(make: Callable[..., Any], params: Mapping[str, Any], landscape, *,
                   x0=None, steps: int = 50, name: str = "sgd", **trajectory_kwargs) -> Runs:
    """Run every optimizer ``make(**params)`` returns on ``landscape``.

    ``make`` returns ``{optimizer name: GradientTransformation}`` (names pick the
    colours, :func:`optbook.figures.plotting.color`) or a single transformation, which
    is called ``name``.  Returns ``{name: landscapes.Trajectory}``; divergence is
    reported by the trajectory, never as NaN.
    """
    made = make(**params)
    if isinstance(made, GradientTransformation):
        made = {name: made}
    if not isinstance(made, Mapping) or not made:
        raise ValueError(f"Invalid make result: {made!r} (expected a GradientTransformation "
                         "or a dict name -> GradientTransformation)")
    for key in made:
        plotting.canonical_name(key)            # an unknown name fails here, clearly
    return {key: trajectory(opt, landscape, x0, steps, **trajectory_kwargs)
            for key, opt in made.items()}


def _loss_range(runs_list, minimum: float) -> tuple[float, float]:
    """A log-axis range holding every positive ``f - f*`` of every run."""
    values = np.concatenate([np.asarray(run.values[:run.diverged_at], dtype=float) - minimum
                             for runs in runs_list for run in runs.values()])
    positive = values[np.isfinite(values) & (values > 0)]
    if positive.size == 0:
        return 1e-3, 1.0
    high = float(positive.max())
    low = max(float(positive.min()), high * 1e-12)
    return low / 2, high * 2


def draw_runs(runs: Runs, landscape, *, title: str = "", loss_ylim=None,
              size=(9.0, 3.5), styles: Optional[Mapping[str, tuple[str, str]]] = None,
              first_panel: Optional[Callable[[Any], None]] = None):
    """Paths on the contours (left) and ``f - f*`` against steps, log y (right).

    A pure function of its inputs; returns a pyplot-free Figure.  The layout
    is fixed (no constrained layout), so the axes sit at the same pixels in
    every frame of a widget and only the data move.  ``styles`` maps a run's
    key to ``(label, colour)`` for runs that are not named optimizers.
    ``first_panel(ax)``, if given, draws a third panel to the left of the two
    (a ``phase`` figure's diagram); the figure is then a third wider.
    """
    if first_panel is None:
        fig, (ax_path, ax_loss) = plotting.subplots(1, 2, size=size, pyplot=False,
                                                    layout="none", width_ratios=[1, 1.3])
        fig.subplots_adjust(left=0.065, right=0.985, bottom=0.14, top=0.84, wspace=0.18)
    else:
        fig, (ax_first, ax_path, ax_loss) = plotting.subplots(
            1, 3, size=(size[0] * 4 / 3, size[1]), pyplot=False, layout="none",
            width_ratios=[1, 1, 1.3])
        fig.subplots_adjust(left=0.05, right=0.99, bottom=0.14, top=0.84, wspace=0.24)
        first_panel(ax_first)
    plotting.contour(ax_path, landscape)
    for key, run in runs.items():
        label, color = (styles or {}).get(key, (None, None))
        who = {"label": label, "color": color} if color else {}
        plotting.plot_path(ax_path, run, None if color else key, **who)
        plotting.loss_curve(ax_loss, run, None if color else key, minimum=landscape.min_value,
                            ylabel=r"$f(\theta_t) - f^*$", **who)
    n_steps = max(len(run.values) for run in runs.values()) - 1
    ax_loss.set_xlim(0, max(n_steps, 1))
    if loss_ylim is not None:
        ax_loss.set_ylim(*loss_ylim)
    # one row above the loss axes: never covers a curve, same place in every frame
    ax_loss.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=len(runs),
                   borderaxespad=0.2, handlelength=1.6, columnspacing=1.2)
    ax_path.set_title(landscape.title)
    if title:
        fig.suptitle(title)
    return fig


def optimizer_explorer(make: Callable[..., Any], grid: Mapping[str, Sequence], *, landscape,
                       defaults=None, labels=None, formats=None,
                       title: str | Callable[..., str] = "", x0=None, steps: int = 50,
                       name: str = "sgd", ranges: Optional[Mapping[str, Sequence]] = None,
                       headline: Optional[str] = None, **trajectory_kwargs) -> Explorer:
    """An :class:`Explorer` of optimizer paths: ``make(**params)`` -> paths + losses.

    ``title`` is a string, a format string over the parameters
    (``"η = {lr:g}"``) or a function ``title(**params) -> str``; it becomes the
    figure's headline.  The loss axis has one range for every frame, so moving
    a slider changes the curves, not the axis.  Extra keywords go to
    ``landscapes.trajectory`` (``noise_std``, ``seed``, ``with_hessian``).

    In the page the figure is recomputed by the JavaScript runtime: ``make``
    is traced once (:func:`optbook.figures.spec.trace_optimizers`) and each
    numeric parameter becomes a continuous slider over ``ranges[name] = (lo,
    hi)`` or ``(lo, hi, scale)`` (default: from the grid's smallest to its
    largest value; scale "log", "log1m" for betas, "int" or "linear", see
    :func:`optbook.figures.spec.param_spec`).  The grid's values remain the
    points of :meth:`Explorer.points` and :meth:`Explorer.runs`.  If ``make``
    cannot be traced (a derived value such as ``2 * lr``, a custom chain) the
    figure falls back to the frame-per-grid-point twin.
    """

    @lru_cache(maxsize=None)
    def runs_at(key):
        return optimizer_runs(make, dict(key), landscape, x0=x0, steps=steps, name=name,
                              **trajectory_kwargs)

    explorer = None

    @lru_cache(maxsize=1)
    def shared_ylim():
        every = [runs_at(tuple(p.items())) for p in explorer.points()]
        return _loss_range(every, landscape.min_value)

    def headline_of(params):
        if callable(title):
            return title(**params)
        return title.format(**params) if title else ""

    def draw(**params):
        runs = runs_at(tuple(params.items()))
        on_grid = all(_in_grid(explorer, n, v) for n, v in params.items())
        ylim = shared_ylim() if on_grid else None
        return draw_runs(runs, landscape, title=headline_of(params), loss_ylim=ylim)

    plain_title = title if isinstance(title, str) and "{" not in title else ""
    explorer = Explorer(draw, grid, defaults, labels=labels, formats=formats,
                        title=plain_title or f"optimizer paths on {landscape.title}")
    explorer.runs = lambda **params: runs_at(tuple({**explorer.defaults, **params}.items()))
    if headline is None and isinstance(title, str):
        headline = title
    explorer.spec = _path_spec(explorer, make, landscape, ranges, headline, x0, steps, name,
                               trajectory_kwargs)
    return explorer


def _path_spec(explorer, make, landscape, ranges, headline, x0, steps, name, trajectory_kwargs):
    """The in-page spec of an optimizer explorer, or ``None`` where a spec cannot say it.

    Checked before it is used: the spec, run back through optbook
    (:func:`optbook.figures.spec.spec_runs`), must give exactly the default
    frame's trajectories.
    """
    extra = dict(trajectory_kwargs)
    noise_std, seed = extra.pop("noise_std", 0.0), extra.pop("seed", None)
    with_hessian = extra.pop("with_hessian", False)
    escape = extra.pop("escape_factor", 10.0)
    if extra:
        return None
    numeric = [n for n in explorer.parameters if all(_is_numeric(v) for v in explorer.grid[n])]
    if len(numeric) != len(explorer.parameters):
        return None
    defaults = {n: explorer.defaults[n] for n in numeric}
    other = {n: explorer.grid[n][0] if explorer.grid[n][0] != defaults[n] else explorer.grid[n][-1]
             for n in numeric}
    try:
        optimizers = F.trace_optimizers(make, defaults, other, name)
        land_spec = F.landscape_spec(landscape)
        params = []
        for n in numeric:
            lo, hi, *scale = (ranges or {}).get(n, (min(explorer.grid[n]), max(explorer.grid[n])))
            if lo == hi:
                return None
            params.append(F.param_spec(n, explorer.labels[n], lo, hi, defaults[n],
                                       scale[0] if scale else None))
    except (F.Untraceable, ValueError):
        return None
    for opt in optimizers:
        opt["label"] = plotting.label(opt["name"])
        opt["color"] = plotting.color(opt["name"])
        if with_hessian and opt["rule"] == "sophia":
            opt["hessian"] = "exact"
        if noise_std:
            opt["sigma"] = noise_std
    spec = {"kind": "paths", "landscape": land_spec, "optimizers": optimizers, "params": params,
            "steps": int(steps), "escape": escape, "headline": headline or ""}
    if x0 is not None:
        spec["x0"] = [float(v) for v in np.asarray(x0, dtype=float)]
    if noise_std:
        spec["seed"] = seed
        spec["noise"] = standard_normals(seed, int(steps))
    # the spec must mean what make meant: same numbers at the default point
    expected = explorer.runs()
    got = F.spec_runs(spec, defaults, land=landscape)
    for key, run in expected.items():
        if not (np.array_equal(run.path, got[key].path) and run.diverged_at == got[key].diverged_at):
            return None
    return spec


def standard_normals(seed, steps: int) -> list[float]:
    """The standard normals ``landscapes.trajectory`` draws (2 a step) for ``seed``."""
    return [float(v) for v in np.random.default_rng(seed).standard_normal((steps, 2)).ravel()]


def _in_grid(explorer, name, value) -> bool:
    try:
        explorer._grid_value(name, value)
        return True
    except ValueError:
        return False




def spec_figure(spec: dict, *, title: str, landscape=None, choices=None,
                first_panel: Optional[Callable[..., None]] = None) -> Explorer:
    """An :class:`Explorer` around an in-page ``spec`` (:mod:`optbook.figures.spec`).

    The page recomputes it with the JavaScript runtime; the PNG for readers
    without scripts and the kernel widget are drawn by optbook from the same
    spec (:func:`optbook.figures.spec.spec_runs`), so all three show the same
    numbers.  ``choices`` (``[(label, landscape, steps, constants), ...]``)
    adds a menu of landscapes, matching ``spec["choices"]``.  ``first_panel(ax,
    **values)`` draws a panel left of the paths (:func:`draw_runs`).
    """
    params = spec["params"]
    grid = {p["name"]: sorted({p["min"], p["value"], p["max"]}) for p in params}
    defaults = {p["name"]: p["value"] for p in params}
    labels = {p["name"]: p["label"] for p in params}
    if choices:
        grid = {"landscape": [c[0] for c in choices], **grid}
        defaults["landscape"] = choices[spec.get("choice", 0)][0]
        labels["landscape"] = spec.get("choiceLabel", "landscape")

    def draw(**values):
        land, steps, constants = landscape, spec["steps"], {}
        if choices:
            _, land, steps, constants = next(c for c in choices if c[0] == values["landscape"])
        numeric = {k: v for k, v in values.items() if k != "landscape"}
        runs = F.spec_runs(spec, {**numeric, **constants}, land=land, steps=steps)
        shown = ", ".join(f"{labels[k]} = {v:.3g}" for k, v in numeric.items())
        styles = {o["name"]: (o["label"], o["color"]) for o in spec["optimizers"]}
        first = None if first_panel is None else (lambda ax: first_panel(ax, **numeric))
        return draw_runs(runs, land, title=shown, styles=styles, first_panel=first)

    # The page draws these figures itself; the PNG is only the fallback for
    # readers without scripts and the printed frame, so it is kept small
    # (100 dpi, 32 colours: a third smaller than the default, same CSS size).
    explorer = Explorer(draw, grid, defaults, labels=labels, title=title, spec=spec,
                        dpi=100, colors=32)
    return explorer


def optimizer_entry(name, rule, args, label=None, color=None, **extra):
    return {"name": name, "rule": rule, "args": args,
            "label": label or plotting.label(name), "color": color or plotting.color(name),
            **extra}
