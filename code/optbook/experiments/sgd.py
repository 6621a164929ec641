r"""Chapter 2 (確率的勾配降下法, stochastic gradient descent): minibatches, batch size, limits.

Every function is pure (explicit ``seed``) and returns NumPy arrays, Python
numbers or small dataclasses; the notebook only calls and plots, and
``tests/test_sgd_experiments.py`` checks each one against a closed form, an
exact enumeration or code nobody here wrote.

Article notation: minibatch (ミニバッチ) :math:`B \subset \{1..N\}`, minibatch gradient

.. math:: g_B(\theta) = \frac1{|B|}\sum_{i\in B}\nabla_\theta\ell_i(\theta),\qquad
          \theta_{t+1} = \theta_t - \eta\, g_{B_t}(\theta_t).

Sections:

* 2.1 -- per-example gradients of a small MLP; unbiasedness and the
  :math:`\tfrac{1}{|B|}\tfrac{N-|B|}{N-1}` variance law measured; throughput
  per example against batch size; gradient noise as a regulariser (final
  train/validation loss and sharpness); minibatch noise escaping a shallow
  local minimum of a 1-D loss that full-batch gradient descent stays in;
* 2.2 -- small vs large batches at equal epochs and equal steps (and wall
  time); the linear scaling rule of Goyal et al. (2017), with and without
  warmup over long runs with the sharpness recorded; noise matching: the
  noise floor :math:`\eta\sigma^2/(2|B|(2-\eta\lambda))` measured on a
  quadratic, and the gradient noise scale of McCandlish et al. (2018);
* seeds -- :func:`spread` (mean, min, max) for every comparison;
* 2.3 -- the learning-rate sweep, steps to tolerance against the condition
  number, and stalls at a saddle with and without noise;
* reruns -- the two ten-times-longer checks the chapter quotes
  (:data:`RERUNS`, stored by ``make reruns``).
"""
from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..base import check_number
from ..figures import Explorer, spec_figure
from ..figures.paths import draw_runs, optimizer_entry, optimizer_runs, standard_normals
from ..figures.spec import landscape_spec, param_spec
from ..landscapes import quadratic, saddle, trajectory
from ..optimizers import sgd
from ..schedules import as_lambda_lr, linear_warmup
from ..torch import SGD
from .foundations import minibatch_gradients, saddle_run
from .reruns import Rerun
from .training import Dataset, History, evaluate, mlp, teacher_classification, train

__all__ = [
    # 2.1 the minibatch gradient
    "model_per_example_gradients", "minibatch_gradient_samples", "minibatch_variance_curve",
    "finite_population_variance", "exact_minibatch_moments", "loglog_slope",
    "model_gradient_noise_scale",
    "time_per_example",
    # 2.1 noise as a regulariser and as an escape
    "BatchRun", "batch_size_run", "hessian_top_eigenvalue",
    "DoubleWell", "double_well", "double_well_escapes",
    # spread over seeds
    "Spread", "spread",
    # 2.2 batch size and the linear scaling rule
    "linear_scaling_runs", "warmup_rescue_runs",
    # 2.2 noise matching: the noise floor and the gradient noise scale
    "quadratic_noise_floor", "noise_floor_theory", "gradient_noise_scale", "batch_noise_scale",
    "noise_scale_during_training",
    # 2.3 limits
    "learning_rate_sweep", "steps_to_tolerance", "saddle_escape_steps",
    # stored reruns
    "batch_size_long_runs", "double_well_escape_counts", "RERUNS",
    # widget
    "sgd_noise_explorer",
    # the chapter's figures
    "sgd_noise_figure",
]


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"Invalid {name}: {value!r} (must be an integer >= {low})")
    return int(value)


# --- 2.1 the minibatch gradient -----------------------------------------------------------

