"""optbook.experiments.schedules: stacked runs against torch.optim and the authors' package,
the schedules by name, and the noisy quadratic model against its closed form."""

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


def test_member_adamw_follows_torch_adamw():
    # weight_decay > 0: each member is torch.optim.AdamW (decoupled decay lr * lambda * theta)
    data = small_data64()
    steps, seeds, lam = 30, [0, 1], 0.5
    schedules = [S.make_schedule("linear", 1e-2, steps), S.make_schedule("cosine", 3e-2, steps)]
    rates = np.stack([s(np.arange(steps)) for s in schedules], axis=1)
    model = S.StackedMLP(20, 4, seeds, hidden=16, dtype=torch.float64)
    train(model, S.member_adam(model.parameters(), rates, weight_decay=lam),
          S.stack_targets(data, 2), steps=steps, batch_size=32, eval_every=steps, seed=0)
    for k in range(2):
        single = mlp(20, 4, hidden=16, seed=seeds[k]).double()
        opt = torch.optim.AdamW(single.parameters(), lr=1.0, weight_decay=lam)
        train(single, opt, data, steps=steps, batch_size=32, eval_every=steps, seed=0,
              scheduler=sch.as_lambda_lr(opt, schedules[k]))
        linears = [m for m in single if isinstance(m, torch.nn.Linear)]
        for layer, lin in zip(model.layers, linears):
            torch.testing.assert_close(layer.weight[k].detach(), lin.weight.detach().T,
                                       rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="Invalid weight_decay"):
        S.member_adam(model.parameters(), rates, weight_decay=-0.1)


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
    if name in ("cosine", "linear", "wsd", "wsd_linear"):
        assert s(200) == pytest.approx(0.0, abs=1e-15)      # ends at zero at T
    if name == "one_cycle":
        assert eta[-1] == pytest.approx(0.1 / 25 / 1e4)     # OneCycleLR's minimum
    if name == "cosine_10":
        assert s(200) == pytest.approx(0.01, rel=1e-12)


@pytest.mark.parametrize("name", [n for n in S.SCHEDULES if n != "one_cycle"])
def test_make_schedule_every_shape_has_the_same_warmup(name):
    """The table compares shapes, not warmups: eta_t = peak t / T_w for t <= T_w = 5 % of T
    (the article's linear warmup from 0), for every schedule but 1cycle."""
    peak, steps = 0.1, 400
    eta = S.make_schedule(name, peak, steps)(np.arange(steps))
    warm = 20
    np.testing.assert_allclose(eta[:warm + 1], peak * np.arange(warm + 1) / warm, rtol=1e-12,
                               atol=1e-15)
    assert eta[warm + 1] <= peak


def test_make_schedule_wsd_cooldowns():
    # the last 20 % (80 steps of 400): 1 - sqrt(s) and 1 - s
    t = np.arange(320, 401)
    s = (t - 320) / 80
    np.testing.assert_allclose(S.make_schedule("wsd", 1.0, 400)(t), 1 - np.sqrt(s), atol=1e-15)
    np.testing.assert_allclose(S.make_schedule("wsd_linear", 1.0, 400)(t), 1 - s, atol=1e-15)


def test_make_schedule_rejects_unknown():
    with pytest.raises(ValueError, match="Invalid name"):
        S.make_schedule("exp", 0.1, 100)


def _fresh_run(schedules, seeds, data, steps, batch_seed):
    """A run trained from scratch with train() (the harness), final losses per member."""
    rates = np.stack([f(np.arange(steps)) for f in schedules], axis=1)
    model = S.StackedMLP(20, 4, seeds, hidden=16)
    stacked = S.stack_targets(data, len(seeds))
    train(model, S.member_adam(model.parameters(), rates), stacked, steps=steps, batch_size=32,
          eval_every=steps, seed=batch_seed)
    return S.member_losses(model, stacked.x_val, stacked.y_val)


