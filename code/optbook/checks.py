"""Checks that make a broken training run fail loudly, or say why it is broken (article 7.5).

* :func:`ensure_finite` -- a gradient transformation that raises on a NaN/inf gradient
  and says whether a too-large step or the model's own arithmetic is the likely cause;
* :func:`find_nonfinite` -- one forward and backward pass of a torch model with a hook
  on every module's output: names the module output where a non-finite value first
  appeared, in the forward pass or in the backward pass;
* :func:`dead_unit_fraction` -- the fraction of ReLU units that are zero on every input
  of a batch, per layer (a network whose last hidden layer is dead predicts the same
  logits for every input);
* :func:`update_to_weight_ratio` -- :math:`\\lVert\\theta_{t+1}-\\theta_t\\rVert /
  \\lVert\\theta_t\\rVert`, how much of the weights one step rewrites.

The last three need torch (imported when they are called); :func:`ensure_finite`
works on NumPy arrays and torch tensors alike.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from .base import GradientTransformation, namespace, tree_leaves

__all__ = ["ensure_finite", "NonFiniteReport", "find_nonfinite", "dead_unit_fraction",
           "update_to_weight_ratio"]

_LOCATE = ("optbook.checks.find_nonfinite(model, loss_fn) names the module output where "
           "it first appears; torch.autograd.detect_anomaly() names the operation")


def _all_finite(tree) -> bool:
    for leaf in tree_leaves(tree):
        xp = namespace(leaf)
        if not bool(xp.all(xp.isfinite(leaf))):
            return False
    return True


def _norm(tree) -> float:
    """The global norm as a Python float, scaled by each leaf's largest entry so that a
    float32 gradient near its overflow threshold still has a finite norm."""
    total = 0.0
    for leaf in tree_leaves(tree):
        xp = namespace(leaf)
        if math.prod(leaf.shape) > 0:
            top = float(xp.max(xp.abs(leaf)))
            if top > 0:
                total += top * top * float(xp.sum((leaf / top) ** 2))
    return math.sqrt(total)


def ensure_finite(growth: float = 100.0, window: int = 20) -> GradientTransformation:
    """Raise ``FloatingPointError`` naming the first gradient array holding nan/inf.

    The message also gives the likely cause, from what the transformation has seen
    of this gradient so far (its state: the number of steps and the global gradient
    norms of the last ``window + 1`` steps). Call the norm of the step just before the
    non-finite one *last*, and the median of the non-zero norms of the up to
    ``window`` steps before that one *recent*:

    * the parameters (when passed) are already non-finite: an earlier step diverged;
    * the non-finite gradient comes on the first step: no update has been made yet,
      so the rate is not the cause;
    * *last* is at least ``growth`` times *recent*: the norm shot up just before the
      NaN, as it does when the steps are too large -- lower the learning rate or clip
      gradients;
    * otherwise (an ordinary *last*): no large step preceded it, so the NaN comes from
      the forward or backward arithmetic (a ``sqrt``, ``log`` or division at 0, an
      overflowing ``exp``) or from the data, and a lower learning rate will not remove
      it;
    * only one step before it, or no step before with a non-zero norm (a tensor below
      a zero-initialised layer): this tensor's history cannot tell the two apart, and
      the message says so.

    The reference is a recent window, not the first step, because healthy training
    can grow a tensor's gradient norm a thousandfold or more from its initial value
    (a small or zero-initialised output layer); a divergence, in contrast, multiplies
    it by many orders of magnitude within a few steps before anything overflows.
    The defaults were set on the book's chapter 7 MLP (SGD + momentum): before a
    divergence at rates 1 to 10,000 the last norm was at least 1e8 times the recent
    median for the first weight matrix (the tensor that raised); before a NaN from the
    data (healthy rates, also with an output layer scaled by 0.01, 0.001 or 0, and at
    depth 8) it was at most 3 times, for every tensor. A divergence so slow
    that the norm grows by less than ``growth`` over about ``window / 2`` steps is
    reported as arithmetic or data.
    """
    if isinstance(growth, bool) or not isinstance(growth, (int, float)) or not growth > 1:
        raise ValueError(f"Invalid growth: {growth!r} (must be a number > 1)")
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"Invalid window: {window!r} (must be an int >= 1)")

    def init(params):
        return {"steps": 0, "norms": ()}

    def update(updates, state, params=None, **extra):
        for i, leaf in enumerate(tree_leaves(updates)):
            xp = namespace(leaf)
            if not bool(xp.all(xp.isfinite(leaf))):
                where = (f"non-finite gradient in parameter array {i} "
                         f"(shape {tuple(leaf.shape)})")
                raise FloatingPointError(f"{where}: {_cause(state, params, growth)}")
        norms = tuple(float(n) for n in state.get("norms", ()))
        return updates, {"steps": state.get("steps", 0) + 1,
                         "norms": (norms + (_norm(updates),))[-(window + 1):]}

    return GradientTransformation(init, update)


def _cause(state: dict, params, growth: float) -> str:
    steps = state.get("steps", 0)
    if params is not None and not _all_finite(params):
        return ("the parameters are already non-finite, so an earlier update diverged: "
                "lower the learning rate or clip gradients, and find the step where the "
                "loss first exploded")
    norms = [float(n) for n in state.get("norms", ())]
    if steps == 0 or not norms:
        return ("it appears on the first step, before any update, so the learning rate "
                "is not the cause: the forward or backward arithmetic (sqrt, log or a "
                "division at 0, an overflowing exp) or the data produced it; " + _LOCATE)
    last, earlier = norms[-1], [n for n in norms[:-1] if n > 0]
    arithmetic = ("the forward or backward arithmetic (sqrt, log or a division at 0, an "
                  "overflowing exp) or the data produced it")
    if not earlier:
        if steps == 1:
            return (f"it appears on the second step, after one update (first gradient "
                    f"norm {last:.3g}): one step is too short a history to tell a step "
                    f"too large from the arithmetic; rerun once with a much lower "
                    f"learning rate -- if the NaN stays, {arithmetic}; " + _LOCATE)
        return (f"the gradient of this tensor was 0 on every recent step (norm {last:.3g} "
                "on the step before; e.g. below a zero-initialised layer), so its history "
                "cannot tell a step too large from the arithmetic: if the loss grew "
                "before it, lower the learning rate; otherwise " + arithmetic + "; "
                + _LOCATE)
    recent = statistics.median(earlier)
    over = f"{len(earlier)} step{'s' if len(earlier) > 1 else ''}"
    if last >= growth * recent:
        return (f"the gradient norm on the step before ({last:.3g}) was {last / recent:.3g} "
                f"times the median of the {over} before it ({recent:.3g}), "
                "so the steps are too large: lower the learning rate or clip gradients")
    params_ok = "" if params is None else " and the parameters are finite"
    return (f"the step before it had an ordinary, finite gradient (norm {last:.3g}, "
            f"against a median of {recent:.3g} over the {over} before "
            f"it){params_ok}, so no large step preceded it: {arithmetic}, and a lower "
            "learning rate will not remove it; " + _LOCATE)


# --- torch: where does a non-finite value first appear? ---------------------------------

@dataclass(frozen=True)
class NonFiniteReport:
    """What :func:`find_nonfinite` found.

    ``stage`` is ``"forward"``, ``"backward"`` or ``None`` (everything finite).
    ``module`` / ``kind`` name the module (qualified name and class) whose output holds
    the first non-finite value (forward) or the first non-finite gradient (backward);
    ``after`` is, in the backward pass, the module whose output gradient was computed
    just before it and was still finite (the non-finite value was made by the backward
    of the operations between the two). ``parameters`` lists the parameters whose
    gradient is non-finite.
    """

    stage: Optional[str]
    module: Optional[str]
    kind: Optional[str]
    after: Optional[str]
    parameters: tuple
    loss: float
    message: str


def _tensors(value):
    import torch
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


def _finite(t) -> bool:
    import torch
    return not t.is_floating_point() or bool(torch.isfinite(t).all())


def find_nonfinite(model, loss_fn: Callable[[], "object"]) -> NonFiniteReport:
    """Run ``loss_fn()`` (a scalar loss computed with ``model``) and its backward pass
    with a hook on every module's output, and name where a non-finite value first appears.

    Forward: the first module (in execution order) whose output is non-finite while its
    inputs are finite; if no module's output is, but the loss is, the loss function.
    Backward: the first module output whose *gradient* is non-finite, in the order
    autograd computes them, and the module whose output gradient was computed just
    before it, still finite. The gradients are taken with ``torch.autograd.grad``, so
    the parameters' ``.grad`` are left as they were.

    What it cannot do: it sees module outputs only, so it names an interval (between
    two module outputs), not an operation inside a module's ``forward`` or in functional
    code between modules -- ``torch.autograd.detect_anomaly()`` names that operation.
    """
    import torch
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"Invalid model: {type(model).__name__} (must be a torch.nn.Module)")
    names = {m: n for n, m in model.named_modules()}
    forward_first: list = []
    backward_order: list = []
    handles = []

    def record_grad(name, kind):
        def hook(grad):
            backward_order.append((name, kind, _finite(grad)))
        return hook

    def forward_hook(module, inputs, output):
        name, kind = names[module] or "(model)", type(module).__name__
        outs = _tensors(output)
        if not all(_finite(t) for t in outs):
            inputs_finite = all(_finite(t) for t in _tensors(inputs))
            if inputs_finite and not any(ok for _, _, ok in forward_first):
                forward_first.append((name, kind, True))
            elif not forward_first:
                forward_first.append((name, kind, False))
        for t in outs:
            if t.requires_grad:
                t.register_hook(record_grad(name, kind))

    for module in names:
        handles.append(module.register_forward_hook(forward_hook))
    try:
        loss = loss_fn()
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise ValueError(f"Invalid loss_fn: returned {type(loss).__name__} "
                             f"{getattr(loss, 'shape', '')} (must return a scalar tensor)")
        loss_value = float(loss.detach())
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
    finally:
        for h in handles:
            h.remove()
    bad_params = tuple(n for (n, _), g in zip(named, grads) if g is not None and not _finite(g))
    if forward_first or not math.isfinite(loss_value):
        made_here = [event for event in forward_first if event[2]]
        if made_here:
            name, kind, _ = made_here[0]
            where = f"the output of module {name!r} ({kind}), whose inputs were finite"
        elif forward_first:
            name, kind, _ = forward_first[0]
            where = (f"the input of module {name!r} ({kind}), the first module whose "
                     "output is non-finite: the data, or code outside the modules, "
                     "brought it in")
        else:
            name = kind = None
            where = "the loss function (every module output was finite)"
        return NonFiniteReport("forward", name, kind, None, bad_params, loss_value,
                               f"forward pass: first non-finite value in {where}")
    for i, (name, kind, ok) in enumerate(backward_order):
        if not ok:
            previous = [(b, k) for b, k, fine in backward_order[:i] if fine]
            before = previous[-1][0] if previous else None
            text = (f"backward pass (loss {loss_value:.4g} finite): first non-finite "
                    f"gradient at the output of module {name!r} ({kind})")
            if previous:
                text += (f"; the gradient at the output of {before!r} ({previous[-1][1]}), "
                         "computed just before, was finite: the backward of the operations "
                         "between these two outputs produced it")
            return NonFiniteReport("backward", name, kind, before, bad_params, loss_value, text)
    if bad_params:
        return NonFiniteReport("backward", None, None, None, bad_params, loss_value,
                               "backward pass: every module output's gradient is finite, "
                               f"but the gradient of {', '.join(bad_params)} is not")
    return NonFiniteReport(None, None, None, None, (), loss_value,
                           "every value of the forward and backward pass is finite")


# --- torch: signals of a collapsed network ------------------------------------------------

def dead_unit_fraction(model, x, kinds: Optional[Sequence[type]] = None) -> dict:
    """``{module name: fraction of its units that are 0 on every input of x}`` for every
    ReLU module of ``model`` (or every module of the classes in ``kinds``), in forward order.

    A unit is an index along dimension 1 of the module's output (a feature, or a
    channel of a convolution); it is dead when its output is 0 (or negative) for every
    example and position. The model runs once, in eval mode and without gradients,
    and is put back in the mode it was in.
    """
    import torch
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"Invalid model: {type(model).__name__} (must be a torch.nn.Module)")
    kinds = tuple(kinds) if kinds is not None else (torch.nn.ReLU,)
    out: dict = {}
    handles = []

    def hook(name):
        def record(module, inputs, output):
            if output.dim() < 2:
                raise ValueError(f"Invalid x: module {name!r} returned shape "
                                 f"{tuple(output.shape)} (need a batch and a unit dimension)")
            alive = (output > 0).transpose(0, 1).reshape(output.shape[1], -1).any(dim=1)
            out[name] = float(1.0 - alive.float().mean())
        return record

    for name, module in model.named_modules():
        if isinstance(module, kinds):
            handles.append(module.register_forward_hook(hook(name)))
    if not handles:
        raise ValueError(f"Invalid model: no module of kinds {[k.__name__ for k in kinds]}")
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return out


def update_to_weight_ratio(before: Sequence, after: Sequence) -> float:
    """:math:`\\lVert\\theta_{t+1}-\\theta_t\\rVert / \\lVert\\theta_t\\rVert` over all the
    tensors together (global norms), from two snapshots of the parameters, e.g.
    ``[p.detach().clone() for p in model.parameters()]`` before and after a step."""
    import torch
    before, after = list(before), list(after)
    if len(before) != len(after):
        raise ValueError(f"Invalid after: {len(after)} tensors for {len(before)} in before")
    for i, (a, b) in enumerate(zip(before, after)):
        if tuple(a.shape) != tuple(b.shape):
            raise ValueError(f"Invalid after: tensor {i} has shape {tuple(b.shape)}, "
                             f"before has {tuple(a.shape)}")
    num = math.sqrt(sum(float(torch.sum((torch.as_tensor(b) - torch.as_tensor(a)) ** 2))
                        for a, b in zip(before, after)))
    den = math.sqrt(sum(float(torch.sum(torch.as_tensor(a) ** 2)) for a in before))
    if den == 0:
        raise ValueError("Invalid before: every parameter is 0 (the ratio is undefined)")
    return num / den
