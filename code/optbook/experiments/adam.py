r"""Chapter 5.1-5.3 (Adam / AdamW): bias correction, hyper-parameters, decoupled weight decay.

Every function is pure (explicit ``seed``) and returns NumPy arrays, numbers or
small dataclasses; ``book/05-adam.ipynb`` only calls and plots, and
``tests/test_adam_experiments.py`` checks each function against a closed form
or against ``torch.optim``.

Article notation (Kingma & Ba 2015; Loshchilov & Hutter 2019)::

    m_t = b1 m_{t-1} + (1 - b1) g_t        m_hat_t = m_t / (1 - b1^t)
    v_t = b2 v_{t-1} + (1 - b2) g_t^2      v_hat_t = v_t / (1 - b2^t)
    Adam:   theta_{t+1} = theta_t - eta m_hat_t / (sqrt(v_hat_t) + eps)
    AdamW:  theta_{t+1} = theta_t - eta (m_hat_t / (sqrt(v_hat_t) + eps) + lambda theta_t)

Sections:

* 5.1 -- the first steps of Adam with and without bias correction
  (:func:`adam_first_steps`) and the bias of a zero-started moving average
  (:func:`ema_bias_factor`, :func:`mean_of_ema`);
* 5.2 -- one small measurement per hyper-parameter: the step size in units
  of eta (:func:`step_size_over_lr`), the noise and lag set by beta1
  (:func:`direction_noise`, :func:`sign_flip_lag`), the memory of beta2
  (:func:`scale_jump_response`), eps on tiny gradients
  (:func:`epsilon_direction`);
* 5.3 -- the effective weight decay of Adam + L2 and AdamW per parameter
  (:func:`decay_probe`, :func:`noise_shrink`, :func:`mean_field_shrink_l2`)
  and the learning-rate x weight-decay grid on a small network
  (:func:`train_cell`, :func:`lr_wd_grid`, :func:`best_wd_per_lr`,
  :func:`cells_within`);
* stored reruns -- :func:`lr_wd_grid_rerun`, declared in :data:`RERUNS` (the grid on
  seeds 3-5, and after 50 and 800 steps; ``book/data/reruns/05-lr-wd-grid-*.json``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch.nn import functional as nn_functional

from ..adam import scale_by_adam
from ..base import apply_updates, check_number
from ..figures import Explorer, spec_figure
from ..figures.paths import optimizer_entry
from ..figures.spec import landscape_spec, param_spec
from ..landscapes import quadratic
from ..optimizers import adam, adamw
from .reruns import Rerun
from .training import Dataset, epoch_batches, evaluate, mlp, teacher_classification, train

__all__ = [
    # 5.1
    "constant_gradients", "noisy_gradients", "AdamFirstSteps", "adam_first_steps",
    "ema_bias_factor", "mean_of_ema",
    # 5.2
    "step_size_over_lr", "direction_noise", "direction_noise_theory", "sign_flip_lag",
    "sign_flip_lag_theory", "scale_jump_response", "step_bound", "epsilon_direction",
    # 5.3
    "KINDS", "make_optimizer", "decay_probe", "l2_decay_formula", "noise_shrink",
    "mean_field_shrink_l2", "grid_data", "CellResult", "train_cell", "GridResult",
    "lr_wd_grid", "best_wd_per_lr", "cells_within",
    # several seeds at once
    "SeedRuns", "train_seeds", "SeedGridResult", "lr_wd_grid_seeds", "decay_steps",
    # stored reruns
    "lr_wd_grid_rerun", "RERUNS",
    # the chapter's figures
    "adam_betas_figure",
]


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"Invalid {name}: {value!r} (must be an integer >= {low})")
    return int(value)


# --- 5.1 bias correction ----------------------------------------------------------------

def constant_gradients(value: float, steps: int) -> np.ndarray:
    """``steps`` copies of the scalar gradient ``value`` (float64)."""
    return np.full(_check_int("steps", steps, 1), float(value))


def noisy_gradients(mean: float, std: float, steps: int, seed: int = 0) -> np.ndarray:
    r""":math:`g_t = \mu + \sigma\xi_t`, :math:`\xi_t \sim \mathcal N(0, 1)` i.i.d. (a stationary gradient)."""
    check_number("std", std)
    rng = np.random.default_rng(_check_int("seed", seed, 0))
    return mean + std * rng.standard_normal(_check_int("steps", steps, 1))


@dataclass(frozen=True)
class AdamFirstSteps:
    """Adam's moments on a scalar gradient sequence, step by step (index 0 is t = 1).

    ``m`` and ``v`` are the raw moving averages (the state of
    ``optbook.scale_by_adam``); ``corrected`` and ``uncorrected`` are the
    directions :math:`\\hat m_t/(\\sqrt{\\hat v_t}+\\epsilon)` returned by
    ``scale_by_adam`` with and without ``bias_correction``.
    """

    grads: np.ndarray
    m: np.ndarray
    v: np.ndarray
    corrected: np.ndarray
    uncorrected: np.ndarray
    b1: float
    b2: float
    eps: float

    @property
    def t(self) -> np.ndarray:
        return np.arange(1, len(self.m) + 1)

    @property
    def m_hat(self) -> np.ndarray:
        return self.m / (1 - self.b1 ** self.t)

    @property
    def v_hat(self) -> np.ndarray:
        return self.v / (1 - self.b2 ** self.t)

    def direction(self, correct_m: bool, correct_v: bool) -> np.ndarray:
        """The direction with only the chosen corrections (to see which one matters when)."""
        m = self.m_hat if correct_m else self.m
        v = self.v_hat if correct_v else self.v
        return m / (np.sqrt(v) + self.eps)


def adam_first_steps(grads, b1: float = 0.9, b2: float = 0.999,
                     eps: float = 1e-8) -> AdamFirstSteps:
    """Feed a scalar gradient sequence to ``optbook.scale_by_adam`` (with and without
    bias correction) and record the moments and the directions."""
    grads = np.asarray(grads, dtype=np.float64).ravel()
    out = {}
    for correct in (True, False):
        transform = scale_by_adam(b1, b2, eps, bias_correction=correct)
        state = transform.init(np.zeros(1))
        ms, vs, ds = [], [], []
        for g in grads:
            direction, state = transform.update(np.array([g]), state)
            ms.append(state["mu"][0])
            vs.append(state["nu"][0])
            ds.append(direction[0])
        out[correct] = (np.array(ms), np.array(vs), np.array(ds))
    m, v, corrected = out[True]
    return AdamFirstSteps(grads, m, v, corrected, out[False][2], float(b1), float(b2), float(eps))


def ema_bias_factor(beta: float, t) -> np.ndarray:
    r""":math:`1 - \beta^t`: a zero-started average of a stationary signal has mean
    :math:`(1-\beta^t)\,\mathbb E[g]` at step :math:`t` (the bias-correction theorem)."""
    check_number("beta", beta, high=1.0)
    return 1.0 - beta ** np.asarray(t, dtype=np.float64)


def mean_of_ema(beta: float, steps: int, mean: float = 1.0, std: float = 1.0,
                runs: int = 4000, seed: int = 0, square: bool = False) -> np.ndarray:
    r"""Monte Carlo :math:`\mathbb E[m_t]` (or :math:`\mathbb E[v_t]` with ``square``) over
    ``runs`` independent gradient sequences :math:`g_t = \mu + \sigma\xi_t`, t = 1..steps."""
    check_number("beta", beta, high=1.0)
    steps, runs = _check_int("steps", steps, 1), _check_int("runs", runs, 1)
    rng = np.random.default_rng(_check_int("seed", seed, 0))
    g = mean + std * rng.standard_normal((runs, steps))
    if square:
        g = g * g
    avg = np.zeros(runs)
    out = []
    for t in range(steps):
        avg = beta * avg + (1 - beta) * g[:, t]
        out.append(avg.mean())
    return np.array(out)


# --- 5.2 the hyper-parameters ------------------------------------------------------------

def _run_direction(grads, b1, b2, eps=1e-8) -> np.ndarray:
    """Adam directions (bias-corrected) for a scalar or (steps, n) gradient sequence."""
    grads = np.asarray(grads, dtype=np.float64)
    if grads.ndim == 1:
        grads = grads[:, None]
    transform = scale_by_adam(b1, b2, eps)
    state = transform.init(np.zeros(grads.shape[1]))
    out = []
    for g in grads:
        direction, state = transform.update(g, state)
        out.append(direction)
    return np.array(out)


def step_size_over_lr(lr: float, grad_scale: float, steps: int = 500, b1: float = 0.9,
                      b2: float = 0.999, seed: int = 0) -> float:
    r"""Mean :math:`|\Delta\theta_t|/\eta` of ``optbook.adam(lr)`` on gradients
    :math:`s(0.5 + \xi_t)` (a noisy signal of scale ``grad_scale``).

    Adam's step is :math:`\eta\,\hat m/\sqrt{\hat v}`, a ratio of averages of
    the same gradients, so it does not depend on the scale :math:`s`: the
    learning rate is the step length in parameter units.
    """
    check_number("grad_scale", grad_scale, low_inclusive=False)
    grads = grad_scale * noisy_gradients(0.5, 1.0, steps, seed)
    opt = adam(lr, b1, b2)
    theta = np.zeros(1)
    state = opt.init(theta)
    sizes = []
    for g in grads:
        updates, state = opt.update(np.array([g]), state, theta)
        theta = apply_updates(theta, updates)
        sizes.append(abs(updates[0]))
    return float(np.mean(sizes) / lr)


def direction_noise(b1: float, steps: int = 4000, mean: float = 0.0, std: float = 1.0,
                    b2: float = 0.999, burn_in: int = 1000, seed: int = 0) -> float:
    r"""Standard deviation of Adam's direction on i.i.d. gradients :math:`\mu + \sigma\xi_t`,
    after ``burn_in`` steps (momentum averages the noise away)."""
    d = _run_direction(noisy_gradients(mean, std, steps, seed), b1, b2)[:, 0]
    return float(d[_check_int("burn_in", burn_in, 0):].std())


def direction_noise_theory(b1: float, mean: float = 0.0, std: float = 1.0) -> float:
    r"""For a slow :math:`\hat v \approx \mu^2+\sigma^2`: the EMA of white noise has variance
    :math:`\sigma^2(1-\beta_1)/(1+\beta_1)`, so the direction's standard deviation is
    :math:`\sigma\sqrt{(1-\beta_1)/(1+\beta_1)}/\sqrt{\mu^2+\sigma^2}`."""
    return std * math.sqrt((1 - b1) / (1 + b1)) / math.sqrt(mean ** 2 + std ** 2)


def sign_flip_lag(b1: float, before: int = 1000, after: int = 300, b2: float = 0.999) -> int:
    """Steps after the gradient flips from +1 to -1 until Adam's direction turns negative."""
    grads = np.concatenate([np.ones(before), -np.ones(after)])
    d = _run_direction(grads, b1, b2)[before:, 0]
    negative = np.flatnonzero(d < 0)
    return int(negative[0]) + 1 if negative.size else -1


