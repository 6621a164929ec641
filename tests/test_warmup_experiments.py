"""optbook.experiments.warmup against torch.optim (Adam, RAdam), closed forms and
single-model training."""
import math

import numpy as np
import pytest
import torch

from optbook import schedules as sch
from optbook.experiments import warmup as W
from optbook.experiments.schedules import member_adam, stack_targets
from optbook.experiments.training import train

torch.set_num_threads(1)


def test_first_adam_update_is_lr_times_sign():
    g = np.array([1e-6, -3.0, 250.0, -1e-3])
    step = W.first_adam_update(g, lr=0.01)
    np.testing.assert_allclose(step, -0.01 * np.sign(g) * np.abs(g) / (np.abs(g) + 1e-8),
                               rtol=1e-12)
    np.testing.assert_allclose(step[1:], -0.01 * np.sign(g[1:]), rtol=1e-5)


def test_radam_rectification_matches_torch_radam():
    # torch.optim.RAdam (beta1 = 0, no momentum) on a constant gradient 1:
    # step = lr * r_t once rho_t > 5, and lr * 1 (un-adapted SGD) before that
    b2, lr = 0.999, 0.1
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.RAdam([p], lr=lr, betas=(0.0, b2), eps=0.0)
    steps = []
    for _ in range(30):
        before = p.item()
        p.grad = torch.ones_like(p)
        opt.step()
        steps.append(before - p.item())
    t = np.arange(1, 31)
    r = W.radam_rectification(t, b2)
    rho = W.radam_rho(t, b2)
    expected = np.where(rho > 5, lr * r, lr)
    np.testing.assert_allclose(steps, expected, rtol=1e-10)
    assert np.all(r[rho <= 5] == 0) and (rho > 5).sum() > 20


def test_radam_rho_closed_form_limits():
    b2 = 0.99
    assert W.radam_rho(1, b2) == pytest.approx(1.0, rel=1e-12)  # one sample
    assert W.radam_rho(10 ** 5, b2) == pytest.approx(2 / (1 - b2) - 1, rel=1e-9)
    assert W.radam_rectification(10 ** 6, b2) == pytest.approx(1.0, rel=1e-6)


def test_untuned_warmup_closed_forms():
    t = np.array([0, 1000, 2000, 4000])
    np.testing.assert_allclose(W.untuned_warmup(t, 0.999, "linear"), [0, 0.5, 1, 1])
    np.testing.assert_allclose(W.untuned_warmup(t, 0.999, "exponential"), 1 - np.exp(-t / 1000))
    with pytest.raises(ValueError, match="Invalid kind"):
        W.untuned_warmup(t, 0.999, "cosine")


def test_adaptive_step_variance_shrinks_and_matches_limit():
    var = W.adaptive_step_variance(b2=0.9, steps=200, samples=20000, seed=0)
    assert var[1] > 10 * var[-1]
    # large t: v_hat ~ average of ~(1+b2)/(1-b2) = 19 squared N(0,1);
    # delta method: Var[v^-1/2] ~ Var[v]/4 with Var[v] = 2 (1 - b2)/(1 + b2)
    assert var[-1] == pytest.approx(2 * 0.1 / 1.9 / 4, rel=0.25)


def test_sort_task_targets_are_sorted_inputs():
    d = W.sort_task(n_train=50, n_val=10, length=6, vocab=5, seed=1)
    assert d.x_train.shape == (50, 6) and d.classes == 5
    assert torch.equal(d.y_train, torch.sort(d.x_train, 1).values)
    assert torch.all(d.y_val[:, 1:] >= d.y_val[:, :-1])


@pytest.mark.parametrize("norm", ["post", "pre"])
def test_stacked_transformer_members_are_independent(norm):
    # member 1 of a two-member model computes what a one-member model with its seed computes
    d = W.sort_task(n_train=64, n_val=8, seed=0)
    both = W.StackedTransformer([3, 8], layers=2, norm=norm, qk_norm=True)
    alone = W.StackedTransformer([8], layers=2, norm=norm, qk_norm=True)
    out_both, out_alone = both(d.x_train[:4]), alone(d.x_train[:4])
    assert out_both.shape == (4, 16, 8, 2)
    torch.testing.assert_close(out_both[..., 1], out_alone[..., 0], rtol=1e-5, atol=1e-5)


