"""Tests for optbook.figures: the Explorer pattern, the figure kinds and the chapters' figures.

Oracles: a draw function whose PNG *size* encodes its parameters (so each
embedded frame can be traced back to the parameters it was drawn with);
the closed form x_t = (1 - eta*lambda)^t x_0 of gradient descent on a
quadratic; and the HTML of the static twin parsed with html.parser.
"""
import base64
import itertools
import json
import re
import warnings
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import optbook  # noqa: E402
from optbook import figures, landscapes  # noqa: E402
from optbook.experiments import foundations, schedules  # noqa: E402
from optbook.figures import kernel  # noqa: E402


# --- a draw function whose output identifies its parameters -------------------------

def sized_draw(a, b, kind="line"):
    """A figure (1 + a) x (1 + b/10) inches; at dpi 20 that is 20(1+a) x 2(10+b) pixels."""
    fig = Figure(figsize=(1 + a, 1 + b / 10))
    ax = fig.add_subplot()
    ax.plot([0, a], [0, b], color="red" if kind == "line" else "blue")
    return fig


def png_size(png: bytes):
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def params_from_png(png: bytes):
    width, height = png_size(png)
    return width / 20 - 1, height / 2 - 10


GRID = {"a": [1, 2, 3], "b": [0, 5, 10, 20], "kind": ["line", "dots"]}


@pytest.fixture(scope="module")
def explorer():
    return figures.Explorer(sized_draw, GRID, defaults={"a": 2, "b": 10, "kind": "dots"},
                            labels={"a": "α", "b": "β"}, formats={"b": "{:d}"},
                            title="test explorer", dpi=20, colors=None)


class TwinParser(HTMLParser):
    """Collects the controls, value outputs, frames and scripts of static twins."""

    def __init__(self):
        super().__init__()
        self.roots, self.controls, self.outputs, self.frames, self.scripts = [], [], [], [], []
        self.options = []
        self._in = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if "optbook-widget" in classes:
            self.roots.append(a)
        if "data-optbook-param" in a:
            self.controls.append((tag, a))
        if tag == "option":
            self.options.append(a)
        if tag == "img":
            self.frames.append(a)
        if tag in ("output", "script"):
            self._in = (tag, a)
            if tag == "script":
                self.scripts.append([a, ""])
            else:
                self.outputs.append("")

    def handle_data(self, data):
        if self._in and self._in[0] == "output":
            self.outputs[-1] += data
        elif self._in and self._in[0] == "script":
            self.scripts[-1][1] += data

    def handle_endtag(self, tag):
        if self._in and tag == self._in[0]:
            self._in = None


def parse(html_text):
    parser = TwinParser()
    parser.feed(html_text)
    return parser


# --- the grid ----------------------------------------------------------------------------

def test_points_and_index_follow_itertools_product_order(explorer):
    points = explorer.points()
    assert len(points) == 3 * 4 * 2
    assert points[0] == {"a": 1, "b": 0, "kind": "line"}
    assert points[1] == {"a": 1, "b": 0, "kind": "dots"}          # last parameter fastest
    assert points[-1] == {"a": 3, "b": 20, "kind": "dots"}
    for k, p in enumerate(points):
        assert explorer.index(**p) == k
    assert explorer.index() == points.index({"a": 2, "b": 10, "kind": "dots"})


def test_defaults_fall_back_to_the_first_value_and_match_within_rounding():
    e = figures.Explorer(sized_draw, {"a": [0.1, 0.2], "b": [1, 2]}, defaults={"a": 0.1 + 0.1})
    assert e.defaults == {"a": 0.2, "b": 1}


