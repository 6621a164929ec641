"""``NAdam`` and ``RAdam`` as drop-in ``torch.optim`` classes (same arguments and defaults).

Each is a chain of :mod:`optbook.adam_variants` (``optbook.nadam`` /
``optbook.radam``) rebuilt from the param group at every step, like the
classes of :mod:`optbook.torch.classic`; ``foreach`` is accepted and ignored,
``capturable`` / ``differentiable`` are refused. These chains have no
in-place twin in :mod:`optbook.torch.fast_path`, so ``step()`` runs the
functional chain (``optimizer.last_step_paths`` says so).
"""
from __future__ import annotations

from ..adam_variants import nadam, radam
from ..base import GradientTransformation, check_number
from ._checks import check_betas_pair
from .classic import _ClassicOptimizer

__all__ = ["NAdam", "RAdam"]


def _adam_defaults(lr, betas, eps, weight_decay, decoupled_weight_decay, **flags) -> dict:
    """The checked hyper-parameters both classes share, as a defaults dict (torch's messages)."""
    check_number("learning rate", lr)
    check_number("epsilon value", eps)
    check_betas_pair(betas)
    check_number("weight_decay value", weight_decay)
    return dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                decoupled_weight_decay=decoupled_weight_decay, **flags)


class NAdam(_ClassicOptimizer):
    """NAdam (Dozat 2016): Adam with Nesterov momentum and torch's momentum schedule.

    ``mu_t = beta1 (1 - 0.5 * 0.96^(t * momentum_decay))``; the step is
    ``lr [(1 - mu_t) g / (1 - prod mu) + mu_{t+1} m / (1 - prod mu * mu_{t+1})] / (sqrt(v_hat) + eps)``
    (equations in :mod:`optbook.adam_variants`). Same signature and defaults
    as ``torch.optim.NAdam``: ``lr=2e-3``, ``betas=(0.9, 0.999)``, ``eps=1e-8``,
    ``weight_decay=0`` (L2, or decoupled with ``decoupled_weight_decay=True``),
    ``momentum_decay=4e-3``, ``maximize``.
    """

    def __init__(self, params, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False):
        check_number("momentum_decay value", momentum_decay)
        super().__init__(params, _adam_defaults(
            lr, betas, eps, weight_decay, decoupled_weight_decay, momentum_decay=momentum_decay,
            foreach=foreach, maximize=maximize, capturable=capturable,
            differentiable=differentiable))

    def make_transform(self, group: dict) -> GradientTransformation:
        b1, b2 = group["betas"]
        return nadam(group["lr"], b1, b2, group["eps"], group["weight_decay"],
                     group["momentum_decay"], group["decoupled_weight_decay"])


class RAdam(_ClassicOptimizer):
    """RAdam (Liu et al. 2020): Adam whose first steps are momentum SGD, then rectified.

    While ``rho_t <= 5`` the step is ``lr m_hat``; afterwards
    ``lr r_t m_hat sqrt(1 - beta2^t) / (sqrt(v) + eps)`` (equations in
    :mod:`optbook.adam_variants`). Same signature and defaults as
    ``torch.optim.RAdam``: ``lr=1e-3``, ``betas=(0.9, 0.999)``, ``eps=1e-8``,
    ``weight_decay=0`` (L2, or decoupled with ``decoupled_weight_decay=True``), ``maximize``.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0,
                 decoupled_weight_decay: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False):
        super().__init__(params, _adam_defaults(
            lr, betas, eps, weight_decay, decoupled_weight_decay, foreach=foreach,
            maximize=maximize, capturable=capturable, differentiable=differentiable))

    def make_transform(self, group: dict) -> GradientTransformation:
        b1, b2 = group["betas"]
        return radam(group["lr"], b1, b2, group["eps"], group["weight_decay"],
                     group["decoupled_weight_decay"])
