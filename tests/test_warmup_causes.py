"""optbook.experiments.warmup_causes: every intervention's mechanics against torch.optim
(Adam, RAdam) or a closed form, and input validation."""
import math

import numpy as np
import pytest
import torch

from optbook.experiments import warmup_causes as C
from optbook.experiments.warmup import sort_task

torch.set_num_threads(1)


def _grads(steps, shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=g, dtype=torch.float64) for _ in range(steps)]


def _run_member(opt, p, grads):
    for g in grads:
        p.grad = g.clone()
        opt.step()


@pytest.mark.parametrize("rectify", [False, True])
def test_member_adam_matches_torch_adam_and_radam_per_member(rectify):
    # three members with different rates and eps; each must follow torch's optimizer alone
    shape, steps = (3, 4, 5), 60          # 60 steps: RAdam passes rho_t > 5 at t = 6
    lrs, eps = [0.01, 0.003, 0.03], [1e-8, 1e-3, 1e-6]
    p0 = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    p = p0.clone().requires_grad_(True)
    opt = C.MemberAdam([p], np.tile(lrs, (steps, 1)), eps=eps, rectify=rectify)
    grads = _grads(steps, shape)
    _run_member(opt, p, grads)
    ref_cls = torch.optim.RAdam if rectify else torch.optim.Adam
    for m in range(3):
        q = p0[m].clone().requires_grad_(True)
        ref = ref_cls([q], lr=lrs[m], eps=eps[m])
        _run_member(ref, q, [g[m] for g in grads])
        torch.testing.assert_close(p[m].detach(), q.detach(), rtol=1e-12, atol=1e-14)


def test_adam_k_takes_no_step_then_equals_adam_with_prefilled_moments():
    k, lr, b1, b2 = 7, 0.02, 0.9, 0.999
    arm = C.Arm("k", adam_k=k)
    rates = arm.schedule(lr, 20)[:, None]
    np.testing.assert_array_equal(rates[:k, 0], 0.0)
    np.testing.assert_array_equal(rates[k:, 0], lr)
    p0 = torch.randn(1, 6, dtype=torch.float64)
    p = p0.clone().requires_grad_(True)
    opt = C.MemberAdam([p], rates, b1=b1, b2=b2)
    grads = _grads(20, (1, 6), seed=3)
    _run_member(opt, p, grads[:k])
    torch.testing.assert_close(p.detach(), p0, rtol=0, atol=0)       # no step for k steps
    _run_member(opt, p, grads[k:])
    # the moments after k steps, from their closed form (sums of the gradients)
    m = sum((1 - b1) * b1 ** (k - 1 - i) * grads[i][0] for i in range(k))
    v = sum((1 - b2) * b2 ** (k - 1 - i) * grads[i][0] ** 2 for i in range(k))
    q = p0[0].clone().requires_grad_(True)
    ref = torch.optim.Adam([q], lr=lr, betas=(b1, b2))
    ref.state[q] = {"step": torch.tensor(float(k)), "exp_avg": m.clone(),
                    "exp_avg_sq": v.clone()}
    _run_member(ref, q, [g[0] for g in grads[k:]])
    torch.testing.assert_close(p[0].detach(), q.detach(), rtol=1e-12, atol=1e-14)


def test_gi_adam_starts_from_v0_equal_to_first_gradient_squared():
    lr, steps = 0.01, 15
    p0 = torch.randn(2, 5, dtype=torch.float64)
    p = p0.clone().requires_grad_(True)
    opt = C.MemberAdam([p], np.full((steps, 2), lr), gi=[True, False])
    grads = _grads(steps, (2, 5), seed=4)
    _run_member(opt, p, grads)
    for m, gi in enumerate((True, False)):
        q = p0[m].clone().requires_grad_(True)
        ref = torch.optim.Adam([q], lr=lr)
        if gi:  # torch.optim.Adam with v_0 = g_0^2 set by hand, bias correction as usual
            ref.state[q] = {"step": torch.tensor(0.0), "exp_avg": torch.zeros_like(q),
                            "exp_avg_sq": grads[0][m] ** 2}
        _run_member(ref, q, [g[m] for g in grads])
        torch.testing.assert_close(p[m].detach(), q.detach(), rtol=1e-12, atol=1e-14)


