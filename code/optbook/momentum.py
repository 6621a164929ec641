"""Heavy-ball momentum and Nesterov's look-ahead variant (article section 3).

Polyak (1964) heavy ball, in the article's form::

    v_t = beta * v_{t-1} + g_t          theta_{t+1} = theta_t - eta * v_t

Nesterov (1983), in the form torch.optim and optax implement (Sutskever et al.
2013): the update uses ``g_t + beta * v_t`` instead of ``v_t``. Chapter 3
derives the change of variables that makes it equal to the article's
look-ahead form ``v_t = beta v_{t-1} + grad L(theta_t - eta beta v_{t-1})``.
"""
from __future__ import annotations

from .base import GradientTransformation, check_number, tree_map, zeros_like


def trace(decay: float = 0.9, nesterov: bool = False,
          dampening: float = 0.0) -> GradientTransformation:
    """Velocity ``v_t = decay * v_{t-1} + (1 - dampening) * g_t``; output v_t.

    With ``nesterov=True`` the output is ``g_t + decay * v_t``. As in
    ``torch.optim.SGD`` the first step sets ``v_1 = g_1`` (no dampening), so
    ``dampening = decay`` gives the exponential moving average
    ``v_t = beta v_{t-1} + (1 - beta) g_t`` except for its first term (chapter 3
    compares the forms).
    """
    decay = check_number("momentum value", decay)
    dampening = check_number("dampening value", dampening)
    if nesterov and (decay <= 0 or dampening != 0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def init(params):
        return {"velocity": zeros_like(params), "count": 0}

    def update(updates, state, params=None, **extra):
        if state["count"] == 0:
            velocity = tree_map(lambda g: g * 1, updates)  # a copy, not an alias
        else:
            velocity = tree_map(lambda v, g: decay * v + (1 - dampening) * g,
                                state["velocity"], updates)
        if nesterov:
            out = tree_map(lambda g, v: g + decay * v, updates, velocity)
        else:
            out = velocity
        return out, {"velocity": velocity, "count": state["count"] + 1}

    return GradientTransformation(init, update, ("trace", {
        "decay": decay, "nesterov": nesterov, "dampening": dampening}))
