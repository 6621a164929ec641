"""optbook.experiments.stability against closed forms, dense Hessians (torch.autograd,
numpy.linalg), torch.optim.Adam / SGD and torch.nn.BatchNorm1d."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from optbook.experiments import stability as S
from optbook.experiments.schedules import StackedLinear, StackedMLP
from optbook.experiments.training import mlp, teacher_classification

torch.set_num_threads(1)


def _spd(d, seed, top=10.0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    eig = np.concatenate([[top], np.linspace(0.1, top / 3, d - 1)])
    return q @ np.diag(eig) @ q.T


# --- power iteration --------------------------------------------------------------------

def test_sharpness_of_a_quadratic_per_member():
    a = [_spd(6, 0, 10.0), _spd(6, 1, 4.0)]
    w = torch.randn(2, 6, dtype=torch.float64, requires_grad=True)
    mats = torch.tensor(np.stack(a))
    loss = 0.5 * torch.einsum("mi,mij,mj->", w, mats, w)
    eig = S.top_eigenvalues(loss, [w], iters=300)
    np.testing.assert_allclose(eig, [10.0, 4.0], rtol=1e-6)


def test_preconditioned_sharpness_against_the_generalized_eigenproblem():
    # lambda_max(P^-1 A): the eigenvalues of the non-symmetric P^-1 A (numpy's general solver)
    a = _spd(5, 2, 8.0)
    p = np.array([0.5, 2.0, 1.0, 0.1, 3.0])
    expected = np.linalg.eigvals(np.diag(1 / p) @ a).real.max()
    w = torch.randn(1, 5, dtype=torch.float64, requires_grad=True)
    loss = 0.5 * w[0] @ torch.tensor(a) @ w[0]
    eig = S.top_eigenvalues(loss, [w], iters=500, precond=[torch.tensor(p)[None]])
    np.testing.assert_allclose(eig, [expected], rtol=1e-6)
    # and the closed form on a diagonal quadratic: max_i a_i / p_i
    diag = torch.tensor([[3.0, 1.0, 8.0]], dtype=torch.float64)
    pre = torch.tensor([[0.1, 1.0, 4.0]], dtype=torch.float64)
    v = torch.randn(1, 3, dtype=torch.float64, requires_grad=True)
    eig = S.top_eigenvalues(0.5 * (diag * v * v).sum(), [v], iters=400, precond=[pre])
    np.testing.assert_allclose(eig, [30.0], rtol=1e-6)


def test_mse_sharpness_of_a_linear_model_is_that_of_its_gram_matrix():
    # 1/2 mean ||x W + b - y||^2: Hessian = kron(I_C, [x, 1]^T [x, 1] / n)
    data = teacher_classification(n_train=50, n_val=4, dim=6, seed=3)
    x = data.x_train.double()
    layer = StackedLinear(6, 4, [torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)])
    layer.double()
    out = layer(x.unsqueeze(0).expand(2, -1, -1)).permute(1, 2, 0)
    loss = S.mse_member_loss(out, data.y_train, 4).sum()
    eig = S.top_eigenvalues(loss, list(layer.parameters()), iters=300)
    xt = np.hstack([x.numpy(), np.ones((50, 1))])
    expected = np.linalg.eigvalsh(xt.T @ xt / 50).max()
    np.testing.assert_allclose(eig, [expected, expected], rtol=1e-6)


def test_sharpness_of_an_mlp_against_its_dense_hessian():
    data = teacher_classification(n_train=40, n_val=4, dim=3, seed=1)
    x, y = data.x_train.double(), data.y_train
    model = StackedMLP(3, 4, [0, 5], hidden=4, depth=1, dtype=torch.float64)
    params = list(model.parameters())
    eig = S.top_eigenvalues(S.mse_member_loss(model(x), y, 4).sum(), params, iters=2000)
    for m in range(2):
        shapes = [p[m].shape for p in params]
        sizes = [int(np.prod(s)) for s in shapes]
        flat0 = torch.cat([p[m].detach().reshape(-1) for p in params])

        def member_loss(flat):
            parts = torch.split(flat, sizes)
            h = x
            (w1, b1, w2, b2) = [t.reshape(s) for t, s in zip(parts, shapes)]
            h = torch.relu(h @ w1 + b1) @ w2 + b2
            target = nn.functional.one_hot(y, 4).double()
            return 0.5 * (h - target).pow(2).sum(1).mean()

        h = torch.autograd.functional.hessian(member_loss, flat0).numpy()
        ev = np.linalg.eigvalsh(h)
        expected = ev[np.argmax(np.abs(ev))]
        np.testing.assert_allclose(eig[m], expected, rtol=1e-4)


def test_top_eigenvalues_rejects_bad_input():
    w = torch.randn(2, 3, requires_grad=True)
    loss = (w ** 2).sum()
    with pytest.raises(ValueError, match="iters"):
        S.top_eigenvalues(loss, [w], iters=0)
    with pytest.raises(ValueError, match="precond"):
        S.top_eigenvalues(loss, [w], precond=[torch.zeros(2, 3)])
    with pytest.raises(ValueError, match="precond"):
        S.top_eigenvalues(loss, [w], precond=[torch.ones(3)])
    v = torch.randn(3, 3, requires_grad=True)
    with pytest.raises(ValueError, match="member axis"):
        S.top_eigenvalues((w ** 2).sum() + (v ** 2).sum(), [w, v])


def test_threshold():
    np.testing.assert_allclose(S.threshold([0.5, 2.0]), [4.0, 1.0])
    # Cohen et al. (2022): 38/eta for Adam with beta1 = 0.9
    np.testing.assert_allclose(S.threshold(0.01, "adam", 0.9), 3800.0)
    np.testing.assert_allclose(S.threshold(1.0, "adam", 0.0), 2.0)  # no momentum: GD's
    assert S.threshold(0.0)[()] == math.inf
    with pytest.raises(ValueError, match="optimizer"):
        S.threshold(1.0, "sgd")
    with pytest.raises(ValueError, match="eta"):
        S.threshold(-1.0)
    with pytest.raises(ValueError, match="b1"):
        S.threshold(1.0, "adam", 1.0)


# --- the stacked Adam -------------------------------------------------------------------

def test_stacked_adam_matches_torch_adam_per_member():
    rng = np.random.default_rng(0)
    a = torch.tensor(rng.standard_normal((2, 4)))
    w0 = torch.tensor(rng.standard_normal((2, 4)))
    lrs = np.array([[0.1, 0.02], [0.05, 0.3], [0.2, 0.2], [0.0, 0.1], [0.1, 0.05]])
    w = w0.clone().requires_grad_(True)
    opt = S.StackedAdam([w], b1=0.9, b2=0.99, eps=1e-6)
    for lr in lrs:
        w.grad = None
        (a * w ** 3).sum().backward()
        opt.step(lr)
    for m in range(2):
        v = w0[m].clone().requires_grad_(True)
        ref = torch.optim.Adam([v], lr=1.0, betas=(0.9, 0.99), eps=1e-6)
        for lr in lrs[:, m]:
            ref.param_groups[0]["lr"] = float(lr)
            ref.zero_grad()
            (a[m] * v ** 3).sum().backward()
            ref.step()
        np.testing.assert_allclose(w[m].detach().numpy(), v.detach().numpy(), rtol=1e-12)


def test_stacked_adam_update_is_rate_times_inverse_preconditioner_times_m():
    w = torch.tensor([[1.0, -2.0, 3.0]], dtype=torch.float64, requires_grad=True)
    opt = S.StackedAdam([w], b1=0.9, b2=0.999, eps=1e-8)
    with pytest.raises(ValueError, match="no step"):
        opt.precond()
    for _ in range(3):
        w.grad = None
        (w ** 4).sum().backward()
        before = w.detach().clone()
        opt.step([0.01])
    step = before - w.detach()
    np.testing.assert_allclose(step.numpy(), (0.01 * opt.m[0] / opt.precond()[0]).numpy(),
                               rtol=1e-12)


# --- the full-batch runs -----------------------------------------------------------------

def test_gd_run_matches_torch_sgd_on_the_unstacked_network():
    run = S.sharpness_runs("gd", [0, 3], [0.5], [0], steps=6, measure_every=3, iters=5)
    data = teacher_classification(n_train=256, n_val=64, seed=0)
    target = nn.functional.one_hot(data.y_train, data.classes).float()
    for i, w in enumerate((0, 3)):
        net = mlp(20, 4, hidden=64, depth=2, seed=0)
        opt = torch.optim.SGD(net.parameters(), lr=0.5)
        losses = []
        for t in range(6):
            opt.param_groups[0]["lr"] = 0.5 * (min(t, w) / w if w else 1.0)
            opt.zero_grad()
            loss = 0.5 * (net(data.x_train) - target).pow(2).sum(1).mean()
            loss.backward()
            opt.step()
            if (t + 1) % 3 == 0:
                with torch.no_grad():
                    losses.append(0.5 * (net(data.x_train) - target).pow(2).sum(1).mean().item())
        np.testing.assert_allclose(run.loss[i, 0, 0], losses, rtol=1e-4)
    np.testing.assert_allclose(run.limit[0, 0], 4.0)
    np.testing.assert_array_equal(run.steps, [3, 6])


def test_sharpness_runs_rejects_bad_input():
    with pytest.raises(ValueError, match="optimizer"):
        S.sharpness_runs("sgd", [0], [1.0], [0])
    with pytest.raises(ValueError, match="measure_every"):
        S.sharpness_runs("gd", [0], [1.0], [0], steps=5, measure_every=10)
    with pytest.raises(ValueError, match="warmups"):
        S.sharpness_runs("gd", [], [1.0], [0])
    with pytest.raises(ValueError, match="peak"):
        S.sharpness_runs("gd", [0], [-1.0], [0])
    with pytest.raises(ValueError, match="warmup"):
        S.sharpness_runs("gd", [-5], [1.0], [0])


def test_adam_run_records_the_preconditioned_sharpness_and_its_threshold():
    run = S.sharpness_runs("adam", [0], [0.01], [0], steps=4, measure_every=2, iters=5)
    assert run.precond_sharpness.shape == (1, 1, 1, 2)
    np.testing.assert_allclose(run.limit, 3800.0)
    summary = S.sharpness_summary(run, 10.0)
    assert summary["trains"].tolist() == [[1]]


# --- batch normalization -----------------------------------------------------------------

def test_stacked_bn_mlp_matches_torch_batchnorm():
    model = S.StackedBNMLP(5, 3, [0, 1], hidden=6, depth=2)
    x = torch.randn(32, 5, generator=torch.Generator().manual_seed(0))
    for m in range(2):
        ref = nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.ReLU(),
                            nn.Linear(6, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
        with torch.no_grad():
            for lin, layer in zip([ref[0], ref[3], ref[6]], model.layers):
                lin.weight.copy_(layer.weight[m].T)
                lin.bias.copy_(layer.bias[m, 0])
        model.train(), ref.train()
        out, expected = model(x)[:, :, m], ref(x)
        np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), atol=1e-5)
        np.testing.assert_allclose(model.var0[m, 0].numpy(), ref[1].running_var.numpy(), rtol=1e-5)
        model.eval(), ref.eval()
        np.testing.assert_allclose(model(x)[:, :, m].detach().numpy(), ref(x).detach().numpy(),
                                   atol=1e-5)
        model = S.StackedBNMLP(5, 3, [0, 1], hidden=6, depth=2)  # fresh running statistics


def test_batchnorm_runs_match_torch_sgd_with_momentum():
    lr, wd = 0.05, 1e-3
    r = S.batchnorm_runs(True, 32, [lr], [0], [0], epochs=2, base_batch=32, n_train=64, n_val=16,
                         hidden=6, depth=1, weight_decay=wd)
    data = teacher_classification(n_train=64, n_val=16, label_noise=0.0, seed=0)
    model = S.StackedBNMLP(20, 4, [0], hidden=6, depth=1)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=wd)
    g = torch.Generator().manual_seed(0)
    for epoch in range(2):
        order = torch.randperm(64, generator=g)
        for b in range(2):
            idx = order[32 * b:32 * (b + 1)]
            opt.zero_grad()
            nn.functional.cross_entropy(model(data.x_train[idx])[:, :, 0], data.y_train[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        loss = nn.functional.cross_entropy(model(data.x_val)[:, :, 0], data.y_val).item()
    np.testing.assert_allclose(r["val_loss"][0, 0, 0], loss, rtol=1e-5)
    assert r["steps"] == 4


def test_goyal_warmup():
    rate = S.goyal_warmup(0.8, 10, 8)
    np.testing.assert_allclose(rate([0, 5, 10, 50]), [0.1, 0.45, 0.8, 0.8])
    np.testing.assert_allclose(S.goyal_warmup(0.8, 0, 8)([0, 3]), [0.8, 0.8])
    with pytest.raises(ValueError, match="k"):
        S.goyal_warmup(0.8, 10, 0.5)
    with pytest.raises(ValueError, match="peak"):
        S.goyal_warmup(0.0, 10, 2)


def test_batchnorm_table_picks_the_best_rate():
    runs = {"x": {"lrs": [0.1, 0.2], "warmup_epochs": [0],
                  "val_loss": np.array([[[0.5, 0.7], [0.4, 0.45]]]),
                  "val_acc": np.array([[[0.8, 0.7], [0.9, 0.85]]])}}
    row = S.batchnorm_table(runs, trains_below=1.0)[0]
    assert row["best_lr"] == 0.2 and row["rates_ok"] == 2 and row["largest_ok"] == 0.2
    row = S.batchnorm_table(runs)[0]            # below 0.5: only the rate 0.2 on every seed
    assert row["rates_ok"] == 1 and row["largest_ok"] == 0.2
    assert math.isclose(row["loss_mean"], 0.425)


def test_qk_norm_long_rejects_bad_groups():
    with pytest.raises(ValueError, match="group"):
        S.qk_norm_long([1e-3], [0, 1], steps=10, group=3)


def test_sharpness_figure_from_a_stored_record():
    record = S._as_dict(S.sharpness_runs("gd", [0, 2], [0.5, 1.0], [0], steps=4,
                                         measure_every=2, iters=3), 1.0)
    import json
    from optbook.experiments import reruns
    stored = json.loads(json.dumps(reruns._rounded(record)))
    fig = S.sharpness_figure(stored)
    assert fig.spec["kind"] == "runs"
    assert [a["name"] for a in fig.spec["axes"]] == ["warmup", "peak"]


# --- the printed reports -------------------------------------------------------------------

def _stored(value):
    import json
    from optbook.experiments import reruns
    return json.loads(json.dumps(reruns._rounded(value)))


def test_sharpness_and_check_reports(capsys):
    run = S.sharpness_runs("gd", [0, 4], [0.05, 0.5], [0, 1], steps=8, measure_every=4, iters=5)
    res = _stored(S._as_dict(run, 0.6))
    S.sharpness_report(res, ramp_peak=0.5, ramp_warmup=4)
    out = capsys.readouterr().out
    trains = (run.loss[..., -1] < 0.6).sum(-1)
    assert f"{trains[0, 0]}/2" in out and "largest peak at which every seed trains" in out
    S.check_report({"gd": {"warmups": [0, 4], "peaks": [0.05, 0.5],
                           **_stored(S.sharpness_summary(run, 0.6))}}, only="gd")
    assert "warmup 0:" in capsys.readouterr().out


def test_batchnorm_report_verdicts(capsys):
    def runs(loss_none, loss_warm, k):
        return {"lrs": [0.1, 0.2], "warmup_epochs": [0, 1], "k": k, "batch_size": 2048, "steps": 8,
                "val_loss": np.array([loss_none, loss_warm]),
                "val_acc": np.full((2, 2, 3), 0.9)}
    res = {"bn-256": {**runs([[0.5] * 3, [0.4] * 3], [[0.5] * 3, [0.4] * 3], 1.0),
                      "warmup_epochs": [0], "batch_size": 256, "steps": 64,
                      "val_loss": np.array([[[0.5] * 3, [0.4] * 3]]),
                      "val_acc": np.full((1, 2, 3), 0.9)},
           "bn-2048": runs([[0.6, 0.7, 0.65], [9.0, 0.3, 0.4]], [[0.5, 0.52, 0.51], [0.3, 0.31, 0.32]], 8.0)}
    res["plain-256"], res["plain-2048"] = res["bn-256"], res["bn-2048"]
    S.batchnorm_report(res, trains_below=1.0)
    out = capsys.readouterr().out
    assert "batch 2048: 8 steps, rates 0.1, 0.2; gradual warmup over 0, 1 epochs" in out
    # with warmup the best rate 0.2 gives 0.30-0.32, without the best is 0.1 at 0.60-0.70
    assert "best tuned loss with warmup (1 epochs) 0.310, without 0.650; better on every seed " \
           "(ranges apart): yes" in out
    assert "largest rate every seed trains: without warmup 0.1, with 1 epochs 0.2" in out


def test_qk_report_verdicts(capsys):
    lrs = [1e-3, 1e-1]
    res = {"lrs": lrs, "seeds": [0, 1], "group": 1, "eval_steps": [10],
           "runs": {"pre": {"val_loss": [[1.0, 1.1], [2.5, 2.6]], "max_logit": [[5, 6], [2e4, 3e3]],
                            "sensitivity": [0.6, 0.7]},
                    "pre-qk": {"val_loss": [[1.0, 1.0], [0.4, 0.6]], "max_logit": [[3, 4], [4, 5]],
                               "sensitivity": [0.2, 0.4]}}}
    S.qk_report(res)
    out = capsys.readouterr().out
    assert "largest logit above 1,000 on 2/2 seeds, loss near chance (> 2.2) on 2/2" in out
    assert "loss below 0.5 at η = 0.1 on 1/2 seeds" in out
    assert "less than half in every batch order: no" in out     # 0.4 is not below 0.35


def test_contrast_report(capsys):
    run = S.sharpness_runs("gd", [0], [0.1, 0.2], [0], steps=4, measure_every=2, iters=5)
    S.contrast_report({"mse": run})
    out = capsys.readouterr().out
    end = abs(run.sharpness[0, 1, 0, -1])
    assert f"η = 0.2  (2/η = 10  ): after 4 steps sharpness {end:.2g}–{end:.2g}" in out
    below = "yes" if end < 5 else "no"       # half of 2/η = 10
    assert f"verdict: half MSE, η = 0.2, runs that did not fail (0 left out): sharpness ends " \
           f"below half of 2/η on every one: {below}" in out


def test_qk_short_report(capsys):
    res = {"lrs": [1e-3, 1e-1],
           "runs": {"pre": {"val_loss": [[[1.0, 1.2], [2.5, 2.4]]], "max_logit": [[[5, 6], [2e4, 3e4]]],
                            "lr_sensitivity": [0.61]},
                    "pre-qk": {"val_loss": [[[1.0, 1.1], [0.5, 0.6]]], "max_logit": [[[3, 4], [4, 5]]],
                               "lr_sensitivity": [0.3]}}}
    S.qk_short_report(res)
    out = capsys.readouterr().out
    assert "largest logit 20000.0–30000.0 (qk-norm 4.0–5.0), loss 2.400–2.500" in out
    assert "without qk-layernorm 0.61, with 0.30" in out


# --- second edition: Lanczos check, failed runs left out, the edge grid, pooled seeds -------

def _dense_member_hessian(model, x, y, m=0):
    params = list(model.parameters())
    shapes = [p[m].shape for p in params]
    sizes = [int(np.prod(s)) for s in shapes]
    flat0 = torch.cat([p[m].detach().reshape(-1) for p in params])

    def member_loss(flat):
        w1, b1, w2, b2 = [t.reshape(s) for t, s in zip(torch.split(flat, sizes), shapes)]
        h = torch.relu(x @ w1 + b1) @ w2 + b2
        return 0.5 * (h - nn.functional.one_hot(y, 4).double()).pow(2).sum(1).mean()

    return torch.autograd.functional.hessian(member_loss, flat0).numpy()


def test_lanczos_against_the_dense_hessian_plain_and_preconditioned():
    data = teacher_classification(n_train=40, n_val=4, dim=3, seed=2)
    x, y = data.x_train.double(), data.y_train
    model = StackedMLP(3, 4, [3], hidden=4, depth=1, dtype=torch.float64)
    params = list(model.parameters())
    h = _dense_member_hessian(model, x, y)
    ev = np.linalg.eigvalsh(h)
    loss = lambda: S.mse_member_loss(model(x), y, 4).sum()
    got = S.lanczos_eigenvalue(loss(), params, steps=200)       # n = 36: the Krylov space fills
    np.testing.assert_allclose(got, ev[np.argmax(np.abs(ev))], rtol=1e-8)
    rng = np.random.default_rng(0)
    pre = [torch.as_tensor(rng.uniform(0.2, 3.0, p.shape)) for p in params]
    d = torch.cat([t[0].reshape(-1) for t in pre]).numpy()
    gen = np.linalg.eigvals(np.diag(1 / d) @ h).real           # eigenvalues of P⁻¹H
    got = S.lanczos_eigenvalue(loss(), params, steps=200, precond=pre)
    np.testing.assert_allclose(got, gen[np.argmax(np.abs(gen))], rtol=1e-7)


def test_lanczos_rejects_bad_input():
    w = torch.zeros(1, 3, requires_grad=True)
    loss = (w ** 2).sum()
    with pytest.raises(ValueError, match="steps"):
        S.lanczos_eigenvalue(loss, [w], steps=1)
    with pytest.raises(ValueError, match="params"):
        S.lanczos_eigenvalue(loss, [], steps=5)
    with pytest.raises(ValueError, match="precond"):
        S.lanczos_eigenvalue(loss, [w], steps=5, precond=[-torch.ones(1, 3)])


def test_power_vs_lanczos_trains_the_network_of_sharpness_runs():
    # one member, so both draw the same starting vector: the same training gives the same
    # power-iteration reading; and Lanczos, converged, is at least as large in magnitude
    rows = S.power_vs_lanczos([("gd", 1, 0.5, 4, 6), ("adam", 2, 0.01, 0, 6)], iters=(5,),
                              lanczos_steps=60)
    for row, opt, seed, peak, warm in ((rows[0], "gd", 1, 0.5, 4), (rows[1], "adam", 2, 0.01, 0)):
        run = S.sharpness_runs(opt, [warm], [peak], [seed], steps=6, measure_every=6, iters=5)
        s = run.precond_sharpness if opt == "adam" else run.sharpness
        np.testing.assert_allclose(row["power"][0], s[0, 0, 0, -1], rtol=1e-5)
        assert abs(row["lanczos"]) >= abs(row["power"][0]) * (1 - 1e-4)
    with pytest.raises(ValueError, match="case"):
        S.power_vs_lanczos([("gd", 0, 0.5)])
    with pytest.raises(ValueError, match="steps"):
        S.power_check_rerun([0], 5, [("gd", 0.5, 0, 3)], (5,), 10)
    with pytest.raises(ValueError, match="optimizer"):
        S.power_vs_lanczos([("sgd", 0, 0.5, 0, 3)])


def test_power_report(capsys):
    rows = [{"optimizer": "gd", "seed": 0, "peak": 0.5, "warmup": 0, "step": 4,
             "iters": [20, 100], "power": [4.75, 5.0], "lanczos": 5.0, "threshold": 4.0}]
    S.power_report(rows)
    out = capsys.readouterr().out
    assert "read at most 5 % below Lanczos" in out and "in every case: yes" in out
    rows[0]["power"][0] = 4.0                                   # 20 % low
    S.power_report(rows)
    assert "in every case: no" in capsys.readouterr().out


def _runs(loss, sharp, peaks, init_loss):
    loss, sharp = np.asarray(loss, float), np.asarray(sharp, float)
    eta = np.array([[[p] * loss.shape[-1] for p in peaks]])
    return S.SharpnessRuns("gd", (0,), tuple(peaks), (0, 1), np.arange(1, loss.shape[-1] + 1),
                           loss, sharp, None, eta, 2 / eta, np.asarray(init_loss, float),
                           np.array([3.0, 3.0]))


def test_contrast_report_leaves_failed_runs_out(capsys):
    # at η = 2 seed 1 ends at loss 14 (it started at 0.5): dead, its sharpness 1 = 2/η means
    # nothing; seed 0 trains with sharpness 0.9 = 0.9 × 2/η
    run = _runs(loss=[[[[0.3], [0.2]], [[0.1], [14.0]]]], sharp=[[[[5.0], [6.0]], [[0.9], [1.0]]]],
                peaks=(0.1, 2.0), init_loss=[0.5, 0.5])
    S.contrast_report({"mse": run})
    out = capsys.readouterr().out
    assert "FAILED on 1/2 seeds" in out and "(0.9–1 × 2/η)" in out
    assert "runs that did not fail (1 left out): sharpness ends below half of 2/η on every " \
           "one: no; within 0.8–1.5 × 2/η on every one: yes" in out
    run.sharpness[0, 1, 0, 0] = 0.2                             # now the live run is at 0.2 × 2/η
    S.contrast_report({"mse": run})
    assert "below half of 2/η on every one: yes" in capsys.readouterr().out


def test_late_band_leaves_failed_runs_out():
    # seed 0 trains at ratio 1.2; seed 1 fails (loss 20) reading exactly 1 (a dead network)
    res = {"optimizer": "gd", "steps": [1, 2], "loss": [[[[0.2, 0.05], [0.5, 20.0]]]],
           "sharpness": [[[[1.0, 1.2], [1.0, 1.0]]]], "limit": [[[1.0, 1.0]]]}
    lo, hi = S._late_band(res, trains_below=0.1)
    assert lo[0, 0] == 1.2 and hi[0, 0] == 1.2
    res["loss"] = [[[[0.2, 0.5], [0.5, 20.0]]]]                # neither trains: no band
    lo, hi = S._late_band(res, trains_below=0.1)
    assert np.isnan(lo[0, 0]) and np.isnan(hi[0, 0])


def test_edge_report_verdicts(capsys):
    # two seeds, measured at steps 400 and 800; warmup 0 fails at η = 2 on one seed, warmup
    # 100 trains both; at η = 3 warmup 100 trains both at 400 and neither at 800 (delayed)
    loss = np.array([[[[0.05, 0.04], [0.05, 0.5]], [[0.5, 0.5], [0.5, 0.5]]],
                     [[[0.05, 0.03], [0.05, 0.02]], [[0.05, 0.4], [0.05, 0.3]]]])
    ratio = np.ones_like(loss)
    res = {"gd": {"warmups": [0, 100], "peaks": [2.0, 3.0], "seeds": [0, 1], "steps": [400, 800],
                  "loss": loss.tolist(), "ratio": ratio.tolist()}}
    S.edge_report(res, early=400)
    out = capsys.readouterr().out
    assert "verdict: GD η = 2 at 800 steps: every seed trains without warmup: no; with warmup: " \
           "100; every seed trains at step 400 but not at the end (failure delayed): none" in out
    assert "verdict: GD η = 3 at 800 steps: every seed trains without warmup: no; with warmup: " \
           "none; every seed trains at step 400 but not at the end (failure delayed): 100" in out
    assert "η=2: 2→1/2" in out
    with pytest.raises(ValueError, match="early"):
        S.edge_report(res, early=300)


def test_constant_output_loss_is_the_mse_of_the_mean_target():
    # the best constant output is the mean one-hot target; its half MSE, computed directly
    data = teacher_classification(n_train=256, n_val=64, seed=0)
    target = nn.functional.one_hot(data.y_train, data.classes).double()
    out = target.mean(0, keepdim=True).expand_as(target)
    expected = float(S.mse_member_loss(out.unsqueeze(-1), data.y_train, data.classes)[0])
    assert math.isclose(S.constant_output_loss(), expected, rel_tol=1e-12)
    assert abs(expected - 0.375) < 0.02          # four classes, nearly equally frequent


def test_batchnorm_pooled_report(capsys):
    def rec(seeds, loss_large):
        base = {"lrs": [0.1, 0.8], "warmup_epochs": [0, 1], "k": 8.0, "batch_size": 2048,
                "steps": 8, "seeds": seeds, "val_loss": np.array(loss_large),
                "val_acc": np.full((2, 2, len(seeds)), 0.9)}
        small = {**base, "lrs": [0.1, 0.2], "warmup_epochs": [0], "k": 1.0, "batch_size": 256,
                 "val_loss": np.array([[[0.4] * len(seeds), [0.45] * len(seeds)]]),
                 "val_acc": np.full((1, 2, len(seeds)), 0.9)}
        return {"bn-256": small, "bn-2048": base, "plain-256": small, "plain-2048": base}
    a = rec([0, 1], [[[0.3, 0.3], [0.4, 0.4]], [[0.3, 0.3], [0.35, 0.35]]])
    b = rec([2, 3], [[[0.3, 0.3], [0.9, 0.4]], [[0.3, 0.3], [0.3, 0.32]]])
    S.batchnorm_pooled_report([a, b])
    out = capsys.readouterr().out
    # pooled: without warmup η = 0.8 fails one seed of four, so the largest all-seed rate is 0.1;
    # with 1 epoch every seed trains at 0.8; 0.8 = k × 0.1, the small batch's best
    assert "largest rate every seed trains: warmup 0 epochs 0.1, warmup 1 epochs 0.8" in out
    assert "seeds that train warmup 0 3/4, warmup 1 4/4" in out
    assert "seeds 0–1: 0.8/0.8; seeds 2–3: 0.1/0.8" in out
    with pytest.raises(ValueError, match="grids differ"):
        S.batchnorm_pooled_report([a, {**b, "bn-2048": {**b["bn-2048"], "lrs": [0.1, 0.4]}}])


def test_qk_report_sensitivity_without_the_largest_rate(capsys):
    lrs = [1e-3, 1e-2, 1e-1]
    res = {"lrs": lrs, "seeds": [0, 1], "group": 1, "eval_steps": [10],
           "runs": {"pre": {"val_loss": [[0.1, 0.3], [0.2, 0.2], [2.5, 2.6]],
                            "max_logit": [[5, 6], [5, 6], [2e4, 3e3]], "sensitivity": [1, 1]},
                    "pre-qk": {"val_loss": [[0.1, 0.1], [0.4, 0.1], [0.4, 0.6]],
                               "max_logit": [[3, 4], [3, 4], [4, 5]], "sensitivity": [0, 0]}}}
    S.qk_report(res)
    out = capsys.readouterr().out
    # rates 1e-3, 1e-2 only, each batch order (one seed): pre seed 0: (0 + 0.1)/2 = 0.05,
    # seed 1: (0.1 + 0)/2 = 0.05; qk seed 0: (0 + 0.3)/2 = 0.15, seed 1: 0
    assert "η = 0.1 left out, without qk-layernorm: 0.05, 0.05; with: 0.15, 0.00" in out
    assert "η = 0.01: 0.200 / 0.250" in out                     # medians


def test_contrast_report_slow_run(capsys):
    # sharpness 1 → 4 → 0.5 on seed 0 and 2 → 3 → 2 on seed 1: seed 1 does not fall below
    # half its peak (1.5) nor below 1
    slow = _runs(loss=[[[[0.3, 0.2, 0.01], [0.3, 0.2, 0.05]]]],
                 sharp=[[[[1.0, 4.0, 0.5], [2.0, 3.0, 2.0]]]], peaks=(0.1,), init_loss=[1.4, 1.4])
    run = _runs(loss=[[[[0.3], [0.2]]]], sharp=[[[[5.0], [6.0]]]], peaks=(0.1,),
                init_loss=[0.5, 0.5])
    S.contrast_report({"ce": run}, slow=slow)
    out = capsys.readouterr().out
    assert "to at most 3–4 (step 2, 2); the loss ends at 0.01–0.05" in out
    assert "sharpness ends below half its peak on every seed: no; below 1 on every seed: no" in out
    slow.sharpness[0, 0, 1, -1] = 0.9
    S.contrast_report({"ce": run}, slow=slow)
    assert "half its peak on every seed: yes; below 1 on every seed: yes" in capsys.readouterr().out
