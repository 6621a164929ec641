"""Chapter 5 (second half) experiments against closed forms and independent transcriptions.

Expected values come from formulas (rank-1 algebra, byte counts n + m and
2 n m, |step| = eta), from hand-written loops of the published updates, or
from torch.optim -- never from an earlier run of the code under test.
"""
import math

import numpy as np
import pytest
import torch
from torch import nn

import optbook
import optbook.torch as otorch
from optbook import landscapes
from optbook.experiments import descendants as D
from optbook.experiments.training import epoch_batches

FLOAT = 4   # bytes of a float32


# --- AdaFactor ---------------------------------------------------------------------------

def test_factored_reconstruction_is_exact_for_rank_one_squares():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(7, generator=g), torch.randn(5, generator=g)
    grad = torch.outer(a, b)            # G^2 = (a^2)(b^2)^T has rank 1
    np.testing.assert_allclose(D.factored_second_moment(grad), grad ** 2, rtol=1e-5)


def test_factored_reconstruction_matches_independent_numpy_formula():
    rng = np.random.default_rng(1)
    grad = rng.standard_normal((6, 9))
    g2 = grad ** 2
    rows, cols = g2.mean(axis=1, keepdims=True), g2.mean(axis=0, keepdims=True)
    expected = rows @ cols / rows.mean()     # = (row sums)(col sums) / total sum
    np.testing.assert_allclose(expected, g2.sum(1, keepdims=True) @ g2.sum(0, keepdims=True)
                               / g2.sum(), rtol=1e-12)
    got = D.factored_second_moment(torch.tensor(grad))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)
    assert D.relative_error(got, g2) > 0.1        # a generic matrix is not rank 1


def test_factored_reconstruction_rejects_vectors():
    with pytest.raises(ValueError, match="Invalid grad"):
        D.factored_second_moment(torch.ones(3))


def _one_step_bytes(make, n_in=12, n_out=7):
    model = nn.Linear(n_in, n_out)
    x, y = torch.randn(5, n_in), torch.randint(0, n_out, (5,))
    opt = make(model.parameters())
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    return D.state_bytes_per_parameter(opt, model.named_parameters()), D.state_bytes(opt)


@pytest.mark.parametrize("n_in,n_out", [(12, 7), (64, 3)])
def test_state_bytes_equal_hand_counts(n_in, n_out):
    m, n = n_in, n_out          # weight is n x m, bias has n entries
    adam, adam_total = _one_step_bytes(lambda p: otorch.Adam(p), n_in, n_out)
    assert adam == {"weight": 2 * n * m * FLOAT, "bias": 2 * n * FLOAT}
    assert adam_total == 2 * (n * m + n) * FLOAT
    factored, total = _one_step_bytes(lambda p: otorch.Adafactor(p), n_in, n_out)
    assert factored == {"weight": (n + m) * FLOAT, "bias": n * FLOAT}
    assert total == (n + m + n) * FLOAT
    lion, _ = _one_step_bytes(lambda p: otorch.Lion(p), n_in, n_out)
    assert lion == {"weight": n * m * FLOAT, "bias": n * FLOAT}
    sgd, _ = _one_step_bytes(lambda p: otorch.SGD(p, lr=0.1, momentum=0.9), n_in, n_out)
    assert sgd == {"weight": n * m * FLOAT, "bias": n * FLOAT}
    # torch.optim.Adam keeps its step count as a float32 scalar tensor
    reference, _ = _one_step_bytes(lambda p: torch.optim.Adam(p), n_in, n_out)
    assert reference == {"weight": (2 * n * m + 1) * FLOAT, "bias": (2 * n + 1) * FLOAT}


def test_memory_after_one_step_counts_torch_adafactor_the_same():
    data = D.task_data()
    ours = D.memory_after_one_step(lambda p: otorch.Adafactor(p), D.task_model(), data)
    theirs = D.memory_after_one_step(lambda p: torch.optim.Adafactor(p), D.task_model(), data)
    # torch.optim.Adafactor: row/col factors of the same sizes, plus a float32 step tensor
    assert {k: v + FLOAT for k, v in ours.items()} == theirs


