"""Sophia: oracle a transcription of the authors' released SophiaG; Hessian estimators
checked against exact Hessians."""
import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from optbook import apply_updates
from optbook.sophia import scale_by_sophia, sophia
from optbook.torch.hessian import gnb_hessian_estimate, hutchinson_hessian_estimate
from optbook.torch.sophia import SophiaG
from optimizer_problem import DT, STEPS, assert_rel_close, classifier_problem, moved

torch.set_num_threads(1)
BATCH = 8


def make_problem(seed=0, scale=0.5):
    """One batch more than steps: the authors' loop reads batch t + 1 for the Hessian."""
    return classifier_problem(seed, scale, batch=BATCH, batches=STEPS + 1)


def label_generator(t):
    return torch.Generator().manual_seed(1000 + t)


def sample_labels(logits, t):
    """Labels drawn from the model's own softmax (the same draws gnb_hessian_estimate makes)."""
    probs = torch.softmax(logits.detach(), dim=-1)
    return torch.multinomial(probs, 1, generator=label_generator(t)).squeeze(-1)



# --- the oracle: SophiaG as released by the authors (github.com/Liuhong99/Sophia,
# sophia.py, single-tensor path), transcribed with plain tensors -----------------------

class ReferenceSophiaG:
    def __init__(self, params, lr=1e-4, betas=(0.965, 0.99), rho=0.04, weight_decay=1e-1,
                 maximize=False):
        self.params, self.lr, self.betas, self.rho = params, lr, betas, rho
        self.weight_decay, self.maximize, self.state = weight_decay, maximize, {}

    def _state(self, p):
        if id(p) not in self.state:
            self.state[id(p)] = {"step": 0, "exp_avg": torch.zeros_like(p),
                                 "hessian": torch.zeros_like(p)}
        return self.state[id(p)]

    @torch.no_grad()
    def update_hessian(self):
        beta1, beta2 = self.betas
        for p in self.params:
            if p.grad is None:
                continue
            state = self._state(p)
            state["hessian"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)

    @torch.no_grad()
    def step(self, bs=5120):
        beta1, beta2 = self.betas
        lr, rho, weight_decay = self.lr, self.rho, self.weight_decay
        for param in self.params:
            if param.grad is None:
                continue
            grad = param.grad if not self.maximize else -param.grad
            state = self._state(param)
            exp_avg, hess = state["exp_avg"], state["hessian"]
            state["step"] += 1
            param.mul_(1 - lr * weight_decay)
            exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
            step_size_neg = -lr
            ratio = (exp_avg.abs() / (rho * bs * hess + 1e-15)).clamp(None, 1)
            param.addcmul_(exp_avg.sign(), ratio, value=step_size_neg)


def run_authors_loop(opt, params0, logits_fn, loss_fn, steps, k, step_kwargs=None,
                     estimator="grad"):
    """The authors' training loop: step, then every k-th step a GNB Hessian refresh
    from labels sampled on the next batch."""
    ps = [p.clone().requires_grad_() for p in params0]
    opt = opt(ps)
    for t in range(steps):
        for p in ps:
            p.grad = None
        loss_fn(ps, t).backward()
        opt.step(**(step_kwargs or {}))
        for p in ps:
            p.grad = None
        if t % k == k - 1:
            logits = logits_fn(ps, t + 1)
            if estimator == "grad":   # authors: backward on sampled labels, h_hat = grad^2
                F.cross_entropy(logits, sample_labels(logits, t)).backward()
                opt.update_hessian()
            else:                     # optbook: B * grad^2 from gnb_hessian_estimate
                opt.update_hessian(gnb_hessian_estimate(logits, ps, generator=label_generator(t)))
            for p in ps:
                p.grad = None
    return [p.detach().clone() for p in ps], opt


SETTINGS = [
    (dict(), 10),
    (dict(lr=1e-3, betas=(0.9, 0.95), rho=1.0, weight_decay=0.0), 2),
    (dict(lr=5e-3, betas=(0.9, 0.5), rho=20.0, weight_decay=0.2), 1),
    (dict(lr=1e-3, rho=0.5, maximize=True), 3),
]
IDS = ["defaults-k10", "k2", "large-rho-k1", "maximize-k3"]


