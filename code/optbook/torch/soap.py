"""``SOAP`` with torch.optim's conventions, built on :func:`optbook.soap`."""
from __future__ import annotations

from ..base import GradientTransformation, check_number
from ..soap import soap
from ._checks import check_betas_pair
from .chain_optimizer import ChainOptimizer

__all__ = ["SOAP"]


class SOAP(ChainOptimizer):
    """SOAP (Vyas et al. 2024): Adam in the eigenbasis of Shampoo's statistics.

    Per parameter (equations in :mod:`optbook.soap`): statistics
    ``L, R <- b_s L + (1 - b_s) G G^T, ...``; Adam's moments on the gradient
    rotated into their eigenvectors; the eigenvectors refreshed every
    ``precondition_frequency`` steps by one power iteration and a QR. The
    first step only initializes (no update). Arguments and defaults of the
    authors' reference: ``lr=3e-3``, ``betas=(0.95, 0.95)``,
    ``shampoo_beta=None`` (use beta2), ``eps=1e-8``, ``weight_decay=0.01``
    (decoupled, AdamW's placement: see :mod:`optbook.soap`),
    ``precondition_frequency=10``, ``max_precond_dim=10000``,
    ``precondition_1d=False``, ``correct_bias=True``, ``maximize``. The chain
    has no in-place twin, so ``step()`` runs it functionally.
    """

    sharding = "gather"  # a matrix root / eigenbasis / Newton-Schulz needs the whole matrix

    def __init__(self, params, lr: float = 3e-3, betas: tuple[float, float] = (0.95, 0.95),
                 shampoo_beta: float | None = None, eps: float = 1e-8, weight_decay: float = 0.01,
                 precondition_frequency: int = 10, max_precond_dim: int = 10000,
                 precondition_1d: bool = False, correct_bias: bool = True, *,
                 maximize: bool = False):
        check_number("learning rate", lr)
        check_betas_pair(betas)
        check_number("weight_decay value", weight_decay)
        super().__init__(params, defaults=dict(
            lr=lr, betas=tuple(betas), shampoo_beta=shampoo_beta, eps=eps,
            weight_decay=weight_decay, precondition_frequency=precondition_frequency,
            max_precond_dim=max_precond_dim, precondition_1d=precondition_1d,
            correct_bias=correct_bias, maximize=maximize))

    def make_transform(self, group: dict) -> GradientTransformation:
        b1, b2 = group["betas"]
        return soap(group["lr"], b1, b2, group["shampoo_beta"], group["eps"],
                    group["weight_decay"], group["precondition_frequency"],
                    group["max_precond_dim"], group["precondition_1d"], group["correct_bias"])
