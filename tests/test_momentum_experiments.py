"""Chapter 3's experiments against closed forms and against torch.optim.SGD.

Every expected value below comes from a formula (geometric sums, the roots of
a quadratic, Polyak's parameters) or from torch, never from a previous run of
the functions under test.
"""
import math

import numpy as np
import pytest
import torch

import optbook
from optbook import landscapes
from optbook.experiments import momentum as M


# --- 3.1 the velocity ------------------------------------------------------------------

@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.99])
def test_constant_gradient_velocity_is_the_geometric_sum(beta):
    steps, g = 60, 2.5
    v = M.velocity_sequence([g] * steps, beta)
    t = np.arange(1, steps + 1)
    np.testing.assert_allclose(v, g * (1 - beta ** t) / (1 - beta), rtol=1e-12)
    np.testing.assert_allclose(M.constant_gradient_velocity_theory(beta, steps, g), v, rtol=1e-12)


def test_velocity_tends_to_g_over_one_minus_beta():
    v = M.velocity_sequence([1.0] * 400, 0.9)
    assert v[-1] == pytest.approx(10.0, rel=1e-12)


@pytest.mark.parametrize("beta", [0.5, 0.9])
def test_alternating_gradient_velocity(beta):
    steps = 40
    grads = [(-1.0) ** k for k in range(steps)]
    v = M.velocity_sequence(grads, beta)
    by_hand = [sum(beta ** k * grads[t - k] for k in range(t + 1)) for t in range(steps)]
    np.testing.assert_allclose(v, by_hand, rtol=1e-12)
    np.testing.assert_allclose(M.alternating_gradient_velocity_theory(beta, steps), by_hand,
                               rtol=1e-12)
    long = M.velocity_sequence([(-1.0) ** k for k in range(400)], beta)
    assert abs(long[-1]) == pytest.approx(1 / (1 + beta), rel=1e-12)


@pytest.mark.parametrize("dampening", [0.0, 0.1, 0.5])
def test_velocity_sequence_is_torch_momentum_buffer(dampening):
    # torch.optim.SGD with lr = 1: the parameter moves by -v_t each step
    grads = [1.0, -0.5, 2.0, 0.25, 3.0]
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=1.0, momentum=0.8, dampening=dampening)
    expected = []
    for g in grads:
        before = p.detach().clone()
        p.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        expected.append(float(before - p.detach()))
    np.testing.assert_allclose(M.velocity_sequence(grads, 0.8, dampening), expected, rtol=1e-14)


def test_ema_form_with_rescaled_learning_rate_equals_article_form():
    land = landscapes.quadratic(25.0, angle=0.3)
    eta, beta = 0.02, 0.9
    article = landscapes.trajectory(optbook.momentum(eta, beta), land, steps=100)
    ema = landscapes.trajectory(M.ema_momentum(eta / (1 - beta), beta), land, steps=100)
    np.testing.assert_allclose(ema.path, article.path, rtol=0, atol=1e-12)
    # torch's dampened buffer starts at v_1 = g_1, so its first step is 1/(1 - beta) too long
    damped = landscapes.trajectory(optbook.momentum(eta / (1 - beta), beta, dampening=beta),
                                   land, steps=40)
    g0 = land.grad(np.array(land.x0))
    np.testing.assert_allclose(damped.path[1], np.array(land.x0) - eta / (1 - beta) * g0)
    # ... and afterwards its velocity is (1 - beta) times the article's recursion: by hand
    theta, v = np.array(land.x0), np.zeros(2)
    for t in range(40):
        g = land.grad(theta)
        v = g.copy() if t == 0 else beta * v + (1 - beta) * g
        theta = theta - eta / (1 - beta) * v
    np.testing.assert_allclose(damped.path[40], theta, rtol=1e-12)


