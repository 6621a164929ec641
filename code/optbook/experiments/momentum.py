r"""Chapter 3 (Momentum系手法, momentum methods): heavy ball, Nesterov, and their physics.

Every function here is pure (no global state) and returns plain NumPy arrays,
Python numbers or small dataclasses, so the notebook only calls and plots,
and ``tests/test_momentum_experiments.py`` checks each one against a closed
form or against ``torch.optim.SGD``.

Article notation: gradient :math:`g_t = \nabla_\theta\mathcal L(\theta_t)`,
momentum coefficient (モーメンタム係数) :math:`\beta`, learning rate :math:`\eta`,

.. math:: v_t = \beta v_{t-1} + g_t, \qquad \theta_{t+1} = \theta_t - \eta v_t
          \qquad\text{(Polyak 1964)}.

Sections:

* 3.1 -- the velocity as a sum of past gradients: :math:`(1-\beta^t)/(1-\beta)`
  on a constant gradient, :math:`1/(1+\beta)` on an alternating one; the
  exponential-moving-average (EMA) form and its learning-rate rescaling;
* 3.2 -- Nesterov's look-ahead form (:func:`nesterov_lookahead`) and the
  change of variables to the form torch.optim and optax implement
  (Sutskever et al. 2013); overshoot statistics;
* 3.3 -- the heavy-ball ODE :math:`m\ddot x + c\dot x + \nabla f(x) = 0`, the
  2x2 iteration matrix of momentum on a quadratic, its spectral radius, and
  Polyak's optimal parameters;
* a race of GD, momentum and Nesterov with tuned learning rates.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from ..base import (GradientTransformation, apply_updates, chain, check_number,
                    scale_by_learning_rate, tree_map)
from ..landscapes import Landscape, beale, quadratic, rosenbrock, trajectory
from ..momentum import trace
from ..optimizers import momentum, nesterov, sgd

__all__ = [
    # 3.1 velocity as a sum of gradients; EMA form
    "velocity_sequence", "constant_gradient_velocity_theory",
    "alternating_gradient_velocity_theory", "ema_trace", "ema_momentum",
    "steps_to_tolerance", "sign_changes", "peak_overshoot", "settling_step",
    # 3.2 Nesterov
    "LookaheadRun", "nesterov_lookahead",
    # 3.3 physics and rates
    "heavy_ball_coefficients", "heavy_ball_physics", "iteration_matrix", "spectral_radius",
    "nesterov_spectral_radius",
    "momentum_rate_theory", "damping_regime", "critical_beta", "polyak_parameters",
    "polyak_rate", "momentum_on_1d_quadratic", "measured_rate", "hessian_eigenvalues",
    # the race
    "steps_to_reach", "TuningResult", "tune_learning_rate", "METHODS",
    # the widget
    "EXPLORER_LANDSCAPES", "explorer_runs", "explorer_outcomes", "momentum_explorer",
]


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"Invalid {name}: {value!r} (must be an integer >= {low})")
    return int(value)


def _check_beta(beta: float) -> float:
    check_number("momentum value", beta)
    if beta >= 1:
        raise ValueError(f"Invalid momentum value: {beta} (must be < 1)")
    return float(beta)


# --- 3.1 the velocity as a sum of past gradients ------------------------------------------

def velocity_sequence(gradients: Sequence[float], beta: float,
                      dampening: float = 0.0) -> np.ndarray:
    r"""Feed scalar gradients :math:`g_1, g_2, \dots` through ``optbook.trace`` and return
    :math:`v_1, v_2, \dots`.

    ``optbook.trace(beta, dampening=d)`` is torch.optim.SGD's buffer:
    :math:`v_1 = g_1`, then :math:`v_t = \beta v_{t-1} + (1-d)\,g_t`. With
    :math:`d = 0` it is the article's :math:`v_t = \beta v_{t-1} + g_t`,
    :math:`v_0 = 0`, i.e. :math:`v_t = \sum_{k=0}^{t-1}\beta^k g_{t-k}`.
    """
    transform = trace(_check_beta(beta), dampening=dampening)
    state = transform.init(np.zeros(1))
    out = []
    for g in gradients:
        v, state = transform.update(np.array([float(g)]), state)
        out.append(float(v[0]))
    return np.array(out)


def constant_gradient_velocity_theory(beta: float, steps: int, gradient: float = 1.0
                                      ) -> np.ndarray:
    r""":math:`v_t = g\,(1-\beta^t)/(1-\beta)`, :math:`t = 1..\text{steps}`: the geometric sum
    :math:`g\sum_{k<t}\beta^k`, which tends to :math:`g/(1-\beta)`."""
    beta = _check_beta(beta)
    t = np.arange(1, _check_int("steps", steps, 1) + 1)
    return gradient * (1.0 - beta ** t) / (1.0 - beta)


def alternating_gradient_velocity_theory(beta: float, steps: int, gradient: float = 1.0
                                         ) -> np.ndarray:
    r"""Velocity for :math:`g_t = (-1)^{t-1} g` (a zig-zag):
    :math:`v_t = (-1)^{t-1} g\,(1-(-\beta)^t)/(1+\beta)`, of size tending to :math:`g/(1+\beta)`."""
    beta = _check_beta(beta)
    t = np.arange(1, _check_int("steps", steps, 1) + 1)
    return (-1.0) ** (t - 1) * gradient * (1.0 - (-beta) ** t) / (1.0 + beta)


def ema_trace(beta: float) -> GradientTransformation:
    r"""The exponential moving average :math:`m_t = \beta m_{t-1} + (1-\beta)\,g_t`,
    :math:`m_0 = 0`.

    Unlike torch's dampened buffer (``optbook.trace(beta, dampening=beta)``, i.e.
    :math:`v_t = \beta v_{t-1} + (1-\beta) g_t` but with first step :math:`v_1 = g_1`),
    the average starts from zero, so
    :math:`m_t = (1-\beta)\,v_t` exactly, :math:`v_t` the article's velocity.
    """
    beta = _check_beta(beta)

    def init(params):
        return {"average": tree_map(lambda p: p * 0, params)}

    def update(updates, state, params=None, **extra):
        average = tree_map(lambda m, g: beta * m + (1 - beta) * g, state["average"], updates)
        return average, {"average": average}

    return GradientTransformation(init, update)


def ema_momentum(learning_rate: float, beta: float = 0.9) -> GradientTransformation:
    r"""Momentum in EMA form: :math:`m_t = \beta m_{t-1} + (1-\beta) g_t`,
    :math:`\theta_{t+1} = \theta_t - \eta' m_t`.

    With :math:`\eta' = \eta/(1-\beta)` its iterates are those of the article's
    form ``optbook.momentum(eta, beta)``: the two differ only in how the
    learning rate is counted.
    """
    return chain(ema_trace(beta), scale_by_learning_rate(learning_rate))


def steps_to_tolerance(values: np.ndarray, tol: float, minimum: float = 0.0) -> Optional[int]:
    """First step ``t`` with ``values[t] - minimum <= tol`` (``None`` if never)."""
    check_number("tol", tol, low_inclusive=False)
    hit = np.flatnonzero(np.asarray(values, dtype=float) - minimum <= tol)
    return int(hit[0]) if hit.size else None


def sign_changes(x: np.ndarray, threshold: float = 0.0) -> int:
    """How many times ``x`` changes sign, counting only entries with ``|x| > threshold``."""
    x = np.asarray(x, dtype=float)
    s = np.sign(x[np.abs(x) > threshold])
    return int(np.count_nonzero(s[1:] != s[:-1]))


def peak_overshoot(x: np.ndarray, target: float = 0.0) -> float:
    """Largest distance by which ``x`` goes past ``target`` on the side opposite its start."""
    x = np.asarray(x, dtype=float)
    side = np.sign(x[0] - target)
    if side == 0:
        raise ValueError("Invalid x: the sequence starts at the target")
    return float(max(0.0, np.max(-side * (x - target))))


def settling_step(x: np.ndarray, tol: float, target: float = 0.0) -> Optional[int]:
    """First ``t`` from which ``|x_s - target| <= tol`` for every ``s >= t`` (``None`` if never)."""
    outside = np.flatnonzero(np.abs(np.asarray(x, dtype=float) - target) > tol)
    if outside.size == 0:
        return 0
    t = int(outside[-1]) + 1
    return t if t < len(x) else None


# --- 3.2 Nesterov's look-ahead form ----------------------------------------------------------

@dataclass(frozen=True)
class LookaheadRun:
    r"""Iterates of the article's Nesterov form.

    Attributes:
        theta: ``(steps + 1, dim)`` array of :math:`\theta_t`.
        lookahead: ``(steps + 1, dim)`` array of the look-ahead points
            :math:`\phi_t = \theta_t - \eta\beta v_{t-1}` where step ``t`` takes its gradient.
        velocity: ``(steps + 1, dim)``; row ``t`` is the velocity after ``t`` steps,
            the :math:`v_{t-1}` of the article's indexing (row 0 is zero).
    """

    theta: np.ndarray
    lookahead: np.ndarray
    velocity: np.ndarray


def nesterov_lookahead(grad_fn: Callable[[np.ndarray], np.ndarray], theta0, learning_rate: float,
                       beta: float, steps: int) -> LookaheadRun:
    r"""The article's Nesterov accelerated gradient (NAG), literally:

    .. math:: v_t = \beta v_{t-1} + \nabla\mathcal L(\theta_t - \eta\beta v_{t-1}), \qquad
              \theta_{t+1} = \theta_t - \eta v_t, \qquad v_0 = 0

    (Nesterov 1983, in the momentum form of Sutskever et al. 2013, eq. 3-4).
    The sequence :math:`\phi_t = \theta_t - \eta\beta v_{t-1}` is what
    ``optbook.nesterov`` and ``torch.optim.SGD(nesterov=True)`` iterate.
    """
    check_number("learning rate", learning_rate)
    beta = _check_beta(beta)
    steps = _check_int("steps", steps, 0)
    theta = np.array(theta0, dtype=np.float64).reshape(-1)
    velocity = np.zeros_like(theta)
    thetas, velocities = [theta], [velocity]
    for _ in range(steps):
        lookahead = theta - learning_rate * beta * velocity
        velocity = beta * velocity + np.asarray(grad_fn(lookahead), dtype=np.float64)
        theta = theta - learning_rate * velocity
        thetas.append(theta)
        velocities.append(velocity)
    thetas, velocities = np.array(thetas), np.array(velocities)
    return LookaheadRun(theta=thetas, lookahead=thetas - learning_rate * beta * velocities,
                        velocity=velocities)


# --- 3.3 the heavy ball and the rate of momentum on a quadratic ------------------------------

def heavy_ball_coefficients(mass: float, friction: float, time_step: float) -> tuple[float, float]:
    r"""Discretise :math:`m\ddot x + c\dot x + \nabla f(x) = 0` with step :math:`h`; return
    :math:`(\eta, \beta)`.

    Central difference for :math:`\ddot x`, backward difference for :math:`\dot x`:
    :math:`x_{k+1} = x_k + (1 - ch/m)(x_k - x_{k-1}) - (h^2/m)\nabla f(x_k)`,
    which is momentum :math:`x_{k+1} = x_k + \beta(x_k - x_{k-1}) - \eta\nabla f(x_k)`
    with :math:`\beta = 1 - ch/m` and :math:`\eta = h^2/m`.
    """
    check_number("mass", mass, low_inclusive=False)
    check_number("friction", friction)
    check_number("time_step", time_step, low_inclusive=False)
    return time_step ** 2 / mass, 1.0 - friction * time_step / mass


def heavy_ball_physics(learning_rate: float, beta: float, time_step: float = 1.0
                       ) -> tuple[float, float]:
    r"""Inverse of :func:`heavy_ball_coefficients`:
    :math:`m = h^2/\eta`, :math:`c = (1-\beta)\,m/h`."""
    check_number("learning rate", learning_rate, low_inclusive=False)
    beta = _check_beta(beta)
    check_number("time_step", time_step, low_inclusive=False)
    mass = time_step ** 2 / learning_rate
    return mass, (1.0 - beta) * mass / time_step


def iteration_matrix(learning_rate: float, beta: float, curvature: float) -> np.ndarray:
    r"""The 2x2 matrix :math:`T` with :math:`(e_{t+1}, e_t)^\top = T\,(e_t, e_{t-1})^\top`
    for momentum on :math:`f(x) = \tfrac12\lambda x^2`:

    .. math:: T = \begin{pmatrix} 1 + \beta - \eta\lambda & -\beta \\ 1 & 0 \end{pmatrix}.
    """
    return np.array([[1.0 + beta - learning_rate * curvature, -beta], [1.0, 0.0]])


def spectral_radius(learning_rate: float, beta: float, curvature: float) -> float:
    r"""Largest :math:`|z|` among the roots of :math:`z^2 - (1+\beta-\eta\lambda)z + \beta = 0`.

    Complex roots (under-damped) have :math:`|z| = \sqrt\beta`; real roots
    :math:`z = \tfrac12\bigl(a \pm \sqrt{a^2 - 4\beta}\bigr)`, :math:`a = 1+\beta-\eta\lambda`.
    (Polyak 1964; Goh 2017.)
    """
    a = 1.0 + beta - learning_rate * curvature
    disc = a * a - 4.0 * beta
    if disc < 0:
        return math.sqrt(beta)
    root = math.sqrt(disc)
    return max(abs(a + root), abs(a - root)) / 2.0


def nesterov_spectral_radius(learning_rate: float, beta: float, curvature: float) -> float:
    r"""Largest root modulus of
    :math:`z^2 - (1+\beta)(1-\eta\lambda)\,z + \beta(1-\eta\lambda) = 0`,
    the characteristic polynomial of Nesterov's method on :math:`\tfrac12\lambda x^2`.

    Complex roots have :math:`|z| = \sqrt{\beta(1-\eta\lambda)}`, smaller than
    momentum's :math:`\sqrt\beta`: the look-ahead adds damping.
    """
    a = (1.0 + beta) * (1.0 - learning_rate * curvature)
    c = beta * (1.0 - learning_rate * curvature)
    disc = a * a - 4.0 * c
    if disc < 0:
        return math.sqrt(c)
    root = math.sqrt(disc)
    return max(abs(a + root), abs(a - root)) / 2.0


def momentum_rate_theory(learning_rate: float, beta: float, curvatures: Sequence[float]) -> float:
    """Worst spectral radius over the Hessian's eigenvalues ``curvatures``: the per-step rate."""
    return max(spectral_radius(learning_rate, beta, lam) for lam in curvatures)


