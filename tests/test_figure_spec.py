"""In-page figures: specs traced from ordinary ``make`` functions, and their HTML.

Oracles: optbook itself -- a spec, run back through optbook's constructors
(``figures.spec.spec_runs``), must give bit for bit the trajectories of the
``make`` function it was traced from, at the default and at other slider
values; NumPy's generator for the noise; html.parser for the HTML.  (That the
page computes the same numbers is tests/browser/test_figure_parity.py.)
"""
import json
import re
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import optbook  # noqa: E402
from optbook import figures, landscapes, schedules  # noqa: E402
from optbook.experiments import adam as A  # noqa: E402
from optbook.experiments import momentum as M  # noqa: E402
from optbook.experiments import sgd as S  # noqa: E402
from optbook.figures import spec as F  # noqa: E402


def adam_explorer(**kw):
    return figures.optimizer_explorer(
        lambda lr, b1, b2: {"adam": optbook.adam(lr, b1, b2)},
        grid={"lr": [0.03, 0.1], "b1": [0.9, 0.99], "b2": [0.9, 0.999]},
        defaults={"lr": 0.1, "b1": 0.9, "b2": 0.999}, landscape=landscapes.rosenbrock(),
        steps=40, labels={"lr": "η", "b1": "β₁", "b2": "β₂"}, **kw)


def test_the_notebook_calls_become_specs_with_slider_references():
    e = adam_explorer()
    (opt,) = e.spec["optimizers"]
    assert opt["rule"] == "adam" and opt["args"]["lr"] == {"param": "lr"}
    assert opt["args"]["b1"] == {"param": "b1"} and opt["args"]["eps"] == 1e-8
    assert [p["scale"] for p in e.spec["params"]] == ["log", "log1m", "log1m"]
    assert [(p["min"], p["max"], p["value"]) for p in e.spec["params"]] == \
        [(0.03, 0.1, 0.1), (0.9, 0.99, 0.9), (0.9, 0.999, 0.999)]


@pytest.mark.parametrize("values", [{"lr": 0.1, "b1": 0.9, "b2": 0.999},
                                    {"lr": 0.047, "b1": 0.95, "b2": 0.9},
                                    {"lr": 0.03, "b1": 0.99, "b2": 0.93}])
def test_a_spec_means_what_make_meant_off_the_grid_too(values):
    e = adam_explorer()
    expected = e.runs(**{k: v for k, v in values.items()}) if all(
        v in e.grid[k] for k, v in values.items()) else figures.optimizer_runs(
        lambda lr, b1, b2: {"adam": optbook.adam(lr, b1, b2)}, values,
        landscapes.rosenbrock(), steps=40)
    got = F.spec_runs(e.spec, values, land=landscapes.rosenbrock())
    np.testing.assert_array_equal(got["adam"].path, expected["adam"].path)


def test_imported_names_keyword_arguments_and_schedules_are_traced():
    from optbook.experiments import adaptive as A
    e = A.rmsprop_explorer(kappa=20.0, steps=30)     # adagrad/rmsprop imported by name
    assert [o["rule"] for o in e.spec["optimizers"]] == ["adagrad", "rmsprop"]
    assert e.spec["optimizers"][1]["args"]["decay"] == {"param": "decay"}
    w = figures.optimizer_explorer(
        lambda warmup: {"adam": optbook.adam(schedules.warmup_cosine(0.3, warmup, 80))},
        grid={"warmup": [1, 5, 40]}, defaults={"warmup": 5}, landscape=landscapes.beale(),
        steps=80)
    lr = w.spec["optimizers"][0]["args"]["lr"]
    assert lr == {"schedule": "warmup_cosine", "args": {
        "peak": 0.3, "warmup_steps": {"param": "warmup"}, "total_steps": 80, "eta_min": None}}
    assert w.spec["params"][0]["scale"] == "int"


