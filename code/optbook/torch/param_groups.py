"""Exclude biases and normalization weights from weight decay (article 7.3).

Weight decay pulls every weight toward zero. That is a sensible prior for the
matrices of linear and convolutional layers, but not for a bias (it only
shifts an activation) nor for the gain and shift of a normalization layer
(LayerNorm, BatchNorm, ...), whose scale of one is the neutral value; decaying
them toward zero fights the normalization. Common practice (e.g. BERT, GPT)
therefore puts those parameters in a second param group with
``weight_decay = 0``::

    groups = param_groups(model, weight_decay=0.1)
    opt = optbook.torch.AdamW(groups, lr=3e-4)   # or torch.optim.AdamW(groups, ...)
"""
from __future__ import annotations

from torch import nn

from ..base import check_number

__all__ = ["NORM_LAYERS", "param_groups"]

#: Modules whose parameters (gain and shift) are never decayed by default.
#: ``_NormBase`` covers BatchNorm1d/2d/3d, SyncBatchNorm, InstanceNorm1d/2d/3d
#: and their Lazy variants.
NORM_LAYERS: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)


def _is_bias(name: str) -> bool:
    """``bias`` of Linear/Conv, ``in_proj_bias`` of MultiheadAttention, ``bias_ih_l0`` of LSTM/GRU."""
    return name == "bias" or name.endswith("_bias") or name.startswith("bias_")


def param_groups(model: nn.Module, weight_decay: float,
                 no_decay: tuple[type[nn.Module], ...] = NORM_LAYERS,
                 exclude_biases: bool = True) -> list[dict]:
    """Two torch param groups: ``[decayed, not decayed]``.

    A parameter is *not* decayed if it belongs to a module of a type in
    ``no_decay`` (default :data:`NORM_LAYERS`), or if ``exclude_biases`` and its
    name marks a bias (``bias``, ``in_proj_bias``, ``bias_ih_l0``, ...). Embedding tables are decayed by default, as in
    ``torch.optim``; pass ``no_decay=NORM_LAYERS + (nn.Embedding,)`` to exclude
    them (minGPT does). Every parameter of ``model`` appears in exactly one
    group, in ``model.named_parameters()`` order. A parameter shared by several
    modules (tied embedding and output weights) appears once, and is decayed
    only if *every* module holding it calls for decay.

    Each group also carries ``"param_names"`` (as torch.optim itself stores
    them when given named parameters), so the split can be printed. The second
    group has ``weight_decay = 0.0``; either group may be empty.
    """
    check_number("weight_decay value", weight_decay)
    if not isinstance(model, nn.Module):
        raise TypeError(f"param_groups needs an nn.Module, got {type(model).__name__}")
    no_decay = tuple(no_decay)
    for cls in no_decay:
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise ValueError(f"Invalid no_decay entry: {cls!r} (expected an nn.Module subclass)")

    excluded: set[int] = set()  # ids of parameters to keep out of weight decay
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if isinstance(module, no_decay) or (exclude_biases and _is_bias(name)):
                excluded.add(id(p))

    named = list(model.named_parameters())  # each shared parameter once, first name
    if not named:
        raise ValueError(f"param_groups: {type(model).__name__} has no parameters")
    decay = [(n, p) for n, p in named if id(p) not in excluded]
    keep = [(n, p) for n, p in named if id(p) in excluded]
    return [
        {"params": [p for _, p in decay], "param_names": [n for n, _ in decay],
         "weight_decay": weight_decay},
        {"params": [p for _, p in keep], "param_names": [n for n, _ in keep],
         "weight_decay": 0.0},
    ]