def test_wsd_branches_are_forks_of_one_run_equal_to_fresh_runs():
    """A cooldown forked from the stable run's checkpoint (weights and Adam state copied)
    ends exactly where a WSD run trained from scratch on the same batches ends; the
    cosine runs are plain warmup + cosine runs; every budget has the same warmup."""
    data = teacher_classification(n_train=512, n_val=128, label_noise=0.0, seed=1)
    budgets, peaks, seeds, warm = (30, 60), (3e-3, 3e-2), (0, 2), 5
    r = S.wsd_branches(budgets, peaks, seeds, data, warmup_steps=warm, hidden=16, batch_seed=4,
                       eval_every=10)
    assert r.forks == (24, 48) and r.wsd.shape == (2, 2, 2)
    for b, budget in enumerate(budgets):
        cool = round(0.2 * budget)
        wsd = _fresh_run([sch.warmup_stable_decay(p, warm, budget, cool, cooldown="1-sqrt")
                          for p in peaks for _ in seeds], [s for _ in peaks for s in seeds],
                         data, budget, 4)
        cos = _fresh_run([sch.warmup_cosine(p, warm, budget, eta_min=0.0)
                          for p in peaks for _ in seeds], [s for _ in peaks for s in seeds],
                         data, budget, 4)
        stable = _fresh_run([sch.linear_warmup(p, warm) for p in peaks for _ in seeds],
                            [s for _ in peaks for s in seeds], data, budget - cool, 4)
        np.testing.assert_allclose(r.wsd[b].ravel(), wsd, rtol=1e-6)
        np.testing.assert_allclose(r.cosine[b].ravel(), cos, rtol=1e-6)
        np.testing.assert_allclose(r.stable[b].ravel(), stable, rtol=1e-6)
    # the cooldown helps (the peak 3e-2 run is noisy at its stable rate)
    assert np.all(r.wsd[:, 1] < r.stable[:, 1])
    # curves: the stable run to the last fork, each branch from its fork to its budget
    steps, values = r.curves["stable"]
    assert steps[0] == 0 and steps[-1] == 48 and values.shape == (len(steps), 2)
    assert r.curves["wsd 30"][0].tolist() == [24, 30]        # from the fork to the budget
    np.testing.assert_allclose(r.curves["wsd 60"][1][-1], r.wsd[1].mean(axis=1), rtol=1e-12)
    with pytest.raises(ValueError, match="Invalid budgets"):
        S.wsd_branches((10, 60), peaks, seeds, data, warmup_steps=20)


def test_print_branches_pairs_seeds():
    wsd = np.array([[[0.5, 0.6], [0.40, 0.42]]])
    cos = np.array([[[0.45, 0.5], [0.41, 0.40]]])
    gaps = S.print_branches([100], [1e-3, 1e-2], wsd, cos)
    # WSD tuned: peak 1e-2 (mean 0.41); cosine tuned: 1e-2 (0.405): paired gap +0.005
    assert gaps == [pytest.approx(0.005)]


def test_ranking_sorts_by_tuned_mean_and_flags_the_grid_edge():
    table = {"a": ((1, 2, 3), np.array([[0.5, 0.5], [0.3, 0.3], [0.4, 0.4]])),
             "b": ((1, 2, 3), np.array([[0.2, 0.2], [0.3, 0.3], [0.4, 0.4]]))}
    rows = S.ranking(table)
    assert [r[0] for r in rows] == ["b", "a"] and rows[0][3] and not rows[1][3]
    assert rows[0][1] == 1 and rows[1][1] == 2


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


@pytest.mark.parametrize("cooldown", S.NQM_COOLDOWNS)
@pytest.mark.parametrize("end_frac", [0.0, 0.1])
def test_nqm_schedule_wsd_cooldown_shapes_and_final_rate(cooldown, end_frac):
    """WSD's cooldown over the last 20 % (40 of 200 steps), closed form, down to end_frac * peak."""
    peak = 0.8
    eta = S.nqm_schedule("wsd", peak, 200, 0.0, 0.2, cooldown=cooldown, end_frac=end_frac)
    f = {"linear": lambda s: 1 - s, "1-sqrt": lambda s: 1 - np.sqrt(s),
         "cosine": lambda s: (1 + np.cos(np.pi * s)) / 2}[cooldown]
    s = (np.arange(160, 200) - 160) / 40
    end = end_frac * peak
    np.testing.assert_allclose(eta[160:], end + (peak - end) * f(s), rtol=1e-13, atol=1e-16)
    assert np.all(eta[:161] == peak)


@pytest.mark.parametrize("shape", ["cosine", "linear"])
def test_nqm_schedule_decays_to_the_final_rate(shape):
    # cosine and linear reach end_frac * peak at T (one step past the last one used)
    eta = S.nqm_schedule(shape, 1.0, 100, 0.1, end_frac=0.1)
    formula = {"cosine": lambda t: 0.1 + 0.45 * (1 + np.cos(np.pi * (t - 10) / 90)),
               "linear": lambda t: 0.1 + 0.9 * (1 - (t - 10) / 90)}[shape]
    np.testing.assert_allclose(eta[10:], formula(np.arange(10, 100)), rtol=1e-12)
    np.testing.assert_allclose(eta[:11], np.arange(11) / 10, rtol=1e-15)