def sign_flip_lag_theory(b1: float) -> int:
    r"""After a long run at +1, :math:`m` after :math:`k` steps at -1 is
    :math:`2\beta_1^k - 1`: negative from :math:`k > \ln 2/\ln(1/\beta_1)` on."""
    if b1 == 0:
        return 1
    return int(math.floor(math.log(2) / math.log(1 / b1))) + 1


def scale_jump_response(b2: float, jump: float = 10.0, before: int = 2000, after: int = 3000,
                        b1: float = 0.9, tolerance: float = 0.1) -> tuple[float, int]:
    r"""The gradient jumps from 1 to ``jump`` (constant, noise-free) after ``before`` steps.

    Returns ``(peak direction, steps until the direction is back within
    tolerance of 1)``: :math:`\hat m` follows in about :math:`1/(1-\beta_1)`
    steps, :math:`\hat v` in about :math:`1/(1-\beta_2)`, and meanwhile the step
    is too long.  ``-1`` if it never settles within ``after`` steps.
    """
    grads = np.concatenate([np.ones(before), jump * np.ones(after)])
    d = _run_direction(grads, b1, b2)[before:, 0]
    off = np.flatnonzero(np.abs(d - 1) > tolerance)
    settle = int(off[-1]) + 2 if off.size else 0
    return float(d.max()), settle if settle <= after else -1


