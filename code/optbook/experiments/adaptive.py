r"""Chapter 4 (適応的学習率, adaptive learning rates): AdaGrad, RMSprop and per-parameter scaling.

Every function is pure (explicit ``seed`` where random numbers are drawn) and
returns NumPy arrays, Python numbers or small dataclasses, so the notebook
only calls and plots, and ``tests/test_adaptive_experiments.py`` checks each
one against a closed form or against ``torch.optim``.

Article notation, with :math:`g_t = \nabla_\theta\mathcal L(\theta_t)` and all
operations element by element:

* AdaGrad (Duchi et al. 2011):
  :math:`G_t = G_{t-1} + g_t^2`, :math:`\theta_{t+1} = \theta_t - \eta\, g_t/\sqrt{G_t + \epsilon}`;
* RMSprop (Tieleman & Hinton 2012):
  :math:`v_t = \beta v_{t-1} + (1-\beta) g_t^2`, :math:`\theta_{t+1} = \theta_t - \eta\, g_t/\sqrt{v_t + \epsilon}`.

The *effective learning rate* of a parameter is the factor its gradient is
multiplied by, :math:`\eta/\sqrt{G_t+\epsilon}` or :math:`\eta/\sqrt{v_t+\epsilon}`
in the article; optbook (like torch.optim) puts :math:`\epsilon` outside the
root by default, :math:`\eta/(\sqrt{G_t}+\epsilon)`.

Sections:

* 4.1 -- effective rates on a constant gradient; a long run down a Huber
  slope where AdaGrad's steps shrink like :math:`1/\sqrt t`; a sparse linear
  regression whose features fire with very different frequencies;
* 4.2 -- RMSprop's moving average; :math:`\epsilon` inside vs. outside the
  root, against ``torch.optim.RMSprop``; the size of RMSprop's first step;
* 4.3 -- steps to a tolerance on axis-aligned and rotated quadratics;
  an explorer widget for RMSprop's :math:`\beta` and :math:`\eta`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from ..adaptive import scale_by_adagrad, scale_by_rms
from ..base import (GradientTransformation, apply_updates, chain, check_number,
                    scale_by_learning_rate)
from ..landscapes import Landscape, Trajectory, quadratic, trajectory
from ..optimizers import adagrad, rmsprop, sgd

__all__ = [
    # closed forms
    "adagrad_rate_theory", "rms_second_moment_theory", "rmsprop_rate_theory",
    "adagrad_distance_theory", "rmsprop_first_step_theory", "eps_step_theory",
    # 4.1 / 4.2 effective rates and the long run
    "effective_rates", "huber_loss", "huber_grad", "SlopeRun", "slope_run",
    # 4.1 sparse features
    "SparseData", "make_sparse_regression", "SparseRun", "train_sparse",
    "per_feature_rms_error", "noise_floor",
    # 4.2 eps inside / outside
    "rms_step_size", "torch_rmsprop_step_size",
    # 4.3 anisotropic landscapes
    "ADAPTIVE_OPTIMIZERS", "make_optimizer", "anisotropy_runs", "steps_to_tolerance",
    "rmsprop_explorer",
]


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"Invalid {name}: {value!r} (must be an integer >= {low})")
    return int(value)


# --- closed forms -----------------------------------------------------------------------

def adagrad_rate_theory(t, grad: float, learning_rate: float, eps: float = 1e-10,
                        eps_inside_sqrt: bool = False):
    r"""AdaGrad's effective rate after ``t`` equal gradients :math:`g`: :math:`G_t = t g^2`, so

    .. math:: \frac{\eta}{\sqrt t\,|g| + \epsilon} \quad\text{(torch)},\qquad
              \frac{\eta}{\sqrt{t g^2 + \epsilon}} \quad\text{(article)}.
    """
    t = np.asarray(t, dtype=np.float64)
    if eps_inside_sqrt:
        return learning_rate / np.sqrt(t * grad * grad + eps)
    return learning_rate / (np.sqrt(t) * abs(grad) + eps)


def rms_second_moment_theory(t, grad: float, decay: float):
    r"""RMSprop's :math:`v_t` after ``t`` equal gradients from :math:`v_0 = 0`: :math:`(1-\beta^t)\,g^2`.

    Unrolling :math:`v_t = \beta v_{t-1} + (1-\beta)g^2` gives the geometric sum
    :math:`(1-\beta)\,g^2\sum_{s<t}\beta^s`.
    """
    t = np.asarray(t, dtype=np.float64)
    return (1.0 - decay ** t) * grad * grad


def rmsprop_rate_theory(t, grad: float, learning_rate: float, decay: float,
                        eps: float = 1e-8, eps_inside_sqrt: bool = False):
    r"""RMSprop's effective rate :math:`\eta/(\sqrt{v_t}+\epsilon)` with :math:`v_t` from
    :func:`rms_second_moment_theory` (or :math:`\eta/\sqrt{v_t+\epsilon}`)."""
    v = rms_second_moment_theory(t, grad, decay)
    return learning_rate / (np.sqrt(v + eps) if eps_inside_sqrt else np.sqrt(v) + eps)


def adagrad_distance_theory(steps: int, learning_rate: float) -> tuple[float, float]:
    r"""Distance AdaGrad travels in ``steps`` steps of a unit gradient (:math:`\epsilon = 0`).

    Returns ``(exact, bound)``: :math:`\eta\sum_{t=1}^{T} t^{-1/2}` and
    :math:`2\eta\sqrt T`, which exceeds it by less than :math:`2\eta`
    (compare the sum with :math:`\int_0^T t^{-1/2}\,dt`).
    """
    steps = _check_int("steps", steps, 0)
    exact = learning_rate * float(np.sum(1.0 / np.sqrt(np.arange(1, steps + 1))))
    return exact, 2.0 * learning_rate * math.sqrt(steps)


def rmsprop_first_step_theory(learning_rate: float, decay: float) -> float:
    r"""RMSprop's first step from :math:`v_0 = 0` (:math:`\epsilon \to 0`):
    :math:`v_1 = (1-\beta)g^2`, so :math:`|\Delta\theta_1| = \eta/\sqrt{1-\beta}`,
    whatever the gradient's size."""
    check_number("alpha value", decay, high=1.0)
    return learning_rate / math.sqrt(1.0 - decay)


