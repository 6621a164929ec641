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

``step()`` runs the chain in place when every link has an in-place twin
(:mod:`optbook.torch.fast_path`; the tensors of the state are then updated
in place rather than replaced); a chain with any other link runs its
functional ``update``, as the reference path ``fast_path = False`` does.

Sharded parameters (DTensors, e.g. FSDP2's ``fully_shard``)
are run according to the class attribute ``sharding`` (see
:mod:`optbook.torch.sharding`): element-wise rules and rules whose reductions
are carried across the shards run on the shards (never through torch's fused
kernels, which have no sharding rule); ``"gather"`` rules run on the gathered
whole tensor; a chain whose needs are unknown is refused with
:class:`~optbook.torch.ShardingError`.
"""
from __future__ import annotations

from typing import Any, Callable, Union

import torch

from ..base import GradientTransformation
from . import fast_path, sharding

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

    def state_dict(self) -> dict:
        """torch.optim's state dict, with every tuple of a ``transform_state`` written as a
        list and every empty link state ``{}`` as None: ``torch.distributed.checkpoint``
        walks into lists, but stores a tuple as one pickled object (under FSDP2, rank 0's
        shards for every rank), and drops an empty dict inside a list when it loads.
        :meth:`load_state_dict` turns them back into the chain's tuples and dicts."""
        out = super().state_dict()
        out["state"] = {key: {name: _lists(value) if name == "transform_state" else value
                              for name, value in entry.items()}
                        for key, entry in out["state"].items()}
        return out

    def load_state_dict(self, state_dict: dict) -> None:
        foreign = sorted({key for s in state_dict.get("state", {}).values() for key in s
                          if key != "transform_state"})
        if foreign:
            raise ValueError(f"Invalid state_dict: per-parameter state has keys {foreign}, not "
                             f"'transform_state' (a torch.optim state dict cannot be loaded "
                             f"into {type(self).__name__})")
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            transform = None
            for p in group["params"]:
                loaded = self.state[p].get("transform_state") if p in self.state else None
                if loaded is None:
                    continue
                if transform is None:
                    transform = self.make_transform(group)
                # the containers of a fresh state: tuples where the chain makes tuples (built
                # on the meta device: shapes and types, no memory)
                template = transform.init(torch.empty(p.shape, dtype=p.dtype, device="meta"))
                self.state[p]["transform_state"] = _like(template, loaded)

    def _grad(self, p: torch.Tensor, group: dict) -> torch.Tensor:
        if p.grad.is_sparse:
            raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
        return -p.grad if group.get("maximize", False) else p.grad

    #: Run chains in place (``optbook.torch.fast_path``) when every link has a twin
    #: there. Set ``optimizer.fast_path = False`` to run the functional ``update``
    #: of the chain instead (the reference the fast path is tested against).
    fast_path: bool = True
    #: Within the fast path, hand the chains that are exactly torch.optim's SGD,
    #: Adagrad, Adam and AdamW to torch's fused kernels; False keeps optbook's
    #: in-place twins for them too.
    fused_kernels: bool = True
    #: What the rule needs when a parameter is a shard (a DTensor): "elementwise",
    #: "reduces" or "gather" (see :mod:`optbook.torch.sharding`); None reads it off the
    #: chain's links and refuses sharded parameters when a link declares nothing.
    sharding: str | None = None

    def sharding_of(self, group: dict) -> str | None:
        """What the rule of ``group`` needs of a shard: the class's :attr:`sharding`. A
        class whose groups run different rules overrides it (:class:`~optbook.torch.Muon`:
        its AdamW groups are element-wise), so that only the groups that need the whole
        matrix gather it."""
        return self.sharding

    def _fast_eligible(self, p: torch.Tensor) -> bool:
        g = p.grad
        return (self.fast_path and p.is_floating_point() and not g.is_sparse
                and g.dtype == p.dtype and g.shape == p.shape)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        # Two phases: plan every update and new state first (functional updates are
        # computed, in-place ones only planned, with every number checked), then
        # write, so an error on one tensor (e.g. ensure_finite, a schedule's negative
        # rate) leaves every parameter and every state as it was before the step.
        pending, planned, fused = [], [], []
        for gi, group in enumerate(self.param_groups):
            transform = self.make_transform(group)
            kind = None
            if any(sharding.is_dtensor(p) for p in group["params"]):
                kind = sharding.check_declaration(type(self).__name__, self.sharding_of(group),
                                                  transform)
            buckets: dict[tuple, list] = {}
            for pi, p in enumerate(group["params"]):
                if p.grad is None:
                    continue
                shard = sharding.is_dtensor(p)
                if shard and kind == sharding.GATHER:
                    pending.append(self._gathered_update(transform, group, gi, pi, p))
                    continue
                old = self.state[p].get("transform_state")
                if old is None:
                    old = transform.init(p.detach())
                    if shard:  # e.g. a mean over the sharded rows starts as a pending sum
                        old = sharding.settle(old)
                if self._fast_eligible(p):
                    key = (p.dtype, p.device, shard, fast_path.numbers_of(old))
                    buckets.setdefault(key, []).append((pi, p, old))
                else:
                    pending.append(self._functional_update(transform, group, gi, pi, p, old))
            for (dtype, _, shard, _), members in buckets.items():
                maximize = group.get("maximize", False)
                # torch's fused kernels have no sharding rule for DTensors
                run = (fast_path.fused_kernel(transform, members[0][2], dtype)
                       if self.fused_kernels and not shard else None)
                if run is not None and all(p.is_contiguous() and p.grad.is_contiguous()
                                           for _, p, _ in members):
                    fused.append((run, members, maximize))
                    continue
                chain_plan = fast_path.plan(transform, members[0][2])
                if chain_plan is None:
                    pending.extend(self._functional_update(transform, group, gi, pi, p, old)
                                   for pi, p, old in members)
                else:
                    planned.append((chain_plan, members, maximize))
        # how many tensors took each path in this step (the tests and the benchmark read it)
        self.last_step_paths = {"fused": sum(len(m) for _, m, _ in fused),
                                "in_place": sum(len(m) for _, m, _ in planned),
                                "functional": len(pending)}
        for run, members, maximize in fused:
            params = [p for _, p, _ in members]
            news = run(params, [p.grad for p in params], [old for _, _, old in members], maximize)
            for p, new in zip(params, news):
                self.state[p]["transform_state"] = new
        for chain_plan, members, maximize in planned:
            for _, p, old in members:
                self.state[p]["transform_state"] = chain_plan.run(
                    p, p.grad, -1.0 if maximize else 1.0, old)
        for p, updates, new in pending:
            self.state[p]["transform_state"] = new
            if sharding.is_dtensor(p) and not sharding.is_dtensor(updates):
                p.to_local().add_(updates)  # a gathered rule: this rank's slice of its update
            else:
                p.add_(sharding.laid_out_as(updates, p))
        return loss

    def _gathered_update(self, transform, group, gi, pi, p):
        """A ``"gather"`` rule on a shard: the rule runs on the whole tensor (state kept
        whole on every rank); returns this rank's slice of the update."""
        whole = p.full_tensor()
        grad = self._grad(p, group).full_tensor()
        old = self.state[p].get("transform_state")
        if old is None:
            old = transform.init(whole)
        _, updates, new = self._functional_update(transform, group, gi, pi, whole, old,
                                                  grad=grad)
        return p, sharding.own_slice(updates, p), new

    def _functional_update(self, transform, group, gi, pi, p, old, grad=None):
        where = f"param group {gi}, parameter {pi} {tuple(p.shape)}"
        try:
            grad = self._grad(p, group) if grad is None else grad
            updates, new = transform.update(grad, old, p.detach())
        except FloatingPointError as exc:  # optbook.ensure_finite in the chain
            raise FloatingPointError(f"{where}: {exc}") from None
        except (KeyError, ValueError) as exc:
            if "chain: state has" in str(exc) or isinstance(exc, KeyError):
                raise ValueError(
                    f"{where}: the saved state does not fit the chain built from the "
                    "group's hyper-parameters; changing momentum between 0 and > 0, "
                    "amsgrad or centered in the middle of a run is not supported") from exc
            raise
        if sharding.is_dtensor(p):
            new = sharding.settle(new)
        return p, updates, new


def _lists(tree):
    """``tree`` with every tuple a list and every empty dict None (tensors and numbers
    shared, not copied)."""
    if isinstance(tree, dict) and not tree:
        return None
    if isinstance(tree, dict):
        return {k: _lists(v) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return [_lists(v) for v in tree]
    return tree


def _like(template, tree):
    """``tree`` with a tuple wherever ``template`` (a fresh state) has one, and an empty
    dict where it has one and ``tree`` has None."""
    if isinstance(template, dict) and not template and tree is None:
        return {}
    if isinstance(template, dict) and isinstance(tree, dict):
        return {k: _like(template[k], v) if k in template else v for k, v in tree.items()}
    if isinstance(template, (tuple, list)) and isinstance(tree, (tuple, list)) \
            and len(template) == len(tree):
        return type(template)(_like(t, v) for t, v in zip(template, tree))
    return tree
