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
"""
from __future__ import annotations

from typing import Mapping, Sequence

from . import spec as F
from .explorer import Explorer
from .paths import spec_figure

__all__ = ["phase_figure"]


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
    return spec_figure(spec, title=title, landscape=landscape)
