r"""Chapter 5.3 (Beyond Adam: preconditioning whole matrices), the network experiment.

AdamW against the three optimizers that treat a weight matrix as a matrix --
Muon (Jordan 2024), SOAP (Vyas et al. 2024) and Shampoo with Adam grafting
(Gupta et al. 2018; Shi et al. 2023) -- on a small network, each tuned on the
same budget, on several seeds, at two horizons, against steps and against
wall-clock time.

**The task.** The book's teacher--student classification with clean labels
and 32,768 training examples (``teacher_classification(n_train=32768,
n_val=2048, label_noise=0.0)``, the data of chapter 6's schedule comparison,
``schedules.clean_problem``), so that the validation loss keeps falling with
more steps and a longer horizon is a fair test. The network is
``mlp(20, 4, hidden=64, depth=3)``: weight matrices 64x20, 64x64, 64x64 and
the 4x64 output head (plus biases), 9,924 parameters (1,344 + 4,160 + 4,160 + 260). Seed ``s`` fixes the
data, the initial weights and the minibatch order, the same for every
optimizer (paired seeds).

**The optimizers** (:data:`OPTIMIZERS`; no weight decay anywhere: decay is
not the question, and with clean labels there is nothing to regularize):

* AdamW: ``optbook.torch.AdamW``, betas (0.9, 0.999), eps 1e-8;
* Muon: ``optbook.torch.Muon`` on ``muon_param_groups(model)`` (the three
  matrices before the head -- 64x20 input layer, 64x64, 64x64 -- to Muon; the output head and the
  biases to AdamW), momentum 0.95 with Nesterov, Moonlight's shape scale
  ``0.2 sqrt(max(m, n))``, which makes Muon's update as large as AdamW's, so
  that one learning rate serves both groups (Liu et al. 2025): one knob, the
  same budget as AdamW's; the AdamW groups use AdamW's betas and eps;
* SOAP: ``optbook.torch.SOAP`` with the reference's betas (0.95, 0.95) and
  eigenbasis refresh every 10 steps (biases: Adam);
* Shampoo: ``optbook.torch.Shampoo`` with Adam grafting, EMA statistics
  (beta2 0.999), roots recomputed every 10 steps, eps 1e-6 and heavy-ball
  momentum 0.9 on the grafted direction (Distributed Shampoo's recipe; the
  momentum makes its steps about ten times the grafted Adam step, so its
  learning-rate grid sits lower).

**The protocol** (:func:`tune`): every optimizer's learning rate is picked
from a geometric grid of at least five rates by the *mean* final validation
loss over the tuning seeds (a diverged seed counts as infinite); when the
best rate is at an end of the grid the grid is extended by one more rate on
that side (same ratio) until the best is inside (``extended`` records it).
The tuned rates are then run on held-out seeds (tuning on a seed and
reporting the same seed flatters everyone). The 10x horizon is tuned again
on the tuned rate and its neighbours (with the same extension rule).

**Wall-clock.** :func:`step_times_rerun` times the full training step
(forward, backward, optimizer step) and the optimizer step alone of each
optimizer on the same model, one thread, several interleaved repeats, and
reports median and spread together with the machine's load. AdamW is timed twice: as trained (``optbook.torch.AdamW``, whose
``step()`` runs torch's fused AdamW kernel) and, as the timing-only arm
``"adamw_unfused"`` (:data:`TIMING_ONLY`), through optbook's own in-place chain
(``fused_kernels = False``), since Muon, SOAP and Shampoo have no fused kernel (their
matrix links run optbook's functional chains). Loss against
time (:func:`curves`) puts each optimizer's evaluation steps on its median
step time: the tuning runs themselves share the machine and are not timed.
:func:`equal_time` compares each optimizer with AdamW at equal time, reading
the stored curves at the step the same seconds buy. The step-time ratios
belong to this tiny network on one CPU thread (the optimizer's matrix work
outweighs a batch of 64 through a width-64 MLP, and AdamW runs a fused
kernel while the others run optbook's functional chains). Newton-Schulz costs
about ``T m / B`` of a step's flops (T = 5 iterations, m the width, B the
tokens per batch), which is tiny for a language model (Jordan 2024 puts it
below 1 %) and large here (m = 64, B = 64): :func:`flops_per_step` counts about
16 MFLOP of Newton-Schulz per Muon step against about 3.8 MFLOP for the forward
and backward pass, so Muon's extra time here is mostly arithmetic, not per-call
overhead.

Print and verdict functions (:func:`print_comparison`,
:func:`print_step_times`, :func:`verdict`) take the stored records
(``reruns.load("05-matrix-...")``); :func:`curves` returns plain lists for a
stored-curves figure (this module imports no figure code).
"""
from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .. import torch as otorch
from .reruns import Rerun
from .training import Dataset, mlp, teacher_classification, train

__all__ = ["TASK", "OPTIMIZERS", "OptimizerSpec", "network_data", "network_model",
           "make_optimizer", "network_run", "tune", "best_index", "comparison_rerun",
           "seeds_rerun", "print_seeds", "step_times_rerun", "TIMING_ONLY",
           "flops_per_step", "summary", "print_comparison",
           "print_step_times", "verdict", "equal_time", "untuned_ratios", "curves", "PILOT",
           "RERUNS"]

TASK = dict(in_dim=20, out_dim=4, hidden=64, depth=3, n_train=32768, n_val=2048,
            batch_size=64)
