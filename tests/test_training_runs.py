"""optbook.experiments.training_runs against code nobody here wrote: torch.optim.swa_utils
(EMA), the full-batch gradient (accumulation), torch.equal (resume), torch.optim.Adam
(8-bit states at full precision), torch.finfo / torch casts (formats, rounding), and
input validation."""
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from optbook.experiments import training_runs as R

torch.set_num_threads(1)


# --- 1. spikes ---------------------------------------------------------------------------

def test_copy_batch_copies_and_depends_on_position_only():
    a = R.copy_batch(8, length=10, vocab=5, seed=3, position=7)
    assert torch.equal(a[:, :5], a[:, 5:])
    assert torch.equal(a, R.copy_batch(8, length=10, vocab=5, seed=3, position=7))
    assert not torch.equal(a, R.copy_batch(8, length=10, vocab=5, seed=3, position=8))
    assert int(a.max()) < 5


def test_tinylm_is_causal():
    # changing a later token must not change the logits at earlier positions
    model = R.TinyLM(vocab=8, length=6, d_model=16, heads=2, layers=2, seed=0)
    x = torch.randint(0, 8, (2, 6), generator=torch.Generator().manual_seed(0))
    y = x.clone()
    y[:, 4] = (y[:, 4] + 1) % 8
    with torch.no_grad():
        a, b = model(x), model(y)
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_lm_loss_matches_hand_computed_cross_entropy_and_z_loss():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 5, 7, generator=g, dtype=torch.float64)
    tokens = torch.randint(0, 7, (2, 5), generator=g)
    logp = logits[:, :-1].log_softmax(-1)
    ce = -logp.gather(-1, tokens[:, 1:, None]).mean()
    z = torch.logsumexp(logits[:, :-1], -1)
    torch.testing.assert_close(R.lm_loss(logits, tokens), ce)
    torch.testing.assert_close(R.lm_loss(logits, tokens, z_loss=0.1), ce + 0.1 * (z ** 2).mean())


def test_count_spikes():
    flat = np.full(100, 0.01)
    assert R.count_spikes(flat) == 0
    one = flat.copy()
    one[50:53] = 1.0          # one spike three steps long counts once
    one[80] = 0.5
    assert R.count_spikes(one) == 2
    dead = flat.copy()
    dead[60] = np.nan
    assert R.count_spikes(dead) == 1
    with pytest.raises(ValueError, match="jump"):
        R.count_spikes(flat, jump=-1)
    with pytest.raises(ValueError, match="losses"):
        R.count_spikes(np.zeros((3, 3)))


def test_update_clipping_caps_update_rms():
    p = nn.Parameter(torch.zeros(100))
    before = [p.detach().clone()]
    with torch.no_grad():
        p.add_(torch.full((100,), 0.5))       # RMS of the update = 0.5 = 5 * lr
    R._clip_updates([p], before, lr=0.1, d=1.0)
    assert p.detach().pow(2).mean().sqrt().item() == pytest.approx(0.1)


def test_stable_clip_matches_adam_at_the_reduced_rate():
    # Wortsman et al. 2023: per tensor, the rate is divided by max(1, RMS(g^2 / v_hat)).
    # Closed form for g2 = c * g1: v_hat_2 = g1^2 (b2 + c^2) / (1 + b2), so
    # RMS = c * sqrt((1 + b2) / (b2 + c^2)); at step 1 v_hat_1 = g1^2 and RMS = 1.
    lr, b2, c = 0.1, 0.999, 10.0
    g1 = torch.linspace(0.5, 2.0, 10, dtype=torch.float64)
    expected = c * math.sqrt((1 + b2) / (b2 + c * c))
    assert expected > 1

    p = nn.Parameter(torch.ones(10, dtype=torch.float64))
    opt = torch.optim.Adam([p], lr=lr, betas=(0.9, b2))
    twin = nn.Parameter(torch.ones(10, dtype=torch.float64))
    ref = torch.optim.Adam([twin], lr=lr, betas=(0.9, b2))
    for step, g in enumerate((g1, c * g1)):
        before = [p.detach().clone()]
        p.grad = g.clone()
        opt.step()
        factors = R.stable_clip_factors(opt)
        assert factors[0] == pytest.approx(1.0 if step == 0 else expected, rel=1e-9)
        n = R._stable_clip([p], before, opt)
        assert n == step                          # clipped at the second step only
        # oracle: torch's own Adam, with the rate divided by the closed-form factor
        ref.param_groups[0]["lr"] = lr / (1.0 if step == 0 else expected)
        twin.grad = g.clone()
        ref.step()
        torch.testing.assert_close(p.detach(), twin.detach(), rtol=1e-12, atol=1e-12)
    with pytest.raises(TypeError, match="opt"):
        R.stable_clip_factors(torch.optim.SGD([p], lr=0.1))


