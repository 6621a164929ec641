"""LAMB: oracle a line-by-line transcription of You et al. (2020), Algorithm 2."""
import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from optbook import apply_updates
from optbook.lamb import lamb, scale_by_trust_ratio
from optbook.torch.lamb import LAMB

torch.set_num_threads(1)
DT = torch.float64
STEPS = 25
SHAPES = [(5, 4), (5,), (3, 5), (3,), (2, 3, 4)]


def make_problem(seed=0, scale=0.5, zero_bias=False):
    """A tiny classifier whose parameters have 1, 2 and 3 axes; batch t is fixed by t."""
    gen = torch.Generator().manual_seed(seed)
    params = [scale * torch.randn(s, generator=gen, dtype=DT) for s in SHAPES]
    if zero_bias:  # a zero tensor: ||theta|| = 0, trust ratio 1 on its first step
        params[1] = torch.zeros_like(params[1])
    xs = torch.randn(STEPS, 8, 4, generator=gen, dtype=DT)
    ys = torch.randint(0, 3, (STEPS, 8), generator=gen)

    def loss_fn(ps, t):
        w1, b1, w2, b2, t3 = ps
        x = xs[t % STEPS]
        logits = torch.tanh(x @ w1.T + b1) @ w2.T + b2 + torch.einsum("bi,kji->bj", x, t3)
        return F.cross_entropy(logits, ys[t % STEPS])

    return params, loss_fn


def train(make_optimizer, params0, loss_fn, steps, start=0, state_dict=None):
    ps = [p.clone().requires_grad_() for p in params0]
    opt = make_optimizer(ps)
    if state_dict is not None:
        opt.load_state_dict(state_dict)
    for t in range(start, start + steps):
        opt.zero_grad()
        loss_fn(ps, t).backward()
        opt.step()
    return [p.detach().clone() for p in ps], opt


def train_functional(transform, params0, loss_fn, steps):
    ps = [p.clone() for p in params0]
    state = transform.init(ps)
    for t in range(steps):
        leaves = [p.clone().requires_grad_() for p in ps]
        grads = list(torch.autograd.grad(loss_fn(leaves, t), leaves))
        updates, state = transform.update(grads, state, ps)
        ps = apply_updates(ps, updates)
    return ps


def assert_rel_close(actual, expected, rtol):
    for i, (a, e) in enumerate(zip(actual, expected)):
        err = float((a - e).norm()) / max(float(e.norm()), 1e-300)
        assert err <= rtol, f"parameter {i} {tuple(e.shape)}: relative error {err:.2e}"


def moved(final, start):
    return min(float((f - s).norm() / max(float(s.norm()), 1.0)) for f, s in zip(final, start))


# --- the oracle: You et al. 2020, Algorithm 2 (phi = identity), with plain tensors ------

def reference_lamb(params0, loss_fn, steps, lr=1e-3, betas=(0.9, 0.999), eps=1e-6,
                   weight_decay=0.01, maximize=False):
    beta1, beta2 = betas
    x = [p.clone() for p in params0]
    m = [torch.zeros_like(p) for p in params0]
    v = [torch.zeros_like(p) for p in params0]
    for t in range(1, steps + 1):
        leaves = [p.clone().requires_grad_() for p in x]
        loss = loss_fn(leaves, t - 1)
        g = torch.autograd.grad(-loss if maximize else loss, leaves)
        for i in range(len(x)):
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] ** 2
            m_hat = m[i] / (1 - beta1 ** t)
            v_hat = v[i] / (1 - beta2 ** t)
            r = m_hat / (torch.sqrt(v_hat) + eps)
            u = r + weight_decay * x[i]
            x_norm, u_norm = torch.linalg.norm(x[i]), torch.linalg.norm(u)
            trust = x_norm / u_norm if x_norm > 0 and u_norm > 0 else 1.0
            x[i] = x[i] - lr * trust * u
    return x


SETTINGS = [
    dict(),
    dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.0),
    dict(lr=5e-3, betas=(0.9, 0.9), eps=1e-3, weight_decay=0.5),
    dict(lr=2e-3, maximize=True),
]


@pytest.mark.parametrize("zero_bias", [False, True], ids=["random", "zero-bias"])
@pytest.mark.parametrize("kwargs", SETTINGS, ids=lambda k: str(k) or "defaults")
def test_matches_published_update_rule(kwargs, zero_bias):
    params0, loss_fn = make_problem(zero_bias=zero_bias)
    ours, _ = train(lambda ps: LAMB(ps, **kwargs), params0, loss_fn, STEPS)
    expected = reference_lamb(params0, loss_fn, STEPS, **kwargs)
    assert moved(expected, params0) > 1e-3
    assert_rel_close(ours, expected, 1e-10)


