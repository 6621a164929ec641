"""Chapter 5.3's network experiment (optbook.experiments.matrix_network).

Expected values come from torch.optim (the AdamW arm), from the definitions of
the protocol (best *mean* over seeds, a grid extended while its best is at an
end), or from hand-built records whose means, spreads and ratios are worked
out by hand in the test -- never from an earlier run of the code under test.
"""
import math
import statistics

import pytest
import torch
from torch import nn

from optbook.experiments import matrix_network as M
from optbook.experiments import reruns
from optbook.experiments.training import train


# --- the run ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(M.OPTIMIZERS))
def test_network_run_is_deterministic_and_finite(name):
    lr = M.OPTIMIZERS[name].lr_grid[2]
    a = M.network_run(name, lr, steps=6, seed=1, eval_every=3)
    b = M.network_run(name, lr, steps=6, seed=1, eval_every=3)
    assert a == b
    assert a["eval_steps"] == [3, 6] and len(a["val_loss"]) == 2
    assert not a["diverged"] and math.isfinite(a["final_val_loss"])
    assert a["final_val_loss"] == a["val_loss"][-1]
    # six steps of any of them move the loss away from the initial one
    data, model = M.network_data(1), M.network_model(1)
    with torch.no_grad():
        initial = nn.functional.cross_entropy(model(data.x_val), data.y_val).item()
    assert a["final_val_loss"] != pytest.approx(initial, rel=1e-6)


def test_adamw_arm_is_torch_adamw():
    """The AdamW arm against torch.optim.AdamW with the settings the table states."""
    lr, steps, seed = 0.01, 20, 2
    ours = M.network_run("adamw", lr, steps=steps, seed=seed, eval_every=10)
    data, model = M.network_data(seed), M.network_model(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.0)
    ref = train(model, opt, data, steps=steps, batch_size=64, eval_every=10, seed=seed)
    assert ours["val_loss"] == pytest.approx(list(ref.val_loss), rel=1e-5)


def test_network_is_the_stated_mlp_and_muon_gets_the_hidden_matrices():
    model = M.network_model(0)
    shapes = [tuple(p.shape) for p in model.parameters() if p.ndim == 2]
    assert shapes == [(64, 20), (64, 64), (64, 64), (4, 64)]
    assert sum(p.numel() for p in model.parameters()) == 64 * 21 + 2 * 64 * 65 + 4 * 65
    opt = M.make_optimizer("muon", model, 0.003)
    muon_group = next(g for g in opt.param_groups if g["use_muon"])
    adamw_group = next(g for g in opt.param_groups if not g["use_muon"])
    assert [tuple(p.shape) for p in muon_group["params"]] == shapes[:3]
    assert adamw_group["lr"] == muon_group["lr"] == 0.003
    assert all(p.ndim == 1 or tuple(p.shape) == (4, 64) for p in adamw_group["params"])
    assert muon_group["shape_scale"] == "moonlight"


def test_network_data_is_the_clean_teacher_task():
    data = M.network_data(0)
    assert (len(data.y_train), len(data.y_val)) == (32768, 2048)
    # label_noise = 0: the training labels are the teacher's argmax, like the validation ones
    from optbook.experiments.training import teacher_classification
    noisy = teacher_classification(n_train=32768, n_val=2048, label_noise=0.1, seed=0)
    assert torch.equal(data.x_train, noisy.x_train)
    flipped = (data.y_train != noisy.y_train).float().mean().item()
    assert 0.05 < flipped < 0.1        # 10 % replaced at random, 3/4 of those by another class


# --- tuning -----------------------------------------------------------------------------------

def _fake(table):
    """A run function returning final losses from ``table[lr][seed]``."""
    calls = []

    def run(name, lr, steps, seed, eval_every=None):
        calls.append((lr, seed))
        v = table[lr][seed]
        return {"eval_steps": [steps], "val_loss": [v], "final_val_loss": v,
                "final_train_loss": v, "diverged": not math.isfinite(v)}
    return run, calls