@pytest.mark.parametrize("make", [
    lambda lr: {"sgd": optbook.sgd(2 * lr)},                          # derived value
    lambda lr: {"sgd": optbook.chain(optbook.sgd(lr))},                 # a custom chain
    lambda lr: {"adamw": optbook.adamw(lr, mask=lambda p: True)},     # a mask
])
def test_what_a_spec_cannot_say_falls_back_to_frames(make):
    e = figures.optimizer_explorer(make, grid={"lr": [0.01, 0.02]},
                                   landscape=landscapes.quadratic(5.0), steps=10)
    assert e.spec is None
    assert 'class="optbook-widget"' in e.static_html()   # the frame-per-point twin


def test_tracing_leaves_optbook_untouched():
    before = (optbook.adam, optbook.sgd, schedules.warmup_cosine)
    adam_explorer()
    with pytest.raises(ZeroDivisionError):
        F.trace_optimizers(lambda lr: 1 / 0, {"lr": 0.1})
    assert (optbook.adam, optbook.sgd, schedules.warmup_cosine) == before
    # Adam's first step is eta * sign(g) per coordinate (m_hat / sqrt(v_hat) = g / |g|)
    run = landscapes.trajectory(optbook.adam(0.1), landscapes.quadratic(1.0), steps=1)
    np.testing.assert_allclose(run.path[1] - run.path[0], [0.1, -0.1], rtol=1e-6)


def test_noise_in_the_spec_is_the_noise_trajectory_draws():
    e = S.sgd_noise_figure(steps=50)
    values = {"lr": 0.35, "noise_std": 0.07}
    got = F.spec_runs(e.spec, values, land=landscapes.saddle())["sgd"]
    expected = landscapes.trajectory(optbook.sgd(0.35), landscapes.saddle(), np.array([1.5, 0.0]),
                                     50, noise_std=0.07, seed=0)
    np.testing.assert_array_equal(got.path, expected.path)
    assert len(e.spec["noise"]) == 100


def test_momentum_figure_matches_the_chapter_experiment():
    e = M.momentum_figure()
    assert [c["label"] for c in e.spec["choices"]] == list(M.EXPLORER_LANDSCAPES)
    for c in e.spec["choices"]:
        land = M.EXPLORER_LANDSCAPES[c["label"]][0]()
        got = F.spec_runs(e.spec, {"lr_scale": 2.0, "beta": 0.95, **c["constants"]},
                          land=land, steps=c["steps"])
        expected = M.explorer_runs(c["label"], 2.0, 0.95)
        for name in ("momentum", "nesterov"):
            np.testing.assert_array_equal(got[name].path, expected[name].path)


def _spectral_radius(a, b, nesterov=False):
    if nesterov:
        m = np.array([[1 - a * (1 + b), -b * b], [a, b]])
    else:
        m = np.array([[1 + b - a, -b], [1.0, 0.0]])
    return max(abs(np.linalg.eigvals(m)))


@pytest.mark.parametrize("b", [0.05, 0.3, 0.6, 0.9])
def test_phase_figure_boundaries_are_where_optbook_starts_to_diverge(b):
    """The closed forms the diagram draws, a < 2(1+b) and a < 2(1+b)/(1+2b), against
    optbook's momentum and Nesterov on a 1-D quadratic (via the 2-D one, lambda = L)."""
    e = M.heavy_ball_phase_figure(kappa=1.0, steps=400)
    land = landscapes.quadratic(1.0)
    for rule, limit in (("momentum", 2 * (1 + b)), ("nesterov", 2 * (1 + b) / (1 + 2 * b))):
        for a, stable in ((0.97 * limit, True), (1.03 * limit, False)):
            assert (_spectral_radius(a, b, rule == "nesterov") < 1) == stable
            runs = F.spec_runs({**e.spec, "optimizers": [o for o in e.spec["optimizers"]
                                                         if o["name"] == rule]},
                               {"eta_L": a, "beta": b}, land=land)
            assert runs[rule].diverged != stable, (rule, a, b)


def test_new_figures_have_continuous_controls_and_draw():
    for e in (M.heavy_ball_phase_figure(), A.adam_betas_figure(steps=30),
              M.momentum_figure(), S.sgd_noise_figure(steps=30)):
        assert e.spec is not None
        for p in e.spec["params"]:
            assert p["scale"] in ("log", "log1m", "linear") and p["min"] < p["value"] <= p["max"] \
                or p["min"] <= p["value"] < p["max"]
        assert e.frame()[:8] == b"\x89PNG\r\n\x1a\n"
        json.dumps(e.spec)                             # JSON-able


