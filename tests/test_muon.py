"""Muon: oracles Jordan's own package and torch.optim.Muon, plus the SVD for Newton-Schulz.

* ``muon-optimizer==0.1.0`` (module ``muon``; Keller Jordan's package, *not* the
  unrelated PyPI package named ``muon``): its ``muon_update`` and
  ``SingleDeviceMuonWithAuxAdam``. They run Newton-Schulz in bfloat16; the
  tests replace ``Tensor.bfloat16`` by a copy in the input dtype while the
  reference runs (:func:`reference_precision`), which turns the reference into
  its float32 (or float64) twin without editing a line of it. optbook's
  float32 path then equals it bit for bit.
* ``torch.optim.Muon`` (PyTorch 2.13): bfloat16 only, and its normalization is
  ``G / max(||G||_F, eps)`` where Jordan's is ``G / (||G||_F + eps)``. Without
  the bfloat16 cast the two differ by that eps alone (relative 1e-7 / ||G||_F);
  with it, by bfloat16 rounding (8 significant bits: each Newton-Schulz product
  is off by ~2^-9 relative, ~1e-2 in the orthogonalized update after 5 steps
  and 3 products each), which the tolerance below bounds.

Jordan's 0.1.0 scales a 4-D (convolution) update by its *last two* sizes
(kh / kw) and returns it in the 2-D view, which ``p.add_`` cannot take;
optbook scales by the ``out x (in kh kw)`` view it orthogonalizes and returns
the kernel's shape. The conv test compares the orthogonalized matrices, on a
shape where both scales are 1.
"""
import contextlib
import inspect

import numpy as np
import pytest
import torch
from torch import nn

import muon as jordan  # muon-optimizer==0.1.0
import optbook
from optbook.muon import (CUBIC_COEFFICIENTS, NS_COEFFICIENTS, newton_schulz,
                          newton_schulz_scalar, scale_by_muon, shape_scale_factor)
from optbook.torch import Muon, muon_param_groups
from optimizer_problem import (assert_numpy_matches_torch, assert_rel_close,
                              assert_resumes_bit_identically, classifier_problem, moved, train,
                              train_functional)

torch.set_num_threads(1)


@contextlib.contextmanager
def reference_precision():
    """While active, ``t.bfloat16()`` returns a copy of ``t`` in its own dtype."""
    original = torch.Tensor.bfloat16
    torch.Tensor.bfloat16 = lambda self: self.clone()
    try:
        yield
    finally:
        torch.Tensor.bfloat16 = original


SHAPES = [(6, 4), (4, 6), (5, 5), (1, 7), (9, 2)]


@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("dtype, ns_dtype", [(torch.float32, "float32"), (torch.float64, "float64")])
def test_direction_is_jordans_bit_for_bit(nesterov, dtype, ns_dtype):
    gen = torch.Generator().manual_seed(0)
    for shape in SHAPES:
        t = scale_by_muon(nesterov=nesterov, ns_dtype=ns_dtype)
        p = torch.zeros(shape, dtype=dtype)
        state, buf = t.init(p), torch.zeros(shape, dtype=dtype)
        for _ in range(6):
            g = torch.randn(shape, generator=gen, dtype=dtype)
            ours, state = t.update(g, state, p)
            with reference_precision():
                theirs = jordan.muon_update(g.clone(), buf, beta=0.95, nesterov=nesterov)
            assert theirs.dtype == dtype
            assert torch.equal(ours, theirs), shape


def _split(ps):
    """Matrices to Muon, the vectors and the 3-D tensor to Adam (Jordan's code would treat
    the 3-D tensor as a batch of matrices, optbook as out x rest)."""
    return [i for i, p in enumerate(ps) if p.ndim == 2], [i for i, p in enumerate(ps) if p.ndim != 2]


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_whole_optimizer_matches_single_device_muon_with_aux_adam(weight_decay):
    """float32, 25 steps. The Muon directions are equal bit for bit (test above), but the
    parameter update is written ``p + (-lr (u + wd p))`` here and ``p (1 - lr wd) - lr u``
    there (and the Adam half's division is ordered differently): 1 ulp per step, which the
    next gradients carry on. Measured: 3e-6 (wd 0) and 4e-6 (wd 0.1) relative."""
    params0, _, loss_fn = classifier_problem(seed=3)
    params0 = [p.float() for p in params0]
    loss32 = lambda ps, t: loss_fn([p.double() for p in ps], t).float()
    hidden, other = _split(params0)

    def groups(ps, ours):
        flag = "use_muon"
        g = [dict(params=[ps[i] for i in hidden], lr=0.02, momentum=0.95,
                  weight_decay=weight_decay, **{flag: True}),
             dict(params=[ps[i] for i in other], lr=3e-3, betas=(0.9, 0.95), eps=1e-10,
                  weight_decay=weight_decay, **{flag: False})]
        return g

    ours, _ = train(lambda ps: Muon(groups(ps, True)), params0, loss32, 25)
    with reference_precision():
        theirs, _ = train(lambda ps: jordan.SingleDeviceMuonWithAuxAdam(groups(ps, False)),
                          params0, loss32, 25)
    assert moved(theirs, params0) > 1e-2
    assert_rel_close(ours, theirs, 1e-5)


