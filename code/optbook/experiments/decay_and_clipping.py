r"""Chapter 7.3-7.4: which parameters get weight decay, and global-norm gradient clipping.

7.3 (Weight Decayの設定): AdamW on a small MLP with LayerNorm, decaying every
parameter against decaying only the weight matrices
(:func:`optbook.torch.param_groups`), with the LayerNorm gains' norms recorded
during training; and a side-by-side of ``param_groups`` with nanoGPT's rule
"decay a tensor iff it has at least 2 dimensions" on modules where the two
disagree.

7.4 (勾配クリッピング): Pascanu et al.'s (2013) one-unit recurrent network
:math:`x_t = w\,\sigma(x_{t-1}) + b` whose loss has a cliff; a small tanh RNN
trained with no clipping, global-norm clipping and per-tensor clipping; the
distribution of gradient norms with the clipped fraction; and gradient
scaling for mixed precision (unscale before clipping).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..torch import clip_grad_norm_, param_groups
from .reruns import Rerun
from .training import Dataset, mlp, teacher_classification, train

__all__ = [
    # 7.3
    "DECAY_RULES", "nanogpt_groups", "decay_groups", "decay_split", "HandWrittenLayerNorm",
    "DecayRun", "decay_run", "decay_grid",
    # 7.4
    "cliff_loss", "cliff_landscape", "cliff_descent", "memory_task", "TinyRNN",
    "ClipRun", "clip_run", "clipped_fraction", "scaled_grad_norms",
    # stored reruns
    "decay_rerun", "clipping_rerun", "clip_direction_rerun", "RERUNS",
]


# --- 7.3 weight-decay exclusions -------------------------------------------------------

def nanogpt_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """nanoGPT's rule (``configure_optimizers`` in Karpathy's model.py): decay every
    parameter tensor with ``dim() >= 2``, nothing else."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [(n, p) for n, p in named if p.dim() >= 2]
    keep = [(n, p) for n, p in named if p.dim() < 2]
    return [{"params": [p for _, p in decay], "param_names": [n for n, _ in decay],
             "weight_decay": weight_decay},
            {"params": [p for _, p in keep], "param_names": [n for n, _ in keep],
             "weight_decay": 0.0}]


def _all_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    named = list(model.named_parameters())
    return [{"params": [p for _, p in named], "param_names": [n for n, _ in named],
             "weight_decay": weight_decay}]


#: arm name -> ``(model, weight_decay) -> param groups``
DECAY_RULES = {"all": _all_groups, "param_groups": param_groups, "nanogpt": nanogpt_groups}


def decay_groups(rule: str, model: nn.Module, weight_decay: float) -> list[dict]:
    """Param groups for AdamW under ``rule`` (a key of :data:`DECAY_RULES`)."""
    if rule not in DECAY_RULES:
        raise ValueError(f"Invalid rule: {rule!r} (choose one of {sorted(DECAY_RULES)})")
    return DECAY_RULES[rule](model, weight_decay)


def decay_split(model: nn.Module) -> dict[str, tuple[bool, bool]]:
    """parameter name -> (decayed by ``param_groups``, decayed by nanoGPT's rule)."""
    ours = set(param_groups(model, 0.1)[0]["param_names"])
    theirs = set(nanogpt_groups(model, 0.1)[0]["param_names"])
    return {n: (n in ours, n in theirs) for n, _ in model.named_parameters()}


