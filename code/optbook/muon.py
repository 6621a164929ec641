"""Muon: momentum, then the nearest semi-orthogonal matrix (Keller Jordan 2024).

Adam scales each coordinate of a weight matrix on its own. Muon treats the
update of a matrix ``W`` (m x n) as a matrix: it takes the momentum ``B`` of
the gradient, writes it as ``B = U S V^T`` (its SVD) and steps along ``U V^T``,
the matrix with the same singular *vectors* and every singular value 1::

    B_t = beta B_{t-1} + (1 - beta) G_t                 (momentum, an EMA)
    N_t = beta B_t + (1 - beta) G_t     (nesterov=True; N_t = B_t otherwise)
    O_t = NS_5(N_t) ~ U V^T             (Newton-Schulz, below)
    W_t = W_{t-1} - eta (s(m, n) O_t + lambda W_{t-1})

``U V^T`` is the steepest-descent direction when the size of a step is
measured by the spectral norm (Bernstein & Newhouse 2024): every direction
of the input space is moved by the same amount, so the rare directions that
a raw gradient barely touches are not drowned by the few that dominate it.
It is also what Shampoo's ``L^{-1/4} G R^{-1/4}`` becomes without
accumulation (L = G G^T, R = G^T G; see :mod:`optbook.shampoo`).

**Newton-Schulz.** An SVD per step is slow; an odd matrix polynomial is not.
After ``X_0 = N / (||N||_F + eps)`` (so every singular value is in [0, 1]),
each step ::

    A = X X^T,   X <- a X + (b A + c A^2) X          (a, b, c) = (3.4445, -4.7750, 2.0315)

maps every singular value ``s`` of X to ``p(s) = a s + b s^3 + c s^5`` and
leaves the singular vectors alone. :func:`newton_schulz_scalar` is that map
on numbers (a chapter plots it). Jordan chose the coefficients to make the
slope at zero large (a = 3.4445, so a small ``s`` grows about 3.4445^5 ~ 490
times in five steps): every normalized singular value from 0.002 to 1 ends
in [0.68, 1.20]. The price is that they do not converge to exactly 1; the
cubic ``(1.5, -0.5, 0)`` does, but multiplies a small ``s`` by only
1.5^5 ~ 7.6 in five steps.

**Shape scale** ``s(m, n)``, chosen by ``shape_scale``:

* ``"jordan"``: ``sqrt(max(1, m / n))`` (Jordan's code; ``torch.optim.Muon``'s
  ``adjust_lr_fn="original"``); a learning rate around 0.02;
* ``"moonlight"``: ``0.2 sqrt(max(m, n))`` (Liu et al. 2025, Moonlight), which
  makes the update's RMS about 0.2, that of a typical AdamW update, so
  AdamW's learning rate and weight decay carry over (``torch.optim.Muon``'s
  ``adjust_lr_fn="match_rms_adamw"``).

Newton-Schulz runs in float32 by default (``ns_dtype``), so that optbook's
Muon equals a float32 run of Jordan's code bit for bit and the book's
numbers do not rest on bfloat16 rounding. Jordan's code uses bfloat16, which
is fast on GPUs; on a CPU it is fast only where the processor has bfloat16
instructions (on the AVX-512 machine this book is built on, ``make bench``
found the bfloat16 implementations faster than optbook's float32 one). ``ns_dtype="bfloat16"``
reproduces the reference's rounding, ``"float64"`` is for tests. Arrays with more than two axes
(convolution kernels, out x in x kh x kw) are viewed as ``out x (in kh kw)``;
vectors and scalars are refused: Muon is for the hidden weight matrices,
and the rest (biases, gains, embeddings, the output head) belongs to AdamW
(:class:`optbook.torch.Muon` takes both through param groups).

References: K. Jordan et al., "Muon: An optimizer for hidden layers in neural
networks", 2024, https://kellerjordan.github.io/posts/muon/ ; J. Bernstein and
L. Newhouse, "Old Optimizer, New Norm: An Anthology", 2024; J. Liu et al.,
"Muon is Scalable for LLM Training", 2025 (Moonlight).
"""
from __future__ import annotations

import math

import array_api_compat