def _torch_run(params0, loss_fn, steps, **kwargs):
    return train(lambda ps: torch.optim.Muon(ps, **kwargs), params0, loss_fn, steps)[0]


def _matrices(seed=4, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    params0 = [0.5 * torch.randn(s, generator=gen, dtype=dtype) for s in [(8, 5), (5, 8), (6, 6)]]
    targets = [torch.randn(s, generator=gen, dtype=dtype) for s in [(8, 5), (5, 8), (6, 6)]]

    def loss_fn(ps, t):  # a different quartic-ish loss per step
        return sum(((p - (1 + 0.1 * (t % 3)) * q) ** 2).sum() + 0.1 * (p ** 4).sum()
                   for p, q in zip(ps, targets))
    return params0, loss_fn


@pytest.mark.parametrize("adjust, scale", [("original", "jordan"), ("match_rms_adamw", "moonlight")])
def test_matches_torch_optim_muon_without_bfloat16(adjust, scale):
    """float64 on both sides, 20 steps. The two normalizations, ``G / (||G|| + eps)`` and
    ``G / max(||G||, eps)``, differ by a factor 1 + eps/||G||; with eps out of the way
    (0 here, 1e-300 there) the runs agree to 1e-12, with the default eps = 1e-7 to 1e-7."""
    params0, loss_fn = _matrices()
    kw = dict(lr=0.02, weight_decay=0.1, momentum=0.95)
    for ours_eps, their_eps, tol in ((0.0, 1e-300, 1e-12), (1e-7, 1e-7, 1e-7)):
        ours, _ = train(lambda ps: Muon(ps, **kw, eps=ours_eps, shape_scale=scale,
                                        ns_dtype="float64"), params0, loss_fn, 20)
        with reference_precision():
            theirs = _torch_run(params0, loss_fn, 20, **kw, eps=their_eps, adjust_lr_fn=adjust)
        assert moved(theirs, params0) > 1e-2
        assert_rel_close(ours, theirs, tol)


def test_matches_torch_optim_muon_in_bfloat16_within_rounding():
    """torch.optim.Muon as shipped (bfloat16) against optbook's bfloat16 and float32 paths.

    Each step moves W by lr * s * O; bfloat16 (8 significant bits) changes O by ~1e-2
    relative, so after 10 steps the runs should part by about 1e-2 of the distance moved.
    Measured: 1.5e-2 for optbook's bfloat16 path (its products are ordered differently,
    so it rounds differently from torch's), 6e-3 for its float32 path; the bound is 3e-2.
    A run with another rate (0.03 instead of 0.02) is far outside it, which keeps the
    test able to fail."""
    params0, loss_fn = _matrices(dtype=torch.float32)
    theirs = _torch_run(params0, loss_fn, 10, lr=0.02, weight_decay=0.0)
    travelled = max(float((a - b).norm()) for a, b in zip(theirs, params0))
    for ns_dtype in ("bfloat16", "float32"):
        ours, _ = train(lambda ps: Muon(ps, lr=0.02, ns_dtype=ns_dtype), params0, loss_fn, 10)
        err = max(float((a - b).norm()) for a, b in zip(ours, theirs))
        assert err < 3e-2 * travelled, (ns_dtype, err, travelled)
    wrong, _ = train(lambda ps: Muon(ps, lr=0.03), params0, loss_fn, 10)
    assert max(float((a - b).norm()) for a, b in zip(wrong, theirs)) > 10 * 3e-2 * travelled


def test_torch_optim_muon_defaults_are_the_documented_trap():
    """optbook.torch.Muon's docstring says torch's defaults are lr 1e-3, decay 0.1, 'original'."""
    defaults = inspect.signature(torch.optim.Muon).parameters
    assert defaults["lr"].default == 1e-3 and defaults["weight_decay"].default == 0.1
    assert defaults["adjust_lr_fn"].default is None  # None means "original"
    assert inspect.signature(Muon).parameters["lr"].default == 0.02
    with pytest.raises(ValueError, match="2D"):
        torch.optim.Muon([nn.Parameter(torch.randn(3))])


@pytest.mark.parametrize("steps", [1, 5])
def test_newton_schulz_maps_singular_values_by_the_scalar_polynomial(steps):
    """Oracle: NumPy's SVD. NS keeps the singular vectors and sends each normalized
    singular value s to p^steps(s)."""
    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.normal(size=(7, 5)))
    v, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    s = np.array([3.0, 1.0, 0.3, 0.05, 0.001])
    G = (u * s) @ v.T
    X = newton_schulz(G, steps=steps, dtype="float64", eps=0.0)
    expected = (u * newton_schulz_scalar(s / np.linalg.norm(s), steps)) @ v.T
    np.testing.assert_allclose(X, expected, atol=1e-12)


