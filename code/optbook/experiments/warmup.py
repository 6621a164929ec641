r"""Chapter 6.2 (why warmup): each proposed mechanism, measured on something small.

Every function is pure (explicit ``seed``) and returns NumPy arrays, numbers or
small dataclasses; ``book/06-warmup.ipynb`` only calls and plots, and
``tests/test_warmup_experiments.py`` checks them against closed forms or
against ``torch.optim``.

* Adam's first steps: the first update is ``eta * sign(g)``
  (:func:`first_adam_update`); the bias-corrected second moment as a weighted
  sum of chi-square(1) variables (:func:`vhat_weights`) and the *exact*
  variance of the adaptive step size ``1 / sqrt(v_hat_t)`` from its inverse
  moments (:func:`inverse_moment`, :func:`adaptive_step_variance_exact`:
  infinite at t <= 2, finite from t = 3), next to Monte-Carlo estimates
  (:func:`adaptive_step_variance`, :func:`monte_carlo_drift`, and the median
  over repetitions, :func:`monte_carlo_median`); RAdam's
  rectification ``r_t`` (:func:`radam_rectification`) and the rule-of-thumb
  warmups of Ma & Yarats (2021) (:func:`untuned_warmup`,
  :func:`warmup_rule_table`).
* A small Transformer (:class:`StackedTransformer`: Post-LN or Pre-LN, optional
  qk-layernorm, default or Xavier initialization) on a synthetic sorting task
  (:func:`sort_task`); gradient norms per layer at initialization
  (:func:`init_grad_norms`) and the Post-LN/Pre-LN ratio at the last layer
  against depth (:func:`post_pre_ratio`, :func:`last_layer_grad_norms`, Xiong et al. 2020).
* Training with and without warmup (:func:`train_transformer`, optionally
  recording the largest attention logit and the update-to-weight ratio;
  :func:`warmup_grid`; the long-horizon grid :func:`warmup_runs`), its tables
  and verdicts (:func:`print_warmup_table`, :func:`print_horizons`,
  :func:`warmup_verdicts`, :func:`pooled_counts`, :func:`distinct_counts`,
  :func:`print_mechanics`, :func:`print_ratio_over_rate`) and
  the stored-runs figure (:func:`warmup_figure`).
* Sharpness during warmup is measured in :mod:`optbook.experiments.stability` (6.3).
* Attention-logit growth (Wortsman et al. 2023): the largest attention logit
  after training against the learning rate, with and without qk-layernorm
  (:func:`warmup_grid` with ``qk_norm``), and their learning-rate sensitivity
  (:func:`lr_sensitivity`).
* The stored reruns 6.2 and 6.3 quote (:data:`RERUNS`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from torch.nn import functional as F

from .. import schedules as sch
from .reruns import Rerun
from .schedules import StackedLinear, member_adam, member_losses, stack_targets
from .training import Dataset, train

__all__ = ["first_adam_update", "adaptive_step_variance", "radam_rho", "radam_rectification",
           "untuned_warmup", "vhat_weights", "inverse_moment", "adaptive_step_variance_exact",
           "monte_carlo_drift", "monte_carlo_median", "warmup_rule_table", "sort_task", "StackedTransformer",
           "init_grad_norms", "post_pre_ratio", "last_layer_grad_norms", "warmup_runs",
           "train_transformer", "WarmupGrid", "warmup_grid", "lr_sensitivity", "warmup_figure",
           "print_warmup_table", "print_horizons", "warmup_verdicts", "print_mechanics", "pooled_counts",
           "distinct_counts", "early_ratio_over_rate", "print_ratio_over_rate",
           # stored reruns
           "warmup_grid_rerun", "post_pre_rerun", "RERUNS"]


def _int(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"Invalid {name}: {value!r} (must be an integer >= {low})")
    return int(value)


def _beta(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"Invalid {name}: {value!r} (must lie in [0, 1))")
    return float(value)


# --- Adam's first steps -------------------------------------------------------------

def first_adam_update(grad: np.ndarray, lr: float = 1e-3, b1: float = 0.9, b2: float = 0.999,
                      eps: float = 1e-8) -> np.ndarray:
    """The first update of torch.optim.Adam for gradient ``grad`` (float64).

    With bias correction m_hat_1 = g and v_hat_1 = g^2, so the update is
    ``-lr * g / (|g| + eps)``: ``-lr * sign(g)`` whatever the gradient's scale.
    """
    p = torch.zeros(np.shape(grad), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([p], lr=lr, betas=(b1, b2), eps=eps)
    p.grad = torch.as_tensor(np.asarray(grad, dtype=np.float64))
    opt.step()
    return p.detach().numpy().copy()


def adaptive_step_variance(b2: float = 0.999, steps: int = 200, samples: int = 20000,
                           seed: int = 0) -> np.ndarray:
    """Monte-Carlo variance of Adam's adaptive step size ``psi_t = 1 / sqrt(v_hat_t)``.

    Gradients are i.i.d. N(0, 1), so v_hat_t is an average of ~t squared
    Gaussians. Liu et al. (2020, RAdam): Var[psi_t] is large while few
    gradients are averaged and falls towards its limit as t grows. It is
    infinite at t = 1 *and* t = 2 (:func:`adaptive_step_variance_exact`), so
    the estimates returned there are finite only because the sample is, and
    grow with ``samples``. Returns Var over ``samples`` runs for t = 1..steps.
    """
    b2 = _beta("b2", b2)
    steps, samples = _int("steps", steps), _int("samples", samples)
    rng = np.random.default_rng(seed)
    v = np.zeros(samples)
    out = np.empty(steps)
    for t in range(1, steps + 1):
        g = rng.standard_normal(samples)
        v = b2 * v + (1 - b2) * g * g
        out[t - 1] = np.var(1.0 / np.sqrt(v / (1 - b2 ** t)))
    return out


def vhat_weights(t: int, b2: float = 0.999) -> np.ndarray:
    r"""The weights of Adam's bias-corrected second moment as a sum of squared gradients::

        v_hat_t = sum_{i=1}^t w_i g_i^2,   w_i = (1 - b2) b2^(t-i) / (1 - b2^t),   sum_i w_i = 1

    (oldest gradient first). For i.i.d. N(0, 1) gradients v_hat_t is a weighted
    sum of t independent chi-square(1) variables.
    """
    t, b2 = _int("t", t), _beta("b2", b2)
    w = (1.0 - b2) * b2 ** np.arange(t - 1, -1, -1, dtype=np.float64)
    return w / (1.0 - b2 ** t) if b2 > 0 else w


def inverse_moment(weights, power: float) -> float:
    r"""E[X^(-power)] for X = sum_i w_i Z_i^2, Z_i i.i.d. N(0, 1), w_i > 0, power in (0, 1].

    From x^(-s) = (1/Gamma(s)) int_0^inf u^(s-1) e^(-u x) du and the Laplace
    transform E[e^(-u X)] = prod_i (1 + 2 w_i u)^(-1/2)::

        E[X^-s] = (1/Gamma(s)) int_0^inf u^(s-1) prod_i (1 + 2 w_i u)^(-1/2) du.

    For large u the integrand falls like u^(s-1-t/2), so the moment is finite
    if and only if t > 2 s (t = number of weights): E[1/X] needs t >= 3,
    E[X^-1/2] needs t >= 2; ``inf`` is returned otherwise. The integral is
    taken in log u by the trapezoidal rule (the integrand is smooth and falls
    exponentially at both ends, so the rule converges geometrically).
    """
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.size == 0 or not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError(f"Invalid weights: {weights!r} (need one or more finite values > 0)")
    if isinstance(power, bool) or not isinstance(power, (int, float)) or not 0 < power <= 1:
        raise ValueError(f"Invalid power: {power!r} (must lie in (0, 1])")
    s, t = float(power), w.size
    if t <= 2 * s:
        return math.inf
    lo = -math.log(2 * w.max()) - 45.0 / s            # u^s e^0: below this, < e^-45
    hi = -math.log(2 * w.min()) + 45.0 / (t / 2 - s)  # u^(s - t/2): above this, < e^-45
    x = np.arange(lo, hi, 0.05)                       # x = log u
    log_f = s * x - 0.5 * sum(np.log1p(2 * wi * np.exp(x)) for wi in np.sort(w)[::-1])
    return float(np.trapezoid(np.exp(log_f), x) / math.gamma(s))


def adaptive_step_variance_exact(t, b2: float = 0.999) -> np.ndarray:
    r"""Exact Var[1 / sqrt(v_hat_t)] for i.i.d. N(0, 1) gradients (no Monte Carlo)::

        Var = E[1 / v_hat_t] - E[v_hat_t^(-1/2)]^2     (:func:`inverse_moment`)

    Infinite at t = 1 and t = 2 (E[1/v_hat] diverges logarithmically at t = 2),
    finite from t = 3 on. As b2 -> 1 the weights become equal, v_hat_t ->
    chi-square(t)/t, and Var -> t/(t-2) - t Gamma((t-1)/2)^2 / (2 Gamma(t/2)^2)
    (3 - 6/pi = 1.090 at t = 3).
    """
    out = []
    for ti in np.atleast_1d(np.asarray(t)).ravel():
        w = vhat_weights(int(ti), b2)
        m1 = inverse_moment(w, 1.0)
        out.append(math.inf if math.isinf(m1) else m1 - inverse_moment(w, 0.5) ** 2)
    return np.array(out) if np.ndim(t) else np.float64(out[0])


def monte_carlo_drift(t: int = 2, b2: float = 0.999, samples: Sequence[int] = (10**3, 10**4, 10**5, 10**6),
                      seed: int = 0) -> np.ndarray:
    """Monte-Carlo estimates of Var[1/sqrt(v_hat_t)] from ``samples`` draws each
    (independent streams of one seed). Where the variance is infinite (t <= 2)
    the estimates do not settle: single estimates jump about, and their typical
    value grows with the sample size (:func:`monte_carlo_median`)."""
    t, b2 = _int("t", t), _beta("b2", b2)
    w = vhat_weights(t, b2)
    rng = np.random.default_rng(seed)
    out = []
    for n in samples:
        n = _int("samples", n)
        v = np.zeros(n)
        for wi in w:
            v += wi * rng.standard_normal(n) ** 2
        out.append(np.var(1.0 / np.sqrt(v)))
    return np.array(out)


def monte_carlo_median(t: int = 2, b2: float = 0.999,
                       samples: Sequence[int] = (10**2, 10**3, 10**4, 10**5),
                       repeats: int = 100, seed: int = 0) -> dict:
    """Monte-Carlo estimates of Var[1/sqrt(v_hat_t)], each from ``samples[k]`` draws,
    repeated ``repeats`` times (independent draws of one generator): per sample size the
    ``"median"``, ``"mean"`` and ``"max"`` of the ``repeats`` estimates.

    Where the variance is infinite (t <= 2) the *typical* estimate (the median) grows
    with the sample size (at t = 2, like ln n: the squared step 1/v_hat_2 has a tail
    P(1/v_hat_2 > x) ~ c/x, and a sum of n such variables grows like n ln n), while the
    mean over repetitions is dominated by rare huge estimates. Where it is finite and
    the fourth moment too (t >= 5), the median approaches the exact value."""
    t, b2 = _int("t", t), _beta("b2", b2)
    repeats = _int("repeats", repeats)
    w = vhat_weights(t, b2)
    rng = np.random.default_rng(seed)
    med, mean, mx = [], [], []
    for n in samples:
        n = _int("samples", n)
        est = np.empty(repeats)
        for r in range(repeats):
            v = np.zeros(n)
            for wi in w:
                v += wi * rng.standard_normal(n) ** 2
            est[r] = np.var(1.0 / np.sqrt(v))
        med.append(np.median(est)); mean.append(est.mean()); mx.append(est.max())
    return {"samples": [int(n) for n in samples], "median": np.array(med),
            "mean": np.array(mean), "max": np.array(mx)}


def warmup_rule_table(b2s: Sequence[float] = (0.95, 0.98, 0.999)) -> list:
    """For each b2: the warmup 2/(1-b2) of Ma & Yarats (2021), the first step at which
    RAdam's rectification exceeds 0.5 and 0.9, and the exact Var[1/sqrt(v_hat_t)] at
    t = 3 and at t = 2/(1-b2)."""
    rows = []
    t = np.arange(1, 200001)
    for b2 in b2s:
        b2 = _beta("b2", b2)
        r = radam_rectification(t, b2)
        rule = int(round(2.0 / (1.0 - b2)))
        rows.append({"b2": b2, "rule_steps": rule, "radam_half": int(t[r > 0.5][0]),
                     "radam_09": int(t[r > 0.9][0]),
                     "var_t3": float(adaptive_step_variance_exact(3, b2)),
                     "var_rule": float(adaptive_step_variance_exact(rule, b2))})
    return rows


def radam_rho(t, b2: float = 0.999) -> np.ndarray:
    """RAdam's length of the approximated simple moving average::

        rho_inf = 2 / (1 - b2) - 1,   rho_t = rho_inf - 2 t b2^t / (1 - b2^t)
    """
    b2 = _beta("b2", b2)
    t = np.asarray(t, dtype=np.float64)
    rho_inf = 2.0 / (1.0 - b2) - 1.0
    return rho_inf - 2.0 * t * b2 ** t / (1.0 - b2 ** t)


def radam_rectification(t, b2: float = 0.999) -> np.ndarray:
    """RAdam's variance rectification r_t (0 where rho_t <= 5, as torch.optim.RAdam)::

        r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))

    For rho_t <= 5 RAdam takes an un-adapted momentum-SGD step instead; as a
    multiplier of Adam's step it is a warmup that starts at 0.
    """
    rho = radam_rho(t, b2)
    rho_inf = 2.0 / (1.0 - b2) - 1.0
    safe = np.maximum(rho, 5.0 + 1e-12)
    r = np.sqrt((safe - 4) * (safe - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * safe))
    return np.where(rho > 5.0, r, 0.0)


def untuned_warmup(t, b2: float = 0.999, kind: str = "linear") -> np.ndarray:
    """Ma & Yarats (2021) rule-of-thumb warmup factors for Adam::

        linear:       min(1, t (1 - b2) / 2)        (warm up over 2 / (1 - b2) steps)
        exponential:  1 - exp(-(1 - b2) t)
    """
    b2 = _beta("b2", b2)
    t = np.asarray(t, dtype=np.float64)
    if kind == "linear":
        return np.minimum(1.0, t * (1.0 - b2) / 2.0)
    if kind == "exponential":
        return 1.0 - np.exp(-(1.0 - b2) * t)
    raise ValueError(f"Invalid kind: {kind!r} (one of 'linear', 'exponential')")


# --- a small Transformer on a synthetic task -------------------------------------------

def sort_task(n_train: int = 4096, n_val: int = 512, length: int = 8, vocab: int = 16,
              seed: int = 0) -> Dataset:
    """Sequences of ``length`` tokens from ``vocab``; the target is the sorted sequence.

    Position i of the output must be the i-th smallest input token: every
    output needs information from every input position, so attention is
    required. ``y`` has shape (n, length); a model must return logits of
    shape (n, vocab, length) (what ``cross_entropy`` expects for sequences).
    """
    n_train, n_val = _int("n_train", n_train), _int("n_val", n_val)
    length, vocab = _int("length", length, 2), _int("vocab", vocab, 2)
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, vocab, (n_train + n_val, length), generator=g)
    y = torch.sort(x, dim=1).values
    return Dataset(x[:n_train], y[:n_train], x[n_train:], y[n_train:], vocab)


class _StackedLayerNorm(nn.Module):
    """LayerNorm over the last axis with one (weight, bias) per member (leading axis)."""

    def __init__(self, members: int, dim: int, extra_axes: int = 1):
        super().__init__()
        shape = (members,) + (1,) * extra_axes + (dim,)
        self.weight = nn.Parameter(torch.ones(shape))
        self.bias = nn.Parameter(torch.zeros(shape))

    def forward(self, x):
        return F.layer_norm(x, x.shape[-1:]) * self.weight + self.bias


class _Block(nn.Module):
    """One Transformer layer (bidirectional attention + MLP) for ``M`` stacked members.

    Post-LN (Vaswani et al. 2017):  x <- LN(x + Attn(x));  x <- LN(x + MLP(x))
    Pre-LN  (Xiong et al. 2020):    x <- x + Attn(LN(x));  x <- x + MLP(LN(x))
    ``qk_norm`` puts a LayerNorm on queries and keys per head (Wortsman et al.
    2023). ``max_logit`` keeps each member's largest |attention logit| of the
    last forward pass.
    """

    def __init__(self, d_model: int, heads: int, norm: str, qk_norm: bool, gens,
                 mlp_ratio: int = 4):
        super().__init__()
        m = len(gens)
        self.heads, self.norm, self.head_dim = heads, norm, d_model // heads
        self.qkv = StackedLinear(d_model, 3 * d_model, gens)
        self.proj = StackedLinear(d_model, d_model, gens)
        self.mlp_in = StackedLinear(d_model, mlp_ratio * d_model, gens)
        self.mlp_out = StackedLinear(mlp_ratio * d_model, d_model, gens)
        self.ln1, self.ln2 = _StackedLayerNorm(m, d_model), _StackedLayerNorm(m, d_model)
        self.q_ln = _StackedLayerNorm(m, self.head_dim, 3) if qk_norm else None
        self.k_ln = _StackedLayerNorm(m, self.head_dim, 3) if qk_norm else None
        self.max_logit = torch.zeros(m)

    def attention(self, x, batch, length):
        m, _, d = x.shape
        qkv = self.qkv(x).view(m, batch, length, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5)          # each (M, B, H, L, hd)
        if self.q_ln is not None:
            q, k = self.q_ln(q), self.k_ln(k)
        logits = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)
        self.max_logit = logits.detach().abs().reshape(m, -1).amax(1)
        out = torch.softmax(logits, dim=-1) @ v           # (M, B, H, L, hd)
        return self.proj(out.permute(0, 1, 3, 2, 4).reshape(m, batch * length, d))

    def mlp(self, x):
        return self.mlp_out(F.gelu(self.mlp_in(x)))

    def forward(self, x, batch, length):
        if self.norm == "post":
            x = self.ln1(x + self.attention(x, batch, length))
            return self.ln2(x + self.mlp(x))
        x = x + self.attention(self.ln1(x), batch, length)
        return x + self.mlp(self.ln2(x))


class StackedTransformer(nn.Module):
    """``M`` independent small Transformers (one per seed) evaluated in one pass.

    Token embedding (N(0, 1), as ``nn.Embedding``) + learned positions
    (N(0, 0.02^2)), ``layers`` blocks (MLP width ``mlp_ratio * d_model``), the usual final LayerNorm for Pre-LN,
    a linear read-out. Input tokens ``(batch, length)``; output logits
    ``(batch, vocab, length, M)``, the cross-entropy layout for targets
    ``(batch, length, M)`` (:func:`~optbook.experiments.schedules.stack_targets`).
    Member ``m`` draws all its weights from ``torch.Generator().manual_seed(seeds[m])``.
    ``init="xavier"`` replaces the linear maps' default weights (uniform in
    +-1/sqrt(fan_in), as ``nn.Linear``) by Xavier-uniform ones and zeroes their biases.
    """

    def __init__(self, seeds: Sequence[int], vocab: int = 16, length: int = 8,
                 d_model: int = 32, heads: int = 2, layers: int = 2, norm: str = "post",
                 qk_norm: bool = False, mlp_ratio: int = 2, init: str = "default"):
        super().__init__()
        if norm not in ("post", "pre"):
            raise ValueError(f"Invalid norm: {norm!r} (one of 'post', 'pre')")
        if init not in ("default", "xavier"):
            raise ValueError(f"Invalid init: {init!r} (one of 'default', 'xavier')")
        vocab, length = _int("vocab", vocab, 2), _int("length", length)
        d_model, heads, layers = _int("d_model", d_model), _int("heads", heads), _int("layers", layers)
        if d_model % heads:
            raise ValueError(f"Invalid heads: {heads} (must divide d_model={d_model})")
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise ValueError("Invalid seeds: [] (need at least one member)")
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        m = self.members = len(seeds)
        self.embed = nn.Parameter(torch.stack([torch.randn(vocab, d_model, generator=g) for g in gens]))
        self.pos = nn.Parameter(torch.stack([0.02 * torch.randn(length, d_model, generator=g)
                                             for g in gens]))
        mlp_ratio = _int("mlp_ratio", mlp_ratio)
        self.blocks = nn.ModuleList(_Block(d_model, heads, norm, qk_norm, gens, mlp_ratio)
                                    for _ in range(layers))
        self.final_ln = _StackedLayerNorm(m, d_model) if norm == "pre" else None
        self.head = StackedLinear(d_model, vocab, gens)
        if init == "xavier":
            self._xavier_(gens, d_model)

    def _xavier_(self, gens, d_model: int) -> None:
        """Xavier-uniform weights, zero biases (the initialization of Xiong et al.
        2020, whose Post-LN vs Pre-LN gradient analysis assumes it). The fused
        query-key-value map is three d x d maps, so its fan-out is d, not 3d.
        Drawn after the default weights, from the same per-member generators."""
        with torch.no_grad():
            for module in self.modules():
                if not isinstance(module, StackedLinear):
                    continue
                fan_in, fan_out = module.weight.shape[1:]
                if module is not self.head and fan_out == 3 * d_model and fan_in == d_model:
                    fan_out = d_model
                bound = math.sqrt(6.0 / (fan_in + fan_out))
                for m, g in enumerate(gens):
                    w = torch.rand(module.weight.shape[1:], generator=g)
                    module.weight[m] = (2 * w - 1) * bound
                module.bias.zero_()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        batch, length = tokens.shape
        x = self.embed[:, tokens] + self.pos[:, None, :length]        # (M, B, L, d)
        x = x.reshape(self.members, batch * length, -1)
        for block in self.blocks:
            x = block(x, batch, length)
        if self.final_ln is not None:
            x = self.final_ln(x)
        logits = self.head(x).view(self.members, batch, length, -1)
        return logits.permute(1, 3, 2, 0)

    def max_attention_logit(self) -> np.ndarray:
        """Each member's largest |attention logit| in the last forward pass, over all layers."""
        return torch.stack([b.max_logit for b in self.blocks]).amax(0).numpy()


