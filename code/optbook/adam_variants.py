"""NAdam and RAdam: Adam with Nesterov's look-ahead, Adam with a rectified warm-up.

Both are Adam (:mod:`optbook.adam`) with one change each, written here as
``torch.optim.NAdam`` and ``torch.optim.RAdam`` compute them (same defaults),
so that chapter 5's family table can point at tested code for every row.

**NAdam** (Dozat 2016) puts Nesterov's look-ahead into Adam's first moment:
the step mixes the *current* gradient with the momentum it is about to
build. Its momentum coefficient follows a warm-up schedule
(``momentum_decay`` psi = 0.004)::

    mu_t  = beta1 (1 - 0.5 * 0.96^(t psi))          (t = 1, 2, ...)
    m_t   = beta1 m_{t-1} + (1 - beta1) g_t
    v_t   = beta2 v_{t-1} + (1 - beta2) g_t^2
    update = [ (1 - mu_t) / (1 - prod_{i<=t} mu_i) * g_t
             + mu_{t+1} / (1 - prod_{i<=t+1} mu_i) * m_t ] / (sqrt(v_t / (1 - beta2^t)) + eps)

This is the variant of Dozat's paper with the momentum schedule, as torch
computes it; note that with ``momentum_decay = 0`` the schedule is the
constant ``beta1 / 2``, not beta1.

**RAdam** (Liu et al. 2020) notices that in Adam's first steps ``v_t`` is an
average of very few squared gradients, so its variance is large; it runs
momentum SGD until the approximated length of the simple moving average
``rho_t`` exceeds 5, and afterwards multiplies Adam's step by a
rectification factor ``r_t`` < 1 that tends to 1::

    rho_inf = 2 / (1 - beta2) - 1
    rho_t   = rho_inf - 2 t beta2^t / (1 - beta2^t)
    m_hat   = m_t / (1 - beta1^t)
    update  = r_t m_hat sqrt(1 - beta2^t) / (sqrt(v_t) + eps)   if rho_t > 5
            = m_hat                                          otherwise
    r_t     = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))

The threshold is torch's ``rho_t > 5`` (the paper's Algorithm 2 writes
rho_t > 4, the authors' code ``rho_t >= 5``; ``r_t`` is real for rho_t > 4 and
tiny just above it). With beta2 = 0.999, rho_5 = 4.996 and rho_6 = 5.994: by
the paper's test step 5 would already be adaptive, by torch's and the
authors' code step 6 is the first. Note
where eps sits: ``sqrt(1 - beta2^t) / (sqrt(v_t) + eps)``, i.e. eps is
*not* bias-corrected, unlike Adam's ``sqrt(v_hat) + eps``.

References: T. Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016
workshop; L. Liu et al., "On the Variance of the Adaptive Learning Rate and
Beyond", ICLR 2020.
"""
from __future__ import annotations

import math

from .adam import check_betas
from .base import (GradientTransformation, ScalarOrSchedule, chain, check_number, namespace,
                   scale_by_learning_rate, tree_map, zeros_like)
from .weight_decay import add_decayed_weights


def nadam_momentum(t: int, b1: float, momentum_decay: float) -> float:
    """NAdam's momentum coefficient ``mu_t = b1 (1 - 0.5 * 0.96^(t momentum_decay))``, t = 1, 2, ..."""
    return b1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))


def scale_by_nadam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                   momentum_decay: float = 4e-3) -> GradientTransformation:
    """NAdam's direction (module docstring); no learning rate yet.

    State: ``{"count": t, "mu": m, "nu": v, "mu_product": prod_{i<=t} mu_i}``
    (the product is a Python float, exact in float64).
    """
    b1, b2 = check_betas(b1, b2)
    eps = check_number("epsilon value", eps)
    momentum_decay = check_number("momentum_decay value", momentum_decay)

    def init(params):
        return {"count": 0, "mu": zeros_like(params), "nu": zeros_like(params),
                "mu_product": 1.0}

    def update(updates, state, params=None, **extra):
        t = state["count"] + 1
        mu_t = nadam_momentum(t, b1, momentum_decay)
        mu_next = nadam_momentum(t + 1, b1, momentum_decay)
        product = state["mu_product"] * mu_t
        product_next = product * mu_next
        m = tree_map(lambda m, g: b1 * m + (1 - b1) * g, state["mu"], updates)
        v = tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, state["nu"], updates)
        c_g = (1.0 - mu_t) / (1.0 - product)
        c_m = mu_next / (1.0 - product_next)
        c2 = 1.0 - b2 ** t
        out = tree_map(lambda g, m, v: (c_g * g + c_m * m) / (namespace(v).sqrt(v / c2) + eps),
                       updates, m, v)
        return out, {"count": t, "mu": m, "nu": v, "mu_product": product}

    return GradientTransformation(init, update, ("scale_by_nadam", {
        "b1": b1, "b2": b2, "eps": eps, "momentum_decay": momentum_decay}))


