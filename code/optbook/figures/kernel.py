"""The Jupyter side: an Explorer as a live ipywidgets box driven by the kernel.

After running a cell in JupyterLab, a figure shows as an ipywidgets box
(``application/vnd.jupyter.widget-view+json``): a spec'ed figure gets a
continuous slider per spec parameter (200 positions on the same scales as the
page) and redraws through the Explorer's ``draw`` with matplotlib; a
frame-per-grid-point Explorer gets a snapping slider (or a menu) per
parameter that swaps its cached frames.  The widget's model id is a hash, not
a uuid4, so re-executing a notebook does not change the stored file.
"""
from __future__ import annotations

import hashlib
import io
import itertools
from typing import Mapping

import numpy as np

from .static import release

__all__ = ["WIDGET_VIEW_MIME", "widget", "continuous_widget", "kernel_slider", "slider_values",
           "model_id"]

WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
_DISPLAY_COUNT = itertools.count()      # live widgets created in this process


def _is_numeric(value) -> bool:
    import numbers
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def widget(explorer):
    """The live ipywidgets version (sliders + image); needs a kernel to respond."""
    import ipywidgets as W

    if explorer.spec is not None:
        return continuous_widget(explorer)

    controls = {}
    for name in explorer.parameters:
        values = explorer.grid[name]
        options = [(explorer.format(name, v), v) for v in values]
        common = dict(options=options, value=explorer.defaults[name],
                      description=explorer.labels[name], style={"description_width": "initial"})
        if all(_is_numeric(v) for v in values):
            controls[name] = W.SelectionSlider(continuous_update=True, readout=True,
                                               layout=W.Layout(width="24em"), **common)
        else:
            controls[name] = W.Dropdown(**common)
    png = explorer.frame()
    width, _ = explorer._display_size(png)
    image = W.Image(value=png, format="png", width=width,
                    layout=W.Layout(max_width="100%", height="auto"))

    def redraw(change):
        image.value = explorer.frame(**{n: c.value for n, c in controls.items()})

    for control in controls.values():
        control.observe(redraw, names="value")
    box = W.VBox([W.HBox(list(controls.values()), layout=W.Layout(flex_flow="row wrap")),
                  image], model_id=model_id(explorer))
    explorer._live = box            # keep the models alive as long as the Explorer is
    return box


def model_id(explorer) -> str:
    """A comm id that is unique in this kernel yet the same on every re-execution.

    ipywidgets would draw a random uuid4; the id is stored in the notebook
    (widget-view output), so a random one would change the committed file
    on every ``make execute``.  Hash of (display count, summary) instead.
    """
    digest = hashlib.sha256(f"{next(_DISPLAY_COUNT)}\n{explorer!r}".encode()).hexdigest()
    return digest[:32]


def continuous_widget(explorer):
    """Kernel widget with a continuous slider per spec parameter; redraws via ``draw``."""
    import ipywidgets as W

    controls = {}
    for p in explorer.spec["params"]:
        controls[p["name"]] = kernel_slider(W, p)
    for name in explorer.parameters:          # stored grid values, or a landscape menu
        values = explorer.grid[name]
        if name in controls or len(values) == 1:
            continue
        common = dict(value=explorer.defaults[name], description=explorer.labels[name],
                      style={"description_width": "initial"})
        if all(_is_numeric(v) for v in values):
            controls[name] = W.SelectionSlider(
                options=[(explorer.format(name, v), v) for v in values], continuous_update=True,
                layout=W.Layout(width="24em"), **common)
        else:
            controls[name] = W.Dropdown(options=list(values), **common)
    png = explorer.frame()
    width, _ = explorer._display_size(png)
    image = W.Image(value=png, format="png", width=width,
                    layout=W.Layout(max_width="100%", height="auto"))

    def redraw(change):
        fig = explorer.figure(**{n: c.value for n, c in controls.items()})  # others: defaults
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=explorer.dpi, facecolor="white")
        release(fig)
        image.value = buffer.getvalue()

    for control in controls.values():
        control.observe(redraw, names="value")
    box = W.VBox([W.HBox(list(controls.values()), layout=W.Layout(flex_flow="row wrap")),
                  image], model_id=model_id(explorer))
    explorer._live = box
    return box


def slider_values(p: Mapping, n: int = 201) -> list[float]:
    """``n`` values across a slider's range on its scale (for the kernel widget)."""
    lo, hi = p["min"], p["max"]
    u = np.linspace(0.0, 1.0, n)
    if p["scale"] == "log":
        v = np.exp(np.log(lo) + (np.log(hi) - np.log(lo)) * u)
    elif p["scale"] == "log1m":
        v = 1 - np.exp(np.log(1 - lo) + (np.log(1 - hi) - np.log(1 - lo)) * u)
    else:
        v = lo + (hi - lo) * u
    return sorted({float(f"{x:.4g}") for x in v} | {float(p["value"])})


def kernel_slider(W, p: Mapping):
    common = dict(description=p["label"], continuous_update=True,
                  style={"description_width": "initial"}, layout=W.Layout(width="24em"))
    if p["scale"] == "int":
        return W.IntSlider(min=p["min"], max=p["max"], value=p["value"], **common)
    options = [(f"{v:.4g}", v) for v in slider_values(p)]
    return W.SelectionSlider(options=options, value=float(p["value"]), **common)

