"""Interactive figures: computed in the page on the website, live in Jupyter.

The pattern (a chapter adds a figure in a few lines)
-----------------------------------------------------
An optimizer figure is one call; every numeric parameter becomes a
continuous slider::

    widgets.optimizer_explorer(
        lambda lr, beta: {"momentum": optbook.momentum(lr, beta),
                          "nesterov": optbook.nesterov(lr, beta)},
        grid={"lr": [0.01, 0.02, 0.04], "beta": [0.5, 0.9, 0.99]},  # slider ends, defaults
        defaults={"lr": 0.02, "beta": 0.9}, landscape=landscapes.quadratic(25),
        labels={"lr": "η", "beta": "β"}, title="η = {lr:g}, β = {beta:g}", steps=100)

``make(**params) -> {optimizer name: optbook optimizer}`` is traced once
(:mod:`optbook.figure_spec`) into a small JSON *spec*: the landscape, each
optimizer's update rule with its hyperparameters (numbers, or references to
sliders), and the sliders (range = the grid's smallest to largest value, or
``ranges={"lr": (1e-3, 1.0, "log")}``; η gets a log scale, β a log scale of
1 − β).  What one spec can say: every landscape of :mod:`optbook.landscapes`,
the optimizers sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw, lion
and sophia (``with_hessian=True``: the exact Hessian diagonal), learning
rates given as numbers or as schedules of :mod:`optbook.schedules`, and
gradient noise (``noise_std``, ``seed``).  Something a spec cannot say (a
value computed from a slider such as ``2 * lr``, a custom ``chain``, a mask)
makes the figure fall back to the older frame-per-grid-point twin (below).

The object returned, an :class:`Explorer`, displays three ways
(``_repr_mimebundle_``):

* ``text/html`` -- on the website: a ``<div class="optbook-figure">`` with the
  default figure as an image, one line saying how to get the live figure,
  and the spec as JSON (:func:`figure_html`).  The runtime
  ``_static/optbook-figures.js`` (sources in ``js/``, bundled by ``npm run
  build`` with esbuild, drawn with d3, loaded on every page by
  ``scripts/book_site.py``) replaces it by sliders, the paths on the
  landscape's contours, ``f - f*`` against steps, and a readout of where each
  run ended (or the step at which it diverged), recomputed on every move.  No
  server and no network.  Without scripts (or in an untrusted notebook) the
  reader sees the image and the line, never a control that does nothing.
* ``application/vnd.jupyter.widget-view+json`` -- in Jupyter after running the
  cell: an ipywidgets box whose sliders have 200 positions on the same scales;
  the kernel recomputes with optbook and redraws with matplotlib.
* ``text/plain`` -- a deterministic summary (title, controls, optimizers): what
  nbval compares.

The page's numbers are optbook's: ``tests/browser/test_figure_parity.py``
runs every update rule on every landscape, and every schedule, in chromium
against optbook in float64 (max relative difference 1e-9), and
``tests/browser/test_figures.py`` walks every control of every figure of the
built book and checks the readout against optbook.

Ready-made figures: :func:`gd_learning_rate_explorer` (chapter 1),
:func:`sgd_noise_figure` (2), :func:`momentum_figure` and
:func:`heavy_ball_phase_figure` (3), :func:`adam_betas_figure` (5.1),
:func:`schedule_figure` (6.1); of stored runs: ``experiments.warmup.warmup_figure``
(6.2), ``experiments.lr_finder.range_test_explorer`` (7.2) and
``experiments.debugging.symptom_explorer`` (7.5).  A
figure the catalogue does not cover (another kind of panel) is a new ``kind``
in ``js/src/index.js`` plus a function here that writes its spec; see
:func:`heavy_ball_phase_figure` and ``js/src/phase.js``.

Figures of training runs: stored data, drawn in the page
---------------------------------------------------------
Training cannot run in a page, so its results are stored in the page as
numbers (4 significant digits; NaN/inf as null, read as "diverged") and drawn
by the same runtime (:mod:`optbook.stored_figures`, ``js/src/runs.js`` and
``js/src/heatmap.js``).  Two kinds, each one call:

* :func:`curves_figure` (kind ``runs``): a grid of named axes -- numeric values
  make a slider that snaps to them (value shown with its symbol,
  aria-valuetext, keyboard), names make a menu -- and, for the selected grid
  point, panels of curves: several series, each seed thin and the seeds' mean
  thick, reference series in grey, marks (lines, points, bands).  Hovering a
  panel (or focusing it and pressing the arrow keys) reads the stored value of
  every series and seed at the nearest x; the readout list gives each
  series' final value as mean (min–max) over seeds, or "seed i diverged at
  step k" (``Panel(readout="min")``: the lowest point of the seeds' mean, for
  curves against a swept rate)::

      widgets.curves_figure(
          lambda lr, clip: {"adam": losses[lr, clip, "adam"], "sgd": losses[lr, clip, "sgd"]},
          axes=[widgets.Axis("lr", "η", [1e-3, 3e-3, 1e-2, 3e-2, 1e-1]), widgets.Axis("clip", "clipping", ["off", "on"])],
          panels=[widgets.Panel("training loss", x=eval_steps, ylabel="loss", yscale="log")],
          title="Adam and SGD over η, with and without clipping")

  (``losses[...]`` is an array of shape (seeds, len(eval_steps)).)
* :func:`heatmap_figure` (kind ``heatmap``): panels over two numeric axes
  sharing one colour scale, each cell the mean over seeds, the best cell of
  each panel outlined; hover or keyboard focus reads a cell's coordinates,
  mean, min–max and every seed; with ``curves=`` a click (or Enter) draws the
  selected cell's stored curves::

      widgets.heatmap_figure({"Adam + L2": l2, "AdamW": adamw},        # (seeds, n_wd, n_lr)
                             x=("lr", "η", lrs), y=("wd", "λ", wds), title="...",
                             curves={"Adam + L2": l2_curves, "AdamW": adamw_curves},  # (..., n)
                             curves_x=eval_steps)

Without scripts the reader sees the default view as an image (drawn with
matplotlib from the same stored numbers, or by ``draw=``) and the one line;
in Jupyter after running, the kernel widget has a snapping slider or a menu
per axis.  Keep a chapter page under 400 KB (``tests/browser/test_figures.py``
checks it): about 7 bytes per stored number.

The frame-per-grid-point twin (any ``draw`` function)
-----------------------------------------------------
``Explorer(draw, grid, defaults, labels=..., title=...)`` around a pure
``draw(**params) -> matplotlib Figure`` renders one PNG per grid point and a
slider per parameter that swaps them (a ``<select>`` for non-numeric values);
keep the grid small (``max_frames``).  Prefer a stored-runs figure (above)
for anything the page cannot compute: it stores numbers, not pictures.

In a notebook, make the figure the last expression of its cell (no trailing
``;``: under nbval a ``;`` does not silence output, see nbval issue 194).
Notebooks are executed with ``store_widget_state=False``
(``scripts/execute_notebooks.py``): stored widget state would make MyST-NB
load the ipywidgets JavaScript from a CDN, and the live widget needs a kernel
anyway.  Everything is reproducible: the HTML is the same bytes for the same
figure (PNG bytes differ across machines; the nbval sanitizer replaces them),
and the live widget's model id is a hash, not a uuid4.
"""
from __future__ import annotations

