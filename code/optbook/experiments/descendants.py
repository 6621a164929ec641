r"""Chapter 5, second half (Adamの派生, Adam's descendants): AdaFactor, LAMB, Lion, Sophia.

Every function here is pure (explicit ``seed``), uses the optimizers of
:mod:`optbook` / :mod:`optbook.torch` unchanged, and returns NumPy arrays,
numbers or small dataclasses, so that the notebook only calls and plots and
``tests/test_descendants_experiments.py`` can check each one against a closed
form or an independent transcription of the published update.

Sections:

* AdaFactor (Shazeer & Stern 2018) -- :func:`factored_second_moment` (the
  rank-1 reconstruction :math:`V = R C / \operatorname{mean}(R)` the library
  computes), :func:`state_bytes` / :func:`state_bytes_per_parameter` (bytes of
  the tensors in ``optimizer.state``) and :func:`memory_after_one_step`;
* LAMB (You et al. 2020) -- :func:`lamb_trust_ratios` (per-layer
  :math:`\|\theta\|/\|u\|` recorded during training) and
  :func:`batch_scaling_run` (equal epochs, growing batch, scaled learning rate);
* Lion (Chen et al. 2023) -- :func:`update_rms` (RMS of the step divided by
  :math:`\eta`, per step) and :func:`decay_factor`;
* Sophia (Liu et al. 2023) -- :func:`sophia_landscape_run` (the clipped,
  Hessian-preconditioned step on a 2-D landscape) and
  :func:`sophia_clip_fraction_run` (the common task with a GNB or Hutchinson
  estimate every ``k`` steps);
* the comparison -- :data:`COMPARISON`, :func:`make_optimizer`,
  :func:`comparison_run`, :func:`tune_on_seeds`;
* stored reruns -- :func:`adafactor_ablation_rerun` and :func:`comparison_rerun`,
  declared in :data:`RERUNS` (other seeds, ten times the steps;
  ``book/data/reruns/05-*.json``).

The common task is :func:`optbook.experiments.training.teacher_classification`
(20 inputs, 4 classes, 2048 training examples) with
``mlp(20, 4, hidden=64, depth=2)``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .. import torch as otorch
from ..adafactor import scale_by_factored_rms
from ..base import apply_updates, check_number
from ..landscapes import Landscape
from ..sophia import sophia
from .reruns import Rerun
from .training import Dataset, History, epoch_batches, mlp, teacher_classification, train

__all__ = [
    # the common task
    "TASK", "task_data", "task_model",
    # AdaFactor
    "factored_second_moment", "relative_error", "state_bytes", "state_bytes_per_parameter",
    "memory_after_one_step",
    # LAMB
    "TrustRatioRun", "lamb_trust_ratios", "BatchScalingResult", "batch_scaling_run",
    "BATCH_OPTIMIZERS", "BatchSweep", "batch_sweep", "LayerStepRatios", "layer_step_ratios",
    "layer_step_ratios_and_norms",
    # Lion
    "update_rms", "decay_factor",
    # Sophia
    "SophiaPath", "sophia_landscape_run", "saddle_landscape", "diagonal_newton_path",
    "SophiaTaskRun", "sophia_clip_fraction_run", "hutchinson_variance",
    # comparison
    "OptimizerSpec", "COMPARISON", "make_optimizer", "RunResult", "comparison_run",
    "SeedTuning", "tune_on_seeds",
    # AdaFactor's ablation
    "ADAFACTOR_ARMS", "AdafactorAblation", "adafactor_ablation",
    # stored reruns
    "adafactor_ablation_rerun", "comparison_rerun", "RERUNS",
]

TASK = dict(in_dim=20, out_dim=4, hidden=64, depth=2)
"""The common task's network: ``mlp(20, 4, hidden=64, depth=2)`` (5,764 parameters)."""


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"Invalid {name}: {value!r} (must be an integer >= {low})")
    return int(value)


def task_data(seed: int = 0) -> Dataset:
    """The common data set: ``teacher_classification(seed=seed)`` with its defaults."""
    return teacher_classification(seed=seed)


def task_model(seed: int = 0, hidden: int = TASK["hidden"]) -> nn.Sequential:
    """The common network, ``mlp(20, 4, hidden, depth=2)``, initialised from ``seed``."""
    return mlp(TASK["in_dim"], TASK["out_dim"], hidden=hidden, depth=TASK["depth"], seed=seed)


# --- AdaFactor ---------------------------------------------------------------------------

def factored_second_moment(grad: torch.Tensor) -> torch.Tensor:
    r"""The n x m matrix :math:`V = R\,C/\operatorname{mean}(R)` AdaFactor uses after one step.

    Runs one step of :func:`optbook.scale_by_factored_rms` on ``grad`` and
    rebuilds :math:`V` from the stored row and column statistics. At the
    first step :math:`\hat\beta_{2,1} = 1 - 1^{-0.8} = 0`, so
    :math:`R_i = \operatorname{mean}_j G_{ij}^2` and
    :math:`C_j = \operatorname{mean}_i G_{ij}^2` exactly: :math:`V` is the
    rank-1 approximation of :math:`G^2` from its row and column means, and
    it equals :math:`G^2` whenever :math:`G^2` has rank 1.
    """
    if grad.ndim != 2:
        raise ValueError(f"Invalid grad: shape {tuple(grad.shape)} (expected a matrix)")
    transform = scale_by_factored_rms(eps1=0.0)
    _, state = transform.update(grad, transform.init(grad))
    row, col = state["moments"]["row"], state["moments"]["col"]
    return row * col / row.mean()


def relative_error(approx, exact) -> float:
    r""":math:`\|A - E\|_F / \|E\|_F`."""
    approx, exact = torch.as_tensor(approx), torch.as_tensor(exact)
    return float(torch.linalg.norm(approx - exact) / torch.linalg.norm(exact))