class HandWrittenLayerNorm(nn.Module):
    """A LayerNorm written out by hand, as nanoGPT and many code bases do (not an
    ``nn.LayerNorm``, so a rule that looks at module types cannot recognise it)."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        return nn.functional.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


def decay_problem(seed: int = 0) -> Dataset:
    """A smaller training set than 7.2's (512 examples, 10% flipped labels), so that
    regularisation can matter."""
    return teacher_classification(n_train=512, n_val=1024, dim=20, classes=4, seed=seed)


@dataclass
class DecayRun:
    rule: str
    lr: float
    weight_decay: float
    seed: int
    record_steps: np.ndarray
    gain_norm: np.ndarray             # RMS of all LayerNorm gains at record_steps
    final_val_loss: float
    final_train_loss: float


def decay_run(rule: str, lr: float, weight_decay: float, seed: int = 0, steps: int = 400,
              batch_size: int = 64, record_every: int = 20) -> DecayRun:
    """AdamW (torch.optim) on a 2-layer MLP with LayerNorm under decay rule ``rule``."""
    data = decay_problem(seed)
    model = mlp(data.x_train.shape[1], data.classes, hidden=64, depth=2, layer_norm=True,
                seed=seed)
    gains = [m.weight for m in model.modules() if isinstance(m, nn.LayerNorm)]
    opt = torch.optim.AdamW(decay_groups(rule, model, weight_decay), lr=lr)
    record_steps, norms = [0], [_rms(gains)]

    def on_step(t):
        if (t + 1) % record_every == 0:
            record_steps.append(t + 1)
            norms.append(_rms(gains))

    history = train(model, opt, data, steps=steps, batch_size=batch_size, eval_every=steps,
                    seed=seed, on_step=on_step)
    return DecayRun(rule, lr, weight_decay, seed, np.array(record_steps), np.array(norms),
                    history.final_val_loss, float(np.mean(history.train_loss[-50:])))


def _rms(tensors) -> float:
    with torch.no_grad():
        return float(torch.cat([t.flatten() for t in tensors]).pow(2).mean().sqrt())


def decay_grid(rules: Sequence[str], lrs: Sequence[float], weight_decays: Sequence[float],
               seeds: Sequence[int] = (0, 1, 2), steps: int = 400) -> dict:
    """``{(rule, lr, weight_decay): [DecayRun per seed]}`` over the whole grid."""
    return {(rule, lr, wd): [decay_run(rule, lr, wd, seed, steps) for seed in seeds]
            for rule in rules for lr in lrs for wd in weight_decays}


# --- 7.4 the cliff -----------------------------------------------------------------------

def cliff_loss(w, b, steps: int = 50, x0: float = 0.5, target: float = 0.7):
    r"""Loss :math:`(x_T - 0.7)^2` of the one-unit RNN :math:`x_t = w\,\sigma(x_{t-1}) + b`
    (Pascanu et al. 2013, fig. 6), elementwise over tensors ``w``, ``b``."""
    x = torch.full_like(w, x0)
    for _ in range(steps):
        x = w * torch.sigmoid(x) + b
    return (x - target) ** 2


def cliff_landscape(ws: np.ndarray, bs: np.ndarray, steps: int = 50) -> np.ndarray:
    """The loss on the grid ``bs`` x ``ws`` (rows: b, columns: w), float64."""
    W, B = torch.meshgrid(torch.as_tensor(ws, dtype=torch.float64),
                          torch.as_tensor(bs, dtype=torch.float64), indexing="xy")
    return cliff_loss(W, B, steps).numpy()


def cliff_descent(start: tuple[float, float], lr: float, iterations: int,
                  clip: Optional[float] = None, steps: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Gradient descent on the cliff loss, optionally with global-norm clipping at ``clip``.

    Returns (path of shape (iterations + 1, 2), gradient norm before clipping per step).
    """
    theta = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    path, norms = [theta.detach().clone().numpy()], []
    for _ in range(iterations):
        theta.grad = None
        cliff_loss(theta[0], theta[1], steps).backward()
        norm = (clip_grad_norm_([theta], clip) if clip is not None
                else _global_norm([theta]))
        norms.append(float(norm))
        with torch.no_grad():
            theta -= lr * theta.grad
        path.append(theta.detach().clone().numpy())
    return np.array(path), np.array(norms)


# --- 7.4 a small recurrent network ----------------------------------------------------------

