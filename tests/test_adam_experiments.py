"""Chapter 5.1-5.3's experiments against closed forms and against torch.optim.

Every expected value below comes from a formula or from torch.optim, never from
a previous run of the functions under test.
"""
import math

import numpy as np
import pytest
import torch

import optbook
from optbook.experiments import adam as A
from optbook.experiments.training import epoch_batches, evaluate, mlp, teacher_classification


# --- 5.1 bias correction ----------------------------------------------------------------

@pytest.mark.parametrize("b1,b2", [(0.9, 0.999), (0.5, 0.99)])
def test_corrected_first_moment_equals_constant_gradient_from_step_one(b1, b2):
    g = -0.37
    run = A.adam_first_steps(A.constant_gradients(g, 12), b1, b2, eps=0.0)
    np.testing.assert_allclose(run.m_hat, g, rtol=1e-12)
    np.testing.assert_allclose(run.v_hat, g * g, rtol=1e-12)
    np.testing.assert_allclose(run.corrected, math.copysign(1.0, g), rtol=1e-12)


def test_uncorrected_moments_closed_forms():
    g, b1, b2 = 0.5, 0.9, 0.999
    run = A.adam_first_steps(A.constant_gradients(g, 10), b1, b2, eps=0.0)
    assert run.m[0] == pytest.approx((1 - b1) * g, rel=1e-14)
    assert run.v[0] == pytest.approx((1 - b2) * g * g, rel=1e-14)
    t = np.arange(1, 11)
    np.testing.assert_allclose(run.m, (1 - b1 ** t) * g, rtol=1e-12)
    np.testing.assert_allclose(run.uncorrected, (1 - b1 ** t) / np.sqrt(1 - b2 ** t), rtol=1e-12)
    # only m uncorrected: tiny first step (1 - b1); only v uncorrected: huge 1/sqrt(1 - b2)
    assert run.direction(False, True)[0] == pytest.approx(1 - b1, rel=1e-12)
    assert run.direction(True, False)[0] == pytest.approx(1 / math.sqrt(1 - b2), rel=1e-12)


def test_uncorrected_direction_is_scale_by_adam_without_correction():
    grads = A.noisy_gradients(0.3, 1.0, 20, seed=3)
    run = A.adam_first_steps(grads, 0.9, 0.999, eps=1e-8)
    np.testing.assert_allclose(run.uncorrected, run.direction(False, False), rtol=1e-12)
    np.testing.assert_allclose(run.corrected, run.direction(True, True), rtol=1e-12)


def test_monte_carlo_mean_of_ema_follows_bias_factor():
    t = np.arange(1, 31)
    mean = A.mean_of_ema(0.9, 30, mean=2.0, std=1.0, runs=20000, seed=1)
    np.testing.assert_allclose(mean, 2.0 * (1 - 0.9 ** t), atol=0.02)
    second = A.mean_of_ema(0.99, 30, mean=2.0, std=1.0, runs=20000, seed=2, square=True)
    np.testing.assert_allclose(second, 5.0 * (1 - 0.99 ** t), rtol=0.03)


# --- 5.2 hyper-parameters ----------------------------------------------------------------

def test_step_size_does_not_depend_on_gradient_scale():
    # same noise, gradients scaled by 1e-3 or 1e3: Adam's steps are identical up to eps
    small = A.step_size_over_lr(1e-3, 1e-3, steps=200)
    large = A.step_size_over_lr(1e-3, 1e3, steps=200)
    assert small == pytest.approx(large, rel=1e-4)
    # and in units of eta the step does not depend on eta either
    assert A.step_size_over_lr(1e-1, 1.0, steps=200) == pytest.approx(large, rel=1e-6)


@pytest.mark.parametrize("b1", [0.0, 0.5, 0.9])
def test_direction_noise_matches_ema_variance(b1):
    assert A.direction_noise(b1, steps=20000, seed=4) == pytest.approx(
        math.sqrt((1 - b1) / (1 + b1)), rel=0.06)


@pytest.mark.parametrize("b1", [0.0, 0.5, 0.9, 0.99])
def test_sign_flip_lag_matches_log2_formula(b1):
    expected = 1 if b1 == 0 else math.floor(math.log(2) / -math.log(b1)) + 1
    assert A.sign_flip_lag(b1) == expected
    assert A.sign_flip_lag_theory(b1) == expected


