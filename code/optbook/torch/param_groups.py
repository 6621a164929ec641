"""Which parameters get weight decay: biases, gains, scales and tokens out (article 7.3).

Weight decay pulls every weight toward zero. That is a sensible prior for the
matrices of linear and convolutional layers and for embedding tables, but not
for the small tensors that set a scale or an offset: a bias (it only shifts an
activation), the gain and shift of a normalization layer (whose neutral value
is one, not zero), a layer-scale ``gamma``, a learned temperature such as
CLIP's ``logit_scale``, a position embedding or a class token. Decaying them
toward zero fights what they are for. Common practice therefore puts those
parameters in a second param group with ``weight_decay = 0``::

    groups = param_groups(model, weight_decay=0.1)
    opt = optbook.torch.AdamW(groups, lr=3e-4)   # or torch.optim.AdamW(groups, ...)

Four rules, each catching what the others miss (all on by default):

* ``exclude_1d``: every tensor with at most one dimension (``p.ndim <= 1``).
  That is nanoGPT's rule (``p.dim() < 2``) and timm's (``param.ndim <= 1``):
  it sees a hand-written RMSNorm, a layer-scale ``gamma`` or a 0-d temperature
  without knowing the module's type or name.
* ``exclude_biases``: names that mark a bias (``bias``, ``in_proj_bias``,
  ``bias_ih_l0``), whatever their shape.
* ``no_decay``: every parameter of a module of these types (default
  :data:`NORM_LAYERS`), whatever its shape: a ``nn.LayerNorm((h, w))`` has a
  2-D gain that the dimension rule would decay.
* ``no_decay_names``: parameter names or ``fnmatch`` patterns
  (``"pos_embed"``, ``"blocks.*.ls1.gamma"``). By default (``None``) the
  model's own list, if it has a ``no_weight_decay()`` method returning one,
  as timm's models do (its ViT lists ``pos_embed`` and ``cls_token``, which
  are 3-D and escape the dimension rule), or a ``no_weight_decay`` attribute
  holding a collection of names; names in that list that match no parameter
  are ignored, as in timm. An explicit ``no_decay_names`` *replaces* the
  model's list; to add to it, pass ``{*model.no_weight_decay(), "extra"}``
  (entries of the model's own list may match nothing, as in timm). Pass
  ``()`` to ignore the model's list.
"""
from __future__ import annotations

import fnmatch
import numbers

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


def _as_names(names, source: str) -> tuple[str, ...]:
    """``names`` as a tuple of strings, or a ``TypeError`` naming ``source``."""
    if isinstance(names, str):
        raise TypeError(f"{source} must be a collection of names, not the string "
                        f"{names!r} (write ({names!r},))")
    try:
        patterns = tuple(names)
    except TypeError:
        raise TypeError(f"{source} must be a collection of names, got "
                        f"{type(names).__name__}") from None
    for p in patterns:
        if not isinstance(p, str):
            raise TypeError(f"Invalid entry in {source}: {p!r} (expected a parameter name)")
    return patterns


def _model_names(model: nn.Module) -> tuple[str, ...]:
    """The model's own no-decay list: timm's ``no_weight_decay()`` method, or an attribute
    of that name holding a collection of names; ``()`` if it has neither."""
    own = getattr(model, "no_weight_decay", None)
    if own is None:
        return ()
    if callable(own):
        return _as_names(own(), f"{type(model).__name__}.no_weight_decay()")
    return _as_names(own, f"{type(model).__name__}.no_weight_decay (an attribute)")


