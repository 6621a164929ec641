"""``clip_grad_norm_`` for torch parameters, built on :func:`optbook.clipping.clip_grad_norm`.

Global-norm clipping (Pascanu, Mikolov & Bengio 2013; article 7.4)::

    ||g|| = ( sum over every element of every gradient |g_i|^p )^(1/p)
    g <- g * min(1, tau / (||g|| + 1e-6))

It needs all gradients at once, so it runs between ``loss.backward()`` and
``optimizer.step()``, exactly like ``torch.nn.utils.clip_grad_norm_``::

    loss.backward()
    optbook.torch.clip_grad_norm_(model.parameters(), max_norm=1.0)
    optimizer.step()
"""
from __future__ import annotations

import torch

from ..clipping import clip_grad_norm

__all__ = ["clip_grad_norm_"]


@torch.no_grad()
def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> torch.Tensor:
    """Scale every ``p.grad`` in place so their joint ``norm_type``-norm is at most ``max_norm``.

    Same signature and return value as ``torch.nn.utils.clip_grad_norm_``:
    the total norm *before* clipping, as a tensor of the gradients' dtype
    (``tensor(0.)`` if no parameter has a gradient). ``norm_type`` may be
    ``float('inf')`` (largest absolute entry). Parameters whose ``grad`` is
    None are skipped. ``foreach`` is accepted and ignored. With
    ``error_if_nonfinite=True`` a nan/inf norm raises ``RuntimeError``;
    otherwise the gradients are scaled by the non-finite coefficient, as in torch.
    """
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    grads = [p.grad for p in parameters if p.grad is not None]  # list(): a generator is read once
    clipped, total = clip_grad_norm(grads, max_norm, float(norm_type), error_if_nonfinite)
    for g, c in zip(grads, clipped):
        g.copy_(c)
    if not grads:
        return torch.tensor(0.0)
    return torch.tensor(total, dtype=grads[0].dtype, device=grads[0].device)