def test_stacked_transformer_member_trains_like_alone():
    d = W.sort_task(n_train=128, n_val=16, seed=0)
    schedules = [sch.linear_warmup(3e-3, 10), sch.constant(1e-2)]
    both = W.StackedTransformer([3, 8], layers=2, norm="post").double()
    alone = W.StackedTransformer([8], layers=2, norm="post").double()
    for model, sched in [(both, schedules), (alone, schedules[1:])]:
        rates = np.stack([s(np.arange(20)) for s in sched], axis=1)
        train(model, member_adam(model.parameters(), rates), stack_targets(d, len(sched)),
              steps=20, batch_size=16, eval_every=20, seed=0)
    for pb, pa in zip(both.parameters(), alone.parameters()):
        torch.testing.assert_close(pb[1], pa[0], rtol=1e-9, atol=1e-11)


def test_transformer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="Invalid norm"):
        W.StackedTransformer([0], norm="mid")
    with pytest.raises(ValueError, match="Invalid heads"):
        W.StackedTransformer([0], d_model=30, heads=4)
    with pytest.raises(ValueError, match="Invalid seeds"):
        W.StackedTransformer([])


def test_init_grad_norms_shape_and_positive():
    d = W.sort_task(n_train=256, n_val=8, seed=0)
    g = W.init_grad_norms("pre", 3, d, seeds=(0, 1))
    assert g.shape == (2, 3) and np.all(g > 0)


def test_lr_sensitivity():
    loss = np.array([[1.0, 1.0], [0.5, 0.5], [np.inf, np.nan]])
    # capped at init 2.0: means 1.0, 0.5, 2.0 -> best 0.5 -> E[0.5, 0, 1.5] = 2/3
    assert W.lr_sensitivity(loss, 2.0) == pytest.approx(2 / 3)
    assert W.lr_sensitivity(np.full((4, 3), 0.7), 2.0) == 0.0


# --- stored reruns ---------------------------------------------------------------------------

def test_warmup_grid_rerun_equals_the_notebooks_grid():
    # evaluating every 5 steps (the notebook) or only at the end (the rerun) trains the same
    data = W.sort_task(n_train=4096, n_val=256, length=8, vocab=16, seed=0)
    out = W.warmup_grid_rerun(("pre",), (0, 5), (3e-3, 3e-2), (0,), steps=10,
                              qk_norms=(False, True))
    assert set(out["runs"]) == {"pre", "pre-qk"}
    for qk, key in ((False, "pre"), (True, "pre-qk")):
        g = W.warmup_grid("pre", (0, 5), (3e-3, 3e-2), (0,), data, steps=10, layers=3,
                          batch_size=16, eval_every=5, qk_norm=qk)
        np.testing.assert_array_equal(out["runs"][key]["val_loss"], g.val_loss)
        np.testing.assert_array_equal(out["runs"][key]["max_logit"], g.max_logit)
        assert out["runs"][key]["lr_sensitivity"][1] == W.lr_sensitivity(g.val_loss[1],
                                                                         math.log(16))


# --- the exact variance of Adam's adaptive step ----------------------------------------------

def test_vhat_weights_reproduce_torch_adams_second_moment():
    # torch.optim.Adam's bias-corrected v_hat_t is sum_i w_i g_i^2
    b2, grads = 0.9, np.array([0.3, -1.7, 2.2, 0.05, -0.8])
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.1, betas=(0.0, b2))
    for t, g in enumerate(grads, start=1):
        p.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        v_hat = opt.state[p]["exp_avg_sq"].item() / (1 - b2 ** t)
        w = W.vhat_weights(t, b2)
        assert w.sum() == pytest.approx(1.0, rel=1e-12)
        assert v_hat == pytest.approx(float(w @ grads[:t] ** 2), rel=1e-12)


@pytest.mark.parametrize("k", [3, 4, 7, 40])
def test_inverse_moments_of_chi_square_closed_forms(k):
    # equal weights 1/k: X = chi2_k / k, E[1/X] = k/(k-2), E[X^-1/2] = sqrt(k/2) G((k-1)/2)/G(k/2)
    w = np.full(k, 1.0 / k)
    assert W.inverse_moment(w, 1.0) == pytest.approx(k / (k - 2), rel=1e-9)
    half = math.sqrt(k / 2) * math.exp(math.lgamma((k - 1) / 2) - math.lgamma(k / 2))
    assert W.inverse_moment(w, 0.5) == pytest.approx(half, rel=1e-9)


