r"""Chapter 7, "Optimizers on many machines": data parallelism, optimizer memory, sharding.

What the page measures, and where:

* :func:`simulated_ranks_gradient` -- the gradient each of ``R`` simulated ranks
  computes on its part of the batch, averaged as DDP's all-reduce does, against
  the gradient of the whole batch (one process; no communication);
* :func:`state_bytes` / :func:`measure_state` -- the bytes an optimizer keeps
  in ``optimizer.state`` after one step, counted tensor by tensor, for every
  optimizer of the book (:data:`OPTIMIZERS`), on matrices and on vectors;
* :func:`zero_table` / :func:`per_rank_table` -- what DDP, ZeRO-1, ZeRO-2 and
  ZeRO-3 / FSDP keep on each rank, from the per-parameter bytes measured above
  (computed: a division by the number of ranks);
* :func:`gloo_measurements` (a stored rerun: it spawns two processes on the gloo
  backend) -- DDP's all-reduced gradient against the whole batch's, the bytes of
  optimizer state each rank holds under ZeRO-1 and FSDP2, and the bytes that
  ``optimizer.step()`` moves through collectives under FSDP2 for every class
  (counted by :class:`CollectiveCounter`);
* :func:`engine_matrix` (a stored rerun) -- the engine x class matrix of
  ``tests/test_distributed.py``, run as that test runs it.
"""
from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

import optbook.torch as obt

from .reruns import Rerun

__all__ = ["OPTIMIZERS", "make_model", "simulated_ranks_gradient", "state_bytes",
           "measure_state", "STAGES", "zero_table", "per_rank_table", "print_state_table",
           "print_zero_table", "plot_per_rank", "CollectiveCounter", "gloo_measurements",
           "print_gloo_measurements", "engine_matrix", "print_engine_matrix", "RERUNS"]


# --- the model and the optimizers ---------------------------------------------------

def make_model(seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """A 64 -> 128 -> 32 ReLU MLP: two matrices (128x64, 32x128) and two bias vectors."""
    if not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(),
                               torch.nn.Linear(128, 32)).to(dtype)


def _plain(cls, **kw):
    return lambda model: cls(model.parameters(), **kw)


#: Every optimizer of the book as an optbook.torch class: name -> model -> optimizer.
OPTIMIZERS: dict[str, Callable[[torch.nn.Module], torch.optim.Optimizer]] = {
    "SGD": _plain(obt.SGD, lr=0.1),
    "SGD momentum": _plain(obt.SGD, lr=0.1, momentum=0.9),
    "Adagrad": _plain(obt.Adagrad, lr=0.01),
    "RMSprop": _plain(obt.RMSprop, lr=0.01),
    "RMSprop centered+momentum": _plain(obt.RMSprop, lr=0.01, centered=True, momentum=0.5),
    "Adam": _plain(obt.Adam, lr=1e-3),
    "AdamW": _plain(obt.AdamW, lr=1e-3),
    "NAdam": _plain(obt.NAdam, lr=1e-3),
    "RAdam": _plain(obt.RAdam, lr=1e-3),
    "Adafactor": _plain(obt.Adafactor, lr=1e-2),
    "LAMB": _plain(obt.LAMB, lr=1e-3),
    "Lion": _plain(obt.Lion, lr=1e-4),
    "SophiaG": _plain(obt.SophiaG, lr=1e-4),
    "Muon (+ AdamW groups)": lambda model: obt.Muon(obt.muon_param_groups(model)),
    "Shampoo (Adam grafting)": _plain(obt.Shampoo, lr=1e-3, grafting="adam"),
    "SOAP": _plain(obt.SOAP, lr=1e-3),
    "SGDScheduleFree": _plain(obt.SGDScheduleFree, lr=0.1),
    "AdamWScheduleFree": _plain(obt.AdamWScheduleFree, lr=1e-3),
}


def _check_name(name: str) -> None:
    if name not in OPTIMIZERS:
        raise ValueError(f"Invalid optimizer name: {name!r} (one of {sorted(OPTIMIZERS)})")


def _batch(seed: int, rows: int, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed + 1000)
    return (torch.randn(rows, 64, generator=gen, dtype=dtype),
            torch.randn(rows, 32, generator=gen, dtype=dtype))


