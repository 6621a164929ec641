"""optbook.experiments.distributed (chapter 7, "Optimizers on many machines").

Oracles: torch.optim's own state layouts (Adam: exp_avg, exp_avg_sq and a float32
step tensor per parameter; SGD momentum: one buffer), the closed forms of each rule's
state (Adafactor m + n, SOAP 2(m^2 + n^2) + Adam's 2mn per matrix), the ZeRO paper's
per-rank formulas written out by hand, a gloo collective of known size, and the
stored reruns checked against what each rule's declaration implies.
"""
from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from optbook.experiments import distributed as DI
from optbook.experiments import reruns

MATRICES = ((128, 64), (32, 128))  # DI.make_model's weights (out, in)
VECTORS = (128, 32)
PARAM_BYTES = 4 * (sum(m * n for m, n in MATRICES) + sum(VECTORS))


def _stepped(opt_class, **kw):
    model = DI.make_model(0)
    opt = opt_class(model.parameters(), **kw)
    model(torch.randn(4, 64)).pow(2).mean().backward()
    opt.step()
    return model, opt


# --- state_bytes against torch.optim -------------------------------------------------

def test_state_bytes_of_torch_adam_is_two_copies_plus_a_step_tensor():
    model, opt = _stepped(torch.optim.Adam, lr=1e-3)
    n_tensors = len(list(model.parameters()))
    assert PARAM_BYTES == sum(p.numel() * 4 for p in model.parameters())
    # torch's Adam: exp_avg and exp_avg_sq like the parameter, step a float32 scalar
    assert DI.state_bytes(opt) == {"tensor_bytes": 2 * PARAM_BYTES + 4 * n_tensors,
                                   "python_numbers": 0}


def test_state_bytes_of_torch_sgd_momentum_is_one_copy():
    _, opt = _stepped(torch.optim.SGD, lr=0.1, momentum=0.9)
    assert DI.state_bytes(opt)["tensor_bytes"] == PARAM_BYTES


def test_state_bytes_of_selected_parameters():
    model, opt = _stepped(torch.optim.Adam, lr=1e-3)
    first = next(model.parameters())
    assert DI.state_bytes(opt, [first])["tensor_bytes"] == 2 * first.numel() * 4 + 4


def test_state_bytes_rejects_a_non_optimizer():
    with pytest.raises(TypeError, match="optimizer must be a torch.optim.Optimizer"):
        DI.state_bytes({"state": {}})


# --- measure_state: the closed forms of the rules -------------------------------------

@pytest.fixture(scope="module")
def measured():
    return DI.measure_state()


def test_every_optimizer_is_measured(measured):
    assert list(measured) == list(DI.OPTIMIZERS)
    for m in measured.values():
        assert m["param_bytes"] == PARAM_BYTES


@pytest.mark.parametrize("name, copies", [
    ("SGD", 0), ("SGD momentum", 1), ("Adagrad", 1), ("RMSprop", 1),
    ("RMSprop centered+momentum", 3), ("Adam", 2), ("AdamW", 2), ("NAdam", 2),
    ("RAdam", 2), ("LAMB", 2), ("Lion", 1), ("SophiaG", 2)])
def test_elementwise_states_are_whole_copies(measured, name, copies):
    m = measured[name]
    assert m["state_bytes"] == copies * PARAM_BYTES
    assert m["ratio"] == m["matrix_ratio"] == m["vector_ratio"] == copies


def test_adam_keeps_a_step_counter_per_tensor(measured):
    # the counter is a Python number (no tensor bytes): at least one per parameter tensor
    assert measured["Adam"]["python_numbers"] >= len(MATRICES) + len(VECTORS)


def test_adafactor_factors_matrices(measured):
    # a row and a column vector per matrix, the full second moment for vectors
    m = measured["Adafactor"]
    assert m["matrix_ratio"] == pytest.approx(sum(a + b for a, b in MATRICES)
                                              / sum(a * b for a, b in MATRICES))
    assert m["vector_ratio"] == 1


def test_soap_keeps_two_squares_per_side_and_adams_moments(measured):
    expected = sum(2 * (a * a + b * b) + 2 * a * b for a, b in MATRICES)
    assert measured["SOAP"]["matrix_ratio"] == pytest.approx(
        expected / sum(a * b for a, b in MATRICES))


