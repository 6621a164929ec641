r"""Chapter 7.3 (when a real training run goes wrong): each failure mode provoked and fixed.

Every function is pure (explicit ``seed``) and returns numbers, NumPy arrays or
small dicts; ``book/07-training-runs.ipynb`` only calls and prints, and
``tests/test_training_runs.py`` checks them against code nobody here wrote
(``torch.optim.swa_utils``, ``torch.optim.Adam``, the full-batch gradient,
``torch.equal``).

* Loss spikes: a small causal Transformer (:class:`TinyLM`) on a synthetic
  copy task (:func:`copy_batch`), trained with Adam at a high rate
  (:func:`spike_run`); the fixes are options of the same run (lower
  ``beta2``, larger ``eps``, z-loss, qk-layernorm, update clipping in
  Wortsman et al.'s form (:func:`stable_clip_factors`) and as a cap on the
  update's RMS, rewind and skip); what is measured is the spike count at two
  thresholds, the largest logits and their ratio at spike onsets
  (:func:`count_spikes`, :func:`onset_ratio`, :func:`spike_table`).
* Low precision: what bf16 and fp16 can represent (:func:`format_table`),
  what ``torch.autocast`` does on the CPU (:func:`autocast_dtypes`), fp16
  gradient underflow and the loss scaler (:func:`underflow_demo`), a loss-scale
  collapse (:func:`scale_collapse`), blockwise 8-bit optimizer states
  (:func:`quantize_blockwise`, :class:`QuantizedAdam`) and stochastic rounding
  to bf16 (:func:`round_bf16`, :func:`low_precision_weights`).
* Gradient accumulation: per-token vs per-micro-batch normalisation against
  the full-batch gradient (:func:`accumulation_gradients`).
* Scaling the rate with batch size and width (:func:`best_rate_grid`, μP in
  :class:`WidthMLP`).
* Weight averaging (:class:`EMA`, :func:`averaging_run`).
* Restarting bit for bit (:func:`resume_experiment`).
"""
from __future__ import annotations

import copy
import math
import random
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .. import schedules as sch
from ..torch import AdamW
from .reruns import Rerun
from .training import epoch_batches, mlp, teacher_classification

__all__ = ["TinyLM", "copy_batch", "lm_loss", "copy_loss", "count_spikes", "onset_ratio", "spike_run", "spike_table",
           "stable_clip_factors",
           "SPIKE_VARIANTS",
           "format_table", "autocast_dtypes", "underflow_demo", "scale_collapse",
           "quantize_blockwise", "dequantize_blockwise", "QuantizedAdam", "QUANTIZED_VARIANTS",
           "quantized_adam_run",
           "round_bf16", "low_precision_weights",
           "accumulation_gradients",
           "WidthMLP", "best_rate_grid", "refined_best", "scaling_summary", "rule_regret",
           "EMA", "averaging_run",
           "resume_experiment", "CHECKPOINT_PARTS",
           "print_quantized", "print_bf16_weights", "print_spike_table", "print_spike_onsets", "print_rule_regret", "good_window", "print_width_transfer",
           "print_averaging",
           "spikes_rerun", "low_precision_rerun", "scaling_rerun", "adam_batch_rerun",
           "averaging_rerun", "RERUNS"]


def _int(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"Invalid {name}: {value!r} (must be an integer >= {low})")
    return int(value)


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
            or not math.isfinite(value):
        raise ValueError(f"Invalid {name}: {value!r} (must be a finite number > 0)")
    return float(value)


def _seeds(seeds) -> list[int]:
    seeds = list(seeds)
    if not seeds:
        raise ValueError("Invalid seeds: empty (give at least one seed)")
    return [_int("seed", s, 0) for s in seeds]


# --- 1. loss spikes -------------------------------------------------------------------------

