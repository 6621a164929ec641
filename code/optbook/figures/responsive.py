"""Static matplotlib figures that stay readable on a phone (issue 21, item 3).

A notebook figure is one PNG, drawn for the text column of a desktop page:
a two-panel figure 9 inches wide.  A phone shows it 358 CSS px wide, a
fifth of its pixels, and its 8-point legend becomes 4-px text.  So every
figure the notebook shows gets a ``text/html`` twin (:func:`figure_html`,
registered for :class:`matplotlib.figure.Figure` by
``plotting.use_style()``)::

    <picture class="optbook-static-figure">
      <source media="(max-width: 600px)" srcset="data:image/png;... 2x">   the panels in one column
      <img src="data:image/png;..." alt="...">                          the figure as drawn
    </picture>

The narrow rendering is the same Figure laid out again (:func:`stacked`):
its panels -- the cells of its grid, twins and insets moving with their
axes, colour bars with their parents -- are put in one column of a new
``GridSpec(n, 1)``, the figure is made as narrow as its smallest text
allows (:func:`narrow_width`) and constrained layout places everything
again; fonts are not touched, and the figure is restored afterwards, so
the notebook's ``image/png`` output and any later use of the figure are
unchanged.  A figure whose smallest text is already >= 9 CSS px at 390 px
gets no second rendering.

Sizes: a PNG is drawn at twice ``fig.dpi`` and shown at ``fig.dpi`` CSS px
per inch, so text of ``s`` points is ``s * dpi / 72`` CSS px at its natural
size.  On a phone (``(max-width: 600px)``, optbook-site.css) the image fills
the text column, :data:`PHONE_CONTENT_WIDTH` CSS px at a 390-px viewport, so
its text is ``s * dpi / 72 * PHONE_CONTENT_WIDTH / natural_width`` CSS px.
The ``<img>`` carries that number (``data-optbook-min-text-px-at-390``) and
the natural sizes of both renderings; ``tests/browser/
test_static_figures_phone.py`` checks it against the width each image is
actually rendered at.

The site moves the data URIs into ``_images`` (``scripts/book_site.py``,
``externalize_figure_stills``); the notebook keeps them, so it stands alone
and JupyterLab, which shows ``text/html`` too, falls back to the ``<img>``
(the wide figure) where a ``<source>`` is not rendered.
"""
from __future__ import annotations

import base64
import html
import io
import re
import struct
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Optional

__all__ = ["PHONE_VIEWPORT", "PHONE_CONTENT_WIDTH", "NARROW_MEDIA", "MIN_TEXT_PX",
           "NARROW_MAX_WIDTH", "NARROW_MIN_WIDTH", "Panel", "panels", "text_sizes",
           "min_text_px", "narrow_width", "stacked", "render_png", "alt_text", "figure_html",
           "register"]

PHONE_VIEWPORT = 390
"""The phone the book is checked on (CSS px)."""
PHONE_CONTENT_WIDTH = 358
"""Width of the text column at a 390-px viewport (CSS px), measured in Chromium
on the built site; the browser test measures it again on every figure."""
NARROW_MEDIA = "(max-width: 600px)"
"""Where the narrow rendering is used; optbook-site.css makes the image fill the
column under the same query."""
MIN_TEXT_PX = 9.0
"""The smallest text a reader should meet, in CSS px (issue 21)."""
NARROW_MAX_WIDTH = 4.0
"""Widest narrow rendering, in inches (a panel a little narrower than the
book's single-panel size, so 9-pt text comes out at 11 px on a phone)."""
NARROW_MIN_WIDTH = 2.6
"""Narrowest narrow rendering, in inches; text that needs less is too small to
be saved by layout and the browser test reports it."""
_SAFETY = 1.04                     # aim 4 % above MIN_TEXT_PX: rounding, subpixel widths
_PANEL_ASPECT = (0.7, 0.85)       # stacked panel height / width, bounds


@dataclass
class Panel:
    """One cell (or span of cells) of a figure's grid and the axes drawn in it."""
    rows: range
    cols: range
    axes: list
    width: float                   # inches, its share of the figure as drawn
    height: float