@pytest.mark.parametrize("kwargs, message", [
    (dict(grid={}), "Invalid grid"),
    (dict(grid={"a": []}), "no values"),
    (dict(grid={"a": [1, 1]}), "repeated"),
    (dict(grid={"a": [1, float("nan")]}), "non-finite"),
    (dict(grid={"a": "abc"}), "expected a list"),
    (dict(grid={"not a name": [1]}), "identifier"),
    (dict(grid={"a": [1, 2]}, defaults={"a": 3}), "Invalid default for 'a'"),
    (dict(grid={"a": [1, 2]}, defaults={"z": 1}), "Invalid defaults key"),
    (dict(grid={"a": [1, 2]}, labels={"z": "zeta"}), "Invalid labels key"),
    (dict(grid={"a": list(range(10)), "b": list(range(5))}), "50 frames > max_frames=40"),
    (dict(grid={"a": [1]}, dpi=0), "Invalid dpi"),
    (dict(grid={"a": [0.1, 0.100001]}), "look alike"),
    (dict(grid={"a": [1]}, formats={"z": "{}"}), "Invalid formats key"),
    (dict(grid={"a": [1]}, colors=1000), "Invalid colors"),
])
def test_bad_arguments_raise_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        figures.Explorer(sized_draw, **kwargs)


def test_draw_must_be_callable_and_return_a_figure():
    with pytest.raises(ValueError, match="Invalid draw"):
        figures.Explorer(None, {"a": [1]})
    with pytest.raises(ValueError, match="Invalid draw: returned NoneType"):
        figures.Explorer(lambda a: None, {"a": [1]}).frame()
    with pytest.raises(ValueError, match="numbers or strings"):
        figures.Explorer(sized_draw, {"a": [[1], [2]]})


def test_frames_are_the_pngs_of_the_draw_at_each_grid_point(explorer):
    png = explorer.frame(a=3, b=5)                    # kind: its default, "dots"
    assert params_from_png(png) == (3, 5)
    assert explorer.frame(a=3, b=5, kind="dots") is png   # cached
    with pytest.raises(ValueError, match="Invalid value for 'a'"):
        explorer.frame(a=4)
    with pytest.raises(ValueError, match="Invalid parameter key"):
        explorer.frame(c=1)
    fig = explorer.figure(a=7.5)                      # any value: a plain call of draw
    assert tuple(fig.get_size_inches()) == (8.5, 2.0)


# --- the static twin --------------------------------------------------------------------------

def twin_frames(doc):
    """Every frame of a parsed twin in index order: the <img>, or a JSON entry."""
    (img,) = doc.frames
    (data,) = [text for attrs, text in doc.scripts
               if attrs.get("type") == "application/json"
               and attrs.get("class") == "optbook-widget-frames"]
    frames = json.loads(data)
    default = int(img["data-optbook-index"])
    assert frames[default] is None                     # not stored twice
    frames[default] = {key: img[key] for key in ("src", "alt", "width", "height")}
    return frames, default


def test_static_twin_has_one_frame_per_grid_point_in_order(explorer):
    doc = parse(explorer.static_html())
    points = explorer.points()
    assert len(doc.roots) == 1
    frames, default = twin_frames(doc)
    assert len(frames) == len(points)
    assert default == explorer.index()
    for frame, p in zip(frames, points):
        assert frame["src"].startswith("data:image/png;base64,")
        png = base64.b64decode(frame["src"].split(",", 1)[1])
        assert params_from_png(png) == (p["a"], p["b"])
        assert frame["alt"] == (f"test explorer: α = {p['a']}, β = {p['b']}, "
                                f"kind = {p['kind']}")
        width, height = png_size(png)                  # shown at 96 CSS px per inch
        assert (int(frame["width"]), int(frame["height"])) == (round(width * 96 / 20),
                                                               round(height * 96 / 20))


def test_static_twin_json_cannot_end_its_script_early():
    e = figures.Explorer(sized_draw, {"a": [1, 2], "b": [0]}, title="</script><b>",
                         dpi=20, colors=None)
    text = e.static_html()
    assert text.count("</script>") == 2                # the JSON block and the code
    frames, _ = twin_frames(parse(text))
    assert frames[1]["alt"].startswith("</script><b>: ")