"""The network (``mlp(20, 4, hidden=64, depth=3)``), the data and the batch size."""


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"Invalid {name}: {value!r} (must be an integer >= {low})")
    return int(value)


def _check_lr(lr) -> float:
    if isinstance(lr, bool) or not isinstance(lr, (int, float, np.floating)) \
            or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"Invalid learning rate: {lr!r} (must be a finite number > 0)")
    return float(lr)


def _check_seeds(seeds) -> tuple:
    seeds = tuple(seeds)
    if not seeds:
        raise ValueError("Invalid seeds: () (give at least one seed)")
    for s in seeds:
        _check_int("seed", s, 0)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"Invalid seeds: {seeds!r} (repeated seed)")
    return seeds


def _check_grid(lrs) -> tuple:
    lrs = tuple(float(_check_lr(lr)) for lr in lrs)
    if len(lrs) < 2 or any(b <= a for a, b in zip(lrs, lrs[1:])):
        raise ValueError(f"Invalid lrs: {lrs!r} (need at least two increasing learning rates)")
    return lrs


def network_data(seed: int = 0) -> Dataset:
    """The clean teacher task (32,768 training, 2,048 validation examples) of seed ``seed``."""
    return teacher_classification(n_train=TASK["n_train"], n_val=TASK["n_val"],
                                  label_noise=0.0, seed=seed)


def network_model(seed: int = 0) -> nn.Sequential:
    """``mlp(20, 4, hidden=64, depth=3)`` initialised from ``seed``."""
    return mlp(TASK["in_dim"], TASK["out_dim"], hidden=TASK["hidden"], depth=TASK["depth"],
               seed=seed)


@dataclass(frozen=True)
class OptimizerSpec:
    """``make(model, lr)``, the default grid and the fixed settings (for the table)."""

    label: str
    make: Callable
    lr_grid: tuple
    settings: str