def test_inverse_moment_matches_mpmath_quadrature_for_unequal_weights():
    mpmath = pytest.importorskip("mpmath")
    for t, b2 in ((3, 0.5), (6, 0.9), (30, 0.99)):
        w = W.vhat_weights(t, b2)
        lt = lambda u: mpmath.fprod([(1 + 2 * wi * u) ** -0.5 for wi in w])
        m1 = mpmath.quad(lt, [0, 1, 100, mpmath.inf])
        mh = mpmath.quad(lambda u: u ** -0.5 * lt(u), [0, 1, 100, mpmath.inf]) / mpmath.sqrt(mpmath.pi)
        assert W.inverse_moment(w, 1.0) == pytest.approx(float(m1), rel=1e-8)
        assert W.inverse_moment(w, 0.5) == pytest.approx(float(mh), rel=1e-8)


def test_exact_variance_against_monte_carlo_where_it_is_finite():
    # t = 8 with b2 = 0.5 (very unequal weights): E[1/X^2] is finite, so the sample
    # variance of 1/sqrt(v_hat) settles; 10^6 draws agree to a few percent
    exact = W.adaptive_step_variance_exact(8, 0.5)
    mc = W.monte_carlo_drift(8, 0.5, samples=(10 ** 6,), seed=1)[0]
    assert mc == pytest.approx(exact, rel=0.05)


def test_exact_variance_infinite_at_t_1_and_2_and_its_b2_to_1_limit():
    var = W.adaptive_step_variance_exact([1, 2, 3], 0.999)
    assert math.isinf(var[0]) and math.isinf(var[1]) and math.isfinite(var[2])
    # b2 -> 1: chi2_3 / 3, Var = 3 - 6/pi
    assert W.adaptive_step_variance_exact(3, 1 - 1e-7) == pytest.approx(3 - 6 / math.pi, rel=1e-6)
    assert W.inverse_moment([1.0, 2.0], 1.0) == math.inf
    assert W.inverse_moment([1.0], 0.5) == math.inf


def test_exact_variance_large_t_delta_method():
    # many gradients averaged: v_hat ~ 1 + noise of variance Var[v] = 2 sum w_i^2, and
    # Var[v^-1/2] ~ Var[v]/4 (delta method)
    b2, t = 0.99, 5000
    w = W.vhat_weights(t, b2)
    assert W.adaptive_step_variance_exact(t, b2) == pytest.approx(2 * (w ** 2).sum() / 4, rel=0.05)


def test_inverse_moment_rejects_bad_input():
    with pytest.raises(ValueError, match="Invalid weights"):
        W.inverse_moment([1.0, -0.5, 1.0], 1.0)
    with pytest.raises(ValueError, match="Invalid power"):
        W.inverse_moment([1.0, 1.0, 1.0], 2.0)
    with pytest.raises(ValueError, match="Invalid t"):
        W.vhat_weights(0, 0.9)


def test_warmup_rule_table():
    rows = W.warmup_rule_table((0.95, 0.98, 0.999))
    assert [r["rule_steps"] for r in rows] == [40, 100, 2000]
    t = np.arange(1, 5000)
    for r in rows:
        rect = W.radam_rectification(t, r["b2"])
        assert rect[r["radam_half"] - 1] > 0.5 >= rect[r["radam_half"] - 2]
        assert W.untuned_warmup(r["rule_steps"], r["b2"]) == pytest.approx(1.0)


# --- Xavier initialization, Post-LN / Pre-LN ratio ----------------------------------------------

def test_xavier_init_matches_torch_xavier_uniform():
    d = 64
    model = W.StackedTransformer([0, 1], d_model=d, heads=2, layers=1, init="xavier")
    block = model.blocks[0]
    g = torch.Generator().manual_seed(0)
    for module, (fan_in, fan_out) in ((block.qkv, (d, d)), (block.proj, (d, d)),
                                      (block.mlp_in, (d, 2 * d)), (block.mlp_out, (2 * d, d)),
                                      (model.head, (d, 16))):
        ref = torch.nn.init.xavier_uniform_(torch.empty(fan_out, fan_in), generator=g)
        bound = math.sqrt(6 / (fan_in + fan_out))
        w = module.weight.detach()
        assert w.abs().max() <= bound
        # same distribution as torch's (uniform in +-bound): compare the spread
        assert w.std().item() == pytest.approx(ref.std().item(), rel=0.08)
        assert torch.all(module.bias == 0)
    with pytest.raises(ValueError, match="Invalid init"):
        W.StackedTransformer([0], init="he")


