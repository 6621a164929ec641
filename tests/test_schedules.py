"""Schedules against torch.optim.lr_scheduler and the article's closed forms (section 6)."""
import io
import math
import re

import numpy as np
import pytest
import torch

from optbook.base import scale_by_learning_rate
from optbook.schedules import (as_lambda_lr, constant, cosine_annealing, cosine_restarts,
                               inverse_sqrt, join_schedules, linear_decay, linear_warmup,
                               one_cycle, step_decay, warmup_cosine, warmup_stable_decay)

torch.set_num_threads(1)
lr_scheduler = torch.optim.lr_scheduler


def torch_lrs(make_scheduler, base_lr, n_steps):
    """The lr each of ``n_steps`` real SGD steps uses under a torch scheduler."""
    param = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    optimizer = torch.optim.SGD([param], lr=base_lr)
    scheduler = make_scheduler(optimizer)
    lrs = []
    for _ in range(n_steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        param.grad = torch.ones_like(param)
        optimizer.step()
        scheduler.step()
    return np.array(lrs)


def ours(schedule, n_steps):
    return np.array([schedule(t) for t in range(n_steps)])


# --- torch oracles -----------------------------------------------------------------

@pytest.mark.parametrize("init, gamma, step_size", [(0.1, 0.5, 7), (1.0, 0.9, 1), (0.3, 1.0, 5)])
def test_step_decay_matches_steplr(init, gamma, step_size):
    n = 6 * step_size + 3
    expected = torch_lrs(lambda opt: lr_scheduler.StepLR(opt, step_size, gamma), init, n)
    np.testing.assert_allclose(ours(step_decay(init, gamma, step_size), n), expected,
                               rtol=1e-12, atol=0)
    # and the article's eta_0 * gamma^floor(t/T)
    np.testing.assert_allclose(ours(step_decay(init, gamma, step_size), n),
                               [init * gamma ** (t // step_size) for t in range(n)], rtol=1e-14)


@pytest.mark.parametrize("peak, total, eta_min", [(0.1, 100, 0.0), (0.1, 7, 0.01), (2.0, 1, 0.5)])
def test_cosine_annealing_matches_torch_and_closed_form(peak, total, eta_min):
    n = 2 * total + 1
    torch_values = torch_lrs(
        lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=eta_min), peak, n)
    # torch updates recursively; over two periods it tracks the closed form,
    # which past T climbs back up (a cosine with period 2T)
    closed = np.array([eta_min + 0.5 * (peak - eta_min) * (1 + math.cos(math.pi * t / total))
                       for t in range(n)])
    np.testing.assert_allclose(torch_values, closed, rtol=0, atol=1e-12)
    schedule = cosine_annealing(peak, total, eta_min)
    np.testing.assert_allclose(ours(schedule, total + 1), torch_values[:total + 1],
                               rtol=0, atol=1e-12)
    # ours is held at eta_min after T instead of restarting
    assert ours(schedule, n)[total:].tolist() == [eta_min] * (n - total)


@pytest.mark.parametrize("peak, total, end", [(0.1, 10, 0.0), (0.5, 33, 0.05), (1.0, 1, 0.25)])
def test_linear_decay_matches_linearlr(peak, total, end):
    n = 2 * total + 2
    expected = torch_lrs(lambda opt: lr_scheduler.LinearLR(
        opt, start_factor=1.0, end_factor=end / peak, total_iters=total), peak, n)
    np.testing.assert_allclose(ours(linear_decay(peak, total, end), n), expected,
                               rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("peak, total", [(0.1, 10), (3e-4, 57)])
def test_linear_decay_matches_polynomiallr_and_article(peak, total):
    n = 2 * total
    expected = torch_lrs(lambda opt: lr_scheduler.PolynomialLR(opt, total_iters=total, power=1.0),
                         peak, n)
    schedule = linear_decay(peak, total)
    np.testing.assert_allclose(ours(schedule, n), expected, rtol=1e-12, atol=1e-18)
    article = [peak * (1 - t / total) for t in range(total + 1)]  # eta_max (1 - t/T)
    np.testing.assert_allclose(ours(schedule, total + 1), article, rtol=1e-14, atol=1e-18)


@pytest.mark.parametrize("peak, warmup", [(0.1, 10), (1e-3, 2), (2.0, 37)])
def test_linear_warmup_article_formula_and_linearlr(peak, warmup):
    schedule = linear_warmup(peak, warmup)
    n = 3 * warmup
    article = [peak * t / warmup if t <= warmup else peak for t in range(n)]
    np.testing.assert_allclose(ours(schedule, n), article, rtol=1e-14, atol=0)
    assert schedule(0) == 0.0 and schedule(warmup) == peak
    # LinearLR cannot start at 0 (start_factor > 0); the usual torch warmup
    # LinearLR(1/T, total_iters=T-1) is ours one step ahead.
    torch_values = torch_lrs(lambda opt: lr_scheduler.LinearLR(
        opt, start_factor=1 / warmup, end_factor=1.0, total_iters=warmup - 1), peak, n)
    np.testing.assert_allclose([schedule(t + 1) for t in range(n)], torch_values,
                               rtol=1e-12, atol=0)


def test_linear_warmup_of_zero_steps_is_constant():
    assert ours(linear_warmup(0.2, 0), 5).tolist() == [0.2] * 5


@pytest.mark.parametrize("peak, warmup, total, eta_min",
                         [(1e-3, 20, 100, None), (0.1, 5, 12, 0.0), (0.5, 1, 40, 0.2)])
def test_warmup_cosine_closed_form_and_sequentiallr(peak, warmup, total, eta_min):
    schedule = warmup_cosine(peak, warmup, total, eta_min)
    floor = 0.1 * peak if eta_min is None else eta_min  # article 6.4: eta_min = 0.1 eta_max
    n = total + 10

    def article(t):
        if t <= warmup:
            return peak * t / warmup
        if t <= total:
            return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * (t - warmup)
                                                                  / (total - warmup)))
        return floor

    np.testing.assert_allclose(ours(schedule, n), [article(t) for t in range(n)],
                               rtol=1e-13, atol=1e-18)
    assert schedule(0) == 0.0 and schedule(warmup) == peak and schedule(total) == floor

    # torch: SequentialLR(LinearLR warmup, CosineAnnealingLR). Its warmup cannot
    # start at 0, so it is ours shifted by one step; from the milestone on the
    # two agree exactly.
    def make(opt):
        warm = lr_scheduler.LinearLR(opt, start_factor=1 / warmup, end_factor=1.0,
                                     total_iters=max(warmup - 1, 1))
        decay = lr_scheduler.CosineAnnealingLR(opt, T_max=total - warmup, eta_min=floor)
        return lr_scheduler.SequentialLR(opt, [warm, decay], milestones=[warmup])

    torch_values = torch_lrs(make, peak, total + 1)
    np.testing.assert_allclose(ours(schedule, total + 1)[warmup:], torch_values[warmup:],
                               rtol=0, atol=1e-12 * peak)
    if warmup > 1:
        np.testing.assert_allclose([schedule(t + 1) for t in range(warmup)],
                                   torch_values[:warmup], rtol=1e-12)


def test_warmup_cosine_without_warmup_is_cosine_annealing():
    np.testing.assert_allclose(ours(warmup_cosine(0.3, 0, 50, 0.01), 60),
                               ours(cosine_annealing(0.3, 50, 0.01), 60), rtol=0, atol=1e-16)


def test_join_schedules_matches_sequentiallr():
    peak = 0.2

    def make(opt):
        return lr_scheduler.SequentialLR(opt, [
            lr_scheduler.StepLR(opt, step_size=4, gamma=0.5),
            lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=0.01),
            lr_scheduler.LinearLR(opt, start_factor=1.0, end_factor=0.25, total_iters=6),
        ], milestones=[12, 22])

    n = 35
    expected = torch_lrs(make, peak, n)
    joined = join_schedules([step_decay(peak, 0.5, 4), cosine_annealing(peak, 10, 0.01),
                             linear_decay(peak, 6, end=0.25 * peak)], [12, 22])
    np.testing.assert_allclose(ours(joined, n), expected, rtol=1e-12, atol=0)
    np.testing.assert_allclose(joined(np.arange(n)), expected, rtol=1e-12, atol=0)


def test_join_schedules_steps_are_relative_to_boundaries():
    first, second = linear_warmup(1.0, 4), cosine_annealing(1.0, 8)
    joined = join_schedules([first, second], [4])
    assert [joined(t) for t in range(4)] == [first(t) for t in range(4)]
    assert [joined(t) for t in range(4, 20)] == [second(t - 4) for t in range(4, 20)]


# --- inverse square root: article and Vaswani et al. (2017) ------------------------

def test_inverse_sqrt_is_the_transformer_schedule():
    d_model, warmup = 512, 4000
    schedule = inverse_sqrt(d_model ** -0.5 * warmup ** -0.5, warmup)
    steps = np.unique(np.r_[np.arange(1, 40_001, 7), warmup - 1, warmup, warmup + 1])
    vaswani = [d_model ** -0.5 * min(s ** -0.5, s * warmup ** -1.5) for s in steps]
    np.testing.assert_allclose(schedule(steps), vaswani, rtol=1e-12, atol=0)
    assert schedule(0) == 0.0  # step_num = 0: min(inf, 0) = 0


@pytest.mark.parametrize("peak, warmup", [(1e-3, 100), (0.5, 1)])
def test_inverse_sqrt_is_the_article_decay_after_warmup(peak, warmup):
    schedule = inverse_sqrt(peak, warmup)
    eta_0 = peak * math.sqrt(warmup)  # article: eta_t = eta_0 / sqrt(t)
    after = np.arange(warmup, 50 * warmup + 1, max(warmup // 10, 1))
    np.testing.assert_allclose(schedule(after), eta_0 / np.sqrt(after), rtol=1e-13)
    before = np.arange(0, warmup + 1)
    np.testing.assert_allclose(schedule(before), peak * before / warmup, rtol=1e-14, atol=0)
    assert schedule(warmup) == pytest.approx(peak, rel=1e-15)


# --- the torch converter -----------------------------------------------------------

CONVERTED = {
    "warmup_cosine": warmup_cosine(0.1, 10, 50),
    "step_decay": step_decay(0.05, 0.7, 6),
    "inverse_sqrt": inverse_sqrt(0.02, 8),
    "joined": join_schedules([linear_warmup(0.1, 5), linear_decay(0.1, 30, 0.001)], [5]),
}


def run_sgd(schedule, n_steps=50, lrs=(0.5,), set_initial_lr=None):
    """Train float64 scalars with constant gradient 1 under as_lambda_lr.

    Returns, per group, the lr read from the group before each step and the
    step actually taken (p_t - p_{t+1}, i.e. lr times the gradient 1).
    """
    params = [torch.nn.Parameter(torch.zeros((), dtype=torch.float64)) for _ in lrs]
    optimizer = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, lrs)])
    if set_initial_lr is not None:
        for group in optimizer.param_groups:
            group["initial_lr"] = set_initial_lr
    scheduler = as_lambda_lr(optimizer, schedule)
    assert isinstance(scheduler, lr_scheduler.LambdaLR)
    read, taken = [[] for _ in lrs], [[] for _ in lrs]
    for _ in range(n_steps):
        before = [p.item() for p in params]
        for i, group in enumerate(optimizer.param_groups):
            read[i].append(group["lr"])
        for p in params:
            p.grad = torch.ones_like(p)
        optimizer.step()
        scheduler.step()
        for i, p in enumerate(params):
            taken[i].append(before[i] - p.item())
    return np.array(read), np.array(taken)


