"""Weight decay, coupled (L2) or decoupled (AdamW) — one transformation, two places.

``add_decayed_weights(lam)`` adds ``lam * theta`` to the updates. *Where* it
sits in a chain is the whole difference between L2 regularisation and
decoupled weight decay (Loshchilov & Hutter 2019; article 5.3)::

    adam + L2 = chain(add_decayed_weights(lam), scale_by_adam(), scale_by_learning_rate(eta))
    adamw     = chain(scale_by_adam(), add_decayed_weights(lam), scale_by_learning_rate(eta))

Before the preconditioner, ``lam * theta`` is divided by sqrt(v_hat) + eps like
any gradient, so large-gradient weights are barely decayed; after it, every
weight shrinks by the same factor ``1 - eta * lam`` per step.
"""
from __future__ import annotations

import numpy as np

from .base import GradientTransformation, check_number, is_leaf, tree_leaves, tree_map


def _resolve_mask(mask, params):
    if mask is None:
        return tree_map(lambda p: True, params)
    m = mask(params) if callable(mask) else mask
    if is_leaf(params) != is_leaf(m) or (not is_leaf(m) and len(m) != len(params)):
        raise ValueError("Invalid mask: weight-decay mask must have one boolean per parameter array")
    for keep in tree_leaves(m):
        if not isinstance(keep, (bool, np.bool_)):
            raise ValueError(f"Invalid mask: entries must be True/False per parameter array, "
                             f"got {type(keep).__name__}")
    return m


def add_decayed_weights(weight_decay: float, mask=None) -> GradientTransformation:
    """updates <- updates + weight_decay * theta, where ``mask`` is True.

    ``mask`` is a tree of booleans shaped like params, or a function
    ``params -> such a tree`` (e.g. to exclude biases and norm weights).
    """
    weight_decay = check_number("weight_decay value", weight_decay)

    def update(updates, state, params=None, **extra):
        if weight_decay == 0:
            return updates, state
        if params is None:
            raise ValueError("add_decayed_weights needs params: call update(grads, state, params)")
        m = _resolve_mask(mask, params)
        return tree_map(lambda u, p, keep: u + weight_decay * p if keep else u,
                        updates, params, m), state

    return GradientTransformation(lambda params: {}, update, ("add_decayed_weights", {
        "weight_decay": weight_decay, "mask": mask}))