from .base import (GradientTransformation, ScalarOrSchedule, chain, check_number, namespace,
                   scale_by_learning_rate, tree_map, zeros_like)
from .weight_decay import add_decayed_weights

#: Jordan's quintic coefficients (a, b, c): p(s) = a s + b s^3 + c s^5.
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
#: The classical cubic Newton-Schulz iteration p(s) = 1.5 s - 0.5 s^3 (converges to 1).
CUBIC_COEFFICIENTS = (1.5, -0.5, 0.0)
SHAPE_SCALES = ("jordan", "moonlight")
NS_DTYPES = ("float32", "bfloat16", "float64")


def lerp(a, b, weight: float):
    """``a + weight (b - a)``, computed as ``torch.lerp`` computes it (bit for bit on torch).

    torch evaluates ``b - (b - a)(1 - weight)`` when ``weight >= 0.5``; NumPy
    arrays get the same two formulas.
    """
    if array_api_compat.is_torch_array(a):
        import torch
        return torch.lerp(a, b, weight)
    return a + weight * (b - a) if weight < 0.5 else b - (b - a) * (1 - weight)


def check_coefficients(coefficients) -> tuple[float, float, float]:
    try:
        a, b, c = coefficients
    except (TypeError, ValueError):
        raise ValueError(f"Invalid ns_coefficients: {coefficients!r} "
                         "(expected three numbers (a, b, c))") from None
    return tuple(check_number(f"ns_coefficients entry {i}", x, low=None)
                 for i, x in enumerate((a, b, c)))


def check_steps(name: str, steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"Invalid {name}: {steps!r} (expected an integer >= 0)")
    return steps


def newton_schulz_scalar(s, steps: int = 5, coefficients=NS_COEFFICIENTS):
    """Where Newton-Schulz sends a singular value ``s`` (in [0, 1]) after ``steps`` steps.

    Applies ``p(s) = a s + b s^3 + c s^5`` ``steps`` times, elementwise (a
    number or a NumPy array): the scalar map that :func:`newton_schulz`
    applies to every singular value of its (normalized) input.
    """
    a, b, c = check_coefficients(coefficients)
    for _ in range(check_steps("steps", steps)):
        s2 = s * s
        s = a * s + (b * s2 + c * s2 * s2) * s
    return s


def _as_matrix(g):
    """A 2-D view of ``g`` (out x rest for more axes); ValueError for vectors and scalars."""
    shape = tuple(g.shape)
    if len(shape) < 2:
        raise ValueError(f"Muon orthogonalizes matrices, but got an array of shape {shape}: give "
                         "vectors and scalars (biases, gains) to AdamW, e.g. with "
                         "optbook.torch.Muon's use_muon=False param group")
    if len(shape) == 2:
        return g
    return namespace(g).reshape(g, (shape[0], math.prod(shape[1:])))


def _cast(x, dtype: str):
    if array_api_compat.is_torch_array(x):
        import torch
        return x.to(getattr(torch, dtype))
    if dtype == "bfloat16":
        raise ValueError("Invalid ns_dtype: 'bfloat16' needs torch tensors (NumPy has no bfloat16)")
    return x.astype(dtype)


def newton_schulz(G, steps: int = 5, coefficients=NS_COEFFICIENTS, eps: float = 1e-7,
                  dtype: str = "float32"):
    """Approximately ``U V^T`` for ``G = U S V^T``, by ``steps`` Newton-Schulz steps in ``dtype``.

    ``X = G / (||G||_F + eps)``, transposed if G has more rows than columns
    (so that ``X X^T`` is the smaller Gram matrix), then ``steps`` times
    ``A = X X^T; X <- a X + (b A + c A A) X``, as Jordan's
    ``zeropower_via_newtonschulz5`` computes it. Returned in ``dtype``, in
    G's shape (a 2-D array; see :func:`scale_by_muon` for other shapes).
    """
    a, b, c = check_coefficients(coefficients)
    steps = check_steps("ns_steps", steps)
    if dtype not in NS_DTYPES:
        raise ValueError(f"Invalid ns_dtype: {dtype!r} (expected one of {NS_DTYPES})")
    if len(G.shape) != 2:
        raise ValueError(f"newton_schulz needs a matrix, got shape {tuple(G.shape)}")
    xp = namespace(G)
    X = _cast(G, dtype)
    tall = G.shape[0] > G.shape[1]
    if tall:
        X = X.T
    X = X / (xp.linalg.vector_norm(X, axis=(-2, -1), keepdims=True) + eps)
    for _ in range(steps):
        A = X @ X.T
        B = b * A + c * A @ A
        X = a * X + B @ X
    return X.T if tall else X


