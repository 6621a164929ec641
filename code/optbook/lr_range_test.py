"""The learning-rate range test (学習率レンジテスト, LR range test) for torch models.

Smith's recipe (L. N. Smith, "Cyclical Learning Rates for Training Neural
Networks", WACV 2017, sec. 3.3): train for a few hundred minibatches while the
learning rate grows from a tiny to a huge value, and watch the loss.  Where
the loss starts falling the learning rate is large enough to make progress;
where it turns up and explodes it is too large.  A good learning rate lies
between the two, well below the blow-up.

:func:`lr_range_test` runs that experiment on any ``torch.optim.Optimizer``
and leaves the model and the optimizer exactly as it found them.  Three rules
turn the curve into one number, as fastai's ``lr_find`` defines them
(:func:`suggest_steep`, :func:`suggest_minimum`, :func:`suggest_valley`, applied
by :func:`suggest`); :func:`suggest_lr` is the older steepest-descent-before-the-
minimum rule of ``torch-lr-finder``, kept for existing callers.
"""
from __future__ import annotations

import copy
import math
import numbers
import warnings
from dataclasses import dataclass, field
from collections.abc import Sequence
from typing import Callable, Iterable, Optional, Union

import numpy as np
import torch

#: The rule :func:`lr_range_test` reports as ``suggested_lr`` unless told otherwise:
#: fastai's default, kept for agreement with fastai rather than because it wins.  The
#: book's section 7.2 scores the rules by regret (validation loss lost against a full
#: sweep) on two models, Adam and SGD + momentum, constant and one-cycle schedules, six
#: seeds: no rule is best everywhere -- minimum/10 has the lowest mean rank at a 200-step
#: budget (most single comparisons are within seed noise), valley on the small MLP at 800
#: steps, where every rule overshoots -- and the start rate alone (1e-7 against 1e-5) moves
#: a suggestion by up to 8x on the small MLP and more on the LayerNorm MLP.  Read the curve
#: and sweep around the suggestions in both directions.
DEFAULT_RULE = "valley"

__all__ = ["LRRangeTestResult", "SUGGESTION_RULES", "DEFAULT_RULE", "lr_ramp", "lr_range_test",
           "suggest", "suggest_lr", "suggest_minimum", "suggest_steep", "suggest_valley"]