def _main_axes(fig):
    """Axes placed by a subplot spec, colour bars excluded (they follow their parents)."""
    out = []
    for ax in fig.axes:
        if getattr(ax, "_colorbar", None) is not None:
            continue
        spec = ax.get_subplotspec() if hasattr(ax, "get_subplotspec") else None
        if spec is None:
            continue                                     # insets, fig.add_axes: ride along
        out.append((ax, spec))
    return out


def panels(fig) -> list[Panel]:
    """The figure's panels in reading order (row by row), or ``[]`` if its axes
    do not all sit in one top-level grid (nested grids are not re-laid out)."""
    from matplotlib.gridspec import GridSpec

    found = _main_axes(fig)
    if not found:
        return []
    grids = {id(spec.get_gridspec()) for _, spec in found}
    if len(grids) != 1 or not isinstance(found[0][1].get_gridspec(), GridSpec):
        return []
    grid = found[0][1].get_gridspec()
    nrows, ncols = grid.get_geometry()
    wr = list(grid.get_width_ratios() or [1] * ncols)
    hr = list(grid.get_height_ratios() or [1] * nrows)
    fw, fh = fig.get_size_inches()
    by_cell: dict[tuple, Panel] = {}
    for ax, spec in found:
        key = (spec.rowspan.start, spec.colspan.start, spec.rowspan.stop, spec.colspan.stop)
        if key not in by_cell:
            by_cell[key] = Panel(rows=spec.rowspan, cols=spec.colspan, axes=[],
                                 width=fw * sum(wr[c] for c in spec.colspan) / sum(wr),
                                 height=fh * sum(hr[r] for r in spec.rowspan) / sum(hr))
        by_cell[key].axes.append(ax)
    return [by_cell[k] for k in sorted(by_cell)]


def text_sizes(fig) -> list[float]:
    """Font sizes (points) of every visible, non-empty text of the figure."""
    from matplotlib.text import Text

    hidden = set()                                       # texts of axes that are not drawn
    for ax in fig.axes:
        if not ax.get_visible():
            hidden.update(id(t) for t in ax.findobj(Text))
        elif not ax.axison:                              # ax.axis("off"): no ticks, no labels
            for axis in ax._axis_map.values():
                hidden.update(id(t) for t in axis.findobj(Text))
    return [float(t.get_fontsize()) for t in fig.findobj(Text)
            if t.get_visible() and t.get_text().strip() and id(t) not in hidden]


def min_text_px(fig, displayed_width: Optional[float] = None) -> float:
    """Smallest text in CSS px: at natural size, or shown ``displayed_width`` CSS px wide."""
    sizes = text_sizes(fig)
    if not sizes:
        return float("inf")
    natural = min(sizes) * fig.dpi / 72.0
    if displayed_width is None:
        return natural
    return natural * displayed_width / (fig.get_size_inches()[0] * fig.dpi)


def narrow_width(fig) -> float:
    """Width (inches) of the narrow rendering: as wide as :data:`NARROW_MAX_WIDTH`
    while the smallest text, filling :data:`PHONE_CONTENT_WIDTH`, stays
    >= :data:`MIN_TEXT_PX` (never below :data:`NARROW_MIN_WIDTH`)."""
    sizes = text_sizes(fig)
    if not sizes:
        return NARROW_MAX_WIDTH
    # s pt = s/72 in; shown at PHONE_CONTENT_WIDTH px for W in: s/72 * PCW / W px
    fit = min(sizes) / 72.0 * PHONE_CONTENT_WIDTH / (MIN_TEXT_PX * _SAFETY)
    return round(max(NARROW_MIN_WIDTH, min(NARROW_MAX_WIDTH, fit)), 2)


def _shared_y(ax) -> bool:
    return len(ax.get_shared_y_axes().get_siblings(ax)) > 1


