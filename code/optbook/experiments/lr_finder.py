r"""Chapter 7.2 (学習率の選択, choosing the learning rate): the LR range test against a real sweep.

The range test (:func:`optbook.lr_range_test.lr_range_test`) proposes a
learning rate from one short run with a growing rate; a *sweep* trains the
same model at fixed rates for the real budget and measures which one is best.
This module runs both on the shared small problem of
:mod:`optbook.experiments.training` (an MLP on teacher-labelled data), for
several seeds, and reports how far, as a factor, each suggestion rule lands
from the sweep's best rate.  It also holds the two sanity checks of
Karpathy's recipe: the loss at initialization against :math:`\log C`, and
over-fitting a single batch.

Every function is pure: the seed fixes the data, the initialization and the
batch order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..lr_range_test import SUGGESTION_RULES, LRRangeTestResult, lr_range_test
from .reruns import Rerun
from .training import Dataset, epoch_batches, mlp, teacher_classification, train

__all__ = ["OPTIMIZERS", "make_optimizer", "problem", "range_test", "Sweep", "lr_sweep",
           "RuleComparison", "compare_rules", "init_loss", "overfit_one_batch", "rules_rerun",
           "range_test_length_rerun", "RERUNS"]

#: The two optimizers of the experiment, as ``lr -> optimizer`` factories.
OPTIMIZERS = {
    "adam": lambda params, lr: torch.optim.Adam(params, lr=lr),
    "sgd": lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9),
}


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    """``torch.optim.Adam`` (defaults) or ``SGD`` with momentum 0.9, at rate ``lr``."""
    if name not in OPTIMIZERS:
        raise ValueError(f"Invalid optimizer: {name!r} (choose one of {sorted(OPTIMIZERS)})")
    return OPTIMIZERS[name](params, lr)


def problem(seed: int = 0) -> Dataset:
    """The chapter's small classification problem (20 inputs, 4 classes, 10% label noise)."""
    return teacher_classification(n_train=2048, n_val=1024, dim=20, classes=4, seed=seed)


def _model(data: Dataset, seed: int) -> nn.Module:
    return mlp(data.x_train.shape[1], data.classes, hidden=64, depth=2, seed=seed)


def range_test(optimizer: str, seed: int = 0, num_steps: int = 100, batch_size: int = 64,
               start_lr: float = 1e-5, end_lr: float = 10.0) -> LRRangeTestResult:
    """One LR range test (fastai's settings: exponential ramp, smoothing 0.98, stop at 4x the best)
    on a freshly initialized MLP; minibatches drawn as in :func:`training.train`."""
    data = problem(seed)
    model = _model(data, seed)
    order = epoch_batches(data.n_train, batch_size, torch.Generator().manual_seed(seed))
    batches = [(data.x_train[i], data.y_train[i]) for i in (next(order) for _ in range(num_steps))]
    opt = make_optimizer(optimizer, model.parameters(), start_lr)
    return lr_range_test(model, nn.functional.cross_entropy, batches, opt, start_lr=start_lr,
                         end_lr=end_lr, num_steps=num_steps)


@dataclass
class Sweep:
    """Validation loss after ``steps`` steps at each fixed rate, one row per seed.

    A run that diverged scores ``inf``.
    """

    optimizer: str
    lrs: np.ndarray
    seeds: tuple
    val_loss: np.ndarray              # (len(seeds), len(lrs))

    @property
    def best_lr_per_seed(self) -> np.ndarray:
        return self.lrs[np.argmin(self.val_loss, axis=1)]

    @property
    def best_lr(self) -> float:
        """The rate with the lowest validation loss averaged over seeds."""
        return float(self.lrs[int(np.argmin(self.val_loss.mean(axis=0)))])


def lr_sweep(optimizer: str, lrs: Sequence[float], seeds: Sequence[int] = (0, 1, 2),
             steps: int = 300, batch_size: int = 64) -> Sweep:
    """Train the MLP at every fixed rate in ``lrs`` for ``steps`` steps, for every seed."""
    lrs = np.asarray(lrs, dtype=float)
    if lrs.ndim != 1 or len(lrs) < 2 or not np.all(lrs > 0):
        raise ValueError(f"Invalid lrs: {lrs!r} (need >= 2 positive rates)")
    table = np.empty((len(seeds), len(lrs)))
    for i, seed in enumerate(seeds):
        data = problem(seed)
        for j, lr in enumerate(lrs):
            model = _model(data, seed)
            history = train(model, make_optimizer(optimizer, model.parameters(), float(lr)),
                            data, steps=steps, batch_size=batch_size, eval_every=steps,
                            seed=seed)
            table[i, j] = math.inf if history.diverged else history.final_val_loss
    return Sweep(optimizer, lrs, tuple(seeds), table)


