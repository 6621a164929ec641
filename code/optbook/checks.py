"""Fail loudly on non-finite gradients instead of training on NaN (article 7.5)."""
from __future__ import annotations

from .base import GradientTransformation, namespace, tree_leaves


def ensure_finite() -> GradientTransformation:
    """Raise ``FloatingPointError`` naming the first gradient array holding nan/inf."""

    def update(updates, state, params=None, **extra):
        for i, leaf in enumerate(tree_leaves(updates)):
            xp = namespace(leaf)
            if not bool(xp.all(xp.isfinite(leaf))):
                raise FloatingPointError(
                    f"non-finite gradient in parameter array {i} (shape "
                    f"{tuple(leaf.shape)}): lower the learning rate or clip gradients")
        return updates, state

    return GradientTransformation(lambda params: {}, update)