def copy_batch(batch: int, length: int = 16, vocab: int = 32, seed: int = 0,
               position: int = 0) -> torch.Tensor:
    """Batch number ``position`` of the copy task: ``length // 2`` random tokens, then the same again.

    A causal model can only guess the first half (loss ``log vocab``) and must
    copy the second half by attending back ``length // 2`` positions. The data
    stream is a function of ``(seed, position)``, so "the data position" of a
    run is one integer (which matters for rewinding and resuming).
    """
    batch, length, vocab = _int("batch", batch), _int("length", length, 2), _int("vocab", vocab, 2)
    position = _int("position", position, 0)
    if length % 2:
        raise ValueError(f"Invalid length: {length} (must be even)")
    g = torch.Generator().manual_seed(1_000_003 * _int("seed", seed, 0) + position)
    half = torch.randint(0, vocab, (batch, length // 2), generator=g)
    return torch.cat([half, half], dim=1)


class TinyLM(nn.Module):
    """A causal pre-LN Transformer language model (learned positions, GELU MLP).

    ``qk_norm=True`` puts a LayerNorm (no affine) on queries and keys per head
    (Dehghani et al. 2023; Wortsman et al. 2023). ``last_max_logit`` and
    ``last_max_attention`` keep the largest |output logit| and |attention
    logit| of the last forward pass (the attention logit over the positions a
    query may attend to: causally masked entries are excluded).
    """

    def __init__(self, vocab: int = 32, length: int = 16, d_model: int = 64, heads: int = 4,
                 layers: int = 2, qk_norm: bool = False, seed: int = 0):
        super().__init__()
        self.vocab, self.length = _int("vocab", vocab, 2), _int("length", length, 2)
        self.d_model, self.heads = _int("d_model", d_model), _int("heads", heads)
        if self.d_model % self.heads:
            raise ValueError(f"Invalid heads: {heads} (must divide d_model = {d_model})")
        self.qk_norm = bool(qk_norm)
        g = torch.Generator().manual_seed(_int("seed", seed, 0))
        d = self.d_model

        def w(*shape, std):
            return nn.Parameter(torch.randn(*shape, generator=g) * std)

        self.embed = w(self.vocab, d, std=0.02)
        self.pos = w(self.length, d, std=0.02)
        self.blocks = nn.ModuleList()
        for _ in range(_int("layers", layers)):
            block = nn.Module()
            block.ln1, block.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            block.qkv = w(d, 3 * d, std=d ** -0.5)
            block.proj = w(d, d, std=d ** -0.5)
            block.fc1 = w(d, 4 * d, std=d ** -0.5)
            block.fc2 = w(4 * d, d, std=(4 * d) ** -0.5)
            self.blocks.append(block)
        self.ln_f = nn.LayerNorm(d)
        self.head = w(d, self.vocab, std=d ** -0.5)
        self.register_buffer("mask", torch.ones(self.length, self.length).triu(1).bool(),
                             persistent=False)
        self.last_max_logit = 0.0
        self.last_max_attention = 0.0

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits of shape (batch, length, vocab) for tokens of shape (batch, length)."""
        b, n = tokens.shape
        h, d = self.heads, self.d_model
        x = self.embed[tokens] + self.pos[:n]
        max_att = 0.0
        for blk in self.blocks:
            q, k, v = (blk.ln1(x) @ blk.qkv).split(d, dim=-1)
            q, k, v = (t.view(b, n, h, d // h).transpose(1, 2) for t in (q, k, v))
            if self.qk_norm:
                q, k = F.layer_norm(q, q.shape[-1:]), F.layer_norm(k, k.shape[-1:])
            att = q @ k.transpose(-1, -2) / math.sqrt(d // h)
            # the largest logit a query actually attends with: future positions masked out
            max_att = max(max_att, float(att.detach().masked_fill(self.mask[:n, :n], 0.0)
                                         .abs().max()))
            att = att.masked_fill(self.mask[:n, :n], float("-inf")).softmax(dim=-1)
            x = x + (att @ v).transpose(1, 2).reshape(b, n, d) @ blk.proj
            x = x + F.gelu(blk.ln2(x) @ blk.fc1) @ blk.fc2
        logits = self.ln_f(x) @ self.head
        self.last_max_attention = max_att
        self.last_max_logit = float(logits.detach().abs().max())
        return logits


def lm_loss(logits: torch.Tensor, tokens: torch.Tensor, z_loss: float = 0.0) -> torch.Tensor:
    """Next-token cross-entropy, plus ``z_loss * mean(log Z)^2`` (PaLM's z-loss, 1e-4 there)."""
    pred, target = logits[:, :-1], tokens[:, 1:]
    loss = F.cross_entropy(pred.reshape(-1, pred.shape[-1]), target.reshape(-1))
    if z_loss:
        loss = loss + z_loss * torch.logsumexp(pred, dim=-1).pow(2).mean()
    return loss


def copy_loss(logits: torch.Tensor, tokens: torch.Tensor) -> float:
    """Cross-entropy on the learnable half only (the copied tokens): about 0 once the
    task is learned, so a spike stands out against it."""
    half = tokens.shape[1] // 2
    pred = logits[:, half - 1:-1].detach()
    return F.cross_entropy(pred.reshape(-1, pred.shape[-1]), tokens[:, half:].reshape(-1)).item()


def count_spikes(losses, window: int = 20, jump: float = 0.2) -> int:
    """Number of steps whose loss exceeds the median of the previous ``window`` by ``jump`` nats.

    Consecutive spiking steps count once; a non-finite loss counts as a spike
    (and ends the count: the run is dead).
    """
    window, jump = _int("window", window), _positive("jump", jump)
    losses = np.asarray(losses, dtype=float)
    if losses.ndim != 1:
        raise ValueError(f"Invalid losses: shape {losses.shape} (must be one-dimensional)")
    spikes, inside = 0, False
    for t in range(window, len(losses)):
        if not np.isfinite(losses[t]):
            return spikes + 1
        ref = np.median(losses[t - window:t])
        now = losses[t] > ref + jump
        if now and not inside:
            spikes += 1
        inside = now
    return spikes


def onset_ratio(losses, signal, window: int = 20, jump: float = 0.2) -> float:
    """Median, over the first steps of the spikes of :func:`count_spikes`, of
    ``signal[t]`` divided by the median of ``signal`` over the previous ``window``
    steps: about 1 when the signal does not move at a spike's onset, large when it
    jumps with (or ahead of) the spike. NaN if there is no spike."""
    window, jump = _int("window", window), _positive("jump", jump)
    losses, signal = np.asarray(losses, dtype=float), np.asarray(signal, dtype=float)
    if losses.shape != signal.shape or losses.ndim != 1:
        raise ValueError(f"Invalid signal: shape {signal.shape} (must match losses, {losses.shape})")
    ratios, inside = [], False
    for t in range(window, len(losses)):
        if not np.isfinite(losses[t]):
            break
        now = losses[t] > np.median(losses[t - window:t]) + jump
        if now and not inside:
            ratios.append(signal[t] / np.median(signal[t - window:t]))
        inside = now
    return float(np.median(ratios)) if ratios else float("nan")


SPIKE_VARIANTS = {
    # name: keyword arguments of spike_run that differ from the provoked run
    "provoked": {},
    "β₂ = 0.95": {"b2": 0.95},
    "ε = 1e-6": {"eps": 1e-6},
    "z-loss 1e-4": {"z_loss": 1e-4},
    "qk-layernorm": {"qk_norm": True},
    "update RMS ≤ 1": {"update_clip": 1.0},
    "update clipping": {"stable_clip": True},
    "rewind + skip": {"rewind": True},
}


def _clip_updates(params, before, lr: float, d: float) -> int:
    """Adafactor's update clipping applied to a finished step: per tensor, shrink
    the update so that its RMS is at most ``d * lr`` (for Adam the update divided
    by the rate is m̂/(√v̂ + ε), whose RMS is ≈ 1 in steady state)."""
    clipped = 0
    with torch.no_grad():
        for p, p0 in zip(params, before):
            delta = p - p0
            rms = delta.pow(2).mean().sqrt().item() / lr
            if rms > d:
                p.copy_(p0 + delta * (d / rms))
                clipped += 1
    return clipped


def stable_clip_factors(opt: torch.optim.Adam, eps: Optional[float] = None) -> list[float]:
    r"""Update clipping of Wortsman et al. (2023, StableAdamW), per parameter of ``opt``.

    Call it after ``opt.step()`` (the gradients and Adam's second moment of that
    step are in place). For each tensor it returns
    :math:`\mathrm{RMS}_t = \sqrt{\mathrm{mean}(g_t^2 / \max(\hat v_t, \varepsilon^2))}`,
    with :math:`\hat v_t = v_t / (1-\beta_2^t)` the bias-corrected second moment;
    the step's rate for that tensor is then divided by :math:`\max(1, \mathrm{RMS}_t)`.
    In steady state :math:`g^2 \approx \hat v` and the RMS is about 1; it is large
    exactly when the gradient is large against :math:`v`'s long memory (the
    out-of-date second moment). Tensors without a gradient or state get 1.0.
    """
    if not isinstance(opt, torch.optim.Adam):
        raise TypeError(f"Invalid opt: {type(opt).__name__} (must be torch.optim.Adam)")
    out = []
    with torch.no_grad():
        for group in opt.param_groups:
            b2 = group["betas"][1]
            e = group["eps"] if eps is None else _positive("eps", eps)
            for p in group["params"]:
                state = opt.state.get(p, {})
                if p.grad is None or "exp_avg_sq" not in state:
                    out.append(1.0)
                    continue
                v_hat = state["exp_avg_sq"] / (1 - b2 ** float(state["step"]))
                out.append(float((p.grad.pow(2) / v_hat.clamp(min=e * e)).mean().sqrt()))
    return out


def _stable_clip(params, before, opt) -> int:
    """Apply :func:`stable_clip_factors` to a finished Adam step (no weight decay:
    dividing the rate by r divides the update by r). Returns how many tensors
    were clipped."""
    clipped = 0
    with torch.no_grad():
        for p, p0, r in zip(params, before, stable_clip_factors(opt)):
            if r > 1.0:
                p.copy_(p0 + (p - p0) / r)
                clipped += 1
    return clipped


def spike_run(seed: int = 0, *, steps: int = 400, lr: float = 1e-2, b1: float = 0.9,
              b2: float = 0.999, eps: float = 1e-8, z_loss: float = 0.0, qk_norm: bool = False,
              update_clip: Optional[float] = None, stable_clip: bool = False,
              rewind: bool = False, max_rewinds: int = 20,
              checkpoint_every: int = 50, skip: int = 50, warmup: int = 20, batch: int = 32,
              jump: float = 0.2, d_model: int = 32, layers: int = 2, vocab: int = 32, length: int = 16) -> dict:
    """Train :class:`TinyLM` on the copy task with Adam at rate ``lr`` after a linear warmup.

    ``rewind=True`` is PaLM's recipe: keep a checkpoint every ``checkpoint_every``
    steps; when a step's loss is a spike (0.2 nats above the median of the last
    20, or non-finite), restore the last checkpoint and jump ``skip`` batches ahead
    in the data; after ``max_rewinds`` rewinds the run gives up (stops early,
    ``gave_up`` is True). ``update_clip=d`` caps the RMS of each tensor's update
    divided by the rate at ``d`` (Adafactor's form); ``stable_clip=True`` is
    Wortsman et al.'s form (:func:`stable_clip_factors`). Returns the per-step
    losses (of the steps kept), the largest output and attention logits per
    step, the spike counts at 0.2 and 0.5 nats (:func:`count_spikes`), the
    median ratio of the attention logit at a spike's first step to its median
    over the previous 20 steps (:func:`onset_ratio`), the number of rewinds and
    of steps kept, the share of tensor-steps an update clip changed, and the
    final validation loss (mean over 8 fresh batches of the second, learnable half).
    """
    steps, seed = _int("steps", steps), _int("seed", seed, 0)
    lr = _positive("lr", lr)
    max_rewinds = _int("max_rewinds", max_rewinds, 0)
    if update_clip is not None and stable_clip:
        raise ValueError("Invalid update_clip with stable_clip=True: choose one form of update clipping")
    model = TinyLM(vocab, length, d_model, 4, layers, qk_norm, seed)
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=lr, betas=(b1, b2), eps=eps)
    losses, max_logit, max_att = [], [], []
    position, rewinds, clipped, gave_up = 0, 0, 0, False
    ckpt = None
    t = 0
    while t < steps:
        if rewind and t % checkpoint_every == 0 and (ckpt is None or ckpt[0] != t):
            ckpt = (t, copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()),
                    len(losses))
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (t + 1) / warmup) if warmup else lr
        tokens = copy_batch(batch, length, vocab, seed, position)
        position += 1
        logits = model(tokens)
        loss = lm_loss(logits, tokens, z_loss)
        value = copy_loss(logits, tokens)
        if rewind and ckpt is not None and len(losses) >= 20 and (
                not math.isfinite(value) or value > jump + float(np.median(losses[-20:]))):
            t, state, ostate, keep = ckpt
            model.load_state_dict(state)
            opt.load_state_dict(ostate)
            del losses[keep:], max_logit[keep:], max_att[keep:]
            position += skip
            rewinds += 1
            if rewinds > max_rewinds:
                gave_up = True
                break
            continue
        losses.append(value)
        max_logit.append(model.last_max_logit)
        max_att.append(model.last_max_attention)
        if not math.isfinite(value):
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        before = [p.detach().clone() for p in params] if (update_clip or stable_clip) else None
        opt.step()
        if update_clip:
            clipped += _clip_updates(params, before, opt.param_groups[0]["lr"], update_clip)
        elif stable_clip:
            clipped += _stable_clip(params, before, opt)
        t += 1
    with torch.no_grad():
        val = [copy_loss(model(tok), tok) for tok in
               (copy_batch(64, length, vocab, seed + 10_000, i) for i in range(8))]
    losses, max_att = np.array(losses), np.array(max_att)
    return {"losses": losses, "max_logit": np.array(max_logit),
            "max_attention": max_att, "spikes": count_spikes(losses, jump=jump),
            "spikes_05": count_spikes(losses, jump=0.5),
            "onset_attention": onset_ratio(losses, max_att, jump=jump),
            "rewinds": rewinds, "kept_steps": len(losses), "gave_up": gave_up,
            "clipped": clipped / (len(params) * max(len(losses), 1)),
            "diverged": bool(len(losses) < steps or not np.isfinite(val).all()),
            "val_loss": float(np.mean(val))}


