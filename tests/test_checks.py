"""Tests for optbook.checks: ensure_finite's diagnosis, find_nonfinite, dead_unit_fraction,
update_to_weight_ratio.

Oracles: gradients of intermediate tensors taken directly with torch.autograd.grad
(which output's gradient is non-finite), hand-set weights whose dead units are known,
torch.optim.SGD's step (ratio = eta * |g| / |theta|), and float64 NumPy norms.
"""
import math

import numpy as np
import pytest
import torch
from torch import nn

import optbook
from optbook.checks import (NonFiniteReport, dead_unit_fraction, ensure_finite, find_nonfinite,
                            update_to_weight_ratio)

torch.set_num_threads(1)

ARITHMETIC = "a lower learning rate will not remove it"
TOO_LARGE = "lower the learning rate or clip gradients"


# --- ensure_finite ------------------------------------------------------------------------

def _steps(t, grads_per_step, params=None):
    state = t.init(None)
    for g in grads_per_step:
        _, state = t.update(g, state, params)
    return state


def test_ensure_finite_first_step_blames_arithmetic_not_the_rate():
    t = ensure_finite()
    with pytest.raises(FloatingPointError) as info:
        t.update([np.ones(2), np.array([np.nan])], t.init(None))
    text = str(info.value)
    assert "parameter array 1 (shape (1,))" in text
    assert "first step" in text and "learning rate is not the cause" in text
    assert "find_nonfinite" in text and TOO_LARGE not in text


def test_ensure_finite_after_ordinary_gradients_blames_arithmetic():
    t = ensure_finite()
    state = _steps(t, [[np.array([3.0, 4.0])], [np.array([0.6, 0.8])]])
    assert state["steps"] == 2 and state["norms"] == (5.0, 1.0)
    with pytest.raises(FloatingPointError) as info:
        t.update([np.array([np.inf, 0.0])], state, [np.ones(2)])
    text = str(info.value)
    assert ARITHMETIC in text and "parameters are finite" in text and TOO_LARGE not in text


def test_ensure_finite_after_exploding_gradients_blames_the_step():
    t = ensure_finite(growth=100.0)
    state = _steps(t, [[np.array([1.0])], [np.array([50.0])], [np.array([1e4])]])
    with pytest.raises(FloatingPointError) as info:
        t.update([np.array([np.nan])], state)
    text = str(info.value)
    # 1e4 against the median of the two norms before it, (1 + 50) / 2
    assert TOO_LARGE in text and f"{1e4 / 25.5:.3g} times the median of the 2 steps" in text
    assert ARITHMETIC not in text
    # 99-fold is below the threshold: still "arithmetic"
    state = _steps(t, [[np.array([1.0])], [np.array([1.0])], [np.array([99.0])]])
    with pytest.raises(FloatingPointError, match=ARITHMETIC):
        t.update([np.array([np.nan])], state)


def test_ensure_finite_compares_with_a_recent_window_not_the_first_step():
    # healthy growth: 1e-4 at first, 1.0 for 30 steps (a 1e4-fold rise), then a NaN
    t = ensure_finite(growth=100.0, window=20)
    state = _steps(t, [[np.array([1e-4])]] + [[np.array([1.0])]] * 30)
    assert len(state["norms"]) == 21 and 1e-4 not in state["norms"]
    with pytest.raises(FloatingPointError) as info:
        t.update([np.array([np.nan])], state)
    assert ARITHMETIC in str(info.value) and TOO_LARGE not in str(info.value)
    # a jump of 1e3 on the step before the NaN is blamed on the step, whatever came first
    state = _steps(t, [[np.array([1e-4])]] + [[np.array([1.0])]] * 30 + [[np.array([1e3])]])
    with pytest.raises(FloatingPointError, match=TOO_LARGE):
        t.update([np.array([np.nan])], state)
    # the window forgets: with window=2, only the two norms before the last count
    t2 = ensure_finite(growth=100.0, window=2)
    state = _steps(t2, [[np.array([1.0])]] + [[np.array([500.0])]] * 2 + [[np.array([600.0])]])
    assert state["norms"] == (500.0, 500.0, 600.0)
    with pytest.raises(FloatingPointError, match=ARITHMETIC):
        t2.update([np.array([np.nan])], state)


