"""Chapter 1's experiments against closed forms and against torch's own code.

Every expected value below comes from a formula or from torch, never from a
previous run of the functions under test.
"""
import math

import numpy as np
import pytest
import torch

from optbook.experiments import set_seed
from optbook.experiments import foundations as F


@pytest.fixture(scope="module")
def data():
    return F.make_regression_data(n=256, seed=0)


# --- 1.1 / 1.2 ----------------------------------------------------------------

def test_risk_two_ways_agree_and_match_hand_formula(data):
    theta = np.array([0.7, -0.3])
    by_hand = float(np.mean((0.7 * data.x.numpy() - 0.3 - data.y.numpy()) ** 2))
    assert F.empirical_risk(theta, data) == pytest.approx(by_hand, rel=1e-14)
    assert F.empirical_risk_torch(theta, data) == pytest.approx(by_hand, rel=1e-14)


def test_risk_on_grid_matches_direct_mean(data):
    W, B = np.meshgrid([-1.0, 0.5, 2.0], [-2.0, 0.0, 1.5])
    expected = [[F.empirical_risk([w, b], data) for w, b in zip(rw, rb)] for rw, rb in zip(W, B)]
    np.testing.assert_allclose(F.risk_on_grid(W, B, data), expected, rtol=1e-12)


def test_autograd_gradient_equals_analytic_gradient(data):
    theta = np.array([0.7, -0.3])
    x, y = data.x.numpy(), data.y.numpy()
    residual = 0.7 * x - 0.3 - y
    analytic = np.array([np.mean(2 * residual * x), np.mean(2 * residual)])
    np.testing.assert_allclose(F.risk_gradient(theta, data), analytic, rtol=1e-12)
    torch_grad = F.risk_gradient(torch.tensor(theta), data)
    assert isinstance(torch_grad, torch.Tensor)
    np.testing.assert_allclose(torch_grad.numpy(), analytic, rtol=1e-12)


def test_risk_hessian_matches_torch_autograd_hessian(data):
    def risk(theta):
        return ((theta[0] * data.x + theta[1] - data.y) ** 2).mean()
    expected = torch.autograd.functional.hessian(risk, torch.tensor([0.3, -0.2],
                                                               dtype=torch.float64))
    np.testing.assert_allclose(F.risk_hessian(data), expected.numpy(), rtol=1e-12)


def test_risk_landscape_agrees_with_risk_and_autograd(data):
    land = F.risk_landscape(data)
    point = np.array([0.7, -0.3])
    assert float(land.value(point)) == pytest.approx(F.empirical_risk(point, data), rel=1e-12)
    np.testing.assert_allclose(land.grad(point), F.risk_gradient(point, data), rtol=1e-10)
    eigenvalues = np.linalg.eigvalsh(F.risk_hessian(data))
    assert (land.mu, land.L) == pytest.approx(tuple(eigenvalues))
    assert land.min_value == pytest.approx(F.empirical_risk(land.minima[0], data), rel=1e-12)


def test_gradient_descent_reaches_least_squares_solution(data):
    path = F.gradient_descent(lambda t: F.risk_gradient(t, data), np.zeros(2), 0.1, 400)
    assert path.shape == (401, 2)
    np.testing.assert_allclose(path[-1], F.least_squares_solution(data), atol=1e-8)


def test_gradient_descent_is_the_textbook_update():
    # one step on f = 1/2 ||theta||^2 scaled: theta_1 = theta_0 - eta * grad = (1 - eta) theta_0
    path = F.gradient_descent(lambda t: 3.0 * t, np.array([1.0, -2.0]), 0.1, 2)
    np.testing.assert_allclose(path[1], np.array([1.0, -2.0]) * 0.7)
    np.testing.assert_allclose(path[2], np.array([1.0, -2.0]) * 0.49)


def test_gradient_descent_rejects_negative_learning_rate():
    with pytest.raises(ValueError, match="Invalid learning rate"):
        F.gradient_descent(lambda t: t, np.ones(2), -0.1, 3)


# --- saddle -------------------------------------------------------------------