@pytest.mark.parametrize("kwargs, name", [(dict(cooldown="exp"), "cooldown"),
                                          (dict(end_frac=-0.1), "end_frac"),
                                          (dict(end_frac=1.5), "end_frac"),
                                          (dict(end_frac="0"), "end_frac")])
def test_nqm_schedule_rejects_new_options(kwargs, name):
    with pytest.raises(ValueError, match=f"Invalid {name}"):
        S.nqm_schedule("wsd", 1.0, 100, **kwargs)


def test_nqm_tuned_is_the_argmin_of_nqm_loss():
    peaks = [0.1, 0.3, 0.9, 1.5, 2.5]     # 2.5 diverges
    for shape, extra in [("cosine", {}), ("wsd", {"cooldown": "1-sqrt", "warmup_frac": 0.05})]:
        finals = [S.nqm_loss(S.nqm_schedule(shape, p, 100, **extra), noise=0.5)[-1] for p in peaks]
        best, loss = S.nqm_tuned(shape, peaks, steps=100, noise=0.5, **extra)
        assert best == peaks[int(np.argmin(finals))] and loss == min(finals)
    assert S.nqm_tuned("constant", [9.0, 10.0], steps=200)[1] == np.inf     # overflows: diverged


def test_nqm_table_rows():
    rows = S.nqm_table(warmup_fracs=(0.0, 0.1), steps=50)
    assert [r[0] for r in rows] == ["constant", "cosine", "linear", "wsd 20 % linear",
                                    "wsd 20 % 1-sqrt", "wsd 20 % cosine"]
    assert rows[4][1][1] == S.nqm_tuned("wsd", steps=50, warmup_frac=0.1, cooldown="1-sqrt",
                                        cooldown_frac=0.2)


def test_nqm_floor_scales_with_noise_squared():
    # the recursion is linear in (m, sigma^2): from m_0 = 0 the loss scales exactly as sigma^2
    etas = S.nqm_schedule("cosine", 0.7, 80)
    a = S.nqm_loss(etas, noise=1.0, start=0.0)
    b = S.nqm_loss(etas, noise=3.0, start=0.0)
    np.testing.assert_allclose(b, 9 * a, rtol=1e-12)


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

def test_shape_table_rerun_tunes_each_schedule_on_the_seed_mean():
    out = S.shape_table_rerun(seeds=(0, 1), steps=20, peaks=(1e-3, 1e-2), sf_peaks=(1e-3, 1e-2),
                              batch_seed=3)
    assert out["steps"] == 20 and out["seeds"] == [0, 1] and out["batch_seed"] == 3
    assert set(out["schedules"]) == set(S.SCHEDULES) | {"schedule-free AdamW"}
    for name, row in out["schedules"].items():
        losses = np.asarray(row["val_loss"])
        assert losses.shape == (2, 2)
        i = int(np.argmin(losses.mean(1)))
        assert row["best_peak"] == row["peaks"][i]
        np.testing.assert_array_equal(row["best"], losses[i])
    # the same runs as the notebook's functions give, on the clean problem and batch order 3
    data = S.clean_problem(seed=0)
    direct = S.schedule_comparison(S.SCHEDULES, {n: (1e-3, 1e-2) for n in S.SCHEDULES}, (0, 1),
                                   data, steps=20, batch_seed=3)
    np.testing.assert_array_equal(out["schedules"]["cosine"]["val_loss"], direct.val_loss["cosine"])


def test_clean_problem_has_no_label_noise_and_more_data():
    data = S.clean_problem(seed=0)
    assert data.n_train == 32768 and len(data.y_val) == 2048
    # clean labels: the training labels are the teacher's argmax (as the validation ones)
    ref = teacher_classification(n_train=32768, n_val=2048, label_noise=0.0, seed=0)
    assert torch.equal(data.y_train, ref.y_train)
    noisy = teacher_classification(n_train=32768, n_val=2048, label_noise=0.1, seed=0)
    assert 0.05 < (noisy.y_train != data.y_train).float().mean() < 0.1


def test_branches_rerun_reads_each_budget():
    out = S.branches_rerun(steps=(30, 40), peaks=(1e-3, 1e-2), seeds=(0,), warmup_steps=5)
    assert out["budgets"] == [30, 40] and out["forks"] == [24, 32]
    for kind in ("wsd", "cosine", "stable"):
        losses = np.asarray(out["val_loss"][kind])
        assert losses.shape == (2, 2, 1)
        for b in range(2):
            i = int(np.argmin(losses[b].mean(1)))
            assert out["best_peak"][kind][b] == (1e-3, 1e-2)[i]
            np.testing.assert_array_equal(out["best"][kind][b], losses[b, i])
    assert set(out["curves"]) == {"stable", "wsd 30", "wsd 40", "cosine 30", "cosine 40"}