def eps_step_theory(grad, second_moment, learning_rate: float = 1.0, eps: float = 1e-8,
                    eps_inside_sqrt: bool = False):
    r"""The step :math:`\eta g/\sqrt{v+\epsilon}` (inside) or :math:`\eta g/(\sqrt v+\epsilon)` (outside)."""
    grad = np.asarray(grad, dtype=np.float64)
    second_moment = np.asarray(second_moment, dtype=np.float64)
    if eps_inside_sqrt:
        return learning_rate * grad / np.sqrt(second_moment + eps)
    return learning_rate * grad / (np.sqrt(second_moment) + eps)


# --- 4.1 effective rates and a long run -------------------------------------------------

def effective_rates(optimizer: GradientTransformation, grads) -> np.ndarray:
    r"""Feed ``grads`` (shape ``(T, d)``) to ``optimizer`` and return :math:`-\Delta\theta_t/g_t`.

    For an optimizer of the form :math:`\Delta\theta = -\eta_t\odot g` this is
    the per-parameter effective learning rate :math:`\eta_t` at every step
    (``NaN`` where a gradient is exactly zero).  The parameters are held at
    zero: the transformations here do not read them.
    """
    grads = np.asarray(grads, dtype=np.float64)
    if grads.ndim != 2:
        raise ValueError(f"Invalid grads: shape {grads.shape} (expected (steps, dim))")
    params = np.zeros(grads.shape[1])
    state = optimizer.init(params)
    rates = np.empty_like(grads)
    with np.errstate(divide="ignore", invalid="ignore"):
        for t, g in enumerate(grads):
            updates, state = optimizer.update(g.copy(), state, params)
            rates[t] = np.where(g != 0, -updates / g, np.nan)
    return rates


def huber_loss(theta, delta: float = 1.0):
    r"""Huber's loss :math:`\tfrac12\theta^2` for :math:`|\theta|\le\delta`, else
    :math:`\delta(|\theta| - \tfrac12\delta)`: a long straight slope into a bowl."""
    a = np.abs(np.asarray(theta, dtype=np.float64))
    return np.where(a <= delta, 0.5 * a * a, delta * (a - 0.5 * delta))


def huber_grad(theta, delta: float = 1.0):
    r""":math:`\operatorname{clip}(\theta, -\delta, \delta)`: a constant :math:`\pm\delta` on the slope."""
    return np.clip(np.asarray(theta, dtype=np.float64), -delta, delta)