@dataclass
class RuleComparison:
    """Each rule's suggestion per seed, and its ratio to the sweep's best rate of that seed."""

    rules: tuple
    suggestions: np.ndarray           # (seeds, rules)
    best_lr: np.ndarray               # (seeds,)
    regret: np.ndarray                # (seeds, rules): val loss at the sweep rate nearest
                                      # the suggestion, minus the seed's best

    @property
    def factor(self) -> np.ndarray:
        """suggestion / best rate: 1 is a hit, 0.1 is ten times too small."""
        return self.suggestions / self.best_lr[:, None]


def compare_rules(tests: Sequence[LRRangeTestResult], sweep: Sweep) -> RuleComparison:
    """Line up one range test per seed of ``sweep`` with that seed's best swept rate."""
    if len(tests) != len(sweep.seeds):
        raise ValueError(f"Invalid tests: {len(tests)} range tests for {len(sweep.seeds)} seeds")
    rules = tuple(SUGGESTION_RULES)
    suggestions = np.array([[np.nan if t.suggestions[r] is None else t.suggestions[r]
                             for r in rules] for t in tests])
    best = sweep.best_lr_per_seed
    # loss of the swept rate nearest (in log) to each suggestion
    nearest = np.abs(np.log(suggestions)[:, :, None] - np.log(sweep.lrs)[None, None, :]).argmin(-1)
    rows = np.arange(len(tests))[:, None]
    regret = sweep.val_loss[rows, nearest] - sweep.val_loss.min(axis=1)[:, None]
    return RuleComparison(rules, suggestions, best, regret)


# --- sanity checks before tuning (Karpathy 2019) -------------------------------------

def init_loss(seed: int = 0) -> tuple[float, float]:
    """(cross-entropy of the freshly initialized MLP on the training set, :math:`\\log C`)."""
    data = problem(seed)
    model = _model(data, seed)
    with torch.no_grad():
        loss = nn.functional.cross_entropy(model(data.x_train), data.y_train).item()
    return loss, math.log(data.classes)


