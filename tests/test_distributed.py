"""optbook.torch on a real process group: DDP, ZeRO-1 and FSDP2 against one process.

One session-wide run (:func:`engine_results`) spawns ``WORLD`` = 2 processes on
the gloo backend; each trains every case of ``distributed_harness.CASES`` on an
MLP and a small Transformer block for 5 steps under DDP (2 micro-batches
accumulated under ``no_sync``), ZeRO-1 (``ZeroRedundancyOptimizer``, its state
consolidated on rank 0 after step 3, saved and loaded into a rebuilt
optimizer), FSDP2 (``fully_shard``, parameters as DTensors) and FSDP2 again
with model and optimizer saved by ``torch.distributed.checkpoint`` after step 3
and loaded into new ones (FSDP2+DCP), each rank on its half of the batch. This
process trains the same case on the whole batch, and also resumes each
checkpoint of FSDP2+DCP in one process (whole tensors: another number of
ranks). A second run (:func:`engine_results_4`) spawns ``WORLD_4`` = 4
processes and trains the MLP under FSDP2 from the start, and under FSDP2
resumed from the 2-rank FSDP2+DCP checkpoints (DCP 2->4,
torch.distributed.checkpoint resharding them). The
MLP's head has one row, so one rank holds none of it (on 2 ranks and on 4), and
on 4 ranks each of its layers has a rank with an empty shard. Every cell
must match the one-process run (parameters, and the norms clipping
returned), or be refused by optbook with a
:class:`optbook.torch.ShardingError` naming the rule where
:data:`EXPECTED_REFUSALS` says so — never silently differ.

Tolerance: ``TOL`` = 1e-13 on every parameter entry (entries of order 0.1-1)
and on every norm clipping returned, in float64. An engine changes only the
order of the additions (the all-reduce's sum of two halves, a reduce-scatter,
a norm taken as a sum of shard sums): each costs ~1e-16 relative, and 5 steps
of these rules amplify it a little (divisions by sqrt(v) and by norms). The
largest differences measured are 4e-14 for Shampoo (its inverse matrix roots
come from an eigendecomposition, which amplifies last-bit differences of its
statistics) and 1.3e-15 for every other rule (RMSprop centered), so TOL
leaves a factor of 2.5 and ~100; a wrong rule is off by 1e-3 or more
(LAMB's trust ratio from shard norms: 4.7e-3). The control, torch.optim.AdamW
with torch.nn.utils.clip_grad_norm_, is held to 1e-14 (measured 2e-16). The
matrix printed by ``test_print_matrix`` (``-s``) gives each cell's largest
difference.

The worker processes are spawned once per session, whichever xdist worker
asks first (a file lock in the session's temporary directory); a machine
without torch.distributed or gloo skips these tests with a message, except
under CI (``CI`` set), where that is a failure.
"""
from __future__ import annotations

import os
import time

import pytest
import torch
import torch.distributed as dist

import distributed_harness as H
import optbook.torch as obt

TOL = 1e-13

_available = dist.is_available() and dist.is_gloo_available()
if not _available and os.environ.get("CI"):
    raise RuntimeError("torch.distributed with the gloo backend is not available, and CI "
                       "must run the distributed tests")
pytestmark = [pytest.mark.distributed,
              pytest.mark.skipif(not _available, reason="torch.distributed with the gloo "
                                 "backend is not available on this machine")]


def _spawn(directory, world, engines, source, models) -> tuple[dict, float]:
    import torch.multiprocessing as mp
    out = directory / "results.pt"
    start = time.perf_counter()
    mp.start_processes(H.worker, args=(str(directory / "store"), str(out),
                                       str(directory / "scratch"), world, engines, source,
                                       models),
                       nprocs=world, start_method="spawn")
    return torch.load(out, weights_only=False), time.perf_counter() - start


def _shared_run(tmp_path_factory, request, label, world, engines, source=None,
                models=H.MODELS):
    """One spawned run of ``world`` ranks, shared by xdist workers (a file lock)."""
    if getattr(request.config, "workerinput", None) is None:  # not under xdist
        return _spawn(tmp_path_factory.mktemp(label), world, engines, source, models)
    from filelock import FileLock
    root = tmp_path_factory.getbasetemp().parent  # this session's, shared by its workers
    directory = root / label
    with FileLock(str(root / f"{label}.lock")):
        if (directory / "results.pt").is_file():
            return torch.load(directory / "results.pt", weights_only=False), 0.0
        directory.mkdir(exist_ok=True)
        return _spawn(directory, world, engines, source, models)