def test_stable_clip_binds_where_the_rms_cap_does_not():
    # the cap on the RMS of m_hat / (sqrt(v_hat) + eps) at d = 1 rarely binds with Adam
    # (that ratio's RMS is at most about 1 while gradients are steady); Wortsman's
    # form compares the new gradient with v_hat's memory and binds more often
    kw = dict(steps=40, lr=0.05, d_model=16, layers=1)
    rms_cap = R.spike_run(0, update_clip=1.0, **kw)["clipped"]
    stable = R.spike_run(0, stable_clip=True, **kw)["clipped"]
    assert stable > max(rms_cap, 0.0) and rms_cap < 0.01
    with pytest.raises(ValueError, match="update_clip"):
        R.spike_run(0, steps=5, update_clip=1.0, stable_clip=True)


def test_max_attention_ignores_masked_positions():
    model = R.TinyLM(vocab=8, length=6, d_model=16, heads=2, layers=1, seed=0)
    with torch.no_grad():
        model.blocks[0].qkv.mul_(30.0)        # large logits, so the maxima differ
        x = torch.randint(0, 8, (3, 6), generator=torch.Generator().manual_seed(2))
        model(x)
        blk = model.blocks[0]
        h = model.embed[x] + model.pos[:6]
        q, k, _ = (blk.ln1(h) @ blk.qkv).split(16, dim=-1)
        q, k = (t.view(3, 6, 2, 8).transpose(1, 2) for t in (q, k))
        att = (q @ k.transpose(-1, -2) / math.sqrt(8)).abs()
        causal = torch.ones(6, 6).tril().bool()   # query i sees keys j <= i
    assert model.last_max_attention == pytest.approx(float(att[..., causal].max()), rel=1e-6)


def test_onset_ratio():
    loss = np.full(100, 0.01)
    loss[50:52] = 1.0
    signal = np.full(100, 2.0)
    signal[50] = 6.0
    assert R.onset_ratio(loss, signal) == pytest.approx(3.0)
    assert math.isnan(R.onset_ratio(np.full(100, 0.01), signal))
    with pytest.raises(ValueError, match="signal"):
        R.onset_ratio(loss, signal[:50])


def test_spike_run_rewind_restores_and_skips():
    # checkpointing alone does not perturb the run
    plain = R.spike_run(0, steps=30, lr=1e-3)
    r = R.spike_run(0, steps=30, lr=1e-3, rewind=True, checkpoint_every=10)
    assert r["rewinds"] == 0 and np.array_equal(r["losses"], plain["losses"])
    # a spike threshold of a hair forces rewinds; each rewind drops the steps since
    # the checkpoint, so the run still ends with `steps` kept losses
    r = R.spike_run(0, steps=60, lr=3e-2, rewind=True, checkpoint_every=10, jump=1e-9)
    assert r["rewinds"] >= 1
    assert len(r["losses"]) == 60 or r["rewinds"] > 20
    assert r["kept_steps"] == len(r["losses"]) and r["gave_up"] == (r["rewinds"] > 20)
    # a cap of one rewind gives up at the second and says so
    r = R.spike_run(0, steps=60, lr=3e-2, rewind=True, checkpoint_every=10, jump=1e-9,
                    max_rewinds=1)
    assert r["gave_up"] and r["rewinds"] == 2 and r["kept_steps"] < 60 and r["diverged"]
    with pytest.raises(ValueError, match="lr"):
        R.spike_run(0, steps=5, lr=0)


