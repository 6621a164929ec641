"""SOAP: Adam run in the eigenbasis of Shampoo's preconditioner (Vyas et al. 2024).

Shampoo (:mod:`optbook.shampoo`) and Adam differ in their basis: Adam
rescales each coordinate, Shampoo whole directions. Write Shampoo's
statistics by their eigendecompositions, ``L = Q_L Λ_L Q_L^T`` and
``R = Q_R Λ_R Q_R^T``. In the rotated coordinates ``G' = Q_L^T G Q_R`` the
preconditioner is diagonal, and there SOAP ("ShampoO with Adam in the
Preconditioner's eigenbasis") simply runs Adam::

    L_t = b_s L_{t-1} + (1 - b_s) G_t G_t^T,   R_t likewise      (b_s = shampoo_beta or beta2)
    G'_t = Q_L^T G_t Q_R                                         (rotate in)
    m_t  = beta1 m_{t-1} + (1 - beta1) G_t                       (kept in the original basis)
    v_t  = beta2 v_{t-1} + (1 - beta2) G'_t^2                    (kept in the rotated basis)
    update = sqrt(1 - beta2^t) / (1 - beta1^t) * Q_L [ (Q_L^T m_t Q_R) / (sqrt(v_t) + eps) ] Q_R^T

The eigenvectors are refreshed every ``precondition_frequency`` steps,
cheaply: one step of power iteration from the current ones,
``Q <- qr(L Q)``, after sorting the columns of Q by their estimated
eigenvalues ``diag(Q^T L Q)`` (largest first) and permuting ``v``'s
coordinates the same way, so that each second-moment entry stays with its
direction. Between refreshes Q is stale, but Adam's second moment keeps
adapting in the (slightly wrong) basis: Vyas et al. give this as the reason
SOAP tolerates rarer refreshes than Shampoo tolerates stale roots.

Details as in the authors' reference (github.com/nikhilvyas/SOAP), which
optbook follows:

* the first step only initializes: ``L_1 = (1 - b_s) G_1 G_1^T`` and Q from
  a full eigendecomposition (``eigh``, columns by decreasing eigenvalue);
  the update is zero, and Adam's step count t starts at the second call;
* eps sits outside the bias correction: ``sqrt(v) + eps`` with the factor
  ``sqrt(1 - beta2^t) / (1 - beta1^t)`` applied after;
* an axis longer than ``max_precond_dim`` gets no rotation (identity), and a
  vector gets none unless ``precondition_1d``: such parameters run plain
  Adam (with the eps placement above);
* tensors of any order rotate every axis (a conv kernel has four Q's).

Not reproduced: the reference's ``merge_dims`` and ``normalize_grads``
options (both off by default there). And one deviation: the reference
applies its decoupled weight decay to the *already updated* weights,
``W <- (W - lr u)(1 - lr wd)``, and not at all on the first step; optbook's
:func:`soap` decays ``W`` before the update like AdamW, ``W - lr (u + wd W)``,
at every step. The two differ by ``lr^2 wd u`` per step.

Reference: N. Vyas et al., "SOAP: Improving and Stabilizing Shampoo using
Adam", 2024 (ICLR 2025); reference code github.com/nikhilvyas/SOAP.
"""
from __future__ import annotations

import array_api_compat

from .base import (GradientTransformation, ScalarOrSchedule, chain, check_number, namespace,
                   scale_by_learning_rate, tree_map)
from .muon import lerp
from .shampoo import _device, _first, _second, axis_statistic
from .weight_decay import add_decayed_weights


def _rotate(x, Q, inverse: bool = False):
    """``x`` with every axis multiplied by ``Q^T`` (``Q`` for ``inverse``); None: that axis as is.

    Each step contracts the first axis and appends the result last, so the
    order of the axes comes back after all of them.
    """
    xp = namespace(x)
    for q in Q:
        if q is None:
            x = xp.permute_dims(x, tuple(range(1, len(x.shape))) + (0,))
        else:
            x = xp.tensordot(x, q, axes=([0], [1 if inverse else 0]))
    return x


def _eigenbasis(H):
    """Eigenvectors of a symmetric H, columns by decreasing eigenvalue (reference: eigh + flip)."""
    xp = namespace(H)
    _, Q = xp.linalg.eigh(H + 1e-30 * xp.eye(H.shape[0], dtype=H.dtype, **_device(H)))
    return xp.flip(Q, axis=1)


def _refresh(H, Q, v, axis):
    """One power-iteration step ``qr(H Q)`` with Q's columns sorted by ``diag(Q^T H Q)``; v follows."""
    xp = namespace(H)
    HQ = H @ Q
    estimate = xp.sum(Q * HQ, axis=0)
    order = xp.argsort(estimate, descending=True)
    Q_new, _ = xp.linalg.qr(xp.take(HQ, order, axis=1))
    return Q_new, xp.take(v, order, axis=axis)


