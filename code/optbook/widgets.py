"""Widgets that work twice: live in Jupyter, and as a static twin in the HTML book.

The pattern (every chapter follows this recipe)
-----------------------------------------------
1. **A pure draw function** ``draw(**params) -> matplotlib.figure.Figure``,
   built on a pure compute function that tests call without any front end
   (e.g. :func:`optimizer_runs` -> :func:`draw_runs`).  Build the figure with
   ``plotting.subplots(..., pyplot=False)``; fix axis limits so that frames
   are comparable when the reader flips between them.
2. **A grid** of parameter values, ``{"lr": [...], "beta": [...]}``: the
   values a reader can choose.  Keep the product small (<= ~30 frames; the
   hard limit is ``max_frames``): every point is rendered once, as a PNG.
3. **One object**, :class:`Explorer`, that displays as both::

       widgets.Explorer(draw, grid={"lr": [0.01, 0.1, 1.0]}, defaults={"lr": 0.1},
                        labels={"lr": "η"}, title="...")

   Its ``_repr_mimebundle_`` returns

   * ``application/vnd.jupyter.widget-view+json`` -- an ipywidgets VBox of
     sliders (a ``SelectionSlider`` per numeric parameter, a ``Dropdown`` for
     others) and an ``Image``; moving a slider redraws through the kernel.
     JupyterLab picks this one.
   * ``text/html`` -- the *static twin*: an ``<input type="range">`` (or a
     ``<select>`` for non-numeric values) per parameter with an ``<output>``
     showing the value, the default frame as an ``<img>``, the other frames
     as PNG data URIs in a ``<script type="application/json">`` block, and
     ~40 lines of inline JavaScript that swap the selected frame into the
     ``<img>``.  No kernel, no third-party script, no network: it works
     offline and from ``file://``.  The book's HTML builder drops the widget
     view (``nb_mime_priority_overrides`` in ``_config.yml``), so this is what
     the HTML page shows.  Where scripts do not run (an untrusted notebook
     opened in JupyterLab before its cells are run) it degrades to the default
     figure.
   * ``text/plain`` -- a short, deterministic summary (title, grid,
     defaults): what nbval compares.  No ids, addresses or image data.

   Everything is reproducible: the HTML is the same bytes for the same grid,
   and the live widget's model id is a hash of (display count, summary), not
   a uuid4, so re-executing a notebook leaves the file unchanged.  Across
   machines PNG bytes differ (FreeType, matplotlib, Pillow builds), so the
   nbval sanitizer replaces ``data:image/png;base64,...`` in text/html.

4. **Optimizer paths** need no draw function of their own:
   :func:`optimizer_explorer` turns ``make(**params) -> {name: transformation}``
   into an Explorer drawing the paths on a landscape's contours next to the
   loss curves (log y, one shared y range for all frames)::

       # chapter 1: gradient descent vs. the learning rate (ready made)
       widgets.gd_learning_rate_explorer()

       # chapter 3: momentum and Nesterov at the same learning rate
       widgets.optimizer_explorer(
           lambda lr, beta: {"sgd": optbook.sgd(lr), "momentum": optbook.momentum(lr, beta),
                             "nesterov": optbook.nesterov(lr, beta)},
           grid={"lr": [0.01, 0.02, 0.04], "beta": [0.5, 0.8, 0.9, 0.95]},
           landscape=landscapes.quadratic(25), labels={"lr": "η", "beta": "β"})

       # chapter 5: Adam's two betas
       widgets.optimizer_explorer(
           lambda b1, b2: {"adam": optbook.adam(0.1, b1, b2)},
           grid={"b1": [0.0, 0.5, 0.9, 0.99], "b2": [0.9, 0.99, 0.999]},
           landscape=landscapes.rosenbrock(), labels={"b1": "β₁", "b2": "β₂"})

       # chapter 6: warmup length
       widgets.optimizer_explorer(
           lambda warmup: {"adam": optbook.adam(schedules.warmup_cosine(0.3, warmup, 80))},
           grid={"warmup": [1, 5, 10, 20, 40]}, landscape=landscapes.beale(), steps=80)

   Anything else (a schedule plot, a training curve) is an :class:`Explorer`
   around its own pure ``draw``.

In a notebook, make the Explorer the last expression of its cell (no
trailing ``;``: under nbval a ``;`` does not silence output, see nbval issue
194).  Notebooks are executed with ``store_widget_state=False``
(``scripts/execute_notebooks.py``): stored widget state would make MyST-NB
load the ipywidgets JavaScript from a CDN, and the live widget needs a kernel
anyway.
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

__all__ = ["Explorer", "WIDGET_VIEW_MIME", "optimizer_runs", "draw_runs", "optimizer_explorer",
           "gd_learning_rate_runs", "gd_regime", "gd_learning_rate_explorer"]

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

    The compute work happens in ``draw``; :meth:`frame` caches the PNG of each
    grid point, so the live widget reuses the frames rendered for the twin.
    """

    def __init__(self, draw: Callable[..., Any], grid: Mapping[str, Sequence],
                 defaults: Optional[Mapping[str, Any]] = None, *,
                 labels: Optional[Mapping[str, str]] = None,
                 formats: Optional[Mapping[str, str]] = None,
                 title: str = "", dpi: float = 120, colors: Optional[int] = 64,
                 max_frames: int = 40):
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
        ``<img>``, the other frames as JSON, and the script that swaps them."""
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

    def __repr__(self) -> str:
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
              size=(9.0, 3.5)):
    """Paths on the contours (left) and ``f - f*`` against steps, log y (right).

    A pure function of its inputs; returns a pyplot-free Figure.  The layout
    is fixed (no constrained layout), so the axes sit at the same pixels in
    every frame of a widget and only the data move.
    """
    fig, (ax_path, ax_loss) = plotting.subplots(1, 2, size=size, pyplot=False, layout="none",
                                                width_ratios=[1, 1.3])
    fig.subplots_adjust(left=0.065, right=0.985, bottom=0.14, top=0.84, wspace=0.18)
    plotting.contour(ax_path, landscape)
    for key, run in runs.items():
        plotting.plot_path(ax_path, run, key)
        plotting.loss_curve(ax_loss, run, key, minimum=landscape.min_value,
                            ylabel=r"$f(\theta_t) - f^*$")
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
                       name: str = "sgd", **trajectory_kwargs) -> Explorer:
    """An :class:`Explorer` of optimizer paths: ``make(**params)`` -> paths + losses.

    ``title`` is a string, a format string over the parameters
    (``"η = {lr:g}"``) or a function ``title(**params) -> str``; it becomes the
    figure's headline.  The loss axis has one range for every frame, so moving
    a slider changes the curves, not the axis.  Extra keywords go to
    ``landscapes.trajectory`` (``noise_std``, ``seed``, ``with_hessian``).
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

    def headline(params):
        if callable(title):
            return title(**params)
        return title.format(**params) if title else ""

    def draw(**params):
        runs = runs_at(tuple(params.items()))
        on_grid = all(_in_grid(explorer, n, v) for n, v in params.items())
        ylim = shared_ylim() if on_grid else None
        return draw_runs(runs, landscape, title=headline(params), loss_ylim=ylim)

    plain_title = title if isinstance(title, str) and "{" not in title else ""
    explorer = Explorer(draw, grid, defaults, labels=labels, formats=formats,
                        title=plain_title or f"optimizer paths on {landscape.title}")
    explorer.runs = lambda **params: runs_at(tuple({**explorer.defaults, **params}.items()))
    return explorer


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
    return explorer