def memory_task(n: int = 512, length: int = 30, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequences of standard normal scalars; the target is the *first* element, to be read
    out at the end: the gradient must travel back through all ``length`` steps."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, length, 1, generator=g)
    return x, x[:, 0, :].clone()


class TinyRNN(nn.Module):
    """``nn.RNN`` (tanh, one layer) with a linear read-out of the last hidden state.

    The recurrent matrix starts as ``recurrent_gain`` times a random orthogonal
    matrix: above 1 the network sits near the edge where gradients explode.
    """

    def __init__(self, hidden: int = 32, recurrent_gain: float = 1.5, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.rnn = nn.RNN(1, hidden, batch_first=True)
        self.readout = nn.Linear(hidden, 1)
        with torch.no_grad():
            nn.init.orthogonal_(self.rnn.weight_hh_l0, gain=recurrent_gain)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.readout(out[:, -1])


@dataclass
class ClipRun:
    mode: str
    tau: Optional[float]
    lr: float
    seed: int
    loss: np.ndarray                  # minibatch loss per step
    grad_norm: np.ndarray             # global norm before clipping, per step
    val_loss: float                   # on fresh sequences, after training (inf if diverged)


def clip_run(mode: str = "global", tau: Optional[float] = 1.0, lr: float = 0.1, seed: int = 0,
             steps: int = 300, batch_size: int = 32, hidden: int = 32,
             recurrent_gain: float = 1.5, length: int = 30) -> ClipRun:
    """SGD on :func:`memory_task` with ``mode`` in ``{"none", "global", "per_tensor"}``.

    ``global``: one factor :math:`\\min(1, \\tau/\\lVert g\\rVert)` for all gradients
    (``optbook.torch.clip_grad_norm_``); ``per_tensor``: the same rule applied to each
    parameter tensor separately, which changes the update's direction.
    """
    if mode not in ("none", "global", "per_tensor"):
        raise ValueError(f"Invalid mode: {mode!r} (choose 'none', 'global' or 'per_tensor')")
    if mode != "none" and not (tau is not None and tau > 0):
        raise ValueError(f"Invalid tau: {tau!r} (must be > 0 when clipping)")
    x, y = memory_task(2048, length, seed)
    x_val, y_val = memory_task(512, length, seed + 10_000)
    model = TinyRNN(hidden, recurrent_gain, seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    params = list(model.parameters())
    losses, norms = [], []
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch_size,), generator=g)
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x[idx]), y[idx])
        if not torch.isfinite(loss):
            return ClipRun(mode, tau, lr, seed, np.array(losses), np.array(norms), math.inf)
        loss.backward()
        if mode == "global":
            norm = clip_grad_norm_(params, tau)
        else:
            norm = _global_norm(params)
            if mode == "per_tensor":
                for p in params:
                    clip_grad_norm_([p], tau)
        losses.append(loss.item())
        norms.append(float(norm))
        opt.step()
    with torch.no_grad():
        val = nn.functional.mse_loss(model(x_val), y_val).item()
    return ClipRun(mode, tau, lr, seed, np.array(losses), np.array(norms),
                   val if math.isfinite(val) else math.inf)


def _global_norm(params) -> float:
    """:math:`\\sqrt{\\sum_p \\lVert g_p\\rVert^2}` over the gradients of ``params``."""
    with torch.no_grad():
        return float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in params
                                    if p.grad is not None)))


def clipped_fraction(grad_norms, tau: float) -> float:
    """Fraction of steps whose gradient norm exceeds ``tau`` (where clipping fires)."""
    norms = np.asarray(grad_norms, dtype=float)
    return float(np.mean(norms > tau)) if len(norms) else float("nan")


# --- 7.4 mixed precision --------------------------------------------------------------

