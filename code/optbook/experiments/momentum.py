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
* 3.2 -- Nesterov's look-ahead form (:func:`nesterov_lookahead`, the momentum
  form of Sutskever et al. 2013) and the change of variables to the form
  torch.optim and optax implement (Bengio, Boulanger-Lewandowski & Pascanu
  2013); overshoot statistics;
* 3.3 -- the heavy-ball ODE :math:`m\ddot x + c\dot x + \nabla f(x) = 0`, the
  2x2 iteration matrix of momentum on a quadratic, its spectral radius, and
  Polyak's optimal parameters; the floor that makes them optimal for every
  learning rate, NAG's own optimum, the first-order lower bound, and Lessard,
  Recht & Packard's (2016) function on which the heavy ball cycles;
* stochastic gradients: the noisy quadratic model (Zhang et al. 2019), where
  momentum at (eta, beta) behaves like SGD at eta/(1-beta), and a double well
  for escaping a local minimum;
* a race of GD, momentum and Nesterov with tuned learning rates and momenta,
  from several starts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from ..base import (GradientTransformation, apply_updates, chain, check_number,
                    scale_by_learning_rate, tree_map)
from ..figures import Explorer, phase_figure, spec_figure
from ..figures.paths import draw_runs, optimizer_entry
from ..figures.spec import landscape_spec, param_spec
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
    "heavy_ball_rate_floor", "best_rate_over_beta", "nesterov_rate_theory",
    "nesterov_optimal_parameters", "nesterov_optimal_rate", "first_order_lower_bound_rate",
    "steps_to_shrink",
    # Lessard-Recht-Packard counterexample
    "lessard_gradient", "lessard_value", "lessard_run",
    # stochastic gradients
    "nqm_curvatures", "nqm_noise", "nqm_losses", "nqm_stationary_loss", "BatchSweep",
    "nqm_batch_sweep",
    # escaping a local minimum
    "DoubleWell", "double_well", "double_well_roll", "double_well_escape",
    # the race
    "steps_to_reach", "TuningResult", "tune_learning_rate", "METHODS",
    "race_starts", "race_steps", "race_run", "RaceResult", "tune_race",
    # the widget
    "EXPLORER_LANDSCAPES", "explorer_runs", "explorer_outcomes", "momentum_explorer",
    # the chapter's figures
    "momentum_figure", "heavy_ball_phase_figure",
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
        land, base_lr, _ = _explorer_landscape(landscape)
        title = f"η = {base_lr * lr_scale:.3g} ({lr_scale:g} × base), β = {beta:g}"
        return draw_runs(runs(landscape, lr_scale, beta), land, title=title,
                         loss_ylim=loss_range(landscape))

    return Explorer(draw, {"landscape": list(EXPLORER_LANDSCAPES), "lr_scale": list(lr_scales),
                           "beta": list(betas)},
                    defaults={"landscape": "quadratic (κ = 25)", "lr_scale": 1.0, "beta": 0.8},
                    labels={"landscape": "landscape", "lr_scale": "η / base η", "beta": "β"},
                    title="momentum and Nesterov: learning rate and momentum coefficient")


# --- 3.3 (cont.) Polyak's missing step, NAG's own optimum, the lower bound ---------------------

def heavy_ball_rate_floor(learning_rate: float, mu: float, L: float) -> float:
    r"""A floor under momentum's rate at learning rate :math:`\eta`, whatever :math:`\beta`:

    .. math:: \max_{\lambda\in\{\mu, L\}}\rho(T_\lambda) \;\ge\;
              \max\bigl(1 - \sqrt{\eta\mu},\; \sqrt{\eta L} - 1\bigr),

    because :math:`\rho(T_\lambda) \ge |1 - \sqrt{\eta\lambda}|` for every
    :math:`\beta \in [0, 1)` (the chapter's lemma). The floor is smallest,
    :math:`(\sqrt\kappa-1)/(\sqrt\kappa+1)`, exactly at Polyak's :math:`\eta^\star`.
    """
    check_number("learning rate", learning_rate, low_inclusive=False)
    check_number("mu", mu, low_inclusive=False)
    if not L >= mu:
        raise ValueError(f"Invalid L: {L} (must be >= mu = {mu})")
    return max(1.0 - math.sqrt(learning_rate * mu), math.sqrt(learning_rate * L) - 1.0)


