"""Sophia: a clipped step preconditioned by a diagonal Hessian estimate (Liu et al. 2023).

Sophia divides a momentum by an exponential moving average of a *diagonal
Hessian estimate* and clips every coordinate, so that no coordinate moves
further than the learning rate (article 5.4)::

    m_t     = beta1 m_{t-1} + (1 - beta1) g_t
    h_t     = beta2 h_{t-k} + (1 - beta2) h_hat_t     (only every k steps)
    theta_t = theta_{t-1} - eta lambda theta_{t-1}
              - eta sign(m_t) min(|m_t| / (rho h_t + eps), 1)

with ``eps = 1e-15``, as in the authors' released code. Where the curvature
is large the step is Newton-like, ``eta m / (rho h)``; where the estimate is
small or zero the clip turns the step into sign momentum of size ``eta``.
The paper (Algorithm 3) writes the denominator ``max(rho h, eps)`` instead:
the same for the non-negative Gauss-Newton-Bartlett estimates, but for
Hutchinson's estimator, whose entries can be negative, ``rho h + eps`` flips
the step uphill where ``max`` clips it. ``denominator="paper"`` selects the
paper's form. ``h_hat`` comes from the
Gauss-Newton-Bartlett estimator (Sophia-G) or Hutchinson's (Sophia-H); see
``optbook.torch.hessian``.

This is the update of the authors' released ``SophiaG``, with one difference
of convention: their ``step()`` multiplies ``rho`` by a batch size ``bs``
because their ``update_hessian()`` stores ``grad^2`` rather than the paper's
``B * grad^2``. Here ``rho`` is the paper's (written gamma there); pass
``rho * bs`` to reproduce their numbers with ``grad^2`` estimates.

Functional use: the Hessian estimate is an extra keyword of ``update``. Pass
it on the steps where a fresh estimate exists; it is folded into ``h`` before
``h`` is used::

    updates, state = opt.update(grads, state, params)                  # most steps
    updates, state = opt.update(grads, state, params, hessian=h_hat)   # every k-th step

(``chain`` hands the keyword to every link; the others ignore it.) The
authors' loop refreshes ``h`` right after the k-th step; passing that same
estimate to the next ``update`` call is the identical computation.

Reference: H. Liu, Z. Li, D. Hall, P. Liang, T. Ma, "Sophia: A Scalable
Stochastic Second-order Optimizer for Language Model Pre-training", ICLR 2024
(arXiv:2305.14342); code at github.com/Liuhong99/Sophia.
"""
from __future__ import annotations

from .adam import check_betas
from .base import (GradientTransformation, ScalarOrSchedule, check_number, chain, namespace,
                   scale_by_learning_rate, tree_map, zeros_like)
from .weight_decay import add_decayed_weights


def hessian_ema(hessian, estimate, b2: float):
    """h <- b2 h + (1 - b2) h_hat, leaf by leaf (the Hessian half of Sophia's state)."""
    return tree_map(lambda h, e: b2 * h + (1 - b2) * e, hessian, estimate)


def scale_by_sophia(b1: float = 0.965, b2: float = 0.99, rho: float = 0.04,
                    eps: float = 1e-15, denominator: str = "released") -> GradientTransformation:
    """Output ``sign(m) min(|m| / (rho h + eps), 1)``; ``update(..., hessian=h_hat)`` refreshes h.

    ``denominator="paper"`` uses ``max(rho h, eps)`` (see the module docstring).

    State: ``{"count", "mu" (m), "hessian" (h)}``. ``h`` starts at zero, so
    until the first estimate arrives every step is ``sign(m)``.
    """
    b1, b2 = check_betas(b1, b2)
    rho = check_number("rho value", rho)
    eps = check_number("epsilon value", eps)
    if denominator not in ("released", "paper"):
        raise ValueError(f"Invalid denominator: {denominator!r} (use 'released' or 'paper')")

    def init(params):
        return {"count": 0, "mu": zeros_like(params),
                "hessian": zeros_like(params)}

    def clipped_step(m, h):
        xp = namespace(m)
        den = xp.clip(rho * h, min=eps) if denominator == "paper" else rho * h + eps
        return xp.sign(m) * xp.minimum(xp.abs(m) / den, 1.0)

    def update(updates, state, params=None, hessian=None, **extra):
        h = state["hessian"]
        if hessian is not None:
            h = hessian_ema(h, hessian, b2)
        mu = tree_map(lambda m, g: b1 * m + (1 - b1) * g, state["mu"], updates)
        out = tree_map(clipped_step, mu, h)
        return out, {"count": state["count"] + 1, "mu": mu, "hessian": h}

    return GradientTransformation(init, update, ("scale_by_sophia", {
        "b1": b1, "b2": b2, "rho": rho, "eps": eps, "denominator": denominator}))


def sophia(learning_rate: ScalarOrSchedule = 1e-4, b1: float = 0.965, b2: float = 0.99,
           rho: float = 0.04, weight_decay: float = 0.1, eps: float = 1e-15,
           mask=None, denominator: str = "released") -> GradientTransformation:
    """Sophia (Liu et al. 2023): decoupled decay plus the clipped preconditioned step.

    theta <- theta - eta (sign(m) min(|m| / (rho h + eps), 1) + lambda theta)

    The first link is :func:`scale_by_sophia`; give ``update`` the keyword
    ``hessian=`` whenever a new estimate is available.
    """
    return chain(scale_by_sophia(b1, b2, rho, eps, denominator),
                 add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))