def test_post_pre_ratio_is_last_layer_ratio_of_init_grad_norms():
    d = W.sort_task(n_train=64, n_val=8, seed=0)
    r = W.post_pre_ratio([2, 3], d, seeds=(0, 1), init="xavier", batch=32)
    post = W.init_grad_norms("post", 3, d, seeds=(0, 1), batch=32, init="xavier")
    pre = W.init_grad_norms("pre", 3, d, seeds=(0, 1), batch=32, init="xavier")
    assert r.shape == (2, 2)
    np.testing.assert_allclose(r[:, 1], post[:, -1] / pre[:, -1], rtol=1e-12)


def test_init_grad_norms_match_a_single_model_autograd():
    # member 1 of a stacked model has the gradients of a one-member model with its seed
    d = W.sort_task(n_train=64, n_val=8, seed=0)
    both = W.init_grad_norms("post", 2, d, seeds=(3, 7), batch=32, init="xavier")
    alone = W.init_grad_norms("post", 2, d, seeds=(7,), batch=32, init="xavier")
    np.testing.assert_allclose(both[1], alone[0], rtol=1e-5)


# --- long runs: batch order, update ratio, attention logits ---------------------------------------

def _tiny(**kw):
    d = W.sort_task(n_train=128, n_val=16, seed=0)
    args = dict(steps=6, layers=1, batch_size=8, eval_every=2)
    args.update(kw)
    return W.train_transformer([sch.constant(1e-2), sch.linear_warmup(1e-2, 4)], [0, 1], d, **args)


def test_batch_seed_default_is_first_seed_and_changes_the_batches():
    a = _tiny()[1]
    b = _tiny(batch_seed=0)[1]
    c = _tiny(batch_seed=5)[1]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    with pytest.raises(ValueError, match="Invalid batch_seed"):
        _tiny(batch_seed=1.5)
    with pytest.raises(TypeError, match="Invalid history"):
        _tiny(history=[])


def test_history_update_ratio_first_step_is_adams_sign_step():
    # Adam's first step is lr * g / (|g| + eps) elementwise (first_adam_update), so
    # ||delta theta|| = lr * ||g / (|g| + eps)||: compare the recorded ratio at step 1
    from optbook.experiments.training import epoch_batches
    d = W.sort_task(n_train=128, n_val=16, seed=0)
    lr = 1e-2
    hist = {}
    W.train_transformer([sch.constant(lr)], [4], d, steps=1, layers=1, batch_size=8,
                        eval_every=1, history=hist)
    model = W.StackedTransformer([4], layers=1)
    idx = next(epoch_batches(128, 8, torch.Generator().manual_seed(4)))
    y = d.y_train[idx].unsqueeze(-1)
    torch.nn.functional.cross_entropy(model(d.x_train[idx]), y).backward()
    params = list(model.parameters())
    step = math.sqrt(sum(float((W.first_adam_update(p.grad.double().numpy(), lr=lr) ** 2).sum())
                         for p in params))
    weight = math.sqrt(sum(float(p.detach().double().pow(2).sum()) for p in params))
    assert hist["update_ratio"].shape == (1, 1)
    assert hist["update_ratio"][0, 0] == pytest.approx(step / weight, rel=1e-4)


def test_history_at_rate_zero_is_still():
    d = W.sort_task(n_train=128, n_val=16, seed=0)
    hist = {}
    model, *_ = W.train_transformer([sch.constant(0.0)], [2], d, steps=4, layers=1,
                                    batch_size=8, eval_every=2, history=hist)
    assert np.all(hist["update_ratio"] == 0)
    assert hist["max_logit"].shape == (2, 1)
    assert hist["max_logit"][0, 0] == hist["max_logit"][1, 0] > 0


