"""The functional core against closed forms (constant gradients) and hand transcriptions
of the published update rules; error paths of chain, trees, masks and checks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import optbook
from optbook.adam import scale_by_adam
from optbook.adaptive import scale_by_adagrad, scale_by_rms
from optbook.base import (apply_updates, chain, check_number, identity, scale,
                          scale_by_learning_rate, tree_leaves, tree_map)
from optbook.checks import ensure_finite
from optbook.momentum import trace
from optbook.weight_decay import add_decayed_weights

G = np.array([0.5, -2.0, 3e-3])  # a constant gradient with mixed signs and scales


def run(transform, grads, params=None):
    """Feed ``grads`` (a list, one per step) through ``transform``; return every output."""
    params = G * 0 + 1.0 if params is None else params
    state = transform.init(params)
    outs = []
    for g in grads:
        out, state = transform.update(g, state, params)
        outs.append(out)
    return outs, state


# --- momentum --------------------------------------------------------------------

@pytest.mark.parametrize("beta", [0.5, 0.9, 0.99])
def test_trace_of_constant_gradient_is_a_geometric_sum(beta):
    outs, _ = run(trace(beta), [G] * 50)
    for t, v in enumerate(outs, start=1):
        np.testing.assert_allclose(v, (1 - beta ** t) / (1 - beta) * G, rtol=1e-13)


def test_trace_effective_step_tends_to_one_over_one_minus_beta():
    beta = 0.9
    outs, _ = run(trace(beta), [G] * 400)
    np.testing.assert_allclose(outs[-1] / G, 1 / (1 - beta), rtol=1e-12)


def test_trace_with_dampening_follows_torch_sgd_rule():
    # v_1 = g_1, then v_t = beta v + (1 - tau) g_t  (torch.optim.SGD)
    beta, tau = 0.9, 0.3
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=3) for _ in range(10)]
    outs, _ = run(trace(beta, dampening=tau), grads)
    v = grads[0]
    np.testing.assert_allclose(outs[0], v)
    for g, out in zip(grads[1:], outs[1:]):
        v = beta * v + (1 - tau) * g
        np.testing.assert_allclose(out, v, rtol=1e-14)


def test_nesterov_output_is_gradient_plus_beta_velocity():
    beta = 0.9
    rng = np.random.default_rng(1)
    grads = [rng.normal(size=3) for _ in range(10)]
    outs, _ = run(trace(beta, nesterov=True), grads)
    v = np.zeros(3)
    for g, out in zip(grads, outs):
        v = beta * v + g
        np.testing.assert_allclose(out, g + beta * v, rtol=1e-14)


def test_nesterov_requires_momentum_and_zero_dampening():
    for kwargs in ({"decay": 0.0}, {"decay": 0.9, "dampening": 0.1}):
        with pytest.raises(ValueError, match="Nesterov momentum requires a momentum and zero dampening"):
            trace(nesterov=True, **kwargs)


def test_trace_does_not_alias_the_gradient():
    g = np.array([1.0, 2.0])
    out, state = trace(0.9).update(g, trace(0.9).init(g), g)
    g[0] = 100.0
    assert state["velocity"][0] == 1.0


# --- AdaGrad and RMSprop -----------------------------------------------------------

def test_adagrad_on_constant_gradient():
    eps = 1e-10
    outs, state = run(scale_by_adagrad(eps=eps), [G] * 30)
    for t, u in enumerate(outs, start=1):
        np.testing.assert_allclose(u, G / (np.sqrt(t) * np.abs(G) + eps), rtol=1e-13)
    np.testing.assert_allclose(state["sum_of_squares"], 30 * G ** 2, rtol=1e-13)


def test_adagrad_initial_accumulator_and_eps_inside_sqrt():
    g0, eps = 0.25, 1e-2  # a large eps so that its place matters
    outside, _ = run(scale_by_adagrad(eps=eps, initial_accumulator_value=g0), [G] * 5)
    inside, _ = run(scale_by_adagrad(eps=eps, initial_accumulator_value=g0, eps_inside_sqrt=True),
                    [G] * 5)
    for t in range(1, 6):
        acc = g0 + t * G ** 2
        np.testing.assert_allclose(outside[t - 1], G / (np.sqrt(acc) + eps), rtol=1e-13)
        np.testing.assert_allclose(inside[t - 1], G / np.sqrt(acc + eps), rtol=1e-13)
    assert np.abs(outside[-1] - inside[-1]).max() > 1e-3


@pytest.mark.parametrize("eps_inside_sqrt", [False, True])
def test_rms_on_constant_gradient(eps_inside_sqrt):
    beta, eps = 0.9, 1e-3
    outs, _ = run(scale_by_rms(beta, eps, eps_inside_sqrt=eps_inside_sqrt), [G] * 20)
    for t, u in enumerate(outs, start=1):
        v = (1 - beta ** t) * G ** 2
        denom = np.sqrt(v + eps) if eps_inside_sqrt else np.sqrt(v) + eps
        np.testing.assert_allclose(u, G / denom, rtol=1e-12)


def test_centered_rms_on_constant_gradient():
    # mean m_t = (1 - b^t) g, second moment v_t = (1 - b^t) g^2, variance v - m^2 = b^t (1 - b^t) g^2
    beta, eps = 0.9, 1e-8
    outs, _ = run(scale_by_rms(beta, eps, centered=True), [G] * 20)
    for t, u in enumerate(outs, start=1):
        var = beta ** t * (1 - beta ** t) * G ** 2
        np.testing.assert_allclose(u, G / (np.sqrt(var) + eps), rtol=1e-10)


# --- Adam --------------------------------------------------------------------------

def test_adam_bias_corrected_direction_on_constant_gradient_is_sign():
    # m_hat = g and v_hat = g^2 at every t, so the direction is g / (|g| + eps) ~ sign(g)
    eps = 1e-8
    outs, _ = run(scale_by_adam(0.9, 0.999, eps), [G] * 10)
    for u in outs:
        np.testing.assert_allclose(u, G / (np.abs(G) + eps), rtol=1e-11)
    lr = 1e-3
    first, _ = run(optbook.adam(lr), [G])
    np.testing.assert_allclose(first[0], -lr * np.sign(G), rtol=1e-5)  # step size ~ lr, |g|-free


def test_adam_without_bias_correction():
    b1, b2, eps = 0.9, 0.999, 1e-8
    outs, _ = run(scale_by_adam(b1, b2, eps, bias_correction=False), [G] * 5)
    for t, u in enumerate(outs, start=1):
        m, v = (1 - b1 ** t) * G, (1 - b2 ** t) * G ** 2
        np.testing.assert_allclose(u, m / (np.sqrt(v) + eps), rtol=1e-12)
    # the uncorrected first step is (1 - b1) / sqrt(1 - b2) ~ 3.16 times too short
    ratio = np.abs(outs[0]) / (np.abs(G) / (np.abs(G) + eps))
    np.testing.assert_allclose(ratio, (1 - b1) / np.sqrt(1 - b2), rtol=1e-3)  # eps vs 3e-3


def test_amsgrad_divides_by_the_running_maximum():
    # gradient g then zeros: v_1 = (1 - b2) g^2 is the maximum; at t = 2 the step uses it
    b1, b2, eps = 0.9, 0.999, 1e-8
    outs, state = run(scale_by_adam(b1, b2, eps, amsgrad=True), [G, G * 0])
    m2 = b1 * (1 - b1) * G
    v_max = (1 - b2) * G ** 2
    expected = (m2 / (1 - b1 ** 2)) / (np.sqrt(v_max / (1 - b2 ** 2)) + eps)
    np.testing.assert_allclose(outs[1], expected, rtol=1e-12)
    np.testing.assert_allclose(state["nu_max"], v_max, rtol=1e-14)
    plain, _ = run(scale_by_adam(b1, b2, eps), [G, G * 0])
    assert np.all(np.abs(plain[1]) > np.abs(outs[1]))  # AMSGrad takes the smaller step


@pytest.mark.parametrize("betas", [(1.0, 0.999), (-0.1, 0.999), (0.9, 1.0)])
def test_adam_invalid_betas(betas):
    index = 0 if betas[0] != 0.9 else 1
    with pytest.raises(ValueError, match=f"Invalid beta parameter at index {index}: "):
        scale_by_adam(*betas)


# --- weight decay: mask and position ----------------------------------------------

def test_add_decayed_weights_with_tree_and_callable_mask():
    params = [np.array([1.0, -2.0]), np.array([3.0])]
    grads = [np.array([0.1, 0.1]), np.array([0.1])]
    for mask in ([True, False], lambda ps: [p.size > 1 for p in ps]):
        t = add_decayed_weights(0.5, mask)
        out, _ = t.update(grads, t.init(params), params)
        np.testing.assert_allclose(out[0], [0.1 + 0.5, 0.1 - 1.0])
        np.testing.assert_allclose(out[1], [0.1])


def test_add_decayed_weights_errors():
    params = [np.ones(2), np.ones(1)]
    t = add_decayed_weights(0.1, [True])
    with pytest.raises(ValueError, match="mask must have one boolean per parameter array"):
        t.update(params, t.init(params), params)
    t = add_decayed_weights(0.1)
    with pytest.raises(ValueError, match="needs params"):
        t.update(params, t.init(params))
    with pytest.raises(ValueError, match="Invalid weight_decay value: -0.1"):
        add_decayed_weights(-0.1)


def test_decoupled_decay_shrinks_geometrically_while_l2_is_normalised_away():
    """Loshchilov & Hutter (2019): with a zero loss gradient, AdamW multiplies each weight
    by (1 - eta lambda) per step, whereas Adam+L2 feeds lambda theta through Adam's
    normalisation and moves every weight by ~eta whatever lambda is."""
    lr, lam, steps = 1e-2, 0.1, 20
    theta0 = np.array([2.0, -0.5, 1e-3])
    zero = theta0 * 0
    adamw, adam_l2 = optbook.adamw(lr, weight_decay=lam), optbook.adam(lr, weight_decay=lam)
    paths = {}
    for name, opt in (("adamw", adamw), ("adam_l2", adam_l2)):
        theta, state = theta0.copy(), opt.init(theta0)
        for _ in range(steps):
            updates, state = opt.update(zero, state, theta)
            theta = apply_updates(theta, updates)
        paths[name] = theta
    np.testing.assert_allclose(paths["adamw"], theta0 * (1 - lr * lam) ** steps, rtol=1e-12)
    # Adam+L2, first step: direction lam theta / (|lam theta| + eps) = sign(theta)
    opt = optbook.adam(lr, weight_decay=lam)
    first, _ = opt.update(zero, opt.init(theta0), theta0)
    np.testing.assert_allclose(first, -lr * np.sign(theta0), rtol=1e-4)
    # and lambda drops out: ten times the decay gives (almost) the same first step
    opt10 = optbook.adam(lr, weight_decay=10 * lam)
    first10, _ = opt10.update(zero, opt10.init(theta0), theta0)
    np.testing.assert_allclose(first10, first, rtol=1e-4)


# --- checks, chain and trees --------------------------------------------------------

def test_ensure_finite_names_the_array():
    grads = [np.ones(2), np.array([1.0, np.nan, 2.0])]
    t = ensure_finite()
    with pytest.raises(FloatingPointError, match=r"parameter array 1 \(shape \(3,\)\)"):
        t.update(grads, t.init(grads))
    with pytest.raises(FloatingPointError, match="parameter array 0"):
        t.update(torch.tensor([float("inf")]), t.init(None))
    ok = [np.ones(2)]
    assert t.update(ok, t.init(ok))[0] is ok


def test_chain_state_length_mismatch():
    opt = chain(scale(2.0), scale_by_learning_rate(0.1))
    with pytest.raises(ValueError, match="chain: state has 1 entries for 2 transformations"):
        opt.update(G, ({},), G)


def test_chain_rejects_a_non_transformation():
    with pytest.raises(TypeError, match="argument 1 is function"):
        chain(scale(2.0), lambda g: g)


@pytest.mark.parametrize("other", [[np.ones(2)], np.ones(2), [np.ones(2), np.ones(2), np.ones(2)]])
def test_tree_structure_mismatch(other):
    with pytest.raises(ValueError, match="tree structures differ"):
        tree_map(lambda a, b: a + b, [np.ones(2), np.ones(2)], other)
    with pytest.raises(ValueError, match="tree structures differ"):
        apply_updates([np.ones(2), np.ones(2)], other)


def test_state_structure_mismatch_is_caught():
    opt = optbook.adam(1e-3)
    state = opt.init([np.ones(2), np.ones(3)])
    with pytest.raises(ValueError, match="tree structures differ"):
        opt.update([np.ones(2)], state, [np.ones(2)])


def test_tree_leaves_order_and_nesting():
    a, b, c = np.zeros(1), np.ones(1), np.full(1, 2.0)
    assert [x[0] for x in tree_leaves([a, (b, [c])])] == [0.0, 1.0, 2.0]


def test_check_number_messages():
    with pytest.raises(ValueError, match="^Invalid learning rate: -0.1$"):
        check_number("learning rate", -0.1)
    with pytest.raises(ValueError, match="not a number"):
        check_number("learning rate", "fast")
    with pytest.raises(ValueError, match="Invalid x: inf"):
        check_number("x", float("inf"))
    check_number("x", 0.0)  # the bound itself is allowed


def test_scale_by_learning_rate_schedule_counts_from_zero():
    seen = []
    outs, state = run(scale_by_learning_rate(lambda t: seen.append(t) or 0.1 * (t + 1)), [G] * 3)
    assert seen == [0, 1, 2] and state == {"count": 3}
    np.testing.assert_allclose(outs[2], -0.3 * G)


def test_identity_and_scale():
    out, _ = identity().update(G, identity().init(G))
    assert out is G
    np.testing.assert_allclose(scale(-3.0).update(G, {})[0], -3.0 * G)


# --- NumPy arrays and torch tensors are both accepted ---------------------------------

@pytest.mark.parametrize("make", [
    lambda: optbook.momentum(0.1, 0.9, weight_decay=0.01), lambda: optbook.nesterov(0.1),
    lambda: optbook.adagrad(0.1, eps_inside_sqrt=True), lambda: optbook.rmsprop(0.01, centered=True),
    lambda: optbook.adam(0.01, amsgrad=True), lambda: optbook.adamw(0.01, weight_decay=0.1),
    lambda: chain(ensure_finite(), optbook.clip_by_global_norm(1.0), optbook.sgd(0.1)),
], ids=["momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "clip"])
def test_numpy_and_torch_give_the_same_updates(make):
    rng = np.random.default_rng(2)
    params_np = [rng.normal(size=(3, 2)), rng.normal(size=4)]
    grads_np = [[rng.normal(size=(3, 2)), rng.normal(size=4)] for _ in range(8)]
    results = []
    for convert in (lambda a: a.copy(), torch.from_numpy):
        opt = make()
        params = [convert(p) for p in params_np]
        state = opt.init(params)
        for grads in grads_np:
            updates, state = opt.update([convert(g) for g in grads], state, params)
            params = apply_updates(params, updates)
        assert all(type(p) is type(convert(params_np[0])) for p in params)
        results.append([np.asarray(p) for p in params])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


# --- every transformation accepts every tree optbook.adam accepts ---------------------
# A tree is one array or a (nested) list/tuple of arrays, possibly empty. The factories
# are found, not listed: every public function of optbook's modules that returns a
# GradientTransformation; REQUIRED_ARGS gives the arguments of those without defaults.

import importlib
import inspect
import pkgutil

from optbook.base import GradientTransformation

REQUIRED_ARGS = {
    "add_decayed_weights": (0.1,),
    "chain": (optbook.trace(0.9), optbook.scale_by_adam()),
    "clip_by_global_norm": (1.0,),
    "momentum": (0.1,),
    "nesterov": (0.1,),
    "scale": (-0.5,),
    "scale_by_learning_rate": (0.1,),
    "sgd": (0.1,),
    "schedule_free": (optbook.scale_by_adam(0.0), 0.1),
}
# (figures.spec.make_optimizer builds one from a figure's spec, not from hyper-parameters)
NOT_TRANSFORMATION_MODULES = {"experiments", "torch", "figures"}


def transformation_factories():
    found = {}
    for info in pkgutil.iter_modules(optbook.__path__):
        if info.name in NOT_TRANSFORMATION_MODULES:
            continue
        module = importlib.import_module(f"optbook.{info.name}")
        for name, fn in vars(module).items():
            if (inspect.isfunction(fn) and not name.startswith("_") and fn.__module__ == module.__name__
                    and inspect.signature(fn).return_annotation in
                    (GradientTransformation, "GradientTransformation")):
                found[f"{info.name}.{name}"] = fn
    return found


FACTORIES = transformation_factories()


def test_the_factory_search_finds_the_transformations():
    # a guard on the search itself: it must see the families of every chapter
    assert {"adam.scale_by_adam", "optimizers.adam", "schedule_free.schedule_free",
            "schedule_free.schedule_free_sgd", "lamb.lamb", "adafactor.adafactor",
            "sophia.sophia", "lion.lion", "clipping.clip_by_global_norm"} <= set(FACTORIES)


def _trees(lib):
    rng = np.random.default_rng(7)

    def leaf(*shape):
        a = rng.normal(size=shape)
        return a if lib == "numpy" else torch.from_numpy(a)

    return {"array": leaf(3, 2), "list": [leaf(3, 2), leaf(4)], "tuple": (leaf(3, 2), leaf(4)),
            "nested": [[leaf(3, 2)], leaf(4)], "nested_tuple": ([leaf(2)], (leaf(3), leaf(2, 2))),
            "empty_list": [], "empty_tuple": (), "with_empty_branch": [[], leaf(2)]}


TREES = [(lib, kind) for lib in ("numpy", "torch") for kind in _trees(lib)]
# Muon orthogonalizes matrices and refuses vectors (tests/test_muon.py): its trees hold
# each vector as a column, same nesting.
MATRICES_ONLY = {"muon.muon", "muon.scale_by_muon"}


def _as_matrices(tree):
    if isinstance(tree, (list, tuple)):
        return type(tree)(_as_matrices(t) for t in tree)
    return tree if tree.ndim >= 2 else tree.reshape(tree.shape[0], 1)


def _steps(transform, params, steps=3):
    """``steps`` updates on a gradient field; the parameters' leaves at the end."""
    state = transform.init(params)
    for _ in range(steps):
        grads = tree_map(lambda p: optbook.namespace(p).sin(3 * p) + 0.1, params)
        updates, state = transform.update(grads, state, params)
        params = apply_updates(params, updates)
    return tree_leaves(params)


@pytest.mark.parametrize("lib,kind", TREES, ids=[f"{lib}-{kind}" for lib, kind in TREES])
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_every_transformation_accepts_every_tree_adam_accepts(name, lib, kind):
    factory = FACTORIES[name]
    required = [p for p in inspect.signature(factory).parameters.values()
                if p.default is inspect.Parameter.empty and p.kind is not p.VAR_POSITIONAL]
    args = REQUIRED_ARGS.get(name.split(".")[-1], ())
    assert not required or args, f"{name}: add its required arguments to REQUIRED_ARGS"
    tree = _trees(lib)[kind]
    if name in MATRICES_ONLY:
        tree = _as_matrices(tree)
    flat = tree_leaves(tree)
    _steps(optbook.adam(1e-2), tree)  # the premise: adam accepts the tree
    ours = _steps(factory(*args), tree)
    # the tree's nesting changes nothing: the same leaves as a flat list give the same numbers
    reference = _steps(factory(*args), list(flat))
    assert len(ours) == len(flat)
    for a, b, leaf in zip(ours, reference, flat):
        assert type(a) is type(leaf) and a.shape == leaf.shape
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