import base64
import hashlib
import html
import io
import itertools
import json
import math
import numbers
from functools import lru_cache
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from . import plotting
from .base import GradientTransformation, scale_by_learning_rate
# figures of stored runs (their own module; here so a chapter needs one import)
from .stored_figures import Axis, Curve, Mark, Panel, Series, curves_figure, heatmap_figure

__all__ = ["Explorer", "WIDGET_VIEW_MIME", "optimizer_runs", "draw_runs", "optimizer_explorer",
           "gd_learning_rate_runs", "gd_regime", "gd_learning_rate_explorer", "figure_html",
           "spec_figure", "heavy_ball_phase_figure", "adam_betas_figure", "momentum_figure",
           "sgd_noise_figure", "schedule_figure", "curves_figure",
           "heatmap_figure", "Axis", "Panel", "Series", "Mark", "Curve"]

WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
_DISPLAY_COUNT = itertools.count()      # live widgets created in this process
CSS_CLASS = "optbook-widget"


def _is_numeric(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _default_format(value) -> str:
    if _is_numeric(value):
        return f"{value:.4g}"
    return str(value)


# --- the static twin: HTML, CSS and script -------------------------------------------

_CSS = (
    ".optbook-widget{margin:1em 0}"
    ".optbook-widget-controls{display:flex;flex-wrap:wrap;gap:.3em 1.6em;align-items:center;"
    "margin:0 0 .4em 0;font-size:.9em}"
    ".optbook-widget-control{display:flex;align-items:center;gap:.5em;margin:0}"
    ".optbook-widget-value{font-family:monospace;min-width:4.5em}"
    ".optbook-widget-frame{display:block;max-width:100%;height:auto}"
)

# Initialises every static twin on the page that is not initialised yet (so one
# copy per widget is harmless).  The frame index is the mixed-radix number of the
# controls' positions, first parameter most significant -- the order of
# itertools.product over the grid, which is the order of the frames in the JSON.
# The JSON holds null at the default index: that frame is the <img> itself.
_SCRIPT = """(function () {
  var each = function (list, fn) { Array.prototype.forEach.call(list, fn); };
  each(document.querySelectorAll(".optbook-widget:not([data-optbook-ready])"), function (root) {
    var img = root.querySelector("img.optbook-widget-frame");
    var data = root.querySelector("script.optbook-widget-frames");
    if (!img || !data) { return; }
    root.setAttribute("data-optbook-ready", "");
    var frames = JSON.parse(data.textContent);
    var shown = parseInt(img.getAttribute("data-optbook-index"), 10);
    frames[shown] = {src: img.getAttribute("src"), alt: img.getAttribute("alt"),
                     width: img.getAttribute("width"), height: img.getAttribute("height")};
    var controls = root.querySelectorAll("[data-optbook-param]");
    function update() {
      var index = 0;
      each(controls, function (control) {
        var position = control.tagName === "SELECT" ? control.selectedIndex
                                                    : parseInt(control.value, 10);
        var labels = JSON.parse(control.getAttribute("data-optbook-labels"));
        index = index * labels.length + position;
        control.setAttribute("aria-valuetext", labels[position]);
        var output = control.parentNode.querySelector("output");
        if (output) { output.textContent = labels[position]; }
      });
      if (index !== shown && frames[index]) {
        var frame = frames[index];
        img.setAttribute("width", frame.width);
        img.setAttribute("height", frame.height);
        img.setAttribute("alt", frame.alt);
        img.setAttribute("src", frame.src);
        img.setAttribute("data-optbook-index", String(index));
        shown = index;
      }
    }
    each(controls, function (control) {
      control.addEventListener("input", update);
      control.addEventListener("change", update);
    });
    update();
  });
})();"""


class Explorer:
    """A figure that depends on a few parameters, shown live and as a static twin.

    Args:
        draw: pure function ``draw(**params) -> matplotlib.figure.Figure``.
        grid: ``{name: values}``, the values each parameter can take, in slider
            order.  Names must be Python identifiers (they are ``draw``'s
            keywords).  At most ``max_frames`` combinations.
        defaults: the values selected first; a parameter not given starts at
            its first value.  Each default must be one of the grid's values.
        labels: how to show each name (``{"lr": "η"}``); default: the name.
        formats: per-parameter format strings for the values
            (``{"lr": "{:.3f}"}``); default ``"{:.4g}"`` for numbers.
        title: one line naming the widget (text/plain, image alt text).
        dpi: resolution of the rendered frames (shown at 96 CSS pixels per
            inch of figure, so 120 is a little sharper than the screen).
        colors: palette size of the PNG frames (``None``: full colour).
        max_frames: refuse grids with more combinations than this.
        spec: the in-page figure's spec (:mod:`optbook.figure_spec`): then the
            HTML is the live figure the page computes, with continuous
            controls, and the kernel widget has continuous sliders too.

    The compute work happens in ``draw``; :meth:`frame` caches the PNG of each
    grid point, so the live widget reuses the frames rendered for the twin.
    """

    def __init__(self, draw: Callable[..., Any], grid: Mapping[str, Sequence],
                 defaults: Optional[Mapping[str, Any]] = None, *,
                 labels: Optional[Mapping[str, str]] = None,
                 formats: Optional[Mapping[str, str]] = None,
                 title: str = "", dpi: float = 120, colors: Optional[int] = 64,
                 max_frames: int = 40, spec: Optional[dict] = None):
        if not callable(draw):
            raise ValueError(f"Invalid draw: {draw!r} (expected a function returning a Figure)")
        if not isinstance(grid, Mapping) or not grid:
            raise ValueError(f"Invalid grid: {grid!r} (expected a non-empty dict name -> values)")
        self.draw = draw
        self.grid: dict[str, tuple] = {}
        for name, values in grid.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"Invalid grid parameter name: {name!r} (use an identifier)")
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) and \
                    not isinstance(values, np.ndarray):
                raise ValueError(f"Invalid grid for {name!r}: {values!r} (expected a list)")
            values = tuple(v.item() if isinstance(v, np.generic) else v for v in values)
            if not values:
                raise ValueError(f"Invalid grid for {name!r}: no values")
            try:
                distinct = len(set(values))
            except TypeError:
                raise ValueError(f"Invalid grid for {name!r}: {values!r} (values must be "
                                 "numbers or strings)") from None
            if distinct != len(values):
                raise ValueError(f"Invalid grid for {name!r}: repeated values {values}")
            if any(_is_numeric(v) and not math.isfinite(v) for v in values):
                raise ValueError(f"Invalid grid for {name!r}: non-finite value in {values}")
            self.grid[name] = values
        self.formats = {}
        for name, fmt in (formats or {}).items():
            self._check_known(name, "formats")
            self.formats[name] = fmt
        for name, values in self.grid.items():
            shown = [self.format(name, v) for v in values]
            if len(set(shown)) != len(shown):
                raise ValueError(f"Invalid grid for {name!r}: values {shown} look alike; "
                                 "pass formats={name: '{:.6g}'} or drop one")
        self.labels = {name: name for name in self.grid}
        for name, text in (labels or {}).items():
            self._check_known(name, "labels")
            self.labels[name] = str(text)
        self.defaults = {name: values[0] for name, values in self.grid.items()}
        for name, value in (defaults or {}).items():
            self._check_known(name, "defaults")
            self.defaults[name] = self._grid_value(name, value, "default")
        n_frames = math.prod(len(v) for v in self.grid.values())
        if n_frames > max_frames:
            raise ValueError(f"Invalid grid: {n_frames} frames > max_frames={max_frames} "
                             "(every combination becomes an image; use fewer values)")
        if not (isinstance(dpi, numbers.Real) and 10 <= dpi <= 400):
            raise ValueError(f"Invalid dpi: {dpi!r} (expected a number in [10, 400])")
        if colors is not None and not (isinstance(colors, int) and 2 <= colors <= 256):
            raise ValueError(f"Invalid colors: {colors!r} (expected None or an int in [2, 256])")
        self.title = str(title)
        self.dpi = dpi
        self.colors = colors
        self._frames: dict[tuple, bytes] = {}
        self._live = None
        self.spec = spec

    # -- grid bookkeeping ------------------------------------------------------------

    def _check_known(self, name, what):
        if name not in self.grid:
            raise ValueError(f"Invalid {what} key: {name!r} (grid parameters are "
                             f"{', '.join(self.grid)})")

    def _grid_value(self, name, value, what="value"):
        """``value`` as it appears in the grid; ValueError if it is not there."""
        for v in self.grid[name]:
            if v == value or (_is_numeric(v) and _is_numeric(value)
                              and math.isclose(v, value, rel_tol=1e-12, abs_tol=1e-15)):
                return v
        raise ValueError(f"Invalid {what} for {name!r}: {value!r} (choose from "
                         f"{', '.join(self.format(name, v) for v in self.grid[name])})")

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(self.grid)

    def format(self, name: str, value) -> str:
        """The text shown for ``value`` of parameter ``name``."""
        fmt = self.formats.get(name)
        return fmt.format(value) if fmt else _default_format(value)

    def points(self) -> list[dict]:
        """Every parameter combination, in frame order (last parameter fastest)."""
        names = self.parameters
        return [dict(zip(names, combo)) for combo in itertools.product(*self.grid.values())]

    def index(self, **params) -> int:
        """Position of the frame for ``params`` (missing ones take their default)."""
        key = self._key(params)
        index = 0
        for name, value in zip(self.parameters, key):
            index = index * len(self.grid[name]) + self.grid[name].index(value)
        return index

    def _key(self, params) -> tuple:
        for name in params:
            self._check_known(name, "parameter")
        full = {**self.defaults, **params}
        return tuple(self._grid_value(name, full[name]) for name in self.parameters)

    # -- rendering ---------------------------------------------------------------------

    def figure(self, **params):
        """``draw(**params)`` with defaults filled in (any values, not only the grid's)."""
        for name in params:
            self._check_known(name, "parameter")
        with plotting.style_context():
            return self.draw(**{**self.defaults, **params})

    def frame(self, **params) -> bytes:
        """The PNG of a grid point (cached), drawn in the book's style."""
        key = self._key(params)
        if key not in self._frames:
            buffer = io.BytesIO()
            with plotting.style_context():      # the same look with or without use_style()
                fig = self.draw(**dict(zip(self.parameters, key)))
                if not hasattr(fig, "savefig"):
                    raise ValueError(f"Invalid draw: returned {type(fig).__name__}, "
                                     "not a matplotlib Figure")
                # No "Software" entry: the PNG must not change with matplotlib's version.
                fig.savefig(buffer, format="png", dpi=self.dpi, facecolor="white",
                            metadata={"Software": None})
            _release(fig)
            self._frames[key] = _quantize(buffer.getvalue(), self.colors)
        return self._frames[key]

    def _display_size(self, png: bytes) -> tuple[int, int]:
        """CSS pixels: 96 per inch of figure, whatever the rendering dpi."""
        width, height = _png_size(png)
        return round(width * 96 / self.dpi), round(height * 96 / self.dpi)

    def _alt(self, params) -> str:
        shown = ", ".join(f"{self.labels[n]} = {self.format(n, v)}" for n, v in params.items())
        return f"{self.title}: {shown}" if self.title else shown

    def static_html(self) -> str:
        """The kernel-free twin: sliders, value labels, the default frame as an
        ``<img>``, the other frames as JSON, and the script that swaps them.

        With a ``spec``: the in-page figure instead (:func:`figure_html`)."""
        if self.spec is not None:
            return figure_html(self.spec, self.frame(), self._display_size(self.frame()),
                               self._alt(self.defaults))
        esc = html.escape
        default_index = self.index()
        parts = [f'<div class="{CSS_CLASS}">', f"<style>{_CSS}</style>",
                 '<div class="optbook-widget-controls">']
        for name in self.parameters:
            values = self.grid[name]
            shown = [self.format(name, v) for v in values]
            position = values.index(self.defaults[name])
            data = (f'data-optbook-param="{esc(name)}" '
                    f'data-optbook-labels="{esc(json.dumps(shown, ensure_ascii=False))}"')
            if all(_is_numeric(v) for v in values):
                output = f'<output class="optbook-widget-value">{esc(shown[position])}</output>'
                control = (f'<input type="range" min="0" max="{len(values) - 1}" step="1" '
                           f'value="{position}" autocomplete="off" {data} '
                           f'aria-label="{esc(self.labels[name])}" '
                           f'aria-valuetext="{esc(shown[position])}">')
            else:
                options = "".join(f'<option value="{k}"{" selected" if k == position else ""}>'
                                  f"{esc(s)}</option>" for k, s in enumerate(shown))
                control = (f'<select autocomplete="off" {data} '
                           f'aria-label="{esc(self.labels[name])}">{options}</select>')
                output = ""                 # a menu shows its value itself
            parts.append(f'<label class="optbook-widget-control">'
                         f'<span class="optbook-widget-name">{esc(self.labels[name])}</span>'
                         f"{control}{output}</label>")
        parts.append("</div>")
        # The default frame is a plain <img>; the others wait in a JSON block that
        # only the script reads.  Where scripts do not run (an untrusted notebook in
        # JupyterLab, a feed reader) the reader sees one figure, not a stack of them.
        others = []
        for k, params in enumerate(self.points()):
            png = self.frame(**params)
            width, height = self._display_size(png)
            src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
            if k == default_index:
                parts.append(f'<img class="optbook-widget-frame" data-optbook-index="{k}" '
                             f'width="{width}" height="{height}" '
                             f'alt="{esc(self._alt(params))}" src="{src}">')
                others.append(None)
            else:
                others.append({"src": src, "alt": self._alt(params), "width": str(width),
                               "height": str(height)})
        # "<" as \u003c: the JSON can never close its <script> element early
        frames_json = json.dumps(others, ensure_ascii=False).replace("<", "\\u003c")
        parts.append(f'<script type="application/json" class="optbook-widget-frames">'
                     f"{frames_json}</script>")
        parts.append(f"<script>{_SCRIPT}</script></div>")
        return "\n".join(parts)

    def widget(self):
        """The live ipywidgets version (sliders + image); needs a kernel to respond."""
        import ipywidgets as W

        if self.spec is not None:
            return self._continuous_widget()

        controls = {}
        for name in self.parameters:
            values = self.grid[name]
            options = [(self.format(name, v), v) for v in values]
            common = dict(options=options, value=self.defaults[name],
                          description=self.labels[name], style={"description_width": "initial"})
            if all(_is_numeric(v) for v in values):
                controls[name] = W.SelectionSlider(continuous_update=True, readout=True,
                                                   layout=W.Layout(width="24em"), **common)
            else:
                controls[name] = W.Dropdown(**common)
        png = self.frame()
        width, _ = self._display_size(png)
        image = W.Image(value=png, format="png", width=width,
                        layout=W.Layout(max_width="100%", height="auto"))

        def redraw(change):
            image.value = self.frame(**{n: c.value for n, c in controls.items()})

        for control in controls.values():
            control.observe(redraw, names="value")
        box = W.VBox([W.HBox(list(controls.values()), layout=W.Layout(flex_flow="row wrap")),
                      image], model_id=self._model_id())
        self._live = box            # keep the models alive as long as the Explorer is
        return box

    def _model_id(self) -> str:
        """A comm id that is unique in this kernel yet the same on every re-execution.

        ipywidgets would draw a random uuid4; the id is stored in the notebook
        (widget-view output), so a random one would change the committed file
        on every ``make execute``.  Hash of (display count, summary) instead.
        """
        digest = hashlib.sha256(f"{next(_DISPLAY_COUNT)}\n{self!r}".encode()).hexdigest()
        return digest[:32]

    def _continuous_widget(self):
        """Kernel widget with a continuous slider per spec parameter; redraws via ``draw``."""
        import ipywidgets as W

        controls = {}
        for p in self.spec["params"]:
            controls[p["name"]] = _kernel_slider(W, p)
        for name in self.parameters:          # stored grid values, or a landscape menu
            values = self.grid[name]
            if name in controls or len(values) == 1:
                continue
            common = dict(value=self.defaults[name], description=self.labels[name],
                          style={"description_width": "initial"})
            if all(_is_numeric(v) for v in values):
                controls[name] = W.SelectionSlider(
                    options=[(self.format(name, v), v) for v in values], continuous_update=True,
                    layout=W.Layout(width="24em"), **common)
            else:
                controls[name] = W.Dropdown(options=list(values), **common)
        png = self.frame()
        width, _ = self._display_size(png)
        image = W.Image(value=png, format="png", width=width,
                        layout=W.Layout(max_width="100%", height="auto"))

        def redraw(change):
            fig = self.figure(**{n: c.value for n, c in controls.items()})  # others: defaults
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=self.dpi, facecolor="white")
            _release(fig)
            image.value = buffer.getvalue()

        for control in controls.values():
            control.observe(redraw, names="value")
        box = W.VBox([W.HBox(list(controls.values()), layout=W.Layout(flex_flow="row wrap")),
                      image], model_id=self._model_id())
        self._live = box
        return box

    def __repr__(self) -> str:
        if self.spec is not None:
            kind = self.spec.get("kind")
            how = ("drawn in the page from stored runs" if kind in ("runs", "heatmap")
                   else "computed in the page")
            lines = [f"Figure: {self.title}" if self.title else "Figure", f"  {how}; controls:"]
            for a in self.spec.get("axes", ()):
                lines.append(f"  {a['label']} ({a['name']}, {'slider' if a['numeric'] else 'menu'}): "
                             f"[{', '.join(a['labels'])}], default {a['labels'][a['value']]}")
            if kind == "runs":
                lines.append("  series: " + ", ".join(s["label"] for s in self.spec["series"]))
            if kind == "heatmap":
                sp = self.spec
                lines.append(f"  {sp['value']['label']} over {sp['x']['label']} "
                             f"[{', '.join(sp['x']['labels'])}] x {sp['y']['label']} "
                             f"[{', '.join(sp['y']['labels'])}]; panels: "
                             + ", ".join(p["label"] for p in sp["panels"]))
            for m in self.spec.get("menus", ()):
                shown = [o["label"] for o in m["options"]]
                lines.append(f"  {m['label']} ({m['name']}): [{', '.join(shown)}], "
                             f"default {shown[m['value']]}")
            if self.spec.get("choices"):
                lines.append(f"  {self.spec.get('choiceLabel', 'landscape')}: "
                             f"[{', '.join(c['label'] for c in self.spec['choices'])}]")
            for p in self.spec["params"]:
                lines.append(f"  {p['label']} ({p['name']}): {p['min']:.4g} to {p['max']:.4g} "
                             f"({p['scale']} scale), default {p['value']:.4g}")
            if self.spec.get("optimizers"):
                lines.append("  optimizers: " + ", ".join(o["name"] for o in self.spec["optimizers"]))
            return "\n".join(lines)
        n = math.prod(len(v) for v in self.grid.values())
        lines = [f"Explorer: {self.title}" if self.title else "Explorer",
                 f"  {n} frames; parameters:"]
        for name in self.parameters:
            shown = ", ".join(self.format(name, v) for v in self.grid[name])
            label = self.labels[name]
            who = f"{label} ({name})" if label != name else name
            lines.append(f"  {who}: [{shown}]  default {self.format(name, self.defaults[name])}")
        return "\n".join(lines)

    def _repr_mimebundle_(self, include=None, exclude=None):
        """text/plain + text/html (static twin) + the live widget view."""
        wanted = lambda mime: (include is None or mime in include) and \
            (exclude is None or mime not in exclude)
        data = {}
        if wanted("text/plain"):
            data["text/plain"] = repr(self)
        if wanted("text/html"):
            data["text/html"] = self.static_html()
        if wanted(WIDGET_VIEW_MIME):
            try:
                view = self.widget()._repr_mimebundle_()
            except ImportError:       # ipywidgets missing: the twin alone
                view = {}
            if WIDGET_VIEW_MIME in view:
                data[WIDGET_VIEW_MIME] = view[WIDGET_VIEW_MIME]
        return data