@pytest.fixture(scope="session")
def engine_results(tmp_path_factory, request):
    """``{(engine, model, case): result}`` on ``H.WORLD`` ranks, every engine."""
    return _shared_run(tmp_path_factory, request, "distributed", H.WORLD, H.ENGINES)


@pytest.fixture(scope="session")
def engine_results_4(tmp_path_factory, request, engine_results):
    """On ``H.WORLD_4`` ranks, the MLP: FSDP2, and FSDP2 resumed from the checkpoints
    the 2-rank FSDP2+DCP cells saved (DCP 2->4)."""
    return _shared_run(tmp_path_factory, request, "distributed4", H.WORLD_4, H.ENGINES_4,
                       engine_results[0]["scratch"], H.MODELS_4)


@pytest.fixture(scope="session")
def single_results():
    return {(kind, name): H.train_single(name, kind)
            for kind in H.MODELS for name in H.CASE_NAMES}


def _difference(result, reference) -> float:
    """Largest difference of a parameter entry or of a clipping norm."""
    assert len(result["norms"]) == len(reference["norms"])
    return max([float((p - r).abs().max()) for p, r in zip(result["params"], reference["params"])]
               + [abs(a - b) for a, b in zip(result["norms"], reference["norms"])])


def _reference(engine, kind, name, single_results) -> dict:
    """The single-process run a cell is compared with: its norms from step RESUME_AT on
    for a run that starts from a checkpoint (DCP 2->4)."""
    reference = single_results[(kind, name)]
    if engine == "DCP 2->4":
        return {"params": reference["params"], "norms": reference["norms"][H.RESUME_AT:]}
    return reference


def _cell(result, reference) -> tuple[str, float | None]:
    if "params" in result:
        d = _difference(result, reference)
        return ("pass" if d <= TOL else "WRONG"), d
    return ("refuses" if result["refused"] else "ERROR"), None


@pytest.mark.parametrize("engine", H.ENGINES)
@pytest.mark.parametrize("kind", H.MODELS)
@pytest.mark.parametrize("name", H.CASE_NAMES)
def test_engine_matches_single_process(engine_results, single_results, engine, kind, name):
    results, _ = engine_results
    result = results[(engine, kind, name)]
    if "error" in result:
        assert result["refused"], f"{engine} stopped with an error that is not a refusal:\n" \
                                  f"{result['traceback']}"
        assert name in EXPECTED_REFUSALS.get(engine, ()), f"unexpected refusal: {result['error']}"
        return
    assert name not in EXPECTED_REFUSALS.get(engine, ()), "expected a refusal"
    d = _difference(result, single_results[(kind, name)])
    assert d <= TOL, f"{engine}, {kind}, {name}: {d:.2e} from the single-process run"


#: The cells where optbook must refuse DTensor parameters with ShardingError.
EXPECTED_REFUSALS = {engine: ("ChainOptimizer, a reader's own link",)
                     for engine in ("FSDP2", "FSDP2+DCP", "DCP 2->4")}


@pytest.mark.parametrize("engine", H.ENGINES_4)
@pytest.mark.parametrize("kind", H.MODELS_4)
@pytest.mark.parametrize("name", H.CASE_NAMES)
def test_four_ranks_match_single_process(engine_results_4, single_results, engine, kind,
                                         name):
    """4 ranks: uneven shards and empty ones (the MLP's head has 1 row, its hidden
    layers 9 and 5: one rank holds nothing of each), and a checkpoint saved on 2 ranks
    resumed on 4."""
    results, _ = engine_results_4
    result = results[(engine, kind, name)]
    if "error" in result:
        assert result["refused"], f"{engine} stopped with an error that is not a refusal:\n" \
                                  f"{result['traceback']}"
        assert name in EXPECTED_REFUSALS[engine], f"unexpected refusal: {result['error']}"
        return
    assert name not in EXPECTED_REFUSALS[engine], "expected a refusal"
    if engine == "DCP 2->4":
        assert result["loaded"], "the 2-rank FSDP2+DCP cell saved no checkpoint"
    d = _difference(result, _reference(engine, kind, name, single_results))
    assert d <= TOL, f"{engine} on {H.WORLD_4} ranks, {kind}, {name}: {d:.2e} from one process"