@pytest.mark.parametrize("name", list(CONVERTED))
def test_as_lambda_lr_runs_sgd_at_schedule_rate(name):
    schedule = CONVERTED[name]
    read, taken = run_sgd(schedule)
    expected = ours(schedule, 50)
    np.testing.assert_allclose(read[0], expected, rtol=1e-15, atol=0)
    np.testing.assert_allclose(taken[0], expected, rtol=1e-11, atol=1e-15)


def test_as_lambda_lr_uses_existing_initial_lr():
    # torch keeps a group's existing initial_lr (setdefault); the factor must divide by it
    schedule = CONVERTED["warmup_cosine"]
    read, _ = run_sgd(schedule, n_steps=20, lrs=(0.5,), set_initial_lr=0.03)
    np.testing.assert_allclose(read[0], ours(schedule, 20), rtol=1e-15, atol=0)


def test_as_lambda_lr_groups_with_one_lr_follow_one_schedule():
    schedule = CONVERTED["step_decay"]
    read, taken = run_sgd(schedule, n_steps=30, lrs=(0.4, 0.4))
    for i in range(2):
        np.testing.assert_allclose(read[i], ours(schedule, 30), rtol=1e-15, atol=0)
        np.testing.assert_allclose(taken[i], ours(schedule, 30), rtol=1e-11, atol=1e-15)


