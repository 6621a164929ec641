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

* the data: :func:`clean_problem` (clean labels, 32,768 examples: longer training
  keeps helping, the regime the papers compare schedules in) and the small
  noisy-label :func:`problem` (10 % flipped labels, 2,048 examples);
* schedules by name at one budget, every one after the same warmup
  (:func:`make_schedule`, :data:`SCHEDULES`);
* the tuned comparison (:func:`schedule_comparison`, :func:`tuned`, :func:`ranking`)
  and schedule-free AdamW on the same problem (:func:`schedule_free_runs`);
* Hägele et al. (2024) literally: one stable run, cooldowns forked from its
  checkpoints, against cosine at each budget (:func:`wsd_branches`);
* Bergsma et al. (2025): linear decay to zero against cosine under AdamW's
  weight decay (:func:`decay_with_weight_decay`);
* the noisy quadratic model of the interactive figure: the exact expected
  loss of SGD under any schedule (:func:`nqm_loss`, :func:`nqm_schedule`,
  :func:`nqm_tuned`, :func:`nqm_table`, :func:`draw_nqm`);
* the stored reruns the section prints (:data:`RERUNS`).
"""
from __future__ import annotations

import copy
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
from ..figures import Explorer, nqm_figure
from ..figures.spec import param_spec
from .reruns import Rerun
from .training import Dataset, teacher_classification, train

__all__ = ["StackedLinear", "StackedMLP", "stack_targets", "member_losses", "scale_by_member_rates",
           "member_adam", "SCHEDULES", "make_schedule", "ComparisonResult",
           "schedule_comparison", "tuned", "ranking", "print_ranking", "stored_table", "draw_table",
           "print_weight_decay", "draw_branches", "member_schedule_free_adamw",
           "schedule_free_runs", "clean_problem", "BranchResult", "wsd_branches", "print_branches",
           "decay_with_weight_decay", "nqm_tuned", "nqm_table", "print_nqm_table",
           "nqm_warmup_gains", "NQM_COOLDOWNS", "NQM_PEAKS", "NQM_TABLE",
           "nqm_schedule", "nqm_loss", "draw_nqm", "NQM_SHAPES", "NQM_CURVATURES", "problem",
           # stored reruns
           "shape_table_rerun", "branches_rerun", "weight_decay_rerun", "RERUNS",
           "schedule_figure"]


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
                eps: float = 1e-8, weight_decay: float = 0.0):
    """Adam with one learning-rate schedule per member, as an ``optbook.torch`` optimizer.

    ``scale(M)`` undoes the harness's mean over members, so member ``m``
    sees its own loss's gradient; then Adam's direction (elementwise, so per
    member), then ``-rates[t, m]``. ``weight_decay > 0`` makes it AdamW
    (``torch.optim.AdamW``'s decoupled decay ``theta <- theta - eta_t lambda theta``,
    every tensor, biases included).
    """
    from ..torch import ChainOptimizer
    from ..weight_decay import add_decayed_weights

    members = np.asarray(rates).shape[1]
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) \
            or not math.isfinite(weight_decay) or weight_decay < 0:
        raise ValueError(f"Invalid weight_decay: {weight_decay!r} (must be a finite number >= 0)")
    if weight_decay == 0:
        return ChainOptimizer(params, chain(scale(float(members)), scale_by_adam(b1, b2, eps),
                                            scale_by_member_rates(rates)))
    return ChainOptimizer(params, chain(scale(float(members)), scale_by_adam(b1, b2, eps),
                                        add_decayed_weights(float(weight_decay)),
                                        scale_by_member_rates(rates)))


# --- the problems and the schedules ------------------------------------------------------

def problem(seed: int = 0) -> Dataset:
    """The small noisy-label task: ``training.teacher_classification`` (2048 training
    examples with 10 % flipped labels, 1024 clean validation examples, 20 inputs,
    4 classes). Six epochs in, a network starts fitting the flipped labels, so longer
    training stops helping: not the place to compare training lengths."""
    return teacher_classification(n_train=2048, n_val=1024, seed=seed)


def clean_problem(seed: int = 0) -> Dataset:
    """The comparison's data: the same teacher with clean labels and 16 times the
    examples (32,768 training, 2,048 validation). At batch 32 even 4,000 steps are
    four epochs, and the validation loss keeps falling with the training length
    (the regime of Hägele et al. 2024 and Bergsma et al. 2025: more steps help)."""
    return teacher_classification(n_train=32768, n_val=2048, label_noise=0.0, seed=seed)


SCHEDULES = ("constant", "step", "cosine", "cosine_10", "linear", "wsd", "wsd_linear",
             "inverse_sqrt", "sgdr", "one_cycle")


def make_schedule(name: str, peak: float, steps: int, warmup_frac: float = 0.05,
                  cooldown_frac: float = 0.2) -> Callable:
    """Each schedule of the comparison at budget ``steps`` with peak rate ``peak``.

    Every schedule but ``one_cycle`` starts with the *same* linear warmup from 0
    over ``T_w = max(1, round(warmup_frac * steps))`` steps, so that the table
    compares shapes, not warmups:

    * ``constant``: warmup, then the peak;
    * ``step``: warmup, then x0.1 at 50 % and 75 % of the run;
    * ``cosine``: warmup + cosine to 0; ``cosine_10``: to 0.1 peak (the article's);
    * ``linear``: warmup + linear decay to 0 (Defazio et al. 2023; Bergsma et al. 2025);
    * ``wsd``: warmup, constant, 1-sqrt cooldown over ``cooldown_frac`` (Hägele et al.
      2024); ``wsd_linear``: the same with a linear cooldown;
    * ``inverse_sqrt``: warmup, then 1/sqrt(t);
    * ``sgdr``: warmup, then cosine restarts with periods (T-T_w)/7, 2/7, 4/7;
    * ``one_cycle``: torch's OneCycleLR defaults (its own 30 % rise from peak/25).
    """
    steps = _int("steps", steps, 8)
    warm = max(1, int(round(warmup_frac * steps)))
    cool = max(1, int(round(cooldown_frac * steps)))
    up = sch.linear_warmup(peak, warm)
    if name == "constant":
        return up
    if name == "step":
        return sch.join_schedules([up, sch.constant(0.1 * peak), sch.constant(0.01 * peak)],
                                  [steps // 2, 3 * steps // 4])
    if name == "cosine":
        return sch.warmup_cosine(peak, warm, steps, eta_min=0.0)
    if name == "cosine_10":
        return sch.warmup_cosine(peak, warm, steps)
    if name == "linear":
        return sch.join_schedules([up, sch.linear_decay(peak, steps - warm)], [warm])
    if name in ("wsd", "wsd_linear"):
        return sch.warmup_stable_decay(peak, warm, steps, cool,
                                       cooldown="1-sqrt" if name == "wsd" else "linear")
    if name == "inverse_sqrt":
        return sch.inverse_sqrt(peak, warm)
    if name == "sgdr":
        return sch.join_schedules([up, sch.cosine_restarts(peak, max(1, (steps - warm) // 7), 2)],
                                  [warm])
    if name == "one_cycle":
        return sch.one_cycle(peak, steps)
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
                   batch_size: int, hidden: int, eval_every: int, seed: int,
                   weight_decay: float = 0.0):
    rates = np.stack([s(np.arange(steps)) for s in schedules_per_member], axis=1)
    model = StackedMLP(data.x_train.shape[1], data.classes, seeds, hidden=hidden)
    stacked = stack_targets(data, len(seeds))
    optimizer = member_adam(model.parameters(), rates, weight_decay=weight_decay)
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
                        eval_every: int = 20, weight_decay: float = 0.0,
                        batch_seed: int | None = None) -> ComparisonResult:
    """Every schedule in ``names`` at every peak of ``peaks[name]`` on every seed, with Adam
    (AdamW if ``weight_decay > 0``).

    All runs of the comparison train together (one stacked network); seed
    ``s`` sets a run's initial weights, and all runs see the same batch order
    (drawn from ``batch_seed``, default ``seeds[0]``). Returns the final
    validation loss of each run and its validation-loss curve every ``eval_every`` steps.
    """
    seeds = [int(s) for s in seeds]
    members, where = [], []
    for name in names:
        for i, peak in enumerate(peaks[name]):
            for j, s in enumerate(seeds):
                members.append(make_schedule(name, peak, steps))
                where.append((name, i, j))
    order = seeds[0] if batch_seed is None else int(batch_seed)
    final, evals, curves = _train_members(members, [seeds[j] for _, _, j in where],
                                          data, steps, batch_size, hidden, eval_every, order,
                                          weight_decay)
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
    val_loss = np.asarray(val_loss, dtype=float)
    means = np.where(np.all(np.isfinite(val_loss), axis=1), val_loss.mean(axis=1), np.inf)
    i = int(np.argmin(means))
    return peaks[i], val_loss[i]


def ranking(table: dict) -> list:
    """``table[name] = (peaks, val_loss (peaks, seeds))`` -> rows ``(name, peak, losses,
    at_edge)`` sorted by the tuned seed mean; ``at_edge`` says the tuned peak is the
    grid's smallest or largest (the grid should then be widened)."""
    rows = []
    for name, (peaks, losses) in table.items():
        peak, best = tuned(losses, list(peaks))
        rows.append((name, peak, np.asarray(best), peak in (min(peaks), max(peaks))))
    return sorted(rows, key=lambda r: r[2].mean())


def print_ranking(table: dict, title: str = "") -> list:
    """Print :func:`ranking`: tuned peak, seed mean, min-max, gap to the best; returns the rows."""
    rows = ranking(table)
    best = rows[0][2].mean()
    if title:
        print(title)
    print(f"  {'':<3}{'schedule':<20}{'peak':>7}{'mean':>8}{'min':>8}{'max':>8}{'gap':>8}")
    for k, (name, peak, losses, edge) in enumerate(rows, 1):
        print(f"  {k:<3}{name:<20}{peak:>7.0e}{losses.mean():>8.4f}{losses.min():>8.4f}"
              f"{losses.max():>8.4f}{losses.mean() - best:>8.4f}" + ("  (grid edge)" if edge else ""))
    if "constant" in table:
        constant = next(r for r in rows if r[0] == "constant")[2]
        ahead = [r[0] for r in rows if r[0] != "constant" and r[2].max() < constant.min()]
        print(f"  constant rate: {constant.mean() - best:.4f} behind the best; worst seed below "
              f"its best seed: {len(ahead)} of {len(rows) - 1}")
    return rows


def stored_table(record: dict) -> dict:
    """The ``table`` of :func:`print_ranking` from a stored :func:`shape_table_rerun`."""
    return {name: (row["peaks"], np.asarray(row["val_loss"], dtype=float))
            for name, row in record["results"]["schedules"].items()}


def draw_table(record: dict, names: Sequence[str] = ("constant", "cosine", "cosine_10", "linear",
                                                     "wsd")):
    """Each schedule at its tuned peak (mean, seeds' min-max) and the validation curves
    (mean over seeds) of a few of them, from a stored :func:`shape_table_rerun`."""
    from ..figures import plotting

    rows = ranking(stored_table(record))
    res = record["results"]["schedules"]
    fig, (a, b) = plotting.subplots(1, 2, size="wide")
    for k, (name, peak, losses, _) in enumerate(rows):
        a.errorbar(losses.mean(), k, xerr=[[losses.mean() - losses.min()],
                                           [losses.max() - losses.mean()]],
                   fmt="o", color="C3" if name == "constant" else "C0", capsize=3)
    a.set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=8)
    a.invert_yaxis(); a.set_xlabel("final validation loss (mean, seeds' min–max)")
    a.set_title("each schedule at its tuned peak")
    for name in names:
        c = res[name]["curve"]
        b.plot(c["steps"], c["mean"], label=f"{name} (η={res[name]['best_peak']:g})")
    b.set_xlabel("step"); b.set_ylabel("validation loss (mean of seeds)")
    lo = min(min(res[n]["curve"]["mean"]) for n in names)
    b.set_ylim(lo - 0.01, lo + 0.15); b.legend(fontsize=8)
    b.set_title("during training (same warmup)")
    return fig