# --- gradient norms at initialization -----------------------------------------------------

def init_grad_norms(norm: str, layers: int, data: Dataset, seeds: Sequence[int] = (0, 1, 2),
                    batch: int = 256, **model_kwargs) -> np.ndarray:
    """Gradient norm of each layer's parameters at initialization, shape (seeds, layers).

    One batch of the task, cross-entropy; the norm is over all parameters of
    a block (attention, MLP and its LayerNorms). Xiong et al. (2020): for
    Post-LN the gradients of the last layers are large and do not shrink with
    depth; for Pre-LN they scale like 1/sqrt(layers).
    """
    model = StackedTransformer(seeds, vocab=data.classes, length=data.x_train.shape[1],
                               layers=layers, norm=norm, **model_kwargs)
    y = data.y_train[:batch].unsqueeze(-1).expand(-1, -1, len(seeds))
    # sum over members of each member's mean loss: block-diagonal gradients
    loss = F.cross_entropy(model(data.x_train[:batch]), y, reduction="none").mean((0, 1)).sum()
    loss.backward()
    out = np.empty((len(seeds), layers))
    for i, block in enumerate(model.blocks):
        sq = sum(p.grad.reshape(len(seeds), -1).pow(2).sum(1) for p in block.parameters())
        out[:, i] = sq.sqrt().numpy()
    return out