def best_rate_over_beta(learning_rate: float, mu: float, L: float,
                        betas: Sequence[float]) -> tuple[float, float]:
    r"""``(rate, beta)``: the smallest :math:`\max(\rho(T_\mu), \rho(T_L))` over the grid
    ``betas`` at a fixed learning rate, and the :math:`\beta` that attains it."""
    check_number("learning rate", learning_rate, low_inclusive=False)
    grid = [_check_beta(b) for b in betas]
    if not grid:
        raise ValueError("Invalid betas: empty grid")
    rates = [momentum_rate_theory(learning_rate, b, (mu, L)) for b in grid]
    i = int(np.argmin(rates))
    return float(rates[i]), float(grid[i])


def nesterov_rate_theory(learning_rate: float, beta: float, mu: float, L: float,
                         num: int = 401) -> float:
    r"""Worst :func:`nesterov_spectral_radius` over :math:`\lambda \in [\mu, L]`.

    Unlike momentum's, NAG's root modulus :math:`\sqrt{\beta(1-\eta\lambda)}`
    varies with :math:`\lambda` inside the complex region, so the worst case
    is searched on a grid of ``num`` curvatures (ends included) rather than
    read off the two ends.
    """
    check_number("mu", mu, low_inclusive=False)
    if not L >= mu:
        raise ValueError(f"Invalid L: {L} (must be >= mu = {mu})")
    lams = np.linspace(mu, L, _check_int("num", num, 2))
    return max(nesterov_spectral_radius(learning_rate, beta, float(lam)) for lam in lams)


def nesterov_optimal_parameters(mu: float, L: float) -> tuple[float, float]:
    r"""NAG's best parameters on quadratics with eigenvalues in :math:`[\mu, L]`
    (Lessard, Recht & Packard 2016):

    .. math:: \eta = \frac{4}{3L + \mu}, \qquad
              \beta = \frac{\sqrt{3\kappa+1} - 2}{\sqrt{3\kappa+1} + 2},
              \qquad \text{rate } 1 - \frac{2}{\sqrt{3\kappa + 1}}.
    """
    check_number("mu", mu, low_inclusive=False)
    if not L >= mu:
        raise ValueError(f"Invalid L: {L} (must be >= mu = {mu})")
    s = math.sqrt(3.0 * L / mu + 1.0)
    return 4.0 / (3.0 * L + mu), (s - 2.0) / (s + 2.0)


def nesterov_optimal_rate(kappa: float) -> float:
    r""":math:`1 - 2/\sqrt{3\kappa+1}`, NAG's rate at :func:`nesterov_optimal_parameters`."""
    check_number("kappa", kappa, low=1.0)
    return 1.0 - 2.0 / math.sqrt(3.0 * kappa + 1.0)


def first_order_lower_bound_rate(kappa: float) -> float:
    r"""Nesterov's lower bound (2004, Thm 2.1.13): no method that moves within the span
    of past gradients can guarantee
    :math:`\|\theta_t - \theta^\star\| \le q^t \|\theta_0 - \theta^\star\|` with
    :math:`q < (\sqrt\kappa-1)/(\sqrt\kappa+1)` on every :math:`\mu`-strongly convex,
    :math:`L`-smooth function. Numerically equal to :func:`polyak_rate`."""
    return polyak_rate(kappa)


def _linear_run(curvatures: np.ndarray, learning_rate, beta, steps: int, nesterov_form: bool,
                x0: float = 1.0) -> np.ndarray:
    """Distance ``||theta_t||`` of momentum (or NAG, implemented form) on the diagonal
    quadratic with the given curvatures, every coordinate started at ``x0``; arrays of
    learning rates and betas broadcast against a leading axis. Same iterates as
    ``optbook.momentum`` / ``optbook.nesterov`` (tested)."""
    lam = np.asarray(curvatures, dtype=float)
    eta = np.asarray(learning_rate, dtype=float)[..., None]
    b = np.asarray(beta, dtype=float)[..., None]
    x = np.broadcast_to(np.full_like(lam, x0), np.broadcast(eta, b, lam).shape).copy()
    v = np.zeros_like(x)
    out = [np.sqrt((x * x).sum(-1))]
    for _ in range(steps):
        g = lam * x
        v = b * v + g
        x = x - eta * ((g + b * v) if nesterov_form else v)
        out.append(np.sqrt((x * x).sum(-1)))
    return np.array(out)