def print_weight_decay(record: dict) -> dict:
    """Per AdamW weight decay: each schedule tuned (peak, mean, min-max) and the per-seed
    difference linear - cosine at their tuned peaks; returns {lambda: mean difference}."""
    res = record["results"]
    out = {}
    for lam, table in res["results"].items():
        tuned_rows = {name: tuned(np.asarray(r["val_loss"], float), r["peaks"])
                      for name, r in table.items()}
        cells = "   ".join(f"{name} {peak:.0e}: {l.mean():.4f} ({l.min():.4f}-{l.max():.4f})"
                           for name, (peak, l) in tuned_rows.items())
        d = tuned_rows["linear"][1] - tuned_rows["cosine"][1]
        out[float(lam)] = float(d.mean())
        d10 = tuned_rows["linear"][1] - tuned_rows["cosine_10"][1]
        print(f"λ = {lam:<4} {cells}")
        print(f"{'':9}linear - cosine per seed: {' '.join(f'{x:+.4f}' for x in d)} "
              f"(mean {d.mean():+.4f})")
        print(f"{'':9}linear - cosine_10 per seed: {' '.join(f'{x:+.4f}' for x in d10)} "
              f"(mean {d10.mean():+.4f})")
    return out


def same_runs_discrepancy(table_a: dict, table_b: dict,
                          names: Sequence[str] = ("cosine", "linear", "cosine_10")) -> dict:
    """The same runs (schedule, peak, seed, batch order, steps) stored in two files whose
    stacks held a different number of other runs, so that only float32 rounding differs.

    ``table_a``/``table_b``: ``{name: {"peaks": [...], "val_loss": [[per seed] per peak]}}``
    (a :func:`shape_table_rerun` ``schedules`` dict, or one lambda of
    :func:`weight_decay_rerun`). Returns ``{name: {peak: a - b per seed}}`` over the
    peaks both grids hold.
    """
    out = {}
    for name in names:
        if name not in table_a or name not in table_b:
            raise ValueError(f"Invalid names: {name!r} is not in both tables")
        a, b = table_a[name], table_b[name]
        shared = [p for p in b["peaks"] if p in a["peaks"]]
        out[name] = {p: np.asarray(a["val_loss"][list(a["peaks"]).index(p)], float)
                     - np.asarray(b["val_loss"][list(b["peaks"]).index(p)], float)
                     for p in shared}
    return out


