r"""Chapter 5.3 (Beyond Adam: preconditioning whole matrices): the matrix quadratic and friends.

**The matrix quadratic.** For a weight matrix ``W`` (m x n) ::

    f(W) = 1/2 || A (W - W*) B ||_F^2,     grad f(W) = A^T A (W - W*) B B^T,

whose Hessian is the Kronecker product ``(B B^T) ⊗ (A^T A)``. :func:`matrix_quadratic`
builds ``A^T A = Q_A diag(a) Q_A^T`` and ``B B^T = Q_B diag(b) Q_B^T`` with
eigenvalues ``a``, ``b`` log-spaced from 1 down to ``1/kappa`` (so each side has
condition number ``kappa`` and the Hessian ``kappa^2``). *Axis-aligned*:
``Q_A = I``, ``Q_B = I`` and the Hessian is diagonal in the coordinates of W.
*Rotated*: ``Q_A``, ``Q_B`` random orthogonal matrices, and the target is rotated
with them (``W* = Q_A W*_0 Q_B^T``), so the two problems are the same problem
in two bases: gradient descent and Shampoo, which commute with rotations, give
the same losses on both; only a method that works coordinate by coordinate
(Adam) can tell them apart. A seed draws the target ``W*_0`` and the two
rotations. Runs start at ``W = 0`` and report ``f(W_t) / f(W_0)``; everything
is float64 (Shampoo's roots of nearly singular statistics need it, see
:mod:`optbook.shampoo`).

**Tuning** (:func:`tune`): each method's learning rate is chosen from a
geometric grid (>= 5 rates) by the mean over seeds of ``log10`` of the final
relative loss (a diverged seed counts as +inf; a loss below :data:`FLOOR`,
round-off, counts as ``FLOOR``, and ties go to the smallest rate);
:func:`print_tuned` marks a best rate at an end of its grid.

Also here: the polar factor (:func:`polar_factor`, Shampoo without
accumulation, :func:`shampoo_one_step`), Newton--Schulz as a map on singular
values (:func:`singular_value_map`), the state each optimizer keeps per
layer (:func:`state_floats`, :func:`measured_state_floats`) and the
section's stored reruns.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from .. import optimizers
from ..base import apply_updates, tree_leaves
from ..muon import CUBIC_COEFFICIENTS, NS_COEFFICIENTS, newton_schulz, newton_schulz_scalar
from ..muon import muon as muon_optimizer
from ..muon import scale_by_muon
from ..shampoo import matrix_inverse_root, scale_by_shampoo
from ..shampoo import shampoo as shampoo_optimizer
from ..soap import scale_by_soap
from ..soap import soap as soap_optimizer
from ..figures import scalar_map_figure
from .reruns import Rerun

__all__ = ["QUADRATIC", "MatrixQuadratic", "matrix_quadratic", "METHODS", "GRIDS",
           "quadratic_run", "tune", "tuned_table", "tuned_curves", "print_tuned", "PILOT",
           "print_pilot", "polar_factor",
           "shampoo_one_step", "singular_value_map", "NS_CHOICES", "QUINTIC_NEWTON_SCHULZ",
           "newton_schulz_explorer", "STATE_FORMULAS", "state_floats",
           "measured_state_floats", "quadratic_rerun", "RERUNS"]

QUADRATIC = dict(m=32, n=24, kappa=1e3)
"""The section's problem size: a 32 x 24 matrix, condition number 10^3 on each side."""


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"Invalid {name}: {value!r} (must be an integer >= {low})")
    return int(value)