# --- LAMB --------------------------------------------------------------------------------

def test_lamb_trust_ratios_equal_independent_transcription():
    steps, batch, lr, wd = 6, 256, 0.01, 0.01
    run = D.lamb_trust_ratios(batch_size=batch, lr=lr, steps=steps, weight_decay=wd)
    # You et al. (2020), Algorithm 2, written out by hand on the same batches
    data, model = D.task_data(), D.task_model()
    params = list(model.parameters())
    b1, b2, eps = 0.9, 0.999, 1e-6
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    batches = epoch_batches(data.n_train, batch, torch.Generator().manual_seed(0))
    expected = []
    for t in range(1, steps + 1):
        idx = next(batches)
        grads = torch.autograd.grad(
            nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx]), params)
        row = []
        with torch.no_grad():
            for i, (p, g) in enumerate(zip(params, grads)):
                m[i] = b1 * m[i] + (1 - b1) * g
                v[i] = b2 * v[i] + (1 - b2) * g * g
                u = (m[i] / (1 - b1 ** t)) / ((v[i] / (1 - b2 ** t)).sqrt() + eps) + wd * p
                ratio = p.norm() / u.norm()
                row.append(float(ratio))
                p -= lr * ratio * u
        expected.append(row)
    np.testing.assert_allclose(run.ratios, expected, rtol=1e-4)
    # and every step has norm lr * ||theta||
    np.testing.assert_allclose(run.step_ratio, 1.0, rtol=1e-4)
    assert run.names == [n for n, _ in model.named_parameters()]