def print_discrepancy(table_a: dict, table_b: dict,
                      names: Sequence[str] = ("cosine", "linear", "cosine_10")) -> dict:
    """Print :func:`same_runs_discrepancy`: per schedule and peak the largest |difference|
    over seeds, then the largest at each schedule's tuned peak (in ``table_a``) and anywhere.
    Returns ``{"tuned": ..., "anywhere": ...}``."""
    diffs = same_runs_discrepancy(table_a, table_b, names)
    pairs = same = 0
    worst_tuned = worst = (0.0, None, None)
    for name, per_peak in diffs.items():
        best = table_a[name].get("best_peak")
        if best is None:
            best = tuned(np.asarray(table_a[name]["val_loss"], float), table_a[name]["peaks"])[0]
        cells = []
        for p, d in per_peak.items():
            big = float(np.abs(d).max())
            pairs += d.size
            same += int(np.sum(np.abs(d) < 5e-5))
            cells.append(f"{p:.0e}{'*' if p == best else ' '} {big:.4f}")
            if big > worst[0]:
                worst = (big, name, p)
            if p == best and big > worst_tuned[0]:
                worst_tuned = (big, name, p)
        print(f"{name:<10} largest |difference| over seeds, per peak:  " + "   ".join(cells))
    print(f"equal to 4 decimals in {same} of {pairs} (peak, seed) pairs; largest difference "
          f"{worst_tuned[0]:.4f} at a tuned peak (* ; {worst_tuned[1]} {worst_tuned[2]:.0e}), "
          f"{worst[0]:.4f} anywhere ({worst[1]} {worst[2]:.0e})")
    return {"tuned": worst_tuned[0], "anywhere": worst[0]}


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
                       warmup_frac: float = 0.05, batch_seed: int | None = None) -> np.ndarray:
    """Schedule-free AdamW on the same problem and batches as :func:`schedule_comparison`:
    final validation loss at the average x, shape (peaks, seeds), all runs stacked."""
    where = [(i, j) for i in range(len(peaks)) for j in range(len(seeds))]
    model = StackedMLP(data.x_train.shape[1], data.classes, [int(seeds[j]) for _, j in where],
                       hidden=hidden)
    stacked = stack_targets(data, len(where))
    warm = max(1, int(round(warmup_frac * steps)))
    optimizer = member_schedule_free_adamw(model.parameters(), [peaks[i] for i, _ in where], warm)
    train(model, optimizer, stacked, steps=steps, batch_size=batch_size, eval_every=steps,
          seed=int(seeds[0]) if batch_seed is None else int(batch_seed))
    _to_average(optimizer)
    return member_losses(model, stacked.x_val, stacked.y_val).reshape(len(peaks), len(seeds))


# --- Hägele et al.: one constant-rate run, cooldowns branched off its checkpoints -------------

def _step(model, optimizer, stacked: Dataset, idx: torch.Tensor) -> None:
    """One training step as :func:`training.train` takes it (mean cross-entropy over members)."""
    optimizer.zero_grad()
    F.cross_entropy(model(stacked.x_train[idx]), stacked.y_train[idx]).backward()
    optimizer.step()


def _batch_indices(n: int, batch_size: int, steps: int, seed: int) -> torch.Tensor:
    """The first ``steps`` batches :func:`training.train` draws with ``seed`` (steps, batch)."""
    from .training import epoch_batches

    stream = epoch_batches(n, batch_size, torch.Generator().manual_seed(int(seed)))
    return torch.stack([next(stream) for _ in range(steps)])


@dataclass
class BranchResult:
    """Final validation losses, each of shape (budgets, peaks, seeds): ``wsd`` (a cooldown
    branched off the stable run), ``stable`` (the stable run where the branch leaves it),
    ``cosine`` (warmup + cosine to 0, a separate run per budget); and the curves
    (step, mean over seeds) of the stable run and of each branch for the figure."""

    budgets: tuple
    peaks: tuple
    seeds: tuple
    warmup_steps: int
    forks: tuple
    wsd: np.ndarray
    stable: np.ndarray
    cosine: np.ndarray
    curves: dict = field(default_factory=dict)


def wsd_branches(budgets: Sequence[int], peaks: Sequence[float], seeds: Sequence[int],
                 data: Dataset, *, warmup_steps: int = 20, cooldown_frac: float = 0.2,
                 cooldown: str = "1-sqrt", batch_size: int = 32, hidden: int = 64,
                 batch_seed: int = 0, eval_every: int = 0) -> BranchResult:
    """Hägele et al. (2024), literally: one warmup (``warmup_steps``, the same number of
    steps for every budget), one stable run at the peak, and for each budget ``T`` a
    cooldown over its last ``round(cooldown_frac * T)`` steps forked from the stable
    run's checkpoint (model and Adam state copied) at step ``T - T_c``; against warmup
    (the same steps) + cosine to 0, one run per budget. Every (peak, seed) is a member
    of one stacked network; every run sees the same batch sequence (``batch_seed``),
    a branch continuing it where it forks. ``eval_every > 0`` records curves.
    """
    budgets = sorted(_int("budgets", b, 2) for b in budgets)
    warmup_steps = _int("warmup_steps", warmup_steps, 0)
    cools = [max(1, int(round(cooldown_frac * b))) for b in budgets]
    forks = [b - c for b, c in zip(budgets, cools)]
    if min(forks) < warmup_steps:
        raise ValueError(f"Invalid budgets: {budgets} (the shortest cooldown would start "
                         f"before the {warmup_steps}-step warmup ends)")
    seeds = [int(s) for s in seeds]
    where = [(p, s) for p in range(len(peaks)) for s in range(len(seeds))]
    shape = (len(budgets), len(peaks), len(seeds))
    m = len(where)
    longest = max(budgets)
    idx = _batch_indices(data.n_train, batch_size, longest, batch_seed)
    stacked = stack_targets(data, m)
    member_seeds = [seeds[s] for _, s in where]

    def model_and_rates(schedules):
        model = StackedMLP(data.x_train.shape[1], data.classes, member_seeds, hidden=hidden)
        rates = np.stack([f(np.arange(longest)) for f in schedules], axis=1)
        return model, rates

    def losses(model):
        return member_losses(model, stacked.x_val, stacked.y_val).reshape(len(peaks), len(seeds))

    def curve(model, key, t):
        if eval_every and (t % eval_every == 0 or t in budgets or t in forks):
            self_curves.setdefault(key, {})[t] = losses(model).mean(axis=1)

    self_curves: dict = {}
    out = {k: np.full(shape, np.nan) for k in ("wsd", "stable", "cosine")}
    # the stable run: warmup, then the peak, up to the last fork
    stable_model, stable_rates = model_and_rates(
        [sch.linear_warmup(peaks[p], warmup_steps) for p, _ in where])
    stable_opt = member_adam(stable_model.parameters(), stable_rates)
    checkpoints = {}
    for t in range(max(forks) + 1):
        curve(stable_model, "stable", t)
        if t in forks:
            checkpoints[t] = (copy.deepcopy(stable_model.state_dict()),
                              copy.deepcopy([stable_opt.state[q].get("transform_state")
                                             for q in stable_model.parameters()]))
        if t < max(forks):
            _step(stable_model, stable_opt, stacked, idx[t])
    # each budget: a cooldown branched off its checkpoint
    for b, (budget, fork) in enumerate(zip(budgets, forks)):
        model, rates = model_and_rates(
            [sch.warmup_stable_decay(peaks[p], warmup_steps, budget, cools[b], cooldown=cooldown)
             for p, _ in where])
        opt = member_adam(model.parameters(), rates)
        model.load_state_dict(checkpoints[fork][0])
        for q, state in zip(model.parameters(), copy.deepcopy(checkpoints[fork][1])):
            if state is not None:      # Adam's moments and step count, exactly as they were
                opt.state[q]["transform_state"] = state
        out["stable"][b] = losses(model)
        curve(model, f"wsd {budget}", fork)
        for t in range(fork, budget):
            _step(model, opt, stacked, idx[t])
            curve(model, f"wsd {budget}", t + 1)
        out["wsd"][b] = losses(model)
    # cosine: a separate run per budget, all budgets in one stacked network
    cos_where = [(b, p, s) for b in range(len(budgets)) for p, s in where]
    model = StackedMLP(data.x_train.shape[1], data.classes, [seeds[s] for *_, s in cos_where],
                       hidden=hidden)
    rates = np.stack([sch.warmup_cosine(peaks[p], warmup_steps, budgets[b], eta_min=0.0)(
        np.arange(longest)) for b, p, _ in cos_where], axis=1)
    cos_stacked = stack_targets(data, len(cos_where))
    opt = member_adam(model.parameters(), rates)
    for t in range(longest):
        _step(model, opt, cos_stacked, idx[t])
        if eval_every and ((t + 1) % eval_every == 0 or t + 1 in budgets):
            per = member_losses(model, cos_stacked.x_val, cos_stacked.y_val).reshape(
                len(budgets), len(peaks), len(seeds)).mean(axis=2)
            for b, budget in enumerate(budgets):
                if t + 1 <= budget:
                    self_curves.setdefault(f"cosine {budget}", {})[t + 1] = per[b]
        # read each budget's losses when it ends (its rate is 0 afterwards anyway)
        for b, budget in enumerate(budgets):
            if t + 1 == budget:
                out["cosine"][b] = member_losses(model, cos_stacked.x_val, cos_stacked.y_val
                                                 ).reshape(len(budgets), len(peaks), len(seeds))[b]
    curves = {k: (np.array(sorted(v)), np.array([v[t] for t in sorted(v)]))
              for k, v in self_curves.items()}
    return BranchResult(tuple(budgets), tuple(peaks), tuple(seeds), warmup_steps, tuple(forks),
                        out["wsd"], out["stable"], out["cosine"], curves)


