"""lr_finder.range_test_explorer: the range tests and sweeps stored for the page, number for number.

Oracle: hand-made range tests and sweeps whose values encode (optimizer, seed, step), so
every stored number can be traced back to the array it came from; the page's
drawing of them is tested in tests/browser (test_figures.py, test_stored_figures.py).
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
