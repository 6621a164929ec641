"""LAMB: Adam with a layer-wise trust ratio (You et al. 2020; article 5.4).

For large-batch training, LAMB rescales AdamW's direction tensor by tensor so
that each step is a fixed fraction of the tensor's norm. Algorithm 2 of the
paper, per parameter tensor ``theta^(i)``::

    m_t = beta1 m_{t-1} + (1 - beta1) g_t      m_hat = m_t / (1 - beta1^t)
    v_t = beta2 v_{t-1} + (1 - beta2) g_t^2    v_hat = v_t / (1 - beta2^t)
    u_t = m_hat / (sqrt(v_hat) + eps) + lambda theta_t
    theta_{t+1} = theta_t - eta * phi(||theta_t||) / ||u_t|| * u_t

with ``phi`` the identity here, and the ratio taken as 1 when either norm is
zero (a freshly zeroed bias, or a zero update). The step of every tensor
then has norm ``eta * ||theta_t||``: a relative, layer-wise learning rate.

Reference: Y. You et al., "Large Batch Optimization for Deep Learning:
Training BERT in 76 minutes", ICLR 2020.
"""
from __future__ import annotations

from .adam import scale_by_adam
from .base import (GradientTransformation, ScalarOrSchedule, chain, scale_by_learning_rate,
                   to_float, tree_map)
from .weight_decay import add_decayed_weights


def _norm(x) -> float:
    return to_float((x * x).sum()) ** 0.5


def scale_by_trust_ratio() -> GradientTransformation:
    """u <- (||theta|| / ||u||) u for each parameter array; 1 if either norm is 0."""

    def update(updates, state, params=None, **extra):
        if params is None:
            raise ValueError("scale_by_trust_ratio needs params: call update(grads, state, params)")

        def rescale(u, p):
            param_norm, update_norm = _norm(p), _norm(u)
            ratio = param_norm / update_norm if param_norm > 0 and update_norm > 0 else 1.0
            return ratio * u

        return tree_map(rescale, updates, params), state

    return GradientTransformation(lambda params: {}, update, ("scale_by_trust_ratio", {}))


def lamb(learning_rate: ScalarOrSchedule = 1e-3, b1: float = 0.9, b2: float = 0.999,
         eps: float = 1e-6, weight_decay: float = 0.01, mask=None) -> GradientTransformation:
    """LAMB (You et al. 2020, Algorithm 2): AdamW's direction, rescaled by the trust ratio.

    theta <- theta - eta ||theta|| / ||u|| u,   u = m_hat / (sqrt(v_hat) + eps) + lambda theta
    """
    return chain(scale_by_adam(b1, b2, eps), add_decayed_weights(weight_decay, mask),
                 scale_by_trust_ratio(), scale_by_learning_rate(learning_rate))