@dataclass
class LRRangeTestResult:
    """What :func:`lr_range_test` measured.

    Attributes:
        lrs: learning rate of each step that was run, of the *reference* group: the last
            parameter group (as fastai's recorder), or, with explicit ``lr_multipliers``,
            the ramp before it is multiplied.
        losses: raw minibatch loss of each step, computed *before* that step's
            update (so ``losses[i]`` reflects the rates ``lrs[:i]``).
        smoothed: bias-corrected exponential moving average of ``losses``.
        suggested_lr: the suggestion of the rule ``rule`` (see :func:`suggest`),
            or ``None`` if too few points remain after trimming.
        min_loss_lr: the rate at the minimum of ``smoothed`` (untrimmed).
        stopped_early: whether the run stopped because the loss diverged.
        rule: the rule that gave ``suggested_lr``.
        suggestions: every rule of :data:`SUGGESTION_RULES` -> its suggestion.
        group_lrs: ``(steps, groups)``: the rate of every parameter group at every step
            (``None`` when built by hand).  A suggestion ``s`` for the reference group means
            ``s * group_lrs[:, k] / lrs`` for group ``k``.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggested_lr: Optional[float]
    min_loss_lr: Optional[float]
    stopped_early: bool
    rule: str = DEFAULT_RULE
    suggestions: dict = field(default_factory=dict)
    group_lrs: Optional[np.ndarray] = None


def _check_rate(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"Invalid {name}: {value!r} (must be a finite number > 0)")


def _check_arguments(start_lr, end_lr, num_steps, mode, smoothing, diverge_factor):
    for name, value in (("start_lr", start_lr), ("end_lr", end_lr)):
        _check_rate(name, value)
    if start_lr >= end_lr:
        raise ValueError(f"Invalid start_lr/end_lr: {start_lr!r} >= {end_lr!r} "
                         "(the range must increase)")
    if isinstance(num_steps, bool) or not isinstance(num_steps, numbers.Integral) or num_steps < 2:
        raise ValueError(f"Invalid num_steps: {num_steps!r} (must be an integer >= 2)")
    if mode not in ("exp", "linear"):
        raise ValueError(f"Invalid mode: {mode!r} (choose 'exp' or 'linear')")
    if isinstance(smoothing, bool) or not isinstance(smoothing, numbers.Real) \
            or not 0.0 <= smoothing < 1.0:
        raise ValueError(f"Invalid smoothing: {smoothing!r} (must lie in [0, 1))")
    if isinstance(diverge_factor, bool) or not isinstance(diverge_factor, numbers.Real) \
            or not diverge_factor > 1.0:
        raise ValueError(f"Invalid diverge_factor: {diverge_factor!r} (must be > 1)")


def lr_ramp(start_lr: float, end_lr: float, num_steps: int, mode: str = "exp") -> np.ndarray:
    r"""The learning rates the range test tries, :math:`i = 0, \dots, n-1`.

    .. math::
        \eta_i = \eta_{\text{start}} \left(\frac{\eta_{\text{end}}}{\eta_{\text{start}}}
        \right)^{i/(n-1)} \quad(\text{exp}), \qquad
        \eta_i = \eta_{\text{start}} + (\eta_{\text{end}} - \eta_{\text{start}})
        \frac{i}{n-1} \quad(\text{linear}).
    """
    _check_arguments(start_lr, end_lr, num_steps, mode, 0.0, 2.0)
    fraction = np.arange(num_steps) / (num_steps - 1)
    if mode == "exp":
        return start_lr * (end_lr / start_lr) ** fraction
    return start_lr + (end_lr - start_lr) * fraction


def suggest_lr(lrs, smoothed, skip_start: int = 10) -> Optional[float]:
    r"""The learning rate where the smoothed loss falls fastest.

    Rule: the argmin over :math:`i` of :math:`d\,\bar\ell / d \log\eta`, estimated
    by ``numpy.gradient``, searched from point ``skip_start`` up to the minimum
    of the smoothed loss.  The first points are skipped because there the
    bias-corrected average holds only a few noisy minibatch losses taken at
    rates too small to change anything; the search ends at the minimum because
    beyond it the loss rises.  (The ``torch-lr-finder`` package uses the same
    steepest-slope rule, trimming 10 points at the start and 5 at the end.)
    Returns ``None`` when fewer than three points remain.
    """
    if isinstance(skip_start, bool) or not isinstance(skip_start, int) or skip_start < 0:
        raise ValueError(f"Invalid skip_start: {skip_start!r} (must be an integer >= 0)")
    lrs, smoothed = _check_curve(lrs, smoothed, ("lrs", "smoothed"))
    if len(lrs) == 0:
        return None
    end = int(np.argmin(smoothed)) + 1
    if end - skip_start < 3:
        return None
    slope = np.gradient(smoothed[skip_start:end], np.log(lrs[skip_start:end]))
    return float(lrs[skip_start + int(np.argmin(slope))])


# --- fastai's suggestion rules -------------------------------------------------------
# Transcribed from fastai (fastai/callback/schedule.py: ``steep``, ``minimum``,
# ``valley``).  fastai applies them to its *smoothed* losses after dropping the
# first ``num_it // 10`` and the last 5 points; :func:`suggest` does the same.

def _check_curve(lrs, losses, names=("lrs", "losses")):
    """Two 1-D arrays of equal length: positive, finite, strictly increasing rates and
    finite losses.  A curve passed the wrong way round (losses first) or with the rates
    descending is refused, never answered."""
    lrs, losses = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    if lrs.shape != losses.shape or lrs.ndim != 1:
        raise ValueError(f"Invalid {names[0]}/{names[1]}: shapes {lrs.shape} and {losses.shape} "
                         "(need two 1-D arrays of equal length)")
    if not np.all(np.isfinite(lrs)) or np.any(lrs <= 0):
        raise ValueError(f"Invalid {names[0]}: {_preview(lrs)} (rates must be finite and > 0; "
                         f"are {names[0]} and {names[1]} swapped?)")
    if np.any(np.diff(lrs) <= 0):
        raise ValueError(f"Invalid {names[0]}: {_preview(lrs)} (rates must be strictly increasing, "
                         f"as a range test records them; are {names[0]} and {names[1]} swapped, "
                         "or the curve reversed?)")
    if not np.all(np.isfinite(losses)):
        raise ValueError(f"Invalid {names[1]}: {_preview(losses)} (must be finite)")
    return lrs, losses


def _preview(values: np.ndarray) -> str:
    shown = ", ".join(f"{v:.3g}" for v in values[:4])
    return f"[{shown}{', ...' if len(values) > 4 else ''}] ({len(values)} values)"


def _curve(lrs, losses):
    lrs, losses = _check_curve(lrs, losses)
    if len(lrs) < 2:
        raise ValueError(f"Invalid lrs/losses: {len(lrs)} point(s) (need at least 2)")
    return lrs, losses


def suggest_steep(lrs, losses) -> float:
    r"""fastai's ``steep``: the rate where the loss falls fastest per unit of :math:`\log\eta`.

    Forward differences :math:`(\ell_{i+1} - \ell_i)/(\log\eta_{i+1} - \log\eta_i)`;
    returns :math:`\eta_i` at their minimum.  Unlike :func:`suggest_lr` it
    searches the whole (trimmed) curve, also beyond the loss minimum.
    """
    lrs, losses = _curve(lrs, losses)
    slopes = np.diff(losses) / np.diff(np.log(lrs))
    return float(lrs[int(np.argmin(slopes))])


def suggest_minimum(lrs, losses) -> float:
    """fastai's ``minimum``: one tenth of the rate at the lowest loss."""
    lrs, losses = _curve(lrs, losses)
    return float(lrs[int(np.argmin(losses))]) / 10.0