def damping_regime(learning_rate: float, beta: float, curvature: float) -> str:
    r"""``"over-damped"`` (real positive roots: :math:`\eta\lambda < (1-\sqrt\beta)^2`),
    ``"critically damped"`` (a double root), ``"under-damped"`` (complex roots), or
    ``"flipping"`` (real negative roots: :math:`\eta\lambda > (1+\sqrt\beta)^2`)."""
    x, s = learning_rate * curvature, math.sqrt(beta)
    low, high = (1 - s) ** 2, (1 + s) ** 2
    if math.isclose(x, low, rel_tol=1e-9) or math.isclose(x, high, rel_tol=1e-9):
        return "critically damped"
    if x < low:
        return "over-damped"
    if x > high:
        return "flipping"
    return "under-damped"


def critical_beta(learning_rate: float, curvature: float) -> float:
    r"""The :math:`\beta` with a double root for :math:`\eta\lambda \le 1`:
    :math:`\beta_c = (1 - \sqrt{\eta\lambda})^2`, the fastest :math:`\beta` for this
    curvature (rate :math:`\sqrt{\beta_c} = 1 - \sqrt{\eta\lambda}`)."""
    x = learning_rate * curvature
    if not 0 < x <= 1:
        raise ValueError(f"Invalid learning rate: {learning_rate} (need 0 < eta*lambda <= 1)")
    return (1.0 - math.sqrt(x)) ** 2


