"""Checkpointing: 10 steps, save, load into a fresh model and optimizer, 10 more steps
must equal an uninterrupted 20-step run bit for bit (torch.equal), for every class."""
from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn

import optbook
import optbook.torch
import optbook.torch as otorch
from optbook.torch import classic
from optbook.torch.chain_optimizer import ChainOptimizer

torch.set_num_threads(1)

OPTIMIZERS = {
    "SGD": lambda ps: classic.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    "SGD-dampening": lambda ps: classic.SGD(ps, lr=0.05, momentum=0.9, dampening=0.5),
    "Adagrad": lambda ps: classic.Adagrad(ps, lr=0.1, lr_decay=0.05, initial_accumulator_value=0.1),
    "RMSprop": lambda ps: classic.RMSprop(ps, lr=0.01, momentum=0.5, centered=True),
    "Adam": lambda ps: classic.Adam(ps, lr=0.01, amsgrad=True, weight_decay=0.01),
    "AdamW": lambda ps: classic.AdamW(ps, lr=0.01, weight_decay=0.1),
    "ChainOptimizer-adamw": lambda ps: ChainOptimizer(ps, optbook.adamw(0.01, weight_decay=0.1)),
    "NAdam": lambda ps: otorch.NAdam(ps, lr=0.01, weight_decay=0.01),
    "RAdam": lambda ps: otorch.RAdam(ps, lr=0.01, decoupled_weight_decay=True, weight_decay=0.1),
    "Shampoo": lambda ps: otorch.Shampoo(ps, lr=0.01, beta2=0.9, precondition_frequency=3,
                                         block_size=4, grafting="adam", momentum=0.5),
    "SOAP": lambda ps: otorch.SOAP(ps, lr=0.01, precondition_frequency=3),
    # the usual split: matrices to Muon, the LayerNorm and biases to AdamW
    "Muon": lambda ps: otorch.Muon(_muon_groups(ps), lr=0.02, weight_decay=0.01, adamw_lr=0.01),
    "ChainOptimizer-schedule": lambda ps: ChainOptimizer(
        ps, optbook.chain(optbook.trace(0.9), optbook.scale_by_learning_rate(lambda t: 0.05 / (1 + t)))),
}


def _muon_groups(params):
    params = list(params)
    return [{"params": [p for p in params if p.ndim >= 2]},
            {"params": [p for p in params if p.ndim < 2], "use_muon": False}]


def make_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Tanh(), nn.Linear(8, 1)).double()


def batch(step):
    """A different, reproducible minibatch at every step."""
    g = torch.Generator().manual_seed(100 + step)
    x = torch.randn(16, 4, generator=g, dtype=torch.float64)
    return x, torch.sin(x.sum(dim=1, keepdim=True))


def train(net, opt, steps, scheduler=None):
    for step in steps:
        x, y = batch(step)
        opt.zero_grad()
        ((net(x) - y) ** 2).mean().backward()
        opt.step()
        if scheduler is not None:
            scheduler.step()


def roundtrip_bytes(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def assert_bit_identical(a: nn.Module, b: nn.Module):
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), name


