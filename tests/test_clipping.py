"""Global-norm clipping against torch.nn.utils.clip_grad_norm_ (the oracle)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import optbook
from optbook.base import apply_updates, chain
from optbook.clipping import clip_by_global_norm, clip_grad_norm
from optbook.torch.clipping import clip_grad_norm_

torch.set_num_threads(1)

NORM_TYPES = [2.0, 1.0, math.inf, 3.0]


def make_params(scale=1.0, dtype=torch.float64, seed=0):
    """Three parameters with gradients of different shapes, plus one whose grad is None."""
    g = torch.Generator().manual_seed(seed)
    params = [nn.Parameter(torch.zeros(shape, dtype=dtype)) for shape in ((3, 4), (4,), (2, 2, 2), (5,))]
    for p in params[:3]:
        p.grad = scale * torch.randn(p.shape, generator=g, dtype=dtype)
    return params


def torch_reference(params, max_norm, norm_type, **kwargs):
    twins = [nn.Parameter(p.detach().clone()) for p in params]
    for t, p in zip(twins, params):
        t.grad = None if p.grad is None else p.grad.clone()
    total = torch.nn.utils.clip_grad_norm_(twins, max_norm, norm_type, **kwargs)
    return total, [t.grad for t in twins]


def grads_of(params):
    return [p.grad for p in params]


@pytest.mark.parametrize("norm_type", NORM_TYPES)
@pytest.mark.parametrize("max_norm", [0.1, 1.0, 1e3], ids=["above", "near", "below"])
def test_clip_grad_norm_in_place_matches_torch(norm_type, max_norm):
    params = make_params()
    ref_total, ref_grads = torch_reference(params, max_norm, norm_type)
    total = clip_grad_norm_(params, max_norm, norm_type)
    assert total.dtype == ref_total.dtype and total.shape == ref_total.shape == ()
    torch.testing.assert_close(total, ref_total, rtol=1e-13, atol=0)
    for g, r in zip(grads_of(params), ref_grads):
        if r is None:
            assert g is None
        else:
            torch.testing.assert_close(g, r, rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("norm_type", NORM_TYPES)
def test_functional_form_returns_new_arrays_and_matches_torch(norm_type):
    params = make_params()
    grads = [p.grad for p in params if p.grad is not None]
    before = [g.clone() for g in grads]
    ref_total, ref_grads = torch_reference(params, 0.5, norm_type)
    clipped, total = clip_grad_norm(grads, 0.5, norm_type)
    assert total == pytest.approx(float(ref_total), rel=1e-13)
    for c, r in zip(clipped, ref_grads):
        torch.testing.assert_close(c, r, rtol=1e-13, atol=0)
    for g, b in zip(grads, before):  # inputs untouched
        assert torch.equal(g, b)
    clipped_np, total_np = clip_grad_norm([g.numpy() for g in grads], 0.5, norm_type)  # NumPy too
    assert total_np == pytest.approx(float(ref_total), rel=1e-13)
    for c, r in zip(clipped_np, ref_grads):
        np.testing.assert_allclose(c, r.numpy(), rtol=1e-13)


def test_float32_gradients():
    params = make_params(dtype=torch.float32)
    ref_total, ref_grads = torch_reference(params, 0.5, 2.0)
    total = clip_grad_norm_(params, 0.5)
    assert total.dtype == torch.float32
    torch.testing.assert_close(total, ref_total, rtol=1e-6, atol=0)
    for g, r in zip(grads_of(params)[:3], ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-6, atol=1e-9)


def test_zero_gradients_stay_zero():
    params = make_params(scale=0.0)
    ref_total, ref_grads = torch_reference(params, 1.0, 2.0)
    total = clip_grad_norm_(params, 1.0)
    assert float(total) == float(ref_total) == 0.0
    for g, r in zip(grads_of(params)[:3], ref_grads):
        assert torch.equal(g, r) and not torch.isnan(g).any()


def test_no_gradient_at_all_and_single_tensor_and_generator():
    params = [nn.Parameter(torch.ones(2))]
    for call in (clip_grad_norm_, torch.nn.utils.clip_grad_norm_):
        total = call(params, 1.0)
        assert torch.equal(total, torch.tensor(0.0))
    single = nn.Parameter(torch.zeros(3, dtype=torch.float64))
    single.grad = torch.tensor([3.0, 4.0, 0.0], dtype=torch.float64)
    ref_total, (ref_grad,) = torch_reference([single], 1.0, 2.0)
    assert float(clip_grad_norm_(single, 1.0)) == pytest.approx(float(ref_total), rel=1e-14)
    torch.testing.assert_close(single.grad, ref_grad, rtol=1e-14, atol=0)
    net = nn.Linear(3, 2).double()
    net(torch.ones(1, 3, dtype=torch.float64)).sum().backward()
    ref_total, _ = torch_reference(list(net.parameters()), 0.1, 2.0)
    assert float(clip_grad_norm_(net.parameters(), 0.1)) == pytest.approx(float(ref_total), rel=1e-14)


@pytest.mark.parametrize("bad", [math.inf, math.nan])
def test_error_if_nonfinite(bad):
    params = make_params()
    params[1].grad[0] = bad
    with pytest.raises(RuntimeError):
        torch_reference(params, 1.0, 2.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(params, 1.0, error_if_nonfinite=True)


@pytest.mark.parametrize("bad", [math.inf, math.nan])
def test_nonfinite_gradients_scaled_like_torch_without_the_error(bad):
    params = make_params()
    params[1].grad[0] = bad
    ref_total, ref_grads = torch_reference(params, 1.0, 2.0)
    total = clip_grad_norm_(params, 1.0)
    torch.testing.assert_close(total, ref_total, equal_nan=True)
    for g, r in zip(grads_of(params)[:3], ref_grads):
        torch.testing.assert_close(g, r, equal_nan=True)


def test_invalid_arguments():
    params = make_params()
    with pytest.raises(ValueError, match="Invalid max_norm: -1.0"):
        clip_grad_norm_(params, -1.0)
    with pytest.raises(ValueError, match="Invalid norm_type: 0.0"):
        clip_grad_norm_(params, 1.0, norm_type=0.0)
    with pytest.raises(ValueError, match="Invalid max_norm"):
        clip_by_global_norm(float("nan"))


def test_transformation_inside_a_chain_matches_torch_clip_then_sgd():
    """chain(clip_by_global_norm(tau), sgd(lr)) on the whole parameter list equals
    torch.nn.utils.clip_grad_norm_ followed by torch.optim.SGD, step after step."""
    torch.manual_seed(0)
    ref_net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    x = 3 * torch.randn(16, 4, dtype=torch.float64)
    y = torch.randn(16, 1, dtype=torch.float64)
    params = [p.detach().clone() for p in ref_net.parameters()]
    opt = chain(clip_by_global_norm(0.5), optbook.sgd(0.1))
    state = opt.init(params)
    ref_opt = torch.optim.SGD(ref_net.parameters(), lr=0.1)
    norms = []
    for _ in range(10):
        ref_opt.zero_grad()
        ((ref_net(x) - y) ** 2).mean().backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(ref_net.parameters(), 0.5)))
        ref_opt.step()

        net = _functional_net(params)
        grads = torch.autograd.grad(((net(x) - y) ** 2).mean(), list(net.parameters()))
        updates, state = opt.update(list(grads), state, params)
        params = apply_updates(params, updates)
    assert max(norms) > 0.5  # clipping was active
    for p, r in zip(params, ref_net.parameters()):
        torch.testing.assert_close(p, r.detach(), rtol=1e-12, atol=1e-14)


def _functional_net(params):
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    with torch.no_grad():
        for p, value in zip(net.parameters(), params):
            p.copy_(value)
    return net


# --- the foreach implementation: same numbers as torch, no host synchronisation -------------

class _OpLog:
    """Names of the ATen ops run inside the ``with`` block (a TorchDispatchMode)."""

    def __enter__(self):
        from torch.utils._python_dispatch import TorchDispatchMode

        log = self.ops = []

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                log.append(func.overloadpacket.__name__)
                return func(*args, **(kwargs or {}))

        self._mode = Mode()
        self._mode.__enter__()
        return self

    def __exit__(self, *exc):
        self._mode.__exit__(*exc)


def many_params(n=300, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    params = [nn.Parameter(torch.zeros(7 + k % 5, 3, dtype=dtype)) for k in range(n)]
    for p in params:
        p.grad = torch.randn(p.shape, generator=g, dtype=dtype)
    return params


@pytest.mark.parametrize("foreach", [None, True, False])
@pytest.mark.parametrize("norm_type", NORM_TYPES)
def test_every_foreach_setting_matches_torch_bit_for_bit(foreach, norm_type):
    """Same kernels, same order of reduction: torch's result to the last bit, in float32."""
    params = many_params()
    ref_total, ref_grads = torch_reference(params, 1.0, norm_type, foreach=foreach)
    total = clip_grad_norm_(params, 1.0, norm_type, foreach=foreach)
    assert torch.equal(total, ref_total)
    assert all(torch.equal(g, r) for g, r in zip(grads_of(params), ref_grads))


