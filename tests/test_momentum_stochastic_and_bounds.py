"""Chapter 3's additions: Polyak's floor, NAG's optimum, the lower bound, Lessard-Recht-
Packard's counterexample, the noisy quadratic model, the double well and the tuned race.

Oracles: eigenvalues of 2x2 iteration matrices from ``numpy.linalg`` (not the module's root
formulas), ``torch.optim.SGD``, ``optbook.momentum``/``nesterov``/``sgd`` (themselves tested
against torch), the AR(2) variance checked by Monte Carlo, and linear systems solved here.
"""
import math

import numpy as np
import pytest
import torch

import optbook
from optbook import landscapes
from optbook.experiments import momentum as M


def _hb_radius(eta, beta, lam):
    """Spectral radius of momentum's 2x2 iteration matrix, by numpy.linalg (broadcasts)."""
    eta, beta, lam = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (eta, beta, lam)))
    T = np.zeros(eta.shape + (2, 2))
    T[..., 0, 0], T[..., 0, 1], T[..., 1, 0] = 1 + beta - eta * lam, -beta, 1.0
    return np.abs(np.linalg.eigvals(T)).max(-1)


def _nag_radius(eta, beta, lam):
    """The same for NAG (implemented form): x_{t+1} = (1+b)(1-eta lam) x_t - b(1-eta lam) x_{t-1}."""
    eta, beta, lam = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (eta, beta, lam)))
    q = 1 - eta * lam
    T = np.zeros(eta.shape + (2, 2))
    T[..., 0, 0], T[..., 0, 1], T[..., 1, 0] = (1 + beta) * q, -beta * q, 1.0
    return np.abs(np.linalg.eigvals(T)).max(-1)


# --- Polyak's missing step ---------------------------------------------------------------------

def test_every_beta_is_at_least_as_slow_as_one_minus_sqrt_eta_lambda():
    rng = np.random.default_rng(0)
    eta, beta, lam = rng.uniform(0.001, 1.0, 20000), rng.uniform(0, 0.999, 20000), \
        rng.uniform(0.01, 10, 20000)
    assert (_hb_radius(eta, beta, lam) >= np.abs(1 - np.sqrt(eta * lam)) - 1e-7).all()


@pytest.mark.parametrize("kappa", [4.0, 25.0, 100.0])
def test_best_beta_at_any_eta_is_no_faster_than_the_floor_and_polyak_attains_it(kappa):
    mu, L = 1.0, kappa
    betas = np.linspace(0, 0.995, 2000)
    eta_star, _ = M.polyak_parameters(mu, L)
    for scale in (0.5, 0.8, 1.0, 1.25, 1.6):
        eta = scale * eta_star
        best = np.maximum(_hb_radius(eta, betas, mu), _hb_radius(eta, betas, L)).min()
        floor = M.heavy_ball_rate_floor(eta, mu, L)
        assert best >= floor - 1e-6
        assert floor >= M.polyak_rate(kappa) - 1e-12
        if scale != 1.0:
            assert best > M.polyak_rate(kappa) + 1e-3
        rate, beta = M.best_rate_over_beta(eta, mu, L, betas)
        assert rate == pytest.approx(best, abs=1e-6)
    assert M.heavy_ball_rate_floor(eta_star, mu, L) == pytest.approx(M.polyak_rate(kappa))


# --- NAG's own optimum and the lower bound -------------------------------------------------------

@pytest.mark.parametrize("kappa", [10.0, 25.0])
def test_nesterov_optimal_parameters_beat_a_brute_force_grid(kappa):
    mu, L = 1.0, kappa
    lams = np.linspace(mu, L, 60)
    eta_opt, beta_opt = M.nesterov_optimal_parameters(mu, L)
    claimed = M.nesterov_optimal_rate(kappa)
    assert _nag_radius(eta_opt, beta_opt, lams).max() == pytest.approx(claimed, abs=1e-6)
    E, B, LAM = np.meshgrid(np.linspace(0.3, 1.6, 53) / L, np.linspace(0, 0.95, 77), lams,
                            indexing="ij")
    best = _nag_radius(E, B, LAM).max(-1).min()
    assert claimed <= best + 1e-9          # no grid point is faster ...
    assert best - claimed < 0.02           # ... and the grid gets close
    assert M.nesterov_rate_theory(eta_opt, beta_opt, mu, L) == pytest.approx(claimed, abs=1e-6)
    # the textbook choice eta = 1/L, beta = (sqrt k - 1)/(sqrt k + 1) gives 1 - 1/sqrt(k)
    assert M.nesterov_rate_theory(1 / L, M.polyak_rate(kappa), mu, L) == pytest.approx(
        1 - 1 / math.sqrt(kappa), abs=1e-6)


