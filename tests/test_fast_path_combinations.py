"""Every combination of the flags the in-place path folds together, generated.

The fast path (:mod:`optbook.torch.fast_path`) folds several settings into a
few numbers: ``maximize`` becomes the coefficient -1 of the gradient, coupled
(L2) weight decay a term in the parameter, dampening a factor on the
velocity's input, Nesterov an extra term; RMSprop goes through Adagrad's
fused kernel with its rates rescaled by ``sqrt(1 - decay)``; a tensor may run
whole, in slices, or in one of torch's fused kernels; and the dtype and the
memory layout decide which of these it may take. A bug in the folding shows
up only in the combination that exercises it (``maximize`` with coupled decay,
dampening with decay, ...), so this file runs the cross product of

    optimizer flags (each class's, below)  x  path (fused / in place / sliced)
    x  dtype (float32, float64, bfloat16)  x  layout (contiguous, a transposed
    parameter as ``randn(6, 4).t()``, a transposed gradient only)

built by ``itertools.product``, not listed by hand. The classes' flags are
joined by the chain ``decay, scale(factor), link, rate`` for every stateful
element-wise link, so that each link also sees a gradient coefficient other
than +-1 (the classes, with ``maximize`` at most, never give it one).

Every run is compared with two oracles: the same class with
``fast_path = False`` (the functional chain, which ``test_torch_classic.py``
and ``test_transforms.py`` tie to torch.optim and to closed forms), and
``torch.optim``'s namesake (``foreach=False``, the reference single-tensor
implementation) wherever torch has the setting -- not for
``scale_by_adam(bias_correction=False)`` or the scaled chains, which
torch.optim does not offer. The test also checks which path ran (fused, in
place, or sliced, with a spy on the sliced run), so a silent fallback cannot
pass for the path it claims to test.

Tolerance: ``TOL_ULPS * steps * eps(dtype) * max|reference|`` with
``TOL_ULPS = 2``: each step rounds the parameter once and the update (small
next to it) a few times, in whatever order each implementation chose, so two
correct runs drift apart by about one unit in the last place per step (the
largest disagreement measured over the whole grid was 0.35 of this tolerance,
in every dtype). In float64 that is ~2e-15 relative: any wrong coefficient is
far above it. In bfloat16 (eps = 2^-7) it is 6 % of the parameters' scale, so
the bfloat16 runs guard the paths bfloat16 takes (never a fused kernel) and
gross errors such as a lost sign; the coefficients are held by float32 and
float64.
"""
from __future__ import annotations

import itertools
import math

import pytest
import torch

import optbook
from optbook.torch import ChainOptimizer, classic, fast_path

from test_fast_path_slices import sliced_spy

torch.set_num_threads(1)

STEPS = 4
TOL_ULPS = 2
DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}
LAYOUTS = ("contiguous", "transposed_param", "transposed_grad")
PATHS = ("fused", "in_place", "sliced")
SLICE = 5  # elements per slice on the sliced path: every tensor below is cut, some unevenly

# the first tensor is (4, 6): created as randn(6, 4).t() in the transposed layouts
SHAPES = [(4, 6), (7,), (3, 5)]

# --- the flag grids -------------------------------------------------------------------
# Each class's own hyper-parameters are fixed at values where every term matters
# (eps large enough that where it enters shows, beta2 small enough that bias
# correction shows); the flags below are crossed.