def polyak_parameters(mu: float, L: float) -> tuple[float, float]:
    r"""Polyak's optimal heavy-ball parameters for eigenvalues in :math:`[\mu, L]`:

    .. math:: \eta^\star = \frac{4}{(\sqrt L + \sqrt\mu)^2}, \qquad
              \beta^\star = \Bigl(\frac{\sqrt\kappa - 1}{\sqrt\kappa + 1}\Bigr)^2,
              \quad \kappa = L/\mu

    (Polyak 1964): both ends of the spectrum are then critically damped.
    """
    check_number("mu", mu, low_inclusive=False)
    if not L >= mu:
        raise ValueError(f"Invalid L: {L} (must be >= mu = {mu})")
    eta = 4.0 / (math.sqrt(L) + math.sqrt(mu)) ** 2
    return eta, polyak_rate(L / mu) ** 2


def polyak_rate(kappa: float) -> float:
    r""":math:`(\sqrt\kappa - 1)/(\sqrt\kappa + 1) = \sqrt{\beta^\star}`,
    the rate at Polyak's parameters."""
    check_number("kappa", kappa, low=1.0)
    s = math.sqrt(kappa)
    return (s - 1.0) / (s + 1.0)


def momentum_on_1d_quadratic(curvature: float, learning_rate: float, beta: float, steps: int,
                             x0: float = 1.0, method: str = "momentum") -> np.ndarray:
    r"""``optbook.momentum`` (or ``"nesterov"``, ``"sgd"``) on :math:`f(x) = \tfrac12\lambda x^2`
    from ``x0``; returns :math:`x_0, \dots, x_T` (float64)."""
    steps = _check_int("steps", steps, 0)
    optimizer = _make(method, learning_rate, beta)
    x = np.array([float(x0)])
    state = optimizer.init(x)
    out = [x[0]]
    for _ in range(steps):
        updates, state = optimizer.update(curvature * x, state, x)
        x = apply_updates(x, updates)
        out.append(x[0])
    return np.array(out)


