"""Tests for chapter 7's experiments (optbook.experiments.lr_finder, decay_and_clipping,
debugging).

Oracles: closed forms (log C at initialization, the one-unit RNN at w = 0, the
clipped step length), torch.nn.utils.clip_grad_norm_ and torch.amp.GradScaler,
hand-built histories for the diagnosis rules, and exact equalities between
arms that must coincide (clipping with an unreachable threshold = no clipping).
"""
import math

import numpy as np
import pytest
import torch
from torch import nn

from optbook.lr_range_test import LRRangeTestResult
from optbook.experiments import debugging as G
from optbook.experiments import decay_and_clipping as D
from optbook.experiments import lr_finder as F
from optbook.experiments.training import History, mlp

torch.set_num_threads(1)


# --- 7.2 -------------------------------------------------------------------------------

def fake_test(suggestions):
    return LRRangeTestResult(lrs=np.array([1e-3, 1e-2]), losses=np.zeros(2),
                             smoothed=np.zeros(2), suggested_lr=None, min_loss_lr=None,
                             stopped_early=False, suggestions=suggestions)


def test_compare_rules_factors_and_regret():
    lrs = np.array([1e-3, 1e-2, 1e-1])
    val = np.array([[0.9, 0.5, 0.7],       # seed 0: best 1e-2
                    [0.4, 0.6, 0.8]])      # seed 1: best 1e-3
    sweep = F.Sweep("adam", lrs, (0, 1), val)
    tests = [fake_test({"steep": 1e-1, "minimum": 1e-2, "valley": 2e-3}),
             fake_test({"steep": 1e-2, "minimum": 1e-3, "valley": 1.2e-3})]
    comp = F.compare_rules(tests, sweep)
    assert comp.rules == ("steep", "minimum", "valley")
    np.testing.assert_allclose(comp.best_lr, [1e-2, 1e-3])
    np.testing.assert_allclose(comp.factor, [[10, 1, 0.2], [10, 1, 1.2]])
    # regret: loss at the swept rate nearest in log, minus the seed's best
    np.testing.assert_allclose(comp.regret, [[0.2, 0.0, 0.4], [0.2, 0.0, 0.0]])
    assert sweep.best_lr == pytest.approx(1e-2)           # mean row: 0.65, 0.55, 0.75
    with pytest.raises(ValueError, match="Invalid tests"):
        F.compare_rules(tests[:1], sweep)


def test_loss_at_initialization_is_near_log_c():
    for seed in (0, 1):
        loss, expected = F.init_loss(seed)
        assert expected == pytest.approx(math.log(4))
        assert abs(loss / expected - 1) < 0.05


def test_one_batch_is_memorised():
    losses = F.overfit_one_batch(seed=0, steps=150)
    assert losses[0] > 1.0 and losses[-1] < 1e-3


def test_sweep_and_range_test_shapes_and_errors():
    sweep = F.lr_sweep("sgd", [1e-2, 1e-1], seeds=(0, 1), steps=5)
    assert sweep.val_loss.shape == (2, 2) and np.all(np.isfinite(sweep.val_loss))
    test = F.range_test("adam", seed=0, num_steps=30)
    assert len(test.lrs) <= 30 and set(test.suggestions) == {"steep", "minimum", "valley"}
    with pytest.raises(ValueError, match="Invalid optimizer"):
        F.make_optimizer("lion", nn.Linear(2, 2).parameters(), 0.1)
    with pytest.raises(ValueError, match="Invalid lrs"):
        F.lr_sweep("adam", [1e-3])


# --- 7.3 -------------------------------------------------------------------------------

def test_decay_rules_split_as_documented():
    model = nn.Sequential(nn.Embedding(10, 4), D.HandWrittenLayerNorm(4), nn.Linear(4, 4),
                          nn.PReLU(4), nn.LayerNorm(4))
    split = D.decay_split(model)
    assert split == {"0.weight": (True, True),        # embeddings: both decay
                     "1.weight": (False, False),      # hand-written LN gain: 1-D
                     "1.bias": (False, False),
                     "2.weight": (True, True), "2.bias": (False, False),
                     "3.weight": (False, False),      # PReLU slopes: 1-D
                     "4.weight": (False, False), "4.bias": (False, False)}
    standard = mlp(5, 3, hidden=8, depth=2, layer_norm=True)
    assert all(a == b for a, b in D.decay_split(standard).values())
    groups = D.decay_groups("all", standard, 0.5)
    assert len(groups) == 1 and groups[0]["weight_decay"] == 0.5
    assert len(groups[0]["params"]) == len(list(standard.parameters()))
    with pytest.raises(ValueError, match="Invalid rule"):
        D.decay_groups("bert", standard, 0.1)