def test_batch_scaling_uses_equal_epochs_and_sqrt_rule():
    result = D.batch_scaling_run("lamb", 0.01, batch_sizes=(256, 1024), epochs=1)
    assert result.steps == [2048 // 256, 2048 // 1024]
    assert result.learning_rates == pytest.approx([0.01 * math.sqrt(8), 0.01 * math.sqrt(32)])
    with pytest.raises(ValueError, match="Invalid name"):
        D.batch_scaling_run("sgd", 0.1)


# --- Lion --------------------------------------------------------------------------------

def test_lion_moves_every_coordinate_by_exactly_eta():
    rng = np.random.default_rng(2)
    theta, lr = rng.standard_normal(50), 3e-4
    opt = optbook.lion(lr)
    state = opt.init(theta)
    for _ in range(5):
        updates, state = opt.update(rng.standard_normal(50), state, theta)
        np.testing.assert_allclose(np.abs(updates), lr, rtol=1e-12)
        theta = optbook.apply_updates(theta, updates)


def test_update_rms_is_one_for_lion_and_below_for_adam():
    lion = D.update_rms(lambda p, lr: otorch.Lion(p, lr=lr), 1e-3, steps=20)
    # coordinates with an exactly zero gradient (dead ReLUs) do not move; all others move eta
    assert np.all(lion <= 1 + 1e-4) and np.all(lion > 0.95)
    adam = D.update_rms(lambda p, lr: otorch.Adam(p, lr=lr), 1e-3, steps=20)
    # first Adam step: m_hat / sqrt(v_hat) = g / |g| = +-1 wherever g != 0
    assert adam[0] == pytest.approx(lion[0], rel=1e-3)
    assert adam[-1] < 0.9


def test_decay_factor_closed_form():
    assert D.decay_factor(1e-3, 0.1, 1000) == pytest.approx((1 - 1e-4) ** 1000)
    assert D.decay_factor(1e-4, 1.0, 1000) == pytest.approx(D.decay_factor(1e-3, 0.1, 1000))


# --- Sophia ------------------------------------------------------------------------------

def test_sophia_landscape_run_matches_trajectory_and_clip_rule():
    land = landscapes.quadratic(25)
    lr, rho = 0.1, 0.5
    run = D.sophia_landscape_run(land, lr=lr, rho=rho, b1=0.9, steps=40)
    reference = landscapes.trajectory(optbook.sophia(lr, b1=0.9, rho=rho, weight_decay=0.0),
                                      land, steps=40, with_hessian=True)
    np.testing.assert_allclose(run.path, reference.path, rtol=1e-12)
    # clipped coordinates move exactly eta; the others less
    np.testing.assert_allclose(run.step_size[run.clipped], 1.0, rtol=1e-12)
    assert np.all(run.step_size[~run.clipped] < 1.0)
    assert run.clipped[0].all() and (~run.clipped).any()


def test_sophia_unclipped_step_is_newton_like_on_a_quadratic():
    # with b1 = 0 (m = g) and b2 folded in once, an unclipped step is eta g / (rho h)
    land = landscapes.quadratic(4)
    lr, rho = 0.05, 100.0     # rho h = (1, 4) > |g| = (0.5, 2): no clipping
    run = D.sophia_landscape_run(land, lr=lr, rho=rho, b1=0.0, steps=1, x0=(0.5, 0.5))
    g = np.array(land.grad(np.array([0.5, 0.5])))
    h = (1 - 0.99) * np.array(land.hessian_diag(np.array([0.5, 0.5])))   # h_1 = (1 - b2) h_hat
    assert not run.clipped[0].any()
    np.testing.assert_allclose(run.path[1] - run.path[0], -lr * g / (rho * h), rtol=1e-12)


def test_sophia_task_refreshes_hessian_every_k_steps():
    run = D.sophia_clip_fraction_run(steps=25, k=10)
    assert run.hessian_steps == [10, 20]
    assert np.all(run.clip_fraction[:10] == 1.0)     # h = 0 until the first estimate
    assert run.clip_fraction[10] < 1.0
    with pytest.raises(ValueError, match="Invalid estimator"):
        D.sophia_clip_fraction_run(estimator="exact")


# --- the comparison ---------------------------------------------------------------------

def test_comparison_run_equals_hand_loop_with_torch_optim_adam():
    steps, batch, lr = 30, 64, 3e-3
    result = D.comparison_run("adam", lr, steps=steps, batch_size=batch)
    data, model = D.task_data(), D.task_model()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    batches = epoch_batches(data.n_train, batch, torch.Generator().manual_seed(0))
    losses = []
    for _ in range(steps):
        idx = next(batches)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
        loss.backward()
        losses.append(loss.item())
        opt.step()
    np.testing.assert_allclose(result.history.train_loss, losses, rtol=1e-5)
    with torch.no_grad():
        val = nn.functional.cross_entropy(model(data.x_val), data.y_val).item()
    assert result.final_val_loss == pytest.approx(val, rel=1e-5)
    n_params = sum(p.numel() for p in model.parameters())
    assert result.state_bytes == 2 * n_params * FLOAT


def test_comparison_run_equals_hand_loop_with_torch_optim_sgd_momentum():
    steps, batch, lr = 30, 64, 0.03
    result = D.comparison_run("momentum", lr, steps=steps, batch_size=batch)
    data, model = D.task_data(), D.task_model()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    batches = epoch_batches(data.n_train, batch, torch.Generator().manual_seed(0))
    for _ in range(steps):
        idx = next(batches)
        opt.zero_grad()
        nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx]).backward()
        opt.step()
    with torch.no_grad():
        train_loss = nn.functional.cross_entropy(model(data.x_train), data.y_train).item()
    assert result.final_train_loss == pytest.approx(train_loss, rel=1e-5)


def test_make_optimizer_rejects_an_unknown_name():
    with pytest.raises(ValueError, match="Invalid optimizer"):
        D.make_optimizer("adamax", [torch.zeros(1, requires_grad=True)], 0.1)


# --- LAMB against Adam on several seeds ----------------------------------------------------

def _hand_run(make, seed, steps, batch_size, record=None):
    """A plain training loop on the common task (hand-written, independent of train_seeds).

    ``record(t, model, before)`` is called after step t (1, 2, ...) with the weights
    before that step.
    """
    data, model = D.task_data(seed), D.task_model(seed)
    opt = make(model.parameters())
    batches = epoch_batches(data.n_train, batch_size, torch.Generator().manual_seed(seed))
    for t in range(1, steps + 1):
        idx = next(batches)
        before = [p.detach().clone() for p in model.parameters()]
        opt.zero_grad()
        nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx]).backward()
        opt.step()
        if record is not None:
            record(t, model, before)
    with torch.no_grad():
        return float(nn.functional.cross_entropy(model(data.x_val), data.y_val))