def draw_branches(record: dict, peak: float):
    """Hägele et al.'s picture from a stored :func:`branches_rerun`: the stable run at
    ``peak`` (grey), the cooldowns forked from it, and the cosine run of each budget
    (validation loss, mean over seeds)."""
    from ..figures import plotting

    res = record["results"]
    i = list(res["peaks"]).index(peak)
    curves = res["curves"]
    fig, ax = plotting.subplots(size="wide")
    t, v = curves["stable"]["steps"], np.asarray(curves["stable"]["mean"])[:, i]
    ax.plot(t, v, color="0.55", label=f"stable run, η = {peak:g}")
    for k, budget in enumerate(res["budgets"]):
        c = curves[f"cosine {budget}"]
        ax.plot(c["steps"], np.asarray(c["mean"])[:, i], color=f"C{k}", ls="--", lw=1.2,
                label=f"cosine, T = {budget}")
        w = curves[f"wsd {budget}"]
        ax.plot(w["steps"], np.asarray(w["mean"])[:, i], color=f"C{k}", lw=2,
                label=f"cooldown branch, T = {budget}")
    ax.set_xlabel("step"); ax.set_ylabel("validation loss (mean of seeds)")
    lo = min(np.asarray(curves[f"wsd {b}"]["mean"])[:, i].min() for b in res["budgets"])
    ax.set_ylim(lo - 0.01, lo + 0.12); ax.legend(fontsize=7, ncol=2)
    ax.set_title("one stable run, cooldowns forked from it, and a cosine run per budget")
    return fig


def print_branches(budgets, peaks, wsd, cosine, stable=None) -> list:
    """Each schedule tuned per budget (lowest seed mean): peak (``*`` at the grid's edge),
    mean (min-max), and the gap WSD - cosine with the seeds' min-max of the paired
    differences; with ``stable``, the tuned stable run at the fork (no cooldown) and how far
    above the tuned WSD branch it is. Returns the gaps WSD - cosine."""
    head = f"{'budget':>6}  {'WSD: peak   mean (min-max)':<32}{'cosine: peak mean (min-max)':<34}"
    print(head + f"{'WSD - cosine (per seed)':<30}"
          + ("   stable, no cooldown (- WSD)" if stable is not None else ""))
    gaps = []
    edge = lambda p: "*" if p in (min(peaks), max(peaks)) else " "
    for b, budget in enumerate(budgets):
        w_peak, w = tuned(np.asarray(wsd[b]), list(peaks))
        c_peak, c = tuned(np.asarray(cosine[b]), list(peaks))
        d = w - c
        gaps.append(float(d.mean()))
        line = (f"{budget:>6}  {w_peak:<7.3g}{edge(w_peak)}{w.mean():.4f} ({w.min():.4f}-{w.max():.4f})  "
                f"{c_peak:<7.3g}{edge(c_peak)}{c.mean():.4f} ({c.min():.4f}-{c.max():.4f})    "
                f"{d.mean():+.4f} ({d.min():+.4f} to {d.max():+.4f})")
        if stable is not None:
            st = tuned(np.asarray(stable[b]), list(peaks))[1].mean()
            line += f"   {st:.4f} ({st - w.mean():+.4f})"
        print(line)
    return gaps


def branch_gaps(records: Sequence[dict]) -> dict:
    """WSD - cosine (each tuned per budget on its own grid, mean over the seeds) for every
    budget of every stored :func:`branches_rerun` record: ``{(record name, budget): gap}``."""
    out = {}
    for record in records:
        res = record["results"]
        for b, budget in enumerate(res["budgets"]):
            w = tuned(np.asarray(res["val_loss"]["wsd"][b], float), list(res["peaks"]))[1]
            c = tuned(np.asarray(res["val_loss"]["cosine"][b], float), list(res["peaks"]))[1]
            out[(record["name"], int(budget))] = float((w - c).mean())
    return out


def print_branch_gaps(records: Sequence[dict], labels: Sequence[str]) -> dict:
    """One row per budget, one column per record (``labels``): the mean gap WSD - cosine;
    then, per budget, whether the sign agrees across the seed sets, and the largest gap
    anywhere. Returns :func:`branch_gaps`."""
    if len(labels) != len(records):
        raise ValueError(f"Invalid labels: {len(labels)} labels for {len(records)} records")
    gaps = branch_gaps(records)
    budgets = sorted({b for _, b in gaps})
    names = [r["name"] for r in records]
    print(f"{'budget':>6}  " + "".join(f"{label:>20}" for label in labels) + "   sign")
    for budget in budgets:
        row = [gaps.get((n, budget)) for n in names]
        have = [g for g in row if g is not None]
        sign = ("WSD behind" if all(g > 0 for g in have) else
                "WSD ahead" if all(g < 0 for g in have) else "mixed")
        print(f"{budget:>6}  " + "".join(f"{'' if g is None else f'{g:+.4f}':>20}" for g in row)
              + f"   {sign if len(have) > 1 else '(one set)'}")
    values = np.array(list(gaps.values()))
    print(f"WSD - cosine over every budget and seed set: {values.min():+.4f} to {values.max():+.4f}; "
          f"WSD behind in {int(np.sum(values > 0))} of {len(values)}")
    return gaps