def step_bound(b1: float, b2: float) -> float:
    r"""Largest possible :math:`|m_t|/\sqrt{v_t}` once the bias factors are 1 (large t).

    By Cauchy-Schwarz on the weights of the two averages,
    :math:`m_t^2 \le v_t\,\frac{(1-\beta_1)^2}{(1-\beta_2)(1-\beta_1^2/\beta_2)}`
    for :math:`\beta_1^2 < \beta_2`, with equality approached when the gradient
    grows geometrically; :math:`\beta_1 = \beta_2` gives exactly 1.
    """
    check_number("b1", b1, high=1.0)
    check_number("b2", b2, high=1.0)
    if b1 * b1 >= b2:
        return math.inf
    return (1 - b1) / math.sqrt((1 - b2) * (1 - b1 * b1 / b2))


def epsilon_direction(grad_scale: float, eps: float, steps: int = 50,
                      b1: float = 0.9, b2: float = 0.999) -> float:
    r"""Adam's direction after ``steps`` constant gradients of size ``grad_scale``:
    exactly :math:`|g|/(|g| + \epsilon)` (1 for ordinary gradients, :math:`g/\epsilon`
    when :math:`|g| \ll \epsilon`)."""
    check_number("eps", eps)
    return float(_run_direction(constant_gradients(grad_scale, steps), b1, b2, eps)[-1, 0])


# --- 5.3 Adam + L2 against AdamW ---------------------------------------------------------

KINDS = ("adam_l2", "adamw")
"""The two ways to add weight decay to Adam (names are optbook.figures.plotting's colours)."""


def make_optimizer(kind: str, lr: float, weight_decay: float, b1: float = 0.9,
                   b2: float = 0.999, eps: float = 1e-8):
    """``optbook.adam(..., weight_decay)`` (L2, decay before Adam) or ``optbook.adamw``."""
    if kind == "adam_l2":
        return adam(lr, b1, b2, eps, weight_decay=weight_decay)
    if kind == "adamw":
        return adamw(lr, b1, b2, eps, weight_decay=weight_decay)
    raise ValueError(f"Invalid kind: {kind!r} (choose from {', '.join(KINDS)})")


