"""Tests for optbook.landscapes.

Oracles: central finite differences and torch.autograd (derivatives),
published minimisers (Rosenbrock 1960, Beale 1958, Himmelblau 1972), and the
closed form x_t = (1 - eta*lambda)^t x_0 of gradient descent on a quadratic.
"""
import math
import warnings

import numpy as np
import pytest
import torch

from optbook.base import GradientTransformation, chain, scale_by_learning_rate, tree_map
from optbook.landscapes import (LANDSCAPES, Landscape, Trajectory, beale, get_landscape,
                                himmelblau, quadratic, rosenbrock, saddle, trajectory)

torch.set_num_threads(1)

CASES = {
    "quadratic": lambda: quadratic(10.0),
    "quadratic_rotated": lambda: quadratic(25.0, angle=0.6),
    "rosenbrock": rosenbrock,
    "rosenbrock_a2_b10": lambda: rosenbrock(a=2.0, b=10.0),
    "beale": beale,
    "saddle": saddle,
    "himmelblau": himmelblau,
}


@pytest.fixture(params=sorted(CASES))
def land(request) -> Landscape:
    return CASES[request.param]()


def sample_points(land: Landscape, n: int = 25, seed: int = 0) -> np.ndarray:
    """Points spread over the plot window, plus the start point."""
    rng = np.random.default_rng(seed)
    xs = rng.uniform(*land.xlim, n)
    ys = rng.uniform(*land.ylim, n)
    return np.vstack([np.stack([xs, ys], axis=1), np.array(land.x0)])


def gd(eta: float) -> GradientTransformation:
    return chain(scale_by_learning_rate(eta))


# --- derivatives --------------------------------------------------------------

def test_gradient_matches_central_differences(land):
    pts = sample_points(land)
    h = 1e-5
    ex, ey = np.array([h, 0.0]), np.array([0.0, h])
    fd = np.stack([(land.value(pts + ex) - land.value(pts - ex)) / (2 * h),
                   (land.value(pts + ey) - land.value(pts - ey)) / (2 * h)], axis=-1)
    g = land.grad(pts)
    # rounding error of the difference quotient ~ eps*|f|/h; truncation ~ h^2
    tolerance = 1e-6 * np.abs(fd) + 1e-8 * np.maximum(1.0, np.abs(land.value(pts)))[:, None]
    error = np.abs(g - fd)
    assert np.all(error <= tolerance), (error / tolerance).max()


def test_gradient_matches_autograd(land):
    pts = torch.tensor(sample_points(land), dtype=torch.float64)
    x = pts[:, 0].clone().requires_grad_(True)
    y = pts[:, 1].clone().requires_grad_(True)
    gx, gy = torch.autograd.grad(land.value(x, y).sum(), (x, y))
    g = land.grad(pts)
    assert isinstance(g, torch.Tensor) and g.dtype == torch.float64
    expected = torch.stack([gx, gy], dim=-1)
    torch.testing.assert_close(g, expected, rtol=1e-12, atol=1e-12 * expected.abs().max().item())


def test_hessian_diag_matches_autograd(land):
    pts = torch.tensor(sample_points(land), dtype=torch.float64)
    x = pts[:, 0].clone().requires_grad_(True)
    y = pts[:, 1].clone().requires_grad_(True)
    gx, gy = torch.autograd.grad(land.value(x, y).sum(), (x, y), create_graph=True)
    (hxx,) = torch.autograd.grad(gx.sum(), x, retain_graph=True)
    (hyy,) = torch.autograd.grad(gy.sum(), y)
    expected = torch.stack([hxx, hyy], dim=-1)
    h = land.hessian_diag(pts)
    assert h.shape == (len(pts), 2)
    torch.testing.assert_close(h, expected, rtol=1e-12, atol=1e-12 * expected.abs().max().item())


