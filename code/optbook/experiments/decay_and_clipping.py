r"""Chapter 7.3-7.4: which parameters get weight decay, and global-norm gradient clipping.

7.3 (Weight Decayの設定): AdamW on a small MLP with LayerNorm, decaying every
parameter against decaying only the weight matrices
(:func:`optbook.torch.param_groups`), with the LayerNorm gains' norms recorded
during training, at a fixed weight decay and at a fixed decay horizon
:math:`\eta\lambda T`; and what nanoGPT, timm, Hugging Face's ``Trainer`` and
``param_groups`` decay on a toy model holding the parameters on which they
disagree (their rules transcribed from their sources).

7.4 (勾配クリッピング): Pascanu et al.'s (2013) one-unit recurrent network
:math:`x_t = w\,\sigma(x_{t-1}) + b` whose loss has a cliff; a small tanh RNN
trained with no clipping, global-norm clipping and per-tensor clipping; the
distribution of gradient norms with the clipped fraction; clipping on every
step against an unclipped smaller rate, for SGD and for Adam, on the RNN and on
the 7.3 MLP; and gradient scaling for mixed precision (unscale before clipping).
"""
from __future__ import annotations

import fnmatch
import math
import re
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
    "nanogpt_decayed", "timm_decayed", "hf_trainer_decayed", "optbook_decayed", "DECAY_CODEBASES",
    "HandWrittenRMSNorm", "LayerScale", "ToyViT", "decay_table", "print_decay_table",
    "DecayRun", "decay_run", "decay_grid", "decay_point", "print_decay_grid",
    # 7.4
    "cliff_loss", "cliff_landscape", "cliff_descent", "memory_task", "TinyRNN",
    "ClipRun", "clip_run", "clipped_fraction", "scaled_grad_norms", "CLIP_OPTIMIZERS",
    "clipping_problem_run", "clip_arms", "print_clip_arms", "adam_constant_factor",
    "print_clip_as_rate", "adam_step_sizes", "print_adam_step_sizes",
    # stored reruns
    "decay_rerun", "clipping_rerun", "clip_direction_rerun", "clip_as_rate_rerun",
    "decay_horizon_rerun", "print_decay_horizon", "RERUNS",
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


# What four code bases decay, transcribed from their sources (none is a dependency):
#   nanoGPT  model.py, GPT.configure_optimizers: decay iff p.dim() >= 2
#            (github.com/karpathy/nanoGPT @ 3adf61e1)
#   timm     timm/optim/_param_groups.py, param_groups_weight_decay, called by
#            create_optimizer_v2 with model.no_weight_decay(): no decay if
#            param.ndim <= 1 or name.endswith(".bias") or fnmatch(name, an entry of the list)
#            (github.com/huggingface/pytorch-image-models @ aa4b5850)
#   HF       transformers/trainer.py, Trainer.get_decay_parameter_names: no decay inside an
#            nn.LayerNorm, or if the lower-cased name matches one of
#            bias | layernorm | rmsnorm | (^|\.)norm($|\.) | _norm($|\.)
#            (github.com/huggingface/transformers @ 000945a9; trainer_pt_utils.get_parameter_names)

_HF_FORBIDDEN = [r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)"]


def nanogpt_decayed(model: nn.Module) -> set[str]:
    """Names nanoGPT's ``configure_optimizers`` decays: tensors with at least 2 dimensions."""
    return {n for n, p in model.named_parameters() if p.requires_grad and p.dim() >= 2}


def timm_decayed(model: nn.Module) -> set[str]:
    """Names timm's ``param_groups_weight_decay`` decays (with the model's ``no_weight_decay()``
    list, as ``create_optimizer_v2`` passes it)."""
    listed = getattr(model, "no_weight_decay", lambda: set())()
    return {n for n, p in model.named_parameters()
            if p.requires_grad and not (p.ndim <= 1 or n.endswith(".bias")
                                        or any(fnmatch.fnmatch(n, pat) for pat in listed))}


def hf_trainer_decayed(model: nn.Module) -> set[str]:
    """Names Hugging Face ``Trainer.get_decay_parameter_names`` returns: not inside an
    ``nn.LayerNorm``, and no match of its name patterns (bias, layernorm, rmsnorm, norm)."""
    patterns = [re.compile(p) for p in _HF_FORBIDDEN]

    def names(module: nn.Module) -> list[str]:
        out = []
        for child_name, child in module.named_children():
            out += [f"{child_name}.{n}" for n in names(child)
                    if not isinstance(child, nn.LayerNorm)
                    and not any(p.search(f"{child_name}.{n}".lower()) for p in patterns)]
        out += [k for k in module._parameters if not any(p.search(k.lower()) for p in patterns)]
        return out

    return set(names(model))


