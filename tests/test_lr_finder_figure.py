"""lr_finder.range_test_explorer: the range tests and sweeps stored for the page, number for
number; and the regret experiment of section 7.2 (one-cycle schedule, scheduled sweep, regret).

Oracles: hand-made range tests and sweeps whose values encode (optimizer, seed, step), so
every stored number can be traced back to the array it came from (the page's drawing of
them is tested in tests/browser: test_figures.py, test_stored_figures.py); fastai's
``fit_one_cycle`` defaults written out as closed forms; hand-computed interpolations and
rankings; ``lr_sweep`` (the constant-rate arm must reproduce it exactly); hand-computed
start-value factors; and Python's ``statistics`` module for the paired standard error.
"""
import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from optbook.experiments import lr_finder as F  # noqa: E402
from optbook.lr_range_test import LRRangeTestResult  # noqa: E402

SEEDS = (0, 1, 2)


def fake_test(opt, seed, n=20):
    lrs = np.geomspace(1e-5, 10.0, n)
    losses = 1.4 - 0.01 * np.arange(n) + (0.1 if opt == "sgd" else 0.0) + seed / 1000
    smoothed = losses - 0.001
    sugg = {"steep": 1e-3 * (seed + 1), "minimum": 2e-3 * (seed + 1), "valley": None if seed == 2 else 5e-4}
    return LRRangeTestResult(lrs, losses, smoothed, sugg["valley"], 0.1, False, "valley", sugg)


def fake_sweep(opt):
    lrs = np.geomspace(1e-4, 1.0, 5)
    val = np.array([[0.9, 0.5, 0.4 + s / 100, 0.6, math.inf] for s in SEEDS])
    if opt == "sgd":
        val = val + 0.05
    return F.Sweep(opt, lrs, SEEDS, val)


@pytest.fixture(scope="module")
def figure():
    tests = {o: [fake_test(o, s) for s in SEEDS] for o in ("adam", "sgd")}
    sweeps = {o: fake_sweep(o) for o in ("adam", "sgd")}
    return tests, sweeps, F.range_test_explorer(tests, sweeps)


def test_every_optimizer_and_seed_is_stored_from_its_own_range_test(figure):
    tests, sweeps, e = figure
    spec = e.spec
    assert spec["kind"] == "runs"
    assert [(a["name"], a["labels"], a["numeric"]) for a in spec["axes"]] == \
        [("optimizer", ["adam", "sgd"], False), ("seed", ["seed 0", "seed 1", "seed 2"], False)]
    for k, (opt, seed) in enumerate((o, s) for o in ("adam", "sgd") for s in SEEDS):
        left, right = spec["points"][k]["panels"]
        test = tests[opt][seed]
        np.testing.assert_allclose(left["series"]["minibatch"]["y"][0], test.losses, rtol=5e-4)
        np.testing.assert_allclose(left["series"]["smoothed"]["y"][0], test.smoothed, rtol=5e-4)
        np.testing.assert_allclose(left["series"]["minibatch"]["x"], test.lrs, rtol=1e-5)
        # the sweep: every seed's row; a diverged run (inf) stored as null
        stored = right["series"]["sweep"]["y"]
        assert [row[-1] for row in stored] == [None, None, None]
        np.testing.assert_allclose(np.array(stored, dtype=float)[:, :-1],
                                   sweeps[opt].val_loss[:, :-1], rtol=5e-4)
        # one point per rule that suggested something, a dashed line on the sweep, and the band
        labels = [m["label"] for m in left["marks"]]
        want = [f"{r} suggests η = {lr:.2g}" for r, lr in test.suggestions.items() if lr is not None]
        assert labels == want
        assert [m["x"] for m in right["marks"] if m["type"] == "vline"] == \
            pytest.approx([lr for lr in test.suggestions.values() if lr is not None], rel=1e-5)
        band = next(m for m in right["marks"] if m["type"] == "band")
        best = sweeps[opt].lrs[2]
        assert band["x0"] == pytest.approx(best / 1.5, rel=1e-5) and band["x1"] == pytest.approx(best * 1.5, rel=1e-5)
        assert band["label"] == f"best swept rate of seed {seed}: η = {best:.2g}"
    assert spec["panels"][1]["readout"] == "min" and spec["panels"][0]["readout"] == "none"