def test_scalar_map_quintic_lifts_small_values_and_cubic_converges():
    """The numbers the module docstring quotes, on a grid of 10^5 values."""
    s = np.geomspace(2e-3, 1.0, 100_001)
    quintic = newton_schulz_scalar(s, 5)
    assert 0.68 < quintic.min() < 0.69 and 1.20 < quintic.max() < 1.21
    assert newton_schulz_scalar(1e-4, 5) / 1e-4 == pytest.approx(3.4445 ** 5, rel=1e-3)
    cubic = newton_schulz_scalar(s, 5, CUBIC_COEFFICIENTS)
    assert cubic[0] / s[0] == pytest.approx(1.5 ** 5, rel=1e-3)
    assert abs(newton_schulz_scalar(1.0, 5, CUBIC_COEFFICIENTS) - 1.0) < 1e-15  # fixed point
    assert newton_schulz_scalar(0.5, 0) == 0.5


def test_conv_kernel_is_orthogonalized_as_out_by_rest():
    gen = torch.Generator().manual_seed(1)
    g = torch.randn(4, 3, 3, 3, generator=gen, dtype=torch.float64)
    t = scale_by_muon(ns_dtype="float64")
    ours, _ = t.update(g, t.init(g), g)
    assert ours.shape == g.shape
    with reference_precision():
        theirs = jordan.muon_update(g.clone(), torch.zeros_like(g), beta=0.95)
    assert theirs.shape == (4, 27)  # the reference returns the 2-D view
    assert shape_scale_factor((4, 3, 3, 3), "jordan") == 1.0
    torch.testing.assert_close(ours.reshape(4, 27), theirs, rtol=0, atol=1e-15)
    # rows of the 4 x 27 view are (nearly) orthonormal
    rows = ours.reshape(4, 27)
    assert float((rows @ rows.T - torch.eye(4, dtype=rows.dtype)).abs().max()) < 0.35


def test_shape_scales():
    assert shape_scale_factor((8, 2), "jordan") == 2.0 and shape_scale_factor((2, 8), "jordan") == 1.0
    assert shape_scale_factor((8, 2), "moonlight") == pytest.approx(0.2 * 8 ** 0.5)
    with pytest.raises(ValueError, match="Invalid shape_scale"):
        shape_scale_factor((2, 2), "adam")


def test_numpy_matches_torch():
    assert_numpy_matches_torch(lambda: scale_by_muon(ns_dtype="float64"), shapes=((4, 3), (2, 5)))


def test_named_chain_equals_the_class_and_float32_arrays_stay_float32():
    params0, loss_fn = _matrices()
    functional = train_functional(optbook.muon(0.02, weight_decay=0.1, ns_dtype="float64"),
                                  params0, loss_fn, 8)
    ours, _ = train(lambda ps: Muon(ps, weight_decay=0.1, ns_dtype="float64"), params0, loss_fn, 8)
    assert_rel_close(ours, functional, 1e-14)
    p = np.ones((3, 2), np.float32)
    u, _ = optbook.muon().update(p, optbook.muon().init(p), p)
    assert u.dtype == np.float32


# --- param groups, the AdamW half, state, errors -------------------------------------------