def _linear_layer_terms(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    r"""``[(layer, a, delta)]`` for every ``nn.Linear`` of ``model``: inputs and per-example output gradients.

    For :math:`z = Wa + b`, :math:`\delta_i = \partial\ell_i/\partial z_i`; one
    backward pass of :math:`\sum_i\ell_i` gives all of them when the examples
    are treated independently (an MLP; no batch norm).
    """
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    owned = {id(p) for m in layers for p in m.parameters()}
    if any(id(p) not in owned for p in model.parameters()):
        raise ValueError("Invalid model: per-example gradients need every parameter "
                         "in an nn.Linear layer")
    inputs, outputs = {}, {}

    def keep(module, args, out):
        inputs[module], outputs[module] = args[0], out

    hooks = [m.register_forward_hook(keep) for m in layers]
    try:
        loss = nn.functional.cross_entropy(model(x), y, reduction="sum")
    finally:
        for h in hooks:
            h.remove()
    deltas = torch.autograd.grad(loss, [outputs[m] for m in layers])
    return [(m, inputs[m].detach(), d.detach()) for m, d in zip(layers, deltas)]


def model_per_example_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    r"""Rows :math:`\nabla_\theta\ell_i(\theta)` of the cross-entropy of ``model``, shape ``(N, P)``.

    ``model`` must keep its parameters in ``nn.Linear`` layers and treat the
    examples independently (an MLP). With :math:`a_i` the input and
    :math:`\delta_i = \partial\ell_i/\partial z_i` the output gradient of a
    layer :math:`z = Wa + b` for example :math:`i`,
    :math:`\nabla_W\ell_i = \delta_i a_i^\top` and :math:`\nabla_b\ell_i = \delta_i`,
    and one backward pass gives every :math:`\delta_i` (Goodfellow 2015,
    "Efficient per-example gradient computations"). Same numbers as
    ``torch.func.vmap(grad)``, without its first-use cost (it imports
    ``torch._dynamo``, seconds). The :math:`P` parameters are flattened in
    ``model.parameters()`` order. Returned as float64 NumPy.
    """
    rows = {}
    for m, a, delta in _linear_layer_terms(model, x, y):
        rows[id(m.weight)] = torch.einsum("no,ni->noi", delta, a).reshape(len(x), -1)
        if m.bias is not None:
            rows[id(m.bias)] = delta
    flat = torch.cat([rows[id(p)] for p in model.parameters()], dim=1)
    return flat.double().numpy()


def model_gradient_noise_scale(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    r""":math:`B_\text{simple}` of ``model``'s cross-entropy on ``(x, y)``, exactly, without the ``(N, P)`` matrix.

    :math:`\operatorname{tr}\Sigma = \frac1N\sum_i\lVert\nabla\ell_i\rVert^2 - \lVert\nabla\mathcal L\rVert^2`,
    and for a linear layer :math:`\lVert\delta_i a_i^\top\rVert^2 = \lVert\delta_i\rVert^2\lVert a_i\rVert^2`,
    so the per-example norms come from the same :math:`a_i, \delta_i` as
    :func:`model_per_example_gradients` at a fraction of the memory. Equals
    ``gradient_noise_scale(model_per_example_gradients(model, x, y))`` (tested).
    """
    n = len(x)
    mean_square, full_square = 0.0, 0.0
    for m, a, delta in _linear_layer_terms(model, x, y):
        a, delta = a.double(), delta.double()
        d2 = (delta ** 2).sum(dim=1)
        mean_square += float((d2 * (a ** 2).sum(dim=1)).sum()) / n
        full_square += float(((delta.T @ a / n) ** 2).sum())
        if m.bias is not None:
            mean_square += float(d2.sum()) / n
            full_square += float(((delta.sum(dim=0) / n) ** 2).sum())
    return (mean_square - full_square) / full_square


# Chapter 2 draws minibatch gradients exactly as chapter 1 does.
minibatch_gradient_samples = minibatch_gradients


def minibatch_variance_curve(per_example: np.ndarray, batch_sizes: Sequence[int],
                             num_batches: int = 500, seed: int = 0) -> np.ndarray:
    r"""Monte Carlo :math:`\mathbb E\|g_B - \nabla\mathcal L\|^2` for each batch size."""
    full = np.asarray(per_example, dtype=np.float64).mean(axis=0)
    out = []
    for k, b in enumerate(batch_sizes):
        samples = minibatch_gradient_samples(per_example, b, num_batches, seed + k)
        out.append(float(((samples - full) ** 2).sum(axis=1).mean()))
    return np.array(out)


def finite_population_variance(per_example: np.ndarray, batch_size) -> np.ndarray:
    r"""The theorem's :math:`\frac{\operatorname{tr}\Sigma}{|B|}\cdot\frac{N-|B|}{N-1}`.

    :math:`\Sigma = \frac1N\sum_i(\nabla\ell_i-\nabla\mathcal L)(\nabla\ell_i-\nabla\mathcal L)^\top`;
    ``batch_size`` may be an array. With replacement the factor would be 1.
    """
    per_example = np.asarray(per_example, dtype=np.float64)
    n = per_example.shape[0]
    b = np.asarray(batch_size, dtype=np.float64)
    if np.any(b < 1) or np.any(b > n):
        raise ValueError(f"Invalid batch_size: {batch_size} (must lie in [1, {n}])")
    trace_sigma = float(((per_example - per_example.mean(axis=0)) ** 2).sum(axis=1).mean())
    return trace_sigma / b * (n - b) / max(n - 1, 1)


def exact_minibatch_moments(per_example: np.ndarray, batch_size: int) -> tuple[np.ndarray, float]:
    r"""Mean of :math:`g_B` and :math:`\mathbb E\|g_B-\nabla\mathcal L\|^2` over *all* :math:`\binom N{|B|}` batches.

    Exact enumeration, for tiny problems (at most 200,000 subsets).
    """
    per_example = np.asarray(per_example, dtype=np.float64)
    n = per_example.shape[0]
    batch_size = _check_int("batch_size", batch_size, 1)
    if batch_size > n:
        raise ValueError(f"Invalid batch_size: {batch_size} (the data set has {n} examples)")
    if math.comb(n, batch_size) > 200_000:
        raise ValueError(f"Invalid batch_size: C({n}, {batch_size}) subsets are too many to enumerate")
    subsets = np.array(list(itertools.combinations(range(n), batch_size)))
    g = per_example[subsets].mean(axis=1)
    full = per_example.mean(axis=0)
    return g.mean(axis=0), float(((g - full) ** 2).sum(axis=1).mean())


def loglog_slope(x, y) -> float:
    """Least-squares slope of ``log y`` against ``log x``."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.size < 2 or np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("Invalid x, y: need two positive arrays of equal length >= 2")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def time_per_example(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                     batch_sizes: Sequence[int], repeats: int = 5,
                     examples_per_repeat: int = 256) -> np.ndarray:
    """Median wall time (seconds) of one forward+backward pass, divided by the batch size.

    Each repeat processes about ``examples_per_repeat`` examples in batches of
    the given size. Timing varies with the machine and its load: use the
    result for plots and coarse ratios, never for exact comparisons.
    """
    repeats = _check_int("repeats", repeats, 1)
    out = []
    for b in batch_sizes:
        b = _check_int("batch_size", b, 1)
        calls = max(1, examples_per_repeat // b)
        xb, yb = x[:b], y[:b]
        times = []
        for _ in range(repeats + 1):                 # the first repeat warms up
            start = time.perf_counter()
            for _ in range(calls):
                model.zero_grad()
                nn.functional.cross_entropy(model(xb), yb).backward()
            times.append((time.perf_counter() - start) / (calls * b))
        out.append(float(np.median(times[1:])))
    model.zero_grad()
    return np.array(out)


# --- 2.1 noise as a regulariser -----------------------------------------------------------

@dataclass
class BatchRun:
    """One training run of :func:`batch_size_run` and what it ended at."""

    history: History
    batch_size: int
    learning_rate: float
    steps: int
    train_loss: float          # full training set (noisy labels), after the last step
    train_accuracy: float
    val_loss: float            # clean validation set
    val_accuracy: float
    sharpness: Optional[float]  # top Hessian eigenvalue of the training loss, if asked
    epochs: float = 0.0        # passes over the training set


def hessian_top_eigenvalue(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                           iterations: int = 30, seed: int = 0) -> float:
    r"""Largest Hessian eigenvalue of the mean cross-entropy, by power iteration.

    Each iteration is one Hessian-vector product (double backward,
    Pearlmutter 1994), :math:`v \leftarrow Hv/\|Hv\|`; the estimate is the
    Rayleigh quotient :math:`v^\top H v`. This is the *sharpness* of
    Keskar et al. (2017) in its simplest form.
    """
    iterations = _check_int("iterations", iterations, 1)
    params = [p for p in model.parameters() if p.requires_grad]
    loss = nn.functional.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    g = torch.Generator().manual_seed(_check_int("seed", seed, 0))
    v = [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params]
    norm = torch.sqrt(sum((u ** 2).sum() for u in v))
    v = [u / norm for u in v]
    eigenvalue = 0.0
    for _ in range(iterations):
        hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True)
        eigenvalue = float(sum((a * b).sum() for a, b in zip(v, hv)))
        norm = torch.sqrt(sum((u ** 2).sum() for u in hv))
        v = [u / norm for u in hv]
    return eigenvalue


def batch_size_run(data: Dataset, batch_size: int, learning_rate: float, steps: int, *,
                   hidden: int = 64, warmup_steps: int = 0, eval_every: Optional[int] = None,
                   sharpness: bool = False, sharpness_every: Optional[int] = None,
                   record_time: bool = False, noise_scale_at: Sequence[int] = (),
                   seed: int = 0) -> BatchRun:
    r"""Train ``mlp(dim, classes, hidden)`` with plain SGD (``optbook.torch.SGD``) for ``steps`` steps.

    The model and the batch order depend only on ``seed``, so runs that differ
    in batch size or learning rate start from the same weights.
    ``warmup_steps > 0`` ramps the rate linearly from 0
    (``schedules.linear_warmup`` through ``schedules.as_lambda_lr``;
    Goyal et al. 2017). ``eval_every`` defaults to one epoch.

    ``sharpness_every = m`` also records the top Hessian eigenvalue of the
    training loss after every ``m``-th step (``history.extra["sharpness_steps"]``,
    ``["sharpness"]``; 20 power iterations on the first 512 training examples,
    to stay cheap). ``record_time`` stores the wall-clock seconds elapsed after
    each step (``history.extra["seconds"]``; evaluations included, machine-dependent).
    ``noise_scale_at`` lists steps (0 = the initialization) after which the exact
    :math:`B_\text{simple}` of the training set is recorded
    (:func:`model_gradient_noise_scale`;
    ``history.extra["noise_scale_steps"]``, ``["noise_scale"]``); measuring does
    not change the run.
    """
    batch_size = _check_int("batch_size", batch_size, 1)
    check_number("learning rate", learning_rate, low_inclusive=False)
    steps = _check_int("steps", steps, 1)
    if eval_every is None:
        eval_every = max(1, data.n_train // batch_size)
    model = mlp(data.x_train.shape[1], data.classes, hidden=hidden, seed=seed)
    optimizer = SGD(model.parameters(), lr=learning_rate)
    scheduler = None
    if warmup_steps:
        scheduler = as_lambda_lr(optimizer, linear_warmup(learning_rate, warmup_steps))
    extra: dict = {"sharpness_steps": [], "sharpness": [], "seconds": [],
                   "noise_scale_steps": [], "noise_scale": []}
    if sharpness_every is not None:
        sharpness_every = _check_int("sharpness_every", sharpness_every, 1)
    noise_scale_at = {_check_int("noise_scale_at", c, 0) for c in noise_scale_at}

    def record_noise_scale(step: int) -> None:
        if step in noise_scale_at:
            extra["noise_scale_steps"].append(step)
            extra["noise_scale"].append(model_gradient_noise_scale(model, data.x_train,
                                                                   data.y_train))

    record_noise_scale(0)
    start = time.perf_counter()

    def on_step(t: int) -> None:
        record_noise_scale(t + 1)
        if sharpness_every is not None and (t + 1) % sharpness_every == 0:
            sub = slice(0, min(512, data.n_train))
            extra["sharpness_steps"].append(t + 1)
            extra["sharpness"].append(hessian_top_eigenvalue(
                model, data.x_train[sub], data.y_train[sub], iterations=20, seed=seed))
        if record_time:
            extra["seconds"].append(time.perf_counter() - start)

    history = train(model, optimizer, data, steps=steps, batch_size=batch_size,
                    scheduler=scheduler, eval_every=eval_every, seed=seed, on_step=on_step)
    history.extra.update({k: np.array(v) for k, v in extra.items()})
    if history.diverged:
        nan = float("nan")
        return BatchRun(history, batch_size, learning_rate, steps, nan, nan, nan, nan, None,
                        steps * batch_size / data.n_train)
    train_loss, train_acc = evaluate(model, data.x_train, data.y_train)
    val_loss, val_acc = evaluate(model, data.x_val, data.y_val)
    top = hessian_top_eigenvalue(model, data.x_train, data.y_train, seed=seed) if sharpness \
        else None
    return BatchRun(history, batch_size, learning_rate, steps, train_loss, train_acc,
                    val_loss, val_acc, top, steps * batch_size / data.n_train)


# --- 2.1 escaping a shallow local minimum ------------------------------------------------

@dataclass(frozen=True)
class DoubleWell:
    r"""A 1-D empirical risk :math:`\mathcal L(x) = \frac1N\sum_i \ell_i(x)` with two wells.

    :math:`\ell_i(x) = \tfrac14 x^4 - \tfrac12 x^2 + c\,x + a_i x` with
    :math:`\sum_i a_i = 0`, so :math:`\mathcal L(x) = \tfrac14x^4 - \tfrac12x^2 + cx`
    and :math:`\nabla\ell_i = x^3 - x + c + a_i`: each example tilts the
    loss a little, and a minibatch gradient is the full one plus the mean
    tilt of the batch. For :math:`0 < c < 2/(3\sqrt3)` there is a shallow
    local minimum at :math:`x > 0` and the global minimum at :math:`x < 0`.
    """

    tilt: float
    offsets: np.ndarray         # the a_i, mean exactly zero

    def value(self, x):
        return 0.25 * x ** 4 - 0.5 * x ** 2 + self.tilt * x

    def grad(self, x):
        return x ** 3 - x + self.tilt

    def critical_points(self) -> np.ndarray:
        """Roots of :math:`x^3 - x + c`, ascending: global min, barrier top, local min."""
        return np.sort(np.roots([1.0, 0.0, -1.0, self.tilt]).real)


def double_well(n: int = 64, tilt: float = 0.25, offset_std: float = 1.0,
                seed: int = 0) -> DoubleWell:
    """:class:`DoubleWell` with ``n`` examples whose tilts :math:`a_i` have std ``offset_std``."""
    n = _check_int("n", n, 2)
    check_number("offset_std", offset_std)
    if not 0 < tilt < 2 / (3 * math.sqrt(3)):
        raise ValueError(f"Invalid tilt: {tilt} (must lie in (0, {2 / (3 * math.sqrt(3)):.4f}) "
                         "for two wells)")
    a = np.random.default_rng(_check_int("seed", seed, 0)).standard_normal(n)
    a = a - a.mean()
    a = a * (offset_std / a.std()) if offset_std > 0 else a * 0
    return DoubleWell(float(tilt), a)


def double_well_escapes(well: DoubleWell, batch_size: int, learning_rate: float = 0.1,
                        steps: int = 300, runs: int = 100, x0: Optional[float] = None,
                        seed: int = 0) -> np.ndarray:
    r"""Final points of ``runs`` minibatch-SGD runs on ``well``, started in the shallow well.

    Each step draws a batch without replacement (independently per run) and
    moves :math:`x \leftarrow x - \eta\,(\nabla\mathcal L(x) + \bar a_B)`.
    ``batch_size = N`` is full-batch gradient descent (:math:`\bar a_B = 0`).
    A run *escaped* if it ends at :math:`x < ` the barrier top.
    """
    n = len(well.offsets)
    batch_size = _check_int("batch_size", batch_size, 1)
    if batch_size > n:
        raise ValueError(f"Invalid batch_size: {batch_size} (the data set has {n} examples)")
    check_number("learning rate", learning_rate, low_inclusive=False)
    steps, runs = _check_int("steps", steps, 0), _check_int("runs", runs, 1)
    rng = np.random.default_rng(_check_int("seed", seed, 0))
    x = np.full(runs, well.critical_points()[2] if x0 is None else float(x0))
    for _ in range(steps):
        if batch_size == n:
            noise = 0.0
        else:
            index = np.argsort(rng.random((runs, n)), axis=1)[:, :batch_size]
            noise = well.offsets[index].mean(axis=1)
        x = x - learning_rate * (well.grad(x) + noise)
    return x


# --- 2.2 the linear scaling rule ----------------------------------------------------------

def linear_scaling_runs(data: Dataset, factors: Sequence[int], base_batch: int = 8,
                        base_lr: float = 0.05, epochs: int = 4, warmup_epochs: float = 0,
                        hidden: int = 64, noise_scale_at: Sequence[int] = (),
                        seed: int = 0) -> dict[int, BatchRun]:
    r"""The rule of Goyal et al. (2017): batch :math:`k|B|` with rate :math:`k\eta`, equal epochs.

    For each factor :math:`k`: batch ``k * base_batch``, learning rate
    ``k * base_lr``, ``epochs * N // (k * base_batch)`` steps, evaluated once
    per epoch; ``warmup_epochs`` of linear warmup from 0 if asked.
    ``noise_scale_at`` (steps) records :math:`B_\text{simple}` along the base run
    (:math:`k = 1`) only, as :func:`batch_size_run` does.
    """
    runs = {}
    for k in factors:
        k = _check_int("factor", k, 1)
        batch = k * base_batch
        per_epoch = data.n_train // batch
        if per_epoch < 1:
            raise ValueError(f"Invalid factor: {k} (batch {batch} > {data.n_train} examples)")
        runs[k] = batch_size_run(data, batch, k * base_lr, epochs * per_epoch, hidden=hidden,
                                 warmup_steps=int(round(warmup_epochs * per_epoch)),
                                 eval_every=per_epoch,
                                 noise_scale_at=noise_scale_at if k == 1 else (), seed=seed)
    return runs


def warmup_rescue_runs(data: Dataset, factor: int, seeds: Sequence[int], base_batch: int = 16,
                       base_lr: float = 0.1, epochs: int = 80,
                       warmup_epochs: Sequence[float] = (0, 2, 20), hidden: int = 64,
                       sharpness_every_epochs: int = 4) -> dict[float, list[BatchRun]]:
    r"""Linear-scaling runs at one factor :math:`k`, long, with several warmups and seeds.

    Batch ``factor * base_batch``, rate ``factor * base_lr``, ``epochs`` epochs,
    for each warmup length (in epochs; 0 = none) and each seed. Records the
    validation loss every epoch and the sharpness (top Hessian eigenvalue)
    every ``sharpness_every_epochs`` epochs, to compare with :math:`2/\eta`.
    Returns ``{warmup_epochs: [BatchRun per seed]}``.
    """
    factor = _check_int("factor", factor, 1)
    batch = factor * base_batch
    per_epoch = data.n_train // batch
    if per_epoch < 1:
        raise ValueError(f"Invalid factor: {factor} (batch {batch} > {data.n_train} examples)")
    epochs = _check_int("epochs", epochs, 1)
    every = _check_int("sharpness_every_epochs", sharpness_every_epochs, 1) * per_epoch
    out = {}
    for w in warmup_epochs:
        check_number("warmup_epochs", w, low_inclusive=True)
        out[w] = [batch_size_run(data, batch, factor * base_lr, epochs * per_epoch, hidden=hidden,
                                 warmup_steps=int(round(w * per_epoch)), eval_every=per_epoch,
                                 sharpness_every=every, seed=s)
                  for s in seeds]
    return out


# --- spread over seeds --------------------------------------------------------------------

@dataclass(frozen=True)
class Spread:
    """Mean, minimum and maximum of one number measured over several seeds."""

    mean: float
    low: float
    high: float

    def __format__(self, spec: str) -> str:
        spec = spec or ".3f"
        return f"{self.mean:{spec}} [{self.low:{spec}}, {self.high:{spec}}]"


def spread(values) -> Spread:
    """:class:`Spread` of ``values`` (at least one finite number; NaNs are ignored)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise ValueError(f"Invalid values: {values!r} (need at least one finite number)")
    return Spread(float(v.mean()), float(v.min()), float(v.max()))


# --- 2.2 noise matching: the noise floor and the gradient noise scale ---------------------

def noise_floor_theory(learning_rate, batch_size, curvature: float, noise_var: float):
    r"""Stationary excess loss of SGD on a quadratic, :math:`\frac{\eta\sigma^2}{2|B|(2-\eta\lambda)}`.

    For :math:`\mathcal L(\theta) = \frac\lambda2\theta^2` with minibatch
    gradients :math:`\lambda\theta + \xi`, :math:`\operatorname{Var}\xi = \sigma^2/|B|`
    (independent draws). Requires :math:`0 < \eta\lambda < 2`.
    """
    eta = np.asarray(learning_rate, dtype=np.float64)
    b = np.asarray(batch_size, dtype=np.float64)
    if np.any(eta * curvature <= 0) or np.any(eta * curvature >= 2):
        raise ValueError(f"Invalid learning_rate: {learning_rate} (need 0 < lr * curvature < 2)")
    if np.any(b <= 0):
        raise ValueError(f"Invalid batch_size: {batch_size} (must be > 0)")
    return eta * noise_var / (2 * b * (2 - eta * curvature))


def quadratic_noise_floor(learning_rate: float, batch_size: int, curvature: float = 1.0,
                          n: int = 1024, steps: int = 4000, runs: int = 200,
                          seed: int = 0) -> float:
    r"""Measured mean excess loss of minibatch SGD on a 1-D least-squares risk, after burn-in.

    Examples :math:`\ell_i(\theta) = \frac\lambda2(\theta - c_i)^2` with
    :math:`\bar c = 0` and :math:`\frac1N\sum c_i^2 = 1`, so
    :math:`\mathcal L - \mathcal L^* = \frac\lambda2\theta^2` and the per-example
    gradient variance is :math:`\sigma^2 = \lambda^2`. Batches are drawn with
    replacement (so :math:`\operatorname{Var} g_B = \sigma^2/|B|` exactly).
    ``runs`` independent runs start at the minimum :math:`\theta = 0`; the
    excess loss is averaged over runs and over the second half of the steps.
    """
    check_number("learning rate", learning_rate, low_inclusive=False)
    batch_size, n = _check_int("batch_size", batch_size, 1), _check_int("n", n, 2)
    steps, runs = _check_int("steps", steps, 2), _check_int("runs", runs, 1)
    rng = np.random.default_rng(_check_int("seed", seed, 0))
    c = rng.standard_normal(n)
    c = (c - c.mean()) / np.sqrt(((c - c.mean()) ** 2).mean())
    theta = np.zeros(runs)
    total, count = 0.0, 0
    # The batches of many steps are drawn and averaged at once: the same stream of
    # integers as one draw per step (NumPy fills arrays in order), far fewer calls.
    chunk = max(1, 2_000_000 // (runs * batch_size))
    for t in range(steps):
        if t % chunk == 0:
            draws = rng.integers(n, size=(min(chunk, steps - t), runs, batch_size))
            batch_means = c[draws].mean(axis=2)
        batch_mean = batch_means[t % chunk]
        with np.errstate(over="ignore", invalid="ignore"):   # divergence is reported as inf
            theta = theta - learning_rate * curvature * (theta - batch_mean)
        if not np.all(np.isfinite(theta)):
            return float("inf")
        if t >= steps // 2:
            total += float((0.5 * curvature * theta ** 2).sum())
            count += runs
    return total / count


def gradient_noise_scale(per_example: np.ndarray) -> float:
    r"""The simple gradient noise scale :math:`B_\text{simple} = \operatorname{tr}\Sigma/\lVert\nabla\mathcal L\rVert^2`.

    McCandlish et al. (2018): the batch size at which the minibatch noise
    :math:`\operatorname{tr}\Sigma/|B|` equals the squared gradient; it
    estimates the critical batch size beyond which larger batches stop
    saving steps. :math:`\Sigma` is the covariance of the per-example gradients (rows).
    """
    g = np.asarray(per_example, dtype=np.float64)
    if g.ndim != 2 or g.shape[0] < 2:
        raise ValueError(f"Invalid per_example: shape {g.shape} (need (N >= 2, P))")
    full = g.mean(axis=0)
    trace_sigma = float(((g - full) ** 2).sum(axis=1).mean())
    return trace_sigma / float(full @ full)


def batch_noise_scale(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 32,
                      num_batches: int = 128, seed: int = 0) -> float:
    r""":math:`B_\text{simple}` of ``model``'s cross-entropy, estimated from minibatch gradients.

    Uses the theorem of chapter 2 backwards: for batches drawn without
    replacement :math:`\mathbb E\|g_B - \nabla\mathcal L\|^2 = \frac{\operatorname{tr}\Sigma}{|B|}\frac{N-|B|}{N-1}`,
    so :math:`\operatorname{tr}\Sigma` is estimated by the mean of
    :math:`\|g_B - \nabla\mathcal L\|^2\,|B|\,\frac{N-1}{N-|B|}` over ``num_batches``
    batches (one backward pass each, instead of :math:`N` per-example gradients),
    and divided by :math:`\|\nabla\mathcal L\|^2` (one full-batch backward pass).
    """
    n = len(x)
    batch_size = _check_int("batch_size", batch_size, 1)
    if batch_size >= n:
        raise ValueError(f"Invalid batch_size: {batch_size} (must be < {n} examples)")
    num_batches = _check_int("num_batches", num_batches, 1)
    params = [p for p in model.parameters() if p.requires_grad]

    def gradient(idx) -> torch.Tensor:
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)]).double()

    full = gradient(slice(None))
    g = torch.Generator().manual_seed(_check_int("seed", seed, 0))
    squares = [float(((gradient(torch.randperm(n, generator=g)[:batch_size]) - full) ** 2).sum())
               for _ in range(num_batches)]
    trace_sigma = float(np.mean(squares)) * batch_size * (n - 1) / (n - batch_size)
    return trace_sigma / float(full @ full)


