"""Shampoo: oracle pytorch-optimizer 4.1.0's ``Shampoo`` (float64), torch.optim.Adam for the
Adam graft, and closed-form properties of the inverse roots.

pytorch-optimizer's ``Shampoo`` (momentum 0, preconditioning_compute_steps 1) is
Gupta et al.'s Algorithm 1 for tensors of any order: statistics from
``matrix_eps * I``, ``H_i += G_(i) G_(i)^T`` of the raw gradient, exponent
``-1/(2k)`` by an SVD in float64. optbook agrees with it to 1e-12 relative.

Not used as an oracle: ``torch-optimizer``'s ``Shampoo`` (jettify/pytorch-optimizer,
0.3.0), which a reader porting Shampoo is likely to meet. It takes the root
``H^(-1/order)`` (-1/2 for a matrix, where Algorithm 1 has -1/4), and its loop
over the axes adds ``G G^T`` of the gradient *already preconditioned* on the
earlier axes to the later statistics (R accumulates ``(L^{-1/2} G)^T (L^{-1/2} G)``),
so it is neither Algorithm 1 nor 2.
"""
import numpy as np
import pytest
import torch
from pytorch_optimizer import Shampoo as TheirShampoo

import optbook
from optbook.shampoo import axis_statistic, matrix_inverse_root, precondition, scale_by_shampoo
from optbook.torch import Shampoo
from optimizer_problem import (assert_numpy_matches_torch, assert_rel_close,
                              assert_resumes_bit_identically, make_problem, moved, train,
                              train_functional)

torch.set_num_threads(1)
STEPS = 25


@pytest.mark.parametrize("lr, eps, tol", [(1e-2, 1e-6, 1e-12), (3e-2, 1e-3, 1e-12),
                                          (1e-2, 1e-12, 1e-10)])
def test_matches_pytorch_optimizer_shampoo(lr, eps, tol):
    """Matrices, vectors (order 1: full-matrix AdaGrad) and a 3-D tensor (exponent -1/6).

    With eps = 1e-12 the statistics' condition number reaches ~1e12, and the two
    eigensolvers (eigh here, SVD there) differ by ~1e-16 x 1e12 on the directions
    that eps alone holds: 6e-12 measured, on the vector."""
    params0, loss_fn = make_problem()
    theirs, _ = train(lambda ps: TheirShampoo(ps, lr=lr, matrix_eps=eps), params0, loss_fn, STEPS)
    ours, opt = train(lambda ps: Shampoo(ps, lr=lr, eps=eps), params0, loss_fn, STEPS)
    assert moved(theirs, params0) > 1e-2
    assert_rel_close(ours, theirs, tol)
    assert opt.last_step_paths["functional"] == len(params0)


def test_named_chain_equals_the_class():
    params0, loss_fn = make_problem(seed=1)
    kw = dict(eps=1e-4, beta2=0.9, precondition_frequency=3, block_size=3, grafting="adam",
              momentum=0.5, weight_decay=0.1)
    functional = train_functional(optbook.shampoo(1e-2, **kw), params0, loss_fn, 10)
    ours, _ = train(lambda ps: Shampoo(ps, lr=1e-2, **kw), params0, loss_fn, 10)
    assert_rel_close(ours, functional, 1e-14)


def test_blocks_are_independent_shampoos():
    """Oracle: pytorch-optimizer's Shampoo on the four blocks of a 5 x 7 matrix (block_size 3
    makes blocks 3 x 3, 3 x 3, 3 x 1, 2 x 3, ...: six of them) held as separate parameters."""
    gen = torch.Generator().manual_seed(2)
    W0 = torch.randn(5, 7, generator=gen, dtype=torch.float64)
    X = torch.randn(7, 9, generator=gen, dtype=torch.float64)
    rows, cols = [slice(0, 3), slice(3, 5)], [slice(0, 3), slice(3, 6), slice(6, 7)]

    def loss_whole(ps, t):
        return (torch.tanh(ps[0] @ X) ** 2).sum() * (1 + 0.1 * t) - ps[0].sum()

    def assemble(blocks):
        return torch.cat([torch.cat(blocks[3 * i:3 * i + 3], dim=1) for i in range(2)], dim=0)

    ours, _ = train(lambda ps: Shampoo(ps, lr=0.05, eps=1e-4, block_size=3), [W0], loss_whole, 10)
    blocks0 = [W0[r, c].clone() for r in rows for c in cols]
    theirs, _ = train(lambda ps: TheirShampoo(ps, lr=0.05, matrix_eps=1e-4), blocks0,
                      lambda ps, t: loss_whole([assemble(ps)], t), 10)
    assert moved([assemble(theirs)], [W0]) > 1e-2
    assert_rel_close(ours, [assemble(theirs)], 1e-12)