def test_static_twin_shows_the_default_frame_and_a_control_per_parameter(explorer):
    doc = parse(explorer.static_html())
    (img,) = doc.frames                                # one figure, even without script
    assert img["class"] == "optbook-widget-frame"
    assert img["data-optbook-index"] == str(explorer.index())
    assert params_from_png(base64.b64decode(img["src"].split(",", 1)[1])) == (2, 10)
    assert [a["data-optbook-param"] for _, a in doc.controls] == ["a", "b", "kind"]
    (tag_a, a), (tag_b, b), (tag_k, k) = doc.controls
    assert (tag_a, a["type"], a["min"], a["max"], a["step"], a["value"]) == \
        ("input", "range", "0", "2", "1", "1")
    assert (tag_b, b["type"], b["max"], b["value"]) == ("input", "range", "3", "2")
    assert json.loads(a["data-optbook-labels"]) == ["1", "2", "3"]
    assert json.loads(b["data-optbook-labels"]) == ["0", "5", "10", "20"]
    assert b["aria-label"] == "β" and b["aria-valuetext"] == "10"
    assert tag_k == "select"                           # non-numeric values: a menu
    assert json.loads(k["data-optbook-labels"]) == ["line", "dots"]
    assert [("selected" in o) for o in doc.options] == [False, True]
    assert doc.outputs == ["2", "10"]          # sliders' value labels show the defaults


def test_static_twin_is_self_contained_and_deterministic(explorer):
    text = explorer.static_html()
    doc = parse(text)
    assert len(doc.scripts) == 2 and all("src" not in attrs for attrs, _ in doc.scripts)
    without_images = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)
    assert "http:" not in without_images and "https:" not in without_images
    assert "//" not in without_images                   # no protocol-relative address
    assert all(frame["src"].startswith("data:") for frame in twin_frames(doc)[0])
    again = figures.Explorer(sized_draw, GRID, defaults={"a": 2, "b": 10, "kind": "dots"},
                             labels={"a": "α", "b": "β"}, formats={"b": "{:d}"},
                             title="test explorer", dpi=20, colors=None)
    assert again.static_html() == text


def test_quantized_frames_are_smaller_pngs_of_the_same_size():
    full = figures.Explorer(sized_draw, {"a": [2], "b": [5]}, dpi=60, colors=None).frame()
    small = figures.Explorer(sized_draw, {"a": [2], "b": [5]}, dpi=60, colors=16).frame()
    assert png_size(small) == png_size(full)
    assert len(small) < len(full)


# --- the mime bundle and the live widget ----------------------------------------------------------

def test_mimebundle_has_the_live_view_the_twin_and_a_plain_summary(explorer):
    bundle = explorer._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", kernel.WIDGET_VIEW_MIME}
    assert re.fullmatch(r"[0-9a-f]{32}", bundle[kernel.WIDGET_VIEW_MIME]["model_id"])
    assert bundle["text/html"] == explorer.static_html()
    assert bundle["text/plain"] == (
        "Explorer: test explorer\n"
        "  24 frames; parameters:\n"
        "  α (a): [1, 2, 3]  default 2\n"
        "  β (b): [0, 5, 10, 20]  default 10\n"
        "  kind: [line, dots]  default dots")
    again = explorer._repr_mimebundle_()[kernel.WIDGET_VIEW_MIME]["model_id"]
    assert again != bundle[kernel.WIDGET_VIEW_MIME]["model_id"]   # unique per display
    only = explorer._repr_mimebundle_(include={"text/plain"})
    assert set(only) == {"text/plain"}
    without = explorer._repr_mimebundle_(exclude={kernel.WIDGET_VIEW_MIME})
    assert set(without) == {"text/plain", "text/html"}