def test_batch_sweep_cells_equal_separate_runs():
    torch.set_num_threads(1)
    sweeps = {name: D.batch_sweep(name, batch_sizes=(512,), lrs=(1e-2,), epochs=2,
                                  seeds=(0, 1)) for name in ("adam", "lamb")}
    assert sweeps["lamb"].steps == (2 * 2048 // 512,)
    for s in (0, 1):
        assert sweeps["adam"].val_loss[0, 0, s] == pytest.approx(
            _hand_run(lambda p: torch.optim.Adam(p, lr=1e-2), s, 8, 512), rel=1e-4)
        # LAMB per copy: the trust ratio must see one seed's tensor, not the stack
        assert sweeps["lamb"].val_loss[0, 0, s] == pytest.approx(
            _hand_run(lambda p: otorch.LAMB(p, lr=1e-2), s, 8, 512), rel=1e-4)
    with pytest.raises(ValueError, match="Invalid name"):
        D.batch_sweep("sgd")


def test_batch_sweep_best_uses_seed_mean_and_skips_divergence():
    losses = np.array([[[1.0, 3.0], [1.5, 1.6], [np.nan, 0.1]]])      # 1 batch, 3 lrs, 2 seeds
    sweep = D.BatchSweep("adam", (32,), (1, 2, 3), (0, 1), (10,), losses, losses)
    assert list(sweep.best_lr_index()) == [1]                          # means 2.0, 1.55, inf
    np.testing.assert_allclose(sweep.best(), [[1.5, 1.6]])


def test_layer_step_ratio_is_one_over_lr_for_lamb():
    torch.set_num_threads(1)
    lamb = D.layer_step_ratios("lamb", 0.02, batch_size=256, steps=5, seeds=(0, 1))
    np.testing.assert_allclose(lamb.ratio, 1 / 0.02, rtol=1e-4)   # |step| = eta ||theta||
    adam = D.layer_step_ratios("adam", 0.02, batch_size=256, steps=5, seeds=(0,))
    assert adam.ratio.shape == (1, 5, 6)
    # Adam's first step moves every entry by eta: ||step|| = eta sqrt(n), ratio ||theta||/(eta sqrt n)
    model = D.task_model(0)
    expected = [float(p.detach().norm()) / (0.02 * math.sqrt(p.numel())) for p in model.parameters()]
    np.testing.assert_allclose(adam.ratio[0, 0], expected, rtol=1e-3)


# --- Sophia near a saddle ------------------------------------------------------------------

def test_saddle_landscape_derivatives():
    land = D.saddle_landscape()
    p, h = np.array([0.7, -0.3]), 1e-6
    fd = [(land.value(p + h * e) - land.value(p - h * e)) / (2 * h) for e in np.eye(2)]
    np.testing.assert_allclose(land.grad(p), fd, rtol=1e-6)
    np.testing.assert_allclose(land.hessian_diag(p), [1.0, 3 * 0.09 - 1.0])
    assert land.value(np.array([0.0, 1.0])) == pytest.approx(land.min_value)
    np.testing.assert_allclose(land.grad(np.zeros(2)), 0.0)


def test_newton_goes_to_the_saddle_and_sophia_with_paper_denominator_does_not():
    land = D.saddle_landscape()
    newton = D.diagonal_newton_path(land, steps=10)
    # one Newton step from (2, 0.1): x -> 0, y -> y - (y^3 - y)/(3y^2 - 1)
    y = 0.1
    np.testing.assert_allclose(newton[1], [0.0, y - (y ** 3 - y) / (3 * y * y - 1)])
    np.testing.assert_allclose(newton[-1], [0.0, 0.0], atol=1e-12)
    paper = D.sophia_landscape_run(land, lr=0.05, rho=0.5, steps=100, denominator="paper")
    released = D.sophia_landscape_run(land, lr=0.05, rho=0.5, steps=100)
    # negative curvature in y: max(rho h, eps) = eps clips the step to eta downhill ...
    assert paper.clipped[0, 1] and paper.path[1, 1] == pytest.approx(0.1 + 0.05)
    assert abs(paper.path[-1, 1] - 1.0) < 0.05
    # ... while rho h + eps < 0 turns the step uphill, towards the saddle, unclipped
    assert not released.clipped[0, 1] and released.path[1, 1] < 0.1
    assert abs(released.path[-1, 1]) < 0.05


# --- the comparison tuned on the seed mean ---------------------------------------------------

def test_tune_on_seeds_curves_equal_separate_torch_runs():
    torch.set_num_threads(1)
    tuning = D.tune_on_seeds("adam", lrs=(3e-3,), steps=20, seeds=(0, 1), eval_every=10)
    assert list(tuning.val_steps) == [10, 20] and tuning.val_curve.shape == (1, 2, 2)
    for s in (0, 1):
        for r, steps in enumerate((10, 20)):
            assert tuning.val_curve[0, s, r] == pytest.approx(
                _hand_run(lambda p: torch.optim.Adam(p, lr=3e-3), s, steps, 64), rel=1e-4)
        assert tuning.val_loss[0, s] == tuning.val_curve[0, s, -1]


def test_tune_on_seeds_per_tensor_rules_and_sophia_are_separate_runs():
    torch.set_num_threads(1)
    adafactor = D.tune_on_seeds("adafactor", lrs=(0.03,), steps=12, seeds=(0, 1), eval_every=6)
    sophia = D.tune_on_seeds("sophia", lrs=(1e-3,), steps=12, seeds=(0, 1), eval_every=6)
    for s in (0, 1):
        assert adafactor.val_loss[0, s] == pytest.approx(
            _hand_run(lambda p: torch.optim.Adafactor(p, lr=0.03), s, 12, 64), rel=1e-4)
        assert sophia.val_loss[0, s] == pytest.approx(
            D.comparison_run("sophia", 1e-3, steps=12, seed=s).final_val_loss, rel=1e-12)


def test_tune_on_seeds_picks_the_lowest_seed_mean_and_counts_divergence_as_inf():
    losses = np.array([[1.0, 3.0], [1.5, 1.6], [np.inf, 0.1]])        # 3 lrs, 2 seeds
    tuning = D.SeedTuning("adam", (1, 2, 3), (0, 1), 10, losses, np.array([10]),
                          losses[:, :, None])
    np.testing.assert_allclose(tuning.scores(), [2.0, 1.55, np.inf])
    assert tuning.best_lr == 2 and list(tuning.best()) == [1.5, 1.6]
    # a real divergence: SGD with momentum at lr = 1e5 stops at a non-finite loss
    run = D.tune_on_seeds("momentum", lrs=(0.03, 1e5), steps=10, seeds=(0, 1), eval_every=5)
    assert not np.isfinite(run.val_loss[1]).any() and run.best_lr == 0.03
    assert run.val_curve.shape == (2, 2, 2) and np.isinf(run.val_curve[1]).all()
    with pytest.raises(ValueError, match="Invalid optimizer"):
        D.tune_on_seeds("adamax")


# --- AdaFactor's ablation -------------------------------------------------------------------------

def test_adafactor_ablation_arms_equal_separate_runs_and_report_update_rms():
    torch.set_num_threads(1)
    arms = ("d = 1, β₂ = 1 − t^−0.8", "d = ∞, β₂ = 0.999")
    ab = D.adafactor_ablation(lrs=(0.05,), steps=8, seeds=(0, 1), arms=arms)
    assert ab.val_loss.shape == ab.max_update_rms.shape == (2, 1, 2)
    for s in (0, 1):
        # the default arm is torch.optim.Adafactor itself
        assert ab.val_loss[0, 0, s] == pytest.approx(
            _hand_run(lambda p: torch.optim.Adafactor(p, lr=0.05), s, 8, 64), rel=1e-4)
        # d = inf, constant beta2: RMS of U_hat rebuilt from a separate run's weights
        peaks = []

        def record(t, model, before):
            rho = min(0.05, 1 / math.sqrt(t))
            for p, b in zip(model.parameters(), before):
                if p.ndim == 2:
                    scale = rho * max(1e-3, float(b.pow(2).mean().sqrt()))
                    peaks.append(float((p.detach() - b).pow(2).mean().sqrt()) / scale)

        val = _hand_run(lambda p: otorch.Adafactor(p, lr=0.05, beta2=0.999, d=math.inf),
                        s, 8, 64, record)
        assert ab.val_loss[1, 0, s] == pytest.approx(val, rel=1e-4)
        assert ab.max_update_rms[1, 0, s] == pytest.approx(max(peaks), rel=1e-3)
    # update clipping at d = 1 bounds RMS(U_hat) by 1; without it this run exceeds 1
    assert ab.max_update_rms[0].max() <= 1 + 1e-4 and ab.max_update_rms[1].min() > 1
    with pytest.raises(ValueError, match="Invalid arm"):
        D.adafactor_ablation(arms=("d = 2",))


def test_hutchinson_variance_matches_its_closed_forms():
    h = np.array([[2.0, 0.5, -1.0], [0.5, 1.0, 0.0], [-1.0, 0.0, 3.0]])
    rad, rad_closed = D.hutchinson_variance(h, "rademacher", draws=3000)
    gau, gau_closed = D.hutchinson_variance(h, "gaussian", draws=3000, seed=1)
    np.testing.assert_allclose(rad_closed, [1.25, 0.25, 1.0])             # sum_{j != i} H_ij^2
    np.testing.assert_allclose(gau_closed, [9.25, 2.25, 19.0])            # + 2 H_ii^2
    np.testing.assert_allclose(rad, rad_closed, rtol=0.15)
    np.testing.assert_allclose(gau, gau_closed, rtol=0.15)


# --- the stored reruns --------------------------------------------------------------------

def test_adafactor_ablation_rerun_reports_the_ablation():
    out = D.adafactor_ablation_rerun(lrs=(0.01, 0.1), steps=3, seeds=(0,))
    ablation = D.adafactor_ablation(lrs=(0.01, 0.1), steps=3, seeds=(0,))
    np.testing.assert_array_equal(out["val_loss"], ablation.val_loss)
    np.testing.assert_array_equal(out["max_update_rms"], ablation.max_update_rms)
    assert out["arms"] == list(D.ADAFACTOR_ARMS)
    assert out["best_lr"] == [ablation.lrs[i] for i in ablation.best_lr_index()]


def test_comparison_rerun_tunes_every_optimizer_on_its_grid():
    grids = {name: spec.lr_grid[1:3] for name, spec in D.COMPARISON.items()}
    out = D.comparison_rerun(steps=3, seeds=(0,), eval_every=3, lr_grids=grids)
    assert list(out) == list(D.COMPARISON)
    for name, lrs in grids.items():
        tuning = D.tune_on_seeds(name, lrs=lrs, steps=3, seeds=(0,), eval_every=3)
        np.testing.assert_array_equal(out[name]["val_loss"], tuning.val_loss)
        assert out[name]["best_lr"] == tuning.best_lr
        np.testing.assert_array_equal(out[name]["best"], tuning.best())


def test_layer_step_ratios_and_norms_keeps_the_ratios_and_adds_the_norms():
    ratios, norms = D.layer_step_ratios_and_norms("lamb", 0.01, batch_size=64, steps=3, seeds=(0,))
    alone = D.layer_step_ratios("lamb", 0.01, batch_size=64, steps=3, seeds=(0,))
    np.testing.assert_array_equal(ratios.ratio, alone.ratio)
    assert norms.shape == (1, 4, len(ratios.names)) and np.all(norms > 0)
    # LAMB's step is eta * ||theta|| long: the ratio is 1/eta for every tensor
    np.testing.assert_allclose(ratios.ratio, 1 / 0.01, rtol=1e-4)