def test_update_cap_bounds_the_ratio_and_is_inactive_when_loose():
    steps, lr = 10, 0.5      # a large rate: Adam's update is far larger than 1e-2 ||W||
    p0 = torch.randn(3, 8, 8, dtype=torch.float64)
    grads = _grads(steps, (3, 8, 8), seed=5)
    p = p0.clone().requires_grad_(True)
    opt = C.MemberAdam([{"params": [p], "capped": True}], np.full((steps, 3), lr),
                       cap=[1e-2, 1e-3, np.inf])
    free = p0.clone().requires_grad_(True)
    ref = C.MemberAdam([free], np.full((steps, 3), lr))
    for g in grads:
        before = p.detach().clone()
        p.grad, free.grad = g.clone(), g.clone()
        opt.step(); ref.step()
        d = (p.detach() - before).reshape(3, -1).norm(dim=1)
        w = before.reshape(3, -1).norm(dim=1)
        np.testing.assert_allclose((d / w)[:2].numpy(), [1e-2, 1e-3], rtol=1e-9)  # binding
        np.testing.assert_allclose(opt.last_ratio[:2], [1e-2, 1e-3], rtol=1e-9)
    # member 2 has no cap: identical to uncapped Adam
    torch.testing.assert_close(p[2].detach(), free[2].detach(), rtol=0, atol=0)
    # the capped update keeps Adam's direction
    cos = torch.nn.functional.cosine_similarity((p[0] - p0[0]).flatten(),
                                                (free[0] - p0[0]).flatten(), dim=0)
    assert cos > 0.9