@dataclass(frozen=True)
class SlopeRun:
    """A 1-D run on :func:`huber_loss`.

    Attributes:
        theta: ``(steps + 1,)`` iterates.
        loss: ``(steps + 1,)`` Huber loss along the run.
        rates: ``(steps,)`` effective learning rate :math:`|\\Delta\\theta_t / g_t|` of each step.
    """

    theta: np.ndarray
    loss: np.ndarray
    rates: np.ndarray


def slope_run(optimizer: GradientTransformation, theta0: float = 100.0, steps: int = 10000,
              delta: float = 1.0) -> SlopeRun:
    r"""Run ``optimizer`` on the Huber loss from :math:`\theta_0` far up its slope.

    On the slope the gradient is the constant :math:`\delta`, so the run
    measures how an optimizer's effective rate evolves when nothing about the
    problem changes: AdaGrad's falls like :math:`1/\sqrt t`, RMSprop's
    settles at :math:`\eta/|g|`.
    """
    steps = _check_int("steps", steps, 1)
    check_number("delta", delta, low_inclusive=False)
    theta = np.array([float(theta0)])
    state = optimizer.init(theta)
    path = np.empty(steps + 1)
    rates = np.empty(steps)
    path[0] = theta[0]
    for t in range(steps):
        g = huber_grad(theta, delta)
        updates, state = optimizer.update(g, state, theta)
        theta = apply_updates(theta, updates)
        path[t + 1] = theta[0]
        rates[t] = abs(updates[0] / g[0]) if g[0] != 0 else math.nan
    return SlopeRun(theta=path, loss=huber_loss(path, delta), rates=rates)


# --- 4.1 sparse features ------------------------------------------------------------------

@dataclass(frozen=True)
class SparseData:
    r"""``replicas`` independent data sets :math:`y = x^\top w_\star + \sigma\varepsilon`
    with binary features, feature :math:`j` active with probability :math:`p_j`.

    Attributes:
        x: ``(replicas, n, d)`` array of 0/1.
        y: ``(replicas, n)`` targets.
        true_w: ``(d,)`` the teacher weights.
        frequencies: ``(d,)`` the activation probabilities :math:`p_j`.
        noise_std: :math:`\sigma`.
    """

    x: np.ndarray
    y: np.ndarray
    true_w: np.ndarray
    frequencies: np.ndarray
    noise_std: float

    @property
    def counts(self) -> np.ndarray:
        """``(replicas, d)``: how many examples activate each feature."""
        return self.x.sum(axis=1)


def make_sparse_regression(frequencies: Sequence[float] = (0.5, 0.2, 0.05, 0.02, 0.01, 0.005),
                           n_examples: int = 4000, replicas: int = 20, noise_std: float = 0.5,
                           true_w: Optional[Sequence[float]] = None, seed: int = 0) -> SparseData:
    r"""Binary features :math:`x_{ij}\sim\text{Bernoulli}(p_j)`, targets
    :math:`y_i = x_i^\top w_\star + \sigma\varepsilon_i` (default :math:`w_\star = \mathbf 1`).

    This is the setting AdaGrad was designed for (Duchi et al. 2011): sparse
    inputs such as word indicators, where a rare feature is seen, and gets a
    gradient, only in the few examples that contain it.  ``replicas`` data
    sets are drawn at once so that errors can be averaged over them.
    """
    frequencies = np.asarray(frequencies, dtype=np.float64)
    if frequencies.ndim != 1 or frequencies.size == 0 or np.any(frequencies <= 0) \
            or np.any(frequencies > 1):
        raise ValueError(f"Invalid frequencies: {frequencies.tolist()} (each in (0, 1])")
    n = _check_int("n_examples", n_examples, 1)
    replicas = _check_int("replicas", replicas, 1)
    check_number("noise_std", noise_std)
    d = frequencies.size
    w = np.ones(d) if true_w is None else np.asarray(true_w, dtype=np.float64)
    if w.shape != (d,):
        raise ValueError(f"Invalid true_w: shape {w.shape} (expected ({d},))")
    rng = np.random.default_rng(_check_int("seed", seed, 0))
    x = (rng.random((replicas, n, d)) < frequencies).astype(np.float64)
    y = x @ w + noise_std * rng.standard_normal((replicas, n))
    return SparseData(x=x, y=y, true_w=w, frequencies=frequencies, noise_std=float(noise_std))