def test_ensure_finite_with_zero_gradients_before_does_not_divide_by_zero():
    t = ensure_finite()
    # a zero first gradient (below a zero-initialised layer), then ordinary ones
    state = _steps(t, [[np.zeros(2)], [np.array([0.3, 0.4])], [np.array([0.6, 0.8])]])
    with pytest.raises(FloatingPointError) as info:
        t.update([np.array([np.nan, 0.0])], state)
    assert ARITHMETIC in str(info.value) and "median of 0.5 over the 1 step before" in str(info.value)
    # every earlier norm 0: the history cannot tell, and the message says so
    state = _steps(t, [[np.zeros(2)]] * 3)
    with pytest.raises(FloatingPointError, match="cannot tell a step too large"):
        t.update([np.array([np.nan, 0.0])], state)
    # one step only: too short a history
    state = _steps(t, [[np.ones(2)]])
    with pytest.raises(FloatingPointError, match="too short a history"):
        t.update([np.array([np.nan, 0.0])], state)


def _mlp_with_head(scale, seed):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                          nn.Linear(64, 4))
    with torch.no_grad():
        model[-1].weight.mul_(scale)
    return model


def _train_until_nan(model, steps, bad_step, seed):
    """SGD + momentum 0.9 at a healthy rate 0.05 as an optbook chain with ensure_finite
    first, on a fixed random-teacher task; one inf in the data at ``bad_step``. Returns
    the step that raised, its message, and the first weight's gradient norm per step."""
    from optbook.torch import ChainOptimizer
    g = torch.Generator().manual_seed(seed)
    teacher = torch.randn(20, 4, generator=g)
    opt = ChainOptimizer(model.parameters(),
                         optbook.chain(ensure_finite(), optbook.momentum(0.05, 0.9)))
    norms = []
    for t in range(steps):
        x = torch.randn(64, 20, generator=g)
        y = (x @ teacher).argmax(1)
        if t == bad_step:
            x[5, 3] = float("inf")
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        if t < bad_step:
            norms.append(float(model[0].weight.grad.norm()))
        try:
            opt.step()
        except FloatingPointError as error:
            return t, str(error), norms
    return None, "", norms


@pytest.mark.parametrize("scale", [0.0, 1e-3])
def test_nan_from_the_data_after_healthy_growth_is_not_blamed_on_the_rate(scale):
    # a zero-initialised head makes the first gradient of the hidden layers exactly 0
    # (the first-step rule divided by it); a head scaled by 1e-3 makes the hidden layers'
    # gradient grow more than a thousandfold in healthy training (the first-step rule
    # blamed the rate). The NaN comes from an inf put into the data.
    step, message, norms = _train_until_nan(_mlp_with_head(scale, seed=6), 150, 120, seed=6)
    assert step == 120 and "non-finite gradient in parameter array 0" in message
    if scale == 0.0:
        assert norms[0] == 0.0 and max(norms) > 0
    else:
        assert max(norms) / norms[0] > 1e3          # the growth the old rule misread
    assert ARITHMETIC in message and TOO_LARGE not in message


def test_ensure_finite_with_non_finite_parameters_blames_an_earlier_step():
    t = ensure_finite()
    state = _steps(t, [[np.ones(2)]])
    with pytest.raises(FloatingPointError, match="parameters are already non-finite"):
        t.update([np.array([np.nan, 1.0])], state, [np.array([np.inf, 1.0])])


def test_ensure_finite_norm_survives_float32_overflow_of_squares():
    t = ensure_finite()
    big = torch.tensor([3e30, 4e30], dtype=torch.float32)   # squares overflow float32
    assert not math.isfinite(float((big * big).sum()))
    _, state = t.update([big], t.init(None))
    want = float(np.linalg.norm(big.numpy().astype(np.float64)))
    assert state["norms"][0] == pytest.approx(want, rel=1e-6)