# --- 2. low precision -----------------------------------------------------------------------

def test_format_table_matches_torch_finfo_and_casts():
    t = R.format_table()
    assert t["bfloat16"]["mantissa_bits"] == 7 and t["float16"]["mantissa_bits"] == 10
    assert t["float16"]["max"] == 65504.0
    assert math.isinf(t["float16"]["probes"]["70000"])
    assert t["bfloat16"]["probes"]["1e-8"] == pytest.approx(1e-8, rel=1e-2)
    assert t["float16"]["probes"]["1e-8"] == 0.0
    assert t["bfloat16"]["probes"]["1 + 2⁻⁸ (= 1.0039)"] == 1.0
    assert t["float16"]["smallest_subnormal"] == 2.0 ** -24


def test_autocast_keeps_weights_float32():
    d = R.autocast_dtypes(torch.bfloat16)
    assert d["linear (matmul)"] == "bfloat16" and d["weight.grad"] == "float32"
    assert R.autocast_dtypes(torch.float16)["linear (matmul)"] == "float16"
    with pytest.raises(ValueError, match="dtype"):
        R.autocast_dtypes(torch.float64)


def test_loss_scaling_rescues_underflowing_fp16_gradients():
    d = R.underflow_demo(loss_factor=1e-4)
    assert d["float16, unscaled"]["zero_fraction"] > 0.05
    assert d["float16, scaled by 2^16"]["rel_error"] < 1e-2 < d["float16, unscaled"]["rel_error"]


def test_scale_collapse_halves_every_step_and_skips():
    r = R.scale_collapse(steps=30, nan_from=10, init_scale=1024.0, growth_interval=1000)
    assert r["steps_taken"] == 10
    np.testing.assert_allclose(r["scale"][10:], 1024.0 * 0.5 ** np.arange(1, 21))


@pytest.mark.parametrize("block", [0, 7, 64])
def test_blockwise_quantization_error_is_within_half_a_level(block):
    x = torch.randn(300, generator=torch.Generator().manual_seed(0))
    codes, scales = R.quantize_blockwise(x, block)
    back = R.dequantize_blockwise(codes, scales, x)
    assert codes.abs().max() <= 127
    size = block or 300
    pad = (-300) % size
    s = scales.expand(-1, size).flatten()[:300 + pad][:300]
    assert torch.all((back - x).abs() <= s / 127 / 2 + 1e-7)
    with pytest.raises(ValueError, match="sqrt_map"):
        R.quantize_blockwise(x, block, signed=False, sqrt_map=True)


def test_quantized_adam_matches_torch_adam_on_first_step_and_with_one_entry_per_block():
    # first step: the states are fresh zeros, so the update is torch.optim.Adam's;
    # block=1: every entry is its own scale, the codes are exact, so every step is
    g = torch.Generator().manual_seed(0)
    grads = [torch.randn(50, generator=g) for _ in range(20)]
    start = torch.randn(50, generator=g)
    for block, steps in ((8, 1), (1, 20)):
        a, b = nn.Parameter(start.clone()), nn.Parameter(start.clone())
        oa, ob = R.QuantizedAdam([a], lr=0.1, block=block), torch.optim.Adam([b], lr=0.1)
        for grad in grads[:steps]:
            a.grad, b.grad = grad.clone(), grad.clone()
            oa.step()
            ob.step()
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # with coarse blocks the states are rounded, and the weights drift from torch's
    a, b = nn.Parameter(start.clone()), nn.Parameter(start.clone())
    oa, ob = R.QuantizedAdam([a], lr=0.1, block=0), torch.optim.Adam([b], lr=0.1)
    for grad in grads:
        a.grad, b.grad = grad.clone(), grad.clone()
        oa.step()
        ob.step()
    assert not torch.allclose(a, b, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="block"):
        R.QuantizedAdam([a], block=-1)


