"""Tests for optbook.lr_range_test.

Oracles: the closed-form ramps; an explicit-sum transcription of the
bias-corrected moving average; and least squares, whose full-batch loss
(1/N)||Xw - y||^2 has Hessian (2/N) X^T X, so plain gradient descent is stable
exactly for eta < 2/L with L = 2 * lambda_max(X^T X / N).
"""
import copy
import math

import numpy as np
import pytest
import torch

from optbook.lr_range_test import LRRangeTestResult, lr_ramp, lr_range_test, suggest_lr

torch.set_num_threads(1)
mse = torch.nn.functional.mse_loss


def least_squares_data(n=256, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(d, d, generator=g, dtype=torch.float64)
    X = torch.randn(n, d, generator=g, dtype=torch.float64) @ mixing
    w = torch.randn(d, 1, generator=g, dtype=torch.float64)
    y = X @ w + 0.1 * torch.randn(n, 1, generator=g, dtype=torch.float64)
    L = 2.0 * torch.linalg.eigvalsh(X.T @ X / n).max().item()
    return X, y, L


def linear_model(d=4, seed=1):
    torch.manual_seed(seed)
    return torch.nn.Linear(d, 1, bias=False).double()


# --- the ramp --------------------------------------------------------------------

@pytest.mark.parametrize("start, end, n", [(1e-7, 10.0, 100), (1e-3, 1.0, 2), (0.5, 0.7, 13)])
def test_ramp_closed_forms(start, end, n):
    i = np.arange(n)
    np.testing.assert_allclose(lr_ramp(start, end, n, "exp"),
                               [start * (end / start) ** (k / (n - 1)) for k in i], rtol=1e-13)
    np.testing.assert_allclose(lr_ramp(start, end, n, "linear"),
                               [start + (end - start) * k / (n - 1) for k in i], rtol=1e-13)
    for mode in ("exp", "linear"):
        ramp = lr_ramp(start, end, n, mode)
        assert ramp[0] == pytest.approx(start, rel=1e-15)
        assert ramp[-1] == pytest.approx(end, rel=1e-13)


def hand_ramp(start, end, n, mode):
    """The ramp written out by hand: geometric start * (end/start)^(k/(n-1)), or linear."""
    return [start * (end / start) ** (k / (n - 1)) if mode == "exp"
            else start + (end - start) * k / (n - 1) for k in range(n)]


def two_group_problem(lrs=(0.5, 0.1)):
    X, y, _ = least_squares_data()
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 1)).double()
    optimizer = torch.optim.SGD([{"params": model[0].parameters(), "lr": lrs[0]},
                                 {"params": model[1].parameters(), "lr": lrs[1]}], lr=0.1)
    seen = []

    def loss_fn(output, target):
        seen.append([group["lr"] for group in optimizer.param_groups])
        return mse(output, target)

    return model, optimizer, loss_fn, seen, X, y


@pytest.mark.parametrize("mode", ["exp", "linear"])
@pytest.mark.parametrize("multipliers, ratio", [("keep", 5.0), (None, 1.0), ([3.0, 1.0], 3.0)])
def test_every_group_sees_the_ramp_times_its_ratio(mode, multipliers, ratio):
    """'keep' (default): the body's rate stays 0.5/0.1 = 5 times the head's, as the
    optimizer had it; None: one rate for all; a list: that multiplier per group."""
    model, optimizer, loss_fn, seen, X, y = two_group_problem()
    result = lr_range_test(model, loss_fn, [(X, y)], optimizer, start_lr=1e-6, end_lr=1e-3,
                           num_steps=20, mode=mode, lr_multipliers=multipliers)
    assert not result.stopped_early and len(result.lrs) == 20
    expected = np.array(hand_ramp(1e-6, 1e-3, 20, mode))
    np.testing.assert_allclose(np.array(seen), np.stack([ratio * expected, expected], axis=1),
                               rtol=1e-13)
    np.testing.assert_allclose(result.lrs, expected, rtol=1e-13)
    np.testing.assert_allclose(result.group_lrs, np.array(seen), rtol=0)
    assert [g["lr"] for g in optimizer.param_groups] == [0.5, 0.1]     # restored