def test_live_widget_ids_repeat_when_a_notebook_is_executed_again(monkeypatch):
    """Model ids are stored in the notebook: a re-run (a fresh kernel, whose display
    count starts again at 0) must reproduce them, where ipywidgets would draw uuid4s."""
    e = figures.Explorer(lambda a: Figure((a, 1)), {"a": [1, 2]}, dpi=10)

    def ids_of_a_fresh_kernel():
        monkeypatch.setattr(kernel, "_DISPLAY_COUNT", itertools.count())
        ids = []
        for _ in range(2):
            ids.append(e._repr_mimebundle_(exclude={"text/html"})[kernel.WIDGET_VIEW_MIME]
                       ["model_id"])
            e._live.close()           # this "kernel" ends: free the id for the next one
        return ids

    first, second = ids_of_a_fresh_kernel(), ids_of_a_fresh_kernel()
    assert first == second
    assert first[0] != first[1]                        # unique within a kernel


def test_live_widget_redraws_through_the_same_frames(explorer):
    import ipywidgets as W

    box = explorer.widget()
    controls_row, image = box.children
    slider_a, slider_b, menu = controls_row.children
    assert isinstance(slider_a, W.SelectionSlider) and isinstance(menu, W.Dropdown)
    assert slider_b._options_labels == ("0", "5", "10", "20") and slider_b.value == 10
    assert slider_a.description == "α"
    assert image.value == explorer.frame()
    slider_b.value = 20
    assert image.value == explorer.frame(b=20)
    assert params_from_png(image.value) == (2, 20)
    menu.value = "line"
    assert image.value == explorer.frame(b=20, kind="line")


# --- gradient descent on the ill-conditioned quadratic -------------------------------------------

def test_gd_regimes():
    L = 10.0
    assert foundations.gd_regime(0.05, L).startswith("converges (")
    assert foundations.gd_regime(0.1, L).startswith("converges (")       # eta = 1/L
    assert foundations.gd_regime(0.15, L).startswith("converges, zig-zagging")
    assert foundations.gd_regime(0.2, L).startswith("oscillates forever")
    assert foundations.gd_regime(0.21, L).startswith("diverges")


@pytest.mark.parametrize("lr", [0.02, 0.15, 0.19, 0.2, 0.21, 0.25])
def test_gd_runs_follow_the_closed_form(lr):
    kappa, steps = 10.0, 50
    run = foundations.gd_learning_rate_runs(lr, kappa=kappa, steps=steps)["gd"]
    x0, y0 = landscapes.quadratic(kappa).x0
    t = np.arange(steps + 1)
    exact = np.stack([(1 - lr) ** t * x0, (1 - lr * kappa) ** t * y0], axis=1)
    # the run stops when a point leaves the window [-3, 3]^2 enlarged 10 times
    outside = np.flatnonzero(np.abs(exact).max(axis=1) > 30)
    first_out = int(outside[0]) if outside.size else None
    assert run.diverged_at == first_out
    assert (lr * kappa > 2) == run.diverged
    stop = first_out if first_out is not None else steps + 1
    np.testing.assert_allclose(run.path[:stop], exact[:stop], rtol=1e-12, atol=1e-300)


def test_gd_widget_grid_straddles_the_stability_limit():
    e = foundations.gd_learning_rate_explorer(kappa=10.0)
    lrs = e.grid["lr"]
    assert e.defaults == {"lr": 0.1}
    assert sum(lr < 0.2 for lr in lrs) >= 4 and 0.2 in lrs and sum(lr > 0.2 for lr in lrs) >= 2
    assert lrs == tuple(sorted(lrs))
    assert "2/L = 0.2" in repr(e)