def test_tune_picks_the_best_seed_mean_not_the_best_seed():
    # 0.003 has the best single seed (0.1) but mean 0.633; 0.01 has mean 0.5, the lowest
    table = {0.001: {0: 0.9, 1: 0.9, 2: 0.9}, 0.003: {0: 0.1, 1: 0.9, 2: 0.9},
             0.01: {0: 0.5, 1: 0.5, 2: 0.5}, 0.03: {0: 0.6, 1: 0.6, 2: 0.6},
             0.1: {0: 0.8, 1: 0.8, 2: 0.8}}
    run, calls = _fake(table)
    t = M.tune("adamw", tuple(table), steps=10, seeds=(0, 1, 2), run=run)
    assert t["best_lr"] == 0.01 and t["interior"] and t["extended"] == []
    assert len(calls) == 15
    assert M.best_index(t["val_loss"]) == 2


def test_tune_counts_a_diverged_seed_as_infinite():
    table = {1e-3: {0: 0.5, 1: 0.5}, 3e-3: {0: 0.1, 1: math.inf}, 1e-2: {0: 0.9, 1: 0.9}}
    run, _ = _fake(table)
    t = M.tune("soap", (1e-3, 3e-3, 1e-2), 5, (0, 1), run=run, max_extensions=0)
    assert t["best_lr"] == 1e-3 and not t["interior"]