# --- the in-page figure: spec + a static image for readers without scripts -------------

FIGURE_CLASS = "optbook-figure"
NO_SCRIPT_NOTE = ("Static image of the default setting. To move the controls, "
                  "enable JavaScript (on the website) or run this cell (in Jupyter).")


def figure_html(spec: Mapping, png: bytes, size: tuple[int, int], alt: str) -> str:
    """The HTML of an in-page figure.

    ``<div class="optbook-figure">`` holding the default figure as an
    ``<img>``, one line saying how to get the live figure, and the spec as
    JSON.  The runtime (``_static/optbook-figures.js``, built from ``js/``)
    hides the image and the line and builds the controls; where it does not
    run (scripts off, an untrusted notebook) the reader sees the figure and the
    line, never a control that does nothing.  Same bytes for the same spec.
    """
    esc = html.escape
    src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    spec_json = json.dumps(spec, ensure_ascii=False, sort_keys=True,
                           separators=(",", ":")).replace("<", "\\u003c")
    return "\n".join([
        f'<div class="{FIGURE_CLASS}" data-optbook-kind="{esc(spec["kind"])}">',
        f'<img class="optbook-figure-static" width="{size[0]}" height="{size[1]}" '
        f'style="max-width:100%;height:auto" alt="{esc(alt)}" src="{src}">',
        f'<p class="optbook-figure-static optbook-figure-note"><em>{esc(NO_SCRIPT_NOTE)}</em></p>',
        f'<script type="application/json" class="optbook-figure-spec">{spec_json}</script>',
        "</div>"])