def test_epsilon_direction_is_g_over_g_plus_eps():
    for g in (1e-10, 1e-8, 1e-6, 1e-2):
        for eps in (1e-8, 1e-3):
            assert A.epsilon_direction(g, eps) == pytest.approx(g / (g + eps), rel=1e-9)


def test_scale_jump_stays_below_kingma_bound():
    # Cauchy-Schwarz: m^2 <= v * sum_i w_i^2 / u_i, with w_i = (1-b1) b1^k, u_i = (1-b2) b2^k
    for b2 in (0.99, 0.999, 0.9999):
        weights_sum = sum((1 - 0.9) ** 2 * 0.9 ** (2 * k) / ((1 - b2) * b2 ** k)
                          for k in range(20000))
        assert A.step_bound(0.9, b2) == pytest.approx(math.sqrt(weights_sum), rel=1e-9)
        peak, _ = A.scale_jump_response(b2, jump=1000.0)
        assert 1.0 < peak <= A.step_bound(0.9, b2)
    # b1 = b2: m_hat^2 <= v_hat by Cauchy-Schwarz (same weights), so the step never exceeds 1
    peak_equal, _ = A.scale_jump_response(0.9, jump=1000.0, b1=0.9)
    assert peak_equal <= 1.0 + 1e-12


# --- 5.3 effective weight decay ----------------------------------------------------------

def test_adam_l2_effective_decay_is_lr_wd_over_sqrt_vhat():
    # Constant loss gradients s at fixed theta: the total gradient h = s + lam*theta is
    # constant, so v_hat_k = h^2 exactly; the probe step (g = 0) feeds (lam*theta)^2.
    lr, lam, b2, eps, k = 1e-3, 0.1, 0.999, 1e-8, 50
    s = np.array([1e-3, 1e-2, 1.0, 10.0])
    theta = np.array([1.0, -2.0, 0.5, 3.0])
    decay, v_hat = A.decay_probe("adam_l2", np.tile(s, (k, 1)), theta, lr, lam, b2, eps)
    h = s + lam * theta
    v_next = b2 * (1 - b2 ** k) * h ** 2 + (1 - b2) * (lam * theta) ** 2
    expected_v_hat = v_next / (1 - b2 ** (k + 1))
    np.testing.assert_allclose(v_hat, expected_v_hat, rtol=1e-12)
    np.testing.assert_allclose(decay, lr * lam / (np.sqrt(expected_v_hat) + eps), rtol=1e-10)
    np.testing.assert_allclose(A.l2_decay_formula(expected_v_hat, lr, lam, eps), decay,
                               rtol=1e-10)


def test_adamw_shrink_is_exactly_one_minus_lr_wd_with_zero_gradient():
    lr, lam = 1e-2, 0.3
    theta = np.array([1.0, -2.0, 0.5])
    opt = optbook.adamw(lr, weight_decay=lam)
    state = opt.init(theta)
    for _ in range(5):
        updates, state = opt.update(np.zeros(3), state, theta)
        new = optbook.apply_updates(theta, updates)
        np.testing.assert_allclose(new, theta * (1 - lr * lam), rtol=1e-15)
        theta = new
    history = np.tile([1e-3, 1.0, 100.0], (20, 1))
    decay, _ = A.decay_probe("adamw", history, np.ones(3), lr, lam)
    np.testing.assert_allclose(decay, lr * lam, rtol=1e-12)


def test_noise_shrink_adamw_matches_uniform_decay_and_l2_depends_on_scale():
    scales = [1e-3, 1.0, 100.0]
    shrink_w = A.noise_shrink("adamw", scales, lr=1e-2, weight_decay=0.1, steps=500)
    # zero-mean noise: the mean parameter follows (1 - eta*lam)^T up to the walk's spread
    np.testing.assert_allclose(shrink_w, (1 - 1e-3) ** 500, atol=0.03)
    shrink_l2 = A.noise_shrink("adam_l2", scales, lr=1e-2, weight_decay=0.1, steps=500)
    assert shrink_l2[-1] == pytest.approx(math.exp(-500 * 1e-3 / 100), abs=0.03)
    assert abs(shrink_l2[0]) < 0.05       # the small-gradient parameter is wiped out
    assert A.mean_field_shrink_l2(100.0, steps=500) == pytest.approx(
        (1 - 1e-3 / math.sqrt(1e4 + 0.01)) ** 500, rel=1e-3)


