"""``clip_grad_norm_`` for torch parameters (the torch form of :func:`optbook.clipping.clip_grad_norm`).

Global-norm clipping (Pascanu, Mikolov & Bengio 2013; article 7.4)::

    ||g|| = ( sum over every element of every gradient |g_i|^p )^(1/p)
    g <- g * min(1, tau / (||g|| + 1e-6))

It needs all gradients at once, so it runs between ``loss.backward()`` and
``optimizer.step()``, exactly like ``torch.nn.utils.clip_grad_norm_``::

    loss.backward()
    optbook.torch.clip_grad_norm_(model.parameters(), max_norm=1.0)
    optimizer.step()

The norm is computed as torch computes it: one ``torch._foreach_norm`` call per
(device, dtype) group of gradients gives every tensor's norm, and the norm of
those norms is the total. Everything stays a tensor on the gradients' device,
and the clipping factor is applied with ``torch._foreach_mul_`` whether or not
it is below 1, so a step on a GPU waits for the host only when
``error_if_nonfinite=True`` asks for a check.

Sharded gradients (DTensors, e.g. under FSDP2's ``fully_shard``): the norms of
the sharded gradients are reduced over the ranks (``full_tensor()``, one
all-reduce per device mesh) before they enter the total, so the total is the
norm of the whole gradients, a plain tensor, identical on every rank; each
rank scales its own shards. (A Python ``float()`` per tensor,
the obvious way to write it, forces one device-to-host copy per tensor.)
"""
from __future__ import annotations

import math

import torch

from ..base import check_number
from .sharding import is_dtensor

__all__ = ["clip_grad_norm_", "total_grad_norm"]


def _grouped(tensors) -> dict[tuple[torch.device, torch.dtype], list[torch.Tensor]]:
    """Tensors by (device, dtype), in their order: ``_foreach`` ops need one of each."""
    groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.device, t.dtype), []).append(t)
    return groups


def _use_foreach(tensors, device, foreach: bool | None) -> bool:
    """torch's rule (torch.utils._foreach_utils): ``foreach=None`` uses the foreach kernels
    on the devices that have them, for plain tensors and parameters (not subclasses);
    ``True`` insists (an error on other devices); ``False`` runs one kernel per tensor."""
    device_ok = device.type in ("cpu", "cuda", "xpu", "mtia",
                                torch._C._get_privateuse1_backend_name())
    if foreach:
        if not device_ok:
            raise RuntimeError(f"foreach=True was passed, but can't use the foreach API on "
                               f"{device.type} tensors")
        return True
    if foreach is None:
        return device_ok and all(type(t) in (torch.Tensor, torch.nn.Parameter) for t in tensors)
    return False


def _norms(group, norm_type: float) -> list[torch.Tensor]:
    """Each plain tensor's norm, and one norm per device mesh for the sharded ones: the
    norm of their shards' norms, a pending reduction (whose ``float()`` would be this
    rank's alone) carried out by one ``full_tensor()`` per mesh."""
    out, meshes = [], {}
    for t in group:
        if is_dtensor(t):
            meshes.setdefault(t.device_mesh, []).append(t)
        else:
            out.append(torch.linalg.vector_norm(t, norm_type))
    for mesh, sharded in meshes.items():
        if norm_type == math.inf:
            out.append(_sharded_max_norm(mesh, sharded))
            continue
        shard_norms = torch.stack([torch.linalg.vector_norm(t, norm_type) for t in sharded])
        out.append(torch.linalg.vector_norm(shard_norms, norm_type).full_tensor())
    return out