def _one_step(name: str, model, x, y) -> torch.optim.Optimizer:
    """Build optimizer ``name`` on ``model`` and take one step on (x, y)."""
    opt = OPTIMIZERS[name](model)
    if hasattr(opt, "train") and "ScheduleFree" in name:
        opt.train()
    F.mse_loss(model(x), y).backward()
    if name == "SophiaG":
        opt.update_hessian()
    opt.step()
    return opt


# --- 1. what the all-reduce averages ------------------------------------------------

def simulated_ranks_gradient(ranks: int, batch: int = 64, seed: int = 0,
                             dtype: torch.dtype = torch.float32) -> dict:
    """Split a batch of ``batch`` rows in ``ranks`` equal parts, take each part's
    gradient of its *mean* loss (what one DDP rank computes), average the ``ranks``
    gradients (what DDP's all-reduce does: a sum divided by the world size), and
    compare with the gradient of the mean loss over the whole batch.

    Returns ``{"max_abs_diff", "max_abs_grad", "rel_diff", "eps"}``: the largest
    entry-wise difference, the largest gradient entry, their ratio, and the dtype's
    machine epsilon."""
    if not isinstance(ranks, int) or ranks < 1:
        raise ValueError(f"Invalid ranks: {ranks!r} (a positive int)")
    if not isinstance(batch, int) or batch < 1 or batch % ranks:
        raise ValueError(f"Invalid batch: {batch!r} (a positive multiple of ranks={ranks})")
    model = make_model(seed, dtype)
    x, y = _batch(seed, batch, dtype)

    def grads(xs, ys):
        model.zero_grad(set_to_none=True)
        F.mse_loss(model(xs), ys).backward()
        return [p.grad.detach().clone() for p in model.parameters()]

    full = grads(x, y)
    parts = [grads(xs, ys) for xs, ys in zip(x.chunk(ranks), y.chunk(ranks))]
    averaged = [sum(gs) / ranks for gs in zip(*parts)]
    diff = max(float((a - f).abs().max()) for a, f in zip(averaged, full))
    scale = max(float(f.abs().max()) for f in full)
    return {"max_abs_diff": diff, "max_abs_grad": scale, "rel_diff": diff / scale,
            "eps": torch.finfo(dtype).eps}


# --- 2. the memory of the optimizer state ---------------------------------------------

def _local(t: torch.Tensor) -> torch.Tensor:
    """This rank's part of a DTensor (what the rank stores), else the tensor."""
    to_local = getattr(t, "to_local", None)
    return to_local() if to_local is not None else t


def _leaves(tree):
    if isinstance(tree, torch.Tensor):
        yield tree
    elif isinstance(tree, dict):
        for v in tree.values():
            yield from _leaves(v)
    elif isinstance(tree, (list, tuple)):
        for v in tree:
            yield from _leaves(v)
    elif isinstance(tree, (bool, int, float)):
        yield tree


