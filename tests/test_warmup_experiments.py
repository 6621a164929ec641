"""optbook.experiments.warmup against torch.optim (Adam, RAdam), closed forms and
single-model training."""
import math

import numpy as np
import pytest
import torch

from optbook import schedules as sch
from optbook.experiments import warmup as W
from optbook.experiments.schedules import member_adam, member_losses, stack_targets
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


def test_top_hessian_eigenvalue_matches_dense_hessian():
    from optbook.experiments.schedules import StackedMLP
    from optbook.experiments.training import teacher_classification
    data = teacher_classification(n_train=64, n_val=8, seed=0)
    model = StackedMLP(20, 4, [0, 1], hidden=3, depth=1, dtype=torch.float64)
    x, y = data.x_train.double(), stack_targets(data, 2).y_train
    eig = W.top_hessian_eigenvalue(model, x, y, iters=300)
    params = list(model.parameters())
    for k in range(2):
        flat = [p[k].detach().clone() for p in params]
        sizes = [f.numel() for f in flat]

        def loss_of(vec):
            parts = torch.split(vec, sizes)
            h = x
            w1, b1, w2, b2 = [pt.reshape(f.shape) for pt, f in zip(parts, flat)]
            logits = torch.relu(h @ w1 + b1) @ w2 + b2
            return torch.nn.functional.cross_entropy(logits, y[:, k])

        hess = torch.autograd.functional.hessian(loss_of, torch.cat([f.reshape(-1) for f in flat]))
        evals = torch.linalg.eigvalsh(hess)
        top = evals[evals.abs().argmax()].item()
        assert eig[k] == pytest.approx(top, rel=1e-6)


def test_lr_sensitivity():
    loss = np.array([[1.0, 1.0], [0.5, 0.5], [np.inf, np.nan]])
    # capped at init 2.0: means 1.0, 0.5, 2.0 -> best 0.5 -> E[0.5, 0, 1.5] = 2/3
    assert W.lr_sensitivity(loss, 2.0) == pytest.approx(2 / 3)
    assert W.lr_sensitivity(np.full((4, 3), 0.7), 2.0) == 0.0


def test_draw_warmup_runs_draws_the_chosen_run():
    evals = np.array([10, 20])
    curves = np.arange(2 * 2 * 3 * 2, dtype=float).reshape(2, 2, 3, 2) / 10
    grid = W.WarmupGrid("post", (0, 20), (1e-3, 1e-2), (0, 1, 2), curves[..., -1], curves[..., -1],
                        evals, curves, np.ones((2, 2, 3)))
    fig = W.draw_warmup_runs({"post": grid}, "post", 1e-2, 20)
    right = fig.axes[1]
    blue = [line for line in right.lines if line.get_label() == "warmup 20"]
    assert blue and np.allclose(blue[0].get_ydata(), curves[1, 1, 0])
    grey = [line for line in right.lines if line.get_label() == "no warmup"]
    assert grey and np.allclose(grey[0].get_ydata(), curves[0, 1, 0])


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


def test_sharpness_rerun_measuring_less_trains_the_same():
    out = W.sharpness_rerun((0, 5), (4, 30), (0,), steps=12, train_below=1.2)
    run = W.sharpness_during_warmup((0, 5), (4, 30), (0,), steps=12, measure_every=3, iters=10)
    np.testing.assert_array_equal(out["final_loss"], run.final_loss)
    ok = run.final_loss < 1.2
    assert out["trains"] == ok.sum(-1).tolist()
    for i in range(2):
        good = [p for j, p in enumerate((4, 30)) if ok[i, j].all()]
        assert out["largest_all"][i] == (max(good) if good else None)