def test_gd_on_the_stable_manifold_never_escapes():
    run = F.saddle_run(learning_rate=0.1, steps=300, y0=0.0)
    assert run.escape_step is None
    assert np.all(run.path[:, 1] == 0.0)
    # x shrinks by (1 - eta) per step: it enters the 0.1-ball at the first t with 1.5 * 0.9^t < 0.1
    entry = math.ceil(math.log(0.1 / 1.5) / math.log(0.9))
    assert run.steps_near_saddle == 300 + 1 - entry


def test_escape_time_is_bracketed_by_the_linearised_dynamics():
    # y_{t+1} = y_t (1 + eta - eta y_t^2): between growth factors 1 + eta - eta r^2 and 1 + eta
    eta, y0, r = 0.1, 1e-8, 0.1
    run = F.saddle_run(learning_rate=eta, steps=400, y0=y0, escape_y=r)
    fast = F.linear_escape_steps(y0, eta, r)
    slow = math.log(r / y0) / math.log(1 + eta - eta * r * r)
    assert math.ceil(fast) <= run.escape_step <= math.ceil(slow)


def test_noise_escapes_the_saddle_quickly():
    for seed in range(3):
        run = F.saddle_run(learning_rate=0.1, steps=400, y0=0.0, noise_std=0.01, seed=seed)
        assert run.escape_step is not None and run.escape_step < 200
        assert abs(abs(run.path[-1, 1]) - 1.0) < 0.1     # it ends near a minimum (0, +-1)


# --- ill-conditioning ------------------------------------------------------------

@pytest.mark.parametrize("kappa", [2.0, 10.0, 100.0, 1000.0])
def test_best_step_contracts_at_kappa_rate_every_step(kappa):
    eta = F.best_learning_rate(1.0, kappa)
    assert eta == pytest.approx(2.0 / (kappa + 1.0))
    path = F.gd_on_quadratic(kappa, eta, 40).path
    theory = (kappa - 1) / (kappa + 1)
    assert F.best_contraction_rate(kappa) == pytest.approx(theory)
    assert F.measured_contraction_rate(path) == pytest.approx(theory, rel=1e-10)
    assert F.measured_contraction_rate(path, last=1) == pytest.approx(theory, rel=1e-10)


@pytest.mark.parametrize("kappa,eta", [(10.0, 0.05), (10.0, 0.15), (10.0, 0.195), (50.0, 0.01)])
def test_asymptotic_rate_is_max_of_the_two_eigen_factors(kappa, eta):
    path = F.gd_on_quadratic(kappa, eta, 600, angle=0.3).path
    expected = max(abs(1 - eta * 1.0), abs(1 - eta * kappa))
    assert F.contraction_rate_theory(eta, 1.0, kappa) == pytest.approx(expected)
    assert F.measured_contraction_rate(path, last=1) == pytest.approx(expected, rel=1e-6)


def test_step_above_two_over_L_diverges():
    # |1 - eta L| = 1.1 per step along the steep direction: 1.1^100 > 1e4
    path = F.gd_on_quadratic(10.0, 0.21, 100).path
    assert np.linalg.norm(path[-1]) > 1e3 * np.linalg.norm(path[0])


def test_best_learning_rate_validates():
    with pytest.raises(ValueError, match="Invalid L"):
        F.best_learning_rate(2.0, 1.0)
    with pytest.raises(ValueError, match="Invalid kappa"):
        F.best_contraction_rate(0.5)


# --- high dimension ---------------------------------------------------------------

def test_goe_positive_definite_fraction_matches_closed_forms():
    samples = 100000
    for dim, exact in [(1, 0.5), (2, (2 - math.sqrt(2)) / 4)]:
        p = F.fraction_positive_definite(dim, samples, seed=1)
        assert abs(p - exact) < 4 * math.sqrt(exact * (1 - exact) / samples)


def test_goe_fraction_collapses_with_dimension():
    fractions = [F.fraction_positive_definite(d, 20000, seed=2) for d in range(1, 6)]
    assert all(a > b for a, b in zip(fractions, fractions[1:]))
    assert fractions[-1] < 0.01 * fractions[0]