@pytest.mark.parametrize("kappa, angle", [(1.0, 0.0), (10.0, 0.0), (50.0, math.pi / 4), (7.0, -1.1)])
def test_quadratic_curvature_constants(kappa, angle):
    land = quadratic(kappa, angle)
    point = torch.tensor([0.3, -0.7], dtype=torch.float64)
    hessian = torch.autograd.functional.hessian(lambda p: land.value(p), point)
    eigenvalues = torch.linalg.eigvalsh(hessian)
    assert land.mu == 1.0 and land.L == kappa
    torch.testing.assert_close(eigenvalues, torch.tensor([1.0, kappa], dtype=torch.float64))
    torch.testing.assert_close(land.hessian_diag(point), torch.diagonal(hessian))
    # the steep direction is (-sin, cos): f = kappa/2 along it
    steep = np.array([-math.sin(angle), math.cos(angle)])
    assert land.value(steep) == pytest.approx(kappa / 2, rel=1e-14)


# --- minima and critical points ----------------------------------------------------

# Literature values: Rosenbrock (1960) (a, a^2); Beale (1958) (3, 0.5);
# Himmelblau (1972), as tabulated to six decimals in surveys of test functions
# (e.g. Wikipedia, "Test functions for optimization").
LITERATURE_MINIMA = {
    "rosenbrock": [(1.0, 1.0)],
    "beale": [(3.0, 0.5)],
    "himmelblau": [(3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186),
                   (3.584428, -1.848126)],
}


@pytest.mark.parametrize("name", sorted(LITERATURE_MINIMA))
def test_minima_match_literature(name):
    land = get_landscape(name)
    literature = np.array(LITERATURE_MINIMA[name])
    ours = np.array(land.minima)
    assert ours.shape == literature.shape
    order = lambda a: a[np.lexsort(a.T[::-1])]
    np.testing.assert_allclose(order(ours), order(literature), atol=1.5e-6)
    assert land.min_value == 0.0
    # the six-decimal points are within rounding of a zero of f ...
    assert np.all(land.value(literature) < 1e-9)
    # ... and ours are zeros to double precision, with zero gradient
    np.testing.assert_allclose(land.value(ours), 0.0, atol=1e-25)
    np.testing.assert_allclose(land.grad(ours), 0.0, atol=1e-12)


def test_minima_are_strict_local_minima(land):
    for m in land.minima:
        point = torch.tensor(m, dtype=torch.float64)
        hessian = torch.autograd.functional.hessian(lambda p: land.value(p), point)
        assert torch.linalg.eigvalsh(hessian).min() > 0
        assert float(land.value(np.array(m))) == pytest.approx(land.min_value, abs=1e-25)
        np.testing.assert_allclose(land.grad(np.array(m)), 0.0, atol=1e-12)


def test_rosenbrock_general_minimum():
    land = rosenbrock(a=2.0, b=10.0)
    assert land.minima == ((2.0, 4.0),)
    assert land.value(2.0, 4.0) == 0.0


def test_saddle_critical_points():
    land = saddle()
    assert land.saddle_points == ((0.0, 0.0),)
    np.testing.assert_array_equal(land.grad(np.zeros(2)), [0.0, 0.0])
    np.testing.assert_array_equal(land.hessian_diag(np.zeros(2)), [1.0, -1.0])  # a saddle
    for m in land.minima:
        assert float(land.value(np.array(m))) == -0.25
    # bounded below: the minimum value is the smallest over a fine grid
    X, Y, Z = land.grid(401)
    assert Z.min() >= -0.25


# --- evaluation forms ----------------------------------------------------------

def test_grid_equals_pointwise(land):
    xs = np.linspace(*land.xlim, 7)
    ys = np.linspace(*land.ylim, 9)
    X, Y = np.meshgrid(xs, ys)
    Z, G, H = land.value(X, Y), land.grad(X, Y), land.hessian_diag(X, Y)
    assert Z.shape == (9, 7) and G.shape == (9, 7, 2) and H.shape == (9, 7, 2)
    for i in range(9):
        for j in range(7):
            p = np.array([X[i, j], Y[i, j]])
            assert Z[i, j] == land.value(float(p[0]), float(p[1]))
            np.testing.assert_array_equal(G[i, j], land.grad(p))
            np.testing.assert_array_equal(H[i, j], land.hessian_diag(p))
    # stacked points and broadcasting (sparse meshgrid) give the same grid
    np.testing.assert_array_equal(land.value(np.stack([X, Y], axis=-1)), Z)
    np.testing.assert_array_equal(land.value(xs[None, :], ys[:, None]), Z)
    np.testing.assert_array_equal(land.grad(xs[None, :], ys[:, None]), G)


