"""``LAMB`` with torch.optim's conventions, built on :func:`optbook.lamb`."""
from __future__ import annotations

from ..base import check_number
from ..lamb import lamb
from ._checks import check_betas_pair
from .chain_optimizer import ChainOptimizer


class LAMB(ChainOptimizer):
    """LAMB (You et al. 2020, "Large Batch Optimization for Deep Learning", Algorithm 2)::

        u     = m_hat / (sqrt(v_hat) + eps) + weight_decay * theta      (bias-corrected Adam)
        theta <- theta - lr * (||theta|| / ||u||) * u                   (per tensor)

    The trust ratio is 1 where either norm is zero; no gradient clipping is
    built in (call ``torch.nn.utils.clip_grad_norm_`` before ``step()`` if
    wanted). Defaults: ``lr=1e-3``, ``betas=(0.9, 0.999)``, ``eps=1e-6``,
    ``weight_decay=0.01``.
    """

    sharding = "reduces"  # ||theta|| and ||u|| of each tensor, reduced over its shards

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-6, weight_decay: float = 0.01, *, maximize: bool = False):
        check_number("learning rate", lr)
        check_betas_pair(betas)
        check_number("epsilon value", eps)
        check_number("weight_decay value", weight_decay)
        super().__init__(params, defaults=dict(lr=lr, betas=tuple(betas), eps=eps,
                                               weight_decay=weight_decay, maximize=maximize))

    def make_transform(self, group):
        b1, b2 = group["betas"]
        return lamb(group["lr"], b1, b2, group["eps"], group["weight_decay"])
