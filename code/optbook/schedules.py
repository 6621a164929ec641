"""Learning-rate schedules (article section 6): callables ``step -> eta_t``.

Every schedule here is a plain function of the step ``t``, counted from 0: the
first optimizer step uses ``schedule(0)``, as ``torch.optim.lr_scheduler.LambdaLR``
does. So ``t`` is the number of steps already taken, and the article's formulas
are used with that ``t`` unchanged (the warmup ``eta_max * t / T_warmup``
therefore gives 0 on the very first step).

A schedule can be passed wherever optbook accepts a learning rate
(``scale_by_learning_rate(cosine_annealing(0.1, 1000))``), turned into a torch
scheduler with :func:`as_lambda_lr`, or evaluated on a NumPy integer array of
steps for a plot (``schedule(np.arange(1000))`` returns a float array; an int
returns a Python float). A negative or non-integer step raises ``ValueError``.

======================  ==========================================================
schedule                eta_t (article notation)
======================  ==========================================================
constant                eta
linear_warmup           eta_max * t / T_warmup, then eta_max
step_decay              eta_0 * gamma ** floor(t / T)                (StepLR)
cosine_annealing        eta_min + (eta_max - eta_min)(1 + cos(pi t / T)) / 2
linear_decay            eta_max * (1 - t / T)
inverse_sqrt            eta_max * min(t / T_w, sqrt(T_w / t))  ~  eta_0 / sqrt(t)
warmup_cosine           linear warmup, then cosine to eta_min = 0.1 eta_max
warmup_stable_decay     warmup, eta_max, cooldown: linear, 1-sqrt, cosine (WSD)
one_cycle               1cycle: ramp up, then anneal far below the start (OneCycleLR)
cosine_restarts         SGDR: cosine periods T_0, T_0 T_mult, ...    (CosineAnnealingWarmRestarts)
join_schedules          one schedule after another (as optax.join_schedules)
======================  ==========================================================

Schedules that end (cosine, linear decay, warmup + cosine) hold their final
value after ``total_steps``; torch's ``CosineAnnealingLR`` instead keeps
following the cosine back up, which is never what a training run wants.
"""
from __future__ import annotations

import math
import operator
from bisect import bisect_right
from typing import Callable, Sequence, Union

import numpy as np

from .base import Schedule, check_number

__all__ = ["constant", "linear_warmup", "step_decay", "cosine_annealing",
           "linear_decay", "inverse_sqrt", "warmup_cosine", "warmup_stable_decay",
           "one_cycle", "cosine_restarts", "join_schedules",
           "as_lambda_lr"]

Steps = Union[int, np.ndarray]


# --- argument checks -----------------------------------------------------------

def _rate(name: str, value) -> float:
    """A learning rate: a finite number >= 0 (``Invalid <name>: <value>`` otherwise)."""
    if isinstance(value, bool):
        raise ValueError(f"Invalid {name}: {value!r} (not a number)")
    check_number(name, value)
    return float(value)


def _floor_rate(name: str, value, peak: float) -> float:
    """A final learning rate: finite, >= 0 and not above ``peak``."""
    value = _rate(name, value)
    if value > peak:
        raise ValueError(f"Invalid {name}: {value} (must not exceed peak={peak})")
    return value


def _count(name: str, value, *, minimum: int) -> int:
    """A number of steps: an integer >= ``minimum``."""
    if isinstance(value, bool):
        raise ValueError(f"Invalid {name}: {value!r} (must be an integer)")
    try:
        n = operator.index(value)
    except TypeError:
        raise ValueError(f"Invalid {name}: {value!r} (must be an integer)") from None
    if n < minimum:
        raise ValueError(f"Invalid {name}: {n} (must be >= {minimum})")
    return n


def _steps(step) -> tuple:
    """Validate ``step``: returns (int or int64 array, is_scalar)."""
    if isinstance(step, np.ndarray):
        if step.dtype.kind not in "iu":
            raise ValueError(f"Invalid step: array of dtype {step.dtype} "
                             "(steps are integers counted from 0)")
        if step.size and step.min() < 0:
            raise ValueError(f"Invalid step: {step.min()} (steps count from 0)")
        return step.astype(np.int64), False
    if isinstance(step, bool):
        raise ValueError(f"Invalid step: {step!r} (must be an integer)")
    try:
        t = operator.index(step)
    except TypeError:
        raise ValueError(f"Invalid step: {step!r} (must be an integer counted "
                         "from 0, or a NumPy integer array)") from None
    if t < 0:
        raise ValueError(f"Invalid step: {t} (steps count from 0)")
    return t, True


