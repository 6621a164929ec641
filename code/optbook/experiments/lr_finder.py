r"""Chapter 7.2 (学習率の選択, choosing the learning rate): the LR range test against a real sweep.

The range test (:func:`optbook.lr_range_test.lr_range_test`) proposes a
learning rate from one short run with a growing rate; a *sweep* trains the
same model at many rates for the real budget and measures which one is best.
This module runs both on the shared small problem of
:mod:`optbook.experiments.training` (teacher-labelled data) for two models
(:data:`MODELS`: the chapter's small MLP and a 3 x 256 LayerNorm MLP) and
scores each suggestion rule by its *regret*: the validation loss at the
suggested rate minus the best loss of the sweep (:func:`regret_at`).  The
sweep is scored four ways (:data:`TARGETS`): at a constant rate, at the end
and with early stopping, and with the rate as the peak of fastai's one-cycle
schedule (:func:`one_cycle_scheduler`), which is how fastai uses the
suggestion.  It also holds the two sanity checks of Karpathy's recipe: the
loss at initialization against :math:`\log C`, and over-fitting a single
batch.

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

__all__ = ["OPTIMIZERS", "MODELS", "make_optimizer", "problem", "range_test", "Sweep", "lr_sweep",
           "RuleComparison", "compare_rules", "TARGETS", "ONE_CYCLE", "one_cycle_scheduler",
           "scheduled_sweep", "regret_at", "regret_rerun", "rank_rules", "print_regret",
           "print_factors", "print_start_values", "start_value_factors",
           "print_start_value_factors", "paired_margin", "print_margins", "init_loss",
           "overfit_one_batch", "rules_rerun",
           "range_test_length_rerun", "RULE_COLORS", "RERUNS"]

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


#: The two models of the section: the small MLP of the whole chapter, and a wider, deeper
#: one with LayerNorm (whose validation loss depends much less on the rate).
MODELS = {
    "mlp": {"hidden": 64, "depth": 2, "layer_norm": False},
    "ln-mlp": {"hidden": 256, "depth": 3, "layer_norm": True},
}


def _model(data: Dataset, seed: int, model: str = "mlp") -> nn.Module:
    if model not in MODELS:
        raise ValueError(f"Invalid model: {model!r} (choose one of {sorted(MODELS)})")
    return mlp(data.x_train.shape[1], data.classes, seed=seed, **MODELS[model])


def range_test(optimizer: str, seed: int = 0, num_steps: int = 100, batch_size: int = 64,
               start_lr: float = 1e-7, end_lr: float = 10.0,
               model: str = "mlp") -> LRRangeTestResult:
    """One LR range test with fastai's settings (exponential ramp from ``start_lr`` = 1e-7 to
    10, smoothing 0.98, stop at 4x the best) on a freshly initialized ``model`` (see
    :data:`MODELS`); minibatches drawn as in :func:`training.train`."""
    data = problem(seed)
    model = _model(data, seed, model)
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


# --- regret: what a rule's suggestion costs, under the schedule it is used with -------------

#: The targets a suggestion is scored against: the validation loss at the end of a
#: constant-rate run, its best value along that run (early stopping), and the same two for
#: a one-cycle run whose *peak* is the rate, with the schedule of fastai's ``fit_one_cycle``
#: (only the schedule: the optimizers keep torch's defaults, whereas fastai's own Adam uses
#: beta_2 = 0.99, eps = 1e-5 and decoupled weight decay 0.01).
TARGETS = ("constant", "constant, early stop", "one-cycle", "one-cycle, early stop")

#: fastai's ``fit_one_cycle`` defaults (fastai/callback/schedule.py): the rate rises from
#: peak/25 to the peak over the first 25% of the steps and falls to peak/1e5, both by half
#: cosines; momentum (SGD's, Adam's beta_1) falls from 0.95 to 0.85 and back.
ONE_CYCLE = {"pct_start": 0.25, "div_factor": 25.0, "final_div": 1e5, "momentum": (0.95, 0.85)}


def one_cycle_scheduler(optimizer: torch.optim.Optimizer, peak: float, steps: int):
    """``torch.optim.lr_scheduler.OneCycleLR`` set up as fastai's ``fit_one_cycle``
    (:data:`ONE_CYCLE`); torch's ``final_div_factor`` is relative to peak/div_factor."""
    high, low = ONE_CYCLE["momentum"]
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=peak, total_steps=steps, pct_start=ONE_CYCLE["pct_start"],
        div_factor=ONE_CYCLE["div_factor"],
        final_div_factor=ONE_CYCLE["final_div"] / ONE_CYCLE["div_factor"],
        anneal_strategy="cos", cycle_momentum=True, base_momentum=low, max_momentum=high)