def decay_probe(kind: str, history, theta, lr: float, weight_decay: float,
                b2: float = 0.999, eps: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    r"""Per-parameter effective decay of one step with zero loss gradient.

    The optimizer (with :math:`\beta_1 = 0`, so that the probe step holds
    nothing but the decay) first sees the loss gradients ``history``
    (shape ``(steps, n)``) at fixed parameters ``theta``; then one step with
    :math:`\nabla\mathcal L = 0` is taken.  Returns ``(decay, v_hat)``: the
    fraction :math:`-\Delta\theta_i/\theta_i` removed from each parameter and
    the bias-corrected second moment :math:`\hat v_i` of that step.  AdamW
    removes :math:`\eta\lambda` from every parameter; Adam + L2 removes
    :math:`\eta\lambda/(\sqrt{\hat v_i}+\epsilon)` (:func:`l2_decay_formula`).
    """
    opt = make_optimizer(kind, lr, weight_decay, b1=0.0, b2=b2, eps=eps)
    theta = np.asarray(theta, dtype=np.float64)
    state = opt.init(theta)
    for g in np.asarray(history, dtype=np.float64):
        _, state = opt.update(g, state, theta)
    updates, state = opt.update(np.zeros_like(theta), state, theta)
    adam_state = state[1] if kind == "adam_l2" else state[0]
    t = adam_state["count"]
    v_hat = adam_state["nu"] / (1 - b2 ** t)
    return -updates / theta, v_hat


def l2_decay_formula(v_hat, lr: float, weight_decay: float, eps: float = 1e-8) -> np.ndarray:
    r""":math:`\eta\lambda/(\sqrt{\hat v}+\epsilon)`: the decay per step that L2 gets inside Adam."""
    return lr * weight_decay / (np.sqrt(np.asarray(v_hat, dtype=np.float64)) + eps)


def noise_shrink(kind: str, scales: Sequence[float], lr: float = 1e-2,
                 weight_decay: float = 0.1, steps: int = 1000, per_scale: int = 100,
                 b1: float = 0.9, b2: float = 0.999, seed: int = 0) -> np.ndarray:
    r"""Shrink factor :math:`\bar\theta_T/\theta_0` per gradient scale under pure-noise gradients.

    ``per_scale`` parameters per scale :math:`s` start at 1 and receive loss
    gradients :math:`s\,\xi_t` with random signs :math:`\xi_t = \pm1` (zero
    mean: the loss does not care where the parameter sits), so only the decay
    moves them on average.  Returns the mean final value per scale,
    shape ``(len(scales),)``.  Same noise for both kinds (same ``seed``).
    """
    scales = np.asarray(scales, dtype=np.float64)
    steps, per_scale = _check_int("steps", steps, 1), _check_int("per_scale", per_scale, 1)
    s = np.repeat(scales, per_scale)
    rng = np.random.default_rng(_check_int("seed", seed, 0))
    signs = rng.choice([-1.0, 1.0], size=(steps, s.size))
    opt = make_optimizer(kind, lr, weight_decay, b1, b2)
    theta = np.ones(s.size)
    state = opt.init(theta)
    for t in range(steps):
        updates, state = opt.update(s * signs[t], state, theta)
        theta = apply_updates(theta, updates)
    return theta.reshape(len(scales), per_scale).mean(axis=1)


def mean_field_shrink_l2(scale: float, lr: float = 1e-2, weight_decay: float = 0.1,
                         steps: int = 1000, eps: float = 1e-8) -> float:
    r"""Predicted shrink of Adam + L2 in :func:`noise_shrink`, ignoring fluctuations.

    The total gradient is :math:`s\xi_t + \lambda\theta`, so
    :math:`\hat v \approx s^2 + \lambda^2\theta^2` and the mean of
    :math:`\hat m` is :math:`\lambda\theta`; iterate
    :math:`\theta \leftarrow \theta\,(1 - \eta\lambda/(\sqrt{s^2+\lambda^2\theta^2}+\epsilon))`
    (floored at 0: once the decay dominates, Adam's steps have length about
    :math:`\eta`, and :math:`\theta` stays near 0 within one step).
    """
    theta = 1.0
    for _ in range(_check_int("steps", steps, 1)):
        theta = max(theta * (1 - lr * weight_decay
                             / (math.sqrt(scale ** 2 + (weight_decay * theta) ** 2) + eps)), 0.0)
    return theta


# --- 5.3 the learning-rate x weight-decay grid ---------------------------------------------

def grid_data(n_train: int = 256, label_noise: float = 0.2, seed: int = 0) -> Dataset:
    """The grid's data: ``n_train`` noisy-label training examples (a fraction
    ``label_noise`` flipped), 1024 clean ones for validation, 20 inputs, 4 classes
    (``training.teacher_classification``): few examples, so a small MLP overfits fast."""
    return teacher_classification(n_train=n_train, n_val=1024, dim=20, classes=4,
                                  label_noise=label_noise, seed=seed)


@dataclass
class CellResult:
    """One training run of the grid."""

    final_val_loss: float
    final_val_accuracy: float
    final_train_loss: float               # full training set, noisy labels
    norm_steps: np.ndarray                # steps at which ||theta|| was recorded (0 = init)
    weight_norms: np.ndarray              # global L2 norm of all parameters
    diverged: bool = False


def train_cell(kind: str, lr: float, weight_decay: float, data: Dataset, *, steps: int = 300,
               batch_size: int = 64, hidden: int = 32, record_every: int = 10,
               seed: int = 0) -> CellResult:
    """Train ``training.mlp(hidden, depth=2)`` with ``optbook.torch.Adam(weight_decay)`` (L2)
    or ``optbook.torch.AdamW`` for ``steps`` minibatch steps of cross-entropy.

    Model initialisation and batch order depend only on ``seed``, so every
    cell of the grid starts from the same weights and sees the same batches.
    Every parameter (biases included) is decayed, as with a plain
    ``torch.optim`` constructor call.
    """
    from ..torch import Adam, AdamW

    if kind not in KINDS:
        raise ValueError(f"Invalid kind: {kind!r} (choose from {', '.join(KINDS)})")
    steps = _check_int("steps", steps, 1)
    record_every = _check_int("record_every", record_every, 1)
    model = mlp(data.x_train.shape[1], data.classes, hidden=hidden, depth=2, seed=seed)
    cls = Adam if kind == "adam_l2" else AdamW
    optimizer = cls(model.parameters(), lr=lr, weight_decay=weight_decay)
    norm_steps, norms = [0], [_global_norm(model)]

    def record(t):  # called by train() after step t (counted from 0)
        if (t + 1) % record_every == 0:
            norm_steps.append(t + 1)
            norms.append(_global_norm(model))

    history = train(model, optimizer, data, steps=steps, batch_size=batch_size,
                    eval_every=steps, seed=seed, on_step=record)
    val_loss, val_acc = evaluate(model, data.x_val, data.y_val)
    train_loss, _ = evaluate(model, data.x_train, data.y_train)
    return CellResult(val_loss, val_acc, train_loss, np.array(norm_steps), np.array(norms),
                      history.diverged or not math.isfinite(val_loss))


@torch.no_grad()
def _global_norm(model: torch.nn.Module) -> float:
    return float(torch.sqrt(sum((p ** 2).sum() for p in model.parameters())))


@dataclass
class GridResult:
    """``val_loss[kind]`` has shape ``(len(lrs), len(wds))``; ``cells[kind][i][j]`` the runs."""

    lrs: tuple
    wds: tuple
    val_loss: dict = field(default_factory=dict)
    cells: dict = field(default_factory=dict)


def lr_wd_grid(lrs: Sequence[float], wds: Sequence[float], data: Dataset,
               kinds: Sequence[str] = KINDS, **train_kwargs) -> GridResult:
    """:func:`train_cell` at every (learning rate, weight decay) for each kind."""
    result = GridResult(tuple(lrs), tuple(wds))
    for kind in kinds:
        cells = [[train_cell(kind, lr, wd, data, **train_kwargs) for wd in wds] for lr in lrs]
        result.cells[kind] = cells
        result.val_loss[kind] = np.array([[c.final_val_loss for c in row] for row in cells])
    return result


def best_wd_per_lr(val_loss: np.ndarray, wds: Sequence[float]) -> list:
    """For each learning rate (row), the weight decay with the lowest validation loss."""
    return [wds[j] for j in np.nanargmin(np.asarray(val_loss), axis=1)]


def cells_within(val_loss: np.ndarray, fraction: float, reference: float | None = None) -> int:
    """How many cells have a loss at most ``(1 + fraction) * reference``
    (default reference: the grid's own best)."""
    check_number("fraction", fraction)
    val_loss = np.asarray(val_loss)
    best = np.nanmin(val_loss) if reference is None else reference
    return int((val_loss <= (1 + fraction) * best).sum())


# --- several seeds in one run ------------------------------------------------------------

@dataclass
class SeedRuns:
    """One training setting run on several seeds at once (index ``s`` = ``seeds[s]``)."""

    seeds: tuple
    final_val_loss: np.ndarray       # (seeds,)
    final_train_loss: np.ndarray     # (seeds,) full training set (noisy labels)
    norm_steps: np.ndarray           # steps at which the norms were recorded (0 = init)
    weight_norms: np.ndarray         # (seeds, len(norm_steps)) global L2 norm per seed
    layer_norms: np.ndarray          # (seeds, len(norm_steps), tensors) ||theta|| per tensor
    update_norms: np.ndarray         # (seeds, len(norm_steps) - 1, tensors) ||Δθ|| of that step
    names: list                      # tensor names, as in ``mlp(...).named_parameters()``
    val_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    val_curve: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (seeds, val_steps)

    @property
    def diverged(self) -> np.ndarray:
        return ~np.isfinite(self.final_val_loss)


class _StackedMLP:
    """``len(seeds)`` copies of ``training.mlp`` evaluated together with batched matmuls.

    Copy ``s`` starts from exactly the weights of ``mlp(..., seed=seeds[s])``.
    With ``shared=True`` every layer's weights of all copies are one leaf tensor
    (stacked along dim 0): correct only for optimizers that act element by
    element (SGD, Adam, AdamW, Lion), and the cheapest. With ``shared=False``
    each copy keeps its own leaf tensors and they are stacked inside the
    forward pass, so per-tensor rules (LAMB's trust ratio, Adafactor's
    factored moments) see one copy's tensor, exactly as in separate runs.
    """

    def __init__(self, in_dim, out_dim, hidden, depth, seeds, shared):
        models = [mlp(in_dim, out_dim, hidden=hidden, depth=depth, seed=s) for s in seeds]
        self.names = [n for n, _ in models[0].named_parameters()]
        self.shared = shared
        # per copy, per tensor: weights stored as (in, out) so that x @ W works
        per_copy = [[p.detach().T.clone() if p.ndim == 2 else p.detach().clone()[None, :]
                     for _, p in m.named_parameters()] for m in models]
        if shared:
            self.leaves = [torch.stack([c[j] for c in per_copy]).requires_grad_()
                           for j in range(len(self.names))]
        else:
            self.copies = [[t.requires_grad_() for t in c] for c in per_copy]
            self.leaves = [t for c in self.copies for t in c]

    def tensors(self):
        """Per tensor, the stacked (copies, ...) view used by the forward pass."""
        if self.shared:
            return self.leaves
        return [torch.stack([c[j] for c in self.copies]) for j in range(len(self.names))]

    def forward(self, x):                         # x: (copies, batch, in)
        tensors = self.tensors()
        h = x
        for layer in range(0, len(tensors), 2):
            h = torch.baddbmm(tensors[layer + 1], h, tensors[layer])
            if layer + 2 < len(tensors):
                h = torch.relu(h)
        return h

    @torch.no_grad()
    def tensor_norms(self) -> np.ndarray:         # (copies, tensors)
        return _copy_norms(self.tensors())

    @torch.no_grad()
    def snapshot(self):
        return [t.detach().clone() for t in self.tensors()]


def _copy_norms(tensors) -> np.ndarray:
    """``(copies, tensors)`` L2 norms of each copy's slice of each stacked tensor, in one pass."""
    return torch.stack([t.reshape(len(t), -1).norm(dim=1) for t in tensors],
                       dim=1).numpy().astype(np.float64)


def _stacked_loss(logits, y):
    """Sum over copies of each copy's mean cross-entropy: copy s's gradient is its own."""
    return nn_functional.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(1).sum()


def train_seeds(make_optimizer, datasets: Sequence[Dataset], seeds: Sequence[int], *,
                steps: int, batch_size: int, hidden: int = 32, depth: int = 2,
                shared: bool = True, record_every: int = 10,
                eval_every: int | None = None) -> SeedRuns:
    """Train one ``mlp(hidden, depth)`` per seed, all in one loop; ``make_optimizer(params)``.

    Copy ``s`` trains on ``datasets[s]`` from the initial weights of
    ``mlp(..., seed=seeds[s])`` with the minibatch order of
    ``training.train(..., seed=seeds[s])``: the same run as :func:`train_cell`
    with that seed, done for all seeds with batched matrix products (see
    :class:`_StackedMLP` for when ``shared=True`` is allowed). Records the
    global and per-tensor weight norms and the norm of each tensor's update
    every ``record_every`` steps, and, with ``eval_every``, each copy's
    validation loss after every ``eval_every``-th step (``val_steps``, ``val_curve``;
    a step at which the loss became non-finite ends the run, as in ``training.train``).
    """
    seeds = tuple(_check_int("seed", s, 0) for s in seeds)
    if len(seeds) < 1 or len(datasets) != len(seeds):
        raise ValueError(f"Invalid datasets: {len(datasets)} for {len(seeds)} seeds "
                         "(need one per seed, at least one)")
    steps = _check_int("steps", steps, 1)
    record_every = _check_int("record_every", record_every, 1)
    if eval_every is not None:
        eval_every = _check_int("eval_every", eval_every, 1)
    first = datasets[0]
    net = _StackedMLP(first.x_train.shape[1], first.classes, hidden, depth, seeds, shared)
    optimizer = make_optimizer(net.leaves)
    x_train = torch.stack([d.x_train for d in datasets])
    y_train = torch.stack([d.y_train for d in datasets])
    batches = [epoch_batches(d.n_train, batch_size, torch.Generator().manual_seed(s))
               for d, s in zip(datasets, seeds)]
    rows = torch.arange(len(seeds))[:, None]
    norm_steps, layer_norms, update_norms = [0], [net.tensor_norms()], []
    x_val = torch.stack([d.x_val for d in datasets])
    y_val = torch.stack([d.y_val for d in datasets])
    val_steps, val_curve = [], []

    @torch.no_grad()
    def losses(x, y):
        out = nn_functional.cross_entropy(net.forward(x).transpose(1, 2), y,
                                          reduction="none").mean(1)
        return out.numpy().astype(np.float64)

    before = net.snapshot()
    for t in range(steps):
        idx = torch.stack([next(b) for b in batches])
        optimizer.zero_grad()
        loss = _stacked_loss(net.forward(x_train[rows, idx]), y_train[rows, idx])
        if not torch.isfinite(loss):
            break
        loss.backward()
        optimizer.step()
        if (t + 1) % record_every == 0:
            after = net.snapshot()
            norm_steps.append(t + 1)
            layer_norms.append(net.tensor_norms())
            update_norms.append(_copy_norms([a - b for a, b in zip(after, before)]))
        if (t + 2) % record_every == 0:      # the next step is recorded: keep its start
            before = net.snapshot()
        if eval_every is not None and ((t + 1) % eval_every == 0 or t + 1 == steps):
            val_steps.append(t + 1)
            val_curve.append(losses(x_val, y_val))
    val = losses(x_val, y_val)
    train_loss = losses(x_train, y_train)
    layer = np.stack(layer_norms, axis=1)                       # (seeds, records, tensors)
    updates = (np.stack(update_norms, axis=1) if update_norms
               else np.zeros((len(seeds), 0, len(net.names))))
    curve = (np.stack(val_curve, axis=1) if val_curve
             else np.zeros((len(seeds), 0)))                     # (seeds, val_steps)
    return SeedRuns(seeds, val, train_loss, np.array(norm_steps),
                    np.sqrt((layer ** 2).sum(axis=2)), layer, updates, net.names,
                    np.array(val_steps, dtype=int), curve)


@dataclass
class SeedGridResult:
    """``val_loss[kind]`` has shape ``(seeds, len(lrs), len(wds))``; ``runs[kind][i][j]``."""

    lrs: tuple
    wds: tuple
    seeds: tuple
    val_loss: dict = field(default_factory=dict)
    runs: dict = field(default_factory=dict)


def lr_wd_grid_seeds(lrs: Sequence[float], wds: Sequence[float], seeds: Sequence[int] = (0, 1, 2),
                     kinds: Sequence[str] = KINDS, *, n_train: int = 256,
                     label_noise: float = 0.2, steps: int = 200, batch_size: int = 32,
                     hidden: int = 32, record_every: int = 10) -> SeedGridResult:
    """The learning-rate x weight-decay grid, every cell on every seed.

    Seed ``s`` draws its own data (``grid_data(seed=s)``), initial weights and
    batch order; each cell is :func:`train_cell` (``optbook.torch.Adam`` with
    L2 or ``optbook.torch.AdamW``, every parameter decayed) for each seed.
    """
    from ..torch import Adam, AdamW

    seeds = tuple(seeds)
    if len(seeds) < 1:
        raise ValueError("Invalid seeds: () (need at least one)")
    datasets = [grid_data(n_train, label_noise, seed=s) for s in seeds]
    result = SeedGridResult(tuple(lrs), tuple(wds), seeds)
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"Invalid kind: {kind!r} (choose from {', '.join(KINDS)})")
        cls = Adam if kind == "adam_l2" else AdamW
        runs = [[train_seeds(lambda p, lr=lr, wd=wd: cls(p, lr=lr, weight_decay=wd), datasets,
                             seeds, steps=steps, batch_size=batch_size, hidden=hidden,
                             record_every=record_every) for wd in wds] for lr in lrs]
        result.runs[kind] = runs
        result.val_loss[kind] = np.stack([np.array([[r.final_val_loss[s] for r in row]
                                                    for row in runs])
                                          for s in range(len(seeds))])
    return result


