"""Chapter 4's long runs, tuned sweeps, Reddi et al.'s counterexample, the step after a gap
and the network sweep, against closed forms, the landscape code and torch.optim.

No expected value here is copied from a run of the function under test.
"""
import math

import numpy as np
import pytest
import torch

import optbook
from optbook import landscapes
from optbook.experiments import adaptive as A


# --- the quadratic, batched -----------------------------------------------------------------

@pytest.mark.parametrize("kappa,angle", [(1.0, 0.0), (20.0, 0.0), (100.0, math.pi / 4), (7.0, 0.3)])
def test_quadratic_hessian_is_the_landscape_s(kappa, angle):
    hessian = A.quadratic_hessian(kappa, angle)
    np.testing.assert_allclose(np.linalg.eigvalsh(hessian), [1.0, kappa], rtol=1e-12)
    land = landscapes.quadratic(kappa, angle)
    for x, y in np.random.default_rng(0).normal(size=(5, 2)):
        np.testing.assert_allclose(hessian @ [x, y], land.grad(np.array([x, y])), rtol=1e-10,
                                   atol=1e-12)
        assert 0.5 * np.array([x, y]) @ hessian @ [x, y] == pytest.approx(
            float(land.value(x, y)), rel=1e-10)


def test_random_starts_lie_on_the_circle_and_depend_on_the_seed():
    starts = A.random_starts(4, seed=1)
    np.testing.assert_allclose(np.linalg.norm(starts, axis=1), math.sqrt(2.5 ** 2 + 1))
    np.testing.assert_array_equal(starts, A.random_starts(4, seed=1))
    assert not np.allclose(starts, A.random_starts(4, seed=2))
    with pytest.raises(ValueError, match="Invalid n"):
        A.random_starts(0)


def test_quadratic_runs_gradient_descent_closed_form():
    # axis-aligned, GD multiplies coordinate i by (1 - eta lambda_i) every step
    kappa, eta, steps = 8.0, 0.1, 30
    starts = A.random_starts(3, seed=0)
    values = A.quadratic_runs(optbook.sgd(eta), kappa, 0.0, starts, steps)
    t = np.arange(steps + 1)
    expected = 0.5 * (starts[:, :1] ** 2 * (1 - eta) ** (2 * t)
                      + kappa * starts[:, 1:] ** 2 * (1 - eta * kappa) ** (2 * t))
    np.testing.assert_allclose(values, expected, rtol=1e-10)


@pytest.mark.parametrize("lr, steps", [(0.1, 100), (0.03, 200)])
def test_quadratic_runs_match_landscape_trajectory(lr, steps):
    # Two code paths for the same run agree to rounding, where the run is not
    # chaotic. RMSprop at eta = 0.1 turns chaotic after ~150 steps (its end
    # is the rattle around the minimum): there a 1-ulp change of the start
    # moves the loss by O(1), so the paths diverge as soon as two CPUs' BLAS
    # kernels round differently. The first assertion keeps the setting honest.
    land = landscapes.quadratic(20.0, math.pi / 5)
    start = np.asarray(land.x0, dtype=float)[None]
    values = A.quadratic_runs(optbook.rmsprop(lr, 0.99), 20.0, math.pi / 5, start, steps)
    nudged = A.quadratic_runs(optbook.rmsprop(lr, 0.99), 20.0, math.pi / 5,
                              np.nextafter(start, np.inf), steps)
    np.testing.assert_allclose(nudged, values, rtol=1e-12, atol=1e-300)
    run = landscapes.trajectory(optbook.rmsprop(lr, 0.99), land, None, steps,
                                escape_factor=math.inf)
    np.testing.assert_allclose(values[0], run.values, rtol=1e-9, atol=1e-300)