@dataclass(frozen=True)
class SparseRun:
    r"""One pass of per-example training on each replica.

    Attributes:
        weights: ``(replicas, d)`` final weights.
        accumulators: ``(replicas, d)`` AdaGrad's :math:`G_T` or RMSprop's
            :math:`v_T` (``None`` for SGD).
        effective_rates: ``(replicas, d)`` the rate the next gradient would get,
            :math:`\eta/(\sqrt{G_T}+\epsilon)` (:math:`\eta` for SGD).
        rate_history: ``(n, d)`` the same rate after each step, for replica 0
            (``NaN`` while a feature has had no non-zero gradient yet).
    """

    weights: np.ndarray
    accumulators: Optional[np.ndarray]
    effective_rates: np.ndarray
    rate_history: np.ndarray


_ACCUMULATOR_KEYS = {"adagrad": "sum_of_squares", "rmsprop": "square_avg"}


def _build(name: str, learning_rate: float, decay: float, eps: Optional[float]):
    if name == "sgd":
        return chain(scale_by_learning_rate(learning_rate)), eps or 0.0
    if name == "adagrad":
        eps = 1e-10 if eps is None else eps
        return chain(scale_by_adagrad(eps), scale_by_learning_rate(learning_rate)), eps
    if name == "rmsprop":
        eps = 1e-8 if eps is None else eps
        return chain(scale_by_rms(decay, eps), scale_by_learning_rate(learning_rate)), eps
    raise ValueError(f"Invalid optimizer: {name!r} (choose 'sgd', 'adagrad' or 'rmsprop')")


def train_sparse(data: SparseData, optimizer: str, learning_rate: float, decay: float = 0.99,
                 eps: Optional[float] = None) -> SparseRun:
    r"""One pass over the examples, one example per step (online learning), from :math:`w = 0`.

    The squared loss :math:`\tfrac12(x_i^\top w - y_i)^2` has gradient
    :math:`r_i x_i` with residual :math:`r_i = x_i^\top w - y_i`: exactly zero
    for every feature absent from example :math:`i`.  AdaGrad's accumulator of
    feature :math:`j` therefore sums :math:`r_i^2` over the examples that
    contain :math:`j` only.  All replicas train at once (the transformations
    act element by element).
    """
    transform, eps = _build(optimizer, learning_rate, decay, eps)
    replicas, n, d = data.x.shape
    w = np.zeros((replicas, d))
    state = transform.init(w)
    history = np.full((n, d), float(learning_rate))
    for i in range(n):
        x = data.x[:, i]
        residual = np.einsum("rd,rd->r", x, w) - data.y[:, i]
        updates, state = transform.update(residual[:, None] * x, state, w)
        w = apply_updates(w, updates)
        if optimizer != "sgd":
            acc0 = state[0][_ACCUMULATOR_KEYS[optimizer]][0]
            with np.errstate(divide="ignore"):
                # NaN until a feature's first gradient: its rate is not defined before
                history[i] = np.where(acc0 > 0, learning_rate / (np.sqrt(acc0) + eps), np.nan)
    if optimizer == "sgd":
        return SparseRun(weights=w, accumulators=None,
                         effective_rates=np.full_like(w, learning_rate), rate_history=history)
    acc = state[0][_ACCUMULATOR_KEYS[optimizer]]
    return SparseRun(weights=w, accumulators=acc,
                     effective_rates=learning_rate / (np.sqrt(acc) + eps), rate_history=history)


def per_feature_rms_error(run: SparseRun, data: SparseData) -> np.ndarray:
    r""":math:`\sqrt{\operatorname{mean}_{\text{replicas}}(w_j - w_{\star j})^2}` for each feature :math:`j`."""
    return np.sqrt(((run.weights - data.true_w) ** 2).mean(axis=0))


def noise_floor(data: SparseData) -> np.ndarray:
    r""":math:`\sigma/\sqrt{n p_j}`: the error of averaging the :math:`n p_j` noisy
    examples that mention feature :math:`j` -- what an estimator that saw the
    other weights exactly could reach, a yardstick rather than a bound."""
    n = data.x.shape[1]
    return data.noise_std / np.sqrt(n * data.frequencies)


# --- 4.2 eps inside or outside the square root ----------------------------------------------