def _slider_values(p: Mapping, n: int = 201) -> list[float]:
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


def _kernel_slider(W, p: Mapping):
    common = dict(description=p["label"], continuous_update=True,
                  style={"description_width": "initial"}, layout=W.Layout(width="24em"))
    if p["scale"] == "int":
        return W.IntSlider(min=p["min"], max=p["max"], value=p["value"], **common)
    options = [(f"{v:.4g}", v) for v in _slider_values(p)]
    return W.SelectionSlider(options=options, value=float(p["value"]), **common)


def _png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from the IHDR chunk of a PNG."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("Invalid PNG data")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def _quantize(png: bytes, colors: Optional[int]) -> bytes:
    """Re-encode a PNG with a palette of ``colors`` colours (about 3x smaller).

    Figures of lines on white need few colours; no dithering keeps lines crisp.
    ``None`` leaves the PNG as matplotlib wrote it.
    """
    if colors is None:
        return png
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    image = image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT,
                           dither=Image.Dither.NONE)
    out = io.BytesIO()
    image.save(out, format="png", optimize=True)
    return out.getvalue()


def _release(fig) -> None:
    """Close ``fig`` if pyplot tracks it (a pyplot=False figure is simply dropped)."""
    import sys
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt
        plt.close(fig)              # a no-op for a figure pyplot does not know


