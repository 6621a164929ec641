r"""Chapter 1 (最適化の基礎, foundations): the objective, the update, and five obstacles.

Every function here is pure (explicit ``seed``, no global state) and returns
plain NumPy arrays, Python numbers or small dataclasses, so the notebook only
calls and plots, and ``tests/test_foundations.py`` checks each one against a
closed form.

Article notation: parameters :math:`\theta`, empirical risk (経験損失)

.. math:: \mathcal L(\theta) = \frac1N \sum_{i=1}^N \ell(f_\theta(x_i), y_i),

gradient descent (勾配降下法) :math:`\theta_{t+1} = \theta_t - \eta\,\nabla_\theta
\mathcal L(\theta_t)` with learning rate (学習率) :math:`\eta`.

Sections:

* 1.1/1.2 -- a two-parameter model :math:`f_\theta(x) = w x + b` on synthetic
  data: the risk computed two ways, its gradient, gradient descent on it;
* non-convexity -- gradient descent stalling at the saddle (鞍点) of
  :func:`optbook.landscapes.saddle` and noise letting it escape;
* ill-conditioning -- the contraction rate of gradient descent on
  :func:`optbook.landscapes.quadratic`, :math:`\max(|1-\eta\mu|, |1-\eta L|)`,
  and the steps it needs against the condition number;
* high dimension -- how rarely a random symmetric Hessian is positive
  definite (Dauphin et al. 2014), and what storing a Hessian would cost;
* minibatch noise -- the scatter of minibatch gradients around the full one;
* vanishing/exploding gradients -- backpropagated gradient norms layer by
  layer in a deep MLP at several initialisation scales (Glorot & Bengio 2010;
  He et al. 2015), and the forward signal that drives the explosion.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from ..base import apply_updates, check_number, scale_by_learning_rate
from ..figures import Explorer, optimizer_explorer, optimizer_runs
from ..landscapes import Landscape, quadratic, saddle, trajectory
from ..optimizers import sgd

__all__ = [
    # 1.1-1.2 the objective and the update
    "RegressionData", "make_regression_data", "per_example_losses", "empirical_risk",
    "empirical_risk_torch", "risk_gradient", "risk_on_grid", "least_squares_solution",
    "risk_hessian", "risk_landscape", "gradient_descent",
    # non-convexity
    "SaddleRun", "saddle_run", "linear_escape_steps",
    # ill-conditioning
    "contraction_rate_theory", "best_learning_rate", "best_contraction_rate",
    "measured_contraction_rate", "gd_on_quadratic", "gd_steps_to_tolerance",
    # high dimension
    "random_hessian_eigenvalues", "fraction_positive_definite", "hessian_memory_bytes",
    "format_bytes",
    # minibatch noise
    "per_example_gradients", "minibatch_gradients", "minibatch_gradient_variance",
    "minibatch_variance_theory",
    # vanishing / exploding gradients
    "backprop_gradient_norms", "forward_activation_norms",
    # the chapter's figures
    "GD_RATIOS", "gd_regime", "gd_learning_rate_runs", "gd_learning_rate_explorer",
]


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"Invalid {name}: {value!r} (must be an integer >= {low})")
    return int(value)


# --- 1.1 the empirical-risk objective -------------------------------------------------

@dataclass(frozen=True)
class RegressionData:
    """Synthetic 1-D regression data :math:`y_i = w_\\star x_i + b_\\star + \\sigma\\varepsilon_i`.

    ``x`` and ``y`` are float64 torch tensors of shape ``(N,)``.
    """

    x: torch.Tensor
    y: torch.Tensor
    true_w: float
    true_b: float
    noise_std: float


def make_regression_data(n: int = 256, true_w: float = 2.0, true_b: float = -1.0,
                         noise_std: float = 0.5, x_mean: float = 1.0,
                         seed: int = 0) -> RegressionData:
    r"""Draw :math:`x_i \sim \mathcal N(\text{x\_mean}, 1)` and
    :math:`y_i = w_\star x_i + b_\star + \sigma \varepsilon_i`, :math:`\varepsilon_i \sim \mathcal N(0, 1)`.

    A non-zero ``x_mean`` couples :math:`w` and :math:`b` (the risk's level
    sets are tilted ellipses), which makes the two-parameter picture a small
    instance of ill-conditioning.
    """
    n = _check_int("n", n, 2)
    check_number("noise_std", noise_std)
    generator = torch.Generator().manual_seed(_check_int("seed", seed, 0))
    x = x_mean + torch.randn(n, generator=generator, dtype=torch.float64)
    eps = torch.randn(n, generator=generator, dtype=torch.float64)
    y = true_w * x + true_b + noise_std * eps
    return RegressionData(x=x, y=y, true_w=float(true_w), true_b=float(true_b),
                          noise_std=float(noise_std))


def _theta_tensor(theta) -> torch.Tensor:
    theta = torch.as_tensor(theta, dtype=torch.float64)
    if tuple(theta.shape) != (2,):
        raise ValueError(f"Invalid theta: shape {tuple(theta.shape)} (expected (2,) = (w, b))")
    return theta


def per_example_losses(theta, data: RegressionData) -> torch.Tensor:
    r"""The vector :math:`\ell_i = (f_\theta(x_i) - y_i)^2` with :math:`f_\theta(x) = w x + b`."""
    w, b = _theta_tensor(theta)
    return (w * data.x + b - data.y) ** 2


def empirical_risk(theta, data: RegressionData) -> float:
    r""":math:`\mathcal L(\theta) = \frac1N\sum_i \ell_i`, as the mean of :func:`per_example_losses`."""
    return float(per_example_losses(theta, data).mean())


def empirical_risk_torch(theta, data: RegressionData) -> float:
    r"""The same risk the way a training loop computes it: ``nn.Linear(1, 1)`` and ``nn.MSELoss()``."""
    w, b = _theta_tensor(theta)
    model = torch.nn.Linear(1, 1, dtype=torch.float64)
    with torch.no_grad():
        model.weight.fill_(w)
        model.bias.fill_(b)
        prediction = model(data.x[:, None])
        return float(torch.nn.MSELoss()(prediction, data.y[:, None]))


def risk_gradient(theta, data: RegressionData):
    r""":math:`\nabla_\theta \mathcal L(\theta)` by autograd, returned in ``theta``'s kind.

    A NumPy ``theta`` gives a NumPy gradient, a torch ``theta`` a torch one, so
    the function plugs into :func:`gradient_descent` either way.
    """
    is_numpy = isinstance(theta, np.ndarray)
    t = _theta_tensor(theta).detach().clone().requires_grad_(True)
    loss = per_example_losses(t, data).mean()
    (grad,) = torch.autograd.grad(loss, t)
    return grad.numpy() if is_numpy else grad.to(torch.as_tensor(theta).dtype)


def risk_on_grid(W: np.ndarray, B: np.ndarray, data: RegressionData) -> np.ndarray:
    r""":math:`\mathcal L(w, b)` on arrays of :math:`w` and :math:`b`, from the data's moments.

    :math:`\mathcal L = w^2\overline{x^2} + 2wb\,\bar x + b^2 - 2w\,\overline{xy}
    - 2b\,\bar y + \overline{y^2}` (expand the square and average), so a
    200x200 contour grid costs a few array operations instead of 40,000 passes
    over the data.
    """
    W, B = np.asarray(W, dtype=np.float64), np.asarray(B, dtype=np.float64)
    return _risk_from_moments(_moments(data))(W, B)


def _moments(data: RegressionData) -> tuple[float, ...]:
    x, y = data.x.numpy(), data.y.numpy()
    return tuple(float(m) for m in ((x * x).mean(), x.mean(), (x * y).mean(), y.mean(),
                                    (y * y).mean()))


def _risk_from_moments(moments):
    sxx, sx, sxy, sy, syy = moments

    def value(W, B):      # plain arithmetic: NumPy arrays and torch tensors alike
        return W * W * sxx + 2 * W * B * sx + B * B - 2 * W * sxy - 2 * B * sy + syy

    return value


def least_squares_solution(data: RegressionData) -> np.ndarray:
    """The minimiser :math:`\\theta^\\star = (w, b)` of the risk, by ``numpy.linalg.lstsq``."""
    x = data.x.numpy()
    design = np.stack([x, np.ones_like(x)], axis=1)
    solution, *_ = np.linalg.lstsq(design, data.y.numpy(), rcond=None)
    return solution


def risk_hessian(data: RegressionData) -> np.ndarray:
    r"""The (constant) Hessian :math:`\nabla^2\mathcal L = 2\begin{pmatrix}\overline{x^2} & \bar x\\ \bar x & 1\end{pmatrix}`.

    Its eigenvalues are the :math:`\mu` and :math:`L` of the risk: gradient
    descent on it converges for :math:`\eta < 2/L`.
    """
    x = data.x.numpy()
    return 2.0 * np.array([[np.mean(x * x), np.mean(x)], [np.mean(x), 1.0]])


def risk_landscape(data: RegressionData, half_width: float = 3.0) -> Landscape:
    r"""The risk :math:`\mathcal L(w, b)` as an :class:`optbook.landscapes.Landscape`.

    The window is the square of half-width ``half_width`` around the
    least-squares solution, so ``optbook.figures.plotting.contour`` and
    ``optbook.landscapes.trajectory`` work on it like on any test function.
    """
    check_number("half_width", half_width, low_inclusive=False)
    hessian = risk_hessian(data)
    w_star, b_star = least_squares_solution(data)
    min_value = float(risk_on_grid(np.array(w_star), np.array(b_star), data))

    def grad(W, B):
        dw, db = W - w_star, B - b_star       # the risk is quadratic around its minimiser
        return hessian[0, 0] * dw + hessian[0, 1] * db, hessian[1, 0] * dw + hessian[1, 1] * db

    def hessian_diag(W, B):
        return 0 * W + hessian[0, 0], 0 * B + hessian[1, 1]

    eigenvalues = np.linalg.eigvalsh(hessian)
    return Landscape(
        name="risk", title="empirical risk of f(x) = wx + b",
        formula=r"\frac1N\sum_i (w x_i + b - y_i)^2",
        value_fn=_risk_from_moments(_moments(data)), grad_fn=grad,
        hessian_diag_fn=hessian_diag, minima=((float(w_star), float(b_star)),), min_value=min_value,
        xlim=(w_star - half_width, w_star + half_width),
        ylim=(b_star - half_width, b_star + half_width),
        x0=(float(w_star) - 2.5, float(b_star) + 2.5),
        L=float(eigenvalues[-1]), mu=float(eigenvalues[0]),
        reference="synthetic data, optbook.experiments.foundations.make_regression_data")


def gradient_descent(grad_fn, theta0, learning_rate: float, steps: int) -> np.ndarray:
    r"""Iterate :math:`\theta_{t+1} = \theta_t - \eta\,\nabla\mathcal L(\theta_t)` with ``optbook.sgd``.

    ``grad_fn(theta)`` returns the gradient (NumPy or torch, like ``theta0``).
    Returns the path as a float64 NumPy array of shape ``(steps + 1, dim)``.
    """
    steps = _check_int("steps", steps, 0)
    optimizer = sgd(learning_rate)            # validates the learning rate
    theta = theta0
    state = optimizer.init(theta)
    path = [np.array(theta, dtype=np.float64)]
    for _ in range(steps):
        updates, state = optimizer.update(grad_fn(theta), state, theta)
        theta = apply_updates(theta, updates)
        path.append(np.array(theta, dtype=np.float64))
    return np.stack(path)


# --- non-convexity: a saddle point ---------------------------------------------------

@dataclass(frozen=True)
class SaddleRun:
    """Gradient descent on :func:`optbook.landscapes.saddle`, and how long it lingered.

    Attributes:
        path: ``(steps + 1, 2)`` iterates.
        steps_near_saddle: how many iterates lie within ``radius`` of the saddle (0, 0).
        escape_step: first step at which :math:`|y_t| \\ge` ``escape_y`` (the run
            has committed to one of the minima :math:`(0, \\pm1)`), or ``None``.
    """

    path: np.ndarray
    steps_near_saddle: int
    escape_step: Optional[int]


def saddle_run(learning_rate: float = 0.1, steps: int = 400, y0: float = 0.0,
               x0: float = 1.5, noise_std: float = 0.0, seed: Optional[int] = None,
               radius: float = 0.1, escape_y: float = 0.5) -> SaddleRun:
    r"""Run (noisy) gradient descent from :math:`(x_0, y_0)` on
    :math:`f(x, y) = \tfrac12 x^2 + \tfrac14 y^4 - \tfrac12 y^2`.

    With ``noise_std`` :math:`=\sigma > 0` each gradient gets
    :math:`\sigma\,\xi_t`, :math:`\xi_t\sim\mathcal N(0, I_2)`
    (:func:`optbook.landscapes.trajectory`).  On the line :math:`y = 0` the
    :math:`y`-gradient vanishes exactly, so noise-free descent from
    :math:`y_0 = 0` converges to the saddle and never leaves.
    """
    check_number("radius", radius, low_inclusive=False)
    run = trajectory(sgd(learning_rate), saddle(), np.array([x0, y0], dtype=np.float64),
                     steps, noise_std=noise_std, seed=seed)
    distance = np.linalg.norm(run.path, axis=1)
    escaped = np.flatnonzero(np.abs(run.path[:, 1]) >= escape_y)
    return SaddleRun(path=run.path, steps_near_saddle=int((distance < radius).sum()),
                     escape_step=int(escaped[0]) if escaped.size else None)


def linear_escape_steps(y0: float, learning_rate: float, level: float) -> float:
    r"""Steps for :math:`|y|` to grow from :math:`|y_0|` to ``level`` in the linearised dynamics.

    Near the saddle :math:`\partial f/\partial y = y^3 - y \approx -y`, so
    :math:`y_{t+1} \approx (1 + \eta)\, y_t` and
    :math:`t = \ln(\text{level}/|y_0|) / \ln(1 + \eta)`: the stall grows only
    logarithmically as the start approaches the stable manifold, but it is
    infinite on it.
    """
    check_number("learning rate", learning_rate, low_inclusive=False)
    if y0 == 0:
        return math.inf
    return math.log(level / abs(y0)) / math.log1p(learning_rate)


# --- ill-conditioning ------------------------------------------------------------------

def contraction_rate_theory(learning_rate: float, mu: float, L: float) -> float:
    r"""Worst-case per-step factor of gradient descent on a quadratic, :math:`\max(|1-\eta\mu|, |1-\eta L|)`.

    On :math:`f = \tfrac12\theta^\top H\theta` the error along an eigenvector
    with eigenvalue :math:`\lambda \in [\mu, L]` is multiplied by
    :math:`1 - \eta\lambda` each step (Goodfellow et al. 2016, sec. 8.2.3).
    """
    return max(abs(1 - learning_rate * mu), abs(1 - learning_rate * L))


def best_learning_rate(mu: float, L: float) -> float:
    r""":math:`\eta^\star = 2/(L + \mu)`, the step that balances :math:`|1-\eta\mu| = |1-\eta L|`."""
    check_number("mu", mu, low_inclusive=False)
    if L < mu:
        raise ValueError(f"Invalid L: {L} (must be >= mu = {mu})")
    return 2.0 / (L + mu)


def best_contraction_rate(kappa: float) -> float:
    r""":math:`(\kappa - 1)/(\kappa + 1)` with :math:`\kappa = L/\mu`, the rate at :math:`\eta^\star`."""
    check_number("kappa", kappa, low=1.0)
    return (kappa - 1.0) / (kappa + 1.0)


def gd_on_quadratic(kappa: float, learning_rate: float, steps: int, angle: float = 0.0,
                    x0=None):
    """:func:`optbook.landscapes.trajectory` of ``sgd(learning_rate)`` on ``quadratic(kappa)``."""
    land: Landscape = quadratic(kappa, angle)
    return trajectory(sgd(learning_rate), land, x0, steps, escape_factor=math.inf)


def measured_contraction_rate(path: np.ndarray, minimiser=(0.0, 0.0), last: Optional[int] = None
                              ) -> float:
    r"""Per-step rate :math:`(\|\theta_T-\theta^\star\| / \|\theta_{T-k}-\theta^\star\|)^{1/k}` of a path.

    ``last=None`` uses the whole path (:math:`k = T`), the average rate; a
    small ``last`` measures the asymptotic rate at the end of the run.
    """
    error = np.linalg.norm(np.asarray(path) - np.asarray(minimiser), axis=1)
    k = len(error) - 1 if last is None else _check_int("last", last, 1)
    if k < 1 or k > len(error) - 1:
        raise ValueError(f"Invalid last: {last} (path has {len(error) - 1} steps)")
    if error[-1 - k] == 0:
        raise ValueError("path reached the minimiser exactly; the rate is undefined")
    return float((error[-1] / error[-1 - k]) ** (1.0 / k))


def gd_steps_to_tolerance(kappa: float, learning_rate: Optional[float] = None,
                          tol: float = 1e-6, max_steps: int = 1_000_000) -> Optional[int]:
    r"""Steps of gradient descent on ``quadratic(kappa)`` until :math:`\|\theta_t-\theta^\star\| \le` ``tol`` :math:`\|\theta_0-\theta^\star\|`.

    Measured by running the method (``sgd(learning_rate)`` through
    :func:`gd_on_quadratic`, :math:`\mu = 1`, :math:`L = \kappa`, default
    :math:`\eta^\star = 2/(L+\mu)`), doubling the horizon until the tolerance
    is met. ``None`` if it is not met within ``max_steps`` or the error grows.
    """
    check_number("kappa", kappa, low=1.0)
    check_number("tol", tol, low_inclusive=False)
    if not tol < 1:
        raise ValueError(f"Invalid tol: {tol} (must be < 1)")
    max_steps = _check_int("max_steps", max_steps, 1)
    if learning_rate is None:
        learning_rate = best_learning_rate(1.0, kappa)
    steps = min(64, max_steps)
    while True:
        path = gd_on_quadratic(kappa, learning_rate, steps).path
        error = np.linalg.norm(path, axis=1)
        hit = np.flatnonzero(error <= tol * error[0])
        if hit.size:
            return int(hit[0])
        if steps >= max_steps or not np.all(np.isfinite(error)) or error[-1] > error[0]:
            return None
        steps = min(2 * steps, max_steps)


# --- high dimension ---------------------------------------------------------------------

def random_hessian_eigenvalues(dim: int, samples: int, seed: int = 0) -> np.ndarray:
    r"""Eigenvalues of ``samples`` random symmetric matrices :math:`H = (A + A^\top)/2`, :math:`A_{ij}\sim\mathcal N(0,1)`.

    This is the Gaussian orthogonal ensemble (GOE), the model of the Hessian at
    a critical point of a random high-dimensional function used by Dauphin
    et al. (2014) following Bray & Dean (2007).  Returns ``(samples, dim)``,
    each row sorted ascending.
    """
    dim, samples = _check_int("dim", dim, 1), _check_int("samples", samples, 1)
    rng = np.random.default_rng(_check_int("seed", seed, 0))
    eigenvalues = []
    for start in range(0, samples, 20000):             # bounded memory for large batches
        count = min(20000, samples - start)
        A = rng.standard_normal((count, dim, dim))
        eigenvalues.append(np.linalg.eigvalsh((A + A.transpose(0, 2, 1)) / 2))
    return np.concatenate(eigenvalues)


def fraction_positive_definite(dim: int, samples: int = 100000, seed: int = 0) -> float:
    r"""Fraction of random symmetric ``dim`` x ``dim`` matrices with all eigenvalues positive.

    Read each matrix as the Hessian at a critical point: the fraction is the
    chance that the point is a local minimum rather than a saddle.  It is
    :math:`1/2` for ``dim = 1``, :math:`(2-\sqrt2)/4 \approx 0.146` for ``dim = 2``
    and decays like :math:`e^{-c\,\mathrm{dim}^2}` (Dean & Majumdar 2006).
    """
    return float((random_hessian_eigenvalues(dim, samples, seed)[:, 0] > 0).mean())


def hessian_memory_bytes(num_params: int, bytes_per_number: int = 4) -> tuple[int, int]:
    """``(bytes for the parameters, bytes for the full Hessian)``: :math:`n` against :math:`n^2` numbers."""
    n = _check_int("num_params", num_params, 1)
    return n * bytes_per_number, n * n * bytes_per_number


def format_bytes(count: float) -> str:
    """``1536 -> '1.5 KB'`` with decimal prefixes up to yotta (10^24)."""
    units = ["B", "KB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    value, unit = float(count), 0
    while value >= 1000 and unit < len(units) - 1:
        value, unit = value / 1000, unit + 1
    return f"{value:.3g} {units[unit]}"


# --- minibatch noise ---------------------------------------------------------------------

def per_example_gradients(theta, data: RegressionData) -> np.ndarray:
    r"""Rows :math:`\nabla_\theta \ell_i(\theta)`, shape ``(N, 2)``, by ``torch.func.vmap(grad)``."""
    theta = _theta_tensor(theta)

    def loss(t, x, y):
        return (t[0] * x + t[1] - y) ** 2

    grads = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0, 0))(theta, data.x, data.y)
    return grads.numpy()


def minibatch_gradients(per_example: np.ndarray, batch_size: int, num_batches: int,
                        seed: int = 0) -> np.ndarray:
    r"""``num_batches`` minibatch gradients :math:`g_B = \frac1{|B|}\sum_{i\in B}\nabla\ell_i`.

    Each batch is drawn uniformly *without* replacement (like one batch of a
    shuffled epoch), independently of the others.  Returns ``(num_batches, dim)``.
    """
    per_example = np.asarray(per_example, dtype=np.float64)
    n = per_example.shape[0]
    batch_size = _check_int("batch_size", batch_size, 1)
    if batch_size > n:
        raise ValueError(f"Invalid batch_size: {batch_size} (the data set has {n} examples)")
    num_batches = _check_int("num_batches", num_batches, 1)
    rng = np.random.default_rng(_check_int("seed", seed, 0))
    # The |B| smallest of n uniforms = the first |B| of an independent random
    # permutation per batch; argpartition finds that set without sorting.
    uniforms = rng.random((num_batches, n))
    dim = per_example.shape[1]
    if batch_size == n:
        return np.tile(per_example.mean(axis=0), (num_batches, 1))
    index = np.argpartition(uniforms, batch_size - 1, axis=1)[:, :batch_size]
    out = np.empty((num_batches, dim))
    if batch_size >= 128:
        # large batches: one matrix product with the 0/1 membership matrix,
        # far faster than gathering num_batches * |B| rows
        chunk = max(1, 4_000_000 // n)
        for start in range(0, num_batches, chunk):
            member = np.zeros((min(chunk, num_batches - start), n))
            np.put_along_axis(member, index[start:start + chunk], 1.0, axis=1)
            out[start:start + chunk] = member @ per_example / batch_size
        return out
    # small batches: gather the rows, in chunks, so a wide matrix (a network's
    # gradients) never needs num_batches * |B| * dim numbers at once
    chunk = max(1, 2_000_000 // (batch_size * dim))
    for start in range(0, num_batches, chunk):
        out[start:start + chunk] = per_example[index[start:start + chunk]].sum(axis=1) / batch_size
    return out


def minibatch_gradient_variance(per_example: np.ndarray, batch_size: int,
                                num_batches: int = 2000, seed: int = 0) -> float:
    r"""Monte Carlo estimate of :math:`\mathbb E\,\|g_B - \nabla\mathcal L\|^2`."""
    full = np.asarray(per_example, dtype=np.float64).mean(axis=0)
    batches = minibatch_gradients(per_example, batch_size, num_batches, seed)
    return float(((batches - full) ** 2).sum(axis=1).mean())


def minibatch_variance_theory(per_example: np.ndarray, batch_size: int) -> float:
    r"""Exact :math:`\mathbb E\,\|g_B - \nabla\mathcal L\|^2` for sampling without replacement.

    .. math:: \frac{\operatorname{tr}\Sigma}{|B|}\cdot\frac{N - |B|}{N - 1},\qquad
              \Sigma = \frac1N\sum_i (\nabla\ell_i - \nabla\mathcal L)(\nabla\ell_i - \nabla\mathcal L)^\top

    (the finite-population correction of survey sampling; chapter 2 derives the
    :math:`1/|B|` law).
    """
    per_example = np.asarray(per_example, dtype=np.float64)
    n = per_example.shape[0]
    trace_sigma = float(((per_example - per_example.mean(axis=0)) ** 2).sum(axis=1).mean())
    return trace_sigma / batch_size * (n - batch_size) / (n - 1)


# --- vanishing and exploding gradients --------------------------------------------------

_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "linear": lambda z: z}


def _deep_mlp(depth: int, width: int, activation: str, init: str, scale: float,
              batch_size: int, seed: int):
    """Forward and backward pass of the deep MLP of :func:`backprop_gradient_norms`."""
    depth, width = _check_int("depth", depth, 1), _check_int("width", width, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    check_number("scale", scale, low_inclusive=False)
    if activation not in _ACTIVATIONS:
        raise ValueError(f"Invalid activation: {activation!r} (choose from "
                         f"{', '.join(sorted(_ACTIVATIONS))})")
    if init not in ("xavier", "he"):
        raise ValueError(f"Invalid init: {init!r} (choose 'xavier' or 'he')")
    phi = _ACTIVATIONS[activation]
    generator = torch.Generator().manual_seed(_check_int("seed", seed, 0))
    weights = []
    for _ in range(depth):
        W = torch.empty(width, width, dtype=torch.float64)
        if init == "xavier":
            torch.nn.init.xavier_normal_(W, generator=generator)
        else:
            torch.nn.init.kaiming_normal_(W, nonlinearity="relu", generator=generator)
        weights.append((W * scale).requires_grad_(True))
    x = torch.randn(batch_size, width, generator=generator, dtype=torch.float64)
    target = torch.randn(batch_size, width, generator=generator, dtype=torch.float64)

    h, pre_activations, outputs = x, [], [x]
    for W in weights:
        z = h @ W.T
        z.retain_grad()
        pre_activations.append(z)
        h = phi(z)
        outputs.append(h)
    loss = 0.5 * ((h - target) ** 2).sum() / batch_size
    loss.backward()
    return pre_activations, outputs


def backprop_gradient_norms(depth: int = 24, width: int = 128, activation: str = "tanh",
                            init: str = "xavier", scale: float = 1.0, batch_size: int = 64,
                            seed: int = 0) -> np.ndarray:
    r"""Norms :math:`\|\partial\mathcal L/\partial z_l\|_F`, :math:`l = 1..\text{depth}`, of a deep MLP.

    The network is :math:`z_l = W_l h_{l-1}`, :math:`h_l = \phi(z_l)`, with
    :math:`h_0 = x \sim \mathcal N(0, I)` (a batch), ``depth`` square layers of
    ``width`` units, and the loss :math:`\mathcal L = \frac1{2B}\sum\|h_D - y\|^2`
    against random targets :math:`y`.  :math:`\partial\mathcal L/\partial z_l`
    is the signal backpropagation (誤差逆伝播) carries into layer :math:`l`
    (per example it equals the gradient of a bias of that layer); each layer
    multiplies it by :math:`W_{l}^\top \operatorname{diag}\phi'(z_{l-1})`.

    Weights are drawn by ``torch.nn.init.xavier_normal_`` (std
    :math:`\sqrt{2/(n_\text{in}+n_\text{out})}`, Glorot & Bengio 2010) or
    ``kaiming_normal_`` (std :math:`\sqrt{2/n_\text{in}}`, He et al. 2015) and
    then multiplied by ``scale``.  Layer 1 is next to the input.
    """
    pre_activations, _ = _deep_mlp(depth, width, activation, init, scale, batch_size, seed)
    return np.array([float(z.grad.norm()) for z in pre_activations])


def forward_activation_norms(depth: int = 24, width: int = 128, activation: str = "tanh",
                             init: str = "xavier", scale: float = 1.0, batch_size: int = 64,
                             seed: int = 0) -> np.ndarray:
    r"""Norms :math:`\|h_l\|_F`, :math:`l = 0..\text{depth}`, of the forward signal of the same MLP.

    Same network, weights and batch as :func:`backprop_gradient_norms` with the
    same arguments; :math:`h_0` is the input. The loss gradient that enters
    backpropagation, :math:`(h_D - y)/B`, grows with :math:`h_D`: for ReLU,
    which is positively homogeneous, scaling every weight by :math:`s` scales
    :math:`h_l` by exactly :math:`s^l`.
    """
    _, outputs = _deep_mlp(depth, width, activation, init, scale, batch_size, seed)
    return np.array([float(h.detach().norm()) for h in outputs])


# --- the chapter's figures (kinds from optbook.figures) ----------------------------------

GD_RATIOS = (0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 1.0, 1.05, 1.1, 1.25)
"""Default learning rates of :func:`gd_learning_rate_explorer`, as multiples of 2/L."""


def gd_regime(lr: float, L: float) -> str:
    r"""What gradient descent does on a quadratic with largest curvature ``L``.

    Along an eigenvector with eigenvalue :math:`\lambda` one step multiplies the
    coordinate by :math:`1 - \eta\lambda`; the steepest direction decides:
    :math:`\eta < 1/L` monotone convergence, :math:`1/L < \eta < 2/L` convergence
    with alternating sign (zig-zag), :math:`\eta = 2/L` an oscillation that
    never shrinks, :math:`\eta > 2/L` divergence.
    """
    ratio = lr * L
    if math.isclose(ratio, 2.0, rel_tol=1e-9):
        return "oscillates forever (η = 2/L)"
    if ratio > 2.0:
        return "diverges (η > 2/L)"
    if ratio > 1.0 and not math.isclose(ratio, 1.0, rel_tol=1e-9):
        return "converges, zig-zagging (1/L < η < 2/L)"
    return "converges (η ≤ 1/L)"


def gd_learning_rate_runs(lr: float, kappa: float = 10.0, steps: int = 50) -> dict:
    """Gradient descent :math:`\\theta_{t+1} = \\theta_t - \\eta \\nabla f(\\theta_t)` on
    ``landscapes.quadratic(kappa)`` from its standard start (pure; for tests)."""
    return optimizer_runs(lambda lr: {"gd": scale_by_learning_rate(lr)}, {"lr": lr},
                          quadratic(kappa), steps=steps)


def gd_learning_rate_explorer(kappa: float = 10.0, ratios: Sequence[float] = GD_RATIOS,
                              default_ratio: float = 0.5, steps: int = 50) -> Explorer:
    """Chapter 1's widget: gradient descent with learning rate η on the
    ill-conditioned quadratic :math:`f = \\tfrac12(\\theta_1^2 + \\kappa\\theta_2^2)`,
    :math:`L = \\kappa`.

    The slider's values are ``ratios`` times :math:`2/L` (rounded to 4
    significant digits), so the grid straddles the stability limit: converges
    for :math:`\\eta < 2/L`, oscillates at it, diverges above (shown with an X
    and the step).  Each frame is titled with the regime (:func:`gd_regime`).
    """
    land = quadratic(kappa)
    limit = 2.0 / land.L
    lrs = [float(f"{r * limit:.4g}") for r in ratios]
    default = float(f"{default_ratio * limit:.4g}")
    if default not in lrs:
        raise ValueError(f"Invalid default_ratio: {default_ratio} (not one of ratios)")

    def title(lr):
        return f"gradient descent, η = {lr:.4g}, 2/L = {limit:.4g}: {gd_regime(lr, land.L)}"

    explorer = optimizer_explorer(lambda lr: {"gd": scale_by_learning_rate(lr)}, {"lr": lrs},
                                  landscape=land, defaults={"lr": default},
                                  labels={"lr": "learning rate η"}, title=title, steps=steps,
                                  name="gd")
    explorer.title = f"gradient descent on {land.title} (L = {land.L:g}, 2/L = {limit:.4g})"
    if explorer.spec is not None:
        explorer.spec["headline"] = f"gradient descent, η = {{lr}}, 2/L = {limit:.4g}"
        # the regimes of gd_regime, for the page's headline (same 1e-9 tolerance)
        explorer.spec["regimes"] = {"param": "lr", "bands": [
            [1.0 / land.L * (1 + 1e-9), gd_regime(1.0 / land.L, land.L)],
            [limit * (1 - 1e-9), gd_regime(1.5 / land.L, land.L)],
            [limit * (1 + 1e-9), gd_regime(limit, land.L)]],
            "last": gd_regime(3.0 / land.L, land.L)}
    return explorer