def test_one_start_and_end_rate_per_group_as_fastai():
    """fastai's LRFinder accepts lists: group k ramps from start_lr[k] to end_lr[k]; a
    number is used for every group; ``lrs`` is the last group's ramp."""
    model, optimizer, loss_fn, seen, X, y = two_group_problem()
    result = lr_range_test(model, loss_fn, [(X, y)], optimizer, start_lr=[1e-7, 1e-6],
                           end_lr=[1e-4, 1e-3], num_steps=25)
    want = np.stack([hand_ramp(1e-7, 1e-4, 25, "exp"), hand_ramp(1e-6, 1e-3, 25, "exp")], axis=1)
    np.testing.assert_allclose(np.array(seen), want, rtol=1e-13)
    np.testing.assert_allclose(result.lrs, want[:, 1], rtol=1e-13)
    # a scalar end rate with per-group starts: each group ramps to it
    model, optimizer, loss_fn, seen, X, y = two_group_problem()
    lr_range_test(model, loss_fn, [(X, y)], optimizer, start_lr=np.array([1e-7, 1e-5]),
                  end_lr=1e-3, num_steps=20)
    np.testing.assert_allclose(np.array(seen)[:, 0], hand_ramp(1e-7, 1e-3, 20, "exp"), rtol=1e-13)
    np.testing.assert_allclose(np.array(seen)[:, 1], hand_ramp(1e-5, 1e-3, 20, "exp"), rtol=1e-13)


@pytest.mark.parametrize("kwargs, match", [
    ({"start_lr": [1e-6]}, r"Invalid start_lr: \[1e-06\] \(a number, or one rate per parameter group: the optimizer has 2\)"),
    ({"start_lr": [1e-6, -1.0]}, r"Invalid start_lr: -1.0"),
    ({"end_lr": [1e-3, 1e-8], "start_lr": 1e-6}, r"Invalid start_lr/end_lr: group 1"),
    ({"start_lr": [1e-6, 1e-6], "lr_multipliers": [1.0, 2.0]}, r"Invalid lr_multipliers: .*not both"),
    ({"lr_multipliers": [1.0]}, r"Invalid lr_multipliers: \[1.0\] \(one finite number >= 0 per parameter group: the optimizer has 2\)"),
    ({"lr_multipliers": [1.0, -2.0]}, r"Invalid lr_multipliers"),
    ({"lr_multipliers": "same"}, r"Invalid lr_multipliers: 'same'"),
])
def test_bad_per_group_rates_are_refused(kwargs, match):
    model, optimizer, loss_fn, seen, X, y = two_group_problem()
    with pytest.raises(ValueError, match=match):
        lr_range_test(model, loss_fn, [(X, y)], optimizer, **{"num_steps": 20, **kwargs})
    assert seen == [] and [g["lr"] for g in optimizer.param_groups] == [0.5, 0.1]


def test_keep_needs_a_positive_last_rate():
    model, optimizer, loss_fn, seen, X, y = two_group_problem(lrs=(0.5, 0.0))
    with pytest.raises(ValueError, match=r"'keep' needs .* last group's > 0; they are \[0.5, 0.0\]"):
        lr_range_test(model, loss_fn, [(X, y)], optimizer, num_steps=20)


# --- divergence on least squares ---------------------------------------------------

@pytest.mark.parametrize("smoothing", [0.98, 0.9, 0.0])
def test_full_batch_sgd_stops_beyond_two_over_L(smoothing):
    X, y, L = least_squares_data()
    model = linear_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    result = lr_range_test(model, mse, [(X, y)], optimizer, start_lr=1e-4, end_lr=10.0,
                           num_steps=100, smoothing=smoothing)
    assert isinstance(result, LRRangeTestResult)
    assert result.stopped_early and len(result.lrs) < 100
    # below 2/L gradient descent on a quadratic cannot increase the loss, so the
    # stop must come beyond it (the loss at step i reflects the rates before i)
    assert result.lrs[-1] > 2.0 / L
    assert result.suggested_lr is not None and result.suggested_lr < 2.0 / L
    assert result.min_loss_lr / 10 < 2.0 / L
    assert len(result.lrs) == len(result.losses) == len(result.smoothed)
    assert np.all(np.isfinite(result.losses)) and np.all(np.isfinite(result.smoothed))


def test_minibatch_data_is_cycled_and_suggestion_is_stable():
    X, y, L = least_squares_data()
    batches = [(X[i:i + 32], y[i:i + 32]) for i in range(0, 256, 32)]
    model = linear_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    seen = []

    def loss_fn(output, target):
        seen.append(next(k for k, (_, t) in enumerate(batches) if t is target))
        return mse(output, target)

    result = lr_range_test(model, loss_fn, batches, optimizer, start_lr=1e-4, end_lr=10.0)
    assert seen == [i % 8 for i in range(len(seen))] and len(seen) > 8
    assert result.stopped_early
    assert result.suggested_lr < 2.0 / L