def test_decay_shrinks_gains_only_when_they_are_decayed():
    # AdamW's decoupled decay multiplies by (1 - lr * wd) per step; with wd large the
    # decayed gains must end far below the undecayed ones.
    decayed = D.decay_run("all", 1e-3, 5.0, seed=0, steps=60, record_every=20)
    kept = D.decay_run("param_groups", 1e-3, 5.0, seed=0, steps=60, record_every=20)
    np.testing.assert_array_equal(decayed.record_steps, [0, 20, 40, 60])
    assert decayed.gain_norm[0] == kept.gain_norm[0] == pytest.approx(1.0)
    assert decayed.gain_norm[-1] < 0.85 < 0.95 < kept.gain_norm[-1]


# --- 7.4 -------------------------------------------------------------------------------

def test_cliff_loss_closed_form_at_w_zero():
    b = torch.tensor([-1.0, 0.0, 0.7, 2.0], dtype=torch.float64)
    np.testing.assert_allclose(D.cliff_loss(torch.zeros_like(b), b).numpy(),
                               ((b - 0.7) ** 2).numpy(), rtol=1e-14)


def test_clipped_descent_steps_are_at_most_lr_times_tau():
    path, norms = D.cliff_descent((4.0, -2.5), lr=0.3, iterations=30, clip=1.0)
    steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
    assert np.all(steps <= 0.3 * 1.0 + 1e-9)
    scale = np.minimum(1.0, 1.0 / (norms + 1e-6))      # torch's clip coefficient
    np.testing.assert_allclose(steps, 0.3 * norms * scale, rtol=1e-9)


def test_clip_modes_agree_with_no_clipping_when_tau_is_unreachable():
    base = D.clip_run("none", None, 0.03, seed=1, steps=20, hidden=8, length=10)
    for mode in ("global", "per_tensor"):
        run = D.clip_run(mode, 1e12, 0.03, seed=1, steps=20, hidden=8, length=10)
        # a clip coefficient of exactly 1 is still a float32 multiply: agree to rounding
        np.testing.assert_allclose(run.loss, base.loss, rtol=1e-5)
        np.testing.assert_allclose(run.grad_norm, base.grad_norm, rtol=1e-5)


def test_global_clip_matches_torch():
    # one step of clip_run's "global" mode against torch.nn.utils.clip_grad_norm_
    x, y = D.memory_task(32, 10, seed=0)
    grads = []
    for clip in ("optbook", "torch"):
        model = D.TinyRNN(hidden=8, seed=0)
        nn.functional.mse_loss(model(x), y).backward()
        params = list(model.parameters())
        if clip == "optbook":
            from optbook.torch import clip_grad_norm_
            clip_grad_norm_(params, 0.5)
        else:
            torch.nn.utils.clip_grad_norm_(params, 0.5)
        grads.append([p.grad.clone() for p in params])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


def test_clipped_fraction_and_errors():
    assert D.clipped_fraction([0.5, 1.5, 2.0, 1.0], 1.0) == 0.5
    with pytest.raises(ValueError, match="Invalid mode"):
        D.clip_run("layerwise")
    with pytest.raises(ValueError, match="Invalid tau"):
        D.clip_run("global", tau=0.0)


def test_grad_scaler_norms():
    norms = D.scaled_grad_norms(seed=0, init_scale=1024.0)
    assert norms["scale"] == 1024.0
    assert norms["scaled"] == pytest.approx(1024.0 * norms["fp32"], rel=1e-5)
    assert norms["unscaled"] == pytest.approx(norms["fp32"], rel=1e-5)


# --- 7.5 -------------------------------------------------------------------------------

def history(train, val, diverged=False):
    train, val = np.asarray(train, float), np.asarray(val, float)
    steps = np.arange(1, len(val) + 1) * 10
    return History(train, np.zeros(len(train)), np.ones(len(train)), steps, val,
                   np.zeros(len(val)), diverged)


