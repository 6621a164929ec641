"""optbook.torch's SGD, Adagrad, RMSprop, Adam, AdamW against torch.optim (the oracle).

Every comparison trains two copies of the same float64 network, one with the
optbook class and one with its torch.optim namesake, and requires the
parameters to agree to 1e-10 relative after every run.
"""
from __future__ import annotations

import copy
import inspect

import numpy as np
import pytest
import torch
from torch import nn

import optbook
from optbook.base import apply_updates
from optbook.torch import classic

torch.set_num_threads(1)

CLASSES = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"]
RTOL = 1e-10


class Net(nn.Module):
    """Linear -> LayerNorm -> tanh -> Linear (1-D and 2-D parameters), plus an
    auxiliary head that is used only on some steps, so its grad is None on the others."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Tanh())
        self.head = nn.Linear(8, 1)
        self.aux = nn.Linear(8, 1)

    def forward(self, x, use_aux=False):
        h = self.body(x)
        out = self.head(h)
        return out + self.aux(h) if use_aux else out


def make_net(seed=0):
    torch.manual_seed(seed)
    net = Net().double()
    with torch.no_grad():  # LayerNorm starts at (1, 0); perturb it so its update is not trivial
        net.body[1].weight.add_(0.1 * torch.randn(8, dtype=torch.float64))
        net.body[1].bias.add_(0.1 * torch.randn(8, dtype=torch.float64))
    return net


_gen = torch.Generator().manual_seed(1)
X = torch.randn(32, 4, generator=_gen, dtype=torch.float64)
Y = torch.sin(X.sum(dim=1, keepdim=True))


def loss_fn(net, step, aux_every):
    use_aux = bool(aux_every) and step % aux_every == 0
    return ((net(X, use_aux) - Y) ** 2).mean()


def train(net, opt, steps=25, scheduler=None, aux_every=0):
    for t in range(steps):
        opt.zero_grad()
        loss_fn(net, t, aux_every).backward()
        opt.step()
        if scheduler is not None:
            scheduler.step()


def assert_params_close(ours: nn.Module, ref: nn.Module, start: nn.Module, rtol=RTOL):
    moved = 0.0
    for (name, p), q, p0 in zip(ours.named_parameters(), ref.parameters(), start.parameters()):
        p, q, p0 = p.detach(), q.detach(), p0.detach()
        scale = float(q.abs().max())
        err = float((p - q).abs().max())
        assert err <= rtol * scale, f"{name}: max error {err:.3e} vs scale {scale:.3e}"
        moved = max(moved, float((q - p0).abs().max()))
    assert moved > 1e-4, "the run did not move the parameters; the comparison would be empty"


def run_pair(name, kwargs, *, groups=None, steps=25, aux_every=0, step_lr=None):
    start = make_net()
    nets = [copy.deepcopy(start), copy.deepcopy(start)]
    opts = []
    for net, module in zip(nets, (classic, torch.optim)):
        params = groups(net) if groups else net.parameters()
        opts.append(getattr(module, name)(params, **kwargs))
    for net, opt in zip(nets, opts):
        sched = torch.optim.lr_scheduler.StepLR(opt, **step_lr) if step_lr else None
        train(net, opt, steps, sched, aux_every)
    assert_params_close(nets[0], nets[1], start)
    return nets, opts


CONFIGS = [
    ("SGD", {}),  # torch's default lr (1e-3)
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.01, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01,
             "maximize": True}),
    ("Adagrad", {}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.05}),
    ("Adagrad", {"lr": 0.1, "initial_accumulator_value": 0.5}),
    ("Adagrad", {"lr": 0.1, "weight_decay": 0.1, "eps": 1e-3}),
    ("Adagrad", {"lr": 0.05, "lr_decay": 0.01, "maximize": True}),
    ("RMSprop", {}),
    ("RMSprop", {"lr": 0.01, "centered": True}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-4, "weight_decay": 0.1,
                 "momentum": 0.5, "centered": True}),
    ("RMSprop", {"lr": 0.005, "maximize": True}),
    ("Adam", {}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.99)}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1, "eps": 1e-6}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("Adam", {"lr": 0.005, "maximize": True}),
    ("AdamW", {}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.5}),
    ("AdamW", {"lr": 0.01, "amsgrad": True, "betas": (0.5, 0.9)}),
    ("AdamW", {"lr": 0.005, "weight_decay": 0.1, "maximize": True}),
]


@pytest.mark.parametrize("name,kwargs", CONFIGS,
                         ids=[f"{n}-{'-'.join(k) or 'defaults'}" for n, k in CONFIGS])
def test_matches_torch_optim(name, kwargs):
    run_pair(name, kwargs, steps=25)


# one setting per class for the scenarios below
SCENARIO = {
    "SGD": {"lr": 0.05, "momentum": 0.9, "nesterov": True},
    "Adagrad": {"lr": 0.1, "lr_decay": 0.02, "weight_decay": 0.01},
    "RMSprop": {"lr": 0.01, "momentum": 0.5, "centered": True},
    "Adam": {"lr": 0.01, "amsgrad": True, "weight_decay": 0.01},
    "AdamW": {"lr": 0.01, "weight_decay": 0.1},
}


def two_groups(net):
    return [{"params": net.body.parameters(), "lr": 0.02, "weight_decay": 0.05},
            {"params": list(net.head.parameters()) + list(net.aux.parameters())}]


@pytest.mark.parametrize("name", CLASSES)
def test_two_param_groups(name):
    _, (ours, ref) = run_pair(name, SCENARIO[name], groups=two_groups)
    assert [g["lr"] for g in ours.param_groups] == [g["lr"] for g in ref.param_groups]


@pytest.mark.parametrize("name", CLASSES)
def test_grad_none_on_some_steps(name):
    (net, _), _ = run_pair(name, SCENARIO[name], aux_every=3)


@pytest.mark.parametrize("name", CLASSES)
def test_step_lr_scheduler(name):
    _, (ours, ref) = run_pair(name, SCENARIO[name], steps=25,
                              step_lr={"step_size": 7, "gamma": 0.5})
    assert ours.param_groups[0]["lr"] == ref.param_groups[0]["lr"] == SCENARIO[name]["lr"] / 8


@pytest.mark.parametrize("name", CLASSES)
def test_everything_at_once(name):
    run_pair(name, SCENARIO[name], groups=two_groups, aux_every=4,
             step_lr={"step_size": 5, "gamma": 0.7}, steps=30)


def test_closure_returns_loss_like_torch():
    nets = [make_net(), make_net()]
    opts = [classic.Adam(nets[0].parameters(), lr=0.01), torch.optim.Adam(nets[1].parameters(), lr=0.01)]
    losses = []
    for net, opt in zip(nets, opts):
        def closure(net=net, opt=opt):
            opt.zero_grad()
            loss = loss_fn(net, 1, 0)
            loss.backward()
            return loss
        losses.append([float(opt.step(closure).detach()) for _ in range(5)])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-12)
    assert_params_close(nets[0], nets[1], make_net())


# --- signatures, defaults, flags -------------------------------------------------

@pytest.mark.parametrize("name", CLASSES)
def test_signature_and_defaults_equal_torch(name):
    ours, ref = getattr(classic, name), getattr(torch.optim, name)
    sig = lambda cls: [(p.name, p.kind, p.default)
                       for p in inspect.signature(cls.__init__).parameters.values()]
    assert sig(ours) == sig(ref)
    params = [nn.Parameter(torch.zeros(2))]
    assert ours(params).defaults == ref(params).defaults


@pytest.mark.parametrize("name", CLASSES)
def test_foreach_and_fused_are_accepted_and_ignored(name):
    flags = {"foreach": True}
    if "fused" in inspect.signature(getattr(classic, name)).parameters:
        flags["fused"] = False
    nets = [make_net(), make_net()]
    for net, extra in zip(nets, (flags, {})):
        train(net, getattr(classic, name)(net.parameters(), **SCENARIO[name], **extra), steps=5)
    for p, q in zip(*(n.parameters() for n in nets)):
        assert torch.equal(p, q)


@pytest.mark.parametrize("name,flag", [(n, f) for n in CLASSES for f in ("capturable", "differentiable")
                                        if f in inspect.signature(getattr(torch.optim, n)).parameters])
def test_capturable_and_differentiable_are_rejected(name, flag):
    params = [nn.Parameter(torch.zeros(2))]
    with pytest.raises(ValueError, match=f"Invalid {flag} value: True"):
        getattr(classic, name)(params, **{flag: True})
    opt = getattr(classic, name)(params)
    with pytest.raises(ValueError, match=flag):  # a group added later is checked too
        opt.add_param_group({"params": [nn.Parameter(torch.zeros(1))], flag: True})


# --- invalid arguments: torch.optim's own message is the oracle --------------------

BAD_ARGS = {
    "SGD": [{"lr": -0.1}, {"momentum": -0.9}, {"weight_decay": -1e-2},
            {"nesterov": True}, {"momentum": 0.9, "dampening": 0.1, "nesterov": True}],
    "Adagrad": [{"lr": -0.1}, {"lr_decay": -0.5}, {"weight_decay": -0.1},
                {"initial_accumulator_value": -1.0}, {"eps": -1e-10}],
    "RMSprop": [{"lr": -0.1}, {"eps": -1e-8}, {"momentum": -0.1}, {"weight_decay": -0.1},
                {"alpha": -0.5}],
    "Adam": [{"lr": -0.1}, {"eps": -1e-8}, {"betas": (1.0, 0.999)}, {"betas": (-0.1, 0.999)},
             {"betas": (0.9, 1.0)}, {"betas": (0.9, -0.5)}, {"weight_decay": -0.1}],
}
BAD_ARGS["AdamW"] = BAD_ARGS["Adam"]
BAD_CASES = [(n, kw) for n in CLASSES for kw in BAD_ARGS[n]]


@pytest.mark.parametrize("name,kwargs", BAD_CASES,
                         ids=[f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items())}"
                              for n, kw in BAD_CASES])
def test_invalid_argument_message_equals_torch(name, kwargs):
    params = [nn.Parameter(torch.zeros(3))]
    with pytest.raises(ValueError) as torch_error:
        getattr(torch.optim, name)(params, **kwargs)
    with pytest.raises(ValueError) as our_error:
        getattr(classic, name)(params, **kwargs)
    assert str(our_error.value) == str(torch_error.value)


@pytest.mark.parametrize("name", CLASSES)
def test_invalid_value_in_a_param_group_is_rejected(name):
    good = nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="Invalid learning rate: -1.0"):
        getattr(classic, name)([{"params": [good]},
                                {"params": [nn.Parameter(torch.zeros(1))], "lr": -1.0}])


@pytest.mark.parametrize("name", CLASSES)
def test_nan_learning_rate_is_rejected(name):
    # stricter than torch.optim, which accepts lr=nan and trains on NaN
    with pytest.raises(ValueError, match="Invalid learning rate: nan"):
        getattr(classic, name)([nn.Parameter(torch.zeros(2))], lr=float("nan"))


def test_adamw_keeps_decoupled_decay_after_loading_an_adam_state():
    params = [nn.Parameter(torch.zeros(2))]
    adam_state = classic.Adam(params).state_dict()
    for cls in (classic.AdamW, torch.optim.AdamW):  # torch is the oracle for this rule
        opt = cls(params)
        opt.load_state_dict(copy.deepcopy(adam_state))
        assert opt.param_groups[0]["decoupled_weight_decay"] is True


def test_sparse_gradient_is_rejected():
    emb = nn.Embedding(5, 2, sparse=True)
    opt = classic.SGD(emb.parameters(), lr=0.1)
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="sparse"):
        opt.step()


# --- the class is the chain -------------------------------------------------------

FUNCTIONAL = [
    ("SGD", {"lr": 0.1}, lambda: optbook.sgd(0.1)),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.2, "weight_decay": 0.1},
     lambda: optbook.momentum(0.05, 0.9, dampening=0.2, weight_decay=0.1)),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True},
     lambda: optbook.nesterov(0.05, 0.9)),
    ("Adagrad", {"lr": 0.1, "initial_accumulator_value": 0.1},
     lambda: optbook.adagrad(0.1, initial_accumulator_value=0.1)),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.05},
     lambda: optbook.adagrad(lambda t: 0.1 / (1 + t * 0.05))),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "centered": True, "momentum": 0.5},
     lambda: optbook.rmsprop(0.01, decay=0.9, centered=True, momentum=0.5)),
    ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1},
     lambda: optbook.adam(0.01, weight_decay=0.1, amsgrad=True)),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1}, lambda: optbook.adamw(0.01, weight_decay=0.1)),
]


@pytest.mark.parametrize("name,kwargs,make_chain", FUNCTIONAL,
                         ids=[f"{n}-{'-'.join(k)}" for n, k, _ in FUNCTIONAL])
def test_class_equals_functional_chain(name, kwargs, make_chain):
    """The named chain run by hand on a list of tensors gives the class's parameters bit for bit."""
    start = make_net()
    net_class, net_fn = copy.deepcopy(start), copy.deepcopy(start)
    reference = getattr(classic, name)(net_class.parameters(), **kwargs)
    reference.fast_path = False  # bit for bit; test_fast_path.py holds the in-place run to 1e-12
    train(net_class, reference, steps=20)

    used = lambda net: list(net.body.parameters()) + list(net.head.parameters())  # aux has no grad
    opt = make_chain()
    params = [p.detach().clone() for p in used(net_fn)]
    state = opt.init(params)
    for t in range(20):
        with torch.no_grad():
            for p, value in zip(used(net_fn), params):
                p.copy_(value)
        grads = torch.autograd.grad(loss_fn(net_fn, t, 0), used(net_fn))
        updates, state = opt.update(list(grads), state, params)
        params = apply_updates(params, updates)
    for p, q in zip(used(net_class), params):
        assert torch.equal(p.detach(), q)
    assert max(float((q - p0.detach()).abs().max()) for q, p0 in zip(params, used(start))) > 1e-4