@pytest.mark.parametrize("name", A.ADAPTIVE_OPTIMIZERS)
def test_quadratic_sweep_equals_one_run_per_rate(name):
    starts = A.random_starts(2, seed=5)
    lrs = (0.01, 0.05, 0.2)
    sweep = A.quadratic_sweep(name, lrs, 10.0, 0.4, starts, 50, decay=0.95)
    for i, lr in enumerate(lrs):
        single = A.quadratic_runs(A.make_optimizer(name, lr, 0.95), 10.0, 0.4, starts, 50)
        np.testing.assert_allclose(sweep[i], single, rtol=1e-12, atol=1e-300)


def test_rmsprop_ends_in_the_two_cycle_of_the_closed_form():
    # derivation in rattle_theory: theta_i -> +-eta/2 whatever lambda_i and beta
    for eta, kappa, decay in ((0.1, 20.0, 0.9), (0.3, 5.0, 0.95)):
        amplitude, loss = A.rattle_theory(eta, kappa)
        assert amplitude == eta / 2 and loss == pytest.approx(eta ** 2 * (1 + kappa) / 8)
        values = A.quadratic_runs(optbook.rmsprop(eta, decay, eps=1e-12), kappa, 0.0,
                                  A.random_starts(3, seed=0), 3000)
        np.testing.assert_allclose(values[:, -2:], loss, rtol=1e-3)


def test_tuned_steps_to_tolerance_sgd_closed_form():
    # at eta = 2/(kappa+1) both coordinates shrink by rho = (kappa-1)/(kappa+1): f_t = f_0 rho^(2t)
    kappa, tol = 10.0, 1e-4
    starts = A.random_starts(3, seed=0)
    rho = (kappa - 1) / (kappa + 1)
    f0 = 0.5 * (starts[:, 0] ** 2 + kappa * starts[:, 1] ** 2)
    expected = np.ceil(np.log(tol / f0) / (2 * np.log(rho)) + 1e-12).astype(int)
    best, counts = A.tuned_steps_to_tolerance("sgd", kappa, 0.0, [0.001, 2 / (kappa + 1)],
                                              starts, steps=300, tol=tol)
    assert best == pytest.approx(2 / (kappa + 1))
    np.testing.assert_array_equal(counts, expected)
    # a rate that diverges (eta > 2/kappa) or is too slow is never the best
    best, counts = A.tuned_steps_to_tolerance("sgd", kappa, 0.0, [0.25, 1e-5], starts, steps=50)
    assert best is None and np.all(counts == 51)


def test_tuned_steps_counts_for_good_not_first_crossing():
    # a rattling RMSprop (rattle level above tol) passes near 0 but never stays: not counted
    eta, kappa = 0.3, 20.0
    _, level = A.rattle_theory(eta, kappa)
    best, counts = A.tuned_steps_to_tolerance("rmsprop", kappa, 0.0, [eta],
                                              A.random_starts(3, 0), steps=500, tol=level / 10)
    assert best is None and np.all(counts == 501)


# --- Reddi et al. (2018) ---------------------------------------------------------------------

def test_reddi_gradient_sums_to_a_positive_number_per_period():
    g = A.reddi_gradient(np.arange(303))
    assert g[0] == 1010 and g[1] == -10 and g[101] == 1010
    assert g[:101].sum() == 10.0


@pytest.mark.parametrize("amsgrad", [False, True])
def test_reddi_run_matches_torch_adam_with_projection(amsgrad):
    steps, alpha = 400, 0.5
    ours = A.reddi_run([alpha], amsgrad, steps=steps)[0]
    x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([x], lr=alpha, betas=(0.9, 0.99), amsgrad=amsgrad)
    grads = A.reddi_gradient(np.arange(steps))
    for t in range(steps):
        opt.param_groups[0]["lr"] = alpha / math.sqrt(t + 1)
        x.grad = torch.tensor([grads[t]], dtype=torch.float64)
        opt.step()
        with torch.no_grad():
            x.clamp_(-1.0, 1.0)
        assert ours[t] == pytest.approx(x.item(), rel=1e-9, abs=1e-12)