class _LM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(11, 6)
        self.block = nn.Sequential(nn.Linear(6, 8), nn.GELU(), nn.Linear(8, 6), nn.LayerNorm(6))
        self.conv = nn.Conv1d(6, 6, 3, padding=1)
        self.head = nn.Linear(6, 11)

    def forward(self, tokens):
        h = self.embed(tokens)
        h = h + self.conv(h.transpose(1, 2)).transpose(1, 2)
        return self.head(self.block(h))


def test_muon_param_groups_split():
    model = _LM()
    muon_group, adamw_group = muon_param_groups(model)
    assert muon_group["use_muon"] and not adamw_group["use_muon"]
    assert muon_group["param_names"] == ["block.0.weight", "block.2.weight", "conv.weight"]
    assert set(adamw_group["param_names"]) == {
        "embed.weight", "block.0.bias", "block.2.bias", "block.3.weight", "block.3.bias",
        "conv.bias", "head.weight", "head.bias"}
    # an explicit head replaces the default (the last nn.Linear)
    names = muon_param_groups(model, head="block.2.weight")[0]["param_names"]
    assert names == ["block.0.weight", "conv.weight", "head.weight"]
    with pytest.raises(ValueError, match="Invalid head: no parameter named 'nope'"):
        muon_param_groups(model, head="nope")
    with pytest.raises(TypeError, match="Invalid model"):
        muon_param_groups([torch.zeros(2)])
    # settings for the AdamW group travel with it (ZeroRedundancyOptimizer would
    # otherwise fill its lr from Muon's); the keys the split owns are refused
    adamw_group = muon_param_groups(model, adamw=dict(lr=3e-4, weight_decay=0.0))[1]
    assert adamw_group["lr"] == 3e-4 and adamw_group["weight_decay"] == 0.0
    assert not adamw_group["use_muon"]
    opt = Muon(muon_param_groups(model, adamw=dict(lr=3e-4)), lr=0.02, adamw_lr=1e-3)
    assert [g["lr"] for g in opt.param_groups] == [0.02, 3e-4]
    with pytest.raises(ValueError, match="Invalid adamw: key 'use_muon'"):
        muon_param_groups(model, adamw=dict(use_muon=True))
    with pytest.raises(TypeError, match="Invalid adamw"):
        muon_param_groups(model, adamw=[("lr", 1e-3)])


def _lm_problem():
    torch.manual_seed(0)
    model = _LM().double()
    gen = torch.Generator().manual_seed(5)
    tokens = torch.randint(0, 11, (6, 4, 7), generator=gen)
    params0 = [p.detach().clone() for p in model.parameters()]

    def loss_fn(ps, t):
        out = torch.func.functional_call(model, dict(zip([n for n, _ in model.named_parameters()], ps)),
                                         (tokens[t % 6],))
        return nn.functional.cross_entropy(out[:, :-1].reshape(-1, 11), tokens[t % 6][:, 1:].reshape(-1))
    names = [n for n, _ in model.named_parameters()]
    return model, params0, loss_fn, names


def _groups_by_name(model, names, ps, **aux):
    by_name = dict(zip(names, ps))
    groups = muon_param_groups(model)
    return [dict(g, params=[by_name[n] for n in g["param_names"]],
                 **(aux if not g["use_muon"] else {})) for g in groups]


def test_adamw_groups_are_adamw_and_take_the_fused_fast_path():
    model, params0, loss_fn, names = _lm_problem()
    make = lambda ps: Muon(_groups_by_name(model, names, ps), lr=0.02, weight_decay=0.01,
                           adamw_lr=1e-2, adamw_weight_decay=0.1, ns_dtype="float64")
    ours, opt = train(make, params0, loss_fn, 10)
    assert moved(ours, params0) > 1e-3
    n_aux = len(muon_param_groups(model)[1]["params"])
    assert opt.last_step_paths == {"fused": n_aux, "in_place": 0, "functional": len(names) - n_aux}

    def reference(ps):
        opt = make(ps)
        opt.fast_path = False
        return opt
    functional, opt = train(reference, params0, loss_fn, 10)
    assert opt.last_step_paths["fused"] == opt.last_step_paths["in_place"] == 0
    for i, (a, b) in enumerate(zip(ours, functional)):
        assert float((a - b).abs().max()) <= 1e-12 * float(b.abs().max()), names[i]

    # the AdamW half is torch.optim.AdamW with the same group settings
    aux = [i for i, n in enumerate(names) if n in muon_param_groups(model)[1]["param_names"]]
    adamw, _ = train(lambda ps: _TwoOptimizers(ps, aux, names, model), params0, loss_fn, 10)
    for i in aux:
        torch.testing.assert_close(ours[i], adamw[i], rtol=1e-12, atol=1e-14)