def test_functional_form_equals_class_form():
    params0, loss_fn = make_problem(seed=2)
    by_class, _ = train(lambda ps: LAMB(ps, lr=1e-2, weight_decay=0.1), params0, loss_fn, STEPS)
    by_function = train_functional(lamb(1e-2, weight_decay=0.1), params0, loss_fn, STEPS)
    assert_rel_close(by_function, by_class, 1e-14)


@pytest.mark.parametrize("make", [lambda: scale_by_trust_ratio(),
                                  lambda: lamb(1e-2, weight_decay=0.5)])
def test_numpy_and_torch_agree(make):
    rng = np.random.default_rng(0)
    shapes = [(4, 3), (3,), (2, 2, 2)]
    params_np = [rng.normal(size=s) for s in shapes]
    params_np[1][:] = 0.0  # exercise the ratio-1 branch
    params_pt = [torch.tensor(p) for p in params_np]
    t_np, t_pt = make(), make()
    s_np, s_pt = t_np.init(params_np), t_pt.init(params_pt)
    for _ in range(6):
        grads_np = [rng.normal(size=s) for s in shapes]
        u_np, s_np = t_np.update(grads_np, s_np, params_np)
        u_pt, s_pt = t_pt.update([torch.tensor(g) for g in grads_np], s_pt, params_pt)
        for a, b in zip(u_np, u_pt):
            assert isinstance(a, np.ndarray)
            np.testing.assert_allclose(a, b.numpy(), rtol=1e-12, atol=0)


def test_each_tensor_step_has_norm_lr_times_its_norm():
    lr = 1e-2
    params0, loss_fn = make_problem(seed=3)
    before, opt = train(lambda ps: LAMB(ps, lr=lr), params0, loss_fn, 5)
    after, _ = train(lambda ps: LAMB(ps, lr=lr), before, loss_fn, 1, start=5,
                     state_dict=copy.deepcopy(opt.state_dict()))
    for a, b in zip(after, before):
        assert math.isclose(float((a - b).norm()), lr * float(b.norm()), rel_tol=1e-12)


def test_zero_tensor_takes_the_plain_adam_step():
    # theta = 0: trust ratio 1; first step u = g / (|g| + eps), so theta_1 = -lr g / (|g| + eps)
    g = np.array([0.5, -2.0, 1e-7])
    lr, eps = 0.1, 1e-6
    opt = lamb(lr, eps=eps, weight_decay=0.3)
    updates, _ = opt.update(g, opt.init(np.zeros(3)), np.zeros(3))
    np.testing.assert_allclose(updates, -lr * g / (np.abs(g) + eps), rtol=1e-14)


def test_zero_update_gives_zero_step_not_nan():
    theta = np.array([1.0, -2.0])
    opt = lamb(0.1, weight_decay=0.0)
    updates, _ = opt.update(np.zeros(2), opt.init(theta), theta)
    np.testing.assert_array_equal(updates, np.zeros(2))


def test_trust_ratio_needs_params():
    with pytest.raises(ValueError, match="needs params"):
        scale_by_trust_ratio().update(np.ones(2), {})


def test_state_dict_round_trip_resumes_bit_identically():
    params0, loss_fn = make_problem(seed=4)

    def make(ps):
        return LAMB(ps, lr=1e-2, weight_decay=0.1)

    mid, opt = train(make, params0, loss_fn, 10)
    saved = copy.deepcopy(opt.state_dict())
    straight, _ = train(make, params0, loss_fn, 20)
    resumed, _ = train(make, mid, loss_fn, 10, start=10, state_dict=saved)
    for a, b in zip(resumed, straight):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    (dict(betas=(0.9, 1.2)), "Invalid beta parameter at index 1: 1.2"),
    (dict(betas=0.9), "Invalid betas"),
    (dict(eps=-1e-6), "Invalid epsilon value: -1e-06"),
    (dict(weight_decay=-1e-2), "Invalid weight_decay value: -0.01"),
])
def test_invalid_arguments_raise_value_error(kwargs, message):
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match=message):
        LAMB([p], **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(learning_rate=-0.1), "Invalid learning rate: -0.1"),
    (dict(b1=-0.5), "Invalid beta parameter at index 0: -0.5"),
    (dict(b2=1.0), "Invalid beta parameter at index 1: 1.0"),
    (dict(eps=-1.0), "Invalid epsilon value: -1.0"),
    (dict(weight_decay=-1.0), "Invalid weight_decay value: -1.0"),
])
def test_functional_invalid_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        lamb(**kwargs)