def _schedule(formula: Callable[[np.ndarray], np.ndarray], name: str) -> Schedule:
    """Wrap ``formula`` (float64 steps -> rates) into a validated ``step -> eta_t``."""

    def schedule(step: Steps):
        t, scalar = _steps(step)
        eta = formula(np.asarray(t, dtype=np.float64))
        if scalar:
            return float(eta)  # a Python float: safe to multiply torch tensors by
        return np.broadcast_to(eta, np.shape(t)).astype(np.float64)

    schedule.__name__ = schedule.__qualname__ = name
    return schedule


# --- the schedules ---------------------------------------------------------------

def constant(value: float) -> Schedule:
    """eta_t = eta for every t."""
    value = _rate("value", value)
    return _schedule(lambda t: np.full_like(t, value), "constant")


def linear_warmup(peak: float, warmup_steps: int) -> Schedule:
    """Linear warmup (article 6.2), then constant::

        eta_t = eta_max * t / T_warmup   for t <= T_warmup,   eta_max afterwards.

    ``eta_0 = 0``: the first step does not move the parameters, exactly as the
    article's formula says. ``warmup_steps=0`` means no warmup (constant peak).
    torch's ``LinearLR`` cannot start at 0 (``start_factor > 0``); its usual
    warmup ``LinearLR(start_factor=1/T_warmup, total_iters=T_warmup - 1)`` is
    this schedule shifted by one step.

    Goyal et al. (2017), "Accurate, Large Minibatch SGD: Training ImageNet in
    1 Hour" (gradual warmup).
    """
    peak = _rate("peak", peak)
    warmup_steps = _count("warmup_steps", warmup_steps, minimum=0)
    if warmup_steps == 0:
        return constant(peak)
    return _schedule(lambda t: peak * (np.minimum(t, warmup_steps) / warmup_steps),
                     "linear_warmup")


def step_decay(init: float, gamma: float, step_size: int) -> Schedule:
    """Step decay (article 6.3): multiply by gamma every T steps::

        eta_t = eta_0 * gamma ** floor(t / T)

    with ``T = step_size`` and ``0 < gamma <= 1``. Equal to
    ``torch.optim.lr_scheduler.StepLR(optimizer, step_size, gamma)`` with lr eta_0.
    """
    init = _rate("init", init)
    check_number("gamma", gamma, low=0.0, low_inclusive=False, high=1.0,
                 high_inclusive=True)
    gamma = float(gamma)
    step_size = _count("step_size", step_size, minimum=1)
    return _schedule(lambda t: init * gamma ** np.floor_divide(t, step_size), "step_decay")


def cosine_annealing(peak: float, total_steps: int, eta_min: float = 0.0) -> Schedule:
    """Cosine annealing (article 6.3), held at eta_min after T::

        eta_t = eta_min + 1/2 (eta_max - eta_min) (1 + cos(pi t / T))   for t <= T,
        eta_t = eta_min                                                 for t > T,

    with ``T = total_steps``. For t <= T this is the closed form of
    ``torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=T, eta_min)``
    (torch computes it recursively and, past T, climbs back up the cosine).

    Loshchilov & Hutter (2017), "SGDR: Stochastic Gradient Descent with Warm
    Restarts", ICLR (one period, no restart).
    """
    peak = _rate("peak", peak)
    total_steps = _count("total_steps", total_steps, minimum=1)
    eta_min = _floor_rate("eta_min", eta_min, peak)

    def eta(t):
        t = np.minimum(t, total_steps)
        return eta_min + 0.5 * (peak - eta_min) * (1.0 + np.cos(np.pi * t / total_steps))

    return _schedule(eta, "cosine_annealing")


def linear_decay(peak: float, total_steps: int, end: float = 0.0) -> Schedule:
    """Linear decay (article 6.3) from eta_max to ``end``, held after T::

        eta_t = end + (eta_max - end) (1 - t / T)   for t <= T,   end for t > T,

    which is the article's ``eta_max (1 - t / T)`` when ``end = 0``. Equal to
    torch's ``LinearLR(start_factor=1, end_factor=end/eta_max, total_iters=T)``
    and, for ``end = 0``, ``PolynomialLR(total_iters=T, power=1)``.
    """
    peak = _rate("peak", peak)
    total_steps = _count("total_steps", total_steps, minimum=1)
    end = _floor_rate("end", end, peak)
    return _schedule(
        lambda t: end + (peak - end) * (1.0 - np.minimum(t, total_steps) / total_steps),
        "linear_decay")