def test_round_bf16_nearest_matches_torch_cast_and_stochastic_is_unbiased():
    x = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(R.round_bf16(x), x.to(torch.bfloat16).float())
    sr = R.round_bf16(x, stochastic=True, generator=torch.Generator().manual_seed(1))
    # every stochastic result is one of the two bf16 neighbours, so exactly representable
    assert torch.equal(sr, sr.to(torch.bfloat16).float())
    # unbiased: the mean of many roundings of 1 + 2^-10 (a quarter of bf16's spacing at 1)
    v = torch.full((200_000,), 1 + 2 ** -10)
    m = R.round_bf16(v, stochastic=True, generator=torch.Generator().manual_seed(2)).double().mean()
    assert abs(m.item() - (1 + 2 ** -10)) < 4 * 2 ** -7 * 0.5 / math.sqrt(200_000)
    assert R.round_bf16(v).unique().tolist() == [1.0]
    with pytest.raises(TypeError, match="float32"):
        R.round_bf16(x.double())


# --- 3. gradient accumulation ---------------------------------------------------------------

def test_per_token_accumulation_equals_full_batch_gradient():
    d = R.accumulation_gradients(seed=0)
    assert d["per token"]["rel_error"] < 1e-12
    assert d["per micro-batch"]["rel_error"] > 1e-3
    assert len(set(d["tokens_per_micro_batch"])) > 1


def test_with_equal_lengths_both_normalisations_are_exact():
    d = R.accumulation_gradients(seed=1, equal_lengths=True)
    assert d["per micro-batch"]["rel_error"] < 1e-12 and d["per token"]["rel_error"] < 1e-12


# --- 4. scaling -----------------------------------------------------------------------------

def test_mup_equals_sp_at_base_width_and_scales_hidden_rates():
    x = torch.randn(5, 20, generator=torch.Generator().manual_seed(0))
    sp, mup = R.WidthMLP(64, parametrization="sp"), R.WidthMLP(64, parametrization="mup")
    torch.testing.assert_close(sp(x), mup(x))
    wide = R.WidthMLP(256, parametrization="mup")
    groups = wide.param_groups(1e-2)
    assert groups[1]["lr"] == pytest.approx(1e-2 / 4) and groups[0]["lr"] == 1e-2
    assert wide.multiplier == pytest.approx(0.25)
    with pytest.raises(ValueError, match="parametrization"):
        R.WidthMLP(64, parametrization="ntk")


def test_refined_best_finds_vertex_of_parabola():
    lrs = np.exp(np.linspace(-5, 0, 6))
    x = np.log(lrs)
    loss = (x - (-2.3)) ** 2
    best = R.refined_best(loss[:, None], lrs)
    assert best[0] == pytest.approx(math.exp(-2.3))
    edge = R.refined_best(((x - 1.0) ** 2)[:, None], lrs)     # optimum beyond the grid
    assert edge[0] == pytest.approx(lrs[-1])


def test_best_rate_grid_validates():
    with pytest.raises(ValueError, match="optimizer"):
        R.best_rate_grid(optimizer="lion", lrs=[1, 2, 3, 4, 5], steps=1)
    with pytest.raises(ValueError, match="at least 5"):
        R.best_rate_grid(optimizer="sgd", lrs=[0.1, 0.2], steps=1)
    with pytest.raises(ValueError, match="exactly one"):
        R.best_rate_grid(optimizer="sgd", lrs=[.1, .2, .3, .4, .5], steps=1, examples=10)


# --- 5. weight averaging --------------------------------------------------------------------

def test_ema_matches_torch_swa_utils_averaged_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    ours = R.EMA(model, decay=0.9)
    oracle = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(0)
    for _ in range(25):
        x = torch.randn(16, 4, generator=g)
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        ours.update(model)
        oracle.update_parameters(model)
    for a, b in zip(ours.module.parameters(), oracle.module.parameters()):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="decay"):
        R.EMA(model, decay=1.0)


# --- 6. restarting --------------------------------------------------------------------------

