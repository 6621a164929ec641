r"""Chapter 6.1 (learning-rate schedules): every schedule at one budget, tuned, on several seeds.

Comparing ten schedules, each with its own peak-rate sweep, on three seeds is
a few hundred training runs; one at a time they would not fit a notebook's
minute. So the runs are *stacked*: :class:`StackedMLP` holds ``M`` independent
networks whose weights carry a leading member axis, one forward pass computes
all of them, and :func:`member_adam` gives each member its own learning-rate
schedule. The sum of the members' losses has block-diagonal gradients, so each
member follows exactly the trajectory it would follow alone (same initial
weights, same batches); ``tests/test_schedules_experiments.py`` checks a member
against ``torch.optim.Adam`` + ``LambdaLR`` on the unstacked network. The
shared harness (:func:`training.train`) runs the loop; targets are repeated
along the member axis (:func:`stack_targets`), so its cross-entropy is the
mean over members (undone by a factor ``M`` before Adam).

Sections:

* schedules by name at one budget (:func:`make_schedule`, :data:`SCHEDULES`);
* the tuned comparison (:func:`schedule_comparison`, :func:`tuned`) and
  schedule-free AdamW on the same problem (:func:`schedule_free_runs`);
* Hägele et al. (2024): constant rate + cooldown vs cosine at several budgets
  (:func:`cooldown_vs_cosine`);
* the noisy quadratic model of the interactive figure: the exact expected
  loss of SGD under any schedule (:func:`nqm_loss`, :func:`nqm_schedule`,
  :func:`draw_nqm`);
* the stored reruns the section quotes (:data:`RERUNS`: the comparison on seeds
  3-5 and at 1,200 steps, the cooldown comparison on seeds 3-5 and at 1,000 to
  4,000 steps).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .. import schedules as sch
from ..adam import scale_by_adam
from ..base import GradientTransformation, chain, scale
from .reruns import Rerun
from .training import Dataset, teacher_classification, train

__all__ = ["StackedLinear", "StackedMLP", "stack_targets", "member_losses", "scale_by_member_rates",
           "member_adam", "SCHEDULES", "make_schedule", "ComparisonResult",
           "schedule_comparison", "tuned", "member_schedule_free_adamw", "schedule_free_runs", "cooldown_vs_cosine",
           "nqm_schedule", "nqm_loss", "draw_nqm", "NQM_SHAPES", "NQM_CURVATURES", "problem",
           # stored reruns
           "schedule_table_rerun", "cooldown_rerun", "RERUNS"]


def _int(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"Invalid {name}: {value!r} (must be an integer >= {low})")
    return int(value)


# --- many independent networks in one -------------------------------------------------

class StackedLinear(nn.Module):
    """``M`` linear maps ``(M, N, in) -> (M, N, out)``; ``weight[m]`` is ``(in, out)``.

    Member ``m`` draws its weights and bias uniform in +-1/sqrt(in) (``nn.Linear``'s
    default distribution) from ``generators[m]``.
    """

    def __init__(self, in_dim: int, out_dim: int, generators: Sequence[torch.Generator]):
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)
        draw = lambda g, *shape: (2 * torch.rand(*shape, generator=g) - 1) * bound
        self.weight = nn.Parameter(torch.stack([draw(g, in_dim, out_dim) for g in generators]))
        self.bias = nn.Parameter(torch.stack([draw(g, 1, out_dim) for g in generators]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class StackedMLP(nn.Module):
    """``M`` copies of ``training.mlp(in, out, hidden, depth)`` (ReLU), one per seed.

    Input ``(batch, in)``; output ``(batch, classes, M)``: the layout of
    cross-entropy for targets ``(batch, M)``. Member ``m`` starts from the
    weights ``training.mlp(..., seed=seeds[m])`` draws, layer by layer.
    """

    def __init__(self, in_dim: int, out_dim: int, seeds: Sequence[int], hidden: int = 64,
                 depth: int = 2, dtype=torch.float32):
        super().__init__()
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise ValueError("Invalid seeds: [] (need at least one member)")
        self.members = len(seeds)
        dims = [in_dim] + [hidden] * depth + [out_dim]
        # draw each member's layers in nn.Sequential's order from one seeded stream
        per_member = []
        for s in seeds:
            torch.manual_seed(s)
            # drawn in float32 as training.mlp draws them, then cast
            per_member.append([nn.Linear(a, b).to(dtype) for a, b in zip(dims, dims[1:])])
        self.layers = nn.ModuleList()
        for i, (a, b) in enumerate(zip(dims, dims[1:])):
            layer = StackedLinear(a, b, [torch.Generator()])  # weights replaced below
            layer.weight = nn.Parameter(torch.stack([m[i].weight.detach().T for m in per_member]))
            layer.bias = nn.Parameter(torch.stack([m[i].bias.detach()[None] for m in per_member]))
            self.layers.append(layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.unsqueeze(0).expand(self.members, *x.shape)
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = torch.relu(h)
        return h.permute(1, 2, 0)


def stack_targets(data: Dataset, members: int) -> Dataset:
    """The same data with every target repeated along a trailing member axis."""
    members = _int("members", members)
    rep = lambda y: y.unsqueeze(-1).expand(*y.shape, members).contiguous()
    return Dataset(data.x_train, rep(data.y_train), data.x_val, rep(data.y_val), data.classes)


@torch.no_grad()
def member_losses(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Mean cross-entropy of each member (``y`` stacked, shape (..., M)); nan -> inf."""
    logits = model(x)
    loss = F.cross_entropy(logits, y, reduction="none")          # (N, [L,] M)
    per = loss.reshape(-1, loss.shape[-1]).mean(0).double().numpy()
    return np.where(np.isfinite(per), per, np.inf)