def test_smoothed_loss_is_the_bias_corrected_average():
    X, y, _ = least_squares_data()
    beta = 0.9
    model = linear_model()
    result = lr_range_test(model, mse, [(X[:64], y[:64]), (X[64:], y[64:])],
                           torch.optim.SGD(model.parameters(), lr=0.1),
                           start_lr=1e-4, end_lr=1e-2, num_steps=30, smoothing=beta)
    losses = result.losses
    assert len(losses) == 30 and np.ptp(losses) > 0
    # explicit weighted sum, not the recursion: sum_j (1-b) b^(i-j) l_j / (1 - b^(i+1))
    expected = [sum((1 - beta) * beta ** (i - j) * losses[j] for j in range(i + 1))
                / (1 - beta ** (i + 1)) for i in range(len(losses))]
    np.testing.assert_allclose(result.smoothed, expected, rtol=1e-12)


class ScriptedLoss(torch.nn.Module):
    """A model whose 'loss' follows a script: loss_i = script[i] (+ 0 * w)."""

    def __init__(self, script):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
        self.script = list(script)

    def forward(self, x):
        return self.w * 0 + self.script.pop(0)


def scripted_loss(output, target):
    return output.sum()


def test_stop_rule_uses_diverge_factor_times_best():
    script = [5.0, 3.0, 2.0, 7.9, 8.0, 8.1, 1.0]
    model = ScriptedLoss(script)
    result = lr_range_test(model, scripted_loss, [(None, None)],
                           torch.optim.SGD(model.parameters(), lr=0.1),
                           num_steps=7, smoothing=0.0, diverge_factor=4.0, skip_start=0,
                           skip_end=0)
    # 8.1 is the first value above 4 * min(5, 3, 2, 7.9, 8) = 8; it is recorded, then the test stops
    np.testing.assert_array_equal(result.losses, [5.0, 3.0, 2.0, 7.9, 8.0, 8.1])
    assert result.stopped_early


def test_non_finite_loss_stops_and_is_not_recorded():
    model = ScriptedLoss([3.0, 2.0, 1.0, math.nan, 0.5])
    result = lr_range_test(model, scripted_loss, [(None, None)],
                           torch.optim.SGD(model.parameters(), lr=0.1), num_steps=5,
                           skip_start=0, skip_end=0)
    np.testing.assert_array_equal(result.losses, [3.0, 2.0, 1.0])
    assert result.stopped_early and len(result.lrs) == 3


def test_suggest_lr_finds_the_steepest_point():
    lrs = np.geomspace(1e-6, 1.0, 61)          # ten points per decade, 1e-3 at index 30
    smoothed = 2.0 - np.tanh(np.log10(lrs / 1e-3)) + np.where(lrs > 0.1, 100 * (lrs - 0.1), 0.0)
    assert suggest_lr(lrs, smoothed) == pytest.approx(1e-3, rel=1e-12)
    # a steeper fall after the minimum (index 50) does not count
    smoothed[57] = 1000.0
    assert np.argmin(np.gradient(smoothed, np.log(lrs))) in (57, 58)
    assert suggest_lr(lrs, smoothed) == pytest.approx(1e-3, rel=1e-12)
    # neither does a fall among the first skip_start points
    smoothed[2] = 50.0
    assert suggest_lr(lrs, smoothed) == pytest.approx(1e-3, rel=1e-12)
    assert suggest_lr(lrs, smoothed, skip_start=0) == pytest.approx(lrs[3], rel=1e-12)
    assert suggest_lr(lrs[:12], smoothed[:12]) is None      # fewer than 3 points after skipping


# --- restoration ----------------------------------------------------------------------

def make_network(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8),
                                torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(8, 1))
    return model.double()


OPTIMIZERS = {
    "sgd_momentum": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-3),
    "adamw_fresh": lambda ps: torch.optim.AdamW(ps, lr=1e-3),
}


def snapshot(model, optimizer):
    return ({k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()},
            {k: None if p.grad is None else p.grad.clone() for k, p in model.named_parameters()},
            [m.training for m in model.modules()],
            copy.deepcopy(optimizer.state_dict()))