def test_tune_extends_the_grid_until_the_best_is_inside():
    # losses fall towards small rates down to 1e-4, then rise: from the grid 1e-3..1e-1
    # the tuner must add 3e-4, 1e-4, 3e-5 (1-3-10 steps) and stop with 1e-4 inside
    loss = {3e-5: 0.7, 1e-4: 0.2, 3e-4: 0.3, 1e-3: 0.4, 3e-3: 0.5, 1e-2: 0.6, 3e-2: 0.7,
            1e-1: 0.8}
    table = {lr: {0: v} for lr, v in loss.items()}
    run, _ = _fake(table)
    t = M.tune("muon", (1e-3, 3e-3, 1e-2, 3e-2, 1e-1), 5, (0,), run=run)
    assert t["extended"] == [3e-4, 1e-4, 3e-5]
    assert t["lrs"] == [3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
    assert t["best_lr"] == 1e-4 and t["interior"]


def test_grid_extension_rule():
    assert M._next_rate([0.01, 0.03], up=True) == 0.1
    assert M._next_rate([0.01, 0.03], up=False) == 0.003
    assert M._next_rate([3e-4, 1e-3], up=False) == 1e-4
    assert M._next_rate([0.002, 0.004], up=True) == pytest.approx(0.008)


# --- printing and verdicts on hand-built records -----------------------------------------------

def _record():
    """AdamW 0.4 (0.3-0.5); Muon 0.2 below AdamW on every seed; SOAP wins 2 of 3 seeds;
    Shampoo loses on every seed. Best rates in the middle of each grid."""
    def entry(grid, best, losses, extended=()):
        rows = [[1.0, 1.0, 1.0] for _ in grid]
        rows[grid.index(best)] = losses
        return {"lrs": list(grid), "val_loss": rows, "best_lr": best, "steps": 300,
                "extended": list(extended), "interior": True,
                "curves": [[[2.0, v] for v in row] for row in rows], "eval_steps": [150, 300],
                "heldout": {"val_loss": [float(l) + 0.01 for l in losses],
                            "curves": [[2.0, float(l) + 0.01] for l in losses],
                            "eval_steps": [150, 300]}}
    return {"results": {"names": list(M.OPTIMIZERS), "results": {
        "adamw": entry([0.001, 0.003, 0.01], 0.003, [0.3, 0.4, 0.5]),
        "muon": entry([0.001, 0.003, 0.01], 0.003, [0.1, 0.2, 0.3]),
        "soap": entry([0.001, 0.003, 0.01], 0.003, [0.2, 0.5, 0.2]),
        "shampoo": entry([3e-5, 1e-4, 3e-4], 1e-4, [0.4, 0.5, "inf"], extended=[3e-5])}}}


def test_print_comparison_prints_grid_tuned_rate_and_spread(capsys):
    M.print_comparison(_record())
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "validation loss after 300 steps, mean (min–max) over seeds"
    adamw = next(l for l in out if l.startswith("AdamW"))
    assert "0.001 0.003 0.01" in adamw and "0.400 (0.300–0.500)" in adamw
    assert "0.410 (0.310–0.510)" in adamw           # held-out seeds: each loss + 0.01
    shampoo = next(l for l in out if l.startswith("Shampoo"))
    assert "3e-05+" in shampoo and "diverged" in shampoo
    assert [l.split()[0] for l in out[2:6]] == ["AdamW", "Muon", "SOAP", "Shampoo"]
    assert out[-1].startswith("+ rate added")


def test_verdict_says_which_beats_adamw_on_every_seed(capsys):
    M.verdict(_record())
    out = capsys.readouterr().out
    assert "300 steps, tuning seeds: Muon beats tuned AdamW on every seed: yes; " \
           "mean loss AdamW/Muon = 2.00" in out                      # 0.4 / 0.2
    assert "SOAP beats tuned AdamW on every seed: no; mean loss AdamW/SOAP = 1.33" in out
    assert "Shampoo (Adam grafting) beats tuned AdamW on every seed: no" in out
    assert "mean loss AdamW/Shampoo = n/a (a seed diverged)" in out
    assert "held-out seeds: Muon beats tuned AdamW on every seed: yes; " \
           "mean loss AdamW/Muon = 1.95" in out                      # 0.41 / 0.21
    assert "pilot at 300 steps (one seed, untuned, task unstated): AdamW/Muon = 11, " \
           "AdamW/SOAP = 6.7; its AdamW loss 0.12, Muon 0.011" in out
    # untuned AdamW rows are 1.0 on every seed, the tuned one 0.4: / Muon's 0.2 -> 2.00-5.00;
    # lowest finite loss of any run: Muon's seed 0, 0.1
    assert "here at 300 steps: lowest validation loss of any run 0.1; AdamW at each rate " \
           "of its grid / tuned Muon = 2.00–5.00 (means over the tuning seeds)" in out


def test_untuned_ratios_by_hand():
    assert M.untuned_ratios(_record()) == (pytest.approx(0.4 / 0.2), pytest.approx(1.0 / 0.2))
    assert M.untuned_ratios(_record(), "soap") == (pytest.approx(0.4 / 0.3),
                                                   pytest.approx(1.0 / 0.3))
    with pytest.raises(ValueError, match="Invalid optimizer: 'lion'"):
        M.untuned_ratios(_record(), "lion")


def test_parameter_count_and_flops_by_closed_form():
    f = M.flops_per_step()
    params = (20 * 64 + 64) + 2 * (64 * 64 + 64) + (64 * 4 + 4)
    assert f["parameters"] == params == 9924
    assert f["forward_backward"] == 6 * params * 64
    # Muon's three matrices: 64x20 (k = 20, K = 64) and two 64x64; five steps each
    ns = 5 * (4 * 20 ** 2 * 64 + 2 * 20 ** 3) + 2 * 5 * (4 * 64 ** 3 + 2 * 64 ** 3)
    assert f["newton_schulz"] == ns
    assert M.flops_per_step(batch=1)["forward_backward"] == 6 * params
    with pytest.raises(ValueError, match="Invalid batch: 0"):
        M.flops_per_step(batch=0)


def test_unfused_adamw_arm_is_torch_adamw_and_skips_the_fused_kernel():
    """The timing-only arm: same numbers as torch.optim.AdamW, optbook's own chain."""
    torch.manual_seed(0)
    model_a, model_b = M.network_model(3), M.network_model(3)
    ours = M.TIMING_ONLY["adamw_unfused"].make(model_a, 0.01)
    assert ours.fused_kernels is False
    ref = torch.optim.AdamW(model_b.parameters(), lr=0.01, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.0)
    x, y = torch.randn(64, 20), torch.randint(0, 4, (64,))
    for _ in range(5):
        for model, opt in ((model_a, ours), (model_b, ref)):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    for pa, pb in zip(model_a.parameters(), model_b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)


def _times():
    return {"results": {"steps": 100, "repeats": 3, "threads": 1, "cpus": 2,
                        "load_before": [3.0, 3, 3], "load_after": [4.0, 4, 4],
                        "step_seconds": {"adamw": [0.001, 0.002, 0.0015],
                                         "muon": [0.004, 0.003, 0.006],
                                         "soap": [0.003, 0.003, 0.003],
                                         "shampoo": [0.0045, 0.0045, 0.0045]},
                        "optimizer_seconds": {"adamw": [0.0005, 0.001, 0.0007],
                                              "muon": [0.003, 0.002, 0.005],
                                              "soap": [0.002, 0.002, 0.002],
                                              "shampoo": [0.004, 0.004, 0.004]}}}


def test_print_step_times(capsys):
    M.print_step_times(_times())
    out = capsys.readouterr().out
    muon = next(l for l in out.splitlines() if l.startswith("Muon"))
    assert "4.00 (3.00–6.00)" in muon and "3.00 (2.00–5.00)" in muon
    assert muon.rstrip().endswith("2.7×")                  # 4.0 / 1.5 = 2.67
    assert "load average (1 min) 3.0 before, 4.0 after, on 2 CPUs" in out
    M.verdict(_record(), times=_times())
    assert "one Shampoo (Adam grafting) step costs 3.0× an AdamW step" in \
        capsys.readouterr().out


def test_print_step_times_with_the_unfused_adamw_arm(capsys):
    t = _times()
    t["results"]["step_seconds"]["adamw_unfused"] = [0.002, 0.002, 0.002]
    t["results"]["optimizer_seconds"]["adamw_unfused"] = [0.001, 0.001, 0.001]
    M.print_step_times(t)
    out = capsys.readouterr().out
    muon = next(l for l in out.splitlines() if l.startswith("Muon"))
    assert muon.split()[-2:] == ["2.7×", "2.0×"]             # 4.0 / 1.5 and 4.0 / 2.0
    assert any(l.startswith("AdamW (optbook, not fused)") for l in out.splitlines())
    M.verdict(_record(), times=t)
    out = capsys.readouterr().out
    assert "one Muon step costs 2.0× an AdamW step not fused" in out      # 4.0 / 2.0


def test_print_seeds_by_hand(capsys):
    """AdamW 0.4, 0.4, 0.4; Muon 0.2, 0.5, 0.2: wins 2 of 3, mean 0.4 / 0.3."""
    def entry(losses):
        return {"seeds": [9, 10, 11], "lr": 0.003, "val_loss": losses}
    record = {"results": {"steps": 300, "results": {
        "adamw": entry([0.4, 0.4, 0.4]), "muon": entry([0.2, 0.5, 0.2])}}}
    M.print_seeds(record)
    assert capsys.readouterr().out.strip() == (
        "300 steps, seeds 9, 10, 11: Muon beats tuned AdamW on every seed: no; "
        "mean loss AdamW/Muon = 1.33 (per seed 2.00 0.80 2.00)")
    with pytest.raises(ValueError, match="no 'adamw' results"):
        M.print_seeds({"results": {"steps": 300, "results": {"muon": entry([0.2] * 3)}}})


def test_seeds_rerun_is_network_run_at_the_given_rates():
    lrs = {n: s.lr_grid[2] for n, s in M.OPTIMIZERS.items()}
    out = M.seeds_rerun(steps=3, seeds=(4, 5), lrs=lrs, eval_every=3)
    for n in M.OPTIMIZERS:
        assert out["results"][n]["val_loss"] == [
            M.network_run(n, lrs[n], 3, s, 3)["final_val_loss"] for s in (4, 5)]
    with pytest.raises(ValueError, match="no learning rate for 'soap'"):
        M.seeds_rerun(steps=3, seeds=(4,), lrs={"adamw": 0.01, "muon": 0.01})


def test_curves_are_the_tuned_rate_and_time_is_steps_times_median():
    c = M.curves(_record(), times=_times())
    assert c["steps"] == [150, 300]
    assert list(c["series"]) == ["AdamW", "Muon", "SOAP", "Shampoo (Adam grafting)"]
    assert c["series"]["Muon"] == [[2.0, 0.1], [2.0, 0.2], [2.0, 0.3]]
    assert math.isnan(c["series"]["Shampoo (Adam grafting)"][2][1])
    assert c["seconds"]["Muon"] == pytest.approx([150 * 0.004, 300 * 0.004])
    assert c["lr"]["Shampoo (Adam grafting)"] == 1e-4
    held = M.curves(_record(), which="heldout")
    assert "seconds" not in held and held["series"]["AdamW"][0] == [2.0, 0.31]


def test_summary():
    assert M.summary([0.3, 0.4, 0.5]) == pytest.approx((0.4, 0.3, 0.5))
    assert M.summary([0.3, "inf"]) == (math.inf, math.inf, math.inf)


# --- bad input --------------------------------------------------------------------------------

def test_bad_input_raises_clear_errors():
    model = M.network_model(0)
    with pytest.raises(ValueError, match="Invalid optimizer: 'adam'"):
        M.make_optimizer("adam", model, 0.01)
    with pytest.raises(ValueError, match="Invalid learning rate: -0.1"):
        M.network_run("adamw", -0.1, steps=3)
    with pytest.raises(ValueError, match="Invalid steps: 0"):
        M.network_run("adamw", 0.01, steps=0)
    with pytest.raises(ValueError, match="Invalid lrs"):
        M.tune("adamw", (0.01, 0.001), 3, (0,))
    with pytest.raises(ValueError, match="Invalid seeds: .*repeated"):
        M.tune("adamw", (0.001, 0.01), 3, (0, 0))
    with pytest.raises(ValueError, match="every learning rate diverged"):
        M.best_index([[math.inf], ["nan"]])
    with pytest.raises(ValueError, match="Invalid which: 'x'"):
        M.curves(_record(), which="x")
    with pytest.raises(TypeError, match="Invalid record: list"):
        M.print_comparison([1, 2])
    with pytest.raises(ValueError, match="unknown optimizer 'adam'"):
        M.print_comparison({"results": {"adam": {"lrs": [1], "val_loss": [[1]], "best_lr": 1}}})
    with pytest.raises(ValueError, match="best_lr 0.5 is not in its grid"):
        M.print_comparison({"adamw": {"lrs": [1], "val_loss": [[1]], "best_lr": 0.5}})
    record = _record()
    del record["results"]["results"]["adamw"]
    with pytest.raises(ValueError, match="'adamw', which is missing"):
        M.verdict(record)
    with pytest.raises(ValueError, match="no 'step_seconds'"):
        M.print_step_times(_record())
    with pytest.raises(ValueError, match="no learning rate for 'muon'"):
        M.step_times_rerun(steps=1, seeds=(0,), repeats=1, lrs={"adamw": 0.01})


# --- the timing rerun and the declarations ------------------------------------------------------

def test_step_times_rerun_tiny_case_restores_threads():
    threads = torch.get_num_threads()
    t = M.step_times_rerun(steps=2, seeds=(0,), repeats=2,
                           lrs={n: s.lr_grid[2] for n, s in M.OPTIMIZERS.items()}, warmup=1)
    assert torch.get_num_threads() == threads
    for n in M.OPTIMIZERS:
        assert len(t["step_seconds"][n]) == 2
        assert all(0 < o <= w for o, w in zip(t["optimizer_seconds"][n], t["step_seconds"][n]))
        assert t["median_step_seconds"][n] == statistics.median(t["step_seconds"][n])
    assert "adamw_unfused" not in t["step_seconds"]
    t = M.step_times_rerun(steps=2, seeds=(0,), repeats=1, extra=("adamw_unfused",),
                           lrs={n: s.lr_grid[2] for n, s in M.OPTIMIZERS.items()}, warmup=0)
    assert t["names"] == [*M.OPTIMIZERS, "adamw_unfused"]
    assert len(t["step_seconds"]["adamw_unfused"]) == 1
    with pytest.raises(ValueError, match="Invalid extra: 'sgd'"):
        M.step_times_rerun(steps=1, seeds=(0,), repeats=1, extra=("sgd",),
                           lrs={n: s.lr_grid[2] for n, s in M.OPTIMIZERS.items()})


def test_declared_grids_follow_the_protocol():
    assert all(len(s.lr_grid) >= 5 for s in M.OPTIMIZERS.values())
    by = {r.name: r for r in M.RERUNS}
    assert all(r.chapter == "05-matrix" and r.name.startswith("05-matrix-") for r in M.RERUNS)
    assert by["05-matrix-network-3000-steps"].params["steps"] == \
        10 * by["05-matrix-network-300-steps"].params["steps"]


def test_long_horizon_grid_brackets_the_stored_short_tuning():
    """The 10x rerun re-tunes each optimizer on its stored 300-step rate and the grid rates
    either side, and the timing rerun uses the 300-step rates (stale params otherwise)."""
    short = reruns.load("05-matrix-network-300-steps")["results"]["results"]
    by = {r.name: r for r in M.RERUNS}
    long_grids = by["05-matrix-network-3000-steps"].params["lr_grids"]
    times = by["05-matrix-step-times"].params["lrs"]
    assert by["05-matrix-network-300-steps-seeds-9-11"].params["lrs"] == times
    for name, r in short.items():
        i = r["lrs"].index(r["best_lr"])
        expected = r["lrs"][max(0, i - 1):i + 2]
        assert [pytest.approx(x) for x in expected] == list(long_grids[name]), name
        assert times[name] == pytest.approx(r["best_lr"])


def test_equal_time_reads_the_curves_at_the_step_the_same_time_buys():
    """Muon's step costs 2 AdamW steps. Budget 1: Muon's 300 steps (0.25 on every seed)
    against AdamW's 600, halfway between its stored points 300 and 900 (0.5, 0.1): 0.3.
    Budget 2: AdamW's 900 steps (0.1) against Muon's 450, halfway between 300 and 600 on
    its long curve (0.4, 0.2): 0.3."""
    def entry(steps, best, eval_steps, curve):
        return {"lrs": [best], "best_lr": best, "steps": steps, "val_loss": [[curve[-1]] * 3],
                "eval_steps": eval_steps, "curves": [[curve] * 3]}
    short = {"adamw": entry(300, 0.01, [300], [0.9]), "muon": entry(300, 0.003, [300], [0.25])}
    long = {"adamw": entry(900, 0.003, [300, 900], [0.5, 0.1]),
            "muon": entry(900, 0.003, [300, 600, 900], [0.4, 0.2, 0.05])}
    times = {"step_seconds": {"adamw": [0.001, 0.001, 0.003], "muon": [0.002, 0.002, 0.0]}}
    first, second = M.equal_time(short, long, times)
    assert (first["budget"], first["steps_other"], first["steps_adamw"]) == \
        ("its short run", 300, pytest.approx(600))
    assert first["adamw"] == pytest.approx([0.3] * 3) and first["every"] == "yes"
    assert first["mean_ratio"] == pytest.approx(0.3 / 0.25)
    assert (second["steps_other"], second["steps_adamw"]) == (pytest.approx(450), 900)
    assert second["other"] == pytest.approx([0.3] * 3)
    assert second["every"] == "no (AdamW lower on every seed)"
    assert second["mean_ratio"] == pytest.approx(0.1 / 0.3)
    # against an AdamW step twice as slow (as slow as Muon's): equal steps
    times["step_seconds"]["adamw_unfused"] = [0.002, 0.002, 0.002]
    first, second = M.equal_time(short, long, times, baseline="adamw_unfused")
    assert first["ratio"] == pytest.approx(1.0) and first["baseline"] == "adamw_unfused"
    assert (second["steps_other"], second["steps_adamw"]) == (pytest.approx(900), 900)
    assert second["other"] == pytest.approx([0.05] * 3)
    with pytest.raises(ValueError, match="Invalid baseline: 'sgd'"):
        M.equal_time(short, long, times, baseline="sgd")
    del times["step_seconds"]["adamw_unfused"]
    with pytest.raises(ValueError, match="no 'adamw_unfused' step times"):
        M.equal_time(short, long, times, baseline="adamw_unfused")