def measured_rate(errors: np.ndarray, start: int, stop: int) -> float:
    r"""Per-step decay
    :math:`(\|z_{\text{stop}}\|/\|z_{\text{start}}\|)^{1/(\text{stop}-\text{start})}`
    of the state :math:`z_t = (e_t, e_{t-1})`.

    ``errors`` is :math:`e_t = \theta_t - \theta^\star`, shape ``(T+1,)`` or
    ``(T+1, dim)``. Momentum's error oscillates and can pass through zero; the
    pair :math:`(e_t, e_{t-1})` cannot vanish, so its norm decays smoothly at
    the spectral radius.
    """
    e = np.asarray(errors, dtype=float).reshape(len(errors), -1)
    start, stop = _check_int("start", start, 1), _check_int("stop", stop, 2)
    if not start < stop < len(e):
        raise ValueError(f"Invalid window: start={start}, stop={stop} for {len(e) - 1} steps")

    def norm(t):
        return math.sqrt(float(np.sum(e[t] ** 2) + np.sum(e[t - 1] ** 2)))

    return (norm(stop) / norm(start)) ** (1.0 / (stop - start))


def hessian_eigenvalues(landscape: Landscape, point, step: float = 1e-5) -> np.ndarray:
    r"""Eigenvalues (ascending) of the Hessian :math:`\nabla^2 f` of a 2-D landscape at ``point``.

    Central differences of the landscape's exact gradient,
    :math:`H_{:,j} \approx (\nabla f(x + h e_j) - \nabla f(x - h e_j))/(2h)`,
    symmetrised; the error is :math:`O(h^2)`. The largest eigenvalue
    :math:`\lambda_{\max}` sets momentum's local stability limit
    :math:`\eta < 2(1+\beta)/\lambda_{\max}`.
    """
    check_number("step", step, low_inclusive=False)
    x = np.array(point, dtype=np.float64).reshape(2)
    columns = []
    for j in range(2):
        e = np.zeros(2)
        e[j] = step
        columns.append((np.asarray(landscape.grad(x + e), dtype=np.float64)
                        - np.asarray(landscape.grad(x - e), dtype=np.float64)) / (2 * step))
    hessian = np.column_stack(columns)
    return np.linalg.eigvalsh((hessian + hessian.T) / 2)