def scale_by_member_rates(rates: np.ndarray, guard: float = 1e4,
                          descent: bool = True) -> GradientTransformation:
    """updates <- -rates[t, m] * updates for member m (the leading axis of every tensor).

    ``descent=False`` drops the minus sign (for use *inside* a transformation
    that applies its own step, such as schedule-free's ``z - gamma d``).

    ``rates`` is a ``(steps, M)`` table (one schedule per member, evaluated
    once). A member whose update turns non-finite, or whose weights in this
    tensor exceed ``guard`` in magnitude, is frozen from then on (its rate set
    to 0): a diverged run stops, as the harness stops a single run, without
    stopping the others.
    """
    table = np.asarray(rates, dtype=np.float64)
    if table.ndim != 2:
        raise ValueError(f"Invalid rates: shape {table.shape} (need (steps, members))")

    def init(params):
        return {"count": 0, "alive": torch.ones(table.shape[1], dtype=torch.bool)}

    def update(updates, state, params=None, **extra):
        t = min(state["count"], len(table) - 1)
        u = updates
        shape = (-1,) + (1,) * (u.dim() - 1)
        alive = state["alive"].clone()
        finite = torch.isfinite(u).reshape(u.shape[0], -1).all(1)
        if params is not None:
            finite &= params.detach().abs().reshape(u.shape[0], -1).amax(1) < guard
        alive &= finite
        rate = torch.as_tensor(table[t], dtype=u.dtype) * alive.to(u.dtype)
        sign = -1.0 if descent else 1.0
        out = sign * rate.reshape(shape) * torch.nan_to_num(u, nan=0.0, posinf=0.0, neginf=0.0)
        return out, {"count": state["count"] + 1, "alive": alive}

    return GradientTransformation(init, update)


def member_adam(params, rates: np.ndarray, b1: float = 0.9, b2: float = 0.999,
                eps: float = 1e-8):
    """Adam with one learning-rate schedule per member, as an ``optbook.torch`` optimizer.

    ``scale(M)`` undoes the harness's mean over members, so member ``m``
    sees its own loss's gradient; then Adam's direction (elementwise, so per
    member), then ``-rates[t, m]``.
    """
    from ..torch import ChainOptimizer

    members = np.asarray(rates).shape[1]
    return ChainOptimizer(params, chain(scale(float(members)), scale_by_adam(b1, b2, eps),
                                        scale_by_member_rates(rates)))