def state_bytes(optimizer: torch.optim.Optimizer, params=None) -> dict:
    """The bytes of ``optimizer.state`` (of the parameters ``params``, default all):
    ``{"tensor_bytes": bytes of every state tensor (a DTensor counts its local shard),
    "python_numbers": how many Python ints/floats the state holds (step counters)}``."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got "
                        f"{type(optimizer).__name__}")
    keys = list(optimizer.state) if params is None else list(params)
    tensor_bytes, numbers = 0, 0
    for p in keys:
        for leaf in _leaves(optimizer.state.get(p, {})):
            if isinstance(leaf, torch.Tensor):
                local = _local(leaf)
                tensor_bytes += local.numel() * local.element_size()
            else:
                numbers += 1
    return {"tensor_bytes": tensor_bytes, "python_numbers": numbers}


def _bytes(params) -> int:
    return sum(_local(p).numel() * _local(p).element_size() for p in params)


def measure_state(names: Sequence[str] | None = None, seed: int = 0) -> dict:
    """One step of each optimizer on :func:`make_model` (float32), then its state counted.

    ``{name: {"ratio": state bytes / parameter bytes (all parameters),
    "matrix_ratio": the same over the two weight matrices, "vector_ratio": over the
    two bias vectors, "state_bytes", "param_bytes", "python_numbers"}}``."""
    names = list(OPTIMIZERS) if names is None else list(names)
    for name in names:
        _check_name(name)
    out = {}
    for name in names:
        model = make_model(seed)
        x, y = _batch(seed, 16)
        opt = _one_step(name, model, x, y)
        params = list(model.parameters())
        matrices = [p for p in params if p.ndim >= 2]
        vectors = [p for p in params if p.ndim < 2]
        total = state_bytes(opt)
        out[name] = {
            "ratio": total["tensor_bytes"] / _bytes(params),
            "matrix_ratio": state_bytes(opt, matrices)["tensor_bytes"] / _bytes(matrices),
            "vector_ratio": state_bytes(opt, vectors)["tensor_bytes"] / _bytes(vectors),
            "state_bytes": total["tensor_bytes"], "param_bytes": _bytes(params),
            "python_numbers": total["python_numbers"],
        }
    return out


#: What each engine divides by the number of ranks N (P parameters, G gradients,
#: S optimizer state): DDP replicates all three on every rank.
STAGES = {"DDP": (), "ZeRO-1": ("S",), "ZeRO-2": ("G", "S"),
          "ZeRO-3 / FSDP": ("P", "G", "S")}


def zero_table(param_bytes: float, grad_bytes: float, state_bytes_: float,
               ranks: Sequence[int] = (1, 2, 4, 8)) -> dict:
    """Bytes per rank ``{stage: {N: bytes}}`` for the stages of :data:`STAGES`
    (parameters, gradients and optimizer state only; no activations, buffers or
    communication buffers)."""
    for label, value in (("param_bytes", param_bytes), ("grad_bytes", grad_bytes),
                         ("state_bytes", state_bytes_)):
        if not isinstance(value, (int, float)) or value < 0 or not math.isfinite(value):
            raise ValueError(f"Invalid {label}: {value!r} (a finite number >= 0)")
    if not ranks or any(not isinstance(n, int) or n < 1 for n in ranks):
        raise ValueError(f"Invalid ranks: {ranks!r} (positive ints)")
    parts = {"P": param_bytes, "G": grad_bytes, "S": state_bytes_}
    return {stage: {n: sum(v / n if k in divided else v for k, v in parts.items())
                    for n in ranks}
            for stage, divided in STAGES.items()}


def per_rank_table(measured: dict, params: float = 1e9, ranks: Sequence[int] = (1, 2, 4, 8),
                   bytes_per_param: int = 4) -> dict:
    """For each optimizer of ``measured`` (:func:`measure_state`): the GB per rank of a
    model of ``params`` float32 parameters (``bytes_per_param``), its gradients and its
    optimizer state (``ratio`` times the parameters' bytes), for every stage."""
    if not isinstance(params, (int, float)) or params <= 0:
        raise ValueError(f"Invalid params: {params!r} (a positive number)")
    p = params * bytes_per_param
    return {name: {stage: {n: b / 1e9 for n, b in row.items()}
                   for stage, row in zero_table(p, p, m["ratio"] * p, ranks).items()}
            for name, m in measured.items()}


def print_state_table(measured: dict) -> None:
    """Optimizer state per parameter (in parameter-sized copies), all / matrices / vectors."""
    print(f"{'optimizer':<28}{'state / params':>15}{'matrices':>10}{'vectors':>9}"
          f"{'step counters':>15}")
    for name, m in measured.items():
        print(f"{name:<28}{m['ratio']:>15.2f}{m['matrix_ratio']:>10.2f}"
              f"{m['vector_ratio']:>9.2f}{m['python_numbers']:>15}")


def print_zero_table(table: dict, stages: Sequence[str] = tuple(STAGES),
                     ranks: Sequence[int] = (1, 2, 4, 8)) -> None:
    """GB per rank: one line per optimizer and stage (from :func:`per_rank_table`)."""
    print(f"{'optimizer':<28}{'engine':<15}" + "".join(f"{'N = ' + str(n):>9}" for n in ranks))
    for name, rows in table.items():
        for i, stage in enumerate(stages):
            print(f"{name if i == 0 else '':<28}{stage:<15}"
                  + "".join(f"{rows[stage][n]:>9.1f}" for n in ranks))


def plot_per_rank(ax, ratio: float, ranks: Sequence[int] = (1, 2, 4, 8, 16, 32, 64),
                  params: float = 1e9, label: str = "Adam") -> None:
    """GB per rank against the number of ranks for each stage of :data:`STAGES`, for an
    optimizer whose state is ``ratio`` times the parameters' bytes (float32)."""
    p = params * 4
    table = zero_table(p, p, ratio * p, list(ranks))
    for (stage, row), style in zip(table.items(), ("-", "--", "-.", ":")):
        ax.plot(list(ranks), [row[n] / 1e9 for n in ranks], style, marker="o",
                markersize=3, label=stage)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set(xlabel="number of ranks N", ylabel="GB per rank (parameters, gradients, state)",
           title=f"{label}, {params / 1e9:g}B float32 parameters")
    ax.legend()


# --- 3. communication: collectives counted on a real process group ---------------------

class CollectiveCounter:
    """A ``TorchDispatchMode`` that counts torch's functional collectives (the ops of
    namespace ``_c10d_functional``, which DTensor uses to reduce and gather shards) and
    the bytes of the tensor each one produces on this rank: an all-reduce's result
    (the tensor reduced), an all-gather's (the whole tensor) or a reduce-scatter's
    input. Use as a context manager; ``.calls`` and ``.bytes`` hold the totals."""

    def __init__(self):
        from torch.distributed.tensor import DTensor
        from torch.utils._python_dispatch import TorchDispatchMode

        counter = self

        def is_dtensor_type(t):
            return isinstance(t, type) and issubclass(t, DTensor)

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                # as torch's CommDebugMode: let DTensor run first, so the collectives
                # its sharding rules issue inside an operation come back through here
                if any(is_dtensor_type(t) for t in types):
                    return NotImplemented
                out = func(*args, **(kwargs or {}))
                ns = getattr(func, "namespace", "")
                name = func.__name__ if hasattr(func, "__name__") else str(func)
                if ns in ("_c10d_functional", "c10d_functional") and not any(
                        w in name for w in ("wait", "_wrap_tensor_autograd")):
                    counter.calls += 1
                    counter.ops[name] = counter.ops.get(name, 0) + 1
                    sized = args[0] if "reduce_scatter" in name else out
                    for t in _leaves(sized):
                        if isinstance(t, torch.Tensor):
                            counter.bytes += t.numel() * t.element_size()
                return out

        self._mode = _Mode()
        self.calls = 0
        self.bytes = 0
        self.ops: dict[str, int] = {}

    def __enter__(self):
        self._mode.__enter__()
        return self

    def __exit__(self, *exc):
        return self._mode.__exit__(*exc)


GLOO_WORLD = 2
CLIP_CASE = "clip_grad_norm_ (+ AdamW)"
GLOO_BATCH = 16


def _sharding_of(opt) -> str:
    kind = getattr(type(opt), "sharding", None)
    if kind is None and hasattr(opt, "param_groups"):
        try:  # a ChainOptimizer that reads its kind off its chain
            from optbook.torch.sharding import rule_of_chain
            kind = rule_of_chain(opt.make_transform(opt.param_groups[0]))[0]
        except Exception:  # noqa: BLE001 -- a label only
            kind = None
    return kind or "torch (not optbook)"


def _gloo_worker(rank: int, init_file: str, out_path: str, steps: int) -> None:
    """One rank of :func:`gloo_measurements`; rank 0 saves the results."""
    import torch.distributed as dist
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.optim import ZeroRedundancyOptimizer
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=GLOO_WORLD)
    results: dict = {"world": GLOO_WORLD}
    try:
        per = GLOO_BATCH // GLOO_WORLD
        x, y = _batch(0, GLOO_BATCH)
        xs, ys = x[rank * per:(rank + 1) * per], y[rank * per:(rank + 1) * per]

        # DDP: the all-reduced gradient against the whole batch's, float32
        ddp = DDP(make_model(0))
        F.mse_loss(ddp(xs), ys).backward()
        reference = make_model(0)
        F.mse_loss(reference(x), y).backward()
        diffs = [float((a.grad - b.grad).abs().max())
                 for a, b in zip(ddp.module.parameters(), reference.parameters())]
        results["ddp_grad_max_abs_diff"] = max(diffs)
        results["ddp_grad_max_abs"] = max(float(p.grad.abs().max())
                                          for p in reference.parameters())

        # ZeRO-1 with Adam: the state each rank holds
        ddp = DDP(make_model(0))
        zero = ZeroRedundancyOptimizer(ddp.parameters(), optimizer_class=obt.Adam, lr=1e-3)
        F.mse_loss(ddp(xs), ys).backward()
        zero.step()
        local = state_bytes(zero.optim)["tensor_bytes"]
        results["zero1_adam_state_bytes"] = [None] * GLOO_WORLD
        gathered = [None] * GLOO_WORLD
        dist.all_gather_object(gathered, local)
        results["zero1_adam_state_bytes"] = gathered

        # FSDP2: each class's state per rank and the bytes its step moves
        per_class = {}
        for name in list(OPTIMIZERS) + [CLIP_CASE]:
            model = make_model(0)
            for layer in model:
                if any(True for _ in layer.parameters()):
                    fully_shard(layer)
            fully_shard(model)
            opt_name = "AdamW" if name == CLIP_CASE else name
            opt = OPTIMIZERS[opt_name](model)
            if "ScheduleFree" in name:
                opt.train()
            calls = nbytes = 0
            ops: dict = {}
            for _ in range(steps):
                F.mse_loss(model(xs), ys).backward()
                with CollectiveCounter() as counter:
                    if name == CLIP_CASE:
                        obt.clip_grad_norm_(model.parameters(), 1.0)
                    if name == "SophiaG":
                        opt.update_hessian()
                    opt.step()
                calls += counter.calls
                for op, k in counter.ops.items():
                    ops[op] = ops.get(op, 0) + k / steps
                nbytes += counter.bytes
                opt.zero_grad(set_to_none=True)
            local = state_bytes(opt)["tensor_bytes"]
            gathered = [None] * GLOO_WORLD
            dist.all_gather_object(gathered, local)
            per_class[name] = {"sharding": _sharding_of(opt), "calls_per_step": calls / steps,
                               "bytes_per_step": nbytes / steps, "state_bytes": gathered,
                               "ops_per_step": ops}
        results["fsdp2"] = per_class
        results["param_bytes"] = _bytes(make_model(0).parameters())
        if rank == 0:
            torch.save(results, out_path)
    finally:
        dist.destroy_process_group()