@pytest.mark.parametrize("kwargs, k", SETTINGS, ids=IDS)
def test_matches_authors_code_with_grad_squared_estimates(kwargs, k):
    # authors' convention: update_hessian() reads grad^2, step multiplies rho by bs
    params0, logits_fn, loss_fn = make_problem()
    ours, _ = run_authors_loop(lambda ps: SophiaG(ps, bs=BATCH, **kwargs),
                               params0, logits_fn, loss_fn, STEPS, k)
    expected, _ = run_authors_loop(lambda ps: ReferenceSophiaG(ps, **kwargs), params0,
                                   logits_fn, loss_fn, STEPS, k, step_kwargs=dict(bs=BATCH))
    assert moved(expected, params0) > 1e-4
    assert_rel_close(ours, expected, 1e-10)


@pytest.mark.parametrize("kwargs, k", SETTINGS, ids=IDS)
def test_paper_scaling_with_bs_1_equals_authors_scaling(kwargs, k):
    # the paper's estimate B * grad^2 with bs = 1 is the authors' grad^2 with bs = B
    params0, logits_fn, loss_fn = make_problem(seed=1)
    ours, _ = run_authors_loop(lambda ps: SophiaG(ps, **kwargs), params0, logits_fn, loss_fn,
                               STEPS, k, estimator="gnb")
    expected, _ = run_authors_loop(lambda ps: ReferenceSophiaG(ps, **kwargs), params0,
                                   logits_fn, loss_fn, STEPS, k, step_kwargs=dict(bs=BATCH))
    assert_rel_close(ours, expected, 1e-10)


def test_both_branches_of_the_clip_occur_in_the_large_rho_setting():
    kwargs, k = SETTINGS[2]
    params0, logits_fn, loss_fn = make_problem()
    _, opt = run_authors_loop(lambda ps: SophiaG(ps, bs=BATCH, **kwargs),
                              params0, logits_fn, loss_fn, STEPS, k)
    ratios = []
    for p in opt.param_groups[0]["params"]:
        link = opt.state[p]["transform_state"][0]
        ratios.append((link["mu"].abs() / (kwargs["rho"] * BATCH * link["hessian"] + 1e-15))
                      .flatten())
    ratios = torch.cat(ratios)
    assert (ratios < 1).any() and (ratios > 1).any()


def test_functional_form_equals_class_form():
    kwargs, k = dict(lr=2e-3, betas=(0.9, 0.9), rho=2.0, weight_decay=0.1), 2
    params0, logits_fn, loss_fn = make_problem(seed=2)
    by_class, _ = run_authors_loop(lambda ps: SophiaG(ps, **kwargs), params0, logits_fn,
                                   loss_fn, STEPS, k, estimator="gnb")
    opt = sophia(2e-3, b1=0.9, b2=0.9, rho=2.0, weight_decay=0.1)
    ps = [p.clone() for p in params0]
    state, pending = opt.init(ps), None
    for t in range(STEPS):
        leaves = [p.clone().requires_grad_() for p in ps]
        grads = list(torch.autograd.grad(loss_fn(leaves, t), leaves))
        updates, state = opt.update(grads, state, ps, hessian=pending)  # fold, then step
        ps, pending = apply_updates(ps, updates), None
        if t % k == k - 1:
            leaves = [p.clone().requires_grad_() for p in ps]
            pending = gnb_hessian_estimate(logits_fn(leaves, t + 1), leaves,
                                           generator=label_generator(t))
    assert_rel_close(ps, by_class, 1e-14)


@pytest.mark.parametrize("make", [lambda: scale_by_sophia(), lambda: scale_by_sophia(0.5, 0.7, 3.0),
                                  lambda: sophia(1e-2, rho=0.5, weight_decay=0.5)])
