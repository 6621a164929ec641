"""Adam: momentum and RMSprop with bias correction (Kingma & Ba 2015; article 5.1).

::

    m_t = beta1 m_{t-1} + (1 - beta1) g_t          m_hat = m_t / (1 - beta1^t)
    v_t = beta2 v_{t-1} + (1 - beta2) g_t^2        v_hat = v_t / (1 - beta2^t)
    update = m_hat / (sqrt(v_hat) + eps)

AMSGrad (Reddi et al. 2018) divides by the running maximum of v_t instead,
bias-corrected as torch.optim.Adam does.
"""
from __future__ import annotations

from .base import GradientTransformation, check_number, namespace, tree_map, zeros_like


def check_betas(b1: float, b2: float) -> tuple[float, float]:
    """Both in [0, 1) (torch.optim's messages); returned as Python floats."""
    return tuple(check_number(f"beta parameter at index {i}", b, high=1.0)
                 for i, b in enumerate((b1, b2)))


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                  amsgrad: bool = False, bias_correction: bool = True) -> GradientTransformation:
    """Adam's direction m_hat / (sqrt(v_hat) + eps); no learning rate yet.

    ``bias_correction=False`` drops the 1/(1 - beta^t) factors (chapter 5
    shows the first steps with and without them).
    """
    b1, b2 = check_betas(b1, b2)
    eps = check_number("epsilon value", eps)

    def init(params):
        state = {"count": 0, "mu": zeros_like(params),
                 "nu": zeros_like(params)}
        if amsgrad:
            state["nu_max"] = zeros_like(params)
        return state

    def update(updates, state, params=None, **extra):
        t = state["count"] + 1
        mu = tree_map(lambda m, g: b1 * m + (1 - b1) * g, state["mu"], updates)
        nu = tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, state["nu"], updates)
        new_state = {"count": t, "mu": mu, "nu": nu}
        if amsgrad:
            nu_max = tree_map(lambda a, v: namespace(v).maximum(a, v), state["nu_max"], nu)
            new_state["nu_max"] = nu_max
            second = nu_max
        else:
            second = nu
        c1 = 1 - b1 ** t if bias_correction else 1.0
        c2 = 1 - b2 ** t if bias_correction else 1.0
        out = tree_map(lambda m, v: (m / c1) / (namespace(v).sqrt(v / c2) + eps), mu, second)
        return out, new_state

    return GradientTransformation(init, update, ("scale_by_adam", {
        "b1": b1, "b2": b2, "eps": eps, "amsgrad": amsgrad, "bias_correction": bias_correction}))