def test_ensure_finite_in_a_chain_optimizer_keeps_per_tensor_history():
    from optbook.torch import ChainOptimizer
    p = nn.Parameter(torch.ones(3))
    opt = ChainOptimizer([p], optbook.chain(ensure_finite(), optbook.sgd(0.1)))
    for scale in (1.0, 1.0, 1.0):
        opt.zero_grad()
        (scale * p).sum().backward()
        opt.step()
    opt.zero_grad()
    (p * float("nan")).sum().backward()
    with pytest.raises(FloatingPointError, match=ARITHMETIC):
        opt.step()


@pytest.mark.parametrize("growth", [1.0, 0.5, True, "100"])
def test_ensure_finite_rejects_bad_growth(growth):
    with pytest.raises(ValueError, match="Invalid growth"):
        ensure_finite(growth=growth)


@pytest.mark.parametrize("window", [0, -3, 2.5, True, "20"])
def test_ensure_finite_rejects_bad_window(window):
    with pytest.raises(ValueError, match=f"Invalid window: {window!r}"):
        ensure_finite(window=window)


# --- find_nonfinite ---------------------------------------------------------------------------

class HandNorm(nn.Module):
    def forward(self, x):
        return torch.cat([x, x.pow(2).sum(dim=1, keepdim=True).sqrt()], dim=1)


class Log(nn.Module):
    def forward(self, x):
        return torch.log(x)


def _norm_model_and_batch():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 5), HandNorm(), nn.Linear(6, 3))
    model[0].bias.data.zero_()
    x = torch.randn(4, 5)
    x[2] = 0.0
    return model, x, torch.tensor([0, 1, 2, 0])


def test_find_nonfinite_names_the_backward_interval_as_autograd_sees_it():
    model, x, y = _norm_model_and_batch()
    report = find_nonfinite(model, lambda: nn.functional.cross_entropy(model(x), y))
    # oracle: the gradients of the two intermediate outputs, taken directly
    h0 = model[0](x)
    h1 = model[1](h0)
    loss = nn.functional.cross_entropy(model[2](h1), y)
    g0, g1 = torch.autograd.grad(loss, [h0, h1], retain_graph=True)
    assert not torch.isfinite(g0).all() and torch.isfinite(g1).all()
    assert isinstance(report, NonFiniteReport)
    assert (report.stage, report.module, report.kind, report.after) == ("backward", "0",
                                                                         "Linear", "1")
    grads = torch.autograd.grad(loss, list(model.parameters()))
    assert report.parameters == tuple(n for (n, _), g in zip(model.named_parameters(), grads)
                                      if not torch.isfinite(g).all())
    assert report.parameters == ("0.weight", "0.bias")
    assert math.isfinite(report.loss) and "between these two outputs" in report.message
    assert all(p.grad is None for p in model.parameters())   # .grad untouched


def test_find_nonfinite_forward_cases():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), Log(), nn.Linear(3, 2))
    x = torch.randn(6, 3)
    report = find_nonfinite(model, lambda: model(x).sum())
    assert (report.stage, report.module, report.kind) == ("forward", "1", "Log")
    plain = nn.Sequential(nn.Linear(3, 2))
    bad_input = torch.ones(2, 3)
    bad_input[0, 0] = float("inf")
    report = find_nonfinite(plain, lambda: plain(bad_input).sum())
    assert report.stage == "forward" and "the data" in report.message
    report = find_nonfinite(plain, lambda: plain(torch.ones(2, 3)).sum() * float("nan"))
    assert report.stage == "forward" and report.module is None and "loss function" in report.message


def test_find_nonfinite_all_finite_and_errors():
    plain = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    report = find_nonfinite(plain, lambda: plain(torch.ones(4, 3)).sum())
    assert report.stage is None and report.parameters == ()
    with pytest.raises(TypeError, match="Invalid model"):
        find_nonfinite(lambda x: x, lambda: torch.tensor(0.0))
    with pytest.raises(ValueError, match="Invalid loss_fn"):
        find_nonfinite(plain, lambda: plain(torch.ones(4, 3)))
    # hooks are removed, also after an error
    assert not any(m._forward_hooks for m in plain.modules())


