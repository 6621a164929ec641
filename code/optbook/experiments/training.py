"""One small training harness shared by every chapter's experiments.

Chapters compare optimizers, batch sizes and schedules on the *same* small
problems, so the data, the models and the loop live here once:

* :func:`teacher_classification` -- synthetic data labelled by a random
  "teacher" network, with a fraction of flipped labels so that a student can
  overfit and regularisation has something to do;
* :func:`mlp` -- a small multilayer perceptron (optionally with LayerNorm);
* :func:`train` -- minibatch training for a fixed number of steps with any
  ``torch.optim.Optimizer`` (``optbook.torch`` classes included), an optional
  LR scheduler and global-norm clipping; it records what the chapters plot and
  stops cleanly, flagging divergence, when the loss stops being finite.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

import numpy as np
import torch
from torch import nn

__all__ = ["Dataset", "History", "teacher_classification", "mlp", "epoch_batches", "train",
           "evaluate"]


def _positive_int(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"Invalid {name}: {value!r} (must be an integer >= {low})")
    return int(value)


@dataclass
class Dataset:
    """Training and validation tensors; ``y`` holds class indices."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    classes: int

    @property
    def n_train(self) -> int:
        return len(self.y_train)


def teacher_classification(n_train: int = 2048, n_val: int = 1024, dim: int = 20,
                           classes: int = 4, teacher_hidden: int = 32,
                           label_noise: float = 0.1, seed: int = 0) -> Dataset:
    """Gaussian inputs labelled by argmax of a random one-hidden-layer tanh network.

    A fraction ``label_noise`` of the *training* labels is replaced by random
    classes (validation labels stay clean), so a large enough student can
    memorise noise: the validation loss then shows over-fitting.
    """
    n_train = _positive_int("n_train", n_train)
    n_val = _positive_int("n_val", n_val)
    dim = _positive_int("dim", dim)
    classes = _positive_int("classes", classes, low=2)
    teacher_hidden = _positive_int("teacher_hidden", teacher_hidden)
    if not 0.0 <= label_noise < 1.0:
        raise ValueError(f"Invalid label_noise: {label_noise} (must lie in [0, 1))")
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(dim, teacher_hidden, generator=g) / math.sqrt(dim)
    w2 = torch.randn(teacher_hidden, classes, generator=g) / math.sqrt(teacher_hidden)
    x = torch.randn(n_train + n_val, dim, generator=g)
    y = (torch.tanh(x @ w1) @ w2).argmax(dim=1)
    y_train = y[:n_train].clone()
    flip = torch.rand(n_train, generator=g) < label_noise
    y_train[flip] = torch.randint(0, classes, (int(flip.sum()),), generator=g)
    return Dataset(x[:n_train], y_train, x[n_train:], y[n_train:], classes)


def mlp(in_dim: int, out_dim: int, hidden: int = 64, depth: int = 2,
        layer_norm: bool = False, seed: int = 0) -> nn.Sequential:
    """``depth`` hidden layers of width ``hidden`` with ReLU (and LayerNorm if asked)."""
    in_dim, out_dim = _positive_int("in_dim", in_dim), _positive_int("out_dim", out_dim)
    hidden, depth = _positive_int("hidden", hidden), _positive_int("depth", depth)
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(depth):
        layers.append(nn.Linear(width, hidden))
        if layer_norm:
            layers.append(nn.LayerNorm(hidden))
        layers.append(nn.ReLU())
        width = hidden
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def epoch_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Index batches without replacement, reshuffled every epoch, forever.

    The last, incomplete batch of an epoch is dropped so that every step sees
    exactly ``batch_size`` examples (the gradient's variance depends on it).
    """
    n, batch_size = _positive_int("n", n), _positive_int("batch_size", batch_size)
    if batch_size > n:
        raise ValueError(f"Invalid batch_size: {batch_size} (larger than the {n} examples)")
    while True:
        perm = torch.randperm(n, generator=generator)
        for start in range(0, n - batch_size + 1, batch_size):
            yield perm[start:start + batch_size]


@dataclass
class History:
    """What :func:`train` records. Per-step arrays have one entry per step taken."""

    train_loss: np.ndarray            # minibatch loss before each step
    lr: np.ndarray                    # learning rate of group 0 used by each step
    grad_norm: np.ndarray             # global gradient norm before clipping
    eval_steps: np.ndarray            # steps after which the model was evaluated
    val_loss: np.ndarray
    val_accuracy: np.ndarray
    diverged: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def final_val_loss(self) -> float:
        return float(self.val_loss[-1]) if len(self.val_loss) else float("nan")


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` on ``(x, y)``."""
    was_training = model.training
    model.eval()
    logits = model(x)
    model.train(was_training)
    loss = nn.functional.cross_entropy(logits, y).item()
    return loss, (logits.argmax(dim=1) == y).float().mean().item()


def train(model: nn.Module, optimizer: torch.optim.Optimizer, data: Dataset, *, steps: int,
          batch_size: int, scheduler=None, clip_norm: Optional[float] = None,
          eval_every: int = 50, seed: int = 0,
          on_step: Optional[Callable[[int], None]] = None) -> History:
    """Train for ``steps`` minibatch steps of cross-entropy; evaluate every ``eval_every``.

    ``scheduler`` (a ``torch.optim.lr_scheduler``) is stepped after every
    optimizer step. ``clip_norm`` clips the global gradient norm first
    (article 7.4). ``on_step(t)`` is called after step ``t`` (e.g. to record
    trust ratios). Training stops early, with ``diverged=True``, at the first
    non-finite loss.
    """
    steps = _positive_int("steps", steps)
    eval_every = _positive_int("eval_every", eval_every)
    if clip_norm is not None and not clip_norm > 0:
        raise ValueError(f"Invalid clip_norm: {clip_norm} (must be > 0)")
    batches = epoch_batches(data.n_train, batch_size, torch.Generator().manual_seed(seed))
    params = [p for p in model.parameters() if p.requires_grad]
    losses, lrs, norms = [], [], []
    eval_steps, val_losses, val_accs = [], [], []
    diverged = False
    model.train()
    for t in range(steps):
        idx = next(batches)
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
        if not torch.isfinite(loss):
            diverged = True
            break
        loss.backward()
        norm = torch.sqrt(sum((p.grad.detach() ** 2).sum() for p in params if p.grad is not None))
        if clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, clip_norm)
        losses.append(loss.item())
        lrs.append(optimizer.param_groups[0].get("lr", float("nan")))
        norms.append(norm.item())
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if on_step is not None:
            on_step(t)
        if (t + 1) % eval_every == 0 or t + 1 == steps:
            vl, va = evaluate(model, data.x_val, data.y_val)
            if not math.isfinite(vl):
                diverged = True
                break
            eval_steps.append(t + 1)
            val_losses.append(vl)
            val_accs.append(va)
    return History(np.array(losses), np.array(lrs), np.array(norms), np.array(eval_steps),
                   np.array(val_losses), np.array(val_accs), diverged)