BASE = {
    "SGD": dict(lr=0.1),
    "Adam": dict(lr=0.05, betas=(0.8, 0.9), eps=1e-3),
    "RMSprop": dict(lr=0.02, alpha=0.9, eps=1e-3),
    "Adagrad": dict(lr=0.1, eps=1e-3, initial_accumulator_value=0.1),
    "AdamNoBiasCorrection": dict(lr=0.05, betas=(0.8, 0.9), eps=1e-3),
    "ScaledChain": dict(lr=0.05),
}
FLAGS = {
    "SGD": dict(momentum=[0.0, 0.9], dampening=[0.0, 0.3], nesterov=[False, True],
                weight_decay=[0.0, 0.2], maximize=[False, True]),
    "Adam": dict(weight_decay=[0.0, 0.2], decoupled_weight_decay=[False, True],
                 amsgrad=[False, True], maximize=[False, True]),
    "RMSprop": dict(weight_decay=[0.0, 0.2], centered=[False, True], momentum=[0.0, 0.5],
                    maximize=[False, True]),
    "Adagrad": dict(weight_decay=[0.0, 0.2], lr_decay=[0.0, 0.1], maximize=[False, True]),
    # a chain with the links of Adam / AdamW (so it reaches the fused-kernel matcher)
    # but scale_by_adam(bias_correction=False): no torch.optim twin, and no fused kernel
    "AdamNoBiasCorrection": dict(weight_decay=[0.0, 0.2], decoupled_weight_decay=[False, True],
                                 amsgrad=[False, True], maximize=[False, True]),
    # chain(decay, scale(factor), link, rate): the gradient reaches each stateful link with
    # a coefficient other than +-1, which no class produces (a centered mean, a Lion
    # direction or a dampened velocity that dropped it would go unnoticed with +-1)
    "ScaledChain": dict(link=["trace", "trace_dampening", "nesterov", "adam", "amsgrad", "rms",
                              "rms_centered", "adagrad", "lion"],
                        factor=[0.5, -2.0], weight_decay=[0.0, 0.2],
                        decoupled_weight_decay=[False, True], maximize=[False, True]),
}

LINKS = {
    "trace": lambda: optbook.trace(0.9),
    "trace_dampening": lambda: optbook.trace(0.9, dampening=0.3),
    "nesterov": lambda: optbook.trace(0.9, nesterov=True),
    "adam": lambda: optbook.scale_by_adam(0.8, 0.9, 1e-3),
    "amsgrad": lambda: optbook.scale_by_adam(0.8, 0.9, 1e-3, amsgrad=True),
    "rms": lambda: optbook.scale_by_rms(0.9, 1e-3),
    "rms_centered": lambda: optbook.scale_by_rms(0.9, 1e-3, centered=True),
    "adagrad": lambda: optbook.scale_by_adagrad(1e-3),
    "lion": lambda: optbook.scale_by_lion(0.8, 0.9),
}


def valid(name: str, flags: dict) -> bool:
    if name == "SGD":
        if flags["momentum"] == 0 and (flags["dampening"] or flags["nesterov"]):
            return False  # torch rejects Nesterov without momentum; dampening is then unused
        if flags["nesterov"] and flags["dampening"]:
            return False  # torch rejects Nesterov with dampening
    if name == "ScaledChain" and flags["decoupled_weight_decay"] and not flags["weight_decay"]:
        return False  # no decay to place
    return True


SETTINGS = [(name, dict(zip(grid, values)))
            for name, grid in FLAGS.items()
            for values in itertools.product(*grid.values())
            if valid(name, dict(zip(grid, values)))]


def setting_id(name, flags):
    on = [k if v is True else v if k == "link" else f"{k}={v}"
          for k, v in flags.items() if v not in (False, 0.0)]
    return "-".join([name] + on)


def takes_fused_kernel(name: str, flags: dict) -> bool:
    """Whether the chain is one of torch's fused kernels (given fp32/fp64, contiguous)."""
    if name == "RMSprop":
        return not flags["centered"] and flags["momentum"] == 0  # via Adagrad's kernel
    return name not in ("AdamNoBiasCorrection", "ScaledChain")


# --- the optimizers ----------------------------------------------------------------------

def no_bias_correction_chain(group):
    adam = optbook.scale_by_adam(*group["betas"], group["eps"], amsgrad=group["amsgrad"],
                                 bias_correction=False)
    decay = optbook.add_decayed_weights(group["weight_decay"])
    links = (adam, decay) if group["decoupled_weight_decay"] else (decay, adam)
    return optbook.chain(*links, optbook.scale_by_learning_rate(group["lr"]))


def scaled_chain(group):
    links = [optbook.scale(group["factor"]), LINKS[group["link"]]()]
    decay = optbook.add_decayed_weights(group["weight_decay"])
    links.insert(2 if group["decoupled_weight_decay"] else 0, decay)
    return optbook.chain(*links, optbook.scale_by_learning_rate(group["lr"]))


def make_ours(name, flags):
    kwargs = {**BASE[name], **flags}
    if name == "AdamNoBiasCorrection":
        return lambda ps: ChainOptimizer(ps, no_bias_correction_chain, defaults=kwargs)
    if name == "ScaledChain":
        return lambda ps: ChainOptimizer(ps, scaled_chain, defaults=kwargs)
    return lambda ps: getattr(classic, name)(ps, **kwargs)


