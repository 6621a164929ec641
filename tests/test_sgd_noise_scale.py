"""Chapter 2, noise matching and long runs: the noise floor, the gradient noise scale, spreads.

Expected values come from closed forms written here (the stationary variance
of a linear recursion; the definition of the noise scale on constructed
gradients), from torch (torch.func per-example gradients, torch.optim.SGD),
or from NumPy's own statistics; never from a previous run of the code.
"""
import math

import numpy as np
import pytest
import torch

from optbook.experiments import sgd as S
from optbook.experiments.training import mlp, teacher_classification, train


# --- spread over seeds -------------------------------------------------------------------------

def test_spread_is_mean_min_max_and_ignores_nan():
    sp = S.spread([3.0, 1.0, float("nan"), 2.0])
    assert (sp.mean, sp.low, sp.high) == (2.0, 1.0, 3.0)
    assert format(sp, ".1f") == "2.0 [1.0, 3.0]"
    with pytest.raises(ValueError, match="Invalid values"):
        S.spread([float("nan")])


# --- the noise floor ------------------------------------------------------------------------

@pytest.mark.parametrize("eta, batch", [(0.05, 1), (0.2, 4), (1.2, 16)])
def test_measured_noise_floor_matches_stationary_variance(eta, batch):
    # theta' = (1 - eta) theta + eta * xi, Var xi = 1/|B| (lambda = 1, sigma^2 = 1):
    # v = eta^2/|B| / (1 - (1 - eta)^2), and E[L - L*] = v / 2.
    v = eta ** 2 / batch / (1 - (1 - eta) ** 2)
    measured = S.quadratic_noise_floor(eta, batch, steps=3000, runs=200, seed=1)
    assert measured == pytest.approx(v / 2, rel=0.08)
    assert S.noise_floor_theory(eta, batch, 1.0, 1.0) == pytest.approx(v / 2, rel=1e-12)


def test_noise_floor_keeps_eta_over_batch_only_while_eta_lambda_is_small():
    small = S.noise_floor_theory(0.01, 1, 1.0, 1.0)
    assert S.noise_floor_theory(0.04, 4, 1.0, 1.0) == pytest.approx(small, rel=0.02)
    # at eta * lambda = 1 the factor 2 - eta*lambda has halved: the floor doubles
    assert S.noise_floor_theory(1.0, 100, 1.0, 1.0) == pytest.approx(2 * small * 1.99 / 2, rel=1e-9)


def test_noise_floor_rejects_unstable_rates():
    with pytest.raises(ValueError, match="Invalid learning_rate"):
        S.noise_floor_theory(2.0, 1, 1.0, 1.0)
    with pytest.raises(ValueError, match="Invalid batch_size"):
        S.noise_floor_theory(0.1, 0, 1.0, 1.0)
    assert S.quadratic_noise_floor(2.5, 1, steps=4000, runs=4) == math.inf


# --- the gradient noise scale ------------------------------------------------------------------

def test_gradient_noise_scale_on_constructed_gradients():
    # rows G +- a e_1 and G +- b e_2 (equal numbers): tr Sigma = (a^2 + b^2)/2, |G|^2 = g^2
    g, a, b = 0.5, 3.0, 1.0
    G = np.array([g, 0.0, 0.0])
    rows = [G + s * a * np.eye(3)[0] for s in (1, -1)] + [G + s * b * np.eye(3)[1] for s in (1, -1)]
    assert S.gradient_noise_scale(np.array(rows)) == pytest.approx((a * a + b * b) / 2 / g ** 2)
    with pytest.raises(ValueError, match="Invalid per_example"):
        S.gradient_noise_scale(np.ones(3))


def test_batch_estimate_agrees_with_per_example_noise_scale():
    data = teacher_classification(n_train=512, n_val=64, seed=0)
    model = mlp(20, 4, hidden=8, seed=0)
    per_example = torch.func.vmap(torch.func.grad(
        lambda p, xi, yi: torch.nn.functional.cross_entropy(
            torch.func.functional_call(model, p, (xi[None],)), yi[None])),
        in_dims=(None, 0, 0))({k: v.detach() for k, v in model.named_parameters()},
                              data.x_train, data.y_train)
    rows = torch.cat([v.reshape(512, -1) for v in per_example.values()], dim=1).double().numpy()
    exact = S.gradient_noise_scale(rows)
    estimate = S.batch_noise_scale(model, data.x_train, data.y_train, batch_size=32,
                                   num_batches=400, seed=0)
    # relative standard error of a mean of 400 squared norms is about sqrt(2/400) = 7 %
    assert estimate == pytest.approx(exact, rel=0.25)
    with pytest.raises(ValueError, match="Invalid batch_size"):
        S.batch_noise_scale(model, data.x_train, data.y_train, batch_size=512)


