"""Schedule-free SGD / AdamW against the authors' package and their update rule.

Oracle 1: ``schedulefree`` (facebookresearch/schedule_free, PyPI 1.4.1),
``SGDScheduleFree`` and ``AdamWScheduleFree``, run side by side with
``optbook.torch`` in float64 on the same gradients; the iterates y (train
mode) and x (eval mode) must agree to 1e-10.
Oracle 2: the paper's three-line recursion (Defazio et al. 2024, Alg. 1),
written out here on NumPy arrays, against the functional transformation.
"""
import math
import re

import numpy as np
import pytest
import torch

import optbook
from optbook.schedule_free import (eval_params, schedule_free, schedule_free_adamw,
                                   schedule_free_sgd)
from optbook.torch.schedule_free import AdamWScheduleFree, SGDScheduleFree

torch.set_num_threads(1)

SETTINGS = [
    dict(lr=0.1),
    dict(lr=0.05, weight_decay=0.01),
    dict(lr=0.2, warmup_steps=10),
    dict(lr=0.1, warmup_steps=7, weight_decay=0.05, r=1.0, weight_lr_power=1.0),
]


def gradient(p, t):
    """A deterministic, non-convex-ish gradient field (differs per coordinate and step)."""
    return torch.sin(3.0 * p) + 0.5 * p ** 3 / (1 + p ** 2) + 0.1 * math.cos(t)


def run_pair(theirs_cls, ours_cls, kwargs, steps=40, evals=(13, 29)):
    g = torch.Generator().manual_seed(0)
    shapes = [(4, 3), (5,)]
    start = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
    a = [torch.nn.Parameter(s.clone()) for s in start]
    b = [torch.nn.Parameter(s.clone()) for s in start]
    theirs, ours = theirs_cls(a, **kwargs), ours_cls(b, **kwargs)
    theirs.train(); ours.train()
    worst = 0.0
    for t in range(steps):
        for pa, pb in zip(a, b):
            pa.grad = gradient(pa.detach(), t).clone()
            pb.grad = gradient(pb.detach(), t).clone()
        theirs.step(); ours.step()
        worst = max(worst, max((pa - pb).abs().max().item() for pa, pb in zip(a, b)))
        if t in evals:  # switch to x and back, as an evaluation in training would
            theirs.eval(); ours.eval()
            worst = max(worst, max((pa - pb).abs().max().item() for pa, pb in zip(a, b)))
            theirs.train(); ours.train()
    theirs.eval(); ours.eval()
    worst = max(worst, max((pa - pb).abs().max().item() for pa, pb in zip(a, b)))
    moved = max((pa - s).abs().max().item() for pa, s in zip(a, start))
    return worst, moved


@pytest.mark.parametrize("kwargs", SETTINGS)
def test_sgd_matches_authors_package(kwargs):
    schedulefree = pytest.importorskip("schedulefree")
    worst, moved = run_pair(lambda p, **k: schedulefree.SGDScheduleFree(p, foreach=False, **k),
                            SGDScheduleFree, dict(kwargs, momentum=0.9))
    assert moved > 0.1  # the run went somewhere
    assert worst <= 1e-10


@pytest.mark.parametrize("kwargs", SETTINGS)
@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.95)])
def test_adamw_matches_authors_package(kwargs, betas):
    schedulefree = pytest.importorskip("schedulefree")
    kwargs = dict(kwargs, lr=kwargs["lr"] / 10, betas=betas)
    worst, moved = run_pair(lambda p, **k: schedulefree.AdamWScheduleFree(p, foreach=False, **k),
                            AdamWScheduleFree, kwargs)
    assert moved > 0.1
    assert worst <= 1e-10


def paper_reference(grad_fn, y0, lr, beta, steps, warmup=0, wd=0.0, adam_b2=None, eps=1e-8):
    """Defazio et al. (2024), Algorithm 1, with the package's warmup and lr^2 weighting."""
    x, z, v = y0.copy(), y0.copy(), np.zeros_like(y0)
    weight_sum, ys = 0.0, []
    for t in range(1, steps + 1):
        y = (1 - beta) * z + beta * x
        g = grad_fn(y)
        gamma = lr * min(1.0, t / warmup) if warmup else lr
        if adam_b2 is not None:
            v = adam_b2 * v + (1 - adam_b2) * g * g
            g = g / (np.sqrt(v / (1 - adam_b2 ** t)) + eps)
        z = z - gamma * (g + wd * y)
        weight_sum += max(lr * min(1.0, s / warmup) if warmup else lr for s in range(1, t + 1)) ** 2
        c = (gamma if not warmup else lr * min(1.0, t / warmup)) ** 2 / weight_sum
        x = (1 - c) * x + c * z
        ys.append(y)
    return x, ys