def suggest_valley(lrs, losses) -> float:
    """fastai's ``valley`` (its default since v2.4): a point inside the longest valley.

    fastai made ``valley`` the default of ``lr_find`` in release 2.4 ("Improved LR
    Suggestions", https://github.com/fastai/fastai/pull/3377, listed under 2.4 in fastai's
    CHANGELOG.md).

    The valley is the longest strictly decreasing subsequence of the losses
    (O(n^2) dynamic programme).  fastai takes its end ``e`` and length ``m``,
    sets ``s = e - m`` and returns the rate at index
    ``s + int(m / 3) + int(m / 3 / 2)``: about half-way down the valley, where
    the loss is still falling but well before its minimum.

    fastai's ``s`` is one *before* the valley's first point, so when the
    longest valley has only two points and starts at the first point (two
    decreasing points; a curve that falls once and then only rises) the index
    is -1, and Python's indexing returns the *last* rate, the largest one.
    fastai returns exactly that (``lrs[idx]`` on its tensor of rates); this
    function matches it deliberately, so that its suggestions are fastai's.
    :func:`suggest` can reach the case too (three points 2, 1, 3 suggest the
    third rate): such a curve has no valley to speak of, and no rule's number
    should be used without reading the plot.
    """
    lrs, losses = _curve(lrs, losses)
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n                           # length of the longest decreasing run ending at i
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    return float(lrs[max_start + int(sections) + int(sections / 2)])


#: The rules :func:`suggest` knows, by name.
SUGGESTION_RULES = {"steep": suggest_steep, "minimum": suggest_minimum, "valley": suggest_valley}
def suggest(lrs, smoothed, rule: str = DEFAULT_RULE, skip_start: int = 10,
            skip_end: int = 5) -> Optional[float]:
    """Apply the suggestion rule ``rule`` to a range-test curve, trimmed as fastai does.

    The first ``skip_start`` and last ``skip_end`` points are dropped (fastai:
    ``num_it // 10`` and 5; the end of the curve is where the loss blows up).  The default
    ``skip_start = 10`` equals fastai's only for 100-step tests: pass ``num_steps // 10``
    to trim a longer test as fastai does.
    Returns ``None`` when fewer than 3 points remain.  ``lrs`` must be positive and
    strictly increasing and ``smoothed`` finite: a curve passed as ``(smoothed, lrs)`` or
    reversed raises ``ValueError`` instead of yielding a number.
    """
    if rule not in SUGGESTION_RULES:
        raise ValueError(f"Invalid rule: {rule!r} (choose one of {sorted(SUGGESTION_RULES)})")
    for name, value in (("skip_start", skip_start), ("skip_end", skip_end)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"Invalid {name}: {value!r} (must be an integer >= 0)")
    lrs, smoothed = _check_curve(lrs, smoothed, ("lrs", "smoothed"))
    end = len(lrs) - skip_end
    if end - skip_start < 3:
        return None
    return SUGGESTION_RULES[rule](lrs[skip_start:end], smoothed[skip_start:end])


