"""Global-norm gradient clipping (Pascanu et al. 2013; article 7.4)::

    if ||g|| > tau:  g <- tau / ||g|| * g

where ||g|| is the norm of *all* gradients stacked into one vector. optbook
matches ``torch.nn.utils.clip_grad_norm_``, which scales by
``min(1, tau / (||g|| + 1e-6))`` (the 1e-6 guards a zero norm).
"""
from __future__ import annotations

import math

from .base import GradientTransformation, check_number, namespace, tree_leaves, tree_map


def _norm(tree, norm_type):
    """Norm of the norms of the leaves, as torch does: summing raw powers in the
    leaf's dtype would overflow float16 (300**2 * 4 > 65504) and clip to zero."""
    per_leaf = [float(namespace(leaf).linalg.vector_norm(leaf, ord=norm_type))
                for leaf in tree_leaves(tree)]
    if norm_type == math.inf:
        return max(per_leaf, default=0.0)
    return sum(n ** norm_type for n in per_leaf) ** (1.0 / norm_type)


def clip_grad_norm(grads, max_norm: float, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False):
    """Return ``(clipped_grads, total_norm)``; the inputs are not modified."""
    max_norm = check_number("max_norm", max_norm)
    if norm_type != math.inf:
        norm_type = check_number("norm_type", norm_type, low=0.0, low_inclusive=False)
    total = _norm(grads, norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients is non-finite "
                           "(nan or inf), so it cannot be clipped")
    coef = max_norm / (total + 1e-6)
    if coef > 1.0:  # never amplify; not min(1, coef), which would turn a nan coef into 1
        coef = 1.0
    return tree_map(lambda g: g * coef, grads), total


def clip_by_global_norm(max_norm: float) -> GradientTransformation:
    """The transformation form of :func:`clip_grad_norm` (2-norm over the whole tree)."""
    max_norm = check_number("max_norm", max_norm)

    def update(updates, state, params=None, **extra):
        clipped, _ = clip_grad_norm(updates, max_norm)
        return clipped, state

    return GradientTransformation(lambda params: {}, update)
