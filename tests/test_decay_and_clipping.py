"""Chapter 7.3-7.4 experiments added for issue 19: clipping with Adam, the decay horizon.

(tests/test_practice_experiments.py holds the chapter's older experiment tests.)"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from optbook.experiments import decay_and_clipping as D
from optbook.experiments.training import mlp, train

torch.set_num_threads(1)


def test_clip_run_with_adam_is_torch_adam_and_an_unreachable_tau_changes_nothing():
    plain = D.clip_run("none", None, 3e-3, seed=1, steps=15, hidden=8, length=6,
                       optimizer="adam")
    unreachable = D.clip_run("global", 1e12, 3e-3, seed=1, steps=15, hidden=8, length=6,
                             optimizer="adam")
    np.testing.assert_allclose(unreachable.loss, plain.loss, rtol=1e-6)
    # the same loop written out with torch.optim.Adam (the oracle)
    x, y = D.memory_task(2048, 6, 1)
    model = D.TinyRNN(8, 1.5, 1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(15):
        idx = torch.randint(0, len(x), (32,), generator=g)
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
        loss.backward()
        losses.append(loss.item())
        opt.step()
    np.testing.assert_array_equal(plain.loss, losses)
    assert plain.optimizer == "adam"
    with pytest.raises(ValueError, match="Invalid optimizer: 'lion'"):
        D.clip_run("none", None, 0.1, optimizer="lion")


def test_clipping_problem_run_mlp_is_train_with_clip_norm():
    val, norms = D.clipping_problem_run("mlp", "adam", 1e-3, 0.1, seed=2, steps=12)
    data = D.decay_problem(2)
    model = mlp(20, 4, hidden=64, depth=2, layer_norm=True, seed=2)
    history = train(model, torch.optim.Adam(model.parameters(), lr=1e-3), data, steps=12,
                    batch_size=64, clip_norm=0.1, eval_every=12, seed=2)
    assert val == history.final_val_loss
    np.testing.assert_array_equal(norms, history.grad_norm)
    rnn_val, rnn_norms = D.clipping_problem_run("rnn", "sgd", 0.03, None, seed=0, steps=5)
    direct = D.clip_run("none", None, 0.03, 0, steps=5, hidden=16, length=20)
    assert rnn_val == direct.val_loss and len(rnn_norms) == 5
    with pytest.raises(ValueError, match="Invalid problem: 'cnn'"):
        D.clipping_problem_run("cnn", "sgd", 0.1, None)
    with pytest.raises(ValueError, match="Invalid optimizer: 'rmsprop'"):
        D.clipping_problem_run("mlp", "rmsprop", 0.1, None)


def test_clip_arms_factor_rate_and_verdict():
    out = D.clip_arms("mlp", "sgd", 0.3, 0.1, seeds=(0, 1), steps=10)
    norms = [D.clipping_problem_run("mlp", "sgd", 0.3, 0.1, s, 10)[1] for s in (0, 1)]
    f = np.mean([np.minimum(1, 0.1 / n).mean() for n in norms])
    assert out["factor"] == pytest.approx(f, rel=1e-12)
    assert out["lr_times_factor"] == float(f"{0.3 * f:.1e}")     # 2 significant digits
    assert out["clipped"] == np.mean([D.clipped_fraction(n, 0.1) for n in norms])
    names = list(out["arms"])
    assert names == ["none, η = 0.3", "clip τ = 0.1, η = 0.3",
                     f"none, η × f = {out['lr_times_factor']:.2g}"]
    clipped = np.log(out["arms"][names[1]])
    gaps = [np.mean(np.abs(np.log(out["arms"][n]) - clipped)) for n in (names[0], names[2])]
    assert out["closer_to"] == ("the same rate" if gaps[0] < gaps[1] else "the rate times f")


def test_print_clip_arms(capsys):
    result = {"factor": 0.29, "factor_range": [0.04, 1.0], "clipped": 1.0,
              "arms": {"none, η = 0.003": [0.04, 0.03], "clip τ = 1, η = 0.003": [0.05, math.inf],
                       "none, η × f = 0.00087": [0.1, 0.12]},
              "closer_to": "the same rate"}
    D.print_clip_arms(result, "Adam")
    out = capsys.readouterr().out
    assert "fires on 100% of steps" in out and "0.29 on average (0.04–1.00)" in out
    assert "diverged" in out and "mean –" in out
    lines = out.rstrip().splitlines()
    assert lines[-3] == ("  - mean clip factor f ≈ 0.3; clipping fired on more than 90% of steps, "
                         "with factors varying more than tenfold: yes")
    assert lines[-2] == "  - the clipped arm is closer to the unclipped arm at the same rate"
    # 0.12 is not worse than a diverged (inf) clipped run on the second seed
    assert lines[-1].endswith("worse than both others on every seed: NO")


def test_adam_ignores_a_constant_gradient_factor_but_not_clipping():
    """Adam's update m/sqrt(v) is unchanged when every gradient is multiplied by the same
    constant (exactly, but for eps and rounding); clipping's factor changes from step to
    step, so it changes the moments' weighting of past gradients and the trajectory."""
    out = D.adam_constant_factor(seed=0, steps=10)
    assert out["constant"] < 1e-5
    assert out["clipped"] > 1e-3