def _batches(data: Iterable, num_steps: int):
    """Yield batches from ``data`` forever, re-iterating it when it runs out.

    A one-shot iterator (a generator, ``iter(loader)``) cannot be re-iterated: when it
    runs out before ``num_steps`` batches, say so instead of failing obscurely."""
    first_pass = None
    while True:
        count = 0
        for batch in data:
            count += 1
            yield batch
        if count == 0:
            if first_pass is None:
                raise ValueError("Invalid data: it yielded no batches (an empty or already "
                                 "exhausted iterator? pass a list or a DataLoader)")
            raise ValueError(f"Invalid data: it ran out after {first_pass} batches and yields "
                             f"nothing when iterated again, but num_steps={num_steps} needs "
                             f"{num_steps} (a one-shot iterator or generator?): pass a list or a "
                             f"DataLoader, which can be re-iterated, or num_steps <= {first_pass}")
        if first_pass is None:
            first_pass = count


def _group_ramps(optimizer, start_lr, end_lr, num_steps, mode, lr_multipliers):
    """``(reference ramp, (num_steps, groups) rates)``; see :func:`lr_range_test`."""
    groups = optimizer.param_groups
    n = len(groups)
    listy = [not isinstance(v, numbers.Real) for v in (start_lr, end_lr)]
    if any(listy):
        if not (isinstance(lr_multipliers, str) and lr_multipliers == "keep"):
            raise ValueError(f"Invalid lr_multipliers: {lr_multipliers!r} (give either one start and "
                             "end rate per group, or lr_multipliers, not both)")
        starts, ends = [], []
        for name, value, out in (("start_lr", start_lr, starts), ("end_lr", end_lr, ends)):
            if isinstance(value, numbers.Real):
                out.extend([value] * n)
                continue
            values = list(value) if isinstance(value, Sequence) or isinstance(value, np.ndarray) else None
            if values is None or len(values) != n:
                raise ValueError(f"Invalid {name}: {value!r} (a number, or one rate per parameter "
                                 f"group: the optimizer has {n})")
            out.extend(values)
        for k, (a, b) in enumerate(zip(starts, ends)):
            if not a < b:
                raise ValueError(f"Invalid start_lr/end_lr: group {k} goes from {a!r} to {b!r} "
                                 "(the range must increase)")
        table = np.stack([lr_ramp(a, b, num_steps, mode) for a, b in zip(starts, ends)], axis=1)
        return table[:, -1].copy(), table
    base = lr_ramp(start_lr, end_lr, num_steps, mode)
    if lr_multipliers is None:
        multipliers = np.ones(n)
    elif isinstance(lr_multipliers, str):
        if lr_multipliers != "keep":
            raise ValueError(f"Invalid lr_multipliers: {lr_multipliers!r} (use 'keep', None, or "
                             "one number >= 0 per parameter group)")
        current = [float(g["lr"]) for g in groups]
        if not all(math.isfinite(c) and c >= 0 for c in current) or not current[-1] > 0:
            raise ValueError(f"Invalid lr_multipliers: 'keep' needs the optimizer's rates to be "
                             f">= 0 and the last group's > 0; they are {current}")
        multipliers = np.array(current) / current[-1]
    else:
        values = list(lr_multipliers) if isinstance(lr_multipliers, (Sequence, np.ndarray)) else None
        if values is None or len(values) != n or not all(
                isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
                for v in values):
            raise ValueError(f"Invalid lr_multipliers: {lr_multipliers!r} (one finite number >= 0 "
                             f"per parameter group: the optimizer has {n})")
        multipliers = np.array(values, dtype=float)
    return base, base[:, None] * multipliers[None, :]