def assert_same(a, b):
    """Recursive equality of state dicts: tensors bit for bit (torch.equal)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        assert a == b or (a != a and b != b)


def prepared(name):
    """A network and optimizer mid-training: momentum/Adam state and .grad exist."""
    X, y, _ = least_squares_data()
    model = make_network()
    optimizer = OPTIMIZERS[name](model.parameters())
    if name != "adamw_fresh":
        for _ in range(3):
            optimizer.zero_grad()
            mse(model(X), y).backward()
            optimizer.step()
    model[1].eval()                            # an unusual mode that must survive
    return model, optimizer, X, y


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_model_and_optimizer_are_restored_bit_for_bit(name):
    model, optimizer, X, y = prepared(name)
    twin_model = copy.deepcopy(model)
    twin_optimizer = OPTIMIZERS[name](twin_model.parameters())
    twin_optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    before = snapshot(model, optimizer)
    changed = []

    def loss_fn(output, target):
        changed.append(not torch.equal(model[0].weight, before[0]["0.weight"]))
        return mse(output, target)

    batches = [(X[i:i + 64], y[i:i + 64]) for i in range(0, 256, 64)]
    result = lr_range_test(model, loss_fn, batches, optimizer, start_lr=1e-5, end_lr=10.0,
                           num_steps=40)
    assert any(changed)                        # the test really trained the model
    after = snapshot(model, optimizer)
    assert_same(after[0], before[0])           # parameters and buffers
    assert_same(after[1], before[1])           # gradients
    assert after[2] == before[2]               # training flags
    assert_same(after[3], before[3])           # optimizer state and param_groups (lr, ...)
    assert len(result.lrs) > 0
    # and training continues exactly as if the test had never run
    for m, opt in ((model, optimizer), (twin_model, twin_optimizer)):
        m.eval()
        opt.zero_grad()
        mse(m(X), y).backward()
        opt.step()
    for p, q in zip(model.parameters(), twin_model.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_restored_when_loss_fn_raises(name):
    model, optimizer, X, y = prepared(name)
    before = snapshot(model, optimizer)
    calls = []

    def loss_fn(output, target):
        calls.append(1)
        if len(calls) == 6:
            raise RuntimeError("boom in loss_fn")
        return mse(output, target)

    with pytest.raises(RuntimeError, match="boom in loss_fn"):
        lr_range_test(model, loss_fn, [(X, y)], optimizer, start_lr=1e-3, end_lr=1.0,
                      num_steps=20)
    after = snapshot(model, optimizer)
    assert_same(after[0], before[0])
    assert_same(after[1], before[1])
    assert after[2] == before[2]
    assert_same(after[3], before[3])


# --- bad arguments -----------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    ({"start_lr": 1.0, "end_lr": 1.0}, "start_lr/end_lr"),
    ({"start_lr": 2.0, "end_lr": 1.0}, "start_lr/end_lr"),
    ({"start_lr": 0.0}, "start_lr"),
    ({"start_lr": -1e-3}, "start_lr"),
    ({"end_lr": -1.0}, "end_lr"),
    ({"end_lr": math.inf}, "end_lr"),
    ({"num_steps": 1}, "num_steps"),
    ({"num_steps": 10.0}, "num_steps"),
    ({"mode": "cosine"}, "mode"),
    ({"smoothing": 1.0}, "smoothing"),
    ({"smoothing": -0.1}, "smoothing"),
    ({"diverge_factor": 1.0}, "diverge_factor"),
    ({"skip_start": -1}, "skip_start"),
])
def test_bad_arguments_raise_value_errors(kwargs, match):
    X, y, _ = least_squares_data()
    model = linear_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match=f"Invalid {match}"):
        lr_range_test(model, mse, [(X, y)], optimizer, **kwargs)
    assert_same(model.state_dict(), before)


def test_empty_data_and_wrong_optimizer():
    model = linear_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with pytest.raises(ValueError, match="Invalid data"):
        lr_range_test(model, mse, [], optimizer)
    assert optimizer.param_groups[0]["lr"] == 0.01
    with pytest.raises(TypeError, match="torch.optim.Optimizer"):
        lr_range_test(model, mse, [], object())


# --- fastai's suggestion rules ---------------------------------------------------------

from optbook.lr_range_test import (DEFAULT_RULE, SUGGESTION_RULES, suggest, suggest_minimum,
                                   suggest_steep, suggest_valley)


def test_valley_by_hand():
    # strictly decreasing run 3, 2.5, 2, 1.5, 1, 0.5 (indices 1-6, length 6) ends at 6;
    # fastai: start = 6 - 6 = 0, sections = 2, index = 0 + 2 + int(1.0) = 3
    lrs = np.geomspace(1e-4, 1.0, 10)
    losses = [3, 3, 2.5, 2, 1.5, 1, 0.5, 0.6, 0.9, 2.0]
    assert suggest_valley(lrs, losses) == pytest.approx(lrs[3], rel=1e-15)
    # a monotone fall over all n points: length n ends at n-1, start -1
    n = 31
    lrs = np.geomspace(1e-5, 1.0, n)
    idx = -1 + int(n / 3) + int(n / 3 / 2)
    assert suggest_valley(lrs, np.linspace(2.0, 1.0, n)) == pytest.approx(lrs[idx], rel=1e-15)


def longest_decreasing_end(losses):
    """Independent formulation: L[i] = 1 + max L[j] over j < i with losses[j] > losses[i];
    the first index reaching the largest L, and that L."""
    best = []
    for i, x in enumerate(losses):
        best.append(1 + max([best[j] for j in range(i) if losses[j] > x], default=0))
    length = max(best)
    return best.index(length), length


@pytest.mark.parametrize("seed", range(6))
def test_valley_matches_an_independent_longest_decreasing_subsequence(seed):
    rng = np.random.default_rng(seed)
    losses = np.cumsum(rng.normal(size=40))
    lrs = np.geomspace(1e-6, 1.0, 40)
    end, length = longest_decreasing_end(list(losses))
    start = end - length
    index = start + int((end - start) / 3) + int((end - start) / 3 / 2)
    assert suggest_valley(lrs, losses) == pytest.approx(lrs[index], rel=1e-15)


def test_steep_and_minimum_closed_forms():
    lrs = np.geomspace(1e-6, 1.0, 61)
    losses = 2.0 - np.tanh(np.log10(lrs / 1e-3)) + np.where(lrs > 0.1, 100 * (lrs - 0.1), 0.0)
    # the tanh falls fastest at 1e-3 (index 30); forward differences are symmetric
    # about it on a log grid, so the steepest segment starts at index 29 or 30
    assert suggest_steep(lrs, losses) in (pytest.approx(lrs[29]), pytest.approx(lrs[30]))
    assert suggest_minimum(lrs, losses) == pytest.approx(lrs[np.argmin(losses)] / 10)
    # unlike suggest_lr, fastai's steep also looks beyond the minimum
    spiked = losses.copy()
    spiked[55], spiked[56] = 50.0, -40.0
    assert suggest_steep(lrs, spiked) == pytest.approx(lrs[55])


def test_suggest_trims_like_fastai_and_validates():
    lrs = np.geomspace(1e-6, 1.0, 40)
    losses = np.linspace(3.0, 1.0, 40)
    losses[:4] = [10.0, 0.0, 10.0, 0.0]             # noise at the start, trimmed away
    for rule, function in SUGGESTION_RULES.items():
        assert suggest(lrs, losses, rule, skip_start=4, skip_end=5) == \
            pytest.approx(function(lrs[4:35], losses[4:35]))
    assert suggest(lrs[:10], losses[:10], "valley", skip_start=4, skip_end=5) is None
    with pytest.raises(ValueError, match="Invalid rule"):
        suggest(lrs, losses, "cosine")
    with pytest.raises(ValueError, match="Invalid skip_end"):
        suggest(lrs, losses, "valley", skip_end=-1)
    with pytest.raises(ValueError, match="Invalid lrs/losses"):
        suggest_valley([1e-3], [1.0])


@pytest.mark.parametrize("rule", sorted(SUGGESTION_RULES))
def test_range_test_reports_every_rule(rule):
    X, y, L = least_squares_data()
    model = linear_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    result = lr_range_test(model, mse, [(X, y)], optimizer, start_lr=1e-4, end_lr=10.0,
                           num_steps=100, rule=rule)
    assert set(result.suggestions) == set(SUGGESTION_RULES) and result.rule == rule
    assert result.suggested_lr == result.suggestions[rule]
    assert result.suggestions[rule] == pytest.approx(
        suggest(result.lrs, result.smoothed, rule, 10, 5))
    # every rule stays below the stability limit of gradient descent
    assert all(s < 2.0 / L for s in result.suggestions.values())


def test_default_rule_and_bad_rule():
    assert DEFAULT_RULE in SUGGESTION_RULES
    X, y, _ = least_squares_data()
    model = linear_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    result = lr_range_test(model, mse, [(X, y)], optimizer, start_lr=1e-4, end_lr=10.0)
    assert result.rule == DEFAULT_RULE
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match="Invalid rule"):
        lr_range_test(model, mse, [(X, y)], optimizer, rule="slide")
    with pytest.raises(ValueError, match="Invalid skip_end"):
        lr_range_test(model, mse, [(X, y)], optimizer, skip_end=-2)
    assert_same(model.state_dict(), before)


# --- fastai's published valley rule as the oracle; short curves -----------------------

import inspect
import json
import pathlib
import re


def fastai_valley(lrs, losses):
    """fastai/callback/schedule.py ``valley`` (v2.4+), restated: the longest strictly
    decreasing subsequence by the same O(n^2) programme, its end e (the first index
    reaching the largest length L) and start s = e - L (s = e = 0 while no point is below
    an earlier one); with m = e - s, the rate at s + int(m/3) + int(m/3/2), indexed as
    fastai indexes its tensor of rates (so -1 is the last rate)."""
    n = len(losses)
    length = [1] * n
    start = end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j]:
                length[i] = max(length[i], length[j] + 1)
        if length[i] > length[end]:
            start, end = i - length[i], i
    m = end - start
    return float(list(lrs)[start + int(m / 3) + int(m / 3 / 2)])


def fastai_steep(lrs, losses):
    slopes = [(losses[i + 1] - losses[i]) / (math.log(lrs[i + 1]) - math.log(lrs[i]))
              for i in range(len(lrs) - 1)]
    return float(lrs[slopes.index(min(slopes))])


def fastai_minimum(lrs, losses):
    return float(lrs[list(losses).index(min(losses))]) / 10


FASTAI = {"valley": fastai_valley, "steep": fastai_steep, "minimum": fastai_minimum}

SHORT_CURVES = {
    "two decreasing": [2.0, 1.0],
    "two rising": [1.0, 2.0],
    "fall then rise": [2.0, 1.0, 3.0],
    "fall once then rise": [5.0, 1.0, 2.0, 3.0, 4.0, 6.0],
    "rise then fall": [1.0, 3.0, 2.0],
    "flat": [1.0, 1.0, 1.0],
    "three decreasing": [3.0, 2.0, 1.0],
}


@pytest.mark.parametrize("losses", SHORT_CURVES.values(), ids=SHORT_CURVES.keys())
def test_valley_matches_fastai_on_short_curves(losses):
    lrs = np.geomspace(1e-4, 1e-1, len(losses))
    assert suggest_valley(lrs, losses) == fastai_valley(lrs, losses)


def test_valley_of_two_decreasing_points_is_the_last_rate_as_in_fastai():
    # documented in suggest_valley: fastai's index is -1 here
    lrs = [1e-3, 1e-2]
    assert suggest_valley(lrs, [2.0, 1.0]) == 1e-2
    # and through suggest, with three points: a fall, then a rise
    assert suggest([1e-3, 1e-2, 1e-1], [2.0, 1.0, 3.0], "valley", 0, 0) == 1e-1


@pytest.mark.parametrize("seed", range(8))
def test_every_rule_matches_fastai_on_random_curves(seed):
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(2, 30))
    lrs = np.geomspace(1e-6, 1.0, n)
    losses = np.cumsum(rng.normal(size=n))
    for rule, oracle in FASTAI.items():
        assert SUGGESTION_RULES[rule](lrs, losses) == pytest.approx(oracle(lrs, losses), rel=1e-15)


@pytest.mark.parametrize("rule", sorted(FASTAI))
def test_suggest_at_the_minimum_length(rule):
    """Three points left after trimming: the rule applied to them; two: None."""
    lrs = np.geomspace(1e-5, 1.0, 9)
    losses = np.array([9.0, 0.1, 4.0, 3.9, 3.0, 3.5, 0.0, 9.0, 9.0])
    kept = slice(3, 6)                                 # skip 3 at the start, 3 at the end
    value = suggest(lrs, losses, rule, skip_start=3, skip_end=3)
    assert value == pytest.approx(FASTAI[rule](lrs[kept], losses[kept]), rel=1e-15)
    assert suggest(lrs, losses, rule, skip_start=4, skip_end=3) is None
    assert suggest(lrs, losses, rule, skip_start=3, skip_end=4) is None
    # fastai's default trimming (10 and 5): 18 points is the shortest curve with an answer
    long_lrs = np.geomspace(1e-5, 1.0, 18)
    long_losses = np.r_[np.full(10, 5.0), [3.9, 4.0, 3.0], np.full(5, 9.0)]
    assert suggest(long_lrs, long_losses, rule) == pytest.approx(
        FASTAI[rule](long_lrs[10:13], long_losses[10:13]), rel=1e-15)
    assert suggest(long_lrs[1:], long_losses[1:], rule) is None


def test_the_three_rules_differ_on_the_curves_above():
    # so that the tests of the default rule below can tell the rules apart
    lrs = np.geomspace(1e-5, 1.0, 9)
    losses = np.array([9.0, 0.1, 4.0, 3.9, 3.0, 3.5, 0.0, 9.0, 9.0])
    picks = {rule: FASTAI[rule](lrs[3:6], losses[3:6]) for rule in FASTAI}
    assert len(set(picks.values())) == 3, picks


def _chapter_default_rule():
    """The rule chapter 7's evidence chose, as the chapter states it."""
    notebook = pathlib.Path(__file__).parent.parent / "book" / "07-optimizer-and-lr.ipynb"
    text = "\n".join("".join(cell["source"]) for cell in json.loads(notebook.read_text())["cells"]
                     if cell["cell_type"] == "markdown")
    stated = set(re.findall(r'DEFAULT_RULE = "(\w+)"', text))
    assert len(stated) == 1, f"chapter 7 states DEFAULT_RULE as {stated or 'nothing'}"
    # ... and says why it is the default: fastai's rule, kept for agreement with fastai
    (rule,) = stated
    assert re.search(rf"keeps fastai's {rule} as its default suggestion, for agreement with "
                     "fastai rather than because it wins", " ".join(text.split()))
    return rule