def post_pre_ratio(depths: Sequence[int], data: Dataset, seeds: Sequence[int] = (0, 1, 2),
                   init: str = "default", batch: int = 256) -> np.ndarray:
    """Post-LN over Pre-LN gradient norm *at the last layer*, at initialization, per seed
    and depth: shape (seeds, depths).

    The comparison of Xiong et al. (2020, Fig. 3): the same depth, one model of each
    kind, the last block's gradient norm (:func:`init_grad_norms`). Their mean-field
    argument, made for Xavier initialization (``init="xavier"``), predicts that the
    ratio grows like sqrt(L): Post-LN's last-layer gradient does not shrink with depth,
    Pre-LN's scales like 1/sqrt(L). Member s of both models is drawn from seed s.
    """
    out = np.empty((len(seeds), len(depths)))
    for d, layers in enumerate(depths):
        post = init_grad_norms("post", layers, data, seeds=seeds, batch=batch, init=init)
        pre = init_grad_norms("pre", layers, data, seeds=seeds, batch=batch, init=init)
        out[:, d] = post[:, -1] / pre[:, -1]
    return out


def last_layer_grad_norms(depths: Sequence[int], data: Dataset, seeds: Sequence[int] = (0, 1, 2),
                          init: str = "default", batch: int = 256) -> dict:
    """The last block's gradient norm at initialization (:func:`init_grad_norms`), per seed
    and depth, for Post-LN and Pre-LN: ``{"post": (seeds, depths), "pre": (seeds, depths)}``.
    ``post / pre`` is :func:`post_pre_ratio`; the absolute norms show *how* the ratio
    arises (Xiong et al. 2020 bound Post-LN's last-layer gradient independently of
    depth, Pre-LN's by a 1/sqrt(L) term)."""
    out = {"post": np.empty((len(seeds), len(depths))), "pre": np.empty((len(seeds), len(depths)))}
    for d, layers in enumerate(depths):
        for norm in ("post", "pre"):
            out[norm][:, d] = init_grad_norms(norm, layers, data, seeds=seeds, batch=batch,
                                              init=init)[:, -1]
    return out