def test_diagnose_rules():
    falling = np.linspace(1.4, 0.5, 100)
    smooth_val = np.linspace(1.3, 0.6, 10)
    assert G.diagnose(history(falling, smooth_val), 1.4) == "healthy"
    assert G.diagnose(history(falling[:30], smooth_val, diverged=True), 1.4) == "NaN/inf loss"
    assert G.diagnose(history(np.full(100, 1.35), np.full(10, 1.35)), 1.4) == "plateau"
    rising_val = np.r_[np.linspace(1.3, 0.8, 5), np.linspace(0.85, 1.2, 5)]
    assert G.diagnose(history(np.linspace(1.4, 0.05, 100), rising_val), 1.4) == "overfitting"
    jumpy_val = np.r_[np.linspace(1.3, 0.8, 5), [0.6, 0.8, 0.55, 0.78, 0.58]]
    assert G.diagnose(history(falling, jumpy_val), 1.4) == "oscillation"
    with pytest.raises(ValueError, match="Invalid history"):
        G.diagnose(history(falling[:5], smooth_val), 1.4)


def test_diagnose_splits_a_plateau_by_its_signals():
    flat = history(np.full(100, 1.35), np.full(10, 1.35))
    assert G.diagnose(flat, 1.4) == "plateau"                       # no signals given
    assert G.diagnose(flat, 1.4, dead_fraction=0.2, update_ratio=1e-4) == "plateau"
    assert G.diagnose(flat, 1.4, dead_fraction=G.DEAD_THRESHOLD, update_ratio=1e-4) == "dead units"
    assert G.diagnose(flat, 1.4, dead_fraction=1.0, update_ratio=2e-2) == "dead units"
    assert G.diagnose(flat, 1.4, dead_fraction=0.5, update_ratio=G.RATIO_THRESHOLD) == "no progress"
    # the split touches plateaus only
    falling = history(np.linspace(1.4, 0.5, 100), np.linspace(1.3, 0.6, 10))
    assert G.diagnose(falling, 1.4, dead_fraction=1.0, update_ratio=1.0) == "healthy"


def test_logit_spread_is_the_mean_std_across_inputs():
    logits = torch.tensor([[1.0, 2.0, 0.0], [3.0, 2.0, 0.0], [5.0, 2.0, 0.0]])
    # per-class sample standard deviations 2, 0, 0 (n - 1 in the denominator, like np.std(ddof=1))
    want = np.std(logits.numpy(), axis=0, ddof=1).mean()
    assert G.logit_spread(logits) == pytest.approx(want) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="Invalid logits"):
        G.logit_spread(torch.ones(1, 3))


def test_a_clipped_rate_far_too_high_kills_the_last_layer():
    dead = G.run_setting(G.Setting(lr=3.0, clip=1.0), seed=0)
    assert dead.dead_fraction == 1.0 and dead.logit_spread == 0.0
    assert dead.symptom == "dead units"
    assert np.median(dead.update_ratio) > 1e-2          # the weights move a lot
    low = G.run_setting(G.Setting(lr=1e-3, steps=60), seed=0)
    assert low.dead_fraction < 0.5 and low.logit_spread > 0 and low.symptom == "plateau"


def test_plateau_verdict_counts_what_the_runs_show():
    lines = G.plateau_verdict(seeds=(0,))
    dead = G.run_setting(G.Setting(lr=3.0, clip=1.0), 0)
    low = G.run_setting(G.Setting(lr=1e-3), 0)
    higher = G.run_setting(G.Setting(lr=10.0, clip=1.0), 0)
    assert len(lines) == 5
    assert lines[0].startswith("every seed — η = 1e-3: plateau 1/1; update ratio > 0.001: 0/1")
    assert f"≥ 75% dead: {int(dead.dead_fraction >= 0.75)}/1" in lines[1]
    assert f"median |g| < τ/2: {int(np.median(dead.history.grad_norm) < 0.5)}/1" in lines[1]
    assert "median |g|" not in lines[0]
    worse = int(higher.history.final_val_loss > dead.history.final_val_loss)
    assert lines[-1].endswith(f": {worse}/1")
    assert low.symptom == "plateau"