def test_article_momentum_matches_torch_sgd_on_rosenbrock():
    land = landscapes.rosenbrock()
    ours = landscapes.trajectory(optbook.momentum(1e-3, 0.9), land, steps=50).path
    p = torch.tensor(land.x0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=1e-3, momentum=0.9)
    for t in range(50):
        np.testing.assert_allclose(p.detach().numpy(), ours[t], rtol=1e-12, atol=1e-14)
        opt.zero_grad()
        loss = (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2
        loss.backward()
        opt.step()


def test_small_helpers():
    assert M.sign_changes([1, -1, 0, -2, 3]) == 2
    assert M.sign_changes([1, -0.01, 1], threshold=0.1) == 0
    assert M.peak_overshoot([-2.0, -1.0, 0.5, 0.2, -0.1]) == 0.5
    assert M.peak_overshoot([1.0, 0.5, 0.1]) == 0.0
    assert M.settling_step([1.0, 0.5, 0.0001, 0.01, 0.0001], 1e-3) == 4
    assert M.settling_step([1.0, 1.0], 1e-3) is None
    assert M.steps_to_tolerance([3.0, 2.0, 0.5, 0.1], 0.5) == 2
    assert M.steps_to_tolerance([3.0, 2.0], 0.5) is None


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="Invalid momentum value"):
        M.velocity_sequence([1.0], 1.0)
    with pytest.raises(ValueError, match="Invalid momentum value"):
        M.ema_trace(-0.1)
    with pytest.raises(ValueError, match="Invalid method"):
        M.momentum_on_1d_quadratic(1.0, 0.1, 0.9, 10, method="adam")
    with pytest.raises(ValueError, match="Invalid L"):
        M.polyak_parameters(2.0, 1.0)
    with pytest.raises(ValueError, match="Invalid landscape"):
        M.explorer_runs("himmelblau", 1.0, 0.9)


# --- 3.2 Nesterov -------------------------------------------------------------------------

@pytest.mark.parametrize("land", [landscapes.quadratic(25.0, angle=0.4), landscapes.beale()],
                         ids=["quadratic", "beale"])
def test_lookahead_form_equals_optbook_nesterov(land):
    eta, beta, steps = (0.03, 0.9, 100) if land.name == "quadratic" else (2e-3, 0.8, 100)
    run = M.nesterov_lookahead(land.grad, land.x0, eta, beta, steps)
    implemented = landscapes.trajectory(optbook.nesterov(eta, beta), land, steps=steps,
                                        escape_factor=math.inf).path
    np.testing.assert_allclose(run.lookahead, implemented, rtol=0, atol=1e-12)
    # ... while the article's theta itself is a different sequence
    assert np.abs(run.theta - implemented).max() > 1e-3


def test_lookahead_form_equals_torch_sgd_nesterov():
    land = landscapes.quadratic(10.0, angle=0.2)
    eta, beta = 0.05, 0.9
    run = M.nesterov_lookahead(land.grad, land.x0, eta, beta, 30)
    p = torch.tensor(land.x0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=eta, momentum=beta, nesterov=True)
    for t in range(30):
        np.testing.assert_allclose(p.detach().numpy(), run.lookahead[t], rtol=1e-12, atol=1e-14)
        p.grad = torch.as_tensor(land.grad(p.detach().numpy()))
        opt.step()


def test_lookahead_first_two_steps_by_hand():
    # f = 1/2 * 4 x^2, grad = 4x; theta_0 = 1, eta = 0.1, beta = 0.5
    run = M.nesterov_lookahead(lambda x: 4 * x, [1.0], 0.1, 0.5, 2)
    v1 = 4 * 1.0                       # look-ahead point = theta_0 (v_0 = 0)
    th1 = 1.0 - 0.1 * v1
    v2 = 0.5 * v1 + 4 * (th1 - 0.1 * 0.5 * v1)
    th2 = th1 - 0.1 * v2
    np.testing.assert_allclose(run.theta[:, 0], [1.0, th1, th2], rtol=1e-15)
    np.testing.assert_allclose(run.velocity[:, 0], [0.0, v1, v2], rtol=1e-15)


# --- 3.3 physics and rates -----------------------------------------------------------------

def test_discretised_ode_is_momentum():
    m, c, h = 2.0, 0.3, 0.5
    eta, beta = M.heavy_ball_coefficients(m, c, h)
    # one step of m (x2 - 2x1 + x0)/h^2 + c (x1 - x0)/h + f'(x1) = 0 solved for x2
    x0, x1, grad = 1.0, 0.8, 3.0
    x2 = 2 * x1 - x0 - h * h / m * (c * (x1 - x0) / h + grad)
    assert x1 + beta * (x1 - x0) - eta * grad == pytest.approx(x2, rel=1e-14)
    assert M.heavy_ball_physics(eta, beta, h) == pytest.approx((m, c), rel=1e-12)