def test_random_hessians_are_symmetric_gaussian():
    # GOE with this scaling: E tr H^2 = d * 1 + d(d-1) * 1/2  (diag var 1, off-diag var 1/2)
    d = 6
    ev = F.random_hessian_eigenvalues(d, 20000, seed=3)
    assert np.mean((ev ** 2).sum(axis=1)) == pytest.approx(d + d * (d - 1) / 2, rel=0.02)


def test_hessian_memory_and_formatting():
    assert F.hessian_memory_bytes(1000) == (4000, 4_000_000)
    assert F.hessian_memory_bytes(10, bytes_per_number=2) == (20, 200)
    assert F.format_bytes(1536) == "1.54 KB"
    assert F.format_bytes(4e18) == "4 EB"
    with pytest.raises(ValueError, match="Invalid num_params"):
        F.hessian_memory_bytes(0)


# --- minibatch noise --------------------------------------------------------------

def test_per_example_gradients_match_analytic_and_average_to_full(data):
    theta = np.array([0.7, -0.3])
    x, y = data.x.numpy(), data.y.numpy()
    residual = 0.7 * x - 0.3 - y
    G = F.per_example_gradients(theta, data)
    np.testing.assert_allclose(G, np.stack([2 * residual * x, 2 * residual], 1), rtol=1e-12)
    np.testing.assert_allclose(G.mean(0), F.risk_gradient(theta, data), rtol=1e-12)


@pytest.mark.parametrize("batch_size", [1, 8, 64])
def test_minibatch_variance_matches_finite_population_formula(data, batch_size):
    G = F.per_example_gradients(np.zeros(2), data)
    measured = F.minibatch_gradient_variance(G, batch_size, num_batches=20000, seed=4)
    assert measured == pytest.approx(F.minibatch_variance_theory(G, batch_size), rel=0.05)


def test_full_batch_has_no_noise(data):
    G = F.per_example_gradients(np.zeros(2), data)
    assert F.minibatch_variance_theory(G, len(G)) == 0.0
    assert F.minibatch_gradient_variance(G, len(G), num_batches=5) == pytest.approx(0.0, abs=1e-20)
    with pytest.raises(ValueError, match="Invalid batch_size"):
        F.minibatch_gradients(G, len(G) + 1, 3)


# --- vanishing / exploding ---------------------------------------------------------

def test_deep_linear_net_scales_backprop_by_scale_per_layer():
    # linear net, std = scale / sqrt(n), output near 0 so dL/dh_D ~ -y is independent of the
    # weights: E ||W^T d||^2 = scale^2 ||d||^2, so log-norms fall by log(scale) per layer
    depth = 20
    norms = F.backprop_gradient_norms(depth=depth, width=256, activation="linear",
                                      init="xavier", scale=0.5, seed=5)
    steps_back_from_output = np.arange(depth - 1, -1, -1)
    slope = np.polyfit(steps_back_from_output, np.log(norms), 1)[0]
    assert slope == pytest.approx(math.log(0.5), rel=0.05)


def test_large_scale_explodes_at_least_geometrically():
    # with scale > 1 the output itself is large and correlated with the weights, so the
    # growth is faster than scale per layer (E||W^T W v||^2 = 2 scale^4 ||v||^2 for square W)
    depth = 20
    norms = F.backprop_gradient_norms(depth=depth, width=256, activation="linear",
                                      init="xavier", scale=1.5, seed=5)
    assert norms[0] / norms[-1] > 1.5 ** (depth - 1) / 10
    assert np.all(np.diff(np.log(norms)) < 0)


def test_xavier_tanh_and_he_relu_stay_within_a_bounded_ratio():
    tanh = F.backprop_gradient_norms(depth=24, width=128, activation="tanh", init="xavier", seed=6)
    relu = F.backprop_gradient_norms(depth=24, width=128, activation="relu", init="he", seed=6)
    assert tanh.max() / tanh.min() < 10
    assert relu.max() / relu.min() < 10