def test_make_optimizer_rejects_unknown_kind():
    with pytest.raises(ValueError, match="Invalid kind"):
        A.make_optimizer("adam_w", 1e-3, 0.1)
    with pytest.raises(ValueError, match="Invalid weight_decay"):
        A.make_optimizer("adamw", 1e-3, -0.1)


# --- 5.3 the grid: one cell against torch.optim --------------------------------------------

def _torch_cell(cls, lr, wd, data, steps, batch_size, hidden, seed):
    model = mlp(data.x_train.shape[1], data.classes, hidden=hidden, depth=2, seed=seed)
    opt = cls(model.parameters(), lr=lr, weight_decay=wd)
    batches = epoch_batches(data.n_train, batch_size, torch.Generator().manual_seed(seed))
    for _ in range(steps):
        idx = next(batches)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx]).backward()
        opt.step()
    norm = float(torch.sqrt(sum((p.detach() ** 2).sum() for p in model.parameters())))
    return evaluate(model, data.x_val, data.y_val)[0], norm


@pytest.mark.parametrize("kind,cls,wd", [("adam_l2", torch.optim.Adam, 1e-2),
                                          ("adamw", torch.optim.AdamW, 0.5)])
def test_train_cell_matches_torch_optim_loop(kind, cls, wd):
    torch.set_num_threads(1)
    data = teacher_classification(n_train=128, n_val=256, dim=20, classes=4,
                                  label_noise=0.2, seed=1)
    cell = A.train_cell(kind, 3e-3, wd, data, steps=40, batch_size=32, hidden=16,
                        record_every=40, seed=2)
    val_loss, norm = _torch_cell(cls, 3e-3, wd, data, 40, 32, 16, 2)
    assert cell.final_val_loss == pytest.approx(val_loss, rel=1e-5)
    assert cell.weight_norms[-1] == pytest.approx(norm, rel=1e-5)
    assert list(cell.norm_steps) == [0, 40]


def test_grid_helpers():
    losses = np.array([[1.0, 1.05, 2.0], [1.2, 0.9, 0.95]])
    assert A.best_wd_per_lr(losses, [0.1, 1.0, 10.0]) == [0.1, 1.0]
    assert A.cells_within(losses, 0.1) == 2          # <= 0.99: 0.9 and 0.95
    assert A.cells_within(losses, 0.2) == 4          # <= 1.08


# --- several seeds in one run ---------------------------------------------------------------

@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("kind,cls,wd", [("adam_l2", torch.optim.Adam, 1e-2),
                                          ("adamw", torch.optim.AdamW, 0.5)])
def test_train_seeds_equals_separate_torch_optim_runs(kind, cls, wd, shared):
    # each copy of the stacked run is the torch.optim run of its own seed and data set
    torch.set_num_threads(1)
    seeds = (2, 5)
    datasets = [teacher_classification(n_train=128, n_val=256, dim=20, classes=4,
                                       label_noise=0.2, seed=s) for s in seeds]
    ours = optbook.torch.Adam if kind == "adam_l2" else optbook.torch.AdamW
    runs = A.train_seeds(lambda p: ours(p, lr=3e-3, weight_decay=wd), datasets, seeds,
                         steps=40, batch_size=32, hidden=16,
                         shared=shared, record_every=20)
    for s, (seed, data) in enumerate(zip(seeds, datasets)):
        val_loss, norm = _torch_cell(cls, 3e-3, wd, data, 40, 32, 16, seed)
        assert runs.final_val_loss[s] == pytest.approx(val_loss, rel=1e-4)
        assert runs.weight_norms[s, -1] == pytest.approx(norm, rel=1e-4)
    assert list(runs.norm_steps) == [0, 20, 40]