# --- optimizer paths on a landscape ------------------------------------------------------

Runs = dict  # name -> landscapes.Trajectory


def optimizer_runs(make: Callable[..., Any], params: Mapping[str, Any], landscape, *,
                   x0=None, steps: int = 50, name: str = "sgd", **trajectory_kwargs) -> Runs:
    """Run every optimizer ``make(**params)`` returns on ``landscape``.

    ``make`` returns ``{optimizer name: GradientTransformation}`` (names pick the
    colours, :func:`optbook.plotting.color`) or a single transformation, which
    is called ``name``.  Returns ``{name: landscapes.Trajectory}``; divergence is
    reported by the trajectory, never as NaN.
    """
    from .landscapes import trajectory

    made = make(**params)
    if isinstance(made, GradientTransformation):
        made = {name: made}
    if not isinstance(made, Mapping) or not made:
        raise ValueError(f"Invalid make result: {made!r} (expected a GradientTransformation "
                         "or a dict name -> GradientTransformation)")
    for key in made:
        plotting.canonical_name(key)            # an unknown name fails here, clearly
    return {key: trajectory(opt, landscape, x0, steps, **trajectory_kwargs)
            for key, opt in made.items()}


def _loss_range(runs_list, minimum: float) -> tuple[float, float]:
    """A log-axis range holding every positive ``f - f*`` of every run."""
    values = np.concatenate([np.asarray(run.values[:run.diverged_at], dtype=float) - minimum
                             for runs in runs_list for run in runs.values()])
    positive = values[np.isfinite(values) & (values > 0)]
    if positive.size == 0:
        return 1e-3, 1.0
    high = float(positive.max())
    low = max(float(positive.min()), high * 1e-12)
    return low / 2, high * 2


def draw_runs(runs: Runs, landscape, *, title: str = "", loss_ylim=None,
              size=(9.0, 3.5), styles: Optional[Mapping[str, tuple[str, str]]] = None):
    """Paths on the contours (left) and ``f - f*`` against steps, log y (right).

    A pure function of its inputs; returns a pyplot-free Figure.  The layout
    is fixed (no constrained layout), so the axes sit at the same pixels in
    every frame of a widget and only the data move.  ``styles`` maps a run's
    key to ``(label, colour)`` for runs that are not named optimizers.
    """
    fig, (ax_path, ax_loss) = plotting.subplots(1, 2, size=size, pyplot=False, layout="none",
                                                width_ratios=[1, 1.3])
    fig.subplots_adjust(left=0.065, right=0.985, bottom=0.14, top=0.84, wspace=0.18)
    plotting.contour(ax_path, landscape)
    for key, run in runs.items():
        label, color = (styles or {}).get(key, (None, None))
        who = {"label": label, "color": color} if color else {}
        plotting.plot_path(ax_path, run, None if color else key, **who)
        plotting.loss_curve(ax_loss, run, None if color else key, minimum=landscape.min_value,
                            ylabel=r"$f(\theta_t) - f^*$", **who)
    n_steps = max(len(run.values) for run in runs.values()) - 1
    ax_loss.set_xlim(0, max(n_steps, 1))
    if loss_ylim is not None:
        ax_loss.set_ylim(*loss_ylim)
    # one row above the loss axes: never covers a curve, same place in every frame
    ax_loss.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=len(runs),
                   borderaxespad=0.2, handlelength=1.6, columnspacing=1.2)
    ax_path.set_title(landscape.title)
    if title:
        fig.suptitle(title)
    return fig


def optimizer_explorer(make: Callable[..., Any], grid: Mapping[str, Sequence], *, landscape,
                       defaults=None, labels=None, formats=None,
                       title: str | Callable[..., str] = "", x0=None, steps: int = 50,
                       name: str = "sgd", ranges: Optional[Mapping[str, Sequence]] = None,
                       headline: Optional[str] = None, **trajectory_kwargs) -> Explorer:
    """An :class:`Explorer` of optimizer paths: ``make(**params)`` -> paths + losses.

    ``title`` is a string, a format string over the parameters
    (``"η = {lr:g}"``) or a function ``title(**params) -> str``; it becomes the
    figure's headline.  The loss axis has one range for every frame, so moving
    a slider changes the curves, not the axis.  Extra keywords go to
    ``landscapes.trajectory`` (``noise_std``, ``seed``, ``with_hessian``).

    In the page the figure is recomputed by the JavaScript runtime: ``make``
    is traced once (:func:`optbook.figure_spec.trace_optimizers`) and each
    numeric parameter becomes a continuous slider over ``ranges[name] = (lo,
    hi)`` or ``(lo, hi, scale)`` (default: from the grid's smallest to its
    largest value; scale "log", "log1m" for betas, "int" or "linear", see
    :func:`optbook.figure_spec.param_spec`).  The grid's values remain the
    points of :meth:`Explorer.points` and :meth:`Explorer.runs`.  If ``make``
    cannot be traced (a derived value such as ``2 * lr``, a custom chain) the
    figure falls back to the frame-per-grid-point twin.
    """

    @lru_cache(maxsize=None)
    def runs_at(key):
        return optimizer_runs(make, dict(key), landscape, x0=x0, steps=steps, name=name,
                              **trajectory_kwargs)

    explorer = None

    @lru_cache(maxsize=1)
    def shared_ylim():
        every = [runs_at(tuple(p.items())) for p in explorer.points()]
        return _loss_range(every, landscape.min_value)

    def headline_of(params):
        if callable(title):
            return title(**params)
        return title.format(**params) if title else ""

    def draw(**params):
        runs = runs_at(tuple(params.items()))
        on_grid = all(_in_grid(explorer, n, v) for n, v in params.items())
        ylim = shared_ylim() if on_grid else None
        return draw_runs(runs, landscape, title=headline_of(params), loss_ylim=ylim)

    plain_title = title if isinstance(title, str) and "{" not in title else ""
    explorer = Explorer(draw, grid, defaults, labels=labels, formats=formats,
                        title=plain_title or f"optimizer paths on {landscape.title}")
    explorer.runs = lambda **params: runs_at(tuple({**explorer.defaults, **params}.items()))
    if headline is None and isinstance(title, str):
        headline = title
    explorer.spec = _path_spec(explorer, make, landscape, ranges, headline, x0, steps, name,
                               trajectory_kwargs)
    return explorer


