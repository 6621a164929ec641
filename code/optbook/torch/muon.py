"""``Muon`` for a whole network: hidden matrices to Muon, everything else to AdamW.

Muon (:mod:`optbook.muon`) is defined for weight matrices. Every network
also has parameters it must not touch: biases and normalization gains
(vectors), and, by the practice of Jordan's speedruns and of Moonlight, the
input embedding and the output head, whose rows are looked up or read out
one token at a time rather than multiplied by a whole hidden activation.
Those go to AdamW with a learning rate of their own.

How the other implementations split a model:

* ``torch.optim.Muon`` (PyTorch 2.13) takes only 2-D parameters (anything
  else raises) and leaves the rest to a second optimizer you step yourself.
  Its defaults are a trap: ``lr=1e-3`` and ``weight_decay=0.1`` with the
  "original" scale give steps about 20x smaller than Jordan's ``lr=0.02``;
  ``adjust_lr_fn="match_rms_adamw"`` is Moonlight's scale, made for those
  AdamW-sized rates.
* Jordan's ``SingleDeviceMuonWithAuxAdam`` (package ``muon-optimizer``) is one
  optimizer whose param groups each carry ``use_muon=True/False``; Adam groups
  default to ``lr=3e-4``, ``betas=(0.9, 0.95)``, ``eps=1e-10``.

optbook follows the second design, with torch.optim's conventions: one
optimizer, so one ``step()``, one ``state_dict()`` and one LR scheduler
(which scales each group's ``lr``, Muon's and AdamW's alike)::

    groups = optbook.torch.muon_param_groups(model)        # or write the groups by hand
    opt = optbook.torch.Muon(groups, lr=0.02, adamw_lr=3e-4)

A group is a Muon group unless it says ``use_muon=False``. An AdamW group
takes ``lr``, ``betas``, ``eps`` and ``weight_decay`` from its own keys,
else from the constructor's ``adamw_lr``, ``adamw_betas``, ``adamw_eps``,
``adamw_weight_decay``. A Muon group refuses a parameter with fewer than two
axes (``ValueError`` naming it); a parameter with more (a convolution
kernel) is viewed as ``out x (in kh kw)``.
"""
from __future__ import annotations

from torch import nn

from ..base import GradientTransformation, check_number
from ..muon import NS_COEFFICIENTS, NS_DTYPES, SHAPE_SCALES, check_coefficients, check_steps, muon
from ..optimizers import adamw
from ._checks import check_betas_pair
from .chain_optimizer import ChainOptimizer

__all__ = ["Muon", "muon_param_groups"]

_ADAMW_KEYS = {"lr": "adamw_lr", "betas": "adamw_betas", "eps": "adamw_eps",
               "weight_decay": "adamw_weight_decay"}


class Muon(ChainOptimizer):
    """Muon (Jordan 2024) for hidden matrices, AdamW for the groups with ``use_muon=False``.

    Muon groups (equations in :mod:`optbook.muon`)::

        B <- momentum B + (1 - momentum) G;  N = momentum B + (1 - momentum) G  (nesterov)
        W <- W - lr (s(m, n) NS_{ns_steps}(N) + weight_decay W)

    Arguments of the Muon groups, with Jordan's defaults: ``lr=0.02``,
    ``momentum=0.95``, ``weight_decay=0`` (decoupled), ``nesterov=True``,
    ``ns_steps=5``, ``ns_coefficients=(3.4445, -4.7750, 2.0315)``,
    ``eps=1e-7`` (in the normalization ``G / (||G||_F + eps)``),
    ``shape_scale="jordan"`` (``sqrt(max(1, m/n))``; ``"moonlight"`` is
    ``0.2 sqrt(max(m, n))``), ``ns_dtype="float32"`` (``"bfloat16"`` as the
    reference, ``"float64"``). Defaults of the AdamW groups (Jordan's
    ``SingleDeviceMuonWithAuxAdam``): ``adamw_lr=3e-4``,
    ``adamw_betas=(0.9, 0.95)``, ``adamw_eps=1e-10``, ``adamw_weight_decay=0``.
    ``maximize`` applies to both.

    The AdamW groups are exactly :class:`optbook.torch.AdamW`'s chain, so they
    take the fused fast path (:mod:`optbook.torch.fast_path`); the Muon groups
    run the functional chain. Under FSDP2 (DTensor parameters) only the Muon
    groups gather their matrices (:meth:`sharding_of`); the AdamW groups run
    on their shards.
    """

    sharding = "gather"  # Newton-Schulz needs the whole matrix (the Muon groups)

    def __init__(self, params, lr: float = 0.02, momentum: float = 0.95,
                 weight_decay: float = 0.0, nesterov: bool = True, ns_steps: int = 5,
                 ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
                 eps: float = 1e-7, shape_scale: str = "jordan", ns_dtype: str = "float32", *,
                 adamw_lr: float = 3e-4, adamw_betas: tuple[float, float] = (0.9, 0.95),
                 adamw_eps: float = 1e-10, adamw_weight_decay: float = 0.0,
                 maximize: bool = False):
        check_number("adamw_lr value", adamw_lr)
        check_betas_pair(adamw_betas)
        check_number("adamw_eps value", adamw_eps)
        check_number("adamw_weight_decay value", adamw_weight_decay)
        super().__init__(params, defaults=dict(
            lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov,
            ns_steps=ns_steps, ns_coefficients=tuple(ns_coefficients), eps=eps,
            shape_scale=shape_scale, ns_dtype=ns_dtype, use_muon=True, adamw_lr=adamw_lr,
            adamw_betas=tuple(adamw_betas), adamw_eps=adamw_eps,
            adamw_weight_decay=adamw_weight_decay, maximize=maximize))

    def add_param_group(self, param_group: dict) -> None:
        group = dict(param_group)
        use_muon = group.get("use_muon", self.defaults["use_muon"])
        if not isinstance(use_muon, bool):
            raise TypeError(f"Invalid use_muon: {use_muon!r} (expected True or False)")
        group["use_muon"] = use_muon
        if not use_muon:
            for key, default in _ADAMW_KEYS.items():
                group.setdefault(key, group.get(default, self.defaults[default]))
        else:
            params = group["params"]
            params = [params] if isinstance(params, nn.Parameter) else list(params)
            group["params"] = params
            names = group.get("param_names", [None] * len(params))
            for i, (p, name) in enumerate(zip(params, names)):
                if p.ndim < 2:
                    label = f"'{name}'" if name else f"{i}"
                    raise ValueError(
                        f"Invalid param group: Muon orthogonalizes matrices, but parameter "
                        f"{label} has shape {tuple(p.shape)}; put vectors and scalars (and the "
                        "embedding and output head) in a group with use_muon=False (AdamW), "
                        "e.g. with optbook.torch.muon_param_groups(model)")
        super().add_param_group(group)

    def sharding_of(self, group: dict) -> str | None:
        """``"gather"`` for the Muon groups; None for the AdamW groups, whose kind is then
        read off their chain (element-wise): under FSDP2 they run on their shards."""
        return self.sharding if group["use_muon"] else None

    def make_transform(self, group: dict) -> GradientTransformation:
        if not group["use_muon"]:
            check_betas_pair(group["betas"])
            b1, b2 = group["betas"]
            return adamw(group["lr"], b1, b2, group["eps"], group["weight_decay"])
        if group["shape_scale"] not in SHAPE_SCALES:
            raise ValueError(f"Invalid shape_scale: {group['shape_scale']!r} "
                             f"(expected one of {SHAPE_SCALES})")
        if group["ns_dtype"] not in NS_DTYPES:
            raise ValueError(f"Invalid ns_dtype: {group['ns_dtype']!r} (expected one of {NS_DTYPES})")
        check_coefficients(group["ns_coefficients"])
        check_steps("ns_steps", group["ns_steps"])
        return muon(group["lr"], group["momentum"], group["weight_decay"], group["nesterov"],
                    group["ns_steps"], group["ns_coefficients"], group["eps"],
                    group["shape_scale"], group["ns_dtype"])