def _random_orthogonal(k: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-random k x k orthogonal matrix (QR of a Gaussian, signs fixed by R's diagonal)."""
    q, r = np.linalg.qr(rng.standard_normal((k, k)))
    return q * np.sign(np.diag(r))


@dataclass(frozen=True)
class MatrixQuadratic:
    """``f(W) = 1/2 ||A (W - W*) B||_F^2``, stored through its curvature factors.

    ``left = A^T A`` (m x m) and ``right = B B^T`` (n x n), both symmetric
    positive definite; ``target = W*``; ``loss(W)``, ``grad(W)``.
    """

    left: np.ndarray
    right: np.ndarray
    target: np.ndarray

    def loss(self, W) -> float:
        E = W - self.target
        return 0.5 * float(np.sum((self.left @ E) * (E @ self.right)))

    def grad(self, W) -> np.ndarray:
        return self.left @ (W - self.target) @ self.right


def matrix_quadratic(m: int = 32, n: int = 24, kappa: float = 1e3, rotated: bool = True,
                     seed: int = 0) -> MatrixQuadratic:
    """The section's quadratic (module docstring), axis-aligned or rotated, for ``seed``.

    For one seed the rotated problem is the axis-aligned one seen in another
    basis: ``W -> Q_A W Q_B^T`` maps one onto the other.
    """
    m, n = _check_int("m", m, 1), _check_int("n", n, 1)
    seed = _check_int("seed", seed, 0)
    if isinstance(kappa, bool) or not isinstance(kappa, (int, float)) or not kappa >= 1:
        raise ValueError(f"Invalid kappa: {kappa!r} (must be a number >= 1)")
    if not isinstance(rotated, bool):
        raise TypeError(f"Invalid rotated: {rotated!r} (expected True or False)")
    rng = np.random.default_rng(seed)
    target = rng.standard_normal((m, n))
    QA, QB = _random_orthogonal(m, rng), _random_orthogonal(n, rng)
    a = np.geomspace(1.0, 1.0 / kappa, m)
    b = np.geomspace(1.0, 1.0 / kappa, n)
    if not rotated:
        return MatrixQuadratic(np.diag(a), np.diag(b), target)
    return MatrixQuadratic((QA * a) @ QA.T, (QB * b) @ QB.T, QA @ target @ QB.T)


@dataclass(frozen=True)
class Method:
    label: str
    make: Callable[[float], object]


METHODS: dict[str, Method] = {
    "gd": Method("GD", lambda lr: optimizers.sgd(lr)),
    "adam": Method("Adam", lambda lr: optimizers.adam(lr)),
    "shampoo": Method("Shampoo", lambda lr: shampoo_optimizer(lr, eps=1e-12)),
    "shampoo_f10": Method("Shampoo, roots every 10, ε = 1e-12",
                          lambda lr: shampoo_optimizer(lr, eps=1e-12, precondition_frequency=10)),
    "shampoo_f10_eps": Method("Shampoo, roots every 10, ε = 1e-4",
                              lambda lr: shampoo_optimizer(lr, eps=1e-4,
                                                           precondition_frequency=10)),
    "shampoo_f10_graft": Method("Shampoo, roots every 10, ε = 1e-12, Adam grafting",
                                lambda lr: shampoo_optimizer(lr, eps=1e-12,
                                                             precondition_frequency=10,
                                                             grafting="adam")),
    "soap": Method("SOAP (basis every 10)", lambda lr: soap_optimizer(lr, weight_decay=0.0)),
}
"""The methods compared on the quadratic: name -> (label, ``lr -> GradientTransformation``).

Shampoo is Gupta et al.'s Algorithm 1 (sums of the statistics, no momentum)
with ``eps`` as labelled; ``shampoo`` recomputes its roots every step. SOAP
uses the reference's defaults (betas 0.95, basis refreshed every 10 steps)
without weight decay."""

GRIDS: dict[str, tuple[float, ...]] = {
    "gd": (0.25, 0.5, 1.0, 1.5, 1.9, 2.1),
    "adam": tuple(float(x) for x in np.geomspace(1e-3, 1.0, 7)),
    "shampoo": (3.0, 30.0, 300.0, 3000.0, 30000.0),
    "shampoo_f10": tuple(float(x) for x in np.geomspace(1e-3, 10.0, 9)),
    "shampoo_f10_eps": tuple(float(x) for x in np.geomspace(1e-3, 10.0, 9)),
    "shampoo_f10_graft": (0.01, 0.03, 0.1, 0.3, 1.0, 3.0),
    "soap": tuple(float(x) for x in np.geomspace(1e-3, 1.0, 7)),
}
"""Learning-rate grids (GD's straddles its stability limit 2 / lambda_max = 2; Shampoo's
summed statistics shrink its steps like AdaGrad's, so its best rates are large)."""


def _check_method(name) -> str:
    if name not in METHODS:
        raise ValueError(f"Invalid method: {name!r} (expected one of {tuple(METHODS)})")
    return name


def quadratic_run(problem: MatrixQuadratic, optimizer, steps: int) -> np.ndarray:
    """``f(W_t) / f(W_0)`` for t = 0..steps of ``optimizer`` from ``W_0 = 0`` (float64).

    A non-finite loss (or one above 1e12 times the start) ends the run; the
    remaining entries are +inf.
    """
    steps = _check_int("steps", steps, 1)
    W = np.zeros_like(problem.target)
    f0 = problem.loss(W)
    out = np.full(steps + 1, np.inf)
    out[0] = 1.0
    state = optimizer.init(W)
    for t in range(1, steps + 1):
        updates, state = optimizer.update(problem.grad(W), state, W)
        W = apply_updates(W, updates)
        value = problem.loss(W) / f0
        if not math.isfinite(value) or value > 1e12:
            break
        out[t] = value
    return out


FLOOR = 1e-24
"""Relative losses below this are float64 round-off (``||W - W*||`` at ~1e-12 relative):
:func:`tune` scores them as ``FLOOR``, so ties among such rates go to the smallest rate."""


def _log_mean(values) -> float:
    values = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(values)):
        return math.inf
    return float(np.mean(np.log10(np.maximum(values, FLOOR))))


def tune(method: str, steps: int, seeds: Sequence[int], rotated: bool,
         lrs: Sequence[float] | None = None, problem: Mapping | None = None) -> dict:
    """Every rate of ``lrs`` (default :data:`GRIDS`) on every seed; the best by mean log loss.

    Returns ``{"method", "rotated", "steps", "seeds", "lrs", "final": [[loss per seed]
    per rate], "best_lr", "interior"}`` (plain lists, JSON-able).
    """
    method = _check_method(method)
    steps = _check_int("steps", steps, 1)
    seeds = tuple(_check_int("seed", s, 0) for s in seeds)
    if not seeds:
        raise ValueError("Invalid seeds: () (give at least one seed)")
    lrs = tuple(GRIDS[method] if lrs is None else lrs)
    if len(lrs) < 2 or any(not (isinstance(lr, (int, float)) and lr > 0) for lr in lrs):
        raise ValueError(f"Invalid lrs: {lrs!r} (need at least two learning rates > 0)")
    problems = [matrix_quadratic(**(problem or QUADRATIC), rotated=rotated, seed=s)
                for s in seeds]
    final = [[float(quadratic_run(p, METHODS[method].make(lr), steps)[-1]) for p in problems]
             for lr in lrs]
    scores = [_log_mean(f) for f in final]
    best = int(np.argmin(scores))
    return {"method": method, "rotated": rotated, "steps": steps, "seeds": list(seeds),
            "lrs": [float(lr) for lr in lrs], "final": final, "best_lr": float(lrs[best]),
            "interior": 0 < best < len(lrs) - 1 and math.isfinite(scores[best])}


def tuned_table(records: Sequence[Mapping]) -> list[dict]:
    """Per record: label, basis, tuned rate, and the final loss at it as geometric mean,
    min and max over seeds (``inf`` if a seed diverged)."""
    rows = []
    for r in records:
        losses = np.asarray(r["final"][r["lrs"].index(r["best_lr"])], dtype=float)
        score = _log_mean(losses)
        rows.append({"label": METHODS[r["method"]].label,
                     "basis": "rotated" if r["rotated"] else "axis-aligned",
                     "best_lr": r["best_lr"], "interior": bool(r["interior"]),
                     "mean": 10 ** score if math.isfinite(score) else math.inf,
                     "min": float(losses.min()), "max": float(losses.max())})
    return rows


def print_tuned(records: Sequence[Mapping]) -> None:
    """The tuned table: f(W_T)/f(W_0), geometric mean (min–max) over seeds, 2 digits."""
    rows = tuned_table(records)
    steps = {r["steps"] for r in records}
    seeds = {tuple(r["seeds"]) for r in records}
    print(f"f(W_T)/f(W_0) after {', '.join(map(str, sorted(steps)))} steps at each method's "
          f"tuned η; geometric mean (min–max) over seeds "
          f"{', '.join(', '.join(map(str, s)) for s in sorted(seeds))}")
    print(f"{'method':<50}{'basis':<14}{'tuned η':>9}   loss")
    for row in rows:
        lr = f"{row['best_lr']:.2g}" + ("" if row["interior"] else "!")
        mean = f"≤{FLOOR:.0e}" if row["mean"] <= FLOOR else f"{row['mean']:.1e}"
        print(f"{row['label']:<50}{row['basis']:<14}{lr:>9}   {mean} "
              f"({row['min']:.1e}–{row['max']:.1e})")
    if not all(row["interior"] for row in rows):
        print("! best rate at an end of its grid")
    if any(row["mean"] <= FLOOR for row in rows):
        print(f"≤{FLOOR:.0e}: every seed at float64 round-off (W = W* to machine precision)")


PILOT = {"gd": 6.9e-2, "adam": 3.9e-3, "shampoo": 1.3e-12, "shampoo_f10": 1.2,
         "shampoo_f10_eps": 6.4e-3}
"""Issue 23's one-seed pilot on the rotated problem, ``f(W_T)/f(W_0)`` as it reported them
(its scaling and settings otherwise unstated): the ordering, and the stale-root stall."""


def print_pilot(records: Sequence[Mapping]) -> None:
    """For each rotated-problem record whose method is in :data:`PILOT`: the pilot's value
    beside this page's geometric mean (min–max) at the tuned rate."""
    print(f"{'rotated problem':<50}{'pilot (1 seed)':>15}   here")
    for r, row in zip(records, tuned_table(records)):
        if r["rotated"] and r["method"] in PILOT:
            print(f"{row['label']:<50}{PILOT[r['method']]:>15.2g}   {row['mean']:.2g} "
                  f"({row['min']:.2g}–{row['max']:.2g})")


def tuned_curves(record: Mapping) -> np.ndarray:
    """``f(W_t)/f(W_0)``, t = 0..steps, at a :func:`tune` record's tuned rate: (seeds, steps + 1)."""
    problems = [matrix_quadratic(**QUADRATIC, rotated=record["rotated"], seed=s)
                for s in record["seeds"]]
    make = METHODS[_check_method(record["method"])].make
    return np.array([quadratic_run(p, make(record["best_lr"]), record["steps"])
                     for p in problems])


def polar_factor(G) -> np.ndarray:
    """``U V^T`` for the thin SVD ``G = U S V^T`` (the orthogonal polar factor of G)."""
    G = np.asarray(G, dtype=float)
    if G.ndim != 2:
        raise ValueError(f"polar_factor needs a matrix, got shape {G.shape}")
    U, _, Vt = np.linalg.svd(G, full_matrices=False)
    return U @ Vt


def shampoo_one_step(G, eps: float = 1e-12) -> np.ndarray:
    """Shampoo's direction with no accumulation: ``(G G^T + eps I)^{-1/4} G (G^T G + eps I)^{-1/4}``."""
    G = np.asarray(G, dtype=float)
    if G.ndim != 2:
        raise ValueError(f"shampoo_one_step needs a matrix, got shape {G.shape}")
    return matrix_inverse_root(G @ G.T, 4, eps) @ G @ matrix_inverse_root(G.T @ G, 4, eps)


def singular_value_map(s, steps: int = 5, coefficients=NS_COEFFICIENTS) -> np.ndarray:
    """Where ``steps`` Newton--Schulz steps send normalized singular values ``s`` (array).

    :func:`optbook.newton_schulz_scalar` on a float64 array; named here so the
    page's table and figure read ``singular_value_map(s, 5, CUBIC_COEFFICIENTS)``.
    """
    s = np.asarray(s, dtype=float)
    if np.any(s < 0) or np.any(s > 1):
        raise ValueError("Invalid s: normalized singular values must lie in [0, 1]")
    return newton_schulz_scalar(s, steps, coefficients)


STATE_FORMULAS: dict[str, tuple[str, Callable[[int, int], int]]] = {
    "adam": ("2mn", lambda m, n: 2 * m * n),
    "shampoo": ("2(m² + n²)", lambda m, n: 2 * (m * m + n * n)),
    "soap": ("2(m² + n²) + 2mn", lambda m, n: 2 * (m * m + n * n) + 2 * m * n),
    "muon": ("mn", lambda m, n: m * n),
}
"""Floats of optimizer state per m x n matrix, as optbook stores it: Shampoo keeps both
statistics and both roots; SOAP both statistics, both eigenbases, m and v."""


def state_floats(name: str, m: int, n: int) -> int:
    """:data:`STATE_FORMULAS` evaluated for an m x n matrix."""
    if name not in STATE_FORMULAS:
        raise ValueError(f"Invalid name: {name!r} (expected one of {tuple(STATE_FORMULAS)})")
    return STATE_FORMULAS[name][1](_check_int("m", m, 1), _check_int("n", n, 1))


def measured_state_floats(name: str, m: int, n: int, steps: int = 2) -> int:
    """Floats in the state of optbook's transformation for one m x n matrix after ``steps``.

    The directions only (``scale_by_adam``, ``scale_by_shampoo``, ``scale_by_soap``,
    ``scale_by_muon``): step counters are not counted.
    """
    from ..adam import scale_by_adam
    make = {"adam": scale_by_adam, "shampoo": scale_by_shampoo, "soap": scale_by_soap,
            "muon": lambda: scale_by_muon(ns_dtype="float64")}
    if name not in make:
        raise ValueError(f"Invalid name: {name!r} (expected one of {tuple(make)})")
    rng = np.random.default_rng(0)
    W = rng.standard_normal((_check_int("m", m, 1), _check_int("n", n, 1)))
    transform = make[name]()
    state = transform.init(W)
    for _ in range(_check_int("steps", steps, 1)):
        _, state = transform.update(rng.standard_normal(W.shape), state, W)
    return _count_floats(state)


def _count_floats(tree) -> int:
    if isinstance(tree, np.ndarray):
        return int(tree.size) if tree.ndim > 0 else 0
    if isinstance(tree, Mapping):
        return sum(_count_floats(v) for v in tree.values())
    if isinstance(tree, (tuple, list)):
        return sum(_count_floats(v) for v in tree)
    return 0


QUINTIC_NEWTON_SCHULZ = (15 / 8, -10 / 8, 3 / 8)
"""The classical quintic Newton--Schulz step ``(15 s - 10 s^3 + 3 s^5) / 8``: converges to 1,
with slope 15/8 at 0."""

NS_CHOICES = {"Jordan's quintic (3.4445, −4.7750, 2.0315)": NS_COEFFICIENTS,
              "classical cubic (1.5, −0.5, 0)": CUBIC_COEFFICIENTS,
              "classical quintic (15/8, −10/8, 3/8)": QUINTIC_NEWTON_SCHULZ}
"""The coefficient presets of :func:`newton_schulz_explorer`'s menu."""


def newton_schulz_explorer(steps: int = 5, max_steps: int = 10):
    """Figure: where ``k`` Newton--Schulz steps send each normalized singular value.

    An in-page figure of kind ``scalar_map`` (:func:`optbook.figures.scalar_map_figure`):
    a menu of the coefficient sets of :data:`NS_CHOICES` (Jordan's quintic first),
    sliders for ``a``, ``b``, ``c`` and ``k`` (1 to ``max_steps``, ``steps`` first),
    a log axis of ``s`` from 1e-4 to 1 with dots at 0.001 and 0.01, Jordan's five
    steps in grey, and a readout of where the dots go, the smallest ``s`` that
    reaches 0.7 and the largest value.  The page recomputes it on every move; in
    Jupyter the kernel does (:class:`optbook.figures.scalar_map.ScalarMapExplorer`).
    """
    return scalar_map_figure(
        [(name.split(" (")[0], coefficients) for name, coefficients in NS_CHOICES.items()],
        steps=steps, max_steps=max_steps, reference=("Jordan's quintic, 5 steps (reference)",
                                                     NS_COEFFICIENTS, 5),
        title="Newton–Schulz on singular values",
        x_label="singular value s of X₀ (normalized)", y_label="singular value after k steps")


def quadratic_rerun(steps: int, seeds: Sequence[int], methods: Sequence[str]) -> dict:
    """:func:`tune` for each of ``methods`` on the axis-aligned and the rotated quadratic.

    Returns ``{"records": [tune(...) for method, basis]}``.
    """
    records = []
    for name in methods:
        for rotated in (False, True):
            records.append(tune(name, steps, seeds, rotated))
    return {"records": records}


_ALL = ("gd", "adam", "shampoo", "shampoo_f10", "shampoo_f10_eps", "shampoo_f10_graft", "soap")

RERUNS = (
    Rerun(name="05-matrix-quadratic-2000-steps", chapter="05-matrix",
          claim="The matrix quadratic at 2,000 steps (10x), every method re-tuned on its "
                "grid, seeds 0-2, axis-aligned and rotated: do the 200-step rankings last?",
          function="matrix:quadratic_rerun",
          params={"steps": 2000, "seeds": (0, 1, 2), "methods": _ALL},
          minutes=3.0),
    Rerun(name="05-matrix-quadratic-seeds-3-5", chapter="05-matrix",
          claim="The matrix quadratic at 200 steps on seeds 3-5 (other rotations and targets), "
                "every method re-tuned",
          function="matrix:quadratic_rerun",
          params={"steps": 200, "seeds": (3, 4, 5), "methods": _ALL},
          minutes=0.5),
)
"""The section's stored reruns (``make reruns RERUNS=<name>``)."""