def _path_spec(explorer, make, landscape, ranges, headline, x0, steps, name, trajectory_kwargs):
    """The in-page spec of an optimizer explorer, or ``None`` where a spec cannot say it.

    Checked before it is used: the spec, run back through optbook
    (:func:`optbook.figure_spec.spec_runs`), must give exactly the default
    frame's trajectories.
    """
    from . import figure_spec as F

    extra = dict(trajectory_kwargs)
    noise_std, seed = extra.pop("noise_std", 0.0), extra.pop("seed", None)
    with_hessian = extra.pop("with_hessian", False)
    escape = extra.pop("escape_factor", 10.0)
    if extra:
        return None
    numeric = [n for n in explorer.parameters if all(_is_numeric(v) for v in explorer.grid[n])]
    if len(numeric) != len(explorer.parameters):
        return None
    defaults = {n: explorer.defaults[n] for n in numeric}
    other = {n: explorer.grid[n][0] if explorer.grid[n][0] != defaults[n] else explorer.grid[n][-1]
             for n in numeric}
    try:
        optimizers = F.trace_optimizers(make, defaults, other, name)
        land_spec = F.landscape_spec(landscape)
        params = []
        for n in numeric:
            lo, hi, *scale = (ranges or {}).get(n, (min(explorer.grid[n]), max(explorer.grid[n])))
            if lo == hi:
                return None
            params.append(F.param_spec(n, explorer.labels[n], lo, hi, defaults[n],
                                       scale[0] if scale else None))
    except (F.Untraceable, ValueError):
        return None
    for opt in optimizers:
        opt["label"] = plotting.label(opt["name"])
        opt["color"] = plotting.color(opt["name"])
        if with_hessian and opt["rule"] == "sophia":
            opt["hessian"] = "exact"
        if noise_std:
            opt["sigma"] = noise_std
    spec = {"kind": "paths", "landscape": land_spec, "optimizers": optimizers, "params": params,
            "steps": int(steps), "escape": escape, "headline": headline or ""}
    if x0 is not None:
        spec["x0"] = [float(v) for v in np.asarray(x0, dtype=float)]
    if noise_std:
        spec["seed"] = seed
        spec["noise"] = _noise(seed, int(steps))
    # the spec must mean what make meant: same numbers at the default point
    expected = explorer.runs()
    got = F.spec_runs(spec, defaults, land=landscape)
    for key, run in expected.items():
        if not (np.array_equal(run.path, got[key].path) and run.diverged_at == got[key].diverged_at):
            return None
    return spec


def _noise(seed, steps: int) -> list[float]:
    """The standard normals ``landscapes.trajectory`` draws (2 a step) for ``seed``."""
    return [float(v) for v in np.random.default_rng(seed).standard_normal((steps, 2)).ravel()]


def _in_grid(explorer, name, value) -> bool:
    try:
        explorer._grid_value(name, value)
        return True
    except ValueError:
        return False


# --- the ready-made widget of chapter 1 ----------------------------------------------------

GD_RATIOS = (0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 1.0, 1.05, 1.1, 1.25)
"""Default learning rates of :func:`gd_learning_rate_explorer`, as multiples of 2/L."""


def gd_regime(lr: float, L: float) -> str:
    r"""What gradient descent does on a quadratic with largest curvature ``L``.

    Along an eigenvector with eigenvalue :math:`\lambda` one step multiplies the
    coordinate by :math:`1 - \eta\lambda`; the steepest direction decides:
    :math:`\eta < 1/L` monotone convergence, :math:`1/L < \eta < 2/L` convergence
    with alternating sign (zig-zag), :math:`\eta = 2/L` an oscillation that
    never shrinks, :math:`\eta > 2/L` divergence.
    """
    ratio = lr * L
    if math.isclose(ratio, 2.0, rel_tol=1e-9):
        return "oscillates forever (η = 2/L)"
    if ratio > 2.0:
        return "diverges (η > 2/L)"
    if ratio > 1.0 and not math.isclose(ratio, 1.0, rel_tol=1e-9):
        return "converges, zig-zagging (1/L < η < 2/L)"
    return "converges (η ≤ 1/L)"


def gd_learning_rate_runs(lr: float, kappa: float = 10.0, steps: int = 50) -> Runs:
    """Gradient descent :math:`\\theta_{t+1} = \\theta_t - \\eta \\nabla f(\\theta_t)` on
    ``landscapes.quadratic(kappa)`` from its standard start (pure; for tests)."""
    from .landscapes import quadratic

    return optimizer_runs(lambda lr: {"gd": scale_by_learning_rate(lr)}, {"lr": lr},
                          quadratic(kappa), steps=steps)


def gd_learning_rate_explorer(kappa: float = 10.0, ratios: Sequence[float] = GD_RATIOS,
                              default_ratio: float = 0.5, steps: int = 50) -> Explorer:
    """Chapter 1's widget: gradient descent with learning rate η on the
    ill-conditioned quadratic :math:`f = \\tfrac12(\\theta_1^2 + \\kappa\\theta_2^2)`,
    :math:`L = \\kappa`.

    The slider's values are ``ratios`` times :math:`2/L` (rounded to 4
    significant digits), so the grid straddles the stability limit: converges
    for :math:`\\eta < 2/L`, oscillates at it, diverges above (shown with an X
    and the step).  Each frame is titled with the regime (:func:`gd_regime`).
    """
    from .landscapes import quadratic

    land = quadratic(kappa)
    limit = 2.0 / land.L
    lrs = [float(f"{r * limit:.4g}") for r in ratios]
    default = float(f"{default_ratio * limit:.4g}")
    if default not in lrs:
        raise ValueError(f"Invalid default_ratio: {default_ratio} (not one of ratios)")

    def title(lr):
        return f"gradient descent, η = {lr:.4g}, 2/L = {limit:.4g}: {gd_regime(lr, land.L)}"

    explorer = optimizer_explorer(lambda lr: {"gd": scale_by_learning_rate(lr)}, {"lr": lrs},
                                  landscape=land, defaults={"lr": default},
                                  labels={"lr": "learning rate η"}, title=title, steps=steps,
                                  name="gd")
    explorer.title = f"gradient descent on {land.title} (L = {land.L:g}, 2/L = {limit:.4g})"
    if explorer.spec is not None:
        explorer.spec["headline"] = f"gradient descent, η = {{lr}}, 2/L = {limit:.4g}"
        # the regimes of gd_regime, for the page's headline (same 1e-9 tolerance)
        explorer.spec["regimes"] = {"param": "lr", "bands": [
            [1.0 / land.L * (1 + 1e-9), gd_regime(1.0 / land.L, land.L)],
            [limit * (1 - 1e-9), gd_regime(1.5 / land.L, land.L)],
            [limit * (1 + 1e-9), gd_regime(limit, land.L)]],
            "last": gd_regime(3.0 / land.L, land.L)}
    return explorer


# --- figures built from a spec (continuous sliders, computed in the page) -----------------