def test_weight_decay_rerun_runs_adamw_per_lambda():
    out = S.weight_decay_rerun(lambdas=(0.0, 1.0), peaks=(1e-2,), seeds=(0,), steps=20)
    assert out["lambdas"] == [0.0, 1.0] and set(out["results"]) == {"0", "1"}
    zero = np.asarray(out["results"]["0"]["linear"]["val_loss"])
    one = np.asarray(out["results"]["1"]["linear"]["val_loss"])
    assert zero.shape == (1, 1) and not np.array_equal(zero, one)
    # lambda = 0 is the plain Adam comparison (stacked with fewer members here: float32
    # sums of another length, hence rtol)
    direct = S.schedule_comparison(("linear",), {"linear": (1e-2,)}, (0,), S.clean_problem(0),
                                   steps=20, batch_seed=0)
    np.testing.assert_allclose(zero, direct.val_loss["linear"], rtol=1e-5)


def test_nqm_warmup_gains_counts_what_nqm_loss_says():
    """Brute force with nqm_loss: the count of (shape, peak, warmup) cases where a warmup
    lowers the final loss. At sigma = 1 and these peaks that happens only above 1 (where the
    stiff directions' noise floor eta sigma^2 / (2 - eta h) exceeds their start, m_0 = 1)."""
    peaks, fracs = (0.3, 0.9, 1.5, 1.99), (0.05, 0.2)
    out = S.nqm_warmup_gains(fracs, peaks, steps=100)
    lower = [(shape, p, w) for shape in S.NQM_SHAPES for p in peaks for w in fracs
             if S.nqm_loss(S.nqm_schedule(shape, p, 100, w))[-1]
             < S.nqm_loss(S.nqm_schedule(shape, p, 100))[-1]]
    assert out["cases"] == len(S.NQM_SHAPES) * len(peaks) * len(fracs)
    assert out["lower"] == len(lower) > 0
    assert out["smallest_peak"] == min(p for _, p, _ in lower) > 1.0
    assert S.nqm_warmup_gains(fracs, (0.1, 0.5, 0.9), steps=100)["lower"] == 0


def test_print_nqm_table_runs(capsys):
    S.print_nqm_table(S.nqm_table(warmup_fracs=(0.0, 0.1), steps=40), (0.0, 0.1))
    out = capsys.readouterr().out
    assert "wsd 20 % 1-sqrt" in out and "cost of the warmups" in out


def _nqm_constant_warmup_final(peak, warm, steps, noise):
    """The noisy quadratic's recursion written out here, for a constant rate after a linear
    warmup eta_t = peak * min(t / warm, 1) (independent of optbook's schedule code)."""
    h = np.array([10.0 ** (-2 * i / 19) for i in range(20)])
    m = np.ones_like(h)
    for t in range(steps):
        eta = peak * min(t / warm, 1.0) if warm else peak
        m = (1 - eta * h) ** 2 * m + eta ** 2 * h * noise ** 2
    return 0.5 * np.sum(h * m)


@pytest.mark.parametrize("noise", [0.5, 2.0])
def test_nqm_warmup_threshold_against_a_hand_written_recursion(noise):
    peaks, fracs, steps = (0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 1.95), (0.05, 0.2), 60
    helped = [p for p in peaks
              if any(_nqm_constant_warmup_final(p, int(round(w * steps)), steps, noise)
                     < _nqm_constant_warmup_final(p, 0, steps, noise) for w in fracs)]
    expected = min(helped) if helped else None
    assert S.nqm_warmup_threshold(noise, fracs, peaks, steps) == expected
    if noise == 2.0:    # large noise: some warmup helps well below eta = 1
        assert expected is not None and expected < 1.0


def test_nqm_warmup_threshold_noise_free_below_one_over_h_max():
    """Without noise m_T = prod (1 - eta_t h)^2 m_0, and (1 - eta h)^2 falls as eta grows up to
    1/h >= 1: for peaks <= 1 any smaller rate (a warmup) leaves a larger loss."""
    assert S.nqm_warmup_threshold(0.0, (0.05, 0.2, 0.4), np.linspace(0.05, 1.0, 20), 80) is None


