"""The page computes what optbook computes: every update rule, landscape and schedule.

The figure runtime (``js/``, bundled by ``npm run build`` into
``book/_static/optbook-figures.js``) re-implements optbook's update rules,
landscapes and schedules in JavaScript so that a figure can redraw on every
slider move without a kernel.  Here the bundle runs in headless chromium
(no network) and its numbers are compared with optbook's in float64:

* every rule x every landscape x 3 settings, 200 steps from the landscape's
  start: max relative difference of the path and the values <= 1e-9, and the
  same verdict (converged, or diverged at the same step);
* every schedule x 3 settings over 1,000 steps: max relative difference <= 1e-9;
* chapter 6.1's noisy-quadratic figure: every schedule shape x several settings,
  the rates and the expected loss against ``optbook.experiments.schedules``
  (``nqm_schedule``, ``nqm_loss``), max relative difference <= 1e-9.

The oracle is optbook itself (``optbook.figures.spec.spec_runs`` builds the
optimizer with optbook's own constructors and runs ``landscapes.trajectory``).
The bundle is ``$OPTBOOK_FIGURES_JS`` (default ``book/_static/optbook-figures.js``).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from optbook import landscapes
from optbook.figures import spec as F

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = Path(os.environ.get("OPTBOOK_FIGURES_JS")
              or ROOT / "book" / "_static" / "optbook-figures.js")
CHROMIUM = os.environ.get("OPTBOOK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
STEPS = 200
TOL = 1e-9

if not BUNDLE.is_file():
    message = f"no figure runtime at {BUNDLE}: run `npm ci && npm run build`"
    if os.environ.get("OPTBOOK_REQUIRE_SITE") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)

# name -> (landscape, learning rate for gradient-scaled rules, for sign/adaptive rules)
LANDSCAPES = {
    "quadratic": (landscapes.quadratic(10.0), 0.05, 0.05),
    "quadratic rotated": (landscapes.quadratic(25.0, angle=0.5), 0.02, 0.05),
    "rosenbrock": (landscapes.rosenbrock(), 1e-3, 0.02),
    "beale": (landscapes.beale(), 5e-3, 0.05),
    "saddle": (landscapes.saddle(), 0.1, 0.05),
    "himmelblau": (landscapes.himmelblau(), 0.01, 0.1),
}

# rule -> three settings: ("gd" | "adaptive" base rate, multiplier, other hyperparameters)
SETTINGS = {
    "sgd": [("gd", 1, {}), ("gd", 3, {"weight_decay": 0.01}), ("gd", 30, {})],
    "momentum": [("gd", 1, {"beta": 0.5}), ("gd", 1, {"beta": 0.9}),
                 ("gd", 10, {"beta": 0.95, "dampening": 0.5})],
    "nesterov": [("gd", 1, {"beta": 0.5}), ("gd", 1, {"beta": 0.9, "weight_decay": 0.01}),
                 ("gd", 10, {"beta": 0.95})],
    "adagrad": [("adaptive", 1, {}), ("adaptive", 10, {"initial_accumulator_value": 0.1}),
                ("adaptive", 1, {"eps_inside_sqrt": True, "eps": 1e-6})],
    "rmsprop": [("adaptive", 1, {"decay": 0.9}), ("adaptive", 1, {"decay": 0.99, "centered": True}),
                ("adaptive", 1, {"decay": 0.999, "momentum": 0.9})],
    "adam": [("adaptive", 1, {}), ("adaptive", 1, {"b1": 0.5, "b2": 0.9, "amsgrad": True}),
             ("adaptive", 3, {"b1": 0.99, "b2": 0.99, "weight_decay": 0.01})],
    "adam without bias correction": [
        ("adaptive", 1, {"bias_correction": False}),
        ("adaptive", 1, {"b1": 0.5, "b2": 0.9, "bias_correction": False}),
        ("adaptive", 3, {"b1": 0.99, "b2": 0.99, "bias_correction": False})],
    "adamw": [("adaptive", 1, {"weight_decay": 0.01}), ("adaptive", 1, {"weight_decay": 0.1, "b1": 0.8}),
              ("adaptive", 10, {"weight_decay": 0.0})],
    "lion": [("adaptive", 0.3, {}), ("adaptive", 0.3, {"b1": 0.95, "b2": 0.98, "weight_decay": 0.1}),
             ("adaptive", 3, {})],
    "sophia (exact Hessian diagonal)": [
        ("adaptive", 1, {}), ("adaptive", 1, {"b1": 0.9, "rho": 0.5, "weight_decay": 0.0}),
        ("adaptive", 1, {"rho": 1.0, "denominator": "paper"})],
    "sophia (Hutchinson)": [
        ("adaptive", 1, {}), ("adaptive", 1, {"b1": 0.9, "rho": 0.5, "weight_decay": 0.0}),
        ("adaptive", 1, {"rho": 1.0, "denominator": "paper"})],
}


def _rule(label):
    return {"adam without bias correction": "adam"}.get(label, label.split(" ")[0])


def _cases():
    probes = np.where(np.random.default_rng(7).random((STEPS, 2)) < 0.5, -1.0, 1.0)
    noise = np.random.default_rng(3).standard_normal((STEPS, 2))
    cases = []
    for land_name, (land, gd_lr, adaptive_lr) in LANDSCAPES.items():
        for label, settings in SETTINGS.items():
            for k, (kind, mult, hp) in enumerate(settings):
                lr = (gd_lr if kind == "gd" else adaptive_lr) * mult
                opt = {"name": "run", "rule": _rule(label), "args": {"lr": lr, **hp}}
                spec = {"optimizers": [opt], "steps": STEPS, "escape": 10.0,
                        "landscape": F.landscape_spec(land)}
                if label.startswith("sophia"):
                    opt["hessian"] = "hutchinson" if "Hutchinson" in label else "exact"
                    spec["probes"] = probes.ravel().tolist()
                cases.append((f"{label} | {land_name} | setting {k}", land, spec))
    # noisy gradients (the SGD-noise figure) and a schedule as the learning rate
    land = LANDSCAPES["saddle"][0]
    spec = {"optimizers": [{"name": "run", "rule": "sgd", "args": {"lr": 0.2}, "sigma": 0.1}],
            "steps": STEPS, "seed": 3, "noise": noise.ravel().tolist(),
            "landscape": F.landscape_spec(land)}
    cases.append(("sgd with gradient noise | saddle", land, spec))
    land = LANDSCAPES["beale"][0]
    spec = {"optimizers": [{"name": "run", "rule": "adam", "args": {
        "lr": {"schedule": "warmup_cosine", "args": {"peak": 0.3, "warmup_steps": 20,
                                                     "total_steps": 150, "eta_min": None}}}}],
        "steps": STEPS, "landscape": F.landscape_spec(land)}
    cases.append(("adam with warmup_cosine | beale", land, spec))
    return cases


CASES = _cases()

SCHEDULE_SETTINGS = {
    "constant": [{"value": 0.1}, {"value": 3.0}, {"value": 1e-4}],
    "linear_warmup": [{"peak": 0.1, "warmup_steps": 100}, {"peak": 1.0, "warmup_steps": 0},
                      {"peak": 3e-4, "warmup_steps": 999}],
    "step_decay": [{"init": 0.1, "gamma": 0.5, "step_size": 100},
                   {"init": 1.0, "gamma": 0.9, "step_size": 7},
                   {"init": 0.3, "gamma": 1.0, "step_size": 1}],
    "cosine_annealing": [{"peak": 0.1, "total_steps": 1000, "eta_min": 0.0},
                         {"peak": 1.0, "total_steps": 300, "eta_min": 0.01},
                         {"peak": 3e-4, "total_steps": 1, "eta_min": 0.0}],
    "linear_decay": [{"peak": 0.1, "total_steps": 1000, "end": 0.0},
                     {"peak": 1.0, "total_steps": 250, "end": 0.1},
                     {"peak": 0.5, "total_steps": 1, "end": 0.0}],
    "inverse_sqrt": [{"peak": 0.1, "warmup_steps": 1}, {"peak": 1.0, "warmup_steps": 100},
                     {"peak": 7e-4, "warmup_steps": 4000}],
    "warmup_cosine": [{"peak": 0.1, "warmup_steps": 100, "total_steps": 1000, "eta_min": None},
                      {"peak": 1.0, "warmup_steps": 0, "total_steps": 300, "eta_min": 0.0},
                      {"peak": 0.3, "warmup_steps": 50, "total_steps": 51, "eta_min": 0.01}],
    "warmup_stable_decay": [
        {"peak": 0.1, "warmup_steps": 50, "total_steps": 1000, "cooldown_steps": 200},
        {"peak": 1.0, "warmup_steps": 0, "total_steps": 600, "cooldown_steps": 1,
         "end": 0.01, "cooldown": "1-sqrt"},
        {"peak": 0.3, "warmup_steps": 10, "total_steps": 300, "cooldown_steps": 290,
         "end": 0.0, "cooldown": "cosine"}],
    "one_cycle": [{"peak": 0.1, "total_steps": 1000},
                  {"peak": 1.0, "total_steps": 700, "pct_start": 0.25, "anneal": "linear",
                   "three_phase": True},
                  {"peak": 0.3, "total_steps": 333, "pct_start": 0.1, "div_factor": 10.0,
                   "final_div_factor": 100.0}],
    "cosine_restarts": [{"peak": 0.1, "first_period": 100},
                        {"peak": 1.0, "first_period": 7, "period_mult": 2, "eta_min": 0.01},
                        {"peak": 0.3, "first_period": 3, "period_mult": 3}],
}


@pytest.fixture(scope="module")
def page():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        remote = []
        page.on("request", lambda r: remote.append(r.url)
                if not r.url.startswith(("about:", "data:", "file:")) else None)
        page.set_content("<!doctype html><html><head></head><body></body></html>")
        page.add_script_tag(content=BUNDLE.read_text(encoding="utf-8"))
        yield page
        assert not remote, f"the runtime requested {remote}"
        browser.close()


JS_RUN = """([spec]) => {
  const F = window.optbookFigures;
  const land = F.makeLandscape(spec.landscape);
  return F.runAll(spec, land, {}).map(({run}) => ({
    path: Array.from(run.path), values: Array.from(run.values), divergedAt: run.divergedAt}));
}"""


def _max_rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = np.maximum(np.abs(a), np.abs(b))
    diff = np.abs(a - b)
    return float(np.max(np.where(scale > 0, diff / np.where(scale > 0, scale, 1.0), 0.0)))


def test_there_are_enough_cases():
    """Every rule on every landscape, three settings each (the issue's minimum)."""
    assert len(SETTINGS) == 11 and len(LANDSCAPES) == 6
    assert len(CASES) == 11 * 6 * 3 + 2


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_rule_matches_optbook(page, case):
    _, land, spec = case
    expected = F.spec_runs(spec, {}, land=land)["run"]
    (got,) = page.evaluate(JS_RUN, [spec])
    assert got["divergedAt"] == expected.diverged_at, "different verdict"
    path = np.asarray(got["path"]).reshape(-1, 2)
    assert path.shape == expected.path.shape
    assert _max_rel(path, expected.path) <= TOL
    assert _max_rel(got["values"], expected.values) <= TOL


def test_the_cases_cover_both_verdicts():
    """A parity test where nothing diverges would never test the divergence rule."""
    verdicts = {F.spec_runs(spec, {}, land=land)["run"].diverged
                for _, land, spec in CASES}
    assert verdicts == {True, False}


SCHEDULE_CASES = [(name, args) for name, settings in SCHEDULE_SETTINGS.items() for args in settings]


@pytest.mark.parametrize("name,args", SCHEDULE_CASES,
                         ids=[f"{n}-{k % 3}" for k, (n, _) in enumerate(SCHEDULE_CASES)])
def test_schedule_matches_optbook(page, name, args):
    expected = F.make_schedule({"schedule": name, "args": args})(np.arange(1000))
    got = page.evaluate("""([rate]) => { const eta = window.optbookFigures.makeRate(rate);
                           return Array.from({length: 1000}, (_, t) => eta(t)); }""",
                        [{"schedule": name, "args": args}])
    assert _max_rel(got, expected) <= TOL


def test_every_rule_and_schedule_of_the_runtime_is_tested(page):
    """A rule added to the runtime without a parity case fails here."""
    rules = set(page.evaluate("() => Object.keys(window.optbookFigures.RULES)"))
    schedules = set(page.evaluate("() => Object.keys(window.optbookFigures.SCHEDULES)"))
    lands = set(page.evaluate("() => Object.keys(window.optbookFigures.LANDSCAPES)"))
    assert rules == {_rule(label) for label in SETTINGS} == set(F.RULES)
    assert schedules == set(SCHEDULE_SETTINGS) == set(F.SCHEDULES)
    assert lands == {land.name for land, _, _ in LANDSCAPES.values()} == set(landscapes.LANDSCAPES)


# chapter 6.1's figure: (shape, peak, warmup_frac, cooldown_frac); the fractions
# include values whose step counts are exact halves (Python's round goes to even)
NQM_SETTINGS = [(shape, peak, warm, cool)
                for shape in ("constant", "cosine", "linear", "wsd")
                for peak, warm, cool in [(0.5, 0.0, 0.1), (1.0, 0.0125, 0.4), (1.99, 0.5, 1.0),
                                         (0.05, 0.2, 0.005), (1.9, 0.0175, 0.0125),
                                         (0.731, 0.333, 0.7)]]


def test_nqm_figure_spec_uses_the_experiments_curvatures():
    from optbook.experiments import schedules as S

    spec = S.schedule_figure().spec
    assert spec["kind"] == "schedule" and [c["value"] for c in spec["choices"]] == list(S.NQM_SHAPES)
    etas = S.nqm_schedule("cosine", 1.0, spec["steps"])
    assert np.array_equal(S.nqm_loss(etas), S.nqm_loss(etas, curvatures=spec["curvatures"],
                                                        noise=spec["noise"], start=spec["start"]))


@pytest.mark.parametrize("setting", NQM_SETTINGS, ids=[",".join(map(str, s)) for s in NQM_SETTINGS])
def test_nqm_figure_matches_the_experiment(page, setting):
    from optbook.experiments import schedules as S

    spec = S.schedule_figure().spec
    shape, peak, warm, cool = setting
    etas = S.nqm_schedule(shape, peak, spec["steps"], warm, cool)
    loss = S.nqm_loss(etas)
    got = page.evaluate("""([spec, shape, peak, warm, cool]) => {
        const F = window.optbookFigures;
        const etas = F.nqmSchedule(shape, peak, spec.steps, warm, cool);
        const loss = F.nqmLoss(etas, spec.curvatures, spec.noise, spec.start);
        return {etas: Array.from(etas), loss: Array.from(loss)}; }""",
                        [spec, shape, peak, warm, cool])
    assert len(got["etas"]) == len(etas) and len(got["loss"]) == len(loss)
    assert _max_rel(got["etas"], etas) <= TOL
    assert _max_rel(got["loss"], loss) <= TOL
