"""The static fallback: what a reader sees without scripts, and the HTML the page runtime reads.

Two shapes of HTML, both the same bytes for the same figure:

* :func:`figure_html` -- an in-page figure (a figure with a *spec*,
  :mod:`optbook.figures.spec`): ``<div class="optbook-figure">`` holding the
  default view as an image, one line saying how to get the live figure, and
  the spec as JSON.  The runtime ``_static/optbook-figures.js`` (built from
  ``js/``) hides the image and the line and builds the live figure.
* :func:`frames_html` -- the frame-per-grid-point twin of an
  :class:`~optbook.figures.explorer.Explorer` without a spec: a slider per
  parameter swapping pre-rendered PNGs with a few lines of inline script.

Plus the PNG helpers both use (size, palette quantization, closing figures).
"""
from __future__ import annotations

import base64
import html
import io
import json
from typing import Mapping, Optional

__all__ = ["FIGURE_CLASS", "NO_SCRIPT_NOTE", "CSS_CLASS", "figure_html", "frames_html",
           "png_size", "quantize", "release"]

CSS_CLASS = "optbook-widget"

# --- the frame-per-grid-point twin: HTML, CSS and script ---------------------------------

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


def frames_html(explorer) -> str:
    """The kernel-free twin of a spec-less Explorer: sliders, value labels, the
    default frame as an ``<img>``, the other frames as JSON, and the script
    that swaps them."""
    esc = html.escape
    default_index = explorer.index()
    parts = [f'<div class="{CSS_CLASS}">', f"<style>{_CSS}</style>",
             '<div class="optbook-widget-controls">']
    for name in explorer.parameters:
        values = explorer.grid[name]
        shown = [explorer.format(name, v) for v in values]
        position = values.index(explorer.defaults[name])
        data = (f'data-optbook-param="{esc(name)}" '
                f'data-optbook-labels="{esc(json.dumps(shown, ensure_ascii=False))}"')
        if all(_is_numeric(v) for v in values):
            output = f'<output class="optbook-widget-value">{esc(shown[position])}</output>'
            control = (f'<input type="range" min="0" max="{len(values) - 1}" step="1" '
                       f'value="{position}" autocomplete="off" {data} '
                       f'aria-label="{esc(explorer.labels[name])}" '
                       f'aria-valuetext="{esc(shown[position])}">')
        else:
            options = "".join(f'<option value="{k}"{" selected" if k == position else ""}>'
                              f"{esc(s)}</option>" for k, s in enumerate(shown))
            control = (f'<select autocomplete="off" {data} '
                       f'aria-label="{esc(explorer.labels[name])}">{options}</select>')
            output = ""                 # a menu shows its value itself
        parts.append(f'<label class="optbook-widget-control">'
                     f'<span class="optbook-widget-name">{esc(explorer.labels[name])}</span>'
                     f"{control}{output}</label>")
    parts.append("</div>")
    # The default frame is a plain <img>; the others wait in a JSON block that
    # only the script reads.  Where scripts do not run (an untrusted notebook in
    # JupyterLab, a feed reader) the reader sees one figure, not a stack of them.
    others = []
    for k, params in enumerate(explorer.points()):
        png = explorer.frame(**params)
        width, height = explorer._display_size(png)
        src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        if k == default_index:
            parts.append(f'<img class="optbook-widget-frame" data-optbook-index="{k}" '
                         f'width="{width}" height="{height}" '
                         f'alt="{esc(explorer._alt(params))}" src="{src}">')
            others.append(None)
        else:
            others.append({"src": src, "alt": explorer._alt(params), "width": str(width),
                           "height": str(height)})
    # "<" as \u003c: the JSON can never close its <script> element early
    frames_json = json.dumps(others, ensure_ascii=False).replace("<", "\\u003c")
    parts.append(f'<script type="application/json" class="optbook-widget-frames">'
                 f"{frames_json}</script>")
    parts.append(f"<script>{_SCRIPT}</script></div>")
    return "\n".join(parts)


def _is_numeric(value) -> bool:
    import numbers
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


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


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from the IHDR chunk of a PNG."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("Invalid PNG data")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def quantize(png: bytes, colors: Optional[int]) -> bytes:
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


def release(fig) -> None:
    """Close ``fig`` if pyplot tracks it (a pyplot=False figure is simply dropped)."""
    import sys
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt
        plt.close(fig)              # a no-op for a figure pyplot does not know

