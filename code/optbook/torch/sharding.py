"""What a rule needs when a parameter is a shard: element-wise, reductions, or the whole tensor.

Under FSDP2 (``torch.distributed.fsdp.fully_shard``) or tensor parallelism,
each parameter is a ``DTensor``: every rank holds a slice, and an operation on
it is carried out across the ranks by torch's sharding rules. Element-wise
arithmetic is then exact on each slice. A *reduction* is where a rule can go
silently wrong: ``torch.linalg.vector_norm`` of a sharded tensor is a
``Partial`` DTensor, and ``float()`` of it reads this rank's slice alone
(LAMB's trust ratio, AdaFactor's RMS). So every optimizer class declares, in
its class attribute ``sharding``, which of three kinds its rule is:

``"elementwise"`` (:data:`ELEMENTWISE`)
    every number of the update depends on the same element of the gradient,
    the parameter and the state (SGD, momentum, Adagrad, RMSprop, Adam(W),
    Lion, Sophia, the schedule-free methods): the chain runs on the shards
    as it is.
``"reduces"`` (:data:`REDUCES`)
    the rule reduces over whole tensors (norms, row and column means) and
    its links compute those quantities across the shards: reductions of
    tensors are DTensor operations, which torch carries across the ranks,
    and a reduction turned into a Python number goes through
    :func:`optbook.base.to_float`, which reduces a sharded value first
    (LAMB, AdaFactor). State tensors that a reduction left ``Partial`` are
    made ``Replicate`` (:func:`settle`).
``"gather"`` (:data:`GATHER`)
    the rule needs the whole matrix (a Newton-Schulz iteration, a matrix
    root): ``step()`` gathers the parameter and its gradient
    (``full_tensor()``), runs the rule on the whole tensor with a whole-tensor
    state on every rank, and keeps its own slice of the result. Correct for
    any rule, at the price of the gather and of an unsharded state.

A class whose param groups run different rules declares per group
(:meth:`~optbook.torch.ChainOptimizer.sharding_of`): Muon's AdamW groups are
element-wise and run on their shards; only its Muon groups gather.

FSDP2 lays out rows as ``torch.chunk`` does (ceil(m/N) rows per rank, the last
ranks fewer or none), so a rank may hold an empty shard (a matrix with fewer
rows than ranks) or a single row: the rules test nothing on a shard that an
empty tensor cannot answer (no ``min()`` of a shard), and an operand DTensor
lays out otherwise (a dimension of global size 1 is replicated, never split)
is brought to the shard's layout (:func:`laid_out_as`) before in-place
arithmetic.

``None`` (the default of :class:`~optbook.torch.ChainOptimizer`) reads the
kind off the chain's links (:func:`rule_of_chain`, :data:`LINK_RULES`); a
link that declares nothing (a reader's own transformation) makes ``step()``
refuse DTensor parameters with :class:`ShardingError` naming it, rather than
risk a silently wrong step. A class's declaration is checked against its
chain's links where they are known: declaring less than a link needs is a
``ShardingError`` too.

``tests/test_distributed.py`` trains every class under DDP, ZeRO-1 and FSDP2
on a gloo process group of 2 ranks, and under FSDP2 on 4 (empty shards, and a
checkpoint saved on 2 ranks resumed on 4), and compares with one process. FSDP2 shards dimension
0 (``Shard(0)``); other placements (tensor parallelism's ``Shard(1)``, 2-D
meshes) follow the same rules but are not tested here.
"""
from __future__ import annotations

import sys

import torch

from ..base import GradientTransformation

__all__ = ["ELEMENTWISE", "REDUCES", "GATHER", "LINK_RULES", "ShardingError", "is_dtensor",
           "laid_out_as", "rule_of_chain", "settle"]

ELEMENTWISE = "elementwise"
REDUCES = "reduces"
GATHER = "gather"
_RANK = {ELEMENTWISE: 0, REDUCES: 1, GATHER: 2}

