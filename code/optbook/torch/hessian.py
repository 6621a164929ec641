"""Diagonal Hessian estimators for Sophia (Liu et al. 2023): Hutchinson and Gauss-Newton-Bartlett.

Both return one tensor per parameter, ready for ``SophiaG.update_hessian``
(or the ``hessian=`` keyword of ``optbook.sophia``), and leave ``p.grad``
untouched (they use ``torch.autograd.grad``).

* Hutchinson: for ``u`` with independent entries of mean 0 and variance 1,
  ``E[u * (H u)] = diag(H)``, since ``E[u_i u_j] = [i = j]``. One
  Hessian-vector product (a double backward) per sample. Unbiased for any
  loss, but it can be negative where the loss is not convex. The Sophia
  paper draws ``u ~ N(0, I)`` (``distribution="gaussian"``); the default here
  is Rademacher (+-1) entries, which is also unbiased and has the smaller
  variance: entry i of one sample has variance ``sum_{j != i} H_ij^2`` for
  Rademacher (``u_i^2 = 1`` exactly) and ``2 H_ii^2 + sum_{j != i} H_ij^2``
  for Gaussian (``Var u_i^2 = 2``).
* Gauss-Newton-Bartlett (GNB), for a softmax cross-entropy loss: draw labels
  ``y_hat_b ~ softmax(logits_b)``, let ``L_hat = (1/B) sum_b CE(logits_b, y_hat_b)``;
  then ``h_hat = B * grad L_hat * grad L_hat``. Bartlett's identity
  ``E_y[grad_z CE grad_z CE^T] = diag(p) - p p^T`` (the Hessian of CE in the
  logits) makes ``E[h_hat]`` the diagonal of the Gauss-Newton matrix
  ``(1/B) sum_b J_b^T (diag p_b - p_b p_b^T) J_b`` of the *mean* loss: the
  cross terms between different examples vanish because each per-example
  gradient has mean zero, and the factor B undoes the 1/B^2 of squaring a
  mean. Always non-negative.

The authors' released code skips the factor B here and multiplies ``rho`` by
the batch size in ``step(bs=...)`` instead; these estimators follow the paper,
so use them with ``bs=1``.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import torch
import torch.nn.functional as F


def _rademacher(p: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    bits = torch.randint(0, 2, p.shape, generator=generator, device=p.device)
    return (2 * bits - 1).to(p.dtype)


def _gaussian(p: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(p.shape, generator=generator, device=p.device, dtype=p.dtype)


_PROBES = {"rademacher": _rademacher, "gaussian": _gaussian}


def hutchinson_hessian_estimate(loss: torch.Tensor, params: Iterable[torch.Tensor], *,
                                samples: int = 1, generator: torch.Generator | None = None,
                                retain_graph: bool = False,
                                distribution: str = "rademacher") -> list[torch.Tensor]:
    """``mean over samples of u * (H u)``: an unbiased estimate of diag(H).

    ``u`` has independent Rademacher (+-1, the default) or standard Gaussian
    (``distribution="gaussian"``, as in the Sophia paper) entries; see the
    module docstring for the two variances. ``loss`` must be a scalar whose
    graph reaches ``params``; ``samples`` Hessian-vector products are
    averaged. Parameters the gradient does not depend on (zero Hessian rows)
    get zeros.
    """
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"Invalid samples: {samples!r} (need an integer >= 1)")
    if distribution not in _PROBES:
        raise ValueError(f"Invalid distribution: {distribution!r} "
                         f"(choose from {', '.join(map(repr, _PROBES))})")
    probe = _PROBES[distribution]
    params = list(params)
    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    # a gradient without a graph (loss linear in p, or p unused) has H u = 0
    live = [i for i, g in enumerate(grads) if g is not None and g.requires_grad]
    estimates = [torch.zeros_like(p) for p in params]
    for s in range(samples):
        us = [probe(p, generator) for p in params]
        if not live:
            break
        hvps = torch.autograd.grad([grads[i] for i in live], params,
                                   grad_outputs=[us[i] for i in live],
                                   retain_graph=retain_graph or s < samples - 1,
                                   allow_unused=True)
        for e, u, hu in zip(estimates, us, hvps):
            if hu is not None:
                e.add_(u * hu.detach())
    return [e / samples for e in estimates]


def gnb_hessian_estimate(logits: torch.Tensor, params: Sequence[torch.Tensor], *,
                         generator: torch.Generator | None = None,
                         retain_graph: bool = False) -> list[torch.Tensor | None]:
    """``B * grad(L_hat) ** 2`` with labels sampled from ``softmax(logits)`` (Sophia-G).

    ``logits`` has shape ``(..., classes)`` and a graph back to ``params``;
    every leading position counts as one example, so B = logits.numel() /
    classes (batch times sequence length for a language model). Returns
    None for parameters the logits do not depend on.
    """
    params = list(params)
    flat = logits.reshape(-1, logits.shape[-1])
    batch = flat.shape[0]
    with torch.no_grad():
        labels = torch.multinomial(torch.softmax(flat.detach(), dim=-1), 1,
                                   generator=generator).squeeze(-1)
    sampled_loss = F.cross_entropy(flat, labels)  # the mean over the B examples
    grads = torch.autograd.grad(sampled_loss, params, retain_graph=retain_graph,
                                allow_unused=True)
    return [None if g is None else batch * g * g for g in grads]