def test_resume_is_bit_exact_and_each_omission_breaks_it():
    r = R.resume_experiment(seed=0, steps=40, stop=25)
    assert r["nothing"]["equal"] and r["nothing"]["max_abs_diff"] == 0.0
    for part in R.CHECKPOINT_PARTS:
        assert not r[part]["equal"] and r[part]["max_abs_diff"] > 0, part


def test_resume_validates():
    with pytest.raises(ValueError, match="stop"):
        R.resume_experiment(steps=10, stop=10)
    with pytest.raises(ValueError, match="omission"):
        R.resume_experiment(steps=10, stop=5, omissions=("weights",))


def _synthetic_grid(best_exponent):
    # loss = (log lr - log best(B))^2 with best(B) = 0.01 * (B / 32) ** best_exponent
    lrs = [0.00125 * 2 ** k for k in range(12)]
    batches = [32, 128, 512]
    x = np.log(lrs)
    loss = np.zeros((3, 1, 12, 2))
    for b, B in enumerate(batches):
        loss[b, 0, :, :] = ((x - np.log(0.01 * (B / 32) ** best_exponent)) ** 2)[:, None]
    return {"val_loss": loss, "lrs": np.array(lrs), "batches": batches, "widths": [64],
            "best_lr": R.refined_best(loss, lrs)}


@pytest.mark.parametrize("exponent,exact_rule", [(1.0, "linear"), (0.5, "square root")])
def test_rule_regret_is_zero_for_the_rule_that_generated_the_grid(exponent, exact_rule):
    g = _synthetic_grid(exponent)
    rules = {"same rate": 0.0, "square root": 0.5, "linear": 1.0}
    r = R.rule_regret(g, "batch", 1, rules)
    # the grid's best at B = 128 is exact (0.01 * 4**e is on the grid), so the right
    # rule lands on every other best point, the others do not
    assert np.all(r[exact_rule]["regret"] == 0)
    for rule in rules:
        if rule != exact_rule:
            assert np.all(r[rule]["regret"][[0, 2]] > 0)
    R.print_rule_regret(g, "batch", 1, rules)
    slopes = R.scaling_summary(g, "batch")["slopes"]
    np.testing.assert_allclose(slopes, exponent, atol=1e-9)
    with pytest.raises(ValueError, match="off the grid"):
        R.rule_regret(g, "batch", 1, {"cube root": 1 / 3})


def test_good_window():
    lrs = [1, 2, 4, 8, 16]
    assert R.good_window([0.5, 0.31, 0.30, 0.315, np.inf], lrs, tol=0.02) == (2.0, 8.0)


# --- the experiment drivers and printers, on tiny budgets -----------------------------------

def test_drivers_shapes_and_printers(capsys):
    q = R.quantized_adam_run(seeds=(0,), steps=5)
    assert set(q) == {"float32 Adam", *R.QUANTIZED_VARIANTS}
    assert all(0.0 <= z <= 1.0 for row in q.values() for z in row["v_zero"])
    R.print_quantized(q)
    w = R.low_precision_weights(lrs=(1e-5,), seeds=(0,), steps=5)
    # at a tiny rate round-to-nearest swallows most updates; float32 weights keep them
    assert w["bf16, round to nearest"]["unchanged"][0, 0] > 0.5 > w["float32 weights"]["unchanged"][0, 0]
    R.print_bf16_weights(w, [1e-5])
    a = R.averaging_run([1e-3], seeds=(0,), steps=10)
    assert a["constant"]["raw"].shape == (1, 1) and np.isfinite(a["cooldown"]["ema"]).all()
    R.print_averaging(a, [1e-3])
    g = R.best_rate_grid(optimizer="adam", lrs=[1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2], seeds=(0,),
                         widths=(8, 16), steps=2)
    assert g["val_loss"].shape == (1, 2, 5, 1) and g["best_lr"].shape == (1, 2, 1)
    R.print_width_transfer({"SP": g})
    t = R.spike_table((0,), {"provoked": {}}, steps=25)
    R.print_spike_table(t)
    R.print_spike_onsets(t)
    out = capsys.readouterr().out
    assert "float32 Adam" in out and "stochastic rounding" in out and "provoked" in out and "constant, EMA of weights" in out