def test_default_rule_is_the_one_chapter_7_chose():
    rule = _chapter_default_rule()
    assert rule == "valley"                        # fastai's default since v2.4 too
    assert DEFAULT_RULE == rule and SUGGESTION_RULES[DEFAULT_RULE] is suggest_valley
    # every default that names a rule is that one, and the rule is applied:
    # on a curve where the three rules differ, the default answer is fastai's valley
    lrs = np.geomspace(1e-5, 1.0, 9)
    losses = np.array([9.0, 0.1, 4.0, 3.9, 3.0, 3.5, 0.0, 9.0, 9.0])
    assert suggest(lrs, losses, skip_start=3, skip_end=3) == \
        pytest.approx(fastai_valley(lrs[3:6], losses[3:6]), rel=1e-15)
    assert inspect.signature(suggest).parameters["rule"].default == rule
    assert inspect.signature(lr_range_test).parameters["rule"].default == rule
    assert LRRangeTestResult(np.zeros(0), np.zeros(0), np.zeros(0), None, None, False).rule == rule


def test_range_test_reports_the_default_rule_by_default():
    X, y, _ = least_squares_data()
    model = linear_model()
    result = lr_range_test(model, mse, [(X, y)], torch.optim.SGD(model.parameters(), lr=0.01),
                           start_lr=1e-4, end_lr=10.0, num_steps=60)
    assert result.rule == _chapter_default_rule()
    assert result.suggested_lr == fastai_valley(result.lrs[10:-5], result.smoothed[10:-5])