def inverse_sqrt(peak: float, warmup_steps: int) -> Schedule:
    """Inverse square root decay after a linear warmup (article 6.3)::

        eta_t = eta_max * min(t / T_w, sqrt(T_w / t)),      eta_0 = 0.

    The rate climbs linearly to ``eta_max = peak`` at ``t = T_w`` and then
    decays as the article's ``eta_0 / sqrt(t)`` with ``eta_0 = eta_max sqrt(T_w)``.
    The article's pure form has no value at t = 0; here the warmup branch
    ``t / T_w = 0`` decides it (as the Transformer formula does literally), so
    ``warmup_steps=1`` gives exactly ``eta_max / sqrt(t)`` for every t >= 1 and a
    zero first step.

    With ``peak = d_model**-0.5 * T_w**-0.5`` this is the schedule of the
    original Transformer, Vaswani et al. (2017), "Attention Is All You Need"::

        lrate = d_model^-0.5 * min(step_num^-0.5, step_num * warmup_steps^-1.5)

    evaluated at ``step_num = t``.
    """
    peak = _rate("peak", peak)
    warmup_steps = _count("warmup_steps", warmup_steps, minimum=1)

    def eta(t):
        # max(t, 1) only avoids 1/0 at t = 0, where the warmup branch (0) is smaller.
        return peak * np.minimum(t / warmup_steps, np.sqrt(warmup_steps / np.maximum(t, 1.0)))

    return _schedule(eta, "inverse_sqrt")


def warmup_cosine(peak: float, warmup_steps: int, total_steps: int,
                  eta_min: float | None = None) -> Schedule:
    """Warmup + cosine decay, the standard LLM schedule (article 6.4)::

        eta_t = eta_max * t / T_w                                           t <= T_w
        eta_t = eta_min + 1/2 (eta_max - eta_min)(1 + cos(pi (t - T_w) / (T - T_w)))
                                                                            T_w < t <= T
        eta_t = eta_min                                                     t > T

    ``T = total_steps`` counts the warmup too; ``0 <= warmup_steps < total_steps``
    (the cosine phase must not be empty). ``eta_min`` defaults to the article's
    typical ``0.1 * eta_max``. This is optax's ``warmup_cosine_decay_schedule``
    with ``init_value=0``.

    Goyal et al. (2017) for the warmup; Loshchilov & Hutter (2017), SGDR, for
    the cosine.
    """
    peak = _rate("peak", peak)
    warmup_steps = _count("warmup_steps", warmup_steps, minimum=0)
    total_steps = _count("total_steps", total_steps, minimum=1)
    if warmup_steps >= total_steps:
        raise ValueError(f"Invalid warmup_steps: {warmup_steps} (must be smaller "
                         f"than total_steps={total_steps})")
    eta_min = 0.1 * peak if eta_min is None else _floor_rate("eta_min", eta_min, peak)
    decay_steps = total_steps - warmup_steps

    def eta(t):
        warm = peak * (t / warmup_steps) if warmup_steps else np.full_like(t, peak)
        s = np.clip(t - warmup_steps, 0, decay_steps)
        cosine = eta_min + 0.5 * (peak - eta_min) * (1.0 + np.cos(np.pi * s / decay_steps))
        return np.where(t <= warmup_steps, warm, cosine)

    return _schedule(eta, "warmup_cosine")


COOLDOWN_SHAPES = ("linear", "1-sqrt", "cosine")


