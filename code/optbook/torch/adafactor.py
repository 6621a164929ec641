"""``Adafactor`` computing exactly what ``torch.optim.Adafactor`` computes, as a chain."""
from __future__ import annotations

from ..adafactor import _check_beta2, _check_threshold, adafactor
from ..base import check_number
from .chain_optimizer import ChainOptimizer


class Adafactor(ChainOptimizer):
    """AdaFactor (Shazeer & Stern 2018) in torch.optim.Adafactor's formulation.

    Same arguments and defaults as ``torch.optim.Adafactor``: ``lr=1e-2`` (the
    cap of the relative step ``min(lr, 1/sqrt(t))`` and the factor of the
    decoupled decay), ``beta2_decay=-0.8``, ``eps=(None, 1e-3)`` (eps1 None
    means the dtype's machine epsilon), ``d=1.0`` (update clipping),
    ``weight_decay=0.0``, ``maximize``. Two keyword-only options torch does
    not have, for Shazeer & Stern's ablation: ``beta2`` (a constant,
    bias-corrected decay in place of ``1 - t^beta2_decay``; None, the
    default, keeps the schedule) and ``d=math.inf`` (no update clipping,
    which torch also accepts). The equations are in
    :mod:`optbook.adafactor`. State per tensor: a row and a column factor for
    tensors with two or more axes, one moving average for vectors.
    Validation messages follow the other torch.optim classes
    (``Invalid learning rate: -1``) rather than Adafactor's own wording.
    """

    # row and column means of G^2, mean(R), RMS(U) and RMS(theta): reduced over the shards
    sharding = "reduces"

    def __init__(self, params, lr: float = 1e-2, beta2_decay: float = -0.8,
                 eps: tuple = (None, 1e-3), d: float = 1.0, weight_decay: float = 0.0,
                 *, foreach: bool | None = None, maximize: bool = False,
                 beta2: float | None = None):
        check_number("learning rate", lr)
        check_number("beta2_decay value", beta2_decay, low=None, high=0.0, high_inclusive=True)
        if not isinstance(eps, (tuple, list)) or len(eps) != 2:
            raise ValueError(f"Invalid eps: {eps!r} (expected a pair (eps1 or None, eps2))")
        if eps[0] is not None:
            check_number("epsilon1 value", eps[0])
        check_number("epsilon2 value", eps[1])
        _check_threshold(d)
        check_number("weight_decay value", weight_decay)
        beta2 = _check_beta2(beta2)
        super().__init__(params, defaults=dict(lr=lr, beta2_decay=beta2_decay, eps=tuple(eps),
                                               d=d, weight_decay=weight_decay, beta2=beta2,
                                               foreach=foreach,  # accepted, ignored
                                               maximize=maximize))

    def make_transform(self, group):
        return adafactor(group["lr"], group["beta2_decay"], group["eps"], group["d"],
                         group["weight_decay"], beta2=group.get("beta2"))
