"""Chapter 2's experiments against exact enumeration, closed forms and torch's own code.

Every expected value comes from a formula, an enumeration written here, or
torch (torch.func, torch.optim.SGD, torch.autograd.functional.hessian), never
from a previous run of the functions under test.
"""
import itertools

import numpy as np
import pytest
import torch

from optbook.experiments import sgd as S
from optbook.experiments.training import mlp, teacher_classification, train


@pytest.fixture(scope="module")
def tiny_gradients():
    return np.random.default_rng(3).standard_normal((9, 3)) * [1.0, 2.0, 0.5] + [0.3, -1.0, 2.0]


# --- 2.1 unbiasedness and the variance law --------------------------------------------------

@pytest.mark.parametrize("batch_size", [1, 2, 4, 9])
def test_enumerated_mean_is_the_full_gradient(tiny_gradients, batch_size):
    # all C(9, b) batches, enumerated here independently of the module
    batches = [tiny_gradients[list(s)].mean(axis=0)
               for s in itertools.combinations(range(9), batch_size)]
    np.testing.assert_allclose(np.mean(batches, axis=0), tiny_gradients.mean(axis=0),
                               rtol=1e-13, atol=1e-14)
    mean, _ = S.exact_minibatch_moments(tiny_gradients, batch_size)
    np.testing.assert_allclose(mean, tiny_gradients.mean(axis=0), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 8, 9])
def test_enumerated_variance_equals_finite_population_formula(tiny_gradients, batch_size):
    n = len(tiny_gradients)
    full = tiny_gradients.mean(axis=0)
    sq = [np.sum((tiny_gradients[list(s)].mean(axis=0) - full) ** 2)
          for s in itertools.combinations(range(n), batch_size)]
    sigma2 = np.sum((tiny_gradients - full) ** 2) / n          # tr Σ, population covariance
    closed_form = sigma2 / batch_size * (n - batch_size) / (n - 1)
    assert np.mean(sq) == pytest.approx(closed_form, rel=1e-12, abs=1e-15)
    assert S.exact_minibatch_moments(tiny_gradients, batch_size)[1] == pytest.approx(
        closed_form, rel=1e-12, abs=1e-15)
    assert float(S.finite_population_variance(tiny_gradients, batch_size)) == pytest.approx(
        closed_form, rel=1e-12, abs=1e-15)


def test_with_replacement_variance_has_no_correction(tiny_gradients):
    # sequences with replacement: E||g_B - g||^2 = tr Σ / b exactly (contrast with the theorem)
    n, b = len(tiny_gradients), 2
    full = tiny_gradients.mean(axis=0)
    sq = [np.sum((tiny_gradients[list(s)].mean(axis=0) - full) ** 2)
          for s in itertools.product(range(n), repeat=b)]
    sigma2 = np.sum((tiny_gradients - full) ** 2) / n
    assert np.mean(sq) == pytest.approx(sigma2 / b, rel=1e-12)
    assert float(S.finite_population_variance(tiny_gradients, b)) < sigma2 / b


def test_monte_carlo_variance_is_close_to_formula(tiny_gradients):
    measured = S.minibatch_variance_curve(tiny_gradients, [1, 3], num_batches=40000, seed=1)
    exact = S.finite_population_variance(tiny_gradients, np.array([1, 3]))
    np.testing.assert_allclose(measured, exact, rtol=0.03)


def test_minibatch_samples_are_without_replacement():
    # a one-hot "gradient" per example: a batch mean has entries 1/b at b distinct places
    samples = S.minibatch_gradient_samples(np.eye(12), 5, 50, seed=0)
    assert np.all(np.sort(samples, axis=1)[:, -5:] == 0.2)
    assert np.all((samples > 0).sum(axis=1) == 5)


def test_per_example_gradients_match_autograd_one_by_one():
    data = teacher_classification(n_train=6, n_val=2, dim=5, classes=3, seed=1)
    model = mlp(5, 3, hidden=7, seed=2)
    rows = S.model_per_example_gradients(model, data.x_train, data.y_train)
    for i in range(6):
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(data.x_train[i:i + 1]),
                                          data.y_train[i:i + 1]).backward()
        expected = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).double().numpy()
        np.testing.assert_allclose(rows[i], expected, rtol=1e-5, atol=1e-7)


def test_loglog_slope_of_power_law():
    x = np.array([1.0, 2.0, 8.0, 32.0])
    assert S.loglog_slope(x, 3.0 * x ** -1.0) == pytest.approx(-1.0, abs=1e-12)
    with pytest.raises(ValueError, match="Invalid x, y"):
        S.loglog_slope([1, 2], [1, -1])


