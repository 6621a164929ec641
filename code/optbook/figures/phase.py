"""Figure kind ``phase``: a phase diagram beside the paths it predicts, recomputed in the page.

Page side: ``js/src/phase.js``.  The diagram is the :math:`(\\eta\\lambda,
\\beta)` plane of a two-parameter momentum method on a quadratic: clicking or
dragging in it sets the two sliders, and the paths of the given optimizers on
the landscape (a ``paths`` panel) are recomputed at that point.  The page
shades where heavy ball's characteristic roots are complex (under-damped),
real (over-damped) or outside the unit circle, and draws Nesterov's stability
edge.  The figure has two sliders: the first is :math:`\\eta L` (the
optimizers' learning rate is ``{"param": <its name>, "times": 1 / L}``), the
second :math:`\\beta`.
Chapter 3's :func:`optbook.experiments.momentum.heavy_ball_phase_figure`
is the example.

Kernel side (the still image and the JupyterLab widget): the same diagram,
drawn by :func:`phase_plane` left of the paths, with the two dots where the
sliders put them (the widget's sliders move them; there is no clicking in
an image).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from . import spec as F
from .explorer import Explorer
from .paths import spec_figure

__all__ = ["phase_figure", "phase_plane", "region_of"]

# Along an eigenvector with eigenvalue λ, heavy ball is
# x_{t+1} = (1 + β - a) x_t - β x_{t-1}, a = ηλ: complex roots (under-damped)
# iff (1 - √β)² < a < (1 + √β)², stable iff 0 < a < 2 (1 + β); Nesterov
# (optbook's form) is stable iff a < 2 (1 + β) / (1 + 2β).  js/src/phase.js
# draws the same curves.


def _lower(b):
    return (1 - np.sqrt(b)) ** 2


def _upper(b):
    return (1 + np.sqrt(b)) ** 2


def _limit(b):
    return 2 * (1 + b)


def _nesterov_limit(b):
    return 2 * (1 + b) / (1 + 2 * b)


def region_of(a: float, b: float) -> str:
    """Heavy ball's regime at ``a = ηλ``, ``b = β`` (the page's status line says the same)."""
    if a <= 0 or a >= _limit(b):
        return "diverges"
    if abs(a - _lower(b)) < 1e-12 or abs(a - _upper(b)) < 1e-12:
        return "critically damped"
    if _lower(b) < a < _upper(b):
        return "under-damped"
    return "over-damped"


def phase_plane(ax, a: float, b: float, *, a_max: float, b_max: float, kappa: float) -> None:
    """The (ηλ, β) plane on ``ax``: over-damped (blue), under-damped (orange) and
    divergent (grey) regions, Nesterov's limit dashed, a filled dot at
    ``(a, b)`` (ηL, the steep direction) and a hollow one at ``(a / kappa, b)``
    (ημ, the flat direction)."""
    bs = np.linspace(0.0, b_max, 241)
    ax.set_facecolor("#e8f1fa")                                    # over-damped
    ax.fill_betweenx(bs, np.minimum(_lower(bs), a_max), np.minimum(_upper(bs), a_max),
                     color="#fbe3c8", lw=0)                        # under-damped
    ax.fill_betweenx(bs, np.minimum(_limit(bs), a_max), a_max, color="#d9d9d9", lw=0)
    for f in (_lower, _upper):
        ax.plot(f(bs), bs, color="#b35806", lw=1)
    ax.plot(_nesterov_limit(bs), bs, color="#D55E00", lw=1.5, ls=(0, (5, 3)))
    for x, y, text, color in ((0.18, 0.08, "over-damped", "0.25"),
                              (min(1.15 / a_max, 0.3), 0.75, "under-damped", "0.25"),
                              (min(3.55 / a_max, 0.84), 0.15, "diverges", "0.25"),
                              (min(1.45 / a_max, 0.5), 0.3, "NAG limit", "#D55E00")):
        ax.text(x * a_max, y * b_max, text, ha="center", va="center", color=color, fontsize=8)
    ax.plot([a / kappa], [b], "o", ms=6, mfc="white", mec="#009E73", mew=2)
    ax.plot([a], [b], "o", ms=8, mfc="#009E73", mec="white")
    ax.set_xlim(0, a_max)
    ax.set_ylim(0, b_max)
    ax.set_xlabel("η λ")
    ax.set_ylabel("β")
    ax.set_title(f"η L: {region_of(a, b)}; η μ: {region_of(a / kappa, b)}", fontsize=9)


def phase_figure(landscape, optimizers: Sequence[Mapping], params: Sequence[Mapping], *,
                 kappa: float, steps: int, headline: str, title: str,
                 escape: float = 10.0) -> Explorer:
    """A ``phase`` figure: ``optimizers`` (:func:`optbook.figures.paths.optimizer_entry`)
    run on ``landscape`` (condition number ``kappa``) for ``steps`` steps, with
    the two sliders ``params`` (:func:`optbook.figures.spec.param_spec`: η L,
    then β) that the diagram also sets."""
    if len(params) != 2:
        raise ValueError(f"Invalid params: {len(params)} sliders (a phase figure has two: "
                         "η L, then β)")
    spec = {"kind": "phase", "landscape": F.landscape_spec(landscape), "steps": int(steps),
            "escape": float(escape), "kappa": float(kappa), "params": list(params),
            "optimizers": list(optimizers), "headline": headline}
    a_name, b_name = params[0]["name"], params[1]["name"]

    def plane(ax, **values):
        phase_plane(ax, values[a_name], values[b_name], a_max=params[0]["max"],
                    b_max=params[1]["max"], kappa=kappa)

    return spec_figure(spec, title=title, landscape=landscape, first_panel=plane)