def optbook_decayed(model: nn.Module) -> set[str]:
    """Names :func:`optbook.torch.param_groups` decays, with its defaults."""
    return set(param_groups(model, 0.1)[0]["param_names"])


#: code base -> (model -> names it decays)
DECAY_CODEBASES = {"nanoGPT": nanogpt_decayed, "timm": timm_decayed,
                   "HF Trainer": hf_trainer_decayed, "optbook": optbook_decayed}


class HandWrittenRMSNorm(nn.Module):
    """RMSNorm written out, as LLaMA's reference code does (not an ``nn.RMSNorm``)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class LayerScale(nn.Module):
    """CaiT's layer scale (timm's ``LayerScale``): ``x * gamma``, ``gamma`` of shape (dim,)."""

    def __init__(self, dim: int, init_values: float = 1e-5):
        super().__init__()
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x):
        return x * self.gamma


class ToyViT(nn.Module):
    """A few lines of a ViT/CLIP-like model that hold the five parameters whose decay the
    code bases disagree on: a class token and a position embedding (3-D, listed by
    ``no_weight_decay()`` as timm's ViT lists them), a layer-scale ``gamma`` (1-D), a
    hand-written RMSNorm named ``ln_f`` (nanoGPT's name for the last norm) and a 0-d
    temperature ``logit_scale`` (CLIP's)."""

    def __init__(self, dim: int = 16, patches: int = 4, patch_dim: int = 12, classes: int = 3):
        super().__init__()
        self.patch_embed = nn.Linear(patch_dim, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(0.02 * torch.randn(1, patches + 1, dim))
        self.norm1 = nn.LayerNorm(dim)
        self.mlp = nn.Linear(dim, dim)
        self.ls1 = LayerScale(dim)
        self.ln_f = HandWrittenRMSNorm(dim)
        self.head = nn.Linear(dim, classes)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_token"}

    def forward(self, x):                                  # x: (batch, patches, patch_dim)
        h = self.patch_embed(x)
        h = torch.cat([self.cls_token.expand(len(x), -1, -1), h], dim=1) + self.pos_embed
        h = h + self.ls1(torch.relu(self.mlp(self.norm1(h))))
        return self.head(self.ln_f(h[:, 0])) * self.logit_scale.exp()


def decay_table(model: nn.Module) -> dict[str, dict[str, bool]]:
    """parameter name -> {code base: decayed?} for every code base of :data:`DECAY_CODEBASES`."""
    decayed = {base: rule(model) for base, rule in DECAY_CODEBASES.items()}
    return {n: {base: n in names for base, names in decayed.items()}
            for n, _ in model.named_parameters()}


def print_decay_table(model: nn.Module) -> None:
    """Print :func:`decay_table` with each parameter's shape ("decay" or "-")."""
    table = decay_table(model)
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    bases = list(DECAY_CODEBASES)
    print(f"{'parameter':<20}{'shape':>12}" + "".join(f"{b:>12}" for b in bases))
    for name, row in table.items():
        print(f"{name:<20}{str(shapes[name]):>12}"
              + "".join(f"{'decay' if row[b] else '-':>12}" for b in bases))


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
    optimizer: str = "sgd"


#: optimizer name -> torch.optim class (Adam with torch's defaults, betas (0.9, 0.999), eps 1e-8)
CLIP_OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}


def clip_run(mode: str = "global", tau: Optional[float] = 1.0, lr: float = 0.1, seed: int = 0,
             steps: int = 300, batch_size: int = 32, hidden: int = 32,
             recurrent_gain: float = 1.5, length: int = 30, optimizer: str = "sgd") -> ClipRun:
    """``optimizer`` (``"sgd"`` or ``"adam"``, torch.optim) on :func:`memory_task` with
    ``mode`` in ``{"none", "global", "per_tensor"}``.

    ``global``: one factor :math:`\\min(1, \\tau/\\lVert g\\rVert)` for all gradients
    (``optbook.torch.clip_grad_norm_``); ``per_tensor``: the same rule applied to each
    parameter tensor separately, which changes the update's direction.
    """
    if mode not in ("none", "global", "per_tensor"):
        raise ValueError(f"Invalid mode: {mode!r} (choose 'none', 'global' or 'per_tensor')")
    if mode != "none" and not (tau is not None and tau > 0):
        raise ValueError(f"Invalid tau: {tau!r} (must be > 0 when clipping)")
    if optimizer not in CLIP_OPTIMIZERS:
        raise ValueError(f"Invalid optimizer: {optimizer!r} (choose one of "
                         f"{sorted(CLIP_OPTIMIZERS)})")
    x, y = memory_task(2048, length, seed)
    x_val, y_val = memory_task(512, length, seed + 10_000)
    model = TinyRNN(hidden, recurrent_gain, seed)
    opt = CLIP_OPTIMIZERS[optimizer](model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    params = list(model.parameters())
    losses, norms = [], []
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch_size,), generator=g)
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x[idx]), y[idx])
        if not torch.isfinite(loss):
            return ClipRun(mode, tau, lr, seed, np.array(losses), np.array(norms), math.inf,
                           optimizer)
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
                   val if math.isfinite(val) else math.inf, optimizer)