def _tensor_bytes(obj) -> int:
    """Bytes of every tensor inside nested dicts, lists and tuples (numbers count 0)."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def state_bytes_per_parameter(optimizer: torch.optim.Optimizer,
                              named_parameters) -> dict[str, int]:
    """``{name: bytes of the tensors in optimizer.state[p]}``, in the model's order.

    Python numbers in the state (optbook's step counts) are not tensors and
    count 0 bytes; ``torch.optim.Adam`` keeps its step as a 4-byte tensor.
    """
    return {name: _tensor_bytes(optimizer.state.get(p, {})) for name, p in named_parameters}


def state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Total bytes of the tensors in ``optimizer.state``."""
    return sum(_tensor_bytes(s) for s in optimizer.state.values())


def memory_after_one_step(make: Callable, model: nn.Module, data: Dataset,
                          batch_size: int = 64) -> dict[str, int]:
    """One step of ``make(model.parameters())`` on a minibatch, then its state bytes per tensor.

    State is created lazily at the first step, so one step is what it takes
    to see the optimizer's memory. The model is trained in place.
    """
    optimizer = make(model.parameters())
    loss = nn.functional.cross_entropy(model(data.x_train[:batch_size]),
                                       data.y_train[:batch_size])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return state_bytes_per_parameter(optimizer, model.named_parameters())


# --- LAMB --------------------------------------------------------------------------------

@dataclass
class TrustRatioRun:
    """LAMB's per-tensor trust ratios :math:`\\|\\theta_t\\|/\\|u_t\\|`, one row per step.

    ``names`` label the columns (``"0.weight"``, ...); ``step_ratio`` is
    :math:`\\|\\theta_{t+1}-\\theta_t\\| / (\\eta\\|\\theta_t\\|)`, which LAMB makes 1.
    """

    names: list[str]
    ratios: np.ndarray          # (steps, tensors)
    step_ratio: np.ndarray      # (steps, tensors)
    history: History


def lamb_trust_ratios(batch_size: int = 512, lr: float = 0.01, steps: int = 100,
                      weight_decay: float = 0.01, seed: int = 0) -> TrustRatioRun:
    r"""Train the common task with :class:`optbook.torch.LAMB` and record every trust ratio.

    After each step the Adam direction is rebuilt from the optimizer's own
    state, :math:`u = \hat m/(\sqrt{\hat v} + \epsilon) + \lambda\theta_t`
    (:math:`\theta_t` the weights before the step), and the ratio is
    :math:`\|\theta_t\|/\|u\|`.
    """
    check_number("learning rate", lr, low_inclusive=False)
    data, model = task_data(seed), task_model(seed)
    optimizer = otorch.LAMB(model.parameters(), lr=lr, weight_decay=weight_decay)
    group = optimizer.param_groups[0]
    (b1, b2), eps = group["betas"], group["eps"]
    named = list(model.named_parameters())
    before = [p.detach().clone() for _, p in named]
    ratios, step_ratios = [], []

    def record(t):
        row, step_row = [], []
        for i, (_, p) in enumerate(named):
            adam_state = optimizer.state[p]["transform_state"][0]
            k = adam_state["count"]
            m_hat = adam_state["mu"] / (1 - b1 ** k)
            v_hat = adam_state["nu"] / (1 - b2 ** k)
            u = m_hat / (v_hat.sqrt() + eps) + weight_decay * before[i]
            theta_norm = float(before[i].norm())
            row.append(theta_norm / float(u.norm()))
            step_row.append(float((p.detach() - before[i]).norm()) / (lr * theta_norm))
            before[i] = p.detach().clone()
        ratios.append(row)
        step_ratios.append(step_row)

    history = train(model, optimizer, data, steps=steps, batch_size=batch_size,
                    eval_every=steps, seed=seed, on_step=record)
    return TrustRatioRun([n for n, _ in named], np.array(ratios), np.array(step_ratios), history)


@dataclass
class BatchScalingResult:
    """Final losses of one optimizer at each batch size, after the same number of epochs."""

    batch_sizes: list[int]
    learning_rates: list[float]
    steps: list[int]
    final_train_loss: list[float]    # full training set, after the last step
    final_val_loss: list[float]


def _full_loss(model: nn.Module, x, y) -> float:
    with torch.no_grad():
        return float(nn.functional.cross_entropy(model(x), y))


def batch_scaling_run(name: str, base_lr: float, batch_sizes: Sequence[int] = (32, 128, 512, 1024),
                      epochs: int = 8, base_batch: int = 32, seed: int = 0) -> BatchScalingResult:
    r"""Train ``name`` (``"adam"`` or ``"lamb"``) for ``epochs`` epochs at each batch size.

    Equal epochs means :math:`T = \text{epochs}\cdot\lfloor N/B\rfloor` steps, so a
    32x larger batch takes 32x fewer steps. The learning rate follows the
    square-root rule :math:`\eta_B = \eta_{32}\sqrt{B/32}` (You et al. 2020).
    """
    if name not in ("adam", "lamb"):
        raise ValueError(f"Invalid name: {name!r} (choose 'adam' or 'lamb')")
    epochs = _check_int("epochs", epochs, 1)
    data = task_data(seed)
    result = BatchScalingResult(list(batch_sizes), [], [], [], [])
    for batch in batch_sizes:
        batch = _check_int("batch size", batch, 1)
        lr = base_lr * math.sqrt(batch / base_batch)
        steps = epochs * (data.n_train // batch)
        model = task_model(seed)
        make = otorch.Adam if name == "adam" else otorch.LAMB
        optimizer = make(model.parameters(), lr=lr)
        train(model, optimizer, data, steps=steps, batch_size=batch, eval_every=steps, seed=seed)
        result.learning_rates.append(lr)
        result.steps.append(steps)
        result.final_train_loss.append(_full_loss(model, data.x_train, data.y_train))
        result.final_val_loss.append(_full_loss(model, data.x_val, data.y_val))
    return result


# --- Lion --------------------------------------------------------------------------------

def update_rms(make: Callable, lr: float, steps: int = 200, batch_size: int = 64,
               seed: int = 0) -> np.ndarray:
    r"""Per step, :math:`\operatorname{RMS}(\theta_{t+1}-\theta_t)/\eta` over all weights.

    ``make(params, lr)`` builds the optimizer (no weight decay, so the step
    is the update alone). For Lion every coordinate moves by exactly
    :math:`\eta`, so the value is 1; for Adam it is the RMS of
    :math:`\hat m/(\sqrt{\hat v}+\epsilon)`, below 1 once gradients are noisy.
    """
    check_number("learning rate", lr, low_inclusive=False)
    data, model = task_data(seed), task_model(seed)
    optimizer = make(model.parameters(), lr)
    params = list(model.parameters())
    count = sum(p.numel() for p in params)
    before = [p.detach().clone() for p in params]
    rms = []

    def record(t):
        squares = 0.0
        for i, p in enumerate(params):
            squares += float(((p.detach() - before[i]) ** 2).sum())
            before[i] = p.detach().clone()
        rms.append(math.sqrt(squares / count) / lr)

    train(model, optimizer, data, steps=steps, batch_size=batch_size, eval_every=steps,
          seed=seed, on_step=record)
    return np.array(rms)


def decay_factor(lr: float, weight_decay: float, steps: int) -> float:
    r""":math:`(1 - \eta\lambda)^T`: what decoupled decay alone leaves of a weight after T steps."""
    return (1.0 - lr * weight_decay) ** steps


# --- Sophia ------------------------------------------------------------------------------

@dataclass
class SophiaPath:
    """Sophia on a 2-D landscape with the exact diagonal Hessian at every step.

    ``clipped[t, i]`` is True when coordinate ``i`` of step ``t + 1`` hit the
    clip, :math:`|m_i| \\ge \\rho h_i + \\epsilon > 0` (or :math:`\\max(\\rho h_i, \\epsilon)`
    with the paper's denominator), and so moved by exactly :math:`\\eta`; a negative
    denominator is never a clip: the step then points uphill and is not bounded.
    ``step_size[t, i] = |\\theta_{t+1,i} - \\theta_{t,i}| / \\eta``.
    """

    path: np.ndarray          # (steps + 1, 2)
    values: np.ndarray        # (steps + 1,)
    clipped: np.ndarray       # (steps, 2) bool
    step_size: np.ndarray     # (steps, 2)
    momentum: np.ndarray      # (steps, 2) m_t after step t


def sophia_landscape_run(landscape: Landscape, lr: float = 0.1, rho: float = 0.5,
                         b1: float = 0.9, steps: int = 60, x0=None,
                         denominator: str = "released") -> SophiaPath:
    r"""Run ``optbook.sophia(lr, b1, rho=rho, weight_decay=0)`` with ``hessian=`` every step.

    Each step passes the exact diagonal :math:`\operatorname{diag}\nabla^2 f(\theta_t)`
    (k = 1); :math:`\beta_2` only enters through the moving average of those.
    The path is the one :func:`optbook.landscapes.trajectory` with
    ``with_hessian=True`` computes; this loop also reads the state to report
    which coordinates were clipped and the momentum. ``denominator`` is
    ``optbook.sophia``'s: ``"released"`` (:math:`\rho h + \epsilon`, the authors'
    code) or ``"paper"`` (:math:`\max(\rho h, \epsilon)`).
    """
    steps = _check_int("steps", steps, 1)
    optimizer = sophia(lr, b1=b1, rho=rho, weight_decay=0.0, denominator=denominator)
    theta = np.array(landscape.x0 if x0 is None else x0, dtype=np.float64)
    state = optimizer.init(theta)
    path, values, clipped, sizes, moms = [theta], [float(landscape.value(theta))], [], [], []
    for _ in range(steps):
        updates, state = optimizer.update(landscape.grad(theta), state, theta,
                                          hessian=landscape.hessian_diag(theta))
        link = state[0]
        h = link["hessian"]
        den = np.maximum(rho * h, 1e-15) if denominator == "paper" else rho * h + 1e-15
        clipped.append((den > 0) & (np.abs(link["mu"]) >= den))
        sizes.append(np.abs(updates) / lr)
        moms.append(np.array(link["mu"], dtype=np.float64))
        theta = apply_updates(theta, updates)
        path.append(theta)
        values.append(float(landscape.value(theta)))
    return SophiaPath(np.array(path), np.array(values), np.array(clipped), np.array(sizes),
                      np.array(moms))


def hutchinson_variance(hessian, distribution: str, draws: int = 2000,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    r"""(measured, closed-form) variance of one-probe Hutchinson estimates of diag(H).

    The loss is :math:`f(z) = \tfrac12 z^\top H z`, whose Hessian is ``hessian``;
    each of ``draws`` calls of :func:`optbook.torch.hutchinson_hessian_estimate`
    (one probe, ``distribution`` ``"rademacher"`` or ``"gaussian"``) gives one
    estimate. The closed forms are :math:`\sum_{j\ne i} H_{ij}^2` for Rademacher
    probes and :math:`2H_{ii}^2 + \sum_{j\ne i} H_{ij}^2` for Gaussian ones.
    """
    h = torch.as_tensor(hessian, dtype=torch.float64)
    draws = _check_int("draws", draws, 2)
    z = torch.zeros(h.shape[0], dtype=torch.float64, requires_grad=True)
    gen = torch.Generator().manual_seed(seed)
    samples = torch.stack([otorch.hutchinson_hessian_estimate(
        0.5 * z @ h @ z, [z], generator=gen, distribution=distribution)[0]
        for _ in range(draws)])
    diag = torch.diagonal(h)
    off = (h ** 2).sum(1) - diag ** 2
    closed = off if distribution == "rademacher" else 2 * diag ** 2 + off
    return samples.var(0).numpy(), closed.numpy()


@dataclass
class SophiaTaskRun:
    """SophiaG on the common task: history and the fraction of clipped coordinates per step."""

    history: History
    clip_fraction: np.ndarray        # (steps,)
    hessian_steps: list[int]         # steps after which update_hessian was called


def _sophia_clip_fraction(optimizer: "otorch.SophiaG") -> float:
    clipped = total = 0
    for group in optimizer.param_groups:
        rho = group["rho"] * group["bs"]
        for p in group["params"]:
            link = optimizer.state[p]["transform_state"][0]
            clipped += int((link["mu"].abs() >= rho * link["hessian"]).sum())
            total += p.numel()
    return clipped / total


def sophia_clip_fraction_run(lr: float = 3e-3, rho: float = 0.04, k: int = 10,
                             steps: int = 300, batch_size: int = 64, estimator: str = "gnb",
                             weight_decay: float = 0.01, seed: int = 0) -> SophiaTaskRun:
    r"""Train the common task with :class:`optbook.torch.SophiaG`, refreshing h every ``k`` steps.

    After steps ``k, 2k, ...`` a fresh minibatch (its own generator) gives a
    diagonal Hessian estimate -- Gauss-Newton-Bartlett
    (:func:`optbook.torch.gnb_hessian_estimate`, labels sampled from the
    model's softmax) or Hutchinson
    (:func:`optbook.torch.hutchinson_hessian_estimate`) -- passed to
    ``update_hessian``. Before the first estimate :math:`h = 0` and every
    coordinate is clipped: Sophia starts as sign momentum.
    """
    k = _check_int("k", k, 1)
    if estimator not in ("gnb", "hutchinson"):
        raise ValueError(f"Invalid estimator: {estimator!r} (choose 'gnb' or 'hutchinson')")
    data, model = task_data(seed), task_model(seed)
    optimizer = otorch.SophiaG(model.parameters(), lr=lr, rho=rho, weight_decay=weight_decay)
    hook = _SophiaHessianHook(model, optimizer, data, k, batch_size, estimator, seed)
    history = train(model, optimizer, data, steps=steps, batch_size=batch_size,
                    eval_every=max(1, steps // 10), seed=seed, on_step=hook)
    return SophiaTaskRun(history, np.array(hook.clip_fraction), hook.hessian_steps)


class _SophiaHessianHook:
    """``on_step`` for :func:`train`: record the clip fraction, then refresh h every k steps."""

    def __init__(self, model, optimizer, data, k, batch_size, estimator="gnb", seed=0):
        self.model, self.optimizer, self.data, self.k = model, optimizer, data, k
        self.estimator = estimator
        self.batches = epoch_batches(data.n_train, batch_size,
                                     torch.Generator().manual_seed(seed + 1))
        self.labels = torch.Generator().manual_seed(seed + 2)
        self.clip_fraction: list[float] = []
        self.hessian_steps: list[int] = []

    def __call__(self, t: int) -> None:
        self.clip_fraction.append(_sophia_clip_fraction(self.optimizer))
        if (t + 1) % self.k:
            return
        params = list(self.model.parameters())
        idx = next(self.batches)
        logits = self.model(self.data.x_train[idx])
        if self.estimator == "gnb":
            estimates = otorch.gnb_hessian_estimate(logits, params, generator=self.labels)
        else:
            loss = nn.functional.cross_entropy(logits, self.data.y_train[idx])
            estimates = otorch.hutchinson_hessian_estimate(loss, params, generator=self.labels)
        self.optimizer.update_hessian(estimates)
        self.hessian_steps.append(t + 1)


# --- the comparison ---------------------------------------------------------------------

@dataclass(frozen=True)
class OptimizerSpec:
    """How the comparison builds one optimizer: ``make(params, lr)`` and its lr grid."""

    label: str
    make: Callable
    lr_grid: tuple
    settings: str               # the fixed hyper-parameters, for the table


COMPARISON: dict[str, OptimizerSpec] = {
    "momentum": OptimizerSpec(
        "SGD + momentum", lambda p, lr: otorch.SGD(p, lr=lr, momentum=0.9),
        (0.01, 0.03, 0.1, 0.3), "β = 0.9"),
    "adam": OptimizerSpec(
        "Adam", lambda p, lr: otorch.Adam(p, lr=lr),
        (3e-4, 1e-3, 3e-3, 1e-2), "β = (0.9, 0.999)"),
    "adafactor": OptimizerSpec(
        "Adafactor", lambda p, lr: otorch.Adafactor(p, lr=lr),
        (3e-3, 1e-2, 3e-2, 1e-1), "relative step, 1 − t^−0.8, d = 1"),
    "lamb": OptimizerSpec(
        "LAMB", lambda p, lr: otorch.LAMB(p, lr=lr, weight_decay=0.0),
        (3e-3, 1e-2, 3e-2, 1e-1), "β = (0.9, 0.999)"),
    "lion": OptimizerSpec(
        "Lion", lambda p, lr: otorch.Lion(p, lr=lr, weight_decay=0.0),
        (1e-4, 3e-4, 1e-3, 3e-3), "β = (0.9, 0.99)"),
    "sophia": OptimizerSpec(
        "Sophia", lambda p, lr: otorch.SophiaG(p, lr=lr, rho=1.0, weight_decay=0.0),
        (3e-4, 1e-3, 3e-3, 1e-2), "ρ = 1 (win-rate 10-50 %), GNB every k = 10"),
}
"""The optimizers of the comparison, each with a log-grid of four learning rates and no
weight decay (λ = 0 for all: decoupled against coupled decay is chapter 5.1's topic, and
with λ = 0 AdamW is Adam, so it is not listed)."""


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    """``COMPARISON[name].make(params, lr)`` with a clear error for an unknown name."""
    if name not in COMPARISON:
        raise ValueError(f"Invalid optimizer: {name!r} (choose from {', '.join(COMPARISON)})")
    return COMPARISON[name].make(params, lr)


@dataclass
class RunResult:
    """One training run of the comparison."""

    name: str
    lr: float
    history: History
    final_train_loss: float      # on the whole training set, after the last step
    final_val_loss: float
    state_bytes: int
    seconds_per_step: float      # wall clock: varies from run to run
    extra: dict = field(default_factory=dict)


def comparison_run(name: str, lr: float, steps: int = 150, batch_size: int = 64,
                   k: int = 10, seed: int = 0, eval_every: int | None = None) -> RunResult:
    """Train the common task with ``make_optimizer(name, ..., lr)`` for ``steps`` steps.

    Same data, initialisation and minibatch order for every optimizer; Sophia
    also gets a GNB Hessian estimate after every ``k``-th step (its cost is
    part of its time per step).
    """
    data, model = task_data(seed), task_model(seed)
    optimizer = make_optimizer(name, model.parameters(), lr)
    hook = (_SophiaHessianHook(model, optimizer, data, k, batch_size, "gnb", seed)
            if name == "sophia" else None)
    start = time.perf_counter()
    history = train(model, optimizer, data, steps=steps, batch_size=batch_size,
                    eval_every=eval_every or max(1, steps // 10), seed=seed, on_step=hook)
    seconds = (time.perf_counter() - start) / steps
    return RunResult(name, lr, history, _full_loss(model, data.x_train, data.y_train),
                     _full_loss(model, data.x_val, data.y_val), state_bytes(optimizer), seconds)


_SHARED = {"momentum": True, "adam": True, "lion": True, "adafactor": False, "lamb": False}
"""How :func:`tune_on_seeds` may batch the seeds (``adam.train_seeds``): element-wise
rules share stacked tensors; per-tensor rules (RMS, trust ratio) keep one copy each."""


@dataclass
class SeedTuning:
    """One optimizer's learning-rate grid, every cell on every seed.

    ``val_loss[i, s]``: learning rate ``lrs[i]``, seed ``seeds[s]``, after ``steps``;
    ``val_curve[i, s, r]`` the validation loss after step ``val_steps[r]``.
    """

    name: str
    lrs: tuple
    seeds: tuple
    steps: int
    val_loss: np.ndarray
    val_steps: np.ndarray
    val_curve: np.ndarray

    def scores(self) -> np.ndarray:
        """Seed-mean validation loss per learning rate; a diverged seed makes it inf."""
        return np.where(np.isfinite(self.val_loss), self.val_loss, np.inf).mean(axis=1)

    def best_index(self) -> int:
        return int(np.argmin(self.scores()))

    @property
    def best_lr(self) -> float:
        return self.lrs[self.best_index()]

    def best(self) -> np.ndarray:
        """``(seeds,)`` validation losses at the learning rate with the best seed mean."""
        return self.val_loss[self.best_index()]


def _sophia_seed_runs(lr, steps, seeds, eval_every, k=10, batch_size=64):
    histories = [comparison_run("sophia", lr, steps, batch_size, k=k, seed=s,
                                eval_every=eval_every).history for s in seeds]
    length = max(len(h.val_loss) for h in histories)
    final = [h.final_val_loss if not h.diverged else math.inf for h in histories]
    return np.array(final), np.array([np.pad(h.val_loss, (0, length - len(h.val_loss)),
                                             constant_values=np.inf) for h in histories])


def tune_on_seeds(name: str, lrs: Sequence[float] | None = None, steps: int = 150,
                  seeds: Sequence[int] = (0, 1, 2), batch_size: int = 64,
                  eval_every: int = 10) -> SeedTuning:
    r"""Run every learning rate of ``lrs`` (default ``COMPARISON[name].lr_grid``) on every
    seed; the tuned rate is the one with the lowest *mean* validation loss over the seeds.

    Seed ``s`` is the run :func:`comparison_run` makes with ``seed=s`` (data, initial
    weights, batch order). The element-wise optimizers and LAMB/Adafactor train their
    seeds together with ``adam.train_seeds`` (equal to separate runs up to float32
    rounding, see ``tests/test_adam_experiments.py``); Sophia runs each seed with its
    GNB refresh every 10 steps.
    """
    from .adam import train_seeds

    if name not in COMPARISON:
        raise ValueError(f"Invalid optimizer: {name!r} (choose from {', '.join(COMPARISON)})")
    steps = _check_int("steps", steps, 1)
    lrs = tuple(COMPARISON[name].lr_grid if lrs is None else lrs)
    seeds = tuple(seeds)
    eval_every = _check_int("eval_every", eval_every, 1)
    val_steps = list(range(eval_every, steps + 1, eval_every))
    val_steps += [] if steps % eval_every == 0 else [steps]
    val, curves = [], []
    for lr in lrs:
        check_number("learning rate", lr, low_inclusive=False)
        if name == "sophia":
            final, curve = _sophia_seed_runs(lr, steps, seeds, eval_every,
                                             batch_size=batch_size)
        else:
            runs = train_seeds(lambda p, lr=lr: COMPARISON[name].make(p, lr),
                               [task_data(s) for s in seeds], seeds, steps=steps,
                               batch_size=batch_size, hidden=TASK["hidden"],
                               depth=TASK["depth"], shared=_SHARED[name],
                               record_every=steps, eval_every=eval_every)
            final, curve = runs.final_val_loss, runs.val_curve
        if curve.shape[1] < len(val_steps):     # a diverged run stops early: pad with inf
            curve = np.pad(curve, ((0, 0), (0, len(val_steps) - curve.shape[1])),
                           constant_values=np.inf)
        val.append(final)
        curves.append(curve)
    return SeedTuning(name, lrs, seeds, steps, np.array(val), np.array(val_steps),
                      np.array(curves))


# --- AdaFactor's ablation: update clipping and the beta2 schedule, no warmup ---------------

ADAFACTOR_ARMS = {
    "d = 1, β₂ = 1 − t^−0.8": dict(d=1.0, beta2=None),
    "d = ∞, β₂ = 1 − t^−0.8": dict(d=math.inf, beta2=None),
    "d = 1, β₂ = 0.999": dict(d=1.0, beta2=0.999),
    "d = ∞, β₂ = 0.999": dict(d=math.inf, beta2=0.999),
}
"""Shazeer & Stern's (2018, Table 2) four combinations of update clipping d and the
second-moment decay; the first is the default. No warmup in any arm."""


@dataclass
class AdafactorAblation:
    r"""``val_loss[a, i, s]``: arm ``arms[a]``, learning rate ``lrs[i]``, seed ``seeds[s]``.

    ``max_update_rms[a, i, s]`` is the largest RMS of the clipped update
    :math:`\hat U_t` over all steps and weight tensors (at most d, by construction;
    for d = ∞ it is what clipping would have cut).
    """

    arms: tuple
    lrs: tuple
    seeds: tuple
    steps: int
    val_loss: np.ndarray
    max_update_rms: np.ndarray

    def best_lr_index(self) -> np.ndarray:
        """Per arm, the learning rate with the lowest seed-mean validation loss."""
        mean = np.where(np.isfinite(self.val_loss), self.val_loss, np.inf).mean(axis=2)
        return np.argmin(mean, axis=1)

    def best(self) -> np.ndarray:
        """``(arms, seeds)`` validation losses at each arm's tuned learning rate."""
        return self.val_loss[np.arange(len(self.arms)), self.best_lr_index()]


def adafactor_ablation(lrs: Sequence[float] = (0.01, 0.03, 0.1), steps: int = 100,
                       seeds: Sequence[int] = (0, 1, 2), batch_size: int = 64,
                       arms: Sequence[str] = tuple(ADAFACTOR_ARMS)) -> AdafactorAblation:
    r"""Train the common task with :class:`optbook.torch.Adafactor` in every arm of
    :data:`ADAFACTOR_ARMS`, at every learning rate, on every seed, without warmup.

    The update's RMS is read back from the weights: with no weight decay,
    :math:`\theta_t - \theta_{t-1} = -\rho_t \max(\epsilon_2, \operatorname{RMS}(\theta_{t-1}))
    \hat U_t`, so :math:`\operatorname{RMS}(\hat U_t) = \lVert\Delta\theta\rVert /
    (\sqrt n\,\rho_t \max(\epsilon_2, \lVert\theta_{t-1}\rVert/\sqrt n))`, with
    :math:`\rho_t = \min(\eta, 1/\sqrt t)`. Only weight matrices are counted (biases
    start at 0 and their first steps are relative to :math:`\epsilon_2`).
    """
    from .adam import train_seeds

    steps = _check_int("steps", steps, 1)
    seeds = tuple(seeds)
    for arm in arms:
        if arm not in ADAFACTOR_ARMS:
            raise ValueError(f"Invalid arm: {arm!r} (choose from {', '.join(ADAFACTOR_ARMS)})")
    sizes = {n: p.numel() for n, p in task_model().named_parameters()}
    datasets = [task_data(s) for s in seeds]
    val = np.empty((len(arms), len(lrs), len(seeds)))
    peak = np.empty_like(val)
    for a, arm in enumerate(arms):
        for i, lr in enumerate(lrs):
            lr = check_number("learning rate", lr, low_inclusive=False)
            runs = train_seeds(lambda p: otorch.Adafactor(p, lr=lr, **ADAFACTOR_ARMS[arm]),
                               datasets, seeds, steps=steps, batch_size=batch_size,
                               hidden=TASK["hidden"], depth=TASK["depth"], shared=False,
                               record_every=1)
            val[a, i] = runs.final_val_loss
            t = np.arange(1, runs.update_norms.shape[1] + 1)
            rho = np.minimum(lr, 1 / np.sqrt(t))[None, :, None]
            n = np.array([sizes[name] for name in runs.names], dtype=float)
            param_rms = np.maximum(1e-3, runs.layer_norms[:, :-1, :] / np.sqrt(n))
            update_rms = runs.update_norms / (np.sqrt(n) * rho * param_rms)
            matrices = [j for j, name in enumerate(runs.names) if name.endswith("weight")]
            peak[a, i] = update_rms[:, :, matrices].max(axis=(1, 2))
    return AdafactorAblation(tuple(arms), tuple(lrs), seeds, steps, val, peak)


# --- LAMB against Adam, each tuned per batch size, on several seeds ----------------------

BATCH_OPTIMIZERS = {
    "adam": lambda p, lr: otorch.Adam(p, lr=lr),
    "lamb": lambda p, lr: otorch.LAMB(p, lr=lr),
}
"""The two optimizers of the batch-size sweep, at their defaults except for ``lr``."""

_ELEMENTWISE = {"adam"}     # may share one stacked tensor across seeds (see adam.train_seeds)


def _batch_make(name: str) -> Callable:
    if name not in BATCH_OPTIMIZERS:
        raise ValueError(f"Invalid name: {name!r} (choose from {', '.join(BATCH_OPTIMIZERS)})")
    return BATCH_OPTIMIZERS[name]


@dataclass
class BatchSweep:
    """``val_loss[b, i, s]``: batch ``batch_sizes[b]``, learning rate ``lrs[i]``,
    seed ``seeds[s]``."""

    name: str
    batch_sizes: tuple
    lrs: tuple
    seeds: tuple
    steps: tuple                      # steps per batch size (equal epochs)
    val_loss: np.ndarray
    train_loss: np.ndarray

    def best_lr_index(self) -> np.ndarray:
        """Per batch size, the learning rate with the lowest seed-mean validation loss
        (a run that diverged counts as infinitely bad)."""
        mean = np.where(np.isfinite(self.val_loss), self.val_loss, np.inf).mean(axis=2)
        return np.argmin(mean, axis=1)

    def best(self) -> np.ndarray:
        """``(batch sizes, seeds)`` validation losses at each batch size's tuned learning rate."""
        idx = self.best_lr_index()
        return self.val_loss[np.arange(len(self.batch_sizes)), idx]


def batch_sweep(name: str, batch_sizes: Sequence[int] = (128, 512, 1024),
                lrs: Sequence[float] = (1e-3, 3e-3, 1e-2, 3e-2), epochs: int = 8,
                seeds: Sequence[int] = (0, 1, 2)) -> BatchSweep:
    r"""Train ``name`` (``"adam"`` or ``"lamb"``) on the common task for ``epochs`` epochs at
    every batch size and every learning rate of ``lrs``, on every seed.

    Equal epochs: :math:`T = \text{epochs}\cdot\lfloor N/B\rfloor` steps. Seed ``s`` uses
    ``task_data(s)``, the initial weights of ``task_model(s)`` and the batch order of
    ``train(..., seed=s)``. For LAMB each copy keeps its own tensors, so its per-tensor
    trust ratio is that of a separate run (``adam.train_seeds`` with ``shared=False``);
    Adam acts element by element and shares stacked tensors.
    """
    from .adam import train_seeds

    make = _batch_make(name)
    epochs = _check_int("epochs", epochs, 1)
    seeds = tuple(seeds)
    datasets = [task_data(s) for s in seeds]
    n_train = datasets[0].n_train
    val, tr, steps = [], [], []
    for batch in batch_sizes:
        batch = _check_int("batch size", batch, 1)
        t = epochs * (n_train // batch)
        steps.append(t)
        runs = [train_seeds(lambda p, lr=lr: make(p, lr), datasets, seeds, steps=t,
                            batch_size=batch, hidden=TASK["hidden"], depth=TASK["depth"],
                            shared=name in _ELEMENTWISE, record_every=t) for lr in lrs]
        val.append([r.final_val_loss for r in runs])
        tr.append([r.final_train_loss for r in runs])
    return BatchSweep(name, tuple(batch_sizes), tuple(lrs), seeds, tuple(steps),
                      np.array(val), np.array(tr))


@dataclass
class LayerStepRatios:
    """``ratio[s, t, j] = ||θ_t|| / ||θ_{t+1} - θ_t||`` of tensor ``names[j]``, seed ``s``."""

    name: str
    lr: float
    names: list
    ratio: np.ndarray


def layer_step_ratios(name: str, lr: float, batch_size: int = 512, steps: int = 60,
                      seeds: Sequence[int] = (0, 1, 2)) -> LayerStepRatios:
    r"""Per tensor and step, weight norm over update norm: what LAMB's trust ratio sets.

    LAMB makes every step :math:`\eta\lVert\theta\rVert` long, so its ratio is
    :math:`1/\eta` for every tensor; under Adam each tensor's ratio is whatever its
    weights and its normalised gradient happen to be.
    """
    return layer_step_ratios_and_norms(name, lr, batch_size, steps, seeds)[0]


def layer_step_ratios_and_norms(name: str, lr: float, batch_size: int = 512, steps: int = 60,
                                seeds: Sequence[int] = (0, 1, 2)
                                ) -> tuple[LayerStepRatios, np.ndarray]:
    r""":func:`layer_step_ratios` (the same runs, the same result) and each tensor's norm
    :math:`\lVert\theta_t\rVert`, shape ``(seeds, steps + 1, tensors)``.

    The norms are what LAMB's :math:`\phi(\lVert\theta\rVert)` would act on: You et al.
    allow a clamp :math:`\phi(z) = \min(\max(z, \gamma_l), \gamma_u)`, which changes
    nothing while every norm stays between the bounds.
    """
    from .adam import train_seeds

    make = _batch_make(name)
    check_number("learning rate", lr, low_inclusive=False)
    seeds = tuple(seeds)
    runs = train_seeds(lambda p: make(p, lr), [task_data(s) for s in seeds], seeds,
                       steps=_check_int("steps", steps, 1), batch_size=batch_size,
                       hidden=TASK["hidden"], depth=TASK["depth"], shared=False,
                       record_every=1)
    return (LayerStepRatios(name, float(lr), runs.names,
                            runs.layer_norms[:, :-1, :] / runs.update_norms),
            runs.layer_norms)


# --- Sophia near a saddle ------------------------------------------------------------------

def saddle_landscape() -> Landscape:
    r""":math:`f(x, y) = \tfrac12 x^2 + \tfrac14 y^4 - \tfrac12 y^2`: a saddle at the origin,
    minima at :math:`(0, \pm1)` with :math:`f = -\tfrac14`.

    The Hessian is :math:`\operatorname{diag}(1,\ 3y^2 - 1)`: negative curvature in
    :math:`y` for :math:`|y| < 1/\sqrt3`. Start :math:`(2, 0.1)`, just off the saddle's
    stable manifold :math:`y = 0`.
    """
    def value(x, y):
        return 0.5 * x * x + 0.25 * y ** 4 - 0.5 * y * y

    def grad(x, y):
        return x, y ** 3 - y

    def hessian_diag(x, y):
        return 0 * x + 1.0, 3 * y * y - 1.0

    def hessian(x, y):
        return (0 * x + 1.0, 0 * x), (0 * x, 3 * y * y - 1.0)

    return Landscape(name="saddle", title="saddle: ½x² + ¼y⁴ − ½y²",
                     formula=r"\tfrac12 x^2 + \tfrac14 y^4 - \tfrac12 y^2",
                     value_fn=value, grad_fn=grad, hessian_diag_fn=hessian_diag,
                     minima=((0.0, 1.0), (0.0, -1.0)), min_value=-0.25,
                     xlim=(-0.5, 2.5), ylim=(-0.5, 1.5), x0=(2.0, 0.1),
                     saddle_points=((0.0, 0.0),), hessian_fn=hessian,
                     reference="chapter 5 (Sophia near a saddle)")


def diagonal_newton_path(landscape: Landscape, steps: int = 30, x0=None) -> np.ndarray:
    r"""Newton's method with the exact diagonal Hessian, :math:`\theta_i \leftarrow
    \theta_i - g_i/h_i`: it jumps to the stationary point of the local quadratic
    model, whatever the sign of the curvature (a saddle as readily as a minimum)."""
    theta = np.array(landscape.x0 if x0 is None else x0, dtype=np.float64)
    path = [theta]
    for _ in range(_check_int("steps", steps, 1)):
        theta = theta - landscape.grad(theta) / landscape.hessian_diag(theta)
        path.append(theta)
    return np.array(path)


# --- stored reruns (scripts/reruns.py; book/data/reruns/05-*.json) -------------------------
# The checks the notebook quotes but cannot afford in its minute: other seeds and ten
# times the steps. Each calls the experiment functions above unchanged and returns
# plain numbers; 05-descendants prints the stored files next to its claims.

def adafactor_ablation_rerun(lrs: Sequence[float], steps: int, seeds: Sequence[int]) -> dict:
    """:func:`adafactor_ablation` as a stored rerun: every arm x learning rate x seed.

    ``val_loss[a][i][s]`` and ``max_update_rms[a][i][s]`` as in
    :class:`AdafactorAblation`; ``best_lr[a]`` is arm ``a``'s learning rate with
    the lowest seed mean.
    """
    ablation = adafactor_ablation(lrs=lrs, steps=steps, seeds=seeds)
    return {"arms": list(ablation.arms), "lrs": list(ablation.lrs),
            "seeds": list(ablation.seeds), "steps": ablation.steps,
            "val_loss": ablation.val_loss, "max_update_rms": ablation.max_update_rms,
            "best_lr": [ablation.lrs[i] for i in ablation.best_lr_index()]}


def comparison_rerun(steps: int, seeds: Sequence[int], eval_every: int,
                     lr_grids: dict | None = None) -> dict:
    """:func:`tune_on_seeds` for every optimizer of :data:`COMPARISON`, as a stored rerun.

    ``lr_grids[name]`` replaces the optimizer's default grid. Per optimizer:
    ``lrs``, ``val_loss[i][s]`` (after ``steps``), ``best_lr`` (lowest seed mean)
    and ``best[s]``, the losses at it.
    """
    results = {}
    for name in COMPARISON:
        lrs = None if lr_grids is None else lr_grids[name]
        tuning = tune_on_seeds(name, lrs=lrs, steps=steps, seeds=seeds, eval_every=eval_every)
        results[name] = {"lrs": list(tuning.lrs), "val_loss": tuning.val_loss,
                         "best_lr": tuning.best_lr, "best": tuning.best()}
    return results


RERUNS = (
    Rerun(name="05-adafactor-ablation-seeds-3-5", chapter="05-descendants",
           claim="AdaFactor's four arms without warmup on seeds 3-5, with η up to 1: "
                 "does any run diverge?",
           function="descendants:adafactor_ablation_rerun",
           params={"lrs": (0.01, 0.03, 0.1, 0.3, 1.0), "steps": 100, "seeds": (3, 4, 5)},
           minutes=0.3),
    Rerun(name="05-adafactor-ablation-1000-steps", chapter="05-descendants",
           claim="AdaFactor's four arms without warmup over 1,000 steps on seeds 0-2: "
                 "is β₂ = 0.999 without clipping worse?",
           function="descendants:adafactor_ablation_rerun",
           params={"lrs": (0.01, 0.03, 0.3), "steps": 1000, "seeds": (0, 1, 2)},
           minutes=1.5),
    Rerun(name="05-comparison-seeds-3-5", chapter="05-descendants",
           claim="The six-optimizer comparison (150 steps, each η tuned on the seed mean) "
                 "on seeds 3-5: same tuned η, Lion first again?",
           function="descendants:comparison_rerun",
           params={"steps": 150, "seeds": (3, 4, 5), "eval_every": 150, "lr_grids": None},
           minutes=0.5),
    Rerun(name="05-comparison-1500-steps", chapter="05-descendants",
           claim="The six-optimizer comparison at 1,500 steps (10x), every grid moved to "
                 "smaller learning rates (SGD, Adam, AdaFactor: the 150-step grid / 10; LAMB, "
                 "Lion, Sophia: two smaller rates added) and retuned on the mean of seeds 0-2: "
                 "does Lion's lead at 150 steps last?",
           function="descendants:comparison_rerun",
           params={"steps": 1500, "seeds": (0, 1, 2), "eval_every": 150,
                   "lr_grids": {"momentum": (0.001, 0.003, 0.01, 0.03),
                                "adam": (3e-05, 0.0001, 0.0003, 0.001),
                                "adafactor": (0.0003, 0.001, 0.003, 0.01),
                                "lamb": (0.0003, 0.001, 0.003, 0.01, 0.03, 0.1),
                                "lion": (1e-05, 3e-05, 0.0001, 0.0003, 0.001, 0.003),
                                "sophia": (3e-05, 0.0001, 0.0003, 0.001, 0.003, 0.01)}},
           minutes=4.0),
)
"""The chapter's stored reruns (``make reruns RERUNS=<name>``)."""