def test_warmup_runs_curves_do_not_change_the_training():
    kw = dict(norms=("post",), warmups=(0, 4), lrs=(1e-2, 3e-2), seeds=(0, 1), steps=8,
              batch_seed=3, n_val=16, layers=1, batch_size=8)
    with_curves = W.warmup_runs(curves=True, eval_every=4, **kw)
    without = W.warmup_runs(curves=False, **kw)
    np.testing.assert_array_equal(with_curves["runs"]["post"]["val_loss"],
                                  without["runs"]["post"]["val_loss"])
    curves = with_curves["runs"]["post"]["loss_curves"]
    assert curves.shape == (2, 2, 2, 2) and with_curves["eval_steps"] == [4, 8]
    np.testing.assert_allclose(curves[..., -1], with_curves["runs"]["post"]["val_loss"], rtol=1e-6)
    # the same runs through warmup_grid, one stacked model per norm
    data = W.sort_task(n_train=4096, n_val=16, length=8, vocab=16, seed=0)
    g = W.warmup_grid("post", (0, 4), (1e-2, 3e-2), (0, 1), data, steps=8, layers=1,
                      batch_size=8, eval_every=8, batch_seed=3)
    np.testing.assert_array_equal(g.val_loss, without["runs"]["post"]["val_loss"])
    with pytest.raises(ValueError, match="Invalid eval_every"):
        W.warmup_runs(curves=True, eval_every=3, **kw)


def _record(norms=("post",), warmups=(0, 10, 20), lrs=(1e-2, 3e-2), seeds=(0, 1), evals=(10, 20, 30)):
    shape = (len(warmups), len(lrs), len(seeds), len(evals))
    rng = np.random.default_rng(0)
    runs = {n: {"loss_curves": rng.uniform(0.1, 2.7, shape).tolist(),
                "logit_curves": rng.uniform(1, 100, shape).tolist(),
                "ratio_curves": rng.uniform(1e-4, 1e-2, shape).tolist()} for n in norms}
    for n in norms:
        runs[n]["val_loss"] = np.array(runs[n]["loss_curves"])[..., -1].tolist()
    return {"warmups": list(warmups), "lrs": list(lrs), "seeds": list(seeds), "batch_seed": 0,
            "steps": evals[-1], "eval_steps": list(evals), "runs": runs}


def test_warmup_figure_stores_the_chosen_runs_and_their_reference():
    rec = _record()
    e = W.warmup_figure(rec, lr=3e-2, warmup=10)
    spec = e.spec
    assert [a["name"] for a in spec["axes"]] == ["lr", "warmup"]
    assert len(spec["points"]) == 2 * 3
    point = spec["points"][1 * 3 + 1]                  # lr = 3e-2, warmup = 10 (product order)
    kinds = ("loss_curves", "logit_curves", "ratio_curves")
    for panel, kind in zip(point["panels"], kinds):
        stored = np.array(rec["runs"]["post"][kind])
        np.testing.assert_allclose(panel["series"]["run"]["y"], stored[1, 1], rtol=1e-3)
        np.testing.assert_allclose(panel["series"]["reference"]["y"], stored[0, 1], rtol=1e-3)
        assert {"type": "vline", "x": 10.0} .items() <= panel["marks"][0].items()
    assert "reference" not in spec["points"][0]["panels"][0]["series"]   # warmup 0: no grey twin
    two = W.warmup_figure(_record(norms=("post", "pre")), norm="pre", lr=1e-2, warmup=0)
    assert [a["name"] for a in two.spec["axes"]] == ["norm", "lr", "warmup"]
    with pytest.raises(ValueError, match="Invalid default"):
        W.warmup_figure(rec, lr=0.5)
    with pytest.raises(ValueError, match="no stored curves"):
        W.warmup_figure({**rec, "runs": {"post": {"val_loss": rec["runs"]["post"]["val_loss"]}}})