def steps_to_shrink(method: str, kappa: float, tol: float = 1e-6,
                    max_steps: int = 100_000) -> Optional[int]:
    r"""Steps until :math:`\|\theta_t - \theta^\star\| \le` ``tol`` :math:`\|\theta_0 - \theta^\star\|`
    on :math:`\tfrac12(\theta_1^2 + \kappa\theta_2^2)` from :math:`(1, 1)`.

    ``method``: ``"gd"`` (:math:`\eta = 2/(L+\mu)`), ``"momentum"`` (Polyak's
    :math:`\eta^\star, \beta^\star`), ``"nesterov"`` (:func:`nesterov_optimal_parameters`)
    or ``"nesterov_standard"`` (:math:`\eta = 1/L`, :math:`\beta = (\sqrt\kappa-1)/(\sqrt\kappa+1)`).
    """
    check_number("kappa", kappa, low=1.0)
    check_number("tol", tol, low_inclusive=False)
    max_steps = _check_int("max_steps", max_steps, 1)
    mu, L = 1.0, float(kappa)
    if method == "gd":
        eta, beta, nag = 2.0 / (L + mu), 0.0, False
    elif method == "momentum":
        (eta, beta), nag = polyak_parameters(mu, L), False
    elif method == "nesterov":
        (eta, beta), nag = nesterov_optimal_parameters(mu, L), True
    elif method == "nesterov_standard":
        eta, beta, nag = 1.0 / L, polyak_rate(kappa), True
    else:
        raise ValueError(f"Invalid method: {method!r} "
                         "(choose 'gd', 'momentum', 'nesterov' or 'nesterov_standard')")
    lam = np.array([mu, L])
    x, v, start = np.ones(2), np.zeros(2), math.sqrt(2.0)
    for t in range(1, max_steps + 1):
        g = lam * x
        v = beta * v + g
        x = x - eta * ((g + beta * v) if nag else v)
        if math.sqrt(float(x @ x)) <= tol * start:
            return t
    return None


# --- the Lessard-Recht-Packard counterexample ------------------------------------------------

def lessard_gradient(x):
    r"""Gradient of Lessard, Recht & Packard's (2016, sec. 4.6) one-dimensional function,
    1-strongly convex and 25-smooth:

    .. math:: f'(x) = \begin{cases} 25x & x < 1\\ x + 24 & 1 \le x < 2\\
              25x - 24 & x \ge 2 \end{cases}
    """
    x = np.asarray(x, dtype=float)
    return np.where(x < 1, 25.0 * x, np.where(x < 2, x + 24.0, 25.0 * x - 24.0))


def lessard_value(x):
    """The function whose derivative is :func:`lessard_gradient`, with ``f(0) = 0``."""
    x = np.asarray(x, dtype=float)
    return np.where(x < 1, 12.5 * x * x,
                    np.where(x < 2, 0.5 * x * x + 24.0 * x - 12.0, 12.5 * x * x - 24.0 * x + 36.0))


def lessard_run(method: str, x0, steps: int) -> np.ndarray:
    r"""Iterates :math:`x_0, \dots, x_T` on :func:`lessard_gradient` with ``optbook.momentum``
    at Polyak's parameters for :math:`\mu = 1, L = 25` (:math:`\eta = 1/9`, :math:`\beta = 4/9`),
    ``optbook.nesterov`` at :func:`nesterov_optimal_parameters`, ``optbook.nesterov`` at
    the textbook setting for strongly convex functions (``"nesterov_standard"``:
    :math:`\eta = 1/L = 1/25`, :math:`\beta = (\sqrt\kappa-1)/(\sqrt\kappa+1) = 2/3`),
    or ``optbook.sgd`` at :math:`2/(L+\mu)`. ``x0`` may be an array of starts (one run
    each, all at once); the result then has shape ``(steps + 1, len(x0))``."""
    steps = _check_int("steps", steps, 0)
    if method == "momentum":
        optimizer = momentum(*polyak_parameters(1.0, 25.0))
    elif method == "nesterov":
        optimizer = nesterov(*nesterov_optimal_parameters(1.0, 25.0))
    elif method == "nesterov_standard":
        optimizer = nesterov(1.0 / 25.0, polyak_rate(25.0))
    elif method == "gd":
        optimizer = sgd(2.0 / 26.0)
    else:
        raise ValueError(f"Invalid method: {method!r} "
                         "(choose 'gd', 'momentum', 'nesterov' or 'nesterov_standard')")
    scalar = np.ndim(x0) == 0
    x = np.array(x0, dtype=float).reshape(-1)
    state = optimizer.init(x)
    out = [x]
    for _ in range(steps):
        updates, state = optimizer.update(lessard_gradient(x), state, x)
        x = apply_updates(x, updates)
        out.append(x)
    out = np.array(out)
    return out[:, 0] if scalar else out