def test_shampoo_keeps_statistics_roots_and_its_graftings_second_moment(measured):
    # L (m x m), R (n x n), their inverse roots, and Adam grafting's v (m x n)
    expected = sum(2 * (a * a + b * b) + a * b for a, b in MATRICES)
    assert measured["Shampoo (Adam grafting)"]["matrix_ratio"] == pytest.approx(
        expected / sum(a * b for a, b in MATRICES))


def test_schedule_free_keeps_x_and_z(measured):
    assert measured["SGDScheduleFree"]["state_bytes"] == 2 * PARAM_BYTES
    assert measured["AdamWScheduleFree"]["state_bytes"] == 4 * PARAM_BYTES  # and m, v


def test_muon_keeps_one_copy_for_hidden_matrices_and_two_for_the_adamw_group(measured):
    # muon_param_groups: the hidden 128x64 matrix to Muon (momentum), the output
    # layer (the last Linear) and the biases to AdamW (two moments)
    (a, b), (c, d) = MATRICES
    expected = (a * b + 2 * c * d + 2 * sum(VECTORS)) * 4
    assert measured["Muon (+ AdamW groups)"]["state_bytes"] == expected


def test_measure_state_rejects_an_unknown_name():
    with pytest.raises(ValueError, match="Invalid optimizer name: 'Adamax'"):
        DI.measure_state(["Adamax"])


# --- the ZeRO table ---------------------------------------------------------------

def test_zero_table_is_the_papers_formulas():
    # Adam in float32: P = G = 4 bytes, S = 8 bytes per parameter
    t = DI.zero_table(4.0, 4.0, 8.0, ranks=(1, 2, 4, 8))
    assert t["DDP"] == {1: 16, 2: 16, 4: 16, 8: 16}
    assert t["ZeRO-1"] == {1: 16, 2: 4 + 4 + 4, 4: 4 + 4 + 2, 8: 4 + 4 + 1}
    assert t["ZeRO-2"] == {1: 16, 2: 4 + 6, 4: 4 + 3, 8: 4 + 1.5}
    assert t["ZeRO-3 / FSDP"] == {1: 16, 2: 8, 4: 4, 8: 2}


def test_zero_table_of_the_zero_papers_mixed_precision_adam():
    # Rajbhandari et al.: 2 + 2 + 12 bytes per parameter; ZeRO-1 at N_d = 64 -> 4.19
    t = DI.zero_table(2.0, 2.0, 12.0, ranks=(64,))
    assert t["ZeRO-1"][64] == pytest.approx(4 + 12 / 64)
    assert t["ZeRO-2"][64] == pytest.approx(2 + 14 / 64)
    assert t["ZeRO-3 / FSDP"][64] == pytest.approx(16 / 64)


@pytest.mark.parametrize("kwargs, match", [
    (dict(param_bytes=-1.0, grad_bytes=1.0, state_bytes_=1.0), "Invalid param_bytes"),
    (dict(param_bytes=1.0, grad_bytes=float("nan"), state_bytes_=1.0), "Invalid grad_bytes"),
    (dict(param_bytes=1.0, grad_bytes=1.0, state_bytes_=1.0, ranks=(0,)), "Invalid ranks"),
    (dict(param_bytes=1.0, grad_bytes=1.0, state_bytes_=1.0, ranks=()), "Invalid ranks")])
def test_zero_table_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DI.zero_table(**kwargs)


def test_per_rank_table_in_gigabytes(measured):
    t = DI.per_rank_table({k: measured[k] for k in ("SGD", "Adam")}, params=1e9)
    assert t["Adam"]["DDP"][1] == pytest.approx(16.0)
    assert t["Adam"]["ZeRO-1"][8] == pytest.approx(9.0)
    # no state: ZeRO-1 saves nothing
    assert t["SGD"]["ZeRO-1"] == t["SGD"]["DDP"]
    with pytest.raises(ValueError, match="Invalid params"):
        DI.per_rank_table(measured, params=0)


def test_printers_and_plot_run(measured, capsys):
    DI.print_state_table(measured)
    DI.print_zero_table(DI.per_rank_table({"Adam": measured["Adam"]}))
    out = capsys.readouterr().out
    assert "AdamWScheduleFree" in out and "ZeRO-3 / FSDP" in out
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    DI.plot_per_rank(ax, 2.0, ranks=(1, 2, 4))
    assert len(ax.lines) == len(DI.STAGES)
    assert ax.lines[3].get_ydata()[-1] == pytest.approx(16 / 4)  # ZeRO-3, 4 ranks, GB
    plt.close(fig)