def test_as_lambda_lr_one_schedule_per_group():
    schedules = [CONVERTED["step_decay"], CONVERTED["inverse_sqrt"]]
    read, taken = run_sgd(schedules, n_steps=30, lrs=(0.4, 2.0))
    for i, schedule in enumerate(schedules):
        np.testing.assert_allclose(read[i], ours(schedule, 30), rtol=1e-15, atol=0)
        np.testing.assert_allclose(taken[i], ours(schedule, 30), rtol=1e-11, atol=1e-15)


def test_as_lambda_lr_resumes_from_state_dict():
    schedule = CONVERTED["warmup_cosine"]
    param = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    optimizer = torch.optim.SGD([param], lr=0.5)
    scheduler = as_lambda_lr(optimizer, schedule)
    for _ in range(20):
        param.grad = torch.ones_like(param)
        optimizer.step()
        scheduler.step()
    buffer = io.BytesIO()  # the lambdas are plain functions: the state pickles
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer)

    # resume with a different constructor lr: restored base_lrs must be honoured
    param2 = torch.nn.Parameter(param.detach().clone())
    optimizer2 = torch.optim.SGD([param2], lr=0.9)
    scheduler2 = as_lambda_lr(optimizer2, schedule)
    optimizer2.load_state_dict(saved["optimizer"])
    scheduler2.load_state_dict(saved["scheduler"])
    lrs = []
    for _ in range(10):
        lrs.append(optimizer2.param_groups[0]["lr"])
        param2.grad = torch.ones_like(param2)
        optimizer2.step()
        scheduler2.step()
    np.testing.assert_allclose(lrs, [schedule(t) for t in range(20, 30)], rtol=1e-15, atol=0)