def test_noise_scale_during_training_follows_the_sgd_run():
    data = teacher_classification(n_train=256, n_val=64, seed=0)
    values = S.noise_scale_during_training(data, 16, 0.1, (0, 8), hidden=8, seed=2)
    fresh = mlp(20, 4, hidden=8, seed=2)
    assert values[0] == pytest.approx(S.batch_noise_scale(fresh, data.x_train, data.y_train,
                                                          seed=2), rel=1e-12)
    train(fresh, torch.optim.SGD(fresh.parameters(), lr=0.1), data, steps=8, batch_size=16,
          eval_every=8, seed=2)
    assert values[1] == pytest.approx(S.batch_noise_scale(fresh, data.x_train, data.y_train,
                                                          seed=10), rel=1e-5)


# --- long runs: sharpness and wall time recorded along the way --------------------------------

def test_batch_size_run_records_sharpness_and_time():
    data = teacher_classification(n_train=256, n_val=64, seed=0)
    run = S.batch_size_run(data, 32, 0.1, 16, hidden=8, sharpness_every=8, record_time=True,
                           seed=0)
    np.testing.assert_array_equal(run.history.extra["sharpness_steps"], [8, 16])
    seconds = run.history.extra["seconds"]
    assert len(seconds) == 16 and np.all(np.diff(seconds) >= 0)
    # the last recorded sharpness is that of the final model, by torch's dense Hessian
    model = mlp(20, 4, hidden=8, seed=0)
    train(model, torch.optim.SGD(model.parameters(), lr=0.1), data, steps=16, batch_size=32,
          eval_every=16, seed=0)
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss(vector):
        params, start = {}, 0
        for name, shape in zip(names, shapes):
            size = int(np.prod(shape))
            params[name] = vector[start:start + size].reshape(shape)
            start += size
        out = torch.func.functional_call(model, params, (data.x_train,))
        return torch.nn.functional.cross_entropy(out, data.y_train)

    hessian = torch.autograd.functional.hessian(loss, flat, vectorize=True)
    top = torch.linalg.eigvalsh(hessian).max().item()
    assert run.history.extra["sharpness"][-1] == pytest.approx(top, rel=0.05)


def test_warmup_rescue_runs_structure_and_rates():
    data = teacher_classification(n_train=256, n_val=64, seed=0)
    runs = S.warmup_rescue_runs(data, 4, seeds=(0, 1), base_batch=16, base_lr=0.1, epochs=3,
                                warmup_epochs=(0, 1), hidden=8, sharpness_every_epochs=1)
    assert set(runs) == {0, 1} and all(len(r) == 2 for r in runs.values())
    # 4 steps an epoch, peak 0.4; no warmup = constant rate, 1 epoch = 4-step ramp
    np.testing.assert_allclose(runs[0][0].history.lr, np.full(12, 0.4))
    np.testing.assert_allclose(runs[1][1].history.lr, [0.4 * min(t, 4) / 4 for t in range(12)],
                               atol=1e-15)
    assert len(runs[0][0].history.val_loss) == 3
    np.testing.assert_array_equal(runs[0][1].history.extra["sharpness_steps"], [4, 8, 12])
    with pytest.raises(ValueError, match="Invalid factor"):
        S.warmup_rescue_runs(data, 32, seeds=(0,), base_batch=16)


# --- the fast paths the chapter uses give the slow paths' numbers ------------------------------

def _torch_func_rows(model, x, y):
    """Per-example gradients by torch.func.vmap(grad): code nobody here wrote."""
    grads = torch.func.vmap(torch.func.grad(
        lambda p, xi, yi: torch.nn.functional.cross_entropy(
            torch.func.functional_call(model, p, (xi[None],)), yi[None])),
        in_dims=(None, 0, 0))({k: v.detach() for k, v in model.named_parameters()}, x, y)
    return torch.cat([v.reshape(len(x), -1) for v in grads.values()], dim=1).double().numpy()


def test_per_example_rows_equal_torch_func_and_reject_other_layers():
    data = teacher_classification(n_train=64, n_val=8, seed=3)
    model = mlp(20, 4, hidden=8, seed=1)
    np.testing.assert_allclose(S.model_per_example_gradients(model, data.x_train, data.y_train),
                               _torch_func_rows(model, data.x_train, data.y_train),
                               rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="Invalid model"):
        S.model_per_example_gradients(torch.nn.Sequential(torch.nn.Linear(20, 4),
                                                          torch.nn.LayerNorm(4)),
                                      data.x_train, data.y_train)


def test_exact_noise_scale_equals_the_per_example_route():
    data = teacher_classification(n_train=128, n_val=8, seed=0)
    model = mlp(20, 4, hidden=8, seed=4)
    expected = S.gradient_noise_scale(_torch_func_rows(model, data.x_train, data.y_train))
    assert S.model_gradient_noise_scale(model, data.x_train, data.y_train) == pytest.approx(
        expected, rel=1e-5)