def test_the_still_image_is_draw_range_test(figure):
    _, _, e = figure
    fig = e.figure(optimizer="sgd", seed="seed 1")
    assert fig.axes[0].get_title() == "range test, sgd, seed 1"
    assert e.static_html().count("data:image/png") == 1


def test_mismatched_tests_and_sweeps_are_refused():
    sweeps = {"adam": fake_sweep("adam")}
    with pytest.raises(ValueError, match="one range test per sweep seed"):
        F.range_test_explorer({"adam": [fake_test("adam", 0)]}, sweeps)


def test_figure_and_explorer_colour_each_rule_alike(figure):
    """Fig 7.1 (the still image, drawn under the book's style, which replaces matplotlib's
    C0/C1/... cycle) and the explorer's marks give each rule the same colour."""
    from matplotlib.colors import to_hex

    from optbook.figures import plotting

    tests, sweeps, e = figure
    with plotting.style_context():
        fig = F.draw_range_test(tests["adam"][0], sweeps["adam"], 0)
    drawn = {line.get_label().split(":")[0]: to_hex(line.get_color())
             for line in fig.axes[0].lines if ":" in line.get_label()}
    assert set(drawn) == {"steep", "minimum", "valley"}
    left = e.spec["points"][0]["panels"][0]["marks"]
    marked = {m["label"].split()[0]: to_hex(m["color"]) for m in left}
    assert drawn == marked == F.RULE_COLORS
    assert len(set(F.RULE_COLORS.values())) == 3


# --- the regret experiment -----------------------------------------------------------------

def test_one_cycle_is_fastais_fit_one_cycle():
    """fastai's defaults: peak/25 at the start, the peak after 25% of the steps, peak/1e5 at
    the end, half-cosine phases; momentum 0.95 -> 0.85 (at the peak) -> 0.95."""
    import torch

    steps, peak = 200, 0.4
    for name in ("sgd", "adam"):
        net = torch.nn.Linear(2, 2)
        opt = F.make_optimizer(name, net.parameters(), peak)
        sched = F.one_cycle_scheduler(opt, peak, steps)
        lrs, moms = [], []
        for _ in range(steps):
            group = opt.param_groups[0]
            lrs.append(group["lr"])
            moms.append(group["momentum"] if name == "sgd" else group["betas"][0])
            opt.step()
            sched.step()
        lrs, moms = np.array(lrs), np.array(moms)
        top = int(np.argmax(lrs))
        assert lrs[0] == pytest.approx(peak / 25, rel=1e-12)
        assert lrs[top] == pytest.approx(peak, rel=1e-12) and top == 0.25 * steps - 1
        assert lrs[-1] == pytest.approx(peak / 1e5, rel=1e-9)
        assert moms[0] == pytest.approx(0.95) and moms[top] == pytest.approx(0.85)
        assert moms[-1] == pytest.approx(0.95)
        # the fall is a half cosine from the peak to peak/1e5 over the remaining steps
        t = np.arange(top, steps)
        pct = (t - top) / (steps - 1 - top)
        want = peak / 1e5 + (peak - peak / 1e5) * (1 + np.cos(np.pi * pct)) / 2
        np.testing.assert_allclose(lrs[top:], want, rtol=1e-9)


def test_regret_interpolates_in_log_rate():
    lrs = np.array([1e-3, 1e-2, 1e-1])
    val = np.array([[0.9, 0.5, 0.7],
                    [0.4, 0.6, math.inf]])
    # seed 0: halfway (in log) between 1e-3 and 1e-2: (0.9 + 0.5)/2 - 0.5 = 0.2
    # seed 1: at 1e-2 exactly: 0.6 - 0.4 = 0.2
    np.testing.assert_allclose(F.regret_at(lrs, val, np.array([10 ** -2.5, 1e-2])), [0.2, 0.2])
    # a quarter of the way from 1e-2 to 1e-1 on seed 0: 0.5 + 0.25 * 0.2 - 0.5 = 0.05
    np.testing.assert_allclose(F.regret_at(lrs, val, np.array([10 ** -1.75, 1e-3]))[0], 0.05)
    # next to a diverged run: inf; outside the sweep or missing: nan
    out = F.regret_at(lrs, val, np.array([2e-4, 0.05]))
    assert math.isnan(out[0]) and out[1] == math.inf
    assert math.isnan(F.regret_at(lrs, val, np.array([np.nan, 1e-3]))[0])
    with pytest.raises(ValueError, match="Invalid lrs"):
        F.regret_at(lrs[::-1], val, np.array([1e-2, 1e-2]))
    with pytest.raises(ValueError, match="Invalid shapes"):
        F.regret_at(lrs, val, np.array([1e-2]))