# --- the race ------------------------------------------------------------------------------------

def _make(method: str, learning_rate: float, beta: float) -> GradientTransformation:
    if method in ("sgd", "gd"):
        return sgd(learning_rate)
    if method == "momentum":
        return momentum(learning_rate, beta)
    if method == "nesterov":
        return nesterov(learning_rate, beta)
    raise ValueError(f"Invalid method: {method!r} (choose 'gd', 'momentum' or 'nesterov')")


METHODS = ("gd", "momentum", "nesterov")
"""The three methods of the race; ``gd`` is ``optbook.sgd`` with exact gradients."""


def steps_to_reach(optimizer: GradientTransformation, landscape: Landscape, tol: float,
                   max_steps: int, x0=None, escape: float = 1e6) -> Optional[int]:
    r"""Steps until :math:`f(\theta_t) - f^* \le` ``tol`` (``None`` if not within
    ``max_steps``, or if the run diverges: non-finite or :math:`|\theta| >` ``escape``).

    The same loop as :func:`optbook.landscapes.trajectory`, stopped as soon as the
    tolerance is met, so a grid search over learning rates stays cheap.
    """
    check_number("tol", tol, low_inclusive=False)
    max_steps = _check_int("max_steps", max_steps, 1)
    theta = np.array(landscape.x0 if x0 is None else x0, dtype=np.float64)
    state = optimizer.init(theta)
    # the landscape's scalar formulas directly: a tenth of the cost of grad(points)
    grad_fn, value_fn, threshold = landscape.grad_fn, landscape.value_fn, landscape.min_value + tol
    with np.errstate(all="ignore"):
        for t in range(1, max_steps + 1):
            x, y = float(theta[0]), float(theta[1])
            updates, state = optimizer.update(np.array(grad_fn(x, y)), state, theta)
            theta = apply_updates(theta, updates)
            x, y = float(theta[0]), float(theta[1])
            if not (math.isfinite(x) and math.isfinite(y)) or max(abs(x), abs(y)) > escape:
                return None
            if value_fn(x, y) <= threshold:
                return t
    return None