def decay_steps(lrs: Sequence[float], wds: Sequence[float]) -> np.ndarray:
    r"""AdamW's decay time :math:`1/(\eta\lambda)` in steps, shape ``(len(lrs), len(wds))``:
    with no loss gradient a weight shrinks by :math:`e^{-1}` in about that many steps."""
    lrs, wds = np.asarray(lrs, dtype=np.float64), np.asarray(wds, dtype=np.float64)
    return 1.0 / np.outer(lrs, wds)


# --- stored reruns (scripts/reruns.py; book/data/reruns/05-*.json) -------------------------
# The grid of 5.3 on other seeds and at other run lengths: more than the notebook's
# minute allows. 05-adam prints the stored files next to the claims they support.

GRID_LRS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
GRID_WDS = (1e-3, 1e-2, 1e-1, 1.0, 10.0)


def lr_wd_grid_rerun(lrs: Sequence[float], wds: Sequence[float], seeds: Sequence[int],
                     steps: int, batch_size: int = 32, hidden: int = 32) -> dict:
    """:func:`lr_wd_grid_seeds` as a stored rerun: ``val_loss[kind][s][i][j]`` for seed
    ``seeds[s]``, learning rate ``lrs[i]`` and weight decay ``wds[j]`` (weight norms are
    recorded only at the end: they are not stored)."""
    grid = lr_wd_grid_seeds(lrs, wds, seeds, steps=steps, batch_size=batch_size,
                            hidden=hidden, record_every=steps)
    return {"lrs": list(grid.lrs), "wds": list(grid.wds), "seeds": list(grid.seeds),
            "steps": steps, "val_loss": {kind: grid.val_loss[kind] for kind in KINDS}}