def _muon(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    return otorch.Muon(otorch.muon_param_groups(model), lr=lr, momentum=0.95, nesterov=True,
                       shape_scale="moonlight", adamw_lr=lr, adamw_betas=(0.9, 0.999),
                       adamw_eps=1e-8, adamw_weight_decay=0.0)


OPTIMIZERS: dict[str, OptimizerSpec] = {
    "adamw": OptimizerSpec(
        "AdamW", lambda m, lr: otorch.AdamW(m.parameters(), lr=lr, betas=(0.9, 0.999),
                                           eps=1e-8, weight_decay=0.0),
        (3e-4, 1e-3, 3e-3, 1e-2, 3e-2), "β = (0.9, 0.999), λ = 0"),
    "muon": OptimizerSpec(
        "Muon", _muon, (3e-4, 1e-3, 3e-3, 1e-2, 3e-2),
        "hidden matrices: momentum 0.95 (Nesterov), scale 0.2·√max(m, n); head and biases: "
        "AdamW at the same η; λ = 0"),
    "soap": OptimizerSpec(
        "SOAP", lambda m, lr: otorch.SOAP(m.parameters(), lr=lr, betas=(0.95, 0.95),
                                         weight_decay=0.0, precondition_frequency=10),
        (3e-4, 1e-3, 3e-3, 1e-2, 3e-2), "β = (0.95, 0.95), eigenbasis every 10 steps, λ = 0"),
    "shampoo": OptimizerSpec(
        "Shampoo (Adam grafting)",
        lambda m, lr: otorch.Shampoo(m.parameters(), lr=lr, momentum=0.9, beta2=0.999,
                                     eps=1e-6, precondition_frequency=10, grafting="adam"),
        (1e-4, 3e-4, 1e-3, 3e-3, 1e-2),
        "EMA β₂ = 0.999, roots every 10 steps, ε = 1e-6, Adam grafting, momentum 0.9, λ = 0"),
}
"""The four optimizers of the comparison (module docstring), in table order."""


def _adamw_unfused(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    opt = OPTIMIZERS["adamw"].make(model, lr)
    opt.fused_kernels = False  # optbook's own in-place chain, not torch's fused kernel
    return opt


TIMING_ONLY: dict[str, OptimizerSpec] = {
    "adamw_unfused": OptimizerSpec(
        "AdamW (optbook, not fused)", _adamw_unfused, OPTIMIZERS["adamw"].lr_grid,
        "AdamW's settings; step() through optbook's in-place chain, no fused kernel"),
}
"""Timing-only arms of :func:`step_times_rerun` (not trained or tuned); each uses the
learning rate given for the optimizer its name starts with (``"adamw"``)."""


def flops_per_step(batch: int | None = None) -> dict:
    """Leading-term flop counts of one training step of the network: ``"forward_backward"``
    = 6 x parameters x batch, and ``"newton_schulz"`` = 5 steps of 4k²K + 2k³ summed over
    Muon's matrices (k = min, K = max of each shape), ``"parameters"`` the count."""
    batch = TASK["batch_size"] if batch is None else _check_int("batch", batch, 1)
    model = network_model(0)
    params = sum(p.numel() for p in model.parameters())
    ns = 0
    for p in model.parameters():
        if p.ndim == 2 and p.shape[0] != TASK["out_dim"]:
            k, K = min(p.shape), max(p.shape)
            ns += 5 * (4 * k * k * K + 2 * k ** 3)
    return {"parameters": params, "forward_backward": 6 * params * batch,
            "newton_schulz": ns}


def _check_name(name) -> str:
    if name not in OPTIMIZERS:
        raise ValueError(f"Invalid optimizer: {name!r} (choose from {', '.join(OPTIMIZERS)})")
    return name


def make_optimizer(name: str, model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """``OPTIMIZERS[name].make(model, lr)``, with a clear error for an unknown name or bad rate."""
    return OPTIMIZERS[_check_name(name)].make(model, _check_lr(lr))


@torch.no_grad()
def _loss(model: nn.Module, x, y) -> float:
    was = model.training
    model.eval()
    value = nn.functional.cross_entropy(model(x), y).item()
    model.train(was)
    return value


def network_run(name: str, lr: float, steps: int, seed: int = 0,
                eval_every: int | None = None) -> dict:
    """Train the network with optimizer ``name`` at rate ``lr`` for ``steps`` steps (batch 64).

    Returns ``{"eval_steps", "val_loss" (curve), "final_val_loss", "final_train_loss"
    (on the first 4,096 training examples), "diverged"}``; a diverged run's curve is
    padded with NaN and its final losses are inf.
    """
    _check_name(name)
    lr = _check_lr(lr)
    steps = _check_int("steps", steps, 1)
    seed = _check_int("seed", seed, 0)
    eval_every = max(1, steps // 30) if eval_every is None else _check_int("eval_every",
                                                                           eval_every, 1)
    data, model = network_data(seed), network_model(seed)
    optimizer = make_optimizer(name, model, lr)
    history = train(model, optimizer, data, steps=steps, batch_size=TASK["batch_size"],
                    eval_every=eval_every, seed=seed)
    grid = list(range(eval_every, steps + 1, eval_every))
    grid += [] if steps % eval_every == 0 else [steps]
    curve = [float(v) for v in history.val_loss] + [math.nan] * (len(grid) - len(history.val_loss))
    if history.diverged:
        final_val = final_train = math.inf
    else:
        final_val = history.final_val_loss
        final_train = _loss(model, data.x_train[:4096], data.y_train[:4096])
        if not math.isfinite(final_train):
            final_train = math.inf
    return {"eval_steps": grid, "val_loss": curve, "final_val_loss": final_val,
            "final_train_loss": final_train, "diverged": bool(history.diverged)}


def _as_float(v) -> float:
    """A stored number (JSON strings "inf"/"nan" included) as a float."""
    return float(v)


def best_index(val_loss) -> int:
    """Index of the learning rate with the lowest seed-mean loss (``val_loss[i][s]``);
    a non-finite seed makes its rate's mean inf. ValueError if every rate is non-finite."""
    a = np.array([[_as_float(v) for v in row] for row in val_loss], dtype=float)
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"Invalid val_loss: shape {a.shape} (expected rates x seeds)")
    means = np.where(np.isfinite(a), a, np.inf).mean(axis=1)
    if not np.isfinite(means).any():
        raise ValueError("Invalid val_loss: every learning rate diverged on some seed")
    return int(np.argmin(means))


def _next_rate(lrs: Sequence[float], up: bool) -> float:
    """The rate beyond the grid's end: the 1-3-10 sequence if the grid is on it (1e-3 ->
    3e-3 -> 1e-2), else the same ratio as the last (first) two rates."""
    edge = lrs[-1] if up else lrs[0]
    mantissa, exponent = f"{edge:.0e}".split("e")
    if float(f"{edge:.0e}") == edge and mantissa in ("1", "3"):
        e = int(exponent)
        if mantissa == "1":
            return float(f"3e{e}") if up else float(f"3e{e - 1}")
        return float(f"1e{e + 1}") if up else float(f"1e{e}")
    new = lrs[-1] ** 2 / lrs[-2] if up else lrs[0] ** 2 / lrs[1]
    return float(f"{new:.3g}")


def tune(name: str, lrs: Sequence[float], steps: int, seeds: Sequence[int],
         eval_every: int | None = None, max_extensions: int = 3, run=network_run) -> dict:
    """Run every rate of ``lrs`` on every seed; pick the best seed mean, extending the grid
    (one rate beyond the end, same ratio, at most ``max_extensions`` times) while the best
    is at an end.

    Returns ``{"lrs", "val_loss"[i][s], "train_loss"[i][s], "curves"[i][s][r],
    "eval_steps", "best_lr", "best_index", "extended" (rates added), "interior" (bool)}``.
    ``run(name, lr, steps, seed, eval_every)`` is :func:`network_run` (replaceable in tests).
    """
    _check_name(name)
    lrs = list(_check_grid(lrs))
    seeds = _check_seeds(seeds)
    steps = _check_int("steps", steps, 1)
    max_extensions = _check_int("max_extensions", max_extensions, 0)
    cells: dict[float, list[dict]] = {}

    def fill():
        for lr in lrs:
            if lr not in cells:
                cells[lr] = [run(name, lr, steps, s, eval_every) for s in seeds]

    fill()
    extended = []
    while True:
        i = best_index([[c["final_val_loss"] for c in cells[lr]] for lr in lrs])
        at_low, at_high = i == 0, i == len(lrs) - 1
        if not (at_low or at_high) or len(extended) >= max_extensions:
            break
        new = _next_rate(lrs, up=at_high)
        extended.append(new)
        lrs = [new] + lrs if at_low else lrs + [new]
        fill()
    i = best_index([[c["final_val_loss"] for c in cells[lr]] for lr in lrs])
    first = cells[lrs[0]][0]
    return {"lrs": lrs, "seeds": list(seeds), "steps": steps,
            "val_loss": [[c["final_val_loss"] for c in cells[lr]] for lr in lrs],
            "train_loss": [[c["final_train_loss"] for c in cells[lr]] for lr in lrs],
            "curves": [[c["val_loss"] for c in cells[lr]] for lr in lrs],
            "eval_steps": first["eval_steps"], "best_lr": lrs[i], "best_index": i,
            "extended": extended, "interior": 0 < i < len(lrs) - 1}


def _heldout(name: str, lr: float, steps: int, seeds, eval_every, run=network_run) -> dict:
    cells = [run(name, lr, steps, s, eval_every) for s in seeds]
    return {"seeds": list(seeds), "lr": lr,
            "val_loss": [c["final_val_loss"] for c in cells],
            "train_loss": [c["final_train_loss"] for c in cells],
            "curves": [c["val_loss"] for c in cells], "eval_steps": cells[0]["eval_steps"]}


# --- stored reruns -------------------------------------------------------------------------

def comparison_rerun(steps: int, seeds: Sequence[int], heldout_seeds: Sequence[int],
                     lr_grids: Mapping[str, Sequence[float]] | None = None,
                     eval_every: int | None = None) -> dict:
    """Tune every optimizer of :data:`OPTIMIZERS` (:func:`tune` on ``seeds``), then run the
    tuned rate on ``heldout_seeds``. ``lr_grids[name]`` replaces a default grid.

    ``results[name]`` = :func:`tune`'s dict plus ``"heldout"`` (``val_loss[s]``, ``curves``).
    """
    steps = _check_int("steps", steps, 1)
    heldout_seeds = _check_seeds(heldout_seeds)
    out = {"names": list(OPTIMIZERS), "labels": [s.label for s in OPTIMIZERS.values()],
           "settings": [s.settings for s in OPTIMIZERS.values()], "results": {}}
    for name, spec in OPTIMIZERS.items():
        grid = spec.lr_grid if lr_grids is None or name not in lr_grids else lr_grids[name]
        tuned = tune(name, grid, steps, seeds, eval_every)
        tuned["heldout"] = _heldout(name, tuned["best_lr"], steps, heldout_seeds, eval_every)
        out["results"][name] = tuned
    return out


def seeds_rerun(steps: int, seeds: Sequence[int], lrs: Mapping[str, float],
                eval_every: int | None = None) -> dict:
    """Every optimizer of :data:`OPTIMIZERS` at the given (already tuned) rate ``lrs[name]``
    on further seeds ``seeds``: ``results[name]`` = ``{"seeds", "lr", "val_loss", ...}``
    as the ``"heldout"`` entry of :func:`comparison_rerun`. Print with :func:`print_seeds`."""
    steps = _check_int("steps", steps, 1)
    seeds = _check_seeds(seeds)
    for name in OPTIMIZERS:
        if name not in lrs:
            raise ValueError(f"Invalid lrs: no learning rate for {name!r}")
    return {"steps": steps, "results": {n: _heldout(n, _check_lr(lrs[n]), steps, seeds,
                                                     eval_every) for n in OPTIMIZERS}}


def print_seeds(record: Mapping) -> None:
    """For a :func:`seeds_rerun` record: per optimizer, the rate, whether it beats AdamW on
    every seed, mean loss AdamW / it, and the per-seed ratios AdamW / it (2 decimals)."""
    inner = record.get("results", record) if isinstance(record, Mapping) else None
    if isinstance(inner, Mapping) and "results" in inner and "steps" in inner:
        steps, inner = inner["steps"], inner["results"]
    else:
        steps = "?"
    if not isinstance(inner, Mapping) or "adamw" not in inner:
        raise ValueError("Invalid record: no 'adamw' results (is it seeds_rerun's?)")
    base = [_as_float(v) for v in inner["adamw"]["val_loss"]]
    seeds = ", ".join(map(str, inner["adamw"]["seeds"]))
    for n in OPTIMIZERS:
        if n == "adamw" or n not in inner:
            continue
        other = [_as_float(v) for v in inner[n]["val_loss"]]
        word, ratio = _paired(other, base)
        each = " ".join(f"{b / o:.2f}" for b, o in zip(base, other))
        label = OPTIMIZERS[n].label
        print(f"{steps} steps, seeds {seeds}: {label} beats tuned AdamW on every seed: "
              f"{word}; mean loss AdamW/{label.split()[0]} = {_ratio_text(ratio)} "
              f"(per seed {each})")


def step_times_rerun(steps: int, seeds: Sequence[int], repeats: int,
                     lrs: Mapping[str, float], warmup: int = 20,
                     extra: Sequence[str] = ()) -> dict:
    """Seconds per training step (forward + backward + optimizer step) and per optimizer
    step alone, for every optimizer on the same network and data, ``repeats`` times.

    One thread (``torch.set_num_threads(1)``); the repeats are interleaved (every
    optimizer once per round) so that a change of machine load hits all alike; each
    repeat builds a fresh model, takes ``warmup`` untimed steps (Shampoo's and SOAP's
    first roots / eigenbases included there), then times ``steps`` steps. Records the
    load average before and after. Timings vary between runs and machines: quote the
    ratios, not the microseconds. ``extra``: names of :data:`TIMING_ONLY` arms to time
    too (at the rate of ``lrs["adamw"]``).
    """
    steps = _check_int("steps", steps, 1)
    repeats = _check_int("repeats", repeats, 1)
    warmup = _check_int("warmup", warmup, 0)
    seeds = _check_seeds(seeds)
    for name in OPTIMIZERS:
        if name not in lrs:
            raise ValueError(f"Invalid lrs: no learning rate for {name!r}")
    extra = tuple(extra)
    for name in extra:
        if name not in TIMING_ONLY:
            raise ValueError(f"Invalid extra: {name!r} (choose from {', '.join(TIMING_ONLY)})")
    arms = {**{n: (lambda m, n=n: make_optimizer(n, m, lrs[n])) for n in OPTIMIZERS},
            **{n: (lambda m, n=n: TIMING_ONLY[n].make(m, _check_lr(lrs["adamw"])))
               for n in extra}}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    total = {n: [] for n in arms}
    opt_only = {n: [] for n in arms}
    try:
        data = network_data(seeds[0])
        for r in range(repeats):
            for name, make in arms.items():
                model = network_model(seeds[0] + r)
                optimizer = make(model)
                gen = torch.Generator().manual_seed(seeds[0] + r)
                t_total = t_opt = 0.0
                for t in range(warmup + steps):
                    idx = torch.randint(0, data.n_train, (TASK["batch_size"],), generator=gen)
                    start = time.perf_counter()
                    optimizer.zero_grad()
                    loss = nn.functional.cross_entropy(model(data.x_train[idx]),
                                                       data.y_train[idx])
                    loss.backward()
                    mid = time.perf_counter()
                    optimizer.step()
                    end = time.perf_counter()
                    if t >= warmup:
                        t_total += end - start
                        t_opt += end - mid
                total[name].append(t_total / steps)
                opt_only[name].append(t_opt / steps)
    finally:
        torch.set_num_threads(threads)
    load_after = os.getloadavg()
    return {"names": list(arms),
            "labels": [(OPTIMIZERS | TIMING_ONLY)[n].label for n in arms],
            "steps": steps, "repeats": repeats, "threads": 1,
            "cpus": os.cpu_count(), "load_before": list(load_before),
            "load_after": list(load_after),
            "step_seconds": total, "optimizer_seconds": opt_only,
            "median_step_seconds": {n: statistics.median(v) for n, v in total.items()},
            "median_optimizer_seconds": {n: statistics.median(v) for n, v in opt_only.items()}}


# --- printing and verdicts -----------------------------------------------------------------

PILOT = {"adamw": {300: 0.12, 400: 0.048}, "muon": {300: 0.011, 400: 0.0025},
         "soap": {300: 0.018}}
"""Issue 23's pilot (one seed, untuned, task unstated): final losses by horizon."""


def _results(record: Mapping) -> Mapping:
    """The ``results`` of a stored record (``reruns.load``) or of a rerun function's dict."""
    if not isinstance(record, Mapping):
        raise TypeError(f"Invalid record: {type(record).__name__} (expected the dict of "
                        "reruns.load(...) or of a rerun function)")
    inner = record.get("results", record)
    if isinstance(inner, Mapping) and "results" in inner and "names" in inner:
        inner = inner["results"]
    if not isinstance(inner, Mapping) or not inner:
        raise ValueError("Invalid record: no per-optimizer results in it")
    for name, r in inner.items():
        if not isinstance(r, Mapping):
            raise ValueError(f"Invalid record: results[{name!r}] is not a dict")
        if name not in OPTIMIZERS:
            raise ValueError(f"Invalid record: unknown optimizer {name!r}")
        for key in ("lrs", "val_loss", "best_lr"):
            if key not in r:
                raise ValueError(f"Invalid record: results[{name!r}] has no {key!r}")
        if r["best_lr"] not in r["lrs"]:
            raise ValueError(f"Invalid record: results[{name!r}]: best_lr {r['best_lr']!r} "
                             f"is not in its grid {r['lrs']!r}")
    return {n: inner[n] for n in OPTIMIZERS if n in inner}  # table order, not JSON's


def _step_times(record: Mapping) -> Mapping:
    if not isinstance(record, Mapping):
        raise TypeError(f"Invalid record: {type(record).__name__} (expected a dict)")
    inner = record.get("results", record)
    if not isinstance(inner, Mapping) or "step_seconds" not in inner:
        raise ValueError("Invalid record: no 'step_seconds' (is it step_times_rerun's?)")
    return inner


def summary(losses) -> tuple[float, float, float]:
    """(mean, min, max) of the seeds' losses; inf if any seed diverged."""
    a = np.array([_as_float(v) for v in losses], dtype=float)
    if a.size == 0:
        raise ValueError("Invalid losses: empty")
    if not np.isfinite(a).all():
        return math.inf, math.inf, math.inf
    return float(a.mean()), float(a.min()), float(a.max())


def _fmt(x: float, digits: int = 2) -> str:
    return "diverged" if not math.isfinite(x) else f"{x:.{digits}g}"


def _spread(losses) -> str:
    m, lo, hi = summary(losses)
    if not math.isfinite(m):
        return "diverged"
    return f"{m:.3f} ({lo:.3f}–{hi:.3f})"


def _best_losses(r: Mapping) -> list[float]:
    i = r["lrs"].index(r["best_lr"])
    return [_as_float(v) for v in r["val_loss"][i]]


def print_comparison(record: Mapping) -> None:
    """One line per optimizer of a comparison or long-horizon record: the grid (extended
    rates marked +), the tuned rate (whether inside the grid), the validation loss at it
    as mean (min–max) over the tuning seeds and, if stored, over the held-out seeds."""
    res = _results(record)
    steps = next(iter(res.values())).get("steps", "?")
    print(f"validation loss after {steps} steps, mean (min–max) over seeds")
    print(f"{'optimizer':<26}{'grid η':<40}{'tuned η':>9}  {'tuning seeds':<22}held-out seeds")
    for name, r in res.items():
        ext = set(r.get("extended", []))
        grid = " ".join(f"{lr:g}" + ("+" if lr in ext else "") for lr in r["lrs"])
        tuned = f"{r['best_lr']:g}" + ("" if r.get("interior", True) else "!")
        held = _spread(r["heldout"]["val_loss"]) if "heldout" in r else "–"
        print(f"{OPTIMIZERS[name].label:<26}{grid:<40}{tuned:>9}  "
              f"{_spread(_best_losses(r)):<22}{held}")
    if any(not r.get("interior", True) for r in res.values()):
        print("! tuned η at an end of the grid even after extending it")
    if any(r.get("extended") for r in res.values()):
        print("+ rate added because the best was at an end of the grid")


def print_step_times(record: Mapping) -> None:
    """Median (min–max over repeats) milliseconds per training step and per optimizer step,
    each optimizer's step time relative to AdamW's, and the machine's load."""
    t = _step_times(record)
    names = [n for n in (OPTIMIZERS | TIMING_ONLY) if n in t["step_seconds"]]
    base = statistics.median(t["step_seconds"]["adamw"]) if "adamw" in names else None
    unfused = ("adamw_unfused" in names
               and statistics.median(t["step_seconds"]["adamw_unfused"]))
    print(f"ms per step, median (min–max) of {t.get('repeats', '?')} repeats of "
          f"{t.get('steps', '?')} steps, {t.get('threads', 1)} thread")
    print(f"{'optimizer':<28}{'whole step':<22}{'optimizer.step()':<22}{'× AdamW':>8}"
          + (f"{'× not fused':>13}" if unfused else ""))
    for n in names:
        whole = [1e3 * v for v in t["step_seconds"][n]]
        opt = [1e3 * v for v in t["optimizer_seconds"][n]]
        ratio = statistics.median(t["step_seconds"][n]) / base if base else math.nan
        med = statistics.median(t["step_seconds"][n])
        print(f"{(OPTIMIZERS | TIMING_ONLY)[n].label:<28}"
              f"{statistics.median(whole):.2f} ({min(whole):.2f}–{max(whole):.2f}){'':<4}"
              f"{statistics.median(opt):.2f} ({min(opt):.2f}–{max(opt):.2f}){'':<4}"
              f"{ratio:>7.1f}×" + (f"{med / unfused:>12.1f}×" if unfused else ""))
    if "load_before" in t:
        print(f"load average (1 min) {t['load_before'][0]:.1f} before, "
              f"{t['load_after'][0]:.1f} after, on {t.get('cpus', '?')} CPUs")


def _ratio_text(r: float) -> str:
    if not math.isfinite(r):
        return "n/a (a seed diverged)"
    return f"{r:.2f}"


def _paired(other, base) -> tuple[str, float]:
    """("yes" / "no" / "no (AdamW lower on every seed)", mean(base) / mean(other))."""
    if len(other) != len(base):
        raise ValueError(f"Invalid record: {len(other)} seeds against AdamW's {len(base)}")
    every = all(o < b for o, b in zip(other, base))
    never = all(o > b for o, b in zip(other, base))
    mo, mb = summary(other)[0], summary(base)[0]
    ratio = mb / mo if math.isfinite(mo * mb) else math.nan
    return ("yes" if every else ("no (AdamW lower on every seed)" if never else "no")), ratio


def _loss_at(result: Mapping, step: float) -> list[float]:
    """Per tuning seed, the tuned-rate validation curve linearly interpolated at ``step``
    (non-finite where a seed diverged)."""
    xs = np.asarray(result["eval_steps"], dtype=float)
    if not xs[0] <= step <= xs[-1]:
        raise ValueError(f"Invalid step: {step:g} outside the stored curve ({xs[0]:g}-{xs[-1]:g})")
    curves_ = result["curves"][result["lrs"].index(result["best_lr"])]
    out = []
    for seed in curves_:
        ys = np.array([_as_float(v) for v in seed], dtype=float)
        v = float(np.interp(step, xs, ys)) if np.isfinite(ys).all() else math.inf
        out.append(v)
    return out


def _median_steps(times: Mapping) -> dict:
    t = _step_times(times)
    med = {n: statistics.median(t["step_seconds"][n]) for n in OPTIMIZERS | TIMING_ONLY
           if n in t["step_seconds"]}
    if "adamw" not in med:
        raise ValueError("Invalid times: no 'adamw' step times to compare with")
    return med


def equal_time(short: Mapping, long: Mapping, times: Mapping,
               baseline: str = "adamw") -> list[dict]:
    """Each of Muon, SOAP and Shampoo against AdamW at equal wall-clock time, using the
    median step times of ``times`` (ratio r = its step time / AdamW's):

    * budget "its short run": it after the short horizon's ``steps`` (its tuned rate) against
      AdamW after ``r * steps`` steps, read (linearly interpolated) from AdamW's long-horizon
      curve at its long-horizon tuned rate;
    * budget "AdamW's long run": AdamW after the long horizon's ``steps`` against it after
      ``steps / r`` steps, read from its own long-horizon curve.

    A rate tuned for the long horizon is not tuned for the intermediate step it is read at,
    which handicaps AdamW in the first budget and the other in the second. Tuning seeds.
    Returns one dict per (optimizer, budget): ``name, budget, ratio, steps_other,
    steps_adamw, other[s], adamw[s], every`` (beats on every seed), ``mean_ratio``
    (AdamW / other); a comparison the stored curves do not cover is left out.
    ``baseline``: whose step time stands for AdamW's, ``"adamw"`` (fused, as trained)
    or ``"adamw_unfused"`` (:data:`TIMING_ONLY`); the losses are AdamW's either way.
    """
    if baseline not in ("adamw", *TIMING_ONLY):
        raise ValueError(f"Invalid baseline: {baseline!r} (choose from adamw, "
                         f"{', '.join(TIMING_ONLY)})")
    s_res, l_res, med = _results(short), _results(long), _median_steps(times)
    if baseline not in med:
        raise ValueError(f"Invalid times: no {baseline!r} step times stored")
    s_steps, l_steps = s_res["adamw"]["steps"], l_res["adamw"]["steps"]
    rows = []
    for n in OPTIMIZERS:
        if n == "adamw" or n not in med or n not in s_res or n not in l_res:
            continue
        r = med[n] / med[baseline]
        cases = [("its short run", s_steps, r * s_steps, _best_losses(s_res[n]),
                  lambda k: _loss_at(l_res["adamw"], k), True),
                 ("AdamW's long run", l_steps / r, l_steps, None, None, False)]
        for budget, k_other, k_adamw, other, adamw_at, short_first in cases:
            try:
                if short_first:
                    adamw = adamw_at(k_adamw)
                else:
                    adamw, other = _best_losses(l_res["adamw"]), _loss_at(l_res[n], k_other)
            except ValueError:
                continue
            word, ratio = _paired(other, adamw)
            rows.append({"name": n, "budget": budget, "baseline": baseline, "ratio": r, "steps_other": k_other,
                         "steps_adamw": k_adamw, "other": other, "adamw": adamw,
                         "every": word, "mean_ratio": ratio})
    return rows


def untuned_ratios(record: Mapping, other: str = "muon") -> tuple[float, float]:
    """(smallest, largest) over AdamW's grid of mean AdamW loss at that rate / mean loss of
    ``other`` at its tuned rate (tuning seeds): how far an untuned AdamW can fall behind."""
    res = _results(record)
    for n in ("adamw", _check_name(other)):
        if n not in res:
            raise ValueError(f"Invalid record: no results for {n!r}")
    base = summary(_best_losses(res[other]))[0]
    ratios = [summary(row)[0] / base for row in res["adamw"]["val_loss"]]
    return min(ratios), max(ratios)


def verdict(short: Mapping, long: Mapping | None = None, times: Mapping | None = None) -> None:
    """Claim-first lines: for each of Muon, SOAP and Shampoo against AdamW, at each stored
    horizon and seed set, whether it has the lower validation loss on every seed (paired:
    same data, initialization and batches) and the ratio of mean losses AdamW / it (> 1:
    it wins), to 2 decimals; issue 23's pilot ratios next to the short horizon's; with
    ``times``, each step's cost relative to AdamW's and, with ``long`` too, the
    comparisons at equal wall-clock time of :func:`equal_time`."""
    records = [_results(short)] + ([] if long is None else [_results(long)])
    for res in records:
        if "adamw" not in res:
            raise ValueError("Invalid record: verdicts compare against 'adamw', which is missing")
        steps = res["adamw"].get("steps", "?")
        sets = [("tuning seeds", False)]
        if all("heldout" in r for r in res.values()):
            sets.append(("held-out seeds", True))
        for where, heldout in sets:
            def losses(n):
                return ([_as_float(v) for v in res[n]["heldout"]["val_loss"]] if heldout
                        else _best_losses(res[n]))
            for n in res:
                if n == "adamw":
                    continue
                word, ratio = _paired(losses(n), losses("adamw"))
                print(f"{steps} steps, {where}: {OPTIMIZERS[n].label} beats tuned AdamW on "
                      f"every seed: {word}; mean loss AdamW/{OPTIMIZERS[n].label.split()[0]} = "
                      f"{_ratio_text(ratio)}")
        pilot = [f"AdamW/{OPTIMIZERS[n].label} = {PILOT['adamw'][steps] / PILOT[n][steps]:.2g}"
                 for n in ("muon", "soap") if steps in PILOT[n] and steps in PILOT["adamw"]]
        if pilot:
            print(f"issue 23's pilot at {steps} steps (one seed, untuned, task unstated): "
                  + ", ".join(pilot) + f"; its AdamW loss {PILOT['adamw'][steps]:.2g}, "
                  f"Muon {PILOT['muon'][steps]:.2g}")
            lo, hi = untuned_ratios(res)
            runs = [row for r in res.values()
                    for row in [*r["val_loss"], r.get("heldout", {}).get("val_loss", [])]]
            lowest = min(v for row in runs for v in map(_as_float, row) if math.isfinite(v))
            print(f"here at {steps} steps: lowest validation loss of any run {lowest:.2g}; "
                  f"AdamW at each rate of its grid / tuned Muon = {lo:.2f}–{hi:.2f} "
                  "(means over the tuning seeds)")
    if times is not None:
        med = _median_steps(times)
        repeats = _step_times(times).get("repeats", "?")
        bases = ["adamw"] + [b for b in TIMING_ONLY if b in med]
        for b in bases:
            which = "an AdamW step" + ("" if b == "adamw" else " not fused")
            for n in med:
                if n in OPTIMIZERS and n != "adamw":
                    print(f"one {OPTIMIZERS[n].label} step costs {med[n] / med[b]:.1f}× "
                          f"{which} (median of {repeats} repeats)")
        if long is not None:
            for row in (r for b in bases for r in equal_time(short, long, times, b)):
                label = OPTIMIZERS[row["name"]].label
                timed = "" if row["baseline"] == "adamw" else ", AdamW not fused"
                print(f"equal time ({row['budget']}{timed}: {label.split()[0]} "
                      f"{row['steps_other']:.0f} "
                      f"steps = AdamW {row['steps_adamw']:.0f} steps): {label} beats AdamW on "
                      f"every seed: {row['every']}; mean loss AdamW/{label.split()[0]} = "
                      f"{_ratio_text(row['mean_ratio'])}")


def curves(record: Mapping, times: Mapping | None = None, which: str = "tuned") -> dict:
    """The stored validation-loss curves at each optimizer's tuned rate, as plain data.

    ``which``: ``"tuned"`` (tuning seeds) or ``"heldout"``. Returns ``{"steps": [...],
    "series": {label: [[loss per eval step] per seed]}, "lr": {label: η},
    "seconds": {label: [elapsed seconds per eval step]}}`` (``seconds`` only with
    ``times``: the eval steps times the median whole-step time). Non-finite losses are
    NaN (a stored-curves figure draws them as divergence).
    """
    if which not in ("tuned", "heldout"):
        raise ValueError(f"Invalid which: {which!r} (expected 'tuned' or 'heldout')")
    res = _results(record)
    out = {"steps": None, "series": {}, "lr": {}, "seconds": {}}
    for n, r in res.items():
        label = OPTIMIZERS[n].label
        if which == "heldout":
            if "heldout" not in r:
                raise ValueError("Invalid record: no held-out runs stored (long-horizon record?)")
            src, steps = r["heldout"]["curves"], r["heldout"]["eval_steps"]
        else:
            src, steps = r["curves"][r["lrs"].index(r["best_lr"])], r["eval_steps"]
        out["steps"] = [int(s) for s in steps]
        out["series"][label] = [[_as_float(v) if math.isfinite(_as_float(v)) else math.nan
                                 for v in seed] for seed in src]
        out["lr"][label] = r["best_lr"]
        if times is not None:
            med = statistics.median(_step_times(times)["step_seconds"][n])
            out["seconds"][label] = [s * med for s in out["steps"]]
    if times is None:
        del out["seconds"]
    return out


RERUNS = (
    Rerun(name="05-matrix-network-300-steps", chapter="05-matrix",
          claim="AdamW, Muon, SOAP and Shampoo (Adam grafting) on a 3-hidden-layer MLP, 300 "
                "steps: each η tuned on a grid of ≥ 5 rates by the mean over seeds 0-2 (grid "
                "extended while the best is at an end), then checked on held-out seeds 3-5",
          function="matrix_network:comparison_rerun",
          params={"steps": 300, "seeds": (0, 1, 2), "heldout_seeds": (3, 4, 5),
                  "lr_grids": None, "eval_every": 10},
          minutes=1.0),
    Rerun(name="05-matrix-network-3000-steps", chapter="05-matrix",
          claim="The same four optimizers at 3,000 steps (10x), each re-tuned on its 300-step "
                "rate and the grid rates either side (grid extended while the best is at an "
                "end) by the mean over seeds 0-2, then checked on held-out seeds 3-5: does "
                "the 300-step ranking last?",
          function="matrix_network:comparison_rerun",
          params={"steps": 3000, "seeds": (0, 1, 2), "heldout_seeds": (3, 4, 5),
                  "lr_grids": {"adamw": (0.003, 0.01, 0.03), "muon": (0.001, 0.003, 0.01),
                               "soap": (0.001, 0.003, 0.01),
                               "shampoo": (3e-05, 0.0001, 0.0003)},
                  "eval_every": 100},
          minutes=5.0),
    Rerun(name="05-matrix-network-300-steps-seeds-9-11", chapter="05-matrix",
          claim="The four optimizers at their 300-step tuned rates on three more seeds "
                "(9-11): does the 300-step edge over AdamW hold on every seed?",
          function="matrix_network:seeds_rerun",
          params={"steps": 300, "seeds": (9, 10, 11),
                  "lrs": {"adamw": 0.01, "muon": 0.003, "soap": 0.003, "shampoo": 0.0001},
                  "eval_every": 10},
          minutes=0.6),
    Rerun(name="05-matrix-step-times", chapter="05-matrix",
          claim="Seconds per training step of AdamW (fused kernel, and optbook's unfused "
                "chain), Muon, SOAP and Shampoo on the same MLP, one thread, 7 interleaved "
                "repeats of 200 steps at the 300-step tuned rates",
          function="matrix_network:step_times_rerun",
          params={"steps": 200, "seeds": (0,), "repeats": 7,
                  "lrs": {"adamw": 0.01, "muon": 0.003, "soap": 0.003, "shampoo": 0.0001},
                  "warmup": 20, "extra": ("adamw_unfused",)},
          minutes=0.5),   # never the cheapest: tests/test_reruns.py reruns that one exactly
)
"""The section's stored reruns (``make reruns RERUNS=<name>``); 1, 5 and 0.3 minutes here
on a shared 2-core machine."""
