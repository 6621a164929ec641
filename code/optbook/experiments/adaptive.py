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
* 4.2 -- the first step of a rare feature after a gap (AdaGrad, RMSprop,
  Adam) and RMSprop/Adam on the sparse regression, each with its own sweep;
* 4.3 -- steps to a tolerance on axis-aligned and rotated quadratics, every
  method at the best rate of the same sweep, from several starts; RMSprop's
  2-cycle :math:`|\theta_i| = \eta/2`; an explorer widget for RMSprop's
  :math:`\beta` and :math:`\eta`; long runs (RMSprop's moving average forgets,
  AMSGrad's maximum does not) and Reddi, Kale & Kumar's (2018) counterexample;
* 4.4 -- a small network trained by SGD, AdaGrad, RMSprop and Adam, each with
  its own learning-rate sweep and three seeds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from ..adam import scale_by_adam
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
    # 4.3 long runs, tuned comparison, Reddi et al.'s counterexample
    "quadratic_hessian", "random_starts", "quadratic_runs", "rattle_theory",
    "quadratic_sweep", "tuned_steps_to_tolerance", "reddi_gradient", "reddi_run",
    "quadratic_paths", "reddi_regret", "reddi_amsgrad_run",
    # 4.1 sparse features: the step after a gap, tuned sweeps
    "reactivation_step", "reactivation_theory", "sparse_sweep", "grouped_rms_error",
    # 4.4 a network
    "NETWORK_OPTIMIZERS", "network_optimizer", "NetworkSweep", "network_sweep",
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
        max_step: ``(replicas, d)`` the largest single ``|Δw_j|`` of the pass.

    For Adam the "rate" is :math:`\eta/(\sqrt{v}+\epsilon)` without bias
    correction or momentum: a scale, not the factor a gradient is multiplied by.
    """

    weights: np.ndarray
    accumulators: Optional[np.ndarray]
    effective_rates: np.ndarray
    rate_history: np.ndarray
    max_step: Optional[np.ndarray] = None


_ACCUMULATOR_KEYS = {"adagrad": "sum_of_squares", "rmsprop": "square_avg", "adam": "nu"}


def _build(name: str, learning_rate: float, decay: float, eps: Optional[float]):
    if name == "sgd":
        return chain(scale_by_learning_rate(learning_rate)), eps or 0.0
    if name == "adagrad":
        eps = 1e-10 if eps is None else eps
        return chain(scale_by_adagrad(eps), scale_by_learning_rate(learning_rate)), eps
    if name == "rmsprop":
        eps = 1e-8 if eps is None else eps
        return chain(scale_by_rms(decay, eps), scale_by_learning_rate(learning_rate)), eps
    if name == "adam":
        eps = 1e-8 if eps is None else eps
        return chain(scale_by_adam(0.9, decay, eps), scale_by_learning_rate(learning_rate)), eps
    raise ValueError(
        f"Invalid optimizer: {name!r} (choose 'sgd', 'adagrad', 'rmsprop' or 'adam')")


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
    max_step = np.zeros((replicas, d))
    for i in range(n):
        x = data.x[:, i]
        residual = np.einsum("rd,rd->r", x, w) - data.y[:, i]
        updates, state = transform.update(residual[:, None] * x, state, w)
        w = apply_updates(w, updates)
        max_step = np.maximum(max_step, np.abs(updates))
        if optimizer != "sgd":
            acc0 = state[0][_ACCUMULATOR_KEYS[optimizer]][0]
            with np.errstate(divide="ignore"):
                # NaN until a feature's first gradient: its rate is not defined before
                history[i] = np.where(acc0 > 0, learning_rate / (np.sqrt(acc0) + eps), np.nan)
    if optimizer == "sgd":
        return SparseRun(weights=w, accumulators=None,
                         effective_rates=np.full_like(w, learning_rate), rate_history=history,
                         max_step=max_step)
    acc = state[0][_ACCUMULATOR_KEYS[optimizer]]
    return SparseRun(weights=w, accumulators=acc,
                     effective_rates=learning_rate / (np.sqrt(acc) + eps), rate_history=history,
                     max_step=max_step)


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
    r"""An :func:`optbook.figures.optimizer_explorer` of RMSprop's :math:`\eta` and
    :math:`\beta`, with AdaGrad at the same :math:`\eta` for comparison."""
    from ..figures import optimizer_explorer

    def make(lr, decay):
        return {"adagrad": adagrad(lr), "rmsprop": rmsprop(lr, decay)}

    land: Landscape = quadratic(kappa, angle)
    return optimizer_explorer(
        make, grid={"lr": list(lrs), "decay": list(decays)}, landscape=land,
        defaults={"lr": 0.1, "decay": 0.9} if 0.1 in lrs and 0.9 in decays else None,
        labels={"lr": "η", "decay": "β"}, title="η = {lr:g}, β = {decay:g}", steps=steps)


# --- 4.3 long runs: what a constant learning rate does after the first 150 steps ----------

def quadratic_hessian(kappa: float, angle: float = 0.0) -> np.ndarray:
    r"""The Hessian :math:`H = R\,\mathrm{diag}(1, \kappa)\,R^\top` of ``landscapes.quadratic(kappa, angle)``
    (:math:`R` the rotation by ``angle``), so :math:`f = \tfrac12\theta^\top H\theta`, :math:`\nabla f = H\theta`."""
    check_number("kappa", kappa, low=1.0)
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return rot @ np.diag([1.0, float(kappa)]) @ rot.T


def random_starts(n: int, seed: int = 0, radius: float = math.sqrt(7.25)) -> np.ndarray:
    r"""``n`` starting points on the circle of ``radius`` about the minimum (default: the
    distance of ``quadratic``'s own start :math:`(-2.5, 1)`), at uniformly random angles.

    Seed ``s`` draws the angles; the same seed gives the same starts for every
    optimizer, so a comparison differs only in the optimizer.
    """
    n = _check_int("n", n, 1)
    angles = np.random.default_rng(_check_int("seed", seed, 0)).uniform(0, 2 * math.pi, n)
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def quadratic_runs(optimizer: GradientTransformation, kappa: float, angle: float,
                   starts, steps: int) -> np.ndarray:
    r"""Run ``optimizer`` from every row of ``starts`` (shape ``(n, 2)``) on
    ``quadratic(kappa, angle)`` at once; return :math:`f(\theta_t)`, shape ``(n, steps + 1)``.

    optbook's transformations act element by element, so one ``(n, 2)`` array
    carries ``n`` independent runs (a run that leaves every bound is recorded
    as ``inf``, never stopped: the point is to see what happens later).
    """
    return quadratic_paths(optimizer, kappa, angle, starts, steps)[0]


def rattle_theory(learning_rate: float, kappa: float) -> tuple[float, float]:
    r"""RMSprop's end state on the axis-aligned ``quadratic(kappa)`` with a constant :math:`\eta`
    (:math:`\epsilon \to 0`): the 2-cycle :math:`\theta_i = \pm\eta/2` in every coordinate.

    In a 2-cycle :math:`\theta_i \to -\theta_i` the gradient :math:`\pm\lambda_i a` has a
    constant square, so :math:`v_i \to \lambda_i^2 a^2` whatever :math:`\beta` is, and the
    step :math:`\eta\,g_i/\sqrt{v_i} = \eta` must equal the jump :math:`2a`: :math:`a = \eta/2`.
    The amplitude does not depend on :math:`\lambda_i` (or :math:`\beta`); the loss
    :math:`\tfrac12\sum_i\lambda_i a^2 = \eta^2(1+\kappa)/8` does.  Returns
    ``(amplitude, loss)``.
    """
    check_number("learning rate", learning_rate, low_inclusive=False)
    check_number("kappa", kappa, low=1.0)
    return learning_rate / 2.0, learning_rate ** 2 * (1.0 + kappa) / 8.0


# --- 4.3 a tuned comparison: every method gets its own learning-rate sweep ---------------

def _direction(name: str, decay: float) -> GradientTransformation:
    """optbook's optimizer ``name`` without its learning rate (``optbook.<name>(lr)`` is this
    chained with ``scale_by_learning_rate(lr)``)."""
    if name == "sgd":
        return chain()
    if name == "adagrad":
        return scale_by_adagrad(1e-10)
    if name == "rmsprop":
        return scale_by_rms(decay, 1e-8)
    raise ValueError(f"Invalid optimizer: {name!r} (choose from {', '.join(ADAPTIVE_OPTIMIZERS)})")


def quadratic_sweep(name: str, lrs: Sequence[float], kappa: float, angle: float, starts,
                    steps: int, decay: float = 0.9) -> np.ndarray:
    r"""``make_optimizer(name, lr, decay)`` from every start at every rate of ``lrs`` in one
    batch: :math:`f(\theta_t)` with shape ``(len(lrs), len(starts), steps + 1)``.

    Same arithmetic as :func:`quadratic_runs` with one optimizer per rate: the
    direction is computed once for the whole batch and row ``r`` is scaled by
    its own :math:`-\eta_r`.
    """
    steps = _check_int("steps", steps, 1)
    starts = np.asarray(starts, dtype=np.float64)
    rates = np.array([check_number("learning rate", lr, low_inclusive=False) for lr in lrs])
    hessian = quadratic_hessian(kappa, angle)
    theta = np.tile(starts, (rates.size, 1))
    row_rate = np.repeat(rates, starts.shape[0])[:, None]
    direction = _direction(name, decay)
    state = direction.init(theta)
    values = np.empty((theta.shape[0], steps + 1))
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps + 1):
            grad = theta @ hessian
            values[:, t] = 0.5 * np.einsum("ni,ni->n", theta, grad)
            if t < steps:
                d, state = direction.update(grad, state, theta)
                theta = theta - row_rate * d
    values = np.where(np.isfinite(values), values, np.inf)
    return values.reshape(rates.size, starts.shape[0], steps + 1)


def tuned_steps_to_tolerance(name: str, kappa: float, angle: float, lrs: Sequence[float],
                             starts, steps: int = 1000, tol: float = 1e-4,
                             decay: float = 0.9) -> tuple[Optional[float], np.ndarray]:
    r"""Steps until :math:`f` is below ``tol`` *for good* (every later step of the ``steps``
    too) for ``name`` at its best learning rate in ``lrs``.

    "For good", not "first": a method that rattles passes close to the minimum
    by chance (RMSprop with a huge :math:`\eta` does, within a few steps).

    Every rate of ``lrs`` runs from every start; a rate's score is its *worst*
    count over the starts (a run that never gets there counts as
    ``steps + 1``), and the best rate is the one with the smallest score
    (ties: the first in ``lrs``).  Returns ``(best_lr, counts)``, ``counts``
    the per-start steps at that rate; ``(None, counts of steps + 1)`` when no
    rate gets there from every start within ``steps``.
    """
    values = quadratic_sweep(name, lrs, kappa, angle, starts, steps, decay)
    above = values >= check_number("tol", tol, low_inclusive=False)
    # the step after the last one above tol: from there on f stays below it
    first_below_for_good = steps - np.argmax(above[..., ::-1], axis=2) + 1
    counts = np.where(above[..., -1], steps + 1,
                      np.where(above.any(axis=2), first_below_for_good, 0))
    worst = counts.max(axis=1)
    best = int(np.argmin(worst))
    if worst[best] > steps:
        return None, counts[best]
    return float(list(lrs)[best]), counts[best]


# --- 4.3 Reddi, Kale & Kumar (2018): Adam can go the wrong way -----------------------------

def reddi_gradient(t, large: float = 1010.0, small: float = -10.0, period: int = 101):
    r"""The gradient of Reddi et al.'s online linear losses :math:`f_t(x) = g_t x`:
    :math:`g_t =` ``large`` when :math:`t \bmod` ``period`` :math:`= 0`, else ``small``.

    Over one period the gradients sum to ``large + (period - 1) * small``
    (:math:`1010 - 1000 = 10 > 0`), so the best fixed point of :math:`[-1, 1]`
    is :math:`x = -1`.
    """
    return np.where(np.asarray(t) % period == 0, large, small).astype(np.float64)


def reddi_run(learning_rates: Sequence[float], amsgrad: bool, steps: int = 10000,
              b1: float = 0.9, b2: float = 0.99, large: float = 1010.0, small: float = -10.0,
              period: int = 101) -> np.ndarray:
    r"""Adam (or AMSGrad) on Reddi et al.'s problem, projected on :math:`[-1, 1]`, one run per
    rate :math:`\alpha` of ``learning_rates``.

    The direction is ``optbook.scale_by_adam(b1, b2, amsgrad=amsgrad)``; step
    :math:`t = 1, 2, \dots` is :math:`-\alpha/\sqrt t` times it, the decaying rate
    of their analysis, and :math:`x` is then clipped to :math:`[-1, 1]` (in one
    dimension the projection in their metric is this clip).  The runs share
    nothing but the gradients (optbook's transformations act element by
    element).  Returns the iterates :math:`x_1, \dots, x_T` from
    :math:`x_0 = 0`, shape ``(len(learning_rates), steps)``.
    """
    direction = scale_by_adam(b1, b2, 1e-8, amsgrad)
    return _reddi_loop(direction, learning_rates, steps, large, small, period)[0]


def _reddi_loop(direction: GradientTransformation, learning_rates: Sequence[float], steps: int,
                large: float, small: float, period: int, denominator=None):
    """The projected loop of :func:`reddi_run`; ``denominator(state, t)``, if given, is
    recorded after every step. Returns ``(path, recorded or None)``."""
    steps = _check_int("steps", steps, 1)
    period = _check_int("period", period, 2)
    alphas = np.array([check_number("learning rate", lr, low_inclusive=False)
                       for lr in learning_rates], dtype=np.float64)
    grads = reddi_gradient(np.arange(steps), large, small, period)
    x = np.zeros(alphas.size)
    state = direction.init(x)
    path = np.empty((alphas.size, steps))
    recorded = None if denominator is None else np.empty((alphas.size, steps))
    for t in range(steps):
        d, state = direction.update(np.full_like(x, grads[t]), state, x)
        x = np.clip(x - alphas / math.sqrt(t + 1) * d, -1.0, 1.0)
        path[:, t] = x
        if recorded is not None:
            recorded[:, t] = denominator(state, t)
    return path, recorded


def quadratic_paths(optimizer: GradientTransformation, kappa: float, angle: float,
                    starts, steps: int) -> tuple[np.ndarray, np.ndarray]:
    r""":func:`quadratic_runs` that also keeps the iterates: returns ``(values, path)``,
    :math:`f(\theta_t)` of shape ``(n, steps + 1)`` (what :func:`quadratic_runs`
    returns) and :math:`\theta_t` of shape ``(n, steps + 1, 2)``.

    The iterates show what a loss alone hides: in a 2-cycle each coordinate swings at
    :math:`\pm\eta/2`, and a coordinate whose value has underflowed to exactly zero
    (float64 has nothing between 0 and about :math:`5\times10^{-324}`) gets a zero
    gradient and stays at zero for good.
    """
    steps = _check_int("steps", steps, 1)
    hessian = quadratic_hessian(kappa, angle)
    theta = np.array(starts, dtype=np.float64)
    if theta.ndim != 2 or theta.shape[1] != 2:
        raise ValueError(f"Invalid starts: shape {theta.shape} (expected (n, 2))")
    state = optimizer.init(theta)
    values = np.empty((theta.shape[0], steps + 1))
    path = np.empty((theta.shape[0], steps + 1, 2))
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps + 1):
            grad = theta @ hessian
            values[:, t] = 0.5 * np.einsum("ni,ni->n", theta, grad)
            path[:, t] = theta
            if t < steps:
                updates, state = optimizer.update(grad, state, theta)
                theta = apply_updates(theta, updates)
    return np.where(np.isfinite(values), values, np.inf), path


def reddi_regret(paths: np.ndarray, large: float = 1010.0, small: float = -10.0,
                 period: int = 101) -> np.ndarray:
    r"""Regret :math:`R_T = \sum_{t\le T} f_t(x_t) - \min_{x\in[-1,1]}\sum_{t\le T} f_t(x)`
    of runs of :func:`reddi_run`, for every horizon :math:`T`.

    ``paths`` holds :math:`x_1, \dots, x_T` per run (shape ``(runs, T)``); the point
    played at step :math:`t` is the iterate *before* that step's gradient, so
    :math:`x_0 = 0` is played first. With linear losses :math:`f_t(x) = g_t x` the best
    fixed point earns :math:`-\lvert\sum_t g_t\rvert`. Returns shape ``(runs, T)``.
    """
    paths = np.atleast_2d(np.asarray(paths, dtype=np.float64))
    grads = reddi_gradient(np.arange(paths.shape[1]), large, small, period)
    played = np.concatenate([np.zeros((paths.shape[0], 1)), paths[:, :-1]], axis=1)
    return np.cumsum(grads * played, axis=1) + np.abs(np.cumsum(grads))


def reddi_amsgrad_run(learning_rates: Sequence[float], bias_correction: bool = True,
                      steps: int = 10000, b1: float = 0.9, b2: float = 0.99,
                      large: float = 1010.0, small: float = -10.0,
                      period: int = 101) -> tuple[np.ndarray, np.ndarray]:
    r"""AMSGrad on Reddi et al.'s problem, as :func:`reddi_run` runs it, and its denominator.

    ``bias_correction=True`` is ``optbook.adam(amsgrad=True)`` and
    ``torch.optim.Adam(amsgrad=True)``: the running maximum of the *uncorrected*
    :math:`v_t`, then divided by :math:`1-\beta_2^t` like Adam's, so the denominator
    :math:`\sqrt{\max_{s\le t} v_s/(1-\beta_2^t)}` falls while :math:`\beta_2^t` is not
    negligible. ``False`` is Reddi et al.'s Algorithm 2, which corrects neither moment:
    its denominator :math:`\sqrt{\max_{s\le t} v_s}` never falls. Returns
    ``(path, denominator)``, both of shape ``(len(learning_rates), steps)``: the
    iterates :math:`x_1, \dots, x_T` (with ``bias_correction=True`` those of
    :func:`reddi_run` with ``amsgrad=True``) and :math:`\sqrt{\hat v_t}` at each step.
    """
    direction = scale_by_adam(b1, b2, 1e-8, amsgrad=True, bias_correction=bias_correction)

    def denominator(state, t):
        c2 = 1 - b2 ** (t + 1) if bias_correction else 1.0
        return np.sqrt(state["nu_max"] / c2)

    return _reddi_loop(direction, learning_rates, steps, large, small, period, denominator)


# --- 4.1 sparse features under RMSprop and Adam: the step after a gap -------------------------

def reactivation_step(optimizer: GradientTransformation, warm: int, gap: int,
                      grad: float = 1.0) -> float:
    r"""``|Δθ|`` of the first step after a gap: ``warm`` steps of gradient ``grad``, then
    ``gap`` steps of exactly zero (a feature absent from the examples), then ``grad`` once."""
    warm, gap = _check_int("warm", warm, 0), _check_int("gap", gap, 0)
    grads = [grad] * warm + [0.0] * gap + [grad]
    params = np.zeros(1)
    state = optimizer.init(params)
    for g in grads:
        updates, state = optimizer.update(np.array([float(g)]), state, params)
    return float(abs(updates[0]))


def reactivation_theory(kind: str, learning_rate: float, warm: int, gap: int,
                        decay: float = 0.99, b1: float = 0.9, grad: float = 1.0,
                        eps: float = 1e-8) -> float:
    r"""Closed forms for :func:`reactivation_step` (``kind`` ``'adagrad'``, ``'rmsprop'``, ``'adam'``).

    * AdaGrad: :math:`G = (W+1)g^2`, step :math:`\eta/\sqrt{W+1}` -- a gap changes nothing;
    * RMSprop: :math:`v = \beta^{k+1}(1-\beta^W)g^2 + (1-\beta)g^2` after a gap of
      :math:`k`, step :math:`\eta|g|/(\sqrt v+\epsilon) \to \eta/\sqrt{1-\beta}` as
      :math:`k \to \infty`;
    * Adam (``decay`` = :math:`\beta_2`): :math:`m = \beta_1^{k+1}(1-\beta_1^W)g + (1-\beta_1)g`
      and :math:`v` as above, both divided by their bias corrections at
      :math:`t = W+k+1`; the step tends to :math:`\eta(1-\beta_1)/\sqrt{1-\beta_2}`.
    """
    w, k, g = int(warm), int(gap), float(grad)
    if kind == "adagrad":
        return learning_rate * abs(g) / (math.sqrt((w + 1) * g * g) + eps)
    v = decay ** (k + 1) * (1 - decay ** w) * g * g + (1 - decay) * g * g
    if kind == "rmsprop":
        return learning_rate * abs(g) / (math.sqrt(v) + eps)
    if kind == "adam":
        t = w + k + 1
        m = b1 ** (k + 1) * (1 - b1 ** w) * g + (1 - b1) * g
        return learning_rate * abs(m / (1 - b1 ** t)) / (math.sqrt(v / (1 - decay ** t)) + eps)
    raise ValueError(f"Invalid kind: {kind!r} (choose 'adagrad', 'rmsprop' or 'adam')")


def sparse_sweep(data: SparseData, optimizer: str, lrs: Sequence[float], decay: float = 0.99
                 ) -> tuple[float, SparseRun, np.ndarray, np.ndarray]:
    r"""Train ``optimizer`` at every rate of ``lrs``; keep the rate with the smallest RMS error
    over all weights and data sets.

    Returns ``(best_lr, run, per_set, scores)``: the run at that rate; for each
    data set its RMS error over the ``d`` weights (the spread over data sets);
    and the RMS error of every rate of ``lrs`` (``inf`` if it diverged), so a
    reader can see that the best rate is not at an end of the sweep.
    """
    best, scores = None, []
    for lr in lrs:
        run = train_sparse(data, optimizer, lr, decay)
        per_set = np.sqrt(((run.weights - data.true_w) ** 2).mean(axis=1))
        score = float(np.sqrt(np.mean(per_set ** 2)))
        scores.append(score if np.isfinite(score) else math.inf)
        if np.isfinite(score) and (best is None or score < best[0]):
            best = (score, float(lr), run, per_set)
    if best is None:
        raise ValueError(f"Invalid lrs: {list(lrs)} (every rate diverged)")
    return best[1], best[2], best[3], np.array(scores)


def grouped_rms_error(run: SparseRun, data: SparseData, groups: int) -> np.ndarray:
    r"""Per-feature RMS error within each of ``groups`` disjoint, equal blocks of data sets,
    shape ``(groups, d)``: independent repetitions of the experiment, for a spread."""
    groups = _check_int("groups", groups, 1)
    replicas = run.weights.shape[0]
    if replicas % groups:
        raise ValueError(f"Invalid groups: {groups} (must divide the {replicas} data sets)")
    sq = ((run.weights - data.true_w) ** 2).reshape(groups, replicas // groups, -1)
    return np.sqrt(sq.mean(axis=1))


# --- 4.4 a network: SGD, AdaGrad, RMSprop and Adam, each at its own best rate ----------------

NETWORK_OPTIMIZERS = ("sgd", "adagrad", "rmsprop", "adam")


def network_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    """``torch.optim``'s SGD, Adagrad, RMSprop (``alpha`` 0.99, its default) or Adam.

    torch's own classes, for speed: ``optbook.torch``'s classes of the same names
    match them to rounding (``tests/test_torch_classic.py``) but run a Python
    chain per step, several times slower on these tiny layers.
    """
    classes = {"sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad,
               "rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam}
    if name not in classes:
        raise ValueError(f"Invalid optimizer: {name!r} (choose from {', '.join(classes)})")
    return classes[name](params, lr=lr)


@dataclass(frozen=True)
class NetworkSweep:
    """Final validation losses per optimizer, rate and seed, and the curves at each best rate.

    Attributes:
        lrs: ``{name: rates}`` each optimizer's own sweep.
        seeds: the seeds (each draws the data, the initial weights and the batch order).
        val_loss: ``{name: (len(rates), len(seeds))}``; ``inf`` where a run diverged.
        best_lr: ``{name: rate}`` with the smallest mean over seeds.
        eval_steps: steps at which the curves were measured.
        curves: ``{name: (len(seeds), len(eval_steps))}`` validation loss at the best rate.
    """

    lrs: dict
    seeds: tuple
    val_loss: dict
    best_lr: dict
    eval_steps: np.ndarray
    curves: dict


def network_sweep(lrs: dict, seeds: Sequence[int] = (0, 1, 2), steps: int = 200,
                  batch_size: int = 32, hidden: int = 32, eval_every: int = 25) -> NetworkSweep:
    r"""A two-hidden-layer ReLU network on ``teacher_classification`` (1,024 training
    examples, 10 % flipped labels), trained by each optimizer of ``lrs`` at each of its rates.

    ``lrs`` maps an optimizer name to its own rates; give every optimizer as
    many rates, and check that its best is not at an end of its sweep.
    """
    from .training import mlp, teacher_classification, train

    steps = _check_int("steps", steps, 1)
    seeds = tuple(_check_int("seed", s, 0) for s in seeds)
    datasets = {s: teacher_classification(n_train=1024, n_val=1024, seed=s) for s in seeds}
    val, best_lr, curves = {}, {}, {}
    eval_steps = np.arange(eval_every, steps + 1, eval_every)
    for name, rates in lrs.items():
        rates = tuple(float(r) for r in rates)
        table = np.full((len(rates), len(seeds)), np.inf)
        paths = np.full((len(rates), len(seeds), eval_steps.size), np.inf)
        for l_i, lr in enumerate(rates):
            for s_i, seed in enumerate(seeds):
                data = datasets[seed]
                model = mlp(data.x_train.shape[1], data.classes, hidden=hidden, seed=seed)
                hist = train(model, network_optimizer(name, model.parameters(), lr), data,
                             steps=steps, batch_size=batch_size, eval_every=eval_every,
                             seed=seed)
                if not hist.diverged:
                    table[l_i, s_i] = hist.final_val_loss
                    paths[l_i, s_i, :len(hist.val_loss)] = hist.val_loss
        best = int(np.argmin(table.mean(axis=1)))
        val[name], best_lr[name], curves[name] = table, rates[best], paths[best]
    return NetworkSweep({k: tuple(v) for k, v in lrs.items()}, seeds, val, best_lr,
                        eval_steps, curves)