RERUNS = (
    Rerun(name="05-lr-wd-grid-seeds-3-5", chapter="05-adam",
          claim="The η × λ grid of Adam + L2 and AdamW (200 steps) on seeds 3-5: do the "
                "collapse of L2 at λ ≥ 0.1, AdamW's gap at large η and its best cell hold?",
          function="adam:lr_wd_grid_rerun",
          params={"lrs": GRID_LRS, "wds": GRID_WDS, "seeds": (3, 4, 5), "steps": 200,
                  "batch_size": 32, "hidden": 32},
          minutes=0.3),
    Rerun(name="05-lr-wd-grid-50-steps", chapter="05-adam",
          claim="The η × λ grid on seeds 0-2 after 50 steps: does the best λ per η stay "
                "(1 for AdamW, 0.01 for Adam + L2) where ηλT is large enough?",
          function="adam:lr_wd_grid_rerun",
          params={"lrs": GRID_LRS, "wds": GRID_WDS, "seeds": (0, 1, 2), "steps": 50,
                  "batch_size": 32, "hidden": 32},
          minutes=0.1),
    Rerun(name="05-lr-wd-grid-800-steps", chapter="05-adam",
          claim="The η × λ grid on seeds 0-2 after 800 steps: does the best λ per η stay "
                "(1 for AdamW, 0.01 for Adam + L2) where ηλT is large enough?",
          function="adam:lr_wd_grid_rerun",
          params={"lrs": GRID_LRS, "wds": GRID_WDS, "seeds": (0, 1, 2), "steps": 800,
                  "batch_size": 32, "hidden": 32},
          minutes=1.0),
)
"""The chapter's stored reruns (``make reruns RERUNS=<name>``)."""


