"""Figure kind ``schedule``: a learning-rate schedule and the loss it gives on the noisy
quadratic model, recomputed in the page.

Page side: ``js/src/nqm.js``.  Menus choose the schedule's shape (constant,
cosine, linear, wsd), WSD's cooldown shape and the final rate; sliders set
the peak rate, the warmup and cooldown fractions and the gradient-noise
scale.  The page recomputes :math:`\\eta_t` and the exact expected loss of
SGD on the noisy quadratic model,
:math:`m_i \\leftarrow (1-\\eta_t h_i)^2 m_i + \\eta_t^2 h_i \\sigma^2` over the
given curvatures :math:`h_i`, beside the constant rate with the same peak,
warmup and noise (grey), and reads out both losses at ``steps // 4`` and at
the end.  The formulas are the chapter's
(:func:`optbook.experiments.schedules.nqm_schedule`, ``nqm_loss``), which
builds the figure: :func:`optbook.experiments.schedules.schedule_figure`;
``tests/browser/test_nqm_figure.py`` checks the page against them.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from . import plotting
from .explorer import Explorer

__all__ = ["nqm_figure", "cycle_color"]


def cycle_color(k: int) -> str:
    """Colour ``Ck`` of the book's style (what the still image draws with)."""
    import matplotlib as mpl

    with plotting.style_context():
        return mpl.rcParams["axes.prop_cycle"].by_key()["color"][k]


def _menu(name: str, options: Sequence[tuple[str, Any]], value) -> tuple[list[dict], int]:
    values = [v for _, v in options]
    if value not in values:
        raise ValueError(f"Invalid {name}: {value!r} (one of {', '.join(map(str, values))})")
    return [{"label": label, "value": v} for label, v in options], values.index(value)


def nqm_figure(draw: Callable[..., Any], *, shapes: Sequence[str], shape: str,
               cooldowns: Sequence[tuple[str, str]], cooldown: str,
               ends: Sequence[tuple[str, float]], end_frac: float,
               curvatures: Sequence[float], params: Sequence[Mapping], steps: int, title: str,
               ref_label: str, eta_max: float, loss_range: tuple[float, float]) -> Explorer:
    """A ``schedule`` figure.

    Args:
        draw: ``draw(shape, cooldown, end_frac, **{p["name"]: value}) -> Figure``,
            the still image and the kernel widget's frame.
        shapes, shape: the schedule menu and its default.
        cooldowns, cooldown: ``[(label, value), ...]`` of WSD's cooldown shapes, default.
        ends, end_frac: ``[(label, fraction of the peak), ...]`` of the final rate, default.
        curvatures: the noisy quadratic's :math:`h_i` (the loss starts at 1 in each).
        params: the sliders (:func:`optbook.figures.spec.param_spec`), named ``peak``,
            ``warmup_frac``, ``cooldown_frac`` and ``noise``.
        ref_label: legend of the grey constant-rate reference.
        eta_max, loss_range: the fixed y ranges of the rate and loss panels.
    """
    shape_menu, shape_at = _menu("shape", [(s, s) for s in shapes], shape)
    cooldown_menu, cooldown_at = _menu("cooldown", cooldowns, cooldown)
    end_menu, end_at = _menu("end_frac", ends, end_frac)
    steps = int(steps)
    spec = {
        "kind": "schedule", "steps": steps, "curvatures": [float(h) for h in curvatures],
        "noise": 1.0, "start": 1.0, "checkpoint": steps // 4,
        "choices": shape_menu, "choice": shape_at, "choiceLabel": "schedule",
        "cooldowns": cooldown_menu, "cooldown": cooldown_at,
        "ends": end_menu, "end": end_at,
        "params": list(params), "refLabel": ref_label, "color": cycle_color(0),
        "etaMax": float(eta_max), "lossRange": [float(v) for v in loss_range],
    }
    grid = {"shape": list(shapes), "cooldown": [v for _, v in cooldowns],
            "end_frac": [v for _, v in ends],
            **{p["name"]: sorted({p["min"], p["value"], p["max"]}) for p in params}}
    defaults = {"shape": shape, "cooldown": cooldown, "end_frac": end_frac,
                **{p["name"]: p["value"] for p in params}}
    labels = {"shape": "schedule", "cooldown": "cooldown (WSD)", "end_frac": "final η / peak",
              **{p["name"]: p["label"] for p in params}}
    return Explorer(draw, grid, defaults, labels=labels, title=title, spec=spec,
                    max_frames=2000)
