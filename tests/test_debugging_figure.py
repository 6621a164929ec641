"""debugging.symptom_explorer: the symptom grid stored for the page, number for number.

Oracle: a hand-made grid whose losses encode (lr, tau, warmup, seed, step), with a run
that diverged (NaN after step 5), so every stored number can be traced to its cell.
"""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from optbook.experiments import debugging as G  # noqa: E402

LRS, TAUS, WARMUPS, STEPS = (0.01, 0.1, 1.0), (None, 1.0), (0, 50), 12


def fake_grid():
    grid = {}
    for i, lr in enumerate(LRS):
        for j, tau in enumerate(TAUS):
            for k, w in enumerate(WARMUPS):
                loss = np.array([[1 + i + j / 10 + k / 100 + s / 1000 + t / 1e5 for t in range(STEPS)]
                                 for s in range(3)])
                symptoms = ["healthy", "healthy", "healthy"]
                if lr == 1.0 and tau is None:
                    loss[1, 5:] = np.nan
                    symptoms[1] = "NaN/inf loss"
                grid[(lr, tau, w)] = {"loss": loss, "symptoms": symptoms}
    return grid


def test_every_cell_is_stored_with_its_seeds_and_symptoms():
    grid = fake_grid()
    e = G.symptom_explorer(grid)
    spec = e.spec
    assert [(a["name"], a["numeric"], a["labels"]) for a in spec["axes"]] == [
        ("lr", True, ["0.01", "0.1", "1"]), ("tau", False, ["off", "1"]), ("warmup", False, ["0", "50"])]
    assert spec["panels"][0]["x"]["values"] == list(range(1, STEPS + 1))
    for n, (lr, tau, w) in enumerate((a, b, c) for a in LRS for b in TAUS for c in WARMUPS):
        point = spec["points"][n]
        stored = point["panels"][0]["series"]["sgd"]["y"]
        want = grid[(lr, tau, w)]["loss"]
        assert [v is None for v in np.ravel(np.array(stored, dtype=object))] == list(np.isnan(want).ravel())
        np.testing.assert_allclose(np.array(stored, dtype=float)[~np.isnan(want)], want[~np.isnan(want)],
                                   rtol=5e-4)
        assert point["notes"] == ["symptom per seed (G.diagnose): " + ", ".join(grid[(lr, tau, w)]["symptoms"])]


def test_the_still_image_is_draw_symptom_frame():
    e = G.symptom_explorer(fake_grid())
    fig = e.figure(lr=1.0, tau="off", warmup=50)
    assert fig.axes[0].get_title().startswith("η = 1, no clipping, warmup 50")
    assert e.static_html().count("data:image/png") == 1