# --- the problem and the schedules ------------------------------------------------------

def problem(seed: int = 0) -> Dataset:
    """The comparison's data: ``training.teacher_classification`` (2048 noisy-label
    training examples, 1024 clean validation examples, 20 inputs, 4 classes)."""
    return teacher_classification(n_train=2048, n_val=1024, seed=seed)


SCHEDULES = ("constant", "step", "cosine", "linear", "inverse_sqrt", "warmup_cosine", "wsd",
             "one_cycle", "sgdr")


def make_schedule(name: str, peak: float, steps: int, warmup_frac: float = 0.05,
                  cooldown_frac: float = 0.2) -> Callable:
    """Each schedule of the chapter at budget ``steps`` with peak rate ``peak``.

    * ``constant``; ``step``: x0.1 at 50 % and 75 % of the run;
    * ``cosine``: to eta_min = 0; ``linear``: to 0 (Defazio et al. 2023);
    * ``inverse_sqrt``: warmup over ``warmup_frac``, then 1/sqrt(t);
    * ``warmup_cosine``: warmup, cosine to 0.1 peak (the article's LLM schedule);
    * ``wsd``: warmup, constant, 1-sqrt cooldown over ``cooldown_frac`` (Hägele et al. 2024);
    * ``one_cycle``: torch's OneCycleLR defaults (30 % rise from peak/25);
    * ``sgdr``: cosine restarts with periods T/7, 2T/7, 4T/7 (ends at T).
    """
    steps = _int("steps", steps, 8)
    warm = max(1, int(round(warmup_frac * steps)))
    if name == "constant":
        return sch.constant(peak)
    if name == "step":
        return sch.join_schedules([sch.constant(peak), sch.constant(0.1 * peak),
                                   sch.constant(0.01 * peak)], [steps // 2, 3 * steps // 4])
    if name == "cosine":
        return sch.cosine_annealing(peak, steps, 0.0)
    if name == "linear":
        return sch.linear_decay(peak, steps, 0.0)
    if name == "inverse_sqrt":
        return sch.inverse_sqrt(peak, warm)
    if name == "warmup_cosine":
        return sch.warmup_cosine(peak, warm, steps)
    if name == "wsd":
        return sch.warmup_stable_decay(peak, warm, steps, max(1, int(round(cooldown_frac * steps))),
                                       cooldown="1-sqrt")
    if name == "one_cycle":
        return sch.one_cycle(peak, steps)
    if name == "sgdr":
        return sch.cosine_restarts(peak, max(1, steps // 7), 2)
    raise ValueError(f"Invalid name: {name!r} (one of {', '.join(SCHEDULES)})")


@dataclass
class ComparisonResult:
    """``val_loss[name]`` has shape (len(peaks[name]), len(seeds))."""

    steps: int
    seeds: tuple
    peaks: dict = field(default_factory=dict)
    val_loss: dict = field(default_factory=dict)
    curves: dict = field(default_factory=dict)     # name -> (eval steps, (peaks, seeds, evals))


def _train_members(schedules_per_member: list, seeds: list, data: Dataset, steps: int,
                   batch_size: int, hidden: int, eval_every: int, seed: int):
    rates = np.stack([s(np.arange(steps)) for s in schedules_per_member], axis=1)
    model = StackedMLP(data.x_train.shape[1], data.classes, seeds, hidden=hidden)
    stacked = stack_targets(data, len(seeds))
    optimizer = member_adam(model.parameters(), rates)
    evals, losses = [], []

    def record(t):
        if (t + 1) % eval_every == 0:
            evals.append(t + 1)
            losses.append(member_losses(model, stacked.x_val, stacked.y_val))

    train(model, optimizer, stacked, steps=steps, batch_size=batch_size, eval_every=steps,
          seed=seed, on_step=record)
    return member_losses(model, stacked.x_val, stacked.y_val), np.array(evals), np.array(losses)


def schedule_comparison(names: Sequence[str], peaks: dict, seeds: Sequence[int], data: Dataset,
                        *, steps: int = 400, batch_size: int = 32, hidden: int = 64,
                        eval_every: int = 20) -> ComparisonResult:
    """Every schedule in ``names`` at every peak of ``peaks[name]`` on every seed, with Adam.

    All runs of the comparison train together (one stacked network); seed
    ``s`` sets a run's initial weights, and all runs see the same batch order
    (drawn from ``seeds[0]``). Returns the final validation loss of each run
    and its validation-loss curve every ``eval_every`` steps.
    """
    seeds = [int(s) for s in seeds]
    members, where = [], []
    for name in names:
        for i, peak in enumerate(peaks[name]):
            for j, s in enumerate(seeds):
                members.append(make_schedule(name, peak, steps))
                where.append((name, i, j))
    final, evals, curves = _train_members(members, [s for _, _, j in where for s in [seeds[j]]],
                                          data, steps, batch_size, hidden, eval_every, seeds[0])
    result = ComparisonResult(steps, tuple(seeds))
    for name in names:
        shape = (len(peaks[name]), len(seeds))
        result.peaks[name] = tuple(peaks[name])
        result.val_loss[name] = np.full(shape, np.nan)
        result.curves[name] = (evals, np.full(shape + (len(evals),), np.nan))
    for k, (name, i, j) in enumerate(where):
        result.val_loss[name][i, j] = final[k]
        result.curves[name][1][i, j] = curves[:, k]
    return result


def tuned(val_loss: np.ndarray, peaks: Sequence[float]) -> tuple:
    """(best peak, its per-seed losses): the peak with the lowest *mean* loss over seeds."""
    means = np.where(np.all(np.isfinite(val_loss), axis=1), val_loss.mean(axis=1), np.inf)
    i = int(np.argmin(means))
    return peaks[i], val_loss[i]


def member_schedule_free_adamw(params, peaks: Sequence[float], warmup_steps: int,
                               b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
    """Schedule-free AdamW with one peak rate per member (no weight decay).

    The schedule-free transformation runs with rate 1 (and the authors' linear
    warmup) around the direction ``peak_m * Adam_direction``: the z step is then
    ``peak_m * warmup(t) * d``, exactly the authors' step, and the averaging
    weights ``c_t``, which depend on the rates only through their ratios, are
    the same for every peak. ``tests/test_schedules_experiments.py`` checks a
    member against ``optbook.torch.schedule_free.AdamWScheduleFree``.
    """
    from ..schedule_free import schedule_free
    from ..torch import ChainOptimizer

    members = len(peaks)
    direction = chain(scale(float(members)), scale_by_adam(0.0, b2, eps),
                      scale_by_member_rates(np.asarray(peaks, float)[None, :], descent=False))
    return ChainOptimizer(params, schedule_free(direction, 1.0, b1, 0.0, warmup_steps))


@torch.no_grad()
def _to_average(optimizer) -> None:
    """Load the schedule-free average x into the parameters (the authors' ``eval()``)."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            p.copy_(optimizer.state[p]["transform_state"]["x"])


def schedule_free_runs(peaks: Sequence[float], seeds: Sequence[int], data: Dataset, *,
                       steps: int = 400, batch_size: int = 32, hidden: int = 64,
                       warmup_frac: float = 0.05) -> np.ndarray:
    """Schedule-free AdamW on the same problem and batches as :func:`schedule_comparison`:
    final validation loss at the average x, shape (peaks, seeds), all runs stacked."""
    where = [(i, j) for i in range(len(peaks)) for j in range(len(seeds))]
    model = StackedMLP(data.x_train.shape[1], data.classes, [int(seeds[j]) for _, j in where],
                       hidden=hidden)
    stacked = stack_targets(data, len(where))
    warm = max(1, int(round(warmup_frac * steps)))
    optimizer = member_schedule_free_adamw(model.parameters(), [peaks[i] for i, _ in where], warm)
    train(model, optimizer, stacked, steps=steps, batch_size=batch_size, eval_every=steps,
          seed=int(seeds[0]))
    _to_average(optimizer)
    return member_losses(model, stacked.x_val, stacked.y_val).reshape(len(peaks), len(seeds))


def cooldown_vs_cosine(budgets: Sequence[int], peaks: Sequence[float], seeds: Sequence[int],
                       data: Dataset, *, cooldown_frac: float = 0.2, batch_size: int = 32,
                       hidden: int = 64) -> dict:
    """Hägele et al. (2024): WSD (warmup, constant, 1-sqrt cooldown over the last
    ``cooldown_frac``) against warmup + cosine to 0, each tuned at each budget.

    Returns ``{"wsd": array, "cosine": array}`` of final validation losses with
    shape (budgets, peaks, seeds). The WSD runs at different budgets share their
    constant phase step for step (the schedule does not depend on the budget
    until the cooldown), so they are one constant-rate run with cooldowns
    branched off at different steps.
    """
    budgets = [int(b) for b in budgets]
    out = {k: np.full((len(budgets), len(peaks), len(seeds)), np.nan) for k in ("wsd", "cosine")}
    longest = max(budgets)
    members, where = [], []
    for b_i, budget in enumerate(budgets):
        warm = max(1, int(round(0.05 * budget)))
        for p_i, peak in enumerate(peaks):
            for s_i, s in enumerate(seeds):
                cool = max(1, int(round(cooldown_frac * budget)))
                members.append(sch.warmup_stable_decay(peak, warm, budget, cool, cooldown="1-sqrt"))
                where.append(("wsd", b_i, p_i, s_i, int(s)))
                members.append(sch.warmup_cosine(peak, warm, budget, eta_min=0.0))
                where.append(("cosine", b_i, p_i, s_i, int(s)))
    # every run trains for the longest budget; its loss is read at its own budget
    rates = np.stack([s(np.arange(longest)) for s in members], axis=1)
    for k, w in enumerate(where):
        rates[budgets[w[1]]:, k] = 0.0   # a run stops at its budget
    model = StackedMLP(data.x_train.shape[1], data.classes, [w[4] for w in where], hidden=hidden)
    stacked = stack_targets(data, len(where))
    optimizer = member_adam(model.parameters(), rates)
    train(model, optimizer, stacked, steps=longest, batch_size=batch_size, eval_every=longest,
          seed=int(seeds[0]))
    final = member_losses(model, stacked.x_val, stacked.y_val)
    for k, (kind, b_i, p_i, s_i, _) in enumerate(where):
        out[kind][b_i, p_i, s_i] = final[k]
    return out


# --- the noisy quadratic model (interactive figure) -----------------------------------------

NQM_SHAPES = ("constant", "cosine", "linear", "wsd")


def nqm_schedule(shape: str, peak: float, steps: int = 200, warmup_frac: float = 0.0,
                 cooldown_frac: float = 0.2) -> np.ndarray:
    """eta_t for t = 0..steps-1 of the figure's schedule shapes (warmup first, linear)."""
    steps = _int("steps", steps, 8)
    if not 0.0 <= warmup_frac < 1.0:
        raise ValueError(f"Invalid warmup_frac: {warmup_frac} (must lie in [0, 1))")
    if not 0.0 < cooldown_frac <= 1.0:
        raise ValueError(f"Invalid cooldown_frac: {cooldown_frac} (must lie in (0, 1])")
    warm = int(round(warmup_frac * steps))
    t = np.arange(steps)
    if shape == "constant":
        s = sch.linear_warmup(peak, warm)
    elif shape == "cosine":
        s = sch.warmup_cosine(peak, warm, steps, eta_min=0.0)
    elif shape == "linear":
        s = sch.join_schedules([sch.linear_warmup(peak, warm), sch.linear_decay(peak, steps - warm)],
                               [warm]) if warm else sch.linear_decay(peak, steps)
    elif shape == "wsd":
        cool = max(1, int(round(cooldown_frac * steps)))
        if warm + cool > steps:
            cool = steps - warm
        s = sch.warmup_stable_decay(peak, warm, steps, cool, cooldown="linear")
    else:
        raise ValueError(f"Invalid shape: {shape!r} (one of {', '.join(NQM_SHAPES)})")
    return s(t)


# The noisy quadratic's 20 curvatures, log-spaced from 1 down to 0.01. Written
# out to 6 significant digits from Python's correctly rounded power, not taken
# from np.geomspace, whose last digit depends on NumPy's SIMD kernels: the
# in-page figure receives these numbers and must compute what optbook does.
NQM_CURVATURES = tuple(float(f"{10.0 ** (-2 * i / 19):.6g}") for i in range(20))


def nqm_loss(etas: np.ndarray, curvatures: np.ndarray = None, noise: float = 1.0,
             start: float = 1.0) -> np.ndarray:
    """Exact expected loss of SGD on the noisy quadratic model, before each step and after the last.

    Loss ``1/2 sum_i h_i x_i^2``; the stochastic gradient is ``h_i x_i + sqrt(h_i) sigma xi``
    (noise proportional to curvature, as in Zhang et al. 2019's NQM). Per
    coordinate the second moment obeys the exact recursion::

        E[x_i^2]_{t+1} = (1 - eta_t h_i)^2 E[x_i^2]_t + eta_t^2 h_i sigma^2

    so the figure needs no sampling and no seed. Returns ``len(etas) + 1`` values.
    """
    h = np.asarray(NQM_CURVATURES if curvatures is None else curvatures, dtype=np.float64)
    etas = np.asarray(etas, dtype=np.float64)
    m = np.full_like(h, start ** 2)
    out = np.empty(len(etas) + 1)
    out[0] = 0.5 * np.sum(h * m)
    with np.errstate(over="ignore", invalid="ignore"):
        for t, eta in enumerate(etas):
            m = (1 - eta * h) ** 2 * m + eta ** 2 * h * noise ** 2
            out[t + 1] = 0.5 * np.sum(h * m)
    return np.where(np.isfinite(out), out, np.inf)


def draw_nqm(shape: str = "cosine", peak: float = 1.0, warmup_frac: float = 0.0,
             cooldown_frac: float = 0.2, steps: int = 200):
    """The interactive figure of 6.1: eta_t (left) and the NQM loss it produces (right),
    with the constant-rate loss at the same peak in grey for reference."""
    from .. import plotting

    etas = nqm_schedule(shape, peak, steps, warmup_frac, cooldown_frac)
    loss = nqm_loss(etas)
    ref = nqm_loss(nqm_schedule("constant", peak, steps, warmup_frac, cooldown_frac))
    fig, (a, b) = plotting.subplots(1, 2, size="wide", pyplot=False)
    a.plot(np.arange(steps), etas, color="C0")
    a.set_xlabel("step t"); a.set_ylabel("η_t"); a.set_ylim(0, 2.05); a.set_title(f"{shape} schedule")
    b.semilogy(ref, color="0.6", label="constant η")
    b.semilogy(loss, color="C0", label=shape)
    b.set_ylim(1e-3, 10); b.set_xlabel("step t"); b.set_ylabel("expected loss")
    b.set_title(f"final loss {loss[-1]:.4f}"); b.legend(loc="upper right")
    return fig


# --- stored reruns (scripts/reruns.py; book/data/reruns/06-*.json) -----------------------------
# The checks 6.1 quotes but cannot afford in its minute: the tuned comparison on other
# seeds and at three times the steps, and the cooldown-vs-cosine comparison on other
# seeds and at 10x the budgets. Each calls the experiment functions above unchanged;
# 06-schedules prints the stored files next to its claims.

TABLE_PEAKS = (1e-3, 3e-3, 1e-2, 3e-2)   # the notebook's grid (constant also 3e-4)


def schedule_table_rerun(seeds: Sequence[int], steps: int, peaks: dict,
                         sf_peaks: Sequence[float]) -> dict:
    """:func:`schedule_comparison` of every schedule of :data:`SCHEDULES` and
    :func:`schedule_free_runs` on the comparison's problem, as a stored rerun.

    ``peaks[name]`` is the grid of schedule ``name``; ``sf_peaks`` schedule-free
    AdamW's. Per schedule (and ``"schedule-free AdamW"``): ``peaks``,
    ``val_loss[i][s]``, ``best_peak`` (lowest seed mean, :func:`tuned`) and
    ``best[s]``, the losses at it.
    """
    data = problem(seed=0)
    result = schedule_comparison(SCHEDULES, peaks, seeds, data, steps=steps)
    grids = {name: (result.peaks[name], result.val_loss[name]) for name in SCHEDULES}
    grids["schedule-free AdamW"] = (tuple(sf_peaks),
                                    schedule_free_runs(sf_peaks, seeds, data, steps=steps))
    out = {}
    for name, (grid, losses) in grids.items():
        best_peak, best = tuned(losses, grid)
        out[name] = {"peaks": list(grid), "val_loss": losses, "best_peak": best_peak,
                     "best": best}
    return {"steps": steps, "seeds": [int(s) for s in seeds], "schedules": out}


def cooldown_rerun(steps: Sequence[int], peaks: Sequence[float], seeds: Sequence[int]) -> dict:
    """:func:`cooldown_vs_cosine` as a stored rerun; ``steps`` are the budgets.

    Per budget ``b`` and kind (``"wsd"``, ``"cosine"``): ``val_loss[kind][b][i][s]``
    at peak ``peaks[i]`` and seed ``seeds[s]``, ``best_peak[kind][b]`` (lowest seed
    mean) and ``best[kind][b][s]``, the losses at it.
    """
    runs = cooldown_vs_cosine(steps, peaks, seeds, problem(seed=0))
    out = {"budgets": [int(b) for b in steps], "peaks": list(peaks), "val_loss": runs,
           "best_peak": {}, "best": {}}
    for kind, losses in runs.items():
        chosen = [tuned(losses[b], list(peaks)) for b in range(len(steps))]
        out["best_peak"][kind] = [peak for peak, _ in chosen]
        out["best"][kind] = [best for _, best in chosen]
    return out


_TABLE_GRID = {name: TABLE_PEAKS for name in SCHEDULES}
_TABLE_GRID["constant"] = (3e-4,) + TABLE_PEAKS
_LONG_PEAKS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)

RERUNS = (
    Rerun(name="06-schedule-table-seeds-3-5", chapter="06-schedules",
          claim="The tuned schedule comparison (400 steps, the notebook's peak grids) on "
                "seeds 3-5: which schedules lead, how far behind is the constant rate, "
                "where does schedule-free AdamW rank?",
          function="schedules:schedule_table_rerun",
          params={"seeds": (3, 4, 5), "steps": 400, "peaks": _TABLE_GRID,
                  "sf_peaks": (1e-3, 3e-3, 1e-2)},
          minutes=0.3),
    Rerun(name="06-schedule-table-1200-steps", chapter="06-schedules",
          claim="The tuned schedule comparison at 1,200 steps (3x) on seeds 0-2, every "
                "grid extended to 1e-4 and retuned: does the constant rate stay behind, "
                "and by how much?",
          function="schedules:schedule_table_rerun",
          params={"seeds": (0, 1, 2), "steps": 1200,
                  "peaks": {name: _LONG_PEAKS for name in SCHEDULES},
                  "sf_peaks": (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)},
          minutes=1.1),
    Rerun(name="06-cooldown-seeds-3-5", chapter="06-schedules",
          claim="WSD (1-sqrt cooldown over 20 %) against warmup + cosine, each tuned per "
                "budget (100, 200, 400 steps), on seeds 3-5: is cosine still lower?",
          function="schedules:cooldown_rerun",
          params={"steps": (100, 200, 400), "peaks": TABLE_PEAKS, "seeds": (3, 4, 5)},
          minutes=0.2),
    Rerun(name="06-cooldown-long-budgets", chapter="06-schedules",
          claim="WSD against warmup + cosine at 1,000, 2,000 and 4,000 steps on seeds 0-2, "
                "the peak grid extended down to 1e-4 and refined: does the gap close?",
          function="schedules:cooldown_rerun",
          params={"steps": (1000, 2000, 4000),
                  "peaks": (1e-4, 2e-4, 3e-4, 5e-4, 1e-3, 2e-3, 3e-3, 1e-2),
                  "seeds": (0, 1, 2)},
          minutes=1.5),
)
"""The section's stored reruns (``make reruns RERUNS=<name>``)."""