@pytest.mark.parametrize("world", [H.WORLD, H.WORLD_4])
def test_muon_gathers_only_its_muon_groups(engine_results, engine_results_4, world):
    """Muon's AdamW groups (biases, the head) are element-wise: under FSDP2 they run
    on their shards; only the hidden matrices of the Muon group are gathered."""
    results, _ = engine_results if world == H.WORLD else engine_results_4
    groups = obt.muon_param_groups(H.make_model("mlp"))
    muon = [name for g in groups if g["use_muon"] for name in g["param_names"]]
    assert muon == ["0.weight", "2.weight"]
    assert results["muon_gathered"] == muon


def test_control_is_exact_under_every_engine(engine_results, single_results):
    """torch's own AdamW and clipping: the harness adds nothing beyond the reduction order."""
    results, _ = engine_results
    name = H.CASE_NAMES[0]
    for engine in H.ENGINES:
        for kind in H.MODELS:
            d = _difference(results[(engine, kind, name)], single_results[(kind, name)])
            assert d <= 1e-14, (engine, kind, d)


@pytest.mark.parametrize("kind", H.MODELS)
@pytest.mark.parametrize("name", [n for n in H.CASE_NAMES
                                  if n not in EXPECTED_REFUSALS["FSDP2+DCP"]])
def test_fsdp2_checkpoint_resumes_in_one_process(engine_results, single_results, kind, name):
    """The checkpoint FSDP2 saved on 2 ranks after step 3, loaded into one process (whole
    tensors: a different number of ranks), continues as the uninterrupted run."""
    results, _ = engine_results
    if "error" in results[("FSDP2+DCP", kind, name)]:
        pytest.fail("the FSDP2+DCP run failed, so there is no checkpoint to resume")
    checkpoint = H.checkpoint_of(results["scratch"], kind, name)
    resumed = H.resume_single(name, kind, checkpoint)
    reference = single_results[(kind, name)]
    resumed["norms"] = reference["norms"][:H.RESUME_AT] + resumed["norms"]
    d = _difference(resumed, reference)
    assert d <= TOL, f"{kind}, {name}: {d:.2e} from the single-process run"


def _print_matrix(results, seconds, single_results, engines, world, models):
    width = max(map(len, H.CASE_NAMES))
    lines = [f"{'':{width}}  " + "  ".join(f"{e:<16}" for e in engines)]
    refusals = {}
    for name in H.CASE_NAMES:
        cells = []
        for engine in engines:
            verdicts = [_cell(results[(engine, kind, name)],
                              _reference(engine, kind, name, single_results))
                        for kind in models]
            kinds = {v for v, _ in verdicts}
            if kinds == {"pass"}:
                cells.append(f"pass {max(d for _, d in verdicts):.0e}")
            elif kinds == {"refuses"}:
                cells.append("refuses")
                refusals[(engine, name)] = results[(engine, models[0], name)]["error"]
            else:
                cells.append("/".join(sorted(kinds)))
        lines.append(f"{name:{width}}  " + "  ".join(f"{c:<16}" for c in cells))
    lines += [f"refuses ({engine}, {name}): {error}" for (engine, name), error in refusals.items()]
    engine_seconds = ", ".join(f"{e} {t:.0f} s" for e, t in results["seconds"].items())
    lines.append(f"({world} gloo processes, {H.STEPS} steps, models {', '.join(models)}; "
                 f"spawned run {seconds:.0f} s: {engine_seconds})")
    print("\n" + "\n".join(lines))
    bad = [line for line in lines[1:1 + len(H.CASE_NAMES)]
           if any(word in line for word in ("WRONG", "ERROR"))]
    assert not bad, "\n".join(bad)


def test_print_matrix(engine_results, single_results):
    """The engine x class matrix (``pytest -s`` shows it): pass (largest difference over
    both models), refuses (the error), or a failure."""
    _print_matrix(*engine_results, single_results, H.ENGINES, H.WORLD, H.MODELS)


def test_print_matrix_four_ranks(engine_results_4, single_results):
    """The same on 4 ranks (the MLP): FSDP2, and FSDP2 resumed from a 2-rank checkpoint."""
    _print_matrix(*engine_results_4, single_results, H.ENGINES_4, H.WORLD_4, H.MODELS_4)