def test_torch_and_numpy_evaluations_agree(land):
    pts = sample_points(land)
    t = torch.tensor(pts, dtype=torch.float64)
    for method in ("value", "grad", "hessian_diag"):
        np.testing.assert_allclose(getattr(land, method)(t).numpy(),
                                   getattr(land, method)(pts), rtol=1e-13, atol=1e-13)
    Xt, Yt = torch.meshgrid(t[:, 0], t[:, 1], indexing="xy")
    assert land.value(Xt, Yt).shape == (len(pts), len(pts))


def test_grid_and_contour_levels(land):
    X, Y, Z = land.grid(31)
    assert X.shape == Y.shape == Z.shape == (31, 31)
    assert (X.min(), X.max(), Y.min(), Y.max()) == (*land.xlim, *land.ylim)
    levels = land.contour_levels(12)
    assert len(levels) == 12 and np.all(np.diff(levels) > 0)
    assert levels[0] > land.min_value
    assert levels[-1] == pytest.approx(land.grid()[2].max())     # default grid: 201 points


def test_integer_inputs_are_promoted():
    land = rosenbrock()
    assert land.value(np.array([1, 1])) == 0.0
    assert land.grad(torch.tensor([0, 0])).dtype == torch.get_default_dtype()


def test_bad_point_shape():
    with pytest.raises(ValueError, match="last axis of length 2"):
        beale().value(np.zeros(3))


# --- registry ----------------------------------------------------------------------

def test_registry():
    assert set(LANDSCAPES) == {"quadratic", "rosenbrock", "beale", "saddle", "himmelblau"}
    for name, constructor in LANDSCAPES.items():
        land = constructor()
        assert land.name == name and isinstance(land.title, str) and land.formula
        for point in (land.x0, *land.minima, *land.saddle_points):
            assert land.xlim[0] <= point[0] <= land.xlim[1]
            assert land.ylim[0] <= point[1] <= land.ylim[1]
    assert get_landscape("quadratic", kappa=4.0, angle=0.3).L == 4.0
    with pytest.raises(ValueError, match="Invalid landscape: 'nope'"):
        get_landscape("nope")


@pytest.mark.parametrize("kwargs, match", [({"kappa": 0.5}, "kappa"), ({"kappa": math.nan}, "kappa"),
                                           ({"angle": math.inf}, "angle")])
def test_quadratic_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=f"Invalid {match}"):
        quadratic(**kwargs)


# --- trajectories --------------------------------------------------------------------

def closed_form_gd(kappa, angle, x0, eta, steps):
    """x_t = Q diag((1 - eta*lambda_i)^t) Q^T x_0 with Q the eigenvectors."""
    c, s = math.cos(angle), math.sin(angle)
    Q = np.array([[c, -s], [s, c]])            # columns: eigenvalue 1, eigenvalue kappa
    t = np.arange(steps + 1)[:, None]
    coeffs = (Q.T @ np.asarray(x0)) * np.array([1 - eta, 1 - eta * kappa]) ** t
    return coeffs @ Q.T


@pytest.mark.parametrize("kappa, angle, eta", [(10.0, 0.0, 0.15), (10.0, 0.5, 0.15),
                                               (4.0, -0.3, 0.45), (1.0, 0.0, 1.0)])
def test_gd_on_quadratic_matches_closed_form(kappa, angle, eta):
    land = quadratic(kappa, angle)
    result = trajectory(gd(eta), land, steps=60)
    assert isinstance(result, Trajectory)
    assert result.path.shape == (61, 2) and result.values.shape == (61,)
    assert not result.diverged and result.diverged_at is None
    expected = closed_form_gd(kappa, angle, land.x0, eta, 60)
    np.testing.assert_allclose(result.path, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.values, land.value(expected), rtol=1e-12, atol=1e-15)


