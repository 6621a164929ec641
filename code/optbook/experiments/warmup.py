r"""Chapter 6.2 (why warmup): each proposed mechanism, measured on something small.

Every function is pure (explicit ``seed``) and returns NumPy arrays, numbers or
small dataclasses; ``book/06-warmup.ipynb`` only calls and plots, and
``tests/test_warmup_experiments.py`` checks them against closed forms or
against ``torch.optim``.

* Adam's first steps: the first update is ``eta * sign(g)``
  (:func:`first_adam_update`); the variance of the adaptive step size
  ``1 / sqrt(v_hat_t)`` over the first steps (:func:`adaptive_step_variance`);
  RAdam's rectification ``r_t`` (:func:`radam_rectification`) next to the
  rule-of-thumb warmups of Ma & Yarats (2021) (:func:`untuned_warmup`).
* A small Transformer (:class:`TinyTransformer`: Post-LN or Pre-LN, optional
  qk-layernorm) on a synthetic sorting task (:func:`sort_task`); gradient
  norms per layer at initialization (:func:`init_grad_norms`); training with
  and without warmup through the shared harness (:func:`train_transformer`,
  :func:`warmup_grid`).
* Sharpness during warmup: the top Hessian eigenvalue by power iteration on
  Hessian-vector products (:func:`top_hessian_eigenvalue`) tracked while the
  rate ramps up (:func:`sharpness_during_warmup`).
* Attention-logit growth (Wortsman et al. 2023): the largest attention logit
  after training against the learning rate, with and without qk-layernorm
  (:func:`warmup_grid` with ``qk_norm``), and their learning-rate sensitivity
  (:func:`lr_sensitivity`).
* The stored reruns 6.2 and 6.3 quote (:data:`RERUNS`: the warmup grid and the
  qk-layernorm sweep on seeds 3-5, a finer six-seed sharpness grid).
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
           "untuned_warmup", "sort_task", "StackedTransformer", "init_grad_norms",
           "train_transformer", "WarmupGrid", "warmup_grid", "top_hessian_eigenvalue", "SharpnessRun",
           "sharpness_during_warmup", "lr_sensitivity", "draw_warmup_runs",
           # stored reruns
           "warmup_grid_rerun", "sharpness_rerun", "RERUNS"]


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
    Gaussians. Liu et al. (2020, RAdam): Var[psi_t] is unbounded at t = 1
    (1/|g| has infinite variance) and large while few gradients are averaged;
    it falls towards its limit as t grows. Returns Var over ``samples`` runs for
    t = 1..steps (at t = 1 the estimate is finite only because the sample is).
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
    """

    def __init__(self, seeds: Sequence[int], vocab: int = 16, length: int = 8,
                 d_model: int = 32, heads: int = 2, layers: int = 2, norm: str = "post",
                 qk_norm: bool = False, mlp_ratio: int = 2):
        super().__init__()
        if norm not in ("post", "pre"):
            raise ValueError(f"Invalid norm: {norm!r} (one of 'post', 'pre')")
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
                      batch_size: int = 32, eval_every: int = 25, b2: float = 0.999, **kw):
    """Train one stacked Transformer, member m with Adam at rate ``schedules[m](t)``.

    Returns (model, final val loss (M,), final val accuracy (M,), eval steps,
    val-loss curves (evals, M)). All members see the same batches (drawn from
    ``seeds[0]``); seed m sets member m's initial weights.
    """
    seeds = [int(s) for s in seeds]
    model = StackedTransformer(seeds, vocab=data.classes, length=data.x_train.shape[1],
                               layers=layers, norm=norm, qk_norm=qk_norm, **kw)
    stacked = stack_targets(data, len(seeds))
    rates = np.stack([s(np.arange(steps)) for s in schedules], axis=1)
    optimizer = member_adam(model.parameters(), rates, b2=b2)
    evals, curves = [], []

    def record(t):
        if (t + 1) % eval_every == 0:
            evals.append(t + 1)
            curves.append(member_losses(model, stacked.x_val, stacked.y_val))

    train(model, optimizer, stacked, steps=steps, batch_size=batch_size, eval_every=steps,
          seed=seeds[0], on_step=record)
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


# --- sharpness during warmup ---------------------------------------------------------------

def _member_loss(model, x, y) -> torch.Tensor:
    """Sum over members of each member's mean cross-entropy (block-diagonal in members)."""
    loss = F.cross_entropy(model(x), y, reduction="none")
    return loss.reshape(-1, loss.shape[-1]).mean(0).sum()