def test_half_scale_vanishes_geometrically():
    norms = F.backprop_gradient_norms(depth=24, width=128, activation="tanh", init="xavier",
                                      scale=0.5, seed=7)
    # tanh'(0) = 1, and small weights keep z near 0, so each layer halves the signal
    assert norms[0] / norms[-1] < 0.5 ** 23 * 10
    assert np.all(np.diff(np.log(norms)) > 0)


def test_backprop_norms_agree_with_torch_nn_sequential():
    # the same network built from nn.Linear layers, gradients read from hooks
    depth, width, batch = 5, 16, 8
    ours = F.backprop_gradient_norms(depth=depth, width=width, activation="tanh", init="xavier",
                                     scale=1.3, batch_size=batch, seed=8)
    generator = torch.Generator().manual_seed(8)
    layers, grads = [], []
    for _ in range(depth):
        lin = torch.nn.Linear(width, width, bias=False, dtype=torch.float64)
        with torch.no_grad():
            torch.nn.init.xavier_normal_(lin.weight, generator=generator)
            lin.weight.mul_(1.3)
        lin.register_full_backward_hook(lambda m, gin, gout: grads.append(gout[0].norm().item()))
        layers += [lin, torch.nn.Tanh()]
    x = torch.randn(batch, width, generator=generator, dtype=torch.float64)
    y = torch.randn(batch, width, generator=generator, dtype=torch.float64)
    x.requires_grad_(True)       # so the first layer's full backward hook has an input gradient
    loss = torch.nn.MSELoss(reduction="sum")(torch.nn.Sequential(*layers)(x), y) / (2 * batch)
    loss.backward()
    np.testing.assert_allclose(ours, grads[::-1], rtol=1e-10)


def test_backprop_validates_arguments():
    with pytest.raises(ValueError, match="Invalid activation"):
        F.backprop_gradient_norms(activation="sigmoidal")
    with pytest.raises(ValueError, match="Invalid scale"):
        F.backprop_gradient_norms(scale=0)


# --- seeding ---------------------------------------------------------------------------

def test_set_seed_makes_global_generators_repeat():
    set_seed(3)
    a = (np.random.rand(), torch.rand(1).item())
    set_seed(3)
    assert (np.random.rand(), torch.rand(1).item()) == a
    with pytest.raises(ValueError, match="Invalid seed"):
        set_seed(-1)


# --- steps to tolerance and the forward signal (issue 11) -------------------------------------

@pytest.mark.parametrize("kappa, tol", [(2.0, 1e-6), (10.0, 3e-5), (100.0, 1e-6), (1000.0, 1e-3)])
def test_steps_to_tolerance_at_the_best_rate(kappa, tol):
    # at eta* both directions shrink by exactly rho* = (kappa-1)/(kappa+1) per step,
    # so ||e_t|| = rho*^t ||e_0|| whatever the start
    rho = (kappa - 1) / (kappa + 1)
    assert F.gd_steps_to_tolerance(kappa, tol=tol) == math.ceil(math.log(tol) / math.log(rho))


def test_steps_to_tolerance_none_beyond_the_stability_limit():
    assert F.gd_steps_to_tolerance(10.0, learning_rate=0.21, max_steps=2000) is None
    with pytest.raises(ValueError, match="Invalid tol"):
        F.gd_steps_to_tolerance(10.0, tol=1.5)


@pytest.mark.parametrize("scale", [0.5, 1.5])
def test_relu_forward_signal_scales_as_s_to_the_layer(scale):
    # ReLU is positively homogeneous: W -> sW multiplies h_l by s^l exactly
    base = F.forward_activation_norms(depth=12, width=64, activation="relu", init="he",
                                      scale=1.0, seed=3)
    scaled = F.forward_activation_norms(depth=12, width=64, activation="relu", init="he",
                                        scale=scale, seed=3)
    np.testing.assert_allclose(scaled, base * scale ** np.arange(13), rtol=1e-12)


def test_tanh_forward_signal_is_bounded():
    norms = F.forward_activation_norms(depth=24, width=128, activation="tanh", init="xavier",
                                       scale=4.0, batch_size=64, seed=0)
    assert np.all(norms[1:] <= math.sqrt(64 * 128))     # every entry of h_l lies in (-1, 1)