def test_divergence_beyond_two_over_L_is_reported(recwarn):
    land = quadratic(10.0)
    eta = 2.5 / land.L                        # |1 - eta*L| = 1.5 > 1
    result = trajectory(gd(eta), land, steps=200)
    expected = closed_form_gd(10.0, 0.0, land.x0, eta, 200)
    # the box is the window [-3, 3]^2 enlarged ten times: |coordinate| <= 30
    first_out = int(np.argmax(np.abs(expected).max(axis=1) > 30.0))
    assert result.diverged and result.diverged_at == first_out
    t = result.diverged_at
    np.testing.assert_allclose(result.path[:t], expected[:t], rtol=1e-12, atol=0)
    assert np.all(result.path[t:] == result.path[t - 1])
    assert np.all(result.values[t:] == result.values[t - 1])
    assert np.all(np.isfinite(result.path)) and np.all(np.isfinite(result.values))
    assert len(recwarn) == 0
    # just below 2/L the same start converges
    assert not trajectory(gd(1.99 / land.L), land, steps=200).diverged


def test_overflow_is_caught_without_warnings(recwarn):
    land = rosenbrock()
    # without the guard this point overflows with RuntimeWarnings, so the test can fail
    with pytest.warns(RuntimeWarning):
        land.grad(np.array([1e200, 1e200]))
    recwarn.clear()
    for x0 in (np.array(land.x0), torch.tensor(land.x0, dtype=torch.float64)):
        result = trajectory(gd(0.1), land, x0, steps=100, escape_factor=math.inf)
        assert result.diverged and 0 < result.diverged_at < 100
        assert np.all(np.isfinite(result.path)) and np.all(np.isfinite(result.values))
        assert np.all(result.path[result.diverged_at:] == result.path[result.diverged_at - 1])
    assert len(recwarn) == 0


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("noise_std", [0.0, 0.3])
def test_numpy_and_torch_start_give_the_same_path(name, noise_std):
    land = CASES[name]()
    eta = {"rosenbrock": 1e-3, "beale": 1e-2, "himmelblau": 1e-2}.get(land.name, 0.05)
    x0 = np.array(land.x0)
    a = trajectory(gd(eta), land, x0, steps=80, noise_std=noise_std, seed=3)
    b = trajectory(gd(eta), land, torch.tensor(x0, dtype=torch.float64), steps=80,
                   noise_std=noise_std, seed=3)
    assert isinstance(b.path, np.ndarray) and b.path.dtype == np.float64
    np.testing.assert_allclose(b.path, a.path, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b.values, a.values, rtol=1e-12, atol=1e-12)
    assert (a.diverged, a.diverged_at) == (b.diverged, b.diverged_at)


def test_gd_stalls_at_the_saddle_and_noise_escapes():
    land = saddle()
    eta, steps = 0.1, 300
    plain = trajectory(gd(eta), land, steps=steps)
    # on y = 0 the y-gradient vanishes: x_t = (1 - eta)^t x_0, y_t = 0 exactly
    np.testing.assert_array_equal(plain.path[:, 1], 0.0)
    np.testing.assert_allclose(plain.path[:, 0], 1.5 * (1 - eta) ** np.arange(steps + 1),
                               rtol=1e-12, atol=0)
    assert plain.values[-1] == pytest.approx(0.0, abs=1e-20)          # the saddle value
    noisy = trajectory(gd(eta), land, steps=steps, noise_std=0.01, seed=0)
    assert abs(abs(noisy.path[-1, 1]) - 1.0) < 0.05                   # near (0, +-1)
    assert noisy.values[-1] < -0.24
    again = trajectory(gd(eta), land, steps=steps, noise_std=0.01, seed=0)
    np.testing.assert_array_equal(again.path, noisy.path)


def diagonal_newton() -> GradientTransformation:
    """updates = -g / diag(H): needs the ``hessian`` extra argument."""

    def update(updates, state, params=None, *, hessian, **extra):
        return tree_map(lambda g, h: -g / h, updates, hessian), state

    return GradientTransformation(lambda params: {}, update)