def decay_with_weight_decay(lambdas: Sequence[float], peaks: Sequence[float],
                            seeds: Sequence[int], data: Dataset, *, steps: int = 1000,
                            names: Sequence[str] = ("cosine", "linear", "cosine_10"),
                            batch_seed: int = 0) -> dict:
    """Bergsma et al. (2025): linear decay to zero against cosine with AdamW's decoupled
    weight decay ``lambda`` (their mechanism: AdamW's weights average the updates over
    ~1/(eta lambda) steps). ``{lambda: {name: (peaks, val_loss (peaks, seeds))}}``."""
    out = {}
    for lam in lambdas:
        grid = {name: tuple(peaks) for name in names}
        result = schedule_comparison(names, grid, seeds, data, steps=steps,
                                     weight_decay=float(lam), batch_seed=batch_seed)
        out[float(lam)] = {name: (result.peaks[name], result.val_loss[name]) for name in names}
    return out

# --- the noisy quadratic model (interactive figure) -----------------------------------------

NQM_SHAPES = ("constant", "cosine", "linear", "wsd")
NQM_COOLDOWNS = sch.COOLDOWN_SHAPES      # WSD's cooldown: linear, 1-sqrt, cosine


def nqm_schedule(shape: str, peak: float, steps: int = 200, warmup_frac: float = 0.0,
                 cooldown_frac: float = 0.2, cooldown: str = "linear",
                 end_frac: float = 0.0) -> np.ndarray:
    """eta_t for t = 0..steps-1 of the figure's schedule shapes (warmup first, linear).

    ``cooldown`` is WSD's cooldown shape (:data:`NQM_COOLDOWNS`); the decaying shapes
    (cosine, linear, wsd) end at ``end_frac * peak`` (0 or the article's 0.1).
    """
    steps = _int("steps", steps, 8)
    if not 0.0 <= warmup_frac < 1.0:
        raise ValueError(f"Invalid warmup_frac: {warmup_frac} (must lie in [0, 1))")
    if not 0.0 < cooldown_frac <= 1.0:
        raise ValueError(f"Invalid cooldown_frac: {cooldown_frac} (must lie in (0, 1])")
    if cooldown not in NQM_COOLDOWNS:
        raise ValueError(f"Invalid cooldown: {cooldown!r} (one of {', '.join(NQM_COOLDOWNS)})")
    if isinstance(end_frac, bool) or not isinstance(end_frac, (int, float)) \
            or not 0.0 <= end_frac <= 1.0:
        raise ValueError(f"Invalid end_frac: {end_frac!r} (must lie in [0, 1])")
    warm = int(round(warmup_frac * steps))
    end = end_frac * peak
    t = np.arange(steps)
    if shape == "constant":
        s = sch.linear_warmup(peak, warm)
    elif shape == "cosine":
        s = sch.warmup_cosine(peak, warm, steps, eta_min=end)
    elif shape == "linear":
        s = sch.join_schedules([sch.linear_warmup(peak, warm),
                                sch.linear_decay(peak, steps - warm, end)],
                               [warm]) if warm else sch.linear_decay(peak, steps, end)
    elif shape == "wsd":
        cool = max(1, int(round(cooldown_frac * steps)))
        if warm + cool > steps:
            cool = steps - warm
        s = sch.warmup_stable_decay(peak, warm, steps, cool, end, cooldown=cooldown)
    else:
        raise ValueError(f"Invalid shape: {shape!r} (one of {', '.join(NQM_SHAPES)})")
    return s(t)


NQM_PEAKS = tuple(float(f"{p:.3g}") for p in np.linspace(0.05, 1.99, 98))
"""The tuning grid of the noisy-quadratic table: 0.05 to 1.99 in steps of 0.02."""


def _nqm_finals(etas: np.ndarray, noise: float = 1.0) -> np.ndarray:
    """``nqm_loss(etas[k], noise=noise)[-1]`` for every row k at once (the same elementwise
    recursion and the same sum per row, so the same numbers)."""
    h = np.asarray(NQM_CURVATURES, dtype=np.float64)
    m = np.ones((len(etas), len(h)))
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(etas.shape[1]):
            eta = etas[:, t:t + 1]
            m = (1 - eta * h) ** 2 * m + eta ** 2 * h * noise ** 2
        finals = np.array([0.5 * np.sum(h * row) for row in m])
    return np.where(np.isfinite(finals), finals, np.inf)


def nqm_tuned(shape: str, peaks: Sequence[float] = NQM_PEAKS, steps: int = 200,
              noise: float = 1.0, **kwargs) -> tuple:
    """(best peak, its final expected loss) of ``nqm_schedule(shape, peak, steps, **kwargs)``
    over ``peaks`` on the noisy quadratic (exact: no seeds to average)."""
    finals = _nqm_finals(np.stack([nqm_schedule(shape, p, steps, **kwargs) for p in peaks]), noise)
    i = int(np.argmin(finals))
    return float(peaks[i]), float(finals[i])


NQM_TABLE = (("constant", {}), ("cosine", {}), ("linear", {}),
             ("wsd", {"cooldown": "linear"}), ("wsd", {"cooldown": "1-sqrt"}),
             ("wsd", {"cooldown": "cosine"}))


def nqm_table(warmup_fracs: Sequence[float] = (0.0, 0.05, 0.2), cooldown_frac: float = 0.2,
              steps: int = 200, noise: float = 1.0, end_frac: float = 0.0) -> list:
    """Every shape of :data:`NQM_TABLE` tuned on :data:`NQM_PEAKS` at each warmup fraction:
    rows ``(label, [(best peak, loss) per warmup])``."""
    rows = []
    for shape, extra in NQM_TABLE:
        label = shape if shape != "wsd" else f"wsd {int(round(100 * cooldown_frac))} % {extra['cooldown']}"
        cells = [nqm_tuned(shape, steps=steps, noise=noise, warmup_frac=w, end_frac=end_frac,
                           cooldown_frac=cooldown_frac, **extra) for w in warmup_fracs]
        rows.append((label, cells))
    return rows


def print_nqm_table(rows: list, warmup_fracs: Sequence[float] = (0.0, 0.05, 0.2)) -> None:
    """Print :func:`nqm_table`: per shape and warmup, the tuned peak and the final loss, and
    what the warmup cost at the tuned peak (relative to no warmup)."""
    head = "".join(f"{'warmup ' + format(w, '.0%'):>20}" for w in warmup_fracs)
    print(f"{'shape (200 steps)':<19}{head}   cost of the warmups")
    for label, cells in rows:
        base = cells[0][1]
        cost = ", ".join(f"{100 * (loss / base - 1):+.1f} %" for _, loss in cells[1:])
        print(f"{label:<19}" + "".join(f"{f'η={p:.2f}  {loss:.4f}':>20}" for p, loss in cells)
              + f"   {cost}")