@contextmanager
def stacked(fig, width: Optional[float] = None) -> Iterator:
    """Lay ``fig`` out with its panels in one column, ``width`` inches wide
    (default :func:`narrow_width`); restore it on exit.

    Each panel keeps its share of the figure's aspect, within
    ``_PANEL_ASPECT``; a panel whose y axis is shared shows its own tick
    labels (sharing had hidden them beside their neighbour); titles wrap at
    the figure's edge.  Fonts are not changed.  A figure without a single top-level grid is only narrowed.
    """
    from matplotlib.gridspec import GridSpec

    width = narrow_width(fig) if width is None else float(width)
    if not width > 0:
        raise ValueError(f"Invalid width: {width!r} (expected inches > 0)")
    size = fig.get_size_inches().copy()
    found = panels(fig)
    specs = {ax: ax.get_subplotspec() for p in found for ax in p.axes}
    ticks = {ax: ax.yaxis._major_tick_kw.get("label1On", True) for ax in specs}
    ticks_minor = {ax: ax.yaxis._minor_tick_kw.get("label1On", True) for ax in specs}
    # constrained layout starts from where the axes are: put every axes
    # (colour bars too) back exactly, so the figure lays out as before
    boxes = {ax: (ax._originalPosition.frozen(), ax._position.frozen()) for ax in fig.axes}
    # titles longer than the narrow figure wrap onto a second line instead of
    # running off its edge (matplotlib wraps at the figure's edge; axis labels
    # are not wrapped: constrained layout does not see a wrapped rotated label,
    # which then overlaps the tick labels)
    labels = [t for ax in fig.axes for t in (ax.title, ax._left_title, ax._right_title)]
    if fig._suptitle is not None:
        labels.append(fig._suptitle)
    wraps = {t: t.get_wrap() for t in labels}
    try:
        lo, hi = _PANEL_ASPECT
        heights = [width * min(hi, max(lo, p.height / p.width)) for p in found]
        if found:
            grid = GridSpec(len(found), 1, figure=fig, height_ratios=heights)
            for i, p in enumerate(found):
                for ax in p.axes:
                    ax.set_subplotspec(grid[i])
                    if _shared_y(ax) and len(found) > 1:
                        ax.yaxis.set_tick_params(which="both", labelleft=True)
        for t in labels:
            t.set_wrap(True)
        total = sum(heights) if found else size[1] * width / size[0]
        if fig._suptitle is not None and fig._suptitle.get_text():
            total += 0.3
        fig.set_size_inches(width, total)
        yield fig
    finally:
        for ax, spec in specs.items():
            ax.set_subplotspec(spec)
            ax.yaxis.set_tick_params(which="major", labelleft=ticks[ax])
            ax.yaxis.set_tick_params(which="minor", labelleft=ticks_minor[ax])
        fig.set_size_inches(size)
        for t, wrap in wraps.items():
            t.set_wrap(wrap)
        for ax, (original, active) in boxes.items():
            ax._set_position(original, which="original")
            ax._set_position(active, which="active")


def _png_size(png: bytes) -> tuple[int, int]:
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("Invalid png: not a PNG file")
    return struct.unpack(">II", png[16:24])