def rms_step_size(grad: float, steps: int = 1000, decay: float = 0.99, eps: float = 1e-8,
                  eps_inside_sqrt: bool = False, learning_rate: float = 1.0) -> float:
    r"""``|Δθ|`` of step ``steps`` of ``optbook.rmsprop`` fed the constant gradient ``grad``."""
    steps = _check_int("steps", steps, 1)
    optimizer = rmsprop(learning_rate, decay, eps, eps_inside_sqrt=eps_inside_sqrt)
    params = np.zeros(1)
    state = optimizer.init(params)
    for _ in range(steps):
        updates, state = optimizer.update(np.array([float(grad)]), state, params)
    return float(abs(updates[0]))


def torch_rmsprop_step_size(grad: float, steps: int = 1000, decay: float = 0.99,
                            eps: float = 1e-8, learning_rate: float = 1.0) -> float:
    r"""The same measurement with ``torch.optim.RMSprop`` (float64), the reference."""
    steps = _check_int("steps", steps, 1)
    param = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.RMSprop([param], lr=learning_rate, alpha=decay, eps=eps)
    for _ in range(steps):
        before = param.detach().clone()
        param.grad = torch.full_like(param, float(grad))
        optimizer.step()
    return float((param.detach() - before).abs()[0])


# --- 4.3 anisotropic landscapes ------------------------------------------------------------

ADAPTIVE_OPTIMIZERS = ("sgd", "adagrad", "rmsprop")


def make_optimizer(name: str, learning_rate: float, decay: float = 0.9) -> GradientTransformation:
    """``optbook.sgd``, ``optbook.adagrad`` or ``optbook.rmsprop(learning_rate, decay)`` by name."""
    if name == "sgd":
        return sgd(learning_rate)
    if name == "adagrad":
        return adagrad(learning_rate)
    if name == "rmsprop":
        return rmsprop(learning_rate, decay)
    raise ValueError(f"Invalid optimizer: {name!r} (choose from {', '.join(ADAPTIVE_OPTIMIZERS)})")


def anisotropy_runs(kappa: float, angle: float = 0.0, steps: int = 60,
                    learning_rates: Optional[dict] = None, decay: float = 0.9
                    ) -> dict[str, Trajectory]:
    r"""SGD, AdaGrad and RMSprop on ``quadratic(kappa, angle)`` from its default start.

    Default learning rates: SGD at its best fixed step :math:`2/(L+\mu) = 2/(\kappa+1)`
    (a favour: it needs the curvature), AdaGrad at :math:`\eta = 0.8`,
    RMSprop at :math:`\eta = 0.1`, :math:`\beta` = ``decay``.
    """
    lrs = {"sgd": 2.0 / (kappa + 1.0), "adagrad": 0.8, "rmsprop": 0.1}
    lrs.update(learning_rates or {})
    land = quadratic(kappa, angle)
    return {name: trajectory(make_optimizer(name, lrs[name], decay), land, None, steps,
                             escape_factor=math.inf)
            for name in ADAPTIVE_OPTIMIZERS}


def steps_to_tolerance(run: Trajectory, tol: float) -> Optional[int]:
    """First step ``t`` with :math:`f(\\theta_t) - f^* <` ``tol`` (landscape minimum 0), else ``None``."""
    check_number("tol", tol, low_inclusive=False)
    below = np.flatnonzero(np.asarray(run.values) < tol)
    return int(below[0]) if below.size else None


def rmsprop_explorer(kappa: float = 20.0, angle: float = 0.0, steps: int = 60,
                     lrs: Sequence[float] = (0.03, 0.1, 0.3),
                     decays: Sequence[float] = (0.9, 0.99, 0.999)):
    r"""An :func:`optbook.widgets.optimizer_explorer` of RMSprop's :math:`\eta` and
    :math:`\beta`, with AdaGrad at the same :math:`\eta` for comparison."""
    from .. import widgets

    def make(lr, decay):
        return {"adagrad": adagrad(lr), "rmsprop": rmsprop(lr, decay)}

    land: Landscape = quadratic(kappa, angle)
    return widgets.optimizer_explorer(
        make, grid={"lr": list(lrs), "decay": list(decays)}, landscape=land,
        defaults={"lr": 0.1, "decay": 0.9} if 0.1 in lrs and 0.9 in decays else None,
        labels={"lr": "η", "decay": "β"}, title="η = {lr:g}, β = {decay:g}", steps=steps)