def scaled_grad_norms(seed: int = 0, init_scale: float = 2.0 ** 16) -> dict[str, float]:
    """The global gradient norm of one RNN step, three ways, with ``torch.amp.GradScaler``:

    ``fp32`` -- an ordinary backward pass; ``scaled`` -- after
    ``scaler.scale(loss).backward()`` (what clipping would see if called too
    early); ``unscaled`` -- after ``scaler.unscale_(optimizer)``, the value to
    clip.  Also returns the scale.
    """
    x, y = memory_task(32, 30, seed)
    model = TinyRNN(seed=seed)
    params = list(model.parameters())
    nn.functional.mse_loss(model(x), y).backward()
    fp32 = _global_norm(params)
    model.zero_grad()
    opt = torch.optim.SGD(params, lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=init_scale)
    scaler.scale(nn.functional.mse_loss(model(x), y)).backward()
    scaled = _global_norm(params)
    scaler.unscale_(opt)
    unscaled = _global_norm(params)
    return {"fp32": fp32, "scaled": scaled, "unscaled": unscaled, "scale": scaler.get_scale()}


# --- stored reruns (book/data/reruns/07-*.json, made by `make reruns`) ----------------------

def decay_rerun(rules: Sequence[str], lrs: Sequence[float], weight_decays: Sequence[float],
                seeds: Sequence[int], steps: int) -> dict:
    """:func:`decay_grid` summarised as the chapter prints it: every grid point's validation
    loss per seed and the range of the LayerNorm gains' RMS at the end; each rule's best grid
    point (lowest mean validation loss); and, per seed, the first rule's best minus the
    second's."""
    grid = decay_grid(rules, lrs, weight_decays, seeds, steps)
    points = [{"rule": rule, "lr": lr, "weight_decay": wd,
               "val_loss": [r.final_val_loss for r in runs],
               "mean": float(np.mean([r.final_val_loss for r in runs])),
               "gain_rms_end": [float(r.gain_norm[-1]) for r in runs]}
              for (rule, lr, wd), runs in grid.items()]
    best = {}
    for rule in rules:
        point = min((p for p in points if p["rule"] == rule), key=lambda p: p["mean"])
        best[rule] = {k: point[k] for k in ("lr", "weight_decay", "val_loss", "mean")}
    out = {"points": points, "best": best}
    if len(rules) == 2:
        a, b = (np.array(best[r]["val_loss"]) for r in rules)
        out["best_difference"] = a - b
    return out


def clipping_rerun(seeds: Sequence[int], steps: Sequence[int], hidden: int, length: int,
                   lr: float, stable_lr: float, small_lr: float) -> dict:
    """The section's arms on other seeds and horizons, as the notebook runs them: no clipping
    at ``small_lr``, ``stable_lr`` and ``lr``; at ``lr``, global and per-tensor clipping at
    τ = 1 and global clipping at the 90th percentile of the norms of the unclipped
    ``stable_lr`` runs (rounded to 2 decimals). ``{str(steps): {"tau90", "norm_median",
    "arms": {arm: {"val_loss" per seed ("inf" = diverged), "clipped", "factor"}}}}``."""
    out = {}
    for n in steps:
        run = lambda mode, tau, eta, s: clip_run(mode, tau, eta, s, steps=n, hidden=hidden,
                                                 length=length)
        stable = [run("none", None, stable_lr, s) for s in seeds]
        norms = np.concatenate([r.grad_norm for r in stable])
        tau90 = round(float(np.percentile(norms, 90)), 2)
        arms = {f"none, η = {small_lr:g}": [run("none", None, small_lr, s) for s in seeds],
                f"none, η = {stable_lr:g}": stable,
                f"none, η = {lr:g}": [run("none", None, lr, s) for s in seeds],
                f"global τ = 1, η = {lr:g}": [run("global", 1.0, lr, s) for s in seeds],
                f"per-tensor τ = 1, η = {lr:g}": [run("per_tensor", 1.0, lr, s) for s in seeds],
                f"global τ = p90, η = {lr:g}": [run("global", tau90, lr, s) for s in seeds]}
        out[str(n)] = {"tau90": tau90, "norm_median": float(np.median(norms)),
                       "arms": {name: _arm_summary(runs) for name, runs in arms.items()}}
    return out