def test_hessian_is_passed_when_asked():
    land = quadratic(10.0)                      # axis-aligned: diagonal Newton is exact
    result = trajectory(diagonal_newton(), land, steps=3, with_hessian=True)
    np.testing.assert_array_equal(result.path[1:], 0.0)
    seen = []

    def record(updates, state, params=None, **extra):
        seen.append((np.array(params), np.array(extra["hessian"])))
        return updates * 0, state

    trajectory(GradientTransformation(lambda p: {}, record), rosenbrock(), steps=1,
               with_hessian=True)
    (params, hessian), = seen
    np.testing.assert_array_equal(hessian, rosenbrock().hessian_diag(params))
    with pytest.raises(TypeError):
        trajectory(diagonal_newton(), land, steps=1)     # not asked: no hessian keyword


def test_trajectory_edge_cases_and_bad_arguments():
    land = himmelblau()
    zero = trajectory(gd(0.01), land, steps=0)
    assert zero.path.shape == (1, 2) and zero.values[0] == land.value(*land.x0)
    with pytest.raises(ValueError, match="Invalid steps"):
        trajectory(gd(0.01), land, steps=-1)
    with pytest.raises(ValueError, match="Invalid noise_std"):
        trajectory(gd(0.01), land, noise_std=-0.1)
    with pytest.raises(ValueError, match="Invalid x0"):
        trajectory(gd(0.01), land, x0=np.zeros(3))
    with pytest.raises(ValueError, match="Invalid x0"):
        trajectory(gd(0.01), land, x0=np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="Invalid escape_factor"):
        trajectory(gd(0.01), land, escape_factor=0.5)
    with pytest.raises(TypeError, match="not a GradientTransformation"):
        trajectory(lambda g: g, land)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trajectory(gd(0.01), land, x0=[1, 2], steps=5)        # lists and ints are fine


# --- the full Hessian (for Hutchinson's estimator) ------------------------------------

import optbook  # noqa: E402
from optbook import landscapes  # noqa: E402

@pytest.mark.parametrize("name", sorted(landscapes.LANDSCAPES))
def test_full_hessian_is_the_derivative_of_the_gradient(name):
    """Central differences of the analytic gradient (an independent route), at random points."""
    land = landscapes.get_landscape(name)
    rng = np.random.default_rng(1)
    h = 1e-5
    for p in rng.uniform(-1.5, 1.5, size=(5, 2)):
        H = land.hessian(p)
        for j in range(2):
            e = np.zeros(2)
            e[j] = h
            column = (land.grad(p + e) - land.grad(p - e)) / (2 * h)
            np.testing.assert_allclose(H[:, j], column, rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(np.diag(H), land.hessian_diag(p), rtol=1e-12)
    X, Y = np.meshgrid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 4))
    assert land.hessian(X, Y).shape == (4, 3, 2, 2)


def test_hutchinson_probes_average_to_the_exact_diagonal():
    """E[u * (H u)] = diag(H) for Rademacher u: the four sign patterns average exactly."""
    land = landscapes.rosenbrock()
    signs = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=float)
    exact = landscapes.trajectory(optbook.sophia(0.01, weight_decay=0.0), land, steps=1,
                                  with_hessian=True)
    H = land.hessian(np.array(land.x0))
    estimates = [u * (H @ u) for u in signs]
    np.testing.assert_allclose(np.mean(estimates, axis=0), land.hessian_diag(np.array(land.x0)))
    with pytest.raises(ValueError, match="Invalid hutchinson_probes"):
        landscapes.trajectory(optbook.sgd(0.1), land, steps=3, hutchinson_probes=np.ones((3, 2)))
    probe_run = landscapes.trajectory(optbook.sophia(0.01, weight_decay=0.0), land, steps=4,
                                      with_hessian=True, hutchinson_probes=np.ones((4, 2)))
    assert probe_run.path.shape == (5, 2) and exact.path.shape == (2, 2)