def warmup_stable_decay(peak: float, warmup_steps: int, total_steps: int,
                        cooldown_steps: int, end: float = 0.0,
                        cooldown: str = "linear") -> Schedule:
    """Warmup-stable-decay (WSD): linear warmup, a long constant phase, a short cooldown::

        eta_t = eta_max * t / T_w                          t <= T_w
        eta_t = eta_max                                    T_w < t <= T - T_c
        eta_t = end + (eta_max - end) * f(s),  s = (t - (T - T_c)) / T_c   T - T_c < t <= T
        eta_t = end                                        t > T

    with ``f(s) = 1 - s`` (``cooldown="linear"``), ``1 - sqrt(s)`` (``"1-sqrt"``,
    Hägele et al. 2024's best shape) or ``(1 + cos(pi s)) / 2`` (``"cosine"``).
    ``T = total_steps`` counts everything; ``T_c = cooldown_steps`` >= 1 and
    ``T_w + T_c <= T``. The constant phase does not depend on ``T``: a run can
    branch into its cooldown at any step, which is why one long run at constant
    rate gives the model at many budgets.

    Two differences from Hägele et al.'s reference code (``wsd_schedule`` in their
    ``src/optim/utils.py``), neither of which changes anything after the warmup:
    the warmup here starts from 0 (step 0 has rate 0 and is spent), theirs from
    ``peak / 100`` (``init_div_factor=100``); and the cooldown length is whatever the
    caller passes, which this book's callers compute as ``round(frac * T)``
    (e.g. :func:`optbook.experiments.schedules.make_schedule`), where theirs is
    ``int(frac * T)``: the two differ by one step whenever ``frac * T`` is not an
    integer and rounds up (no budget used in the book: 20 % of each is an integer).

    Hu et al. (2024), MiniCPM; Hägele et al. (2024), "Scaling Laws and
    Compute-Optimal Training Beyond Fixed Training Durations".
    """
    peak = _rate("peak", peak)
    warmup_steps = _count("warmup_steps", warmup_steps, minimum=0)
    total_steps = _count("total_steps", total_steps, minimum=1)
    cooldown_steps = _count("cooldown_steps", cooldown_steps, minimum=1)
    end = _floor_rate("end", end, peak)
    if warmup_steps + cooldown_steps > total_steps:
        raise ValueError(f"Invalid cooldown_steps: {cooldown_steps} (warmup_steps="
                         f"{warmup_steps} + cooldown_steps exceeds total_steps={total_steps})")
    if cooldown not in COOLDOWN_SHAPES:
        raise ValueError(f"Invalid cooldown: {cooldown!r} (one of {COOLDOWN_SHAPES})")
    start = total_steps - cooldown_steps

    def eta(t):
        warm = peak * (t / warmup_steps) if warmup_steps else np.full_like(t, peak)
        s = np.clip((t - start) / cooldown_steps, 0.0, 1.0)
        if cooldown == "linear":
            f = 1.0 - s
        elif cooldown == "1-sqrt":
            f = 1.0 - np.sqrt(s)
        else:
            f = 0.5 * (1.0 + np.cos(np.pi * s))
        decayed = end + (peak - end) * f
        return np.where(t <= warmup_steps, warm, np.where(t <= start, peak, decayed))

    return _schedule(eta, "warmup_stable_decay")


def one_cycle(peak: float, total_steps: int, pct_start: float = 0.3,
              div_factor: float = 25.0, final_div_factor: float = 1e4,
              anneal: str = "cos", three_phase: bool = False) -> Schedule:
    """1cycle (Smith & Topin 2019), exactly ``torch.optim.lr_scheduler.OneCycleLR``::

        eta_0 = peak / div_factor  --(rise, pct_start of the run)-->  peak
              --(fall)-->  eta_0 / final_div_factor   at t = total_steps - 1

    each phase interpolated by a half cosine (``anneal="cos"``) or linearly
    (``"linear"``). The phase boundaries are torch's: the rise ends at step
    ``pct_start * total_steps - 1`` (a float), the fall at ``total_steps - 1``;
    ``three_phase=True`` falls back to eta_0 at ``2 pct_start T - 2`` and then
    anneals to the minimum. torch raises after ``total_steps`` steps; this
    schedule holds its last value instead (momentum cycling is not part of it).

    Smith & Topin (2019), "Super-Convergence: Very Fast Training of Neural
    Networks Using Large Learning Rates".
    """
    peak = _rate("peak", peak)
    total_steps = _count("total_steps", total_steps, minimum=2)
    check_number("pct_start", pct_start, low=0.0, low_inclusive=False, high=1.0)
    div_factor = check_number("div_factor", div_factor, low=1.0)
    final_div_factor = check_number("final_div_factor", final_div_factor, low=1.0)
    if anneal not in ("cos", "linear"):
        raise ValueError(f"Invalid anneal: {anneal!r} (one of 'cos', 'linear')")
    initial = peak / div_factor
    minimum = initial / final_div_factor
    rise_end = float(pct_start * total_steps) - 1
    if three_phase:
        phases = [(rise_end, initial, peak), (float(2 * pct_start * total_steps) - 2, peak, initial),
                  (total_steps - 1, initial, minimum)]
    else:
        phases = [(rise_end, initial, peak), (total_steps - 1, peak, minimum)]
    ends = [p[0] for p in phases]
    if any(b <= a for a, b in zip([0.0] + ends, ends)):
        raise ValueError(f"Invalid pct_start: {pct_start} (with total_steps={total_steps} a "
                         "phase would be empty)")

    def interpolate(a, b, pct):
        if anneal == "cos":
            return b + (a - b) / 2.0 * (np.cos(np.pi * pct) + 1)
        return (b - a) * pct + a

    def eta(t):
        t = np.minimum(t, total_steps - 1)
        out = np.empty_like(t)
        start = 0.0
        done = np.zeros(t.shape, dtype=bool)
        for i, (stop, a, b) in enumerate(phases):
            here = ~done & ((t <= stop) | (i == len(phases) - 1))
            out = np.where(here, interpolate(a, b, (t - start) / (stop - start)), out)
            done |= here
            start = stop
        return out

    return _schedule(eta, "one_cycle")


