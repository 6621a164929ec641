"""Lion: oracle a line-by-line transcription of Chen et al. (2023), Algorithm 2."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from optbook import apply_updates
from optbook.lion import lion, scale_by_lion
from optbook.torch.lion import Lion

torch.set_num_threads(1)
DT = torch.float64
STEPS = 25
SHAPES = [(5, 4), (5,), (3, 5), (3,), (2, 3, 4)]


def make_problem(seed=0, scale=0.5):
    """A tiny classifier whose parameters have 1, 2 and 3 axes; batch t is fixed by t."""
    gen = torch.Generator().manual_seed(seed)
    params = [scale * torch.randn(s, generator=gen, dtype=DT) for s in SHAPES]
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
    return min(float((f - s).norm() / s.norm()) for f, s in zip(final, start))


# --- the oracle: Chen et al. 2023, Algorithm 2, written out with plain tensors --------

def reference_lion(params0, loss_fn, steps, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0,
                   maximize=False):
    beta1, beta2 = betas
    lrs = lr if isinstance(lr, list) else [lr] * len(params0)  # one per tensor (groups)
    theta = [p.clone() for p in params0]
    m = [torch.zeros_like(p) for p in params0]
    for t in range(steps):
        leaves = [p.clone().requires_grad_() for p in theta]
        loss = loss_fn(leaves, t)
        g = torch.autograd.grad(-loss if maximize else loss, leaves)
        for i in range(len(theta)):
            c = beta1 * m[i] + (1 - beta1) * g[i]                            # interpolation
            theta[i] = theta[i] - lrs[i] * (torch.sign(c) + weight_decay * theta[i])
            m[i] = beta2 * m[i] + (1 - beta2) * g[i]                        # EMA of g
    return theta


SETTINGS = [
    dict(),
    dict(lr=1e-3, weight_decay=0.1),
    dict(lr=3e-3, betas=(0.95, 0.98), weight_decay=1.0),
    dict(lr=2e-3, betas=(0.5, 0.9), maximize=True),
]


@pytest.mark.parametrize("kwargs", SETTINGS, ids=lambda k: str(k) or "defaults")
def test_matches_published_update_rule(kwargs):
    params0, loss_fn = make_problem()
    ours, _ = train(lambda ps: Lion(ps, **kwargs), params0, loss_fn, STEPS)
    expected = reference_lion(params0, loss_fn, STEPS, **kwargs)
    assert moved(expected, params0) > 1e-3
    assert_rel_close(ours, expected, 1e-10)


def test_param_groups_use_their_own_learning_rates():
    params0, loss_fn = make_problem(seed=1)
    ours, _ = train(lambda ps: Lion([{"params": ps[:2]}, {"params": ps[2:], "lr": 1e-3}],
                                    lr=3e-3, weight_decay=0.1),
                    params0, loss_fn, STEPS)
    expected = reference_lion(params0, loss_fn, STEPS, lr=[3e-3] * 2 + [1e-3] * 3,
                              weight_decay=0.1)
    assert_rel_close(ours, expected, 1e-10)


def test_functional_form_equals_class_form():
    params0, loss_fn = make_problem(seed=2)
    by_class, _ = train(lambda ps: Lion(ps, lr=1e-3, weight_decay=0.3), params0, loss_fn, STEPS)
    by_function = train_functional(lion(1e-3, weight_decay=0.3), params0, loss_fn, STEPS)
    assert_rel_close(by_function, by_class, 1e-14)


@pytest.mark.parametrize("make", [lambda: scale_by_lion(), lambda: scale_by_lion(0.5, 0.7),
                                  lambda: lion(1e-2, weight_decay=0.5)])
def test_numpy_and_torch_agree(make):
    rng = np.random.default_rng(0)
    shapes = [(4, 3), (3,)]
    params_np = [rng.normal(size=s) for s in shapes]
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


def test_every_coordinate_moves_by_exactly_lr_without_weight_decay():
    lr = 1e-3
    params0, loss_fn = make_problem(seed=3)
    before, opt = train(lambda ps: Lion(ps, lr=lr), params0, loss_fn, 5)
    after, _ = train(lambda ps: Lion(ps, lr=lr), before, loss_fn, 1, start=5,
                     state_dict=copy.deepcopy(opt.state_dict()))
    for a, b in zip(after, before):
        step = (a - b).abs()
        torch.testing.assert_close(step, torch.full_like(step, lr), rtol=1e-9, atol=0)


def test_stored_momentum_uses_beta2_and_direction_uses_beta1():
    # one step from m = 0: direction sign((1 - b1) g) = sign(g); stored m = (1 - b2) g
    g = np.array([0.3, -2.0, 0.0])
    t = scale_by_lion(0.9, 0.99)
    out, state = t.update(g, t.init(g))
    np.testing.assert_array_equal(out, [1.0, -1.0, 0.0])
    np.testing.assert_allclose(state["mu"], 0.01 * g, rtol=1e-15)
    # second step: direction sign(0.9 m + 0.1 g') can disagree with sign(g')
    g2 = np.array([-0.01, 0.05, 1.0])
    out2, _ = t.update(g2, state)
    # 0.9*0.003 + 0.1*(-0.01) > 0 and 0.9*(-0.02) + 0.1*0.05 < 0: both against sign(g2)
    np.testing.assert_array_equal(out2, [1.0, -1.0, 1.0])


def test_state_dict_round_trip_resumes_bit_identically():
    params0, loss_fn = make_problem(seed=4)

    def make(ps):
        return Lion(ps, lr=1e-3, weight_decay=0.1)

    mid, opt = train(make, params0, loss_fn, 10)
    saved = copy.deepcopy(opt.state_dict())
    straight, _ = train(make, params0, loss_fn, 20)
    resumed, _ = train(make, mid, loss_fn, 10, start=10, state_dict=saved)
    for a, b in zip(resumed, straight):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (dict(betas=(1.0, 0.99)), "Invalid beta parameter at index 0: 1.0"),
    (dict(betas=(0.9, -0.5)), "Invalid beta parameter at index 1: -0.5"),
    (dict(betas=(0.9,)), "Invalid betas"),
    (dict(weight_decay=-1e-2), "Invalid weight_decay value: -0.01"),
])
def test_invalid_arguments_raise_value_error(kwargs, message):
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match=message):
        Lion([p], **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(learning_rate=-0.1), "Invalid learning rate: -0.1"),
    (dict(b1=1.5), "Invalid beta parameter at index 0: 1.5"),
    (dict(b2=-0.1), "Invalid beta parameter at index 1: -0.1"),
    (dict(weight_decay=-1.0), "Invalid weight_decay value: -1.0"),
])
def test_functional_invalid_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        lion(**kwargs)
