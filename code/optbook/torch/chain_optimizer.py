"""Any optbook chain as a ``torch.optim.Optimizer``.

Each parameter tensor is its own tree: its transformation state lives in
``optimizer.state[p]["transform_state"]`` (plain dicts/tuples of tensors and
ints, so ``state_dict()`` / ``load_state_dict()`` work unchanged and a resumed
run is bit-identical). Because the chain sees one tensor at a time, a chain
that needs *all* gradients at once (global-norm clipping) belongs before
``step()``: call ``optbook.torch.clip_grad_norm_`` there, as with torch.optim.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from ..base import GradientTransformation


class ChainOptimizer(torch.optim.Optimizer):
    """Wrap a fixed transformation, or build one per param group.

    ``ChainOptimizer(model.parameters(), optbook.adamw(1e-3))`` runs the chain
    as is. Subclasses (``SGD``, ``Adam``, ...) instead override
    :meth:`make_transform`, which reads the group's hyper-parameters at every
    step, so changing ``group["lr"]`` (as torch's LR schedulers do) takes
    effect on the next step.
    """

    def __init__(self, params, transform: GradientTransformation | None = None,
                 defaults: dict[str, Any] | None = None):
        if transform is not None and not isinstance(transform, GradientTransformation):
            raise TypeError("transform must be a GradientTransformation, e.g. optbook.adam(1e-3)")
        self._transform = transform
        super().__init__(params, dict(defaults or {}))

    def make_transform(self, group: dict) -> GradientTransformation:
        if self._transform is None:
            raise NotImplementedError("give a transform or override make_transform")
        return self._transform

    def _grad(self, p: torch.Tensor, group: dict) -> torch.Tensor:
        if p.grad.is_sparse:
            raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
        return -p.grad if group.get("maximize", False) else p.grad

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            transform = self.make_transform(group)
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "transform_state" not in state:
                    state["transform_state"] = transform.init(p.detach())
                updates, state["transform_state"] = transform.update(
                    self._grad(p, group), state["transform_state"], p.detach())
                p.add_(updates)
        return loss
