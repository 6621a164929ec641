"""The optbook runs behind an in-page figure as it stands: what the browser
tests compare the page's drawing and readouts with."""
from __future__ import annotations

import math

from optbook import landscapes
from optbook.figures import spec as F


def landscape_of(spec: dict):
    """The landscape a spec names (a quadratic's angle is stored as cos and sin)."""
    params = dict(spec.get("params", {}))
    if spec["name"] == "quadratic":
        return landscapes.quadratic(params["kappa"], math.atan2(params["s"], params["c"]))
    return landscapes.get_landscape(spec["name"], **params)


def runs_at(spec: dict, state: dict):
    """``(landscape, runs)`` at the figure's slider ``values`` and menu ``choice``."""
    values = dict(state["values"])
    land_spec, steps = spec.get("landscape"), spec["steps"]
    if spec.get("choices"):
        choice = spec["choices"][state["choice"]]
        land_spec, steps = choice["landscape"], choice["steps"]
        values.update(choice.get("constants", {}))
    land = landscape_of(land_spec)
    return land, F.spec_runs(spec, values, land=land, steps=steps)