def top_hessian_eigenvalue(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                           iters: int = 20, seed: int = 0) -> np.ndarray:
    """Each member's largest Hessian eigenvalue (sharpness) by power iteration on
    Hessian-vector products (Pearlmutter's double backward), shape (M,).

    The loss is the sum of the members' losses, so the Hessian is block-diagonal
    and one product serves all members; vectors are normalized per member.
    Power iteration finds the eigenvalue of largest *magnitude*; near a
    minimum of a network's loss that is the top one.
    """
    iters = _int("iters", iters)
    params = [p for p in model.parameters() if p.requires_grad]
    members = params[0].shape[0]
    g = torch.Generator().manual_seed(seed)
    v = [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params]

    def normalize(vs):
        norm = torch.sqrt(sum(t.reshape(members, -1).pow(2).sum(1) for t in vs))
        return [t / norm.reshape((-1,) + (1,) * (t.dim() - 1)) for t in vs]

    v = normalize(v)
    grads = torch.autograd.grad(_member_loss(model, x, y), params, create_graph=True)
    eig = torch.zeros(members, dtype=torch.float64)
    for _ in range(iters):
        hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True)
        eig = sum((a * b).reshape(members, -1).sum(1) for a, b in zip(v, hv)).double()
        v = normalize([h.detach() for h in hv])
    return eig.numpy()


@dataclass
class SharpnessRun:
    """Gradient descent with warmup: sharpness and 2/eta_t at ``steps_measured``."""

    warmups: tuple
    peaks: tuple
    seeds: tuple
    steps_measured: np.ndarray
    sharpness: np.ndarray          # (warmups, peaks, seeds, measurements)
    eta: np.ndarray                # (warmups, peaks, measurements) rate used at that step
    final_loss: np.ndarray         # (warmups, peaks, seeds) training loss at the end
    init_loss: float


def sharpness_during_warmup(warmups: Sequence[int], peaks: Sequence[float],
                            seeds: Sequence[int], *, steps: int = 150, n_train: int = 256,
                            hidden: int = 64, measure_every: int = 10,
                            iters: int = 10) -> SharpnessRun:
    """Full-batch gradient descent on ``n_train`` examples of the teacher task with a
    linear warmup to each peak, every (warmup, peak, seed) stacked in one network;
    the top Hessian eigenvalue of each run is measured every ``measure_every``
    steps. Plain GD is stable on a quadratic only while sharpness < 2/eta
    (Cohen et al. 2021); Kalra & Barkeshli (2024) argue that warmup works by
    letting the sharpness fall below 2/eta_t as the rate rises.
    """
    from ..base import chain, scale
    from ..torch import ChainOptimizer
    from .schedules import StackedMLP, scale_by_member_rates
    from .training import teacher_classification

    data = teacher_classification(n_train=n_train, n_val=64, seed=0)
    where = [(i, j, k) for i in range(len(warmups)) for j in range(len(peaks))
             for k in range(len(seeds))]
    m = len(where)
    model = StackedMLP(data.x_train.shape[1], data.classes, [int(seeds[k]) for *_, k in where],
                       hidden=hidden)
    stacked = stack_targets(data, m)
    schedules = [sch.linear_warmup(peaks[j], warmups[i]) for i, j, _ in where]
    rates = np.stack([s(np.arange(steps)) for s in schedules], axis=1)
    optimizer = ChainOptimizer(model.parameters(), chain(scale(float(m)),
                                                         scale_by_member_rates(rates)))
    x, y = stacked.x_train, stacked.y_train
    init_loss = float(member_losses(model, x, y).mean())
    measured, sharp = [], []

    def measure(t):  # before step t (t = 0, k, 2k, ...) and after the last
        measured.append(t)
        sharp.append(top_hessian_eigenvalue(model, x, y, iters=iters))

    measure(0)

    def on_step(t):
        if (t + 1) % measure_every == 0:
            measure(t + 1)

    train(model, optimizer, stacked, steps=steps, batch_size=n_train, eval_every=steps,
          seed=0, on_step=on_step)
    shape = (len(warmups), len(peaks), len(seeds))
    steps_measured = np.array(measured)
    eta = np.stack([[sch.linear_warmup(p, w)(np.minimum(steps_measured, steps - 1))
                     for p in peaks] for w in warmups])
    return SharpnessRun(tuple(warmups), tuple(peaks), tuple(seeds), steps_measured,
                        np.array(sharp).T.reshape(shape + (len(measured),)), eta,
                        member_losses(model, x, y).reshape(shape), init_loss)