def test_bad_batch_sizes_raise(tiny_gradients):
    with pytest.raises(ValueError, match="Invalid batch_size"):
        S.minibatch_gradient_samples(tiny_gradients, 10, 5)
    with pytest.raises(ValueError, match="Invalid batch_size"):
        S.exact_minibatch_moments(tiny_gradients, 0)
    with pytest.raises(ValueError, match="Invalid batch_size"):
        S.finite_population_variance(tiny_gradients, 10)


def test_time_per_example_shape_and_sign():
    model = mlp(4, 2, hidden=8, seed=0)
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    t = S.time_per_example(model, x, y, [1, 16], repeats=1, examples_per_repeat=16)
    assert t.shape == (2,)
    with pytest.raises(ValueError, match="Invalid repeats"):
        S.time_per_example(model, x, y, [1], repeats=0)


# --- sharpness -----------------------------------------------------------------------------

def test_power_iteration_matches_full_hessian():
    torch.manual_seed(0)
    model = mlp(3, 2, hidden=4, depth=1, seed=0).double()
    x, y = torch.randn(20, 3, dtype=torch.float64), torch.randint(0, 2, (20,))
    params = list(model.parameters())
    shapes = [p.shape for p in params]
    sizes = [p.numel() for p in params]

    def loss(flat):
        chunks = torch.split(flat, sizes)
        p = {name: c.reshape(s) for (name, _), c, s in
             zip(model.named_parameters(), chunks, shapes)}
        return torch.nn.functional.cross_entropy(torch.func.functional_call(model, p, (x,)), y)

    flat = torch.cat([p.detach().reshape(-1) for p in params])
    hessian = torch.autograd.functional.hessian(loss, flat)
    top = float(torch.linalg.eigvalsh(hessian).abs().max())
    assert S.hessian_top_eigenvalue(model, x, y, iterations=300) == pytest.approx(top, rel=1e-4)


# --- escaping the shallow well ---------------------------------------------------------------

def test_double_well_critical_points_and_mean_gradient():
    well = S.double_well(n=16, tilt=0.2, offset_std=0.5, seed=0)
    assert abs(well.offsets.mean()) < 1e-15
    assert well.offsets.std() == pytest.approx(0.5, rel=1e-12)
    roots = well.critical_points()
    np.testing.assert_allclose(roots ** 3 - roots + 0.2, 0, atol=1e-12)
    assert roots[0] < 0 < roots[1] < roots[2]
    # the full gradient is the average of the per-example gradients x^3 - x + c + a_i
    x = 0.7
    assert np.mean(x ** 3 - x + 0.2 + well.offsets) == pytest.approx(well.grad(x), abs=1e-14)
    with pytest.raises(ValueError, match="Invalid tilt"):
        S.double_well(tilt=0.5)


def test_full_batch_gd_stays_in_the_shallow_well_and_matches_hand_iteration():
    well = S.double_well(n=16, tilt=0.25, seed=0)
    x = np.array([1.2])
    for _ in range(50):
        x = x - 0.1 * (x ** 3 - x + 0.25)
    final = S.double_well_escapes(well, 16, 0.1, 50, runs=3, x0=1.2)
    np.testing.assert_allclose(final, np.repeat(x, 3), rtol=1e-14)
    long = S.double_well_escapes(well, 16, 0.1, 2000, runs=1, x0=1.2)
    assert long[0] == pytest.approx(well.critical_points()[2], abs=1e-10)



def test_escape_counts_of_the_stored_rerun_are_counts_of_double_well_escapes():
    # the rerun function (make reruns) only counts what double_well_escapes returns
    well = S.double_well(n=16, tilt=0.25, offset_std=1.0, seed=3)
    top = well.critical_points()[1]
    counts = S.double_well_escape_counts(batch_sizes=[1, 4, 16], steps=60, seeds=[0, 5], runs=20,
                                         n=16, tilt=0.25, offset_std=1.0, well_seed=3)
    assert counts == {str(b): [int((S.double_well_escapes(well, b, 0.1, 60, runs=20, seed=s)
                                    < top).sum()) for s in (0, 5)]
                      for b in (1, 4, 16)}
    assert counts["16"] == [0, 0]      # full-batch descent never leaves the shallow well


# --- stored rerun of 2.1(b): the measures of batch_size_run, per seed ------------------------