def radam_rectification(t: int, b2: float) -> float | None:
    """RAdam's ``r_t`` at step t = 1, 2, ..., or None while ``rho_t <= 5`` (momentum SGD steps)."""
    rho_inf = 2.0 / (1.0 - b2) - 1.0
    rho_t = rho_inf - 2.0 * t * b2 ** t / (1.0 - b2 ** t)
    if rho_t <= 5.0:
        return None
    return math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))


def scale_by_radam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> GradientTransformation:
    """RAdam's direction (module docstring); no learning rate yet.

    With the default beta2 = 0.999 the first 5 steps are bias-corrected
    momentum (``rho_t <= 5``), the sixth the first adaptive one.
    """
    b1, b2 = check_betas(b1, b2)
    eps = check_number("epsilon value", eps)

    def init(params):
        return {"count": 0, "mu": zeros_like(params), "nu": zeros_like(params)}

    def update(updates, state, params=None, **extra):
        t = state["count"] + 1
        m = tree_map(lambda m, g: b1 * m + (1 - b1) * g, state["mu"], updates)
        v = tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, state["nu"], updates)
        c1 = 1.0 - b1 ** t
        r = radam_rectification(t, b2)
        if r is None:
            out = tree_map(lambda m: m / c1, m)
        else:
            root_c2 = (1.0 - b2 ** t) ** 0.5
            out = tree_map(lambda m, v: (m / c1) * (root_c2 / (namespace(v).sqrt(v) + eps)) * r,
                           m, v)
        return out, {"count": t, "mu": m, "nu": v}

    return GradientTransformation(init, update, ("scale_by_radam", {"b1": b1, "b2": b2, "eps": eps}))


def nadam(learning_rate: ScalarOrSchedule = 2e-3, b1: float = 0.9, b2: float = 0.999,
          eps: float = 1e-8, weight_decay: float = 0.0, momentum_decay: float = 4e-3,
          decoupled_weight_decay: bool = False) -> GradientTransformation:
    """NAdam (Dozat 2016) as ``torch.optim.NAdam`` (defaults identical).

    theta <- theta - eta [c_g g + c_m m] / (sqrt(v_hat) + eps)   (c_g, c_m: module docstring)

    ``weight_decay`` is L2 (added to g before NAdam) unless
    ``decoupled_weight_decay=True`` (then ``theta <- theta (1 - eta lambda)``, "NAdamW").
    """
    if decoupled_weight_decay:
        return chain(scale_by_nadam(b1, b2, eps, momentum_decay),
                     add_decayed_weights(weight_decay), scale_by_learning_rate(learning_rate))
    return chain(add_decayed_weights(weight_decay), scale_by_nadam(b1, b2, eps, momentum_decay),
                 scale_by_learning_rate(learning_rate))


def radam(learning_rate: ScalarOrSchedule = 1e-3, b1: float = 0.9, b2: float = 0.999,
          eps: float = 1e-8, weight_decay: float = 0.0,
          decoupled_weight_decay: bool = False) -> GradientTransformation:
    """RAdam (Liu et al. 2020) as ``torch.optim.RAdam`` (defaults identical, threshold rho_t > 5).

    theta <- theta - eta r_t m_hat sqrt(1 - beta2^t) / (sqrt(v) + eps), or eta m_hat early on.

    ``weight_decay`` is L2 unless ``decoupled_weight_decay=True`` ("RAdamW").
    """
    if decoupled_weight_decay:
        return chain(scale_by_radam(b1, b2, eps), add_decayed_weights(weight_decay),
                     scale_by_learning_rate(learning_rate))
    return chain(add_decayed_weights(weight_decay), scale_by_radam(b1, b2, eps),
                 scale_by_learning_rate(learning_rate))