@dataclass(frozen=True)
class TuningResult:
    """A grid search over learning rates for one method on one landscape.

    Attributes:
        method: ``"gd"``, ``"momentum"`` or ``"nesterov"``.
        learning_rates: the grid.
        steps: steps to tolerance per learning rate (``None``: not reached/diverged).
        best_lr: the learning rate with the fewest steps (``None`` if none reached).
        best_steps: its step count.
    """

    method: str
    learning_rates: tuple[float, ...]
    steps: tuple[Optional[int], ...]
    best_lr: Optional[float]
    best_steps: Optional[int]


def tune_learning_rate(method: str, landscape: Landscape, learning_rates: Sequence[float], *,
                       beta: float = 0.9, tol: float = 1e-6, max_steps: int = 5000,
                       x0=None) -> TuningResult:
    """Run ``method`` at every learning rate of the grid; keep the fastest to ``tol``."""
    lrs = tuple(float(lr) for lr in learning_rates)
    if not lrs:
        raise ValueError("Invalid learning_rates: empty grid")
    steps = tuple(steps_to_reach(_make(method, lr, beta), landscape, tol, max_steps, x0)
                  for lr in lrs)
    reached = [(s, lr) for s, lr in zip(steps, lrs) if s is not None]
    best_steps, best_lr = min(reached) if reached else (None, None)
    return TuningResult(method, lrs, steps, best_lr, best_steps)


# --- the widget: eta and beta for momentum and Nesterov on three landscapes -----------------

EXPLORER_LANDSCAPES: dict[str, tuple[Callable[[], Landscape], float, int]] = {
    "quadratic (κ = 25)": (lambda: quadratic(25.0), 0.04, 100),
    "Rosenbrock": (rosenbrock, 1e-3, 400),
    "Beale": (beale, 5e-3, 200),
}
"""Widget choice -> (landscape constructor, base learning rate, steps). The slider
multiplies the base rate, so one grid of multipliers suits all three landscapes."""