#: The kind of every link of optbook that has an in-place twin (the ``spec`` name).
LINK_RULES = {
    **dict.fromkeys(("identity", "scale", "scale_by_learning_rate", "add_decayed_weights",
                     "trace", "scale_by_adam", "scale_by_adagrad", "scale_by_rms",
                     "scale_by_lion", "scale_by_sophia", "scale_by_relative_step"),
                    ELEMENTWISE),
    # ||theta|| / ||u||; row and column means of G^2 and mean(R); RMS(U); RMS(theta)
    **dict.fromkeys(("scale_by_trust_ratio", "scale_by_factored_rms", "clip_by_block_rms",
                     "scale_by_param_block_rms"), REDUCES),
}


class ShardingError(NotImplementedError):
    """A rule that cannot (or does not say it can) run on sharded parameters."""


def is_dtensor(t) -> bool:
    """Whether ``t`` is a ``torch.distributed.tensor.DTensor`` (no import if none was made)."""
    module = sys.modules.get("torch.distributed.tensor")
    return module is not None and isinstance(t, module.DTensor)


def rule_of_chain(transform: GradientTransformation) -> tuple[str | None, str | None]:
    """``(kind, None)`` read off the links of ``transform``, or ``(None, link)`` for the
    first link that declares nothing (``link`` names it for an error message)."""
    spec = transform.spec
    if spec is None:
        return None, "without spec (a transformation of your own)"
    name, content = spec
    if name == "chain":
        kinds = []
        for t in content:
            kind, missing = rule_of_chain(t)
            if kind is None:
                return None, missing
            kinds.append(kind)
        return max(kinds, key=_RANK.__getitem__, default=ELEMENTWISE), None
    if name == "add_decayed_weights" and content.get("mask") is not None:
        return None, "'add_decayed_weights' with a mask"
    kind = LINK_RULES.get(name)
    return (kind, None) if kind is not None else (None, repr(name))


def check_declaration(owner: str, declared: str | None, transform: GradientTransformation) -> str:
    """The kind to use for ``transform`` in class ``owner``; ShardingError if none can be."""
    if declared is not None and declared not in _RANK:
        raise ValueError(f"Invalid sharding: {declared!r} (one of {sorted(_RANK)} or None)")
    read, missing = rule_of_chain(transform)
    if declared is None:
        if read is None:
            raise ShardingError(
                f"{owner}: the parameters are shards (DTensors, e.g. from FSDP2's "
                f"fully_shard), and the chain's link {missing} does not declare what it "
                f"needs of a sharded tensor; set the class attribute sharding = 'gather' "
                f"(always correct: the rule then runs on the gathered tensor), or "
                f"'elementwise' / 'reduces' if that is what it does (see optbook.torch.sharding)")
        return read
    if read is not None and _RANK[read] > _RANK[declared]:
        raise ShardingError(f"{owner} declares sharding = {declared!r}, but its chain has a "
                            f"link that {read} (see optbook.torch.sharding)")
    return declared


def _is_partial(t) -> bool:
    return is_dtensor(t) and any(pl.is_partial() for pl in t.placements)


def settle(tree):
    """The tree with each ``Partial`` DTensor redistributed to ``Replicate``: the state
    of a rule then holds values, never pending sums (AdaFactor's column factor, a mean
    over the sharded rows, starts as a Partial sum of zeros)."""
    if isinstance(tree, dict):
        return {k: settle(v) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(settle(v) for v in tree)
    if _is_partial(tree):
        from torch.distributed.tensor import Replicate
        return tree.redistribute(tree.device_mesh, [Replicate() if pl.is_partial() else pl
                                                    for pl in tree.placements])
    return tree


def own_slice(full: torch.Tensor, like) -> torch.Tensor:
    """This rank's slice of the whole tensor ``full``, laid out as the DTensor ``like``
    (no communication: every rank holds ``full``)."""
    from torch.distributed.tensor import DTensor, Replicate
    mesh = like.device_mesh
    whole = DTensor.from_local(full, mesh, [Replicate()] * mesh.ndim, run_check=False)
    return whole.redistribute(mesh, like.placements).to_local()


def laid_out_as(t, like):
    """``t`` with the placements of ``like`` when both are DTensors and they differ (a
    local slice where ``t`` is replicated), else ``t``. In-place arithmetic on a shard
    needs its operands laid out as the shard: DTensor replicates what it cannot split,
    as a dimension of global size 1 (the one row of a 1-row matrix)."""
    if is_dtensor(t) and is_dtensor(like) and t.placements != like.placements:
        return t.redistribute(like.device_mesh, like.placements)
    return t
