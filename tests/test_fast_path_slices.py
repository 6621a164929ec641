"""The fast path's slice-by-slice run of element-wise chains computes the same iterates.

``optbook.torch.fast_path.CHUNK`` is set to a few elements here, so that every
tensor of the small test problems (the same ones as tests/test_fast_path.py)
is cut into several slices, including a short last one. The iterates must
agree with the functional chain to 1e-12 in float64, and the sliced run must
actually have happened (a spy counts it): a test that would pass with slicing
silently switched off proves nothing.
"""
from __future__ import annotations

import pytest
import torch

import optbook
from optbook.torch import ChainOptimizer, Lion, SophiaG, classic, fast_path

import test_fast_path as F
import test_lion
import test_sophia
import test_torch_classic as classic_tests
from optimizer_problem import make_problem, train

torch.set_num_threads(1)


def sliced_spy(monkeypatch):
    """A count of the tensors the fast path runs in slices (``count["tensors"]``)."""
    count = {"tensors": 0}
    original = fast_path.ChainPlan._run_in_slices

    def spy(self, p, *args):
        count["tensors"] += 1
        return original(self, p, *args)
    monkeypatch.setattr(fast_path.ChainPlan, "_run_in_slices", spy)
    return count


@pytest.fixture(autouse=True)
def sliced_runs(monkeypatch):
    """Slices of 5 elements, and a count of the tensors run in slices."""
    monkeypatch.setattr(fast_path, "CHUNK", 5)
    return sliced_spy(monkeypatch)


def in_place(make):
    """``make``, with torch's fused kernels off: the chains run as optbook's twins."""
    return F.with_mode(make, "in_place")


# every oracle setting of the five torch.optim classes, run by optbook's twins
CLASSIC = classic_tests.CONFIGS


@pytest.mark.parametrize("name,kwargs", CLASSIC, ids=[f"{n}-{'-'.join(k) or 'defaults'}"
                                                      for n, k in CLASSIC])
def test_classic_in_slices_equals_functional(name, kwargs, sliced_runs):
    reference, _ = F.run_classic(name, kwargs, "functional")
    ours, opt = F.run_classic(name, kwargs, "in_place")
    F.assert_close(ours, reference, f"{name} {kwargs} in slices")
    assert opt.last_step_paths["functional"] == 0
    assert sliced_runs["tensors"] > 0


@pytest.mark.parametrize("kwargs", test_lion.SETTINGS, ids=[str(k) for k in test_lion.SETTINGS])
def test_lion_in_slices_equals_functional(kwargs, sliced_runs):
    params0, loss_fn = make_problem()
    reference, _ = train(F.with_mode(lambda ps: Lion(ps, **kwargs), "functional"), params0, loss_fn, 25)
    ours, _ = train(in_place(lambda ps: Lion(ps, **kwargs)), params0, loss_fn, 25)
    F.assert_close(ours, reference, f"Lion {kwargs} in slices")
    assert sliced_runs["tensors"] > 0


@pytest.mark.parametrize("kwargs, k", test_sophia.SETTINGS, ids=test_sophia.IDS)
def test_sophia_in_slices_equals_functional(kwargs, k, sliced_runs):
    params0, logits_fn, loss_fn = test_sophia.make_problem()
    runs = {mode: test_sophia.run_authors_loop(
        F.with_mode(lambda ps: SophiaG(ps, bs=test_sophia.BATCH, **kwargs), mode),
        params0, logits_fn, loss_fn, test_sophia.STEPS, k)[0] for mode in ("functional", "in_place")}
    F.assert_close(runs["in_place"], runs["functional"], f"SophiaG {kwargs} in slices")
    assert sliced_runs["tensors"] > 0


@pytest.mark.parametrize("make_chain", F.CHAINS.values(), ids=F.CHAINS.keys())
def test_chains_in_slices_equal_functional(make_chain, sliced_runs):
    params0, loss_fn = make_problem()
    reference, _ = train(F.with_mode(lambda ps: ChainOptimizer(ps, make_chain()), "functional"),
                         params0, loss_fn, 20)
    ours, _ = train(in_place(lambda ps: ChainOptimizer(ps, make_chain())), params0, loss_fn, 20)
    F.assert_close(ours, reference, "in slices")
    assert sliced_runs["tensors"] > 0


def test_chains_with_a_whole_tensor_link_are_not_sliced(sliced_runs):
    """LAMB's trust ratio needs the norm of the whole tensor: never run in slices."""
    params0, loss_fn = make_problem()
    reference, _ = train(F.with_mode(lambda ps: optbook.torch.LAMB(ps, lr=1e-2), "functional"),
                         params0, loss_fn, 10)
    ours, opt = train(in_place(lambda ps: optbook.torch.LAMB(ps, lr=1e-2)), params0, loss_fn, 10)
    F.assert_close(ours, reference, "LAMB")
    assert opt.last_step_paths["in_place"] > 0 and sliced_runs["tensors"] == 0


def test_slices_cover_every_element_once(sliced_runs):
    """One RMSprop step in slices of 5 over 23 elements equals the closed form.

    Plain RMSprop would take Adagrad's fused kernel and never slice: the fused
    kernels are switched off, and the spy must have seen the sliced run.
    """
    g = torch.linspace(-2.0, 3.0, 23, dtype=torch.float64)
    p = torch.nn.Parameter(torch.zeros(23, dtype=torch.float64))
    p.grad = g.clone()
    opt = classic.RMSprop([p], lr=0.1, alpha=0.9, eps=1e-8)
    opt.fused_kernels = False
    opt.step()
    assert sliced_runs["tensors"] == 1 and opt.last_step_paths["in_place"] == 1
    expected = -0.1 * g / ((0.1 * g * g).sqrt() + 1e-8)
    assert torch.allclose(p.detach(), expected, rtol=1e-14, atol=0)
    # and the state: every element's average is (1 - alpha) g^2
    (_, rms, _), = [opt.state[p]["transform_state"]]
    assert torch.allclose(rms["square_avg"], 0.1 * g * g, rtol=1e-15, atol=0)