@pytest.mark.parametrize("eta,beta,lam", [(0.1, 0.2, 1.0), (0.1, 0.9, 1.0), (0.5, 0.5, 7.0),
                                          (0.1, 0.467, 1.0), (0.3, 0.0, 2.0)])
def test_spectral_radius_formula_is_the_matrix_eigenvalue(eta, beta, lam):
    expected = max(abs(np.linalg.eigvals(M.iteration_matrix(eta, beta, lam))))
    assert M.spectral_radius(eta, beta, lam) == pytest.approx(expected, rel=1e-7)


@pytest.mark.parametrize("beta", [0.0, 0.2, 0.7, 0.9])
def test_spectral_radius_is_the_measured_rate_on_a_1d_quadratic(beta):
    # eta * lambda = 0.1: critical damping at beta_c = (1 - sqrt(0.1))^2 = 0.4675
    x = M.momentum_on_1d_quadratic(1.0, 0.1, beta, 400)
    theory = M.spectral_radius(0.1, beta, 1.0)
    # the state norm of an oscillating (non-normal) iteration wobbles: a long window
    assert M.measured_rate(x, 100, 400) == pytest.approx(theory, rel=2e-3)


@pytest.mark.parametrize("beta", [0.3, 0.9, 0.95])
def test_nesterov_spectral_radius_is_its_measured_rate(beta):
    x = M.momentum_on_1d_quadratic(1.0, 0.1, beta, 1000, method="nesterov")
    matrix = np.array([[(1 + beta) * 0.9, -beta * 0.9], [1.0, 0.0]])   # x_{t+1} from (x_t, x_{t-1})
    theory = max(abs(np.linalg.eigvals(matrix)))
    assert M.nesterov_spectral_radius(0.1, beta, 1.0) == pytest.approx(theory, rel=1e-7)
    assert M.measured_rate(x, 100, 1000) == pytest.approx(theory, rel=2e-3)


def test_damping_regimes_and_critical_beta():
    beta_c = M.critical_beta(0.1, 1.0)
    assert beta_c == pytest.approx((1 - math.sqrt(0.1)) ** 2)
    assert M.damping_regime(0.1, beta_c, 1.0) == "critically damped"
    assert M.damping_regime(0.1, 0.2, 1.0) == "over-damped"
    assert M.damping_regime(0.1, 0.9, 1.0) == "under-damped"
    assert M.damping_regime(3.9, 0.9, 1.0) == "flipping"
    assert M.spectral_radius(0.1, beta_c, 1.0) == pytest.approx(1 - math.sqrt(0.1), rel=1e-9)


@pytest.mark.parametrize("kappa", [4.0, 25.0, 100.0])
def test_polyak_parameters_give_the_sqrt_kappa_rate(kappa):
    eta, beta = M.polyak_parameters(1.0, kappa)
    assert eta == pytest.approx(4 / (math.sqrt(kappa) + 1) ** 2)
    rate = (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)
    assert beta == pytest.approx(rate ** 2)
    assert M.polyak_rate(kappa) == pytest.approx(rate)
    # both ends of the spectrum: the eigenvalues of the 2x2 iteration matrix
    for lam in (1.0, kappa):
        radius = max(abs(np.linalg.eigvals(M.iteration_matrix(eta, beta, lam))))
        assert radius == pytest.approx(rate, rel=1e-6)
    # no nearby (eta, beta) does better
    for f_eta in (0.9, 1.1):
        for f_beta in (0.95, 1.0, 1.05):
            assert M.momentum_rate_theory(eta * f_eta, beta * f_beta, (1.0, kappa)) >= rate
    # and a run on the 2-D quadratic contracts at that rate (critical damping adds a factor t)
    path = landscapes.trajectory(optbook.momentum(eta, beta), landscapes.quadratic(kappa),
                                 steps=200, escape_factor=math.inf).path
    assert M.measured_rate(path, 100, 200) == pytest.approx(rate * 2 ** (1 / 100), rel=3e-3)


# --- the race and the widget ----------------------------------------------------------------

def test_steps_to_reach_agrees_with_trajectory():
    land = landscapes.beale()
    run = landscapes.trajectory(optbook.momentum(5e-3, 0.9), land, steps=600)
    expected = M.steps_to_tolerance(run.values, 1e-4, land.min_value)
    assert expected is not None
    assert M.steps_to_reach(optbook.momentum(5e-3, 0.9), land, 1e-4, 600) == expected
    assert M.steps_to_reach(optbook.momentum(5e-3, 0.9), land, 1e-4, expected - 1) is None