# --- stochastic gradients: the noisy quadratic model -------------------------------------------

def nqm_curvatures(dim: int = 10, kappa: float = 100.0) -> np.ndarray:
    r"""Curvatures :math:`\lambda_i` of the noisy quadratic model, log-spaced from 1 down to
    :math:`1/\kappa`."""
    check_number("kappa", kappa, low=1.0)
    return np.logspace(0.0, -math.log10(kappa), _check_int("dim", dim, 1))


def nqm_noise(seed: int, steps: int, dim: int) -> np.ndarray:
    r"""The standard normal draws :math:`\xi_t` (shape ``(steps, dim)``) of one seed; the
    gradient at step ``t`` is :math:`H\theta_t + \sqrt{H/B}\,\xi_t`."""
    return np.random.default_rng(_check_int("seed", seed, 0)).standard_normal(
        (_check_int("steps", steps, 1), _check_int("dim", dim, 1)))


def nqm_losses(learning_rates: Sequence[float], beta: float, batch_size: int,
               seeds: Sequence[int], steps: int, curvatures: np.ndarray,
               x0: float = 1.0) -> np.ndarray:
    r"""Momentum SGD on the noisy quadratic model (Zhang et al. 2019):
    :math:`f(\theta) = \tfrac12\sum_i\lambda_i\theta_i^2`, stochastic gradient
    :math:`g_t = H\theta_t + \sqrt{H/B}\,\xi_t`, :math:`\xi_t \sim \mathcal N(0, I)` (noise
    covariance :math:`H/B`, as for a mini-batch of :math:`B` examples).

    Returns :math:`f(\theta_t)` for ``t = 0..steps``, shape
    ``(steps + 1, len(learning_rates), len(seeds))``; every learning rate of a seed
    sees the same noise (:func:`nqm_noise`), ``beta = 0`` is plain SGD, and
    the iterates equal ``optbook.momentum``'s on the same gradients (tested).
    """
    beta = _check_beta(beta)
    batch_size = _check_int("batch_size", batch_size, 1)
    steps = _check_int("steps", steps, 1)
    lam = np.asarray(curvatures, dtype=float)
    lrs = np.asarray([check_number("learning rate", lr) for lr in learning_rates], dtype=float)
    seeds = list(seeds)
    if not seeds or not lrs.size:
        raise ValueError("Invalid seeds or learning_rates: empty")
    noise = np.stack([nqm_noise(s, steps, lam.size) for s in seeds], axis=1)  # (T, S, d)
    noise *= np.sqrt(lam / batch_size)
    eta = lrs[:, None, None]
    x = np.full((lrs.size, len(seeds), lam.size), float(x0))
    v = np.zeros_like(x)
    out = np.empty((steps + 1, lrs.size, len(seeds)))
    out[0] = 0.5 * (lam * x * x).sum(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps):
            v = beta * v + (lam * x + noise[t])
            x = x - eta * v
            out[t + 1] = 0.5 * (lam * x * x).sum(-1)
    return np.where(np.isfinite(out), out, np.inf)