def test_mup_per_layer_rates_and_multipliers():
    seeds = (0,)
    sp = C.build_model(seeds, width=64, param="sp", layers=2)
    mup = C.build_model(seeds, width=64, param="mup", base_width=32, layers=2)
    groups = C.param_groups(mup, "mup", base_width=32)
    hidden = {id(b.qkv.weight) for b in mup.blocks} | {id(b.mlp_out.weight) for b in mup.blocks}
    assert groups[0]["lr_mult"] == pytest.approx(0.5)            # 32 / 64
    assert hidden <= {id(p) for p in groups[0]["params"]}
    assert groups[1]["lr_mult"] == 1.0 and groups[2]["lr_mult"] == 1.0
    assert id(mup.embed) in {id(p) for p in groups[1]["params"]}
    assert id(mup.head.weight) in {id(p) for p in groups[1]["params"]}
    assert all(g["lr_mult"] == 1.0 for g in C.param_groups(sp, "sp"))
    n = sum(len(g["params"]) for g in groups)
    assert n == len(list(mup.parameters()))
    # muP's forward = the SP network (same draws) with hidden biases x sqrt(2), read-out
    # weights x sqrt(2) / 2 (init rescale x output multiplier 32/64), read-out bias x sqrt(2)
    # and queries x sqrt(16/32) (attention 1/d_head instead of 1/sqrt(d_head))
    r = 64 / 32
    with torch.no_grad():
        for b in sp.blocks:
            for lin in (b.qkv, b.proj, b.mlp_in, b.mlp_out):
                lin.bias *= math.sqrt(r)
            b.qkv.weight[..., :64] *= math.sqrt(16 / 32)
            b.qkv.bias[..., :64] *= math.sqrt(16 / 32)
        sp.head.weight *= math.sqrt(r) / r
        sp.head.bias *= math.sqrt(r)
    x = torch.randint(0, 16, (5, 8), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(mup(x), sp(x), rtol=1e-5, atol=1e-6)
    # at the base width muP and SP are the same network
    a, b = C.build_model(seeds, width=32, param="mup"), C.build_model(seeds, width=32)
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_mup_hidden_updates_scale_with_width():
    # first Adam step is lr * sign(g) (|g| >> eps): hidden weights move by lr * 32/width
    model = C.build_model((0,), width=64, param="mup", base_width=32, layers=1)
    groups = C.param_groups(model, "mup", base_width=32)
    before = [p.detach().clone() for g in groups for p in g["params"]]
    opt = C.MemberAdam(groups, np.full((1, 1), 0.01))
    x = torch.randint(0, 16, (4, 8), generator=torch.Generator().manual_seed(1))
    y = torch.sort(x, 1).values.unsqueeze(-1)
    C._member_sum_loss(model(x), y).backward()
    opt.step()
    after = [p.detach() for g in groups for p in g["params"]]
    n0 = len(groups[0]["params"])
    moved = [float((a - b).abs().max()) for a, b in zip(after, before)]
    assert max(moved[:n0]) == pytest.approx(0.005, rel=1e-4)
    assert max(moved[n0:]) == pytest.approx(0.01, rel=1e-4)


def test_members_of_a_stacked_run_are_independent():
    data = sort_task(n_train=256, n_val=64, seed=0)
    a, b = C.Arm("a"), C.Arm("b", cap=1e-3, eps=1e-3)
    alone = C.run_arms([a], (0, 1), data, lr=1e-2, steps=12, eval_every=6)
    both = C.run_arms([b, a], (0, 1), data, lr=1e-2, steps=12, eval_every=6)
    np.testing.assert_allclose(both.final_loss[1], alone.final_loss[0], rtol=1e-5)
    np.testing.assert_allclose(both.curves[1], alone.curves[0], rtol=1e-5)
    assert both.ratio.shape == (2, 2, 12) and np.all(both.ratio[0] <= 1e-3 * (1 + 1e-9))
    assert both.max_logit.shape == (2, 2, 2) and np.all(both.max_logit > 0)


def test_arm_schedule_warmup_after_prefill():
    s = C.Arm("x", adam_k=3, warmup=4, rate_mult=0.5).schedule(0.04, 10)
    np.testing.assert_allclose(s, [0, 0, 0, 0, 0.005, 0.01, 0.015, 0.02, 0.02, 0.02])


def test_causal_table_verdicts():
    stored = {"arms": [{"name": n, "mechanism": m, "label": n} for n, m in
                       (("base", "baseline"), ("a", "x"), ("b", "y"), ("c", "z"))],
              "final_loss": {"base": [[2.7, 2.7]], "a": [[0.3, 0.4]], "b": [[0.3, 2.7]],
                             "c": [[2.7, "inf"]]}}
    rows = C.causal_table(stored, trains_below=1.0)
    assert [r[2] for r in rows] == ["baseline", "fixed", "partly", "not fixed"]
    assert rows[1][3]["mean"] == pytest.approx(0.35) and rows[1][3]["trained"] == 2
    assert math.isinf(rows[3][3]["mean"]) and rows[3][3]["min"] == 2.7
    assert "diverged" in C.format_table(rows)


@pytest.mark.parametrize("kwargs, match", [
    ({"rates": np.ones(5)}, "rates"),
    ({"rates": -np.ones((5, 2))}, "rates"),
    ({"rates": np.ones((5, 2)), "eps": [1e-8, 0.0]}, "eps"),
    ({"rates": np.ones((5, 2)), "eps": [1e-8]}, "eps"),
    ({"rates": np.ones((5, 2)), "cap": [1e-2, -1.0]}, "cap"),
    ({"rates": np.ones((5, 2)), "b2": 1.0}, "b2"),
    ({"rates": np.ones((5, 3))}, "members"),
])
def test_member_adam_rejects_bad_input(kwargs, match):
    p = torch.zeros(2, 3, requires_grad=True)
    with pytest.raises(ValueError, match=match):
        C.MemberAdam([p], **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"warmup": -1}, "warmup"), ({"adam_k": 1.5}, "adam_k"), ({"eps": 0}, "eps"),
    ({"cap": -0.1}, "cap"), ({"param": "ntk"}, "param"), ({"init": "orthogonal"}, "init"),
    ({"width": 1}, "width"), ({"rate_mult": float("nan")}, "rate_mult"),
])
def test_arm_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        C.Arm("bad", **kwargs)


def test_run_arms_and_build_model_reject_bad_input():
    data = sort_task(n_train=64, n_val=16, seed=0)
    with pytest.raises(TypeError, match="arms"):
        C.run_arms(["none"], (0,), data, lr=1e-2, steps=2)
    with pytest.raises(ValueError, match="lr"):
        C.run_arms([C.Arm("a")], (0,), data, lr=0.0, steps=2)
    with pytest.raises(ValueError, match="seeds"):
        C.run_arms([C.Arm("a")], (), data, lr=1e-2, steps=2)
    with pytest.raises(ValueError, match="steps"):
        C.run_arms([C.Arm("a")], (0,), data, lr=1e-2, steps=0)
    with pytest.raises(ValueError, match="param"):
        C.build_model((0,), param="ntk")
    with pytest.raises(ValueError, match="param"):
        C.param_groups(C.build_model((0,)), "ntk")


