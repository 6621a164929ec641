"""Chapter 4's experiments against closed forms, hand transcriptions and torch.optim.

Every expected value comes from a formula, from an independent transcription of
the published update rule, or from torch -- never from a previous run of the
functions under test.
"""
import math

import numpy as np
import pytest
import torch

import optbook
from optbook.experiments import adaptive as A


# --- closed forms on a constant gradient ---------------------------------------------------

@pytest.mark.parametrize("g", [2.0, -0.3, 1e-3])
def test_adagrad_effective_rate_on_constant_gradient(g):
    # G_t = t g^2  ->  eta / (sqrt(t) |g| + eps)
    lr, eps, steps = 0.5, 1e-10, 50
    rates = A.effective_rates(optbook.adagrad(lr, eps=eps), np.full((steps, 1), g))[:, 0]
    t = np.arange(1, steps + 1)
    np.testing.assert_allclose(rates, lr / (np.sqrt(t) * abs(g) + eps), rtol=1e-12)
    np.testing.assert_allclose(A.adagrad_rate_theory(t, g, lr, eps), rates, rtol=1e-12)


def test_adagrad_effective_rate_eps_inside_sqrt():
    lr, eps, g = 0.1, 1e-2, 0.05
    rates = A.effective_rates(optbook.adagrad(lr, eps=eps, eps_inside_sqrt=True),
                              np.full((20, 1), g))[:, 0]
    t = np.arange(1, 21)
    np.testing.assert_allclose(rates, lr / np.sqrt(t * g * g + eps), rtol=1e-12)
    np.testing.assert_allclose(A.adagrad_rate_theory(t, g, lr, eps, True), rates, rtol=1e-12)


@pytest.mark.parametrize("decay", [0.5, 0.9, 0.99])
def test_rmsprop_second_moment_on_constant_gradient(decay):
    g, steps = 0.7, 40
    transform = optbook.scale_by_rms(decay, eps=1e-8)
    state = transform.init(np.zeros(1))
    for t in range(1, steps + 1):
        _, state = transform.update(np.array([g]), state)
        assert state["square_avg"][0] == pytest.approx((1 - decay ** t) * g * g, rel=1e-12)
    assert A.rms_second_moment_theory(steps, g, decay) == pytest.approx(
        (1 - decay ** steps) * g * g, rel=1e-14)


def test_rmsprop_effective_rate_matches_formula_both_eps_placements():
    lr, decay, eps, g = 0.01, 0.9, 1e-4, 3e-3
    t = np.arange(1, 31)
    for inside in (False, True):
        rates = A.effective_rates(optbook.rmsprop(lr, decay, eps, eps_inside_sqrt=inside),
                                  np.full((30, 1), g))[:, 0]
        v = (1 - decay ** t) * g * g
        expected = lr / (np.sqrt(v + eps) if inside else np.sqrt(v) + eps)
        np.testing.assert_allclose(rates, expected, rtol=1e-12)
        np.testing.assert_allclose(A.rmsprop_rate_theory(t, g, lr, decay, eps, inside), expected,
                                   rtol=1e-12)


def test_effective_rates_marks_zero_gradients_nan():
    rates = A.effective_rates(optbook.adagrad(0.1), np.array([[1.0, 0.0], [1.0, 2.0]]))
    assert math.isnan(rates[0, 1])
    assert rates[1, 1] == pytest.approx(0.1 / (2.0 + 1e-10))


def test_adagrad_distance_sum_and_bound():
    exact, bound = A.adagrad_distance_theory(10000, 0.1)
    assert exact == pytest.approx(0.1 * sum(1 / math.sqrt(t) for t in range(1, 10001)), rel=1e-12)
    assert bound == pytest.approx(20.0)
    # sum_{t<=T} t^-1/2 lies between 2 sqrt(T+1) - 2 and 2 sqrt(T) (integral comparison)
    assert 0.1 * (2 * math.sqrt(10001) - 2) <= exact <= bound


def test_rmsprop_first_step():
    for decay in (0.9, 0.99, 0.999):
        expected = 0.1 / math.sqrt(1 - decay)
        assert A.rmsprop_first_step_theory(0.1, decay) == pytest.approx(expected)
        step = A.rms_step_size(5.0, steps=1, decay=decay, eps=0.0, learning_rate=0.1)
        assert step == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="Invalid alpha value"):
        A.rmsprop_first_step_theory(0.1, 1.0)


