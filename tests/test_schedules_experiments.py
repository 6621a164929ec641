"""optbook.experiments.schedules: stacked runs against torch.optim and the authors' package,
the schedules by name, and the noisy quadratic model against its closed form."""
import math

import numpy as np
import pytest
import torch

from optbook import schedules as sch
from optbook.experiments import schedules as S
from optbook.experiments.training import Dataset, mlp, teacher_classification, train
from optbook.torch.schedule_free import AdamWScheduleFree

torch.set_num_threads(1)


def small_data64():
    d = teacher_classification(n_train=256, n_val=128, seed=3)
    return Dataset(d.x_train.double(), d.y_train, d.x_val.double(), d.y_val, d.classes)


def test_stacked_mlp_starts_from_training_mlp_weights():
    model = S.StackedMLP(20, 4, [5, 7], hidden=16, depth=2)
    for k, seed in enumerate([5, 7]):
        single = mlp(20, 4, hidden=16, depth=2, seed=seed)
        linears = [m for m in single if isinstance(m, torch.nn.Linear)]
        for layer, lin in zip(model.layers, linears):
            torch.testing.assert_close(layer.weight[k], lin.weight.T, rtol=0, atol=0)
            torch.testing.assert_close(layer.bias[k, 0], lin.bias, rtol=0, atol=0)


def test_member_follows_torch_adam_with_lambdalr():
    # each member of a stacked run = an independent torch.optim.Adam run with its schedule
    data = small_data64()
    steps, seeds = 40, [0, 1, 2]
    schedules = [S.make_schedule("cosine", 3e-3, steps), S.make_schedule("wsd", 1e-2, steps),
                 S.make_schedule("one_cycle", 2e-2, steps)]
    rates = np.stack([s(np.arange(steps)) for s in schedules], axis=1)
    model = S.StackedMLP(20, 4, seeds, hidden=16, dtype=torch.float64)
    train(model, S.member_adam(model.parameters(), rates), S.stack_targets(data, 3),
          steps=steps, batch_size=32, eval_every=steps, seed=0)
    for k in range(3):
        single = mlp(20, 4, hidden=16, seed=seeds[k]).double()
        opt = torch.optim.Adam(single.parameters(), lr=1.0)
        train(single, opt, data, steps=steps, batch_size=32, eval_every=steps, seed=0,
              scheduler=sch.as_lambda_lr(opt, schedules[k]))
        linears = [m for m in single if isinstance(m, torch.nn.Linear)]
        moved = (linears[0].weight.T - S.StackedMLP(20, 4, [seeds[k]], hidden=16,
                                                    dtype=torch.float64).layers[0].weight[0])
        assert moved.abs().max() > 1e-3
        for layer, lin in zip(model.layers, linears):
            torch.testing.assert_close(layer.weight[k].detach(), lin.weight.detach().T,
                                       rtol=1e-10, atol=1e-12)


def test_member_schedule_free_follows_authors_class():
    data = small_data64()
    peaks, seeds, steps = [1e-3, 1e-2], [0, 4], 40
    model = S.StackedMLP(20, 4, seeds, hidden=16, dtype=torch.float64)
    opt = S.member_schedule_free_adamw(model.parameters(), peaks, warmup_steps=5)
    train(model, opt, S.stack_targets(data, 2), steps=steps, batch_size=32, eval_every=steps,
          seed=0)
    S._to_average(opt)
    for k in range(2):
        single = mlp(20, 4, hidden=16, seed=seeds[k]).double()
        o = AdamWScheduleFree(single.parameters(), lr=peaks[k], warmup_steps=5)
        o.train()
        train(single, o, data, steps=steps, batch_size=32, eval_every=steps, seed=0)
        o.eval()
        linears = [m for m in single if isinstance(m, torch.nn.Linear)]
        for layer, lin in zip(model.layers, linears):
            torch.testing.assert_close(layer.weight[k].detach(), lin.weight.detach().T,
                                       rtol=1e-10, atol=1e-12)


