"""The declarations of optbook.torch.sharding, in one process (no process group needed).

What they promise on sharded parameters is tested on a real process group in
tests/test_distributed.py; here: every class declares a kind that its chain's
links agree with, and an undeclared rule is refused with a message naming the
link.
"""
from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

import optbook
import optbook.torch as obt
from optbook.base import to_float
from optbook.torch import sharding


def _classes():
    return [c for _, c in inspect.getmembers(obt, inspect.isclass)
            if issubclass(c, obt.ChainOptimizer) and c is not obt.ChainOptimizer]


def _param():
    return torch.nn.Parameter(torch.randn(3, 4, dtype=torch.float64))


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: c.__name__)
def test_every_class_declares_what_its_rule_needs(cls):
    assert cls.sharding in (sharding.ELEMENTWISE, sharding.REDUCES, sharding.GATHER)
    opt = cls([_param()])
    transform = opt.make_transform(opt.param_groups[0])
    assert sharding.check_declaration(cls.__name__, cls.sharding, transform) == cls.sharding


@pytest.mark.parametrize("chain, kind", [
    (optbook.adamw(1e-3), "elementwise"),
    (optbook.momentum(0.1, 0.9), "elementwise"),
    (optbook.lion(1e-4), "elementwise"),
    (optbook.sophia(1e-4), "elementwise"),
    (optbook.lamb(1e-3), "reduces"),
    (optbook.adafactor(), "reduces"),
])
def test_the_kind_is_read_off_the_links(chain, kind):
    assert sharding.rule_of_chain(chain) == (kind, None)


def test_an_undeclared_link_is_refused_by_name():
    own = optbook.GradientTransformation(lambda p: {}, lambda u, s, p=None, **e: (u, s))
    for chain, named in [(optbook.chain(own, optbook.scale_by_learning_rate(0.1)), "without spec"),
                         (optbook.adamw(1e-3, mask=lambda p: True), "with a mask")]:
        kind, missing = sharding.rule_of_chain(chain)
        assert kind is None and named in missing
        with pytest.raises(sharding.ShardingError, match=f"link .*{named}.*sharding = 'gather'"):
            sharding.check_declaration("Mine", None, chain)
        # a declaration is taken at its word where the links cannot say
        assert sharding.check_declaration("Mine", "gather", chain) == "gather"


def test_declaring_less_than_a_link_needs_is_refused():
    with pytest.raises(sharding.ShardingError, match="declares sharding = 'elementwise'.*reduces"):
        sharding.check_declaration("NotLAMB", "elementwise", optbook.lamb(1e-3))
    assert sharding.check_declaration("LAMB", "gather", optbook.lamb(1e-3)) == "gather"
    with pytest.raises(ValueError, match="Invalid sharding: 'sharded'"):
        sharding.check_declaration("X", "sharded", optbook.sgd(0.1))


def test_plain_tensors_are_not_dtensors_and_to_float_reads_them():
    assert not sharding.is_dtensor(torch.zeros(2))
    assert to_float(torch.tensor(2.5)) == 2.5 and to_float(np.float64(0.5)) == 0.5
    assert sharding.settle((torch.ones(1), {"a": torch.zeros(2)}))[1]["a"].shape == (2,)


def test_muon_declares_gather_for_its_muon_groups_only():
    model = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    opt = obt.Muon(obt.muon_param_groups(model))
    kinds = {group["use_muon"]: sharding.check_declaration(
        "Muon", opt.sharding_of(group), opt.make_transform(group)) for group in opt.param_groups}
    # Newton-Schulz needs the whole matrix; the AdamW group's rule is element-wise
    assert kinds == {True: "gather", False: "elementwise"}
    # a class with one rule declares it for every group
    adam = obt.Adam(model.parameters())
    assert adam.sharding_of(adam.param_groups[0]) == "elementwise"