# --- training with and without warmup ----------------------------------------------------------

@dataclass
class WarmupGrid:
    """Final validation loss/accuracy, shape (warmups, lrs, seeds), and loss curves."""

    norm: str
    warmups: tuple
    lrs: tuple
    seeds: tuple
    val_loss: np.ndarray
    val_accuracy: np.ndarray
    eval_steps: np.ndarray
    curves: np.ndarray            # (warmups, lrs, seeds, evals) validation loss
    max_logit: np.ndarray         # (warmups, lrs, seeds) after training


def train_transformer(schedules: Sequence, seeds: Sequence[int], data: Dataset, *, steps: int,
                      norm: str = "post", qk_norm: bool = False, layers: int = 2,
                      batch_size: int = 32, eval_every: int = 25, b2: float = 0.999,
                      batch_seed: Optional[int] = None, history: Optional[dict] = None, **kw):
    """Train one stacked Transformer, member m with Adam at rate ``schedules[m](t)``.

    Returns (model, final val loss (M,), final val accuracy (M,), eval steps,
    val-loss curves (evals, M)). All members see the same batches, drawn from
    ``batch_seed`` (default ``seeds[0]``); seed m sets member m's initial weights.

    ``history``, if a dict, receives per evaluation (shape (evals, M)):
    ``"max_logit"``, each member's largest |attention logit| on the validation
    set, and ``"update_ratio"``, the mean over the steps since the previous
    evaluation of ||theta_t - theta_(t-1)|| / ||theta_(t-1)|| (all parameters
    of the member; a frozen, diverged member has ratio 0).
    """
    seeds = [int(s) for s in seeds]
    if batch_seed is not None and (isinstance(batch_seed, bool) or
                                   not isinstance(batch_seed, (int, np.integer))):
        raise ValueError(f"Invalid batch_seed: {batch_seed!r} (an integer or None)")
    if history is not None and not isinstance(history, dict):
        raise TypeError(f"Invalid history: {type(history).__name__} (a dict or None)")
    model = StackedTransformer(seeds, vocab=data.classes, length=data.x_train.shape[1],
                               layers=layers, norm=norm, qk_norm=qk_norm, **kw)
    m = len(seeds)
    stacked = stack_targets(data, m)
    rates = np.stack([s(np.arange(steps)) for s in schedules], axis=1)
    optimizer = member_adam(model.parameters(), rates, b2=b2)
    evals, curves, logits_seen, ratios = [], [], [], []
    params = list(model.parameters())
    before = [p.detach().clone() for p in params] if history is not None else None
    ratio_sum = torch.zeros(m, dtype=torch.float64)

    def record(t):
        nonlocal ratio_sum
        if before is not None:
            with torch.no_grad():
                d2 = sum((p - b).reshape(m, -1).double().pow(2).sum(1) for p, b in zip(params, before))
                w2 = sum(b.reshape(m, -1).double().pow(2).sum(1) for b in before)
                ratio_sum += torch.nan_to_num(d2.sqrt() / w2.sqrt(), nan=0.0, posinf=0.0)
                for p, b in zip(params, before):
                    b.copy_(p)
        if (t + 1) % eval_every == 0:
            evals.append(t + 1)
            curves.append(member_losses(model, stacked.x_val, stacked.y_val))
            if before is not None:
                logits_seen.append(model.max_attention_logit().astype(np.float64))
                ratios.append((ratio_sum / eval_every).numpy().copy())
                ratio_sum = torch.zeros(m, dtype=torch.float64)

    train(model, optimizer, stacked, steps=steps, batch_size=batch_size, eval_every=steps,
          seed=seeds[0] if batch_seed is None else int(batch_seed), on_step=record)
    if history is not None:
        history["max_logit"] = np.array(logits_seen).reshape(-1, m)
        history["update_ratio"] = np.array(ratios).reshape(-1, m)
    with torch.no_grad():
        logits = model(stacked.x_val)
        acc = (logits.argmax(1) == stacked.y_val).float().reshape(-1, len(seeds)).mean(0).numpy()
    loss = member_losses(model, stacked.x_val, stacked.y_val)
    return model, loss, acc, np.array(evals), np.array(curves)