def nqm_stationary_loss(learning_rate: float, beta: float, batch_size: int,
                        curvatures: np.ndarray) -> float:
    r"""The loss :math:`\mathbb E f` that :func:`nqm_losses` settles at, in closed form.

    Along one eigenvector the error is the AR(2) process
    :math:`x_{t+1} = (1+\beta-\eta\lambda)x_t - \beta x_{t-1} - \eta s\,\xi_t`,
    :math:`s^2 = \lambda/B`, whose stationary variance is
    :math:`\dfrac{(1+\beta)\,\eta s^2}{(1-\beta)\,\lambda\,(2(1+\beta)-\eta\lambda)}`; so

    .. math:: \mathbb E f = \sum_i \frac{(1+\beta)\,\eta\,\lambda_i}
              {2B\,(1-\beta)\,\bigl(2(1+\beta) - \eta\lambda_i\bigr)}.

    With :math:`\beta = 0` it is SGD's :math:`\sum_i \eta\lambda_i/(2B(2-\eta\lambda_i))`;
    for :math:`\eta\lambda_i \ll 1-\beta` it equals SGD's at :math:`\eta/(1-\beta)`.
    ``inf`` where the recursion is unstable (:math:`\eta\lambda \ge 2(1+\beta)`).
    """
    beta = _check_beta(beta)
    check_number("learning rate", learning_rate, low_inclusive=False)
    b = float(_check_int("batch_size", batch_size, 1))
    lam = np.asarray(curvatures, dtype=float)
    margin = 2.0 * (1.0 + beta) - learning_rate * lam
    if np.any(margin <= 0):
        return math.inf
    return float(np.sum((1 + beta) * learning_rate * lam / (2 * b * (1 - beta) * margin)))


@dataclass(frozen=True)
class BatchSweep:
    r"""Tuned final loss of SGD and momentum on the noisy quadratic model per batch size.

    Attributes:
        batch_sizes: the batch sizes.
        effective_lrs: the grid of :math:`\eta/(1-\beta)` both methods sweep (SGD uses it
            as its :math:`\eta`; momentum uses :math:`\eta = (1-\beta)\times` it).
        beta: momentum's :math:`\beta`.
        final: ``{"sgd", "momentum"}`` -> array ``(n_batch, n_lr, n_seeds)`` of the loss
            averaged over the last ``average_last`` steps (``inf`` if diverged).
        best_index: ``{"sgd", "momentum"}`` -> per batch size, the grid index with the
            lowest mean over seeds.
    """

    batch_sizes: tuple[int, ...]
    effective_lrs: tuple[float, ...]
    beta: float
    final: dict
    best_index: dict

    def best(self, method: str) -> np.ndarray:
        """``(n_batch, n_seeds)``: each batch size's tuned final losses, one per seed."""
        f = self.final[method]
        return np.array([f[i, j] for i, j in enumerate(self.best_index[method])])


def nqm_batch_sweep(batch_sizes: Sequence[int], effective_lrs: Sequence[float],
                    beta: float = 0.9, seeds: Sequence[int] = (0, 1, 2, 3, 4),
                    steps: int = 400, curvatures: Optional[np.ndarray] = None,
                    average_last: int = 40) -> BatchSweep:
    r"""For each batch size, sweep SGD's :math:`\eta` and momentum's :math:`\eta/(1-\beta)`
    over the same grid ``effective_lrs`` and keep each method's best (lowest mean final loss
    over ``seeds``): both competitors tuned on the same budget."""
    beta = _check_beta(beta)
    lam = nqm_curvatures() if curvatures is None else np.asarray(curvatures, dtype=float)
    grid = np.asarray(effective_lrs, dtype=float)
    average_last = _check_int("average_last", average_last, 1)
    final = {"sgd": [], "momentum": []}
    for b in batch_sizes:
        for method, (lrs, bb) in {"sgd": (grid, 0.0), "momentum": (grid * (1 - beta), beta)}.items():
            losses = nqm_losses(lrs, bb, b, seeds, steps, lam)
            final[method].append(losses[-average_last:].mean(axis=0))
    final = {m: np.array(v) for m, v in final.items()}
    best = {m: tuple(int(np.argmin(np.where(np.isfinite(f.mean(-1)), f.mean(-1), np.inf)))
                     for f in v) for m, v in ((m, final[m]) for m in final)}
    return BatchSweep(tuple(int(b) for b in batch_sizes), tuple(float(x) for x in grid),
                      float(beta), final, best)


# --- escaping a local minimum: a tilted double well --------------------------------------------

@dataclass(frozen=True)
class DoubleWell:
    r""":math:`f(x) = (x^2-1)^2/4 + a\,x`: a shallow minimum on the right, the global one on
    the left, a barrier between (the three real roots of :math:`x^3 - x + a`)."""

    tilt: float
    global_min: float
    barrier: float
    local_min: float

    def value(self, x):
        x = np.asarray(x, dtype=float)
        return (x * x - 1.0) ** 2 / 4.0 + self.tilt * x

    def grad(self, x):
        x = np.asarray(x, dtype=float)
        return x ** 3 - x + self.tilt


