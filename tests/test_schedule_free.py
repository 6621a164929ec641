"""Schedule-free SGD / AdamW against the authors' package and their update rule.

Oracle 1: ``schedulefree`` (facebookresearch/schedule_free, PyPI 1.4.1),
``SGDScheduleFree`` and ``AdamWScheduleFree``, run side by side with
``optbook.torch`` in float64 on the same gradients; the iterates y (train
mode) and x (eval mode) must agree to 1e-10.
Oracle 2: the paper's three-line recursion (Defazio et al. 2024, Alg. 1),
written out here on NumPy arrays, against the functional transformation.
"""
import inspect
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


def run_pair(theirs_cls, ours_cls, kwargs, steps=40, evals=(13, 29), lr_at=None):
    """Both optimizers on the same gradients; ``lr_at(t)``, if given, is written into
    ``group["lr"]`` of both before step t (as a reader's own schedule would)."""
    g = torch.Generator().manual_seed(0)
    shapes = [(4, 3), (5,)]
    start = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
    a = [torch.nn.Parameter(s.clone()) for s in start]
    b = [torch.nn.Parameter(s.clone()) for s in start]
    theirs, ours = theirs_cls(a, **kwargs), ours_cls(b, **kwargs)
    theirs.train(); ours.train()
    worst = 0.0
    for t in range(steps):
        if lr_at is not None:
            for opt in (theirs, ours):
                for group in opt.param_groups:
                    group["lr"] = lr_at(t)
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
@pytest.mark.parametrize("momentum", [0.9, 0.5])
def test_sgd_matches_authors_package(kwargs, momentum):
    schedulefree = pytest.importorskip("schedulefree")
    worst, moved = run_pair(lambda p, **k: schedulefree.SGDScheduleFree(p, foreach=False, **k),
                            SGDScheduleFree, dict(kwargs, momentum=momentum))
    assert moved > 0.1  # the run went somewhere
    assert worst <= 1e-10


@pytest.mark.parametrize("kwargs", SETTINGS)
@pytest.mark.parametrize("betas, eps", [((0.9, 0.999), 1e-8), ((0.5, 0.95), 1e-3)])
def test_adamw_matches_authors_package(kwargs, betas, eps):
    schedulefree = pytest.importorskip("schedulefree")
    kwargs = dict(kwargs, lr=kwargs["lr"] / 10, betas=betas, eps=eps)
    worst, moved = run_pair(lambda p, **k: schedulefree.AdamWScheduleFree(p, foreach=False, **k),
                            AdamWScheduleFree, kwargs)
    assert moved > 0.1
    assert worst <= 1e-10


# --- the running maximum of the rate (lr_max) ----------------------------------------
# The average's weight is w_t = t^r * max_{i<=t}(gamma_i)^weight_lr_power: once the rate
# has been large, lowering it does not lower the weights. Every test above keeps the rate
# constant after warmup, where the maximum is the current rate; these lower it.

def _lowered(lr, at=15, factor=0.1):
    """lr until step ``at``, then ``factor`` * lr; back up to half of lr from 2 * at."""
    return lambda t: lr if t < at else (lr * factor if t < 2 * at else lr / 2)


@pytest.mark.parametrize("kwargs", [dict(lr=0.2), dict(lr=0.2, warmup_steps=10),
                                    dict(lr=0.1, r=1.0, weight_lr_power=1.0)],
                         ids=["constant", "warmup", "r1-power1"])
@pytest.mark.parametrize("kind", ["sgd", "adamw"])
def test_lowering_the_rate_mid_run_matches_authors_package(kind, kwargs):
    schedulefree = pytest.importorskip("schedulefree")
    if kind == "sgd":
        theirs = lambda p, **k: schedulefree.SGDScheduleFree(p, foreach=False, **k)
        ours, extra = SGDScheduleFree, dict(momentum=0.9)
    else:
        theirs = lambda p, **k: schedulefree.AdamWScheduleFree(p, foreach=False, **k)
        ours, extra = AdamWScheduleFree, dict(betas=(0.9, 0.999))
        kwargs = dict(kwargs, lr=kwargs["lr"] / 10)
    worst, moved = run_pair(theirs, ours, dict(kwargs, **extra), steps=45,
                            lr_at=_lowered(kwargs["lr"]))
    assert moved > 0.1
    assert worst <= 1e-10


def test_lowered_rate_keeps_the_largest_rate_in_the_weights():
    """Closed form: r = 0 and the rate lowered after 5 steps of 0.2 -- every weight is
    max(gamma)^2 = 0.04, so x stays the uniform average of z (c_t = 1/t), and the state
    remembers 0.2."""
    y0 = np.array([1.0, -2.0])
    opt_state, zs, y = None, [], y0.copy()
    for t in range(12):
        opt = schedule_free_sgd(0.2 if t < 5 else 0.02, 0.5)
        opt_state = opt.init(y) if opt_state is None else opt_state
        updates, opt_state = opt.update(np.array([2.0, 1.0]) * y, opt_state, y)
        y = y + updates
        zs.append(opt_state["z"].copy())
    assert opt_state["lr_max"] == 0.2
    assert opt_state["weight_sum"] == pytest.approx(12 * 0.2 ** 2, rel=1e-14)
    np.testing.assert_allclose(opt_state["x"], np.mean(zs, axis=0), rtol=1e-12)


# --- defaults: the authors' classes are the oracle -------------------------------------

def _package_signature(cls):
    return {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
            if name not in ("self", "params", "foreach")}


@pytest.mark.parametrize("name", ["SGDScheduleFree", "AdamWScheduleFree"])
def test_torch_classes_defaults_equal_authors_package(name):
    schedulefree = pytest.importorskip("schedulefree")
    theirs_cls, ours_cls = getattr(schedulefree, name), getattr(optbook.torch, name)
    ours = {n: p.default for n, p in inspect.signature(ours_cls.__init__).parameters.items()
            if n not in ("self", "params")}
    assert ours == _package_signature(theirs_cls)
    # and what the constructors store in the groups
    p = [torch.nn.Parameter(torch.zeros(2))]
    theirs_defaults, ours_defaults = theirs_cls(p).defaults, ours_cls(p).defaults
    shared = set(ours_defaults) & set(theirs_defaults)
    assert shared >= set(ours) | {"train_mode"}
    assert {k: ours_defaults[k] for k in shared} == {k: theirs_defaults[k] for k in shared}


@pytest.mark.parametrize("ours, name, renamed", [
    (schedule_free_sgd, "SGDScheduleFree", {"learning_rate": "lr"}),
    (schedule_free_adamw, "AdamWScheduleFree", {"learning_rate": "lr"}),
])
def test_functional_defaults_equal_authors_package(ours, name, renamed):
    schedulefree = pytest.importorskip("schedulefree")
    theirs = _package_signature(getattr(schedulefree, name))
    if "betas" in theirs:
        theirs["b1"], theirs["b2"] = theirs.pop("betas")
    mine = {renamed.get(n, n): p.default for n, p in inspect.signature(ours).parameters.items()}
    assert mine == theirs


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


def test_schedule_free_train_before_the_first_step_adds_no_state():
    """torch.distributed.checkpoint's get_state_dict builds a fresh optimizer's state by a
    step with lr = 0 only if ``optimizer.state`` is empty: train() must not fill it."""
    opt = AdamWScheduleFree([torch.nn.Parameter(torch.zeros(3))])
    opt.train()
    opt.eval()
    assert len(opt.state) == 0