def test_lower_bound_is_polyaks_rate_and_nag_is_slower():
    for kappa in (2.0, 10.0, 1000.0):
        s = math.sqrt(kappa)
        assert M.first_order_lower_bound_rate(kappa) == pytest.approx((s - 1) / (s + 1))
        assert M.nesterov_optimal_rate(kappa) > M.first_order_lower_bound_rate(kappa)


@pytest.mark.parametrize("method", ["momentum", "nesterov", "nesterov_standard"])
def test_steps_to_shrink_matches_optbook(method):
    kappa, tol = 30.0, 1e-6
    if method == "momentum":
        (eta, beta), kind = M.polyak_parameters(1.0, kappa), "momentum"
    elif method == "nesterov":
        (eta, beta), kind = M.nesterov_optimal_parameters(1.0, kappa), "nesterov"
    else:
        eta, beta, kind = 1 / kappa, M.polyak_rate(kappa), "nesterov"
    x1 = M.momentum_on_1d_quadratic(1.0, eta, beta, 3000, method=kind)
    x2 = M.momentum_on_1d_quadratic(kappa, eta, beta, 3000, method=kind)
    norm = np.sqrt(x1 ** 2 + x2 ** 2)
    expected = int(np.flatnonzero(norm <= tol * math.sqrt(2))[0])
    assert M.steps_to_shrink(method, kappa, tol) == expected


@pytest.mark.parametrize("kappa", [10.0, 300.0])
def test_steps_to_shrink_for_gd_is_the_closed_form(kappa):
    # with eta = 2/(L + mu) both coordinates shrink by exactly (k - 1)/(k + 1) per step
    q = (kappa - 1) / (kappa + 1)
    expected = math.ceil(math.log(1e-6) / math.log(q))
    assert abs(M.steps_to_shrink("gd", kappa, 1e-6) - expected) <= 1   # rounding at the boundary


# --- Lessard, Recht & Packard ---------------------------------------------------------------------

def test_lessard_function_is_1_strongly_convex_and_25_smooth():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(-3, 4, 5000), rng.uniform(-3, 4, 5000)
    keep = np.abs(a - b) > 1e-6
    ratio = (M.lessard_gradient(a) - M.lessard_gradient(b))[keep] / (a - b)[keep]
    assert ratio.min() >= 1 - 1e-9 and ratio.max() <= 25 + 1e-9
    x = np.linspace(-3, 4, 701)
    h = 1e-6
    np.testing.assert_allclose((M.lessard_value(x + h) - M.lessard_value(x - h)) / (2 * h),
                               M.lessard_gradient(x), atol=1e-5)


def test_heavy_ball_with_polyaks_parameters_cycles_on_lessards_function():
    x = M.lessard_run("momentum", 3.3, 600)
    tail = x[-3:]
    # the 3-cycle, solved here: x_{k+1} = x_k + beta (x_k - x_{k-1}) - eta f'(x_k) with the
    # pieces the cycle visits (one point in [0, 1), one below 0, one above 2)
    eta, beta = 1 / 9, 4 / 9
    pieces = [(25.0, 0.0) if p < 1 else ((1.0, 24.0) if p < 2 else (25.0, -24.0)) for p in tail]
    A, rhs = np.zeros((3, 3)), np.zeros(3)
    for k in range(3):   # x_{k+1} - (1 + beta) x_k + beta x_{k-1} + eta (s_k x_k + c_k) = 0
        s, c = pieces[k]
        A[k, (k + 1) % 3] += 1
        A[k, k] += -(1 + beta) + eta * s
        A[k, (k - 1) % 3] += beta
        rhs[k] = -eta * c
    cycle = np.linalg.solve(A, rhs)
    np.testing.assert_allclose(tail, cycle, atol=1e-9)
    assert np.ptp(tail) > 3          # a real cycle, not the minimum
    for method in ("gd", "nesterov"):
        assert abs(M.lessard_run(method, 3.3, 600)[-1]) < 1e-9