class _TwoOptimizers:
    """torch.optim.AdamW for the auxiliary parameters and optbook's Muon for the rest."""

    def __init__(self, ps, aux, names, model):
        self.opts = [torch.optim.AdamW([ps[i] for i in aux], lr=1e-2, betas=(0.9, 0.95), eps=1e-10,
                                       weight_decay=0.1),
                     Muon(_groups_by_name(model, names, ps)[:1], lr=0.02, weight_decay=0.01,
                          ns_dtype="float64")]

    def zero_grad(self):
        for o in self.opts:
            o.zero_grad()

    def step(self):
        for o in self.opts:
            o.step()


def test_resume_is_bit_identical_and_lr_scheduler_scales_both_kinds():
    model, params0, loss_fn, names = _lm_problem()
    make = lambda ps: Muon(_groups_by_name(model, names, ps), adamw_lr=1e-2)
    assert_resumes_bit_identically(make, params0, loss_fn, steps=4)
    opt = make([p.clone().requires_grad_() for p in params0])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 ** (t + 1))
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.005]  # Muon 0.02, AdamW 1e-2, halved
    opt.step()
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == [0.005, 0.0025]


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(lr=-1.0), ValueError, "Invalid learning rate: -1.0"),
    (dict(momentum=1.0), ValueError, "Invalid momentum value: 1.0"),
    (dict(weight_decay=-0.1), ValueError, "Invalid weight_decay value"),
    (dict(ns_steps=-1), ValueError, "Invalid ns_steps: -1"),
    (dict(ns_steps=2.5), ValueError, "Invalid ns_steps"),
    (dict(ns_coefficients=(1.0, 2.0)), ValueError, "Invalid ns_coefficients"),
    (dict(shape_scale="adam"), ValueError, "Invalid shape_scale: 'adam'"),
    (dict(ns_dtype="float16"), ValueError, "Invalid ns_dtype: 'float16'"),
    (dict(eps=-1.0), ValueError, "Invalid epsilon value"),
    (dict(adamw_lr=-1.0), ValueError, "Invalid adamw_lr value"),
    (dict(adamw_betas=(0.9, 1.5)), ValueError, "Invalid beta parameter at index 1"),
])
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        Muon([nn.Parameter(torch.randn(3, 2))], **kwargs)


def test_vectors_in_a_muon_group_are_refused_with_their_name():
    model = nn.Linear(3, 2)
    with pytest.raises(ValueError, match=r"parameter 'bias' has shape \(2,\).*use_muon=False"):
        Muon([{"params": [model.weight, model.bias], "param_names": ["weight", "bias"]}])
    with pytest.raises(ValueError, match=r"parameter 1 has shape \(2,\)"):
        Muon(model.parameters())
    with pytest.raises(TypeError, match="Invalid use_muon"):
        Muon([{"params": [model.weight], "use_muon": "yes"}])
    with pytest.raises(ValueError, match="Muon orthogonalizes matrices"):
        scale_by_muon().init([np.ones((2, 2)), np.ones(2)])
    with pytest.raises(ValueError, match="NumPy has no bfloat16"):
        t = scale_by_muon(ns_dtype="bfloat16")
        t.update(np.ones((2, 2)), t.init(np.ones((2, 2))))
    with pytest.raises(TypeError, match="Invalid nesterov"):
        scale_by_muon(nesterov=1)
    # vectors go to AdamW groups
    opt = Muon([{"params": [model.weight]}, {"params": [model.bias], "use_muon": False}])
    assert opt.param_groups[1]["lr"] == 3e-4 and opt.param_groups[1]["eps"] == 1e-10


def test_functional_helpers_bad_input():
    with pytest.raises(ValueError, match=r"newton_schulz needs a matrix, got shape \(3,\)"):
        newton_schulz(np.ones(3))
    with pytest.raises(ValueError, match="Invalid ns_dtype: 'float16'"):
        newton_schulz(np.ones((2, 2)), dtype="float16")
    with pytest.raises(ValueError, match="Invalid steps: -1"):
        newton_schulz_scalar(0.5, steps=-1)
    with pytest.raises(ValueError, match="Invalid ns_coefficients entry 2: nan"):
        newton_schulz_scalar(0.5, coefficients=(1.0, 2.0, float("nan")))
