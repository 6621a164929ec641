"""Edge cases a user meets outside the happy path: bad input, foreign state, dtypes,
attention and recurrent biases, hyper-parameters changed mid-run.

Oracles are torch (clip_grad_norm_, parameter names of nn modules) or plain facts
(a float32 array stays float32; a negative learning rate is an error)."""
import numpy as np
import pytest
import torch
from torch import nn

import optbook
import optbook.torch as ot
from optbook import landscapes

torch.set_num_threads(1)


def _one_step(opt, params):
    opt.zero_grad()
    sum((p ** 2).sum() for p in params).backward()
    opt.step()


# --- param_groups ---------------------------------------------------------------------

def test_attention_and_recurrent_biases_are_not_decayed():
    model = nn.ModuleDict({"attn": nn.MultiheadAttention(8, 2), "rnn": nn.LSTM(4, 4),
                           "out": nn.Linear(4, 2)})
    decay, keep = ot.param_groups(model, 0.1)
    expected_biases = {n for n, _ in model.named_parameters() if "bias" in n}
    assert set(keep["param_names"]) == expected_biases
    assert "attn.in_proj_bias" in keep["param_names"]
    assert "rnn.bias_ih_l0" in keep["param_names"]
    assert set(decay["param_names"]) == {n for n, _ in model.named_parameters()} - expected_biases


# --- ChainOptimizer ---------------------------------------------------------------------