# --- the noisy quadratic model -------------------------------------------------------------------

@pytest.mark.parametrize("beta", [0.0, 0.9])
def test_nqm_losses_follow_torch_sgd_on_the_same_noise(beta):
    lam = M.nqm_curvatures(5, 50.0)
    steps, batch, eta = 30, 8, 0.07
    losses = M.nqm_losses([eta], beta, batch, [3], steps, lam)
    xi = M.nqm_noise(3, steps, 5)
    p = torch.ones(5, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=eta, momentum=beta)
    h = torch.tensor(lam)
    for t in range(steps):
        assert losses[t, 0, 0] == pytest.approx(float(0.5 * (h * p.detach() ** 2).sum()), rel=1e-12)
        p.grad = h * p.detach() + torch.sqrt(h / batch) * torch.tensor(xi[t])
        opt.step()


@pytest.mark.parametrize("eta, beta", [(0.2, 0.0), (0.03, 0.9), (0.15, 0.5)])
def test_nqm_stationary_loss_is_what_a_long_run_settles_at(eta, beta):
    lam = M.nqm_curvatures(4, 10.0)
    losses = M.nqm_losses([eta], beta, 4, range(40), 3000, lam)
    measured = losses[1000:].mean()
    assert measured == pytest.approx(M.nqm_stationary_loss(eta, beta, 4, lam), rel=0.05)


def test_nqm_stationary_loss_reduces_to_sgds_and_to_sgd_at_eta_over_one_minus_beta():
    lam = np.array([0.5, 0.01])
    # beta = 0: sum eta lam / (2 B (2 - eta lam)) by hand
    assert M.nqm_stationary_loss(0.1, 0.0, 8, lam) == pytest.approx(
        sum(0.1 * l / (16 * (2 - 0.1 * l)) for l in lam))
    # small eta lam: momentum at (eta, beta) ~ SGD at eta/(1 - beta)
    a = M.nqm_stationary_loss(1e-4, 0.9, 8, lam)
    b = M.nqm_stationary_loss(1e-3, 0.0, 8, lam)
    assert a == pytest.approx(b, rel=1e-3)
    assert M.nqm_stationary_loss(10.0, 0.0, 8, lam) == math.inf


def test_batch_sweep_keeps_each_methods_best_mean():
    sweep = M.nqm_batch_sweep([4, 1024], [0.1, 0.5, 1.0], beta=0.9, seeds=(0, 1, 2), steps=60)
    for method in ("sgd", "momentum"):
        means = sweep.final[method].mean(-1)
        assert list(sweep.best_index[method]) == list(np.argmin(means, axis=1))
        np.testing.assert_array_equal(sweep.best(method)[1],
                                      sweep.final[method][1, sweep.best_index[method][1]])
    # the sweep's momentum cell is nqm_losses at eta = (1 - beta) * grid value
    direct = M.nqm_losses([0.05], 0.9, 1024, (0, 1, 2), 60, M.nqm_curvatures())[-40:].mean(0)
    np.testing.assert_allclose(sweep.final["momentum"][1, 1], direct[0])


# --- the double well -----------------------------------------------------------------------------

def test_double_well_critical_points():
    well = M.double_well(0.15)
    for x in (well.global_min, well.barrier, well.local_min):
        assert abs(float(well.grad(x))) < 1e-12
    assert well.global_min < well.barrier < well.local_min
    assert 3 * well.local_min ** 2 - 1 > 0 > 3 * well.barrier ** 2 - 1
    assert well.value(well.global_min) < well.value(well.local_min)


@pytest.mark.parametrize("beta", [0.0, 0.9])
def test_double_well_roll_is_optbook(beta):
    well = M.double_well(0.15)
    starts = [1.5, 2.0, 2.3]
    ours = M.double_well_roll(0.01, beta, starts, 500)
    opt = optbook.momentum(0.01, beta) if beta else optbook.sgd(0.01)
    x = np.array(starts)
    state = opt.init(x)
    for _ in range(500):
        u, state = opt.update(well.grad(x), state, x)
        x = optbook.apply_updates(x, u)
    np.testing.assert_allclose(ours, x, rtol=1e-12, atol=1e-12)


