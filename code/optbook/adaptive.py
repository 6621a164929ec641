"""Per-parameter learning rates: AdaGrad and RMSprop (article section 4).

AdaGrad (Duchi et al. 2011) accumulates every squared gradient::

    G_t = G_{t-1} + g_t^2           update = g_t / (sqrt(G_t) + eps)

RMSprop (Tieleman & Hinton 2012) replaces the sum by a moving average::

    v_t = beta v_{t-1} + (1 - beta) g_t^2     update = g_t / (sqrt(v_t) + eps)

The article writes ``sqrt(G_t + eps)`` (eps *inside* the root); torch.optim
adds eps *outside*. optbook follows torch by default, so its classes match
torch.optim to rounding; ``eps_inside_sqrt=True`` gives the article's form.
"""
from __future__ import annotations

from .base import GradientTransformation, check_number, namespace, tree_map, zeros_like


def _denominator(acc, eps, eps_inside_sqrt):
    xp = namespace(acc)
    return xp.sqrt(acc + eps) if eps_inside_sqrt else xp.sqrt(acc) + eps


def scale_by_adagrad(eps: float = 1e-10, initial_accumulator_value: float = 0.0,
                     eps_inside_sqrt: bool = False) -> GradientTransformation:
    """Divide by the root of the running *sum* of squared gradients."""
    eps = check_number("epsilon value", eps)
    initial_accumulator_value = check_number("initial_accumulator_value value", initial_accumulator_value)

    def init(params):
        return {"sum_of_squares": tree_map(lambda z: z + initial_accumulator_value, zeros_like(params))}

    def update(updates, state, params=None, **extra):
        acc = tree_map(lambda s, g: s + g * g, state["sum_of_squares"], updates)
        out = tree_map(lambda g, s: g / _denominator(s, eps, eps_inside_sqrt), updates, acc)
        return out, {"sum_of_squares": acc}

    return GradientTransformation(init, update, ("scale_by_adagrad", {
        "eps": eps, "eps_inside_sqrt": eps_inside_sqrt}))


def scale_by_rms(decay: float = 0.99, eps: float = 1e-8, centered: bool = False,
                 eps_inside_sqrt: bool = False) -> GradientTransformation:
    """Divide by the root of an exponential moving average of g^2.

    ``centered=True`` (Graves 2013) subtracts the square of the moving average
    of g, i.e. divides by an estimate of the gradient's standard deviation.
    """
    decay = check_number("alpha value", decay, high=1.0, high_inclusive=True)
    eps = check_number("epsilon value", eps)

    def init(params):
        zeros = zeros_like(params)
        state = {"square_avg": zeros}
        if centered:
            state["grad_avg"] = zeros_like(params)
        return state

    def update(updates, state, params=None, **extra):
        sq = tree_map(lambda v, g: decay * v + (1 - decay) * g * g, state["square_avg"], updates)
        new_state = {"square_avg": sq}
        if centered:
            mean = tree_map(lambda a, g: decay * a + (1 - decay) * g, state["grad_avg"], updates)
            new_state["grad_avg"] = mean
            var = tree_map(lambda s, a: s - a * a, sq, mean)
        else:
            var = sq
        out = tree_map(lambda g, v: g / _denominator(v, eps, eps_inside_sqrt), updates, var)
        return out, new_state

    return GradientTransformation(init, update, ("scale_by_rms", {
        "decay": decay, "eps": eps, "centered": centered, "eps_inside_sqrt": eps_inside_sqrt}))