def test_scheduled_sweep_constant_arm_is_lr_sweep():
    rates, seeds = [1e-2, 1e-1], (0, 1)
    out = F.scheduled_sweep("sgd", rates, seeds, steps=20, eval_every=5)
    assert set(out) == set(F.TARGETS)
    reference = F.lr_sweep("sgd", rates, seeds, steps=20)
    np.testing.assert_array_equal(out["constant"], reference.val_loss)
    assert np.all(out["constant, early stop"] <= out["constant"])
    assert np.all(out["one-cycle, early stop"] <= out["one-cycle"])
    assert not np.array_equal(out["one-cycle"], out["constant"])


def test_rank_rules_by_hand():
    record = {"lrs": [1e-3, 1e-2, 1e-1],
              "best_lr": {"constant": [1e-2, 1e-2, 1e-1]},
              "tests": {"k": {"suggestions": {"valley": [5e-3, 2e-2, 1e-2],
                                              "minimum": [2e-2, 2e-2, 2e-1],
                                              "steep": [1e-1, 1e-1, 1e-1]},
                              "regret": {"constant": {"valley": [0.10, 0.0005, 0.30],
                                                      "minimum": [0.05, 0.0, 0.20],
                                                      "steep": [0.20, "inf", 0.0]}}}}}
    table = F.rank_rules(record, "k", ["constant"])["constant"]
    # seed 0: minimum < valley < steep; seed 1: valley = minimum (within 0.001) < steep (inf);
    # seed 2: steep < minimum < valley
    assert table["valley"]["rank"] == pytest.approx((2 + 1 + 3) / 3)
    assert table["minimum"]["rank"] == pytest.approx((1 + 1 + 2) / 3)
    assert table["steep"]["rank"] == pytest.approx((3 + 3 + 1) / 3)
    assert [table[r]["wins"] for r in ("valley", "minimum", "steep")] == [1, 2, 1]
    assert table["minimum"]["mean"] == pytest.approx(0.25 / 3)
    assert table["steep"]["mean"] == math.inf and table["steep"]["max"] == math.inf
    # below the best rate: valley on seeds 0 and 2; minimum nowhere; steep nowhere
    assert [table[r]["below"] for r in ("valley", "minimum", "steep")] == [2, 0, 0]


def test_regret_rerun_lines_up_with_its_parts():
    out = F.regret_rerun(["mlp"], ["adam"], seeds=[0, 1], steps=10, lr_ranges={"adam": [1e-3, 1e-1]},
                         points_per_decade=1, start_lrs=[1e-5], test_steps=[20])
    record = out["mlp"]["adam"]
    np.testing.assert_allclose(record["lrs"], [1e-3, 1e-2, 1e-1])
    val = F.scheduled_sweep("adam", record["lrs"], (0, 1), steps=10)
    test = record["tests"]["start 1e-05, 20 steps"]
    for target in F.TARGETS:
        np.testing.assert_array_equal(record["val"][target], val[target])
        for rule, sugg in test["suggestions"].items():
            np.testing.assert_array_equal(test["regret"][target][rule],
                                          F.regret_at(record["lrs"], val[target], sugg))
    fresh = F.range_test("adam", seed=1, num_steps=20, start_lr=1e-5)
    assert test["suggestions"]["valley"][1] == fresh.suggestions["valley"]


def _two_start_results(a, b, key_a="start 1e-07, 100 steps", key_b="start 1e-05, 100 steps"):
    """A regret-rerun record holding only the suggestions of two range tests."""
    rules = ("valley", "minimum", "steep")
    return {"mlp": {"adam": {"tests": {key_a: {"suggestions": dict(zip(rules, a))},
                                       key_b: {"suggestions": dict(zip(rules, b))}}}}}