def render_png(fig) -> tuple[bytes, float, float]:
    """``(png, width, height)``: the figure at twice ``fig.dpi``, its natural
    size in CSS px (``fig.dpi`` px per inch).

    The whole figure is saved (constrained layout keeps everything inside
    it), so the size is the figure's and the same on every machine; only if
    something is drawn outside the figure, or touches its edge (a title wider
    than its panel), is the box fitted to it, with a 0.05-inch margin.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=2 * fig.dpi, facecolor="white")   # runs the layout
    bbox = fig.get_tightbbox()                           # inches, as just laid out
    w, h = fig.get_size_inches()
    edge = 0.01                                          # inches: ink this close is cut
    if not (bbox.x0 >= edge and bbox.y0 >= edge and bbox.x1 <= w - edge and bbox.y1 <= h - edge):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=2 * fig.dpi, facecolor="white",
                    bbox_inches="tight", pad_inches=0.05)
    png = buf.getvalue()
    px_w, px_h = _png_size(png)
    return png, px_w / 2.0, px_h / 2.0


_MATH = re.compile(r"[$\\{}]")


def _plain(text: str) -> str:
    return " ".join(_MATH.sub("", text).split())


def alt_text(fig) -> str:
    """The figure's suptitle, else its panels' titles, else "y against x" per panel."""
    sup = fig._suptitle.get_text() if fig._suptitle is not None else ""
    if sup.strip():
        return _plain(sup)
    parts = []
    for ax in fig.axes:
        if getattr(ax, "_colorbar", None) is not None:
            continue
        title = " ".join(t.get_text() for t in (ax.title, ax._left_title, ax._right_title)
                         if t.get_text().strip())
        if title.strip():
            parts.append(_plain(title))
        elif ax.get_ylabel().strip() or ax.get_xlabel().strip():
            parts.append(_plain(f"{ax.get_ylabel()} against {ax.get_xlabel()}".strip()))
    return "; ".join(p for p in parts if p) or "figure"


def _uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


_last_wide: list = []     # (figure, png, width, height) of the latest figure_html call


def figure_html(fig) -> str:
    """The ``<picture>`` of this module's docstring for ``fig``."""
    wide, w_w, w_h = render_png(fig)
    _last_wide[:] = [fig, wide, w_w, w_h]
    wide_px = min_text_px(fig)                            # natural CSS px
    phone_px = wide_px * PHONE_CONTENT_WIDTH / w_w
    narrow = None
    if phone_px < MIN_TEXT_PX:
        width = narrow_width(fig)
        for _ in range(3):
            with stacked(fig, width):
                narrow, n_w, n_h = render_png(fig)
                narrow_px = min_text_px(fig)
            phone_px = narrow_px * PHONE_CONTENT_WIDTH / n_w
            if phone_px >= MIN_TEXT_PX or width <= NARROW_MIN_WIDTH:
                break
            # something drawn outside the figure widened the saved box: narrow it
            width = max(NARROW_MIN_WIDTH, width * phone_px / (MIN_TEXT_PX * _SAFETY))
    n_panels = len(panels(fig)) or 1
    alt = html.escape(alt_text(fig), quote=True)
    parts = [f'<picture class="optbook-static-figure" data-optbook-panels="{n_panels}">']
    if narrow is not None:
        parts.append(f'<source media="{NARROW_MEDIA}" srcset="{_uri(narrow)} 2x" '
                     f'width="{n_w:.0f}" height="{n_h:.0f}" data-optbook-text-px="{narrow_px:.2f}">')
    parts.append(f'<img src="{_uri(wide)}" alt="{alt}" width="{w_w:.0f}" height="{w_h:.0f}" '
                 f'style="max-width: 100%; height: auto" data-optbook-text-px="{wide_px:.2f}" '
                 f'data-optbook-min-text-px-at-{PHONE_VIEWPORT}="{phone_px:.2f}">')
    parts.append("</picture>")
    return "".join(parts)


def _png_formatter(fig):
    """``image/png`` of a Figure: none when :func:`figure_html` has just drawn the
    same figure for the same display (IPython computes text/html before
    image/png): its ``<picture>`` already holds the wide PNG, and a second copy
    would only double every notebook's size (the site, JupyterLab and the PDF
    all show the ``<picture>``; an untrusted notebook shows its ``<img>``).
    Otherwise the inline backend's retina PNG."""
    if _last_wide and _last_wide[0] is fig:
        _last_wide.clear()
        return None
    from IPython.core.pylabtools import retina_figure
    return retina_figure(fig, bbox_inches="tight")


def register(ip=None, reuse_png: bool = True) -> bool:
    """Register :func:`figure_html` as IPython's ``text/html`` formatter for
    matplotlib Figures (the inline backend's ``plt.show()`` displays the
    Figure, so every shown figure gets it beside its ``image/png``) and, with
    ``reuse_png`` (for the ``"retina"`` inline format), an ``image/png``
    formatter that reuses the wide rendering.  Returns False outside IPython."""
    if ip is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        ip = get_ipython()
    if ip is None:
        return False
    from matplotlib.figure import Figure

    ip.display_formatter.formatters["text/html"].for_type(Figure, figure_html)
    if reuse_png:
        ip.display_formatter.formatters["image/png"].for_type(Figure, _png_formatter)
    return True