def test_batch_size_long_runs_reports_batch_size_run_per_seed():
    out = S.batch_size_long_runs(batch_sizes=[8, 64], learning_rate=0.2, steps=6, seeds=[0, 1],
                                 hidden=8, label_noise=0.2, data_seed=0, eval_every=3)
    data = teacher_classification(label_noise=0.2, seed=0)
    for b in (8, 64):
        runs = [S.batch_size_run(data, b, 0.2, 6, hidden=8, eval_every=3, sharpness=True, seed=s)
                for s in (0, 1)]
        assert out[str(b)] == {
            "train_loss": [r.train_loss for r in runs],
            "train_accuracy": [r.train_accuracy for r in runs],
            "val_loss": [r.val_loss for r in runs],
            "val_accuracy": [r.val_accuracy for r in runs],
            "sharpness": [r.sharpness for r in runs],
            "lowest_val_loss": [float(r.history.val_loss.min()) for r in runs]}


# --- 2.2 linear scaling: the k = 1 run is an ordinary call of the shared train() ---------------

def test_linear_scaling_base_run_equals_train_with_torch_sgd():
    data = teacher_classification(n_train=256, n_val=64, seed=0)
    runs = S.linear_scaling_runs(data, [1, 2], base_batch=16, base_lr=0.1, epochs=2, hidden=16)
    model = mlp(20, 4, hidden=16, seed=0)
    by_hand = train(model, torch.optim.SGD(model.parameters(), lr=0.1), data, steps=32,
                    batch_size=16, eval_every=16, seed=0)
    np.testing.assert_allclose(runs[1].history.train_loss, by_hand.train_loss, rtol=1e-5)
    np.testing.assert_allclose(runs[1].history.val_loss, by_hand.val_loss, rtol=1e-5)
    assert runs[2].batch_size == 32 and runs[2].learning_rate == pytest.approx(0.2)
    assert len(runs[2].history.train_loss) == 16 and runs[2].epochs == 2


def test_warmup_run_uses_linear_warmup_rates():
    data = teacher_classification(n_train=256, n_val=64, seed=0)
    run = S.linear_scaling_runs(data, [4], base_batch=16, base_lr=0.1, epochs=2,
                                warmup_epochs=1, hidden=16)[4]
    # 4 steps per epoch, peak 0.4: eta_t = 0.4 * min(t, 4) / 4 (Goyal et al. 2017)
    np.testing.assert_allclose(run.history.lr, [0.4 * min(t, 4) / 4 for t in range(8)],
                               rtol=1e-12, atol=1e-15)


# --- 2.3 limits ------------------------------------------------------------------------------

@pytest.mark.parametrize("kappa", [1.0, 10.0, 100.0])
def test_steps_to_tolerance_matches_contraction_rate(kappa):
    # on f = (mu x^2 + L y^2)/2 each coordinate shrinks by |1 - eta*lambda| per step, so
    # f - f* is a sum of two geometric sequences; count steps directly from the closed form
    mu, L = 1.0, kappa
    eta = 2.0 / (L + mu)
    from optbook.landscapes import quadratic
    land = quadratic(kappa)
    x0, y0 = land.x0
    tol = 1e-6
    f0 = 0.5 * (mu * x0 ** 2 + L * y0 ** 2)
    t = 0
    while 0.5 * (mu * x0 ** 2 * (1 - eta * mu) ** (2 * t)
                 + L * y0 ** 2 * (1 - eta * L) ** (2 * t)) > tol * f0:
        t += 1
    assert S.steps_to_tolerance(kappa, tol=tol) == t


def test_steps_to_tolerance_none_when_diverging():
    assert S.steps_to_tolerance(10.0, learning_rate=0.25, max_steps=500) is None


def test_saddle_escape_steps_noise_free_never_escapes():
    assert S.saddle_escape_steps(0.0, [0, 1], steps=200) == [None, None]
    escapes = S.saddle_escape_steps(0.01, [0, 1, 2], steps=300)
    assert all(e is not None for e in escapes)


def test_learning_rate_sweep_flags_a_blown_up_run():
    data = teacher_classification(n_train=128, n_val=32, seed=0)
    # lr ~ 0 is the untrained baseline (about ln 4 for 4 classes)
    losses = S.learning_rate_sweep(data, [1e-12, 1.0, 1e6], batch_size=32, epochs=10, hidden=8)
    assert losses[1] < 0.6 * losses[0]  # a sensible rate trains well below the baseline
    # too large a rate either stops the run (nan) or leaves a huge loss; never a good one
    assert not losses[2] <= 10.0


def test_explorer_grid():
    explorer = S.sgd_noise_explorer(learning_rates=(0.1,), noise_levels=(0.0, 0.01), steps=5)
    assert explorer.grid == {"lr": (0.1,), "noise_std": (0.0, 0.01)}
