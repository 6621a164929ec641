"""Schedule-free optimization (Defazio et al. 2024, "The Road Less Scheduled").

No learning-rate schedule: the method keeps two sequences and evaluates the
gradient at an interpolation of them::

    y_t     = (1 - beta) z_t + beta x_t              gradient is taken here
    z_{t+1} = z_t - gamma_t d_t                      a plain SGD / Adam step
    x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}    a running (weighted) average

``d_t`` is the gradient at ``y_t`` (SGD) or Adam's second-moment-normalized
gradient without momentum (AdamW), plus ``weight_decay * y_t``. The average's
weight is ``c_{t+1} = w_{t+1} / sum_{i <= t+1} w_i`` with
``w_t = t^r * max_{i <= t}(gamma_i)^weight_lr_power``; with a constant rate
and r = 0 this is the uniform average ``1 / (t + 1)``. ``gamma_t`` is the rate
with the authors' optional linear warmup, ``lr * min(1, (t + 1) / T_w)``.

The parameters trained (and passed to ``update``) are ``y``; the parameters
to *evaluate* are ``x``: :func:`eval_params` reads them from the state.
This is the authors' reference form (explicit x and z), which their package
``schedulefree`` (``SGDScheduleFree``, ``AdamWScheduleFree``) implements with
y updated in place; ``tests/test_schedule_free.py`` compares the two.
"""
from __future__ import annotations

from .adam import check_betas, scale_by_adam
from .base import (GradientTransformation, check_number, identity, tree_map)

__all__ = ["schedule_free", "schedule_free_sgd", "schedule_free_adamw", "eval_params",
           "train_params"]


def _steps(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) and not hasattr(value, "__index__"):
        raise ValueError(f"Invalid {name}: {value!r} (must be an integer >= 0)")
    value = int(value)
    if value < 0:
        raise ValueError(f"Invalid {name}: {value} (must be an integer >= 0)")
    return value


def schedule_free(direction: GradientTransformation, learning_rate: float, beta: float = 0.9,
                  weight_decay: float = 0.0, warmup_steps: int = 0, r: float = 0.0,
                  weight_lr_power: float = 2.0) -> GradientTransformation:
    """The schedule-free transformation around a base ``direction`` (see module docstring).

    ``update(grads, state, params)`` needs ``params`` (= y, where the gradient
    was taken) and returns ``y_{t+1} - y_t``; the state holds ``x``, ``z``, the
    step count, the running weight sum and the largest rate so far.
    ``beta`` is the interpolation (the authors' ``momentum`` / ``betas[0]``),
    0 < beta < 1.
    """
    if not isinstance(direction, GradientTransformation):
        raise ValueError(f"Invalid direction: {direction!r} (not a GradientTransformation)")
    lr = check_number("learning rate", learning_rate)
    beta = check_number("beta", beta, low=0.0, low_inclusive=False, high=1.0)
    weight_decay = check_number("weight_decay value", weight_decay)
    warmup_steps = _steps("warmup_steps", warmup_steps)
    r = check_number("r", r)
    weight_lr_power = check_number("weight_lr_power", weight_lr_power)

    def init(params):
        # leaf by leaf: a tree may mix depths ([[t], t]) or be empty
        copy = lambda p: p.clone() if hasattr(p, "clone") else p.copy()  # torch, NumPy
        return {"count": 0, "weight_sum": 0.0, "lr_max": -1.0,
                "x": tree_map(copy, params), "z": tree_map(copy, params),
                "direction": direction.init(params)}

    def update(updates, state, params=None, **extra):
        if params is None:
            raise ValueError("Invalid params: None (schedule_free needs the parameters y)")
        k = state["count"]
        gamma = lr * ((k + 1) / warmup_steps if k < warmup_steps else 1.0)
        lr_max = max(gamma, state["lr_max"])
        weight = (k + 1) ** r * lr_max ** weight_lr_power
        weight_sum = state["weight_sum"] + weight
        c = weight / weight_sum if weight_sum > 0 else 0.0
        d, inner = direction.update(updates, state["direction"], params)
        if weight_decay:
            d = tree_map(lambda di, y: di + weight_decay * y, d, params)
        z = tree_map(lambda zi, di: zi - gamma * di, state["z"], d)
        x = tree_map(lambda xi, zi: (1 - c) * xi + c * zi, state["x"], z)
        y_new = tree_map(lambda xi, zi: beta * xi + (1 - beta) * zi, x, z)
        new_state = {"count": k + 1, "weight_sum": weight_sum, "lr_max": lr_max,
                     "x": x, "z": z, "direction": inner}
        return tree_map(lambda yn, y: yn - y, y_new, params), new_state

    return GradientTransformation(init, update)


def schedule_free_sgd(learning_rate: float = 1.0, momentum: float = 0.9,
                      weight_decay: float = 0.0, warmup_steps: int = 0, r: float = 0.0,
                      weight_lr_power: float = 2.0) -> GradientTransformation:
    """Schedule-free SGD, the authors' ``SGDScheduleFree`` (same arguments and defaults)."""
    return schedule_free(identity(), learning_rate, momentum, weight_decay, warmup_steps, r,
                         weight_lr_power)


def schedule_free_adamw(learning_rate: float = 0.0025, b1: float = 0.9, b2: float = 0.999,
                        eps: float = 1e-8, weight_decay: float = 0.0, warmup_steps: int = 0,
                        r: float = 0.0, weight_lr_power: float = 2.0) -> GradientTransformation:
    """Schedule-free AdamW, the authors' ``AdamWScheduleFree`` (same defaults).

    The direction is g / (sqrt(v_t / (1 - b2^t)) + eps) with no first moment:
    ``b1`` is the interpolation beta, which plays momentum's role.
    """
    b1, b2 = check_betas(b1, b2)
    return schedule_free(scale_by_adam(0.0, b2, eps), learning_rate, b1, weight_decay,
                         warmup_steps, r, weight_lr_power)


def eval_params(state):
    """The averaged parameters ``x`` to evaluate (the state of a schedule_free chain)."""
    return state["x"]


def train_params(state, beta: float):
    """``y = (1 - beta) z + beta x``: the point where the next gradient is taken."""
    return tree_map(lambda x, z: beta * x + (1 - beta) * z, state["x"], state["z"])
