"""NAdam and RAdam: oracles torch.optim.NAdam and torch.optim.RAdam (PyTorch 2.13), float64.

torch keeps NAdam's running product of momentum coefficients in a tensor of the
default dtype (``_get_scalar_dtype``): float32 unless the default dtype is
float64, so the oracle runs are made with ``torch.set_default_dtype(float64)``
(optbook keeps that product as a Python float).
"""
import numpy as np
import pytest
import torch

import optbook
from optbook.adam_variants import radam_rectification, scale_by_nadam, scale_by_radam
from optbook.torch import NAdam, RAdam
from optimizer_problem import (assert_numpy_matches_torch, assert_rel_close,
                              assert_resumes_bit_identically, make_problem, moved, train,
                              train_functional)

torch.set_num_threads(1)
STEPS = 25


@pytest.fixture
def float64_default():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


NADAM = [dict(), dict(lr=1e-2, weight_decay=0.1), dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True),
         dict(lr=5e-3, betas=(0.8, 0.99), momentum_decay=0.0, eps=1e-6, maximize=True)]
RADAM = [dict(), dict(lr=1e-2, weight_decay=0.1), dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True),
         dict(lr=5e-3, betas=(0.8, 0.9), eps=1e-6, maximize=True)]


CASES = [(NAdam, k) for k in NADAM] + [(RAdam, k) for k in RADAM]


@pytest.mark.parametrize("cls, kwargs", CASES, ids=[f"{c.__name__}-{k}" for c, k in CASES])
def test_matches_torch(cls, kwargs, float64_default):
    """25 steps: RAdam's first 5 are momentum SGD (rho_t <= 5), the rest rectified."""
    params0, loss_fn = make_problem()
    ours, opt = train(lambda ps: cls(ps, **kwargs), params0, loss_fn, STEPS)
    theirs, _ = train(lambda ps: getattr(torch.optim, cls.__name__)(ps, **kwargs), params0,
                      loss_fn, STEPS)
    assert moved(theirs, params0) > 1e-3
    assert_rel_close(ours, theirs, 1e-12)
    assert opt.last_step_paths["functional"] == len(params0)  # no in-place twin: functional chain


def test_radam_threshold_is_torch_s():
    # beta2 = 0.999: rho_t = 1.000, 1.999, 2.998, 3.997, 4.996, 5.994, ... -> steps 1-5 are SGD
    # (the paper's rho_t > 4 would make step 5 adaptive; torch and this module say > 5)
    assert [radam_rectification(t, 0.999) is None for t in range(1, 8)] == [True] * 5 + [False] * 2
    # rho_t tends to rho_inf, so r_t tends to 1
    assert radam_rectification(10 ** 6, 0.999) == pytest.approx(1.0, abs=1e-6)


def test_named_chains_equal_the_classes(float64_default):
    params0, loss_fn = make_problem(seed=2)
    for named, cls in ((optbook.nadam(1e-2, weight_decay=0.1), NAdam),
                       (optbook.radam(1e-2, weight_decay=0.1), RAdam)):
        functional = train_functional(named, params0, loss_fn, 12)
        ours, _ = train(lambda ps: cls(ps, lr=1e-2, weight_decay=0.1), params0, loss_fn, 12)
        assert_rel_close(ours, functional, 1e-14)


def test_numpy_matches_torch():
    assert_numpy_matches_torch(lambda: scale_by_nadam())
    assert_numpy_matches_torch(lambda: scale_by_radam(b2=0.9), steps=12)


@pytest.mark.parametrize("cls", [NAdam, RAdam])
def test_resume_is_bit_identical(cls):
    params0, loss_fn = make_problem()
    assert_resumes_bit_identically(lambda ps: cls(ps, lr=1e-2), params0, loss_fn)


@pytest.mark.parametrize("cls", [NAdam, RAdam])
def test_param_groups_have_their_own_rates(cls, float64_default):
    params0, loss_fn = make_problem(seed=1)
    torch_cls = getattr(torch.optim, cls.__name__)
    groups = lambda ps: [{"params": ps[:2]}, {"params": ps[2:], "lr": 1e-3, "weight_decay": 0.1}]
    ours, _ = train(lambda ps: cls(groups(ps), lr=1e-2), params0, loss_fn, STEPS)
    theirs, _ = train(lambda ps: torch_cls(groups(ps), lr=1e-2), params0, loss_fn, STEPS)
    assert_rel_close(ours, theirs, 1e-12)


@pytest.mark.parametrize("cls", [NAdam, RAdam])
@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-1.0), "Invalid learning rate: -1.0"),
    (dict(eps=-1e-8), "Invalid epsilon value"),
    (dict(betas=(1.0, 0.9)), "Invalid beta parameter at index 0"),
    (dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1"),
    (dict(betas=0.9), "Invalid betas"),
    (dict(weight_decay=-0.1), "Invalid weight_decay value"),
    (dict(capturable=True), "Invalid capturable value"),
])
def test_bad_arguments(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls([torch.nn.Parameter(torch.randn(2))], **kwargs)


def test_bad_momentum_decay():
    with pytest.raises(ValueError, match="Invalid momentum_decay value: -1"):
        NAdam([torch.nn.Parameter(torch.randn(2))], momentum_decay=-1)
    with pytest.raises(ValueError, match="Invalid momentum_decay value"):
        optbook.nadam(momentum_decay=float("nan"))