def _global_norm(params) -> float:
    """:math:`\\sqrt{\\sum_p \\lVert g_p\\rVert^2}` over the gradients of ``params``."""
    with torch.no_grad():
        return float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in params
                                    if p.grad is not None)))


def clipped_fraction(grad_norms, tau: float) -> float:
    """Fraction of steps whose gradient norm exceeds ``tau`` (where clipping fires)."""
    norms = np.asarray(grad_norms, dtype=float)
    return float(np.mean(norms > tau)) if len(norms) else float("nan")


# --- 7.4 clipping as a smaller rate: SGD yes, Adam no --------------------------------------

CLIP_PROBLEMS = ("rnn", "mlp")


def clipping_problem_run(problem: str, optimizer: str, lr: float, tau: Optional[float],
                         seed: int = 0, steps: int = 200) -> tuple[float, np.ndarray]:
    """``(validation loss, global gradient norm before clipping per step)`` of one run.

    ``problem="rnn"``: :func:`clip_run` on the notebook's RNN (16 units, sequences of
    20), mean-squared error, batches of 32. ``problem="mlp"``: the 7.3 MLP (2 x 64,
    LayerNorm) on :func:`decay_problem`, cross-entropy, batches of 64, through
    :func:`optbook.experiments.training.train` (which clips with torch's
    ``clip_grad_norm_``). ``optimizer`` is ``"sgd"`` or ``"adam"`` (torch.optim,
    defaults otherwise, no weight decay); ``tau=None`` does not clip. A diverged run
    has validation loss ``inf``.
    """
    if problem not in CLIP_PROBLEMS:
        raise ValueError(f"Invalid problem: {problem!r} (choose one of {CLIP_PROBLEMS})")
    if optimizer not in CLIP_OPTIMIZERS:
        raise ValueError(f"Invalid optimizer: {optimizer!r} (choose one of "
                         f"{sorted(CLIP_OPTIMIZERS)})")
    if problem == "rnn":
        r = clip_run("none" if tau is None else "global", tau, lr, seed, steps=steps,
                     optimizer=optimizer, **_RNN)
        return r.val_loss, r.grad_norm
    data = decay_problem(seed)
    model = mlp(data.x_train.shape[1], data.classes, hidden=64, depth=2, layer_norm=True,
                seed=seed)
    opt = CLIP_OPTIMIZERS[optimizer](model.parameters(), lr=lr)
    history = train(model, opt, data, steps=steps, batch_size=64, clip_norm=tau,
                    eval_every=steps, seed=seed)
    val = history.final_val_loss
    return (val if (math.isfinite(val) and not history.diverged) else math.inf), history.grad_norm


def _round_sig(x: float, digits: int = 2) -> float:
    return float(f"{x:.{digits - 1}e}")


def clip_arms(problem: str, optimizer: str, lr: float, tau: float, seeds: Sequence[int],
              steps: int) -> dict:
    r"""The three arms that tell "clipping = a smaller rate" apart from "clipping = no change".

    At rate ``lr``: unclipped; clipped at ``tau``; and unclipped at ``lr * f``, where ``f``
    is the clipped arm's mean clip factor :math:`\min(1, \tau/\lVert g\rVert)` over steps and
    seeds (rounded to 2 significant digits). Returns ``{"factor", "factor_range" (min and max
    over steps), "clipped" (fraction of clipped steps), "lr_times_factor", "arms": {name:
    val_loss per seed}, "closer_to"}``; ``closer_to`` names the unclipped arm whose losses
    are nearer to the clipped arm's (mean absolute difference of the logs, seed by seed):
    ``"the same rate"`` or ``"the rate times f"``.
    """
    clipped = [clipping_problem_run(problem, optimizer, lr, tau, s, steps) for s in seeds]
    norms = [n for _, n in clipped]
    factors = [np.minimum(1.0, tau / n) for n in norms]
    f = float(np.mean([fs.mean() for fs in factors]))
    small = _round_sig(lr * f)
    arms = {f"none, η = {lr:g}": [clipping_problem_run(problem, optimizer, lr, None, s, steps)[0]
                                  for s in seeds],
            f"clip τ = {tau:g}, η = {lr:g}": [v for v, _ in clipped],
            f"none, η × f = {small:.2g}": [clipping_problem_run(problem, optimizer, small, None,
                                                                s, steps)[0] for s in seeds]}
    names = list(arms)
    c = np.log(np.array(arms[names[1]]))
    gap = {label: float(np.mean(np.abs(np.log(np.array(arms[name])) - c)))
           for label, name in (("the same rate", names[0]), ("the rate times f", names[2]))}
    return {"factor": f, "factor_range": [float(min(x.min() for x in factors)),
                                          float(max(x.max() for x in factors))],
            "clipped": float(np.mean([clipped_fraction(n, tau) for n in norms])),
            "lr_times_factor": small, "arms": arms, "gap": gap,
            "closer_to": min(gap, key=gap.get)}