# --- eps inside vs outside, by hand and against torch.optim ----------------------------------

def test_eps_placement_by_hand():
    # g = 1e-6, v = g^2 = 1e-12, eps = 1e-8
    inside = A.eps_step_theory(1e-6, 1e-12, eps=1e-8, eps_inside_sqrt=True)
    outside = A.eps_step_theory(1e-6, 1e-12, eps=1e-8, eps_inside_sqrt=False)
    assert inside == pytest.approx(1e-6 / math.sqrt(1e-12 + 1e-8), rel=1e-12)   # ~ 0.0099995
    assert outside == pytest.approx(1e-6 / (1e-6 + 1e-8), rel=1e-12)            # ~ 0.990099
    assert 98 < outside / inside < 100          # eps inside shrinks this step ~100-fold


@pytest.mark.parametrize("g", [1.0, 1e-4, 1e-6, 1e-8])
def test_rms_step_size_matches_torch_and_closed_forms(g):
    torch.set_num_threads(1)
    decay, eps, steps = 0.9, 1e-8, 200
    ours = A.rms_step_size(g, steps, decay, eps)
    assert ours == pytest.approx(A.torch_rmsprop_step_size(g, steps, decay, eps), rel=1e-10)
    v = (1 - decay ** steps) * g * g
    assert ours == pytest.approx(g / (math.sqrt(v) + eps), rel=1e-10)
    inside = A.rms_step_size(g, steps, decay, eps, eps_inside_sqrt=True)
    assert inside == pytest.approx(g / math.sqrt(v + eps), rel=1e-10)


def test_torch_rmsprop_step_size_agrees_with_optbook_torch_class():
    import optbook.torch as obt
    param = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = obt.RMSprop([param], lr=1.0, alpha=0.9, eps=1e-8)
    for _ in range(50):
        before = param.detach().clone()
        param.grad = torch.full_like(param, 1e-6)
        opt.step()
    step = float((param.detach() - before).abs()[0])
    assert step == pytest.approx(A.torch_rmsprop_step_size(1e-6, 50, 0.9, 1e-8), rel=1e-10)


# --- the long run down a Huber slope -------------------------------------------------------

def test_huber_loss_and_gradient():
    theta = np.array([-3.0, -0.5, 0.0, 0.4, 2.0])
    np.testing.assert_allclose(A.huber_loss(theta), [2.5, 0.125, 0.0, 0.08, 1.5])
    np.testing.assert_allclose(A.huber_grad(theta), [-1.0, -0.5, 0.0, 0.4, 1.0])
    t = torch.tensor(theta, requires_grad=True)
    torch.nn.functional.huber_loss(t, torch.zeros(5, dtype=torch.float64),
                                   reduction="sum", delta=1.0).backward()
    np.testing.assert_allclose(A.huber_grad(theta), t.grad.numpy())
    np.testing.assert_allclose(A.huber_loss(theta), torch.nn.functional.huber_loss(
        t.detach(), torch.zeros(5, dtype=torch.float64), reduction="none").numpy())


def test_adagrad_on_the_slope_follows_the_closed_form():
    lr, steps = 0.1, 2000
    run = A.slope_run(optbook.adagrad(lr, eps=1e-10), theta0=100.0, steps=steps)
    t = np.arange(1, steps + 1)
    np.testing.assert_allclose(run.rates, lr / (np.sqrt(t) + 1e-10), rtol=1e-12)
    np.testing.assert_allclose(run.theta[1:], 100.0 - np.cumsum(lr / (np.sqrt(t) + 1e-10)),
                               rtol=1e-12)
    exact, _ = A.adagrad_distance_theory(steps, lr)
    assert 100.0 - run.theta[-1] == pytest.approx(exact, rel=1e-9)
    np.testing.assert_allclose(run.loss, run.theta - 0.5)    # still on the slope


def test_rmsprop_on_the_slope_follows_the_closed_form_until_the_bowl():
    lr, decay, eps, steps = 0.1, 0.9, 1e-8, 300
    run = A.slope_run(optbook.rmsprop(lr, decay, eps), theta0=100.0, steps=steps)
    t = np.arange(1, steps + 1)
    expected = lr / (np.sqrt(1 - decay ** t) + eps)
    np.testing.assert_allclose(run.rates, expected, rtol=1e-10)
    np.testing.assert_allclose(run.theta[1:], 100.0 - np.cumsum(expected), rtol=1e-10)