def test_double_well_escape_by_hand():
    well = M.double_well(0.15)
    assert M.double_well_escape(0.01, 0.9, 0.0, [0, 1, 2], 10, 200).max() == 0.0
    frac = M.double_well_escape(0.01, 0.9, 1.0, [5], 30, 400)
    xi = np.random.default_rng(5).standard_normal((400, 30))
    opt = optbook.momentum(0.01, 0.9)
    x = np.full(30, well.local_min)
    state, escaped = opt.init(x), np.zeros(30, bool)
    for t in range(400):
        u, state = opt.update(well.grad(x) + xi[t], state, x)
        x = optbook.apply_updates(x, u)
        escaped |= x < (well.barrier + well.global_min) / 2
        assert frac[t + 1, 0] == pytest.approx(escaped.mean())


# --- the race ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["rosenbrock", "beale"])
def test_race_steps_agree_with_steps_to_reach(name):
    land = landscapes.get_landscape(name)
    starts = M.race_starts(land, (0, 1))
    lrs, betas = ([1e-3, 3e-3], [0.8, 0.95]) if name == "rosenbrock" else ([5e-3, 3e-2], [0.7, 0.9])
    makers = {"gd": lambda lr, b: optbook.sgd(lr), "momentum": optbook.momentum,
              "nesterov": optbook.nesterov}
    for method in M.METHODS:
        got = M.race_steps(method, land, lrs, betas, starts, tol=1e-4, max_steps=3000)
        bs = [0.0] if method == "gd" else betas
        for i, lr in enumerate(lrs):
            for j, b in enumerate(bs):
                for k, x0 in enumerate(starts):
                    want = M.steps_to_reach(makers[method](lr, b), land, 1e-4, 3000, x0=x0)
                    assert got[i, j, k] == (-1 if want is None else want)


def test_tune_race_picks_the_smallest_worst_case():
    land = landscapes.get_landscape("beale")
    starts = M.race_starts(land, (0, 1, 2))
    res = M.tune_race("momentum", land, [2.5e-3, 5e-3, 1e-2], [0.5, 0.8], starts, max_steps=3000)
    ok = (res.steps >= 0).all(-1)
    worst = np.where(ok, res.steps.max(-1), 10 ** 9)
    assert worst[res.best] == worst.min()
    assert np.array_equal(starts[0], land.x0)
    assert np.abs(starts[1:] - np.array(land.x0)).max() <= 0.2


def test_new_bad_input_is_refused():
    with pytest.raises(ValueError, match="Invalid method"):
        M.steps_to_shrink("adam", 10.0)
    with pytest.raises(ValueError, match="Invalid method"):
        M.lessard_run("adam", 1.0, 3)
    with pytest.raises(ValueError, match="Invalid tilt"):
        M.double_well(0.5)
    with pytest.raises(ValueError, match="Invalid batch_size"):
        M.nqm_losses([0.1], 0.9, 0, [0], 10, M.nqm_curvatures())
    with pytest.raises(ValueError, match="Invalid method"):
        M.race_steps("adam", landscapes.beale(), [1e-3], [0.9], [[1.0, 1.5]])
    with pytest.raises(ValueError, match="Invalid L"):
        M.heavy_ball_rate_floor(0.1, 2.0, 1.0)
    with pytest.raises(ValueError, match="Invalid momentum value"):
        M.best_rate_over_beta(0.1, 1.0, 2.0, [1.0])


@pytest.mark.parametrize("method", M.METHODS)
def test_race_run_is_the_optbook_trajectory(method):
    land = landscapes.beale()
    starts = M.race_starts(land, (0, 1))
    path, values = M.race_run(method, land, 5e-3, 0.8, starts, 60)
    make = {"gd": lambda: optbook.sgd(5e-3), "momentum": lambda: optbook.momentum(5e-3, 0.8),
            "nesterov": lambda: optbook.nesterov(5e-3, 0.8)}[method]
    for k, x0 in enumerate(starts):
        ref = landscapes.trajectory(make(), land, x0=x0, steps=60, escape_factor=math.inf)
        np.testing.assert_allclose(path[:, k], ref.path, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(values[:, k], ref.values - land.min_value, rtol=1e-10,
                                   atol=1e-14)