def test_data_bugs_are_applied_as_documented():
    clean = G._problem(G.Setting(), 0)
    shuffled = G._problem(G.Setting(data_bug="shuffled labels"), 0)
    assert torch.equal(shuffled.x_train, clean.x_train) and torch.equal(shuffled.y_val, clean.y_val)
    assert torch.equal(torch.bincount(shuffled.y_train), torch.bincount(clean.y_train))
    assert (shuffled.y_train != clean.y_train).float().mean() > 0.5
    leak = G._problem(G.Setting(n_train=256, data_bug="leak"), 0)
    k = int(G.LEAK_FRACTION * 1024)
    rows = np.arange(k) % 256
    np.testing.assert_array_equal(leak.x_val[:k].numpy(), leak.x_train[rows].numpy())
    np.testing.assert_array_equal(leak.y_val[:k].numpy(), leak.y_train[rows].numpy())
    # the overlap check, against numpy's row comparison
    a, b = leak.x_train.numpy(), leak.x_val.numpy()
    in_train = (b[:, None, :] == a[None, :, :]).all(-1).any(1)
    assert G._row_overlap(leak.x_train, leak.x_val) == in_train.mean() == G.LEAK_FRACTION
    const = G._problem(G.Setting(data_bug="constant input"), 0)
    assert float(const.x_train.std(dim=0).max()) == 0.0 and torch.equal(const.x_val[5], clean.x_train[0])
    with pytest.raises(ValueError, match="Invalid data_bug"):
        G._problem(G.Setting(data_bug="typo"), 0)


def test_data_checks_catch_each_bug():
    short = dict(steps=20)
    labels = G.data_checks(G.Setting(data_bug="shuffled labels", **short), 0)
    const = G.data_checks(G.Setting(data_bug="constant input", **short), 0)
    clean = G.data_checks(G.Setting(**short), 0)
    # a model that can fit anything memorises one batch whatever the labels ...
    assert labels["one_batch_loss"] < 0.05 and clean["one_batch_loss"] < 0.05
    # ... but not identical inputs with different labels: the floor is the batch's label entropy
    y = G._problem(G.Setting(), 0).y_train[:16]
    p = torch.bincount(y, minlength=4).float() / 16
    entropy = float(-(p[p > 0] * p[p > 0].log()).sum())
    assert const["one_batch_loss"] == pytest.approx(entropy, abs=0.02)
    assert const["constant_features"] == 20 and labels["constant_features"] == 0
    assert const["overlap"] == 1.0 and labels["overlap"] == 0.0
    assert abs(labels["init_gap"]) < 0.05
    run = G.run_setting(G.Setting(data_bug="shuffled labels", **short), 0)
    assert labels["update_ratio"] == float(np.median(run.update_ratio))
    assert labels["dead_fraction"] == run.dead_fraction
    counts = torch.bincount(G._problem(G.Setting(), 0).y_train)
    assert clean["chance"] == pytest.approx(float(counts.max() / counts.sum()))


def test_data_bug_table_layout(monkeypatch, capsys):
    tiny = {"shuffled labels": (G.Setting(steps=12, data_bug="shuffled labels"), G.Setting(steps=12)),
            "leak": (G.Setting(steps=12, n_train=256, data_bug="leak"), G.Setting(steps=12, n_train=256))}
    monkeypatch.setattr(G, "DATA_BUGS", tiny)
    table = G.data_bug_table(seeds=(0, 1))
    assert list(table) == ["shuffled labels", "leak"]
    leak = table["leak"]["provoked"]
    assert leak["overlap"] == [0.5, 0.5] and table["leak"]["clean"]["overlap"] == [0.0, 0.0]
    direct = G.data_checks(tiny["leak"][0], 1)
    assert [row for row in leak["val_loss"]][1] == direct["val_loss"]
    # the clean part of a leaked validation set is scored on its own
    assert leak["clean_val_loss"] != leak["val_loss"]
    # printed in DATA_BUGS' order whatever the key order (a stored rerun's keys are sorted)
    G.print_data_bug_table(dict(sorted(table.items())))
    out = capsys.readouterr().out
    assert out.index("shuffled labels") < out.index("leak") and "50 %" in out
    assert "upd ratio" in out and f"{min(leak['update_ratio']):.1e}" in out