def _explorer_landscape(name: str) -> tuple[Landscape, float, int]:
    if name not in EXPLORER_LANDSCAPES:
        raise ValueError(f"Invalid landscape: {name!r} "
                         f"(choose from {', '.join(EXPLORER_LANDSCAPES)})")
    make, base_lr, steps = EXPLORER_LANDSCAPES[name]
    return make(), base_lr, steps


def explorer_runs(landscape: str, lr_scale: float, beta: float) -> dict:
    r"""``{"momentum": Trajectory, "nesterov": Trajectory}`` at
    :math:`\eta = ` ``lr_scale`` x the landscape's base rate (pure; for tests)."""
    land, base_lr, steps = _explorer_landscape(landscape)
    lr = base_lr * lr_scale
    return {"momentum": trajectory(momentum(lr, beta), land, steps=steps),
            "nesterov": trajectory(nesterov(lr, beta), land, steps=steps)}


def explorer_outcomes(lr_scales: Sequence[float] = (1.0, 2.0),
                      betas: Sequence[float] = (0.8, 0.95)) -> list[dict]:
    r"""How every frame of :func:`momentum_explorer` ends, from :func:`explorer_runs`.

    One row per landscape, learning-rate multiplier, :math:`\beta` and method:
    ``{"landscape", "lr_scale", "beta", "method", "gap", "diverged_at"}``, where
    ``gap`` is :math:`f(\theta_T) - f^*` after the frame's last step (``None``
    if the run diverged) and ``diverged_at`` the step at which it left the
    plotting region (``None`` if it did not).
    """
    rows = []
    for name in EXPLORER_LANDSCAPES:
        minimum = _explorer_landscape(name)[0].min_value
        for s in lr_scales:
            for b in betas:
                for method, run in explorer_runs(name, s, b).items():
                    gap = None if run.diverged else float(run.values[-1] - minimum)
                    rows.append({"landscape": name, "lr_scale": float(s), "beta": float(b),
                                 "method": method, "gap": gap,
                                 "diverged_at": run.diverged_at})
    return rows


def momentum_explorer(lr_scales: Sequence[float] = (1.0, 2.0),
                      betas: Sequence[float] = (0.8, 0.95)):
    r"""Chapter 3's widget: landscape (drop-down) x learning-rate multiplier x :math:`\beta`.

    One loss-axis range per landscape, shared by all its frames, so moving a
    slider moves the curves, not the axis.
    """
    from functools import lru_cache

    from ..widgets import Explorer

    @lru_cache(maxsize=None)
    def runs(landscape, lr_scale, beta):
        return explorer_runs(landscape, lr_scale, beta)

    @lru_cache(maxsize=None)
    def loss_range(landscape):
        values = []
        for s in lr_scales:
            for b in betas:
                for run in runs(landscape, s, b).values():
                    v = np.asarray(run.values[:run.diverged_at], dtype=float)
                    values.append(v[np.isfinite(v) & (v > 0)])
        v = np.concatenate(values)
        low = max(float(v.min()), float(v.max()) * 1e-12)
        return low / 2, float(v.max()) * 2

    def draw(landscape, lr_scale, beta):
        from ..widgets import draw_runs
        land, base_lr, _ = _explorer_landscape(landscape)
        title = f"η = {base_lr * lr_scale:.3g} ({lr_scale:g} × base), β = {beta:g}"
        return draw_runs(runs(landscape, lr_scale, beta), land, title=title,
                         loss_ylim=loss_range(landscape))

    return Explorer(draw, {"landscape": list(EXPLORER_LANDSCAPES), "lr_scale": list(lr_scales),
                           "beta": list(betas)},
                    defaults={"landscape": "quadratic (κ = 25)", "lr_scale": 1.0, "beta": 0.8},
                    labels={"landscape": "landscape", "lr_scale": "η / base η", "beta": "β"},
                    title="momentum and Nesterov: learning rate and momentum coefficient")