def double_well(tilt: float = 0.15) -> DoubleWell:
    """The tilted double well; ``0 < tilt < 2/(3 sqrt 3)`` keeps both minima."""
    check_number("tilt", tilt, low_inclusive=False)
    if tilt >= 2.0 / (3.0 * math.sqrt(3.0)):
        raise ValueError(f"Invalid tilt: {tilt} (must be < 2/(3 sqrt 3) for two minima)")
    roots = np.sort(np.roots([1.0, 0.0, -1.0, tilt]).real)
    return DoubleWell(float(tilt), *(float(r) for r in roots))


def double_well_roll(learning_rate: float, beta: float, starts: Sequence[float], steps: int,
                     tilt: float = 0.15) -> np.ndarray:
    r"""Deterministic momentum (``beta = 0``: gradient descent) from each start on
    :func:`double_well`; returns the final positions (one per start)."""
    well = double_well(tilt)
    beta = _check_beta(beta)
    x = np.array(starts, dtype=float)
    v = np.zeros_like(x)
    for _ in range(_check_int("steps", steps, 1)):
        v = beta * v + well.grad(x)
        x = x - learning_rate * v
    return x


def double_well_escape(learning_rate: float, beta: float, noise: float,
                       seeds: Sequence[int], particles: int, steps: int,
                       tilt: float = 0.15) -> np.ndarray:
    r"""Momentum SGD with gradient :math:`f'(x) + \sigma\xi_t` from the shallow minimum of
    :func:`double_well`, ``particles`` independent runs per seed.

    Returns the fraction of each seed's runs that have escaped, shape
    ``(steps + 1, len(seeds))``: a run counts as escaped from the first step it
    is past the barrier by more than half the way to the global minimum (so a
    jitter on the barrier top does not count).
    """
    well = double_well(tilt)
    beta = _check_beta(beta)
    check_number("noise", noise)
    particles, steps = _check_int("particles", particles, 1), _check_int("steps", steps, 1)
    seeds = list(seeds)
    xi = np.stack([np.random.default_rng(_check_int("seed", s, 0)).standard_normal(
        (steps, particles)) for s in seeds], axis=1)          # (T, S, P)
    line = 0.5 * (well.barrier + well.global_min)
    x = np.full((len(seeds), particles), well.local_min)
    v = np.zeros_like(x)
    escaped = np.zeros(x.shape, dtype=bool)
    out = [escaped.mean(-1)]
    for t in range(steps):
        v = beta * v + well.grad(x) + noise * xi[t]
        x = x - learning_rate * v
        escaped |= x < line
        out.append(escaped.mean(-1))
    return np.array(out)


# --- the race with eta and beta tuned, from several starts -------------------------------------

def race_starts(landscape: Landscape, seeds: Sequence[int], spread: float = 0.2
                ) -> np.ndarray:
    r"""Start points: the landscape's standard start for seed 0, and for every other seed
    the standard start plus a uniform offset in :math:`[-\text{spread}, \text{spread}]^2`."""
    check_number("spread", spread)
    x0 = np.array(landscape.x0, dtype=float)
    return np.array([x0 if s == 0 else
                     x0 + np.random.default_rng(_check_int("seed", s, 0)).uniform(
                         -spread, spread, 2) for s in seeds])


