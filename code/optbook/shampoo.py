"""Shampoo: precondition a weight matrix from both sides (Gupta, Koren & Singer 2018).

Adam divides each coordinate of a gradient by its own running RMS, which is
a *diagonal* preconditioner: it can only stretch the axes of the coordinate
system. Full-matrix AdaGrad would use the whole (mn x mn) covariance of the
gradient of an m x n matrix, far too big. Shampoo keeps one statistic per
side of the matrix instead, an m x m and an n x n one, and preconditions
the gradient ``G_t`` from the left and from the right (Algorithm 1)::

    L_0 = eps I_m,   R_0 = eps I_n
    L_t = L_{t-1} + G_t G_t^T                                   (m x m)
    R_t = R_{t-1} + G_t^T G_t                                   (n x n)
    W_{t+1} = W_t - eta L_t^{-1/4} G_t R_t^{-1/4}

Gupta et al. show that ``L^{1/2} ⊗ R^{1/2}`` bounds the full-matrix
statistic from above (up to a factor, the rank of the gradients), so the two
fourth roots together act like full-matrix AdaGrad's inverse square root at
the cost of an m x m and an n x n matrix instead of an mn x mn one. For an order-k tensor each axis i gets a statistic
``H_i += G_(i) G_(i)^T`` (G unfolded along axis i) and the exponent is
``-1/(2k)``: -1/2 for a vector (full-matrix AdaGrad), -1/4 for a matrix,
-1/8 for a convolution kernel.

The practical variant (Anil et al. 2020, "Scalable Second Order
Optimization"; Shi et al. 2023, Distributed Shampoo), each an option here:

* ``beta2``: exponential moving averages ``H <- beta2 H + (1 - beta2) G G^T``
  instead of sums (None, the default, is Algorithm 1's sum). The statistics
  start at 0 and ``eps I`` is added when a root is taken,
  ``(H + eps I)^{-1/(2k)}``: for the sum that is exactly Algorithm 1.
* ``precondition_frequency`` f: the roots are recomputed at steps 1, f + 1,
  2f + 1, ... and reused (stale) in between; the statistics still grow at
  every step.
* ``block_size``: an axis longer than this is cut into blocks of at most
  that length, and each block of the tensor gets its own statistics (so an
  embedding's 50000 x 50000 statistic is never formed).
* ``grafting`` ("sgd" or "adam"): each block's Shampoo direction ``D`` keeps
  its direction but takes the norm of another optimizer's step ``A`` on the
  same block, ``D ||A||_F / ||D||_F``. Shampoo then decides *where* to go and
  a well-understood diagonal method *how far*, so its learning rate and
  schedule carry over. Shi et al. (Distributed Shampoo) describe grafting
  as key to making Shampoo work in practice.
  "sgd" grafts the gradient's norm; "adam" grafts Adam's without momentum
  (RMSprop with bias correction, ``g / (sqrt(v_hat) + graft_eps)``, v with
  ``graft_beta2``), as Distributed Shampoo's AdamGraftingConfig does.

**Why the roots are taken in float64.** ``eps I + sum G G^T`` has eigenvalues
from ``eps`` (1e-12 to 1e-4 in practice: directions the gradients never
visited) up to ``||G||^2`` times the number of steps. Its condition number is
far beyond float32's 7 significant digits, so in float32 an eigensolver
returns the small eigenvalues as rounding noise, possibly negative, and
their ``-1/4`` power explodes. optbook therefore takes every inverse root by
an eigendecomposition in float64 (:func:`matrix_inverse_root`) and casts the
result back; the statistics themselves are kept in the parameter's dtype
(so a float32 model stores float32 statistics: there ``eps`` below about
1e-7 of the largest eigenvalue is lost to rounding before the root is taken).

References: V. Gupta, T. Koren and Y. Singer, "Shampoo: Preconditioned
Stochastic Tensor Optimization", ICML 2018, Algorithms 1 and 2; R. Anil et
al., "Scalable Second Order Optimization for Deep Learning", 2020; H.-J. M.
Shi et al., "A Distributed Data-Parallel PyTorch Implementation of the
Distributed Shampoo Optimizer", 2023.
"""
from __future__ import annotations

import itertools
import math

import array_api_compat