def noise_scale_during_training(data: Dataset, batch_size: int, learning_rate: float,
                                checkpoints: Sequence[int], hidden: int = 64,
                                seed: int = 0) -> np.ndarray:
    r""":func:`batch_noise_scale` on the training set at checkpoint steps of an SGD run.

    The run is :func:`batch_size_run`'s (same model and batch order for the
    same ``seed``); step 0 is the initialization. Returns one value per checkpoint.
    """
    batch_size = _check_int("batch_size", batch_size, 1)
    check_number("learning rate", learning_rate, low_inclusive=False)
    checkpoints = [_check_int("checkpoint", c, 0) for c in checkpoints]
    model = mlp(data.x_train.shape[1], data.classes, hidden=hidden, seed=seed)
    values = {}

    def measure(step: int) -> None:
        if step in checkpoints:
            values[step] = batch_noise_scale(model, data.x_train, data.y_train, seed=seed + step)

    measure(0)
    last = max(checkpoints)
    if last > 0:
        train(model, SGD(model.parameters(), lr=learning_rate), data, steps=last,
              batch_size=batch_size, eval_every=last, seed=seed,
              on_step=lambda t: measure(t + 1))
    return np.array([values[c] for c in checkpoints])


# --- 2.3 limits ---------------------------------------------------------------------------