def race_steps(method: str, landscape: Landscape, learning_rates: Sequence[float],
               betas: Sequence[float], starts: np.ndarray, tol: float = 1e-4,
               max_steps: int = 10_000, escape: float = 1e6) -> np.ndarray:
    r"""Steps to :math:`f - f^\star \le` ``tol`` for every (learning rate, :math:`\beta`, start),
    all run at once; shape ``(n_lr, n_beta, n_start)``, ``-1`` where not reached (or
    diverged). Same iterates and stopping rule as :func:`steps_to_reach` (tested)."""
    if method not in METHODS:
        raise ValueError(f"Invalid method: {method!r} (choose 'gd', 'momentum' or 'nesterov')")
    check_number("tol", tol, low_inclusive=False)
    max_steps = _check_int("max_steps", max_steps, 1)
    lrs = np.asarray(learning_rates, dtype=float)
    bs = np.asarray([0.0] if method == "gd" else [_check_beta(b) for b in betas])
    starts = np.asarray(starts, dtype=float).reshape(-1, 2)
    shape = (lrs.size, bs.size, len(starts))
    # one flat entry per run; finished runs are dropped so the loop only pays for live ones
    eta = np.broadcast_to(lrs[:, None, None], shape).ravel()
    beta = np.broadcast_to(bs[None, :, None], shape).ravel()
    x = np.broadcast_to(starts[:, 0], shape).ravel().copy()
    y = np.broadcast_to(starts[:, 1], shape).ravel().copy()
    index = np.arange(x.size)
    vx, vy = np.zeros_like(x), np.zeros_like(y)
    result = np.full(x.size, -1, dtype=int)
    threshold = landscape.min_value + tol
    with np.errstate(all="ignore"):
        for t in range(1, max_steps + 1):
            gx, gy = landscape.grad_fn(x, y)
            vx, vy = beta * vx + gx, beta * vy + gy
            if method == "nesterov":
                x, y = x - eta * (gx + beta * vx), y - eta * (gy + beta * vy)
            else:
                x, y = x - eta * vx, y - eta * vy
            bad = ~(np.isfinite(x) & np.isfinite(y)) | (np.maximum(abs(x), abs(y)) > escape)
            hit = ~bad & (landscape.value_fn(x, y) <= threshold)
            result[index[hit]] = t
            done = hit | bad
            if done.any():
                keep = ~done
                if not keep.any():
                    break
                eta, beta, x, y, vx, vy, index = (a[keep] for a in (eta, beta, x, y, vx, vy, index))
    result = result.reshape(shape)
    return result