def print_clip_arms(result: dict, title: str) -> None:
    """Print :func:`clip_arms`' result: losses per seed, mean and range, and the verdict."""
    lo, hi = result["factor_range"]
    print(f"{title}: clipping fires on {result['clipped']:.0%} of steps, factor "
          f"min(1, τ/‖g‖) {result['factor']:.2f} on average ({lo:.2f}–{hi:.2f})")
    for name, vals in result["arms"].items():
        v = np.array(vals, dtype=float)
        shown = ", ".join("diverged" if not np.isfinite(x) else f"{x:.3f}" for x in v)
        mean = f"{v.mean():.3f}" if np.isfinite(v).all() else "–"
        print(f"  {name:<27}{shown:<26} mean {mean}")
    names = list(result["arms"])
    none, clip, small = (np.array(result["arms"][n], dtype=float) for n in names)
    yes = lambda ok: "yes" if ok else "NO"
    print(f"  - mean clip factor f ≈ {result['factor']:.1f}; clipping fired on more than 90% of "
          f"steps, with factors varying more than tenfold: "
          f"{yes(result['clipped'] > 0.9 and hi > 10 * lo)}")
    print(f"  - the clipped arm is closer to the unclipped arm at {result['closer_to']}")
    print(f"  - the unclipped arm at η × f is worse than both others on every seed: "
          f"{yes(bool(np.all(small > np.maximum(none, clip))))}")


def clip_as_rate_rerun(cases: Sequence[dict], seeds: Sequence[int], steps: dict,
                       grid_seeds: Sequence[int], long_seeds: Sequence[int],
                       long_factor: int) -> dict:
    """For each case ``{"problem", "optimizer", "lrs", "tau"}``: a grid of rates, unclipped
    and clipped at ``tau`` (``steps[problem]`` steps, ``grid_seeds``); then, at the best
    unclipped rate of the grid (lowest mean validation loss), :func:`clip_arms` after
    ``steps[problem]`` steps on ``seeds`` and after ``long_factor`` times as many steps on
    ``long_seeds``. ``{"<problem>-<optimizer>": {"tau", "grid": {lr: {"none", "clip"}},
    "best_lr", "short", "long"}}``."""
    out = {}
    for case in cases:
        problem, optimizer, lrs, tau = case["problem"], case["optimizer"], case["lrs"], case["tau"]
        n = steps[problem]
        grid = {}
        for lr in lrs:
            grid[f"{lr:g}"] = {
                "none": [clipping_problem_run(problem, optimizer, lr, None, s, n)[0]
                         for s in grid_seeds],
                "clip": [clipping_problem_run(problem, optimizer, lr, tau, s, n)[0]
                         for s in grid_seeds]}
        best = min(lrs, key=lambda lr: np.mean(grid[f"{lr:g}"]["none"]))
        out[f"{problem}-{optimizer}"] = {
            "tau": tau, "grid": grid, "best_lr": best,
            "short": clip_arms(problem, optimizer, best, tau, seeds, n),
            "long": clip_arms(problem, optimizer, best, tau, long_seeds, n * long_factor)}
    return out


def print_clip_as_rate(record: dict) -> None:
    """Print a :func:`clip_as_rate_rerun` file: each case's rate grid (mean validation loss
    unclipped and clipped), then :func:`print_clip_arms` at its best rate, short and long."""
    params, results = record["params"], record["results"]
    print(f"stored rerun {record['name']}: grid on seeds "
          f"{', '.join(map(str, params['grid_seeds']))}; arms on seeds "
          f"{', '.join(map(str, params['seeds']))} and, at {params['long_factor']}x the steps, "
          f"on seeds {', '.join(map(str, params['long_seeds']))}")
    for case in params["cases"]:
        key = f"{case['problem']}-{case['optimizer']}"
        r = results[key]
        n = params["steps"][case["problem"]]
        name = {"rnn": "RNN", "mlp": "MLP"}[case["problem"]]
        opt = {"sgd": "SGD", "adam": "Adam"}[case["optimizer"]]
        print(f"\n{opt} on the {name}, τ = {r['tau']:g}; mean validation loss after {n} steps:")
        print(" " * 8 + "".join(f"{'η = ' + lr:>12}" for lr in r["grid"]))
        for arm in ("none", "clip"):
            cells = []
            for lr in r["grid"]:
                v = np.array(r["grid"][lr][arm], dtype=float)
                cells.append(f"{v.mean():.3f}" if np.isfinite(v).all() else "diverged")
            print(f"  {arm:<6}" + "".join(f"{c:>12}" for c in cells))
        print(f"  best unclipped rate: {r['best_lr']:g}")
        print_clip_arms(r["short"], f"  {n} steps")
        print_clip_arms(r["long"], f"  {n * params['long_factor']} steps")