def sgd(*lrs):
    return torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr}
                            for lr in lrs])


@pytest.mark.parametrize("make, name", [
    (lambda: as_lambda_lr(sgd(0.1, 0.2), constant(0.1)), "schedule"),     # ambiguous
    (lambda: as_lambda_lr(sgd(0.1, 0.1), [constant(0.1)]), "schedule"),   # wrong length
    (lambda: as_lambda_lr(sgd(0.1), 0.1), "schedule"),                    # not callable
    (lambda: as_lambda_lr(sgd(0.0), constant(0.1)), "optimizer"),         # lr 0 cannot scale
    (lambda: as_lambda_lr("sgd", constant(0.1)), "optimizer"),
])
def test_as_lambda_lr_rejects(make, name):
    with pytest.raises(ValueError, match=rf"Invalid {re.escape(name)}:"):
        make()


# --- the functional core --------------------------------------------------------------

@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_schedule_inside_scale_by_learning_rate(backend):
    schedule = warmup_cosine(0.1, 3, 12)
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=3), rng.normal(size=(2, 2))]
    if backend == "torch":
        grads = [torch.from_numpy(g) for g in grads]
    transform = scale_by_learning_rate(schedule)
    state = transform.init(grads)
    for t in range(15):
        updates, state = transform.update(grads, state)
        for u, g in zip(updates, grads):
            expected = -schedule(t) * np.asarray(g)
            np.testing.assert_allclose(np.asarray(u), expected, rtol=1e-15, atol=0)


# --- steps: ints, NumPy arrays, bad steps ----------------------------------------

ALL = {
    "constant": constant(0.3),
    "linear_warmup": linear_warmup(0.1, 7),
    "step_decay": step_decay(0.1, 0.5, 4),
    "cosine_annealing": cosine_annealing(0.1, 20, 0.01),
    "linear_decay": linear_decay(0.1, 20, 0.02),
    "inverse_sqrt": inverse_sqrt(0.1, 5),
    "warmup_cosine": warmup_cosine(0.1, 5, 20),
    "join_schedules": join_schedules([linear_warmup(0.1, 5), cosine_annealing(0.1, 15)], [5]),
    "warmup_stable_decay": warmup_stable_decay(0.1, 3, 20, 6, cooldown="1-sqrt"),
    "one_cycle": one_cycle(0.1, 20),
    "cosine_restarts": cosine_restarts(0.1, 3, 2, 0.01),
}


@pytest.mark.parametrize("name", list(ALL))
def test_vectorised_steps_match_scalar_steps(name):
    schedule = ALL[name]
    steps = np.arange(30).reshape(5, 6)
    values = schedule(steps)
    assert isinstance(values, np.ndarray) and values.shape == (5, 6)
    assert values.dtype == np.float64
    scalar = [[schedule(int(t)) for t in row] for row in steps]
    np.testing.assert_array_equal(values, scalar)
    np.testing.assert_array_equal(schedule(steps.astype(np.uint32)), scalar)
    assert type(schedule(3)) is float and type(schedule(np.int64(3))) is float
    assert schedule(np.array([], dtype=np.int64)).shape == (0,)


