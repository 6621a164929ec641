"""Tests for optbook.figures.responsive: the phone rendering of static figures (issue 21, item 3).

Oracles: matplotlib's own layout (each axes' drawn position after
constrained layout), the PNG bytes matplotlib writes (a restored figure
draws exactly as before), the PNG header's pixel size, the definition of a
point (1/72 inch), and a real IPython kernel running ``plt.show()``.
"""
from __future__ import annotations

import base64
import configparser
import re
import struct
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from optbook.figures import plotting, responsive  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _style():
    with plotting.style_context():
        yield


def _subplots(*args, **kwargs):
    """plotting.subplots with an Agg canvas, so fig.canvas.draw() runs the layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig, axes = plotting.subplots(*args, pyplot=False, **kwargs)
    FigureCanvasAgg(fig)
    return fig, axes


def _png(fig) -> bytes:
    return responsive.render_png(fig)[0]


# --- every multi-panel layout the book uses ----------------------------------------

def _one_by_two_sharey():          # 01-foundations, 03-momentum, 04-adaptive, 05-adam
    fig, axes = _subplots(1, 2, size="wide", sharey=True)
    for ax in axes:
        ax.plot(np.linspace(0, 1, 20), np.linspace(1, 2, 20), label="run")
        ax.set_xlabel("step")
    axes[0].set_ylabel("loss")
    axes[0].legend(fontsize=8)
    return fig


def _one_by_two_suptitle_twin():   # paths/loss pairs; a twin axis rides with its panel
    fig, (a, b) = _subplots(1, 2, size="wide")
    a.plot([0, 1], [0, 1])
    b.plot([0, 1], [1, 0])
    twin = b.twinx()
    twin.plot([0, 1], [5, 6], color="C2")
    twin.set_ylabel("other")
    fig.suptitle("a suptitle")
    return fig


def _one_by_three():               # 02-sgd (epochs, steps, time), 06-warmup-causes
    fig, axes = _subplots(1, 3, size="wide", sharey=True)
    for ax in axes:
        ax.plot([0, 1, 2], [3, 1, 2])
        ax.set_title("panel")
    return fig


def _two_by_two_ratios():          # 03-momentum, the 2 x 2 grid with height_ratios
    fig, axes = _subplots(2, 2, size=(9.0, 7.0), height_ratios=[1.15, 1])
    for ax in axes.flat:
        ax.plot([0, 1], [0, 1], label="x")
        ax.legend(fontsize=7)
    return fig


def _two_by_three():               # 07-debugging, the symptom grid
    fig, axes = _subplots(2, 3, size=(11, 6.5))
    for ax in axes.flat:
        ax.plot([0, 1], [1, 0])
        ax.set_title("symptom", fontsize=9)
    return fig


def _single_colorbar():            # 07-decay-and-clipping, a map with its colour bar
    fig, ax = _subplots(1, 1)
    mesh = ax.pcolormesh(np.arange(20.0).reshape(4, 5))
    fig.colorbar(mesh, ax=ax, label="log10 loss")
    ax.plot([0, 4], [0, 3], label="path")
    ax.legend(loc="lower left", fontsize=7)
    return fig


def _single_wide():                # 03-momentum, 06-schedules: one panel, "wide" size
    fig, ax = _subplots(size="wide")
    ax.plot([0, 1], [0, 1], label="schedule")
    ax.legend(fontsize=8)
    ax.set_xlabel("step t")
    return fig


LAYOUTS = {"1x2 sharey": (_one_by_two_sharey, 2), "1x2 suptitle twinx": (_one_by_two_suptitle_twin, 2),
           "1x3": (_one_by_three, 3), "2x2 height ratios": (_two_by_two_ratios, 4),
           "2x3": (_two_by_three, 6), "1x1 colorbar": (_single_colorbar, 1),
           "1x1 wide": (_single_wide, 1)}


def _panel_boxes(fig):
    """Drawn bounding boxes (figure fraction) of the main axes, in reading order."""
    fig.canvas.draw()
    return [p.axes[0].get_position() for p in responsive.panels(fig)]


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_panels_are_found_in_reading_order(name):
    make, n = LAYOUTS[name]
    found = responsive.panels(make())
    assert len(found) == n
    keys = [(p.rows.start, p.cols.start) for p in found]
    assert keys == sorted(keys)


@pytest.mark.parametrize("name", [k for k, (_, n) in LAYOUTS.items() if n > 1])
def test_stacked_puts_every_panel_in_one_column_top_to_bottom(name):
    fig = LAYOUTS[name][0]()
    with responsive.stacked(fig, width=4.0):
        boxes = _panel_boxes(fig)
        assert fig.get_size_inches()[0] == pytest.approx(4.0)
        # one column: every panel spans most of the width, all share a left edge
        for box in boxes:
            assert box.width > 0.6, box
            assert box.x0 == pytest.approx(boxes[0].x0, abs=0.08)
        # reading order from top to bottom, no overlap
        for upper, lower in zip(boxes, boxes[1:]):
            assert lower.y1 <= upper.y0 + 1e-6


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_fonts_unchanged_and_figure_restored(name):
    fig = LAYOUTS[name][0]()
    # constrained layout with a colour bar settles on its second draw
    # (matplotlib's own behaviour, without any re-layout): compare with that
    _png(fig)
    before_png = _png(fig)
    sizes = responsive.text_sizes(fig)
    size = fig.get_size_inches().copy()
    specs = [(ax.get_subplotspec().rowspan, ax.get_subplotspec().colspan)
             for ax in fig.axes if getattr(ax, "_colorbar", None) is None]
    with responsive.stacked(fig):
        _panel_boxes(fig)
        # the same sizes (a shared axis shows more tick labels of the same size)
        assert set(responsive.text_sizes(fig)) == set(sizes)
    assert fig.get_size_inches() == pytest.approx(size)
    assert [(ax.get_subplotspec().rowspan, ax.get_subplotspec().colspan)
            for ax in fig.axes if getattr(ax, "_colorbar", None) is None] == specs
    assert _png(fig) == before_png, "the figure draws differently after the phone rendering"


def test_shared_y_tick_labels_show_when_stacked_and_hide_again():
    fig = _one_by_two_sharey()
    right = fig.axes[1]
    fig.canvas.draw()
    visible = lambda: any(t.get_visible() and t.get_text() for t in right.get_yticklabels())  # noqa: E731
    assert not visible()
    with responsive.stacked(fig):
        fig.canvas.draw()
        assert visible()
    fig.canvas.draw()
    assert not visible()


def test_colorbar_stays_beside_its_panel():
    fig = _single_colorbar()
    cbar_ax = next(ax for ax in fig.axes if getattr(ax, "_colorbar", None) is not None)
    with responsive.stacked(fig, width=3.6):
        fig.canvas.draw()
        parent, bar = fig.axes[0].get_position(), cbar_ax.get_position()
        assert bar.x0 >= parent.x1 - 1e-6 and bar.x1 <= 1.0
        assert bar.y0 < parent.y1 and bar.y1 > parent.y0


def test_suptitle_sits_above_the_first_stacked_panel():
    fig = _one_by_two_suptitle_twin()
    with responsive.stacked(fig):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        title = fig._suptitle.get_window_extent(renderer)
        top = fig.axes[0].get_window_extent(renderer)
        assert title.y0 >= top.y1
        # the twin moved with its panel
        assert fig.axes[2].get_position().bounds == pytest.approx(fig.axes[1].get_position().bounds)


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_html_has_a_phone_rendering_with_text_of_nine_px(name):
    fig = LAYOUTS[name][0]()
    page = responsive.figure_html(fig)
    uris = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    wide = base64.b64decode(uris[-1])
    width_px = struct.unpack(">II", wide[16:24])[0]
    # whole figure at twice its dpi: the PNG is figsize * 2 * dpi wide
    assert width_px == round(fig.get_size_inches()[0] * 2 * fig.dpi)
    at_390 = float(re.search(r'data-optbook-min-text-px-at-390="([0-9.]+)"', page).group(1))
    assert at_390 >= responsive.MIN_TEXT_PX
    smallest_pt = min(responsive.text_sizes(fig))
    if "<source" in page:
        narrow = base64.b64decode(uris[0])
        n_px = struct.unpack(">II", narrow[16:24])[0]
        assert '(max-width: 600px)' in page and " 2x" in page
        # s pt = s/72 in; the narrow PNG (2 px per CSS px) fills the 358-px column
        expected = smallest_pt / 72 * fig.dpi * responsive.PHONE_CONTENT_WIDTH / (n_px / 2)
        assert at_390 == pytest.approx(expected, abs=0.01)
    else:
        assert smallest_pt / 72 * fig.dpi * 358 / (width_px / 2) >= 9


def test_small_text_makes_a_narrower_phone_rendering():
    fig = _one_by_two_sharey()
    fig.axes[0].legend(fontsize=6)
    # 6 pt filling 358 px at >= 9 * 1.04 px: at most 6/72 * 358 / 9.36 = 3.19 in
    assert responsive.narrow_width(fig) == pytest.approx(3.19, abs=0.01)
    assert responsive.narrow_width(_two_by_three()) == responsive.NARROW_MAX_WIDTH


def test_alt_text_comes_from_titles_or_labels():
    assert responsive.alt_text(_one_by_two_suptitle_twin()) == "a suptitle"
    assert responsive.alt_text(_one_by_three()) == "panel; panel; panel"
    fig, ax = _subplots()
    ax.set_xlabel(r"step $t$")
    ax.set_ylabel(r"$f(\theta_t) - f^*$")
    assert responsive.alt_text(fig) == "f(theta_t) - f^* against step t"
    assert '"' not in re.search(r'alt="([^"]*)"', responsive.figure_html(fig)).group(1)


def test_a_title_longer_than_the_narrow_figure_wraps_and_unwraps():
    fig = _single_wide()                 # 06-schedules: a long title on a "wide" panel
    ax = fig.axes[0]
    ax.set_title("one stable run, cooldowns forked from it, and a cosine run per budget")
    ax.set_ylabel("validation loss (mean of seeds)")
    with responsive.stacked(fig, width=3.7):
        png, width, _ = responsive.render_png(fig)
        assert ax.title.get_wrap()
    # the title no longer widens the saved box: the PNG is the figure's width
    assert width == pytest.approx(370, abs=1)
    assert not ax.title.get_wrap()
    page = responsive.figure_html(fig)
    assert float(re.search(r'at-390="([0-9.]+)"', page).group(1)) >= responsive.MIN_TEXT_PX


def test_bad_width_is_refused():
    with pytest.raises(ValueError, match="Invalid width: -1"):
        with responsive.stacked(_single_wide(), width=-1):
            pass


def test_register_outside_ipython_does_nothing():
    assert responsive.register() is False


def test_nbval_sanitizer_covers_every_data_uri_of_the_picture():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "tests" / "nbval_sanitize.cfg")
    page = responsive.figure_html(_one_by_two_sharey())
    for section in cfg.sections():
        page = re.sub(cfg[section]["regex"], cfg[section]["replace"], page)
    assert "base64,PNG 2x" in page                       # the srcset candidate
    assert 'src="data:image/png;base64,PNG"' in page
    assert not re.search(r"base64,(?!PNG)", page)


def test_plt_show_in_a_kernel_gives_the_picture_alone():
    """The inline backend's plt.show() displays the Figure object: with
    use_style() the output holds the <picture> (wide and stacked renderings),
    and no separate image/png that would store the wide PNG a second time."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    source = ("import matplotlib.pyplot as plt\n"
              "from optbook.figures import plotting\n"
              "plotting.use_style()\n"
              "fig, axes = plotting.subplots(1, 2, size='wide')\n"
              "axes[0].plot([0, 1]); axes[1].plot([1, 0])\n"
              "plt.show()\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = [o for o in nb.cells[0].outputs if o.get("output_type") == "display_data"]
    assert len(outputs) == 1, nb.cells[0].outputs
    data = outputs[0]["data"]
    assert data["text/html"].startswith('<picture class="optbook-static-figure"')
    assert "<source media=" in data["text/html"]
    # the <picture> holds the wide PNG; no second copy as image/png
    assert "image/png" not in data, sorted(data)
    assert 'width="900" height="340"' in data["text/html"]