def warmup_grid(norm: str, warmups: Sequence[int], lrs: Sequence[float], seeds: Sequence[int],
                data: Dataset, *, steps: int = 300, **kw) -> WarmupGrid:
    """Adam with linear warmup over ``w`` steps to ``lr``, then constant, for every
    (w, lr, seed): all in one stacked model. ``w = 0`` is no warmup."""
    where = [(i, j, k) for i in range(len(warmups)) for j in range(len(lrs))
             for k in range(len(seeds))]
    schedules = [sch.linear_warmup(lrs[j], warmups[i]) for i, j, _ in where]
    model, loss, acc, evals, curves = train_transformer(
        schedules, [seeds[k] for *_, k in where], data, steps=steps, norm=norm, **kw)
    shape = (len(warmups), len(lrs), len(seeds))
    return WarmupGrid(norm, tuple(warmups), tuple(lrs), tuple(seeds), loss.reshape(shape),
                      acc.reshape(shape), evals, curves.T.reshape(shape + (len(evals),)),
                      model.max_attention_logit().reshape(shape))


def lr_sensitivity(final_loss: np.ndarray, init_loss: float) -> float:
    """Wortsman et al. (2023)'s learning-rate sensitivity of one configuration::

        E_eta[ min(L(eta), L_0) - min_eta L(eta) ]

    ``final_loss`` has shape (lrs, seeds): the mean over seeds at each rate is
    capped at the loss at initialization ``init_loss`` (a diverged run counts
    as "learned nothing") and compared with the best rate's. 0 means every
    rate of the sweep is as good as the best.
    """
    loss = np.nan_to_num(np.asarray(final_loss, dtype=float).mean(axis=-1), nan=np.inf)
    capped = np.minimum(loss, init_loss)
    return float(np.mean(capped - capped.min()))


def _arr(x) -> np.ndarray:
    """A stored (JSON) nested list as floats, null -> nan."""
    return np.array(x, dtype=float)


NEAR_CHANCE = 2.2
"""A final validation loss above this counts as "near chance" (ln 16 = 2.77): the run
learned almost nothing."""

NOT_TRAINED = 1.0
"""A final validation loss above this counts as "not trained": the good runs of the grid
end below 0.5."""


def print_warmup_table(record: dict, norm: str, note: str = "") -> None:
    """The final validation loss of a :func:`warmup_runs` record, min–max over seeds, one
    row per peak rate and one column per warmup length (``diverged`` for a non-finite
    loss). ``note`` is added to the title line."""
    r = _arr(record["runs"][norm]["val_loss"])            # (warmups, lrs, seeds)
    warmups, lrs = record["warmups"], record["lrs"]
    print(f"{norm.capitalize()}-LN, {record['steps']} steps, seeds {record['seeds']}, batch order "
          f"{record['batch_seed']}{note}: final validation loss, min–max over seeds")
    print(f"{'':>10}" + "".join(f"{f'warmup {w}':>14}" for w in warmups))
    for j, lr in enumerate(lrs):
        cells = []
        for i in range(len(warmups)):
            v = r[i, j]
            cells.append(f"{'diverged':>14}" if not np.all(np.isfinite(v)) else
                         f"{v.min():>9.2f}–{v.max():.2f}")
        print(f"{f'η = {lr:g}':>10}" + "".join(cells))


def print_horizons(record: dict, norm: str = "post", lr: float = 3e-2,
                   at: Sequence[int] = (200, 1000)) -> None:
    """The validation loss of one peak rate's runs at several steps of the same runs
    (min–max over seeds), from the stored curves: what a shorter run would have shown."""
    curves = _arr(record["runs"][norm]["loss_curves"])    # (warmups, lrs, seeds, evals)
    evals, j = list(record["eval_steps"]), record["lrs"].index(lr)
    print(f"{norm.capitalize()}-LN, η = {lr:g}: validation loss after ... steps of the same runs")
    print(f"{'':>12}" + "".join(f"{f'{s} steps':>14}" for s in at))
    for i, w in enumerate(record["warmups"]):
        row = [curves[i, j, :, evals.index(s)] for s in at]
        print(f"{f'warmup {w}':>12}" + "".join(f"{v.min():>9.2f}–{v.max():.2f}" for v in row))


def warmup_verdicts(record: dict, norm: str, lr: float = 3e-2) -> list:
    """What the prose relies on, in words that survive a change of CPU kernels.

    For peak ``lr``: how many seeds end near chance, and how many above
    :data:`NOT_TRAINED`, with each warmup; the best
    configuration without warmup and the best with any warmup (lowest mean over seeds,
    every stored rate), and whether their seed ranges overlap."""
    r = _arr(record["runs"][norm]["val_loss"])
    r = np.where(np.isfinite(r), r, np.inf)
    warmups, lrs, n = record["warmups"], record["lrs"], r.shape[-1]
    j = lrs.index(lr)
    name = f"{norm.capitalize()}-LN (batch order {record['batch_seed']})"
    lines = [f"verdict: {name}, η = {lr:g}: seeds near chance (loss > {NEAR_CHANCE}): "
             + ", ".join(f"{int((r[i, j] > NEAR_CHANCE).sum())}/{n} with warmup {w}"
                         for i, w in enumerate(warmups)),
             f"verdict: {name}, η = {lr:g}: seeds not trained (loss > {NOT_TRAINED}): "
             + ", ".join(f"{int((r[i, j] > NOT_TRAINED).sum())}/{n} with warmup {w}"
                         for i, w in enumerate(warmups))]
    mean = r.mean(-1)
    b0 = int(np.argmin(mean[0]))
    iw, jw = np.unravel_index(np.argmin(mean[1:]), mean[1:].shape)
    a, b = r[0, b0], r[1 + iw, jw]
    overlap = a.min() <= b.max() and b.min() <= a.max()
    lines.append(f"verdict: {name}: best without warmup η = {lrs[b0]:g}; best with warmup "
                 f"{warmups[1 + iw]} at η = {lrs[jw]:g}; their seed ranges overlap: "
                 f"{'yes' if overlap else 'no'}")
    lines.append(f"verdict: {name}: final loss of those two, min–max over seeds: "
                 f"{a.min():.2f}–{a.max():.2f} without warmup, {b.min():.2f}–{b.max():.2f} with")
    return lines


