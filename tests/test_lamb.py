"""LAMB: oracle a line-by-line transcription of You et al. (2020), Algorithm 2."""
import copy
import math

import numpy as np
import pytest
import torch

from optbook.lamb import lamb, scale_by_trust_ratio
from optbook.torch.lamb import LAMB
from optimizer_problem import (assert_numpy_matches_torch, assert_resumes_bit_identically,
                              STEPS, assert_rel_close, make_problem, moved, train,
                              train_functional)

torch.set_num_threads(1)

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
    assert_numpy_matches_torch(make, shapes=[(4, 3), (3,), (2, 2, 2)], zero_leaf=1)


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
    assert_resumes_bit_identically(lambda ps: LAMB(ps, lr=1e-2, weight_decay=0.1), params0, loss_fn)


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