def test_numpy_and_torch_agree(make):
    rng = np.random.default_rng(0)
    shapes = [(4, 3), (3,)]
    params_np = [rng.normal(size=s) for s in shapes]
    params_pt = [torch.tensor(p) for p in params_np]
    t_np, t_pt = make(), make()
    s_np, s_pt = t_np.init(params_np), t_pt.init(params_pt)
    for step in range(6):
        grads_np = [rng.normal(size=s) for s in shapes]
        h_np = [rng.uniform(0, 5, size=s) for s in shapes] if step % 2 else None
        h_pt = None if h_np is None else [torch.tensor(h) for h in h_np]
        u_np, s_np = t_np.update(grads_np, s_np, params_np, hessian=h_np)
        u_pt, s_pt = t_pt.update([torch.tensor(g) for g in grads_np], s_pt, params_pt,
                                 hessian=h_pt)
        for a, b in zip(u_np, u_pt):
            assert isinstance(a, np.ndarray)
            np.testing.assert_allclose(a, b.numpy(), rtol=1e-12, atol=0)


def test_without_curvature_every_coordinate_moves_by_exactly_lr():
    # h = 0 before any estimate: |m| / 1e-15 is clipped to 1, the step is lr sign(m)
    lr = 1e-3
    gen = torch.Generator().manual_seed(5)
    p = torch.randn(4, 3, generator=gen, dtype=DT, requires_grad=True)
    before = p.detach().clone()
    opt = SophiaG([p], lr=lr, weight_decay=0.0)
    p.grad = torch.randn(4, 3, generator=gen, dtype=DT)
    opt.step()
    step = (p.detach() - before).abs()
    torch.testing.assert_close(step, torch.full_like(step, lr), rtol=1e-9, atol=0)


def test_large_curvature_gives_the_unclipped_newton_like_step():
    lr, (b1, b2), rho = 1e-2, (0.9, 0.95), 0.5
    gen = torch.Generator().manual_seed(6)
    p = torch.randn(5, generator=gen, dtype=DT, requires_grad=True)
    before = p.detach().clone()
    opt = SophiaG([p], lr=lr, betas=(b1, b2), rho=rho, weight_decay=0.0)
    opt.update_hessian([torch.full((5,), 1e3, dtype=DT)])   # h = (1 - b2) * 1e3
    g = torch.randn(5, generator=gen, dtype=DT)
    p.grad = g
    opt.step()
    # m = (1 - b1) g is far below rho h, so no clipping: step = -lr m / (rho h + 1e-15)
    expected = -lr * (1 - b1) * g / (rho * (1 - b2) * 1e3 + 1e-15)
    torch.testing.assert_close(p.detach() - before, expected, rtol=1e-9, atol=0)


def test_step_never_exceeds_lr_per_coordinate():
    lr = 1e-2
    params0, logits_fn, loss_fn = make_problem(seed=3)
    ps = [p.clone().requires_grad_() for p in params0]
    opt = SophiaG(ps, lr=lr, betas=(0.9, 0.5), rho=5.0, weight_decay=0.0)
    steps = []
    for t in range(STEPS):
        before = [p.detach().clone() for p in ps]
        for p in ps:
            p.grad = None
        loss_fn(ps, t).backward()
        opt.step()
        steps.append(torch.cat([(p.detach() - b).abs().flatten() for p, b in zip(ps, before)]))
        logits = logits_fn(ps, t + 1)
        opt.update_hessian(gnb_hessian_estimate(logits, ps, generator=label_generator(t)))
    steps = torch.stack(steps) / lr
    assert float(steps.max()) <= 1 + 1e-9
    assert float(steps.min()) < 0.5  # some coordinates were not clipped


def test_state_dict_round_trip_resumes_bit_identically():
    params0, logits_fn, loss_fn = make_problem(seed=4)

    def make(ps):
        return SophiaG(ps, lr=1e-3, rho=0.5, bs=BATCH)

    mid, opt = run_authors_loop(make, params0, logits_fn, loss_fn, 10, k=3)
    saved = copy.deepcopy(opt.state_dict())
    straight, _ = run_authors_loop(make, params0, logits_fn, loss_fn, 20, k=3)

    # resume the same loop at t = 10: h is refreshed after t = 11, 14, 17 as in the straight run
    ps = [p.clone().requires_grad_() for p in mid]
    opt = make(ps)
    opt.load_state_dict(saved)
    for t in range(10, 20):
        for p in ps:
            p.grad = None
        loss_fn(ps, t).backward()
        opt.step()
        for p in ps:
            p.grad = None
        if t % 3 == 2:
            logits = logits_fn(ps, t + 1)
            F.cross_entropy(logits, sample_labels(logits, t)).backward()
            opt.update_hessian()
    for a, b in zip(ps, straight):
        assert torch.equal(a.detach(), b)


