"""``Shampoo`` with torch.optim's conventions, built on :func:`optbook.shampoo`."""
from __future__ import annotations

from ..base import GradientTransformation, check_number
from ..shampoo import shampoo
from .chain_optimizer import ChainOptimizer

__all__ = ["Shampoo"]


class Shampoo(ChainOptimizer):
    """Shampoo (Gupta, Koren & Singer 2018) with the options of its practical variant.

    For every parameter (blocks of it, with ``block_size``) of order k::

        H_i <- H_i + G_(i) G_(i)^T            (or beta2 H_i + (1 - beta2) G_(i) G_(i)^T)
        D   = G x_1 (H_1 + eps I)^{-1/2k} ... x_k (H_k + eps I)^{-1/2k}
        D  <- D ||A|| / ||D||                  (grafting "sgd": A = G; "adam": A = Adam's step)
        theta <- theta - lr (D + weight_decay theta)   (D through heavy-ball momentum if > 0)

    Arguments: ``lr=1e-3``, ``eps=1e-6`` (``matrix_eps`` in pytorch-optimizer),
    ``beta2=None`` (sums, Algorithm 1), ``precondition_frequency=1`` (roots
    recomputed at steps 1, f + 1, ...), ``block_size=None``, ``grafting=None``
    ("sgd" or "adam"), ``graft_beta2=0.999``, ``graft_eps=1e-8``,
    ``momentum=0``, ``weight_decay=0`` (decoupled), ``maximize``. Equations
    and the reason the roots are taken in float64: :mod:`optbook.shampoo`.
    The chain has no in-place twin, so ``step()`` runs it functionally.

    Unlike pytorch-optimizer's ``Shampoo``, whose momentum mixes the raw
    gradient with the previous *preconditioned* step before preconditioning,
    momentum here is heavy-ball on the preconditioned direction (Distributed
    Shampoo's choice); and with ``precondition_frequency`` f > 1 the roots are
    first computed at step 1, not at step f (where pytorch-optimizer steps
    with a zero preconditioner until then).
    """

    sharding = "gather"  # a matrix root / eigenbasis / Newton-Schulz needs the whole matrix

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, weight_decay: float = 0.0,
                 eps: float = 1e-6, beta2: float | None = None, precondition_frequency: int = 1,
                 block_size: int | None = None, grafting: str | None = None,
                 graft_beta2: float = 0.999, graft_eps: float = 1e-8, *, maximize: bool = False):
        check_number("learning rate", lr)
        check_number("momentum value", momentum)
        check_number("weight_decay value", weight_decay)
        super().__init__(params, defaults=dict(
            lr=lr, momentum=momentum, weight_decay=weight_decay, eps=eps, beta2=beta2,
            precondition_frequency=precondition_frequency, block_size=block_size,
            grafting=grafting, graft_beta2=graft_beta2, graft_eps=graft_eps, maximize=maximize))

    def make_transform(self, group: dict) -> GradientTransformation:
        return shampoo(group["lr"], group["eps"], group["beta2"], group["precondition_frequency"],
                       group["block_size"], group["grafting"], group["momentum"],
                       group["weight_decay"], group["graft_beta2"], group["graft_eps"])
