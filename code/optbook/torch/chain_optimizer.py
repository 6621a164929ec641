"""Any optbook chain as a ``torch.optim.Optimizer``.

Each parameter tensor is its own tree: its transformation state lives in
``optimizer.state[p]["transform_state"]`` (plain dicts/tuples of tensors and
ints, so ``state_dict()`` / ``load_state_dict()`` work unchanged and a resumed
run is bit-identical). Two consequences of "one tensor, one tree":

* a chain that needs *all* gradients at once (global-norm clipping) belongs
  before ``step()``: call ``optbook.torch.clip_grad_norm_`` there, as with
  torch.optim;
* step counters (bias correction, schedules inside the chain) count the steps
  in which *that* tensor had a gradient, as torch.optim's per-parameter
  ``step`` does.
"""
from __future__ import annotations

from typing import Any, Callable, Union

import torch

from ..base import GradientTransformation

TransformOrFactory = Union[GradientTransformation, Callable[[dict], GradientTransformation]]


class ChainOptimizer(torch.optim.Optimizer):
    """Wrap a fixed transformation, or build one per param group.

    ``ChainOptimizer(model.parameters(), optbook.adamw(1e-3))`` runs the chain
    as is: every group gets the same chain, so groups may not carry
    hyper-parameters of their own (that raises ``ValueError``).

    ``ChainOptimizer(groups, lambda g: optbook.adamw(g["lr"], weight_decay=g["weight_decay"]),
    defaults=dict(lr=1e-3, weight_decay=0.1))`` builds the chain from each
    group's hyper-parameters at every step, so per-group settings (e.g.
    :func:`optbook.torch.param_groups`) and torch's LR schedulers, which change
    ``group["lr"]``, take effect. The named classes (``SGD``, ``Adam``, ...)
    work this way by overriding :meth:`make_transform`.
    """

    def __init__(self, params, transform: TransformOrFactory | None = None,
                 defaults: dict[str, Any] | None = None):
        if transform is not None and not callable(transform) \
                and not isinstance(transform, GradientTransformation):
            raise TypeError("transform must be a GradientTransformation (e.g. optbook.adam(1e-3)) "
                            "or a function group -> GradientTransformation")
        self._transform = transform
        super().__init__(params, dict(defaults or {}))

    def make_transform(self, group: dict) -> GradientTransformation:
        if self._transform is None:
            raise NotImplementedError("give a transform or override make_transform")
        if isinstance(self._transform, GradientTransformation):
            return self._transform
        return self._transform(group)

    def add_param_group(self, param_group: dict) -> None:
        if isinstance(self._transform, GradientTransformation):
            own = sorted(set(param_group) - {"params", "param_names"})
            if own:
                raise ValueError(f"Invalid param group: keys {own} would be ignored by a fixed "
                                 "chain; pass a function group -> chain to use them")
        group = {**self.defaults, **param_group}  # what the group will hold
        if self._transform is not None or type(self).make_transform is not ChainOptimizer.make_transform:
            self.make_transform(group)  # raises ValueError on an invalid hyper-parameter
        super().add_param_group(param_group)

    def load_state_dict(self, state_dict: dict) -> None:
        foreign = sorted({key for s in state_dict.get("state", {}).values() for key in s
                          if key != "transform_state"})
        if foreign:
            raise ValueError(f"Invalid state_dict: per-parameter state has keys {foreign}, not "
                             f"'transform_state' (a torch.optim state dict cannot be loaded "
                             f"into {type(self).__name__})")
        super().load_state_dict(state_dict)

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
        # Two phases: compute every update and new state first, then apply them,
        # so an error on one tensor (e.g. ensure_finite) leaves every parameter
        # and every state as it was before the step.
        pending = []
        for gi, group in enumerate(self.param_groups):
            transform = self.make_transform(group)
            for pi, p in enumerate(group["params"]):
                if p.grad is None:
                    continue
                state = self.state[p]
                old = state.get("transform_state")
                if old is None:
                    old = transform.init(p.detach())
                where = f"param group {gi}, parameter {pi} {tuple(p.shape)}"
                try:
                    updates, new = transform.update(self._grad(p, group), old, p.detach())
                except FloatingPointError as exc:  # optbook.ensure_finite in the chain
                    raise FloatingPointError(f"{where}: {exc}") from None
                except (KeyError, ValueError) as exc:
                    if "chain: state has" in str(exc) or isinstance(exc, KeyError):
                        raise ValueError(
                            f"{where}: the saved state does not fit the chain built from the "
                            "group's hyper-parameters; changing momentum between 0 and > 0, "
                            "amsgrad or centered in the middle of a run is not supported") from exc
                    raise
                pending.append((p, updates, new))
        for p, updates, new in pending:
            self.state[p]["transform_state"] = new
            p.add_(updates)
        return loss