def test_update_hessian_checks_its_argument():
    p = torch.zeros(3, requires_grad=True)
    opt = SophiaG([p])
    with pytest.raises(ValueError, match="got 2 estimates for 1 parameters"):
        opt.update_hessian([torch.ones(3), torch.ones(3)])
    with pytest.raises(ValueError, match="estimate of shape"):
        opt.update_hessian([torch.ones(4)])
    opt.update_hessian([None])   # None skips the parameter
    assert len(opt.state) == 0


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (dict(betas=(1.0, 0.99)), "Invalid beta parameter at index 0: 1.0"),
    (dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (dict(betas=(0.9, 0.9, 0.9)), "Invalid betas"),
    (dict(rho=-1.0), "Invalid rho value: -1.0"),
    (dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    (dict(bs=0), "Invalid bs: 0"),
])
def test_invalid_arguments_raise_value_error(kwargs, message):
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match=message):
        SophiaG([p], **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(learning_rate=-0.1), "Invalid learning rate: -0.1"),
    (dict(b1=1.0), "Invalid beta parameter at index 0: 1.0"),
    (dict(b2=2.0), "Invalid beta parameter at index 1: 2.0"),
    (dict(rho=float("inf")), "Invalid rho value: inf"),
    (dict(weight_decay=-1.0), "Invalid weight_decay value: -1.0"),
    (dict(eps=-1e-15), "Invalid epsilon value: -1e-15"),
])
def test_functional_invalid_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sophia(**kwargs)


# --- Hessian estimators against exact Hessians ---------------------------------------

def test_hutchinson_is_exact_for_every_sample_when_the_hessian_is_diagonal():
    # f = sum a x^4 + sum b sin(W): H is diagonal, so u * (H u) = u^2 diag(H) = diag(H)
    gen = torch.Generator().manual_seed(7)
    a, b = torch.rand(4, generator=gen, dtype=DT), torch.rand(2, 3, generator=gen, dtype=DT)
    x = torch.randn(4, generator=gen, dtype=DT, requires_grad=True)
    w = torch.randn(2, 3, generator=gen, dtype=DT, requires_grad=True)
    exact = [12 * a * x.detach() ** 2, -b * torch.sin(w.detach())]
    for seed in range(3):
        loss = (a * x ** 4).sum() + (b * torch.sin(w)).sum()
        est = hutchinson_hessian_estimate(loss, [x, w],
                                          generator=torch.Generator().manual_seed(seed))
        for e, h in zip(est, exact):
            torch.testing.assert_close(e, h, rtol=1e-12, atol=1e-15)
    assert x.grad is None and w.grad is None


def test_hutchinson_average_converges_to_the_exact_diagonal():
    gen = torch.Generator().manual_seed(8)
    n = 10
    q = torch.randn(n, n, generator=gen, dtype=DT)
    a_mat, c = (q + q.T) / 2, torch.randn(n, generator=gen, dtype=DT)

    def f(z):
        return 0.5 * z @ a_mat @ z + (c * torch.cos(z)).sum() + (z[0] * z[5]) ** 2

    z0 = torch.randn(n, generator=gen, dtype=DT)
    hess = torch.autograd.functional.hessian(f, z0)
    x = z0[:4].clone().requires_grad_()
    w = z0[4:].reshape(2, 3).clone().requires_grad_()
    samples = 4000
    est = hutchinson_hessian_estimate(f(torch.cat([x, w.reshape(-1)])), [x, w],
                                      samples=samples, generator=torch.Generator().manual_seed(9))
    mean = torch.cat([e.reshape(-1) for e in est])
    # u_i (H u)_i = H_ii + sum_{j != i} H_ij u_i u_j: variance sum_{j != i} H_ij^2, exactly
    sd = ((hess ** 2).sum(1) - torch.diagonal(hess) ** 2).sqrt()
    tolerance = 5 * sd / math.sqrt(samples)
    assert torch.all((mean - torch.diagonal(hess)).abs() <= tolerance)
    assert float(tolerance.max()) < 0.2 * float(torch.diagonal(hess).abs().max())
    one = hutchinson_hessian_estimate(f(torch.cat([x, w.reshape(-1)])), [x, w],
                                      generator=torch.Generator().manual_seed(9))
    single = torch.cat([e.reshape(-1) for e in one])
    assert (single - torch.diagonal(hess)).abs().max() > 10 * tolerance.max()