def spike_table(seeds: Sequence[int] = (0, 1, 2), variants: Optional[dict] = None,
                **common) -> dict:
    """:func:`spike_run` for each variant (default :data:`SPIKE_VARIANTS`) and seed.

    Returns ``{variant: {"spikes": [...], "spikes_05": [...], "val_loss": [...],
    "max_logit": [...], "max_attention": [...], "onset_attention": [...],
    "rewinds": [...], "kept_steps": [...], "gave_up": [...], "clipped": [...],
    "diverged": [...]}}`` (one entry per seed; the largest logits are the maxima
    over the run; see :func:`spike_run`).
    """
    seeds = _seeds(seeds)
    variants = SPIKE_VARIANTS if variants is None else variants
    out = {}
    for name, kwargs in variants.items():
        runs = [spike_run(s, **{**common, **kwargs}) for s in seeds]
        out[name] = {"spikes": [r["spikes"] for r in runs],
                     "spikes_05": [r["spikes_05"] for r in runs],
                     "val_loss": [r["val_loss"] for r in runs],
                     "max_logit": [float(np.max(r["max_logit"])) for r in runs],
                     "max_attention": [float(np.max(r["max_attention"])) for r in runs],
                     "onset_attention": [r["onset_attention"] for r in runs],
                     "rewinds": [r["rewinds"] for r in runs],
                     "kept_steps": [r["kept_steps"] for r in runs],
                     "gave_up": [r["gave_up"] for r in runs],
                     "clipped": [r["clipped"] for r in runs],
                     "diverged": [r["diverged"] for r in runs]}
    return out


# --- 2. low precision -----------------------------------------------------------------------

_PROBES = {"1 + 2⁻⁸ (= 1.0039)": 1 + 2 ** -8, "1 + 2⁻¹¹ (= 1.00049)": 1 + 2 ** -11,
           "70000": 70000.0, "1e-5": 1e-5, "1e-8": 1e-8, "1e-40": 1e-40}


def format_table() -> dict:
    """Range and precision of float32, bfloat16 and float16, from ``torch.finfo``,
    and what a few probe values become when cast (round to nearest even)."""
    out = {}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16),
                        ("float16", torch.float16)):
        info = torch.finfo(dtype)
        out[name] = {"bits": info.bits, "mantissa_bits": int(round(-math.log2(info.eps))),
                     "eps": float(info.eps), "max": float(info.max),
                     "smallest_normal": float(info.smallest_normal),
                     "smallest_subnormal": float(torch.tensor(0.0, dtype=dtype).nextafter(
                         torch.tensor(1.0, dtype=dtype))),
                     "probes": {k: float(torch.tensor(v, dtype=torch.float64).to(dtype).double())
                                for k, v in _PROBES.items()}}
    return out


def autocast_dtypes(dtype: torch.dtype = torch.bfloat16) -> dict:
    """The dtype each operation returns inside ``torch.autocast("cpu", dtype)``
    on float32 inputs, and the dtype of the weight gradient afterwards."""
    if dtype not in (torch.bfloat16, torch.float16):
        raise ValueError(f"Invalid dtype: {dtype} (autocast on CPU takes bfloat16 or float16)")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 8, generator=g)
    lin = nn.Linear(8, 8)
    target = torch.zeros(4, dtype=torch.long)
    out = {}
    with torch.autocast("cpu", dtype=dtype):
        h = lin(x)
        out["linear (matmul)"] = h.dtype
        out["x + y (elementwise)"] = (x + x).dtype
        out["layer_norm"] = F.layer_norm(h, (8,)).dtype
        out["softmax"] = torch.softmax(h, dim=-1).dtype
        out["log_softmax"] = torch.log_softmax(h, dim=-1).dtype
        loss = F.cross_entropy(h, target)
        out["cross_entropy"] = loss.dtype
        out["sum"] = h.sum().dtype
    loss.float().backward()
    out["weight (stays)"] = lin.weight.dtype
    out["weight.grad"] = lin.weight.grad.dtype
    return {k: str(v).replace("torch.", "") for k, v in out.items()}


def _copy_model_batch(seed: int):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 64), nn.GELU(),
                          nn.Linear(64, 8))
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(256, 32, generator=g)
    y = torch.randint(0, 8, (256,), generator=g)
    return model, x, y


def underflow_demo(seed: int = 0, loss_factor: float = 1e-4) -> dict:
    """fp16 gradient underflow, and how loss scaling rescues it.

    A small MLP's loss, multiplied by ``loss_factor`` (standing in for a loss
    averaged over very many tokens, or a tiny auxiliary loss), is
    back-propagated with the model cast to float16 (no master weights: the
    activation gradients live in fp16, as under autocast on a GPU), once
    unscaled and once multiplied by 2¹⁶ and divided back afterwards, in float32.
    Returns, for each, the fraction of gradient entries that are exactly zero
    (against float32's fraction), the relative error against the float32
    gradient and the largest scale that leaves every gradient finite.
    """
    seed = _int("seed", seed, 0)
    loss_factor = _positive("loss_factor", loss_factor)
    model, x, y = _copy_model_batch(seed)

    def grads(dtype, scale):
        m = copy.deepcopy(model).to(dtype)
        loss = F.cross_entropy(m(x.to(dtype)).float(), y) * loss_factor * scale
        loss.backward()
        return torch.cat([p.grad.float().flatten() / scale for p in m.parameters()])

    ref = grads(torch.float32, 1.0)
    out = {"float32": {"zero_fraction": float((ref == 0).float().mean()), "rel_error": 0.0}}
    for label, scale in (("float16, unscaled", 1.0), ("float16, scaled by 2^16", 2.0 ** 16)):
        g = grads(torch.float16, scale)
        out[label] = {"zero_fraction": float((g == 0).float().mean()),
                      "rel_error": float((g - ref).norm() / ref.norm()),
                      "finite": bool(torch.isfinite(g).all())}
    return out


def scale_collapse(steps: int = 40, nan_from: int = 10, init_scale: float = 2.0 ** 16,
                   growth_interval: int = 5) -> dict:
    """``torch.amp.GradScaler("cpu")`` on a run whose gradients are non-finite from step
    ``nan_from`` on (a NaN the model makes itself, not an overflow).

    The scaler cannot tell the two apart: it skips every step and halves the
    scale each time, so the loss scale collapses towards zero while the
    weights stop moving, silently. Returns the scale after each step and how
    many steps changed the weights.
    """
    steps, nan_from = _int("steps", steps), _int("nan_from", nan_from, 0)
    w = nn.Parameter(torch.ones(4))
    opt = torch.optim.SGD([w], lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=_positive("init_scale", init_scale),
                                  growth_interval=_int("growth_interval", growth_interval))
    scales, moved = [], 0
    for t in range(steps):
        opt.zero_grad()
        bad = torch.tensor(float("nan")) if t >= nan_from else torch.tensor(0.0)
        loss = (w.pow(2).sum() + bad * w.sum())
        before = w.detach().clone()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        moved += int(not torch.equal(before, w.detach()))
        scales.append(float(scaler.get_scale()))
    return {"scale": np.array(scales), "steps_taken": moved, "steps": steps}