def adam_step_sizes(lr: float, tau: float, seeds: Sequence[int], steps: int,
                    window: int) -> dict:
    """Adam on the 7.3 MLP (:func:`clipping_problem_run`'s ``"mlp"``), unclipped and clipped
    at ``tau``: per block of ``window`` consecutive steps, the mean RMS of the parameter
    update (all parameters stacked), the mean gradient norm before clipping and the
    fraction of steps whose norm exceeds ``tau`` (where clipping fires, or would), and the
    validation loss at the end. ``{"none"|"clip": {"update": [[per block] per seed],
    "grad": [[per block] per seed], "fired": [[per block] per seed], "val_loss": [per
    seed]}}``."""
    out = {}
    for arm, clip in (("none", None), ("clip", tau)):
        rows = {"update": [], "grad": [], "fired": [], "val_loss": []}
        for seed in seeds:
            data = decay_problem(seed)
            model = mlp(data.x_train.shape[1], data.classes, hidden=64, depth=2,
                        layer_norm=True, seed=seed)
            params = list(model.parameters())
            flat = lambda: torch.cat([p.detach().flatten() for p in params])
            previous = [flat()]
            updates = []

            def on_step(t):
                now = flat()
                updates.append(float((now - previous[0]).pow(2).mean().sqrt()))
                previous[0] = now

            history = train(model, torch.optim.Adam(params, lr=lr), data, steps=steps,
                            batch_size=64, clip_norm=clip, eval_every=steps, seed=seed,
                            on_step=on_step)
            blocks = len(updates) // window
            u = np.array(updates[:blocks * window]).reshape(blocks, window).mean(axis=1)
            norms = np.array(history.grad_norm[:blocks * window]).reshape(blocks, window)
            rows["update"].append([float(x) for x in u])
            rows["grad"].append([float(x) for x in norms.mean(axis=1)])
            rows["fired"].append([float(x) for x in (norms > tau).mean(axis=1)])
            rows["val_loss"].append(history.final_val_loss)
        out[arm] = rows
    return out


def print_adam_step_sizes(record: dict) -> None:
    """Print :func:`adam_step_sizes`' file: per block of steps, the update RMS and the
    gradient norm of both arms (means over seeds), the ratio of the clipped to the unclipped
    update RMS seed by seed (mean and range), the fraction of the clipped arm's steps on
    which clipping fired, the final validation losses, and the
    sum of the update RMS over the run (a path length)."""
    r, p = record["results"], record["params"]
    print(f"stored rerun {record['name']}: Adam on the MLP, η = {p['lr']:g}, clip τ = "
          f"{p['tau']:g}, seeds {', '.join(map(str, record['seeds']))}; means over blocks "
          f"of {p['window']} steps")
    u = {arm: np.mean(np.array(r[arm]["update"]), axis=0) for arm in ("none", "clip")}
    g = {arm: np.mean(np.array(r[arm]["grad"]), axis=0) for arm in ("none", "clip")}
    fired = (np.mean(np.array(r["clip"]["fired"]), axis=0) if "fired" in r["clip"]
             else np.full(len(u["clip"]), np.nan))
    ratio = np.array(r["clip"]["update"]) / np.array(r["none"]["update"])   # seed by seed
    print(f"  {'steps':<12}{'update RMS: unclipped':>23}{'clipped':>10}{'clipped/unclipped':>22}"
          f"{'grad norm: unclipped':>23}{'clipped':>10}{'clip fires':>12}")
    for b in range(len(u["none"])):
        spread = f"{ratio[:, b].mean():.2f} ({ratio[:, b].min():.2f}–{ratio[:, b].max():.2f})"
        print(f"  {b * p['window']:>5}–{(b + 1) * p['window']:<6}{u['none'][b]:>23.1e}"
              f"{u['clip'][b]:>10.1e}{spread:>22}{g['none'][b]:>23.3f}{g['clip'][b]:>10.3f}"
              f"{fired[b]:>12.0%}")
    path = {arm: np.array(r[arm]["update"]).sum(axis=1) * p["window"] for arm in ("none", "clip")}
    for arm, label in (("none", "unclipped"), ("clip", "clipped")):
        v = np.array(r[arm]["val_loss"])
        print(f"  {label:<10} validation loss {', '.join(f'{x:.3f}' for x in v)}; summed update "
              f"RMS {path[arm].mean():.3f} ({path[arm].min():.3f}–{path[arm].max():.3f})")
    print("  - the clipped run travels further (summed update RMS) on every seed: "
          + ("yes" if np.all(path["clip"] > path["none"]) else "NO"))


