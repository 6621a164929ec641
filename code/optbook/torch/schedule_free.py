"""Schedule-free SGD and AdamW as ``torch.optim`` optimizers with ``train()`` / ``eval()``.

Built on :func:`optbook.schedule_free.schedule_free` through ``ChainOptimizer``.
As with the authors' classes (package ``schedulefree``), the parameters hold
``y`` (where gradients are taken) in train mode and the average ``x`` in eval
mode: call ``optimizer.train()`` before training steps and ``optimizer.eval()``
before evaluating or saving; ``step()`` in eval mode raises.

Under DDP and FSDP2 these classes are used as on one process (their rule is
element-wise; ``tests/test_distributed.py``). Under
``torch.distributed.optim.ZeroRedundancyOptimizer`` the class is the
``optimizer_class`` of a local optimizer that holds only this rank's share of
the parameters, and ZeRO copies its own param groups' settings into it at
every step: call ``zero.optim.train()`` and also set
``group["train_mode"] = True`` in ``zero.param_groups``. ``zero.optim.eval()``
swaps in x only for this rank's share; the other parameters keep y until they
are broadcast (consolidate the state dict and evaluate from it instead).
"""
from __future__ import annotations

import torch

from ..base import check_number
from ..schedule_free import schedule_free_adamw, schedule_free_sgd, train_params
from ._checks import check_betas_pair
from .chain_optimizer import ChainOptimizer

__all__ = ["SGDScheduleFree", "AdamWScheduleFree"]


class _ScheduleFree(ChainOptimizer):
    sharding = "elementwise"  # x, z, y and the base step are element by element

    def _beta(self, group) -> float:
        raise NotImplementedError

    @torch.no_grad()
    def eval(self) -> None:
        """Put the averaged parameters x into the model."""
        for group in self.param_groups:
            if group["train_mode"]:
                for p in group["params"]:
                    # .get: indexing the defaultdict would add an empty entry for p
                    state = self.state.get(p, {}).get("transform_state")
                    if state is not None:
                        p.copy_(state["x"])
                group["train_mode"] = False

    @torch.no_grad()
    def train(self) -> None:
        """Put y = (1 - beta) z + beta x back into the model."""
        for group in self.param_groups:
            if not group["train_mode"]:
                for p in group["params"]:
                    # .get: indexing the defaultdict would add an empty entry for p
                    state = self.state.get(p, {}).get("transform_state")
                    if state is not None:
                        p.copy_(train_params(state, self._beta(group)))
                group["train_mode"] = True

    def step(self, closure=None):
        if not self.param_groups[0]["train_mode"]:
            raise RuntimeError(f"{type(self).__name__}.step() called in eval mode: call "
                               "optimizer.train() before training steps")
        return super().step(closure)


class SGDScheduleFree(_ScheduleFree):
    """Schedule-free SGD with the arguments of ``schedulefree.SGDScheduleFree``.

    ``lr`` (1.0), ``momentum`` (0.9, the interpolation beta), ``weight_decay``
    (0, added to the gradient at y), ``warmup_steps`` (0), ``r`` (0),
    ``weight_lr_power`` (2).
    """

    def __init__(self, params, lr: float = 1.0, momentum: float = 0.9, weight_decay: float = 0.0,
                 warmup_steps: int = 0, r: float = 0.0, weight_lr_power: float = 2.0):
        check_number("learning rate", lr)
        check_number("momentum", momentum, low=0.0, low_inclusive=False, high=1.0)
        super().__init__(params, defaults=dict(
            lr=lr, momentum=momentum, weight_decay=weight_decay, warmup_steps=warmup_steps,
            r=r, weight_lr_power=weight_lr_power, train_mode=False))

    def _beta(self, group):
        return group["momentum"]

    def make_transform(self, group):
        return schedule_free_sgd(group["lr"], group["momentum"], group["weight_decay"],
                                 group["warmup_steps"], group["r"], group["weight_lr_power"])


class AdamWScheduleFree(_ScheduleFree):
    """Schedule-free AdamW with the arguments of ``schedulefree.AdamWScheduleFree``.

    ``lr`` (0.0025), ``betas`` (0.9, 0.999; beta1 is the interpolation),
    ``eps`` (1e-8), ``weight_decay`` (0, at y), ``warmup_steps`` (0), ``r``
    (0), ``weight_lr_power`` (2).
    """

    def __init__(self, params, lr: float = 0.0025, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, warmup_steps: int = 0,
                 r: float = 0.0, weight_lr_power: float = 2.0):
        check_number("learning rate", lr)
        check_betas_pair(betas)
        super().__init__(params, defaults=dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
            warmup_steps=warmup_steps, r=r, weight_lr_power=weight_lr_power, train_mode=False))

    def _beta(self, group):
        return group["betas"][0]

    def make_transform(self, group):
        b1, b2 = group["betas"]
        return schedule_free_adamw(group["lr"], b1, b2, group["eps"], group["weight_decay"],
                                   group["warmup_steps"], group["r"], group["weight_lr_power"])