def test_gd_widget_frames_draw_the_runs_with_one_loss_axis_and_no_warnings():
    e = foundations.gd_learning_rate_explorer(kappa=10.0, ratios=(0.5, 1.0, 1.25), steps=30)
    ylims = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for lr in e.grid["lr"]:
            fig = e.figure(lr=lr)
            ax_path, ax_loss = fig.axes
            run = e.runs(lr=lr)["gd"]
            stop = run.diverged_at or len(run.path)
            (path_line,) = [l for l in ax_path.lines if l.get_label() == "GD"]
            np.testing.assert_array_equal(path_line.get_xydata(), run.path[:stop])
            (loss_line,) = [l for l in ax_loss.lines if l.get_label() == "GD"]
            np.testing.assert_array_equal(loss_line.get_ydata(), run.values[:stop])
            diverged_notes = [t.get_text() for t in ax_path.texts]
            assert diverged_notes == ([f"diverged (step {run.diverged_at})"]
                                      if run.diverged else [])
            assert foundations.gd_regime(lr, 10.0) in fig._suptitle.get_text()
            ylims.append(ax_loss.get_ylim())
            fig.canvas.draw()
        html_text = e.static_html()
    assert len(set(ylims)) == 1                        # frames share the loss axis
    assert 'class="optbook-figure"' in html_text        # computed in the page
    assert e.spec["params"][0]["min"] == min(e.grid["lr"])


def test_optimizer_explorer_is_one_call_for_several_optimizers():
    land = landscapes.quadratic(25.0)
    e = figures.optimizer_explorer(
        lambda lr, beta: {"sgd": optbook.sgd(lr), "momentum": optbook.momentum(lr, beta)},
        grid={"lr": [0.01, 0.04], "beta": [0.5, 0.9]}, landscape=land,
        labels={"lr": "η", "beta": "β"}, title="η = {lr:g}, β = {beta:g}", steps=20)
    runs = e.runs(lr=0.04, beta=0.9)
    assert list(runs) == ["sgd", "momentum"]
    fig = e.figure(lr=0.04, beta=0.9)
    labels = [l.get_label() for l in fig.axes[1].lines if not l.get_label().startswith("_")]
    assert labels == ["SGD", "Momentum"]
    assert fig._suptitle.get_text() == "η = 0.04, β = 0.9"
    assert e.title == "optimizer paths on quadratic (κ = 25)"
    with pytest.raises(ValueError, match="Invalid optimizer name"):
        figures.optimizer_runs(lambda: {"adamax": optbook.sgd(0.1)}, {}, land)
    with pytest.raises(ValueError, match="Invalid make result"):
        figures.optimizer_runs(lambda: [optbook.sgd(0.1)], {}, land)