def adam_constant_factor(seed: int = 0, steps: int = 30, factor: float = 0.05,
                         lr: float = 3e-3) -> dict:
    """Adam on the RNN twice from the same start, once with every gradient multiplied by a
    constant ``factor`` (what clipping would do if every norm were the same), plus once with
    global clipping at τ = 1. Returns the largest parameter difference from the plain run,
    relative to the largest parameter, for ``"constant"`` and ``"clipped"``."""
    def run(transform):
        x, y = memory_task(2048, _RNN["length"], seed)
        model = TinyRNN(_RNN["hidden"], 1.5, seed)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        g = torch.Generator().manual_seed(seed)
        params = list(model.parameters())
        for _ in range(steps):
            idx = torch.randint(0, len(x), (32,), generator=g)
            opt.zero_grad()
            nn.functional.mse_loss(model(x[idx]), y[idx]).backward()
            transform(params)
            opt.step()
        return torch.cat([p.detach().flatten() for p in params])

    def constant(params):
        with torch.no_grad():
            for p in params:
                p.grad.mul_(factor)

    plain = run(lambda params: None)
    scale = float(plain.abs().max())
    return {"constant": float((run(constant) - plain).abs().max()) / scale,
            "clipped": float((run(lambda params: clip_grad_norm_(params, 1.0)) - plain)
                             .abs().max()) / scale}


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
                seeds: Sequence[int], steps: int, record_gains: bool = False) -> dict:
    """:func:`decay_grid` summarised as the chapter prints it: every grid point's validation
    loss per seed and the range of the LayerNorm gains' RMS at the end; each rule's best grid
    point (lowest mean validation loss); and, per seed, the first rule's best minus the
    second's. With ``record_gains`` every point also keeps the gains' RMS during training,
    ``"gain_rms"`` (one list per seed, at ``"record_steps"``), for a figure."""
    grid = decay_grid(rules, lrs, weight_decays, seeds, steps)
    points = []
    for (rule, lr, wd), runs in grid.items():
        point = {"rule": rule, "lr": lr, "weight_decay": wd,
                 "val_loss": [r.final_val_loss for r in runs],
                 "mean": float(np.mean([r.final_val_loss for r in runs])),
                 "gain_rms_end": [float(r.gain_norm[-1]) for r in runs]}
        if record_gains:
            point["record_steps"] = [int(t) for t in runs[0].record_steps]
            point["gain_rms"] = [[float(g) for g in r.gain_norm] for r in runs]
        points.append(point)
    best = {}
    for rule in rules:
        point = min((p for p in points if p["rule"] == rule), key=lambda p: p["mean"])
        best[rule] = {k: point[k] for k in ("lr", "weight_decay", "val_loss", "mean")}
    out = {"points": points, "best": best}
    if len(rules) == 2:
        a, b = (np.array(best[r]["val_loss"]) for r in rules)
        out["best_difference"] = a - b
    return out


def decay_point(record: dict, rule: str, lr: float, weight_decay: float) -> np.ndarray:
    """The per-seed validation losses of one grid point of a :func:`decay_rerun` file."""
    for p in record["results"]["points"]:
        if p["rule"] == rule and p["lr"] == lr and p["weight_decay"] == weight_decay:
            return np.array(p["val_loss"], dtype=float)
    raise KeyError(f"no grid point rule={rule!r}, lr={lr}, weight_decay={weight_decay} in "
                   f"{record.get('name', 'this record')}")