def spec_figure(spec: dict, *, title: str, landscape=None, choices=None) -> Explorer:
    """An :class:`Explorer` around an in-page ``spec`` (:mod:`optbook.figure_spec`).

    The page recomputes it with the JavaScript runtime; the PNG for readers
    without scripts and the kernel widget are drawn by optbook from the same
    spec (:func:`optbook.figure_spec.spec_runs`), so all three show the same
    numbers.  ``choices`` (``[(label, landscape, steps, constants), ...]``)
    adds a menu of landscapes, matching ``spec["choices"]``.
    """
    from . import figure_spec as F

    params = spec["params"]
    grid = {p["name"]: sorted({p["min"], p["value"], p["max"]}) for p in params}
    defaults = {p["name"]: p["value"] for p in params}
    labels = {p["name"]: p["label"] for p in params}
    if choices:
        grid = {"landscape": [c[0] for c in choices], **grid}
        defaults["landscape"] = choices[spec.get("choice", 0)][0]
        labels["landscape"] = spec.get("choiceLabel", "landscape")

    def draw(**values):
        land, steps, constants = landscape, spec["steps"], {}
        if choices:
            _, land, steps, constants = next(c for c in choices if c[0] == values["landscape"])
        numeric = {k: v for k, v in values.items() if k != "landscape"}
        runs = F.spec_runs(spec, {**numeric, **constants}, land=land, steps=steps)
        shown = ", ".join(f"{labels[k]} = {v:.3g}" for k, v in numeric.items())
        styles = {o["name"]: (o["label"], o["color"]) for o in spec["optimizers"]}
        return draw_runs(runs, land, title=shown, styles=styles)

    # The page draws these figures itself; the PNG is only the fallback for
    # readers without scripts and the printed frame, so it is kept small
    # (100 dpi, 32 colours: a third smaller than the default, same CSS size).
    explorer = Explorer(draw, grid, defaults, labels=labels, title=title, spec=spec,
                        dpi=100, colors=32)
    return explorer


def _optimizer_entry(name, rule, args, label=None, color=None, **extra):
    return {"name": name, "rule": rule, "args": args,
            "label": label or plotting.label(name), "color": color or plotting.color(name),
            **extra}


def heavy_ball_phase_figure(kappa: float = 10.0, steps: int = 80, eta_L: float = 1.0,
                            beta: float = 0.5) -> Explorer:
    r"""Chapter 3: the :math:`(\eta\lambda, \beta)` phase diagram of heavy-ball momentum.

    Along an eigenvector with eigenvalue :math:`\lambda` of a quadratic, heavy
    ball is :math:`x_{t+1} = (1 + \beta - \eta\lambda) x_t - \beta x_{t-1}`; its
    characteristic roots are complex (under-damped) for
    :math:`(1-\sqrt\beta)^2 < \eta\lambda < (1+\sqrt\beta)^2`, real
    (over-damped) otherwise, and the iteration is stable iff
    :math:`\eta\lambda < 2(1+\beta)`; Nesterov's (optbook's form) iff
    :math:`\eta\lambda < 2(1+\beta)/(1+2\beta)`.  In the page, clicking or
    dragging in the diagram sets :math:`\eta L` and :math:`\beta`; beside it,
    momentum and Nesterov run on ``quadratic(kappa)`` with
    :math:`\eta = (\eta L)/L` (the hollow marker is the flat direction,
    :math:`\eta\mu = \eta L/\kappa`).
    """
    from . import figure_spec as F
    from .landscapes import quadratic

    land = quadratic(kappa)
    lr = {"param": "eta_L", "times": 1.0 / land.L}
    spec = {
        "kind": "phase", "landscape": F.landscape_spec(land), "steps": int(steps), "escape": 10.0,
        "kappa": float(kappa),
        "params": [F.param_spec("eta_L", "η L", 0.01, 4.5, eta_L, "linear",
                                title="learning rate times the largest curvature L"),
                   F.param_spec("beta", "β", 0.01, 0.99, beta, "linear", title="momentum β")],
        "optimizers": [_optimizer_entry("momentum", "momentum", {"lr": lr, "beta": {"param": "beta"}}),
                       _optimizer_entry("nesterov", "nesterov", {"lr": lr, "beta": {"param": "beta"}})],
        "headline": f"heavy ball and Nesterov on {land.title}: η = (η L)/L, L = {land.L:g}",
    }
    return spec_figure(spec, title=f"phase diagram of heavy-ball momentum; paths on {land.title}",
                       landscape=land)


def adam_betas_figure(lr: float = 0.05, steps: int = 200, kappa: float = 50.0,
                      angle: float = 0.6) -> Explorer:
    r"""Chapter 5.1: Adam's :math:`\beta_1` and :math:`\beta_2` on a rotated
    ill-conditioned quadratic, where both visibly matter.

    Sliders: :math:`\eta` (log scale), :math:`\beta_1 \in [0, 0.995]` and
    :math:`\beta_2 \in [0.5, 0.9999]` (on a log scale of :math:`1-\beta`).
    Adam with and without bias correction at the same settings: with
    :math:`\beta_2` near 1 the uncorrected :math:`v_t` starts near 0, so the
    first steps are far larger than :math:`\eta`.
    """
    from . import figure_spec as F
    from .landscapes import quadratic

    land = quadratic(kappa, angle)
    args = {"lr": {"param": "lr"}, "b1": {"param": "b1"}, "b2": {"param": "b2"}}
    spec = {
        "kind": "paths", "landscape": F.landscape_spec(land), "steps": int(steps), "escape": 10.0,
        "params": [F.param_spec("lr", "η", 0.005, 0.5, lr, "log"),
                   F.param_spec("b1", "β₁", 0.0, 0.995, 0.9, "linear"),
                   F.param_spec("b2", "β₂", 0.5, 0.9999, 0.999, "log1m")],
        "optimizers": [_optimizer_entry("adam", "adam", args),
                       _optimizer_entry("adam_nobc", "adam", {**args, "bias_correction": False},
                                        label="Adam, no bias correction", color="#777777")],
        "headline": "Adam: η = {lr}, β₁ = {b1}, β₂ = {b2}",
    }
    return spec_figure(spec, title=f"Adam's β₁ and β₂ on {land.title}", landscape=land)


def momentum_figure(lr_scale: float = 1.0, beta: float = 0.8) -> Explorer:
    r"""Chapter 3's widget with continuous sliders: momentum and Nesterov on three
    landscapes (menu), :math:`\eta` as a multiple of each landscape's base rate
    (log scale, 0.25 to 4) and :math:`\beta \in [0.01, 0.99]` (Nesterov needs :math:`\beta > 0`).

    The landscapes, base rates and step counts are those of
    :data:`optbook.experiments.momentum.EXPLORER_LANDSCAPES`, so the numbers
    match :func:`optbook.experiments.momentum.explorer_runs`.
    """
    from . import figure_spec as F
    from .experiments.momentum import EXPLORER_LANDSCAPES

    choices = []
    for label, (make, base_lr, steps) in EXPLORER_LANDSCAPES.items():
        choices.append((label, make(), steps, {"base_lr": base_lr}))
    lr = {"param": "lr_scale", "times": "base_lr"}
    spec = {
        "kind": "paths", "steps": choices[0][2], "escape": 10.0,
        "landscape": F.landscape_spec(choices[0][1]),
        "choices": [{"label": c[0], "landscape": F.landscape_spec(c[1]), "steps": c[2],
                     "constants": c[3]} for c in choices],
        "choiceLabel": "landscape",
        "params": [F.param_spec("lr_scale", "η / base η", 0.25, 4.0, lr_scale, "log"),
                   F.param_spec("beta", "β", 0.01, 0.99, beta, "linear")],
        "optimizers": [_optimizer_entry("momentum", "momentum", {"lr": lr, "beta": {"param": "beta"}}),
                       _optimizer_entry("nesterov", "nesterov", {"lr": lr, "beta": {"param": "beta"}})],
        "headline": "η = {lr_scale} × {base_lr}, β = {beta}",
    }
    return spec_figure(spec, title="momentum and Nesterov: learning rate and momentum coefficient",
                       choices=choices)