def test_schedule_figure_is_computed_in_the_page():
    """Chapter 6.1: a schedule-kind spec, continuous controls, the still image from draw_nqm."""
    from optbook.experiments import schedules as S

    e = schedules.schedule_figure(shape="wsd", peak=0.5, warmup_frac=0.0, cooldown_frac=0.1)
    spec = e.spec
    assert spec["kind"] == "schedule" and spec["steps"] == 200
    assert [c["value"] for c in spec["choices"]] == list(S.NQM_SHAPES)
    assert spec["choices"][spec["choice"]]["value"] == "wsd"
    ranges = {p["name"]: (p["min"], p["max"], p["value"], p["scale"]) for p in spec["params"]}
    assert ranges == {"peak": (0.05, 1.99, 0.5, "linear"), "warmup_frac": (0.0, 0.5, 0.0, "linear"),
                      "cooldown_frac": (0.005, 1.0, 0.1, "linear"),
                      "noise": (0.0, 2.0, 1.0, "linear")}
    # the cooldown-shape and final-rate menus: optbook's shapes, 0 or 10 % of the peak
    assert [c["value"] for c in spec["cooldowns"]] == list(S.NQM_COOLDOWNS) == \
        ["linear", "1-sqrt", "cosine"]
    assert [c["value"] for c in spec["ends"]] == [0.0, 0.1] and spec["end"] == 0
    assert spec["cooldowns"][spec["cooldown"]]["value"] == "linear"
    other = schedules.schedule_figure(cooldown="1-sqrt", end_frac=0.1, noise=0.5).spec
    assert other["cooldowns"][other["cooldown"]]["value"] == "1-sqrt" and other["end"] == 1
    assert {p["name"]: p["value"] for p in other["params"]}["noise"] == 0.5
    # the still image / kernel widget draws the same options (draw_nqm)
    assert set(e.grid) == {"shape", "cooldown", "end_frac", "peak", "warmup_frac",
                           "cooldown_frac", "noise"}
    assert e.grid["cooldown"] == ("linear", "1-sqrt", "cosine") and e.grid["end_frac"] == (0.0, 0.1)
    # the page gets exactly the numbers nqm_loss uses: 20 log-spaced curvatures
    # from 1 to 0.01, at 6 significant digits (no digit that depends on a kernel)
    assert spec["curvatures"] == list(S.NQM_CURVATURES)
    np.testing.assert_allclose(spec["curvatures"], np.geomspace(1.0, 0.01, 20), rtol=1e-5)
    assert all(c == float(f"{c:.6g}") for c in spec["curvatures"])
    text = repr(e)
    assert text.startswith("Figure: Schedules on the noisy quadratic")
    assert "schedule: [constant, cosine, linear, wsd]" in text and "optimizers" not in text
    html_text = e.static_html()
    assert 'data-optbook-kind="schedule"' in html_text and html_text.count("data:image/png") == 1
    assert len(html_text) < 100_000
    with pytest.raises(ValueError, match="Invalid shape"):
        schedules.schedule_figure(shape="step")
    with pytest.raises(ValueError, match="Invalid cooldown"):
        schedules.schedule_figure(cooldown="exp")
    with pytest.raises(ValueError, match="Invalid end_frac"):
        schedules.schedule_figure(end_frac=0.05)


# --- stored-runs figures (optbook.figures.runs, optbook.figures.heatmap) ---------------------------------------

from optbook.figures.runs import Axis, Curve, Mark, Panel, Series, round_sig  # noqa: E402


def test_round_sig_keeps_four_significant_digits_and_stores_non_finite_as_null():
    assert round_sig(3.14159265) == 3.142
    assert round_sig(-0.000123456) == -0.0001235
    assert round_sig(123456.0) == 123500.0
    assert round_sig(float("nan")) is None and round_sig(float("inf")) is None


def _grid_data(lr, opt):
    """Curves whose values encode their grid point: seed s at step t is lr * (t + 1) + s/10
    (+100 for "b"), so a stored point can be traced back to where it came from."""
    t = np.arange(5)
    return {"a": np.array([lr * (t + 1) + s / 10 for s in range(3)]),
            "b": np.array([lr * (t + 1) + s / 10 + (100 if opt == "b" else 0) for s in range(3)])}


def test_curves_figure_stores_every_grid_point_in_product_order():
    lrs, opts = [0.1, 0.2, 0.4], ["a", "b"]
    e = figures.curves_figure(_grid_data, axes=[Axis("lr", "η", lrs, default=0.2), Axis("opt", "case", opts)],
                              panels=[Panel("loss", x=[0, 1, 2, 3, 4])], title="t", headline="η = {lr}")
    spec = e.spec
    assert spec["kind"] == "runs"
    assert [(a["numeric"], a["value"], a["labels"]) for a in spec["axes"]] == \
        [(True, 1, ["0.1", "0.2", "0.4"]), (False, 0, ["a", "b"])]
    assert len(spec["points"]) == 6
    for k, (lr, opt) in enumerate(itertools.product(lrs, opts)):
        stored = spec["points"][k]["panels"][0]["series"]
        want = _grid_data(lr, opt)
        for name in ("a", "b"):
            np.testing.assert_allclose(stored[name]["y"], want[name], rtol=5e-4)
    assert [s["name"] for s in spec["series"]] == ["a", "b"]       # found in the data, in order
    # the axes cover every point's data (not only the default's)
    lo, hi = spec["panels"][0]["y"]["domain"]
    assert lo < 0.1 and hi > 100 + 0.4 * 5
    text = repr(e)
    assert "η (lr, slider): [0.1, 0.2, 0.4], default 0.2" in text and "case (opt, menu)" in text
    html_text = e.static_html()
    assert html_text.count("data:image/png") == 1 and 'data-optbook-kind="runs"' in html_text


