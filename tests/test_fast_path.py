"""optbook.torch's in-place fast path computes the functional chains' iterates.

Every optimizer class runs each oracle setting of its oracle test three ways:
the functional chain (``fast_path = False``, the reference that the oracle
tests tie to torch.optim and the papers), optbook's in-place twins
(``fused_kernels = False``), and the default (torch's fused kernels for the
chains that are torch.optim's). In float64 they must agree to 1e-12
relative. The tests also check which path ran, so a silent fallback to the
functional chain cannot pass for the fast path; and that the optimizer state
and the memory allocated by one step are no larger than torch.optim's.
"""
from __future__ import annotations

import copy
import weakref

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import optbook
from optbook.torch import LAMB, Adafactor, ChainOptimizer, Lion, SophiaG, classic

import test_adafactor
import test_lamb
import test_lion
import test_sophia
import test_torch_classic as classic_tests
from optimizer_problem import make_problem, train

torch.set_num_threads(1)
TOL = 1e-12
MODES = {"functional": dict(fast_path=False),
         "in_place": dict(fused_kernels=False),
         "default": {}}


def with_mode(make, mode):
    def build(params):
        opt = make(params)
        for key, value in MODES[mode].items():
            setattr(opt, key, value)
        return opt
    return build


def assert_close(ours, reference, what):
    for i, (a, b) in enumerate(zip(ours, reference)):
        scale = max(float(b.abs().max()), 1e-300)
        err = float((a - b).abs().max())
        assert err <= TOL * scale, f"{what}, parameter {i}: max error {err:.2e} vs scale {scale:.2e}"


def assert_path(opt, mode, fused_expected):
    paths = opt.last_step_paths
    if mode == "functional":
        assert paths["in_place"] == paths["fused"] == 0
        return
    assert paths["functional"] == 0, f"{mode}: fell back to the functional chain: {paths}"
    if mode == "in_place":
        assert paths["fused"] == 0 and paths["in_place"] > 0
    else:
        assert (paths["fused"] > 0) == fused_expected and paths["fused"] + paths["in_place"] > 0


# --- the five torch.optim classes, on every setting of test_torch_classic -------------

def run_classic(name, kwargs, mode, steps=25, aux_every=0, step_lr=None):
    net = classic_tests.make_net()
    opt = with_mode(lambda ps: getattr(classic, name)(ps, **kwargs), mode)(net.parameters())
    sched = torch.optim.lr_scheduler.StepLR(opt, **step_lr) if step_lr else None
    classic_tests.train(net, opt, steps, sched, aux_every)
    return [p.detach().clone() for p in net.parameters()], opt


@pytest.mark.parametrize("name,kwargs", classic_tests.CONFIGS,
                         ids=[f"{n}-{'-'.join(k) or 'defaults'}" for n, k in classic_tests.CONFIGS])
def test_classic_fast_path_equals_functional(name, kwargs):
    reference, _ = run_classic(name, kwargs, "functional")
    for mode in ("in_place", "default"):
        ours, opt = run_classic(name, kwargs, mode)
        assert_close(ours, reference, f"{name} {kwargs} {mode}")
        # plain RMSprop runs through Adagrad's fused kernel; centered or with momentum it
        # has none
        fused = name != "RMSprop" or not (kwargs.get("centered") or kwargs.get("momentum"))
        assert_path(opt, mode, fused_expected=fused)


@pytest.mark.parametrize("name", classic_tests.CLASSES)
def test_classic_fast_path_with_missing_grads_and_scheduler(name):
    """Tensors whose step counts differ (grad None on some steps) and a changing lr."""
    kwargs = classic_tests.SCENARIO[name]
    args = dict(steps=25, aux_every=3, step_lr=dict(step_size=5, gamma=0.5))
    reference, _ = run_classic(name, kwargs, "functional", **args)
    for mode in ("in_place", "default"):
        ours, _ = run_classic(name, kwargs, mode, **args)
        assert_close(ours, reference, f"{name} {mode}")


# --- LAMB, Lion, SophiaG and AdaFactor, on their oracle settings ----------------------

DESCENDANTS = (
    [(f"Lion-{k}", lambda ps, k=k: Lion(ps, **k)) for k in test_lion.SETTINGS]
    + [(f"LAMB-{k}", lambda ps, k=k: LAMB(ps, **k)) for k in test_lamb.SETTINGS]
    + [(f"Adafactor-{k}", lambda ps, k=k: Adafactor(ps, **k)) for k in test_adafactor.SETTINGS]
    + [(f"Adafactor-{k}", lambda ps, k=k: Adafactor(ps, **k))
       for k in test_adafactor.EXTRA_SETTINGS])