def cosine_restarts(peak: float, first_period: int, period_mult: int = 1,
                    eta_min: float = 0.0) -> Schedule:
    """SGDR: cosine annealing restarted from eta_max at the end of every period::

        eta_t = eta_min + 1/2 (eta_max - eta_min)(1 + cos(pi T_cur / T_i))

    where ``T_cur`` counts the steps since the last restart and the periods are
    ``T_0 = first_period``, ``T_0 * T_mult``, ``T_0 * T_mult**2``, ...
    (``period_mult`` an integer >= 1). Equal to
    ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(T_0, T_mult, eta_min)``
    stepped once per optimizer step (torch also accepts fractional epochs).

    Loshchilov & Hutter (2017), "SGDR: Stochastic Gradient Descent with Warm
    Restarts", ICLR.
    """
    peak = _rate("peak", peak)
    first_period = _count("first_period", first_period, minimum=1)
    period_mult = _count("period_mult", period_mult, minimum=1)
    eta_min = _floor_rate("eta_min", eta_min, peak)

    def eta(t):
        if period_mult == 1:
            t_cur, t_i = np.mod(t, first_period), np.full_like(t, first_period)
        else:
            # restart i begins at T_0 (m^i - 1) / (m - 1)
            i = np.floor(np.log(t * (period_mult - 1) / first_period + 1) / np.log(period_mult))
            begin = first_period * (period_mult ** i - 1) / (period_mult - 1)
            # guard the float log at exact restarts
            over = t >= begin + first_period * period_mult ** i
            i = np.where(over, i + 1, i)
            under = t < first_period * (period_mult ** i - 1) / (period_mult - 1)
            i = np.where(under, i - 1, i)
            begin = first_period * (period_mult ** i - 1) / (period_mult - 1)
            t_cur, t_i = t - begin, first_period * period_mult ** i
        return eta_min + 0.5 * (peak - eta_min) * (1.0 + np.cos(np.pi * t_cur / t_i))

    return _schedule(eta, "cosine_restarts")


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """Run ``schedules[0]`` until ``boundaries[0]``, then ``schedules[1]``, ...

    As in ``optax.join_schedules``, each later schedule sees the step *relative
    to its boundary*: for ``b_{i-1} <= t < b_i`` the rate is
    ``schedules[i](t - b_{i-1})`` (with ``b_{-1} = 0``), so a schedule starts
    from its own step 0 when it takes over. That is also what
    ``torch.optim.lr_scheduler.SequentialLR(milestones=boundaries)`` does.
    ``boundaries`` are ``len(schedules) - 1`` strictly increasing integers >= 1.

    On a NumPy array of steps each schedule is called once with the integer
    array of its (relative) steps, so the joined schedules must accept arrays
    (all schedules of this module do).
    """
    schedules = list(schedules) if isinstance(schedules, (list, tuple)) else schedules
    if not isinstance(schedules, list) or not schedules:
        raise ValueError(f"Invalid schedules: {schedules!r} (need a non-empty list)")
    for i, s in enumerate(schedules):
        if not callable(s):
            raise ValueError(f"Invalid schedules[{i}]: {s!r} (not callable)")
    if not isinstance(boundaries, (list, tuple, np.ndarray)):
        raise ValueError(f"Invalid boundaries: {boundaries!r} (need a list of steps)")
    boundaries = [_count(f"boundaries[{i}]", b, minimum=1) for i, b in enumerate(boundaries)]
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(f"Invalid boundaries: {boundaries} ({len(boundaries)} boundaries "
                         f"for {len(schedules)} schedules; need {len(schedules) - 1})")
    if any(a >= b for a, b in zip(boundaries, boundaries[1:])):
        raise ValueError(f"Invalid boundaries: {boundaries} (must be strictly increasing)")
    starts = [0] + boundaries

    def joined(step: Steps):
        t, scalar = _steps(step)
        if scalar:
            i = bisect_right(boundaries, t)
            return float(schedules[i](t - starts[i]))
        out = np.empty(t.shape, dtype=np.float64)
        piece = np.searchsorted(boundaries, t, side="right")
        for i, s in enumerate(schedules):
            mask = piece == i
            if mask.any():
                out[mask] = s(t[mask] - starts[i])
        return out

    joined.__name__ = joined.__qualname__ = "join_schedules"
    return joined