def test_curves_figure_colours_are_css_and_references_keep_their_own():
    """The page draws with the stored colour string, so a matplotlib cycle code ("C1"),
    which draws nothing there, is refused by name; a reference series is grey unless it
    names its own colour (two references must stay apart)."""
    from optbook.figures.runs import Series

    kw = dict(axes=[Axis("lr", "η", [0.1, 0.2]), Axis("opt", "case", ["a", "b"])],
              panels=[Panel("loss", x=[0, 1, 2, 3, 4])],
              title="t")
    with pytest.raises(ValueError, match="Invalid color for series 'b': 'C1'"):
        figures.curves_figure(_grid_data, series=[Series("a"), Series("b", color="C1")], **kw)
    e = figures.curves_figure(_grid_data, series=[Series("a", reference=True),
                                                  Series("b", color="#444444", reference=True)],
                              **kw)
    assert [s["color"] for s in e.spec["series"]] == ["#999999", "#444444"]


def test_curves_figure_stores_divergence_as_null_and_marks_notes():
    y = np.array([[1.0, 0.5, 0.25], [1.0, np.nan, np.nan], [1.0, np.inf, 2.0]])
    e = figures.curves_figure({(): {"sgd": y}}, panels=[Panel(x=[1, 2, 3], marks=[Mark("hline", y=1.0)])],
                              marks={(): [Mark("vline", x=2, label="here")]},
                              notes={(): ["seed 1 diverged"]}, title="t")
    point = e.spec["points"][0]
    assert point["panels"][0]["series"]["sgd"]["y"] == [[1.0, 0.5, 0.25], [1.0, None, None], [1.0, None, 2.0]]
    assert point["panels"][0]["marks"] == [{"type": "vline", "x": 2.0, "label": "here"}]
    assert point["notes"] == ["seed 1 diverged"]
    assert e.spec["panels"][0]["marks"] == [{"type": "hline", "y": 1.0}]
    assert e.figure() is not None                  # the still image draws from the stored data


def test_curves_figure_own_x_per_curve_and_several_panels():
    e = figures.curves_figure(
        {"a": [{"s": Curve([1.0, 2.0], x=[1e-3, 1e-2])}, {"s": np.ones((2, 3))}],
         "b": [{"s": Curve([3.0, 4.0, 5.0], x=[1e-3, 1e-2, 1e-1])}, {}]},
        axes=[Axis("k", "run", ["a", "b"])],
        panels=[Panel(xscale="log", readout="none"), Panel(x=[0, 1, 2], readout="min")], title="t")
    a, b = e.spec["points"]
    assert a["panels"][0]["series"]["s"] == {"y": [[1.0, 2.0]], "x": [0.001, 0.01]}
    assert b["panels"][1]["series"] == {}          # missing series: not drawn there
    assert e.spec["panels"][0]["x"]["domain"] == [0.001, 0.1]