def _deltas(opt, param, grads):
    """Step ``opt`` on ``param`` with the given gradients; the parameter's change at each step."""
    out = []
    for g in grads:
        before = param.detach().clone()
        param.grad = g.clone()
        opt.step()
        out.append(param.detach() - before)
    return out


@pytest.mark.parametrize("grafting", ["sgd", "adam"])
def test_grafting_takes_shampoo_s_direction_and_the_graft_s_norm(grafting):
    """Per block: direction of pytorch-optimizer's Shampoo step, Frobenius norm of plain SGD's
    step (lr g) or of torch.optim.Adam's with beta1 = 0 (Adam's graft has no momentum)."""
    gen = torch.Generator().manual_seed(3)
    grads = [torch.randn(4, 6, generator=gen, dtype=torch.float64) * (1 + t) for t in range(6)]
    index = [(slice(0, 4), slice(0, 4)), (slice(0, 4), slice(4, 6))]

    def fresh():
        return torch.nn.Parameter(torch.zeros(4, 6, dtype=torch.float64))

    p = fresh()
    ours = _deltas(Shampoo([p], lr=0.1, eps=1e-4, block_size=4, grafting=grafting), p, grads)
    blocks = [torch.nn.Parameter(torch.zeros(4, 4, dtype=torch.float64)),
              torch.nn.Parameter(torch.zeros(4, 2, dtype=torch.float64))]
    their_opt = TheirShampoo(blocks, lr=0.1, matrix_eps=1e-4)
    q = fresh()
    graft_opt = (torch.optim.SGD([q], lr=0.1) if grafting == "sgd"
                 else torch.optim.Adam([q], lr=0.1, betas=(0.0, 0.999)))
    graft = _deltas(graft_opt, q, grads)
    for t, g in enumerate(grads):
        for b, i in zip(blocks, index):
            b.grad = g[i].clone()
        before = [b.detach().clone() for b in blocks]
        their_opt.step()
        for b, old, i in zip(blocks, before, index):
            direction = b.detach() - old
            expected = direction * graft[t][i].norm() / direction.norm()
            torch.testing.assert_close(ours[t][i], expected, rtol=1e-12, atol=1e-15)


def test_inverse_root_closed_form():
    """X = (H + eps I)^(-1/4) satisfies X^4 (H + eps I) = I, and float32 H gets a float32 X."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(6, 3))
    H = A @ A.T  # rank 3: eps carries the other three directions
    for eps, atol in ((1e-3, 1e-11), (1e-8, 1e-6)):  # X^4 ~ 1/eps: rounding ~ 1e-16 / eps
        X = matrix_inverse_root(H, 4, eps)
        np.testing.assert_allclose(np.linalg.matrix_power(X, 4) @ (H + eps * np.eye(6)),
                                   np.eye(6), atol=atol)
    assert matrix_inverse_root(torch.tensor(H, dtype=torch.float32), 4, 1e-3).dtype == torch.float32


def test_moving_average_statistics_and_stale_roots():
    """beta2: H_t = sum_s (1 - beta2) beta2^(t-s) G_s G_s^T; frequency 3: the step-2 update
    uses the roots of step 1's statistics (written out with NumPy, not with the module)."""
    rng = np.random.default_rng(1)
    grads = [rng.normal(size=(3, 4)) for _ in range(4)]
    beta2, eps = 0.9, 1e-3
    t = scale_by_shampoo(eps=eps, beta2=beta2, precondition_frequency=3)
    state = t.init(np.zeros((3, 4)))
    updates = []
    for g in grads:
        u, state = t.update(g, state)
        updates.append(u)
    L = sum((1 - beta2) * beta2 ** (4 - s) * g @ g.T for s, g in enumerate(grads, start=1))
    np.testing.assert_allclose(state["leaves"]["blocks"][0]["stats"][0], L, rtol=1e-13)

    def root(M):
        w, Q = np.linalg.eigh(M + eps * np.eye(len(M)))
        return Q @ np.diag(w ** -0.25) @ Q.T
    L1, R1 = (1 - beta2) * grads[0] @ grads[0].T, (1 - beta2) * grads[0].T @ grads[0]
    np.testing.assert_allclose(updates[1], root(L1) @ grads[1] @ root(R1), rtol=1e-10)
    L4 = L
    R4 = sum((1 - beta2) * beta2 ** (4 - s) * g.T @ g for s, g in enumerate(grads, start=1))
    np.testing.assert_allclose(updates[3], root(L4) @ grads[3] @ root(R4), rtol=1e-10)