def test_grid_summary_and_width_table():
    # loss (warmups=2, rates=3, orders=2, seeds=1); trains below 1
    loss = np.array([[[[0.5], [0.6]], [[0.4], [2.7]], [[2.7], [float("inf")]]],
                     [[[0.9], [0.8]], [[0.3], [0.2]], [[0.5], [0.7]]]])
    s = C._grid_summary(loss, [1e-3, 1e-2, 3e-2], [0, 300], 1.0)
    assert s["0"] == {"best_lr": 1e-3, "best_loss": pytest.approx(0.55),
                      "largest_trained_lr": 1e-3}
    assert s["300"]["best_lr"] == 1e-2 and s["300"]["largest_trained_lr"] == 3e-2
    setting = {"params": {"batch_seeds": [100, 101]},
               "results": {"lrs": [1e-3, 1e-2, 3e-2], "warmups": [0, 300], "trains_below": 1.0,
                           "final_loss": {"3": {"0": loss[0].tolist(), "300": loss[1].tolist()}}}}
    widths = {"params": {"batch_seeds": [101]},
              "results": {"lrs": [1e-3, 1e-2, 3e-2], "warmups": [0, 300], "base_width": 32,
                          "params": ["sp", "mup"],
                          "summary": {"sp": {"64": {"x": 1}}, "mup": {"64": {"x": 2}}}}}
    table = C.width_table(widths, setting)
    # only batch order 101 (the width rerun's) of the base grid: rate 1e-2 diverges in it
    assert table["sp"]["32"]["0"]["largest_trained_lr"] == 1e-3
    assert table["sp"]["32"]["300"]["best_lr"] == 1e-2
    assert table["mup"]["64"] == {"x": 2} and table["mup"]["32"] == table["sp"]["32"]
    widths["results"]["lrs"] = [1e-3]
    with pytest.raises(ValueError, match="setting"):
        C.width_table(widths, setting)


def test_format_setting_names_the_deciding_rates():
    stored = {"layers": [3], "lrs": [1e-2, 3e-2], "warmups": [0, 300], "trains_below": 1.0,
              "final_loss": {"3": {"0": [[[0.2, 0.3]], [[2.7, 2.8]]],
                                   "300": [[[0.2, 0.2]], [[0.4, 0.5]]]}},
              "decides": {"3": [3e-2]}}
    text = C.format_setting(stored)
    assert "0.25 (0.20-0.30)" in text and "2.75 (2.70-2.80)" in text
    assert text.rstrip().endswith("0.03")


def test_causes_rerun_aligns_adam_k_runs_on_their_moving_steps():
    arms = ({"name": "none", "mechanism": "baseline", "label": "none"},
            {"name": "k", "mechanism": "Adam statistics", "label": "k", "adam_k": 4})
    out = C.causes_rerun(arms, 1e-2, (0,), (100, 101), steps=6, n_val=8, eval_every=2,
                         ratio_window=3)
    assert np.shape(out["final_loss"]["k"]) == (2, 1)
    fo = out["first_order"]["k"]
    assert np.shape(fo["curves"]) == (1, 3) and np.shape(fo["ratio"]) == (1, 2)
    assert np.all(np.array(fo["ratio"]) > 0)          # the 4 zero-rate steps are cut off
    assert list(out["eval_steps"]) == [2, 4, 6] and list(out["ratio_steps"]) == [3, 6]


def test_cap_holds_for_cap_steps_only():
    steps, lr = 8, 0.5
    p0 = torch.randn(2, 6, 6, dtype=torch.float64)
    grads = _grads(steps, (2, 6, 6), seed=6)
    p = p0.clone().requires_grad_(True)
    opt = C.MemberAdam([{"params": [p], "capped": True}], np.full((steps, 2), lr),
                       cap=[1e-3, 1e-3], cap_steps=[3, None])
    ratios = []
    for g in grads:
        p.grad = g.clone()
        opt.step()
        ratios.append(opt.last_ratio.copy())
    ratios = np.array(ratios)
    np.testing.assert_allclose(ratios[:3, 0], 1e-3, rtol=1e-9)
    assert np.all(ratios[3:, 0] > 1e-2)                 # released after 3 steps
    np.testing.assert_allclose(ratios[:, 1], 1e-3, rtol=1e-9)
    with pytest.raises(ValueError, match="cap_steps"):
        C.Arm("x", cap_steps=10)