def test_range_test_trims_as_told():
    """``skip_start`` / ``skip_end`` given to lr_range_test reach every rule."""
    X, y, _ = least_squares_data()
    model = linear_model()
    result = lr_range_test(model, mse, [(X, y)], torch.optim.SGD(model.parameters(), lr=0.01),
                           start_lr=1e-4, end_lr=10.0, num_steps=60, skip_start=2, skip_end=1)
    kept = slice(2, len(result.lrs) - 1)
    for rule, oracle in FASTAI.items():
        assert result.suggestions[rule] == pytest.approx(
            oracle(result.lrs[kept], result.smoothed[kept]), rel=1e-15)
    # (the guard: fastai's own trimming, 10 and 5, would give another valley here)
    assert result.suggestions["valley"] != fastai_valley(result.lrs[10:-5], result.smoothed[10:-5])
    assert result.suggested_lr == result.suggestions[DEFAULT_RULE]


def test_min_loss_lr_is_the_rate_at_the_lowest_smoothed_loss():
    # a scripted curve whose raw minimum (a single low minibatch, index 3) is not the
    # minimum of the smoothed curve
    script = [5.0, 4.0, 3.5, 0.5, 3.0, 2.0, 1.8, 1.7, 1.75, 2.5]
    model = ScriptedLoss(script)
    result = lr_range_test(model, scripted_loss, [(None, None)],
                           torch.optim.SGD(model.parameters(), lr=0.1), num_steps=10,
                           smoothing=0.5, diverge_factor=100.0, skip_start=0, skip_end=0)
    assert int(np.argmin(result.losses)) == 3 and int(np.argmin(result.smoothed)) != 3
    assert result.min_loss_lr == result.lrs[int(np.argmin(result.smoothed))]