def test_print_symptom_row_spans_and_dashes(capsys):
    row = {"symptoms": ["NaN/inf loss", "healthy", "healthy"], "val_loss": [0.5, 0.7, 0.6],
           "diverged": 1, "grad_norm": 0.25, "update_ratio": 1.5e-3, "init_loss": 1.39,
           "dead_fraction": [float("nan"), 0.25, "nan"], "logit_spread": [float("nan"), 1.5, 1.5]}
    G.print_symptom_row("provoked", row)
    out = capsys.readouterr().out
    assert "NaN/inf loss, healthy" in out and "0.50–0.70" in out and "1/3" in out
    assert "25 %" in out and "1.50" in out and "1.5e-03" in out
    G.print_symptom_row("provoked", row, signals=False)
    short = capsys.readouterr().out
    assert "%" not in short and short.rstrip().endswith("1.390")
    assert len(G.symptom_header(False)) < len(G.symptom_header()) == len(out.rstrip("\n"))


def test_event_steps_name_each_seed():
    rows = {"NaN/inf loss": {"diverged_after": [34, None, 5]},
            "overfitting": {"best_step": [30, 45, 300]}}
    lines = G.event_steps(rows, seeds=(0, 1, 2))
    assert lines == ["NaN/inf loss, provoked (seeds 0, 1, 2): the loss turns non-finite "
                     "after 34, never, 5 finite steps",
                     "overfitting, provoked (seeds 0, 1, 2): lowest validation loss at "
                     "step 30, 45, 300 (evaluated every 15 steps)"]
    assert G.event_steps({}, seeds=(0,)) == []


def test_nan_messages_tell_arithmetic_from_a_large_step():
    step, message = G.arithmetic_nan_message(steps=5)
    assert step == 5 and "a lower learning rate will not remove it" in message
    assert "lower the learning rate or clip" not in message
    # the chapter's divergence at rate 3 is blamed on the step on every seed that diverges
    for seed in (0, 1, 2):
        step, message = G.step_too_large_message(seed=seed)
        assert step is not None and "lower the learning rate or clip gradients" in message
        assert "times the median of the" in message and "will not remove" not in message
    # a healthy rate never trips the check
    assert G.step_too_large_message(seed=0, lr=0.05, steps=30) == (None, "")


def test_runs_show_the_provoked_symptoms():
    too_high = G.run_setting(G.Setting(lr=3.0, steps=80), seed=0)
    assert too_high.history.diverged and too_high.symptom == "NaN/inf loss"
    too_low = G.run_setting(G.Setting(lr=1e-3, steps=60), seed=0)
    assert too_low.symptom == "plateau"
    assert len(too_low.update_ratio) == 60
    assert abs(too_low.init_loss / math.log(4) - 1) < 0.05
    # the update ratio of SGD at rate 1e-3 is tiny; at 0.05 it is tens of times larger
    good = G.run_setting(G.Setting(lr=0.05, steps=60), seed=0)
    assert np.median(good.update_ratio) > 20 * np.median(too_low.update_ratio)
    with pytest.raises(ValueError, match="Invalid optimizer"):
        G.run_setting(G.Setting(optimizer="rmsprop"))
    with pytest.raises(ValueError, match="Invalid weight_decay"):
        G.run_setting(G.Setting(weight_decay=0.1))


def test_nan_is_located():
    loss, name, message = G.first_nonfinite_gradient()
    assert math.isfinite(loss) and name == "0.weight" and "non-finite gradient" in message
    assert "learning rate is not the cause" in message
    assert "PowBackward0" in G.anomaly_report()
    report = G.nonfinite_report()
    assert (report.stage, report.module, report.after) == ("backward", "0", "1")


def test_symptom_grid_layout():
    grid = G.symptom_grid(lrs=(0.05,), taus=(None, 1.0), warmups=(0,), seeds=(0, 1), steps=12)
    assert set(grid) == {(0.05, None, 0), (0.05, 1.0, 0)}
    for cell in grid.values():
        assert cell["loss"].shape == (2, 12) and len(cell["symptoms"]) == 2


# --- the stored reruns' functions (book/data/reruns/07-*.json), on tiny settings ---------------