def test_slope_run_validates():
    with pytest.raises(ValueError, match="Invalid steps"):
        A.slope_run(optbook.sgd(0.1), steps=0)
    with pytest.raises(ValueError, match="Invalid delta"):
        A.slope_run(optbook.sgd(0.1), delta=0.0)


# --- sparse features -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def sparse():
    return A.make_sparse_regression((0.5, 0.1, 0.01), n_examples=600, replicas=4,
                                    noise_std=0.3, seed=3)


def test_sparse_data_frequencies_and_targets(sparse):
    assert sparse.x.shape == (4, 600, 3)
    assert set(np.unique(sparse.x)) <= {0.0, 1.0}
    np.testing.assert_array_equal(sparse.counts, sparse.x.sum(axis=1))
    # activation frequencies within 5 binomial standard deviations of p_j
    p = sparse.frequencies
    observed = sparse.counts.sum(axis=0) / (4 * 600)
    assert np.all(np.abs(observed - p) < 5 * np.sqrt(p * (1 - p) / 2400))
    residual_noise = sparse.y - sparse.x @ sparse.true_w
    assert residual_noise.std() == pytest.approx(0.3, rel=0.1)


def test_adagrad_accumulator_is_activation_count_times_squared_gradient(sparse):
    # with eta = 0 the weights stay 0, the residual is -y_i, and
    # G_j = sum over the examples containing feature j of y_i^2
    run = A.train_sparse(sparse, "adagrad", 0.0)
    expected = np.einsum("rnd,rn->rd", sparse.x, sparse.y ** 2)
    np.testing.assert_allclose(run.accumulators, expected, rtol=1e-12)
    np.testing.assert_array_equal(run.weights, 0.0)
    # constant targets y = c make it literally count_j * c^2
    const = A.SparseData(x=sparse.x, y=np.full((4, 600), 2.0), true_w=sparse.true_w,
                         frequencies=sparse.frequencies, noise_std=0.0)
    run = A.train_sparse(const, "adagrad", 0.0)
    np.testing.assert_allclose(run.accumulators, 4.0 * sparse.counts, rtol=1e-12)
    np.testing.assert_allclose(run.effective_rates, 0.0)