def test_gnb_expectation_is_the_exact_gauss_newton_diagonal():
    # softmax regression: logits are linear in (W, c), so the Gauss-Newton matrix of the
    # mean cross-entropy *is* its Hessian (for any labels), computed here exactly
    gen = torch.Generator().manual_seed(10)
    batch, dim, classes = 6, 3, 4
    xs = torch.randn(batch, dim, generator=gen, dtype=DT)
    w0 = torch.randn(classes, dim, generator=gen, dtype=DT)
    c0 = torch.randn(classes, generator=gen, dtype=DT)
    any_labels = torch.zeros(batch, dtype=torch.long)

    def mean_ce(z):
        w, c = z[:classes * dim].reshape(classes, dim), z[classes * dim:]
        return F.cross_entropy(xs @ w.T + c, any_labels)

    z0 = torch.cat([w0.reshape(-1), c0])
    exact = torch.diagonal(torch.autograd.functional.hessian(mean_ce, z0))
    w, c = w0.clone().requires_grad_(), c0.clone().requires_grad_()
    logits = xs @ w.T + c
    sampler = torch.Generator().manual_seed(11)
    samples = 3000
    draws = torch.stack([torch.cat([e.reshape(-1) for e in gnb_hessian_estimate(
        logits, [w, c], generator=sampler, retain_graph=True)]) for _ in range(samples)])
    assert bool((draws >= 0).all())
    mean, sd = draws.mean(0), draws.std(0)
    tolerance = 5 * sd / math.sqrt(samples)
    assert torch.all((mean - exact).abs() <= tolerance)
    assert torch.all(tolerance < 0.25 * exact)   # the check has power
    assert w.grad is None and c.grad is None


