"""Tests for optbook.figures.plotting: the book's colours, style and figure helpers.

Oracles: the published hex codes of the Okabe-Ito (2008) and Paul Tol (2021)
palettes; the colour-vision-deficiency matrices of Machado, Oliveira &
Fernandes (2009, severity 1.0) with the CIE 1976 colour difference; and the
data handed to the helpers (every drawn line must carry exactly its input).
"""
import itertools
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from optbook.figures import plotting  # noqa: E402
from optbook.landscapes import Trajectory, quadratic, rosenbrock  # noqa: E402

NAMES = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adam_l2", "adamw",
         "adafactor", "lamb", "lion", "sophia"]

# Okabe & Ito (2008), "Color Universal Design"; Tol (2021), SRON/EPS/TN/09-002,
# schemes "bright" and "muted".
OKABE_ITO = {"#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00",
             "#CC79A7"}
TOL_BRIGHT = {"#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377", "#BBBBBB"}
TOL_MUTED = {"#CC6677", "#332288", "#DDCC77", "#117733", "#88CCEE", "#882255", "#44AA99",
             "#999933", "#AA4499", "#DDDDDD"}

# Optimizers that chapters draw in one figure.
COMPARED = [("sgd", "momentum", "nesterov"), ("sgd", "adagrad", "rmsprop", "adam"),
            ("adam", "adam_l2", "adamw"), ("adamw", "adafactor", "lamb", "lion", "sophia"),
            ("sgd", "momentum", "adam", "adamw")]


@pytest.fixture(autouse=True)
def _restore_rcparams():
    with matplotlib.rc_context():
        yield
    plt.close("all")


# --- colours -----------------------------------------------------------------------

def test_every_optimizer_has_a_fixed_palette_colour():
    assert list(plotting.OPTIMIZER_COLORS) == NAMES
    for name in NAMES:
        assert plotting.color(name) in OKABE_ITO | TOL_BRIGHT | TOL_MUTED
    # pinned: figures in different chapters rely on these never changing
    assert plotting.color("sgd") == "#000000"
    assert plotting.color("adam") == "#999933"
    assert plotting.color("adamw") == "#332288"


def test_colours_are_distinct():
    colours = [plotting.color(n) for n in NAMES]
    assert len(set(c.upper() for c in colours)) == len(NAMES)


def _lab(hex_colour, matrix=None):
    """sRGB hex -> CIELAB (D65), optionally through a CVD simulation matrix on linear RGB."""
    srgb = np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    if matrix is not None:
        linear = np.clip(np.asarray(matrix) @ linear, 0, 1)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                    [0.0193, 0.1192, 0.9505]]) @ linear / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


# Machado, Oliveira & Fernandes (2009), IEEE TVCG 15(6), Table 1, severity 1.0.
CVD = {
    "normal": None,
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                   [-0.003882, -0.048116, 1.051998]],
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                     [-0.011820, 0.042940, 0.968881]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                   [0.004733, 0.691367, 0.303900]],
}


@pytest.mark.parametrize("vision", sorted(CVD))
def test_compared_optimizers_stay_distinguishable_under_colour_blindness(vision):
    for group in COMPARED:
        for a, b in itertools.combinations(group, 2):
            delta_e = np.linalg.norm(_lab(plotting.color(a), CVD[vision])
                                     - _lab(plotting.color(b), CVD[vision]))
            assert delta_e > 20, (vision, a, b, delta_e)


def test_aliases_and_spellings():
    assert plotting.color("gd") == plotting.color("sgd") == plotting.color("SGD")
    assert plotting.color("Adam-L2") == plotting.color("adam l2") == plotting.color("adam_l2")
    assert plotting.color("nag") == plotting.color("nesterov")
    assert plotting.label("gd") == "GD"
    assert plotting.label("adamw") == "AdamW"
    assert plotting.label("adam_l2") == "Adam + L2"


@pytest.mark.parametrize("bad", ["adamax", "", "sgd2"])
def test_unknown_optimizer_name_raises(bad):
    with pytest.raises(ValueError, match="Invalid optimizer name"):
        plotting.color(bad)
    with pytest.raises(ValueError, match="Invalid optimizer name"):
        plotting.label(bad)


def test_non_string_name_raises():
    with pytest.raises(ValueError, match="Invalid optimizer name"):
        plotting.color(3)


# --- style ---------------------------------------------------------------------------

def test_use_style_sets_rcparams_outside_ipython():
    plotting.use_style()
    rc = matplotlib.rcParams
    assert rc["lines.linewidth"] == plotting.STYLE["lines.linewidth"]
    assert rc["axes.grid"] is True
    assert tuple(rc["figure.figsize"]) == plotting.FIGSIZES["single"]
    cycle = [d["color"] for d in rc["axes.prop_cycle"]]
    assert cycle == [plotting.color(n) for n in NAMES]


