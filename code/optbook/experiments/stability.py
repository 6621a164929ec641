r"""Chapter 6.3 (warmup, sharpness and attention logits): curvature against its stability
threshold, batch normalization with large batches, and attention logits at long horizons.

Every function is pure (explicit seeds) and returns NumPy arrays, numbers or JSON-able
dicts; ``book/06-stability.ipynb`` only calls and prints them, and
``tests/test_stability_experiments.py`` checks them against closed forms, dense Hessians
and ``torch.optim``.

* Sharpness by power iteration on Hessian-vector products for *any* loss of a stacked
  model (one eigenvalue per member), optionally of the preconditioned Hessian
  :math:`P^{-1}H` (:func:`top_eigenvalues`).
* Full-batch gradient descent and Adam on the mean-squared error of the teacher task
  (the loss Cohen et al. 2021 and Kalra & Barkeshli 2024 use), with linear warmup to a
  grid of peaks, constant-rate controls (warmup 0), the sharpness (GD) or the
  preconditioned sharpness (Adam, :math:`P = (1-\beta_1^t)(\mathrm{diag}\sqrt{\hat v_t}
  + \epsilon)`, Cohen et al. 2022) tracked against the threshold :math:`2/\eta_t` or
  :math:`(2+2\beta_1)/((1-\beta_1)\eta_t)` (:func:`sharpness_runs`,
  :func:`threshold`, :func:`sharpness_summary`), and the stored-runs figure with
  sliders for warmup and peak (:func:`sharpness_figure`).
* Batch normalization and large-batch SGD (Goyal et al. 2017): a stacked MLP with or
  without BatchNorm, SGD with momentum, the linear scaling rule and gradual warmup,
  every rate of a grid on several seeds (:func:`batchnorm_runs`,
  :func:`batchnorm_table`).
* A check of the power iteration against Lanczos (:func:`lanczos_eigenvalue`,
  :func:`power_vs_lanczos`, :func:`power_report`), and the rates between the stored
  grids' steps at 4,000 steps (:func:`sharpness_edge_rerun`, :func:`edge_report`); failed
  runs (dead networks read exactly 2/η) are left out of every ratio band.
* Attention-logit growth with and without qk-layernorm at a long horizon and two batch
  orders (:func:`qk_norm_long`), reusing ``warmup.warmup_grid``.
* What the page prints, from stored runs (:func:`sharpness_report`, :func:`check_report`,
  :func:`contrast_report`, :func:`batchnorm_report`, :func:`batchnorm_pooled_report`,
  :func:`qk_report`,
  :func:`qk_short_report`), and the stored reruns it prints (:data:`RERUNS`).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .. import schedules as sch
from .reruns import Rerun
from .schedules import StackedLinear, StackedMLP
from .training import teacher_classification
from .warmup import lr_sensitivity, sort_task, warmup_grid

__all__ = ["top_eigenvalues", "threshold", "mse_member_loss", "StackedAdam", "SharpnessRuns",
           "sharpness_runs", "sharpness_summary", "sharpness_report", "check_report", "sharpness_figure", "StackedBNMLP",
           "goyal_warmup", "batchnorm_runs", "batchnorm_table", "batchnorm_report",
           "batchnorm_pooled_report", "qk_norm_long", "lanczos_eigenvalue", "power_vs_lanczos",
           "power_report", "edge_report", "constant_output_loss",
           "qk_report", "qk_short_report", "contrast_report",
           # stored reruns
           "sharpness_rerun", "sharpness_check_rerun", "sharpness_edge_rerun", "power_check_rerun",
           "batchnorm_rerun",
           "RERUNS"]


def _int(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"Invalid {name}: {value!r} (must be an integer >= {low})")
    return int(value)


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not math.isfinite(float(value)) or value <= 0:
        raise ValueError(f"Invalid {name}: {value!r} (must be a finite number > 0)")
    return float(value)


def _beta(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"Invalid {name}: {value!r} (must lie in [0, 1))")
    return float(value)


def _warmups(values) -> tuple:
    values = tuple(values)
    if not values:
        raise ValueError("Invalid warmups: () (give at least one warmup length)")
    return tuple(_int("warmup", w, 0) for w in values)


def _rates(name: str, values) -> tuple:
    values = tuple(values)
    if not values:
        raise ValueError(f"Invalid {name}: () (give at least one rate)")
    return tuple(_positive(name[:-1] if name.endswith("s") else name, v) for v in values)


# --- sharpness of any loss, plain or preconditioned -------------------------------------

def top_eigenvalues(loss: torch.Tensor, params: Sequence[torch.Tensor], *, iters: int = 20,
                    precond: Optional[Sequence[torch.Tensor]] = None,
                    seed: int = 0) -> np.ndarray:
    r"""Each member's largest-magnitude eigenvalue of :math:`P^{-1}H` by power iteration.

    ``loss`` is the *sum* of the members' losses, and every tensor in ``params`` has the
    member axis first, so the Hessian is block-diagonal and one Hessian-vector product
    (Pearlmutter's double backward) serves all members; vectors are normalized per member.
    ``precond`` (optional, one positive tensor per parameter) is the diagonal of
    :math:`P`: the iteration runs on the symmetric :math:`P^{-1/2} H P^{-1/2}`, which has the
    eigenvalues of :math:`P^{-1}H`. Without it this is the sharpness
    :math:`\lambda_{\max}(H)`. Returns shape (members,), float64 (NaN for a member whose
    weights are not finite).
    """
    iters = _int("iters", iters)
    params = list(params)
    if not params:
        raise ValueError("Invalid params: [] (need at least one tensor)")
    members = params[0].shape[0]
    if any(p.dim() == 0 or p.shape[0] != members for p in params):
        raise ValueError(f"Invalid params: every tensor needs the member axis first "
                         f"({members} members); got shapes {[tuple(p.shape) for p in params]}")
    if precond is not None:
        precond = [d.detach() for d in precond]
        if len(precond) != len(params) or any(d.shape != p.shape for d, p in zip(precond, params)):
            raise ValueError("Invalid precond: need one tensor of each parameter's shape")
        if any(not bool((d > 0).all()) for d in precond):
            raise ValueError("Invalid precond: the diagonal of P must be positive")
        root = [d.rsqrt() for d in precond]
    g = torch.Generator().manual_seed(seed)
    v = [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params]

    def per_member(vs):
        return sum(t.reshape(members, -1).pow(2).sum(1) for t in vs).sqrt()

    def normalize(vs):
        norm = per_member(vs)
        return [t / norm.reshape((-1,) + (1,) * (t.dim() - 1)) for t in vs]

    v = normalize(v)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    eig = torch.zeros(members, dtype=torch.float64)
    for _ in range(iters):
        u = [a * r for a, r in zip(v, root)] if precond is not None else v
        hu = torch.autograd.grad(grads, params, grad_outputs=u, retain_graph=True)
        w = [h.detach() * r for h, r in zip(hu, root)] if precond is not None \
            else [h.detach() for h in hu]
        eig = sum((a * b).reshape(members, -1).sum(1) for a, b in zip(v, w)).double()
        v = normalize(w)
    return eig.numpy()


def lanczos_eigenvalue(loss: torch.Tensor, params: Sequence[torch.Tensor], *, steps: int = 120,
                       precond: Optional[Sequence[torch.Tensor]] = None,
                       seed: int = 0) -> float:
    r"""The largest-magnitude eigenvalue of :math:`P^{-1}H` (or of :math:`H`) over *all*
    ``params`` together, by ``steps`` steps of Lanczos with full re-orthogonalization on
    Hessian-vector products (float64 bookkeeping). For a stacked model this is the
    largest over its members; use it on a model with one member. A check on
    :func:`top_eigenvalues`, whose power iteration converges slowly when the top two
    eigenvalues are close."""
    steps = _int("steps", steps, 2)
    params = list(params)
    if not params:
        raise ValueError("Invalid params: [] (need at least one tensor)")
    root = None
    if precond is not None:
        precond = [d.detach() for d in precond]
        if len(precond) != len(params) or any(d.shape != p.shape for d, p in zip(precond, params)):
            raise ValueError("Invalid precond: need one tensor of each parameter's shape")
        if any(not bool((d > 0).all()) for d in precond):
            raise ValueError("Invalid precond: the diagonal of P must be positive")
        root = [d.rsqrt() for d in precond]
    shapes, sizes = [p.shape for p in params], [p.numel() for p in params]
    n = sum(sizes)
    steps = min(steps, n)
    grads = torch.autograd.grad(loss, params, create_graph=True)

    def matvec(vec: np.ndarray) -> np.ndarray:
        parts = torch.split(torch.as_tensor(vec, dtype=params[0].dtype), sizes)
        vs = [a.reshape(sh) for a, sh in zip(parts, shapes)]
        if root is not None:
            vs = [a * r for a, r in zip(vs, root)]
        hv = torch.autograd.grad(grads, params, grad_outputs=vs, retain_graph=True)
        if root is not None:
            hv = [h * r for h, r in zip(hv, root)]
        return torch.cat([h.detach().reshape(-1) for h in hv]).double().numpy()

    q = np.random.default_rng(seed).standard_normal(n)
    basis = [q / np.linalg.norm(q)]
    alpha, beta = [], []
    for _ in range(steps):
        w = matvec(basis[-1])
        alpha.append(float(w @ basis[-1]))
        qm = np.array(basis)
        for _ in range(2):                      # full re-orthogonalization, twice
            w = w - qm.T @ (qm @ w)
        b = float(np.linalg.norm(w))
        if b < 1e-10 * max(1.0, abs(alpha[-1])) or len(basis) == steps:
            break
        beta.append(b)
        basis.append(w / b)
    k = len(alpha)
    t = np.diag(alpha) + np.diag(beta[:k - 1], 1) + np.diag(beta[:k - 1], -1)
    ev = np.linalg.eigvalsh(t)
    return float(ev[np.argmax(np.abs(ev))])


def power_vs_lanczos(cases: Sequence[tuple], *, iters: Sequence[int] = (20, 100),
                     lanczos_steps: int = 120, n_train: int = 256) -> list:
    """For each case ``(optimizer, seed, peak, warmup, step)``: train one network of
    :func:`sharpness_runs` (same data, loss and schedule) to ``step`` and measure its
    (preconditioned, for Adam) sharpness by power iteration with each of ``iters`` steps
    and by Lanczos (:func:`lanczos_eigenvalue`). Returns one dict per case."""
    iters = tuple(_int("iters", i) for i in iters)
    if not iters:
        raise ValueError("Invalid iters: () (give at least one)")
    data = teacher_classification(n_train=n_train, n_val=64, seed=0)
    x, y = data.x_train, data.y_train
    rows = []
    for case in cases:
        if len(case) != 5:
            raise ValueError(f"Invalid case: {case!r} (need (optimizer, seed, peak, warmup, step))")
        optimizer, seed, peak, warmup, step = case
        if optimizer not in ("gd", "adam"):
            raise ValueError(f"Invalid optimizer: {optimizer!r} (one of 'gd', 'adam')")
        peak, warmup, step = _positive("peak", peak), _int("warmup", warmup, 0), _int("step", step)
        model = StackedMLP(x.shape[1], data.classes, [int(seed)], hidden=64, depth=2)
        params = list(model.parameters())
        adam = StackedAdam(params) if optimizer == "adam" else None
        rate = sch.linear_warmup(peak, warmup)
        loss = lambda: mse_member_loss(model(x), y, data.classes).sum()
        for t in range(step):
            for p in params:
                p.grad = None
            loss().backward()
            lr = np.array([float(rate(t))])
            if adam is None:
                with torch.no_grad():
                    for p in params:
                        p.sub_(float(lr[0]) * p.grad)
            else:
                adam.step(lr)
        pre = [d.clamp_min(1e-30) for d in adam.precond()] if adam is not None else None
        power = [float(top_eigenvalues(loss(), params, iters=i, precond=pre)[0]) for i in iters]
        lanc = lanczos_eigenvalue(loss(), params, steps=lanczos_steps, precond=pre)
        rows.append({"optimizer": optimizer, "seed": int(seed), "peak": peak, "warmup": warmup,
                     "step": step, "iters": list(iters), "power": power, "lanczos": lanc,
                     "threshold": float(threshold(float(rate(step)), optimizer))})
    return rows


def power_report(rows: list) -> None:
    """Print :func:`power_vs_lanczos`: per case, power iteration with each number of steps
    and Lanczos, and the verdict: how far below Lanczos the fewest iterations read."""
    if not rows:
        raise ValueError("Invalid rows: [] (nothing to print)")
    iters = list(rows[0]["iters"])
    print(f"{'case':<44}" + "".join(f"{f'power {i}':>11}" for i in iters) + f"{'Lanczos':>11}"
          f"{'power/Lanczos':>15}")
    worst = 0.0
    for r in rows:
        name = (f"{'Adam' if r['optimizer'] == 'adam' else 'GD'} η = {r['peak']:g}, warmup "
                f"{r['warmup']}, seed {r['seed']}, step {r['step']}")
        first = abs(r["power"][0]) / abs(r["lanczos"])
        print(f"{name:<44}" + "".join(f"{v:>11.4g}" for v in r["power"])
              + f"{r['lanczos']:>11.4g}{first:>15.3f}")
        worst = max(worst, 1 - first)
    print(f"{iters[0]} steps of power iteration read at most "
          f"{math.ceil(100 * worst - 1e-9):.0f} % below Lanczos")
    print(f"verdict: {iters[0]} steps of power iteration within 10 % of Lanczos in every case: "
          f"{'yes' if worst < 0.1 else 'no'}")


def threshold(eta, optimizer: str = "gd", b1: float = 0.9) -> np.ndarray:
    r"""The stability threshold of a quadratic's curvature at rate ``eta``.

    ``"gd"``: :math:`2/\eta`. ``"adam"``: :math:`(2+2\beta_1)/((1-\beta_1)\eta)`, the
    threshold of EMA-style heavy-ball momentum on the preconditioned curvature
    :math:`\lambda(P^{-1}H)` (Cohen et al. 2022: 38/η at β1 = 0.9). ``inf`` where η = 0.
    """
    if optimizer not in ("gd", "adam"):
        raise ValueError(f"Invalid optimizer: {optimizer!r} (one of 'gd', 'adam')")
    b1 = _beta("b1", b1)
    eta = np.asarray(eta, dtype=float)
    if np.any(eta < 0) or not np.all(np.isfinite(eta)):
        raise ValueError(f"Invalid eta: {eta!r} (rates must be finite and >= 0)")
    c = 2.0 if optimizer == "gd" else (2 + 2 * b1) / (1 - b1)
    with np.errstate(divide="ignore"):
        return np.where(eta > 0, c / np.where(eta > 0, eta, 1.0), np.inf)


def mse_member_loss(out: torch.Tensor, y: torch.Tensor, classes: int) -> torch.Tensor:
    r"""Each member's :math:`\tfrac{1}{2n}\sum_i\lVert f(x_i) - e_{y_i}\rVert^2` (one-hot
    targets), shape (M,). ``out`` is (n, classes, M) as :class:`StackedMLP` returns it;
    ``y`` holds class indices, shape (n,)."""
    if out.dim() != 3 or out.shape[1] != classes:
        raise ValueError(f"Invalid out: shape {tuple(out.shape)} (need (n, {classes}, members))")
    target = F.one_hot(y, classes).to(out.dtype).unsqueeze(-1)
    return 0.5 * (out - target).pow(2).sum(1).mean(0)


# --- a stacked Adam whose state is readable ---------------------------------------------

class StackedAdam:
    r"""Adam (Kingma & Ba; ``torch.optim.Adam`` without weight decay) on stacked
    parameters, member m at its own rate ``lr[m]`` each step; :meth:`precond` returns
    :math:`P_t = (1-\beta_1^t)(\sqrt{\hat v_t} + \epsilon)` for the preconditioned
    sharpness (the update is :math:`\theta \leftarrow \theta - \eta P_t^{-1} m_t`)."""

    def __init__(self, params, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
        self.params = list(params)
        self.b1, self.b2, self.eps = _beta("b1", b1), _beta("b2", b2), _positive("eps", eps)
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    @torch.no_grad()
    def step(self, lr) -> None:
        lr = torch.as_tensor(np.asarray(lr, dtype=np.float64))
        self.t += 1
        c1, c2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        for p, m, v in zip(self.params, self.m, self.v):
            g = p.grad
            m.mul_(self.b1).add_(g, alpha=1 - self.b1)
            v.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
            rate = lr.to(p.dtype).reshape((-1,) + (1,) * (p.dim() - 1))
            p.sub_(rate * (m / c1) / ((v / c2).sqrt() + self.eps))

    def precond(self) -> list:
        if self.t == 0:
            raise ValueError("Invalid precond: no step taken yet (v is zero)")
        c1, c2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        return [c1 * ((v / c2).sqrt() + self.eps) for v in self.v]


# --- full-batch GD and Adam on the MSE loss: sharpness against its threshold ----------

@dataclass
class SharpnessRuns:
    """One grid of full-batch runs. Arrays over (warmups, peaks, seeds, measurements);
    ``sharpness`` is the plain one (λ_max(H)), ``precond_sharpness`` λ_max(P⁻¹H) (Adam
    only, else None), ``eta`` and ``limit`` (the threshold) over (warmups, peaks,
    measurements). A diverged run (loss non-finite or above 1e6) is frozen and NaN from
    then on."""

    optimizer: str
    warmups: tuple
    peaks: tuple
    seeds: tuple
    steps: np.ndarray
    loss: np.ndarray
    sharpness: np.ndarray
    precond_sharpness: Optional[np.ndarray]
    eta: np.ndarray
    limit: np.ndarray
    init_loss: np.ndarray            # (seeds,)
    init_sharpness: np.ndarray       # (seeds,)


def sharpness_runs(optimizer: str, warmups: Sequence[int], peaks: Sequence[float],
                   seeds: Sequence[int], *, steps: int = 300, n_train: int = 256,
                   hidden: int = 64, depth: int = 2, measure_every: int = 10, iters: int = 20,
                   b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                   loss: str = "mse", dtype=torch.float32) -> SharpnessRuns:
    r"""Full-batch ``optimizer`` (``"gd"`` or ``"adam"``) on the half mean-squared error
    of ``n_train`` examples of the teacher task (one-hot targets), with linear warmup over
    ``w`` steps to each peak (``w = 0``: the constant-rate control), every
    (warmup, peak, seed) stacked in one network (:class:`StackedMLP`, seed = initial
    weights). After every ``measure_every`` steps: the loss, the sharpness
    :math:`\lambda_{\max}(H)` and, for Adam, :math:`\lambda_{\max}(P^{-1}H)`, each by
    ``iters`` steps of power iteration (:func:`top_eigenvalues`), and the threshold at the
    rate of the next step. ``loss="ce"`` uses the mean cross-entropy instead (for contrast
    with the MSE: its sharpness falls with the loss at any rate)."""
    if loss not in ("mse", "ce"):
        raise ValueError(f"Invalid loss: {loss!r} (one of 'mse', 'ce')")
    if optimizer not in ("gd", "adam"):
        raise ValueError(f"Invalid optimizer: {optimizer!r} (one of 'gd', 'adam')")
    warmups, peaks = _warmups(warmups), _rates("peaks", peaks)
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError("Invalid seeds: () (need at least one)")
    steps, measure_every = _int("steps", steps), _int("measure_every", measure_every)
    if measure_every > steps:
        raise ValueError(f"Invalid measure_every: {measure_every} (more than steps={steps})")
    data = teacher_classification(n_train=n_train, n_val=64, seed=0)
    x, y = data.x_train.to(dtype), data.y_train
    where = [(i, j, k) for i in range(len(warmups)) for j in range(len(peaks))
             for k in range(len(seeds))]
    m = len(where)
    model = StackedMLP(x.shape[1], data.classes, [seeds[k] for *_, k in where], hidden=hidden,
                       depth=depth, dtype=dtype)
    params = list(model.parameters())
    rates = np.stack([sch.linear_warmup(peaks[j], warmups[i])(np.arange(steps + 1))
                      for i, j, _ in where], axis=1)                 # (steps + 1, M)
    adam = StackedAdam(params, b1, b2, eps) if optimizer == "adam" else None
    alive = np.ones(m, dtype=bool)

    def losses():
        if loss == "ce":
            out = model(x)
            return F.cross_entropy(out, y[:, None].expand(-1, out.shape[-1]),
                                   reduction="none").mean(0)
        return mse_member_loss(model(x), y, data.classes)

    def sharp(pre=None):
        return top_eigenvalues(losses().sum(), params, iters=iters, precond=pre)

    with torch.no_grad():
        first = losses().double().numpy()
    init_sharp = sharp()
    measured, loss_rec, sharp_rec, pre_rec = [], [], [], []
    for t in range(steps):
        for p in params:
            p.grad = None
        per = losses()
        value = per.detach().double().numpy()
        alive &= np.isfinite(value) & (value < 1e6)
        per.sum().backward()
        lr = np.where(alive, rates[t], 0.0)
        if adam is None:
            with torch.no_grad():
                for p in params:
                    p.sub_(torch.as_tensor(lr, dtype=p.dtype).reshape((-1,) + (1,) * (p.dim() - 1))
                           * torch.nan_to_num(p.grad))
        else:
            for p in params:
                p.grad = torch.nan_to_num(p.grad)
            adam.step(lr)
        if (t + 1) % measure_every == 0:
            with torch.no_grad():
                now = losses().double().numpy()
            alive &= np.isfinite(now) & (now < 1e6)
            measured.append(t + 1)
            loss_rec.append(np.where(alive, now, np.nan))
            sharp_rec.append(np.where(alive, sharp(), np.nan))
            if adam is not None:
                pre = adam.precond()
                pre = [d.clamp_min(1e-30) for d in pre]
                pre_rec.append(np.where(alive, sharp(pre), np.nan))
    n = len(measured)
    shape = (len(warmups), len(peaks), len(seeds), n)
    grid = lambda rec: np.array(rec).T.reshape(shape)
    steps_measured = np.array(measured)
    eta = np.stack([[sch.linear_warmup(p, w)(np.minimum(steps_measured, steps - 1))
                     for p in peaks] for w in warmups])
    k0 = [where.index((0, 0, k)) for k in range(len(seeds))]
    return SharpnessRuns(optimizer, warmups, peaks, seeds, steps_measured, grid(loss_rec),
                         grid(sharp_rec), grid(pre_rec) if adam is not None else None, eta,
                         threshold(eta, optimizer, b1), first[k0], init_sharp[k0])


def sharpness_summary(run: SharpnessRuns, trains_below: float) -> dict:
    """What the page prints about one grid: per (warmup, peak), the final loss min/max over
    seeds, how many seeds train (final loss below ``trains_below``), the largest ratio of
    the (preconditioned) sharpness to its threshold over the run and over its last quarter,
    and the largest peak at which every seed trains; and the regime of the smallest
    constant rate (the sharpness at its end over the sharpness at initialization)."""
    s = run.precond_sharpness if run.optimizer == "adam" else run.sharpness
    ratio = np.abs(s) / run.limit[:, :, None, :]
    late = run.steps >= 0.75 * run.steps[-1]
    final = np.where(np.isfinite(run.loss[..., -1]), run.loss[..., -1], np.inf)
    trains = (final < trains_below).sum(-1)
    largest = []
    for i in range(len(run.warmups)):
        ok = [p for j, p in enumerate(run.peaks) if trains[i, j] == len(run.seeds)]
        largest.append(max(ok) if ok else None)
    with warnings.catch_warnings():  # a run diverged at every step: NaN, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        peak_ratio = np.nanmax(np.where(np.isfinite(ratio), ratio, np.nan), axis=(2, 3))
        late_ratio = np.nanmax(np.where(np.isfinite(ratio[..., late]), ratio[..., late], np.nan),
                               axis=(2, 3))
    j0 = 0
    i0 = run.warmups.index(0) if 0 in run.warmups else 0
    natural = np.abs(run.sharpness[i0, j0, :, -1]) / np.abs(run.init_sharpness)
    return {"final_min": final.min(-1), "final_max": final.max(-1), "trains": trains,
            "largest_all": largest, "max_ratio": peak_ratio, "late_ratio": late_ratio,
            "init_sharpness": run.init_sharpness, "natural_growth": natural,
            "smallest_peak": run.peaks[j0]}


def _as_dict(run: SharpnessRuns, trains_below: float) -> dict:
    out = {"optimizer": run.optimizer, "warmups": list(run.warmups), "peaks": list(run.peaks),
           "seeds": list(run.seeds), "steps": run.steps, "loss": run.loss,
           "sharpness": run.sharpness, "eta": run.eta, "limit": run.limit,
           "init_loss": run.init_loss, "init_sharpness": run.init_sharpness,
           "summary": sharpness_summary(run, trains_below)}
    if run.precond_sharpness is not None:
        out["precond_sharpness"] = run.precond_sharpness
    return out


def _late_band(res: dict, trains_below: float, frac: float = 0.75):
    """(min, max) over the seeds that train (final loss below ``trains_below``) and the last
    quarter of the run of |sharpness| / threshold (preconditioned for Adam), shape
    (warmups, peaks) each; NaN where no seed trains. A run that fails is left out: a dead
    network (GD at η = 2 here) keeps only its output bias, whose Hessian block is the
    identity, and reads exactly 2/η without being at any edge."""
    adam = res["optimizer"] == "adam"
    s = np.abs(_stored_array(res["precond_sharpness"] if adam else res["sharpness"]))
    limit = _stored_array(res["limit"])
    steps = np.array(res["steps"], dtype=float)
    late = steps >= frac * steps[-1]
    final = _stored_array(res["loss"])[..., -1]
    ok = np.isfinite(final) & (final < trains_below)
    ratio = np.where(ok[..., None], s / limit[:, :, None, :], np.nan)[..., late]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmin(ratio, axis=(2, 3)), np.nanmax(ratio, axis=(2, 3))


def _fmt(x, digits=2) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{x:.{digits}g}"


def sharpness_report(res: dict, ramp_peak: float, ramp_warmup: int,
                     trains_below: float = 0.1) -> None:
    """Print a stored :func:`sharpness_rerun` grid: how many seeds train at each (warmup,
    peak), the band of sharpness / threshold over the last quarter on the seeds that train
    (failed runs left out, see :func:`_late_band`), the largest peak at which every seed
    trains, the regime at the smallest rate, and how the sharpness and the loss move
    during the ``ramp_warmup``-step ramp to ``ramp_peak``."""
    adam = res["optimizer"] == "adam"
    warmups, peaks, n = res["warmups"], res["peaks"], len(res["seeds"])
    summ = res["summary"]
    trains = np.array(summ["trains"])
    lo, hi = _late_band(res, trains_below)
    what = "λ_max(P⁻¹H) / (38/η)" if adam else "λ_max(H) / (2/η)"
    print(f"{'Adam' if adam else 'GD'}, {res['steps'][-1]} steps, seeds {res['seeds']}: "
          f"seeds that train (final loss < {trains_below:g}) | {what} over the last quarter, "
          f"min–max over the seeds that train")
    print(f"{'':>8}" + "".join(f"{f'η = {p:g}':>17}" for p in peaks))
    for i, w in enumerate(warmups):
        cells = [f"{trains[i, j]}/{n} {_fmt(lo[i, j]):>5}–{_fmt(hi[i, j]):<5}"
                 for j in range(len(peaks))]
        print(f"{f'T_w={w}':>8}" + "".join(f"{c:>17}" for c in cells))
    print("largest peak at which every seed trains: " + ", ".join(
        f"warmup {w}: {_fmt(summ['largest_all'][i], 3)}" for i, w in enumerate(warmups)))
    init = np.array(summ["init_sharpness"], dtype=float)
    growth = np.array(summ["natural_growth"], dtype=float)
    p0 = summ["smallest_peak"]
    print(f"regime: sharpness at initialization {init.min():.2g}–{init.max():.2g}; at the "
          f"smallest constant rate η = {p0:g} it ends {growth.min():.2g}–{growth.max():.2g} "
          f"times larger: " + ("progressive sharpening" if growth.min() > 1.2 else
                                "sharpness reduction" if growth.max() < 0.8 else "neither"))
    # the ramp
    i, j = warmups.index(ramp_warmup), peaks.index(ramp_peak)
    s = np.abs(_stored_array(res["precond_sharpness"] if adam else res["sharpness"]))[i, j]
    limit = _stored_array(res["limit"])[i, j]
    steps = np.array(res["steps"])
    ramp = steps <= ramp_warmup
    r = s[:, ramp] / limit[ramp]
    ramp_loss = _stored_array(res["loss"])[i, j][:, ramp]
    met = [int(steps[ramp][np.argmax(row >= 0.9)]) if (row >= 0.9).any() else None for row in r]
    first = [int(np.argmax(row >= 0.9)) for row in r if (row >= 0.9).any()]
    after = [row[f:] for row, f in zip(r, first)]
    band = (min(a.min() for a in after), max(a.max() for a in after)) if after else (np.nan,) * 2
    above = sum(int((a > 1).sum()) for a in after)
    total = sum(len(a) for a in after)
    median = float(np.median(np.concatenate(after))) if after else np.nan
    print(f"ramp to η = {ramp_peak:g} over {ramp_warmup} steps: sharpness first within 0.9× "
          f"of its threshold at step {', '.join(_fmt(m, 3) for m in met)} (per seed), while "
          f"the threshold falls from {_fmt(np.nanmax(limit[ramp]), 3)} to "
          f"{_fmt(limit[ramp][-1], 3)}; from then to the end of the ramp it is above the "
          f"threshold at {above} of {total} measurements ({_fmt(band[0])}–{_fmt(band[1])}×, "
          f"median {_fmt(median)}×)")
    if after:
        low = [int(f + np.argmin(ls[f:])) for ls, f in zip(ramp_loss, first)]
        lows = [ls[k] for ls, k in zip(ramp_loss, low)]
        highs = [np.max(ls[k:]) for ls, k in zip(ramp_loss, low)]
        print(f"  loss during that stretch: falls to {_fmt(min(lows))}–{_fmt(max(lows))}, then "
              f"rises again to {_fmt(min(highs))}–{_fmt(max(highs))} before the ramp ends "
              f"(per seed, lowest and then highest)")
    if adam:
        final = _stored_array(res["loss"])[..., -1]
        ok = (np.isfinite(final) & (final < trains_below))[..., None]
        plain = np.where(ok, np.abs(_stored_array(res["sharpness"])), np.nan)
        eta = _stored_array(res["eta"])
        late = np.array(res["steps"]) >= 0.75 * res["steps"][-1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            gd_ratio = plain[..., late] * eta[:, :, None, late] / 2
            print(f"plain sharpness λ_max(H) over the last quarter, runs that train: "
                  f"{np.nanmin(plain[..., late]):.2g}–{np.nanmax(plain[..., late]):.2g}; as a "
                  f"fraction of GD's 2/η, at most: "
                  + ", ".join(f"η = {p:g}: {_fmt(np.nanmax(gd_ratio[:, j]))}"
                              for j, p in enumerate(peaks)
                              if np.isfinite(gd_ratio[:, j]).any()))


def check_report(res: dict, only: Optional[str] = None, n_seeds: int = 3) -> None:
    """Print a stored :func:`sharpness_check_rerun`: per optimizer, how many seeds train at
    each (warmup, peak), the final loss, the largest (preconditioned) sharpness / threshold
    over the last quarter (only where every one of the ``n_seeds`` seeds trains: the stored
    ratio is a maximum over seeds, and a failed run's reading means nothing, see
    :func:`_late_band`), and the largest peak at which every seed trains."""
    for name, r in res.items():
        if only is not None and name != only:
            continue
        trains, late = np.array(r["trains"]), _stored_array(r["late_ratio"])
        final_lo, final_hi = _stored_array(r["final_min"]), _stored_array(r["final_max"])
        n = len(r["seeds"]) if "seeds" in r else _int("n_seeds", n_seeds)
        print(f"{'Adam' if name == 'adam' else 'GD'}: seeds that train | final loss min–max "
              f"| largest ratio to the threshold, last quarter (— unless every seed trains)")
        for i, w in enumerate(r["warmups"]):
            print(f"  T_w={w:<4}" + "  ".join(
                f"η={p:g}: {trains[i, j]} | {_fmt(final_lo[i, j])}–{_fmt(final_hi[i, j])} | "
                f"{_fmt(late[i, j]) if trains[i, j] == n else '—'}"
                for j, p in enumerate(r["peaks"])))
        print("  largest peak at which every seed trains: " + ", ".join(
            f"warmup {w}: {_fmt(r['largest_all'][i], 3)}" for i, w in enumerate(r["warmups"])))


def constant_output_loss(n_train: int = 256) -> float:
    r"""The half MSE of the best constant output on the teacher task of
    :func:`sharpness_runs`: the class frequencies :math:`p`, loss
    :math:`\tfrac12(1 - \sum_c p_c^2)` (0.375 for four equally frequent classes)."""
    data = teacher_classification(n_train=_int("n_train", n_train), n_val=64, seed=0)
    p = np.bincount(data.y_train.numpy(), minlength=data.classes) / len(data.y_train)
    return float(0.5 * (1 - np.sum(p ** 2)))


def edge_report(res: dict, early: int = 400, trains_below: float = 0.1) -> None:
    """Print a stored :func:`sharpness_edge_rerun`: per optimizer, warmup and peak, how many
    seeds train at step ``early`` and at the end, the final loss (min–max over seeds) and
    the ratio of the (preconditioned) sharpness to its threshold over the last quarter on
    the seeds that train; then the verdicts the page uses: does some warmup make a peak
    usable that fails without it, and where does warmup only delay failure (every seed
    trains at ``early``, not every seed at the end)?"""
    for name, r in res.items():
        warmups, peaks, n = r["warmups"], r["peaks"], len(r["seeds"])
        loss, ratio = _stored_array(r["loss"]), _stored_array(r["ratio"])
        steps = list(r["steps"])
        if early not in steps:
            raise ValueError(f"Invalid early: {early!r} (measured at {steps})")
        e = steps.index(early)
        final = np.where(np.isfinite(loss[..., -1]), loss[..., -1], np.inf)
        ok_end = final < trains_below
        ok_early = np.where(np.isfinite(loss[..., e]), loss[..., e], np.inf) < trains_below
        late = np.array(steps) >= 0.75 * steps[-1]
        band = np.where(ok_end[..., None], ratio, np.nan)[..., late]
        label = "Adam" if name == "adam" else "GD"
        print(f"{label}, seeds {r['seeds']}: seeds that train at step {early} → at step "
              f"{steps[-1]} | final loss min–max | sharpness / threshold over the last "
              f"quarter, seeds that train")
        for i, w in enumerate(warmups):
            cells = []
            for j, p in enumerate(peaks):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    lo, hi = np.nanmin(band[i, j]), np.nanmax(band[i, j])
                cells.append(f"η={p:g}: {ok_early[i, j].sum()}→{ok_end[i, j].sum()}/{n} | "
                             f"{_fmt(final[i, j].min())}–{_fmt(final[i, j].max())} | "
                             f"{_fmt(lo)}–{_fmt(hi)}")
            print(f"  T_w={w:<5}" + "   ".join(cells))
        for j, p in enumerate(peaks):
            none = int(ok_end[warmups.index(0), j].sum()) if 0 in warmups else None
            good = [w for i, w in enumerate(warmups) if w > 0 and ok_end[i, j].all()]
            delayed = [w for i, w in enumerate(warmups) if w > 0 and ok_early[i, j].all()
                       and not ok_end[i, j].all()]
            print(f"verdict: {label} η = {p:g} at {steps[-1]} steps: every seed trains without "
                  f"warmup: {'yes' if none == n else 'no'}; with warmup: "
                  + (", ".join(str(w) for w in good) if good else "none")
                  + "; every seed trains at step " + str(early) + " but not at the end "
                  "(failure delayed): " + (", ".join(str(w) for w in delayed) if delayed else "none"))
    if "adam" in res:
        print(f"loss of the best constant output (½(1 − Σ p_c²), class frequencies p): "
              f"{constant_output_loss():.3f}")


def _failed(run: SharpnessRuns, j: int) -> np.ndarray:
    """Seeds of the constant-rate run at ``peaks[j]`` (warmup index 0) whose final loss is
    not finite or above their loss at initialization: diverged or dead networks."""
    loss = run.loss[0, j, :, -1]
    return ~np.isfinite(loss) | (loss > run.init_loss)


def contrast_report(runs: dict, slow: Optional[SharpnessRuns] = None) -> None:
    """Print, for full-batch GD runs at constant rates with each loss (``runs`` maps
    "ce"/"mse" to :class:`SharpnessRuns` with warmup 0), the sharpness at initialization and
    at the end, its ratio to 2/η, and the final loss (min–max over seeds), flagging runs
    that failed (final loss above the initial one: :func:`_failed`); then one verdict line
    per loss: at every rate but the smallest, on every seed that did not fail, does the
    sharpness end below half of 2/η, or within 0.8–1.5 times it? ``slow`` (optional): a
    longer cross-entropy run at one small rate, for how its sharpness rises and falls."""
    for name, run in runs.items():
        label = "cross-entropy" if name == "ce" else "half MSE"
        s0 = run.init_sharpness
        print(f"{label}: sharpness at initialization {s0.min():.2g}–{s0.max():.2g}, loss "
              f"{_fmt(run.init_loss.min())}–{_fmt(run.init_loss.max())}")
        for j, p in enumerate(run.peaks):
            end, loss = np.abs(run.sharpness[0, j, :, -1]), run.loss[0, j, :, -1]
            failed = _failed(run, j)
            print(f"  η = {p:<4g} (2/η = {2 / p:<4g}): after {run.steps[-1]} steps sharpness "
                  f"{_fmt(np.nanmin(end))}–{_fmt(np.nanmax(end))} "
                  f"({_fmt(np.nanmin(end) * p / 2)}–{_fmt(np.nanmax(end) * p / 2)} × 2/η), loss "
                  f"{_fmt(np.nanmin(loss))}–{_fmt(np.nanmax(loss))}"
                  + (f"; FAILED on {int(failed.sum())}/{len(failed)} seeds (loss above its start)"
                     if failed.any() else ""))
    for name, run in runs.items():
        label = "cross-entropy" if name == "ce" else "half MSE"
        big = [j for j, p in enumerate(run.peaks) if p > min(run.peaks)]
        ratio = np.abs(run.sharpness[0, big, :, -1]) * np.array(run.peaks)[big, None] / 2
        if not big:
            continue
        alive = ~np.array([_failed(run, j) for j in big], dtype=bool)
        kept = ratio[alive]
        left = int((~alive).sum())
        print(f"verdict: {label}, η = {', '.join(f'{run.peaks[j]:g}' for j in big)}, runs that "
              f"did not fail ({left} left out): sharpness ends below half of 2/η on every one: "
              f"{'yes' if kept.size and np.all(kept < 0.5) else 'no'}; within 0.8–1.5 × 2/η on "
              f"every one: {'yes' if kept.size and np.all((kept >= 0.8) & (kept <= 1.5)) else 'no'}")
    if slow is not None:
        s, loss = np.abs(slow.sharpness[0, 0]), slow.loss[0, 0]
        top = np.argmax(s, axis=-1)
        print(f"cross-entropy at η = {slow.peaks[0]:g} for {slow.steps[-1]} steps: sharpness "
              f"rises from {_fmt(slow.init_sharpness.min())}–{_fmt(slow.init_sharpness.max())} "
              f"to at most {_fmt(s.max(-1).min())}–{_fmt(s.max(-1).max())} (step "
              f"{', '.join(str(int(slow.steps[k])) for k in top)}); the loss ends at "
              f"{_fmt(loss[:, -1].min())}–{_fmt(loss[:, -1].max())}")
        # the last reading is small and its top eigenvalues close: its digits are not robust
        print(f"  sharpness at step {slow.steps[-1]}: {_fmt(s[:, -1].min())}–"
              f"{_fmt(s[:, -1].max())}")
        print(f"verdict: cross-entropy at η = {slow.peaks[0]:g}: sharpness ends below half its "
              f"peak on every seed: {'yes' if np.all(s[:, -1] < 0.5 * s.max(-1)) else 'no'}; "
              f"below 1 on every seed: {'yes' if np.all(s[:, -1] < 1) else 'no'}")


def batchnorm_report(res: dict, trains_below: float = 0.5) -> None:
    """Print a stored :func:`batchnorm_rerun`: per network and batch size, for each gradual
    warmup, the best rate, its validation loss and accuracy as mean (min–max) over seeds,
    and the largest rate at which every seed trains; then the verdicts the page uses."""
    rows = batchnorm_table(res, trains_below)
    for label, r in res.items():
        if label.startswith("bn-"):
            print(f"batch {r['batch_size']}: {r['steps']} steps, rates "
                  + ", ".join(f"{lr:g}" for lr in r["lrs"]) + "; gradual warmup over "
                  + ", ".join(f"{w:g}" for w in r["warmup_epochs"]) + " epochs")
    print(f"{'network, batch':<18}{'warmup':>8}{'best η':>8}{'val loss':>24}{'val accuracy':>24}"
          f"{f'largest η < {trains_below:g}':>22}")
    for r in rows:
        print(f"{r['label']:<18}{r['warmup_epochs']:>6g} e{r['best_lr']:>8g}"
              f"{r['loss_mean']:>10.3f} ({r['loss_min']:.3f}–{r['loss_max']:.3f})"
              f"{r['acc_mean']:>10.3f} ({r['acc_min']:.3f}–{r['acc_max']:.3f})"
              f"{_fmt(r['largest_ok'], 3):>22}")
    for net in ("bn", "plain"):
        name = "BatchNorm" if net == "bn" else "no normalization"
        large = [r for r in rows if r["label"].startswith(net + "-") and not r["label"].endswith("-256")]
        small = [r for r in rows if r["label"] == net + "-256"][0]
        none = [r for r in large if r["warmup_epochs"] == 0][0]
        warm = [r for r in large if r["warmup_epochs"] > 0]
        best = min(warm, key=lambda r: r["loss_mean"])
        separated = best["loss_max"] < none["loss_min"]
        print(f"verdict ({name}, large batch): best tuned loss with warmup "
              f"({best['warmup_epochs']:g} epochs) {best['loss_mean']:.3f}, without "
              f"{none['loss_mean']:.3f}; better on every seed (ranges apart): "
              f"{'yes' if separated else 'no'}; largest rate every seed trains: without warmup "
              f"{_fmt(none['largest_ok'], 3)}, with " + ", ".join(
                  f"{r['warmup_epochs']:g} epochs {_fmt(r['largest_ok'], 3)}" for r in warm))
        k = res[large[0]["label"]]["k"]
        print(f"verdict ({name}): small batch best η {small['best_lr']:g} × k = {k:g} is "
              f"{small['best_lr'] * k:g}; large batch best η {none['best_lr']:g} (no warmup), "
              f"{best['best_lr']:g} (warmup); tuned loss small batch {small['loss_mean']:.3f}, "
              f"large batch {min(r['loss_mean'] for r in large):.3f}")


def batchnorm_pooled_report(records: Sequence[dict], trains_below: float = 0.5) -> None:
    """Print several stored :func:`batchnorm_rerun` results (same grids, other seeds and
    batch orders) pooled: per network and batch size and warmup, the best rate over all
    seeds with its loss as mean (min–max), how many seeds train at each large-batch rate,
    and the largest rate at which every seed trains; then the verdicts the page uses."""
    records = list(records)
    if not records:
        raise ValueError("Invalid records: [] (need at least one stored result)")
    labels = list(records[0])
    for r in records[1:]:
        if list(r) != labels or any(r[l]["lrs"] != records[0][l]["lrs"] or
                                    r[l]["warmup_epochs"] != records[0][l]["warmup_epochs"]
                                    for l in labels):
            raise ValueError("Invalid records: the grids differ; only like grids pool")
    arr = lambda v: v if isinstance(v, np.ndarray) else _stored_array(v)
    pooled = {l: {**records[0][l],
                  "seeds": sum((list(r[l]["seeds"]) for r in records), []),
                  "val_loss": np.concatenate([arr(r[l]["val_loss"]) for r in records], -1),
                  "val_acc": np.concatenate([arr(r[l]["val_acc"]) for r in records], -1)}
              for l in labels}
    n = len(pooled[labels[0]]["seeds"])
    rows = batchnorm_table(pooled, trains_below)
    print(f"pooled over {len(records)} stored reruns, {n} seeds: "
          f"{pooled[labels[0]]['seeds']}")
    print(f"{'network, batch':<16}{'warmup':>8}{'best η':>8}{'val loss, mean (min–max)':>28}"
          f"{f'largest η, all < {trains_below:g}':>24}   seeds that train at each rate")
    for r in rows:
        loss = pooled[r["label"]]["val_loss"][pooled[r["label"]]["warmup_epochs"].index(r["warmup_epochs"])]
        counts = " ".join(f"{lr:g}:{int((loss[j] < trains_below).sum())}"
                          for j, lr in enumerate(pooled[r["label"]]["lrs"]))
        print(f"{r['label']:<16}{r['warmup_epochs']:>6g} e{r['best_lr']:>8g}"
              f"{r['loss_mean']:>12.3f} ({r['loss_min']:.3f}–{r['loss_max']:.3f})"
              f"{_fmt(r['largest_ok'], 3):>22}     {counts}")
    for net in ("bn", "plain"):
        name = "BatchNorm" if net == "bn" else "no normalization"
        large = [r for r in rows if r["label"].startswith(net + "-") and not r["label"].endswith("-256")]
        small = [r for r in rows if r["label"] == net + "-256"][0]
        label = large[0]["label"]
        k = pooled[label]["k"]
        print(f"verdict ({name}, large batch, {n} seeds): largest rate every seed trains: "
              + ", ".join(f"warmup {r['warmup_epochs']:g} epochs {_fmt(r['largest_ok'], 3)}"
                          for r in large)
              + "; best tuned loss: " + ", ".join(
                  f"warmup {r['warmup_epochs']:g} {r['loss_mean']:.3f} at η {r['best_lr']:g}"
                  for r in large))
        scaled = small["best_lr"] * k
        lrs = pooled[label]["lrs"]
        if scaled in lrs:
            j = lrs.index(scaled)
            print(f"verdict ({name}): at the linearly scaled rate {scaled:g} (= k × {small['best_lr']:g},"
                  f" the small batch's best over {n} seeds): seeds that train "
                  + ", ".join(f"warmup {w:g} {int((pooled[label]['val_loss'][i, j] < trains_below).sum())}/{n}"
                              for i, w in enumerate(pooled[label]["warmup_epochs"])))
        per_set = []
        for r in records:
            sub = batchnorm_table({label: r[label]}, trains_below)
            per_set.append(f"seeds {r[label]['seeds'][0]}–{r[label]['seeds'][-1]}: "
                           + "/".join(_fmt(x["largest_ok"], 3) for x in sub))
        print("  per seed set, largest rate every seed trains (warmup "
              + "/".join(f"{w:g}" for w in pooled[label]["warmup_epochs"]) + " epochs): "
              + "; ".join(per_set))
    bn = {r["warmup_epochs"]: r["largest_ok"] for r in rows if r["label"].startswith("bn-")
          and not r["label"].endswith("-256")}
    plain = {r["warmup_epochs"]: r["largest_ok"] for r in rows if r["label"].startswith("plain-")
             and not r["label"].endswith("-256")}
    ratios = [bn[w] / plain[w] for w in bn if bn[w] and plain.get(w)]
    if ratios:
        print(f"verdict: with BatchNorm the largest rate every seed trains is "
              f"{min(ratios):g}–{max(ratios):g} times that without (same warmup)")


def qk_report(res: dict) -> None:
    """Print a stored :func:`qk_norm_long`: per rate, the largest attention logit and the
    final validation loss (min–max over all seeds) without and with qk-layernorm, the
    learning-rate sensitivity of each batch order, and the verdicts the page uses."""
    lrs, n = res["lrs"], len(res["seeds"])
    a, b = res["runs"]["pre"], res["runs"]["pre-qk"]
    la, lb = _stored_array(a["val_loss"]), _stored_array(b["val_loss"])
    ga, gb = _stored_array(a["max_logit"]), _stored_array(b["max_logit"])
    print(f"{res['eval_steps'][-1]} steps, seeds {res['seeds']} (batch orders of groups of "
          f"{res['group']}); min–max over seeds")
    print(f"{'η':>7}{'max logit':>22}{'(qk-norm)':>20}{'val loss':>20}{'(qk-norm)':>18}")
    for j, lr in enumerate(lrs):
        print(f"{lr:>7g}{np.nanmin(ga[j]):>13.1f}–{np.nanmax(ga[j]):<7.1f}"
              f"{np.nanmin(gb[j]):>11.1f}–{np.nanmax(gb[j]):<7.1f}"
              f"{np.nanmin(la[j]):>11.3f}–{np.nanmax(la[j]):<7.3f}"
              f"{np.nanmin(lb[j]):>9.3f}–{np.nanmax(lb[j]):.3f}")
    sa, sb = a["sensitivity"], b["sensitivity"]
    print("learning-rate sensitivity per batch order, without qk-layernorm: "
          + ", ".join(f"{v:.2f}" for v in sa) + "; with: " + ", ".join(f"{v:.2f}" for v in sb))
    top = lrs.index(max(lrs))
    print(f"verdict: without qk-layernorm at η = {lrs[top]:g}: largest logit above 1,000 on "
          f"{int((ga[top] > 1e3).sum())}/{n} seeds, loss near chance (> 2.2) on "
          f"{int((la[top] > 2.2).sum())}/{n}")
    print(f"verdict: with qk-layernorm: largest logit below 10 at every rate and seed: "
          f"{'yes' if np.nanmax(gb) < 10 else 'no'}; loss below 0.5 at η = {lrs[top]:g} on "
          f"{int((lb[top] < 0.5).sum())}/{n} seeds")
    print(f"verdict: qk-layernorm lowers the sensitivity to less than half in every batch "
          f"order: {'yes' if all(y < x / 2 for x, y in zip(sa, sb)) else 'no'}")
    print("median loss over seeds per rate, without / with qk-layernorm: " + ", ".join(
        f"η = {lr:g}: {np.nanmedian(la[j]):.3f} / {np.nanmedian(lb[j]):.3f}"
        for j, lr in enumerate(lrs)))
    g = res["group"]
    rest = [j for j in range(len(lrs)) if j != top]
    drop = lambda x: [lr_sensitivity(x[rest][:, k:k + g], math.log(16))
                      for k in range(0, x.shape[1], g)]
    print(f"learning-rate sensitivity per batch order with η = {lrs[top]:g} left out, without "
          f"qk-layernorm: " + ", ".join(f"{v:.2f}" for v in drop(la)) + "; with: "
          + ", ".join(f"{v:.2f}" for v in drop(lb)))
    best_a, best_b = np.nanmean(la, 1).min(), np.nanmean(lb, 1).min()
    print(f"verdict: best rate's mean loss without qk-layernorm {best_a:.3f} "
          f"(η = {lrs[int(np.nanargmin(np.nanmean(la, 1)))]:g}), with {best_b:.3f} "
          f"(η = {lrs[int(np.nanargmin(np.nanmean(lb, 1)))]:g})")


def qk_short_report(res: dict) -> None:
    """Print the 200-step qk-layernorm rerun (``warmup.warmup_grid_rerun``
    with one warmup): per rate, largest logit and loss (min–max over seeds) without and
    with qk-layernorm, and both learning-rate sensitivities."""
    a, b = res["runs"]["pre"], res["runs"]["pre-qk"]
    for j, lr in enumerate(res["lrs"]):
        print(f"  η = {lr:<6g} largest logit {min(a['max_logit'][0][j]):.1f}–"
              f"{max(a['max_logit'][0][j]):.1f} (qk-norm {min(b['max_logit'][0][j]):.1f}–"
              f"{max(b['max_logit'][0][j]):.1f}), loss {min(a['val_loss'][0][j]):.3f}–"
              f"{max(a['val_loss'][0][j]):.3f} (qk-norm {min(b['val_loss'][0][j]):.3f}–"
              f"{max(b['val_loss'][0][j]):.3f})")
    print(f"  learning-rate sensitivity without qk-layernorm {a['lr_sensitivity'][0]:.2f}, "
          f"with {b['lr_sensitivity'][0]:.2f}")


def _stored_array(values) -> np.ndarray:
    """A stored rerun's nested list back as floats (the strings 'nan'/'inf' included)."""
    return np.array(values, dtype=object).astype(float) if values is not None else None