def test_print_warmup_table_and_verdicts(capsys):
    rec = _record(warmups=(0, 10), lrs=(1e-2, 3e-2), seeds=(0, 1, 2))
    loss = np.array([[[0.5, 0.6, 0.7], [2.5, 2.6, np.inf]],        # no warmup: fails at 3e-2
                     [[0.2, 0.3, 0.25], [0.9, 2.4, 1.0]]])          # warmup 10
    rec["runs"]["post"]["val_loss"] = [[[None if not np.isfinite(v) else v for v in s] for s in r]
                                       for r in loss.tolist()]
    W.print_warmup_table(rec, "post")
    out = capsys.readouterr().out
    assert "0.50–0.70" in out and "diverged" in out and "0.90–2.40" in out
    lines = W.warmup_verdicts(rec, "post", lr=3e-2)
    assert "3/3 with warmup 0, 1/3 with warmup 10" in lines[0]
    assert "(loss > 1.0): 3/3 with warmup 0, 1/3 with warmup 10" in lines[1]
    # best without warmup: 1e-2 (mean 0.6); best with: warmup 10 at 1e-2 (0.25): ranges 0.5-0.7 vs 0.2-0.3
    assert "best without warmup η = 0.01; best with warmup 10 at η = 0.01" in lines[2]
    assert lines[2].endswith("overlap: no")
    assert lines[3].endswith("0.50–0.70 without warmup, 0.20–0.30 with")


def test_print_horizons_and_mechanics_read_the_stored_curves(capsys):
    rec = _record(warmups=(0, 10), lrs=(3e-2,), seeds=(0, 1), evals=(10, 20, 30))
    loss = np.array(rec["runs"]["post"]["loss_curves"])
    W.print_horizons(rec, "post", 3e-2, at=(10, 30))
    out = capsys.readouterr().out.splitlines()
    row = out[-1]                                        # warmup 10
    assert f"{loss[1, 0, :, 0].min():.2f}–{loss[1, 0, :, 0].max():.2f}" in row
    assert f"{loss[1, 0, :, 2].min():.2f}–{loss[1, 0, :, 2].max():.2f}" in row
    W.print_mechanics(rec, "post", 3e-2, at=(20,))
    out = capsys.readouterr().out.splitlines()
    logit = np.array(rec["runs"]["post"]["logit_curves"])
    assert f"{logit[0, 0, :, 1].max():.0f}" in out[1]


def test_pooled_counts_over_records():
    a = _record(warmups=(0, 10), lrs=(3e-2,), seeds=(0, 1))
    b = _record(warmups=(0, 10, 20), lrs=(1e-2, 3e-2), seeds=(3, 4))
    a["runs"]["post"]["val_loss"] = [[[0.5, 2.5]], [[0.1, 0.2]]]
    b["runs"]["post"]["val_loss"] = [[[9, 9], [2.6, None]], [[9, 9], [0.3, 0.05]], [[9, 9], [9, 9]]]
    line = W.pooled_counts([a, b], "post", 3e-2, 1.0)
    assert "3/4 with warmup 0 (worst inf)" in line and "0/4 with warmup 10 (worst 0.30)" in line
    assert "warmup 20" not in line                           # not in every record


def test_post_pre_rerun_summarizes_post_pre_ratio():
    out = W.post_pre_rerun((2,), (0, 1), inits=("xavier",), steps=0, batch=32)
    d = W.sort_task(n_train=4096, n_val=256, length=8, vocab=16, seed=0)
    r = W.post_pre_ratio([2], d, seeds=(0, 1), init="xavier", batch=32)
    np.testing.assert_array_equal(out["ratio"]["xavier"]["ratio"], r)
    assert out["ratio"]["xavier"]["max"][0] == r.max() and out["depths"] == [2]
    with pytest.raises(ValueError, match="Invalid steps"):
        W.post_pre_rerun((2,), (0,), steps=10)


def test_monte_carlo_median_settles_on_the_exact_variance_where_it_is_finite():
    # t = 8, b2 = 0.5: the fourth moment of 1/sqrt(v_hat) is finite, so the sample
    # variance concentrates around the exact value (itself checked against mpmath)
    exact = W.adaptive_step_variance_exact(8, 0.5)
    mc = W.monte_carlo_median(8, 0.5, samples=(10 ** 4,), repeats=30, seed=2)
    assert mc["median"][0] == pytest.approx(exact, rel=0.05)
    assert mc["samples"] == [10 ** 4] and mc["max"][0] >= mc["median"][0]


def test_monte_carlo_median_grows_like_ln_n_at_t_2():
    # b2 -> 1: v_hat_2 = chi2_2 / 2 is Exp(1), so P(1/v_hat_2 > x) = 1 - exp(-1/x) ~ 1/x:
    # a sum of n such variables grows like n ln n (stable law with index 1), and the
    # typical sample variance gains ln 10 = 2.30 per decade of n
    mc = W.monte_carlo_median(2, 0.999, samples=(10 ** 3, 10 ** 5), repeats=60, seed=3)
    per_decade = (mc["median"][1] - mc["median"][0]) / 2
    assert 1.6 < per_decade < 3.0
    with pytest.raises(ValueError, match="repeats"):
        W.monte_carlo_median(2, 0.999, repeats=0)


