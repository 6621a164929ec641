"""Specs of in-page figures: what the JavaScript runtime (``js/``) needs to recompute a figure.

A *spec* is a small JSON-able dict: the landscape (by name and constructor
arguments), the optimizers (update-rule name and hyperparameters, each a
number or a reference ``{"param": name}`` to a slider), the sliders (range,
scale, default, symbol) and the number of steps.  The page rebuilds the same
functions from it (``js/src/landscapes.js``, ``rules.js``, ``schedules.js``)
and redraws on every slider move; ``tests/browser/test_figure_parity.py``
checks that the page's numbers are optbook's.

:func:`trace_optimizers` reads a spec off an ordinary ``make(**params)``
function such as ``lambda lr, b1: {"adam": optbook.adam(lr, b1)}`` by calling
it once with recording stand-ins for optbook's constructors; :func:`spec_runs`
runs a spec back through optbook, which is how the figures check that the
spec means what ``make`` meant before they ship it.

The schema of every kind's spec is written once, in ``spec.schema.json``
beside this module (:data:`SCHEMA_PATH`, :func:`schema`, :func:`validate`);
the runtime (``js/src/spec.js``) checks each spec against the same file
before it mounts a figure.
"""
from __future__ import annotations

import contextlib
import inspect
import math
import numbers
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import numpy as np

from .. import landscapes as _landscapes
from .. import optimizers as _optimizers
from .. import schedules as _schedules
from ..adam import scale_by_adam
from ..base import GradientTransformation, chain, scale_by_learning_rate
from ..lion import lion as _lion
from ..sophia import sophia as _sophia

__all__ = ["RULES", "SCHEDULES", "Untraceable", "landscape_spec", "param_spec",
           "trace_optimizers", "make_optimizer", "make_schedule", "spec_runs", "SCHEMA_PATH",
           "schema", "validate"]

SCHEMA_PATH = Path(__file__).with_name("spec.schema.json")
"""The JSON schema of a figure's spec, one definition per kind (``$defs``)."""

# rule name -> optbook constructor (the learning rate is the argument "lr")
RULES: dict[str, Callable[..., GradientTransformation]] = {
    "sgd": _optimizers.sgd, "momentum": _optimizers.momentum, "nesterov": _optimizers.nesterov,
    "adagrad": _optimizers.adagrad, "rmsprop": _optimizers.rmsprop, "adam": _optimizers.adam,
    "adamw": _optimizers.adamw, "lion": _lion, "sophia": _sophia,
}
SCHEDULES: dict[str, Callable] = {
    name: getattr(_schedules, name) for name in
    ("constant", "linear_warmup", "step_decay", "cosine_annealing", "linear_decay",
     "inverse_sqrt", "warmup_cosine", "warmup_stable_decay", "one_cycle", "cosine_restarts")}


class Untraceable(ValueError):
    """``make`` does something a spec cannot say (a derived value, a custom chain, a mask)."""


def landscape_spec(land) -> dict:
    """The landscape as the runtime rebuilds it; Untraceable for one not in the catalogue."""
    if land.name not in _landscapes.LANDSCAPES or (land.name in ("quadratic", "rosenbrock")
                                                   and not land.params):
        raise Untraceable(f"landscape {land.name!r} is not one of optbook.landscapes")
    return {"name": land.name, "params": dict(land.params), "title": land.title,
            "xlim": list(land.xlim), "ylim": list(land.ylim), "x0": list(land.x0),
            "min": land.min_value, "log": land.log_contours,
            "minima": [list(m) for m in land.minima]}


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def param_spec(name: str, label: str, lo: float, hi: float, value: float,
               scale: Optional[str] = None, title: str = "") -> dict:
    """One slider: ``scale`` is "log", "log1m" (log of 1 - value, for betas), "int" or "linear".

    Default: "log1m" for a range inside (0, 1) whose label is a β (or a decay),
    "int" for integer bounds of a step count, "log" for a learning rate (η) or
    a positive range of a decade or more, else "linear".
    """
    lo, hi, value = float(lo), float(hi), float(value)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"Invalid range for {name!r}: ({lo}, {hi}) (need finite lo < hi)")
    if not lo <= value <= hi:
        raise ValueError(f"Invalid default for {name!r}: {value} (outside [{lo}, {hi}])")
    if scale is None:
        if 0 < lo and hi < 1 and ("β" in label or "decay" in name or name.startswith("b")):
            scale = "log1m"
        elif lo.is_integer() and hi.is_integer() and value.is_integer() and hi - lo >= 2 \
                and name in ("warmup", "warmup_steps", "steps", "step_size"):
            scale = "int"
        elif lo > 0 and (hi / lo >= 10 or "η" in label or name in ("lr", "learning_rate")):
            scale = "log"
        else:
            scale = "linear"
    if scale not in ("log", "log1m", "int", "linear"):
        raise ValueError(f"Invalid scale for {name!r}: {scale!r}")
    if scale == "log" and lo <= 0 or scale == "log1m" and hi >= 1:
        raise ValueError(f"Invalid range for {name!r} on a {scale} scale: ({lo}, {hi})")
    out = {"name": name, "label": label, "min": lo, "max": hi, "value": value, "scale": scale}
    if scale == "int":
        out.update(min=int(lo), max=int(hi), value=int(value))
    if title:
        out["title"] = title
    return out


