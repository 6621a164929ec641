"""Lion: oracle a line-by-line transcription of Chen et al. (2023), Algorithm 2."""
import copy

import numpy as np
import pytest
import torch

from optbook.lion import lion, scale_by_lion
from optbook.torch.lion import Lion
from optimizer_problem import (assert_numpy_matches_torch, assert_resumes_bit_identically,
                              STEPS, assert_rel_close, make_problem, moved, train,
                              train_functional)

torch.set_num_threads(1)

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
    assert_numpy_matches_torch(make)


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
    assert_resumes_bit_identically(lambda ps: Lion(ps, lr=1e-3, weight_decay=0.1), params0, loss_fn)


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