# --- the chapter's figures (kinds from optbook.figures) ----------------------------------

def adam_betas_figure(lr: float = 0.05, steps: int = 200, kappa: float = 50.0,
                      angle: float = 0.6) -> Explorer:
    r"""Chapter 5.1: Adam's :math:`\beta_1` and :math:`\beta_2` on a rotated
    ill-conditioned quadratic, where both visibly matter.

    Sliders: :math:`\eta` (log scale), :math:`\beta_1 \in [0, 0.995]` and
    :math:`\beta_2 \in [0.5, 0.9999]` (on a log scale of :math:`1-\beta`).
    Adam with and without bias correction at the same settings: with
    :math:`\beta_2` near 1 the uncorrected :math:`v_t` starts near 0, so the
    first steps are far larger than :math:`\eta`.
    """
    land = quadratic(kappa, angle)
    args = {"lr": {"param": "lr"}, "b1": {"param": "b1"}, "b2": {"param": "b2"}}
    spec = {
        "kind": "paths", "landscape": landscape_spec(land), "steps": int(steps), "escape": 10.0,
        "params": [param_spec("lr", "η", 0.005, 0.5, lr, "log"),
                   param_spec("b1", "β₁", 0.0, 0.995, 0.9, "linear"),
                   param_spec("b2", "β₂", 0.5, 0.9999, 0.999, "log1m")],
        "optimizers": [optimizer_entry("adam", "adam", args),
                       optimizer_entry("adam_nobc", "adam", {**args, "bias_correction": False},
                                        label="Adam, no bias correction", color="#777777")],
        "headline": "Adam: η = {lr}, β₁ = {b1}, β₂ = {b2}",
    }
    return spec_figure(spec, title=f"Adam's β₁ and β₂ on {land.title}", landscape=land)