def overfit_one_batch(seed: int = 0, batch_size: int = 16, steps: int = 200,
                      lr: float = 1e-2) -> np.ndarray:
    """Adam on one fixed batch: the loss per step, which must go to ~0 if the model and
    the loop are wired correctly (labels reach the loss, gradients reach the weights)."""
    data = problem(seed)
    model = _model(data, seed)
    x, y = data.x_train[:batch_size], data.y_train[:batch_size]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = np.empty(steps)
    for t in range(steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        losses[t] = loss.item()
        loss.backward()
        opt.step()
    return losses


# --- the figure: range-test curve with each rule's pick, next to the sweep ------------------

RULE_MARKERS = {"steep": ("v", "C3"), "minimum": ("s", "C2"), "valley": ("o", "C0")}


def draw_range_test(test: LRRangeTestResult, sweep: Sweep, seed_index: int = 0, *,
                    pyplot: bool = False):
    """Left: the smoothed range-test loss against the rate, each rule's suggestion marked.
    Right: the sweep's validation loss (every seed thin, the mean thick), the same
    suggestions as vertical lines, the sweep's best rate as a grey band."""
    from .. import plotting
    fig, (ax_test, ax_sweep) = plotting.subplots(1, 2, size="wide", pyplot=pyplot,
                                                 sharex=True)
    ax_test.semilogx(test.lrs, test.losses, color="0.8", linewidth=0.8, label="minibatch loss")
    ax_test.semilogx(test.lrs, test.smoothed, color="k", label="smoothed (β = 0.98)")
    finite = np.isfinite(sweep.val_loss)
    for rule, lr in test.suggestions.items():
        if lr is None:
            continue
        marker, color = RULE_MARKERS[rule]
        y = float(np.interp(np.log(lr), np.log(test.lrs), test.smoothed))
        ax_test.plot([lr], [y], marker, color=color, markersize=8, label=f"{rule}: {lr:.2g}")
        ax_sweep.axvline(lr, color=color, linestyle="--", linewidth=1)
    top = float(np.nanmax(np.where(finite, sweep.val_loss, np.nan))) if finite.any() else 2.0
    ax_test.set(xlabel="learning rate η (log scale)", ylabel="training loss",
                ylim=(0.0, max(2.0, 1.1 * float(test.smoothed[0]))),
                title=f"range test, {sweep.optimizer}, seed {sweep.seeds[seed_index]}")
    ax_test.legend(loc="lower left", fontsize=7)
    for row in sweep.val_loss:
        ax_sweep.semilogx(sweep.lrs, np.where(np.isfinite(row), row, np.nan), color="0.6",
                          linewidth=0.8)
    ax_sweep.semilogx(sweep.lrs, sweep.val_loss.mean(axis=0), "k.-", label="mean of seeds")
    best = sweep.best_lr_per_seed[seed_index]
    ax_sweep.axvspan(best / 1.5, best * 1.5, color="0.85", label=f"best of seed: {best:.2g}")
    ax_sweep.set(xlabel="fixed learning rate η (log scale)",
                 ylabel="validation loss after the budget", ylim=(0.0, min(top, 3.0)),
                 title=f"sweep, {len(sweep.seeds)} seeds")
    ax_sweep.legend(loc="upper left", fontsize=7)
    return fig


RULE_COLORS = {"steep": "#d62728", "minimum": "#2ca02c", "valley": "#1f77b4"}   # C3, C2, C0


def range_test_explorer(tests: dict, sweeps: dict):
    """:func:`draw_range_test` for every optimizer x seed, drawn in the page from the stored
    numbers (:func:`optbook.stored_figures.curves_figure`): left, the range test's minibatch
    and smoothed loss against the rate with each rule's suggestion; right, the sweep's
    validation loss (each seed thin, the mean thick), the suggestions as dashed lines and
    this seed's best swept rate as a grey band.  Hovering reads the stored values.

    ``tests[optimizer]`` is the list of range tests (one per seed of ``sweeps[optimizer]``).
    """
    from ..stored_figures import Axis, Curve, Mark, Panel, Series, curves_figure
    optimizers = list(sweeps)
    seeds = list(sweeps[optimizers[0]].seeds)
    seed_names = [f"seed {s}" for s in seeds]
    for name in optimizers:
        if len(tests[name]) != len(sweeps[name].seeds) or list(sweeps[name].seeds) != seeds:
            raise ValueError(f"Invalid tests/sweeps for {name!r}: one range test per sweep seed, "
                             "the same seeds for every optimizer")

    def data(optimizer, seed):
        test = tests[optimizer][seed_names.index(seed)]
        sweep = sweeps[optimizer]
        return [{"minibatch": Curve(test.losses, x=test.lrs), "smoothed": Curve(test.smoothed, x=test.lrs)},
                {"sweep": Curve(sweep.val_loss, x=sweep.lrs)}]

    def marks(optimizer, seed):
        i = seed_names.index(seed)
        test, sweep = tests[optimizer][i], sweeps[optimizer]
        left, right = [], []
        for rule, lr in test.suggestions.items():
            if lr is None:
                continue
            y = float(np.interp(np.log(lr), np.log(test.lrs), test.smoothed))
            left.append(Mark("point", x=lr, y=y, color=RULE_COLORS[rule],
                             label=f"{rule} suggests η = {lr:.2g}"))
            right.append(Mark("vline", x=lr, color=RULE_COLORS[rule]))
        best = float(sweep.best_lr_per_seed[i])
        right.append(Mark("band", x=best / 1.5, x1=best * 1.5, color="#d9d9d9",
                          label=f"best swept rate of {seed}: η = {best:.2g}"))
        return [left, right]

    every = [tests[o][k] for o in optimizers for k in range(len(seeds))]
    top_test = max(2.0, 1.1 * max(float(t.smoothed[0]) for t in every))
    finite = np.concatenate([sweeps[o].val_loss[np.isfinite(sweeps[o].val_loss)] for o in optimizers])
    top_sweep = min(float(finite.max()), 3.0) if finite.size else 2.0
    lo = min(float(np.min(t.lrs)) for t in every)
    hi = max(float(np.max(t.lrs)) for t in every)
    return curves_figure(
        data,
        axes=[Axis("optimizer", "optimizer", optimizers), Axis("seed", "seed", seed_names)],
        panels=[Panel("range test (one run, rate growing)", xlabel="learning rate η (log scale)",
                      ylabel="training loss", xscale="log", xlim=(lo, hi), ylim=(0.0, top_test),
                      readout="none", xsymbol="η"),
                Panel(f"sweep: validation loss, {len(seeds)} seeds", xlabel="fixed learning rate η (log scale)",
                      ylabel="validation loss", xscale="log", xlim=(lo, hi), ylim=(0.0, top_sweep),
                      readout="min", xsymbol="η")],
        series=[Series("minibatch", "minibatch loss", mean=False, reference=True),
                Series("smoothed", "smoothed (β = 0.98)", color="#000000", mean=False),
                Series("sweep", "sweep (mean of seeds thick)", color="#000000")],
        title="LR range test: each rule's suggestion against the sweep",
        headline="{optimizer}, {seed}: range test of " + f"{len(every[0].lrs)} steps" + " against the sweep",
        marks=marks,
        draw=lambda optimizer, seed: draw_range_test(tests[optimizer][seed_names.index(seed)],
                                                     sweeps[optimizer], seed_names.index(seed)))


# --- stored reruns (book/data/reruns/07-*.json, made by `make reruns`) ----------------------

def _rates(lr_range: Sequence[float], points: int) -> np.ndarray:
    return np.geomspace(float(lr_range[0]), float(lr_range[1]), int(points))


def _rule_summary(tests: Sequence[LRRangeTestResult], sweep: Sweep) -> dict:
    """What the chapter prints for one optimizer: the sweep's table, each seed's best rate,
    every rule's suggestion / best rate and loss excess per seed, the rule closest per seed."""
    comp = compare_rules(tests, sweep)
    gap = np.abs(np.log(comp.factor))
    closest = [comp.rules[int(j)] if np.isfinite(gap[i]).any() else None
               for i, j in enumerate(np.argmin(np.where(np.isfinite(gap), gap, np.inf), axis=1))]
    return {"lrs": sweep.lrs, "val_loss": sweep.val_loss, "best_lr": comp.best_lr,
            "best_mean_lr": sweep.best_lr,
            "factor": {rule: comp.factor[:, j] for j, rule in enumerate(comp.rules)},
            "excess": {rule: comp.regret[:, j] for j, rule in enumerate(comp.rules)},
            "closest_rule": closest}


def rules_rerun(seeds: Sequence[int], steps: int, test_steps: int, lr_ranges: dict,
                points: int) -> dict:
    """Rerun of the section's experiment on other seeds or another budget: for each optimizer
    of ``lr_ranges`` (name -> [lowest, highest] swept rate), one range test of ``test_steps``
    steps per seed against a ``steps``-step sweep over ``points`` rates; see
    :func:`_rule_summary` for what is returned."""
    out = {}
    for name, lr_range in lr_ranges.items():
        tests = [range_test(name, seed=s, num_steps=test_steps) for s in seeds]
        out[name] = _rule_summary(tests, lr_sweep(name, _rates(lr_range, points), seeds,
                                                  steps=steps))
    return out


def range_test_length_rerun(optimizer: str, seeds: Sequence[int], steps: int,
                      test_steps: Sequence[int], lr_range: Sequence[float], points: int) -> dict:
    """Range tests of several lengths against one ``steps``-step sweep (the same seeds):
    ``{str(test_steps): rule summary}``."""
    sweep = lr_sweep(optimizer, _rates(lr_range, points), seeds, steps=steps)
    return {str(n): _rule_summary([range_test(optimizer, seed=s, num_steps=n) for s in seeds],
                                  sweep)
            for n in test_steps}


_GRIDS = {"adam": [1e-4, 1.0], "sgd": [1e-3, 10.0]}   # the notebook's sweeps, 13 rates each

RERUNS = (
    Rerun(name="07-range-test-seeds-3-5", chapter="07-optimizer-and-lr",
          claim="The range test against a 200-step sweep on seeds 3-5, Adam and SGD + momentum: "
                "does the valley rule land closest to the best swept rate, as on seeds 0-2?",
          function="lr_finder:rules_rerun",
          params={"seeds": [3, 4, 5], "steps": 200, "test_steps": 100, "lr_ranges": _GRIDS,
                  "points": 13},
          minutes=0.9),
    Rerun(name="07-range-test-800-steps", chapter="07-optimizer-and-lr",
          claim="The sweep at an 800-step budget (seeds 0-2): where is the best fixed rate now, "
                "and how far do the rules of the same 100-step range test land from it?",
          function="lr_finder:rules_rerun",
          params={"seeds": [0, 1, 2], "steps": 800, "test_steps": 100, "lr_ranges": _GRIDS,
                  "points": 13},
          minutes=1.3),
    Rerun(name="07-range-test-length", chapter="07-optimizer-and-lr",
          claim="Range tests of 300 and 1,000 steps for Adam (seeds 0-2): where do the rules "
                "land against the best rate of the 200-step sweep?",
          function="lr_finder:range_test_length_rerun",
          params={"optimizer": "adam", "seeds": [0, 1, 2], "steps": 200,
                  "test_steps": [300, 1000], "lr_range": [1e-4, 1.0], "points": 13},
          minutes=0.6),
)