@pytest.mark.parametrize("name", list(ALL))
@pytest.mark.parametrize("step", [-1, np.array([0, 3, -2]), 1.5, np.array([0.0, 1.0]), "3", True])
def test_bad_step_raises(name, step):
    with pytest.raises(ValueError, match="Invalid step:"):
        ALL[name](step)


# --- argument validation ----------------------------------------------------------------

nan, inf = float("nan"), float("inf")
c = constant(0.1)

INVALID = [
    (lambda: constant(-0.1), "value"),
    (lambda: constant(nan), "value"),
    (lambda: constant("fast"), "value"),
    (lambda: linear_warmup(-0.1, 10), "peak"),
    (lambda: linear_warmup(inf, 10), "peak"),
    (lambda: linear_warmup(0.1, -1), "warmup_steps"),
    (lambda: linear_warmup(0.1, 2.5), "warmup_steps"),
    (lambda: step_decay(-1.0, 0.5, 10), "init"),
    (lambda: step_decay(nan, 0.5, 10), "init"),
    (lambda: step_decay(0.1, 0.0, 10), "gamma"),
    (lambda: step_decay(0.1, 1.5, 10), "gamma"),
    (lambda: step_decay(0.1, -0.5, 10), "gamma"),
    (lambda: step_decay(0.1, nan, 10), "gamma"),
    (lambda: step_decay(0.1, 0.5, 0), "step_size"),
    (lambda: step_decay(0.1, 0.5, 3.0), "step_size"),
    (lambda: cosine_annealing(nan, 10), "peak"),
    (lambda: cosine_annealing(0.1, 0), "total_steps"),
    (lambda: cosine_annealing(0.1, -10), "total_steps"),
    (lambda: cosine_annealing(0.1, 10, eta_min=0.2), "eta_min"),
    (lambda: cosine_annealing(0.1, 10, eta_min=-0.01), "eta_min"),
    (lambda: cosine_annealing(0.1, 10, eta_min=inf), "eta_min"),
    (lambda: linear_decay(-0.1, 10), "peak"),
    (lambda: linear_decay(0.1, 0), "total_steps"),
    (lambda: linear_decay(0.1, 10, end=0.5), "end"),
    (lambda: linear_decay(0.1, 10, end=nan), "end"),
    (lambda: inverse_sqrt(-1.0, 10), "peak"),
    (lambda: inverse_sqrt(0.1, 0), "warmup_steps"),
    (lambda: inverse_sqrt(0.1, None), "warmup_steps"),
    (lambda: warmup_cosine(inf, 5, 10), "peak"),
    (lambda: warmup_cosine(0.1, 20, 10), "warmup_steps"),
    (lambda: warmup_cosine(0.1, 10, 10), "warmup_steps"),
    (lambda: warmup_cosine(0.1, -1, 10), "warmup_steps"),
    (lambda: warmup_cosine(0.1, 5, 0), "total_steps"),
    (lambda: warmup_cosine(0.1, 5, 10, eta_min=0.2), "eta_min"),
    (lambda: warmup_cosine(0.1, 5, 10, eta_min=-0.1), "eta_min"),
    (lambda: join_schedules([], []), "schedules"),
    (lambda: join_schedules(c, []), "schedules"),
    (lambda: join_schedules([c, 3], [5]), "schedules[1]"),
    (lambda: join_schedules([c, c], []), "boundaries"),
    (lambda: join_schedules([c, c], [5, 6]), "boundaries"),
    (lambda: join_schedules([c, c], 5), "boundaries"),
    (lambda: join_schedules([c, c, c], [5, 5]), "boundaries"),
    (lambda: join_schedules([c, c, c], [6, 5]), "boundaries"),
    (lambda: join_schedules([c, c], [0]), "boundaries[0]"),
    (lambda: join_schedules([c, c], [2.5]), "boundaries[0]"),
    (lambda: warmup_stable_decay(-0.1, 5, 100, 10), "peak"),
    (lambda: warmup_stable_decay(0.1, 5, 100, 0), "cooldown_steps"),
    (lambda: warmup_stable_decay(0.1, 50, 100, 60), "cooldown_steps"),
    (lambda: warmup_stable_decay(0.1, 5, 100, 10, end=0.2), "end"),
    (lambda: warmup_stable_decay(0.1, 5, 100, 10, cooldown="exp"), "cooldown"),
    (lambda: warmup_stable_decay(0.1, -5, 100, 10), "warmup_steps"),
    (lambda: one_cycle(nan, 100), "peak"),
    (lambda: one_cycle(0.1, 1), "total_steps"),
    (lambda: one_cycle(0.1, 100, pct_start=0.0), "pct_start"),
    (lambda: one_cycle(0.1, 100, pct_start=1.0), "pct_start"),
    (lambda: one_cycle(0.1, 4, pct_start=0.1), "pct_start"),
    (lambda: one_cycle(0.1, 100, div_factor=0.5), "div_factor"),
    (lambda: one_cycle(0.1, 100, final_div_factor=-1), "final_div_factor"),
    (lambda: one_cycle(0.1, 100, anneal="exp"), "anneal"),
    (lambda: cosine_restarts(0.1, 0), "first_period"),
    (lambda: cosine_restarts(0.1, 10, 0), "period_mult"),
    (lambda: cosine_restarts(0.1, 10, 1.5), "period_mult"),
    (lambda: cosine_restarts(0.1, 10, eta_min=0.5), "eta_min"),
]


