"""AdaFactor: a factored second moment and a relative step size (Shazeer & Stern 2018).

Adam stores two numbers per weight. AdaFactor stores, for an n x m matrix,
one moving average per row and one per column (n + m numbers) and rebuilds
the second moment as their rank-1 product (article 5.4). optbook follows
``torch.optim.Adafactor``'s formulation, step t = 1, 2, ...::

    beta2_t = 1 - t^tau                               (tau = beta2_decay = -0.8)
            or beta2 (1 - beta2^(t-1)) / (1 - beta2^t)  (a constant beta2, bias-corrected)
    R_t = beta2_t R_{t-1} + (1 - beta2_t) mean_cols(G_t^2)      (n x 1)
    C_t = beta2_t C_{t-1} + (1 - beta2_t) mean_rows(G_t^2)      (1 x m)
    V_t = R_t C_t / max(mean(R_t), eps1)                        (n x m, never stored)
    U_t = G_t / max(sqrt(V_t), eps1)
    U_t <- U_t / max(1, RMS(U_t) / d)                           (update clipping)
    rho_t = min(eta, 1 / sqrt(t))                               (relative step)
    theta_t = theta_{t-1} - rho_t max(eps2, RMS(theta_{t-1})) U_t - eta lambda theta_{t-1}

Arrays with more than two axes are factored over their last two; vectors and
scalars keep an unfactored ``V_t`` (an ordinary moving average of G^2).
``eps1`` defaults to the machine epsilon of the dtype. The paper fixes the
cap of ``rho_t`` at 0.01 and adds ``eps1`` to G^2 before averaging; torch uses
the learning rate as the cap (default 0.01) and applies ``eps1`` afterwards,
as written above.

Two options exist for the paper's ablation (its Table 2, without warmup):
``beta2=`` replaces the schedule by a constant decay, written as the paper
writes Adam (its Algorithm 1): the bias-corrected factor above makes
``V_t`` the normalised average ``sum_s beta2^(t-s) G_s^2 (1 - beta2) / (1 - beta2^t)``,
Adam's ``v_hat_t``; and ``d=math.inf`` switches update clipping off
(``RMS(U)/inf = 0``; ``torch.optim.Adafactor`` accepts ``d=inf`` too).

As a chain, the step ``rho_t`` is written ``eta * min(1, 1/(eta sqrt t))`` so
that the decoupled decay ``eta lambda theta`` can share the final
``scale_by_learning_rate(eta)`` (see :func:`adafactor`).

Reference: N. Shazeer and M. Stern, "Adafactor: Adaptive Learning Rates with
Sublinear Memory Cost", ICML 2018.
"""
from __future__ import annotations

import math

from .base import (GradientTransformation, ScalarOrSchedule, chain, check_number, namespace,
                   scale_by_learning_rate, to_float, tree_map)
from .weight_decay import add_decayed_weights


def _rms(x) -> float:
    size = math.prod(x.shape)
    return to_float((x * x).sum()) ** 0.5 / size ** 0.5 if size else 0.0


def _new_moments(p) -> dict:
    if len(p.shape) < 2:
        return {"variance": namespace(p).zeros_like(p)}
    xp = namespace(p)
    zeros = namespace(p).zeros_like(p)
    # row factor R: one number per row (mean over the last axis); column factor C likewise
    return {"row": xp.sum(zeros, axis=-1, keepdims=True),
            "col": xp.sum(zeros, axis=-2, keepdims=True)}


def decay_at(t: int, beta2_decay: float, beta2: float | None) -> float:
    """The second-moment decay of step t = 1, 2, ...: ``1 - t^beta2_decay``, or for a
    constant ``beta2`` the bias-corrected ``beta2 (1 - beta2^(t-1)) / (1 - beta2^t)``.

    Both are 0 at t = 1, so ``V_1 = G_1^2`` either way.
    """
    if beta2 is None:
        return 1.0 - t ** beta2_decay
    return beta2 * (1.0 - beta2 ** (t - 1)) / (1.0 - beta2 ** t)


def _check_beta2(beta2):
    # a constant decay in [0, 1); None keeps the schedule 1 - t^beta2_decay
    return None if beta2 is None else check_number("beta2 value", beta2, high=1.0)