@pytest.mark.parametrize("kwargs, match", [
    (dict(data={0.1: {"s": np.ones((2, 3))}}, axes=[Axis("lr", "η", [0.1, 0.2])], panels=[Panel(x=[0, 1, 2])]),
     "no entry for grid point"),
    (dict(data={(): {"s": np.ones((2, 3))}}, panels=[Panel(x=[0, 1])]), "3 values for 2 x values"),
    (dict(data={(): {"s": np.ones((2, 3))}}, panels=[Panel(x=[0, 1, 2], readout="last")]), "Invalid Panel readout"),
    (dict(data={(): {"s": np.ones((2, 3))}}, panels=[Panel(x=[0, 1, 2])], series=[Series("t")]),
     "series \\['s'\\] not in series"),
    (dict(data={(): {"s": np.ones((2, 3))}}), "no x"),
    (dict(data={0.1: {}}, axes=[Axis("lr", "η", [0.1], default=0.3)]), "Invalid Axis 'lr' default"),
    (dict(data={0.1: {}}, axes=[Axis("lr", "η", [0.1, 0.1])]), "repeated values"),
    (dict(data={(): {"s": np.ones((2, 3))}}, panels=[Panel(x=[0, 1, 2])], marks={(): [Mark("vline")]}),
     "a vline needs a finite x"),
])
def test_curves_figure_rejects_bad_input_by_name(kwargs, match):
    data = kwargs.pop("data")
    with pytest.raises(ValueError, match=match):
        figures.curves_figure(data, title="t", **kwargs)


def test_heatmap_figure_stores_seeds_and_selects_the_best_mean():
    rng = np.random.default_rng(1)
    a = rng.random((3, 4, 5)) + 1.0
    b = rng.random((3, 4, 5)) + 1.0
    b[:, 2, 3] = 0.1                          # clearly the best cell of b
    b[1, 0, 0] = np.nan                       # a diverged seed: never the best, stored as null
    b[:, 0, 0] = [0.0, np.nan, 0.0]
    curves = {"A": rng.random((3, 4, 5, 6)), "B": rng.random((3, 4, 5, 6))}
    e = figures.heatmap_figure({"A": a, "B": b}, x=("lr", "η", np.geomspace(1e-4, 1e-2, 5)),
                               y=("wd", "λ", [0.0, 0.01, 0.1, 1.0]), title="grid",
                               curves=curves, curves_x=np.arange(6) * 10)
    spec = e.spec
    assert spec["kind"] == "heatmap"
    np.testing.assert_allclose(np.array(spec["panels"][0]["values"], dtype=float), a, rtol=5e-4)
    assert spec["panels"][1]["values"][1][0][0] is None
    mean_a = a.mean(axis=0)
    assert spec["selected"] == list(np.unravel_index(mean_a.argmin(), mean_a.shape))
    from optbook.figures.heatmap import _best_cell
    assert _best_cell(b, "min") == (2, 3)
    assert spec["x"]["labels"] == ["0.0001", "0.000316", "0.001", "0.00316", "0.01"]
    cell = spec["curves"]["data"][1][2][3]["y"]
    np.testing.assert_allclose(cell, curves["B"][:, 2, 3], rtol=5e-4)
    assert "panels: A, B" in repr(e)
    assert e.static_html().count("data:image/png") == 1


@pytest.mark.parametrize("kwargs, match", [
    (dict(values={"A": np.ones((3, 2, 2))}, x=("lr", "η", [1, 2, 3]), y=("wd", "λ", [1, 2])), "expected \\(seeds, 2, 3\\)"),
    (dict(values={"A": np.ones((3, 2, 2))}, x=("lr", "η", [1, 2]), y=("wd", "λ", [1, 2]), best="lowest"), "Invalid best"),
    (dict(values={"A": np.ones((3, 2, 2))}, x=("lr", [1, 2]), y=("wd", "λ", [1, 2])), "Invalid x"),
    (dict(values={"A": np.ones((3, 2, 2))}, x=("lr", "η", [1, 2]), y=("wd", "λ", [1, 2]),
          curves={"A": np.ones((3, 2, 2, 4))}), "Invalid curves_x"),
    (dict(values={"A": np.ones((3, 2, 2))}, x=("lr", "η", [1, 2]), y=("wd", "λ", [1, 2]),
          selected=(2, 0)), "Invalid selected"),
])
def test_heatmap_figure_rejects_bad_input_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        figures.heatmap_figure(title="t", **kwargs)
