"""AdaFactor: oracle torch.optim.Adafactor, plus memory and closed-form checks."""
import math

import numpy as np
import pytest
import torch

from optbook import scale_by_adam
from optbook.base import chain, scale_by_learning_rate
from optbook.adafactor import (adafactor, clip_by_block_rms, scale_by_factored_rms,
                               scale_by_param_block_rms, scale_by_relative_step)
from optbook.torch.adafactor import Adafactor
from optimizer_problem import (assert_numpy_matches_torch, assert_resumes_bit_identically,
                              DT, STEPS, assert_rel_close, make_problem, moved, train,
                              train_functional)

torch.set_num_threads(1)

SETTINGS = [
    dict(),
    dict(lr=0.3),                                  # rho_t switches from lr to 1/sqrt(t) at t = 12
    dict(lr=0.05, weight_decay=0.5, d=2.0),
    dict(beta2_decay=-0.5, eps=(1e-6, 1e-2)),
    dict(lr=0.02, maximize=True, beta2_decay=-0.3),
    dict(lr=0.05, d=math.inf),                     # no update clipping: torch accepts d = inf
    dict(lr=0.05, d=math.inf, beta2_decay=-0.5),
]

# options torch.optim.Adafactor does not have (a constant beta2): checked against closed
# forms below, and by tests/test_fast_path.py against the functional chain
EXTRA_SETTINGS = [
    dict(beta2=0.999),
    dict(lr=0.05, beta2=0.999, d=math.inf),
    dict(lr=0.05, beta2=0.9, weight_decay=0.1, d=2.0),
]


@pytest.mark.parametrize("kwargs", SETTINGS, ids=lambda k: str(k) or "defaults")
def test_matches_torch_adafactor(kwargs):
    params0, loss_fn = make_problem()
    ours, _ = train(lambda ps: Adafactor(ps, **kwargs), params0, loss_fn, STEPS)
    theirs, _ = train(lambda ps: torch.optim.Adafactor(ps, **kwargs), params0, loss_fn, STEPS)
    assert moved(theirs, params0) > 1e-3  # the comparison has something to compare
    assert_rel_close(ours, theirs, 1e-10)


def test_matches_torch_adafactor_when_eps2_floor_is_active():
    # weights with RMS ~ 1e-3 < eps2 = 1e-2: the step scale is eps2, not RMS(theta)
    params0, loss_fn = make_problem(seed=1, scale=1e-3)
    kwargs = dict(lr=0.05, eps=(None, 1e-2))
    ours, _ = train(lambda ps: Adafactor(ps, **kwargs), params0, loss_fn, STEPS)
    theirs, _ = train(lambda ps: torch.optim.Adafactor(ps, **kwargs), params0, loss_fn, STEPS)
    assert moved(theirs, params0) > 1e-2
    assert_rel_close(ours, theirs, 1e-10)


def test_param_groups_and_float32_match_torch():
    params0, loss_fn = make_problem(seed=2)
    params0 = [p.float() for p in params0]

    def loss32(ps, t):
        return loss_fn([p.double() for p in ps], t)

    def groups(ps):
        return [{"params": ps[:2], "lr": 0.05}, {"params": ps[2:], "weight_decay": 0.1}]

    ours, _ = train(lambda ps: Adafactor(groups(ps)), params0, loss32, 10)
    theirs, _ = train(lambda ps: torch.optim.Adafactor(groups(ps)), params0, loss32, 10)
    assert_rel_close(ours, theirs, 1e-5)  # eps1 = float32 machine epsilon here


def test_functional_form_equals_class_form():
    params0, loss_fn = make_problem(seed=3)
    kwargs = dict(lr=0.1, weight_decay=0.2, d=1.5)
    by_class, _ = train(lambda ps: Adafactor(ps, **kwargs), params0, loss_fn, STEPS)
    functional = adafactor(learning_rate=0.1, weight_decay=0.2, d=1.5)
    by_function = train_functional(functional, params0, loss_fn, STEPS)
    assert_rel_close(by_function, by_class, 1e-14)