# --- torch ---------------------------------------------------------------------

def as_lambda_lr(optimizer, schedule: Schedule | Sequence[Schedule]):
    """A ``torch.optim.lr_scheduler.LambdaLR`` whose learning rate *is* schedule(t).

    ``LambdaLR`` sets ``lr = initial_lr * lambda(t)``, so the factor passed to it
    is ``schedule(t) / initial_lr``; the effective rate equals ``schedule(t)`` up
    to one rounding, and the lr given to the optimizer's constructor is
    irrelevant except that it must be > 0. ``initial_lr`` is read as torch reads
    it (an existing ``group['initial_lr']`` wins over ``group['lr']``).

    Parameter groups: with one schedule, every group follows it, which requires
    all groups to share one base lr; groups with *different* lrs are ambiguous
    (follow the schedule, or scale it per group?) and raise ``ValueError``;
    pass a list with one schedule per group instead. Call ``scheduler.step()``
    after each ``optimizer.step()`` as usual. Only fresh schedulers are built
    (``last_epoch=-1``); to resume, build one and ``load_state_dict`` into it
    (the factors divide by the scheduler's current ``base_lrs``, so restored
    ones are respected). The factors are plain functions, so LambdaLR's
    ``state_dict`` leaves them out and stays picklable.
    """
    import torch  # optional dependency: only this function needs it

    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(f"Invalid optimizer: {type(optimizer).__name__} is not a "
                         "torch.optim.Optimizer")
    groups = optimizer.param_groups
    base_lrs = [float(group.get("initial_lr", group["lr"])) for group in groups]
    if isinstance(schedule, (list, tuple)):
        if len(schedule) != len(groups):
            raise ValueError(f"Invalid schedule: {len(schedule)} schedules for "
                             f"{len(groups)} parameter groups")
        schedules = list(schedule)
    else:
        if len(set(base_lrs)) > 1:
            raise ValueError(
                f"Invalid schedule: one schedule for parameter groups with different "
                f"learning rates {base_lrs} is ambiguous; pass a list with one "
                "schedule per group")
        schedules = [schedule] * len(groups)
    for i, s in enumerate(schedules):
        if not callable(s):
            raise ValueError(f"Invalid schedule: {s!r} for parameter group {i} is not callable")
    for i, base in enumerate(base_lrs):
        if not (base > 0 and math.isfinite(base)):
            raise ValueError(
                f"Invalid optimizer: parameter group {i} has initial lr {base}; LambdaLR "
                "multiplies it by the factor, so it must be a positive finite number")

    scheduler = None

    def factor(i: int, s: Schedule) -> Callable[[int], float]:
        def lr_factor(t: int) -> float:
            # Divide by the scheduler's own base lr once it exists, so that a
            # base_lrs restored by load_state_dict is honoured too.
            base = base_lrs[i] if scheduler is None else float(scheduler.base_lrs[i])
            return float(s(t)) / base
        return lr_factor

    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, [factor(i, s) for i, s in enumerate(schedules)])
    return scheduler