def test_decay_horizon_rerun_sets_lambda_from_the_horizon():
    out = D.decay_horizon_rerun(["all", "param_groups"], [1e-3, 3e-3], [1.0, 3.0],
                                seeds=(0,), steps=8)
    assert len(out["points"]) == 2 * 2 * 2
    for p in out["points"]:
        assert p["weight_decay"] == pytest.approx(p["horizon"] / (p["lr"] * 8))
    p = next(p for p in out["points"] if p["rule"] == "all" and p["lr"] == 3e-3
             and p["horizon"] == 3.0)
    direct = D.decay_run("all", 3e-3, 3.0 / (3e-3 * 8), 0, 8)
    assert p["val_loss"] == [direct.final_val_loss]
    assert p["gain_rms_end"] == [float(direct.gain_norm[-1])]
    for h in ("1", "3"):
        for rule in ("all", "param_groups"):
            best = out["best"][h][rule]
            cands = [q["mean"] for q in out["points"]
                     if q["rule"] == rule and f"{q['horizon']:g}" == h]
            assert best["mean"] == min(cands)


def test_print_decay_horizon(capsys):
    out = D.decay_horizon_rerun(["all", "param_groups"], [1e-3], [3.0], seeds=(0, 1), steps=5)
    record = {"name": "x", "seeds": [0, 1], "steps": 5, "results": out,
              "params": {"rules": ["all", "param_groups"], "lrs": [1e-3], "horizons": [3.0]}}
    D.print_decay_horizon(record)
    text = capsys.readouterr().out
    assert "ηλT = 3" in text and "best for all" in text and "per seed:" in text
    d = np.array(out["best"]["3"]["all"]["val_loss"]) - np.array(
        out["best"]["3"]["param_groups"]["val_loss"])
    assert "per seed: " + ", ".join(f"{x:+.3f}" for x in d) in text
    assert f"mean {d.mean():+.3f};" in text


def test_print_decay_horizon_counts_wins_and_ties(capsys):
    """Hand-made per-seed losses: differences -0.1, +0.002 (a tie), +0.05, -0.004 (a tie)."""
    points = [{"rule": rule, "lr": 1e-3, "horizon": 3.0, "weight_decay": 1.0,
               "val_loss": vals, "mean": sum(vals) / 4, "gain_rms_end": [1.0] * 4}
              for rule, vals in (("all", [0.5, 0.602, 0.75, 0.596]),
                                 ("param_groups", [0.6, 0.6, 0.7, 0.6]))]
    best = {"3": {p["rule"]: {k: p[k] for k in ("lr", "weight_decay", "val_loss", "mean",
                                                  "gain_rms_end")} for p in points}}
    record = {"name": "x", "seeds": [0, 1, 2, 3], "steps": 5,
              "results": {"points": points, "best": best},
              "params": {"rules": ["all", "param_groups"], "lrs": [1e-3], "horizons": [3.0]}}
    D.print_decay_horizon(record)
    text = capsys.readouterr().out
    assert "per seed: -0.100, +0.002, +0.050, -0.004" in text
    assert text.rstrip().endswith("mean -0.013; all lower on 1, higher on 1, within 0.005 "
                                  "on 2 of 4 seeds")


