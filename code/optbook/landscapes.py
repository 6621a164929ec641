"""Two-dimensional test functions (損失地形, loss landscapes) and optimizer paths on them.

Each landscape is a function :math:`f(x, y)` with its gradient and the
diagonal of its Hessian, written in plain arithmetic so that one definition
serves NumPy arrays (contour plots, widgets) and torch tensors (autograd
checks) alike.  Every method accepts either two arrays of any broadcastable
shapes (e.g. the output of ``np.meshgrid``)::

    X, Y = np.meshgrid(np.linspace(-3, 3, 201), np.linspace(-3, 3, 201))
    Z = land.value(X, Y)                 # shape (201, 201)
    G = land.grad(X, Y)                  # shape (201, 201, 2)

or one array of points whose last axis has length 2::

    land.value(p)                        # p.shape == (2,)  -> a 0-d array
    land.grad(p)                         # shape (2,): the optimizer's gradient

The catalogue (each constructor documents its formula, minima and window):

* :func:`quadratic` -- ill-conditioning (条件数, condition number kappa);
* :func:`rosenbrock` -- a curved, flat-bottomed valley (Rosenbrock 1960);
* :func:`beale` -- flat plateaus and steep walls (Beale 1958);
* :func:`saddle` -- a saddle point (鞍点) between two minima;
* :func:`himmelblau` -- four minima of equal value (Himmelblau 1972).

:func:`trajectory` runs a :class:`~optbook.base.GradientTransformation` on a
landscape and returns the path; it reports divergence instead of producing
NaN.  ``LANDSCAPES`` maps names to constructors for drop-down menus.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import array_api_compat
import numpy as np

from .base import GradientTransformation, apply_updates, namespace

__all__ = ["Landscape", "Trajectory", "quadratic", "rosenbrock", "beale", "saddle",
           "himmelblau", "LANDSCAPES", "get_landscape", "trajectory"]

Point = tuple[float, float]


# --- array plumbing ------------------------------------------------------------

def _is_array(a) -> bool:
    """NumPy or torch array (NumPy scalars such as ``np.float64(1)`` count as numbers)."""
    return hasattr(a, "shape") and hasattr(a, "dtype") and not isinstance(a, np.generic)


def _as_float_array(a, like=None):
    """A floating array: numbers become float64 NumPy (or ``like``'s kind); ints become floats."""
    if not _is_array(a):
        if like is not None:
            return namespace(like).asarray(a, dtype=like.dtype, device=like.device)
        return np.asarray(a, dtype=np.float64)
    if isinstance(a, np.ndarray):
        return a if np.issubdtype(a.dtype, np.floating) else a.astype(np.float64)
    if type(a).__module__.startswith("torch") and not a.is_floating_point():
        import torch
        return a.to(torch.get_default_dtype())
    return a


def _coordinates(x, y):
    """Split the ``(x, y)`` and ``(points,)`` calling forms into two broadcast arrays."""
    if y is None:
        p = _as_float_array(x)
        if p.ndim == 0 or p.shape[-1] != 2:
            raise ValueError(f"Invalid point array: shape {tuple(p.shape)}; "
                             "expected a last axis of length 2, or call f(x, y)")
        return p[..., 0], p[..., 1], namespace(p)
    if _is_array(x):
        x = _as_float_array(x)
        y = _as_float_array(y, like=x)
    else:
        y = _as_float_array(y)
        x = _as_float_array(x, like=y)
    xp = array_api_compat.array_namespace(x, y)     # refuses a NumPy/torch mixture
    x, y = xp.broadcast_arrays(x, y)
    return x, y, xp


# --- the landscape ------------------------------------------------------------------

@dataclass(frozen=True)
class Landscape:
    """A 2-D test function with everything a plot or an optimizer needs.

    Attributes:
        name: key in :data:`LANDSCAPES` (``"rosenbrock"``, ...).
        title: label for a plot, with parameters (``"quadratic (κ = 10)"``).
        formula: the function in LaTeX.
        minima: the global minimisers ``((x, y), ...)``.
        min_value: :math:`f` at the minimisers.
        saddle_points: known saddle points (may be empty).
        xlim, ylim: suggested plot window.
        x0: suggested start point for optimizer paths.
        L: largest Hessian eigenvalue over the whole plane (smoothness
            constant), or ``None`` when the curvature is unbounded.
        mu: smallest Hessian eigenvalue (strong-convexity constant), or ``None``
            when the function is not strongly convex.
        log_contours: whether values span decades so that contour levels
            should be spaced logarithmically (see :meth:`contour_levels`).
        reference: where the function comes from.
        hessian_fn: ``(x, y) -> ((hxx, hxy), (hxy, hyy))``, the full Hessian
            (``None`` if not given); Hutchinson's estimator needs the
            off-diagonal entry.
        params: the constructor's arguments as ``((name, value), ...)``, so
            that the in-page figure runtime can rebuild the same function.
    """

    name: str
    title: str
    formula: str
    value_fn: Callable = field(repr=False)
    grad_fn: Callable = field(repr=False)
    hessian_diag_fn: Callable = field(repr=False)
    minima: tuple[Point, ...]
    min_value: float
    xlim: Point
    ylim: Point
    x0: Point
    saddle_points: tuple[Point, ...] = ()
    L: Optional[float] = None
    mu: Optional[float] = None
    log_contours: bool = False
    reference: str = ""
    hessian_fn: Optional[Callable] = field(default=None, repr=False, compare=False)
    params: tuple = field(default=(), compare=False)

    def value(self, x, y=None):
        """:math:`f(x, y)`, elementwise; ``value(p)`` for points with ``p.shape[-1] == 2``."""
        x, y, _ = _coordinates(x, y)
        return self.value_fn(x, y)

    def grad(self, x, y=None):
        """:math:`(\\partial f/\\partial x, \\partial f/\\partial y)` stacked on a last axis of 2."""
        x, y, xp = _coordinates(x, y)
        gx, gy = self.grad_fn(x, y)
        return xp.stack([gx, gy], axis=-1)

    def hessian_diag(self, x, y=None):
        """:math:`(\\partial^2 f/\\partial x^2, \\partial^2 f/\\partial y^2)` on a last axis of 2."""
        x, y, xp = _coordinates(x, y)
        hxx, hyy = self.hessian_diag_fn(x, y)
        return xp.stack([hxx, hyy], axis=-1)

    def hessian(self, x, y=None):
        """The full Hessian, shape ``(..., 2, 2)``; ValueError if the landscape has none."""
        if self.hessian_fn is None:
            raise ValueError(f"Invalid landscape for hessian(): {self.name!r} defines no hessian_fn")
        x, y, xp = _coordinates(x, y)
        (hxx, hxy), (_, hyy) = self.hessian_fn(x, y)
        hxx, hxy, hyy = (0 * x + h for h in (hxx, hxy, hyy))
        return xp.stack([xp.stack([hxx, hxy], axis=-1), xp.stack([hxy, hyy], axis=-1)], axis=-2)

    def grid(self, num: int = 201):
        """``(X, Y, Z)`` NumPy arrays over the plot window, ready for ``contour``."""
        X, Y = np.meshgrid(np.linspace(*self.xlim, num), np.linspace(*self.ylim, num))
        return X, Y, self.value(X, Y)

    def contour_levels(self, num: int = 20, grid_num: int = 201) -> np.ndarray:
        """Increasing contour levels from just above ``min_value`` to the window's maximum.

        Logarithmically spaced (six decades) when :attr:`log_contours` is set,
        linearly otherwise.
        """
        span = float(np.max(self.grid(grid_num)[2])) - self.min_value
        if self.log_contours:
            return self.min_value + np.geomspace(span * 1e-6, span, num)
        return self.min_value + np.linspace(0.0, span, num + 1)[1:]


def _rotate(angle: float, u: float, v: float) -> Point:
    """The point with coordinates (u, v) along the axes rotated by ``angle``."""
    c, s = math.cos(angle), math.sin(angle)
    return (c * u - s * v, s * u + c * v)


# --- the catalogue ------------------------------------------------------------------

def quadratic(kappa: float = 10.0, angle: float = 0.0) -> Landscape:
    r"""An ill-conditioned quadratic bowl with condition number ``kappa``.

    .. math::
        f(x, y) = \tfrac12\,(u^2 + \kappa\, v^2), \qquad
        u = x\cos\theta + y\sin\theta,\quad v = -x\sin\theta + y\cos\theta,

    i.e. :math:`f = \tfrac12\,\theta^\top H \theta` with Hessian eigenvalues
    :math:`\mu = 1` (along :math:`(\cos\theta, \sin\theta)`) and :math:`L = \kappa`
    (along :math:`(-\sin\theta, \cos\theta)`).  With ``angle = 0`` this is
    :math:`\tfrac12(x^2 + \kappa y^2)`; a non-zero ``angle`` (radians) turns the
    valley diagonal, so no single coordinate is the steep one.

    Minimum: :math:`(0, 0)`, value 0.  Gradient descent with step
    :math:`\eta` multiplies the coordinate along eigenvalue :math:`\lambda` by
    :math:`1 - \eta\lambda` each step, so it converges iff :math:`\eta < 2/L` and
    at best at rate :math:`(\kappa - 1)/(\kappa + 1)`.  Window
    :math:`[-3, 3]^2`; start :math:`(u, v) = (-2.5, 1)`.
    """
    kappa = float(kappa)
    if not math.isfinite(kappa) or kappa < 1.0:
        raise ValueError(f"Invalid kappa: {kappa} (condition number must be >= 1)")
    angle = float(angle)
    if not math.isfinite(angle):
        raise ValueError(f"Invalid angle: {angle}")
    c, s = math.cos(angle), math.sin(angle)
    hxx = c * c + kappa * s * s
    hyy = s * s + kappa * c * c
    hxy = (1.0 - kappa) * c * s

    def value(x, y):
        u = c * x + s * y
        v = -s * x + c * y
        return 0.5 * (u * u + kappa * v * v)

    def grad(x, y):
        return hxx * x + hxy * y, hxy * x + hyy * y

    def hessian_diag(x, y):
        return 0 * x + hxx, 0 * y + hyy

    def hessian(x, y):
        return (hxx, hxy), (hxy, hyy)

    title = f"quadratic (κ = {kappa:g}" + (f", θ = {math.degrees(angle):g}°)" if angle else ")")
    return Landscape(
        name="quadratic", title=title,
        formula=r"\tfrac12\,(u^2 + \kappa v^2),\ (u, v) = R_{-\theta}(x, y)",
        value_fn=value, grad_fn=grad, hessian_diag_fn=hessian_diag,
        minima=((0.0, 0.0),), min_value=0.0, xlim=(-3.0, 3.0), ylim=(-3.0, 3.0),
        x0=_rotate(angle, -2.5, 1.0), L=kappa, mu=1.0, hessian_fn=hessian,
        params=(("kappa", kappa), ("c", c), ("s", s)),
        reference="Goodfellow, Bengio & Courville (2016), Deep Learning, sec. 4.3.1 and 8.2.3")


def rosenbrock(a: float = 1.0, b: float = 100.0) -> Landscape:
    r"""Rosenbrock's banana valley.

    .. math:: f(x, y) = (a - x)^2 + b\,(y - x^2)^2

    Minimum :math:`(a, a^2)`, value 0, at the end of a long curved valley
    along :math:`y = x^2` whose floor is nearly flat; gradient methods reach the
    valley quickly and then crawl.  The curvature grows without bound
    (:math:`\partial^2 f/\partial x^2 = 2 - 4b y + 12 b x^2`), so there is no
    global :math:`L`.  Window :math:`[-2, 2] \times [-1, 3]`; start
    :math:`(-1.2, 1)`, Rosenbrock's own.

    Reference: H. H. Rosenbrock (1960), "An automatic method for finding the
    greatest or least value of a function", The Computer Journal 3(3).
    """
    a, b = float(a), float(b)
    if not (math.isfinite(a) and math.isfinite(b) and b > 0):
        raise ValueError(f"Invalid rosenbrock parameters: a={a}, b={b} (need finite a, b > 0)")

    def value(x, y):
        r = y - x * x
        return (a - x) ** 2 + b * r * r

    def grad(x, y):
        r = y - x * x
        return -2.0 * (a - x) - 4.0 * b * x * r, 2.0 * b * r

    def hessian_diag(x, y):
        return 2.0 - 4.0 * b * y + 12.0 * b * x * x, 0 * y + 2.0 * b

    def hessian(x, y):
        hxx, hyy = hessian_diag(x, y)
        return (hxx, -4.0 * b * x), (-4.0 * b * x, hyy)

    return Landscape(
        name="rosenbrock", title=f"Rosenbrock (a = {a:g}, b = {b:g})",
        formula=r"(a - x)^2 + b\,(y - x^2)^2",
        value_fn=value, grad_fn=grad, hessian_diag_fn=hessian_diag,
        minima=((a, a * a),), min_value=0.0, xlim=(-2.0, 2.0), ylim=(-1.0, 3.0),
        x0=(-1.2, 1.0), log_contours=True, hessian_fn=hessian, params=(("a", a), ("b", b)),
        reference="Rosenbrock (1960), The Computer Journal 3(3):175-184")


def beale() -> Landscape:
    r"""Beale's function: flat plateaus, steep walls, a narrow valley to the minimum.

    .. math::
        f(x, y) = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2

    Minimum :math:`(3, 0.5)`, value 0.  Values range over five decades in the
    window :math:`[-4.5, 4.5]^2`; use logarithmic contour levels.  Start
    :math:`(1, 1.5)`.

    Reference: E. M. L. Beale (1958), "On an iterative method for finding a
    local minimum of a function of more than one variable", Tech. Rep. 25,
    Statistical Techniques Research Group, Princeton University.
    """

    def terms(x, y):
        return 1.5 - x + x * y, 2.25 - x + x * y * y, 2.625 - x + x * y * y * y

    def value(x, y):
        t1, t2, t3 = terms(x, y)
        return t1 * t1 + t2 * t2 + t3 * t3

    def grad(x, y):
        t1, t2, t3 = terms(x, y)
        y2 = y * y
        gx = 2.0 * (t1 * (y - 1.0) + t2 * (y2 - 1.0) + t3 * (y2 * y - 1.0))
        gy = 2.0 * x * (t1 + 2.0 * y * t2 + 3.0 * y2 * t3)
        return gx, gy

    def hessian_diag(x, y):
        _, t2, t3 = terms(x, y)
        y2 = y * y
        hxx = 2.0 * ((y - 1.0) ** 2 + (y2 - 1.0) ** 2 + (y2 * y - 1.0) ** 2)
        # d/dy of 2x(t1 + 2y t2 + 3y^2 t3), with dt1/dy = x, dt2/dy = 2xy, dt3/dy = 3xy^2
        hyy = 2.0 * x * (x + 2.0 * t2 + 4.0 * x * y2 + 6.0 * y * t3 + 9.0 * x * y2 * y2)
        return hxx, hyy

    def hessian(x, y):
        # d/dy of the x-derivative: each t_k (y^k - 1) contributes t_k k y^(k-1) + x k y^(k-1) (y^k - 1)
        t1, t2, t3 = terms(x, y)
        y2 = y * y
        hxy = (2.0 * (t1 + x * (y - 1.0)) + 2.0 * (2.0 * y * t2 + 2.0 * x * y * (y2 - 1.0))
               + 2.0 * (3.0 * y2 * t3 + 3.0 * x * y2 * (y2 * y - 1.0)))
        hxx, hyy = hessian_diag(x, y)
        return (hxx, hxy), (hxy, hyy)

    return Landscape(
        name="beale", title="Beale",
        formula=r"(1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2",
        value_fn=value, grad_fn=grad, hessian_diag_fn=hessian_diag,
        minima=((3.0, 0.5),), min_value=0.0, xlim=(-4.5, 4.5), ylim=(-4.5, 4.5),
        x0=(1.0, 1.5), log_contours=True, hessian_fn=hessian,
        reference="Beale (1958), Tech. Rep. 25, Statistical Techniques Research Group, Princeton")


def saddle() -> Landscape:
    r"""A bounded-below saddle: one saddle point between two minima.

    .. math:: f(x, y) = \tfrac12 x^2 + \tfrac14 y^4 - \tfrac12 y^2

    Gradient :math:`(x,\ y^3 - y)`; Hessian :math:`\mathrm{diag}(1,\ 3y^2 - 1)`.
    Critical points: the saddle :math:`(0, 0)` (value 0, Hessian eigenvalues
    :math:`1` and :math:`-1`) and the minima :math:`(0, \pm 1)` (value
    :math:`-1/4`).  The default start :math:`(1.5, 0)` lies on the saddle's
    stable manifold :math:`y = 0`, where :math:`\partial f/\partial y = 0`
    exactly: plain gradient descent slides into the saddle and stays there,
    while any noise in :math:`y` grows like :math:`(1 + \eta)^t` and escapes
    (pass ``noise_std`` to :func:`trajectory`).  Window :math:`[-2, 2]^2`.

    Reference: the standard example of strict saddles in R. Ge, F. Huang,
    C. Jin, Y. Yuan (2015), "Escaping from saddle points -- online stochastic
    gradient for tensor decomposition", COLT.
    """

    def value(x, y):
        y2 = y * y
        return 0.5 * x * x + 0.25 * y2 * y2 - 0.5 * y2

    def grad(x, y):
        return x, y * y * y - y

    def hessian_diag(x, y):
        return 0 * x + 1.0, 3.0 * y * y - 1.0

    def hessian(x, y):
        return (1.0, 0.0), (0.0, 3.0 * y * y - 1.0)

    return Landscape(
        name="saddle", title="saddle",
        formula=r"\tfrac12 x^2 + \tfrac14 y^4 - \tfrac12 y^2",
        value_fn=value, grad_fn=grad, hessian_diag_fn=hessian_diag,
        minima=((0.0, -1.0), (0.0, 1.0)), min_value=-0.25, saddle_points=((0.0, 0.0),),
        xlim=(-2.0, 2.0), ylim=(-2.0, 2.0), x0=(1.5, 0.0), hessian_fn=hessian,
        reference="Ge, Huang, Jin & Yuan (2015), COLT")


# The four zeros of Himmelblau's function: x solves x^4 - 22x^2 + x + 114 = 0,
# y = 11 - x^2 (polished by Newton's method to double precision).
_HIMMELBLAU_MINIMA = (
    (3.0, 2.0),
    (-2.805118086952745, 3.131312518250573),
    (-3.779310253377747, -3.283185991286169),
    (3.5844283403304917, -1.8481265269644034),
)


def himmelblau() -> Landscape:
    r"""Himmelblau's function: four global minima of value 0.

    .. math:: f(x, y) = (x^2 + y - 11)^2 + (x + y^2 - 7)^2

    Minima (both squares vanish, so :math:`x^4 - 22x^2 + x + 114 = 0`,
    :math:`y = 11 - x^2`): :math:`(3, 2)`, :math:`(-2.805118, 3.131313)`,
    :math:`(-3.779310, -3.283186)`, :math:`(3.584428, -1.848127)`.  Which one an
    optimizer finds depends on the start and the method.  Window
    :math:`[-5, 5]^2`; start :math:`(0, 0)`.

    Reference: D. M. Himmelblau (1972), Applied Nonlinear Programming, McGraw-Hill.
    """

    def value(x, y):
        a = x * x + y - 11.0
        b = x + y * y - 7.0
        return a * a + b * b

    def grad(x, y):
        a = x * x + y - 11.0
        b = x + y * y - 7.0
        return 4.0 * x * a + 2.0 * b, 2.0 * a + 4.0 * y * b

    def hessian_diag(x, y):
        return 12.0 * x * x + 4.0 * y - 42.0, 12.0 * y * y + 4.0 * x - 26.0

    def hessian(x, y):
        hxx, hyy = hessian_diag(x, y)
        return (hxx, 4.0 * x + 4.0 * y), (4.0 * x + 4.0 * y, hyy)

    return Landscape(
        name="himmelblau", title="Himmelblau",
        formula=r"(x^2 + y - 11)^2 + (x + y^2 - 7)^2",
        value_fn=value, grad_fn=grad, hessian_diag_fn=hessian_diag,
        minima=_HIMMELBLAU_MINIMA, min_value=0.0, xlim=(-5.0, 5.0), ylim=(-5.0, 5.0),
        x0=(0.0, 0.0), log_contours=True, hessian_fn=hessian,
        reference="Himmelblau (1972), Applied Nonlinear Programming, McGraw-Hill")


LANDSCAPES: dict[str, Callable[..., Landscape]] = {
    "quadratic": quadratic,
    "rosenbrock": rosenbrock,
    "beale": beale,
    "saddle": saddle,
    "himmelblau": himmelblau,
}
"""Constructor by name; every constructor has defaults, so ``LANDSCAPES[name]()`` works."""


def get_landscape(name: str, **params) -> Landscape:
    """``LANDSCAPES[name](**params)`` with a clear error for an unknown name."""
    try:
        constructor = LANDSCAPES[name]
    except (KeyError, TypeError):
        raise ValueError(f"Invalid landscape: {name!r} (choose from "
                         f"{', '.join(sorted(LANDSCAPES))})") from None
    return constructor(**params)


# --- optimizer paths -----------------------------------------------------------------

@dataclass
class Trajectory:
    """The path of an optimizer on a landscape.

    Attributes:
        path: ``(steps + 1, 2)`` float64 array; row ``t`` is the point after ``t`` steps.
        values: ``(steps + 1,)`` float64 array of :math:`f` along the path (noise-free).
        diverged: whether the run left the divergence box or became non-finite.
        diverged_at: the first step ``t`` whose point was rejected, else ``None``;
            rows ``t, t+1, ...`` repeat row ``t - 1``, the last accepted point.
    """

    path: np.ndarray
    values: np.ndarray
    diverged: bool
    diverged_at: Optional[int]

    def __array__(self, dtype=None, copy=None):
        """``np.asarray(trajectory)`` is the ``(steps + 1, 2)`` path."""
        return self.path if dtype is None else self.path.astype(dtype)

    def __len__(self) -> int:
        return len(self.path)


def _to_numpy(p) -> np.ndarray:
    if isinstance(p, np.ndarray):
        return p.astype(np.float64)
    return p.detach().cpu().double().numpy()


def trajectory(optimizer: GradientTransformation, landscape: Landscape, x0=None,
               steps: int = 100, *, noise_std: float = 0.0, seed: Optional[int] = None,
               with_hessian: bool = False, hutchinson_probes=None,
               escape_factor: float = 10.0) -> Trajectory:
    r"""Run ``optimizer`` from ``x0`` on ``landscape`` for ``steps`` steps.

    Each step computes :math:`g_t = \nabla f(\theta_t) + \sigma\,\xi_t` with
    :math:`\xi_t \sim \mathcal N(0, I_2)` (``noise_std`` :math:`= \sigma`, drawn
    from ``numpy.random.default_rng(seed)``, so NumPy and torch runs see the same
    noise), then ``updates, state = optimizer.update(g_t, state, theta_t)`` and
    :math:`\theta_{t+1} = \theta_t + \text{updates}`.  With ``with_hessian=True``
    the call also passes ``hessian=landscape.hessian_diag(theta_t)`` (exact, no
    noise) for Sophia-like methods.  With ``hutchinson_probes`` (a
    ``(steps, 2)`` array of Rademacher signs :math:`u_t \in \{-1, 1\}^2`) it
    passes Hutchinson's estimate :math:`u_t \odot (H u_t)` of the diagonal
    instead (Sophia-H; needs :meth:`Landscape.hessian`).

    ``x0`` (default ``landscape.x0``) may be a NumPy array (computed in float64)
    or a torch tensor (computed in its dtype, on its device); the path is
    returned as NumPy float64 either way.

    Divergence: a new point is rejected when it, its value or its gradient is
    not finite, or when it leaves the plot window enlarged ``escape_factor``
    times about its centre (``math.inf`` disables the box).  The run then stops
    and the remaining rows repeat the last accepted point; NumPy overflow
    warnings are suppressed inside the run.
    """
    if not isinstance(optimizer, GradientTransformation):
        raise TypeError(f"trajectory: optimizer is {type(optimizer).__name__}, "
                        "not a GradientTransformation")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"Invalid steps: {steps!r} (must be an integer >= 0)")
    noise_std = float(noise_std)
    if not math.isfinite(noise_std) or noise_std < 0:
        raise ValueError(f"Invalid noise_std: {noise_std} (must be finite and >= 0)")
    escape_factor = float(escape_factor)
    if math.isnan(escape_factor) or escape_factor < 1:
        raise ValueError(f"Invalid escape_factor: {escape_factor} (must be >= 1)")

    if x0 is None:
        x0 = landscape.x0
    if _is_array(x0) and not isinstance(x0, np.ndarray):
        theta = _as_float_array(x0.detach().clone())     # torch: keep dtype and device
    else:
        theta = np.array(x0, dtype=np.float64)
    if tuple(theta.shape) != (2,):
        raise ValueError(f"Invalid x0: shape {tuple(theta.shape)} (expected (2,))")

    centre = np.array([sum(landscape.xlim) / 2, sum(landscape.ylim) / 2])
    half_width = np.array([(landscape.xlim[1] - landscape.xlim[0]) / 2,
                           (landscape.ylim[1] - landscape.ylim[0]) / 2]) * escape_factor
    rng = np.random.default_rng(seed)
    if hutchinson_probes is not None:
        hutchinson_probes = np.asarray(hutchinson_probes, dtype=np.float64)
        if not with_hessian or hutchinson_probes.shape != (steps, 2):
            raise ValueError(f"Invalid hutchinson_probes: shape {hutchinson_probes.shape} "
                             f"(expected ({steps}, 2), with with_hessian=True)")

    def hessian_estimate(t):
        if hutchinson_probes is None:
            return landscape.hessian_diag(theta)
        H = _to_numpy(landscape.hessian(theta))
        u0, u1 = hutchinson_probes[t - 1]
        return np.array([u0 * (H[0, 0] * u0 + H[0, 1] * u1), u1 * (H[1, 0] * u0 + H[1, 1] * u1)])

    def accepted(point: np.ndarray, value: float, gradient) -> bool:
        return bool(np.all(np.isfinite(point)) and math.isfinite(value)
                    and np.all(np.abs(point - centre) <= half_width)
                    and np.all(np.isfinite(_to_numpy(gradient))))

    path = np.empty((steps + 1, 2))
    values = np.empty(steps + 1)
    diverged_at = None
    with np.errstate(all="ignore"):
        gradient = landscape.grad(theta)
        path[0], values[0] = _to_numpy(theta), float(landscape.value(theta))
        if not accepted(path[0], values[0], gradient):
            raise ValueError(f"Invalid x0: {path[0].tolist()} (not finite, or outside "
                             "the divergence box, or non-finite value/gradient there)")
        state = optimizer.init(theta)
        for t in range(1, steps + 1):
            g = gradient
            if noise_std > 0:
                noise = rng.standard_normal(2) * noise_std
                g = g + (noise if isinstance(theta, np.ndarray)
                         else namespace(theta).asarray(noise, dtype=theta.dtype,
                                                       device=theta.device))
            extra = {"hessian": hessian_estimate(t)} if with_hessian else {}
            updates, state = optimizer.update(g, state, theta, **extra)
            theta = apply_updates(theta, updates)
            gradient = landscape.grad(theta)
            point, value = _to_numpy(theta), float(landscape.value(theta))
            if not accepted(point, value, gradient):
                diverged_at = t
                path[t:], values[t:] = path[t - 1], values[t - 1]
                break
            path[t], values[t] = point, value
    return Trajectory(path=path, values=values, diverged=diverged_at is not None,
                      diverged_at=diverged_at)