@pytest.mark.parametrize("make, name", INVALID, ids=[f"{i}-{n}" for i, (_, n) in enumerate(INVALID)])
def test_invalid_argument_raises_naming_it(make, name):
    with pytest.raises(ValueError, match=rf"Invalid {re.escape(name)}:"):
        make()


def test_valid_edge_arguments_are_accepted():
    # gamma = 1 (no decay), eta_min = peak (constant), end = peak, zero lr: all legal
    assert ours(step_decay(0.1, 1.0, 3), 7).tolist() == [0.1] * 7
    assert ours(cosine_annealing(0.1, 5, eta_min=0.1), 8).tolist() == [0.1] * 8
    assert ours(linear_decay(0.1, 5, end=0.1), 8).tolist() == [0.1] * 8
    assert ours(warmup_cosine(0.0, 2, 5), 7).tolist() == [0.0] * 7
    assert linear_warmup(0.1, np.int64(4))(2) == pytest.approx(0.05, rel=1e-15)


# --- beyond the article: WSD, 1cycle, SGDR ---------------------------------------------

@pytest.mark.parametrize("total, pct, div, final, anneal, three", [
    (100, 0.3, 25.0, 1e4, "cos", False), (37, 0.25, 10.0, 100.0, "linear", False),
    (50, 0.2, 25.0, 1e4, "cos", True), (64, 0.4, 5.0, 1e3, "linear", True)])
def test_one_cycle_matches_onecyclelr(total, pct, div, final, anneal, three):
    expected = torch_lrs(lambda opt: lr_scheduler.OneCycleLR(
        opt, max_lr=0.2, total_steps=total, pct_start=pct, div_factor=div,
        final_div_factor=final, anneal_strategy=anneal, three_phase=three,
        cycle_momentum=False), 0.2, total)
    schedule = one_cycle(0.2, total, pct, div, final, anneal, three)
    np.testing.assert_allclose(ours(schedule, total), expected, rtol=1e-12, atol=1e-16)
    assert schedule(total + 5) == schedule(total - 1)  # held, where torch raises


@pytest.mark.parametrize("t0, mult, eta_min", [(10, 1, 0.0), (7, 2, 0.01), (3, 3, 0.0), (1, 2, 0.0)])
def test_cosine_restarts_matches_cosineannealingwarmrestarts(t0, mult, eta_min):
    n = 200
    expected = torch_lrs(lambda opt: lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=t0, T_mult=mult, eta_min=eta_min), 0.1, n)
    np.testing.assert_allclose(ours(cosine_restarts(0.1, t0, mult, eta_min), n), expected,
                               rtol=1e-12, atol=1e-15)


def test_cosine_restarts_restart_points_are_exact():
    schedule = cosine_restarts(1.0, 5, 3)
    restarts = [0, 5, 20, 65, 200, 605, 1820]   # T_0 (3^i - 1) / 2
    assert [schedule(t) for t in restarts] == [1.0] * len(restarts)
    assert all(schedule(t - 1) < 0.1 for t in restarts[1:])