@pytest.mark.parametrize("zero_bias", [False, True], ids=["random", "zero-bias"])
@pytest.mark.parametrize("label,make", DESCENDANTS, ids=[d[0] for d in DESCENDANTS])
def test_descendants_fast_path_equals_functional(label, make, zero_bias):
    params0, loss_fn = make_problem(zero_bias=zero_bias)
    reference, _ = train(with_mode(make, "functional"), params0, loss_fn, 25)
    ours, opt = train(with_mode(make, "default"), params0, loss_fn, 25)
    assert_close(ours, reference, label)
    assert_path(opt, "default", fused_expected=False)


@pytest.mark.parametrize("kwargs, k", test_sophia.SETTINGS, ids=test_sophia.IDS)
def test_sophia_fast_path_equals_functional(kwargs, k):
    params0, logits_fn, loss_fn = test_sophia.make_problem()
    runs = {}
    for mode in ("functional", "default"):
        runs[mode] = test_sophia.run_authors_loop(
            with_mode(lambda ps: SophiaG(ps, bs=test_sophia.BATCH, **kwargs), mode),
            params0, logits_fn, loss_fn, test_sophia.STEPS, k)
    assert_close(runs["default"][0], runs["functional"][0], f"SophiaG {kwargs}")
    assert_path(runs["default"][1], "default", fused_expected=False)


def test_sophia_negative_hessian_estimate_keeps_the_released_form():
    """Hutchinson estimates can be negative: rho h + eps < 0 must give the released step."""
    params0, loss_fn = make_problem()
    runs = {}
    for mode in ("functional", "default"):
        ps = [p.clone().requires_grad_() for p in params0]
        opt = with_mode(lambda q: SophiaG(q, lr=1e-2, rho=1.0), mode)(ps)
        gen = torch.Generator().manual_seed(3)
        for t in range(10):
            opt.zero_grad()
            loss_fn(ps, t).backward()
            opt.update_hessian([torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in ps])
            opt.step()
        runs[mode] = [p.detach() for p in ps]
    assert_close(runs["default"], runs["functional"], "SophiaG with signed estimates")


# --- chains given to ChainOptimizer --------------------------------------------------

CHAINS = {
    "nested chain and scale": lambda: optbook.chain(
        optbook.chain(optbook.trace(0.9), optbook.scale(0.5)), optbook.scale_by_learning_rate(0.1)),
    "adam without bias correction": lambda: optbook.chain(
        optbook.scale_by_adam(bias_correction=False), optbook.scale_by_learning_rate(1e-2)),
    "adagrad eps inside the root": lambda: optbook.adagrad(0.1, eps=1e-3, eps_inside_sqrt=True),
    "rmsprop eps inside, centered": lambda: optbook.rmsprop(
        1e-2, centered=True, eps=1e-3, eps_inside_sqrt=True),
    "scheduled adamw": lambda: optbook.adamw(lambda t: 1e-2 / (1 + t), weight_decay=0.1),
    "sophia, the paper's denominator": lambda: optbook.sophia(1e-2, rho=0.5, denominator="paper"),
    "identity then sgd": lambda: optbook.chain(optbook.identity(), optbook.sgd(0.1, 0.01)),
    # the second decay adds to the first (scaled) one, which is still pending in the update
    "two decays around a scale": lambda: optbook.chain(
        optbook.add_decayed_weights(0.1), optbook.scale(0.5), optbook.add_decayed_weights(0.2),
        optbook.trace(0.9, dampening=0.1), optbook.scale_by_learning_rate(0.1)),
}


@pytest.mark.parametrize("make_chain", CHAINS.values(), ids=CHAINS.keys())
def test_chain_optimizer_fast_path_equals_functional(make_chain):
    params0, loss_fn = make_problem()
    reference, _ = train(with_mode(lambda ps: ChainOptimizer(ps, make_chain()), "functional"),
                         params0, loss_fn, 20)
    for mode in ("in_place", "default"):
        ours, opt = train(with_mode(lambda ps: ChainOptimizer(ps, make_chain()), mode),
                          params0, loss_fn, 20)
        assert_close(ours, reference, mode)
        assert opt.last_step_paths["functional"] == 0


@pytest.mark.parametrize("make_chain", [
    lambda: optbook.chain(optbook.ensure_finite(), optbook.sgd(0.1)),
    lambda: optbook.chain(optbook.clip_by_global_norm(0.1), optbook.sgd(0.1)),
    lambda: optbook.adamw(1e-2, mask=lambda p: p.ndim > 1),
], ids=["ensure_finite", "clip", "mask"])
def test_links_without_twin_run_the_functional_chain(make_chain):
    params0, loss_fn = make_problem()
    reference, _ = train(with_mode(lambda ps: ChainOptimizer(ps, make_chain()), "functional"),
                         params0, loss_fn, 5)
    ours, opt = train(lambda ps: ChainOptimizer(ps, make_chain()), params0, loss_fn, 5)
    assert opt.last_step_paths == {"fused": 0, "in_place": 0, "functional": len(params0)}
    for a, b in zip(ours, reference):
        assert torch.equal(a, b)