# --- what DDP averages ---------------------------------------------------------------

@pytest.mark.parametrize("ranks", [1, 2, 4, 8])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_averaged_rank_gradients_equal_the_whole_batch_gradient(ranks, dtype):
    s = DI.simulated_ranks_gradient(ranks, batch=64, dtype=dtype)
    assert s["eps"] == torch.finfo(dtype).eps
    assert s["rel_diff"] <= 10 * s["eps"]


def test_averaging_sums_of_losses_instead_of_means_is_not_the_gradient():
    # the identity needs each rank's *mean* loss: a control that the check can fail
    model = DI.make_model(0)
    x, y = DI._batch(0, 8)
    torch.nn.functional.mse_loss(model(x), y).backward()
    full = model[0].weight.grad.clone()
    model.zero_grad()
    for xs, ys in zip(x.chunk(2), y.chunk(2)):
        torch.nn.functional.mse_loss(model(xs), ys, reduction="sum").backward()
    assert not torch.allclose(model[0].weight.grad / 2, full)


@pytest.mark.parametrize("ranks, batch, match", [(0, 8, "Invalid ranks"),
                                                 (3, 8, "Invalid batch: 8")])
def test_simulated_ranks_rejects_bad_input(ranks, batch, match):
    with pytest.raises(ValueError, match=match):
        DI.simulated_ranks_gradient(ranks, batch=batch)


# --- the collective counter, on a one-process gloo group -------------------------------

@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                    reason="torch.distributed with gloo is not available")
def test_collective_counter_counts_an_all_reduce(tmp_path):
    import torch.distributed._functional_collectives as funcol
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1)
    try:
        t = torch.ones(10, dtype=torch.float64)
        with DI.CollectiveCounter() as counter:
            out = funcol.all_reduce(t, "sum", dist.group.WORLD)
            out = funcol.wait_tensor(out)
            (t * 2).sum()  # no collective
        assert counter.calls == 1
        assert counter.bytes == 10 * 8
        assert counter.ops == {"all_reduce.default": 1}
        assert torch.equal(out, t)
    finally:
        dist.destroy_process_group()


# --- the matrix parser ---------------------------------------------------------------

MATRIX_TEXT = """noise before
                       DDP               ZeRO-1
torch.optim.AdamW      pass 2e-16        pass 1e-16
Own link, a case       pass 6e-17        refuses
refuses (ZeRO-1, Own link, a case): ShardingError: no
(2 gloo processes, 5 steps)
.
"""


def test_parse_matrix():
    m = DI.parse_matrix(MATRIX_TEXT, ("DDP", "ZeRO-1"))
    assert m["order"] == ["torch.optim.AdamW", "Own link, a case"]
    assert m["cells"]["Own link, a case"] == {"DDP": "pass 6e-17", "ZeRO-1": "refuses"}
    assert m["refusals"] == ["refuses (ZeRO-1, Own link, a case): ShardingError: no"]
    assert m["footer"] == "(2 gloo processes, 5 steps)"


def test_parse_matrix_without_a_header_is_an_error():
    with pytest.raises(ValueError, match="no engine x class matrix"):
        DI.parse_matrix("nothing here", ("DDP", "ZeRO-1"))


def test_print_engine_matrix(capsys):
    m = DI.parse_matrix(MATRIX_TEXT, ("DDP", "ZeRO-1"))
    m["engines"] = ["DDP", "ZeRO-1"]
    DI.print_engine_matrix(m)
    out = capsys.readouterr().out
    assert "ok 2e-16" in out
    assert "refuses under ZeRO-1: Own link, a case (ShardingError)" in out


# --- the stored reruns, against the rules' declarations ------------------------------

@pytest.fixture(scope="module")
def gloo():
    return reruns.load("07-distributed-gloo")["results"]


def test_stored_ddp_gradient_is_the_whole_batch_gradient(gloo):
    assert gloo["ddp_grad_max_abs_diff"] <= 10 * 1.2e-7 * gloo["ddp_grad_max_abs"]