from .base import (GradientTransformation, ScalarOrSchedule, chain, check_number, namespace,
                   scale_by_learning_rate, tree_map)
from .momentum import trace
from .weight_decay import add_decayed_weights

GRAFTINGS = (None, "sgd", "adam")


def matrix_inverse_root(H, root: float, eps: float = 0.0):
    """``(H + eps I)^(-1/root)`` for a symmetric positive semi-definite H, via eigh in float64.

    ``H = Q diag(w) Q^T``, so ``(H + eps I)^(-1/root) = Q diag((w + eps)^(-1/root)) Q^T``.
    Eigenvalues that rounding made negative or zero are taken by absolute value
    and floored at the smallest normal float64 (as an SVD, which sees ``|w|``,
    would). Returned in H's dtype.
    """
    if len(H.shape) != 2 or H.shape[0] != H.shape[1]:
        raise ValueError(f"matrix_inverse_root needs a square matrix, got shape {tuple(H.shape)}")
    root = check_number("root", root, low=0.0, low_inclusive=False)
    eps = check_number("epsilon value", eps)
    xp = namespace(H)
    if array_api_compat.is_torch_array(H):
        import torch
        H64 = H.to(torch.float64)
    else:
        H64 = H.astype("float64")
    n = H.shape[0]
    if eps:
        H64 = H64 + eps * xp.eye(n, dtype=H64.dtype, **_device(H64))
    w, Q = xp.linalg.eigh(H64)
    w = xp.maximum(xp.abs(w), 2.2250738585072014e-308)
    root_matrix = (Q * w ** (-1.0 / root)) @ Q.T
    if array_api_compat.is_torch_array(H):
        return root_matrix.to(H.dtype)
    return root_matrix.astype(H.dtype)


def _device(x) -> dict:
    return {"device": x.device} if array_api_compat.is_torch_array(x) else {}


def _blocks(shape, block_size):
    """Index tuples of slices that tile an array of ``shape`` in blocks of <= block_size per axis."""
    if block_size is None:
        return [tuple(slice(0, n) for n in shape)]
    ranges = [[slice(i, min(i + block_size, n)) for i in range(0, n, block_size)] or [slice(0, 0)]
              for n in shape]
    return list(itertools.product(*ranges))


def axis_statistic(G, axis: int):
    """``G_(axis) G_(axis)^T``: G unfolded along ``axis`` times its transpose (n_axis x n_axis)."""
    xp = namespace(G)
    others = [i for i in range(len(G.shape)) if i != axis]
    return xp.tensordot(G, G, axes=(others, others))


def precondition(G, roots):
    """``G x_1 roots[0] x_2 roots[1] ...``: multiply every axis of G by its (symmetric) root.

    Each tensordot contracts the first remaining axis and appends the result
    as the last one, so after all k axes the order is G's again.
    """
    xp = namespace(G)
    for root in roots:
        G = xp.tensordot(G, root, axes=([0], [0]))
    return G


def _check_block_size(block_size):
    if block_size is None:
        return None
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"Invalid block_size: {block_size!r} (expected an integer >= 1 or None)")
    return block_size


def _check_frequency(frequency):
    if isinstance(frequency, bool) or not isinstance(frequency, int) or frequency < 1:
        raise ValueError(f"Invalid precondition_frequency: {frequency!r} (expected an integer >= 1)")
    return frequency