def nqm_warmup_gains(warmup_fracs: Sequence[float] = (0.02, 0.05, 0.1, 0.2),
                     peaks: Sequence[float] = NQM_PEAKS, steps: int = 200) -> dict:
    """Every shape of :data:`NQM_SHAPES` at every peak: does a warmup ever *lower* the final
    loss of the noisy quadratic? Returns the count of (shape, peak, warmup) cases where it
    does, out of how many, the smallest such peak and the largest relative gain."""
    gains = []
    total = 0
    for shape in NQM_SHAPES:
        base = _nqm_finals(np.stack([nqm_schedule(shape, p, steps) for p in peaks]))
        for w in warmup_fracs:
            warm = _nqm_finals(np.stack([nqm_schedule(shape, p, steps, w) for p in peaks]))
            total += len(peaks)
            gains += [(1 - loss / b, shape, peak, w)
                      for peak, b, loss in zip(peaks, base, warm) if loss < b]
    out = {"cases": total, "lower": len(gains)}
    if gains:
        best = max(gains)
        out.update(smallest_peak=min(g[2] for g in gains), largest_gain=best[0],
                   where=best[1:])
    return out


NQM_FINE_PEAKS = tuple(round(0.01 * k, 2) for k in range(1, 200))
"""0.01 to 1.99 in steps of 0.01: the grid of the warmup-against-noise check."""


NQM_LOG_PEAKS = tuple(float(f"{0.005 * 398 ** (k / 119):.3g}") for k in range(120))
"""0.005 to 1.99, 120 peaks about 5 % apart: the grid of the tuned-peak warmup check (the
tuned peaks fall to 0.02 at large noise, where a grid in steps of 0.01 is too coarse)."""


def nqm_warmup_threshold(noise: float, warmup_fracs: Sequence[float] = (0.02, 0.05, 0.1, 0.2, 0.4),
                         peaks: Sequence[float] = NQM_FINE_PEAKS, steps: int = 200):
    """The smallest constant peak rate at which some linear warmup (a fraction of
    ``warmup_fracs`` of the run) lowers the final expected loss of the noisy quadratic with
    gradient noise ``noise``; ``None`` if no warmup helps at any peak of ``peaks``."""
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not noise >= 0:
        raise ValueError(f"Invalid noise: {noise!r} (must be a number >= 0)")
    peaks = np.asarray(peaks, float)
    base = _nqm_finals(np.stack([nqm_schedule("constant", p, steps) for p in peaks]), noise)
    helped = np.zeros(len(peaks), bool)
    for w in warmup_fracs:
        warm = _nqm_finals(np.stack([nqm_schedule("constant", p, steps, w) for p in peaks]), noise)
        helped |= warm < base
    return float(peaks[int(np.argmax(helped))]) if helped.any() else None


def nqm_warmup_cost_at_tuned(noise: float, warmup_fracs: Sequence[float] = (0.02, 0.05, 0.1, 0.2, 0.4),
                             peaks: Sequence[float] = NQM_LOG_PEAKS, steps: int = 200) -> float:
    """Over every shape of :data:`NQM_TABLE` and every warmup of ``warmup_fracs``, the
    smallest relative change of the final loss that the warmup brings when both runs have
    their own tuned peak (a negative value would mean a warmup helps at tuned peaks)."""
    cheapest = np.inf
    for shape, extra in NQM_TABLE:
        base = nqm_tuned(shape, peaks, steps, noise, **extra)[1]
        for w in warmup_fracs:
            warm = nqm_tuned(shape, peaks, steps, noise, warmup_frac=w, **extra)[1]
            cheapest = min(cheapest, warm / base - 1)
    return float(cheapest)


def print_nqm_warmup_noise(noises: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
                           warmup_fracs: Sequence[float] = (0.02, 0.05, 0.1, 0.2, 0.4)) -> list:
    """Per gradient noise sigma: the peak above which the stiffest direction's noise floor
    (h = 1: eta sigma^2 / (2 - eta)) exceeds its starting value 1, i.e. eta > 2 / (1 + sigma^2);
    the smallest constant peak at which a warmup helps (:func:`nqm_warmup_threshold`); and
    the cheapest warmup at tuned peaks over every shape (:func:`nqm_warmup_cost_at_tuned`)."""
    print(f"{'sigma':>6}  {'floor > start above':>20}  {'warmup helps from peak':>23}  "
          f"{'at tuned peaks, cheapest warmup':>32}")
    rows = []
    for sigma in noises:
        crossing = 2 / (1 + sigma ** 2)
        first = nqm_warmup_threshold(sigma, warmup_fracs)
        cost = nqm_warmup_cost_at_tuned(sigma, warmup_fracs)
        rows.append((sigma, crossing, first, cost))
        print(f"{sigma:>6g}  {crossing:>20.2f}  {('never' if first is None else f'{first:.2f}'):>23}  "
              f"{100 * cost:>+30.1f} %")
    return rows


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
             cooldown_frac: float = 0.2, steps: int = 200, cooldown: str = "linear",
             end_frac: float = 0.0, noise: float = 1.0):
    """The interactive figure of 6.1: eta_t (left) and the NQM loss it produces (right),
    with the constant-rate loss at the same peak in grey for reference."""
    from ..figures import plotting

    etas = nqm_schedule(shape, peak, steps, warmup_frac, cooldown_frac, cooldown, end_frac)
    loss = nqm_loss(etas, noise=noise)
    ref = nqm_loss(nqm_schedule("constant", peak, steps, warmup_frac, cooldown_frac), noise=noise)
    fig, (a, b) = plotting.subplots(1, 2, size="wide", pyplot=False)
    a.plot(np.arange(steps), etas, color="C0")
    a.set_xlabel("step t"); a.set_ylabel("η_t"); a.set_ylim(0, 2.05); a.set_title(f"{shape} schedule")
    b.semilogy(ref, color="0.6", label="constant η")
    b.semilogy(loss, color="C0", label=shape)
    b.set_ylim(1e-4, 10); b.set_xlabel("step t"); b.set_ylabel("expected loss")
    b.set_title(f"final loss {loss[-1]:.4f}"); b.legend(loc="upper right")
    return fig


# --- stored reruns (scripts/reruns.py; book/data/reruns/06-*.json) -----------------------------
# The checks 6.1 quotes but cannot afford in its minute: the shape table on other seeds
# and another batch order, and at 5x the steps; WSD's branches against cosine on other
# seeds and at 10x the budgets; linear decay to zero against cosine with AdamW's weight
# decay. Each calls the experiment functions above unchanged; 06-schedules prints the
# stored files next to its claims.

TABLE_PEAKS = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)   # the tables' grid at 200-800 steps
SF_PEAKS = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
# a finer grid (factor 1.5) around the long budgets' tuned peaks, for the second seed set
FINE_PEAKS = (1.5e-3, 2.25e-3, 3.38e-3, 5.06e-3, 7.59e-3, 1.14e-2, 1.71e-2, 2.56e-2, 3.84e-2)