class Parser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.scripts, self._script = [], [], None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script = dict(attrs)

    def handle_data(self, data):
        if self._script is not None:
            self.scripts.append((self._script, data))

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None


def test_figure_html_is_an_image_a_note_and_the_spec_nothing_else():
    e = adam_explorer(title="</script><b>{lr}")
    text = e.static_html()
    doc = Parser()
    doc.feed(text)
    tags = [t for t, _ in doc.tags]
    assert tags.count("img") == 1 and "input" not in tags and "select" not in tags
    (spec_attrs, data), = doc.scripts
    assert spec_attrs == {"type": "application/json", "class": "optbook-figure-spec"}
    assert json.loads(data) == json.loads(json.dumps(e.spec))
    assert text.count("</script>") == 1                # the title cannot close it early
    assert "enable JavaScript" in text and "run this cell" in text
    without_images = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)
    assert "http" not in without_images and "//" not in without_images
    assert adam_explorer(title="</script><b>{lr}").static_html() == text   # deterministic


def test_plain_text_summary_and_kernel_widget_are_continuous():
    e = adam_explorer()
    assert repr(e).splitlines()[2] == "  η (lr): 0.03 to 0.1 (log scale), default 0.1"
    box = e.widget()
    sliders, image = box.children
    lr = sliders.children[0]
    assert len(lr.options) >= 50
    before = image.value
    lr.value = lr.options[3][1]
    assert image.value != before                       # the kernel redrew


@pytest.mark.parametrize("kwargs, message", [
    (dict(lo=1, hi=1, value=1), "Invalid range"),
    (dict(lo=0, hi=1, value=2), "Invalid default"),
    (dict(lo=0, hi=1, value=0.5, scale="log"), "Invalid range"),
    (dict(lo=0, hi=1, value=0.5, scale="cubic"), "Invalid scale"),
])
def test_param_spec_refuses_bad_ranges(kwargs, message):
    with pytest.raises(ValueError, match=message):
        F.param_spec("x", "x", **kwargs)


@pytest.mark.parametrize("a", [0.01, 0.05, 0.2, 0.6, 1.0, 1.9, 2.5, 3.2, 3.9, 4.4])
@pytest.mark.parametrize("b", [0.02, 0.1, 0.3, 0.5, 0.8, 0.97])
def test_phase_plane_regions_are_the_roots_of_heavy_ball(a, b):
    """optbook.figures.phase.region_of (which the kernel-drawn phase plane
    titles and shades) against the roots numpy finds for heavy ball's
    characteristic polynomial z^2 - (1 + b - a) z + b along one eigenvector."""
    from optbook.figures.phase import region_of

    roots = np.roots([1.0, -(1.0 + b - a), b])
    if np.max(np.abs(roots)) >= 1:
        expected = "diverges"
    elif np.iscomplexobj(roots) and np.max(np.abs(roots.imag)) > 1e-12:
        expected = "under-damped"
    else:
        expected = "over-damped"
    assert region_of(a, b) == expected


def test_phase_figure_still_draws_the_plane_left_of_the_paths():
    """The kernel-side figure (still image and JupyterLab widget) has the
    (ηλ, β) plane as its first panel, a third of its width, with its two dots."""
    import matplotlib
    matplotlib.use("Agg")
    from optbook.figures import static

    e = M.heavy_ball_phase_figure(kappa=10.0, steps=20)
    fig = e.figure(eta_L=1.0, beta=0.5)
    try:
        plane, paths, loss = fig.axes
        assert plane.get_xlabel() == "η λ" and plane.get_ylabel() == "β"
        assert plane.get_xlim() == (0.0, 4.5) and plane.get_ylim() == (0.0, 0.99)
        dots = [tuple(np.ravel(line.get_xydata())) for line in plane.lines if line.get_marker() == "o"]
        assert sorted(dots) == sorted([(1.0, 0.5), (0.1, 0.5)])
        assert plane.get_title() == "η L: under-damped; η μ: under-damped"
    finally:
        static.release(fig)