def test_rules_rerun_lines_up_with_compare_rules():
    out = F.rules_rerun(seeds=(0, 1), steps=5, test_steps=20, lr_ranges={"sgd": [1e-2, 1e-1]},
                        points=3)
    summary = out["sgd"]
    sweep = F.lr_sweep("sgd", np.geomspace(1e-2, 1e-1, 3), (0, 1), steps=5)
    comp = F.compare_rules([F.range_test("sgd", seed=s, num_steps=20) for s in (0, 1)], sweep)
    np.testing.assert_array_equal(summary["val_loss"], sweep.val_loss)
    for j, rule in enumerate(comp.rules):
        np.testing.assert_allclose(summary["factor"][rule], comp.factor[:, j])
        np.testing.assert_allclose(summary["excess"][rule], comp.regret[:, j])
    gap = np.abs(np.log(comp.factor))
    assert summary["closest_rule"] == [comp.rules[j] for j in np.nanargmin(gap, axis=1)]
    length = F.range_test_length_rerun("adam", seeds=(0,), steps=5, test_steps=[20, 30],
                                       lr_range=[1e-3, 1e-2], points=2)
    assert set(length) == {"20", "30"}


def test_decay_rerun_summarises_decay_grid():
    out = D.decay_rerun(["all", "param_groups"], [1e-3], [0.1, 1.0], seeds=(0,), steps=8)
    assert [(p["rule"], p["weight_decay"]) for p in out["points"]] == [
        ("all", 0.1), ("all", 1.0), ("param_groups", 0.1), ("param_groups", 1.0)]
    direct = D.decay_run("all", 1e-3, 1.0, seed=0, steps=8)
    assert out["points"][1]["val_loss"] == [direct.final_val_loss]
    for rule in ("all", "param_groups"):
        points = [p for p in out["points"] if p["rule"] == rule]
        assert out["best"][rule]["mean"] == min(p["mean"] for p in points)
    np.testing.assert_allclose(out["best_difference"],
                               np.array(out["best"]["all"]["val_loss"])
                               - np.array(out["best"]["param_groups"]["val_loss"]))


def test_clipping_reruns_run_the_notebook_arms():
    out = D.clipping_rerun(seeds=(1,), steps=[12], hidden=8, length=6, lr=0.1, stable_lr=0.03,
                           small_lr=0.01)["12"]
    assert list(out["arms"]) == ["none, η = 0.01", "none, η = 0.03", "none, η = 0.1",
                                 "global τ = 1, η = 0.1", "per-tensor τ = 1, η = 0.1",
                                 "global τ = p90, η = 0.1"]
    stable = D.clip_run("none", None, 0.03, 1, steps=12, hidden=8, length=6)
    assert out["tau90"] == round(float(np.percentile(stable.grad_norm, 90)), 2)
    clipped = D.clip_run("global", 1.0, 0.1, 1, steps=12, hidden=8, length=6)
    arm = out["arms"]["global τ = 1, η = 0.1"]
    assert arm["val_loss"] == [clipped.val_loss]
    assert arm["clipped"] == D.clipped_fraction(clipped.grad_norm, 1.0)
    assert out["arms"]["none, η = 0.01"]["clipped"] is None
    direction = D.clip_direction_rerun(seeds=(0,), steps=6, hidden=8, length=5, lr=0.1,
                                       global_taus=[1.0], per_tensor_taus=[0.5])
    assert list(direction) == ["global τ = 1", "per-tensor τ = 0.5"]


def test_symptoms_rerun_states_the_settings_horizons():
    with pytest.raises(ValueError, match="Invalid steps"):
        G.symptoms_rerun(seeds=(0,), steps=[200])
    runs = G.run_seeds(G.Setting(lr=0.05, steps=20), seeds=(0, 1))
    row = G.summarize(runs)
    assert row["symptoms"] == [r.symptom for r in runs] and row["diverged"] == 0
    assert row["val_loss"] == [r.history.final_val_loss for r in runs]
    assert row["update_ratio"] == float(np.median([np.median(r.update_ratio) for r in runs]))
    assert row["dead_fraction"] == [r.dead_fraction for r in runs]
    assert row["logit_spread"] == [r.logit_spread for r in runs]
    assert row["diverged_after"] == [None, None]
    for r, best in zip(runs, row["best_step"]):
        assert r.history.val_loss[list(r.history.eval_steps).index(best)] == r.history.val_loss.min()
    # a diverged run: the number of finite steps before its first non-finite loss
    blown = G.run_setting(G.Setting(lr=3.0, steps=80), seed=0)
    after = G.summarize([blown])["diverged_after"][0]
    assert blown.history.diverged and after == len(blown.history.train_loss)
    assert np.all(np.isfinite(blown.history.train_loss)) and 0 < after < 80