def test_nqm_warmup_threshold_rejects_bad_noise():
    with pytest.raises(ValueError, match="Invalid noise"):
        S.nqm_warmup_threshold(-1.0)
    with pytest.raises(ValueError, match="Invalid noise"):
        S.nqm_warmup_threshold("1")


def test_nqm_warmup_cost_at_tuned_is_the_cheapest_tuned_ratio():
    peaks, fracs, steps = (0.05, 0.1, 0.2, 0.4, 0.8), (0.1, 0.3), 50
    ratios = []
    for shape, extra in S.NQM_TABLE:
        best = lambda w: min(S.nqm_loss(S.nqm_schedule(shape, p, steps, w, **extra))[-1]
                             for p in peaks)
        ratios += [best(w) / best(0.0) - 1 for w in fracs]
    assert S.nqm_warmup_cost_at_tuned(1.0, fracs, peaks, steps) == pytest.approx(min(ratios),
                                                                                rel=1e-9)


def test_print_nqm_warmup_noise_crossing(capsys):
    rows = S.print_nqm_warmup_noise(noises=(1.0, 3.0), warmup_fracs=(0.1,))
    # the stiffest direction (h = 1): eta sigma^2 / (2 - eta) = 1  <=>  eta = 2 / (1 + sigma^2)
    assert rows[0][1] == pytest.approx(1.0) and rows[1][1] == pytest.approx(0.2)
    assert "floor > start above" in capsys.readouterr().out


def test_same_runs_discrepancy_pairs_shared_peaks():
    a = {"linear": {"peaks": [1e-3, 1e-2, 3e-2], "val_loss": [[0.3, 0.3], [0.29, 0.28], [0.31, 0.3]],
                    "best_peak": 1e-2}}
    b = {"linear": {"peaks": [1e-2, 1e-3], "val_loss": [[0.29, 0.2832], [0.3, 0.3]]}}
    d = S.same_runs_discrepancy(a, b, names=("linear",))
    assert set(d["linear"]) == {1e-2, 1e-3}
    np.testing.assert_allclose(d["linear"][1e-2], [0.0, -0.0032], atol=1e-12)
    np.testing.assert_allclose(d["linear"][1e-3], [0.0, 0.0], atol=1e-12)
    out = S.print_discrepancy(a, b, names=("linear",))
    assert out["tuned"] == pytest.approx(0.0032) and out["anywhere"] == pytest.approx(0.0032)
    with pytest.raises(ValueError, match="Invalid names"):
        S.same_runs_discrepancy(a, b, names=("cosine",))


def test_print_weight_decay_prints_the_gap_to_cosine_10(capsys):
    table = {n: {"peaks": [1e-3, 1e-2], "val_loss": v} for n, v in
             {"cosine": [[0.5, 0.5], [0.40, 0.42]], "linear": [[0.5, 0.5], [0.41, 0.40]],
              "cosine_10": [[0.45, 0.47], [0.5, 0.5]]}.items()}
    out = S.print_weight_decay({"results": {"results": {"0": table}}})
    text = capsys.readouterr().out
    # linear tuned at 1e-2 (0.41, 0.40); cosine_10 tuned at 1e-3 (0.45, 0.47)
    assert "linear - cosine_10 per seed: -0.0400 -0.0700 (mean -0.0550)" in text
    assert out[0.0] == pytest.approx(-0.005)


def _branch_record(name, budgets, wsd, cosine):
    return {"name": name, "results": {"budgets": budgets, "peaks": [1e-3, 1e-2],
                                      "val_loss": {"wsd": wsd, "cosine": cosine}}}


def test_print_branch_gaps_signs(capsys):
    one = _branch_record("a", [100, 200], [[[0.5, 0.5], [0.40, 0.42]], [[0.3, 0.3], [0.2, 0.2]]],
                         [[[0.45, 0.5], [0.41, 0.40]], [[0.3, 0.3], [0.25, 0.25]]])
    two = _branch_record("b", [200], [[[0.3, 0.3], [0.3, 0.3]]], [[[0.2, 0.2], [0.3, 0.3]]])
    gaps = S.print_branch_gaps([one, two], ["set a", "set b"])
    assert gaps[("a", 100)] == pytest.approx(0.005)     # 0.41 - 0.405
    assert gaps[("a", 200)] == pytest.approx(-0.05) and gaps[("b", 200)] == pytest.approx(0.1)
    text = capsys.readouterr().out
    assert "mixed" in text and "(one set)" in text and "WSD behind in 2 of 3" in text
    with pytest.raises(ValueError, match="Invalid labels"):
        S.print_branch_gaps([one], ["x", "y"])