def _arm_summary(runs: Sequence[ClipRun]) -> dict:
    tau = runs[0].tau
    return {"val_loss": [r.val_loss for r in runs],
            "steps_run": [len(r.loss) for r in runs],
            "clipped": (float(np.mean([clipped_fraction(r.grad_norm, tau) for r in runs]))
                        if tau is not None else None),
            "factor": (float(np.mean([np.minimum(1.0, tau / r.grad_norm).mean() for r in runs]))
                       if tau is not None else None)}


def clip_direction_rerun(seeds: Sequence[int], steps: int, hidden: int, length: int, lr: float,
                         global_taus: Sequence[float], per_tensor_taus: Sequence[float]) -> dict:
    """Global against per-tensor clipping at several thresholds, at rate ``lr``:
    ``{arm: {"val_loss" per seed, "clipped", "factor"}}``."""
    arms = {}
    for mode, taus in (("global", global_taus), ("per_tensor", per_tensor_taus)):
        for tau in taus:
            runs = [clip_run(mode, float(tau), lr, s, steps=steps, hidden=hidden, length=length)
                    for s in seeds]
            arms[f"{mode.replace('_', '-')} τ = {tau:g}"] = _arm_summary(runs)
    return arms


_RNN = {"hidden": 16, "length": 20}       # the notebook's RNN
_DECAY_GRID = {"rules": ["all", "param_groups"], "lrs": [1e-4, 3e-4, 1e-3],
               "weight_decays": [0.1, 1.0]}

RERUNS = (
    Rerun(name="07-decay-seeds-3-5", chapter="07-decay-and-clipping",
          claim="The decay grid (300 steps) on seeds 3-5: do decay on all parameters and decay "
                "on weight matrices only tie at their best grid points, as on seeds 0-2?",
          function="decay_and_clipping:decay_rerun",
          params={**_DECAY_GRID, "seeds": [3, 4, 5], "steps": 300}, minutes=0.2),
    Rerun(name="07-decay-grid-edges", chapter="07-decay-and-clipping",
          claim="The decay grid extended by η = 3e-3 and λ = 3 (seeds 0-2, 300 steps): is the "
                "best rate still interior, and does λ = 3 change either arm's best?",
          function="decay_and_clipping:decay_rerun",
          params={"rules": ["all", "param_groups"], "lrs": [1e-4, 3e-4, 1e-3, 3e-3],
                  "weight_decays": [0.1, 1.0, 3.0], "seeds": [0, 1, 2], "steps": 300},
          minutes=1.4),
    Rerun(name="07-decay-1000-steps", chapter="07-decay-and-clipping",
          claim="Both decay arms at η = 3e-4 for 1,000 steps (seeds 0-2): does decaying the "
                "gains help once the run is over-trained?",
          function="decay_and_clipping:decay_rerun",
          params={"rules": ["all", "param_groups"], "lrs": [3e-4], "weight_decays": [0.1, 1.0],
                  "seeds": [0, 1, 2], "steps": 1000},
          minutes=0.5),
    Rerun(name="07-clipping-seeds-3-5", chapter="07-decay-and-clipping",
          claim="The clipping arms on seeds 3-5, after 200 and 600 steps: does unclipped "
                "η = 0.1 blow up, does clipping keep it finite, and how do the clipped arms "
                "compare with the unclipped smaller rates?",
          function="decay_and_clipping:clipping_rerun",
          params={"seeds": [3, 4, 5], "steps": [200, 600], **_RNN, "lr": 0.1,
                  "stable_lr": 0.03, "small_lr": 0.01},
          minutes=0.9),
    Rerun(name="07-clipping-direction", chapter="07-decay-and-clipping",
          claim="Global (τ = 1, 2) against per-tensor (τ = 0.25, 0.5, 1) clipping at η = 0.1, "
                "seeds 0-5: does per-tensor clipping at a smaller τ match global τ = 1?",
          function="decay_and_clipping:clip_direction_rerun",
          params={"seeds": [0, 1, 2, 3, 4, 5], "steps": 200, **_RNN, "lr": 0.1,
                  "global_taus": [1.0, 2.0], "per_tensor_taus": [0.25, 0.5, 1.0]},
          minutes=0.4),
)