def test_gnb_counts_every_leading_position_as_an_example():
    # logits of shape (2, 4, classes) are 8 examples: the same estimate as the flat (8, classes)
    gen = torch.Generator().manual_seed(12)
    w = torch.randn(3, 5, generator=gen, dtype=DT, requires_grad=True)
    unused = torch.zeros(2, dtype=DT, requires_grad=True)
    xs = torch.randn(2, 4, 5, generator=gen, dtype=DT)
    est_3d = gnb_hessian_estimate(xs @ w.T, [w, unused], generator=torch.Generator().manual_seed(1))
    est_2d = gnb_hessian_estimate(xs.reshape(8, 5) @ w.T, [w, unused],
                                  generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(est_3d[0], est_2d[0], rtol=1e-12, atol=0)
    assert est_3d[1] is None
    # and the scale is B * grad^2 of the mean loss on the sampled labels
    logits = xs.reshape(8, 5) @ w.T
    labels = torch.multinomial(torch.softmax(logits.detach(), -1), 1,
                               generator=torch.Generator().manual_seed(1)).squeeze(-1)
    (g,) = torch.autograd.grad(F.cross_entropy(logits, labels), [w])
    torch.testing.assert_close(est_2d[0], 8 * g ** 2, rtol=1e-12, atol=0)


def test_negative_hessian_estimate_paper_denominator_clips_released_flips():
    """Paper, Algorithm 3: max(rho h, eps). A negative entry (possible with Hutchinson's
    estimator) gives the full clipped step along sign(m); the released rule rho h + eps
    (the default, the contract's) turns that coordinate's step around."""
    import numpy as np
    from optbook import scale_by_sophia

    g = np.array([0.5, -0.5, 0.5])
    h_hat = np.array([-100.0, -100.0, 100.0])
    b2 = 0.99  # default: h = (1 - b2) * h_hat after one estimate
    newton = 0.5 / ((1 - b2) * 100.0)
    paper = scale_by_sophia(b1=0.0, rho=1.0, denominator="paper")
    updates, _ = paper.update(g, paper.init(np.zeros(3)), np.zeros(3), hessian=h_hat)
    np.testing.assert_allclose(updates, [1.0, -1.0, newton], rtol=1e-12)
    released = scale_by_sophia(b1=0.0, rho=1.0)
    updates, _ = released.update(g, released.init(np.zeros(3)), np.zeros(3), hessian=h_hat)
    np.testing.assert_allclose(updates, [-newton, newton, newton], rtol=1e-12)
    with pytest.raises(ValueError, match="Invalid denominator"):
        scale_by_sophia(denominator="other")


# --- Hutchinson's probe distribution: Rademacher (default) and Gaussian (the paper's) ---

def _single_sample_estimates(a_mat, distribution, draws, seed):
    """``draws`` one-sample Hutchinson estimates of diag(A) for f = z^T A z / 2 (H = A)."""
    z = torch.zeros(a_mat.shape[0], dtype=DT, requires_grad=True)
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(draws):
        (est,) = hutchinson_hessian_estimate(0.5 * z @ a_mat @ z, [z], generator=gen,
                                             distribution=distribution)
        rows.append(est)
    return torch.stack(rows)


@pytest.mark.parametrize("distribution", ["rademacher", "gaussian"])
def test_hutchinson_is_unbiased_with_the_closed_form_variance(distribution):
    gen = torch.Generator().manual_seed(11)
    n, draws = 6, 3000
    q = torch.randn(n, n, generator=gen, dtype=DT)
    a_mat = (q + q.T) / 2 + 2 * torch.eye(n, dtype=DT)
    diag, off = torch.diagonal(a_mat), (a_mat ** 2).sum(1) - torch.diagonal(a_mat) ** 2
    # u_i (A u)_i = A_ii u_i^2 + sum_{j != i} A_ij u_i u_j; Var u_i^2 is 0 (+-1) or 2 (Gaussian)
    variance = off if distribution == "rademacher" else 2 * diag ** 2 + off
    samples = _single_sample_estimates(a_mat, distribution, draws, seed=12)
    assert torch.all((samples.mean(0) - diag).abs() <= 5 * (variance / draws).sqrt())
    # the sample variance of 3000 draws is within 20 % of the closed form (its sd is ~ 5 %)
    torch.testing.assert_close(samples.var(0), variance, rtol=0.2, atol=0.0)


def test_rademacher_has_the_lower_variance_on_every_diagonal_entry():
    gen = torch.Generator().manual_seed(13)
    n = 6
    q = torch.randn(n, n, generator=gen, dtype=DT)
    a_mat = (q + q.T) / 2 + 3 * torch.eye(n, dtype=DT)
    diag = torch.diagonal(a_mat)
    rademacher = _single_sample_estimates(a_mat, "rademacher", 2000, seed=14).var(0)
    gaussian = _single_sample_estimates(a_mat, "gaussian", 2000, seed=15).var(0)
    assert torch.all(rademacher < gaussian)
    # the gap is 2 A_ii^2 in expectation (>= 2 here, with A_ii >= 1.0); measured within 30 %
    assert float(diag.min()) >= 1.0
    torch.testing.assert_close(gaussian - rademacher, 2 * diag ** 2, rtol=0.3, atol=0.0)


def test_hutchinson_rejects_an_unknown_distribution():
    z = torch.zeros(3, dtype=DT, requires_grad=True)
    with pytest.raises(ValueError, match="Invalid distribution: 'uniform'"):
        hutchinson_hessian_estimate((z ** 2).sum(), [z], distribution="uniform")