def shape_scale_factor(shape, kind: str) -> float:
    """``sqrt(max(1, m/n))`` (kind "jordan") or ``0.2 sqrt(max(m, n))`` ("moonlight") for m x n."""
    m, n = shape[0], math.prod(shape[1:])
    if kind == "jordan":
        return max(1.0, m / n) ** 0.5
    if kind == "moonlight":
        return 0.2 * max(m, n) ** 0.5
    raise ValueError(f"Invalid shape_scale: {kind!r} (expected one of {SHAPE_SCALES})")


def scale_by_muon(beta: float = 0.95, nesterov: bool = True, ns_steps: int = 5,
                  ns_coefficients=NS_COEFFICIENTS, eps: float = 1e-7,
                  shape_scale: str = "jordan", ns_dtype: str = "float32") -> GradientTransformation:
    """Muon's direction ``s(m, n) NS_5(N_t)`` (module docstring); no learning rate yet.

    State: ``{"momentum": B}``. Every array must have at least two axes
    (more are viewed as out x rest); vectors raise ``ValueError``.
    """
    beta = check_number("momentum value", beta, high=1.0)
    coefficients = check_coefficients(ns_coefficients)
    ns_steps = check_steps("ns_steps", ns_steps)
    eps = check_number("epsilon value", eps)
    if shape_scale not in SHAPE_SCALES:
        raise ValueError(f"Invalid shape_scale: {shape_scale!r} (expected one of {SHAPE_SCALES})")
    if ns_dtype not in NS_DTYPES:
        raise ValueError(f"Invalid ns_dtype: {ns_dtype!r} (expected one of {NS_DTYPES})")
    if not isinstance(nesterov, bool):
        raise TypeError(f"Invalid nesterov: {nesterov!r} (expected True or False)")

    def direction(g, buf):
        matrix = _as_matrix(lerp(g, buf, beta) if nesterov else buf)
        orth = newton_schulz(matrix, ns_steps, coefficients, eps, ns_dtype)
        orth = _cast(orth, str(g.dtype).removeprefix("torch."))
        xp = namespace(g)
        return xp.reshape(orth, tuple(g.shape)) * shape_scale_factor(tuple(g.shape), shape_scale)

    def init(params):
        tree_map(_as_matrix, params)  # refuse vectors now rather than at the first step
        return {"momentum": zeros_like(params)}

    def update(updates, state, params=None, **extra):
        buf = tree_map(lambda b, g: lerp(b, g, 1 - beta), state["momentum"], updates)
        return tree_map(direction, updates, buf), {"momentum": buf}

    return GradientTransformation(init, update, ("scale_by_muon", {
        "beta": beta, "nesterov": nesterov, "ns_steps": ns_steps, "ns_coefficients": coefficients,
        "eps": eps, "shape_scale": shape_scale, "ns_dtype": ns_dtype}))


def muon(learning_rate: ScalarOrSchedule = 0.02, beta: float = 0.95, weight_decay: float = 0.0,
         nesterov: bool = True, ns_steps: int = 5, ns_coefficients=NS_COEFFICIENTS,
         eps: float = 1e-7, shape_scale: str = "jordan",
         ns_dtype: str = "float32") -> GradientTransformation:
    """W <- W - eta (s(m, n) NS_5(nesterov momentum) + lambda W)   (Jordan 2024).

    Defaults are Jordan's (lr 0.02, momentum 0.95, Nesterov, 5 steps, no
    decay). For weight matrices only; with ``shape_scale="moonlight"`` use
    AdamW-sized rates (e.g. 3e-4 to 1e-3) and decay (Liu et al. 2025).
    """
    return chain(scale_by_muon(beta, nesterov, ns_steps, ns_coefficients, eps, shape_scale,
                               ns_dtype),
                 add_decayed_weights(weight_decay), scale_by_learning_rate(learning_rate))