# --- clear messages instead of a silent None (issue 19) ---------------------------------

def test_negative_loss_is_refused_with_its_step():
    model = ScriptedLoss([3.0, 2.0, -0.5, 1.0] + [1.0] * 20)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"Invalid loss: -0.5 at step 2 .*needs losses >= 0: "
                                         r"add a constant to loss_fn"):
        lr_range_test(model, scripted_loss, [(None, None)], optimizer, num_steps=20)
    assert optimizer.param_groups[0]["lr"] == 0.1 and torch.equal(model.w, torch.zeros(1).double())


@pytest.mark.parametrize("num_steps, skips, remain", [(17, (10, 5), 2), (2, (10, 5), 0),
                                                      (9, (4, 3), 2)])
def test_too_few_steps_for_the_rules_are_refused(num_steps, skips, remain):
    X, y, _ = least_squares_data()
    model = linear_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    need = skips[0] + skips[1] + 3
    with pytest.raises(ValueError, match=rf"Invalid num_steps: {num_steps} \(after dropping the first "
                                         rf"skip_start={skips[0]} and the last skip_end={skips[1]} "
                                         rf"points only {remain} remain, and the rules need 3: use "
                                         rf"num_steps >= {need} or smaller skips\)"):
        lr_range_test(model, mse, [(X, y)], optimizer, num_steps=num_steps,
                      skip_start=skips[0], skip_end=skips[1])
    # one more step than the limit works and suggests a rate
    result = lr_range_test(model, mse, [(X, y)], optimizer, start_lr=1e-4, end_lr=1e-2,
                           num_steps=need, skip_start=skips[0], skip_end=skips[1])
    assert result.suggested_lr is not None


