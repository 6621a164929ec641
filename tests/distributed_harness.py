"""optbook.torch under torch.distributed: the engines, the cases, and a single-process oracle.

``tests/test_distributed.py`` spawns :data:`WORLD` processes on the gloo
backend (CPU) once per session; each runs :func:`worker`, which trains every
case of :data:`CASES` on every model of :data:`MODELS` under every engine of
:data:`ENGINES`, each rank seeing its half of the batch, and rank 0 writes the
resulting parameters (or the error a run stopped with) to one file. Then it
spawns :data:`WORLD_4` processes for the engines of :data:`ENGINES_4` (FSDP2
from the start, and FSDP2 resumed from the checkpoints the 2-rank FSDP2+DCP
cells saved) on the MLP, whose three layers have empty shards there. The test
process trains the same cases on the whole batch in one process
(:func:`train_single`) and compares.

Everything is float64: the only differences an engine may introduce are the
order of the additions in its all-reduce / reduce-scatter and in the
reductions over shards, ~1e-16 relative per step.

The oracle is torch itself: case ``torch.optim.AdamW`` (with
``torch.nn.utils.clip_grad_norm_``) must match its single-process run under
every engine, so a mismatch elsewhere belongs to optbook, not to the harness.
"""
from __future__ import annotations

import contextlib
import functools
import datetime
import os
import time
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

import optbook
import optbook.torch as obt

WORLD = 2    # the ranks of ENGINES; the worker sets it to the world it joins
WORLD_4 = 4  # the ranks of ENGINES_4
STEPS = 5
RESUME_AT = 3  # ZeRO-1 and FSDP2 + DCP save after this many steps and resume
BATCH = 8      # the whole batch; each rank takes BATCH // WORLD rows
MICRO = 2      # DDP: micro-batches per step, accumulated under no_sync
# How long a rank waits in a collective: an error on one rank only ends the run after
# this; generous, since a machine shared by many jobs can starve a rank for a while
# (HARNESS_TIMEOUT=<seconds> shortens it when debugging a rank that fails alone)
TIMEOUT = datetime.timedelta(seconds=float(os.environ.get("HARNESS_TIMEOUT", 180)))
DT = torch.float64
ENGINES = ("DDP", "ZeRO-1", "FSDP2", "FSDP2+DCP")
# on WORLD_4 ranks: FSDP2 from the start, and FSDP2 loading the checkpoints FSDP2+DCP
# saved on WORLD ranks after RESUME_AT steps (torch.distributed.checkpoint reshards)
ENGINES_4 = ("FSDP2", "DCP 2->4")
MODELS = ("mlp", "transformer")
# on WORLD_4 ranks the MLP alone: it has the uneven and the empty shards (the
# Transformer block's layers add none that the MLP lacks), at half the time
MODELS_4 = ("mlp",)


# --- models and data ------------------------------------------------------------

def make_model(kind: str) -> torch.nn.Module:
    """The same initial weights on every rank and in the test process (seeded).

    Widths are odd so that FSDP2's shards (dim 0 split in torch.chunk's ceil(m/N)
    rows per rank) are uneven, and the MLP's head has one output (a regression or
    value head): on 2 ranks one rank holds its one row and the other none; on 4
    ranks the MLP's 9, 5 and 1 rows give 3+3+3+0, 2+2+1+0 and 1+0+0+0."""
    torch.manual_seed(0)
    if kind == "mlp":
        model = torch.nn.Sequential(torch.nn.Linear(6, 9), torch.nn.Tanh(),
                                    torch.nn.Linear(9, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1))
    elif kind == "transformer":
        model = torch.nn.Sequential(
            torch.nn.Linear(6, 8),
            # bias=False: the key bias of attention has a zero gradient (softmax ignores a
            # shift), and Adam-like rules would turn its rounding noise into +-lr steps
            torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=12, dropout=0.0,
                                             batch_first=True, bias=False),
            torch.nn.Linear(8, 3))
    else:
        raise ValueError(f"Invalid model kind: {kind!r}")
    return model.to(DT)