def sgd_noise_figure(lr: float = 0.2, noise_std: float = 0.01, steps: int = 150,
                     seed: int = 0) -> Explorer:
    r"""Chapter 2's widget with continuous sliders: SGD from (1.5, 0) on the saddle
    :math:`f = x^2/2 + y^4/4 - y^2/2` with gradient noise :math:`\sigma\,\xi_t`.

    The page draws the same standard normals :math:`\xi_t` that
    ``landscapes.trajectory(..., noise_std=σ, seed=seed)`` draws (they are in
    the spec), so every slider position is the run optbook would compute.
    """
    from . import figure_spec as F
    from .landscapes import saddle

    land = saddle()
    spec = {
        "kind": "paths", "landscape": F.landscape_spec(land), "steps": int(steps), "escape": 10.0,
        "x0": [1.5, 0.0], "seed": seed, "noise": _noise(seed, int(steps)),
        "params": [F.param_spec("lr", "η", 0.01, 1.5, lr, "log"),
                   F.param_spec("noise_std", "noise σ", 0.0, 0.3, noise_std, "linear")],
        "optimizers": [_optimizer_entry("sgd", "sgd", {"lr": {"param": "lr"}}, label="SGD",
                                        sigma={"param": "noise_std"})],
        "headline": "SGD, η = {lr}, gradient noise σ = {noise_std}",
    }
    return spec_figure(spec, title="SGD with gradient noise on the saddle f = x²/2 + y⁴/4 − y²/2",
                       landscape=land)


def _cycle_color(k: int) -> str:
    """Colour ``Ck`` of the book's style (what the still image draws with)."""
    import matplotlib as mpl

    with plotting.style_context():
        return mpl.rcParams["axes.prop_cycle"].by_key()["color"][k]


def schedule_figure(shape: str = "wsd", peak: float = 0.5, warmup_frac: float = 0.0,
                    cooldown_frac: float = 0.1, steps: int = 200, cooldown: str = "linear",
                    end_frac: float = 0.0, noise: float = 1.0) -> Explorer:
    r"""Chapter 6.1: a learning-rate schedule and the exact expected loss of SGD it
    produces on the noisy quadratic model.

    Controls: the shape (constant, cosine, linear, wsd; a menu), WSD's cooldown
    shape (linear, :math:`1-\sqrt{x}`, cosine; a menu), the final rate of the
    decaying shapes (0 or 10 % of the peak; a menu), the peak rate
    :math:`\eta \in [0.05, 1.99]`, the warmup fraction in :math:`[0, 0.5]`, WSD's
    cooldown fraction in :math:`(0, 1]` (its slider starts at one step) and the
    gradient-noise scale :math:`\sigma \in [0, 2]`.
    The page recomputes :math:`\eta_t` with
    :func:`optbook.experiments.schedules.nqm_schedule`'s formulas and the loss
    with :func:`~optbook.experiments.schedules.nqm_loss`'s recursion
    :math:`m_i \leftarrow (1-\eta_t h_i)^2 m_i + \eta_t^2 h_i \sigma^2` over the
    same 20 curvatures (from 1 to 0.01), next to the constant rate with the same
    peak, warmup and noise in grey, and reads out both losses at step ``steps // 4``
    (where warmup shows) and at the end.  The kernel
    widget and the still image are :func:`~optbook.experiments.schedules.draw_nqm`.
    """
    from . import figure_spec as F
    from .experiments import schedules as S

    shapes = list(S.NQM_SHAPES)
    if shape not in shapes:
        raise ValueError(f"Invalid shape: {shape!r} (one of {', '.join(shapes)})")
    cooldowns = list(S.NQM_COOLDOWNS)
    if cooldown not in cooldowns:
        raise ValueError(f"Invalid cooldown: {cooldown!r} (one of {', '.join(cooldowns)})")
    ends = [0.0, 0.1]
    if end_frac not in ends:
        raise ValueError(f"Invalid end_frac: {end_frac!r} (0 or 0.1: the final rate as a "
                         "fraction of the peak)")
    steps = int(steps)
    # the curvatures nqm_loss uses by default: the page must use the same ones
    curvatures = S.NQM_CURVATURES
    params = [F.param_spec("peak", "peak η", 0.05, 1.99, peak, "linear",
                           title="peak learning rate η"),
              F.param_spec("warmup_frac", "warmup / T", 0.0, 0.5, warmup_frac, "linear",
                           title="warmup length as a fraction of the run"),
              F.param_spec("cooldown_frac", "cooldown / T (WSD)", 1.0 / steps, 1.0, cooldown_frac,
                           "linear", title="WSD's cooldown length as a fraction of the run"),
              F.param_spec("noise", "noise σ", 0.0, 2.0, noise, "linear",
                           title="gradient noise scale σ")]
    cooldown_labels = {"linear": "linear", "1-sqrt": "1 − √x", "cosine": "cosine"}
    spec = {
        "kind": "schedule", "steps": steps, "curvatures": [float(h) for h in curvatures],
        "noise": 1.0, "start": 1.0, "checkpoint": steps // 4,
        "choices": [{"label": s, "value": s} for s in shapes], "choice": shapes.index(shape),
        "choiceLabel": "schedule",
        "cooldowns": [{"label": cooldown_labels[c], "value": c} for c in cooldowns],
        "cooldown": cooldowns.index(cooldown),
        "ends": [{"label": "0", "value": 0.0}, {"label": "10 % of peak", "value": 0.1}],
        "end": ends.index(end_frac),
        "params": params, "refLabel": "constant η (same peak, warmup)",
        "color": _cycle_color(0),
        "etaMax": 2.05, "lossRange": [1e-4, 10.0],
    }

    def draw(shape, cooldown, end_frac, peak, warmup_frac, cooldown_frac, noise):
        return S.draw_nqm(shape, peak, warmup_frac, cooldown_frac, steps, cooldown=cooldown,
                          end_frac=end_frac, noise=noise)

    grid = {"shape": shapes, "cooldown": cooldowns, "end_frac": ends,
            **{p["name"]: sorted({p["min"], p["value"], p["max"]}) for p in params}}
    defaults = {"shape": shape, "cooldown": cooldown, "end_frac": end_frac,
                **{p["name"]: p["value"] for p in params}}
    labels = {"shape": "schedule", "cooldown": "cooldown (WSD)", "end_frac": "final η / peak",
              **{p["name"]: p["label"] for p in params}}
    return Explorer(draw, grid, defaults, labels=labels,
                    title="Schedules on the noisy quadratic", spec=spec, max_frames=2000)