def shape_table_rerun(seeds: Sequence[int], steps: int, peaks: Sequence[float],
                      sf_peaks: Sequence[float], batch_seed: int = 0) -> dict:
    """:func:`schedule_comparison` of every schedule of :data:`SCHEDULES` (same warmup)
    and :func:`schedule_free_runs` on :func:`clean_problem`, as a stored rerun.

    Per schedule (and ``"schedule-free AdamW"``): ``peaks``, ``val_loss[i][s]``,
    ``best_peak`` (lowest seed mean, :func:`tuned`) and ``best[s]``, the losses at it.
    """
    data = clean_problem(seed=0)
    grid = {name: tuple(peaks) for name in SCHEDULES}
    result = schedule_comparison(SCHEDULES, grid, seeds, data, steps=steps, batch_seed=batch_seed,
                                 eval_every=max(1, steps // 20))
    grids = {name: (result.peaks[name], result.val_loss[name]) for name in SCHEDULES}
    grids["schedule-free AdamW"] = (tuple(sf_peaks), schedule_free_runs(
        sf_peaks, seeds, data, steps=steps, batch_seed=batch_seed))
    out = {}
    for name, (g, losses) in grids.items():
        best_peak, best = tuned(losses, g)
        out[name] = {"peaks": list(g), "val_loss": losses, "best_peak": best_peak, "best": best}
        if name in result.curves:      # the validation curve at the tuned peak, mean over seeds
            evals, curves = result.curves[name]
            out[name]["curve"] = {"steps": evals, "mean": curves[list(g).index(best_peak)].mean(0)}
    return {"steps": steps, "seeds": [int(s) for s in seeds], "batch_seed": int(batch_seed),
            "schedules": out}


def branches_rerun(steps: Sequence[int], peaks: Sequence[float], seeds: Sequence[int],
                   warmup_steps: int = 20, batch_seed: int = 0,
                   eval_every: int | None = None) -> dict:
    """:func:`wsd_branches` on :func:`clean_problem`; ``steps`` are the budgets.

    ``val_loss[kind][b][i][s]`` for kind ``wsd``, ``cosine``, ``stable`` at peak
    ``peaks[i]`` and seed ``seeds[s]``; ``best_peak[kind][b]`` (lowest seed mean) and
    ``best[kind][b][s]``; the curves every ``eval_every`` steps (default: 20 per run).
    """
    r = wsd_branches(steps, peaks, seeds, clean_problem(seed=0), warmup_steps=warmup_steps,
                     batch_seed=batch_seed,
                     eval_every=eval_every or max(1, max(steps) // 20))
    runs = {"wsd": r.wsd, "cosine": r.cosine, "stable": r.stable}
    out = {"budgets": list(r.budgets), "forks": list(r.forks), "peaks": list(peaks),
           "warmup_steps": warmup_steps, "batch_seed": int(batch_seed), "val_loss": runs,
           "best_peak": {}, "best": {},
           # validation loss (mean over seeds) per peak: {"stable" | "wsd T" | "cosine T":
           # {"steps": [...], "mean": [[per peak] per step]}}
           "curves": {k: {"steps": t, "mean": v} for k, (t, v) in r.curves.items()}}
    for kind, losses in runs.items():
        chosen = [tuned(losses[b], list(peaks)) for b in range(len(r.budgets))]
        out["best_peak"][kind] = [peak for peak, _ in chosen]
        out["best"][kind] = [best for _, best in chosen]
    return out


def weight_decay_rerun(lambdas: Sequence[float], peaks: Sequence[float], seeds: Sequence[int],
                       steps: int, batch_seed: int = 0) -> dict:
    """:func:`decay_with_weight_decay` on :func:`clean_problem`, as a stored rerun:
    ``{"lambdas": [...], "results": {str(lambda): {name: {peaks, val_loss, best_peak, best}}}}``."""
    runs = decay_with_weight_decay(lambdas, peaks, seeds, clean_problem(seed=0), steps=steps,
                                   batch_seed=batch_seed)
    out = {}
    for lam, table in runs.items():
        out[f"{lam:g}"] = {}
        for name, (g, losses) in table.items():
            best_peak, best = tuned(losses, list(g))
            out[f"{lam:g}"][name] = {"peaks": list(g), "val_loss": losses, "best_peak": best_peak,
                                     "best": best}
    return {"steps": steps, "seeds": [int(s) for s in seeds], "lambdas": [float(x) for x in lambdas],
            "batch_seed": int(batch_seed), "results": out}


RERUNS = (
    Rerun(name="06-shape-table", chapter="06-schedules",
          claim="Every schedule after the same 5 % warmup (and schedule-free AdamW), each "
                "at its tuned peak, 400 steps of Adam on the clean teacher task, seeds 0-2: "
                "which shapes lead, and by more than the seed spread?",
          function="schedules:shape_table_rerun",
          params={"seeds": (0, 1, 2), "steps": 400, "peaks": TABLE_PEAKS, "sf_peaks": SF_PEAKS,
                  "batch_seed": 0},
          minutes=1.0),
    Rerun(name="06-shape-table-seeds-3-5", chapter="06-schedules",
          claim="The shape table (every schedule after the same 5 % warmup, tuned peaks, "
                "400 steps, clean teacher task) on seeds 3-5 and another batch order: which "
                "shapes lead, how far behind is the constant rate?",
          function="schedules:shape_table_rerun",
          params={"seeds": (3, 4, 5), "steps": 400, "peaks": TABLE_PEAKS, "sf_peaks": SF_PEAKS,
                  "batch_seed": 1},
          minutes=0.5),
    Rerun(name="06-shape-table-2000-steps", chapter="06-schedules",
          claim="The shape table at 2,000 steps (5x) on seeds 0-2, every grid from 1e-4 "
                "to 1e-1: does the order of the shapes hold at a longer horizon?",
          function="schedules:shape_table_rerun",
          params={"seeds": (0, 1, 2), "steps": 2000,
                  "peaks": (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1),
                  "sf_peaks": (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1), "batch_seed": 0},
          minutes=5.0),
    Rerun(name="06-wsd-branches", chapter="06-schedules",
          claim="WSD as Hägele et al. run it: one 20-step warmup, one stable run, 1-sqrt "
                "cooldowns (20 % of each budget) forked from its checkpoints at 200, 400 and "
                "800 steps, against warmup + cosine to 0, tuned per budget, seeds 0-2.",
          function="schedules:branches_rerun",
          params={"steps": (200, 400, 800), "peaks": TABLE_PEAKS, "seeds": (0, 1, 2),
                  "warmup_steps": 20, "eval_every": 10, "batch_seed": 0},
          minutes=0.5),
    Rerun(name="06-wsd-branches-seeds-3-5", chapter="06-schedules",
          claim="WSD branched off one stable run (20-step warmup, 1-sqrt cooldown over 20 %) "
                "against warmup + cosine at 200, 400 and 800 steps, tuned per budget, on "
                "seeds 3-5 and another batch order.",
          function="schedules:branches_rerun",
          params={"steps": (200, 400, 800), "peaks": TABLE_PEAKS, "seeds": (3, 4, 5),
                  "warmup_steps": 20, "eval_every": 10, "batch_seed": 1},
          minutes=0.3),
    Rerun(name="06-wsd-branches-long", chapter="06-schedules",
          claim="WSD branches against warmup + cosine at 1,000, 2,000, 4,000 and 8,000 steps "
                "on seeds 0-2, peaks tuned per budget from 1e-4 to 1e-1: does WSD match "
                "cosine when longer training keeps helping?",
          function="schedules:branches_rerun",
          params={"steps": (1000, 2000, 4000, 8000),
                  "peaks": (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1), "seeds": (0, 1, 2),
                  "warmup_steps": 20, "batch_seed": 0},
          minutes=7.0),
    Rerun(name="06-wsd-branches-long-seeds-3-5", chapter="06-schedules",
          claim="WSD branches against warmup + cosine at 800 to 4,000 steps on a second seed "
                "set and batch order (seeds 3-5, order 1), each tuned over a finer grid "
                "(nine peaks a factor 1.5 apart): does the sign of WSD - cosine hold?",
          function="schedules:branches_rerun",
          params={"steps": (800, 1000, 2000, 4000), "peaks": FINE_PEAKS, "seeds": (3, 4, 5),
                  "warmup_steps": 20, "batch_seed": 1},
          minutes=6.0),
    Rerun(name="06-wsd-branches-long-seeds-6-8", chapter="06-schedules",
          claim="WSD branches against warmup + cosine at 800 to 4,000 steps on a third seed "
                "set and batch order (seeds 6-8, order 2), nine peaks a factor 1.5 apart.",
          function="schedules:branches_rerun",
          params={"steps": (800, 1000, 2000, 4000), "peaks": FINE_PEAKS, "seeds": (6, 7, 8),
                  "warmup_steps": 20, "batch_seed": 2},
          minutes=2.0),
    Rerun(name="06-wsd-branches-long-fine", chapter="06-schedules",
          claim="The long WSD branches of seeds 0-2 (1,000 to 8,000 steps) again, each "
                "schedule tuned over nine peaks a factor 1.5 apart instead of a factor 3: "
                "does WSD's lead on these seeds survive a finer grid?",
          function="schedules:branches_rerun",
          params={"steps": (1000, 2000, 4000, 8000), "peaks": FINE_PEAKS, "seeds": (0, 1, 2),
                  "warmup_steps": 20, "batch_seed": 0},
          minutes=7.0),
    Rerun(name="06-d2z-weight-decay", chapter="06-schedules",
          claim="Linear decay to zero against cosine (to 0 and to 10 %) with AdamW, "
                "weight decay 0, 0.1 and 1, 2,000 steps, tuned peaks, seeds 0-2 "
                "(Bergsma et al. 2025's mechanism involves the decay).",
          function="schedules:weight_decay_rerun",
          params={"lambdas": (0.0, 0.1, 1.0), "peaks": (3e-4, 1e-3, 3e-3, 1e-2, 3e-2),
                  "seeds": (0, 1, 2), "steps": 2000, "batch_seed": 0},
          minutes=3.0),
    Rerun(name="06-d2z-weight-decay-seeds-3-5", chapter="06-schedules",
          claim="Linear decay to zero against cosine to 0 and to 10 % with AdamW (weight "
                "decay 0, 0.1, 1), 2,000 steps, tuned peaks, on seeds 3-5 and batch order 1: "
                "does decay-to-zero's lead over the 10 % cosine hold on other seeds?",
          function="schedules:weight_decay_rerun",
          params={"lambdas": (0.0, 0.1, 1.0), "peaks": (3e-4, 1e-3, 3e-3, 1e-2, 3e-2),
                  "seeds": (3, 4, 5), "steps": 2000, "batch_seed": 1},
          minutes=4.0),
)
"""The section's stored reruns (``make reruns RERUNS=<name>``)."""


# --- the chapter's figures (kinds from optbook.figures) ----------------------------------

def schedule_figure(shape: str = "wsd", peak: float = 0.5, warmup_frac: float = 0.0,
                    cooldown_frac: float = 0.1, steps: int = 200, cooldown: str = "linear",
                    end_frac: float = 0.0, noise: float = 1.0) -> Explorer:
    r"""Chapter 6.1: a learning-rate schedule and the exact expected loss of SGD it
    produces on the noisy quadratic model (figure kind ``schedule``,
    :func:`optbook.figures.nqm_figure`).

    Controls: the shape (constant, cosine, linear, wsd; a menu), WSD's cooldown
    shape (linear, :math:`1-\sqrt{s}`, cosine; a menu), the final rate of the
    decaying shapes (0 or 10 % of the peak; a menu), the peak rate
    :math:`\eta \in [0.05, 1.99]`, the warmup fraction in :math:`[0, 0.5]`, WSD's
    cooldown fraction in :math:`(0, 1]` (its slider starts at one step) and the
    gradient-noise scale :math:`\sigma \in [0, 2]`.
    The page recomputes :math:`\eta_t` with
    :func:`nqm_schedule`'s formulas and the loss
    with :func:`nqm_loss`'s recursion
    :math:`m_i \leftarrow (1-\eta_t h_i)^2 m_i + \eta_t^2 h_i \sigma^2` over the
    same 20 curvatures (from 1 to 0.01), next to the constant rate with the same
    peak, warmup and noise in grey, and reads out both losses at step ``steps // 4``
    (where warmup shows) and at the end.  The kernel
    widget and the still image are :func:`draw_nqm`.
    """
    shapes = list(NQM_SHAPES)
    if shape not in shapes:
        raise ValueError(f"Invalid shape: {shape!r} (one of {', '.join(shapes)})")
    cooldowns = list(NQM_COOLDOWNS)
    if cooldown not in cooldowns:
        raise ValueError(f"Invalid cooldown: {cooldown!r} (one of {', '.join(cooldowns)})")
    ends = [0.0, 0.1]
    if end_frac not in ends:
        raise ValueError(f"Invalid end_frac: {end_frac!r} (0 or 0.1: the final rate as a "
                         "fraction of the peak)")
    steps = int(steps)
    params = [param_spec("peak", "peak η", 0.05, 1.99, peak, "linear",
                         title="peak learning rate η"),
              param_spec("warmup_frac", "warmup / T", 0.0, 0.5, warmup_frac, "linear",
                         title="warmup length as a fraction of the run"),
              param_spec("cooldown_frac", "cooldown / T (WSD)", 1.0 / steps, 1.0, cooldown_frac,
                         "linear", title="WSD's cooldown length as a fraction of the run"),
              param_spec("noise", "noise σ", 0.0, 2.0, noise, "linear",
                         title="gradient noise scale σ")]
    cooldown_labels = {"linear": "linear", "1-sqrt": "1 − √s", "cosine": "cosine"}

    def draw(shape, cooldown, end_frac, peak, warmup_frac, cooldown_frac, noise):
        return draw_nqm(shape, peak, warmup_frac, cooldown_frac, steps, cooldown=cooldown,
                        end_frac=end_frac, noise=noise)

    # the curvatures nqm_loss uses by default: the page must use the same ones
    return nqm_figure(draw, shapes=shapes, shape=shape,
                      cooldowns=[(cooldown_labels[c], c) for c in cooldowns], cooldown=cooldown,
                      ends=[("0", 0.0), ("10 % of peak", 0.1)], end_frac=end_frac,
                      curvatures=NQM_CURVATURES, params=params, steps=steps,
                      title="Schedules on the noisy quadratic",
                      ref_label="constant η (same peak, warmup)", eta_max=2.05,
                      loss_range=(1e-4, 10.0))
