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
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

import numpy as np
import torch

#: The rule :func:`lr_range_test` reports as ``suggested_lr`` unless told otherwise.
#: Chosen by the book's section 7.2: on a small MLP, for Adam and SGD + momentum
#: and six seeds each, fastai's ``valley`` landed closest to the best rate of a
#: real 200-step fixed-rate sweep on every seed (``steep`` and ``minimum`` were
#: 2-19x too large). For longer budgets the best fixed rate is lower and every
#: rule overshoots it: treat the suggestion as an upper bound.
DEFAULT_RULE = "valley"

__all__ = ["LRRangeTestResult", "SUGGESTION_RULES", "DEFAULT_RULE", "lr_ramp", "lr_range_test",
           "suggest", "suggest_lr", "suggest_minimum", "suggest_steep", "suggest_valley"]


@dataclass
class LRRangeTestResult:
    """What :func:`lr_range_test` measured.

    Attributes:
        lrs: learning rate of each step that was run.
        losses: raw minibatch loss of each step, computed *before* that step's
            update (so ``losses[i]`` reflects the rates ``lrs[:i]``).
        smoothed: bias-corrected exponential moving average of ``losses``.
        suggested_lr: the suggestion of the rule ``rule`` (see :func:`suggest`),
            or ``None`` if too few points remain after trimming.
        min_loss_lr: the rate at the minimum of ``smoothed`` (untrimmed).
        stopped_early: whether the run stopped because the loss diverged.
        rule: the rule that gave ``suggested_lr``.
        suggestions: every rule of :data:`SUGGESTION_RULES` -> its suggestion.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggested_lr: Optional[float]
    min_loss_lr: Optional[float]
    stopped_early: bool
    rule: str = DEFAULT_RULE
    suggestions: dict = field(default_factory=dict)


def _check_arguments(start_lr, end_lr, num_steps, mode, smoothing, diverge_factor):
    for name, value in (("start_lr", start_lr), ("end_lr", end_lr)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                or not math.isfinite(value) or value <= 0:
            raise ValueError(f"Invalid {name}: {value!r} (must be a finite number > 0)")
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
    lrs, smoothed = np.asarray(lrs, dtype=float), np.asarray(smoothed, dtype=float)
    if lrs.shape != smoothed.shape or lrs.ndim != 1:
        raise ValueError(f"Invalid lrs/smoothed: shapes {lrs.shape} and {smoothed.shape} "
                         "(need two 1-D arrays of equal length)")
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

def _curve(lrs, losses):
    lrs, losses = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    if lrs.shape != losses.shape or lrs.ndim != 1:
        raise ValueError(f"Invalid lrs/losses: shapes {lrs.shape} and {losses.shape} "
                         "(need two 1-D arrays of equal length)")
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
    """fastai's ``valley`` (its default since v2.5): a point inside the longest valley.

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
    ``num_it // 10`` and 5; the end of the curve is where the loss blows up).
    Returns ``None`` when fewer than 3 points remain.
    """
    if rule not in SUGGESTION_RULES:
        raise ValueError(f"Invalid rule: {rule!r} (choose one of {sorted(SUGGESTION_RULES)})")
    for name, value in (("skip_start", skip_start), ("skip_end", skip_end)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"Invalid {name}: {value!r} (must be an integer >= 0)")
    lrs, smoothed = np.asarray(lrs, dtype=float), np.asarray(smoothed, dtype=float)
    if lrs.shape != smoothed.shape or lrs.ndim != 1:
        raise ValueError(f"Invalid lrs/smoothed: shapes {lrs.shape} and {smoothed.shape} "
                         "(need two 1-D arrays of equal length)")
    end = len(lrs) - skip_end
    if end - skip_start < 3:
        return None
    return SUGGESTION_RULES[rule](lrs[skip_start:end], smoothed[skip_start:end])


def _batches(data: Iterable):
    """Yield batches from ``data`` forever, re-iterating it when it runs out."""
    while True:
        empty = True
        for batch in data:
            empty = False
            yield batch
        if empty:
            raise ValueError("Invalid data: it yielded no batches (an exhausted "
                             "iterator? pass a list or a DataLoader)")


def lr_range_test(model: torch.nn.Module, loss_fn: Callable, data: Iterable,
                  optimizer: torch.optim.Optimizer, start_lr: float = 1e-7,
                  end_lr: float = 10.0, num_steps: int = 100, mode: str = "exp",
                  smoothing: float = 0.98, diverge_factor: float = 4.0,
                  skip_start: int = 10, skip_end: int = 5,
                  rule: str = DEFAULT_RULE) -> LRRangeTestResult:
    r"""Smith's LR range test; the model and optimizer are restored afterwards.

    Step :math:`i` sets every parameter group's learning rate to
    :math:`\eta_i` (:func:`lr_ramp`), draws the next batch ``(x, y)`` from
    ``data`` (re-iterated when shorter than ``num_steps``), computes
    ``loss = loss_fn(model(x), y)``, records ``loss.item()``, back-propagates
    and calls ``optimizer.step()``.  The smoothed loss is the bias-corrected
    exponential moving average (as in Adam):

    .. math::
        a_i = \beta a_{i-1} + (1 - \beta)\,\ell_i,\quad a_{-1} = 0,\qquad
        \bar\ell_i = a_i / (1 - \beta^{i+1}),

    with :math:`\beta` = ``smoothing``.  The test stops early once
    :math:`\bar\ell_i > ` ``diverge_factor`` :math:`\times \min_{j<i} \bar\ell_j`
    (which assumes non-negative losses) or :math:`\ell_i` is not finite; a
    non-finite step is not recorded, so the curves stay plottable.

    ``suggestions`` holds the rate each rule of :data:`SUGGESTION_RULES`
    (fastai's ``steep``, ``minimum``, ``valley``) picks on the smoothed curve
    without its first ``skip_start`` and last ``skip_end`` points (see
    :func:`suggest`); ``suggested_lr`` is the one of ``rule`` (default
    :data:`DEFAULT_RULE`).  All are heuristics: read the plot.

    On return -- normal or by exception, including one raised by ``loss_fn`` --
    every parameter, buffer and ``.grad`` of ``model``, each module's
    ``training`` flag, and ``optimizer``'s state and hyper-parameters (including
    each group's ``lr``) are restored bit for bit.  The global random number
    generators are not restored.

    Reference: L. N. Smith (2017), "Cyclical Learning Rates for Training
    Neural Networks", WACV, sec. 3.3.
    """
    _check_arguments(start_lr, end_lr, num_steps, mode, smoothing, diverge_factor)
    suggest([], [], rule, skip_start, skip_end)     # validates rule and skips before training
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"lr_range_test: optimizer is {type(optimizer).__name__}, "
                        "not a torch.optim.Optimizer")
    ramp = lr_ramp(start_lr, end_lr, num_steps, mode)

    tensors = dict(model.named_parameters())
    tensors.update(("buffer:" + name, b) for name, b in model.named_buffers())
    saved_values = {name: t.detach().clone() for name, t in tensors.items()}
    saved_grads = {name: None if p.grad is None else p.grad.detach().clone()
                   for name, p in model.named_parameters()}
    saved_modes = [(m, m.training) for m in model.modules()]
    saved_optimizer = copy.deepcopy(optimizer.state_dict())

    lrs, losses, smoothed = [], [], []
    average, best, stopped_early = 0.0, math.inf, False
    try:
        model.train()
        batches = _batches(data)
        for i, lr in enumerate(ramp):
            for group in optimizer.param_groups:
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
            average = smoothing * average + (1.0 - smoothing) * value
            smooth = average / (1.0 - smoothing ** (i + 1))
            lrs.append(float(lr))
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
    return LRRangeTestResult(
        lrs=lrs_array, losses=np.array(losses), smoothed=smoothed_array,
        suggested_lr=suggestions[rule],
        min_loss_lr=float(lrs_array[np.argmin(smoothed_array)]) if lrs else None,
        stopped_early=stopped_early, rule=rule, suggestions=suggestions)
