"""The two ideas every optimizer in this book is built from.

A *gradient transformation* is a pair of pure functions::

    init(params) -> state
    update(updates, state, params=None, **extra) -> (updates, state)

``update`` receives the gradients (or the output of the previous
transformation), returns new updates and a new state, and never mutates its
inputs. ``chain`` composes transformations left to right, so an optimizer can
be read off its definition, e.g. AdamW::

    chain(scale_by_adam(b1, b2, eps), add_decayed_weights(wd), scale_by_learning_rate(lr))

``apply_updates`` adds the final updates to the parameters (updates already
carry the minus sign of descent).

Parameters, gradients and updates are *trees*: a single array (NumPy or torch)
or a list/tuple of arrays. States are plain dicts, tuples and lists of arrays
and Python numbers, so that ``torch.optim.Optimizer.state_dict`` can store them
unchanged (see ``optbook.torch``).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Union

import array_api_compat

Tree = Any  # an array, or a list/tuple of arrays
State = Any
Schedule = Callable[[int], float]
ScalarOrSchedule = Union[float, Schedule]


class GradientTransformation(NamedTuple):
    """A pair of pure functions; see the module docstring.

    ``spec`` names the transformation and its hyper-parameters, e.g.
    ``("scale_by_adam", {"b1": 0.9, ...})``, or ``("chain", (t1, t2, ...))``.
    It changes nothing here: it lets ``optbook.torch`` recognise a chain and
    run it in place on torch tensors (``optbook.torch.fast_path``), a faster
    execution of the same update that the tests hold to the functional one.
    ``None`` (the default, e.g. for a reader's own transformation) means
    "no in-place twin": the optimizer then runs ``update`` itself.
    """

    init: Callable[[Tree], State]
    update: Callable[..., tuple]
    spec: Any = None


# --- trees -----------------------------------------------------------------

def is_leaf(tree: Tree) -> bool:
    return not isinstance(tree, (list, tuple))


def tree_map(fn: Callable, tree: Tree, *rest: Tree) -> Tree:
    """Apply ``fn`` leaf by leaf to one or more trees of the same structure."""
    if is_leaf(tree):
        return fn(tree, *rest)
    for other in rest:
        if is_leaf(other) or len(other) != len(tree):
            raise ValueError(
                f"tree structures differ: {len(tree)} leaves against "
                f"{'one array' if is_leaf(other) else len(other)}")
    return [tree_map(fn, *leaves) for leaves in zip(tree, *rest)]


def tree_leaves(tree: Tree) -> list:
    """The arrays of a tree, in order."""
    if is_leaf(tree):
        return [tree]
    return [leaf for sub in tree for leaf in tree_leaves(sub)]


def namespace(x):
    """The array-API namespace of ``x`` (numpy or torch), for sqrt, sign, ..."""
    return array_api_compat.array_namespace(x)


def zeros_like(tree: Tree) -> Tree:
    """Fresh zeros shaped like each leaf (not ``x * 0``: that would copy nan and
    -0.0, and carry a torch tensor's autograd graph into optimizer state)."""
    return tree_map(lambda x: namespace(x).zeros_like(x), tree)


def to_float(x) -> float:
    """``float(x)`` of a one-element array; a sharded torch ``DTensor`` (FSDP2) is first
    reduced over its shards (``float()`` of a pending sum reads this rank's shard alone)."""
    full = getattr(x, "full_tensor", None)
    return float(full() if full is not None else x)


def global_norm(tree: Tree):
    """sqrt of the sum of squares of every element of every leaf (a scalar)."""
    total = sum(float((leaf * leaf).sum()) for leaf in tree_leaves(tree))
    return total ** 0.5


# --- composition -----------------------------------------------------------

def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Apply ``transforms`` one after the other; the state is a tuple of theirs."""
    for i, t in enumerate(transforms):
        if not isinstance(t, GradientTransformation):
            raise TypeError(f"chain: argument {i} is {type(t).__name__}, "
                            "not a GradientTransformation")

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(updates, state, params=None, **extra):
        if len(state) != len(transforms):
            raise ValueError(f"chain: state has {len(state)} entries for "
                             f"{len(transforms)} transformations")
        new_state = []
        for t, s in zip(transforms, state):
            updates, s = t.update(updates, s, params, **extra)
            new_state.append(s)
        return updates, tuple(new_state)

    return GradientTransformation(init, update, ("chain", tuple(transforms)))


def apply_updates(params: Tree, updates: Tree) -> Tree:
    """``params + updates``, leaf by leaf (a new tree; inputs untouched)."""
    return tree_map(lambda p, u: p + u, params, updates)


def identity() -> GradientTransformation:
    return GradientTransformation(lambda params: {},
                                  lambda updates, state, params=None, **extra: (updates, state),
                                  ("identity", {}))


# --- learning rates ----------------------------------------------------------

def check_number(name: str, value, *, low=0.0, high=None, low_inclusive=True,
                 high_inclusive=False) -> float:
    """Return ``float(value)``; raise ``ValueError: Invalid <name>: <value>`` unless in range.

    The message follows torch.optim's (``Invalid learning rate: -0.1``). Using
    the returned Python float (not a NumPy scalar) keeps float32 arrays float32.
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"Invalid {name}: {value!r} (not a number)") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError(f"Invalid {name}: {value}")
    if low is not None and (v < low or (v == low and not low_inclusive)):
        raise ValueError(f"Invalid {name}: {value}")
    if high is not None and (v > high or (v == high and not high_inclusive)):
        raise ValueError(f"Invalid {name}: {value}")
    return v


def scale(factor: float) -> GradientTransformation:
    """Multiply every update by a constant ``factor``."""
    factor = check_number("factor", factor, low=None)

    def update(updates, state, params=None, **extra):
        return tree_map(lambda u: factor * u, updates), state

    return GradientTransformation(lambda params: {}, update, ("scale", {"factor": factor}))


def scale_by_learning_rate(learning_rate: ScalarOrSchedule) -> GradientTransformation:
    """updates <- -eta_t * updates, with eta_t a number or ``schedule(t)``.

    t counts the calls to ``update`` from 0, so the first step uses
    ``schedule(0)``, as ``torch.optim.lr_scheduler.LambdaLR`` does.
    """
    fixed = None if callable(learning_rate) else check_number("learning rate", learning_rate)

    def init(params):
        return {"count": 0}

    def update(updates, state, params=None, **extra):
        t = state["count"]
        # a schedule's value is checked too: a negative or nan rate must not
        # turn descent into ascent or fill the parameters with nan silently
        lr = fixed if fixed is not None else check_number(f"learning rate at step {t}",
                                                          learning_rate(t))
        return tree_map(lambda u: -lr * u, updates), {"count": t + 1}

    return GradientTransformation(init, update, ("scale_by_learning_rate",
                                                 {"learning_rate": fixed if fixed is not None else learning_rate}))