def test_no_host_sync_and_one_norm_kernel_per_dtype():
    """aten._local_scalar_dense is the op behind float()/bool()/.item(), i.e. a wait for
    the device: none unless error_if_nonfinite asks for the check, then exactly one.
    Two dtypes make two foreach groups (foreach kernels need one dtype)."""
    params = many_params(20) + many_params(10, dtype=torch.float64, seed=1)
    with _OpLog() as log:
        clip_grad_norm_(params, 1.0)
    assert "_local_scalar_dense" not in log.ops
    assert log.ops.count("_foreach_norm") == 2 and log.ops.count("_foreach_mul_") == 2
    assert "linalg_vector_norm" in log.ops  # the norm of the 30 norms, once
    with _OpLog() as log:
        clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    assert log.ops.count("_local_scalar_dense") == 1


def test_mixed_dtypes_match_torch():
    params = many_params(5) + many_params(4, dtype=torch.float64, seed=1)
    ref_total, ref_grads = torch_reference(params, 0.5, 2.0)
    total = clip_grad_norm_(params, 0.5)
    assert total.dtype == ref_total.dtype
    torch.testing.assert_close(total, ref_total, rtol=1e-6, atol=0)
    for g, r in zip(grads_of(params), ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-6, atol=1e-9)


def test_foreach_true_where_torch_has_no_foreach_kernels():
    p = nn.Parameter(torch.zeros(3, device="meta"))
    p.grad = torch.ones(3, device="meta")
    for call in (torch.nn.utils.clip_grad_norm_, clip_grad_norm_):
        with pytest.raises(RuntimeError, match="foreach=True was passed"):
            call([p], 1.0, foreach=True)