def test_style_context_applies_and_restores():
    matplotlib.rcParams["lines.linewidth"] = 0.3
    with plotting.style_context():
        assert matplotlib.rcParams["lines.linewidth"] == plotting.STYLE["lines.linewidth"]
    assert matplotlib.rcParams["lines.linewidth"] == 0.3


def test_use_style_selects_the_inline_format_in_ipython(monkeypatch):
    import IPython
    import matplotlib_inline.backend_inline as inline

    from IPython.core.formatters import DisplayFormatter

    from optbook.figures import responsive

    class Shell:                       # what use_style touches of an IPython shell
        display_formatter = DisplayFormatter()

    calls = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell())
    monkeypatch.setattr(inline, "set_matplotlib_formats", lambda *f: calls.append(f))
    fig = Figure()
    html, png = (Shell.display_formatter.formatters[m] for m in ("text/html", "image/png"))
    plotting.use_style(None)
    assert calls == []
    plotting.use_style()
    assert html.lookup(fig) is responsive.figure_html          # the phone twin (issue 21)
    assert png.lookup(fig) is responsive._png_formatter        # no second copy of it
    png.pop(Figure)
    plotting.use_style("svg")
    with pytest.raises(KeyError):
        png.lookup(fig)                                          # svg: the PNG is left alone
    assert calls == [("retina",), ("svg",)]


def test_subplots_sizes_and_pyplot_free_figures():
    before = plt.get_fignums()
    fig, axes = plotting.subplots(1, 2, size="wide", pyplot=False)
    assert isinstance(fig, Figure) and len(axes) == 2
    assert tuple(fig.get_size_inches()) == plotting.FIGSIZES["wide"]
    assert plt.get_fignums() == before                    # pyplot never saw it
    fig2, ax = plotting.subplots(size=(3, 2))
    assert tuple(fig2.get_size_inches()) == (3, 2)
    assert plt.get_fignums() == before + [fig2.number]
    with pytest.raises(ValueError, match="Invalid size"):
        plotting.subplots(size="huge")


# --- contours ---------------------------------------------------------------------------

def test_log_levels_are_geometric_above_the_minimum():
    levels = plotting.log_levels(np.array([1.0, 2.0, 1001.0]), num=4, decades=3)
    np.testing.assert_allclose(levels - 1.0, [1.0, 10.0, 100.0, 1000.0])
    with pytest.raises(ValueError, match="Invalid values"):
        plotting.log_levels(np.ones(5))
    with pytest.raises(ValueError, match="Invalid values"):
        plotting.log_levels(np.array([np.nan, np.inf]))


def test_contour_on_the_quadratic():
    land = quadratic(10.0)
    fig, ax = plotting.subplots(pyplot=False)
    cs = plotting.contour(ax, land, num=8)
    ratios = np.diff(np.log(cs.levels - land.min_value))
    np.testing.assert_allclose(ratios, ratios[0])         # log-spaced
    assert cs.levels[-1] == pytest.approx(land.value(3.0, 3.0))   # the window's maximum
    assert ax.get_xlim() == land.xlim and ax.get_ylim() == land.ylim
    stars = [l for l in ax.lines if l.get_marker() == "*"]
    assert [tuple(s.get_xydata()[0]) for s in stars] == list(land.minima)
    fig.canvas.draw()


def test_contour_uses_the_landscapes_own_levels_when_values_span_decades():
    land = rosenbrock()
    fig, ax = plotting.subplots(pyplot=False)
    cs = plotting.contour(ax, land, num=10)
    np.testing.assert_allclose(cs.levels, land.contour_levels(10))


def test_contour_accepts_any_object_with_value_and_window():
    class Bowl:
        xlim, ylim, minima = (-1.0, 1.0), (-2.0, 2.0), ((0.0, 0.0),)

        def value(self, X, Y):
            return X ** 2 + Y ** 2

    fig, ax = plotting.subplots(pyplot=False)
    cs = plotting.contour(ax, Bowl(), levels=[0.5, 1.0])
    assert list(cs.levels) == [0.5, 1.0]
    with pytest.raises(ValueError, match="Invalid landscape"):
        plotting.contour(ax, object())


# --- paths ------------------------------------------------------------------------------

def _markers(ax, marker):
    return [l for l in ax.lines if l.get_marker() == marker]


def test_plot_path_draws_exactly_the_path_with_start_and_end_markers():
    path = np.array([[-2.5, 1.0], [-2.0, -0.5], [-1.0, 0.2], [0.0, 0.0]])
    fig, ax = plotting.subplots(pyplot=False)
    plotting.contour(ax, quadratic(10.0))
    line = plotting.plot_path(ax, path, "momentum")
    np.testing.assert_array_equal(line.get_xydata(), path)
    assert line.get_color() == plotting.color("momentum")
    assert line.get_label() == "Momentum"
    (start,), ends = _markers(ax, "o")[:1], _markers(ax, "o")[1:]
    np.testing.assert_array_equal(start.get_xydata(), path[:1])
    assert len(ends) == 1
    np.testing.assert_array_equal(ends[0].get_xydata(), path[-1:])
    assert not _markers(ax, "X") and not ax.texts
    fig.canvas.draw()