# --- dead_unit_fraction ------------------------------------------------------------------------

def test_dead_unit_fraction_hand_set_weights():
    lin = nn.Linear(2, 4)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]]))
        lin.bias.copy_(torch.tensor([0.0, 0.0, -1.0, 1.0]))   # unit 2 dead, unit 3 alive
    model = nn.Sequential(lin, nn.ReLU(), nn.Dropout(0.5), nn.Linear(4, 2), nn.ReLU())
    x = torch.tensor([[1.0, -1.0], [-1.0, 1.0], [2.0, 2.0]])   # units 0, 1 fire somewhere
    model.train()
    out = dead_unit_fraction(model, x)
    assert list(out) == ["1", "4"] and out["1"] == 0.25
    relu2 = model[3](torch.relu(lin(x)))        # eval mode: no dropout
    assert out["4"] == float((relu2 <= 0).all(dim=0).float().mean())
    assert model.training                        # mode restored
    assert dead_unit_fraction(model, -x.abs() - 10)["1"] == 0.75   # only unit 3 (bias 1) fires


def test_dead_unit_fraction_conv_channels_and_errors():
    conv = nn.Conv2d(1, 2, 1)
    with torch.no_grad():
        conv.weight.fill_(0.0)
        conv.bias.copy_(torch.tensor([-1.0, 1.0]))
    assert dead_unit_fraction(nn.Sequential(conv, nn.ReLU()), torch.randn(3, 1, 4, 4)) == {"1": 0.5}
    with pytest.raises(ValueError, match="no module of kinds"):
        dead_unit_fraction(nn.Sequential(nn.Linear(2, 2)), torch.ones(1, 2))
    with pytest.raises(TypeError, match="Invalid model"):
        dead_unit_fraction(None, torch.ones(1, 2))
    lrelu = dead_unit_fraction(nn.Sequential(nn.Linear(2, 3), nn.LeakyReLU()), torch.ones(2, 2),
                               kinds=[nn.LeakyReLU])
    assert list(lrelu) == ["1"]


# --- update_to_weight_ratio ---------------------------------------------------------------------

def test_update_to_weight_ratio_matches_an_sgd_step():
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(8, 4)).pow(2).sum().backward()
    gnorm = torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters()))
    wnorm = torch.sqrt(sum((b ** 2).sum() for b in before))
    opt.step()
    after = [p.detach().clone() for p in model.parameters()]
    assert update_to_weight_ratio(before, after) == pytest.approx(float(0.1 * gnorm / wnorm),
                                                                  rel=1e-5)
    assert update_to_weight_ratio(before, before) == 0.0


def test_update_to_weight_ratio_errors():
    a = [torch.ones(2), torch.ones(3)]
    with pytest.raises(ValueError, match="1 tensors for 2 in before"):
        update_to_weight_ratio(a, a[:1])
    with pytest.raises(ValueError, match=r"tensor 1 has shape \(2,\)"):
        update_to_weight_ratio(a, [torch.ones(2), torch.ones(2)])
    with pytest.raises(ValueError, match="every parameter is 0"):
        update_to_weight_ratio([torch.zeros(2)], [torch.ones(2)])


def test_data_nan_message_with_a_zero_head_reports_infinite_growth():
    """A zero-initialised head makes the first gradient norm of the hidden layers 0;
    the page's helper then reports the growth as infinite instead of dividing by 0,
    and ensure_finite still blames the data, not the rate."""
    from optbook.experiments import debugging as G

    step, growth, message = G.data_nan_message(seed=0, head_scale=0.0, bad_step=20)
    assert step == 20 and growth == math.inf
    assert "a lower learning rate will not remove it" in message
    assert "lower the learning rate or clip" not in message