def test_chain_optimizer_factory_uses_group_settings_and_works_with_lr_schedulers():
    model = nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3))
    groups = ot.param_groups(model, 0.5)
    ours = ot.ChainOptimizer(groups, lambda g: optbook.adamw(g["lr"], weight_decay=g["weight_decay"]),
                             defaults=dict(lr=0.1, weight_decay=0.5))
    ref_model = nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3))
    ref_model.load_state_dict(model.state_dict())
    ref = torch.optim.AdamW(ot.param_groups(ref_model, 0.5), lr=0.1)
    sched = [torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5) for o in (ours, ref)]
    x = torch.randn(5, 3)
    for _ in range(5):
        for m, o, s in ((model, ours, sched[0]), (ref_model, ref, sched[1])):
            o.zero_grad()
            m(x).pow(2).sum().backward()
            o.step()
            s.step()
    for a, b in zip(model.parameters(), ref_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_fixed_chain_refuses_group_settings_it_would_ignore():
    model = nn.Linear(3, 3)
    with pytest.raises(ValueError, match="Invalid param group"):
        ot.ChainOptimizer(ot.param_groups(model, 0.1), optbook.adamw(0.1))


def test_loading_a_torch_optim_state_dict_is_refused():
    p = [nn.Parameter(torch.randn(3))]
    theirs = torch.optim.Adam(p)
    _one_step(theirs, p)
    with pytest.raises(ValueError, match="Invalid state_dict"):
        ot.Adam(p).load_state_dict(theirs.state_dict())


def test_changing_the_chain_structure_mid_run_names_the_problem():
    p = [nn.Parameter(torch.randn(3))]
    opt = ot.SGD(p, lr=0.1)
    _one_step(opt, p)
    opt.param_groups[0]["momentum"] = 0.9
    with pytest.raises(ValueError, match="momentum"):
        _one_step(opt, p)


def test_non_finite_gradient_is_reported_with_its_parameter():
    p = [nn.Parameter(torch.ones(2)), nn.Parameter(torch.ones(3))]
    opt = ot.ChainOptimizer(p, optbook.chain(optbook.ensure_finite(), optbook.sgd(0.1)))
    opt.zero_grad()
    (p[0].sum() + (p[1] * float("nan")).sum()).backward()
    with pytest.raises(FloatingPointError, match=r"parameter 1 \(3,\)"):
        opt.step()
    # nothing is half-applied: parameter 0 (finite gradient) is untouched too
    assert torch.equal(p[0].detach(), torch.ones(2))
    assert not opt.state[p[0]]


@pytest.mark.parametrize("make", [lambda q: ot.LAMB(q), lambda q: ot.Lion(q),
                                  lambda q: ot.SophiaG(q), lambda q: ot.Adafactor(q),
                                  lambda q: ot.NAdam(q), lambda q: ot.RAdam(q),
                                  lambda q: ot.Shampoo(q), lambda q: ot.SOAP(q),
                                  lambda q: ot.Muon(q)])
def test_add_param_group_validates_every_class(make):
    opt = make([nn.Parameter(torch.randn(2, 2))])  # a matrix: Muon refuses vectors
    with pytest.raises(ValueError, match="Invalid learning rate"):
        opt.add_param_group({"params": [nn.Parameter(torch.randn(2, 2))], "lr": -1.0})


def test_muon_validates_its_adamw_groups_too():
    opt = ot.Muon([nn.Parameter(torch.randn(2, 2))])
    with pytest.raises(ValueError, match="Invalid learning rate"):
        opt.add_param_group({"params": [nn.Parameter(torch.randn(2))], "use_muon": False,
                             "lr": -1.0})
    with pytest.raises(ValueError, match="Invalid epsilon value"):
        opt.add_param_group({"params": [nn.Parameter(torch.randn(2))], "use_muon": False,
                             "eps": -1.0})


@pytest.mark.parametrize("make", [lambda q: ot.NAdam(q, lr=0.1), lambda q: ot.RAdam(q, lr=0.1),
                                  lambda q: ot.Shampoo(q, lr=0.1), lambda q: ot.SOAP(q, lr=0.1),
                                  lambda q: ot.Muon(q, lr=0.1)])
def test_new_rules_step_float32_matrices_and_keep_them_float32(make):
    p = nn.Parameter(torch.randn(4, 3))
    opt = make([p])
    for _ in range(3):
        _one_step(opt, [p])
    assert p.dtype == torch.float32 and torch.isfinite(p).all()


@pytest.mark.parametrize("make", [lambda: optbook.shampoo(0.1), lambda: optbook.soap(0.1),
                                  lambda: optbook.muon(0.1), lambda: optbook.nadam(0.1),
                                  lambda: optbook.radam(0.1)])
def test_new_rules_keep_float32_numpy_arrays_float32(make):
    opt = make()
    p = np.ones((3, 2), np.float32)
    state = opt.init(p)
    for _ in range(2):  # SOAP's first step only initializes
        u, state = opt.update(p + 0.5, state, p)
        assert u.dtype == np.float32


def test_bad_betas_is_a_value_error():
    with pytest.raises(ValueError, match="Invalid betas"):
        ot.Adam([nn.Parameter(torch.randn(2))], betas=0.9)


# --- functional core --------------------------------------------------------------------

def test_float32_arrays_stay_float32_with_numpy_scalar_hyper_parameters():
    opt = optbook.adam(np.float64(0.1), b1=np.float64(0.9))
    p = np.ones(3, np.float32)
    u, _ = opt.update(p, opt.init(p), p)
    assert u.dtype == np.float32
    assert optbook.apply_updates(p, u).dtype == np.float32


def test_schedule_values_are_checked():
    opt = optbook.sgd(lambda t: 0.1 - 0.1 * t)  # negative from step 2 on
    p = np.ones(2)
    state = opt.init(p)
    for _ in range(2):
        _, state = opt.update(p, state, p)
    with pytest.raises(ValueError, match="Invalid learning rate at step 2"):
        opt.update(p, state, p)


def test_mask_entries_must_be_booleans():
    opt = optbook.adamw(0.1, mask=[np.array([True, False]), True])
    p = [np.ones(2), np.ones(2)]
    with pytest.raises(ValueError, match="Invalid mask"):
        opt.update(p, opt.init(p), p)


def test_fp16_clipping_agrees_with_torch():
    g = [torch.full((4,), 300.0, dtype=torch.float16)]
    ref = [t.clone().requires_grad_() for t in g]
    for r, t in zip(ref, g):
        r.grad = t.clone()
    total_ref = torch.nn.utils.clip_grad_norm_(ref, 1.0)
    clipped, total = optbook.clip_grad_norm(g, 1.0)
    assert total == pytest.approx(float(total_ref), rel=1e-3)
    torch.testing.assert_close(clipped[0], ref[0].grad)


def test_trajectory_converts_to_its_path_array():
    run = optbook.trajectory(optbook.sgd(0.05), landscapes.quadratic(10), steps=7)
    assert np.asarray(run).shape == (8, 2) and len(run) == 8
    np.testing.assert_array_equal(np.asarray(run), run.path)


def test_lr_range_test_arguments_accept_numpy_scalars():
    from optbook.lr_range_test import lr_ramp

    ramp = lr_ramp(np.float32(1e-3), np.float64(1.0), np.int64(4))
    np.testing.assert_allclose(ramp, [1e-3, 1e-2, 1e-1, 1.0], rtol=1e-6)