def test_noise_scale_recorded_along_a_run_leaves_the_run_unchanged():
    data = teacher_classification(n_train=256, n_val=64, seed=0)
    plain = S.linear_scaling_runs(data, [1], base_batch=16, base_lr=0.1, epochs=1, hidden=8,
                                  seed=2)[1]
    measured = S.linear_scaling_runs(data, [1, 2], base_batch=16, base_lr=0.1, epochs=1,
                                     hidden=8, noise_scale_at=(0, 8), seed=2)
    np.testing.assert_array_equal(measured[1].history.train_loss, plain.history.train_loss)
    np.testing.assert_array_equal(measured[1].history.extra["noise_scale_steps"], [0, 8])
    assert len(measured[2].history.extra["noise_scale"]) == 0       # base run only
    # the value after step 8 is the noise scale of a model trained 8 steps by hand
    fresh = mlp(20, 4, hidden=8, seed=2)
    assert measured[1].history.extra["noise_scale"][0] == pytest.approx(
        S.gradient_noise_scale(_torch_func_rows(fresh, data.x_train, data.y_train)), rel=1e-5)
    train(fresh, torch.optim.SGD(fresh.parameters(), lr=0.1), data, steps=8, batch_size=16,
          eval_every=8, seed=2)
    assert measured[1].history.extra["noise_scale"][1] == pytest.approx(
        S.gradient_noise_scale(_torch_func_rows(fresh, data.x_train, data.y_train)), rel=1e-4)


@pytest.mark.parametrize("sigma", [0.0, 1e-4, 0.05])
def test_vectorised_saddle_escapes_equal_one_trajectory_per_seed(sigma):
    from optbook.experiments.foundations import saddle_run
    expected = [saddle_run(0.1, 300, y0=0.0, noise_std=sigma, seed=s).escape_step
                for s in range(6)]
    assert S.saddle_escape_steps(sigma, range(6), steps=300) == expected


def test_minibatch_draws_by_gather_and_by_matrix_product_hold_b_distinct_examples():
    # one-hot rows: a batch mean shows which examples it holds; b < 128 gathers rows,
    # b >= 128 multiplies by a 0/1 membership matrix: both must hold b distinct examples
    for n, b in ((10, 7), (300, 200)):
        samples = S.minibatch_gradient_samples(np.eye(n), b, 40, seed=1)
        np.testing.assert_allclose(np.sort(samples, axis=1)[:, -b:], 1 / b, rtol=1e-12)
        np.testing.assert_allclose(np.sort(samples, axis=1)[:, :n - b], 0, atol=1e-15)
    full = S.minibatch_gradient_samples(np.eye(10), 10, 3, seed=1)
    np.testing.assert_allclose(full, 0.1, rtol=1e-12)
    # the same uniforms pick the same batch either way: b = 127 (gather) is the
    # first 127 of the 128 that b = 128 (matrix product) picks, for each batch
    small = S.minibatch_gradient_samples(np.eye(400), 127, 5, seed=2) > 0
    large = S.minibatch_gradient_samples(np.eye(400), 128, 5, seed=2) > 0
    assert np.all(large[small])


def test_noise_floor_draws_in_chunks_give_the_step_by_step_numbers():
    # the recursion written out one step and one draw at a time, as the text states it
    def step_by_step(eta, batch, n, steps, runs, seed):
        rng = np.random.default_rng(seed)
        c = rng.standard_normal(n)
        c = (c - c.mean()) / np.sqrt(((c - c.mean()) ** 2).mean())
        theta, total, count = np.zeros(runs), 0.0, 0
        for t in range(steps):
            theta = theta - eta * (theta - c[rng.integers(n, size=(runs, batch))].mean(axis=1))
            if t >= steps // 2:
                total += float((0.5 * theta ** 2).sum())
                count += runs
        return total / count

    for eta, batch in ((0.1, 1), (0.5, 7)):
        assert S.quadratic_noise_floor(eta, batch, n=50, steps=300, runs=9, seed=4) == \
            step_by_step(eta, batch, 50, 300, 9, 4)


def test_steps_to_tolerance_first_horizon_does_not_change_the_count():
    # count by hand on the exact per-step factors, from a horizon far too short and far too long
    from optbook.landscapes import quadratic
    for kappa, lr in ((1000.0, None), (10.0, 0.05), (3.0, 0.6)):
        land = quadratic(kappa)
        eta = 2.0 / (land.L + land.mu) if lr is None else lr
        x0, y0 = land.x0
        f0 = 0.5 * (land.mu * x0 ** 2 + land.L * y0 ** 2)
        t = 0
        while 0.5 * (land.mu * x0 ** 2 * (1 - eta * land.mu) ** (2 * t)
                     + land.L * y0 ** 2 * (1 - eta * land.L) ** (2 * t)) > 1e-6 * f0:
            t += 1
        assert S.steps_to_tolerance(kappa, learning_rate=lr, tol=1e-6) == t