def gloo_measurements(seeds: Sequence[int] = (0,), steps: int = 3) -> dict:
    """Spawn :data:`GLOO_WORLD` processes on the gloo backend (CPU) and measure, on
    :func:`make_model` in float32 with each rank on half of a batch of
    :data:`GLOO_BATCH`:

    * ``ddp_grad_max_abs_diff``: DDP's all-reduced gradient against the gradient of
      the whole batch in one process (and ``ddp_grad_max_abs``, the gradient's scale);
    * ``zero1_adam_state_bytes``: the bytes of Adam's state on each rank under ZeRO-1;
    * ``fsdp2``: for every optimizer of :data:`OPTIMIZERS` (and optbook's
      ``clip_grad_norm_`` before AdamW) under FSDP2, its ``sharding`` declaration,
      the collectives ``optimizer.step()`` (and clipping, and SophiaG's
      ``update_hessian``) issues per step and their bytes on one rank
      (:class:`CollectiveCounter`, averaged over ``steps`` steps), and the bytes of
      optimizer state on each rank;
    * ``param_bytes``: the model's parameters in bytes.

    ``seeds`` is the model's seed (one value: the counts do not depend on it)."""
    import torch.multiprocessing as mp
    seeds = list(seeds)
    if seeds != [0]:
        raise ValueError(f"Invalid seeds: {seeds!r} (the counts are deterministic: [0])")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"Invalid steps: {steps!r} (a positive int)")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.pt")
        mp.start_processes(_gloo_worker, args=(os.path.join(tmp, "store"), out, steps),
                           nprocs=GLOO_WORLD, start_method="spawn")
        results = torch.load(out, weights_only=False)
    return results