def pooled_counts(records: Sequence[dict], norm: str, lr: float, threshold: float) -> str:
    """Over several :func:`warmup_runs` records (other seeds, other batch orders), for each
    warmup length they all share: how many runs at peak ``lr`` end above ``threshold``,
    and the worst final loss. One line, e.g. for the prose's "k of 9 runs"."""
    common = [w for w in records[0]["warmups"] if all(w in r["warmups"] for r in records)]
    parts = []
    for w in common:
        v = np.concatenate([_arr(r["runs"][norm]["val_loss"])[r["warmups"].index(w),
                                                               r["lrs"].index(lr)]
                            for r in records])
        v = np.where(np.isfinite(v), v, np.inf)
        parts.append(f"{int((v > threshold).sum())}/{v.size} with warmup {w} (worst {v.max():.2f})")
    total = sum(len(r["seeds"]) for r in records)
    return (f"{norm.capitalize()}-LN, η = {lr:g}, {total} runs of {len(records)} grids: ending above "
            f"{threshold:g}: " + ", ".join(parts))


def distinct_counts(records: Sequence[dict], norm: str, lr: float, threshold: float,
                    replica: Optional[dict] = None, replaces: int = 0) -> str:
    """Counts over *distinct* runs: ``records`` must not share a (seed, batch order) pair.
    For each warmup length they all share, how many runs at peak ``lr`` end above
    ``threshold`` — and, if ``replica`` is given (the same seeds, batch order and schedules
    as ``records[replaces]``, trained again with different float rounding), the same count
    with the replica's runs in place of the originals. A rounding replica is not an
    independent draw, so it never adds to the number of runs. One line, for the prose's
    "k of 9 distinct runs (the rounding replica gives k')"."""
    if not records:
        raise ValueError("Invalid records: empty (need at least one warmup_runs record)")
    pairs = [(int(s), r["batch_seed"]) for r in records for s in r["seeds"]]
    if len(set(pairs)) != len(pairs):
        dup = sorted({p for p in pairs if pairs.count(p) > 1})
        raise ValueError(f"Invalid records: runs (seed, batch order) {dup} appear twice; "
                         "pass a rounding replica as replica=, not as a record")
    if replica is not None:
        if not 0 <= replaces < len(records):
            raise ValueError(f"Invalid replaces: {replaces!r} (an index into records)")
        orig = records[replaces]
        if list(replica["seeds"]) != list(orig["seeds"]) or replica["batch_seed"] != orig["batch_seed"]:
            raise ValueError(f"Invalid replica: seeds {replica['seeds']}, batch order "
                             f"{replica['batch_seed']} differ from records[{replaces}] "
                             f"(seeds {orig['seeds']}, batch order {orig['batch_seed']})")
    every = list(records) + ([replica] if replica is not None else [])
    common = [w for w in records[0]["warmups"] if all(w in r["warmups"] for r in every)]

    def final(r, w):
        v = _arr(r["runs"][norm]["val_loss"])[r["warmups"].index(w), r["lrs"].index(lr)]
        return np.where(np.isfinite(v), v, np.inf)

    parts = []
    for w in common:
        v = np.concatenate([final(r, w) for r in records])
        part = f"{int((v > threshold).sum())}/{v.size} with warmup {w}"
        if replica is not None:
            alt = np.concatenate([final(replica if i == replaces else r, w)
                                  for i, r in enumerate(records)])
            part += f" (replica: {int((alt > threshold).sum())}/{alt.size})"
        parts.append(part)
    return (f"{norm.capitalize()}-LN, η = {lr:g}, {len(pairs)} distinct runs (seed x batch order), "
            f"ending above {threshold:g}: " + ", ".join(parts))


def early_ratio_over_rate(record: dict, norm: str = "post", lr: float = 3e-2) -> np.ndarray:
    """The update-to-weight ratio over the first evaluation window of a :func:`warmup_runs`
    record with curves (the mean over steps 1..E, E = ``eval_steps[0]``), divided by the
    mean learning rate of the linear warmup over the same steps: shape (warmups, seeds).

    Adam's update of each weight is about eta_t in size whatever the gradient, so this
    ratio is close to a constant times eta_t: a quotient that varies little across
    warmup lengths means the ratio curve mostly redraws the schedule."""
    if "ratio_curves" not in record["runs"][norm]:
        raise ValueError(f"Invalid record: no ratio_curves for norm {norm!r} (run with curves=True)")
    first = int(record["eval_steps"][0])
    j = record["lrs"].index(lr)
    ratio = _arr(record["runs"][norm]["ratio_curves"])[:, j, :, 0]
    mean_lr = np.array([sch.linear_warmup(lr, w)(np.arange(first)).mean()
                        for w in record["warmups"]])
    return ratio / mean_lr[:, None]


def print_ratio_over_rate(record: dict, norm: str = "post", lrs: Sequence[float] = (3e-2,)) -> None:
    """Print :func:`early_ratio_over_rate`, min–max over seeds, per warmup and peak rate."""
    first = int(record["eval_steps"][0])
    print(f"{norm.capitalize()}-LN: update-to-weight ratio over steps 1–{first} / mean η over "
          f"the same steps, min–max over seeds")
    for lr in lrs:
        q = early_ratio_over_rate(record, norm, lr)
        print(f"  η = {lr:g}: " + ", ".join(f"warmup {w}: {q[i].min():.2f}–{q[i].max():.2f}"
                                            for i, w in enumerate(record["warmups"])))


def print_mechanics(record: dict, norm: str = "post", lr: float = 3e-2,
                    at: Sequence[int] = (50, 200, 1000)) -> None:
    """For one peak rate of a :func:`warmup_runs` record with curves: the largest attention
    logit and the update-to-weight ratio (times 1000), min–max over seeds, at the steps
    ``at``, one row per warmup length."""
    run, evals = record["runs"][norm], list(record["eval_steps"])
    j = record["lrs"].index(lr)
    logit, ratio = _arr(run["logit_curves"])[:, j], _arr(run["ratio_curves"])[:, j]
    cols = [evals.index(s) for s in at]
    print(f"{norm.capitalize()}-LN, η = {lr:g}: largest |attention logit| and update-to-weight "
          f"ratio per step x 1000, min–max over seeds, at steps {', '.join(map(str, at))}")
    for i, w in enumerate(record["warmups"]):
        lg = " ".join(f"{np.nanmin(logit[i, :, c]):>5.0f}–{np.nanmax(logit[i, :, c]):<5.0f}"
                      for c in cols)
        rt = " ".join(f"{1e3 * np.nanmin(ratio[i, :, c]):>5.1f}–{1e3 * np.nanmax(ratio[i, :, c]):<5.1f}"
                      for c in cols)
        print(f"  warmup {w:>3}: logit {lg}   ratio x 1000 {rt}")


