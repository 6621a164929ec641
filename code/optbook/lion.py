"""Lion: the sign of an interpolated momentum (Chen et al. 2023; article 5.4).

Lion ("EvoLved Sign Momentum") was found by a program search. Each step::

    c_t     = beta1 m_{t-1} + (1 - beta1) g_t
    theta_t = theta_{t-1} - eta (sign(c_t) + lambda theta_{t-1})
    m_t     = beta2 m_{t-1} + (1 - beta2) g_t

Every coordinate moves by exactly ``eta`` (plus the decoupled weight decay),
so the learning rate is typically 3-10x smaller than AdamW's and the weight
decay 3-10x larger, keeping ``eta * lambda`` similar. Only one moment is
stored, half of Adam's state. Note that the direction uses ``beta1`` but the
stored momentum uses ``beta2``: the interpolation ``c_t`` is never stored.

Reference: X. Chen et al., "Symbolic Discovery of Optimization Algorithms",
NeurIPS 2023, Algorithm 2.
"""
from __future__ import annotations

from .adam import check_betas
from .base import (GradientTransformation, ScalarOrSchedule, chain, namespace,
                   scale_by_learning_rate, tree_map, zeros_like)
from .weight_decay import add_decayed_weights


def scale_by_lion(b1: float = 0.9, b2: float = 0.99) -> GradientTransformation:
    """Output ``sign(b1 m + (1 - b1) g)``, then store ``m <- b2 m + (1 - b2) g``."""
    b1, b2 = check_betas(b1, b2)

    def init(params):
        return {"mu": zeros_like(params)}

    def update(updates, state, params=None, **extra):
        out = tree_map(lambda m, g: namespace(g).sign(b1 * m + (1 - b1) * g),
                       state["mu"], updates)
        mu = tree_map(lambda m, g: b2 * m + (1 - b2) * g, state["mu"], updates)
        return out, {"mu": mu}

    return GradientTransformation(init, update, ("scale_by_lion", {"b1": b1, "b2": b2}))


def lion(learning_rate: ScalarOrSchedule = 1e-4, b1: float = 0.9, b2: float = 0.99,
         weight_decay: float = 0.0, mask=None) -> GradientTransformation:
    """theta <- theta - eta (sign(b1 m + (1-b1) g) + lambda theta)   (Chen et al. 2023)."""
    return chain(scale_by_lion(b1, b2), add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))