def _check_dim(value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Invalid max_precond_dim: {value!r} (expected an integer >= 1)")
    return value


def scale_by_soap(b1: float = 0.95, b2: float = 0.95, shampoo_beta: float | None = None,
                  eps: float = 1e-8, precondition_frequency: int = 10,
                  max_precond_dim: int = 10000, precondition_1d: bool = False,
                  correct_bias: bool = True) -> GradientTransformation:
    """SOAP's direction (module docstring); no learning rate yet. Zero on the first call.

    State: ``{"count": calls, "leaves": tree of {"mu": m, "nu": v, "stats": (L, R, ...),
    "basis": (Q_L, Q_R, ...)}}``, with None for an axis that is not rotated.
    """
    from .adam import check_betas
    from .shampoo import _check_frequency

    b1, b2 = check_betas(b1, b2)
    sb = b2 if shampoo_beta is None else check_number("shampoo_beta value", shampoo_beta,
                                                      high=1.0)
    eps = check_number("epsilon value", eps)
    precondition_frequency = _check_frequency(precondition_frequency)
    max_precond_dim = _check_dim(max_precond_dim)

    def rotated(shape):
        if len(shape) == 1 and not precondition_1d:
            return [False]
        return [n <= max_precond_dim for n in shape]

    def init_leaf(p):
        xp = namespace(p)
        stats = tuple(xp.zeros((n, n), dtype=p.dtype, **_device(p)) if r else None
                      for n, r in zip(p.shape, rotated(tuple(p.shape))))
        if len(p.shape) == 0:
            stats = ()
        return {"mu": xp.zeros_like(p), "nu": xp.zeros_like(p), "stats": stats,
                "basis": tuple(None for _ in stats)}

    def init(params):
        return {"count": 0, "leaves": tree_map(init_leaf, params)}

    def accumulate(g, stats):
        return tuple(None if H is None else lerp(H, axis_statistic(g, i), 1 - sb)
                     for i, H in enumerate(stats))

    def update(updates, state, params=None, **extra):
        calls = state["count"] + 1
        t = calls - 1  # Adam's step count: the first call only initializes

        def leaf(g, s):
            xp = namespace(g)
            if calls == 1:
                stats = accumulate(g, s["stats"])
                basis = tuple(None if H is None else _eigenbasis(H) for H in stats)
                return xp.zeros_like(g), {**s, "stats": stats, "basis": basis}
            basis = s["basis"]
            g_rot = _rotate(g, basis)
            m = lerp(s["mu"], g, 1 - b1)
            v = lerp(s["nu"], g_rot * g_rot, 1 - b2)
            direction = _rotate(_rotate(m, basis) / (xp.sqrt(v) + eps), basis, inverse=True)
            if correct_bias:
                direction = direction * ((1 - b2 ** t) ** 0.5 / (1 - b1 ** t))
            stats = accumulate(g, s["stats"])
            if t % precondition_frequency == 0:
                new_basis = []
                for axis, (H, Q) in enumerate(zip(stats, basis)):
                    if H is None:
                        new_basis.append(None)
                        continue
                    Q, v = _refresh(H, Q, v, axis)
                    new_basis.append(Q)
                basis = tuple(new_basis)
            return direction, {"mu": m, "nu": v, "stats": stats, "basis": basis}

        pairs = tree_map(leaf, updates, state["leaves"])
        return _first(pairs), {"count": calls, "leaves": _second(pairs)}

    return GradientTransformation(init, update, ("scale_by_soap", {
        "b1": b1, "b2": b2, "shampoo_beta": shampoo_beta, "eps": eps,
        "precondition_frequency": precondition_frequency, "max_precond_dim": max_precond_dim,
        "precondition_1d": precondition_1d, "correct_bias": correct_bias}))


def soap(learning_rate: ScalarOrSchedule = 3e-3, b1: float = 0.95, b2: float = 0.95,
         shampoo_beta: float | None = None, eps: float = 1e-8, weight_decay: float = 0.01,
         precondition_frequency: int = 10, max_precond_dim: int = 10000,
         precondition_1d: bool = False, correct_bias: bool = True) -> GradientTransformation:
    """W <- W - eta (SOAP's direction + lambda W)   (Vyas et al. 2024; the reference's defaults).

    ``lr=3e-3``, ``betas=(0.95, 0.95)``, ``weight_decay=0.01`` (decoupled;
    see the module docstring for where it differs from the reference),
    ``precondition_frequency=10``, ``max_precond_dim=10000``.
    """
    return chain(scale_by_soap(b1, b2, shampoo_beta, eps, precondition_frequency,
                               max_precond_dim, precondition_1d, correct_bias),
                 add_decayed_weights(weight_decay), scale_by_learning_rate(learning_rate))