def learning_rate_sweep(data: Dataset, learning_rates: Sequence[float], batch_size: int = 32,
                        epochs: int = 3, hidden: int = 64, seed: int = 0) -> np.ndarray:
    """Final full-training-set loss for each learning rate (``nan`` where the run diverged)."""
    steps = epochs * (data.n_train // _check_int("batch_size", batch_size, 1))
    return np.array([batch_size_run(data, batch_size, lr, steps, hidden=hidden,
                                    eval_every=steps, seed=seed).train_loss
                     for lr in learning_rates])


def steps_to_tolerance(kappa: float, learning_rate: Optional[float] = None, tol: float = 1e-6,
                       max_steps: int = 100_000) -> Optional[int]:
    r"""Steps of gradient descent on ``quadratic(kappa)`` until :math:`f - f^* \le` ``tol`` :math:`\cdot(f_0 - f^*)`.

    Default rate: the best single rate :math:`\eta^\star = 2/(L+\mu)`. Returns
    ``None`` if the tolerance is not reached in ``max_steps`` (or the run diverges).
    """
    land = quadratic(kappa)
    if learning_rate is None:
        learning_rate = 2.0 / (land.L + land.mu)
    check_number("tol", tol, low_inclusive=False)
    max_steps = _check_int("max_steps", max_steps, 1)
    # First horizon: a little beyond the count the contraction factor
    # rho = max|1 - eta*lambda| predicts for f (which shrinks like rho^(2t)), so
    # that one run usually suffices; doubling covers the rest.
    rho = max(abs(1 - learning_rate * land.mu), abs(1 - learning_rate * land.L))
    guess = math.log(tol) / (2 * math.log(rho)) if 0 < rho < 1 else 0.0
    steps = min(max(64, int(1.1 * guess) + 8), max_steps)
    while True:                      # double the horizon: cost at most twice the answer
        run = trajectory(sgd(learning_rate), land, steps=steps, escape_factor=math.inf)
        excess = (run.values - land.min_value) / (run.values[0] - land.min_value)
        hit = np.flatnonzero(excess <= tol)
        if hit.size:
            return int(hit[0])
        if steps >= max_steps or not np.all(np.isfinite(excess)) or excess[-1] > 1:
            return None
        steps = min(2 * steps, max_steps)


def saddle_escape_steps(noise_std: float, seeds: Sequence[int], learning_rate: float = 0.1,
                        steps: int = 400, escape_y: float = 0.5) -> list[Optional[int]]:
    r"""Escape steps of :func:`optbook.experiments.foundations.saddle_run` from (1.5, 0), one per seed.

    The runs of all seeds advance together as arrays (one NumPy step for every
    seed, instead of one :func:`optbook.landscapes.trajectory` call each), with
    the same arithmetic and the same noise: seed ``s`` draws its
    :math:`\xi_t \sim \mathcal N(0, I_2)` from ``default_rng(s)`` in step order,
    as ``trajectory`` does, so the escape steps are identical to
    ``saddle_run(learning_rate, steps, y0=0, noise_std=noise_std, seed=s).escape_step``
    (``tests/test_sgd_experiments.py`` checks it). A run has escaped at the
    first step with :math:`|y| \ge` ``escape_y``; ``None`` if it never does.
    """
    check_number("noise_std", noise_std)
    check_number("learning rate", learning_rate, low_inclusive=False)
    steps = _check_int("steps", steps, 0)
    seeds = [_check_int("seed", s, 0) for s in seeds]
    noise = np.zeros((len(seeds), steps, 2))
    if noise_std > 0:
        for i, s in enumerate(seeds):
            noise[i] = np.random.default_rng(s).standard_normal((steps, 2)) * noise_std
    x, y = np.full(len(seeds), 1.5), np.zeros(len(seeds))
    escape: list[Optional[int]] = [None] * len(seeds)
    for t in range(1, steps + 1):
        gx = x + noise[:, t - 1, 0]                    # grad of x^2/2 + y^4/4 - y^2/2, plus noise
        gy = (y * y * y - y) + noise[:, t - 1, 1]
        x, y = x + -learning_rate * gx, y + -learning_rate * gy
        for i in np.flatnonzero(np.abs(y) >= escape_y):
            if escape[i] is None:
                escape[i] = t
    return escape


# --- stored reruns (make reruns; optbook.experiments.reruns) ------------------------------

def batch_size_long_runs(*, batch_sizes: Sequence[int], learning_rate: float, steps: int,
                         seeds: Sequence[int], hidden: int = 64, label_noise: float = 0.2,
                         data_seed: int = 0, eval_every: int = 160) -> dict:
    """Section 2.1(b) at another horizon: :func:`batch_size_run` with the sharpness, per seed.

    The noisy-label teacher data (``teacher_classification(label_noise=...,
    seed=data_seed)``), one run per batch size and seed. Returns
    ``{str(batch_size): {measure: [one value per seed]}}`` with the measures
    the notebook's table prints.
    """
    data = teacher_classification(label_noise=label_noise, seed=data_seed)
    out = {}
    for b in batch_sizes:
        runs = [batch_size_run(data, b, learning_rate, steps, hidden=hidden,
                               eval_every=eval_every, sharpness=True, seed=s) for s in seeds]
        out[str(b)] = {
            "train_loss": [r.train_loss for r in runs],
            "train_accuracy": [r.train_accuracy for r in runs],
            "val_loss": [r.val_loss for r in runs],
            "val_accuracy": [r.val_accuracy for r in runs],
            "sharpness": [r.sharpness for r in runs],
            "lowest_val_loss": [float(r.history.val_loss.min()) for r in runs],
        }
    return out


def double_well_escape_counts(*, batch_sizes: Sequence[int], steps: int, seeds: Sequence[int],
                              runs: int = 100, learning_rate: float = 0.1, n: int = 64,
                              tilt: float = 0.25, offset_std: float = 1.0,
                              well_seed: int = 0) -> dict:
    """How many of ``runs`` :func:`double_well_escapes` runs end beyond the barrier top.

    ``{str(batch_size): [count per seed]}`` on ``double_well(n, tilt, offset_std, well_seed)``.
    """
    well = double_well(n=n, tilt=tilt, offset_std=offset_std, seed=well_seed)
    top = well.critical_points()[1]
    return {str(b): [int((double_well_escapes(well, b, learning_rate=learning_rate, steps=steps,
                                              runs=runs, seed=s) < top).sum())
                     for s in seeds]
            for b in batch_sizes}


RERUNS = (
    Rerun(name="02-batch-size-10x-steps", chapter="02-sgd",
          claim="At ten times the steps (15,360) both batch sizes memorize, |B| = 8 still has "
                "the lower validation loss, and the sharpness order of 1,536 steps flips.",
          function="sgd:batch_size_long_runs",
          params={"batch_sizes": [8, 512], "learning_rate": 0.2, "steps": 15360,
                  "seeds": [0, 1, 2], "hidden": 64, "label_noise": 0.2, "data_seed": 0,
                  "eval_every": 160},
          minutes=1.5),
    Rerun(name="02-double-well-10x-steps", chapter="02-sgd",
          claim="At ten times the steps (3,000) more runs escape the shallow well at every "
                "batch size, but the order and the collapse between |B| = 4 and 8 stay.",
          function="sgd:double_well_escape_counts",
          params={"batch_sizes": [1, 2, 4, 8, 64], "steps": 3000, "seeds": [0, 1, 2],
                  "runs": 100, "learning_rate": 0.1, "n": 64, "tilt": 0.25, "offset_std": 1.0,
                  "well_seed": 0},
          minutes=0.2),
)


# --- the chapter's figures (kinds from optbook.figures): SGD with noise on the saddle ----

def sgd_noise_explorer(learning_rates: Sequence[float] = (0.05, 0.2, 0.9),
                       noise_levels: Sequence[float] = (0.0, 0.01, 0.1),
                       steps: int = 150, seed: int = 0):
    r"""An :class:`optbook.figures.Explorer`: SGD from (1.5, 0) on ``landscapes.saddle()``.

    Sliders: the learning rate :math:`\eta` and the gradient-noise level
    :math:`\sigma` (``noise_std`` of :func:`optbook.landscapes.trajectory`, the
    stand-in for minibatch noise; the same seed in every frame).
    """
    land = saddle()
    x0 = np.array([1.5, 0.0])

    def draw(lr, noise_std):
        runs = optimizer_runs(lambda lr: sgd(lr), {"lr": lr}, land, x0=x0, steps=steps,
                              noise_std=noise_std, seed=seed)
        return draw_runs(runs, land, loss_ylim=(1e-7, 5.0),
                         title=f"SGD, η = {lr:g}, gradient noise σ = {noise_std:g}")

    return Explorer(draw, {"lr": list(learning_rates), "noise_std": list(noise_levels)},
                    defaults={"lr": learning_rates[len(learning_rates) // 2],
                              "noise_std": noise_levels[len(noise_levels) // 2]},
                    labels={"lr": "η", "noise_std": "noise σ"},
                    title="SGD with gradient noise on the saddle f = x²/2 + y⁴/4 − y²/2")


def sgd_noise_figure(lr: float = 0.2, noise_std: float = 0.01, steps: int = 150,
                     seed: int = 0) -> Explorer:
    r"""Chapter 2's widget with continuous sliders: SGD from (1.5, 0) on the saddle
    :math:`f = x^2/2 + y^4/4 - y^2/2` with gradient noise :math:`\sigma\,\xi_t`.

    The page draws the same standard normals :math:`\xi_t` that
    ``landscapes.trajectory(..., noise_std=σ, seed=seed)`` draws (they are in
    the spec), so every slider position is the run optbook would compute.
    """
    land = saddle()
    spec = {
        "kind": "paths", "landscape": landscape_spec(land), "steps": int(steps), "escape": 10.0,
        "x0": [1.5, 0.0], "seed": seed, "noise": standard_normals(seed, int(steps)),
        "params": [param_spec("lr", "η", 0.01, 1.5, lr, "log"),
                   param_spec("noise_std", "noise σ", 0.0, 0.3, noise_std, "linear")],
        "optimizers": [optimizer_entry("sgd", "sgd", {"lr": {"param": "lr"}}, label="SGD",
                                        sigma={"param": "noise_std"})],
        "headline": "SGD, η = {lr}, gradient noise σ = {noise_std}",
    }
    return spec_figure(spec, title="SGD with gradient noise on the saddle f = x²/2 + y⁴/4 − y²/2",
                       landscape=land)