def test_reddi_adam_goes_the_wrong_way_amsgrad_does_not():
    # Reddi et al. (2018): Adam's iterate heads to +1, the worst point; AMSGrad's to the best, -1
    adam = A.reddi_run([1.0], False, steps=6000)[0]
    ams = A.reddi_run([1.0], True, steps=6000)[0]
    assert adam[-101:].mean() > 0.5 and ams[-101:].mean() < -0.5


# --- the step after a gap --------------------------------------------------------------------

@pytest.mark.parametrize("gap", [0, 1, 10, 300])
def test_reactivation_step_closed_forms(gap):
    lr, warm = 0.01, 50
    cases = {"adagrad": optbook.adagrad(lr), "rmsprop": optbook.rmsprop(lr, 0.99),
             "adam": optbook.adam(lr, 0.9, 0.999)}
    for kind, opt in cases.items():
        measured = A.reactivation_step(opt, warm, gap, grad=0.7)
        theory = A.reactivation_theory(kind, lr, warm, gap,
                                       decay=0.999 if kind == "adam" else 0.99, grad=0.7,
                                       eps=1e-10 if kind == "adagrad" else 1e-8)
        assert measured == pytest.approx(theory, rel=1e-9)


def test_reactivation_step_rmsprop_against_torch_and_its_limit():
    lr, warm, gap = 0.01, 100, 2000
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.RMSprop([p], lr=lr, alpha=0.99)
    for g in [1.0] * warm + [0.0] * gap + [1.0]:
        before = p.detach().clone()
        p.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
    torch_step = float((p.detach() - before).abs())
    assert A.reactivation_step(optbook.rmsprop(lr, 0.99), warm, gap) == pytest.approx(
        torch_step, rel=1e-10)
    assert torch_step == pytest.approx(lr / math.sqrt(0.01), rel=1e-6)
    with pytest.raises(ValueError, match="Invalid kind"):
        A.reactivation_theory("sgd", lr, warm, gap)