def test_float16_norm_does_not_overflow_and_matches_torch():
    """300**2 * 4 > 65504: summing squares in float16 would overflow; a norm of norms
    (as torch and optbook compute it) gives 300 * sqrt(8), about 849."""
    params = [nn.Parameter(torch.zeros(4, dtype=torch.float16)) for _ in range(2)]
    for p in params:
        p.grad = torch.full((4,), 300.0, dtype=torch.float16)
    ref_total, ref_grads = torch_reference(params, 1.0, 2.0)
    total = clip_grad_norm_(params, 1.0)
    assert total.dtype == torch.float16 and torch.equal(total, ref_total)
    assert abs(float(total) - 300 * math.sqrt(8)) < 1.0
    assert all(torch.equal(p.grad, r) for p, r in zip(params, ref_grads))


@pytest.mark.parametrize("norm_type", NORM_TYPES)
def test_total_grad_norm_matches_torch_get_total_norm(norm_type):
    from optbook.torch.clipping import total_grad_norm

    grads = [p.grad for p in many_params(50)]
    ref = torch.nn.utils.get_total_norm(grads, norm_type)
    assert torch.equal(total_grad_norm(grads, norm_type), ref)
    assert torch.equal(total_grad_norm([], norm_type), torch.tensor(0.0))


def test_documented_differences_from_torch_on_degenerate_arguments():
    """torch accepts max_norm < 0 (it flips the gradient's sign) and norm_type = 0 or < 0;
    optbook rejects them, as its docstring says. max_norm = 0 is accepted by both and
    zeroes every gradient."""
    for kwargs in ({"max_norm": -1.0}, {"max_norm": 1.0, "norm_type": 0.0},
                   {"max_norm": 1.0, "norm_type": -1.0}):
        ref = make_params()
        torch.nn.utils.clip_grad_norm_(ref, **kwargs)          # torch: no error
        with pytest.raises(ValueError, match="Invalid (max_norm|norm_type)"):
            clip_grad_norm_(make_params(), **kwargs)
    ref = make_params()
    flipped = [p.grad.clone() for p in ref if p.grad is not None]
    torch.nn.utils.clip_grad_norm_(ref, -1.0)
    assert any((g * p.grad).sum() < 0 for g, p in zip(flipped, [p for p in ref if p.grad is not None]))
    params, ref = make_params(), make_params()
    torch.testing.assert_close(clip_grad_norm_(params, 0.0), torch.nn.utils.clip_grad_norm_(ref, 0.0))
    for p in params:
        if p.grad is not None:
            assert torch.count_nonzero(p.grad) == 0
    doc = clip_grad_norm_.__doc__
    assert "max_norm < 0" in doc and "norm_type=0" in doc