# --- tracing make(**params) ---------------------------------------------------------

class _Param(float):
    """A slider's value that remembers which slider it came from."""

    def __new__(cls, value, name):
        obj = super().__new__(cls, value)
        obj.param = name
        return obj


class _Recorded(GradientTransformation):
    pass


def _encode(value, where):
    if isinstance(value, _Param):
        return {"param": value.param}
    if isinstance(value, dict) and "schedule" in value:
        return value
    if value is None or isinstance(value, (bool, str)):
        return value
    if _is_number(value):
        return float(value) if not isinstance(value, numbers.Integral) else int(value)
    raise Untraceable(f"{where}: cannot express {value!r} in a spec")


def _recorder(kind, name, fn, log):
    signature = inspect.signature(fn)

    def record(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        if kind == "schedule":
            out = {"schedule": name, "args": {k: _encode(v, f"{name}({k})")
                                              for k, v in bound.arguments.items()}}
            return _ScheduleMarker(out)
        args = {}
        for key, value in bound.arguments.items():
            if isinstance(value, _ScheduleMarker):
                value = value.spec
            key = "lr" if key == "learning_rate" else key
            if key == "mask" and value is None:
                continue
            args[key] = _encode(value, f"{name}({key})")
        marker = _Recorded(lambda params: None, lambda *a, **k: None)
        log[id(marker)] = (marker, {"rule": name, "args": args})
        return marker

    return record


class _ScheduleMarker:
    def __init__(self, spec):
        self.spec = spec

    def __call__(self, step):
        raise Untraceable("a schedule was evaluated while tracing")


@contextlib.contextmanager
def _patched(make, log):
    """Swap optbook's constructors for recorders wherever ``make`` can reach them."""
    originals = {id(fn): ("rule", name, fn) for name, fn in RULES.items()}
    originals[id(scale_by_learning_rate)] = ("rule", "sgd", scale_by_learning_rate)
    originals.update({id(fn): ("schedule", name, fn) for name, fn in SCHEDULES.items()})
    namespaces = [vars(sys.modules[m]) for m in ("optbook", "optbook.optimizers", "optbook.lion",
                                                 "optbook.sophia", "optbook.schedules")
                  if m in sys.modules]
    namespaces.append(getattr(make, "__globals__", {}))
    undo = []
    for ns in namespaces:
        for key, value in list(ns.items()):
            if id(value) in originals and value is originals[id(value)][2]:
                kind, name, fn = originals[id(value)]
                ns[key] = _recorder(kind, name, fn, log)
                undo.append((ns, key, value))
    cells = []
    for cell in getattr(make, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        if id(value) in originals and value is originals[id(value)][2]:
            kind, name, fn = originals[id(value)]
            cell.cell_contents = _recorder(kind, name, fn, log)
            cells.append((cell, value))
    try:
        yield
    finally:
        for ns, key, value in undo:
            ns[key] = value
        for cell, value in cells:
            cell.cell_contents = value


def _trace_once(make, values: Mapping[str, float], name: str) -> list[dict]:
    log: dict[int, tuple] = {}
    with _patched(make, log):
        made = make(**{k: _Param(v, k) if _is_number(v) else v for k, v in values.items()})
    if isinstance(made, GradientTransformation):
        made = {name: made}
    if not isinstance(made, Mapping) or not made:
        raise Untraceable(f"make returned {made!r}")
    out = []
    for key, opt in made.items():
        if id(opt) not in log:
            raise Untraceable(f"optimizer {key!r} is not one of optbook's named optimizers")
        out.append({"name": key, **log[id(opt)][1]})
    return out


def trace_optimizers(make: Callable[..., Any], defaults: Mapping[str, float],
                     other: Optional[Mapping[str, float]] = None, name: str = "sgd") -> list[dict]:
    """``[{name, rule, args}]`` for the optimizers ``make(**params)`` returns.

    Traced twice, at ``defaults`` and at ``other``: a hyperparameter that is
    a number in one and differs in the other was computed from a slider
    (``2 * lr``), which a spec cannot say -- Untraceable.
    """
    first = _trace_once(make, defaults, name)
    if other is not None and _trace_once(make, other, name) != first:
        raise Untraceable("a hyperparameter is computed from a slider's value")
    return first


# --- specs back into optbook ---------------------------------------------------------

def _value(arg, values):
    if isinstance(arg, dict) and "param" in arg:
        v = values[arg["param"]]
        if "times" in arg:        # a number, or the name of a per-landscape constant
            times = arg["times"]
            v = (values[times] if isinstance(times, str) else times) * v
        return int(round(v)) if arg.get("round") else v
    if isinstance(arg, dict) and "schedule" in arg:
        return make_schedule(arg, values)
    return arg


def make_schedule(spec: Mapping, values: Mapping[str, float] = {}):
    """The optbook schedule a ``{"schedule", "args"}`` spec names."""
    args = {k: _value(v, values) for k, v in spec["args"].items()}
    return SCHEDULES[spec["schedule"]](**args)


def make_optimizer(opt: Mapping, values: Mapping[str, float] = {}) -> GradientTransformation:
    """The optbook transformation a ``{rule, args}`` spec names (sliders at ``values``)."""
    args = {k: _value(v, values) for k, v in opt["args"].items()}
    lr = args.pop("lr")
    if opt["rule"] == "adam" and args.pop("bias_correction", True) is False:
        return chain(scale_by_adam(args.get("b1", 0.9), args.get("b2", 0.999),
                                   args.get("eps", 1e-8), args.get("amsgrad", False),
                                   bias_correction=False), scale_by_learning_rate(lr))
    args.pop("bias_correction", None)
    if opt["rule"] == "sgd" and set(args) <= {"weight_decay"}:
        return RULES["sgd"](lr, **args)
    return RULES[opt["rule"]](lr, **args)


def spec_runs(spec: Mapping, values: Mapping[str, float], land=None, steps=None) -> dict:
    """``{name: landscapes.Trajectory}``: the spec's optimizers run by optbook itself."""
    land = land or _landscapes.get_landscape(spec["landscape"]["name"],
                                             **_constructor_args(spec["landscape"]))
    out = {}
    for opt in spec["optimizers"]:
        kwargs = {}
        if opt.get("sigma") is not None:
            kwargs.update(noise_std=_value(opt["sigma"], values), seed=spec["seed"])
        if opt.get("hessian"):
            kwargs["with_hessian"] = True
            if opt["hessian"] == "hutchinson":
                kwargs["hutchinson_probes"] = np.asarray(spec["probes"]).reshape(-1, 2)
        out[opt["name"]] = _landscapes.trajectory(
            make_optimizer(opt, values), land, spec.get("x0"), steps or spec["steps"],
            escape_factor=spec.get("escape", 10.0), **kwargs)
    return out


def _constructor_args(landscape: Mapping) -> dict:
    params = dict(landscape.get("params", {}))
    if landscape["name"] == "quadratic":
        c, s = params.pop("c", 1.0), params.pop("s", 0.0)
        params["angle"] = math.atan2(s, c)
    return params


@lru_cache(maxsize=1)
def schema() -> dict:
    """The spec schema (``spec.schema.json``), parsed once."""
    import json
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def validate(spec: Mapping) -> None:
    """Raise ``ValueError`` naming the first place where ``spec`` breaks the schema.

    Checked against its own kind's definition, so the message points at the
    offending key rather than at "none of five kinds matched".  Needs the
    ``jsonschema`` package (a test dependency; the book never validates at run time).
    """
    import jsonschema

    full = schema()
    kind = spec.get("kind") if isinstance(spec, Mapping) else None
    if kind not in full["$defs"] or kind not in full["properties"]["kind"]["enum"]:
        raise ValueError(f"Invalid spec kind: {kind!r} (one of "
                         f"{', '.join(full['properties']['kind']['enum'])})")
    validator = jsonschema.Draft202012Validator({"$defs": full["$defs"], "$ref": f"#/$defs/{kind}"})
    errors = sorted(validator.iter_errors(dict(spec)), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        raise ValueError(f"Invalid {kind} spec at {where}: {e.message}")