TRANSFORMS = {
    "factored_rms": lambda: scale_by_factored_rms(),
    "factored_rms_eps": lambda: scale_by_factored_rms(-0.5, eps1=1e-3),
    "block_rms_clip": lambda: clip_by_block_rms(1.2),
    "param_block_rms": lambda: scale_by_param_block_rms(0.3),
    "relative_step": lambda: scale_by_relative_step(0.4),
    "adafactor": lambda: adafactor(0.1, weight_decay=0.1),
}


@pytest.mark.parametrize("name", TRANSFORMS)
def test_numpy_and_torch_agree(name):
    assert_numpy_matches_torch(TRANSFORMS[name], shapes=[(4, 3), (3,), (2, 3, 4)])


def test_unfactored_first_step_is_sign_of_gradient():
    # t = 1: beta2_1 = 1 - 1^tau = 0, so V_1 = G^2 and U_1 = G / |G| = sign(G)
    g = np.array([3.0, -0.5, 2e-3])
    updates, _ = scale_by_factored_rms().update(g, scale_by_factored_rms().init(g))
    np.testing.assert_array_equal(updates, np.sign(g))


def test_factored_estimate_is_exact_for_rank_one_squares():
    # if G^2 = a b^T, the factored V = R C / mean(R) rebuilds G^2 exactly, so U = sign(G)
    a, b = np.array([1.0, 4.0, 0.25]), np.array([2.0, 0.5, 1.0, 9.0])
    signs = np.array([[1, -1, 1, 1], [-1, -1, 1, -1], [1, 1, -1, 1]])
    g = signs * np.sqrt(np.outer(a, b))
    t = scale_by_factored_rms()
    updates, _ = t.update(g, t.init(g))
    np.testing.assert_allclose(updates, signs, rtol=1e-14)


def test_relative_step_times_learning_rate_is_min_of_lr_and_inverse_sqrt_t():
    lr = 0.3
    t = scale_by_relative_step(lr)
    state = t.init(np.zeros(1))
    for step in range(1, 31):
        factor, state = t.update(np.ones(1), state)
        assert math.isclose(lr * factor[0], min(lr, 1 / math.sqrt(step)), rel_tol=1e-15)


def test_update_clipping_bounds_rms_by_d():
    u = np.array([[10.0, -3.0], [0.1, 7.0]])
    clipped, _ = clip_by_block_rms(2.0).update(u, {})
    assert math.isclose(float(np.sqrt(np.mean(clipped ** 2))), 2.0, rel_tol=1e-14)
    small = np.array([0.5, -1.0])
    unchanged, _ = clip_by_block_rms(2.0).update(small, {})
    np.testing.assert_array_equal(unchanged, small)


def count_state_elements(state):
    if hasattr(state, "shape"):
        return math.prod(state.shape)
    if isinstance(state, dict):
        return sum(count_state_elements(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return sum(count_state_elements(v) for v in state)
    return 0  # step counters


def test_state_is_n_plus_m_for_an_n_by_m_matrix():
    n, m = 64, 32
    w = np.zeros((n, m))
    assert count_state_elements(adafactor().init(w)) == n + m
    assert count_state_elements(scale_by_adam().init(w)) == 2 * n * m
    # the torch class stores the same after a step
    p = torch.zeros(n, m, dtype=DT, requires_grad=True)
    opt = Adafactor([p])
    p.grad = torch.ones(n, m, dtype=DT)
    opt.step()
    assert count_state_elements(opt.state[p]) == n + m


def test_state_dict_round_trip_resumes_bit_identically():
    params0, loss_fn = make_problem(seed=4)
    assert_resumes_bit_identically(lambda ps: Adafactor(ps, lr=0.1, weight_decay=0.1), params0, loss_fn)


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (dict(beta2_decay=0.5), "Invalid beta2_decay value: 0.5"),
    (dict(eps=(-1.0, 1e-3)), "Invalid epsilon1 value: -1.0"),
    (dict(eps=(None, -1e-3)), "Invalid epsilon2 value: -0.001"),
    (dict(eps=1e-3), "Invalid eps"),
    (dict(d=0.5), "Invalid clipping threshold d: 0.5"),
    (dict(weight_decay=-0.01), "Invalid weight_decay value: -0.01"),
    (dict(lr=float("nan")), "Invalid learning rate: nan"),
    (dict(beta2=1.0), "Invalid beta2 value: 1.0"),
    (dict(beta2=-0.5), "Invalid beta2 value: -0.5"),
    (dict(d=-math.inf), "Invalid clipping threshold d: -inf"),
    (dict(d=float("nan")), "Invalid clipping threshold d: nan"),
])
def test_invalid_arguments_raise_value_error(kwargs, message):
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match=message):
        Adafactor([p], **kwargs)
    functional = {("learning_rate" if k == "lr" else k): v for k, v in kwargs.items()}
    with pytest.raises(ValueError, match=message):
        adafactor(**functional)