def param_groups(model: nn.Module, weight_decay: float,
                 no_decay: tuple[type[nn.Module], ...] = NORM_LAYERS,
                 exclude_biases: bool = True, exclude_1d: bool = True,
                 no_decay_names=None) -> list[dict]:
    """Two torch param groups: ``[decayed, not decayed]``.

    A parameter is *not* decayed if any rule of the module docstring applies:
    it has at most one dimension (``exclude_1d``), its name marks a bias
    (``exclude_biases``), it belongs to a module of a type in ``no_decay``
    (default :data:`NORM_LAYERS`), or its full name matches an entry of
    ``no_decay_names`` (default: the model's ``no_weight_decay()``, if any;
    an explicit list replaces the model's, it is not added to it).

    ``weight_decay`` must be a real number >= 0 (a string such as ``"0.1"`` or
    a bool raises ``TypeError``); ``no_decay`` is a tuple of module classes or
    a single class (``no_decay=nn.LayerNorm``).

    The defaults exclude what timm's ``param_groups_weight_decay`` excludes
    (``ndim <= 1``, ``.bias``, the model's ``no_weight_decay()``), plus the
    parameters of normalization modules of any shape. Embedding tables are 2-D
    and decayed, as in nanoGPT and timm; pass ``no_decay=NORM_LAYERS +
    (nn.Embedding,)`` to exclude them (minGPT does). ``exclude_1d=False`` and
    ``no_decay_names=()`` give the older, type-and-name-only split, which
    decays a hand-written normalization layer's gain.

    Every parameter of ``model`` appears in exactly one group, in
    ``model.named_parameters()`` order. A parameter shared by several modules
    (tied embedding and output weights) appears once, and is decayed only if
    *every* module holding it calls for decay. Each group also carries
    ``"param_names"`` (as torch.optim itself stores them when given named
    parameters), so the split can be printed. The second group has
    ``weight_decay = 0.0``; either group may be empty.

    Raises ``ValueError`` if an entry of an explicitly passed
    ``no_decay_names`` matches no parameter and is not in the model's own list
    (a typo would otherwise decay what it meant to exclude).
    """
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, numbers.Real):
        raise TypeError(f"weight_decay must be a real number, got {weight_decay!r} "
                        f"({type(weight_decay).__name__})")
    weight_decay = check_number("weight_decay value", weight_decay)
    if not isinstance(model, nn.Module):
        raise TypeError(f"param_groups needs an nn.Module, got {type(model).__name__}")
    if isinstance(no_decay, type):        # one class: no_decay=nn.LayerNorm
        no_decay = (no_decay,)
    try:
        no_decay = tuple(no_decay)
    except TypeError:
        raise TypeError(f"no_decay must be an nn.Module subclass or a tuple of them, got "
                        f"{no_decay!r}") from None
    for cls in no_decay:
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise ValueError(f"Invalid no_decay entry: {cls!r} (expected an nn.Module subclass)")
    explicit = no_decay_names is not None
    # the model's own list is read only when used (an explicit list replaces it, and its
    # entries need it only to excuse names that match nothing)
    patterns = _as_names(no_decay_names, "no_decay_names") if explicit else _model_names(model)

    named = list(model.named_parameters())  # each shared parameter once, first name
    if not named:
        raise ValueError(f"param_groups: {type(model).__name__} has no parameters")

    excluded: set[int] = set()  # ids of parameters to keep out of weight decay
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if (isinstance(module, no_decay) or (exclude_biases and _is_bias(name))
                    or (exclude_1d and p.ndim <= 1)):
                excluded.add(id(p))
    # names: every name of a shared parameter counts (remove_duplicate=False)
    all_names = list(model.named_parameters(remove_duplicate=False))
    for pattern in patterns:
        hits = [p for n, p in all_names if fnmatch.fnmatchcase(n, pattern)]
        if explicit and not hits and pattern not in _model_names(model):
            raise ValueError(f"Invalid no_decay_names entry: {pattern!r} matches no parameter "
                             f"of {type(model).__name__}")
        excluded.update(id(p) for p in hits)

    decay = [(n, p) for n, p in named if id(p) not in excluded]
    keep = [(n, p) for n, p in named if id(p) in excluded]
    return [
        {"params": [p for _, p in decay], "param_names": [n for n, _ in decay],
         "weight_decay": weight_decay},
        {"params": [p for _, p in keep], "param_names": [n for n, _ in keep],
         "weight_decay": 0.0},
    ]