def print_decay_grid(record: dict, per_seed: bool = False) -> None:
    """Print a :func:`decay_rerun` file: the mean validation loss per rate and λ for each
    rule (with ``per_seed=True`` one line per grid point instead, with every seed's loss
    and the range of the LayerNorm gains' RMS at the end), each rule's best grid point
    with its seed range, and the per-seed difference of the two rules' best points."""
    results, params = record["results"], record["params"]
    print(f"stored rerun {record['name']}: seeds {', '.join(map(str, record['seeds']))}; "
          f"{record['steps']} steps; validation loss")
    if per_seed:
        print(f"{'rule':<13}{'eta':>7}{'lambda':>8}   {'val loss per seed':<19}{'mean':>6}"
              f"{'gain RMS at end':>18}")
        for p in results["points"]:
            g = p["gain_rms_end"]
            print(f"{p['rule']:<13}{p['lr']:>7.0e}{p['weight_decay']:>8g}   "
                  f"{', '.join(f'{v:.2f}' for v in p['val_loss']):<19}{p['mean']:>6.3f}"
                  f"{min(g):>11.3f}–{max(g):.3f}")
    else:
        means = {(p["rule"], p["lr"], p["weight_decay"]): p["mean"] for p in results["points"]}
        print(f"{'rule':<13}{'eta':>7}" + "".join(f"{'λ = ' + format(wd, 'g'):>10}"
                                                 for wd in params["weight_decays"]))
        for rule in params["rules"]:
            for lr in params["lrs"]:
                print(f"{rule:<13}{lr:>7.0e}" + "".join(f"{means[(rule, lr, wd)]:>10.3f}"
                                                       for wd in params["weight_decays"]))
    for rule in params["rules"]:
        b = results["best"][rule]
        print(f"  best for {rule:<13}: eta = {b['lr']:.0e}, lambda = {b['weight_decay']:g}: "
              f"val loss {b['mean']:.3f} (seeds {min(b['val_loss']):.2f}–"
              f"{max(b['val_loss']):.2f})")
    if "best_difference" in results:
        rules = params["rules"]
        print(f"  {rules[0]} minus {rules[1]} at their best points, per seed: "
              + ", ".join(f"{d:+.3f}" for d in results["best_difference"]))


def decay_horizon_rerun(rules: Sequence[str], lrs: Sequence[float], horizons: Sequence[float],
                        seeds: Sequence[int], steps: int) -> dict:
    """The decay arms at a fixed *decay horizon* :math:`\\eta\\lambda T` rather than a fixed
    :math:`\\lambda`: for every rate ``lr`` and horizon ``h``, :math:`\\lambda = h/(\\eta T)`
    with ``T = steps``, so that a weight no gradient holds up shrinks by the same
    :math:`(1-\\eta\\lambda)^T \\approx e^{-h}` at every rate. ``{"points": [{rule, lr,
    horizon, weight_decay, val_loss per seed, mean, gain_rms_end per seed}], "best":
    {horizon: {rule: best point's lr, val_loss, mean}}}``."""
    points = []
    for h in horizons:
        for rule in rules:
            for lr in lrs:
                wd = h / (lr * steps)
                runs = [decay_run(rule, lr, wd, s, steps) for s in seeds]
                points.append({"rule": rule, "lr": lr, "horizon": h, "weight_decay": wd,
                               "val_loss": [r.final_val_loss for r in runs],
                               "mean": float(np.mean([r.final_val_loss for r in runs])),
                               "gain_rms_end": [float(r.gain_norm[-1]) for r in runs]})
    best = {}
    for h in horizons:
        best[f"{h:g}"] = {}
        for rule in rules:
            p = min((p for p in points if p["rule"] == rule and p["horizon"] == h),
                    key=lambda p: p["mean"])
            best[f"{h:g}"][rule] = {k: p[k] for k in ("lr", "weight_decay", "val_loss", "mean",
                                                      "gain_rms_end")}
    return {"points": points, "best": best}


#: Per-seed differences of validation loss at most this large count as ties.
TIE = 0.005


def print_decay_horizon(record: dict) -> None:
    """Print a :func:`decay_horizon_rerun` file: mean validation loss per rate, horizon and
    rule, the gains' RMS at the end, each rule's best rate per horizon with the seed range,
    and the per-seed difference of the two rules' bests, with its mean and how many seeds
    each rule wins (differences within :data:`TIE` count as ties)."""
    results, params = record["results"], record["params"]
    rules = params["rules"]
    print(f"stored rerun {record['name']}: seeds {', '.join(map(str, record['seeds']))}; "
          f"T = {record['steps']} steps; λ = ηλT / (η T)")
    for h in params["horizons"]:
        print(f"ηλT = {h:g}   {'eta':>7}" + "".join(f"{r + ' (gain RMS)':>28}" for r in rules))
        for lr in params["lrs"]:
            cells = []
            for rule in rules:
                p = next(p for p in results["points"]
                         if p["rule"] == rule and p["lr"] == lr and p["horizon"] == h)
                cells.append(f"{p['mean']:.3f} ({np.mean(p['gain_rms_end']):.2f})")
            print(f"{'':<12}{lr:>7.0e}" + "".join(f"{c:>28}" for c in cells))
        bests = results["best"][f"{h:g}"]
        for rule in rules:
            b = bests[rule]
            print(f"  best for {rule:<13}: eta = {b['lr']:.0e} (λ = {b['weight_decay']:.3g}): "
                  f"{b['mean']:.3f} (seeds {min(b['val_loss']):.2f}–{max(b['val_loss']):.2f})")
        if len(rules) == 2:
            d = np.array(bests[rules[0]]["val_loss"]) - np.array(bests[rules[1]]["val_loss"])
            print(f"  {rules[0]} minus {rules[1]}, best against best, per seed: "
                  + ", ".join(f"{x:+.3f}" for x in d))
            print(f"    mean {d.mean():+.3f}; {rules[0]} lower on {np.sum(d < -TIE)}, higher "
                  f"on {np.sum(d > TIE)}, within {TIE} on {np.sum(np.abs(d) <= TIE)} of "
                  f"{len(d)} seeds")


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