def test_train_sparse_adam_matches_torch():
    torch.set_num_threads(1)
    data = A.make_sparse_regression((0.5, 0.1, 0.01), n_examples=300, replicas=2, seed=4)
    run = A.train_sparse(data, "adam", 0.02, decay=0.99)
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.02, betas=(0.9, 0.99))
    x, y = torch.tensor(data.x[1]), torch.tensor(data.y[1])
    steps = []
    for i in range(x.shape[0]):
        before = w.detach().clone()
        opt.zero_grad()
        (0.5 * (x[i] @ w - y[i]) ** 2).backward()
        opt.step()
        steps.append((w.detach() - before).abs().numpy())
    np.testing.assert_allclose(run.weights[1], w.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(run.max_step[1], np.max(steps, axis=0), rtol=1e-10)


def test_sparse_sweep_picks_the_smallest_error():
    data = A.make_sparse_regression((0.5, 0.1), n_examples=200, replicas=3, seed=2)
    lrs = (0.01, 0.1, 0.5)
    best, run, per_set, scores = A.sparse_sweep(data, "sgd", lrs)
    errors = []
    for lr in lrs:
        w = A.train_sparse(data, "sgd", lr).weights
        errors.append(np.sqrt(np.mean((w - data.true_w) ** 2)))
    assert best == lrs[int(np.argmin(errors))]
    np.testing.assert_allclose(np.sqrt(np.mean(per_set ** 2)), min(errors), rtol=1e-12)
    np.testing.assert_allclose(scores, errors, rtol=1e-12)
    # one group is the plain per-feature RMS error; groups split the data sets
    np.testing.assert_allclose(A.grouped_rms_error(run, data, 1)[0],
                               A.per_feature_rms_error(run, data), rtol=1e-12)
    by_hand = np.sqrt(((run.weights[:1] - data.true_w) ** 2))
    np.testing.assert_allclose(A.grouped_rms_error(run, data, 3)[0], by_hand[0], rtol=1e-12)
    with pytest.raises(ValueError, match="Invalid groups"):
        A.grouped_rms_error(run, data, 2)


# --- the network sweep -------------------------------------------------------------------------

def test_network_optimizer_is_torch_s():
    params = [torch.nn.Parameter(torch.zeros(2))]
    assert isinstance(A.network_optimizer("rmsprop", params, 0.1), torch.optim.RMSprop)
    assert A.network_optimizer("rmsprop", params, 0.1).defaults["alpha"] == 0.99
    with pytest.raises(ValueError, match="Invalid optimizer"):
        A.network_optimizer("lion", params, 0.1)


def test_network_sweep_shapes_and_best_rate():
    sweep = A.network_sweep({"sgd": (1e-4, 0.3), "adagrad": (0.05,)}, seeds=(0, 1), steps=20,
                            eval_every=10)
    assert sweep.val_loss["sgd"].shape == (2, 2)
    np.testing.assert_array_equal(sweep.eval_steps, [10, 20])
    # a rate of 1e-4 barely moves from the initial loss; 0.3 must do better on 20 steps
    assert sweep.best_lr["sgd"] == 0.3
    np.testing.assert_allclose(sweep.curves["sgd"][:, -1], sweep.val_loss["sgd"][1])


# --- the iterates, regret and AMSGrad's two denominators (chapter 4's regret box) ---

def test_quadratic_paths_carry_the_iterates_of_quadratic_runs():
    starts = A.random_starts(3, seed=1)
    values, path = A.quadratic_paths(optbook.rmsprop(0.05, 0.9), 10.0, 0.3, starts, 40)
    np.testing.assert_array_equal(values, A.quadratic_runs(optbook.rmsprop(0.05, 0.9), 10.0,
                                                           0.3, starts, 40))
    np.testing.assert_array_equal(path[:, 0], starts)
    hessian = A.quadratic_hessian(10.0, 0.3)
    closed = 0.5 * np.einsum("nti,ij,ntj->nt", path, hessian, path)
    np.testing.assert_allclose(values, closed, rtol=1e-12, atol=1e-300)


def test_reddi_regret_against_the_best_fixed_point_by_brute_force():
    rng = np.random.default_rng(0)
    paths = rng.uniform(-1, 1, size=(2, 250))
    regret = A.reddi_regret(paths)
    grads = A.reddi_gradient(np.arange(250))
    played = np.concatenate([np.zeros((2, 1)), paths[:, :-1]], axis=1)
    grid = np.linspace(-1, 1, 201)   # linear losses: the best point is an end of [-1, 1]
    for T in (1, 101, 102, 250):
        best = (np.cumsum(grads)[T - 1] * grid).min()
        np.testing.assert_allclose(regret[:, T - 1], (grads[:T] * played[:, :T]).sum(1) - best,
                                   rtol=1e-12)


def test_amsgrad_denominators_torch_form_and_reddis_form():
    alphas = [0.5, 1.0]
    corrected_path, corrected = A.reddi_amsgrad_run(alphas, bias_correction=True, steps=300)
    np.testing.assert_array_equal(corrected_path, A.reddi_run(alphas, amsgrad=True, steps=300))
    _, plain = A.reddi_amsgrad_run(alphas, bias_correction=False, steps=300)
    # first step, closed form: v_1 = (1 - b2) g^2 with g = 1010 and b2 = 0.99
    np.testing.assert_allclose(plain[:, 0], math.sqrt(0.01) * 1010.0, rtol=1e-12)
    np.testing.assert_allclose(corrected[:, 0], 1010.0, rtol=1e-12)
    # Reddi et al.'s max never falls; the bias-corrected one does early on
    assert np.all(np.diff(plain, axis=1) >= 0)
    assert np.any(np.diff(corrected, axis=1) < 0)