def test_a_one_shot_iterator_that_runs_out_says_so():
    X, y, _ = least_squares_data()
    model = linear_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    one_shot = ((X[i:i + 32], y[i:i + 32]) for i in range(0, 256, 32))      # 8 batches, once
    with pytest.raises(ValueError, match=r"Invalid data: it ran out after 8 batches and yields "
                                         r"nothing when iterated again, but num_steps=30 needs 30 "
                                         r"\(a one-shot iterator or generator\?\)"):
        lr_range_test(model, mse, one_shot, optimizer, num_steps=30)
    assert optimizer.param_groups[0]["lr"] == 0.01
    # an iterator already used up: no batch at all
    with pytest.raises(ValueError, match=r"Invalid data: it yielded no batches \(an empty or "
                                         r"already exhausted iterator\?"):
        lr_range_test(model, mse, one_shot, optimizer, num_steps=30)
    # enough batches in one pass: fine
    enough = ((X[:32], y[:32]) for _ in range(30))
    assert len(lr_range_test(model, mse, enough, optimizer, start_lr=1e-4, end_lr=1e-2,
                             num_steps=30).lrs) == 30


def test_an_early_stop_that_leaves_no_suggestion_warns():
    # the loss is finite for 12 steps, then NaN: 12 - 10 - 5 < 3 points remain
    model = ScriptedLoss([1.0] * 12 + [math.nan] * 20)
    with pytest.warns(UserWarning, match=r"stopped after 12 of 30 steps .*fewer than 3 remain, so "
                                         r"no rule suggests a rate \(suggestions are None\)"):
        result = lr_range_test(model, scripted_loss, [(None, None)],
                               torch.optim.SGD(model.parameters(), lr=0.1), num_steps=30)
    assert result.suggested_lr is None and result.stopped_early and len(result.lrs) == 12


@pytest.mark.parametrize("function", ["suggest", "suggest_lr", "steep", "minimum", "valley"])
def test_swapped_or_descending_curves_are_refused(function):
    lrs = np.geomspace(1e-5, 1.0, 30)
    losses = 2.0 - np.tanh(np.log10(lrs / 1e-3)) + np.where(lrs > 0.1, 10 * lrs, 0.0)
    call = {"suggest": lambda a, b: suggest(a, b, skip_start=0, skip_end=0),
            "suggest_lr": lambda a, b: suggest_lr(a, b, skip_start=0),
            **{rule: SUGGESTION_RULES[rule] for rule in ("steep", "minimum", "valley")}}[function]
    assert call(lrs, losses) is not None                       # the right way round: an answer
    with pytest.raises(ValueError, match=r"Invalid lrs: .*strictly increasing.*swapped"):
        call(losses, lrs)                                       # (losses, lrs): not increasing
    with pytest.raises(ValueError, match=r"Invalid lrs: .*strictly increasing.*reversed"):
        call(lrs[::-1], losses[::-1])                           # a descending sweep
    with pytest.raises(ValueError, match=r"Invalid lrs: .*finite and > 0.*swapped"):
        call(losses - 2.0, lrs)                                 # negative 'rates'
    with pytest.raises(ValueError, match=r"Invalid (losses|smoothed): .*must be finite"):
        call(lrs, np.where(lrs > 0.5, np.nan, losses))