def sharpness_figure(record: dict):
    """The stored grid of :func:`sharpness_rerun` as a figure drawn in the page
    (:func:`optbook.figures.curves_figure`): sliders for the warmup length and the
    peak rate; left, each seed's sharpness (for Adam the preconditioned one) and the
    threshold (2/η_t, or 38/η_t for Adam at β1 = 0.9) on a log scale; right, the loss."""
    from ..figures import Axis, Panel, Series, curves_figure

    warmups, peaks = record["warmups"], record["peaks"]
    steps = [float(s) for s in record["steps"]]
    adam = record["optimizer"] == "adam"
    sharp = _stored_array(record["precond_sharpness"] if adam else record["sharpness"])
    loss = _stored_array(record["loss"])
    limit = _stored_array(record["limit"])
    name = "λ_max(P⁻¹H)" if adam else "λ_max(H)"
    thr = "(2+2β₁)/((1−β₁)η_t)" if adam else "2/η_t"

    def data(warmup, peak):
        i, j = warmups.index(warmup), peaks.index(peak)
        return [{"sharpness": np.abs(sharp[i, j]), "threshold": limit[i, j][None, :]},
                {"loss": loss[i, j]}]

    finite = lambda a: a[np.isfinite(a) & (a > 0)]
    s_all = np.concatenate([finite(np.abs(sharp)).ravel(), finite(limit).ravel()])
    l_all = finite(loss)
    return curves_figure(
        data,
        axes=[Axis("warmup", "warmup steps", warmups, default=warmups[len(warmups) // 2]),
              Axis("peak", "peak η", peaks, default=peaks[len(peaks) // 2])],
        panels=[Panel(f"sharpness {name} and its threshold {thr}", x=steps,
                      ylabel=f"{name} (units of 1/η)", yscale="log",
                      ylim=(float(s_all.min()) / 1.5, float(s_all.max()) * 1.5)),
                Panel("training loss (half MSE), each seed", x=steps, ylabel="training loss",
                      yscale="log", ylim=(float(l_all.min()) / 1.5, float(l_all.max()) * 1.5))],
        series=[Series("sharpness", name, color="#1f77b4"),
                Series("threshold", thr, reference=True, mean=False),
                Series("loss", "training loss", color="#d62728")],
        title=f"full-batch {'Adam' if adam else 'gradient descent'} on MSE: sharpness against "
              "its stability threshold, by warmup length and peak rate",
        headline=("Adam" if adam else "GD") + ", linear warmup over {warmup} steps to η = {peak}")


# --- batch normalization and large-batch SGD (Goyal et al. 2017) --------------------------

class StackedBNMLP(nn.Module):
    """``M`` independent ReLU MLPs (``depth`` hidden layers of ``hidden``), optionally with
    BatchNorm (per member, batch statistics in training, running ones in evaluation)
    between each hidden linear map and its ReLU. Input (n, in); output (n, classes, M)."""

    def __init__(self, in_dim: int, out_dim: int, seeds: Sequence[int], hidden: int = 64,
                 depth: int = 3, batch_norm: bool = True, momentum: float = 0.1,
                 eps: float = 1e-5):
        super().__init__()
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise ValueError("Invalid seeds: [] (need at least one member)")
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        self.members, self.batch_norm = len(seeds), bool(batch_norm)
        self.momentum, self.eps = _beta("momentum", momentum), _positive("eps", eps)
        dims = [_int("in_dim", in_dim)] + [_int("hidden", hidden)] * _int("depth", depth) \
            + [_int("out_dim", out_dim)]
        self.layers = nn.ModuleList(StackedLinear(a, b, gens) for a, b in zip(dims, dims[1:]))
        m = self.members
        if self.batch_norm:
            self.gamma = nn.ParameterList(nn.Parameter(torch.ones(m, 1, hidden)) for _ in range(depth))
            self.beta = nn.ParameterList(nn.Parameter(torch.zeros(m, 1, hidden)) for _ in range(depth))
            for d in range(depth):
                self.register_buffer(f"mean{d}", torch.zeros(m, 1, hidden))
                self.register_buffer(f"var{d}", torch.ones(m, 1, hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.unsqueeze(0).expand(self.members, *x.shape)
        for d, layer in enumerate(self.layers):
            h = layer(h)
            if d == len(self.layers) - 1:
                break
            if self.batch_norm:
                rm, rv = getattr(self, f"mean{d}"), getattr(self, f"var{d}")
                if self.training:
                    mean, var = h.mean(1, keepdim=True), h.var(1, unbiased=False, keepdim=True)
                    with torch.no_grad():
                        n = h.shape[1]
                        rm.mul_(1 - self.momentum).add_(self.momentum * mean)
                        rv.mul_(1 - self.momentum).add_(self.momentum * var * n / max(n - 1, 1))
                else:
                    mean, var = rm, rv
                h = (h - mean) / torch.sqrt(var + self.eps) * self.gamma[d] + self.beta[d]
            h = torch.relu(h)
        return h.permute(1, 2, 0)


def goyal_warmup(peak: float, warmup_steps: int, k: float) -> Callable:
    r"""Goyal et al. (2017)'s gradual warmup: from :math:`\eta/k` (the small-batch rate
    when ``peak`` is :math:`k` times it by the linear scaling rule) linearly to
    :math:`\eta` over ``warmup_steps`` steps, then constant. ``warmup_steps = 0``: constant."""
    peak, k = _positive("peak", peak), _positive("k", k)
    warmup_steps = _int("warmup_steps", warmup_steps, 0)
    if k < 1:
        raise ValueError(f"Invalid k: {k!r} (the batch-size ratio must be >= 1)")

    def rate(t):
        t = np.asarray(t, dtype=float)
        if warmup_steps == 0:
            return np.full_like(t, peak)
        frac = np.minimum(t, warmup_steps) / warmup_steps
        return peak * (1 / k + (1 - 1 / k) * frac)

    return rate


def batchnorm_runs(batch_norm: bool, batch_size: int, lrs: Sequence[float],
                   warmup_epochs: Sequence[float], seeds: Sequence[int], *, epochs: int,
                   base_batch: int = 256, n_train: int = 16384, n_val: int = 2048,
                   hidden: int = 64, depth: int = 3, momentum: float = 0.9,
                   weight_decay: float = 1e-4, label_noise: float = 0.0,
                   data_seed: int = 0, batch_seed: int = 0) -> dict:
    r"""SGD with heavy-ball momentum (``torch.optim.SGD``'s rule, weight decay added to the
    gradient) on the teacher task for ``epochs`` epochs at ``batch_size``, every rate of
    ``lrs`` with every gradual warmup of ``warmup_epochs`` (:func:`goyal_warmup` from
    rate/k, k = batch_size/base_batch; 0 = none) and every seed, stacked; with or without
    BatchNorm (:class:`StackedBNMLP`). Returns the final validation loss and accuracy
    (evaluation mode), shape (warmups, lrs, seeds), and the steps run; a run whose
    training loss turns non-finite or above 1e3 counts as diverged (loss ``inf``)."""
    batch_size, epochs = _int("batch_size", batch_size), _int("epochs", epochs)
    base_batch = _int("base_batch", base_batch)
    lrs, seeds = _rates("lrs", lrs), tuple(int(s) for s in seeds)
    warmup_epochs = tuple(float(w) for w in warmup_epochs)
    if not seeds or not warmup_epochs or any(w < 0 for w in warmup_epochs):
        raise ValueError(f"Invalid seeds {seeds!r} or warmup_epochs {warmup_epochs!r}")
    momentum = _beta("momentum", momentum)
    if weight_decay < 0:
        raise ValueError(f"Invalid weight_decay: {weight_decay!r} (must be >= 0)")
    data = teacher_classification(n_train=n_train, n_val=n_val, label_noise=label_noise,
                                  seed=data_seed)
    if batch_size > n_train:
        raise ValueError(f"Invalid batch_size: {batch_size} (more than n_train={n_train})")
    per_epoch = n_train // batch_size
    steps = per_epoch * epochs
    k = max(batch_size / base_batch, 1.0)
    where = [(i, j, s) for i in range(len(warmup_epochs)) for j in range(len(lrs))
             for s in range(len(seeds))]
    rates = np.stack([goyal_warmup(lrs[j], round(warmup_epochs[i] * per_epoch), k)(np.arange(steps))
                      for i, j, _ in where], axis=1)
    model = StackedBNMLP(data.x_train.shape[1], data.classes, [seeds[s] for *_, s in where],
                         hidden=hidden, depth=depth, batch_norm=batch_norm)
    params = list(model.parameters())
    buf = [torch.zeros_like(p) for p in params]
    alive = np.ones(len(where), dtype=bool)
    g = torch.Generator().manual_seed(batch_seed)
    y_stack = lambda yy: yy.unsqueeze(-1).expand(-1, len(where))
    model.train()
    for t in range(steps):
        if t % per_epoch == 0:
            order = torch.randperm(n_train, generator=g)
        idx = order[(t % per_epoch) * batch_size:(t % per_epoch + 1) * batch_size]
        xb, yb = data.x_train[idx], data.y_train[idx]
        for p in params:
            p.grad = None
        per = F.cross_entropy(model(xb), y_stack(yb), reduction="none").mean(0)
        value = per.detach().double().numpy()
        alive &= np.isfinite(value) & (value < 1e3)
        per.sum().backward()
        lr = torch.as_tensor(np.where(alive, rates[t], 0.0), dtype=torch.float32)
        with torch.no_grad():
            for p, b in zip(params, buf):
                grad = torch.nan_to_num(p.grad) + weight_decay * p
                b.mul_(momentum).add_(grad)
                p.sub_(lr.reshape((-1,) + (1,) * (p.dim() - 1)) * b)
    model.eval()
    with torch.no_grad():
        out = model(data.x_val)
        loss = F.cross_entropy(out, y_stack(data.y_val), reduction="none").mean(0).double().numpy()
        acc = (out.argmax(1) == data.y_val[:, None]).double().mean(0).numpy()
    loss = np.where(alive & np.isfinite(loss), loss, np.inf)
    acc = np.where(alive, acc, np.nan)
    shape = (len(warmup_epochs), len(lrs), len(seeds))
    return {"batch_norm": bool(batch_norm), "batch_size": batch_size, "lrs": list(lrs),
            "warmup_epochs": list(warmup_epochs), "seeds": list(seeds), "steps": steps,
            "k": k, "val_loss": loss.reshape(shape), "val_acc": acc.reshape(shape)}


def batchnorm_table(runs: dict, trains_below: float = 0.5) -> list:
    """Rows for the page: per (batch norm, batch size, warmup), the best rate by mean
    validation loss over seeds, its loss and accuracy as mean (min-max), how many rates
    of the grid every seed trains at (validation loss below ``trains_below``; chance is
    ln 4 = 1.39), and the largest such rate. ``runs`` maps a label to a
    :func:`batchnorm_runs` result (arrays or stored lists)."""
    rows = []
    for label, r in runs.items():
        loss = _stored_array(r["val_loss"]) if not isinstance(r["val_loss"], np.ndarray) \
            else r["val_loss"]
        acc = _stored_array(r["val_acc"]) if not isinstance(r["val_acc"], np.ndarray) \
            else r["val_acc"]
        for i, w in enumerate(r["warmup_epochs"]):
            mean = np.where(np.isfinite(loss[i]).all(-1), loss[i].mean(-1), np.inf)
            j = int(np.argmin(mean))
            ok = [lr for jj, lr in enumerate(r["lrs"]) if np.all(loss[i, jj] < trains_below)]
            rows.append({"label": label, "warmup_epochs": w, "best_lr": r["lrs"][j],
                         "loss_mean": float(mean[j]), "loss_min": float(loss[i, j].min()),
                         "loss_max": float(loss[i, j].max()),
                         "acc_mean": float(np.nanmean(acc[i, j])),
                         "acc_min": float(np.nanmin(acc[i, j])),
                         "acc_max": float(np.nanmax(acc[i, j])),
                         "rates_ok": len(ok), "largest_ok": max(ok) if ok else None})
    return rows


# --- attention logits at a long horizon --------------------------------------------------

def qk_norm_long(lrs: Sequence[float], seeds: Sequence[int], steps: int, group: int = 3,
                 warmup: int = 20, layers: int = 3, batch_size: int = 16,
                 n_val: int = 512) -> dict:
    """The Pre-LN qk-layernorm sweep of 6.3 (``warmup.warmup_grid``) at ``steps`` steps,
    the seeds split into groups of ``group``: each group is one stacked run, so it draws
    its batches in its own order (that of its first seed). Returns, keyed ``"pre"`` and
    ``"pre-qk"``, ``val_loss[j][s]`` and ``max_logit[j][s]`` for rate ``lrs[j]`` and seed
    ``seeds[s]``, ``curves[j][s][e]`` (validation loss every ``steps // 9`` steps) and the
    learning-rate sensitivity of each group."""
    seeds = [int(s) for s in seeds]
    group = _int("group", group)
    if not seeds or len(seeds) % group:
        raise ValueError(f"Invalid seeds: {seeds!r} (need a multiple of group={group})")
    data = sort_task(n_train=4096, n_val=n_val, length=8, vocab=16, seed=0)
    every = max(steps // 9, 1)
    out = {}
    for qk in (False, True):
        parts = [warmup_grid("pre", [warmup], lrs, seeds[g:g + group], data, steps=steps,
                             layers=layers, batch_size=batch_size, eval_every=every, qk_norm=qk)
                 for g in range(0, len(seeds), group)]
        out["pre-qk" if qk else "pre"] = {
            "val_loss": np.concatenate([p.val_loss[0] for p in parts], axis=1),
            "max_logit": np.concatenate([p.max_logit[0] for p in parts], axis=1),
            "curves": np.concatenate([p.curves[0] for p in parts], axis=1),
            "sensitivity": [lr_sensitivity(p.val_loss[0], math.log(16)) for p in parts]}
    return {"lrs": list(lrs), "seeds": seeds, "group": group,
            "eval_steps": list(range(every, steps + 1, every))[:len(out["pre"]["curves"][0][0])],
            "runs": out}


# --- stored reruns --------------------------------------------------------------------------

def sharpness_rerun(optimizer: str, warmups: Sequence[int], peaks: Sequence[float],
                    seeds: Sequence[int], steps: int, measure_every: int, iters: int,
                    trains_below: float) -> dict:
    """:func:`sharpness_runs` as a stored rerun: every curve (for the figure) and
    :func:`sharpness_summary`."""
    run = sharpness_runs(optimizer, warmups, peaks, seeds, steps=steps,
                         measure_every=measure_every, iters=iters)
    return _as_dict(run, trains_below)


def batchnorm_rerun(seeds: Sequence[int], steps: Sequence[int], epochs: int,
                    small_lrs: Sequence[float], large_lrs: Sequence[float],
                    large_batch: int, warmup_epochs: Sequence[float],
                    batch_seed: int = 0) -> dict:
    """The batch-norm comparison: with and without BatchNorm, a small batch (256, no
    warmup, tuned over ``small_lrs``) and a large one (``large_batch``, tuned over
    ``large_lrs`` with each of ``warmup_epochs``), ``epochs`` epochs each. ``steps`` must
    list the two horizons (so that the declaration states them)."""
    out = {}
    for bn in (True, False):
        tag = "bn" if bn else "plain"
        out[f"{tag}-256"] = batchnorm_runs(bn, 256, small_lrs, (0,), seeds, epochs=epochs,
                                           batch_seed=batch_seed)
        out[f"{tag}-{large_batch}"] = batchnorm_runs(bn, large_batch, large_lrs, warmup_epochs,
                                                     seeds, epochs=epochs, batch_seed=batch_seed)
    horizons = sorted({r["steps"] for r in out.values()})
    if sorted(steps) != horizons:
        raise ValueError(f"Invalid steps: {list(steps)!r} (the runs take {horizons})")
    return out


def power_check_rerun(seeds: Sequence[int], steps: int, cases: Sequence[tuple],
                      iters: Sequence[int], lanczos_steps: int) -> dict:
    """:func:`power_vs_lanczos` as a stored rerun: every ``(optimizer, peak, warmup, step)``
    of ``cases`` on every seed; ``steps`` must be the largest step of the cases."""
    cases = [tuple(c) for c in cases]
    if any(len(c) != 4 for c in cases) or not cases:
        raise ValueError(f"Invalid cases: {cases!r} (need (optimizer, peak, warmup, step) each)")
    if _int("steps", steps) != max(c[3] for c in cases):
        raise ValueError(f"Invalid steps: {steps!r} (the cases run to {max(c[3] for c in cases)})")
    rows = power_vs_lanczos([(c[0], s, c[1], c[2], c[3]) for c in cases for s in seeds],
                            iters=iters, lanczos_steps=lanczos_steps)
    return {"rows": rows}


def sharpness_check_rerun(seeds: Sequence[int], steps: int, gd_warmups: Sequence[int],
                          gd_peaks: Sequence[float], adam_warmups: Sequence[int],
                          adam_peaks: Sequence[float], measure_every: int, iters: int,
                          trains_below: float) -> dict:
    """GD and Adam grids of :func:`sharpness_runs`, only their :func:`sharpness_summary`
    (for other seeds and longer horizons)."""
    out = {}
    for name, warmups, peaks in (("gd", gd_warmups, gd_peaks), ("adam", adam_warmups, adam_peaks)):
        run = sharpness_runs(name, warmups, peaks, seeds, steps=steps,
                             measure_every=measure_every, iters=iters)
        out[name] = {"warmups": list(run.warmups), "peaks": list(run.peaks),
                     **sharpness_summary(run, trains_below)}
    return out


def sharpness_edge_rerun(seeds: Sequence[int], steps: int, gd_warmups: Sequence[int],
                         gd_peaks: Sequence[float], adam_warmups: Sequence[int],
                         adam_peaks: Sequence[float], measure_every: int, iters: int,
                         trains_below: float) -> dict:
    """GD and Adam grids of :func:`sharpness_runs` at the edge of what trains (rates between
    the stored grid's steps, long warmups): every seed's loss and (preconditioned)
    sharpness / threshold at every measurement, and :func:`sharpness_summary`."""
    out = {}
    for name, warmups, peaks in (("gd", gd_warmups, gd_peaks), ("adam", adam_warmups, adam_peaks)):
        run = sharpness_runs(name, warmups, peaks, seeds, steps=steps,
                             measure_every=measure_every, iters=iters)
        s = run.precond_sharpness if name == "adam" else run.sharpness
        out[name] = {"warmups": list(run.warmups), "peaks": list(run.peaks),
                     "seeds": list(run.seeds), "steps": run.steps, "loss": run.loss,
                     "ratio": np.abs(s) / run.limit[:, :, None, :],
                     **sharpness_summary(run, trains_below)}
    return out


_WARMUPS = (0, 25, 50, 100, 200)
_GD_PEAKS = (0.1, 0.5, 1.0, 1.5, 2.0, 3.0)
_ADAM_PEAKS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)
_LOGIT_LRS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
_BN = {"epochs": 16, "small_lrs": (0.025, 0.05, 0.1, 0.2, 0.4, 0.8),
       "large_lrs": (0.2, 0.4, 0.8, 1.6, 3.2, 6.4), "large_batch": 2048,
       "warmup_epochs": (0, 1, 4)}

RERUNS = (
    Rerun(name="06-stability-gd-grid", chapter="06-stability",
          claim="Full-batch GD on MSE, linear warmup 0-200 steps to peaks 0.1-3, seeds 0-2, "
                "400 steps: sharpness against 2/eta_t (the interactive figure), which peaks train.",
          function="stability:sharpness_rerun",
          params={"optimizer": "gd", "warmups": _WARMUPS, "peaks": _GD_PEAKS,
                  "seeds": (0, 1, 2), "steps": 400, "measure_every": 20, "iters": 20,
                  "trains_below": 0.1},
          minutes=1.5),
    Rerun(name="06-stability-adam-grid", chapter="06-stability",
          claim="Full-batch Adam on MSE, linear warmup 0-200 steps to peaks 1e-3 to 0.3, seeds "
                "0-2, 400 steps: preconditioned sharpness against 38/eta_t, which peaks train.",
          function="stability:sharpness_rerun",
          params={"optimizer": "adam", "warmups": _WARMUPS, "peaks": _ADAM_PEAKS,
                  "seeds": (0, 1, 2), "steps": 400, "measure_every": 20, "iters": 20,
                  "trains_below": 0.1},
          minutes=2.5),
    Rerun(name="06-stability-seeds-3-5", chapter="06-stability",
          claim="The GD and Adam sharpness grids (warmup 0/50/200) on seeds 3-5.",
          function="stability:sharpness_check_rerun",
          params={"seeds": (3, 4, 5), "steps": 400, "gd_warmups": (0, 50, 200),
                  "gd_peaks": _GD_PEAKS, "adam_warmups": (0, 50, 200),
                  "adam_peaks": _ADAM_PEAKS, "measure_every": 40, "iters": 20,
                  "trains_below": 0.1},
          minutes=2.0),
    Rerun(name="06-stability-4000-steps", chapter="06-stability",
          claim="The edge of the GD (warmup 0/200) and Adam (warmup 0/50/200) grids at 4,000 "
                "steps, 10x the horizon: does a peak that fails at 400 steps train later, "
                "does one that trains keep training?",
          function="stability:sharpness_check_rerun",
          params={"seeds": (0, 1, 2), "steps": 4000, "gd_warmups": (0, 200),
                  "gd_peaks": (1.0, 1.5, 2.0, 3.0), "adam_warmups": (0, 50, 200),
                  "adam_peaks": (3e-2, 1e-1, 3e-1), "measure_every": 400, "iters": 20,
                  "trains_below": 0.1},
          minutes=2.0),
    Rerun(name="06-stability-edge-4000-steps", chapter="06-stability",
          claim="The rates between the stored grids' steps (GD 1.75 and 2 with warmup "
                "0/200/1000; Adam 0.05, 0.07 and 0.1 with warmup 0/50/200/1000) at 4,000 "
                "steps on seeds 0-5: does warmup make a larger rate usable, or only delay "
                "failure?",
          function="stability:sharpness_edge_rerun",
          params={"seeds": (0, 1, 2, 3, 4, 5), "steps": 4000, "gd_warmups": (0, 200, 1000),
                  "gd_peaks": (1.75, 2.0), "adam_warmups": (0, 50, 200, 1000),
                  "adam_peaks": (0.05, 0.07, 0.1), "measure_every": 400, "iters": 20,
                  "trains_below": 0.1},
          minutes=8.0),
    Rerun(name="06-stability-power-vs-lanczos", chapter="06-stability",
          claim="How far below 120-step Lanczos the 20-step power iteration of the stored grids "
                "reads (GD at 0.5, GD during a warmup to 1.5, Adam at 0.03), seeds 0-2.",
          function="stability:power_check_rerun",
          params={"seeds": (0, 1, 2), "steps": 400,
                  "cases": (("gd", 0.5, 0, 400), ("gd", 1.5, 200, 100), ("adam", 0.03, 0, 400)),
                  "iters": (20, 100), "lanczos_steps": 120},
          minutes=1.5),
    Rerun(name="06-qk-norm-900-steps", chapter="06-stability",
          claim="Attention logits and learning-rate sensitivity of the Pre-LN Transformer "
                "(20-step warmup, peaks 1e-3 to 1e-1) without and with qk-layernorm at 900 "
                "steps, seeds 0-5 in two batch orders.",
          function="stability:qk_norm_long",
          params={"lrs": _LOGIT_LRS, "seeds": (0, 1, 2, 3, 4, 5), "steps": 900, "group": 3,
                  "warmup": 20, "layers": 3, "batch_size": 16, "n_val": 512},
          minutes=6.0),
    Rerun(name="06-batchnorm-large-batch", chapter="06-stability",
          claim="SGD with momentum, batch 256 vs 2048 (linear scaling, gradual warmup 0/1/4 "
                "epochs), with and without BatchNorm, every rate tuned, seeds 0-2.",
          function="stability:batchnorm_rerun",
          params={"seeds": (0, 1, 2), "steps": (128, 1024), **_BN, "batch_seed": 0},
          minutes=6.0),
    Rerun(name="06-batchnorm-seeds-3-5", chapter="06-stability",
          claim="The batch-norm comparison on seeds 3-5 and another batch order.",
          function="stability:batchnorm_rerun",
          params={"seeds": (3, 4, 5), "steps": (128, 1024), **_BN, "batch_seed": 3},
          minutes=6.0),
    Rerun(name="06-batchnorm-seeds-6-8", chapter="06-stability",
          claim="The batch-norm comparison on a third set of seeds (6-8) and batch order.",
          function="stability:batchnorm_rerun",
          params={"seeds": (6, 7, 8), "steps": (128, 1024), **_BN, "batch_seed": 6},
          minutes=6.0),
)
"""The stored reruns of 6.3 (``make reruns RERUNS=<name>``)."""