# --- the ablation options: constant beta2 and d = infinity ---------------------------------

@pytest.mark.parametrize("shape", [(1, 7), (5, 1), (7,)])
def test_constant_beta2_on_one_row_or_column_is_adams_second_moment(shape):
    # one row (or one column) makes the factored V_t = R C / mean(R) equal the unfactored
    # average, and the bias-corrected constant decay makes that Adam's v_hat_t: so
    # U_t = G_t / sqrt(V_t) is torch.optim.Adam's step with beta1 = 0, eps = 0, lr = 1
    gen = torch.Generator().manual_seed(5)
    grads = [torch.randn(shape, generator=gen, dtype=DT) * (1 + 3 * (k % 4)) for k in range(40)]
    p = torch.zeros(shape, dtype=DT, requires_grad=True)
    oracle = torch.optim.Adam([p], lr=1.0, betas=(0.0, 0.999), eps=0.0)
    transform = scale_by_factored_rms(beta2=0.999, eps1=0.0)
    state = transform.init(grads[0].numpy())
    for g in grads:
        before = p.detach().clone()
        p.grad = g.clone()
        oracle.step()
        ours, state = transform.update(g.numpy(), state)
        np.testing.assert_allclose(ours, (before - p.detach()).numpy(), rtol=1e-12, atol=0)


def test_constant_beta2_decay_makes_the_normalised_moving_average():
    # beta2_t = beta2 (1 - beta2^(t-1)) / (1 - beta2^t) turns the recursion into
    # V_t = sum_s beta2^(t-s) (1 - beta2) G_s^2 / (1 - beta2^t), computed here directly
    beta2, gs = 0.9, np.random.default_rng(6).normal(size=(25, 3))
    transform = scale_by_factored_rms(beta2=beta2, eps1=0.0)
    state = transform.init(gs[0])
    for t in range(1, len(gs) + 1):
        _, state = transform.update(gs[t - 1], state)
        weights = beta2 ** (t - np.arange(1, t + 1)) * (1 - beta2) / (1 - beta2 ** t)
        np.testing.assert_allclose(state["moments"]["variance"], weights @ gs[:t] ** 2,
                                   rtol=1e-13)


def test_d_infinity_is_the_chain_without_clipping():
    params0, loss_fn = make_problem(seed=5)
    no_clip = chain(scale_by_factored_rms(), scale_by_param_block_rms(1e-3),
                    scale_by_relative_step(0.1), scale_by_learning_rate(0.1))
    by_d = train_functional(adafactor(0.1, d=math.inf), params0, loss_fn, STEPS)
    by_chain = train_functional(no_clip, params0, loss_fn, STEPS)
    assert_rel_close(by_d, by_chain, 1e-14)
    # and the default d = 1 does clip on this problem: the two runs differ
    clipped = train_functional(adafactor(0.1), params0, loss_fn, STEPS)
    assert max(float((a - b).abs().max()) for a, b in zip(clipped, by_chain)) > 1e-6


@pytest.mark.parametrize("kwargs", EXTRA_SETTINGS, ids=str)
def test_class_with_constant_beta2_equals_functional_chain(kwargs):
    params0, loss_fn = make_problem(seed=6)
    by_class, _ = train(lambda ps: Adafactor(ps, **kwargs), params0, loss_fn, STEPS)
    functional = adafactor(learning_rate=kwargs.get("lr", 1e-2), d=kwargs.get("d", 1.0),
                           weight_decay=kwargs.get("weight_decay", 0.0), beta2=kwargs["beta2"])
    by_function = train_functional(functional, params0, loss_fn, STEPS)
    assert moved(by_class, params0) > 1e-3
    assert_rel_close(by_function, by_class, 1e-12)  # the class may take the in-place path