def warmup_figure(record: dict, norm: str = "post", lr: float = 3e-2, warmup: int = 300,
                  vocab: int = 16):
    r"""The warmup figure of 6.2, drawn in the page from :func:`warmup_runs`'s stored curves
    (:func:`optbook.figures.curves_figure`).

    A menu for the layer norm and sliders that snap to the stored peak rates and warmup
    lengths; three panels over the steps: the validation loss, the largest attention
    logit and the update-to-weight ratio ||Delta theta|| / ||theta|| of each seed (mean
    thick), with the same peak rate without warmup in grey and the end of the warmup
    marked. ``record`` is the ``results`` of the rerun (``reruns.load(...)["results"]``).
    """
    from ..figures import Axis, Mark, Panel, Series, curves_figure

    runs, warmups, lrs = record["runs"], list(record["warmups"]), list(record["lrs"])
    norms = [n for n in ("post", "pre") if n in runs]
    if not norms or "loss_curves" not in runs[norms[0]]:
        raise ValueError("Invalid record: no stored curves (use warmup_runs(..., curves=True))")
    if warmups[0] != 0:
        raise ValueError(f"Invalid record: first warmup {warmups[0]} (must be 0, the reference)")
    if norm not in norms or lr not in lrs or warmup not in warmups:
        raise ValueError(f"Invalid default: norm={norm!r}, lr={lr!r}, warmup={warmup!r} "
                         f"(norms {norms}, rates {lrs}, warmups {warmups})")
    evals = [int(e) for e in record["eval_steps"]]
    steps = evals[-1]
    kinds = ("loss_curves", "logit_curves", "ratio_curves")
    curves = {n: {k: _arr(runs[n][k]) for k in kinds} for n in norms}
    labels = {"post": "Post-LN", "pre": "Pre-LN"}

    def data(lr, warmup, norm=norm):
        i, j = warmups.index(warmup), lrs.index(lr)
        out = []
        for k in kinds:
            panel = {"run": curves[norm][k][i, j]}
            if warmup:
                panel["reference"] = curves[norm][k][0, j]
            out.append(panel)
        return out

    def marks(lr, warmup, norm=norm):
        end = [Mark("vline", x=warmup, text="warmup ends")] if warmup else []
        return [end + [Mark("hline", y=math.log(vocab), text="chance")], end, end]

    return curves_figure(
        data,
        axes=([Axis("norm", "layer norm", norms, labels=[labels[n] for n in norms], default=norm)]
              if len(norms) > 1 else []) +
             [Axis("lr", "peak η", lrs, default=lr),
              Axis("warmup", "warmup steps", warmups, default=warmup)],
        panels=[Panel("validation loss", x=evals, ylabel="cross-entropy (nats)",
                      xlim=(0, steps), ylim=(0, 3.0)),
                Panel("largest attention logit", x=evals, ylabel="max |q·k|/√d_h",
                      xlim=(0, steps), yscale="log", ylim=(1, 1e7)),
                Panel("update-to-weight ratio", x=evals, ylabel="‖Δθ‖/‖θ‖ per step",
                      xlim=(0, steps), yscale="log", ylim=(3e-4, 0.1))],
        series=[Series("run", "selected warmup", color="#1f77b4"),
                Series("reference", "no warmup, same peak η", reference=True)],
        marks=marks,
        title="A small Transformer with and without warmup: loss, attention logits, update size",
        headline=("{norm}" if len(norms) > 1 else labels[norm]) +
                 ", peak η = {lr}, warmup {warmup} steps, " + f"{steps} steps, "
                 f"{len(record['seeds'])} seeds (grey: no warmup)")


# --- stored reruns (scripts/reruns.py; book/data/reruns/06-*.json) -----------------------------
# The checks 6.2 and 6.3 quote but cannot afford in their minute: the 1,000-step warmup grid
# (with its curves, for the figure) on three seeds x three batch orders, the Post-LN/Pre-LN
# ratio on ten more seeds, and the attention-logit sweep on seeds 3-5.
# Each calls the experiment functions above unchanged; 06-warmup and 06-stability print
# the stored files next to their claims.

def warmup_grid_rerun(norms: Sequence[str], warmups: Sequence[int], lrs: Sequence[float],
                      seeds: Sequence[int], steps: int, qk_norms: Sequence[bool] = (False,),
                      n_val: int = 256, layers: int = 3, batch_size: int = 16) -> dict:
    """:func:`warmup_grid` on the sorting task of 6.2 (4,096 training sequences of 8
    tokens from 16, ``n_val`` validation ones) for every norm and qk-norm setting.

    Keyed ``"post"``, ``"pre"`` (``"pre-qk"`` with qk-layernorm): ``val_loss[i][j][s]``
    and ``max_logit[i][j][s]`` for warmup ``warmups[i]``, rate ``lrs[j]``, seed
    ``seeds[s]``, and ``lr_sensitivity[i]`` (:func:`lr_sensitivity` over the rates,
    capped at ln(vocab)).
    """
    data = sort_task(n_train=4096, n_val=n_val, length=8, vocab=16, seed=0)
    out = {}
    for norm in norms:
        for qk in qk_norms:
            g = warmup_grid(norm, warmups, lrs, seeds, data, steps=steps, layers=layers,
                            batch_size=batch_size, eval_every=steps, qk_norm=qk)
            out[norm + ("-qk" if qk else "")] = {
                "val_loss": g.val_loss, "max_logit": g.max_logit,
                "lr_sensitivity": [lr_sensitivity(g.val_loss[i], math.log(data.classes))
                                   for i in range(len(warmups))]}
    return {"warmups": list(warmups), "lrs": list(lrs), "seeds": [int(s) for s in seeds],
            "runs": out}


def warmup_runs(norms: Sequence[str], warmups: Sequence[int], lrs: Sequence[float],
                seeds: Sequence[int], steps: int, batch_seed: int = 0, eval_every: int = 25,
                curves: bool = True, n_val: int = 256, layers: int = 3,
                batch_size: int = 16) -> dict:
    """The warmup grid of 6.2 at a long horizon: Adam with linear warmup over ``w`` steps
    to ``lr``, then constant, for every (norm, w, lr, seed), on the sorting task (4,096
    training sequences, ``n_val`` validation ones), batches drawn from ``batch_seed``.

    Returns ``{"warmups", "lrs", "seeds", "batch_seed", "eval_steps", "runs": {norm: ...}}``
    where each norm holds ``val_loss[i][j][s]`` and ``max_logit[i][j][s]`` after
    training (warmup ``warmups[i]``, rate ``lrs[j]``, seed ``seeds[s]``) and, with
    ``curves``, the validation loss, the largest attention logit and the update-to-weight
    ratio at every evaluation (``[i][j][s][e]``; see :func:`train_transformer`).
    Non-finite values are kept (stored as null).
    """
    warmups = [_int("warmup", w, 0) for w in warmups]
    steps, eval_every = _int("steps", steps), _int("eval_every", eval_every)
    if curves and steps % eval_every:
        raise ValueError(f"Invalid eval_every: {eval_every} (must divide steps = {steps})")
    data = sort_task(n_train=4096, n_val=n_val, length=8, vocab=16, seed=0)
    where = [(i, j, k) for i in range(len(warmups)) for j in range(len(lrs))
             for k in range(len(seeds))]
    shape = (len(warmups), len(lrs), len(seeds))
    out = {}
    for norm in norms:
        hist = {} if curves else None
        model, loss, acc, evals, val = train_transformer(
            [sch.linear_warmup(lrs[j], warmups[i]) for i, j, _ in where],
            [int(seeds[k]) for *_, k in where], data, steps=steps, norm=norm, layers=layers,
            batch_size=batch_size, eval_every=eval_every if curves else steps,
            batch_seed=batch_seed, history=hist)
        run = {"val_loss": loss.reshape(shape), "val_accuracy": acc.reshape(shape),
               "max_logit": model.max_attention_logit().reshape(shape)}
        if curves:
            run["loss_curves"] = val.T.reshape(shape + (len(evals),))
            run["logit_curves"] = hist["max_logit"].T.reshape(shape + (len(evals),))
            run["ratio_curves"] = hist["update_ratio"].T.reshape(shape + (len(evals),))
        out[norm] = run
    return {"warmups": warmups, "lrs": [float(r) for r in lrs], "seeds": [int(s) for s in seeds],
            "batch_seed": int(batch_seed), "steps": steps,
            "eval_steps": list(range(eval_every, steps + 1, eval_every)) if curves else [steps],
            "runs": out}