def make_batches(kind: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One (inputs, targets) batch per step."""
    gen = torch.Generator().manual_seed(1)
    shape = (BATCH, 6) if kind == "mlp" else (BATCH, 3, 6)
    out_shape = shape[:-1] + ((1,) if kind == "mlp" else (3,))
    return [(torch.randn(shape, generator=gen, dtype=DT),
             torch.randn(out_shape, generator=gen, dtype=DT)) for _ in range(STEPS)]


def loss_of(model, x, y) -> torch.Tensor:
    return F.mse_loss(model(x), y)


# --- the cases ------------------------------------------------------------------

def _own_link() -> optbook.GradientTransformation:
    """A transformation of a reader's own: optbook cannot know what it needs (no ``spec``)."""
    return optbook.GradientTransformation(lambda p: {}, lambda u, s, p=None, **e: (u, s))


class _OwnLink(obt.ChainOptimizer):
    """A reader's chain with a link optbook knows nothing about, and no declaration."""

    def __init__(self, params, lr=1e-2):
        super().__init__(params, lambda g: optbook.chain(_own_link(),
                                                         optbook.scale_by_learning_rate(g["lr"])),
                         defaults=dict(lr=lr))


class _OwnLinkGathered(_OwnLink):
    """The same chain, declared ``"gather"``: run on the whole tensor, whatever it does."""

    sharding = "gather"


class _LAMBGathered(obt.LAMB):
    """LAMB declared ``"gather"``, as a rule needing the whole matrix would be (Muon,
    Shampoo): the gathered path must give the single-process result too."""

    sharding = "gather"


class _LAMBFunctional(obt.LAMB):
    """LAMB with its fast path off: the functional chain runs (on the shards)."""

    fast_path = False


class _AdafactorFunctional(obt.Adafactor):
    """Adafactor with its fast path off: the functional chain runs (on the shards)."""

    fast_path = False


@dataclass(frozen=True)
class Case:
    name: str  # unique
    make: Callable[..., torch.optim.Optimizer]
    kwargs: dict = field(default_factory=dict)
    clip: Callable | None = None  # called on the parameters before step()
    hessian: bool = False         # SophiaG: update_hessian() before every step
    train_mode: bool = False      # schedule-free: optimizer.train() first
    groups: Callable | None = None  # model -> param groups (default: all parameters, one group)


def _params(case: Case, model):
    """What the optimizer is built on: the case's param groups, or every parameter."""
    return case.groups(model) if case.groups is not None else model.parameters()


CLIP = 0.05  # below every gradient norm of these runs, so the clipping is active


def _torch_clip(params):
    return torch.nn.utils.clip_grad_norm_(params, CLIP)


def _optbook_clip(params):
    return obt.clip_grad_norm_(params, CLIP)


CLIP_INF = 0.01  # below every largest |gradient entry| of these runs


def _optbook_clip_inf(params):
    # the largest |entry|: on a rank whose shard is empty there is none (the inf-norm
    # of an empty tensor is an error in torch); foreach=True takes the foreach route
    return obt.clip_grad_norm_(params, CLIP_INF, norm_type=float("inf"), foreach=True)


# SOAP declares "gather" like Shampoo and Muon but is not compared here: its first
# eigenbasis comes from rank-deficient statistics, so the last-bit differences of an
# all-reduced gradient pick other null-space eigenvectors and the runs part far beyond
# rounding even under DDP, where nothing is sharded (measured; tests/test_soap.py says
# why its oracle test uses full-rank gradients). The gather route it takes is the one
# the Shampoo, Muon and "declared 'gather'" rows test.
CASES = (
    Case("torch.optim.AdamW + torch clip (control)", torch.optim.AdamW,
         dict(lr=1e-2, weight_decay=0.1), clip=_torch_clip),
    Case("SGD", obt.SGD, dict(lr=0.1)),
    Case("SGD momentum", obt.SGD, dict(lr=0.05, momentum=0.9, weight_decay=1e-2)),
    Case("SGD nesterov", obt.SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    Case("Adagrad", obt.Adagrad, dict(lr=0.05)),
    Case("RMSprop", obt.RMSprop, dict(lr=1e-2)),
    Case("RMSprop centered+momentum", obt.RMSprop, dict(lr=1e-2, centered=True, momentum=0.5)),
    Case("Adam", obt.Adam, dict(lr=1e-2, weight_decay=1e-2)),
    Case("AdamW", obt.AdamW, dict(lr=1e-2, weight_decay=0.1)),
    Case("Adafactor", obt.Adafactor, dict(lr=1e-2, weight_decay=0.1)),
    Case("Adafactor, functional chain", _AdafactorFunctional,
         dict(lr=1e-2, weight_decay=0.1)),
    Case("LAMB", obt.LAMB, dict(lr=1e-2)),
    Case("LAMB, functional chain", _LAMBFunctional, dict(lr=1e-2)),
    Case("LAMB declared 'gather'", _LAMBGathered, dict(lr=1e-2)),
    Case("Lion", obt.Lion, dict(lr=1e-3, weight_decay=0.1)),
    Case("NAdam", obt.NAdam, dict(lr=1e-2)),
    Case("RAdam", obt.RAdam, dict(lr=1e-2)),
    # the AdamW group's settings are explicit: ZeRO-1 fills missing group keys from
    # its own keyword arguments (muon_param_groups' docstring)
    Case("Muon (+ AdamW groups)", obt.Muon, dict(lr=2e-2, weight_decay=0.1),
         groups=lambda model: obt.muon_param_groups(model, adamw=dict(lr=1e-2, weight_decay=0.0))),
    Case("Shampoo (Adam grafting)", obt.Shampoo, dict(lr=1e-2, grafting="adam")),
    Case("SophiaG", obt.SophiaG, dict(lr=1e-3), hessian=True),
    Case("SGDScheduleFree", obt.SGDScheduleFree, dict(lr=0.1), train_mode=True),
    Case("AdamWScheduleFree", obt.AdamWScheduleFree, dict(lr=1e-2), train_mode=True),
    Case("optbook clip_grad_norm_ (+ torch.optim.AdamW)", torch.optim.AdamW,
         dict(lr=1e-2, weight_decay=0.1), clip=_optbook_clip),
    Case("optbook clip_grad_norm_, inf-norm, foreach", torch.optim.AdamW,
         dict(lr=1e-2, weight_decay=0.1), clip=_optbook_clip_inf),
    Case("ChainOptimizer, a reader's own link", _OwnLink, dict(lr=1e-2)),
    Case("the same, declared 'gather'", _OwnLinkGathered, dict(lr=1e-2)),
)
CASE_NAMES = tuple(c.name for c in CASES)


def _case(name: str) -> Case:
    return next(c for c in CASES if c.name == name)


def _local_optimizer(opt):
    """The optimizer holding the rank's parameters (ZeRO wraps one)."""
    return getattr(opt, "optim", opt)


def _start(case: Case, opt) -> None:
    if case.train_mode:
        _local_optimizer(opt).train()
        # ZeRO copies its own groups' hyper-parameters into the local optimizer's at
        # every step: train_mode must be set there too
        for group in opt.param_groups:
            group["train_mode"] = True


def _step(case: Case, model, opt, norms: list) -> None:
    if case.clip is not None:
        norms.append(float(case.clip(list(model.parameters()))))
    if case.hessian:
        _local_optimizer(opt).update_hessian()
    opt.step()
    opt.zero_grad(set_to_none=True)


# --- the single-process oracle ----------------------------------------------------

def train_single(case_name: str, kind: str) -> dict:
    """The whole batch, one process: ``{"params": parameters after STEPS steps, "norms":
    the gradient norms clipping returned}``."""
    case = _case(case_name)
    model = make_model(kind)
    opt = case.make(_params(case, model), **case.kwargs)
    _start(case, opt)
    norms = []
    for x, y in make_batches(kind):
        loss_of(model, x, y).backward()
        _step(case, model, opt, norms)
    return {"params": [p.detach().clone() for p in model.parameters()], "norms": norms}


def resume_single(case_name: str, kind: str, checkpoint: str) -> dict:
    """Load a checkpoint that FSDP2 wrote on WORLD ranks after RESUME_AT steps into one
    process (a plain model, whole tensors: torch.distributed.checkpoint reassembles the
    shards), and train the remaining steps on the whole batch."""
    case = _case(case_name)
    model = make_model(kind)
    opt = case.make(_params(case, model), **case.kwargs)
    _start(case, opt)
    with warnings.catch_warnings():  # "... assuming the intent is to load in a single process"
        warnings.filterwarnings("ignore", "torch.distributed is disabled", UserWarning)
        _load(model, opt, checkpoint, no_dist=True)
    norms = []
    for x, y in make_batches(kind)[RESUME_AT:]:
        loss_of(model, x, y).backward()
        _step(case, model, opt, norms)
    return {"params": [p.detach().clone() for p in model.parameters()], "norms": norms}


def _load(model, opt, checkpoint: str, no_dist: bool = False) -> None:
    """Load model and optimizer from a torch.distributed.checkpoint directory (saved on
    any number of ranks: each tensor is resharded to the layout of ``model``'s)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
    model_state, optim_state = get_state_dict(model, opt)
    state = {"model": model_state, "optim": optim_state}
    dcp.load(state, checkpoint_id=checkpoint, no_dist=no_dist)
    set_state_dict(model, opt, model_state_dict=state["model"], optim_state_dict=state["optim"])


def checkpoint_of(scratch: str, kind: str, case_name: str) -> str:
    """Where the FSDP2+DCP cell of (kind, case) saved its checkpoint."""
    return os.path.join(scratch, f"FSDP2+DCP-{kind}-{CASE_NAMES.index(case_name)}")


# --- the engines (run in each spawned process) -------------------------------------

def _shard(t: torch.Tensor, rank: int) -> torch.Tensor:
    n = t.shape[0] // WORLD
    return t[rank * n:(rank + 1) * n]


def _run_ddp(case, kind, rank, scratch):
    from torch.nn.parallel import DistributedDataParallel as DDP
    model = DDP(make_model(kind))
    opt = case.make(_params(case, model), **case.kwargs)
    _start(case, opt)
    norms = []
    for x, y in make_batches(kind):
        xs, ys = _shard(x, rank).chunk(MICRO), _shard(y, rank).chunk(MICRO)
        for i, (xm, ym) in enumerate(zip(xs, ys)):
            # no all-reduce but after the last micro-batch; the loss is the mean over
            # the rank's rows, accumulated over its micro-batches
            with model.no_sync() if i < MICRO - 1 else contextlib.nullcontext():
                (loss_of(model, xm, ym) * (len(xm) / (BATCH // WORLD))).backward()
        _step(case, model, opt, norms)
    return {"params": [p.detach().clone() for p in model.module.parameters()], "norms": norms}


def _run_zero(case, kind, rank, scratch):
    """ZeRO-1: 3 steps, consolidate the optimizer's state on rank 0, save, rebuild
    model and optimizer from the file on every rank, 2 more steps."""
    import torch.distributed as dist
    from torch.distributed.optim import ZeroRedundancyOptimizer
    from torch.nn.parallel import DistributedDataParallel as DDP

    def build(state=None):
        model = make_model(kind)
        if state is not None:
            model.load_state_dict(state["model"])
        ddp = DDP(model)
        opt = ZeroRedundancyOptimizer(_params(case, ddp), optimizer_class=case.make,
                                      **case.kwargs)
        if state is not None:
            opt.load_state_dict(state["optim"])
        else:
            _start(case, opt)
        return ddp, opt

    model, opt = build()
    path = os.path.join(scratch, "zero.pt")
    norms = []
    for t, (x, y) in enumerate(make_batches(kind)):
        if t == RESUME_AT:
            opt.consolidate_state_dict(to=0)
            if rank == 0:
                torch.save({"model": model.module.state_dict(), "optim": opt.state_dict()}, path)
            dist.barrier()
            model, opt = build(torch.load(path, weights_only=False))
        loss_of(model, _shard(x, rank), _shard(y, rank)).backward()
        _step(case, model, opt, norms)
    return {"params": [p.detach().clone() for p in model.module.parameters()], "norms": norms}


def _fsdp_model(kind):
    from torch.distributed.fsdp import fully_shard
    model = make_model(kind)
    for layer in model:
        if any(True for _ in layer.parameters()):
            fully_shard(layer)
    fully_shard(model)
    return model


def _run_fsdp(case, kind, rank, scratch, resume_at=None):
    """FSDP2; with ``resume_at``, save model and optimizer with torch.distributed.checkpoint
    after that many steps, load them into a new model and optimizer, go on."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict
    model = _fsdp_model(kind)
    opt = case.make(_params(case, model), **case.kwargs)
    _start(case, opt)
    norms = []
    for t, (x, y) in enumerate(make_batches(kind)):
        if t == resume_at:
            model_state, optim_state = get_state_dict(model, opt)
            dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=scratch)
            model = _fsdp_model(kind)
            opt = case.make(_params(case, model), **case.kwargs)
            _start(case, opt)
            _load(model, opt, scratch)
        loss_of(model, _shard(x, rank), _shard(y, rank)).backward()
        _step(case, model, opt, norms)
    return {"params": [p.full_tensor().detach().clone() for p in model.parameters()],
            "norms": norms}


def _run_fsdp_dcp(case, kind, rank, scratch):
    return _run_fsdp(case, kind, rank, scratch, resume_at=RESUME_AT)


def _run_fsdp_resumed(case, kind, rank, scratch, source):
    """FSDP2 on this world, from the checkpoint FSDP2+DCP saved on another number of
    ranks after RESUME_AT steps (under ``source``); the remaining steps. ``norms``
    holds the remaining steps' only."""
    model = _fsdp_model(kind)
    opt = case.make(_params(case, model), **case.kwargs)
    _start(case, opt)
    checkpoint = checkpoint_of(source, kind, case.name)
    # a cell refused on WORLD ranks saved nothing: it runs from the initial weights,
    # so it can only be refused again or differ ("loaded" says which it was)
    loaded = os.path.isfile(os.path.join(checkpoint, ".metadata"))
    if loaded:
        _load(model, opt, checkpoint)
    norms = []
    for x, y in make_batches(kind)[RESUME_AT:]:
        loss_of(model, _shard(x, rank), _shard(y, rank)).backward()
        _step(case, model, opt, norms)
    return {"params": [p.full_tensor().detach().clone() for p in model.parameters()],
            "norms": norms, "loaded": loaded}


def muon_gathered(rank: int, kind: str = "mlp") -> list[str]:
    """Under FSDP2, the names of the parameters whose parameter or gradient one step
    of Muon (+ AdamW groups) gathers whole (``DTensor.full_tensor``): its Muon groups'
    alone, if the AdamW groups run on their shards."""
    from unittest import mock
    from torch.distributed.tensor import DTensor
    case = _case("Muon (+ AdamW groups)")
    model = _fsdp_model(kind)
    opt = case.make(_params(case, model), **case.kwargs)
    x, y = make_batches(kind)[0]
    loss_of(model, _shard(x, rank), _shard(y, rank)).backward()
    names = {id(t): name for name, p in model.named_parameters() for t in (p, p.grad)}
    gathered, full_tensor = set(), DTensor.full_tensor

    def spy(self, *args, **kwargs):
        if id(self) in names:
            gathered.add(names[id(self)])
        return full_tensor(self, *args, **kwargs)

    with mock.patch.object(DTensor, "full_tensor", spy):
        opt.step()
    return sorted(gathered)


_ENGINE_RUNS = {"DDP": _run_ddp, "ZeRO-1": _run_zero, "FSDP2": _run_fsdp,
                "FSDP2+DCP": _run_fsdp_dcp}


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:600]