@pytest.mark.parametrize("peak, total, cooldown, end", [(0.1, 60, 12, 0.001), (1.0, 30, 1, 0.5)])
def test_wsd_without_warmup_matches_sequentiallr(peak, total, cooldown, end):
    # constant until the cooldown starts, then torch's LinearLR from 1 to end/peak
    start = total - cooldown
    expected = torch_lrs(lambda opt: lr_scheduler.SequentialLR(opt, [
        lr_scheduler.LambdaLR(opt, lambda t: 1.0),
        lr_scheduler.LinearLR(opt, 1.0, end / peak, total_iters=cooldown)], milestones=[start]),
        peak, total + 5)
    np.testing.assert_allclose(ours(warmup_stable_decay(peak, 0, total, cooldown, end), total + 5),
                               expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("shape", ["linear", "1-sqrt", "cosine"])
def test_wsd_closed_form(shape):
    peak, warm, total, cool, end = 0.3, 10, 100, 20, 0.03
    f = {"linear": lambda s: 1 - s, "1-sqrt": lambda s: 1 - math.sqrt(s),
         "cosine": lambda s: (1 + math.cos(math.pi * s)) / 2}[shape]
    expected = [peak * t / warm if t <= warm else peak if t <= total - cool
                else end + (peak - end) * f(min((t - (total - cool)) / cool, 1.0))
                for t in range(total + 10)]
    np.testing.assert_allclose(ours(warmup_stable_decay(peak, warm, total, cool, end, shape),
                                    total + 10), expected, rtol=1e-13, atol=1e-16)


def test_wsd_constant_phase_does_not_depend_on_budget():
    # Hägele et al.: branch a cooldown off one constant-rate run at any step
    long = warmup_stable_decay(0.1, 10, 1000, 100)
    for total in (200, 500):
        short = warmup_stable_decay(0.1, 10, total, total // 10)
        stop = total - total // 10
        np.testing.assert_array_equal(ours(short, stop + 1), ours(long, stop + 1))


def test_warmup_trap_linearlr_is_shifted_by_one_step():
    # the usual torch warmup LinearLR(start_factor=1/T_w, total_iters=T_w - 1)
    # is linear_warmup one step later: it never takes the zero step
    warm, peak, n = 8, 0.4, 20
    torch_warm = torch_lrs(lambda opt: lr_scheduler.LinearLR(
        opt, start_factor=1 / warm, total_iters=warm - 1), peak, n)
    np.testing.assert_allclose(torch_warm, ours(linear_warmup(peak, warm), n + 1)[1:],
                               rtol=1e-12)


@pytest.mark.parametrize("shape", ["linear", "1-sqrt", "cosine"])
@pytest.mark.parametrize("warm, cool", [(10, 30), (0, 40), (39, 1)],
                         ids=["warmup-then-cooldown", "cooldown-only", "one-step-cooldown"])
def test_wsd_warmup_plus_cooldown_equal_to_the_run(warm, cool, shape):
    """The boundary T_w + T_c = T is allowed: no constant phase, the cooldown starts
    right where the warmup reaches the peak (the closed form of the docstring)."""
    peak, total, end = 0.3, 40, 0.03
    assert warm + cool == total
    f = {"linear": lambda s: 1 - s, "1-sqrt": lambda s: 1 - math.sqrt(s),
         "cosine": lambda s: (1 + math.cos(math.pi * s)) / 2}[shape]
    expected = [peak * t / warm if t <= warm and warm
                else end + (peak - end) * f(min((t - warm) / cool, 1.0)) for t in range(total + 5)]
    schedule = warmup_stable_decay(peak, warm, total, cool, end, shape)
    np.testing.assert_allclose(ours(schedule, total + 5), expected, rtol=1e-13, atol=1e-16)
    assert schedule(warm) == pytest.approx(peak, rel=1e-15) and schedule(total) == end
    # one more step than the run has is refused
    with pytest.raises(ValueError, match="Invalid cooldown_steps:"):
        warmup_stable_decay(peak, warm + 1, total, cool, end, shape)


def test_wsd_cooldown_only_matches_linearlr():
    # warmup 0, cooldown over the whole run: torch's LinearLR from 1 to end / peak
    peak, total, end = 0.2, 25, 0.02
    expected = torch_lrs(lambda opt: lr_scheduler.LinearLR(opt, 1.0, end / peak, total_iters=total),
                         peak, total + 5)
    np.testing.assert_allclose(ours(warmup_stable_decay(peak, 0, total, total, end), total + 5),
                               expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("shape", ["linear", "1-sqrt", "cosine"])
def test_wsd_stable_phase_is_the_peak_bit_for_bit(shape):
    # eta_t = eta_max exactly for T_w < t <= T - T_c (the docstring), also at the last
    # stable step, where the cooldown formula end + (peak - end) f(0) rounds differently
    # for these numbers (0.03 + 0.27 != 0.3 in floating point)
    peak, warm, total, cool, end = 0.3, 5, 50, 10, 0.03
    assert end + (peak - end) * 1.0 != peak
    schedule = warmup_stable_decay(peak, warm, total, cool, end, shape)
    stable = np.arange(warm, total - cool + 1)
    assert ours(schedule, total + 1)[stable].tolist() == [peak] * len(stable)
    assert schedule(np.arange(total + 1))[stable].tolist() == [peak] * len(stable)
    assert schedule(total - cool + 1) < peak


def _hagele_wsd_factor(step, n_iterations, fract_decay, decay_type, final_factor=0.0):
    """The multiplier of Hägele et al.'s reference code (epfml/schedules-and-scaling,
    src/optim/utils.py, ``wsd_schedule`` with ``n_warmup=0``), written out from their
    formulas: 1 until ``n_hold = n_iterations - int(fract_decay * n_iterations)``, then
    ``final + (1 - final) * g(s)`` with ``s = (step - n_hold) / n_anneal`` and
    ``g = 1 - s`` ("linear"), ``1 - sqrt(s)`` ("sqrt"), ``(1 + cos(pi s)) / 2``
    ("cosine"); ``final`` from ``n_iterations`` on."""
    n_anneal = int(fract_decay * n_iterations)
    n_hold = n_iterations - n_anneal
    if step < n_hold:
        return 1.0
    if step >= n_iterations:
        return final_factor
    s = (step - n_hold) / n_anneal
    g = {"linear": 1 - s, "sqrt": 1 - math.sqrt(s),
         "cosine": (1 + math.cos(math.pi * s)) * 0.5}[decay_type]
    return final_factor + (1 - final_factor) * g


@pytest.mark.parametrize("ours, theirs", [("1-sqrt", "sqrt"), ("linear", "linear"),
                                          ("cosine", "cosine")])
@pytest.mark.parametrize("total, frac, final", [(100, 0.2, 0.0), (1000, 0.1, 0.0), (77, 0.25, 0.1)])
def test_wsd_cooldown_is_hagele_reference_schedule(ours, theirs, total, frac, final):
    """Hägele et al. (2024) recommend the 1-sqrt cooldown; their code's multiplier times the
    peak is our schedule, step for step (no warmup: theirs starts at peak/100)."""
    peak = 0.3
    cool = int(frac * total)
    schedule = warmup_stable_decay(peak, 0, total, cool, final * peak, cooldown=ours)
    expected = [peak * _hagele_wsd_factor(t, total, frac, theirs, final) for t in range(total + 5)]
    np.testing.assert_allclose(ours_lrs := schedule(np.arange(total + 5)), expected,
                               rtol=1e-12, atol=1e-15)
    assert ours_lrs[total - cool] == peak and ours_lrs[total] == pytest.approx(final * peak)


def test_one_minus_sqrt_cooldown_spends_a_third_of_the_linear_area_gap():
    """Closed form: int_0^1 (1 - sqrt(s)) ds = 1/3 against 1/2 for the linear cooldown, so over
    a long cooldown the mean rate is peak/3; and 1 - sqrt(s) <= 1 - s everywhere (it drops
    faster at the start: its slope is infinite at s = 0)."""
    peak, total, cool = 1.0, 20000, 10000
    sqrt_part = warmup_stable_decay(peak, 0, total, cool, cooldown="1-sqrt")(
        np.arange(total - cool, total))
    linear_part = warmup_stable_decay(peak, 0, total, cool)(np.arange(total - cool, total))
    assert sqrt_part.mean() == pytest.approx(1 / 3, abs=1e-3)
    assert linear_part.mean() == pytest.approx(1 / 2, abs=1e-3)
    assert np.all(sqrt_part <= linear_part + 1e-15)
    # the first cooldown step already drops by sqrt(1/T_c), not 1/T_c
    assert 1 - sqrt_part[1] == pytest.approx(math.sqrt(1 / cool), rel=1e-9)