def quantize_blockwise(x: torch.Tensor, block: int = 64, signed: bool = True,
                       sqrt_map: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """8-bit absmax quantization with one float32 scale per ``block`` entries.

    Each block is divided by its largest |value| and rounded to 127 levels
    (signed) or 255 (unsigned). ``sqrt_map=True`` quantizes sqrt(x) instead of
    x (for Adam's non-negative ``v``: more levels near zero, the idea behind
    bitsandbytes' non-linear "dynamic" code, Dettmers et al. 2022).
    ``block=0`` uses one scale for the whole tensor. Returns (codes, scales).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"Invalid x: {type(x).__name__} (must be a torch.Tensor)")
    block = _int("block", block, 0)
    flat = x.detach().float().flatten()
    if sqrt_map:
        if signed or (flat < 0).any():
            raise ValueError("Invalid sqrt_map: needs unsigned, non-negative values")
        flat = flat.sqrt()
    n = flat.numel()
    size = n if block == 0 else block
    pad = (-n) % size
    blocks = torch.cat([flat, flat.new_zeros(pad)]).view(-1, size)
    scales = blocks.abs().amax(dim=1, keepdim=True).clamp_min(1e-30)
    levels = 127 if signed else 255
    codes = torch.round(blocks / scales * levels).to(torch.int16)   # 8-bit values, int16 storage
    return codes, scales


def dequantize_blockwise(codes: torch.Tensor, scales: torch.Tensor, like: torch.Tensor,
                         signed: bool = True, sqrt_map: bool = False) -> torch.Tensor:
    """Inverse of :func:`quantize_blockwise` (up to the rounding), shaped like ``like``."""
    levels = 127 if signed else 255
    flat = (codes.float() / levels * scales).flatten()[:like.numel()]
    if sqrt_map:
        flat = flat.pow(2)
    return flat.view_as(like).to(like.dtype)


class QuantizedAdam(torch.optim.Optimizer):
    """Adam whose ``m`` and ``v`` are stored as 8-bit codes between steps.

    Each step dequantizes the states, does the float32 Adam update, and
    quantizes them again (``block`` entries per scale; ``block=0``: one scale
    per tensor). ``m`` is signed linear, ``v`` unsigned through a square-root
    map (``v_map="sqrt"``) or linearly (``"linear"``, the naive choice). This simulates the memory format of 8-bit Adam (the codes are kept
    in int16 tensors holding 8-bit values); it does not save memory itself.
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 block: int = 64, v_map: str = "sqrt"):
        _positive("lr", lr)
        _int("block", block, 0)
        if v_map not in ("sqrt", "linear"):
            raise ValueError(f"Invalid v_map: {v_map!r} (choose 'sqrt' or 'linear')")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, block=block,
                                      sqrt_map=v_map == "sqrt"))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["step"] = 0
                    m, v = torch.zeros_like(p), torch.zeros_like(p)
                else:
                    m = dequantize_blockwise(*st["m"], p, signed=True)
                    v = dequantize_blockwise(*st["v"], p, signed=False,
                                             sqrt_map=group["sqrt_map"])
                st["step"] += 1
                t = st["step"]
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                denom = (v / (1 - b2 ** t)).sqrt().add_(group["eps"])
                p.addcdiv_(m, denom, value=-group["lr"] / (1 - b1 ** t))
                st["m"] = quantize_blockwise(m, group["block"], signed=True)
                st["v"] = quantize_blockwise(v, group["block"], signed=False,
                                             sqrt_map=group["sqrt_map"])
        return None


def _teacher_run(opt_fn, seed: int, steps: int, hidden: int = 64, batch: int = 64,
                 after_step=None) -> float:
    data = teacher_classification(seed=seed)
    model = mlp(20, data.classes, hidden=hidden, depth=2, seed=seed)
    opt = opt_fn(list(model.parameters()))
    gen = torch.Generator().manual_seed(seed)
    batches = epoch_batches(data.n_train, batch, gen)
    for _ in range(steps):
        idx = next(batches)
        loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if after_step is not None:
            after_step(model)
    with torch.no_grad():
        return F.cross_entropy(model(data.x_val), data.y_val).item()


QUANTIZED_VARIANTS = {"8-bit, blocks of 64, √v code": (64, "sqrt"),
                      "8-bit, one scale per tensor, √v code": (0, "sqrt"),
                      "8-bit, blocks of 64, linear v": (64, "linear"),
                      "8-bit, one scale per tensor, linear v": (0, "linear")}


def quantized_adam_run(seeds: Sequence[int] = (0, 1, 2), steps: int = 300, lr: float = 3e-3,
                       variants: Optional[dict] = None) -> dict:
    """Validation loss of the chapter's MLP (teacher task) trained with float32
    Adam (``torch.optim.Adam``) and with :class:`QuantizedAdam` for each
    ``{label: (block, v_map)}`` (default :data:`QUANTIZED_VARIANTS`); also the
    fraction of ``v``'s entries that the 8-bit code stores as exactly zero at
    the end (where the update becomes m / ε)."""
    seeds = _seeds(seeds)
    variants = QUANTIZED_VARIANTS if variants is None else variants
    out = {"float32 Adam": {"val_loss": [_teacher_run(lambda p: torch.optim.Adam(p, lr=lr), s, steps)
                                         for s in seeds], "v_zero": [0.0] * len(seeds)}}
    for label, (block, v_map) in variants.items():
        losses, zeros = [], []
        for s in seeds:
            holder = {}

            def make(params, block=block, v_map=v_map, holder=holder):
                holder["opt"] = QuantizedAdam(params, lr=lr, block=block, v_map=v_map)
                return holder["opt"]

            losses.append(_teacher_run(make, s, steps))
            codes = [st["v"][0].flatten()[:p.numel()] for p, st in holder["opt"].state.items()]
            zeros.append(float(sum(int((c == 0).sum()) for c in codes)
                               / sum(c.numel() for c in codes)))
        out[label] = {"val_loss": losses, "v_zero": zeros}
    return out


def round_bf16(x: torch.Tensor, stochastic: bool = False,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """float32 ``x`` rounded to the nearest bfloat16 value (returned as float32),
    or stochastically: up with probability equal to the distance from the lower
    neighbour, so that the result is unbiased (``E[round(x)] = x``).

    Stochastic rounding adds uniform random bits below bf16's last mantissa
    bit (the low 16 bits of the float32 pattern) and truncates.
    """
    if not isinstance(x, torch.Tensor) or x.dtype != torch.float32:
        raise TypeError(f"Invalid x: {getattr(x, 'dtype', type(x).__name__)} (must be a float32 tensor)")
    if not stochastic:
        return x.to(torch.bfloat16).float()
    bits = x.contiguous().view(torch.int32)
    noise = torch.randint(0, 1 << 16, x.shape, generator=generator, dtype=torch.int32)
    return ((bits + noise) & ~0xFFFF).view(torch.float32)


def low_precision_weights(lrs: Sequence[float] = (1e-4, 3e-4, 1e-3, 3e-3),
                          seeds: Sequence[int] = (0, 1, 2), steps: int = 300) -> dict:
    """Adam on the chapter's MLP when the *weights* are kept in bfloat16 between
    steps: float32 weights (the reference), bf16 rounded to nearest, bf16 with
    stochastic rounding (:func:`round_bf16`). Returns ``{label: {"val_loss":
    array (rates, seeds), "unchanged": array (rates, seeds)}}``, where
    ``unchanged`` is the fraction of weight entries the last step left exactly
    as they were (the updates rounding swallowed)."""
    lrs = [_positive("lr", lr) for lr in lrs]
    seeds, steps = _seeds(seeds), _int("steps", steps)
    out = {}
    for label, mode in (("float32 weights", None), ("bf16, round to nearest", False),
                        ("bf16, stochastic rounding", True)):
        loss = np.zeros((len(lrs), len(seeds)))
        unchanged = np.zeros_like(loss)
        for i, lr in enumerate(lrs):
            for j, s in enumerate(seeds):
                gen = torch.Generator().manual_seed(s + 77)
                last = {}

                def make(params, lr=lr, mode=mode, last=last):
                    last["params"] = params
                    if mode is not None:
                        with torch.no_grad():
                            for p in params:
                                p.copy_(round_bf16(p.detach()))
                    opt = torch.optim.Adam(params, lr=lr)
                    return opt

                def after(model, mode=mode, gen=gen, last=last):
                    with torch.no_grad():
                        if mode is not None:
                            for p in model.parameters():
                                p.copy_(round_bf16(p.detach(), mode, gen))
                        now = torch.cat([p.detach().flatten() for p in model.parameters()])
                        if "prev" in last:
                            last["unchanged"] = float((now == last["prev"]).float().mean())
                        last["prev"] = now.clone()

                loss[i, j] = _teacher_run(make, s, steps, after_step=after)
                unchanged[i, j] = last["unchanged"]
        out[label] = {"val_loss": loss, "unchanged": unchanged}
    return out


# --- 3. gradient accumulation ---------------------------------------------------------------

def accumulation_gradients(seed: int = 0, micro_batches: int = 4, per_micro: int = 4,
                           max_length: int = 32, equal_lengths: bool = False,
                           vocab: int = 16, d_model: int = 8) -> dict:
    """Gradients of a token-level loss accumulated over micro-batches, against the full batch.

    A batch of ``micro_batches * per_micro`` sequences with random lengths in
    ``[1, max_length]`` (all ``max_length`` if ``equal_lengths``), padded with
    ``-100`` (ignored), feeds a small token model (embedding → tanh → linear,
    float64). The full-batch loss is the mean over *all real tokens*. Accumulated:

    * ``per micro-batch``: each micro-batch's own token mean, divided by the
      number of micro-batches (what ``loss / accumulation_steps`` does);
    * ``per token``: each micro-batch's token *sum*, divided by the number of
      real tokens in the whole batch.

    Returns each gradient's relative error and cosine against the full-batch
    gradient, and the token count of every micro-batch.
    """
    seed = _int("seed", seed, 0)
    k, per = _int("micro_batches", micro_batches), _int("per_micro", per_micro)
    max_length = _int("max_length", max_length)
    g = torch.Generator().manual_seed(seed)
    n = k * per
    lengths = (torch.full((n,), max_length) if equal_lengths
               else torch.randint(1, max_length + 1, (n,), generator=g))
    tokens = torch.randint(0, vocab, (n, max_length), generator=g)
    targets = torch.randint(0, vocab, (n, max_length), generator=g)
    pad = torch.arange(max_length)[None, :] >= lengths[:, None]
    targets[pad] = -100
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Embedding(vocab, d_model), nn.Tanh(),
                          nn.Linear(d_model, vocab)).double()

    def grad_of(loss_fn):
        model.zero_grad()
        loss_fn()
        return torch.cat([p.grad.flatten().clone() for p in model.parameters()])

    def ce(rows, reduction):
        logits = model(tokens[rows])
        return F.cross_entropy(logits.reshape(-1, vocab), targets[rows].reshape(-1),
                               ignore_index=-100, reduction=reduction)

    everything = torch.arange(n)
    full = grad_of(lambda: ce(everything, "mean").backward())
    micro = [everything[i * per:(i + 1) * per] for i in range(k)]
    total = int((~pad).sum())

    def per_micro_mean():
        for rows in micro:
            (ce(rows, "mean") / k).backward()

    def per_token():
        for rows in micro:
            (ce(rows, "sum") / total).backward()

    out = {"tokens_per_micro_batch": [int((~pad[rows]).sum()) for rows in micro]}
    for label, fn in (("per micro-batch", per_micro_mean), ("per token", per_token)):
        acc = grad_of(fn)
        out[label] = {"rel_error": float((acc - full).norm() / full.norm()),
                      "max_abs_diff": float((acc - full).abs().max()),
                      "cosine": float(F.cosine_similarity(acc, full, dim=0))}
    return out


