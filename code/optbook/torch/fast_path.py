"""The chains of optbook, run in place on torch tensors: the same update, fewer passes.

The functional transformations of ``optbook`` return a new tree at every
link: an AdamW step allocates and writes half a dozen model-sized arrays.
:class:`optbook.torch.ChainOptimizer` instead reads each chain's ``spec`` (the
names and hyper-parameters of its links) and, when every link has an in-place
twin below, runs those twins tensor by tensor:

* state tensors (``mu``, ``nu``, ``velocity``, ...) are updated in place, with
  the same arithmetic as the functional link (``lerp_`` for
  ``b m + (1 - b) g``, ``addcmul_`` for ``+ (1 - b) g^2``);
* the update ``u`` stays *lazy*: a short sum ``sum_i c_i x_i / d_i`` of
  tensors already in memory (the gradient, a moment, the parameter) with
  Python-number coefficients. Scaling by the learning rate or adding
  ``lambda theta`` only changes coefficients, and the sum is added to the
  parameter at the end by ``addcdiv_`` / ``add_`` / ``mul_``. Only a link
  that needs ``u`` as one array (a second moment, a sign, a norm) builds it;
* four chains that are exactly torch.optim's SGD, Adagrad, Adam and AdamW are
  handed to torch's fused multi-tensor kernels (``torch._fused_sgd_``,
  ``_fused_adagrad_``, ``_fused_adam_``, ``_fused_adamw_``, the kernels of
  ``fused=True``), which do a whole step in one pass over memory; plain
  RMSprop, which torch has no fused kernel for, goes through Adagrad's
  (:func:`_fused_rmsprop` says how);

Only the order of floating-point operations differs from the functional
chain; ``tests/test_fast_path.py`` holds every oracle setting to 1e-12 in
float64. A link without a twin (a reader's own transformation, global-norm
clipping inside a chain, a weight-decay mask, ...) makes :func:`plan` return
None and the optimizer runs the functional chain, as before.

Temporaries are allocated per tensor and dropped at once, so the extra
memory of a step is at most a few arrays the size of the largest tensor, as
in torch.optim's default (single-tensor) implementation.

A chain whose links all work element by element (momentum, RMS, Adam, Lion,
Sophia, decay, scaling) runs a large tensor in slices of :data:`CHUNK`
elements, the whole chain on one slice before the next, so that a temporary
(Lion's sign, Sophia's clipped ratio) is a slice rather than an array the
size of the largest tensor: in ``bench/optimizer_step.py`` a Lion or SophiaG
step allocates 1 MB at a time instead of 16 MB. (The slice's numbers also
stay in cache between the chain's passes; on the 2-core machine the book is
built on that did not change the step time measurably.)
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from ..adafactor import decay_at
from ..base import GradientTransformation, check_number, to_float
from .sharding import is_dtensor, laid_out_as, settle


class LazyUpdate:
    """``u = sum_i coef_i * x_i / den_i`` (``den_i`` None: no division).

    ``x_i`` may be a state tensor, the gradient or the parameter: they are
    never written through this object. ``param_coef`` collects the terms in
    the parameter itself (weight decay), applied as ``p *= 1 + c`` first.
    """

    __slots__ = ("terms", "param_coef")

    def __init__(self, grad: torch.Tensor, coef: float):
        self.terms = [(coef, grad, None)]
        self.param_coef = 0.0

    def scale(self, factor: float) -> None:
        self.terms = [(factor * c, x, d) for c, x, d in self.terms]
        self.param_coef *= factor

    def single(self, p: torch.Tensor, out: torch.Tensor | None = None):
        """``(c, x)`` with ``u = c * x``; builds x (in ``out`` if given) unless u is one plain term.

        A denominator is always a temporary of this step, so x may be built in it.
        """
        if out is None and not self.param_coef and len(self.terms) == 1 \
                and self.terms[0][2] is None:
            return self.terms[0][0], self.terms[0][1]
        terms = list(self.terms)
        if self.param_coef:
            terms.append((self.param_coef, p, None))
        c0, x0, d0 = terms[0]
        rest = terms[1:]
        if out is not None or c0 == 0.0:
            # u itself, into out (a state tensor such as momentum's first velocity)
            out = out if out is not None else torch.empty_like(x0)
            torch.div(x0, d0, out=out) if d0 is not None else out.copy_(x0)
            if c0 != 1.0:
                out.mul_(c0)
            scale = 1.0
        else:
            # u = c0 * (x0 / d0 + sum_i (c_i / c0) x_i / d_i): no pass to multiply by c0
            scale = c0
            if d0 is not None:
                out = torch.div(x0, d0, out=d0)
            elif rest and rest[0][2] is None:
                # g + lambda p in one pass, as torch.optim computes L2 weight decay
                out = torch.add(x0, rest[0][1], alpha=rest[0][0] / c0)
                rest = rest[1:]
            else:
                out = x0.clone()
        for c, x, d in rest:
            if d is None:
                out.add_(x, alpha=c / scale)
            else:
                out.addcdiv_(x, d, value=c / scale)
        self.terms, self.param_coef = [(scale, out, None)], 0.0
        return scale, out

    def add_to(self, target: torch.Tensor, p: torch.Tensor, alpha: float = 1.0) -> None:
        """``target += alpha * u`` without building u."""
        if self.param_coef:
            target.add_(p, alpha=alpha * self.param_coef)
        for c, x, d in self.terms:
            if d is None:
                target.add_(x, alpha=alpha * c)
            else:
                target.addcdiv_(x, d, value=alpha * c)

    def apply(self, p: torch.Tensor) -> None:
        """``p += u``: the decay factor first (no other term reads p), then each term."""
        if self.param_coef:
            p.mul_(1.0 + self.param_coef)
        for c, x, d in self.terms:
            if d is None:
                p.add_(x, alpha=c)
            else:
                p.addcdiv_(x, d, value=c)


# A link's planner: (hyper-parameters, its state of one tensor) -> kernel or None.
# The planner does every check and every Python-number computation (a schedule's
# rate, bias corrections) before anything is written; the kernel
# ``(u, p, state) -> new_state`` only does tensor work, in place.
Kernel = Callable[[LazyUpdate, torch.Tensor, dict], dict]
_PLANNERS: dict[str, Callable[[dict, dict], Kernel | None]] = {}


def _planner(name):
    def register(fn):
        _PLANNERS[name] = fn
        return fn
    return register


@_planner("identity")
def _plan_identity(hp, state):
    return lambda u, p, st: st


@_planner("scale")
def _plan_scale(hp, state):
    factor = hp["factor"]

    def kernel(u, p, st):
        u.scale(factor)
        return st
    return kernel


def _rate(learning_rate, t: int) -> float:
    if callable(learning_rate):
        return check_number(f"learning rate at step {t}", learning_rate(t))
    return learning_rate


@_planner("scale_by_learning_rate")
def _plan_learning_rate(hp, state):
    t = state["count"]
    lr = _rate(hp["learning_rate"], t)

    def kernel(u, p, st):
        u.scale(-lr)
        return {"count": t + 1}
    return kernel


@_planner("add_decayed_weights")
def _plan_decay(hp, state):
    if hp["mask"] is not None:
        return None  # a mask is resolved from the whole tree: the functional chain does it
    wd = hp["weight_decay"]

    def kernel(u, p, st):
        if wd != 0:
            u.param_coef += wd
        return st
    return kernel


@_planner("trace")
def _plan_trace(hp, state):
    decay, nesterov, damp = hp["decay"], hp["nesterov"], hp["dampening"]
    first = state["count"] == 0

    def kernel(u, p, st):
        v = st["velocity"]
        if first:  # v_1 = g_1
            u.single(p, out=v)
        else:
            c, x = (u.terms[0][0], u.terms[0][1]) if len(u.terms) == 1 else (None, None)
            if (not u.param_coef and c is not None and u.terms[0][2] is None
                    and c * (1 - damp) == 1.0):
                torch.add(x, v, alpha=decay, out=v)  # v = g + decay v, one pass
            else:
                v.mul_(decay)
                u.add_to(v, p, 1 - damp)
        if nesterov:
            u.terms.append((decay, v, None))  # g + decay v
        else:
            u.terms, u.param_coef = [(1.0, v, None)], 0.0
        return {"velocity": v, "count": st["count"] + 1}
    return kernel


def _local(t: torch.Tensor) -> torch.Tensor:
    """This rank's elements of ``t`` (a DTensor's local shard; ``t`` itself otherwise)."""
    return t.to_local() if is_dtensor(t) else t


def _ema_(m: torch.Tensor, g: torch.Tensor, c: float, b: float) -> None:
    """``m = b m + (1 - b) c g`` in place (one ``lerp_`` when c = 1, as the functional link)."""
    if c == 1.0:
        m.lerp_(g, 1 - b)
    else:
        m.mul_(b).add_(g, alpha=(1 - b) * c)


@_planner("scale_by_adam")
def _plan_adam(hp, state):
    b1, b2, eps, amsgrad = hp["b1"], hp["b2"], hp["eps"], hp["amsgrad"]
    t = state["count"] + 1
    c1 = 1 - b1 ** t if hp["bias_correction"] else 1.0
    s2 = math.sqrt(1 - b2 ** t) if hp["bias_correction"] else 1.0

    def kernel(u, p, st):
        c, g = u.single(p)
        mu, nu = st["mu"], st["nu"]
        _ema_(mu, g, c, b1)
        nu.mul_(b2).addcmul_(g, g, value=(1 - b2) * c * c)
        new = {"count": t, "mu": mu, "nu": nu}
        second = nu
        if amsgrad:
            torch.maximum(st["nu_max"], nu, out=st["nu_max"])
            second = new["nu_max"] = st["nu_max"]
        # (m / c1) / (sqrt(v / c2) + eps) = (s2 / c1) m / (sqrt(v) + s2 eps), s2 = sqrt(c2)
        den = torch.sqrt(second).add_(eps * s2)
        u.terms, u.param_coef = [(s2 / c1, mu, den)], 0.0
        return new
    return kernel


def _root(acc, eps, inside):
    return torch.add(acc, eps).sqrt_() if inside else torch.sqrt(acc).add_(eps)


@_planner("scale_by_adagrad")
def _plan_adagrad(hp, state):
    eps, inside = hp["eps"], hp["eps_inside_sqrt"]

    def kernel(u, p, st):
        c, g = u.single(p)
        acc = st["sum_of_squares"]
        acc.addcmul_(g, g, value=c * c)
        u.terms = [(c, g, _root(acc, eps, inside))]
        return st
    return kernel


@_planner("scale_by_rms")
def _plan_rms(hp, state):
    decay, eps, centered, inside = hp["decay"], hp["eps"], hp["centered"], hp["eps_inside_sqrt"]

    def kernel(u, p, st):
        c, g = u.single(p)
        sq = st["square_avg"]
        sq.mul_(decay).addcmul_(g, g, value=(1 - decay) * c * c)
        if centered:
            mean = st["grad_avg"]
            mean.mul_(decay).add_(g, alpha=(1 - decay) * c)
            var = torch.addcmul(sq, mean, mean, value=-1)
            den = var.add_(eps).sqrt_() if inside else var.sqrt_().add_(eps)
        else:
            den = _root(sq, eps, inside)
        u.terms = [(c, g, den)]
        return st
    return kernel


@_planner("scale_by_lion")
def _plan_lion(hp, state):
    b1, b2 = hp["b1"], hp["b2"]

    def kernel(u, p, st):
        c, g = u.single(p)
        mu = st["mu"]
        if c == 1.0:
            direction = torch.lerp(mu, g, 1 - b1).sign_()
        else:
            direction = torch.mul(mu, b1).add_(g, alpha=(1 - b1) * c).sign_()
        _ema_(mu, g, c, b2)
        u.terms, u.param_coef = [(1.0, direction, None)], 0.0
        return {"mu": mu}
    return kernel


@_planner("scale_by_sophia")
def _plan_sophia(hp, state):
    b1, rho, eps, paper = hp["b1"], hp["rho"], hp["eps"], hp["denominator"] == "paper"

    def kernel(u, p, st):
        c, g = u.single(p)
        mu, h = st["mu"], st["hessian"]
        _ema_(mu, g, c, b1)
        den = torch.mul(h, rho)
        den.clamp_(min=eps) if paper else den.add_(eps)
        # on a shard, the test reads this rank's elements alone (no collective; all() of
        # an empty shard is True, where min() would raise): each rank picks the form for
        # its own elements, and both forms give the same numbers where den > 0
        if paper or bool((_local(den) > 0).all()):
            # den > 0: sign(m) min(|m| / den, 1) = clamp(m / den, -1, 1), same roundings
            step = torch.div(mu, den, out=den).clamp_(-1.0, 1.0)
        else:  # a negative Hutchinson estimate: keep the released form literally
            step = torch.abs(mu).div_(den).clamp_(max=1.0).mul_(torch.sign(mu))
        u.terms, u.param_coef = [(1.0, step, None)], 0.0
        return {"count": st["count"] + 1, "mu": mu, "hessian": h}
    return kernel


@_planner("scale_by_trust_ratio")
def _plan_trust_ratio(hp, state):
    def kernel(u, p, st):
        c, x = u.single(p)
        # to_float: the norm of the whole tensor when p is a shard (a DTensor)
        param_norm = to_float(torch.linalg.vector_norm(p))
        update_norm = abs(c) * to_float(torch.linalg.vector_norm(x))
        if param_norm > 0 and update_norm > 0:
            u.scale(param_norm / update_norm)
        return st
    return kernel


def _rms(x: torch.Tensor) -> float:
    # numel() and to_float: the whole tensor's when x is a shard (a DTensor)
    return to_float(torch.linalg.vector_norm(x)) / math.sqrt(x.numel()) if x.numel() else 0.0


def _outer(row: torch.Tensor, col: torch.Tensor, mean_row: torch.Tensor,
           g2: torch.Tensor) -> torch.Tensor:
    """R C / mean(R), in ``g2``'s memory for plain tensors. Sharded, a one-row matrix
    defeats DTensor's in-place rules (a dimension of global size 1 is broadcast,
    never split, so no strategy keeps ``g2``'s rows sharded): the quotient is computed
    out of place and laid out as ``g2``, each rank keeping its own rows (0, 1 or more)."""
    if not is_dtensor(g2):
        return torch.mul(row, col, out=g2).div_(mean_row)
    return laid_out_as(torch.mul(row, col).div_(mean_row), g2)


@_planner("scale_by_factored_rms")
def _plan_factored_rms(hp, state):
    t = state["count"] + 1
    beta2_t = decay_at(t, hp["beta2_decay"], hp.get("beta2"))  # schedule or constant beta2
    eps1 = hp["eps1"]

    def kernel(u, p, st):
        c, g = u.single(p)
        eps = torch.finfo(g.dtype).eps if eps1 is None else eps1
        g2 = g * g
        if c * c != 1.0:
            g2.mul_(c * c)
        moments = st["moments"]
        if "variance" in moments:
            v = moments["variance"]
            v.mul_(beta2_t).add_(g2, alpha=1 - beta2_t)
            den = torch.clamp(v, min=eps * eps).sqrt_()
        else:
            row, col = moments["row"], moments["col"]
            row.mul_(beta2_t).add_(g2.mean(dim=-1, keepdim=True), alpha=1 - beta2_t)
            col.mul_(beta2_t).add_(g2.mean(dim=-2, keepdim=True), alpha=1 - beta2_t)
            # V = R C / max(mean(R), eps1), built in g2's memory (settle: when the rows are
            # sharded, mean(R) is a pending average over the ranks; make it a value first)
            mean_row = settle(row.mean(dim=-2, keepdim=True))
            den = _outer(row, col, mean_row.clamp_(min=eps), g2)
            den.clamp_(min=eps * eps).sqrt_()
        u.terms, u.param_coef = [(c, g, den)], 0.0
        return {"count": t, "moments": moments}
    return kernel


@_planner("clip_by_block_rms")
def _plan_clip_by_block_rms(hp, state):
    threshold = hp["threshold"]
    if threshold == math.inf:  # d = infinity: no clipping, and no RMS to compute
        return lambda u, p, st: st

    def kernel(u, p, st):
        c, x = u.single(p)
        u.scale(1.0 / max(1.0, abs(c) * _rms(x) / threshold))
        return st
    return kernel


@_planner("scale_by_param_block_rms")
def _plan_param_block_rms(hp, state):
    eps2 = hp["eps2"]

    def kernel(u, p, st):
        u.scale(max(eps2, _rms(p)))
        return st
    return kernel


@_planner("scale_by_relative_step")
def _plan_relative_step(hp, state):
    t = state["count"] + 1
    lr = hp["learning_rate"]
    lr = lr(t - 1) if callable(lr) else lr
    scaled = lr * t ** 0.5
    factor = 1.0 if scaled <= 1.0 else 1.0 / scaled

    def kernel(u, p, st):
        u.scale(factor)
        return {"count": t}
    return kernel


# --- plans for one tensor's whole chain -------------------------------------------

#: Elements per slice when a chain runs a tensor slice by slice (1 MiB of
#: float32): small next to a model's tensors, large enough that the Python and
#: thread start-up cost of each pass over a slice stays small (slices of 2^16
#: elements made an RMSprop step 1.5x slower here).
CHUNK = 1 << 18

# Links whose twin reads and writes each element independently of the others
# (no norm, no row or column mean): their chains may run slice by slice.
_ELEMENTWISE = frozenset({"identity", "scale", "scale_by_learning_rate", "add_decayed_weights",
                          "trace", "scale_by_adam", "scale_by_adagrad", "scale_by_rms",
                          "scale_by_lion", "scale_by_sophia"})


class ChainPlan:
    """The in-place step of one chain, for tensors whose states hold the same numbers."""

    def __init__(self, kernel: Kernel, elementwise: bool = False):
        self.kernel = kernel
        self.elementwise = elementwise

    def run(self, p: torch.Tensor, grad: torch.Tensor, grad_coef: float, state):
        """Update ``p`` and the tensors of ``state`` in place; return the new state."""
        if self.elementwise and p.numel() > CHUNK and _sliceable(p, grad, state):
            return self._run_in_slices(p, grad, grad_coef, state)
        u = LazyUpdate(grad, grad_coef)
        new = self.kernel(u, p, state)
        u.apply(p)
        return new

    def _run_in_slices(self, p, grad, grad_coef, state):
        flat_p, flat_g, n = p.view(-1), grad.view(-1), p.numel()
        whole = {}  # id of a slice view -> the state tensor it is a slice of
        new = state
        for a in range(0, n, CHUNK):
            b = min(n, a + CHUNK)
            u = LazyUpdate(flat_g[a:b], grad_coef)
            new = self.kernel(u, flat_p[a:b], _slice_tree(state, a, b, whole))
            u.apply(flat_p[a:b])
        # the last slice's state, with each slice view replaced by its whole tensor
        return _unslice_tree(new, whole)


def _tree_tensors(tree):
    if isinstance(tree, dict):
        return [t for v in tree.values() for t in _tree_tensors(v)]
    if isinstance(tree, (tuple, list)):
        return [t for v in tree for t in _tree_tensors(v)]
    return [tree] if isinstance(tree, torch.Tensor) else []


def _sliceable(p, grad, state) -> bool:
    """Every tensor flat-viewable and element-aligned with ``p`` (not a shard: a DTensor's
    flat view is not its rank's elements)."""
    return not is_dtensor(p) and all(t.shape == p.shape and t.is_contiguous() and t.dtype == p.dtype
               for t in (p, grad, *_tree_tensors(state)))


def _slice_tree(tree, a, b, whole):
    if isinstance(tree, dict):
        return {k: _slice_tree(v, a, b, whole) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(_slice_tree(v, a, b, whole) for v in tree)
    if isinstance(tree, torch.Tensor):
        view = tree.view(-1)[a:b]
        whole[id(view)] = (view, tree)  # the view is kept so that its id stays unique
        return view
    return tree


def _unslice_tree(tree, whole):
    if isinstance(tree, dict):
        return {k: _unslice_tree(v, whole) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(_unslice_tree(v, whole) for v in tree)
    if isinstance(tree, torch.Tensor):
        if id(tree) not in whole:  # a twin that allocated new state cannot run in slices
            raise AssertionError("fast path: a state tensor was replaced in a sliced run")
        return whole[id(tree)][1]
    return tree


def _links(transform: GradientTransformation):
    """The transformation itself, or a list (nested like the state) for a chain; None
    if some link has no ``spec``."""
    spec = transform.spec
    if spec is None:
        return None
    if spec[0] != "chain":
        return transform
    out = []
    for t in spec[1]:
        sub = _links(t)
        if sub is None:
            return None
        out.append(sub)
    return out


def _plan_tree(links, state):
    """The kernel of ``links`` for ``state``; None if a link has no twin."""
    if isinstance(links, GradientTransformation):
        name, hp = links.spec
        planner = _PLANNERS.get(name)
        return None if planner is None else planner(hp, state)
    if not isinstance(state, tuple) or len(state) != len(links):
        return None  # the functional chain raises its own error for this state
    kernels = []
    for sub, s in zip(links, state):
        k = _plan_tree(sub, s)
        if k is None:
            return None
        kernels.append(k)

    def kernel(u, p, st):
        return tuple(k(u, p, s) for k, s in zip(kernels, st))
    return kernel


def plan(transform: GradientTransformation, state) -> ChainPlan | None:
    """The in-place plan of one step of ``transform`` from ``state``, or None.

    Raises what the functional ``update`` would raise for an invalid number
    (e.g. a schedule's negative rate), before anything is written. A state
    that does not fit the chain gets None, so that the functional chain reports it.
    """
    links = _links(transform)
    if links is None:
        return None
    try:
        kernel = _plan_tree(links, state)
    except (KeyError, TypeError):
        return None
    if kernel is None:
        return None
    return ChainPlan(kernel, elementwise=all(t.spec[0] in _ELEMENTWISE for t in _leaves(links)))


def _leaves(links):
    return [links] if isinstance(links, GradientTransformation) else \
        [t for sub in links for t in _leaves(sub)]


# --- torch's fused kernels, for the four chains that are torch.optim's ----------

def _flat_specs(transform):
    links = _links(transform)
    if not isinstance(links, list) or any(not isinstance(t, GradientTransformation) for t in links):
        return None
    return [t.spec for t in links]


def fused_kernel(transform: GradientTransformation, state: tuple, dtype: torch.dtype):
    """A function ``(params, grads, states, maximize) -> new states`` or None.

    Recognises ``optbook.sgd``/``momentum``/``nesterov``, ``adagrad``,
    ``adam`` and ``adamw`` (the chains of the classic classes) and calls
    torch's fused CPU kernel with the same hyper-parameters; plain
    ``rmsprop`` (not centered, no momentum) goes through Adagrad's kernel.
    """
    if dtype not in (torch.float32, torch.float64):
        return None
    specs = _flat_specs(transform)
    if specs is None:
        return None
    if not isinstance(state, tuple) or len(state) != len(specs) \
            or any(not isinstance(s, dict) for s in state):
        return None  # the functional chain reports a state that does not fit
    try:
        return _match_fused(specs, state)
    except KeyError:
        return None


def _match_fused(specs, state):
    names = [name for name, _ in specs]
    hps = [hp for _, hp in specs]
    if any(n == "add_decayed_weights" and hp["mask"] is not None for n, hp in specs):
        return None
    if names[-1] != "scale_by_learning_rate":
        return None
    lr = _rate(hps[-1]["learning_rate"], state[-1]["count"])
    lr_next = state[-1]["count"] + 1
    if names in (["add_decayed_weights", "scale_by_learning_rate"],
                 ["add_decayed_weights", "trace", "scale_by_learning_rate"]):
        return _fused_sgd(hps, state, lr, lr_next)
    if names == ["add_decayed_weights", "scale_by_adagrad", "scale_by_learning_rate"]:
        if hps[1]["eps_inside_sqrt"]:
            return None
        return _fused_adagrad(hps, lr, lr_next)
    if names == ["add_decayed_weights", "scale_by_rms", "scale_by_learning_rate"]:
        rms = hps[1]
        if rms["centered"] or rms["eps_inside_sqrt"] or not 0.0 <= rms["decay"] < 1.0:
            return None
        return _fused_rmsprop(hps, lr, lr_next)
    adam_forms = {("add_decayed_weights", "scale_by_adam", "scale_by_learning_rate"): False,
                  ("scale_by_adam", "add_decayed_weights", "scale_by_learning_rate"): True}
    if tuple(names) in adam_forms:
        decoupled = adam_forms[tuple(names)]
        adam_hp, wd_hp = (hps[0], hps[1]) if decoupled else (hps[1], hps[0])
        if not adam_hp["bias_correction"]:
            return None
        return _fused_adam(adam_hp, wd_hp["weight_decay"], decoupled, state[names.index("scale_by_adam")],
                           lr, lr_next)
    return None


def _fused_sgd(hps, state, lr, lr_next):
    wd = hps[0]["weight_decay"]
    momentum = len(hps) == 3
    trace = hps[1] if momentum else {"decay": 0.0, "dampening": 0.0, "nesterov": False}
    first = momentum and state[1]["count"] == 0

    def run(params, grads, states, maximize):
        buffers = [s[1]["velocity"] for s in states] if momentum else []
        torch._fused_sgd_(params, grads, buffers, weight_decay=wd, momentum=trace["decay"], lr=lr,
                          dampening=trace["dampening"], nesterov=trace["nesterov"],
                          maximize=maximize, is_first_step=first)
        if momentum:
            return [(s[0], {"velocity": s[1]["velocity"], "count": s[1]["count"] + 1},
                     {"count": lr_next}) for s in states]
        return [(s[0], {"count": lr_next}) for s in states]
    return run


def _fused_adagrad(hps, lr, lr_next):
    wd, eps = hps[0]["weight_decay"], hps[1]["eps"]

    def run(params, grads, states, maximize):
        steps = [torch.ones((), dtype=torch.float32)] * len(params)  # lr_decay 0: step unused
        torch._fused_adagrad_(params, grads, [s[1]["sum_of_squares"] for s in states], steps,
                              lr=lr, lr_decay=0.0, weight_decay=wd, eps=eps, maximize=maximize)
        return [(s[0], s[1], {"count": lr_next}) for s in states]
    return run


def _fused_rmsprop(hps, lr, lr_next):
    """RMSprop through Adagrad's fused kernel (torch has no fused RMSprop).

    With ``s = sqrt(1 - decay)``: scale the average by ``decay`` and let the
    kernel add the square of ``s g``, which is ``(1 - decay) g^2``; its step
    ``(lr / s) (s g) / (sqrt(v) + eps)`` is RMSprop's, and its L2 term
    ``(lambda s) theta`` is ``s`` times RMSprop's. Three passes over memory
    (scale v, scale g into a temporary, the kernel) instead of five.
    """
    wd, decay, eps = hps[0]["weight_decay"], hps[1]["decay"], hps[1]["eps"]
    s = math.sqrt(1.0 - decay)

    def run(params, grads, states, maximize):
        step = torch.ones((), dtype=torch.float32)  # lr_decay 0: step unused
        for p, g, st in zip(params, grads, states):
            average = st[1]["square_avg"]
            average.mul_(decay)
            torch._fused_adagrad_([p], [torch.mul(g, s)], [average], [step], lr=lr / s,
                                  lr_decay=0.0, weight_decay=wd * s, eps=eps, maximize=maximize)
        return [(st[0], st[1], {"count": lr_next}) for st in states]
    return run


def _fused_adam(hp, wd, decoupled, adam_state, lr, lr_next):
    t = adam_state["count"] + 1
    amsgrad = hp["amsgrad"]
    position = 0 if decoupled else 1

    def run(params, grads, states, maximize):
        links = [s[position] for s in states]
        steps = [torch.full((), float(t), dtype=torch.float32)] * len(params)
        kernel = torch._fused_adamw_ if decoupled else torch._fused_adam_
        kernel(params, grads, [s["mu"] for s in links], [s["nu"] for s in links],
               [s["nu_max"] for s in links] if amsgrad else [], steps, amsgrad=amsgrad,
               lr=lr, beta1=hp["b1"], beta2=hp["b2"], weight_decay=wd, eps=hp["eps"],
               maximize=maximize)
        out = []
        for s, link in zip(states, links):
            new = list(s)
            new[position] = {**link, "count": t}
            new[2] = {"count": lr_next}
            out.append(tuple(new))
        return out
    return run


_PLAIN = (int, float, bool, str, type(None))


def numbers_of(state) -> tuple:
    """The Python numbers and keys of a state tree: tensors sharing them share one plan.

    Exact type checks first: ``isinstance(x, torch.Tensor)`` is slow enough to
    show in a 49-tensor step.
    """
    kind = type(state)
    if kind is dict:
        return tuple((k, numbers_of(v)) for k, v in state.items())
    if kind is tuple or kind is list:
        return (kind.__name__,) + tuple(numbers_of(v) for v in state)
    if kind in _PLAIN:
        return (kind.__name__, state)
    if isinstance(state, torch.Tensor):
        return ("T",)
    try:
        hash(state)
    except TypeError:
        return ("object", id(state))  # unhashable: a bucket of its own
    return (kind.__name__, state)