def print_gloo_measurements(results: dict) -> None:
    """The FSDP2 table of :func:`gloo_measurements`: declaration, collectives and bytes
    per step, state per rank against the state in one process would be."""
    p = results["param_bytes"]
    print(f"model: {p} bytes of float32 parameters; {results['world']} gloo ranks")
    print(f"{'optimizer':<28}{'sharding':<13}{'collectives':>12}{'bytes/step':>11}"
          f"{'state/params, per rank':>24}")
    order = [n for n in list(OPTIMIZERS) + [CLIP_CASE] if n in results["fsdp2"]]
    for name in order + sorted(set(results["fsdp2"]) - set(order)):
        r = results["fsdp2"][name]
        per_rank = " ".join(f"{b / p:.2f}" for b in r["state_bytes"])
        print(f"{name:<28}{r['sharding']:<13}{r['calls_per_step']:>12.1f}"
              f"{r['bytes_per_step']:>11.0f}{per_rank:>24}")


# --- 5. the engine x class matrix of tests/test_distributed.py --------------------------

_ROOT = Path(__file__).resolve().parents[3]


def parse_matrix(text: str, engines: Sequence[str]) -> dict:
    """The matrix printed by ``test_print_matrix`` as ``{"cells": {case: {engine: cell}},
    "order": [case, ...] (the test's order), "refusals": [...], "footer": "..."}``."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines)
              if line.strip().split() == [w for e in engines for w in e.split()]]
    if not starts:
        raise ValueError("no engine x class matrix in the text (its header line is missing)")
    cells, order, refusals, footer = {}, [], [], ""
    for line in lines[starts[-1] + 1:]:
        if line.startswith("refuses ("):
            refusals.append(line)
        elif line.startswith("("):
            footer = line
            break
        elif line.strip():
            parts = re.split(r"\s{2,}", line.strip())
            if len(parts) != len(engines) + 1:
                raise ValueError(f"a matrix line with {len(parts) - 1} cells: {line!r}")
            cells[parts[0]] = dict(zip(engines, parts[1:]))
            order.append(parts[0])
    return {"cells": cells, "order": order, "refusals": refusals, "footer": footer}


def engine_matrix(seeds: Sequence[int] = (0,), steps: int = 5) -> dict:
    """Run ``pytest tests/test_distributed.py -k matrix -s`` in the checkout (it spawns
    2 gloo processes and trains every case under DDP, ZeRO-1, FSDP2 and FSDP2+DCP
    for 5 steps, then 4 processes under FSDP2 and FSDP2 resumed from the 2-rank
    checkpoints) and return its 2-rank matrix (:func:`parse_matrix`), with the
    4-rank one under ``"four_ranks"``. ``seeds`` and ``steps`` are the harness's
    (fixed there: seed 0, 5 steps) and checked against it."""
    sys.path.insert(0, str(_ROOT / "tests"))
    try:
        import distributed_harness as H
    finally:
        sys.path.pop(0)
    if list(seeds) != [0] or steps != H.STEPS:
        raise ValueError(f"Invalid seeds/steps: {seeds!r}, {steps!r} (the harness runs "
                         f"seed 0 for {H.STEPS} steps)")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/test_distributed.py",
                           "-k", "matrix", "-s", "-q", "-p", "no:cacheprovider"],
                          cwd=_ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the matrix test failed:\n{proc.stdout[-3000:]}")
    matrix = parse_matrix(proc.stdout, H.ENGINES)
    matrix["engines"] = list(H.ENGINES)
    matrix["four_ranks"] = parse_matrix(proc.stdout, H.ENGINES_4)
    matrix["four_ranks"]["engines"] = list(H.ENGINES_4)
    matrix["seconds"] = time.perf_counter() - start
    return matrix


def print_engine_matrix(matrix: dict, width: int = 28) -> None:
    """The stored matrix, case names cut to ``width`` characters, then its refusals."""
    engines = matrix["engines"]
    print(f"{'':<{width}}" + "".join(f"{e:>12}" for e in engines))
    for case in matrix["order"]:
        row = matrix["cells"][case]
        short = case if len(case) <= width else case[:width - 1] + "…"
        print(f"{short:<{width}}"
              + "".join(f"{row[e].replace('pass ', 'ok '):>12}" for e in engines))
    for line in matrix["refusals"]:
        where, _, error = line[len("refuses ("):].partition("): ")
        engine, _, case = where.partition(", ")
        print(f"refuses under {engine}: {case} ({error.split(':')[0]})")


RERUNS = (
    Rerun(name="07-distributed-gloo", chapter="07-distributed",
          claim="On 2 gloo processes: DDP's averaged gradient equals the whole batch's; the "
                "optimizer state each rank holds under ZeRO-1 and FSDP2; the collectives "
                "and bytes each class's step issues under FSDP2.",
          function="distributed:gloo_measurements",
          params={"seeds": [0], "steps": 3}, minutes=1.0),
    Rerun(name="07-distributed-matrix", chapter="07-distributed",
          claim="Every optbook.torch class under DDP, ZeRO-1, FSDP2 and FSDP2+DCP on 2 gloo "
                "processes, and under FSDP2 (empty shards) and FSDP2 resumed from a 2-rank "
                "checkpoint on 4, matches one process, or refuses with a ShardingError.",
          function="distributed:engine_matrix",
          params={"seeds": [0], "steps": 5}, minutes=3.0),
)