def test_tune_learning_rate_picks_the_fastest():
    land = landscapes.quadratic(10.0)
    result = M.tune_learning_rate("gd", land, [0.05, 2 / 11, 0.25], tol=1e-8, max_steps=2000)
    # 2/(L + mu) is the best constant step on a quadratic; 0.25 > 2/L diverges
    assert result.best_lr == pytest.approx(2 / 11)
    assert result.steps[2] is None
    assert result.best_steps == min(s for s in result.steps if s is not None)


def test_explorer_has_the_grid_and_runs_are_the_optimizers():
    ex = M.momentum_explorer()
    assert ex.parameters == ("landscape", "lr_scale", "beta")
    assert len(ex.points()) <= 30
    runs = M.explorer_runs("Rosenbrock", 1.0, 0.8)
    expected = landscapes.trajectory(optbook.nesterov(1e-3, 0.8), landscapes.rosenbrock(),
                                     steps=400)
    np.testing.assert_array_equal(runs["nesterov"].path, expected.path)


# --- Hessian eigenvalues (exercise on the race) and the widget's outcomes ---------------

def _rosenbrock_hessian(x, y, a=1.0, b=100.0):
    # by hand from f = (a - x)^2 + b (y - x^2)^2
    return np.array([[2 - 4 * b * (y - x * x) + 8 * b * x * x, -4 * b * x],
                     [-4 * b * x, 2 * b]])


@pytest.mark.parametrize("point", [(1.0, 1.0), (-1.2, 1.0), (0.3, -0.4)])
def test_hessian_eigenvalues_match_rosenbrocks_closed_form(point):
    expected = np.linalg.eigvalsh(_rosenbrock_hessian(*point))
    np.testing.assert_allclose(M.hessian_eigenvalues(landscapes.rosenbrock(), point), expected,
                               rtol=1e-6, atol=1e-6)


def test_hessian_eigenvalues_of_a_rotated_quadratic_are_mu_and_L():
    land = landscapes.quadratic(25.0, angle=np.pi / 6)
    np.testing.assert_allclose(M.hessian_eigenvalues(land, (0.7, -1.3)), [1.0, 25.0], rtol=1e-6)
    with pytest.raises(ValueError, match="Invalid step"):
        M.hessian_eigenvalues(land, (0.0, 0.0), step=0.0)


def test_explorer_outcomes_on_the_quadratic_follow_the_stability_limits():
    rows = M.explorer_outcomes()
    assert len(rows) == len(M.EXPLORER_LANDSCAPES) * 2 * 2 * 2
    for row in rows:
        assert (row["gap"] is None) == (row["diverged_at"] is not None)
    base_lr = M.EXPLORER_LANDSCAPES["quadratic (κ = 25)"][1]
    for row in (r for r in rows if r["landscape"] == "quadratic (κ = 25)"):
        eta_l = base_lr * row["lr_scale"] * 25.0          # eta * L, L = 25
        b = row["beta"]
        limit = 2 * (1 + b) if row["method"] == "momentum" else 2 * (1 + b) / (1 + 2 * b)
        assert (row["diverged_at"] is not None) == (eta_l > limit), row


def test_lessard_run_nesterov_standard_matches_torch_sgd_nesterov():
    """NAG at eta = 1/L, beta = (sqrt(kappa)-1)/(sqrt(kappa)+1) on Lessard et al.'s
    function, against torch.optim.SGD(nesterov=True) at 1/25 and 2/3 (the oracle)."""
    ours = M.lessard_run("nesterov_standard", 3.3, 60)
    x = torch.tensor([3.3], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([x], lr=1.0 / 25.0, momentum=2.0 / 3.0, nesterov=True)
    ref = [3.3]
    for _ in range(60):
        opt.zero_grad()
        x.grad = torch.as_tensor(M.lessard_gradient(x.detach().numpy()), dtype=torch.float64)
        opt.step()
        ref.append(float(x.detach()[0]))
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


def test_lessard_run_nesterov_standard_converges_from_many_starts():
    """The textbook NAG setting has a guarantee on every 1-strongly convex, 25-smooth
    function (Nesterov 2004); on this one it must converge from every start."""
    starts = np.linspace(-4.0, 4.0, 41)
    ends = M.lessard_run("nesterov_standard", starts, 600)[-1]
    assert np.abs(ends).max() < 1e-10