def race_run(method: str, landscape: Landscape, learning_rate: float, beta: float,
             starts: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    r"""One (learning rate, :math:`\beta`) cell of :func:`race_steps` from every start, all at
    once, for plotting: returns ``(path, values)`` with shapes ``(steps + 1, n_start, 2)`` and
    ``(steps + 1, n_start)`` (:math:`f(\theta_t) - f^\star`). Runs that leave the
    ``escape`` box are frozen there as NaN."""
    if method not in METHODS:
        raise ValueError(f"Invalid method: {method!r} (choose 'gd', 'momentum' or 'nesterov')")
    steps = _check_int("steps", steps, 0)
    b = 0.0 if method == "gd" else _check_beta(beta)
    starts = np.asarray(starts, dtype=float).reshape(-1, 2)
    x, y = starts[:, 0].copy(), starts[:, 1].copy()
    vx, vy = np.zeros_like(x), np.zeros_like(y)
    path = [np.stack([x, y], -1)]
    with np.errstate(all="ignore"):
        for _ in range(steps):
            gx, gy = landscape.grad_fn(x, y)
            vx, vy = b * vx + gx, b * vy + gy
            if method == "nesterov":
                x, y = x - learning_rate * (gx + b * vx), y - learning_rate * (gy + b * vy)
            else:
                x, y = x - learning_rate * vx, y - learning_rate * vy
            path.append(np.stack([x, y], -1))
    path = np.array(path)
    values = landscape.value_fn(path[..., 0], path[..., 1]) - landscape.min_value
    return path, np.where(np.isfinite(values), values, np.nan)


@dataclass(frozen=True)
class RaceResult:
    """One method's (learning rate, beta) grid on one landscape from several starts.

    Attributes:
        steps: ``(n_lr, n_beta, n_start)`` steps to tolerance (``-1``: not reached).
        learning_rates, betas: the grids (``betas == (0.0,)`` for gradient descent).
        best: ``(i_lr, i_beta)`` with the fewest worst-case steps over the starts among
            the cells that reach the tolerance from every start (``None`` if none does).
    """

    method: str
    learning_rates: tuple[float, ...]
    betas: tuple[float, ...]
    steps: np.ndarray
    best: Optional[tuple[int, int]]

    @property
    def best_steps(self) -> Optional[np.ndarray]:
        """The best cell's steps, one per start."""
        return None if self.best is None else self.steps[self.best]


def tune_race(method: str, landscape: Landscape, learning_rates: Sequence[float],
              betas: Sequence[float], starts: np.ndarray, tol: float = 1e-4,
              max_steps: int = 10_000) -> RaceResult:
    """:func:`race_steps` on the grid; the best cell minimises the worst start's steps."""
    steps = race_steps(method, landscape, learning_rates, betas, starts, tol, max_steps)
    ok = (steps >= 0).all(axis=-1)
    worst = np.where(ok, steps.max(axis=-1), np.iinfo(int).max)
    best = tuple(int(i) for i in np.unravel_index(np.argmin(worst), worst.shape)) if ok.any() else None
    bs = (0.0,) if method == "gd" else tuple(float(b) for b in betas)
    return RaceResult(method, tuple(float(lr) for lr in learning_rates), bs, steps, best)


# --- the chapter's figures (kinds from optbook.figures) ----------------------------------

def momentum_figure(lr_scale: float = 1.0, beta: float = 0.8) -> Explorer:
    r"""Chapter 3's widget with continuous sliders: momentum and Nesterov on three
    landscapes (menu), :math:`\eta` as a multiple of each landscape's base rate
    (log scale, 0.25 to 4) and :math:`\beta \in [0.01, 0.99]` (Nesterov needs :math:`\beta > 0`).

    The landscapes, base rates and step counts are those of
    :data:`EXPLORER_LANDSCAPES`, so the numbers
    match :func:`explorer_runs`.
    """
    choices = []
    for label, (make_landscape, base_lr, steps) in EXPLORER_LANDSCAPES.items():
        choices.append((label, make_landscape(), steps, {"base_lr": base_lr}))
    lr = {"param": "lr_scale", "times": "base_lr"}
    spec = {
        "kind": "paths", "steps": choices[0][2], "escape": 10.0,
        "landscape": landscape_spec(choices[0][1]),
        "choices": [{"label": c[0], "landscape": landscape_spec(c[1]), "steps": c[2],
                     "constants": c[3]} for c in choices],
        "choiceLabel": "landscape",
        "params": [param_spec("lr_scale", "η / base η", 0.25, 4.0, lr_scale, "log"),
                   param_spec("beta", "β", 0.01, 0.99, beta, "linear")],
        "optimizers": [optimizer_entry("momentum", "momentum", {"lr": lr, "beta": {"param": "beta"}}),
                       optimizer_entry("nesterov", "nesterov", {"lr": lr, "beta": {"param": "beta"}})],
        "headline": "η = {lr_scale} × {base_lr}, β = {beta}",
    }
    return spec_figure(spec, title="momentum and Nesterov: learning rate and momentum coefficient",
                       choices=choices)


def heavy_ball_phase_figure(kappa: float = 10.0, steps: int = 80, eta_L: float = 1.0,
                            beta: float = 0.5) -> Explorer:
    r"""Chapter 3: the :math:`(\eta\lambda, \beta)` phase diagram of heavy-ball momentum.

    Along an eigenvector with eigenvalue :math:`\lambda` of a quadratic, heavy
    ball is :math:`x_{t+1} = (1 + \beta - \eta\lambda) x_t - \beta x_{t-1}`; its
    characteristic roots are complex (under-damped) for
    :math:`(1-\sqrt\beta)^2 < \eta\lambda < (1+\sqrt\beta)^2`, real
    (over-damped) otherwise, and the iteration is stable iff
    :math:`\eta\lambda < 2(1+\beta)`; Nesterov's (optbook's form) iff
    :math:`\eta\lambda < 2(1+\beta)/(1+2\beta)`.  In the page, clicking or
    dragging in the diagram sets :math:`\eta L` and :math:`\beta`; beside it,
    momentum and Nesterov run on ``quadratic(kappa)`` with
    :math:`\eta = (\eta L)/L` (the hollow marker is the flat direction,
    :math:`\eta\mu = \eta L/\kappa`).
    """
    land = quadratic(kappa)
    lr = {"param": "eta_L", "times": 1.0 / land.L}
    params = [param_spec("eta_L", "η L", 0.01, 4.5, eta_L, "linear",
                         title="learning rate times the largest curvature L"),
              param_spec("beta", "β", 0.01, 0.99, beta, "linear", title="momentum β")]
    optimizers = [optimizer_entry(m, m, {"lr": lr, "beta": {"param": "beta"}})
                  for m in ("momentum", "nesterov")]
    return phase_figure(land, optimizers, params, kappa=kappa, steps=steps,
                        headline=f"heavy ball and Nesterov on {land.title}: η = (η L)/L, L = {land.L:g}",
                        title=f"phase diagram of heavy-ball momentum; paths on {land.title}")