def scheduled_sweep(optimizer: str, lrs: Sequence[float], seeds: Sequence[int] = (0, 1, 2),
                    steps: int = 200, batch_size: int = 64, model: str = "mlp",
                    eval_every: int = 10) -> dict:
    """Train ``model`` at every rate of ``lrs`` (constant) and with every rate as the peak of
    a one-cycle schedule, for ``steps`` steps per seed; the validation loss is measured every
    ``eval_every`` steps.  Returns ``{target: (seeds, rates) array}`` for every target of
    :data:`TARGETS`; a run that diverged scores ``inf`` at the end, and its best value before
    the divergence with early stopping (``inf`` if it diverged before the first evaluation)."""
    lrs = np.asarray(lrs, dtype=float)
    if lrs.ndim != 1 or len(lrs) < 2 or not np.all(lrs > 0):
        raise ValueError(f"Invalid lrs: {lrs!r} (need >= 2 positive rates)")
    out = {target: np.empty((len(seeds), len(lrs))) for target in TARGETS}
    for i, seed in enumerate(seeds):
        data = problem(seed)
        for j, lr in enumerate(lrs):
            for schedule in ("constant", "one-cycle"):
                net = _model(data, seed, model)
                opt = make_optimizer(optimizer, net.parameters(), float(lr))
                sched = one_cycle_scheduler(opt, float(lr), steps) if schedule == "one-cycle" else None
                history = train(net, opt, data, steps=steps, batch_size=batch_size,
                                scheduler=sched, eval_every=eval_every, seed=seed)
                finite = history.val_loss[np.isfinite(history.val_loss)]
                out[schedule][i, j] = math.inf if history.diverged else history.final_val_loss
                out[f"{schedule}, early stop"][i, j] = float(finite.min()) if finite.size else math.inf
    return out