def test_start_value_factors_by_hand():
    nan = float("nan")
    results = _two_start_results(
        a=([1e-3, 8e-3, 2e-3], [1e-2, 1e-2, 1e-2], [nan, 5e-2, 1e-1]),
        b=([4e-3, 1e-3, 2e-3], [1e-2, 1e-2, 1e-2], [1e-2, 1e-1, nan]))
    table = F.start_value_factors(results)["mlp"]["adam"]
    # valley: 1e-3 vs 4e-3 is a factor 4 (downward), 8e-3 vs 1e-3 a factor 8 (upward): 8 on seed 1
    assert table["valley"][0] == pytest.approx(8.0) and table["valley"][1] == 1
    # identical suggestions: factor 1 (the first seed reaching it)
    assert table["minimum"] == (pytest.approx(1.0), 0)
    # steep: seeds 0 and 2 lack a suggestion in one test; seed 1 gives 5e-2 vs 1e-1
    assert table["steep"][0] == pytest.approx(2.0) and table["steep"][1] == 1
    only_nan = _two_start_results(a=([nan], [nan], [nan]), b=([1.0], [1.0], [1.0]))
    factor, seed = F.start_value_factors(only_nan)["mlp"]["adam"]["valley"]
    assert math.isnan(factor) and seed is None


def test_start_value_factors_refuse_bad_arguments():
    results = _two_start_results(a=([1.0], [1.0], [1.0]), b=([1.0], [1.0], [1.0]))
    with pytest.raises(ValueError, match="starts"):
        F.start_value_factors(results, starts=("1e-07",))
    with pytest.raises(ValueError, match="start 1e-07, 1000 steps"):
        F.start_value_factors(results, test_steps=1000)


def _regret_record(regret, key="k", target="constant"):
    return {"tests": {key: {"regret": {target: regret}}}}


def test_paired_margin_against_the_standard_library():
    import statistics
    valley = [0.30, 0.25, 0.40, 0.35]
    minimum = [0.05, 0.10, 0.02, 0.08]
    steep = [0.10, 0.12, 0.09, 0.20]
    m = F.paired_margin(_regret_record({"valley": valley, "minimum": minimum, "steep": steep}),
                        "k", "constant")
    assert (m["winner"], m["runner_up"]) == ("minimum", "steep")
    diff = [s - w for s, w in zip(steep, minimum)]
    assert m["diff"] == pytest.approx(statistics.fmean(diff))
    assert m["se"] == pytest.approx(statistics.stdev(diff) / math.sqrt(len(diff)))
    assert m["seeds_won"] == 4 and m["n"] == 4 and m["decided"]
    # a winner that is ahead on average but behind on half the seeds is within the noise
    noisy = F.paired_margin(_regret_record({"valley": [0.0, 0.5, 0.0, 0.5],
                                            "minimum": [0.3, 0.1, 0.3, 0.1],
                                            "steep": [1.0, 1.0, 1.0, 1.0]}), "k", "constant")
    assert (noisy["winner"], noisy["runner_up"]) == ("minimum", "valley")
    assert noisy["seeds_won"] == 2 and not noisy["decided"]
    # a diverged neighbour (inf regret) in the pair leaves the standard error undefined
    inf = F.paired_margin(_regret_record({"valley": [0.1, 0.2], "minimum": [0.3, "inf"],
                                          "steep": [5.0, 5.0]}), "k", "constant")
    assert inf["runner_up"] == "steep" and inf["decided"]
    broken = F.paired_margin(_regret_record({"valley": [0.1, "inf"], "minimum": [0.3, 0.4],
                                             "steep": ["inf", 0.2]}), "k", "constant")
    assert (broken["winner"], broken["runner_up"]) == ("minimum", "valley")
    assert math.isnan(broken["se"]) and not broken["decided"]
    with pytest.raises(ValueError, match="1 seed"):
        F.paired_margin(_regret_record({"valley": [0.1], "minimum": [0.2], "steep": [0.3]}),
                        "k", "constant")


def test_print_margins_counts_the_decided_lines(capsys):
    record = {"tests": {"k": {"regret": {
        "constant": {"valley": [0.30, 0.25, 0.40], "minimum": [0.05, 0.10, 0.02],
                     "steep": [0.10, 0.12, 0.09]},
        "one-cycle": {"valley": [0.0, 0.5, 0.0], "minimum": [0.3, 0.1, 0.3],
                      "steep": [1.0, 1.0, 1.0]}}}}}
    F.print_margins({"mlp": {"adam": record}}, "k", ("constant", "one-cycle"))
    out = capsys.readouterr().out
    assert "beyond 2 SE" in out and "within 2 SE" in out
    assert out.strip().endswith("lines decided beyond 2 standard errors: 1 of 2")