@pytest.mark.parametrize("mode", ["in_place", "default"])
def test_invalid_scheduled_rate_raises_before_anything_is_written(mode):
    params0, loss_fn = make_problem()
    chain = optbook.adamw(lambda t: 1e-2 if t < 3 else -1.0)
    _, opt = train(with_mode(lambda ps: ChainOptimizer(ps, chain), mode), params0, loss_fn, 3)
    ps = [group_p for group in opt.param_groups for group_p in group["params"]]
    loss_fn(ps, 3).backward()
    before = [p.detach().clone() for p in ps]
    state_before = copy.deepcopy(opt.state_dict())
    with pytest.raises(ValueError, match="Invalid learning rate at step 3: -1.0"):
        opt.step()
    for p, b in zip(ps, before):
        assert torch.equal(p.detach(), b)
    after = opt.state_dict()["state"]
    for key, entry in state_before["state"].items():
        for link_before, link_after in zip(entry["transform_state"], after[key]["transform_state"]):
            # state_dict() writes an empty link state as None (ChainOptimizer.state_dict)
            link_before, link_after = link_before or {}, link_after or {}
            assert link_before.keys() == link_after.keys()
            for name, value in link_before.items():
                other = link_after[name]
                assert torch.equal(value, other) if torch.is_tensor(value) else value == other


# --- memory: state and per-step allocations no larger than torch.optim's ---------------