def scale_by_shampoo(eps: float = 1e-6, beta2: float | None = None,
                     precondition_frequency: int = 1, block_size: int | None = None,
                     grafting: str | None = None, graft_beta2: float = 0.999,
                     graft_eps: float = 1e-8) -> GradientTransformation:
    """Shampoo's direction ``(H_1 + eps I)^{-1/2k} x ... x (H_k + eps I)^{-1/2k} G`` per block.

    Options in the module docstring. Arrays of any order >= 1 (a 0-d array is
    left as it is: Shampoo has no axis to precondition). State:
    ``{"count": t, "leaves": tree of {"blocks": ({"stats": (H_1, ...), "roots": (...)}, ...),
    "nu": v or None}}``.
    """
    eps = check_number("epsilon value", eps, low_inclusive=False)
    if beta2 is not None:
        beta2 = check_number("beta2 value", beta2, high=1.0)
    precondition_frequency = _check_frequency(precondition_frequency)
    block_size = _check_block_size(block_size)
    if grafting not in GRAFTINGS:
        raise ValueError(f"Invalid grafting: {grafting!r} (expected one of {GRAFTINGS})")
    graft_beta2 = check_number("graft_beta2 value", graft_beta2, high=1.0)
    graft_eps = check_number("graft_eps value", graft_eps)

    def init_leaf(p):
        xp = namespace(p)
        blocks = []
        for index in _blocks(tuple(p.shape), block_size):
            sizes = [s.stop - s.start for s in index]
            zeros = tuple(xp.zeros((n, n), dtype=p.dtype, **_device(p)) for n in sizes)
            blocks.append({"stats": zeros, "roots": tuple(z * 1 for z in zeros)})
        return {"blocks": tuple(blocks),
                "nu": xp.zeros_like(p) if grafting == "adam" else None}

    def init(params):
        return {"count": 0, "leaves": tree_map(init_leaf, params)}

    def update(updates, state, params=None, **extra):
        t = state["count"] + 1
        recompute = (t - 1) % precondition_frequency == 0

        def leaf(g, s):
            xp = namespace(g)
            if len(g.shape) == 0:
                return g * 1, s
            order = len(g.shape)
            nu = s["nu"]
            if grafting == "adam":
                nu = graft_beta2 * nu + (1 - graft_beta2) * g * g
                graft = g / (xp.sqrt(nu / (1 - graft_beta2 ** t)) + graft_eps)
            out = xp.zeros_like(g)
            blocks = []
            for index, block in zip(_blocks(tuple(g.shape), block_size), s["blocks"]):
                gb = g[index]
                stats = []
                for axis, H in enumerate(block["stats"]):
                    GG = axis_statistic(gb, axis)
                    stats.append(H + GG if beta2 is None else beta2 * H + (1 - beta2) * GG)
                roots = (tuple(matrix_inverse_root(H, 2 * order, eps) for H in stats)
                         if recompute else block["roots"])
                d = precondition(gb, roots)
                if grafting is not None:
                    target = gb if grafting == "sgd" else graft[index]
                    norm_d = float(xp.linalg.vector_norm(d))
                    norm_a = float(xp.linalg.vector_norm(target))
                    d = d * (norm_a / norm_d) if norm_d > 0 else d * 0
                out[index] = d
                blocks.append({"stats": tuple(stats), "roots": roots})
            return out, {"blocks": tuple(blocks), "nu": nu}

        pairs = tree_map(leaf, updates, state["leaves"])
        return _first(pairs), {"count": t, "leaves": _second(pairs)}

    return GradientTransformation(init, update, ("scale_by_shampoo", {
        "eps": eps, "beta2": beta2, "precondition_frequency": precondition_frequency,
        "block_size": block_size, "grafting": grafting, "graft_beta2": graft_beta2,
        "graft_eps": graft_eps}))


def _first(pairs):
    return pairs[0] if isinstance(pairs, tuple) else [_first(p) for p in pairs]


def _second(pairs):
    return pairs[1] if isinstance(pairs, tuple) else [_second(p) for p in pairs]


def shampoo(learning_rate: ScalarOrSchedule = 1e-3, eps: float = 1e-6, beta2: float | None = None,
            precondition_frequency: int = 1, block_size: int | None = None,
            grafting: str | None = None, momentum: float = 0.0, weight_decay: float = 0.0,
            graft_beta2: float = 0.999, graft_eps: float = 1e-8) -> GradientTransformation:
    """W <- W - eta (D + lambda W), D = Shampoo's (grafted) direction, optionally with momentum.

    With the defaults this is Gupta et al.'s Algorithm 1 (sums, roots every
    step, no blocks, no grafting). ``momentum > 0`` adds heavy-ball momentum
    on the preconditioned (and grafted) direction, as Distributed Shampoo
    does; ``weight_decay`` is decoupled (AdamW-style).
    """
    links = [scale_by_shampoo(eps, beta2, precondition_frequency, block_size, grafting,
                              graft_beta2, graft_eps)]
    if momentum:
        links.append(trace(momentum))
    return chain(*links, add_decayed_weights(weight_decay), scale_by_learning_rate(learning_rate))