def draw_warmup_runs(grids: dict, norm: str = "post", lr: float = 3e-2, warmup: int = 0,
                     steps: Optional[int] = None, vocab: int = 16):
    """The warmup-slider figure: eta_t (left) and the validation loss of each seed
    (right) for one (norm, lr, warmup) of :func:`warmup_grid`, the same rate
    without warmup in grey. ``grids`` maps "post"/"pre" to a WarmupGrid."""
    from .. import plotting

    g = grids[norm]
    i, j = g.warmups.index(warmup), g.lrs.index(lr)
    steps = int(g.eval_steps[-1]) if steps is None else steps
    fig, (a, b) = plotting.subplots(1, 2, size="wide", pyplot=False)
    t = np.arange(steps)
    a.plot(t, sch.linear_warmup(lr, warmup)(t), color="C0")
    a.set_ylim(0, 1.05 * max(g.lrs)); a.set_xlabel("step t"); a.set_ylabel("η_t")
    a.set_title(f"linear warmup over {warmup} steps to η = {lr:g}")
    if warmup:
        for k in range(len(g.seeds)):
            b.plot(g.eval_steps, g.curves[0, j, k], color="0.6", lw=1,
                   label="no warmup" if k == 0 else None)
    for k in range(len(g.seeds)):
        b.plot(g.eval_steps, g.curves[i, j, k], color="C0",
               label=f"warmup {warmup}" if k == 0 else None)
    b.axhline(math.log(vocab), color="k", ls=":", lw=0.8, label="chance")
    b.set_ylim(0, 3.0); b.set_xlabel("step"); b.set_ylabel("validation loss (3 seeds)")
    final = g.val_loss[i, j]
    b.set_title(f"{norm.capitalize()}-LN: final loss {final.min():.2f}–{final.max():.2f}")
    b.legend(loc="upper right", fontsize=8)
    return fig


# --- stored reruns (scripts/reruns.py; book/data/reruns/06-*.json) -----------------------------
# The checks 6.2 and 6.3 quote but cannot afford in their minute: the warmup grid and the
# attention-logit sweep on seeds 3-5, and a finer, six-seed grid of the sharpness runs.
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


def sharpness_rerun(warmups: Sequence[int], peaks: Sequence[float], seeds: Sequence[int],
                    steps: int, train_below: float = 0.1) -> dict:
    """:func:`sharpness_during_warmup` for its final losses only, as a stored rerun.

    The sharpness is measured only before the first and after the last step (it
    does not change the training: power iteration reads the weights). Returns
    ``final_loss[i][j][s]`` for warmup ``warmups[i]``, peak ``peaks[j]``, seed
    ``seeds[s]``; ``trains[i][j]``, how many seeds end below ``train_below``; and
    ``largest_all[i]``, the largest peak at which every seed does (None if none).
    """
    run = sharpness_during_warmup(warmups, peaks, seeds, steps=steps, measure_every=steps,
                                  iters=10)
    ok = run.final_loss < train_below                        # (warmups, peaks, seeds)
    largest = []
    for i in range(len(warmups)):
        good = [p for j, p in enumerate(peaks) if ok[i, j].all()]
        largest.append(max(good) if good else None)
    return {"warmups": list(warmups), "peaks": list(peaks), "seeds": [int(s) for s in seeds],
            "init_loss": run.init_loss, "final_loss": run.final_loss,
            "trains": ok.sum(-1).astype(int).tolist(), "largest_all": largest}


_SORT_LRS = (3e-3, 1e-2, 3e-2)
_LOGIT_LRS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)

RERUNS = (
    Rerun(name="06-warmup-grid-seeds-3-5", chapter="06-warmup",
          claim="The Post-LN and Pre-LN warmup grid (warmup 0/20/100, peaks 3e-3 to 3e-2, "
                "200 steps) on seeds 3-5: where does warmup decide between training and "
                "not, and does a warmup keep the attention logits smaller?",
          function="warmup:warmup_grid_rerun",
          params={"norms": ("post", "pre"), "warmups": (0, 20, 100), "lrs": _SORT_LRS,
                  "seeds": (3, 4, 5), "steps": 200, "qk_norms": (False,), "n_val": 256,
                  "layers": 3, "batch_size": 16},
          minutes=0.8),
    Rerun(name="06-sharpness-finer-grid", chapter="06-stability",
          claim="Full-batch GD with warmup 0/30/100 at peaks 3, 4, ..., 8 on seeds 0-5: "
                "the largest peak at which every seed trains, with and without warmup.",
          function="warmup:sharpness_rerun",
          params={"warmups": (0, 30, 100), "peaks": (3, 4, 5, 6, 7, 8),
                  "seeds": (0, 1, 2, 3, 4, 5), "steps": 150, "train_below": 0.1},
          minutes=0.2),
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