class PeakAllocations(TorchDispatchMode):
    """Peak bytes of new (non-aliasing) op outputs alive at once during a block."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0

    def _free(self, nbytes):
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in _tensors((args, kwargs))}
        for t in _tensors(out):
            ptr = t.untyped_storage().data_ptr()
            if ptr not in inputs and ptr != 0:
                inputs.add(ptr)
                self.live += t.untyped_storage().nbytes()
                self.peak = max(self.peak, self.live)
                weakref.finalize(t, self._free, t.untyped_storage().nbytes())
        return out


def _tensors(tree):
    if isinstance(tree, torch.Tensor):
        yield tree
    elif isinstance(tree, (list, tuple)):
        for x in tree:
            yield from _tensors(x)
    elif isinstance(tree, dict):
        for x in tree.values():
            yield from _tensors(x)


def state_bytes(opt):
    return sum(t.numel() * t.element_size() for s in opt.state.values() for t in _tensors(s)
               if t.dim() > 0)  # torch.optim's step counters are 0-d tensors; optbook's are ints


def step_peak(opt):
    with PeakAllocations() as mode:
        opt.step()
    return mode.peak


MEMORY_CASES = [(name, kwargs) for name, kwargs in classic_tests.CONFIGS
                if not kwargs.get("maximize")]  # torch's default allocates -g; optbook does not


@pytest.mark.parametrize("name,kwargs", MEMORY_CASES,
                         ids=[f"{n}-{'-'.join(k) or 'defaults'}" for n, k in MEMORY_CASES])
@pytest.mark.parametrize("mode", ["in_place", "default"])
def test_state_and_step_memory_not_above_torch_default(name, kwargs, mode):
    shapes = [(64, 32), (32,), (16, 64)]
    gen = torch.Generator().manual_seed(0)
    params0 = [torch.randn(s, generator=gen) for s in shapes]
    grads = [torch.randn(s, generator=gen) for s in shapes]
    opts = []
    for make in (with_mode(lambda ps: getattr(classic, name)(ps, **kwargs), mode),
                 lambda ps: getattr(torch.optim, name)(ps, **kwargs)):
        ps = [torch.nn.Parameter(p.clone()) for p in params0]
        for p, g in zip(ps, grads):
            p.grad = g.clone()
        opt = make(ps)
        opt.step()  # the state exists from here on
        opts.append(opt)
    ours, theirs = opts
    assert state_bytes(ours) == state_bytes(theirs)
    largest = max(p.numel() * p.element_size() for p in params0)
    assert step_peak(ours) <= max(step_peak(theirs), largest)


@pytest.mark.parametrize("make_ours,state_tensors", [
    (lambda ps: Lion(ps, lr=1e-3, weight_decay=0.1), 1),  # m, as lion-pytorch
    (lambda ps: SophiaG(ps, lr=1e-3), 2),  # m and h, as the authors' SophiaG
    (lambda ps: LAMB(ps, lr=1e-3), 2),  # m and v, as torch-optimizer's Lamb
])
def test_descendants_state_size_and_step_memory(make_ours, state_tensors):
    gen = torch.Generator().manual_seed(0)
    ps = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in [(64, 32), (32,), (16, 64)]]
    for p in ps:
        p.grad = torch.randn(p.shape, generator=gen)
    opt = make_ours(ps)
    opt.step()
    assert opt.last_step_paths["in_place"] == len(ps)
    assert state_bytes(opt) == state_tensors * sum(p.numel() * 4 for p in ps)
    largest = max(p.numel() * 4 for p in ps)
    # the authors' and the packages' steps allocate 3-4 temporaries of one tensor
    assert step_peak(opt) <= 2 * largest


def test_adafactor_state_and_step_memory_equal_torch():
    shapes = [(64, 32), (32,), (4, 16, 8)]
    gen = torch.Generator().manual_seed(0)
    params0 = [torch.randn(s, generator=gen) for s in shapes]
    opts = []
    for make in (Adafactor, torch.optim.Adafactor):
        ps = [torch.nn.Parameter(p.clone()) for p in params0]
        for p in ps:
            p.grad = torch.ones_like(p)
        opt = make(ps, lr=1e-2)
        opt.step()
        opts.append(opt)
    ours, theirs = opts
    assert ours.last_step_paths["in_place"] == len(shapes)
    assert state_bytes(ours) == state_bytes(theirs)  # row and column factors, one vector
    assert step_peak(ours) <= step_peak(theirs)


# --- NAdam, RAdam, Muon, Shampoo, SOAP: no in-place twin, so always the functional chain --

def _matrix_and_vector():
    gen = torch.Generator().manual_seed(0)
    ps = [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float64))
          for s in [(12, 8), (8,)]]
    for p in ps:
        p.grad = torch.randn(p.shape, generator=gen, dtype=torch.float64)
    return ps


MATRIX_OPTIMIZERS = {
    "NAdam": lambda ps: optbook.torch.NAdam(ps),
    "RAdam": lambda ps: optbook.torch.RAdam(ps),
    "Shampoo": lambda ps: optbook.torch.Shampoo(ps, grafting="adam"),
    "SOAP": lambda ps: optbook.torch.SOAP(ps),
    "Muon": lambda ps: optbook.torch.Muon([{"params": ps[:1]},
                                           {"params": ps[1:], "use_muon": False}]),
}


@pytest.mark.parametrize("name", list(MATRIX_OPTIMIZERS))
@pytest.mark.parametrize("mode", list(MODES))
def test_new_rules_run_the_functional_chain_in_every_mode(name, mode):
    """The oracle tests of these classes test the functional chain; if an in-place twin is
    ever added, this fails until the twin gets a 1e-12 test like the ones above. (Muon's
    AdamW groups take the fused kernel: tests/test_muon.py holds them to the functional
    chain at 1e-12.)"""
    ps = _matrix_and_vector()
    opt = with_mode(MATRIX_OPTIMIZERS[name], mode)(ps)
    opt.step()
    aux = {"functional": 0, "in_place": 0, "default": 0}
    if name == "Muon":
        aux = {"functional": 0, "in_place": 1, "default": 1}
    expected = {"fused": aux["default"] if mode == "default" else 0,
                "in_place": aux["in_place"] if mode == "in_place" else 0}
    assert opt.last_step_paths == {**expected, "functional": 2 - sum(expected.values())}


@pytest.mark.parametrize("name, numbers", [
    ("Muon", lambda m, n: m * n),                               # momentum
    ("Shampoo", lambda m, n: 2 * (m * m + n * n)),              # L, R and their cached roots
    ("Shampoo-adam-graft", lambda m, n: 2 * (m * m + n * n) + m * n),  # + the graft's v
    ("SOAP", lambda m, n: 2 * (m * m + n * n) + 2 * m * n),     # L, R, Q_L, Q_R, m, v
    ("NAdam", lambda m, n: 2 * m * n),                          # m, v (as Adam)
])
def test_state_of_an_m_by_n_matrix(name, numbers):
    """The memory row a chapter's cost table quotes, counted from the optimizer's state."""
    gen = torch.Generator().manual_seed(0)
    p = torch.nn.Parameter(torch.randn(12, 8, generator=gen))
    p.grad = torch.randn(12, 8, generator=gen)
    makers = {**MATRIX_OPTIMIZERS, "Muon": lambda ps: optbook.torch.Muon(ps),
              "Shampoo": lambda ps: optbook.torch.Shampoo(ps),
              "Shampoo-adam-graft": MATRIX_OPTIMIZERS["Shampoo"]}
    opt = makers[name]([p])
    opt.step()
    assert state_bytes(opt) == 4 * numbers(12, 8)