def scale_by_factored_rms(beta2_decay: float = -0.8, eps1: float | None = None,
                          beta2: float | None = None) -> GradientTransformation:
    """U_t = G_t / max(sqrt(V_t), eps1), with V_t factored into row and column averages.

    ``beta2`` (in [0, 1)) replaces the schedule ``1 - t^beta2_decay`` by a
    constant, bias-corrected decay (see :func:`decay_at`); ``beta2_decay`` is
    then not used. State: ``{"count": t, "moments": tree of {"row", "col"} or
    {"variance"}}``; for an n x m matrix that is n + m numbers instead of Adam's n m.
    """
    beta2_decay = check_number("beta2_decay value", beta2_decay, low=None, high=0.0, high_inclusive=True)
    beta2 = _check_beta2(beta2)
    if eps1 is not None:
        eps1 = check_number("epsilon1 value", eps1)

    def init(params):
        return {"count": 0, "moments": tree_map(_new_moments, params)}

    def update(updates, state, params=None, **extra):
        t = state["count"] + 1
        beta2_t = decay_at(t, beta2_decay, beta2)

        def average(moments, g):
            xp = namespace(g)
            g2 = g * g
            if "variance" in moments:
                return {"variance": beta2_t * moments["variance"] + (1 - beta2_t) * g2}
            return {"row": beta2_t * moments["row"]
                    + (1 - beta2_t) * xp.mean(g2, axis=-1, keepdims=True),
                    "col": beta2_t * moments["col"]
                    + (1 - beta2_t) * xp.mean(g2, axis=-2, keepdims=True)}

        def precondition(g, moments):
            xp = namespace(g)
            eps = xp.finfo(g.dtype).eps if eps1 is None else eps1
            if "variance" in moments:
                v = moments["variance"]
            else:
                row, col = moments["row"], moments["col"]
                v = row * col / xp.maximum(xp.mean(row, axis=-2, keepdims=True), eps)
            # max(sqrt(v), eps) written as sqrt(max(v, eps^2))
            return g / xp.sqrt(xp.maximum(v, eps * eps))

        moments = tree_map(average, state["moments"], updates)
        return tree_map(precondition, updates, moments), {"count": t, "moments": moments}

    return GradientTransformation(init, update, ("scale_by_factored_rms", {
        "beta2_decay": beta2_decay, "eps1": eps1, "beta2": beta2}))


def _check_threshold(threshold) -> float:
    # d >= 1, or math.inf for no clipping (the paper's d = infinity)
    if isinstance(threshold, (int, float)) and threshold == math.inf:
        return math.inf
    return check_number("clipping threshold d", threshold, low=1.0)


def clip_by_block_rms(threshold: float = 1.0) -> GradientTransformation:
    """u <- u / max(1, RMS(u) / d) for each parameter array (AdaFactor's update clipping).

    ``threshold=math.inf`` is no clipping (the paper's d = infinity).
    """
    threshold = _check_threshold(threshold)

    def update(updates, state, params=None, **extra):
        return tree_map(lambda u: u / max(1.0, _rms(u) / threshold), updates), state

    return GradientTransformation(lambda params: {}, update, ("clip_by_block_rms",
                                                              {"threshold": threshold}))


def scale_by_param_block_rms(eps2: float = 1e-3) -> GradientTransformation:
    """u <- max(eps2, RMS(theta)) u for each parameter array: steps relative to the weights."""
    eps2 = check_number("epsilon2 value", eps2)

    def update(updates, state, params=None, **extra):
        if params is None:
            raise ValueError("scale_by_param_block_rms needs params: "
                             "call update(grads, state, params)")
        return tree_map(lambda u, p: max(eps2, _rms(p)) * u, updates, params), state

    return GradientTransformation(lambda params: {}, update, ("scale_by_param_block_rms",
                                                              {"eps2": eps2}))


def scale_by_relative_step(learning_rate: ScalarOrSchedule = 1e-2) -> GradientTransformation:
    """u <- min(1, 1 / (eta_t sqrt(t))) u, so that eta_t times it is rho_t = min(eta_t, 1/sqrt(t)).

    Followed by ``scale_by_learning_rate(eta)`` this gives AdaFactor's relative
    step size; ``eta_t`` is read from the same number or schedule (t counted
    from 1 here, the schedule called with t - 1 like ``scale_by_learning_rate``).
    """
    if not callable(learning_rate):
        learning_rate = check_number("learning rate", learning_rate)

    def init(params):
        return {"count": 0}

    def update(updates, state, params=None, **extra):
        t = state["count"] + 1
        lr = learning_rate(t - 1) if callable(learning_rate) else learning_rate
        scaled = lr * t ** 0.5
        factor = 1.0 if scaled <= 1.0 else 1.0 / scaled
        return tree_map(lambda u: factor * u, updates), {"count": t}

    return GradientTransformation(init, update, ("scale_by_relative_step",
                                                 {"learning_rate": learning_rate}))


def adafactor(learning_rate: ScalarOrSchedule = 1e-2, beta2_decay: float = -0.8,
              eps: tuple = (None, 1e-3), d: float = 1.0, weight_decay: float = 0.0,
              mask=None, beta2: float | None = None) -> GradientTransformation:
    """AdaFactor as ``torch.optim.Adafactor`` computes it (defaults identical).

    theta <- theta - min(eta, 1/sqrt(t)) max(eps2, RMS(theta)) clip_d(G / sqrt(V_fact))
                   - eta lambda theta

    For the paper's ablation: ``beta2=0.999`` (a constant, bias-corrected decay
    instead of ``1 - t^beta2_decay``) and ``d=math.inf`` (no update clipping).
    """
    if not isinstance(eps, (tuple, list)) or len(eps) != 2:
        raise ValueError(f"Invalid eps: {eps!r} (expected a pair (eps1 or None, eps2))")
    eps1, eps2 = eps
    return chain(scale_by_factored_rms(beta2_decay, eps1, beta2), clip_by_block_rms(d),
                 scale_by_param_block_rms(eps2), scale_by_relative_step(learning_rate),
                 add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate))