def test_plot_path_of_a_diverged_trajectory_marks_where_it_leaves_the_view():
    # x doubles each step: leaves [-3, 3] between (2, 0.5) and (4, 0.5), at x = 3
    path = np.array([[0.5, 0.5], [1.0, 0.5], [2.0, 0.5], [4.0, 0.5], [8.0, 0.5],
                     [8.0, 0.5], [8.0, 0.5]])
    run = Trajectory(path=path, values=np.ones(7), diverged=True, diverged_at=5)
    fig, ax = plotting.subplots(pyplot=False)
    plotting.contour(ax, quadratic(10.0))
    line = plotting.plot_path(ax, run, "gd")
    np.testing.assert_array_equal(line.get_xydata(), path[:5])
    (x_mark,) = _markers(ax, "X")
    np.testing.assert_allclose(x_mark.get_xydata(), [[3.0, 0.5]])
    assert [t.get_text() for t in ax.texts] == ["diverged (step 5)"]
    assert ax.get_xlim() == (-3.0, 3.0)                   # the view did not follow the path
    fig.canvas.draw()


def test_plot_path_stops_at_non_finite_rows_without_warnings():
    path = np.array([[0.0, 0.0], [0.5, 0.5], [np.inf, 1.0], [np.nan, np.nan]])
    fig, ax = plotting.subplots(pyplot=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        line = plotting.plot_path(ax, path, color="tab:red", label="custom")
        fig.canvas.draw()
    np.testing.assert_array_equal(line.get_xydata(), path[:2])
    assert [t.get_text() for t in ax.texts] == ["diverged (step 2)"]
    np.testing.assert_array_equal(_markers(ax, "X")[0].get_xydata(), path[1:2])


def test_plot_path_argument_errors():
    fig, ax = plotting.subplots(pyplot=False)
    with pytest.raises(ValueError, match="Invalid path"):
        plotting.plot_path(ax, np.zeros((3, 3)), "sgd")
    with pytest.raises(ValueError, match="Invalid name"):
        plotting.plot_path(ax, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="Invalid optimizer name"):
        plotting.plot_path(ax, np.zeros((3, 2)), "adamax")


# --- loss curves ---------------------------------------------------------------------------

def test_loss_curve_draws_the_values_on_a_log_axis():
    values = 10.0 * 0.5 ** np.arange(8)
    fig, ax = plotting.subplots(pyplot=False)
    line = plotting.loss_curve(ax, values, "adam")
    np.testing.assert_array_equal(line.get_ydata(), values)
    np.testing.assert_array_equal(line.get_xdata(), np.arange(8))
    assert ax.get_yscale() == "log"
    assert line.get_color() == plotting.color("adam")
    assert ax.get_ylabel() == "loss"
    fig.canvas.draw()


def test_loss_curve_subtracts_the_minimum_and_takes_steps():
    values = np.array([3.0, 2.0, 1.5, 1.25])
    fig, ax = plotting.subplots(pyplot=False)
    line = plotting.loss_curve(ax, values, "sgd", steps=[0, 10, 20, 30], minimum=1.0)
    np.testing.assert_allclose(line.get_ydata(), values - 1.0)
    np.testing.assert_array_equal(line.get_xdata(), [0, 10, 20, 30])
    assert "f^*" in ax.get_ylabel()
    with pytest.raises(ValueError, match="Invalid steps"):
        plotting.loss_curve(ax, values, "sgd", steps=[0, 1])


def test_loss_curve_of_a_diverged_run_and_non_positive_values_without_warnings():
    run = Trajectory(path=np.zeros((6, 2)), values=np.array([1.0, 4.0, 16.0, 64.0, 64.0, 64.0]),
                     diverged=True, diverged_at=4)
    fig, ax = plotting.subplots(pyplot=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        line = plotting.loss_curve(ax, run, "lion")
        zero = plotting.loss_curve(ax, np.array([1.0, 0.0, 0.5]), "lamb")
        fig.canvas.draw()
    np.testing.assert_array_equal(line.get_ydata(), [1.0, 4.0, 16.0, 64.0])
    (x_mark,) = _markers(ax, "X")
    np.testing.assert_array_equal(x_mark.get_xydata(), [[3.0, 64.0]])
    np.testing.assert_array_equal(zero.get_ydata(), [1.0, 0.0, 0.5])   # 0 is masked, not moved
