"""The small problem the oracle tests of AdaFactor, LAMB, Lion and Sophia share.

A tiny classifier whose parameters have 1, 2 and 3 axes (so factored, vector
and higher-rank code paths all run), a fixed batch per step, and the loops
that train it with a torch optimizer class or a functional chain.
"""
import torch
import torch.nn.functional as F

from optbook import apply_updates

DT = torch.float64
STEPS = 25
SHAPES = [(5, 4), (5,), (3, 5), (3,), (2, 3, 4)]  # matrices, vectors and a 3-D tensor


def classifier_problem(seed=0, scale=0.5, *, zero_bias=False, batch=8, batches=STEPS):
    """``(params, logits_fn, loss_fn)``; ``logits_fn(ps, t)`` uses batch ``t % batches``.

    ``zero_bias`` makes the first bias exactly zero (LAMB's ||theta|| = 0 case).
    """
    gen = torch.Generator().manual_seed(seed)
    params = [scale * torch.randn(s, generator=gen, dtype=DT) for s in SHAPES]
    if zero_bias:
        params[1] = torch.zeros_like(params[1])
    xs = torch.randn(batches, batch, 4, generator=gen, dtype=DT)
    ys = torch.randint(0, 3, (batches, batch), generator=gen)

    def logits_fn(ps, t):
        w1, b1, w2, b2, t3 = ps
        x = xs[t % batches]
        return torch.tanh(x @ w1.T + b1) @ w2.T + b2 + torch.einsum("bi,kji->bj", x, t3)

    def loss_fn(ps, t):
        return F.cross_entropy(logits_fn(ps, t), ys[t % batches])

    return params, logits_fn, loss_fn


def make_problem(seed=0, scale=0.5, **kwargs):
    """``(params, loss_fn)`` of :func:`classifier_problem`."""
    params, _, loss_fn = classifier_problem(seed, scale, **kwargs)
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


def assert_resumes_bit_identically(make_optimizer, params0, loss_fn, steps=10):
    """``steps`` steps, a state_dict round trip, ``steps`` more == 2 * steps straight."""
    import copy

    mid, opt = train(make_optimizer, params0, loss_fn, steps)
    saved = copy.deepcopy(opt.state_dict())
    straight, _ = train(make_optimizer, params0, loss_fn, 2 * steps)
    resumed, _ = train(make_optimizer, mid, loss_fn, steps, start=steps, state_dict=saved)
    for a, b in zip(resumed, straight):
        assert torch.equal(a, b)


def assert_numpy_matches_torch(make_transform, steps=6, shapes=((4, 3), (3,)), zero_leaf=None,
                               rtol=1e-12):
    """The same transformation on float64 NumPy arrays and torch tensors gives the same updates.

    ``zero_leaf``: index of a parameter array set to zero (e.g. LAMB's ratio-1 branch).
    """
    import numpy as np

    rng = np.random.default_rng(0)
    params_np = [rng.normal(size=s) for s in shapes]
    if zero_leaf is not None:
        params_np[zero_leaf][...] = 0.0
    params_pt = [torch.tensor(p) for p in params_np]
    t_np, t_pt = make_transform(), make_transform()
    s_np, s_pt = t_np.init(params_np), t_pt.init(params_pt)
    for _ in range(steps):
        grads_np = [rng.normal(size=s) for s in shapes]
        u_np, s_np = t_np.update(grads_np, s_np, params_np)
        u_pt, s_pt = t_pt.update([torch.tensor(g) for g in grads_np], s_pt, params_pt)
        for a, b in zip(u_np, u_pt):
            assert isinstance(a, np.ndarray)
            np.testing.assert_allclose(a, b.numpy(), rtol=rtol, atol=0)