def make_torch(name, flags):
    if name in ("AdamNoBiasCorrection", "ScaledChain"):
        return None
    return lambda ps: getattr(torch.optim, name)(ps, foreach=False, **BASE[name], **flags)


# --- one run --------------------------------------------------------------------------

def problem(dtype, layout):
    """Start values and ``STEPS`` gradients, in ``dtype`` and ``layout`` (same numbers for all)."""
    gen = torch.Generator().manual_seed(0)

    def tensor(shape, transposed):
        if transposed:  # a (4, 6) view of a (6, 4) tensor: strides (1, 4)
            return torch.randn(shape[::-1], generator=gen, dtype=torch.float64).t().to(dtype)
        return torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)

    start = [tensor(s, layout == "transposed_param" and i == 0) for i, s in enumerate(SHAPES)]
    grads = [[tensor(s, layout != "contiguous" and i == 0) for i, s in enumerate(SHAPES)]
             for _ in range(STEPS)]
    return start, grads


def run(make, dtype, layout, configure=lambda opt: None):
    start, grads = problem(dtype, layout)
    params = [torch.nn.Parameter(s.clone()) for s in start]  # clone keeps the strides
    assert params[0].is_contiguous() == (layout != "transposed_param")
    opt = make(params)
    configure(opt)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g.clone()
        assert params[0].grad.is_contiguous() == (layout == "contiguous")
        opt.step()
    return [p.detach().clone() for p in params], start, opt


def disagreement(ours, reference, dtype):
    """Largest error over the tensors, in units of the tolerance (<= 1 passes)."""
    errors = []
    for a, b in zip(ours, reference):
        a, b = a.double(), b.double()
        allowed = TOL_ULPS * STEPS * torch.finfo(dtype).eps * max(float(b.abs().max()), 1e-300)
        errors.append(float((a - b).abs().max()) / allowed)
    return math.nan if any(math.isnan(e) for e in errors) else max(errors)  # max() drops a nan


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("name,flags", SETTINGS, ids=[setting_id(*s) for s in SETTINGS])
def test_every_combination_equals_functional_and_torch(name, flags, dtype, monkeypatch):
    dt = DTYPES[dtype]
    spy = sliced_spy(monkeypatch)
    failures = []
    for layout in LAYOUTS:
        functional, start, _ = run(make_ours(name, flags), dt, layout,
                                   lambda opt: setattr(opt, "fast_path", False))
        moved = max(float((f.double() - s.double()).abs().max()) for f, s in zip(functional, start))
        assert moved > 0.05, f"{layout}: the run hardly moved ({moved:.2e}); nothing is compared"
        oracles = {"functional": functional}
        if make_torch(name, flags) is not None:
            oracles["torch.optim"] = run(make_torch(name, flags), dt, layout)[0]
        for path in PATHS:
            spy["tensors"] = 0
            monkeypatch.setattr(fast_path, "CHUNK", SLICE if path == "sliced" else 1 << 18)
            configure = (lambda opt: None) if path == "fused" else \
                (lambda opt: setattr(opt, "fused_kernels", False))
            ours, _, opt = run(make_ours(name, flags), dt, layout, configure)
            where = f"{layout}, {path}"
            for oracle, reference in oracles.items():
                err = disagreement(ours, reference, dt)
                if not err <= 1.0:
                    failures.append(f"{where}: against {oracle}, error {err:.3g} x tolerance")
            # the path that ran
            n = len(SHAPES)
            fused = (path == "fused" and takes_fused_kernel(name, flags) and layout == "contiguous"
                     and dt in (torch.float32, torch.float64))
            expected = {"fused": n if fused else 0, "in_place": 0 if fused else n, "functional": 0}
            if opt.last_step_paths != expected:
                failures.append(f"{where}: paths {opt.last_step_paths}, expected {expected}")
            # on the sliced path every tensor whose parameter and gradient are contiguous
            # is cut (4 steps each); the transposed one runs whole
            sliced = STEPS * (n - (layout != "contiguous")) if path == "sliced" else 0
            if spy["tensors"] != sliced:
                failures.append(f"{where}: {spy['tensors']} sliced runs, expected {sliced}")
    assert not failures, "\n".join(failures)