@pytest.mark.parametrize("save", [copy.deepcopy, roundtrip_bytes], ids=["deepcopy", "torch.save"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_resume_is_bit_identical(name, save):
    make_opt = OPTIMIZERS[name]
    straight = make_net()
    train(straight, make_opt(straight.parameters()), range(20))

    first = make_net()
    opt = make_opt(first.parameters())
    train(first, opt, range(10))
    checkpoint = save({"model": first.state_dict(), "optimizer": opt.state_dict()})

    resumed = make_net()
    with torch.no_grad():  # a fresh model must really be overwritten by the checkpoint
        for p in resumed.parameters():
            p.add_(1.0)
    resumed.load_state_dict(checkpoint["model"])
    opt2 = make_opt(resumed.parameters())
    opt2.load_state_dict(checkpoint["optimizer"])
    train(resumed, opt2, range(10, 20))

    assert_bit_identical(resumed, straight)
    moved = max(float((p - q).detach().abs().max()) for p, q in zip(straight.parameters(), make_net().parameters()))
    assert moved > 1e-3


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_resume_without_the_optimizer_state_differs(name):
    """Guard for the test above: the optimizer state must matter, or bit-identity proves nothing."""
    make_opt = OPTIMIZERS[name]
    straight = make_net()
    train(straight, make_opt(straight.parameters()), range(20))
    net = make_net()
    train(net, make_opt(net.parameters()), range(10))
    train(net, make_opt(net.parameters()), range(10, 20))  # fresh state: counts and moments reset
    assert any(not torch.equal(p, q) for p, q in zip(net.parameters(), straight.parameters()))


def test_resume_with_lr_scheduler_and_param_groups():
    def setup(net):
        opt = classic.Adam([{"params": net[0].parameters(), "lr": 0.02, "weight_decay": 0.1},
                            {"params": net[3].parameters()}], lr=0.01)
        return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)

    straight = make_net()
    opt, sched = setup(straight)  # LayerNorm is in no group: it must stay untouched
    train(straight, opt, range(20), sched)

    net = make_net()
    opt, sched = setup(net)
    train(net, opt, range(10), sched)
    checkpoint = roundtrip_bytes({"model": net.state_dict(), "opt": opt.state_dict(),
                                  "sched": sched.state_dict()})
    resumed = make_net()
    resumed.load_state_dict(checkpoint["model"])
    opt2, sched2 = setup(resumed)
    opt2.load_state_dict(checkpoint["opt"])
    sched2.load_state_dict(checkpoint["sched"])
    train(resumed, opt2, range(10, 20), sched2)
    assert_bit_identical(resumed, straight)
    assert [g["lr"] for g in opt2.param_groups] == [0.02 / 32, 0.01 / 32]
    assert torch.equal(straight[1].weight, make_net()[1].weight)


def test_loaded_state_follows_the_parameter_dtype():
    """torch.optim.Optimizer.load_state_dict casts floating state to the parameter's dtype;
    the nested transform_state (dicts, tuples, lists) must survive that cast."""
    net = make_net()
    opt = classic.Adam(net.parameters(), lr=0.01, amsgrad=True)
    train(net, opt, range(3))
    net32 = make_net().float()
    opt32 = classic.Adam(net32.parameters(), lr=0.01, amsgrad=True)
    opt32.load_state_dict(opt.state_dict())
    state = opt32.state[net32[0].weight]["transform_state"]
    assert isinstance(state, tuple) and len(state) == 3
    adam_state = state[1]
    assert adam_state["count"] == 3
    assert adam_state["mu"].dtype == torch.float32 and adam_state["nu_max"].dtype == torch.float32


# --- the containers of the state dict ----------------------------------------------

def _trained(make):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3).double()
    opt = make(model.parameters())
    for _ in range(3):
        model(torch.randn(5, 4, dtype=torch.float64)).square().mean().backward()
        opt.step()
        opt.zero_grad()
    return model, opt


@pytest.mark.parametrize("make", [lambda ps: optbook.torch.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: optbook.torch.Adafactor(ps),
                                  lambda ps: optbook.torch.LAMB(ps, lr=1e-2)],
                         ids=["SGD", "Adafactor", "LAMB"])
def test_state_dict_holds_lists_and_loads_back_as_the_chains_tuples(make):
    model, opt = _trained(make)
    saved = opt.state_dict()
    for entry in saved["state"].values():
        links = entry["transform_state"]
        assert isinstance(links, list)  # torch.distributed.checkpoint walks lists, not tuples
        assert {} not in links          # and drops an empty dict inside one
    _, fresh = _trained(make)
    fresh.load_state_dict(saved)
    for p, q in zip(model.parameters(), fresh.param_groups[0]["params"]):
        a, b = opt.state[p]["transform_state"], fresh.state[q]["transform_state"]
        assert type(a) is type(b) is tuple
        assert [type(x) for x in a] == [type(x) for x in b]
    # the loaded copy takes the fast path (which needs the tuples), not the functional one
    for q in fresh.param_groups[0]["params"]:
        q.grad = torch.ones_like(q)
    fresh.step()
    assert fresh.last_step_paths["functional"] == 0