def test_last_layer_grad_norms_are_the_last_column_of_init_grad_norms():
    d = W.sort_task(n_train=64, n_val=16, length=6, vocab=8, seed=0)
    g = W.last_layer_grad_norms([1, 2], d, seeds=(0, 1), init="xavier", batch=32)
    for norm in ("post", "pre"):
        for k, layers in enumerate((1, 2)):
            ref = W.init_grad_norms(norm, layers, d, seeds=(0, 1), batch=32, init="xavier")[:, -1]
            np.testing.assert_allclose(g[norm][:, k], ref, rtol=1e-6)
    np.testing.assert_allclose(g["post"] / g["pre"],
                               W.post_pre_ratio([1, 2], d, seeds=(0, 1), init="xavier", batch=32),
                               rtol=1e-6)


def test_distinct_counts_never_count_a_rounding_replica_as_a_run():
    a = _record(warmups=(0, 10), lrs=(3e-2,), seeds=(0, 1))
    b = _record(warmups=(0, 10, 20), lrs=(1e-2, 3e-2), seeds=(0, 1))
    b["batch_seed"] = 1                                  # same seeds, other batch order: distinct
    a["runs"]["post"]["val_loss"] = [[[0.5, 2.5]], [[0.1, 0.2]]]
    b["runs"]["post"]["val_loss"] = [[[9, 9], [2.6, None]], [[9, 9], [0.3, 0.05]], [[9, 9], [9, 9]]]
    rep = _record(warmups=(0, 10), lrs=(3e-2,), seeds=(0, 1))   # a, rounded differently
    rep["runs"]["post"]["val_loss"] = [[[2.0, 2.5]], [[1.5, 0.2]]]
    line = W.distinct_counts([a, b], "post", 3e-2, 1.0, replica=rep)
    # warmup 0: a gives 1 (2.5), b gives 2 (2.6, diverged); with the replica a gives 2
    assert "4 distinct runs" in line
    assert "3/4 with warmup 0 (replica: 4/4)" in line and "0/4 with warmup 10 (replica: 1/4)" in line
    assert "warmup 20" not in line
    with pytest.raises(ValueError, match=r"appear twice"):
        W.distinct_counts([a, rep], "post", 3e-2, 1.0)
    with pytest.raises(ValueError, match="Invalid replica"):
        W.distinct_counts([a, b], "post", 3e-2, 1.0, replica=rep, replaces=1)
    with pytest.raises(ValueError, match="Invalid records"):
        W.distinct_counts([], "post", 3e-2, 1.0)


def test_early_ratio_over_rate_divides_by_the_mean_warmup_rate(capsys):
    # mean of eta_t = lr * min(t, w) / w over t = 0..E-1 (E = 10): lr for w = 0,
    # lr * (0+1+2+3+4 + 5*5) / (5 * 10) = 0.7 lr for w = 5, lr * (E-1) / (2w) = 0.225 lr for w = 20
    lr = 3e-2
    rec = _record(warmups=(0, 5, 20), lrs=(1e-2, lr), seeds=(0, 1), evals=(10, 20))
    mean_lr = lr * np.array([1.0, 0.7, 9 / 40])
    k = np.array([1.5, 2.0])                              # per seed
    ratio = np.array(rec["runs"]["post"]["ratio_curves"])
    ratio[:, 1, :, 0] = mean_lr[:, None] * k[None, :]
    rec["runs"]["post"]["ratio_curves"] = ratio.tolist()
    np.testing.assert_allclose(W.early_ratio_over_rate(rec, "post", lr), np.tile(k, (3, 1)), rtol=1e-12)
    W.print_ratio_over_rate(rec, "post", (lr,))
    out = capsys.readouterr().out
    assert "steps 1–10" in out and "warmup 5: 1.50–2.00" in out
    del rec["runs"]["post"]["ratio_curves"]
    with pytest.raises(ValueError, match="ratio_curves"):
        W.early_ratio_over_rate(rec, "post", lr)