def test_helpers_on_a_3d_tensor():
    rng = np.random.default_rng(2)
    G = rng.normal(size=(2, 3, 4))
    np.testing.assert_allclose(axis_statistic(G, 1), np.einsum("iaj,ibj->ab", G, G))
    A, B, C = (rng.normal(size=(n, n)) for n in (2, 3, 4))
    np.testing.assert_allclose(precondition(G, [A, B, C]), np.einsum("abc,ai,bj,ck->ijk", G, A, B, C))


def test_numpy_matches_torch():
    assert_numpy_matches_torch(lambda: scale_by_shampoo(eps=1e-4, block_size=2, grafting="adam"))


def test_resume_is_bit_identical():
    params0, loss_fn = make_problem()
    assert_resumes_bit_identically(
        lambda ps: Shampoo(ps, lr=1e-2, beta2=0.95, precondition_frequency=3, grafting="adam",
                           momentum=0.9), params0, loss_fn)


def test_param_groups_have_their_own_settings():
    params0, loss_fn = make_problem(seed=1)
    ours, _ = train(lambda ps: Shampoo([{"params": ps[:2]}, {"params": ps[2:], "lr": 3e-2,
                                                             "eps": 1e-3}], lr=1e-2, eps=1e-6),
                    params0, loss_fn, 10)
    theirs, _ = train(lambda ps: TheirShampoo([{"params": ps[:2]}, {"params": ps[2:], "lr": 3e-2,
                                                                    "matrix_eps": 1e-3}],
                                              lr=1e-2, matrix_eps=1e-6), params0, loss_fn, 10)
    assert_rel_close(ours, theirs, 1e-12)


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-1.0), "Invalid learning rate: -1.0"),
    (dict(eps=0.0), "Invalid epsilon value: 0.0"),
    (dict(beta2=1.0), "Invalid beta2 value: 1.0"),
    (dict(precondition_frequency=0), "Invalid precondition_frequency: 0"),
    (dict(block_size=0), "Invalid block_size: 0"),
    (dict(block_size=2.5), "Invalid block_size: 2.5"),
    (dict(grafting="adagrad"), "Invalid grafting: 'adagrad'"),
    (dict(graft_beta2=-0.1), "Invalid graft_beta2 value"),
    (dict(graft_eps=-1.0), "Invalid graft_eps value"),
    (dict(momentum=-0.5), "Invalid momentum value"),
    (dict(weight_decay=-0.1), "Invalid weight_decay value"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Shampoo([torch.nn.Parameter(torch.randn(3, 2))], **kwargs)


def test_a_zero_dim_parameter_is_left_as_sgd():
    t = scale_by_shampoo()
    g = np.array(2.0)
    u, _ = t.update(g, t.init(g))
    assert u == 2.0


def test_matrix_inverse_root_bad_input():
    with pytest.raises(ValueError, match=r"square matrix, got shape \(2, 3\)"):
        matrix_inverse_root(np.ones((2, 3)), 4)
    with pytest.raises(ValueError, match="Invalid root: 0"):
        matrix_inverse_root(np.eye(2), 0)
    with pytest.raises(ValueError, match="Invalid epsilon value: -1"):
        matrix_inverse_root(np.eye(2), 4, -1)