def test_adam_step_sizes_first_update_is_lr_per_coordinate():
    """Adam's first update is lr * g / (|g| + eps) coordinate by coordinate (bias-corrected
    moments), i.e. lr in RMS wherever the gradient is not tiny -- with or without clipping,
    which only rescales g."""
    out = D.adam_step_sizes(1e-3, 0.1, seeds=(0,), steps=6, window=1)
    for arm in ("none", "clip"):
        assert len(out[arm]["update"][0]) == 6
        assert out[arm]["update"][0][0] == pytest.approx(1e-3, rel=2e-2)
    val, norms = D.clipping_problem_run("mlp", "adam", 1e-3, None, seed=0, steps=6)
    np.testing.assert_allclose(out["none"]["grad"][0], norms, rtol=1e-12)
    assert out["none"]["val_loss"] == [val]
    blocks = D.adam_step_sizes(1e-3, 0.1, seeds=(0,), steps=6, window=3)
    np.testing.assert_allclose(blocks["none"]["update"][0],
                               np.mean(np.reshape(out["none"]["update"][0], (2, 3)), axis=1),
                               rtol=1e-12)
    # "fired": the share of steps whose norm before clipping exceeds tau, per block, for the
    # clipped arm as train() with clip_norm records its norms (an independent run)
    _, clip_norms = D.clipping_problem_run("mlp", "adam", 1e-3, 0.1, seed=0, steps=6)
    assert out["clip"]["fired"][0] == [float(n > 0.1) for n in clip_norms]
    assert blocks["clip"]["fired"][0] == pytest.approx(
        [np.mean(np.array(clip_norms[:3]) > 0.1), np.mean(np.array(clip_norms[3:]) > 0.1)])


def test_adam_step_sizes_fired_counts_norms_above_tau():
    """With tau above every norm clipping never fires and the two arms are the same run;
    with a tiny tau it fires on every step."""
    never = D.adam_step_sizes(1e-3, 1e6, seeds=(0,), steps=4, window=2)
    assert never["clip"]["fired"][0] == [0.0, 0.0]
    assert never["clip"]["update"] == never["none"]["update"]
    always = D.adam_step_sizes(1e-3, 1e-9, seeds=(0,), steps=4, window=2)
    assert always["clip"]["fired"][0] == [1.0, 1.0]


def test_print_adam_step_sizes(capsys):
    results = {"none": {"update": [[2e-4, 1e-4], [2e-4, 1e-4]], "grad": [[1.0, 0.5], [1.0, 0.5]],
                        "val_loss": [1.2, 1.3]},
               "clip": {"update": [[2e-4, 2e-4], [2e-4, 1e-4]], "grad": [[1.0, 0.1], [1.0, 0.1]],
                        "fired": [[1.0, 0.5], [1.0, 0.0]], "val_loss": [1.5, 1.6]}}
    record = {"name": "x", "seeds": [0, 1], "results": results,
              "params": {"lr": 3e-4, "tau": 0.1, "window": 3, "steps": 6}}
    D.print_adam_step_sizes(record)
    out = capsys.readouterr().out
    assert "    3–6" in out and "1.5e-04" in out and "0.100" in out
    assert "clip fires" in out and "100%" in out and out.count("25%") == 1   # (0.5 + 0) / 2
    assert "1.00 (1.00–1.00)" in out and "1.50 (1.00–2.00)" in out   # 2e-4/1e-4 and 1e-4/1e-4
    assert "summed update RMS 0.001 (0.001–0.001)" in out      # 3 * (2e-4 + 1e-4)
    assert out.rstrip().endswith("travels further (summed update RMS) on every seed: NO")


def test_decay_point_and_print_decay_grid(capsys):
    """The printer reads a decay_rerun record: every point's per-seed losses (as decay_run
    gives them, run independently here), each rule's best and the best-minus-best line."""
    out = D.decay_rerun(["all", "param_groups"], [1e-3, 3e-3], [0.1, 1.0], seeds=(0, 1), steps=5)
    out = json.loads(json.dumps(out, default=lambda a: np.asarray(a).tolist()))  # as stored
    record = {"name": "x", "seeds": [0, 1], "steps": 5, "results": out,
              "params": {"rules": ["all", "param_groups"], "lrs": [1e-3, 3e-3],
                         "weight_decays": [0.1, 1.0]}}
    direct = [D.decay_run("param_groups", 3e-3, 1.0, s, 5).final_val_loss for s in (0, 1)]
    np.testing.assert_allclose(D.decay_point(record, "param_groups", 3e-3, 1.0), direct,
                               rtol=1e-12)
    with pytest.raises(KeyError, match="no grid point"):
        D.decay_point(record, "all", 1e-2, 0.1)
    D.print_decay_grid(record, per_seed=True)
    text = capsys.readouterr().out
    assert text.count("\nall ") + text.count("\nparam_groups ") == 8       # 2 x 2 x 2 points
    assert f"{direct[0]:.2f}, {direct[1]:.2f}" in text
    d = np.array(out["best"]["all"]["val_loss"]) - np.array(out["best"]["param_groups"]["val_loss"])
    assert text.rstrip().endswith(", ".join(f"{x:+.3f}" for x in d))
    D.print_decay_grid(record)
    assert "λ = 0.1" in capsys.readouterr().out
