"""``Lion`` with torch.optim's conventions, built on :func:`optbook.lion`."""
from __future__ import annotations

from ..base import check_number
from ..lion import lion
from ._checks import check_betas_pair
from .chain_optimizer import ChainOptimizer


class Lion(ChainOptimizer):
    """Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms")::

        theta <- theta (1 - lr * weight_decay)
        theta <- theta - lr * sign(beta1 m + (1 - beta1) g)
        m     <- beta2 m + (1 - beta2) g

    Args follow torch.optim: ``params`` (iterable of tensors or param-group
    dicts), ``lr`` (1e-4), ``betas`` (0.9, 0.99), ``weight_decay`` (0,
    decoupled), ``maximize``.
    """

    sharding = "elementwise"  # the sign is taken element by element

    def __init__(self, params, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99),
                 weight_decay: float = 0.0, *, maximize: bool = False):
        check_number("learning rate", lr)
        check_betas_pair(betas)
        check_number("weight_decay value", weight_decay)
        super().__init__(params, defaults=dict(lr=lr, betas=tuple(betas),
                                               weight_decay=weight_decay, maximize=maximize))

    def make_transform(self, group):
        b1, b2 = group["betas"]
        return lion(group["lr"], b1, b2, group["weight_decay"])