def muon_param_groups(model: nn.Module, head=None, adamw: dict | None = None) -> list[dict]:
    """``[muon_group, adamw_group]`` for :class:`Muon`: hidden matrices, and everything else.

    The Muon group holds every parameter with two or more axes, except those
    of ``nn.Embedding`` modules and of the output ``head``; the AdamW group
    (``use_muon=False``) holds the rest: biases, gains, embeddings, the head.
    ``head`` is a module, a parameter name, or a list of either; by default
    the *last* ``nn.Linear`` of ``model.modules()``, which is the output layer
    of an MLP or of most language models (pass ``head=`` when it is not, e.g.
    a model whose head is tied to its embedding or registered first). Each
    group carries ``param_names``; a parameter shared by two modules appears
    once. ``adamw`` adds settings to the AdamW group (e.g. ``dict(lr=3e-4,
    weight_decay=0.0)``). Give them explicitly under
    ``torch.distributed.optim.ZeroRedundancyOptimizer``: it fills every group's
    missing keys from its own keyword arguments, so an AdamW group without its
    own ``lr`` would take Muon's instead of ``adamw_lr``.
    """
    if adamw is not None and not isinstance(adamw, dict):
        raise TypeError(f"Invalid adamw: {type(adamw).__name__} (expected a dict of group settings)")
    reserved = sorted({"params", "param_names", "use_muon"} & set(adamw or {}))
    if reserved:
        raise ValueError(f"Invalid adamw: key {reserved[0]!r} is set by muon_param_groups")
    if not isinstance(model, nn.Module):
        raise TypeError(f"Invalid model: {type(model).__name__} (expected an nn.Module)")
    heads = head if isinstance(head, (list, tuple)) else ([] if head is None else [head])
    if head is None:
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        heads = linears[-1:]
    head_params, head_names = set(), set()
    for h in heads:
        if isinstance(h, nn.Module):
            head_params.update(id(p) for p in h.parameters())
        elif isinstance(h, str):
            head_names.add(h)
        else:
            raise TypeError(f"Invalid head: {h!r} (expected an nn.Module or a parameter name)")
    known = {name for name, _ in model.named_parameters()}
    missing = sorted(head_names - known)
    if missing:
        raise ValueError(f"Invalid head: no parameter named {missing[0]!r} in the model")
    embedding = {id(p) for m in model.modules() if isinstance(m, nn.Embedding)
                 for p in m.parameters()}
    muon_group = {"params": [], "param_names": [], "use_muon": True}
    adamw_group = {**(adamw or {}), "params": [], "param_names": [], "use_muon": False}
    for name, p in model.named_parameters():  # shared parameters are listed once
        aux = (p.ndim < 2 or id(p) in embedding or id(p) in head_params or name in head_names)
        group = adamw_group if aux else muon_group
        group["params"].append(p)
        group["param_names"].append(name)
    return [g for g in (muon_group, adamw_group) if g["params"]]