def test_figures_draw_stored_and_live_runs():
    import matplotlib
    matplotlib.use("Agg")
    arms = ({"name": "none", "mechanism": "baseline", "label": "no warmup"},
            {"name": "warmup-300", "mechanism": "baseline", "label": "warmup", "warmup": 3},
            {"name": "cap", "mechanism": "update size", "label": "cap", "cap": 1e-2})
    out = C.causes_rerun(arms, 1e-2, (0, 1), (100,), steps=6, n_val=8, eval_every=2,
                         ratio_window=3)
    fig = C.draw_stored_causes(out, ["none", "cap"])
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert labels[0].startswith("validation loss") and "attention" in labels[1]
    assert "ΔW" in labels[2]
    explorer = C.causes_figure(out, default="cap")
    assert explorer.spec["kind"] == "runs"
    runs = C.run_arms([C.Arm("a"), C.Arm("b", cap=1e-3)], (0,), sort_task(64, 16), lr=1e-2,
                      steps=4, eval_every=2)
    assert len(C.draw_causes(runs, ratio_window=2).axes) == 3


# --- a lower-rate phase, Adam's preconditioner, the sharpness probe, the cap's binding -------

def test_phase_schedule_is_a_step_after_the_prefill():
    # definition: rate * phase_mult for the first phase_steps moving steps, then the rate
    np.testing.assert_allclose(C.Arm("p", phase_steps=3, phase_mult=0.1).schedule(1.0, 6),
                               [0.1, 0.1, 0.1, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(C.Arm("p", adam_k=2, phase_steps=2, phase_mult=0.5).schedule(2.0, 6),
                               [0.0, 0.0, 1.0, 1.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="phase_mult"):
        C.Arm("bad", phase_mult=0.0)
    with pytest.raises(ValueError, match="phase_steps"):
        C.Arm("bad", phase_steps=-1)


def test_preconditioner_is_torch_adams_denominator():
    steps, lr, eps = 12, 0.01, 1e-6
    p0 = torch.randn(2, 4, dtype=torch.float64)
    p = p0.clone().requires_grad_(True)
    opt = C.MemberAdam([{"params": [p], "lr_mult": 0.5}], np.full((steps, 2), lr), eps=eps)
    with pytest.raises(ValueError, match="no step"):
        opt.preconditioner()
    grads = _grads(steps, (2, 4), seed=7)
    _run_member(opt, p, grads)
    params, diag = opt.preconditioner()
    assert params[0] is p
    for m in range(2):
        q = p0[m].clone().requires_grad_(True)
        ref = torch.optim.Adam([q], lr=lr, eps=eps)
        _run_member(ref, q, [g[m] for g in grads])
        v = ref.state[q]["exp_avg_sq"]
        denom = (v / (1 - 0.999 ** steps)).sqrt() + eps     # torch's Adam denominator
        torch.testing.assert_close(diag[0][m], denom / 0.5, rtol=1e-12, atol=0)


def test_last_uncapped_is_torch_adams_update_before_the_cap():
    steps, lr = 5, 0.5
    p0 = torch.randn(2, 6, 6, dtype=torch.float64)
    grads = _grads(steps, (2, 6, 6), seed=8)
    p = p0.clone().requires_grad_(True)
    opt = C.MemberAdam([{"params": [p], "capped": True}], np.full((steps, 2), lr),
                       cap=[1e-3, np.inf])
    q = p0[1].clone().requires_grad_(True)         # member 1 is uncapped: plain Adam
    ref = torch.optim.Adam([q], lr=lr)
    for g in grads:
        before_p, before_q = p.detach().clone(), q.detach().clone()
        p.grad = g.clone(); q.grad = g[1].clone()
        opt.step(); ref.step()
        assert opt.last_uncapped.shape == (1, 2)
        expect = ((q.detach() - before_q).norm() / before_q.norm()).item()
        np.testing.assert_allclose(opt.last_uncapped[0, 1], expect, rtol=1e-10)
        # member 0 was shrunk to the cap, from a larger uncapped ratio
        assert opt.last_uncapped[0, 0] > 1e-3
        np.testing.assert_allclose(((p.detach() - before_p)[0].norm() / before_p[0].norm()).item(),
                                   1e-3, rtol=1e-9)


def test_sharpness_probe_does_not_disturb_training_and_members_are_independent():
    data = sort_task(n_train=64, n_val=16, seed=0)
    arms = [C.Arm("a"), C.Arm("b", phase_steps=2, phase_mult=0.5)]
    plain = C.run_arms(arms, (0, 1), data, lr=1e-2, steps=4, eval_every=2)
    probed = C.run_arms(arms, (0, 1), data, lr=1e-2, steps=4, eval_every=2, sharpness_at=(2, 4),
                        sharpness_batch=32, sharpness_iters=30)
    np.testing.assert_array_equal(plain.final_loss, probed.final_loss)
    assert probed.sharpness.shape == (2, 2, 2) and plain.sharpness.shape == (2, 2, 0)
    assert np.all(np.isfinite(probed.sharpness)) and np.all(probed.sharpness > 0)
    alone = C.run_arms(arms[1:], (1,), data, lr=1e-2, steps=4, eval_every=2, sharpness_at=(2, 4),
                       sharpness_batch=32, sharpness_iters=30)
    np.testing.assert_allclose(alone.sharpness[0, 0], probed.sharpness[1, 1], rtol=1e-3)
    with pytest.raises(ValueError, match="sharpness_at"):
        C.run_arms(arms, (0,), data, lr=1e-2, steps=4, sharpness_at=(5,))


def test_cap_binding_rerun_counts_the_shrunk_matrices():
    arms = ({"name": "tight", "mechanism": "update size", "label": "tight", "cap": 1e-6},
            {"name": "loose", "mechanism": "update size", "label": "loose", "cap": 1e6},
            {"name": "tight-2", "mechanism": "update size", "label": "tight 2 steps", "cap": 1e-6,
             "cap_steps": 2})
    out = C.cap_binding_rerun(arms, 1e-2, (0,), 100, steps=4, windows=((1, 2), (3, 4)), n_val=8)
    tight, loose, early = (out["binding"][n] for n in ("tight", "loose", "tight-2"))
    assert tight[0]["capped"] == 1.0 and tight[1]["capped"] == 1.0
    assert tight[0]["median_shrink"] < 1e-3           # a 1e-6 cap on ratios of ~1e-2 or more
    assert loose[0]["capped"] == 0.0 and loose[0]["median_shrink"] == 1.0
    assert early[0]["capped"] == 1.0 and early[1]["capped"] == 0.0   # released after step 2
    text = C.format_cap_binding(out)
    assert "tight" in text and "3-4" in text
    with pytest.raises(ValueError, match="cap"):
        C.cap_binding_rerun(arms[:1] + ({"name": "x", "mechanism": "m", "label": "x"},), 1e-2,
                            (0,), 100, steps=4, windows=((1, 2),))
    with pytest.raises(ValueError, match="windows"):
        C.cap_binding_rerun(arms, 1e-2, (0,), 100, steps=4, windows=((3, 5),))


def test_format_phases_compares_the_switch_with_38_over_eta():
    arms = ({"name": "none", "mechanism": "baseline", "label": "none"},
            {"name": "low", "mechanism": "lower-rate phase", "label": "low", "phase_steps": 2,
             "phase_mult": 0.1})
    out = C.causes_rerun(arms, 3e-2, (0,), (100,), steps=4, n_val=8, eval_every=2,
                         ratio_window=2, sharpness_at=(2,))
    assert np.shape(out["sharpness"]["low"]) == (1, 1, 1)
    text = C.format_phases({"params": {"arms": arms}, "results": out})
    # Cohen et al.'s threshold (2 + 2 b1) / ((1 - b1) eta) at b1 = 0.9, eta = 3e-2: 1266.7
    assert "38/eta = 1267" in text
    lam = float(out["sharpness"]["low"][0, 0, 0])
    assert f"{lam / (38 / 3e-2):.2f}" in text.splitlines()[-1]


def test_pool_records_counts_every_run_and_format_runs():
    arms = [{"name": "a", "mechanism": "m", "label": "arm a"}]
    rec = lambda loss, lam: {"name": "x", "params": {"arms": arms},
                             "results": {"arms": arms, "final_loss": {"a": loss},
                                         "sharpness": {"a": lam}}}
    one = rec([[0.5, 2.7]], [[[10.0], [20.0]]])             # 1 order x 2 seeds
    two = rec([[0.4, 0.6], [2.8, 0.3]], [[[1.0], [2.0]], [[3.0], [4.0]]])
    pooled = C.pool_records(one, two)
    assert pooled["results"]["final_loss"]["a"].shape == (3, 2)
    assert pooled["results"]["sharpness"]["a"].shape == (3, 2, 1)
    s = C.summarize(pooled["results"]["final_loss"]["a"], 1.0)
    assert (s["trained"], s["runs"]) == (4, 6)               # 0.5, 0.4, 0.6, 0.3 below 1
    assert "4/6" in C.format_runs(pooled["results"])
    with pytest.raises(ValueError, match="arms differ"):
        C.pool_records(one, {"results": {"arms": [{"name": "b"}], "final_loss": {}}})
    with pytest.raises(ValueError, match="records"):
        C.pool_records()