@pytest.mark.parametrize("adam", [False, True])
@pytest.mark.parametrize("warmup, wd", [(0, 0.0), (5, 0.1)])
def test_functional_matches_paper_algorithm(adam, warmup, wd):
    a = np.diag([1.0, 4.0, 9.0])
    grad_fn = lambda y: a @ y - 1.0
    y0 = np.array([2.0, -1.0, 0.5])
    lr, beta, steps = (0.05, 0.9, 50)
    x_ref, ys_ref = paper_reference(grad_fn, y0, lr, beta, steps, warmup, wd,
                                    adam_b2=0.99 if adam else None)
    opt = (schedule_free_adamw(lr, 0.9, 0.99, 1e-8, wd, warmup) if adam
           else schedule_free_sgd(lr, beta, wd, warmup))
    y, state = y0.copy(), opt.init(y0)
    for t in range(steps):
        np.testing.assert_allclose(y, ys_ref[t], rtol=1e-12, atol=1e-12)
        updates, state = opt.update(grad_fn(y), state, y)
        y = optbook.apply_updates(y, updates)
    np.testing.assert_allclose(eval_params(state), x_ref, rtol=1e-12, atol=1e-12)


def test_constant_rate_x_is_the_uniform_average_of_z():
    # r = 0 and a constant rate: c_{t+1} = 1/(t+1), so x_T = mean(z_1..z_T) ... with x_1 = z_1
    opt = schedule_free_sgd(0.1, 0.5)
    y, state, zs = np.array([1.0, -2.0]), None, []
    state = opt.init(y)
    for _ in range(30):
        updates, state = opt.update(np.array([2.0, 1.0]) * y, state, y)
        y = y + updates
        zs.append(state["z"].copy())
    np.testing.assert_allclose(state["x"], np.mean(zs, axis=0), rtol=1e-12)


def test_step_in_eval_mode_raises_and_train_eval_round_trip():
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
    opt = SGDScheduleFree([p], lr=0.1)
    with pytest.raises(RuntimeError, match="eval mode"):
        p.grad = torch.ones_like(p)
        opt.step()
    opt.train()
    for _ in range(5):
        p.grad = p.detach().clone()
        opt.step()
    y = p.detach().clone()
    opt.eval()
    x = p.detach().clone()
    assert not torch.equal(x, y)
    opt.train()
    torch.testing.assert_close(p.detach(), y, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("make, name", [
    (lambda: schedule_free_sgd(-0.1), "learning rate"),
    (lambda: schedule_free_sgd(0.1, momentum=1.0), "beta"),
    (lambda: schedule_free_sgd(0.1, momentum=0.0), "beta"),
    (lambda: schedule_free_sgd(0.1, warmup_steps=-1), "warmup_steps"),
    (lambda: schedule_free_sgd(0.1, warmup_steps=2.5), "warmup_steps"),
    (lambda: schedule_free_sgd(0.1, weight_decay=-1.0), "weight_decay value"),
    (lambda: schedule_free_adamw(0.1, b2=1.0), "beta parameter at index 1"),
    (lambda: schedule_free("sgd", 0.1), "direction"),
    (lambda: SGDScheduleFree([torch.nn.Parameter(torch.zeros(1))], lr=-1.0), "learning rate"),
    (lambda: AdamWScheduleFree([torch.nn.Parameter(torch.zeros(1))], betas=(0.9,)), "betas"),
])
def test_invalid_arguments_raise_naming_them(make, name):
    with pytest.raises(ValueError, match=rf"Invalid {re.escape(name)}:"):
        make()


def test_update_without_params_raises():
    opt = schedule_free_sgd(0.1)
    state = opt.init(np.zeros(2))
    with pytest.raises(ValueError, match="Invalid params"):
        opt.update(np.ones(2), state)