# --- NumPy and torch follow the same path on a landscape --------------------------

def rosenbrock_grad(p):
    """Gradient of f(x, y) = (1 - x)^2 + 100 (y - x^2)^2, for a NumPy array or a tensor."""
    x, y = p[0], p[1]
    gx = -2 * (1 - x) - 400 * x * (y - x * x)
    gy = 200 * (y - x * x)
    return np.stack([gx, gy]) if isinstance(p, np.ndarray) else torch.stack([gx, gy])


def to_numpy(p):
    return p.numpy().copy() if isinstance(p, torch.Tensor) else p.copy()


@pytest.mark.parametrize("make_chain", [
    lambda: optbook.momentum(1e-3, 0.9), lambda: optbook.nesterov(1e-3, 0.9),
    lambda: optbook.adagrad(0.1), lambda: optbook.rmsprop(1e-2, centered=True, momentum=0.5),
    lambda: optbook.adam(1e-2, amsgrad=True), lambda: optbook.adamw(1e-2, weight_decay=0.1),
], ids=["momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"])
def test_numpy_and_torch_trajectories_agree(make_chain):
    opt = make_chain()
    paths = []
    for p in (np.array([-1.5, 2.0]), torch.tensor([-1.5, 2.0], dtype=torch.float64)):
        kind = type(p)
        state = opt.init(p)
        path = [to_numpy(p)]
        for _ in range(200):
            updates, state = opt.update(rosenbrock_grad(p), state, p)
            p = apply_updates(p, updates)
            path.append(to_numpy(p))
        assert type(p) is kind  # each run stays in its own library
        paths.append(np.stack(path))
    np.testing.assert_allclose(paths[0], paths[1], rtol=1e-12, atol=1e-14)
    assert np.abs(paths[0][-1] - paths[0][0]).max() > 0.05  # the path really moved