def post_pre_rerun(depths: Sequence[int], seeds: Sequence[int], inits: Sequence[str] = ("default", "xavier"),
                   steps: int = 0, batch: int = 256) -> dict:
    """:func:`post_pre_ratio` on more seeds, as a stored rerun: ``ratio[init][s][d]`` for
    seed ``seeds[s]`` and depth ``depths[d]``, with the mean, min and max over seeds.
    ``steps`` must be 0: the gradients are taken at initialization, before any step."""
    if steps != 0:
        raise ValueError(f"Invalid steps: {steps!r} (must be 0: gradients at initialization)")
    data = sort_task(n_train=4096, n_val=256, length=8, vocab=16, seed=0)
    out = {}
    for init in inits:
        r = post_pre_ratio(depths, data, seeds=seeds, init=init, batch=batch)
        out[init] = {"ratio": r, "mean": r.mean(0), "min": r.min(0), "max": r.max(0)}
    return {"depths": [int(d) for d in depths], "seeds": [int(s) for s in seeds], "ratio": out}


_SORT_LRS = (3e-3, 1e-2, 3e-2)
_LOGIT_LRS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)

_RUN_WARMUPS = (0, 20, 100, 300, 600)
_RUN_LRS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)

RERUNS = (
    Rerun(name="06-warmup-runs-1000-steps", chapter="06-warmup",
          claim="The Post-LN Transformer on the sorting task for 1,000 steps, warmup "
                "0/20/100/300/600 x peak 1e-3 to 1e-1, seeds 0-2: where does warmup "
                "decide, does it beat a smaller constant rate, and what do the attention "
                "logits and the update-to-weight ratio do meanwhile (the curves of the "
                "warmup figure)?",
          function="warmup:warmup_runs",
          params={"norms": ("post",), "warmups": _RUN_WARMUPS, "lrs": _RUN_LRS,
                  "seeds": (0, 1, 2), "steps": 1000, "batch_seed": 0, "eval_every": 50,
                  "curves": True, "n_val": 256, "layers": 3, "batch_size": 16},
          minutes=10),
    Rerun(name="06-warmup-runs-pre-ln-1000-steps", chapter="06-warmup",
          claim="The Pre-LN Transformer for 1,000 steps on the grid and batch order of the "
                "Post-LN runs (warmup 0/20/100/300/600 x peak 1e-3 to 1e-1, seeds 0-2), with "
                "curves: the Pre-LN side of the warmup figure.",
          function="warmup:warmup_runs",
          params={"norms": ("pre",), "warmups": _RUN_WARMUPS, "lrs": _RUN_LRS,
                  "seeds": (0, 1, 2), "steps": 1000, "batch_seed": 0, "eval_every": 50,
                  "curves": True, "n_val": 256, "layers": 3, "batch_size": 16},
          minutes=15),
    Rerun(name="06-warmup-pre-ln-1000-steps", chapter="06-warmup",
          claim="The Pre-LN Transformer for 1,000 steps, warmup 0/100/300 x peak 3e-3 to "
                "1e-1, seeds 0-2 (the batch order of the Post-LN runs), in a smaller stack "
                "than 06-warmup-runs-pre-ln-1000-steps: the same runs up to float32 rounding.",
          function="warmup:warmup_runs",
          params={"norms": ("pre",), "warmups": (0, 100, 300), "lrs": (3e-3, 1e-2, 3e-2, 1e-1),
                  "seeds": (0, 1, 2), "steps": 1000, "batch_seed": 0, "curves": False,
                  "n_val": 256, "layers": 3, "batch_size": 16},
          minutes=5),
    Rerun(name="06-warmup-grid-smaller-stack", chapter="06-warmup",
          claim="The Post-LN runs of seeds 0-2, first batch order, at warmup 0/100/300 x "
                "peak 3e-3 to 3e-2, trained in a smaller stack than the full grid: the same "
                "runs up to float32 rounding. Which outcomes survive a rounding-level change?",
          function="warmup:warmup_runs",
          params={"norms": ("post",), "warmups": (0, 100, 300), "lrs": _SORT_LRS,
                  "seeds": (0, 1, 2), "steps": 1000, "batch_seed": 0, "curves": False,
                  "n_val": 256, "layers": 3, "batch_size": 16},
          minutes=4),
    Rerun(name="06-warmup-post-pre-ratio-seeds-3-12", chapter="06-warmup",
          claim="Post-LN over Pre-LN gradient norm at the last layer, at initialization, "
                "depths 2-12, default and Xavier initialization, on ten more seeds: does "
                "the ratio grow like sqrt(L) with Xavier (Xiong et al. 2020)?",
          function="warmup:post_pre_rerun",
          params={"depths": (2, 4, 8, 12), "seeds": tuple(range(3, 13)),
                  "inits": ("default", "xavier"), "steps": 0, "batch": 256},
          minutes=1.5),
    Rerun(name="06-warmup-grid-seeds-3-5", chapter="06-warmup",
          claim="The 1,000-step warmup grid (warmup 0/100/300, peaks 3e-3 to 3e-2) on "
                "seeds 3-5 with another batch order (batch seed 1).",
          function="warmup:warmup_runs",
          params={"norms": ("post", "pre"), "warmups": (0, 100, 300), "lrs": _SORT_LRS,
                  "seeds": (3, 4, 5), "steps": 1000, "batch_seed": 1, "curves": False,
                  "n_val": 256, "layers": 3, "batch_size": 16},
          minutes=10),
    Rerun(name="06-warmup-grid-batch-order-2", chapter="06-warmup",
          claim="The 1,000-step warmup grid (warmup 0/100/300, peaks 3e-3 to 3e-2) on "
                "seeds 0-2 with a second batch order (batch seed 2): does the verdict "
                "depend on the order of the batches?",
          function="warmup:warmup_runs",
          params={"norms": ("post", "pre"), "warmups": (0, 100, 300), "lrs": _SORT_LRS,
                  "seeds": (0, 1, 2), "steps": 1000, "batch_seed": 2, "curves": False,
                  "n_val": 256, "layers": 3, "batch_size": 16},
          minutes=10),
    Rerun(name="06-qk-norm-seeds-3-5", chapter="06-stability",
          claim="Attention logits and learning-rate sensitivity of the Pre-LN Transformer "
                "(20-step warmup, peaks 1e-3 to 1e-1), without and with qk-layernorm, on "
                "seeds 3-5.",
          function="warmup:warmup_grid_rerun",
          params={"norms": ("pre",), "warmups": (20,), "lrs": _LOGIT_LRS,
                  "seeds": (3, 4, 5), "steps": 200, "qk_norms": (False, True), "n_val": 512,
                  "layers": 3, "batch_size": 16},
          minutes=0.7),
)
"""The stored reruns of 6.2 and 6.3 (``make reruns RERUNS=<name>``)."""