def test_train_seeds_records_update_norms_of_the_recorded_step():
    # record_every=1 with plain SGD: ||update|| = lr ||grad||, and norms follow the updates
    seeds = (0,)
    data = [teacher_classification(n_train=64, n_val=64, dim=20, classes=4, seed=0)]
    runs = A.train_seeds(lambda p: torch.optim.SGD(p, lr=0.0), data, seeds, steps=3,
                         batch_size=16, hidden=8, record_every=1)
    np.testing.assert_allclose(runs.update_norms, 0.0)                 # lr 0: nothing moves
    model = mlp(20, 4, hidden=8, depth=2, seed=0)
    expected = [float(p.detach().norm()) for p in model.parameters()]
    np.testing.assert_allclose(runs.layer_norms[0, 0], expected, rtol=1e-6)
    assert runs.names == [n for n, _ in model.named_parameters()]


def test_train_seeds_val_curve_equals_shorter_runs():
    # the validation loss recorded after step k is the final loss of a k-step run
    torch.set_num_threads(1)
    seeds = (0, 3)
    data = [teacher_classification(n_train=64, n_val=64, dim=20, classes=4, seed=s)
            for s in seeds]
    make = lambda p: optbook.torch.Adam(p, lr=1e-2)
    runs = A.train_seeds(make, data, seeds, steps=9, batch_size=16, hidden=8,
                         record_every=9, eval_every=4)
    assert list(runs.val_steps) == [4, 8, 9]
    for r, k in enumerate((4, 8)):
        short = A.train_seeds(make, data, seeds, steps=k, batch_size=16, hidden=8,
                              record_every=k)
        np.testing.assert_allclose(runs.val_curve[:, r], short.final_val_loss, rtol=1e-6)
    np.testing.assert_array_equal(runs.val_curve[:, -1], runs.final_val_loss)


def test_train_seeds_rejects_mismatched_datasets():
    data = teacher_classification(n_train=64, n_val=64, seed=0)
    with pytest.raises(ValueError, match="Invalid datasets"):
        A.train_seeds(lambda p: torch.optim.SGD(p, lr=0.1), [data], (0, 1), steps=2,
                      batch_size=16)


def test_seed_grid_cell_equals_train_cell_per_seed():
    torch.set_num_threads(1)
    grid = A.lr_wd_grid_seeds([3e-3], [0.1], seeds=(0, 1), n_train=64, steps=20,
                              batch_size=16, hidden=8, record_every=20)
    for kind in A.KINDS:
        assert grid.val_loss[kind].shape == (2, 1, 1)
        for s in (0, 1):
            cell = A.train_cell(kind, 3e-3, 0.1, A.grid_data(n_train=64, seed=s), steps=20,
                                batch_size=16, hidden=8, record_every=20, seed=s)
            assert grid.val_loss[kind][s, 0, 0] == pytest.approx(cell.final_val_loss, rel=1e-4)


def test_decay_steps_is_one_over_lr_wd():
    np.testing.assert_allclose(A.decay_steps([1e-2, 1e-3], [1.0, 10.0]),
                               [[100.0, 10.0], [1000.0, 100.0]])


# --- the stored rerun ---------------------------------------------------------------------

def test_lr_wd_grid_rerun_stores_the_grid_of_lr_wd_grid_seeds():
    """The rerun records norms only at the end; that must not change a single loss."""
    lrs, wds, seeds = (1e-2, 1e-1), (1e-2, 1.0), (0, 1)
    stored = A.lr_wd_grid_rerun(lrs, wds, seeds, steps=6, batch_size=32, hidden=8)
    grid = A.lr_wd_grid_seeds(lrs, wds, seeds, steps=6, batch_size=32, hidden=8,
                              record_every=1)
    for kind in A.KINDS:
        np.testing.assert_array_equal(stored["val_loss"][kind], grid.val_loss[kind])
    assert (stored["lrs"], stored["wds"], stored["seeds"], stored["steps"]) == \
        (list(lrs), list(wds), list(seeds), 6)


def test_reruns_are_declared_with_the_notebook_grid():
    for rerun in A.RERUNS:
        assert rerun.chapter == "05-adam" and rerun.function == "adam:lr_wd_grid_rerun"
        assert rerun.params["lrs"] == A.GRID_LRS and rerun.params["wds"] == A.GRID_WDS