def test_stored_state_per_rank(gloo):
    p = gloo["param_bytes"]
    assert p == PARAM_BYTES
    assert sum(gloo["zero1_adam_state_bytes"]) == 2 * p  # ZeRO-1 partitions, keeps all
    f = gloo["fsdp2"]
    for name, copies in (("Adam", 2), ("SGD momentum", 1), ("SGD", 0), ("Lion", 1)):
        assert f[name]["state_bytes"] == [copies * p // 2] * 2, name  # FSDP2 halves it
    for name in ("Muon (+ AdamW groups)", "Shampoo (Adam grafting)", "SOAP"):
        assert f[name]["sharding"] == "gather"
    for name in ("Shampoo (Adam grafting)", "SOAP"):
        # gather: the whole state on every rank, as in one process
        single = DI.measure_state([name])[name]["state_bytes"]
        assert f[name]["state_bytes"] == [single] * 2, name
    # Muon gathers its Muon group only: the hidden matrix's momentum whole on every
    # rank, the AdamW group's two moments (output layer, biases) halved
    (a, b), (c, d) = MATRICES
    assert f["Muon (+ AdamW groups)"]["state_bytes"] == [
        4 * (a * b + (2 * c * d + 2 * sum(VECTORS)) // 2)] * 2


def test_stored_communication_follows_the_declarations(gloo):
    p = gloo["param_bytes"]
    n_tensors = len(MATRICES) + len(VECTORS)
    for name, r in gloo["fsdp2"].items():
        if r["sharding"] == "elementwise" and name != DI.CLIP_CASE:
            assert r["bytes_per_step"] == 0, name  # SophiaG too: its test is local
        if r["sharding"] == "gather" and name != "Muon (+ AdamW groups)":
            # the parameter and its gradient gathered: twice the parameters' bytes
            assert r["bytes_per_step"] == 2 * p
            assert r["ops_per_step"] == {"all_gather_into_tensor.default": 2 * n_tensors}
    # Muon gathers the hidden matrix and its gradient only (its AdamW group runs on
    # its shards): twice the matrix's bytes
    (a, b), _ = MATRICES
    muon = gloo["fsdp2"]["Muon (+ AdamW groups)"]
    assert muon["bytes_per_step"] == 2 * 4 * a * b
    assert muon["ops_per_step"] == {"all_gather_into_tensor.default": 2}
    lamb = gloo["fsdp2"]["LAMB"]
    assert lamb["ops_per_step"] == {"all_reduce.default": 2 * n_tensors}  # two norms
    assert lamb["bytes_per_step"] == 2 * n_tensors * 4                     # float32 scalars
    assert gloo["fsdp2"][DI.CLIP_CASE]["calls_per_step"] == 1


def test_stored_matrix_has_no_wrong_cell():
    stored = reruns.load("07-distributed-matrix")["results"]
    assert stored["four_ranks"]["engines"] == ["FSDP2", "DCP 2->4"]
    for m in (stored, stored["four_ranks"]):
        assert m["order"] and set(m["order"]) == set(m["cells"])
        for case, row in m["cells"].items():
            assert set(row) == set(m["engines"])
            for cell in row.values():
                assert cell.startswith("pass ") or cell == "refuses", (case, cell)
    assert stored["four_ranks"]["order"] == stored["order"]


@pytest.mark.parametrize("function, kwargs, match", [
    (DI.gloo_measurements, dict(seeds=[1]), "Invalid seeds"),
    (DI.gloo_measurements, dict(steps=0), "Invalid steps"),
    (DI.engine_matrix, dict(seeds=[0], steps=3), "Invalid seeds/steps")])
def test_reruns_reject_parameters_they_cannot_honour(function, kwargs, match):
    with pytest.raises(ValueError, match=match):
        function(**kwargs)


@pytest.mark.distributed
@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                    reason="torch.distributed with gloo is not available")
def test_gloo_measurements_reproduce_the_stored_counts(gloo):
    """Spawns 2 gloo processes (about 10 s): the counts are deterministic."""
    fresh = DI.gloo_measurements(steps=3)
    assert fresh["zero1_adam_state_bytes"] == gloo["zero1_adam_state_bytes"]
    for name, r in fresh["fsdp2"].items():
        assert r["state_bytes"] == gloo["fsdp2"][name]["state_bytes"], name
        assert r["bytes_per_step"] == pytest.approx(gloo["fsdp2"][name]["bytes_per_step"],
                                                    rel=1e-5), name