def test_train_sparse_matches_a_hand_transcription_of_adagrad(sparse):
    # Duchi et al. (2011), diagonal AdaGrad, written out independently (eps outside, torch style)
    lr, eps = 0.3, 1e-10
    run = A.train_sparse(sparse, "adagrad", lr, eps=eps)
    for r in range(sparse.x.shape[0]):
        w = np.zeros(3)
        G = np.zeros(3)
        for x, y in zip(sparse.x[r], sparse.y[r]):
            g = (x @ w - y) * x
            G += g * g
            w -= lr * g / (np.sqrt(G) + eps)
        np.testing.assert_allclose(run.weights[r], w, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(run.accumulators[r], G, rtol=1e-12)
        np.testing.assert_allclose(run.effective_rates[r], lr / (np.sqrt(G) + eps), rtol=1e-12)
    np.testing.assert_allclose(run.rate_history[-1], run.effective_rates[0], rtol=1e-12)
    # the rate of a feature changes only at the steps whose example contains it
    # (NaN, "no gradient yet", stands in as -1: the first activation is a change too)
    changed = np.diff(np.nan_to_num(run.rate_history, nan=-1.0), axis=0) != 0
    np.testing.assert_array_equal(changed, sparse.x[0, 1:] == 1)
    first = sparse.x[0].argmax(axis=0)
    for j in range(3):
        assert np.all(np.isnan(run.rate_history[:first[j], j]))
        assert not np.any(np.isnan(run.rate_history[first[j]:, j]))


def test_train_sparse_sgd_and_rmsprop_match_torch(sparse):
    torch.set_num_threads(1)
    for name, make in (("sgd", lambda p: torch.optim.SGD(p, lr=0.05)),
                       ("rmsprop", lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9))):
        run = A.train_sparse(sparse, name, 0.05 if name == "sgd" else 0.01, decay=0.9)
        w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
        opt = make([w])
        x = torch.tensor(sparse.x[1])
        y = torch.tensor(sparse.y[1])
        for i in range(x.shape[0]):
            opt.zero_grad()
            (0.5 * (x[i] @ w - y[i]) ** 2).backward()
            opt.step()
        np.testing.assert_allclose(run.weights[1], w.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_adagrad_gives_rare_features_larger_rates(sparse):
    run = A.train_sparse(sparse, "adagrad", 0.3)
    mean_rates = run.effective_rates.mean(axis=0)
    assert mean_rates[0] < mean_rates[1] < mean_rates[2]


def test_noise_floor_and_rms_error(sparse):
    np.testing.assert_allclose(A.noise_floor(sparse), 0.3 / np.sqrt(600 * np.array([0.5, 0.1, 0.01])))
    run = A.SparseRun(weights=np.tile([1.0, 2.0, 0.0], (4, 1)), accumulators=None,
                      effective_rates=np.zeros((4, 3)), rate_history=np.zeros((600, 3)))
    np.testing.assert_allclose(A.per_feature_rms_error(run, sparse), [0.0, 1.0, 1.0])


def test_sparse_validation():
    with pytest.raises(ValueError, match="Invalid frequencies"):
        A.make_sparse_regression((0.5, 0.0))
    with pytest.raises(ValueError, match="Invalid true_w"):
        A.make_sparse_regression((0.5, 0.1), true_w=(1.0,))
    data = A.make_sparse_regression((0.5,), n_examples=10, replicas=1)
    with pytest.raises(ValueError, match="Invalid optimizer"):
        A.train_sparse(data, "lamb", 0.1)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        A.train_sparse(data, "adagrad", -0.1)


# --- anisotropic quadratics ---------------------------------------------------------------

def test_adagrad_is_invariant_to_axis_aligned_curvature():
    # on 1/2 sum_i lambda_i x_i^2 each coordinate moves by eta x / sqrt(sum_s x_s^2) (eps -> 0):
    # lambda_i cancels, so the path does not depend on kappa at all
    paths = [A.anisotropy_runs(kappa, 0.0, steps=40)["adagrad"].path for kappa in (1.0, 10.0, 1000.0)]
    # (eps = 1e-10 breaks the invariance only at the 1e-10 level)
    np.testing.assert_allclose(paths[1], paths[0], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(paths[2], paths[0], rtol=1e-7, atol=1e-9)


def test_rotation_breaks_the_invariance():
    a = A.anisotropy_runs(1.0, math.pi / 4, steps=40)["adagrad"].path
    b = A.anisotropy_runs(100.0, math.pi / 4, steps=40)["adagrad"].path
    assert np.abs(a - b).max() > 0.1


def test_sgd_in_anisotropy_runs_uses_the_best_fixed_step():
    # eta* = 2/(kappa+1): error factor (kappa-1)/(kappa+1) per step along both eigenvectors
    run = A.anisotropy_runs(10.0, 0.3, steps=20)["sgd"]
    ratio = np.linalg.norm(run.path[-1]) / np.linalg.norm(run.path[-2])
    assert ratio == pytest.approx(9 / 11, rel=1e-9)


def test_steps_to_tolerance():
    run = A.anisotropy_runs(1.0, 0.0, steps=5, learning_rates={"sgd": 0.5})["sgd"]
    # f_t = f_0 * (1 - 0.5)^(2t) on the isotropic bowl
    f0 = run.values[0]
    expected = next(t for t in range(6) if f0 * 0.25 ** t < 1e-2)
    assert A.steps_to_tolerance(run, 1e-2) == expected
    assert A.steps_to_tolerance(run, 1e-30) is None
    with pytest.raises(ValueError, match="Invalid tol"):
        A.steps_to_tolerance(run, 0.0)


def test_make_optimizer_validates():
    with pytest.raises(ValueError, match="Invalid optimizer"):
        A.make_optimizer("adam", 0.1)


def test_rmsprop_explorer_grid_and_runs():
    explorer = A.rmsprop_explorer(steps=5, lrs=(0.1,), decays=(0.9, 0.99))
    assert explorer.parameters == ("lr", "decay")
    runs = explorer.runs(decay=0.99)
    assert set(runs) == {"adagrad", "rmsprop"}
    # RMSprop's first step from v_0 = 0 moves each coordinate by eta / sqrt(1 - beta)
    first = np.abs(runs["rmsprop"].path[1] - runs["rmsprop"].path[0])
    np.testing.assert_allclose(first, 0.1 / math.sqrt(0.01), rtol=1e-6)
