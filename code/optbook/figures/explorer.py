"""The Explorer: one figure object that displays on the website, in Jupyter and as text.

An :class:`Explorer` wraps a pure ``draw(**params) -> matplotlib Figure``
and a small grid of parameter values, and optionally an in-page *spec*
(:mod:`optbook.figures.spec`).  It displays three ways
(``_repr_mimebundle_``):

* ``text/html`` -- on the website: with a spec, the in-page figure the
  runtime recomputes (:func:`optbook.figures.static.figure_html`); without,
  the frame-per-grid-point twin (:func:`optbook.figures.static.frames_html`).
* ``application/vnd.jupyter.widget-view+json`` -- in Jupyter after running
  the cell: the live kernel widget (:mod:`optbook.figures.kernel`).
* ``text/plain`` -- a deterministic summary (title, controls, optimizers):
  what nbval compares.

Every figure kind (:mod:`~optbook.figures.paths`, :mod:`~optbook.figures.phase`,
:mod:`~optbook.figures.nqm`, :mod:`~optbook.figures.runs`,
:mod:`~optbook.figures.heatmap`) returns an Explorer.
"""
from __future__ import annotations

import io
import itertools
import math
import numbers
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from . import kernel, plotting, static

__all__ = ["Explorer"]


def _is_numeric(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _default_format(value) -> str:
    if _is_numeric(value):
        return f"{value:.4g}"
    return str(value)


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
        spec: the in-page figure's spec (:mod:`optbook.figures.spec`): then the
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
            static.release(fig)
            self._frames[key] = static.quantize(buffer.getvalue(), self.colors)
        return self._frames[key]

    def _display_size(self, png: bytes) -> tuple[int, int]:
        """CSS pixels: 96 per inch of figure, whatever the rendering dpi."""
        width, height = static.png_size(png)
        return round(width * 96 / self.dpi), round(height * 96 / self.dpi)

    def _alt(self, params) -> str:
        shown = ", ".join(f"{self.labels[n]} = {self.format(n, v)}" for n, v in params.items())
        return f"{self.title}: {shown}" if self.title else shown

    def static_html(self) -> str:
        """The kernel-free twin (:func:`optbook.figures.static.frames_html`), or with
        a ``spec`` the in-page figure (:func:`optbook.figures.static.figure_html`)."""
        if self.spec is not None:
            return static.figure_html(self.spec, self.frame(), self._display_size(self.frame()),
                                      self._alt(self.defaults))
        return static.frames_html(self)

    def widget(self):
        """The live ipywidgets version (sliders + image); needs a kernel to respond."""
        return kernel.widget(self)

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
        if wanted(kernel.WIDGET_VIEW_MIME):
            try:
                view = self.widget()._repr_mimebundle_()
            except ImportError:       # ipywidgets missing: the twin alone
                view = {}
            if kernel.WIDGET_VIEW_MIME in view:
                data[kernel.WIDGET_VIEW_MIME] = view[kernel.WIDGET_VIEW_MIME]
        return data