def test_diverging_member_is_frozen_and_others_continue():
    data = teacher_classification(n_train=128, n_val=64, seed=0)
    rates = np.tile([[1e-3, 1e4]], (30, 1))  # member 1: absurd rate
    from optbook.base import chain, scale
    # scale(2) undoes the harness's mean over the two members (plain SGD, no Adam)
    transform = chain(scale(2.0), S.scale_by_member_rates(rates, guard=50.0))
    model = S.StackedMLP(20, 4, [0, 0], hidden=8)
    from optbook.torch import ChainOptimizer
    opt = ChainOptimizer(model.parameters(), transform)
    history = train(model, opt, S.stack_targets(data, 2), steps=30, batch_size=32,
                    eval_every=30, seed=0)
    assert not history.diverged
    alive = [opt.state[p]["transform_state"][1]["alive"] for p in model.parameters()]
    assert all(a[0] for a in alive)          # the sane member was never frozen
    assert not all(a[1] for a in alive)      # the absurd one was, in some tensor
    assert all(p[1].abs().max() < 50 + 1e4 * 10 for p in model.parameters())
    # member 0 trained as if alone: same weights as a one-member run at its rate
    alone = S.StackedMLP(20, 4, [0], hidden=8)
    opt1 = ChainOptimizer(alone.parameters(), S.scale_by_member_rates(rates[:, :1], guard=50.0))
    train(alone, opt1, S.stack_targets(data, 1), steps=30, batch_size=32, eval_every=30, seed=0)
    for a, b in zip(model.parameters(), alone.parameters()):
        torch.testing.assert_close(a[0], b[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", S.SCHEDULES)
def test_make_schedule_peaks_and_budget(name):
    s = S.make_schedule(name, 0.1, 200)
    eta = s(np.arange(200))
    assert eta.max() == pytest.approx(0.1, rel=1e-9)
    assert np.all(eta >= 0)
    if name in ("cosine", "linear", "wsd", "one_cycle"):
        assert eta[-1] < 0.01 * 0.1 + 1e-3  # ends (nearly) at zero


def test_make_schedule_rejects_unknown():
    with pytest.raises(ValueError, match="Invalid name"):
        S.make_schedule("exp", 0.1, 100)


def test_tuned_picks_lowest_mean_and_skips_nonfinite():
    losses = np.array([[0.5, 0.5, 0.5], [0.4, np.inf, 0.1], [0.45, 0.44, 0.46]])
    peak, best = S.tuned(losses, [1, 2, 3])
    assert peak == 3 and best.tolist() == [0.45, 0.44, 0.46]


# --- noisy quadratic model ------------------------------------------------------------------

def test_nqm_loss_matches_monte_carlo():
    h = np.array([1.0, 0.1])
    etas = np.r_[np.linspace(0, 0.8, 20), np.full(30, 0.8)]
    exact = S.nqm_loss(etas, curvatures=h, noise=0.5, start=1.0)
    rng = np.random.default_rng(0)
    x = np.ones((200000, 2))
    for eta in etas:
        x = x - eta * (h * x + np.sqrt(h) * 0.5 * rng.standard_normal(x.shape))
    mc = 0.5 * np.mean(np.sum(h * x * x, axis=1))
    assert mc == pytest.approx(exact[-1], rel=0.02)


def test_nqm_constant_rate_reaches_predicted_floor():
    h, eta = np.array([1.0, 0.5]), 0.3
    loss = S.nqm_loss(np.full(2000, eta), curvatures=h)
    floor = 0.5 * np.sum(h * eta / (2 - eta * h))
    assert loss[-1] == pytest.approx(floor, rel=1e-10)


def test_nqm_diverges_above_two_over_h():
    assert S.nqm_loss(np.full(200, 2.1), curvatures=[1.0])[-1] > 1e3


@pytest.mark.parametrize("shape", S.NQM_SHAPES)
def test_nqm_schedule_shapes(shape):
    eta = S.nqm_schedule(shape, 1.0, 100, warmup_frac=0.1, cooldown_frac=0.3)
    assert len(eta) == 100 and eta[0] == 0.0 and eta.max() == pytest.approx(1.0)
    if shape == "wsd":
        assert np.all(eta[10:71] == 1.0) and eta[-1] < 0.05


@pytest.mark.parametrize("kwargs, name", [
    (dict(shape="exp"), "shape"), (dict(warmup_frac=1.0), "warmup_frac"),
    (dict(cooldown_frac=0.0), "cooldown_frac"), (dict(steps=2), "steps")])
def test_nqm_schedule_rejects(kwargs, name):
    args = dict(shape="cosine", peak=1.0, steps=100)
    args.update(kwargs)
    with pytest.raises(ValueError, match=f"Invalid {name}"):
        S.nqm_schedule(**args)


def test_draw_nqm_returns_figure():
    fig = S.draw_nqm("wsd", 1.0, 0.1, 0.2)
    assert len(fig.axes) == 2


def test_nqm_curvatures_closed_form():
    # 20 values log-spaced from 1 down to 0.01 (h_i = 10^(-2i/19)), each written with at
    # most 6 significant digits: no NumPy kernel decides their last digit.
    h = S.NQM_CURVATURES
    assert isinstance(h, tuple) and len(h) == 20
    assert h[0] == 1.0 and h[-1] == 0.01
    for i, value in enumerate(h):
        exact = 10.0 ** (-2 * i / 19)
        # within 1e-6 (absolute) and half a unit of the 6th significant digit (relative)
        assert abs(value - exact) <= 1e-6, (i, value, exact)
        assert abs(value - exact) <= 5e-6 * exact, (i, value, exact)
        assert float(f"{value:.6g}") == value, f"{value!r} has more than 6 significant digits"
        assert value == float(f"{exact:.6g}")   # the correctly rounded 6-digit value
    # equal steps in log10 (each end rounded by at most 5e-6 relative: 2 * 5e-6 / ln 10)
    np.testing.assert_allclose(np.diff(np.log10(h)), -2 / 19, rtol=0, atol=4.5e-6)
    # nqm_loss uses them by default
    etas = np.full(5, 0.3)
    np.testing.assert_array_equal(S.nqm_loss(etas), S.nqm_loss(etas, curvatures=list(h)))


# --- stored reruns ---------------------------------------------------------------------------

def test_schedule_table_rerun_tunes_each_schedule_on_the_seed_mean():
    peaks = {name: (1e-3, 1e-2) for name in S.SCHEDULES}
    out = S.schedule_table_rerun(seeds=(0, 1), steps=20, peaks=peaks, sf_peaks=(1e-3, 1e-2))
    assert out["steps"] == 20 and out["seeds"] == [0, 1]
    assert set(out["schedules"]) == set(S.SCHEDULES) | {"schedule-free AdamW"}
    for name, row in out["schedules"].items():
        losses = np.asarray(row["val_loss"])
        assert losses.shape == (2, 2)
        i = int(np.argmin(losses.mean(1)))
        assert row["best_peak"] == row["peaks"][i]
        np.testing.assert_array_equal(row["best"], losses[i])
    # the same runs as the notebook's functions give
    data = S.problem(seed=0)
    direct = S.schedule_comparison(S.SCHEDULES, peaks, (0, 1), data, steps=20)
    np.testing.assert_array_equal(out["schedules"]["cosine"]["val_loss"], direct.val_loss["cosine"])


def test_cooldown_rerun_reads_each_budget():
    out = S.cooldown_rerun(steps=(10, 20), peaks=(1e-3, 1e-2), seeds=(0,))
    assert out["budgets"] == [10, 20]
    for kind in ("wsd", "cosine"):
        losses = np.asarray(out["val_loss"][kind])
        assert losses.shape == (2, 2, 1)
        for b in range(2):
            i = int(np.argmin(losses[b].mean(1)))
            assert out["best_peak"][kind][b] == (1e-3, 1e-2)[i]
            np.testing.assert_array_equal(out["best"][kind][b], losses[b, i])