_CLIP_CASES = [
    {"problem": "rnn", "optimizer": "sgd", "lrs": [0.003, 0.01, 0.03, 0.1, 0.3], "tau": 1.0},
    {"problem": "rnn", "optimizer": "adam", "lrs": [0.001, 0.003, 0.01, 0.03, 0.1], "tau": 1.0},
    {"problem": "mlp", "optimizer": "sgd", "lrs": [0.01, 0.03, 0.1, 0.3, 1.0], "tau": 0.1},
    {"problem": "mlp", "optimizer": "adam", "lrs": [0.0001, 0.0003, 0.001, 0.003, 0.01],
     "tau": 0.1},
]

RERUNS = (
    Rerun(name="07-decay-seeds-3-5", chapter="07-decay-and-clipping",
          claim="The decay grid (300 steps) on seeds 3-5: do decay on all parameters and decay "
                "on weight matrices only tie at their best grid points, as on seeds 0-2?",
          function="decay_and_clipping:decay_rerun",
          params={**_DECAY_GRID, "seeds": [3, 4, 5], "steps": 300}, minutes=0.2),
    Rerun(name="07-decay-grid-edges", chapter="07-decay-and-clipping",
          claim="The decay grid extended to five rates (η = 3e-5 and 3e-3 added) and λ = 3 "
                "(seeds 0-2, 300 steps): is the best rate still interior, and does λ = 3 "
                "change either arm's best?",
          function="decay_and_clipping:decay_rerun",
          params={"rules": ["all", "param_groups"], "lrs": [3e-5, 1e-4, 3e-4, 1e-3, 3e-3],
                  "weight_decays": [0.1, 1.0, 3.0], "seeds": [0, 1, 2], "steps": 300,
                  "record_gains": True},
          minutes=1.8),
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
    Rerun(name="07-clipping-as-rate", chapter="07-decay-and-clipping",
          claim="Is clipping on every step a smaller learning rate (η times the mean clip "
                "factor f)? For SGD and Adam on the RNN and on the 7.3 MLP, each at its best "
                "unclipped rate of a 5-rate grid (seeds 0-2), on seeds 0-5 at the notebook's "
                "horizon and on seeds 0-2 at 10x it: is the clipped run closer to the "
                "unclipped run at η or at η f?",
          function="decay_and_clipping:clip_as_rate_rerun",
          params={"cases": _CLIP_CASES, "seeds": [0, 1, 2, 3, 4, 5],
                  "steps": {"rnn": 200, "mlp": 300}, "grid_seeds": [0, 1, 2],
                  "long_seeds": [0, 1, 2], "long_factor": 10},
          minutes=7.0),
    Rerun(name="07-decay-horizon-300-steps", chapter="07-decay-and-clipping",
          claim="Decay on all parameters against the exclusions at a fixed ηλT (0.1, 1 and 3, "
                "an LLM run's is about 3) instead of a fixed λ, 5 rates, seeds 0-5, 300 steps: "
                "does the exclusion matter once the decay horizon is an LLM's?",
          function="decay_and_clipping:decay_horizon_rerun",
          params={"rules": ["all", "param_groups"], "lrs": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2],
                  "horizons": [0.1, 1.0, 3.0], "seeds": [0, 1, 2, 3, 4, 5], "steps": 300},
          minutes=1.5),
    Rerun(name="07-decay-horizon-3000-steps", chapter="07-decay-and-clipping",
          claim="The same at ηλT = 3 over 3,000 steps (10x), 5 rates from 1e-5 (so that both "
                "arms' best rates are interior), seeds 0-5: does the 300-step verdict hold at "
                "the longer horizon?",
          function="decay_and_clipping:decay_horizon_rerun",
          params={"rules": ["all", "param_groups"], "lrs": [1e-5, 3e-5, 1e-4, 3e-4, 1e-3],
                  "horizons": [3.0], "seeds": [0, 1, 2, 3, 4, 5], "steps": 3000},
          minutes=5.0),
    Rerun(name="07-clipping-adam-step-size", chapter="07-decay-and-clipping",
          claim="Adam on the 7.3 MLP at η = 3e-4 for 3,000 steps, unclipped and clipped at "
                "τ = 0.1 (seeds 0-2): how long are the updates, block by block, with and "
                "without clipping, and which run travels further?",
          function="decay_and_clipping:adam_step_sizes",
          params={"lr": 3e-4, "tau": 0.1, "seeds": [0, 1, 2], "steps": 3000, "window": 250},
          minutes=0.8),
)