# --- 5. weight averaging --------------------------------------------------------------------

class EMA:
    """Exponential moving average of a model's parameters (and a copy of its buffers).

    ``update(model)``: on the first call the average is the model's parameters;
    afterwards ``avg <- decay * avg + (1 - decay) * param``. ``module`` is a
    deep copy holding the averages, to evaluate. (The same convention as
    ``torch.optim.swa_utils.AveragedModel`` with ``get_ema_multi_avg_fn(decay)``.)
    """

    def __init__(self, model: nn.Module, decay: float = 0.99):
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 <= decay < 1.0:
            raise ValueError(f"Invalid decay: {decay!r} (must lie in [0, 1))")
        if not isinstance(model, nn.Module):
            raise TypeError(f"Invalid model: {type(model).__name__} (must be an nn.Module)")
        self.decay = float(decay)
        self.module = copy.deepcopy(model)
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for avg, p in zip(self.module.parameters(), model.parameters()):
            if self.updates == 0:
                avg.copy_(p)
            else:
                avg.mul_(self.decay).add_(p.detach(), alpha=1 - self.decay)
        for avg, b in zip(self.module.buffers(), model.buffers()):
            avg.copy_(b)
        self.updates += 1


def averaging_run(lrs: Sequence[float], seeds: Sequence[int] = (0, 1, 2), steps: int = 600,
                  decay: float = 0.98, cooldown_frac: float = 0.2, batch: int = 32,
                  label_noise: float = 0.0) -> dict:
    """Validation loss of the final weights and of their EMA (``decay``), AdamW on the
    teacher task (32,768 clean examples, MLP 2×64), for a constant rate and for
    the same rate with a linear cooldown to zero over the last ``cooldown_frac``.

    Returns ``{schedule: {"raw": array (rates, seeds), "ema": array (rates, seeds)}}``.
    """
    lrs = [_positive("lr", lr) for lr in lrs]
    seeds, steps = _seeds(seeds), _int("steps", steps)
    cool = max(1, int(round(cooldown_frac * steps)))
    out = {}
    for name in ("constant", "cooldown"):
        raw = np.zeros((len(lrs), len(seeds)))
        ema = np.zeros_like(raw)
        for i, lr in enumerate(lrs):
            for j, s in enumerate(seeds):
                data = teacher_classification(n_train=32768, n_val=2048, label_noise=label_noise,
                                              seed=s)
                model = mlp(20, data.classes, hidden=64, depth=2, seed=s)
                opt = AdamW(model.parameters(), lr=lr, weight_decay=0.0)
                avg = EMA(model, decay)
                gen = torch.Generator().manual_seed(s)
                batches = epoch_batches(data.n_train, batch, gen)
                for t in range(steps):
                    factor = 1.0 if name == "constant" else min(1.0, (steps - t) / cool)
                    for group in opt.param_groups:
                        group["lr"] = lr * factor
                    idx = next(batches)
                    loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    avg.update(model)
                with torch.no_grad():
                    raw[i, j] = F.cross_entropy(model(data.x_val), data.y_val).item()
                    ema[i, j] = F.cross_entropy(avg.module(data.x_val), data.y_val).item()
        out[name] = {"raw": raw, "ema": ema}
    return out


# --- 6. restarting --------------------------------------------------------------------------

CHECKPOINT_PARTS = ("model", "optimizer", "scheduler", "rng", "data position")