def regret_at(lrs: np.ndarray, val_loss: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Regret of using ``rates[s]`` on seed ``s``: the validation loss at that rate, read off
    the swept curve ``val_loss[s]`` by linear interpolation in :math:`\\log\\eta`, minus the
    lowest loss of the sweep.  ``nan`` outside the swept range (or for a missing rate);
    ``inf`` where a neighbouring swept run diverged."""
    lrs, val_loss = np.asarray(lrs, dtype=float), np.asarray(val_loss, dtype=float)
    rates = np.asarray(rates, dtype=float)
    if val_loss.ndim != 2 or val_loss.shape[1] != len(lrs) or rates.shape != (len(val_loss),):
        raise ValueError(f"Invalid shapes: lrs {lrs.shape}, val_loss {val_loss.shape}, "
                         f"rates {rates.shape} (need (n,), (seeds, n), (seeds,))")
    if np.any(np.diff(lrs) <= 0):
        raise ValueError("Invalid lrs: the swept rates must increase")
    out = np.full(len(rates), np.nan)
    logs = np.log(lrs)
    for s, rate in enumerate(rates):
        if not (np.isfinite(rate) and lrs[0] * (1 - 1e-9) <= rate <= lrs[-1] * (1 + 1e-9)):
            continue
        k = int(np.clip(np.searchsorted(logs, np.log(rate)), 1, len(lrs) - 1))
        a, b = val_loss[s, k - 1], val_loss[s, k]
        w = (np.log(rate) - logs[k - 1]) / (logs[k] - logs[k - 1])
        w = min(max(w, 0.0), 1.0)
        value = (a if w == 0 else b if w == 1 else
                 (1 - w) * a + w * b if np.isfinite(a) and np.isfinite(b) else math.inf)
        out[s] = value - np.min(val_loss[s])
    return out


def _test_key(start_lr: float, test_steps: int) -> str:
    return f"start {start_lr:.0e}, {test_steps} steps"


def regret_rerun(models: Sequence[str], optimizers: Sequence[str], seeds: Sequence[int],
                 steps: int, lr_ranges: dict, points_per_decade: int,
                 start_lrs: Sequence[float], test_steps: Sequence[int]) -> dict:
    """Every rule's regret, per model x optimizer x target (:data:`TARGETS`) x range test.

    For each model and optimizer: a :func:`scheduled_sweep` of ``steps`` steps over
    ``lr_ranges[optimizer]`` at ``points_per_decade`` rates per decade, and, for every start
    rate of ``start_lrs`` and length of ``test_steps``, one range test per seed.  Returns
    ``results[model][optimizer]`` = ``{"lrs", "val": {target: (seeds, rates)},
    "best_lr": {target: per seed}, "tests": {key: {"suggestions": {rule: per seed},
    "regret": {target: {rule: per seed}}}}}`` with ``key`` = ``"start 1e-07, 100 steps"``."""
    out = {}
    for model in models:
        out[model] = {}
        for name in optimizers:
            lo, hi = (float(v) for v in lr_ranges[name])
            grid = np.geomspace(lo, hi, int(round(np.log10(hi / lo) * points_per_decade)) + 1)
            val = scheduled_sweep(name, grid, seeds, steps=steps, model=model)
            record = {"lrs": grid, "val": val,
                      "best_lr": {t: grid[np.argmin(v, axis=1)] for t, v in val.items()},
                      "tests": {}}
            for start in start_lrs:
                for n in test_steps:
                    tests = [range_test(name, seed=s, num_steps=int(n), start_lr=float(start),
                                        model=model) for s in seeds]
                    sugg = {rule: np.array([np.nan if t.suggestions[rule] is None
                                            else t.suggestions[rule] for t in tests])
                            for rule in SUGGESTION_RULES}
                    record["tests"][_test_key(start, n)] = {
                        "suggestions": sugg,
                        "regret": {t: {rule: regret_at(grid, v, sugg[rule]) for rule in sugg}
                                   for t, v in val.items()}}
            out[model][name] = record
    return out


RULE_NAMES = {"valley": "valley", "minimum": "minimum/10", "steep": "steep"}


def _in_model_order(results: dict) -> dict:
    """``results`` (stored with sorted keys) in the order of :data:`MODELS`."""
    return {m: results[m] for m in sorted(results, key=lambda m: list(MODELS).index(m)
                                         if m in MODELS else len(MODELS))}


def rank_rules(record: dict, key: str, targets: Sequence[str] = TARGETS) -> dict:
    """For one model x optimizer of :func:`regret_rerun` and one range test ``key``:
    ``{target: {rule: {"mean", "min", "max", "wins", "rank", "below", "n"}}}`` -- the mean,
    smallest and largest regret over seeds, the seeds on which the rule has the lowest regret
    (ties within 0.001 count for each), its mean rank by regret (1 = best), and on how many
    seeds its suggestion lies below the target's best swept rate."""
    test = record["tests"][key]
    rules = list(test["suggestions"])
    out = {}
    for target in targets:
        regret = np.array([np.asarray(test["regret"][target][r], dtype=float) for r in rules])
        best_lr = np.asarray(record["best_lr"][target], dtype=float)
        filled = np.where(np.isnan(regret), np.inf, regret)
        lowest = filled.min(axis=0)
        # rank with ties (within 0.001) sharing the better place
        ranks = np.array([[1 + np.sum(filled[:, s] < filled[j, s] - 1e-3) for s in range(filled.shape[1])]
                          for j in range(len(rules))])
        out[target] = {r: {"mean": float(np.mean(filled[j])), "min": float(np.min(filled[j])),
                           "max": float(np.max(filled[j])),
                           "wins": int(np.sum(filled[j] <= lowest + 1e-3)),
                           "rank": float(np.mean(ranks[j])),
                           "below": int(np.sum(np.asarray(test["suggestions"][r]) < best_lr)),
                           "n": int(filled.shape[1])}
                       for j, r in enumerate(rules)}
    return out


def print_regret(results: dict, key: str, targets: Sequence[str] = TARGETS) -> None:
    """One line per model x optimizer x target: each rule's regret, mean (min-max) over the
    seeds, and the rule with the lowest mean regret; then every rule's mean rank over all
    lines and seeds."""
    ranks, lines = {}, {}
    results = _in_model_order(results)
    print(f"range test: {key}; regret = validation loss at the suggestion - best swept loss")
    print(f"{'model':<7}{'opt':<5}{'target':<22}" + "".join(f"{RULE_NAMES[r]:>22}" for r in RULE_NAMES)
          + "   lowest mean")
    for model, per_opt in results.items():
        for name, record in per_opt.items():
            table = rank_rules(record, key, targets)
            for target in targets:
                row = table[target]
                cells = "".join(f"{row[r]['mean']:>8.3f} ({row[r]['min']:.3f}–{row[r]['max']:.3f})"
                                for r in RULE_NAMES)
                winner = min(RULE_NAMES, key=lambda r: row[r]["mean"])
                lines[winner] = lines.get(winner, 0) + 1
                print(f"{model:<7}{name:<5}{target:<22}{cells}   {RULE_NAMES[winner]}")
                for r in RULE_NAMES:
                    ranks.setdefault(r, []).append(row[r]["rank"])
    print(f"lowest mean regret on {sum(lines.values())} lines: "
          + ", ".join(f"{RULE_NAMES[r]} {lines.get(r, 0)}" for r in RULE_NAMES))
    print("mean rank over all lines and seeds (1 = lowest regret): "
          + ", ".join(f"{RULE_NAMES[r]} {np.mean(v):.2f}" for r, v in ranks.items()))


def print_factors(results: dict, key: str, target: str) -> None:
    """Per model x optimizer: each rule's suggestion / the target's best swept rate, min-max
    over seeds, and on how many seeds it lies below the best rate (too small)."""
    print(f"range test: {key}; suggestion / best swept rate for the target '{target}'")
    for model, per_opt in _in_model_order(results).items():
        for name, record in per_opt.items():
            best = np.asarray(record["best_lr"][target], dtype=float)
            sugg = record["tests"][key]["suggestions"]
            cells = []
            for r in RULE_NAMES:
                f = np.asarray(sugg[r], dtype=float) / best
                cells.append(f"{RULE_NAMES[r]} {np.nanmin(f):.2g}–{np.nanmax(f):.2g}× "
                             f"({int(np.sum(f < 1))}/{len(f)} below)")
            print(f"  {model:<7}{name:<5}best {np.min(best):.2g}–{np.max(best):.2g}: " + "; ".join(cells))


def start_value_factors(results: dict, starts: Sequence[str] = ("1e-07", "1e-05"),
                        test_steps: int = 100) -> dict:
    """How far the range test's start rate alone moves each rule's suggestion.

    For every model x optimizer of :func:`regret_rerun` and every rule: the largest factor,
    over the seeds, between the suggestions of the two range tests that differ only in
    their start rate (``starts``; same seed, model, data and length), taken as
    ``max(a / b, b / a)`` so that a move either way counts.  Returns
    ``{model: {optimizer: {rule: (factor, seed)}}}``; a rule that gave no suggestion on a
    seed in either test skips that seed (``(nan, None)`` if none is left)."""
    if len(starts) != 2:
        raise ValueError(f"Invalid starts: {starts!r} (need exactly two start rates)")
    out = {}
    for model, per_opt in _in_model_order(results).items():
        out[model] = {}
        for name, record in per_opt.items():
            a_key, b_key = (f"start {s}, {test_steps} steps" for s in starts)
            for key in (a_key, b_key):
                if key not in record["tests"]:
                    raise ValueError(f"Invalid starts/test_steps: no range test {key!r} for "
                                     f"{model}/{name} (have {sorted(record['tests'])})")
            a, b = record["tests"][a_key]["suggestions"], record["tests"][b_key]["suggestions"]
            out[model][name] = {}
            for rule in a:
                ratio = (np.asarray(a[rule], dtype=float) / np.asarray(b[rule], dtype=float))
                ratio = np.maximum(ratio, 1.0 / ratio)
                if not np.any(np.isfinite(ratio)):
                    out[model][name][rule] = (math.nan, None)
                    continue
                j = int(np.nanargmax(np.where(np.isfinite(ratio), ratio, np.nan)))
                out[model][name][rule] = (float(ratio[j]), j)
    return out


def print_start_value_factors(stored: dict, starts: Sequence[str] = ("1e-07", "1e-05"),
                              test_steps: int = 100) -> None:
    """One line per model x optimizer of a stored :func:`regret_rerun` (the whole record, with
    its ``seeds`` and ``results``): each rule's largest factor between the suggestions from
    the two start rates, and the seed where it occurs (:func:`start_value_factors`); then
    the largest factor per model."""
    table = start_value_factors(stored["results"], starts, test_steps)
    seeds = list(stored["seeds"])
    print(f"largest factor between the suggestions from start {starts[0]} and from start "
          f"{starts[1]} ({test_steps}-step tests, same seed; max over seeds {seeds[0]}-{seeds[-1]})")
    for model, per_opt in table.items():
        largest = 0.0
        for name, per_rule in per_opt.items():
            cells = []
            for r in RULE_NAMES:
                factor, j = per_rule[r]
                cells.append(f"{RULE_NAMES[r]} {factor:.3g}× (seed {seeds[j]})" if j is not None
                             else f"{RULE_NAMES[r]} n/a")
                largest = max(largest, factor) if np.isfinite(factor) else largest
            print(f"  {model:<7}{name:<5}" + "; ".join(cells))
        print(f"  {model}: largest factor {largest:.2g}")


def paired_margin(record: dict, key: str, target: str) -> dict:
    """Is the rule with the lowest mean regret on one line (one model x optimizer of
    :func:`regret_rerun`, one range test ``key``, one ``target``) ahead by more than seed
    noise?  The per-seed difference ``runner-up - winner`` (winner and runner-up: the lowest
    and second-lowest mean regret) is paired by seed; returns ``{"winner", "runner_up",
    "diff"`` (mean difference), ``"se"`` (its standard error, sample std / sqrt(seeds)),
    ``"seeds_won"`` (seeds where the winner's regret is lower), ``"n"``, ``"decided"``
    (mean difference > 2 standard errors)}``.  A non-finite regret gives ``se`` = nan and
    ``decided`` False."""
    regret = record["tests"][key]["regret"][target]
    rules = list(RULE_NAMES)
    table = {r: np.asarray(regret[r], dtype=float) for r in rules}
    means = {r: (np.mean(np.where(np.isnan(v), np.inf, v))) for r, v in table.items()}
    winner, runner_up = sorted(rules, key=lambda r: means[r])[:2]
    diff = table[runner_up] - table[winner]
    n = len(diff)
    if n < 2:
        raise ValueError(f"Invalid record: {n} seed(s) on {key!r}/{target!r}; a standard "
                         "error needs at least 2")
    if np.all(np.isfinite(diff)):
        mean, se = float(np.mean(diff)), float(np.std(diff, ddof=1) / math.sqrt(n))
    else:
        mean, se = math.nan, math.nan
    return {"winner": winner, "runner_up": runner_up, "diff": mean, "se": se,
            "seeds_won": int(np.sum(diff > 0)), "n": n,
            "decided": bool(np.isfinite(se) and mean > 2 * se)}


def print_margins(results: dict, key: str, targets: Sequence[str] = TARGETS) -> None:
    """One line per model x optimizer x target (the lines of :func:`print_regret`): the winner
    (lowest mean regret), the runner-up, their paired difference in regret with its standard
    error over the seeds, on how many seeds the winner is ahead, and whether the difference
    exceeds two standard errors (:func:`paired_margin`); then how many lines are decided."""
    print(f"range test: {key}; winner vs runner-up, paired by seed: "
          "runner-up's regret - winner's, mean ± standard error")
    decided, total = 0, 0
    for model, per_opt in _in_model_order(results).items():
        for name, record in per_opt.items():
            for target in targets:
                m = paired_margin(record, key, target)
                total += 1
                decided += m["decided"]
                print(f"{model:<7}{name:<5}{target:<22}{RULE_NAMES[m['winner']]:>10} vs "
                      f"{RULE_NAMES[m['runner_up']]:<10} {m['diff']:6.3f} ± {m['se']:.3f}  "
                      f"ahead on {m['seeds_won']}/{m['n']} seeds  "
                      + ("beyond 2 SE" if m["decided"] else "within 2 SE"))
    print(f"lines decided beyond 2 standard errors: {decided} of {total}")


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

#: One colour per rule, the same in the still figure (:func:`draw_range_test`) and in the
#: explorer (:func:`range_test_explorer`); explicit hex codes, because the book's style
#: (:func:`optbook.figures.plotting.use_style`) replaces matplotlib's "C0", "C1", ... colour cycle.
RULE_COLORS = {"steep": "#d62728", "minimum": "#2ca02c", "valley": "#1f77b4"}
RULE_MARKERS = {rule: (marker, RULE_COLORS[rule])
                for rule, marker in (("steep", "v"), ("minimum", "s"), ("valley", "o"))}


def draw_range_test(test: LRRangeTestResult, sweep: Sweep, seed_index: int = 0, *,
                    pyplot: bool = False):
    """Left: the smoothed range-test loss against the rate, each rule's suggestion marked.
    Right: the sweep's validation loss (every seed thin, the mean thick), the same
    suggestions as vertical lines, the sweep's best rate as a grey band."""
    from ..figures import plotting
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


def range_test_explorer(tests: dict, sweeps: dict):
    """:func:`draw_range_test` for every optimizer x seed, drawn in the page from the stored
    numbers (:func:`optbook.figures.curves_figure`): left, the range test's minibatch
    and smoothed loss against the rate with each rule's suggestion; right, the sweep's
    validation loss (each seed thin, the mean thick), the suggestions as dashed lines and
    this seed's best swept rate as a grey band.  Hovering reads the stored values.

    ``tests[optimizer]`` is the list of range tests (one per seed of ``sweeps[optimizer]``).
    """
    from ..figures import Axis, Curve, Mark, Panel, Series, curves_figure
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

#: The regret reruns' sweeps: 4 rates per decade, wide enough to hold every suggestion and
#: the best one-cycle peaks of the LayerNorm MLP.
REGRET_GRIDS = {"adam": [1e-5, 10.0], "sgd": [1e-4, 10.0]}

RERUNS = (
    Rerun(name="07-range-regret-200-steps", chapter="07-optimizer-and-lr",
          claim="Which suggestion rule costs least validation loss (regret) at a 200-step budget, "
                "on two models, with Adam and SGD + momentum, at a constant rate (final and "
                "early-stopped) and as the peak of fastai's one-cycle schedule, for range tests "
                "starting at 1e-7 (fastai's default) and 1e-5, of 100 and 1,000 steps; seeds 0-5?",
          function="lr_finder:regret_rerun",
          params={"models": ["mlp", "ln-mlp"], "optimizers": ["adam", "sgd"],
                  "seeds": [0, 1, 2, 3, 4, 5], "steps": 200, "lr_ranges": REGRET_GRIDS,
                  "points_per_decade": 4, "start_lrs": [1e-7, 1e-5], "test_steps": [100, 1000]},
          minutes=14.0),
    Rerun(name="07-range-regret-800-steps", chapter="07-optimizer-and-lr",
          claim="The same comparison at an 800-step budget for the small MLP (seeds 0-5): "
                "where does the best rate move, and what does each rule's overshoot cost with "
                "and without early stopping?",
          function="lr_finder:regret_rerun",
          params={"models": ["mlp"], "optimizers": ["adam", "sgd"],
                  "seeds": [0, 1, 2, 3, 4, 5], "steps": 800, "lr_ranges": REGRET_GRIDS,
                  "points_per_decade": 4, "start_lrs": [1e-7, 1e-5], "test_steps": [100]},
          minutes=8.0),
)


def print_start_values(tests: dict, sweeps: dict, starts: Sequence[float]) -> None:
    """The page's comparison: for each optimizer of ``sweeps`` and each start rate, every
    rule's suggestion / the seed's best swept rate (a line with ``factor``), and its regret
    (:func:`regret_at`) on the constant-rate sweep (a line with ``regret``).
    ``tests[(optimizer, start)]`` holds one range test per seed."""
    for name, sweep in sweeps.items():
        best = sweep.best_lr_per_seed
        print(f"{name}: best swept rate per seed " + ", ".join(f"{lr:.2g}" for lr in best))
        for start in starts:
            print(f"  range test from {start:.0e}:")
            for rule in SUGGESTION_RULES:
                sugg = np.array([np.nan if t.suggestions[rule] is None else t.suggestions[rule]
                                 for t in tests[name, start]])
                regret = regret_at(sweep.lrs, sweep.val_loss, sugg)
                print(f"    {RULE_NAMES[rule]:>10} factor (suggestion / best) "
                      + ", ".join(f"{f:5.2g}" for f in sugg / best))
                print(f"    {RULE_NAMES[rule]:>10} regret " + ", ".join(f"{r:.3f}" for r in regret)
                      + f"   ({name}, from {start:.0e})")