def lr_range_test(model: torch.nn.Module, loss_fn: Callable, data: Iterable,
                  optimizer: torch.optim.Optimizer,
                  start_lr: Union[float, Sequence[float]] = 1e-7,
                  end_lr: Union[float, Sequence[float]] = 10.0, num_steps: int = 100,
                  mode: str = "exp", smoothing: float = 0.98, diverge_factor: float = 4.0,
                  skip_start: int = 10, skip_end: int = 5, rule: str = DEFAULT_RULE,
                  lr_multipliers: Union[str, Sequence[float], None] = "keep") -> LRRangeTestResult:
    r"""Smith's LR range test; the model and optimizer are restored afterwards.

    Step :math:`i` sets the learning rates (below), draws the next batch ``(x, y)``
    from ``data`` (re-iterated when shorter than ``num_steps``; a one-shot iterator that
    runs out raises ``ValueError``), computes ``loss = loss_fn(model(x), y)``, records
    ``loss.item()``, back-propagates and calls ``optimizer.step()``.  The smoothed loss is
    the bias-corrected exponential moving average (as in Adam):

    .. math::
        a_i = \beta a_{i-1} + (1 - \beta)\,\ell_i,\quad a_{-1} = 0,\qquad
        \bar\ell_i = a_i / (1 - \beta^{i+1}),

    with :math:`\beta` = ``smoothing``.  The test stops early once
    :math:`\bar\ell_i > ` ``diverge_factor`` :math:`\times \min_{j<i} \bar\ell_j`
    or :math:`\ell_i` is not finite; a non-finite step is not recorded, so the curves
    stay plottable.  The stop rule needs non-negative losses: a negative loss raises
    ``ValueError``.

    **Rates per parameter group.**  The ramp :math:`\eta_i` (:func:`lr_ramp`) goes from
    ``start_lr`` to ``end_lr``.  With ``lr_multipliers="keep"`` (default) every group
    keeps the ratio of its rate to the *last* group's rate when the test starts (fastai's
    discriminative rates: the last group is the head), so group :math:`k` runs at
    :math:`\eta_i\,\mathrm{lr}_k/\mathrm{lr}_{\text{last}}`; with equal rates in all groups
    that is :math:`\eta_i` everywhere.  ``lr_multipliers=None`` gives every group
    :math:`\eta_i`; a sequence gives group :math:`k` the rate :math:`m_k\eta_i`.  As in
    fastai, ``start_lr`` and ``end_lr`` may instead be sequences with one rate per group
    (a number is used for every group): each group then follows its own ramp.
    ``lrs`` records the reference ramp (the last group's; with explicit multipliers,
    :math:`\eta_i`), ``group_lrs`` every group's rate.

    ``suggestions`` holds the rate each rule of :data:`SUGGESTION_RULES`
    (fastai's ``steep``, ``minimum``, ``valley``) picks on the smoothed curve
    without its first ``skip_start`` and last ``skip_end`` points (see
    :func:`suggest`); ``suggested_lr`` is the one of ``rule`` (default
    :data:`DEFAULT_RULE`).  All are heuristics: read the plot.  ``num_steps`` must leave at
    least 3 points after the trimming (with the defaults, ``num_steps >= 18``); a test that
    stops so early that fewer remain returns ``None`` suggestions with a ``UserWarning``
    that says why.

    On return -- normal or by exception, including one raised by ``loss_fn`` --
    every parameter, buffer and ``.grad`` of ``model``, each module's
    ``training`` flag, and ``optimizer``'s state and hyper-parameters (including
    each group's ``lr``) are restored bit for bit.  The global random number
    generators are not restored.

    Reference: L. N. Smith (2017), "Cyclical Learning Rates for Training
    Neural Networks", WACV, sec. 3.3.
    """
    listy = [not isinstance(v, numbers.Real) for v in (start_lr, end_lr)]
    if any(listy):          # one rate per group: each checked here, their number below
        for name, value in (("start_lr", start_lr), ("end_lr", end_lr)):
            if isinstance(value, numbers.Real):
                _check_rate(name, value)
            elif isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str):
                for v in value:
                    _check_rate(name, v)
            else:
                raise ValueError(f"Invalid {name}: {value!r} (a number, or one rate per "
                                 "parameter group)")
        _check_arguments(1.0, 2.0, num_steps, mode, smoothing, diverge_factor)
    else:
        _check_arguments(start_lr, end_lr, num_steps, mode, smoothing, diverge_factor)
    suggest([], [], rule, skip_start, skip_end)     # validates rule and skips before training
    if num_steps - skip_start - skip_end < 3:
        raise ValueError(f"Invalid num_steps: {num_steps} (after dropping the first "
                         f"skip_start={skip_start} and the last skip_end={skip_end} points only "
                         f"{max(num_steps - skip_start - skip_end, 0)} remain, and the rules need 3: "
                         f"use num_steps >= {skip_start + skip_end + 3} or smaller skips)")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"lr_range_test: optimizer is {type(optimizer).__name__}, "
                        "not a torch.optim.Optimizer")
    ramp, table = _group_ramps(optimizer, start_lr, end_lr, num_steps, mode, lr_multipliers)

    tensors = dict(model.named_parameters())
    tensors.update(("buffer:" + name, b) for name, b in model.named_buffers())
    saved_values = {name: t.detach().clone() for name, t in tensors.items()}
    saved_grads = {name: None if p.grad is None else p.grad.detach().clone()
                   for name, p in model.named_parameters()}
    saved_modes = [(m, m.training) for m in model.modules()]
    saved_optimizer = copy.deepcopy(optimizer.state_dict())

    lrs, group_lrs, losses, smoothed = [], [], [], []
    average, best, stopped_early = 0.0, math.inf, False
    try:
        model.train()
        batches = _batches(data, num_steps)
        for i in range(num_steps):
            for group, lr in zip(optimizer.param_groups, table[i]):
                if isinstance(group["lr"], torch.Tensor):
                    group["lr"].fill_(float(lr))
                else:
                    group["lr"] = float(lr)
            x, y = next(batches)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            value = float(loss.item())
            if not math.isfinite(value):
                stopped_early = True
                break
            if value < 0:
                raise ValueError(f"Invalid loss: {value!r} at step {i} (lr {ramp[i]:.3g}); the "
                                 "range test's stop rule (smoothed loss > diverge_factor x its "
                                 "minimum) needs losses >= 0: add a constant to loss_fn")
            average = smoothing * average + (1.0 - smoothing) * value
            smooth = average / (1.0 - smoothing ** (i + 1))
            lrs.append(float(ramp[i]))
            group_lrs.append(table[i].copy())
            losses.append(value)
            smoothed.append(smooth)
            if smooth > diverge_factor * best:
                stopped_early = True
                break
            best = min(best, smooth)
            loss.backward()
            optimizer.step()
    finally:
        with torch.no_grad():
            for name, t in tensors.items():
                t.copy_(saved_values[name])
        for name, p in model.named_parameters():
            p.grad = saved_grads[name]
        for module, training in saved_modes:
            module.training = training
        optimizer.load_state_dict(saved_optimizer)

    lrs_array, smoothed_array = np.array(lrs), np.array(smoothed)
    suggestions = {name: suggest(lrs_array, smoothed_array, name, skip_start, skip_end)
                   for name in SUGGESTION_RULES}
    if suggestions[rule] is None:
        why = "the loss diverged" if stopped_early else "it ran out of steps"
        warnings.warn(f"lr_range_test stopped after {len(lrs)} of {num_steps} steps ({why}); "
                      f"after dropping the first {skip_start} and the last {skip_end} points "
                      "fewer than 3 remain, so no rule suggests a rate (suggestions are None): "
                      "lower start_lr or end_lr, or read result.lrs and result.losses",
                      UserWarning, stacklevel=2)
    return LRRangeTestResult(
        lrs=lrs_array, losses=np.array(losses), smoothed=smoothed_array,
        suggested_lr=suggestions[rule],
        min_loss_lr=float(lrs_array[np.argmin(smoothed_array)]) if lrs else None,
        stopped_early=stopped_early, rule=rule, suggestions=suggestions,
        group_lrs=np.array(group_lrs).reshape(len(lrs), table.shape[1]))
