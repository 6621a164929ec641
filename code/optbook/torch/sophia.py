"""``SophiaG`` with torch.optim's conventions, built on :func:`optbook.sophia`."""
from __future__ import annotations

from typing import Sequence

import torch

from ..base import check_number
from ..sophia import hessian_ema, sophia
from ._checks import check_betas_pair
from .chain_optimizer import ChainOptimizer

_SOPHIA_LINK = 0  # position of scale_by_sophia in optbook.sophia's chain


class SophiaG(ChainOptimizer):
    """Sophia with a Gauss-Newton-Bartlett Hessian estimate (Liu et al. 2023).

    ``step()``, with g the gradient in ``p.grad``::

        theta <- theta (1 - lr * weight_decay)
        m     <- beta1 m + (1 - beta1) g
        theta <- theta - lr * sign(m) * min(|m| / (rho * bs * h + 1e-15), 1)

    ``update_hessian()``, every k steps (the authors use k = 10)::

        h <- beta2 h + (1 - beta2) h_hat

    ``update_hessian()`` without argument takes ``h_hat = p.grad ** 2``: the
    authors' convention, where the caller has just back-propagated the mean
    cross-entropy on labels *sampled from the model's own softmax*. That is
    the paper's estimator divided by the batch size B, which is why the
    authors' ``step(bs=...)`` multiplies ``rho`` by ``bs``. With an argument,
    ``update_hessian(estimates)`` takes one tensor (or None to skip) per
    parameter, in ``param_groups`` order, e.g. from
    :func:`optbook.torch.gnb_hessian_estimate` (already times B) or
    :func:`optbook.torch.hutchinson_hessian_estimate`; then keep ``bs=1``.

    Defaults: ``lr=1e-4``, ``betas=(0.965, 0.99)``, ``rho=0.04``,
    ``weight_decay=0.1``, and the keyword ``bs=1``, a per-group
    hyper-parameter (the authors pass it to ``step(bs=...)`` instead, default
    5120): ``SophiaG(params, bs=B)`` then ``step()`` computes what their
    ``step(bs=B)`` computes. With ``bs=1``, ``rho`` is the paper's.
    """

    sharding = "elementwise"  # the clip min(|m| / (rho h), 1) is element by element

    def __init__(self, params, lr: float = 1e-4, betas: tuple[float, float] = (0.965, 0.99),
                 rho: float = 0.04, weight_decay: float = 0.1, *, bs: float = 1,
                 maximize: bool = False):
        check_number("learning rate", lr)
        check_betas_pair(betas)
        check_number("rho value", rho)
        check_number("weight_decay value", weight_decay)
        check_number("bs", bs, low=0.0, low_inclusive=False)
        super().__init__(params, defaults=dict(lr=lr, betas=tuple(betas), rho=rho,
                                               weight_decay=weight_decay, bs=bs,
                                               maximize=maximize))

    def make_transform(self, group):
        b1, b2 = group["betas"]
        # rho * bs first, as the authors' expression ``rho * bs * hess`` groups it
        return sophia(group["lr"], b1, b2, group["rho"] * group["bs"], group["weight_decay"])

    @torch.no_grad()
    def update_hessian(self, estimates: Sequence[torch.Tensor | None] | None = None) -> None:
        """Fold a diagonal Hessian estimate into each parameter's moving average h."""
        members = [(group, p) for group in self.param_groups for p in group["params"]]
        if estimates is None:
            estimates = [None if p.grad is None else p.grad * p.grad for _, p in members]
        else:
            estimates = list(estimates)
            if len(estimates) != len(members):
                raise ValueError(f"update_hessian: got {len(estimates)} estimates for "
                                 f"{len(members)} parameters")
        for (group, p), estimate in zip(members, estimates):
            if estimate is None:
                continue
            if estimate.shape != p.shape:
                raise ValueError(f"update_hessian: estimate of shape {tuple(estimate.shape)} "
                                 f"for a parameter of shape {tuple(p.shape)}")
            state = self.state[p]
            if "transform_state" not in state:
                state["transform_state"] = self.make_transform(group).init(p.detach())
            links = list(state["transform_state"])
            link = dict(links[_SOPHIA_LINK])
            link["hessian"] = hessian_ema(link["hessian"], estimate.detach(), group["betas"][1])
            links[_SOPHIA_LINK] = link
            state["transform_state"] = tuple(links)