class _Run:
    """A small training run whose every source of state is explicit: an MLP with
    dropout (uses torch's global RNG), optbook's AdamW, a warmup-cosine schedule
    through LambdaLR, and a data order drawn from its own generator."""

    def __init__(self, seed: int, steps: int):
        torch.manual_seed(seed)
        self.model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Dropout(0.1),
                                   nn.Linear(64, 4))
        self.opt = AdamW(self.model.parameters(), lr=1e-3, weight_decay=0.1)
        self.sched = sch.as_lambda_lr(self.opt, sch.warmup_cosine(3e-3, steps // 10, steps))
        self.data = teacher_classification(n_train=512, n_val=16, seed=seed)
        self.gen = torch.Generator().manual_seed(seed + 1)
        self.position = 0   # batches consumed
        self.perm = None

    def _batch(self):
        per_epoch = self.data.n_train // 32
        if self.position % per_epoch == 0:
            self.perm = torch.randperm(self.data.n_train, generator=self.gen)
        i = self.position % per_epoch
        self.position += 1
        return self.perm[i * 32:(i + 1) * 32]

    def step(self):
        idx = self._batch()
        loss = F.cross_entropy(self.model(self.data.x_train[idx]), self.data.y_train[idx])
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()

    def checkpoint(self) -> dict:
        return {"model": copy.deepcopy(self.model.state_dict()),
                "optimizer": copy.deepcopy(self.opt.state_dict()),
                "scheduler": copy.deepcopy(self.sched.state_dict()),
                "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                        "python": random.getstate()},
                "data position": {"position": self.position, "generator": self.gen.get_state(),
                                  "perm": None if self.perm is None else self.perm.clone()}}

    def restore(self, ckpt: dict, omit: Sequence[str] = ()) -> None:
        if "model" not in omit:
            self.model.load_state_dict(ckpt["model"])
        if "optimizer" not in omit:
            self.opt.load_state_dict(ckpt["optimizer"])
        if "scheduler" not in omit:
            self.sched.load_state_dict(ckpt["scheduler"])
            # LambdaLR.load_state_dict restores the counter, not the optimizer's lr:
            # set the lr the next step uses from the restored counter
            for group, lr in zip(self.opt.param_groups, self.sched.get_last_lr()):
                group["lr"] = lr
        if "rng" not in omit:
            torch.set_rng_state(ckpt["rng"]["torch"])
            np.random.set_state(ckpt["rng"]["numpy"])
            random.setstate(ckpt["rng"]["python"])
        if "data position" not in omit:
            d = ckpt["data position"]
            self.position = d["position"]
            self.gen.set_state(d["generator"])
            self.perm = None if d["perm"] is None else d["perm"].clone()


def resume_experiment(seed: int = 0, steps: int = 200, stop: int = 120,
                      omissions: Sequence[str] = ("",) + CHECKPOINT_PARTS) -> dict:
    """Train ``steps`` steps uninterrupted; then train ``stop`` steps, checkpoint, build
    every object afresh (a new process would), restore the checkpoint *without*
    the part named in each of ``omissions`` ("" omits nothing), finish the run,
    and compare the final weights with the uninterrupted ones.

    Returns ``{omitted: {"equal": torch.equal of every tensor,
    "max_abs_diff": largest |difference| of a weight}}``.
    """
    seed, steps = _int("seed", seed, 0), _int("steps", steps, 2)
    stop = _int("stop", stop)
    if stop >= steps:
        raise ValueError(f"Invalid stop: {stop} (must be < steps = {steps})")
    for o in omissions:
        if o not in ("",) + CHECKPOINT_PARTS:
            raise ValueError(f"Invalid omission: {o!r} (choose from {('',) + CHECKPOINT_PARTS})")
    state = (torch.get_rng_state(), np.random.get_state(), random.getstate())
    try:
        torch.manual_seed(seed)
        ref = _Run(seed, steps)
        torch.manual_seed(seed + 2)   # dropout's stream
        for _ in range(steps):
            ref.step()
        final = [p.detach().clone() for p in ref.model.parameters()]
        out = {}
        for omit in omissions:
            first = _Run(seed, steps)
            torch.manual_seed(seed + 2)
            for _ in range(stop):
                first.step()
            ckpt = copy.deepcopy(first.checkpoint())
            del first
            torch.manual_seed(12345)        # a new process: fresh global RNG
            second = _Run(seed + (1 if omit == "model" else 0), steps)
            second.restore(ckpt, omit=(omit,))
            for _ in range(steps - stop):
                second.step()
            got = [p.detach() for p in second.model.parameters()]
            out[omit or "nothing"] = {
                "equal": all(torch.equal(a, b) for a, b in zip(final, got)),
                "max_abs_diff": max(float((a - b).abs().max()) for a, b in zip(final, got))}
        return out
    finally:
        torch.set_rng_state(state[0])
        np.random.set_state(state[1])
        random.setstate(state[2])


# --- 4. scaling the rate with batch size and width ------------------------------------------

class WidthMLP(nn.Module):
    """An MLP with ``depth`` hidden layers of ``width`` units (ReLU), in the standard
    parametrization (``"sp"``: PyTorch's default init, one rate for all) or in μP
    for Adam (``"mup"``, Yang et al. 2022, as the ``mup`` package does it): the
    output is multiplied by ``base_width / width`` and the hidden-to-hidden
    matrices get the rate ``lr * base_width / width`` (:meth:`param_groups`);
    input weights, biases and the read-out keep ``lr``. At ``width ==
    base_width`` the two parametrizations are the same network.
    """

    def __init__(self, width: int, depth: int = 3, in_dim: int = 20, out_dim: int = 4,
                 parametrization: str = "sp", base_width: int = 64, seed: int = 0):
        super().__init__()
        if parametrization not in ("sp", "mup"):
            raise ValueError(f"Invalid parametrization: {parametrization!r} (choose 'sp' or 'mup')")
        self.width, self.base_width = _int("width", width), _int("base_width", base_width)
        self.parametrization = parametrization
        torch.manual_seed(_int("seed", seed, 0))
        self.inp = nn.Linear(_int("in_dim", in_dim), self.width)
        self.hidden = nn.ModuleList(nn.Linear(self.width, self.width)
                                    for _ in range(_int("depth", depth) - 1))
        self.out = nn.Linear(self.width, _int("out_dim", out_dim))
        self.multiplier = self.base_width / self.width if parametrization == "mup" else 1.0

    def forward(self, x):
        x = F.relu(self.inp(x))
        for layer in self.hidden:
            x = F.relu(layer(x))
        return self.out(x) * self.multiplier

    def param_groups(self, lr: float) -> list[dict]:
        hidden_w = [layer.weight for layer in self.hidden]
        ids = {id(p) for p in hidden_w}
        rest = [p for p in self.parameters() if id(p) not in ids]
        scale = self.base_width / self.width if self.parametrization == "mup" else 1.0
        return [{"params": rest, "lr": lr}, {"params": hidden_w, "lr": lr * scale}]


def _scaling_run(*, optimizer: str, lr: float, seed: int, batch: int, steps: int, width: int,
                 parametrization: str, data) -> float:
    model = WidthMLP(width, parametrization=parametrization, seed=seed)
    if optimizer == "sgd":
        opt = torch.optim.SGD(model.param_groups(lr), lr=lr, momentum=0.9)
    else:
        opt = torch.optim.Adam(model.param_groups(lr), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    batches = epoch_batches(data.n_train, batch, gen)
    for _ in range(steps):
        idx = next(batches)
        loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
        if not torch.isfinite(loss):
            return float("inf")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        val = F.cross_entropy(model(data.x_val), data.y_val).item()
    return val if math.isfinite(val) else float("inf")


def best_rate_grid(*, optimizer: str, lrs: Sequence[float], seeds: Sequence[int] = (0, 1, 2),
                   batches: Sequence[int] = (128,), widths: Sequence[int] = (64,),
                   parametrization: str = "sp", examples: Optional[int] = None,
                   steps: Optional[int] = None) -> dict:
    """Final validation loss on the clean teacher task (32,768 examples) for every
    (batch, width, rate, seed): array of shape (batches, widths, rates, seeds).

    Give ``examples`` (a fixed budget of examples: ``examples // batch`` steps,
    the setting of Goyal et al. and Malladi et al.) or ``steps`` (the same for
    every batch size). ``optimizer``: ``"sgd"`` (momentum 0.9) or ``"adam"``.
    A diverged run scores ``inf``. Also returns the best rate per (batch,
    width, seed) (:func:`refined_best`).
    """
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"Invalid optimizer: {optimizer!r} (choose 'sgd' or 'adam')")
    if (examples is None) == (steps is None):
        raise ValueError("give exactly one of examples and steps")
    lrs = [_positive("lr", lr) for lr in lrs]
    if len(lrs) < 5 or sorted(lrs) != lrs:
        raise ValueError(f"Invalid lrs: {lrs} (need at least 5 rates, ascending)")
    seeds = _seeds(seeds)
    batches = [_int("batch", b) for b in batches]
    widths = [_int("width", w) for w in widths]
    loss = np.zeros((len(batches), len(widths), len(lrs), len(seeds)))
    for s_i, s in enumerate(seeds):
        data = teacher_classification(n_train=32768, n_val=2048, label_noise=0.0, seed=s)
        for b_i, b in enumerate(batches):
            n = steps if steps is not None else max(1, _int("examples", examples) // b)
            for w_i, w in enumerate(widths):
                for l_i, lr in enumerate(lrs):
                    loss[b_i, w_i, l_i, s_i] = _scaling_run(
                        optimizer=optimizer, lr=lr, seed=s, batch=b, steps=n, width=w,
                        parametrization=parametrization, data=data)
    return {"val_loss": loss, "lrs": np.array(lrs), "batches": batches, "widths": widths,
            "best_lr": refined_best(loss, lrs)}


def refined_best(loss: np.ndarray, lrs: Sequence[float]) -> np.ndarray:
    """Best rate along axis -2 of ``loss`` (rates) for every other index: the vertex
    of a parabola in log-rate through the grid's best point and its two
    neighbours (the grid point itself when it lies on the edge or the parabola
    opens downward). Shape: ``loss.shape`` without the rate axis."""
    loss = np.asarray(loss, dtype=float)
    x = np.log(np.asarray(lrs, dtype=float))
    if loss.ndim < 2 or loss.shape[-2] != len(x):
        raise ValueError(f"Invalid loss: shape {loss.shape} (axis -2 must have {len(x)} rates)")
    moved = np.moveaxis(loss, -2, -1)
    out = np.zeros(moved.shape[:-1])
    for idx in np.ndindex(out.shape):
        row = np.where(np.isfinite(moved[idx]), moved[idx], np.inf)
        i = int(np.argmin(row))
        best = x[i]
        if 0 < i < len(x) - 1 and np.isfinite(row[i - 1:i + 2]).all():
            a, b, _ = np.polyfit(x[i - 1:i + 2], row[i - 1:i + 2], 2)
            if a > 0:
                best = float(np.clip(-b / (2 * a), x[i - 1], x[i + 1]))
        out[idx] = math.exp(best)
    return out


def scaling_summary(grid: dict, axis: str) -> dict:
    """Slope of log(best rate) against log(batch) (``axis="batch"``) or log(width)
    (``axis="width"``), per seed, by least squares; and the best rate per
    setting (mean over seeds and min–max)."""
    best = np.asarray(grid["best_lr"])           # (batches, widths, seeds)
    if axis == "batch":
        xs, curves = np.log(grid["batches"]), best[:, 0, :]
    elif axis == "width":
        xs, curves = np.log(grid["widths"]), best[0, :, :]
    else:
        raise ValueError(f"Invalid axis: {axis!r} (choose 'batch' or 'width')")
    if len(xs) < 2:
        raise ValueError(f"Invalid grid: only one {axis} to fit a slope to")
    slopes = [float(np.polyfit(xs, np.log(curves[:, s]), 1)[0]) for s in range(curves.shape[1])]
    return {"slopes": slopes, "best_lr": curves}


def rule_regret(grid: dict, axis: str, base: int, exponents: dict) -> dict:
    """What a scaling rule costs: tune the rate on the grid at setting ``base``
    (index into ``grid["batches"]`` or ``grid["widths"]``), move it to every other
    setting as ``lr * (size / base_size) ** exponent``, and compare the validation
    loss there with the best rate's (retuned on the grid).

    The rates must form a geometric grid and every moved rate must land on it
    (e.g. factor-2 grid, sizes 4× apart, exponents 0, 1/2, 1). Returns
    ``{rule: {"regret": array (sizes, seeds), "off_grid": count}}``; the regret
    is ``inf`` where the moved rate diverged, and ``nan`` (counted in
    ``off_grid``) where it falls outside the grid.
    """
    loss = np.asarray(grid["val_loss"], dtype=float)     # (batches, widths, rates, seeds)
    lrs = np.asarray(grid["lrs"], dtype=float)
    ratio = lrs[1] / lrs[0]
    if not np.allclose(lrs[1:] / lrs[:-1], ratio, rtol=1e-3):
        raise ValueError("Invalid grid: the rates are not a geometric sequence")
    if axis == "batch":
        sizes, curves = list(grid["batches"]), loss[:, 0]
    elif axis == "width":
        sizes, curves = list(grid["widths"]), loss[0]
    else:
        raise ValueError(f"Invalid axis: {axis!r} (choose 'batch' or 'width')")
    base = _int("base", base, 0)
    if base >= len(sizes):
        raise ValueError(f"Invalid base: {base} (only {len(sizes)} sizes)")
    seeds = curves.shape[-1]
    out = {}
    for rule, e in exponents.items():
        regret = np.zeros((len(sizes), seeds))
        off = 0
        for s in range(seeds):
            i0 = int(np.argmin(np.where(np.isfinite(curves[base, :, s]), curves[base, :, s], np.inf)))
            for k, size in enumerate(sizes):
                shift = e * math.log(size / sizes[base]) / math.log(ratio)
                if abs(shift - round(shift)) > 1e-6:
                    raise ValueError(f"Invalid exponents: {rule!r} moves the rate off the grid")
                i = i0 + int(round(shift))
                if not 0 <= i < len(lrs):
                    regret[k, s], off = np.nan, off + 1
                    continue
                regret[k, s] = curves[k, i, s] - np.min(curves[k, :, s])
        out[rule] = {"regret": regret, "off_grid": off}
    return out


# --- printing (the notebook's tables) -------------------------------------------------------

def _span(values, fmt: str = ".3f") -> str:
    v = np.asarray(values, dtype=float)
    if len(v) == 1:
        return format(v[0], fmt)
    return f"{format(np.median(v), fmt)} ({format(v.min(), fmt)}–{format(v.max(), fmt)})"


def print_quantized(table: dict, blowup: float = 100.0) -> None:
    """Validation loss (median, min–max over seeds; a run whose loss is non-finite or
    above ``blowup`` counts as diverged) and the median share of v stored as 0."""
    print(f"{'':<40}{'val loss (median, min–max)':<32}{'v stored as 0':>14}")
    for label in sorted(table, key=lambda k: (k != "float32 Adam", k)):
        row = table[label]
        loss = np.asarray(row["val_loss"], dtype=float)
        bad = ~np.isfinite(loss) | (loss > blowup)
        text = (f"diverged on {bad.sum()} of {len(loss)} seeds" if bad.any()
                else _span(loss))
        print(f"{label:<40}{text:<32}{np.median(row['v_zero']):>14.0%}")


def print_bf16_weights(table: dict, lrs: Sequence[float]) -> None:
    """Per rate and weight format: validation loss (median, min–max over seeds) and the
    median share of weights the last step left unchanged."""
    order = [k for k in ("float32 weights", "bf16, round to nearest", "bf16, stochastic rounding")
             if k in table]
    print(f"{'rate':>7}  {'weights':<28}{'val loss (median, min–max)':<30}{'unchanged by last step':>22}")
    for i, lr in enumerate(lrs):
        for label in order:
            row = table[label]
            print(f"{lr:>7.0e}  {label:<28}{_span(np.asarray(row['val_loss'], dtype=float)[i]):<30}"
                  f"{np.median(np.asarray(row['unchanged'], dtype=float)[i]):>22.0%}")


def print_spike_table(table: dict) -> None:
    """One line per variant: spikes per seed (more than 0.2 nats above the median of
    the last 20 steps, and, where stored, more than 0.5 nats), median (min–max) over
    seeds of the final copy loss and of the largest attention logit, the largest
    output logit over all seeds, the share of tensor-steps an update clip changed
    (where stored), and for rewinding the rewinds and kept steps per seed."""
    has05 = all("spikes_05" in row for row in table.values())
    head = "spikes ≥ 0.2 / ≥ 0.5 nats" if has05 else "spikes per seed"
    print(f"{'':<17}{head:<34}{'final copy loss':<24}{'largest attention logit':<26}"
          f"{'output logit':<14}tensor-steps clipped")
    order = [k for k in SPIKE_VARIANTS if k in table] + [k for k in table if k not in SPIKE_VARIANTS]
    notes = []
    for name in order:
        row = table[name]
        spikes = " ".join(str(int(x)) for x in row["spikes"])
        if has05:
            spikes += " / " + " ".join(str(int(x)) for x in row["spikes_05"])
        att = np.asarray(row["max_attention"], dtype=float)
        att_s = (f"{np.median(att):.2g} ({att.min():.2g}–{att.max():.2g})" if len(att) > 1
                 else f"{att[0]:.2g}")
        out_s = f"≤ {np.max(row['max_logit']):.0f}"
        clipped = np.asarray(row.get("clipped", [0.0]), dtype=float)
        clip_s = f"{100 * clipped.min():.2f}–{100 * clipped.max():.2f} %" if clipped.any() else "–"
        print(f"{name:<17}{spikes:<34}{_span(row['val_loss']):<24}{att_s:<26}{out_s:<14}{clip_s}")
        if any(row["rewinds"]):
            kept = row.get("kept_steps")
            gave = [i for i, g in enumerate(row.get("gave_up", [])) if g]
            notes.append(f"{name}: rewinds per seed " + " ".join(str(int(x)) for x in row["rewinds"])
                         + ("; steps kept " + " ".join(str(int(x)) for x in kept) if kept else "")
                         + (f"; gave up (rewind cap reached) on {len(gave)} of {len(row['rewinds'])} seeds"
                            if gave else ""))
    for note in notes:
        print(note)


def print_spike_onsets(table: dict, name: str = "provoked") -> None:
    """Per seed of one variant: the largest attention logit at a spike's first step
    divided by its median over the previous 20 steps (median over the spikes)."""
    ratios = np.asarray(table[name]["onset_attention"], dtype=float)
    print(f"{name}: attention logit at a spike's first step / its median over the previous "
          f"20 steps, per seed: " + " ".join(f"{r:.2f}" for r in ratios))
    ok = ratios[np.isfinite(ratios)]
    print(f"jumps (> 2×) at the typical spike onset on {int((ok > 2).sum())} of {len(ok)} seeds")


def print_rule_regret(grid: dict, axis: str, base: int, exponents: dict) -> None:
    """Best rate per size (median and min–max over seeds), then each rule's regret
    at every size other than ``base`` (median, min–max over seeds; rates moved
    off the grid are counted, not scored), and the slope of log(best rate)."""
    sizes = list(grid["batches"] if axis == "batch" else grid["widths"])
    best = np.asarray(grid["best_lr"])
    best = best[:, 0, :] if axis == "batch" else best[0]
    lrs_min = float(np.min(np.asarray(grid["lrs"], dtype=float)))
    lrs_max = float(np.max(np.asarray(grid["lrs"], dtype=float)))
    regret = rule_regret(grid, axis, base, exponents)
    print(f"{axis:>6}  best rate (median, min–max)")
    for k, size in enumerate(sizes):
        notes = [f"the grid's {which} rate on {n} of {best.shape[1]} seeds"
                 for which, n in (("smallest", int((best[k] <= lrs_min * 1.0001).sum())),
                                  ("largest", int((best[k] >= lrs_max * 0.9999).sum()))) if n]
        note = "   (" + "; ".join(notes) + ")" if notes else ""
        print(f"{size:>6}  {_span(best[k], '.2g')}{note}")
    others = [k for k in range(len(sizes)) if k != base]
    print(f"regret of a rule moving the rate tuned at {axis} {sizes[base]}:")
    print(f"  {'rule':<12}" + "".join(f"{'at ' + axis + ' ' + str(sizes[k]):<36}" for k in others))
    for rule in exponents:
        cells = []
        for k in others:
            values = regret[rule]["regret"][k]
            text = _span(values[np.isfinite(values)], ".3f") if np.isfinite(values).any() else "–"
            notes = [f"{n} {what}" for n, what in ((int(np.isnan(values).sum()), "off grid"),
                                                    (int(np.isinf(values).sum()), "diverged")) if n]
            cells.append(text + (" [" + ", ".join(notes) + "]" if notes else ""))
        print(f"  {rule:<12}" + "".join(f"{c:<36}" for c in cells))
    slopes = scaling_summary(grid, axis)["slopes"]
    print(f"slope of log(best rate) against log({axis}): {_span(slopes, '.2f')}")


def good_window(curve, lrs: Sequence[float], tol: float = 0.02) -> tuple[float, float]:
    """Smallest and largest rate of the grid whose loss is within ``tol`` of the
    curve's minimum (a diverged run, ``inf``, is never within)."""
    curve = np.asarray(curve, dtype=float)
    tol = _positive("tol", tol)
    ok = np.flatnonzero(curve <= np.min(curve) + tol)
    return float(lrs[ok[0]]), float(lrs[ok[-1]])


def print_width_transfer(grids: dict, base: int = 0, tol: float = 0.02) -> None:
    """For each parametrization (``{"SP": grid, "μP": grid}``) and width: the best rate
    (median, min–max over seeds), the window of rates within ``tol`` of the best
    (on the median curve), the loss at the grid's smallest rate, and the regret
    of reusing the rate tuned at ``widths[base]``."""
    print(f"{'':<4}{'width':>6}  {'best rate':<26}{'good window':<20}{'loss at smallest rate':<24}"
          "regret, rate tuned at base width")
    for name, g in grids.items():
        loss = np.asarray(g["val_loss"], dtype=float)[0]      # (widths, rates, seeds)
        lrs = np.asarray(g["lrs"], dtype=float)
        best = np.asarray(g["best_lr"])[0]
        regret = rule_regret(g, "width", base, {"same": 0.0})["same"]["regret"]
        for k, width in enumerate(g["widths"]):
            lo, hi = good_window(np.median(loss[k], axis=-1), lrs, tol)
            print(f"{name:<4}{width:>6}  {_span(best[k], '.2g'):<26}{f'{lo:.1g} – {hi:.1g}':<20}"
                  f"{_span(loss[k, 0], '.2f'):<24}{_span(regret[k], '.3f')}")


def print_averaging(res: dict, lrs: Sequence[float]) -> None:
    """Per schedule, raw and EMA weights: each at its best rate (median over seeds
    picks the rate), with the loss per seed."""
    print(f"{'':<28}{'best rate':>10}   val loss per seed")
    for name in ("constant", "cooldown"):
        for kind in ("raw", "ema"):
            loss = np.asarray(res[name][kind], dtype=float)
            i = int(np.argmin(np.median(loss, axis=1)))
            label = f"{name}, {'final weights' if kind == 'raw' else 'EMA of weights'}"
            print(f"{label:<28}{lrs[i]:>10.0e}   " + "  ".join(f"{v:.3f}" for v in loss[i]))


# --- stored reruns --------------------------------------------------------------------------

def spikes_rerun(seeds: Sequence[int], steps: int, lr: float, variants: Sequence[str]) -> dict:
    """:func:`spike_table` for the named :data:`SPIKE_VARIANTS`."""
    return spike_table(seeds, {v: SPIKE_VARIANTS[v] for v in variants}, steps=steps, lr=lr)


def low_precision_rerun(seeds: Sequence[int], steps: int, lr: float,
                        weight_lrs: Sequence[float]) -> dict:
    """8-bit Adam states (:func:`quantized_adam_run`) and bf16 weights (:func:`low_precision_weights`)."""
    return {"quantized": quantized_adam_run(seeds, steps, lr),
            "bf16_weights": low_precision_weights(weight_lrs, seeds, steps)}


def scaling_rerun(seeds: Sequence[int], steps: int, examples: int, batches: Sequence[int],
                  widths: Sequence[int], sgd_lrs: Sequence[float],
                  adam_lrs: Sequence[float]) -> dict:
    """Best rates against batch size (SGD and Adam, a fixed budget of ``examples``)
    and against width (Adam, SP and μP, ``steps`` steps at batch 128)."""
    out = {}
    for opt, lrs in (("sgd", sgd_lrs), ("adam", adam_lrs)):
        g = best_rate_grid(optimizer=opt, lrs=lrs, seeds=seeds, batches=batches,
                           examples=examples)
        out[f"batch_{opt}"] = {**g, **{"slopes": scaling_summary(g, "batch")["slopes"]}}
    for par in ("sp", "mup"):
        g = best_rate_grid(optimizer="adam", lrs=adam_lrs, seeds=seeds, batches=(128,),
                           widths=widths, parametrization=par, steps=steps)
        out[f"width_{par}"] = {**g, **{"slopes": scaling_summary(g, "width")["slopes"]}}
    return out


def adam_batch_rerun(seeds: Sequence[int], steps: int, batches: Sequence[int],
                     lrs: Sequence[float]) -> dict:
    """Adam's best rate against batch size at a fixed number of ``steps`` for every
    batch (the large batch sees more examples), on a grid reaching higher rates."""
    g = best_rate_grid(optimizer="adam", lrs=lrs, seeds=seeds, batches=batches, steps=steps)
    return {**g, **{"slopes": scaling_summary(g, "batch")["slopes"]}}


def averaging_rerun(seeds: Sequence[int], steps: int, lrs: Sequence[float],
                    decay: float) -> dict:
    """:func:`averaging_run` on a rate grid."""
    return averaging_run(lrs, seeds, steps, decay)


_SGD_LRS = [round(0.003 * 2 ** k, 6) for k in range(10)]
_ADAM_LRS = [round(1e-4 * 2 ** k, 7) for k in range(9)]

RERUNS = (
    Rerun("07-training-runs-spikes", "07-training-runs",
          "each spike fix (update clipping in Wortsman et al.'s form and in the RMS-cap form) "
          "on six seeds at the provoking rate", "training_runs:spikes_rerun",
          {"seeds": [0, 1, 2, 3, 4, 5], "steps": 600, "lr": 0.05,
           "variants": list(SPIKE_VARIANTS)}, 25.0),
    Rerun("07-training-runs-spikes-2000-steps", "07-training-runs",
          "the fixes that removed the spikes still hold at 2,000 steps",
          "training_runs:spikes_rerun",
          {"seeds": [0, 1, 2], "steps": 2000, "lr": 0.05,
           "variants": ["provoked", "β₂ = 0.95", "qk-layernorm"]}, 20.0),
    Rerun("07-training-runs-low-precision", "07-training-runs",
          "a naive 8-bit quantizer needs a non-linear (√v) code for v, block scales make no "
          "difference on this MLP; bf16 weights stall at small rates unless rounded "
          "stochastically", "training_runs:low_precision_rerun",
          {"seeds": [0, 1, 2, 3, 4, 5], "steps": 300, "lr": 0.003,
           "weight_lrs": [1e-4, 3e-4, 1e-3, 3e-3]}, 6.0),
    Rerun("07-training-runs-scaling", "07-training-runs",
          "how the best rate moves with batch size (SGD, Adam) and width (SP, μP)",
          "training_runs:scaling_rerun",
          {"seeds": [0, 1, 2], "steps": 256, "examples": 32768, "batches": [32, 128, 512],
           "widths": [64, 256], "sgd_lrs": _SGD_LRS, "adam_lrs": _ADAM_LRS}, 12.0),
    Rerun("07-training-runs-averaging", "07-training-runs",
          "an EMA of the weights at a constant rate against a cooldown, each at its best rate",
          "training_runs:averaging_rerun",
          {"seeds": [0, 1, 2], "steps": 600, "lrs": [3e-4, 1e-3, 3e-3, 1e-2, 3e-2],
           "decay": 0.98}, 4.0),
    Rerun("07-training-runs-averaging-2400-steps", "07-training-runs",
          "the EMA-versus-cooldown comparison at four times the steps",
          "training_runs:averaging_rerun",
          {"seeds": [0, 1, 2], "steps": 2400, "lrs": [3e-4, 1e-3, 3e-3, 1e-2, 3e-2],
           "decay": 0.98}, 15.0),
    Rerun("07-training-runs-averaging-2400-steps-ema-0995", "07-training-runs",
          "a longer EMA (β = 0.995) against the cooldown at 2,400 steps",
          "training_runs:averaging_rerun",
          {"seeds": [0, 1, 2], "steps": 2400, "lrs": [3e-4, 1e-3, 3e-3, 1e-2, 3e-2],
           "decay": 0.995}, 15.0),
    Rerun("07-training-runs-adam-batch-fixed-steps", "07-training-runs",
          "Adam's best rate against batch size at a fixed number of steps (256) instead of "
          "a fixed epoch", "training_runs:adam_batch_rerun",
          {"seeds": [0, 1, 2], "steps": 256, "batches": [32, 128, 512],
           "lrs": [round(1e-4 * 2 ** k, 7) for k in range(11)]}, 8.0),
)