def _sharded_max_norm(mesh, sharded) -> torch.Tensor:
    """The largest |entry| of the sharded tensors, over every rank. Taken on each rank's
    shards, with 0 for an empty one (a rank holds no rows of a tensor with fewer rows
    than ranks, and the inf-norm of an empty tensor is an error in torch), then the
    maximum over the mesh (a maximum over a replicated dimension changes nothing)."""
    from torch.distributed.tensor import DTensor, Partial
    local = [t.to_local() for t in sharded]
    largest = torch.stack([torch.linalg.vector_norm(x, math.inf) if x.numel()
                           else x.new_zeros(()) for x in local]).amax()
    pending = DTensor.from_local(largest, mesh, [Partial("max")] * mesh.ndim, run_check=False)
    return pending.full_tensor()


@torch.no_grad()
def total_grad_norm(tensors, norm_type: float = 2.0, foreach: bool | None = None) -> torch.Tensor:
    """The ``norm_type``-norm of all ``tensors`` stacked into one vector, as a tensor on
    the first tensor's device (no host synchronisation); ``tensor(0.)`` for no tensors.

    Computed as the norm of the per-tensor norms (as torch does: summing raw powers in
    float16 would overflow, 300**2 * 4 > 65504)."""
    tensors = list(tensors)
    if not tensors:
        return torch.tensor(0.0)
    first_device = tensors[0].device
    norms: list[torch.Tensor] = []
    for (device, _), group in _grouped(tensors).items():
        if _use_foreach(group, device, foreach):
            # sharded gradients always take _norms (one reduction per mesh, and an
            # inf-norm defined on an empty shard, which _foreach_norm's is not)
            plain = [t for t in group if not is_dtensor(t)]
            if plain:
                norms.extend(torch._foreach_norm(plain, norm_type))
            norms.extend(_norms([t for t in group if is_dtensor(t)], norm_type))
        else:
            norms.extend(_norms(group, norm_type))
    return torch.linalg.vector_norm(torch.stack([n.to(first_device) for n in norms]), norm_type)


@torch.no_grad()
def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> torch.Tensor:
    """Scale every ``p.grad`` in place so their joint ``norm_type``-norm is at most ``max_norm``.

    Same signature and return value as ``torch.nn.utils.clip_grad_norm_``:
    the total norm *before* clipping, as a tensor of the gradients' dtype on
    their device (``tensor(0.)`` if no parameter has a gradient). ``norm_type``
    may be ``float('inf')`` (largest absolute entry). Parameters whose ``grad``
    is None are skipped. ``foreach=None`` (default) uses torch's foreach kernels
    where they exist; ``True`` insists on them, ``False`` loops over tensors.
    With ``error_if_nonfinite=True`` a nan/inf norm raises ``RuntimeError`` (the
    only case that synchronises with the host); otherwise the gradients are
    scaled by the non-finite coefficient, as in torch.

    Stricter than torch on two inputs, which raise ``ValueError`` here:
    ``max_norm < 0`` (torch accepts it and flips the sign of every gradient
    whose norm exceeds ``|max_norm|``), and ``norm_type <= 0`` other than
    ``inf`` (torch accepts ``norm_type=0``, which counts the non-zero entries,
    not a norm one can clip by; negative orders are not norms either).
    ``max_norm = 0`` is allowed and zeroes every gradient, as in torch.
    """
    max_norm = check_number("max_norm", max_norm)
    norm_type = float(norm_type)
    if norm_type != math.inf:
        norm_type = check_number("norm_type", norm_type, low=0.0, low_inclusive=False)
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    grads = [p.grad for p in parameters if p.grad is not None]  # list(): a generator is read once
    if not grads:
        return torch.tensor(0.0)
    total = total_grad_norm(grads, norm_type, foreach)
    if error_if_nonfinite and not bool(torch.isfinite(total)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients is non-finite "
                           "(nan or inf), so it cannot be clipped")
    # clamp, not min(1, coef): a nan coefficient stays nan (as in torch), and no `if`
    # on a device tensor, which would wait for the device
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for (device, _), group in _grouped(grads).items():
        if _use_foreach(group, device, foreach):
            torch._foreach_mul_(group, coef.to(device))
        else:
            c = coef.to(device)
            for g in group:
                (g.to_local() if is_dtensor(g) else g).mul_(c)
    return total