def worker(rank: int, init_file: str, out_path: str, scratch: str, world: int = WORLD,
           engines: tuple[str, ...] = ENGINES, source: str | None = None,
           models: tuple[str, ...] = MODELS) -> None:
    """One rank of ``world``: every (engine of ``engines``, model of ``models``, case); rank 0 saves
    ``{(engine, model, case): result}``, and ``"muon_gathered"``
    (:func:`muon_gathered`) when FSDP2 is among the engines. ``source``: the
    ``scratch`` of a run whose FSDP2+DCP cells saved their checkpoints, which the
    engine "DCP 2->4" loads.

    A result is ``{"params": [...], "norms": [...]}`` (``norms``: what clipping returned)
    or ``{"error": "...", "refused": bool}``
    (``refused``: the error is optbook's :class:`optbook.torch.ShardingError`), and
    ``"seconds"``: each engine's wall time. An error on one rank only leaves the other
    in a collective until gloo's timeout (TIMEOUT) ends the run with both tracebacks.
    Debugging: ``HARNESS_ONLY=FSDP2,LAMB`` runs the cells naming one of these words,
    ``HARNESS_DEBUG=1`` prints each cell and each error as it happens."""
    import torch.distributed as dist
    global WORLD
    WORLD = world  # read by _shard (this process is the rank's own interpreter)
    runs = {**_ENGINE_RUNS, "DCP 2->4": functools.partial(_run_fsdp_resumed, source=source)}
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world, timeout=TIMEOUT)
    results = {"seconds": {}, "scratch": scratch, "world": world}  # and each engine's time
    try:
        only = [w for w in os.environ.get("HARNESS_ONLY", "").split(",") if w]
        for engine in engines:
            run = runs[engine]
            start = time.perf_counter()
            for kind in models:
                for case in CASES:
                    if only and not {engine, kind, case.name} & set(only):
                        continue
                    key = (engine, kind, case.name)
                    scratch_case = os.path.join(scratch, f"{engine}-{kind}-{CASES.index(case)}")
                    if engine == "FSDP2+DCP":
                        assert scratch_case == checkpoint_of(scratch, kind, case.name)
                    os.makedirs(scratch_case, exist_ok=True)
                    if os.environ.get("HARNESS_DEBUG"):
                        print(rank, key, flush=True)
                    try:
                        results[key] = run(case, kind, rank, scratch_case)
                    except Exception as exc:  # recorded: the test reports it per cell
                        results[key] = {"error": _error_text(exc),
                                        "refused": isinstance(exc, obt.ShardingError),
                                        "traceback": traceback.format_exc()}
                        if os.environ.get("HARNESS_DEBUG"):
                            print(rank, results[key]["traceback"], flush=True)
                    dist.barrier()
            results["seconds"][engine] = time.perf_counter() - start
        if "FSDP2" in engines:
            results["muon_gathered"] = muon_gathered(rank)
        if rank == 0:
            torch.save(results, out_path)
    finally:
        dist.destroy_process_group()
