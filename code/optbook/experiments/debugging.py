r"""Chapter 7.5 (デバッグのヒント, debugging): the article's symptom table, provoked on purpose.

One model -- a 4-layer ReLU MLP trained with SGD + momentum on the shared
teacher-classification problem -- is put into each failure of the article's
table by one setting, then the table's remedy is applied:

* NaN/inf loss -- provoked by a learning rate far too high; remedies: lower
  the rate, clip gradients;
* plateau (停滞) -- a rate far too low, or a warmup longer than the run;
  remedies: raise the rate, shorten the warmup;
* the same flat curve from a rate far too *high* held finite by clipping: the last
  hidden layer is dead (every ReLU is 0 on every input), the logits are the same
  for every input, and only a lower rate (from a fresh start) helps -- raising it,
  the plateau's remedy, makes it worse;
* oscillation (振動) -- a rate too high; remedies: lower the rate, larger
  batches;
* overfitting (過学習) -- few examples, long training; remedies: weight
  decay, dropout.

Three data bugs are provoked the same way (:data:`DATA_BUGS`): shuffled labels, a
validation set that holds training examples (a leak), and a constant input;
:func:`data_checks` runs the checks that catch each one.

Every run records the signals that tell the causes apart: the loss at
initialization (against :math:`\log C`), the gradient norm, the
update-to-parameter ratio :math:`\lVert\Delta\theta\rVert/\lVert\theta\rVert`
per step, and at the end the fraction of dead units in the last hidden layer and
the spread of the logits across inputs.  :func:`diagnose` names the symptom of a
run from these, so the interactive figure can print it.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..checks import dead_unit_fraction, ensure_finite, find_nonfinite
from .reruns import Rerun
from .training import Dataset, History, teacher_classification, train

__all__ = ["Setting", "SYMPTOMS", "DATA_BUGS", "make_model", "DebugRun", "run_setting",
           "run_seeds", "diagnose", "logit_spread", "summarize", "symptom_header",
           "print_symptom_row", "event_steps", "plateau_verdict",
           "data_checks", "data_bug_table", "print_data_bug_table",
           "first_nonfinite_gradient", "nonfinite_report", "anomaly_report",
           "arithmetic_nan_message", "step_too_large_message", "data_nan_message", "symptom_grid",
           "symptoms_rerun", "RERUNS"]


@dataclass(frozen=True)
class Setting:
    """One training configuration of the chapter's model."""

    lr: float = 0.05
    batch_size: int = 64
    steps: int = 200
    clip: Optional[float] = None      # global-norm threshold tau, None = no clipping
    warmup: int = 0                   # linear warmup steps
    optimizer: str = "sgd"            # "sgd" (momentum 0.9) or "adamw"
    weight_decay: float = 0.0
    dropout: float = 0.0
    n_train: int = 2048
    hidden: int = 64
    depth: int = 4
    data_bug: Optional[str] = None    # one of DATA_BUGS' keys, None = clean data


#: The overfitting runs: few examples, a wide network, AdamW.
_SMALL = dict(optimizer="adamw", lr=3e-3, n_train=256, hidden=128, depth=2, steps=300)

#: symptom -> (setting that provokes it, {remedy: setting with the remedy applied})
SYMPTOMS = {
    "NaN/inf loss": (Setting(lr=3.0),
                     {"lower the rate": Setting(lr=0.05),
                      "clip at τ = 1": Setting(lr=3.0, clip=1.0)}),
    "plateau": (Setting(lr=1e-3),
                {"raise the rate": Setting(lr=0.05)}),
    "plateau (dead units)": (Setting(lr=3.0, clip=1.0),
                             {"raise the rate": Setting(lr=10.0, clip=1.0),
                              "lower the rate": Setting(lr=0.05, clip=1.0)}),
    "plateau (warmup)": (Setting(lr=0.05, warmup=3000),
                         {"shorter warmup": Setting(lr=0.05, warmup=20)}),
    "oscillation": (Setting(lr=0.25),
                    {"lower the rate": Setting(lr=0.05),
                     "batch × 4": Setting(lr=0.25, batch_size=256)}),
    "overfitting": (Setting(**_SMALL),
                    {"weight decay 1.0": Setting(**_SMALL, weight_decay=1.0),
                     "dropout 0.3": Setting(**_SMALL, dropout=0.3)}),
}


#: data bug -> (setting that provokes it, the same setting on clean data). The leak is
#: provoked on the over-fitting setting, where an honest validation loss rises.
DATA_BUGS = {
    "shuffled labels": (Setting(data_bug="shuffled labels"), Setting()),
    "leak": (Setting(**_SMALL, data_bug="leak"), Setting(**_SMALL)),
    "constant input": (Setting(data_bug="constant input"), Setting()),
}

#: the fraction of the validation set the leak replaces by training examples
LEAK_FRACTION = 0.5


def make_model(setting: Setting, seed: int = 0) -> nn.Sequential:
    """ReLU MLP, 20 inputs, 4 classes, ``depth`` hidden layers, dropout after each ReLU."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    width = 20
    for _ in range(setting.depth):
        layers += [nn.Linear(width, setting.hidden), nn.ReLU()]
        if setting.dropout > 0:
            layers.append(nn.Dropout(setting.dropout))
        width = setting.hidden
    layers.append(nn.Linear(width, 4))
    return nn.Sequential(*layers)


def _problem(setting: Setting, seed: int) -> Dataset:
    """The shared teacher problem, with ``setting.data_bug`` applied:

    * ``"shuffled labels"`` -- the training labels permuted (a loader that shuffles the
      inputs and the labels separately); validation labels stay right;
    * ``"leak"`` -- the first :data:`LEAK_FRACTION` of the validation rows replaced by
      training rows with their training labels (a split that reused indices);
    * ``"constant input"`` -- every input row, training and validation, replaced by the
      first training row (a pipeline that returns one example, or a normalisation that
      wipes the features).
    """
    data = teacher_classification(n_train=setting.n_train, n_val=1024, dim=20, classes=4,
                                  seed=seed)
    bug = setting.data_bug
    if bug is None:
        return data
    if bug not in DATA_BUGS:
        raise ValueError(f"Invalid data_bug: {bug!r} (choose None or one of {list(DATA_BUGS)})")
    g = torch.Generator().manual_seed(10_000 + seed)
    x_train, y_train, x_val, y_val = (data.x_train.clone(), data.y_train.clone(),
                                      data.x_val.clone(), data.y_val.clone())
    if bug == "shuffled labels":
        y_train = y_train[torch.randperm(len(y_train), generator=g)]
    elif bug == "leak":
        k = int(LEAK_FRACTION * len(y_val))
        rows = torch.arange(k) % len(y_train)
        x_val[:k], y_val[:k] = x_train[rows], y_train[rows]
    else:
        x_train[:] = data.x_train[0]
        x_val[:] = data.x_train[0]
    return Dataset(x_train, y_train, x_val, y_val, data.classes)


def _optimizer(setting: Setting, model: nn.Module) -> torch.optim.Optimizer:
    if setting.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=setting.lr, momentum=0.9)
    if setting.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=setting.lr,
                                 weight_decay=setting.weight_decay)
    raise ValueError(f"Invalid optimizer: {setting.optimizer!r} (choose 'sgd' or 'adamw')")


@dataclass
class DebugRun:
    setting: Setting
    seed: int
    history: History
    init_loss: float                  # full training-set loss before the first step
    update_ratio: np.ndarray          # ||theta_{t+1} - theta_t|| / ||theta_t|| per step
    dead_fraction: float = math.nan   # last hidden layer's dead ReLUs at the end (val inputs)
    logit_spread: float = math.nan    # logit_spread of the final model on the val inputs
    clean_val_loss: float = math.nan  # final loss on the val rows that are not training rows

    @property
    def symptom(self) -> str:
        return diagnose(self.history, self.init_loss, dead_fraction=self.dead_fraction,
                        update_ratio=float(np.median(self.update_ratio))
                        if len(self.update_ratio) else None)


def logit_spread(logits: torch.Tensor) -> float:
    """How much the logits vary across inputs: the standard deviation over the examples
    (rows) of each logit, averaged over the classes. 0 means the model predicts the same
    thing for every input."""
    if logits.dim() != 2 or logits.shape[0] < 2:
        raise ValueError(f"Invalid logits: shape {tuple(logits.shape)} "
                         "(need (examples >= 2, classes))")
    return float(logits.detach().std(dim=0).mean())


def _flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()]).clone()


def run_setting(setting: Setting, seed: int = 0) -> DebugRun:
    """Train the chapter's model under ``setting`` through the shared harness.

    Runs are cached by (setting, seed): several symptoms share a remedy, and a
    run is a pure function of both.  Treat the returned run as read-only.
    """
    return _run_setting(setting, seed)


@functools.lru_cache(maxsize=None)
def _run_setting(setting: Setting, seed: int) -> DebugRun:
    if setting.weight_decay and setting.optimizer != "adamw":
        raise ValueError("Invalid weight_decay: only the 'adamw' setting decays")
    data = _problem(setting, seed)
    model = make_model(setting, seed)
    with torch.no_grad():
        model.eval()
        init = nn.functional.cross_entropy(model(data.x_train), data.y_train).item()
        model.train()
    opt = _optimizer(setting, model)
    scheduler = None
    if setting.warmup > 0:
        warm = setting.warmup
        scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: min(1.0, (t + 1) / warm))
    ratios, previous = [], [_flat(model)]

    def on_step(t):
        now = _flat(model)
        ratios.append(float((now - previous[0]).norm() / previous[0].norm()))
        previous[0] = now

    history = train(model, opt, data, steps=setting.steps, batch_size=setting.batch_size,
                    scheduler=scheduler, clip_norm=setting.clip,
                    eval_every=max(1, setting.steps // 20), seed=seed, on_step=on_step)
    dead = spread = clean_loss = math.nan
    if not history.diverged:
        dead = list(dead_unit_fraction(model, data.x_val).values())[-1]
        with torch.no_grad():
            model.eval()
            spread = logit_spread(model(data.x_val))
            seen = {row.tobytes() for row in data.x_train.numpy()}
            clean = torch.tensor([row.tobytes() not in seen for row in data.x_val.numpy()])
            if clean.any():
                clean_loss = nn.functional.cross_entropy(model(data.x_val[clean]),
                                                         data.y_val[clean]).item()
            model.train()
    return DebugRun(setting, seed, history, init, np.array(ratios), dead, spread, clean_loss)


def run_seeds(setting: Setting, seeds: Sequence[int] = (0, 1, 2)) -> list[DebugRun]:
    return [run_setting(setting, seed) for seed in seeds]


#: diagnose's thresholds for splitting a plateau (this book's, set on the chapter's model
#: alone: healthy runs have 5-12% of the last hidden layer dead and an update ratio near
#: 1e-2, a too-low rate 16-27% and 1e-4, a network collapsed by a too-high rate 86-100% and
#: 1e-2; a constant input 52-61% dead). They are absolute numbers for one model: on
#: another, read the signals against a healthy run of that model, not against these.
DEAD_THRESHOLD, RATIO_THRESHOLD = 0.75, 1e-3


def diagnose(history: History, init_loss: float, dead_fraction: Optional[float] = None,
             update_ratio: Optional[float] = None) -> str:
    """Name the symptom of a run, in the article's terms, from its recorded curves.

    In this order: any non-finite loss -> ``"NaN/inf loss"``; the mean training
    loss of the last fifth still above 90% of the initial loss -> a plateau, split
    by the signals when they are given: at least :data:`DEAD_THRESHOLD` of the last
    hidden layer's units dead -> ``"dead units"``; else a median update ratio of at
    least :data:`RATIO_THRESHOLD` (the weights move, the loss does not) ->
    ``"no progress"`` (a rate too high with a partly dead network, or data that carry
    no signal: run :func:`data_checks`); else ``"plateau"`` (the weights hardly move);
    the final validation loss more than 20% above its minimum while the
    training loss is below it -> ``"overfitting"``; over the second half of the
    evaluations, the validation loss moving by more than 0.05 per evaluation on
    average with at least a quarter of the moves upwards -> ``"oscillation"``;
    otherwise ``"healthy"``.

    The thresholds are this book's, chosen on the chapter's model (SGD + momentum, four
    layers of 64 units, 200 steps); what carries to another model is the comparison
    with a healthy run of that same model (a dead fraction far above it, an update
    ratio far below or near it), not the numbers. ``"no progress"`` is the least tested
    label: it rests on the update-ratio threshold alone, which the runs that get it
    here (the shuffled labels and the constant input) pass by less than a factor of 2.
    """
    if history.diverged:
        return "NaN/inf loss"
    loss = history.train_loss
    if len(loss) < 10:
        raise ValueError(f"Invalid history: {len(loss)} steps (need at least 10)")
    k = len(loss) // 5
    late = loss[-k:]
    if late.mean() > 0.9 * init_loss:
        if dead_fraction is not None and dead_fraction >= DEAD_THRESHOLD:
            return "dead units"
        if update_ratio is not None and update_ratio >= RATIO_THRESHOLD:
            return "no progress"
        return "plateau"
    val = history.val_loss
    if len(val) and val[-1] > 1.2 * val.min() and late.mean() < val[-1]:
        return "overfitting"
    moves = np.diff(val[len(val) // 2:])
    if len(moves) >= 2 and np.abs(moves).mean() > 0.05 and np.mean(moves > 0) >= 0.25:
        return "oscillation"
    return "healthy"


# --- data bugs and the checks that catch them ------------------------------------------------

@functools.lru_cache(maxsize=None)
def _overfit_one_batch(setting: Setting, seed: int, batch_size: int = 16, steps: int = 200,
                       lr: float = 1e-2) -> float:
    """Adam at ``lr`` on the first ``batch_size`` training examples of the (possibly
    bugged) data: the final loss, near 0 when model, labels and loop are wired right."""
    data = _problem(setting, seed)
    model = make_model(replace(setting, dropout=0.0), seed)
    x, y = data.x_train[:batch_size], data.y_train[:batch_size]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(nn.functional.cross_entropy(model(x), y))


def _row_overlap(a: torch.Tensor, b: torch.Tensor) -> float:
    """The fraction of the rows of ``b`` that occur, bit for bit, among the rows of ``a``."""
    seen = {row.tobytes() for row in a.numpy()}
    return float(np.mean([row.tobytes() in seen for row in b.numpy()]))


def data_checks(setting: Setting, seed: int = 0) -> dict:
    r"""The checks that catch a data bug, on the data of ``setting`` (its ``data_bug``
    applied) and the run :func:`run_setting` makes of it:

    * ``init_gap`` -- loss at initialization minus :math:`\log C`;
    * ``one_batch_loss`` -- final loss of Adam memorising 16 examples (200 steps);
    * ``constant_features`` -- how many input features have zero variance in training;
    * ``overlap`` -- the fraction of validation rows that are also training rows;
    * ``val_accuracy`` and ``chance`` -- final validation accuracy, and the accuracy of
      always predicting the most frequent training label;
    * ``train_loss`` / ``val_loss`` -- mean training loss of the last fifth of the run,
      final validation loss; ``clean_val_loss`` -- the final model's loss on the
      validation rows that are not training rows (equal to ``val_loss`` without a leak);
    * ``update_ratio`` / ``dead_fraction`` -- the run's median update-to-weight ratio and
      the dead fraction of its last hidden layer at the end (the signals of :func:`diagnose`).

    The overlap counts exact duplicates only (rows equal bit for bit), and the shuffled
    labels provoked here are a full permutation; a partial shuffle or a near-duplicate
    leak is weaker and these checks can miss it.
    """
    data = _problem(setting, seed)
    run = run_setting(setting, seed)
    counts = torch.bincount(data.y_train, minlength=data.classes)
    loss = run.history.train_loss
    out = {"init_gap": run.init_loss - math.log(data.classes),
           "one_batch_loss": _overfit_one_batch(setting, seed),
           "constant_features": int((data.x_train.std(dim=0) == 0).sum()),
           "overlap": _row_overlap(data.x_train, data.x_val),
           "val_accuracy": float(run.history.val_accuracy[-1]),
           "chance": float(counts.max() / counts.sum()),
           "train_loss": float(loss[-max(1, len(loss) // 5):].mean()),
           "val_loss": run.history.final_val_loss,
           "clean_val_loss": run.clean_val_loss,
           "update_ratio": float(np.median(run.update_ratio)),
           "dead_fraction": run.dead_fraction,
           "symptom": run.symptom}
    return out


def data_bug_table(seeds: Sequence[int] = (0, 1, 2)) -> dict:
    """``{bug: {"provoked": {check: [value per seed]}, "clean": {...}}}`` for every
    entry of :data:`DATA_BUGS`, with the checks of :func:`data_checks`."""
    table = {}
    for bug, (bad, clean) in DATA_BUGS.items():
        table[bug] = {}
        for label, setting in (("provoked", bad), ("clean", clean)):
            rows = [data_checks(setting, seed) for seed in seeds]
            table[bug][label] = {key: [row[key] for row in rows] for key in rows[0]}
    return table


def print_data_bug_table(table: dict) -> None:
    """The data-bug table as the page prints it: each check as min–max over the seeds,
    then the run's median update ratio and dead fraction (as in the symptom table)."""
    def span(values, fmt):
        lo, hi = min(values), max(values)
        return f"{lo:{fmt}}" if f"{lo:{fmt}}" == f"{hi:{fmt}}" else f"{lo:{fmt}}–{hi:{fmt}}"
    order = [bug for bug in DATA_BUGS if bug in table] + [b for b in table if b not in DATA_BUGS]
    n = len(table[order[0]]["provoked"]["symptom"])
    print(f"  {'':<10}{'ℓ0 − log C':>13}{'1-batch loss':>14}{'const. feat.':>13}"
          f"{'val∩train':>11}{'val acc':>13}{'majority':>11}{'train loss':>12}"
          f"{'val loss':>12}{'clean val':>12}{'upd ratio':>17}{'dead':>10}"
          f"   diagnosis ({n} seeds)")
    for bug in order:
        print(bug)
        for label in ("provoked", "clean"):
            row = table[bug][label]
            names = sorted(set(row["symptom"]), key=row["symptom"].index)
            clean = [float(v) for v in row["clean_val_loss"] if math.isfinite(float(v))]
            print(f"  {label:<10}{span(row['init_gap'], '+.2f'):>13}"
                  f"{span(row['one_batch_loss'], '.2f'):>14}"
                  f"{span(row['constant_features'], 'd') + '/20':>13}"
                  f"{span([100 * v for v in row['overlap']], '.0f') + ' %':>11}"
                  f"{span(row['val_accuracy'], '.2f'):>13}{span(row['chance'], '.2f'):>11}"
                  f"{span(row['train_loss'], '.2f'):>12}{span(row['val_loss'], '.2f'):>12}"
                  f"{span(clean, '.2f') if clean else '(none)':>12}"
                  f"{span(row['update_ratio'], '.1e'):>17}"
                  f"{span([100 * v for v in row['dead_fraction']], '.0f') + ' %':>10}"
                  f"   {', '.join(names)}")


# --- where does a NaN start? ----------------------------------------------------------------

class NormFeature(nn.Module):
    """Appends the Euclidean norm of each input row, written by hand as
    ``sqrt(sum(x ** 2))``: its backward pass is ``x / norm``, which is 0/0 for an
    all-zero row (padding)."""

    def forward(self, x):
        return torch.cat([x, x.pow(2).sum(dim=1, keepdim=True).sqrt()], dim=1)


def _nan_model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 20), NormFeature(), nn.Linear(21, 4))


def _padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 20, generator=g)
    x[3] = 0.0                        # one padding row
    return x, torch.randint(0, 4, (8,), generator=g)


def first_nonfinite_gradient() -> tuple[float, Optional[str], str]:
    """Backward through :class:`NormFeature` on a batch with one all-zero row.

    Returns (the loss, which is finite; the name of the first parameter whose
    gradient ``optbook.ensure_finite`` rejects; its error message).
    """
    model = _nan_model()
    x, y = _padded_batch()
    model[0].bias.data.zero_()        # keeps the padding row at exactly zero after layer 0
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    names = [n for n, _ in model.named_parameters()]
    grads = [p.grad for p in model.parameters()]
    check = ensure_finite()
    try:
        check.update(grads, check.init(grads))
    except FloatingPointError as error:
        index = int(str(error).split("parameter array ")[1].split(" ")[0])
        return loss.item(), names[index], str(error)
    return loss.item(), None, ""


def nonfinite_report():
    """:func:`optbook.checks.find_nonfinite` on the same model and batch: which module
    output's gradient turned non-finite first (a :class:`optbook.checks.NonFiniteReport`)."""
    model = _nan_model()
    x, y = _padded_batch()
    model[0].bias.data.zero_()
    return find_nonfinite(model, lambda: nn.functional.cross_entropy(model(x), y))


def _chain_run(model: nn.Module, lr: float, batches, norms: Optional[list] = None
               ) -> tuple[Optional[int], str]:
    """SGD + momentum 0.9 as an optbook chain with ``ensure_finite`` first, over
    ``batches`` (pairs x, y): (the step at which ensure_finite raised, its message),
    or (None, "") if it never did. If ``norms`` is a list, the gradient norm of the
    first parameter is appended to it at every step."""
    import optbook
    from ..torch import ChainOptimizer
    opt = ChainOptimizer(model.parameters(),
                         optbook.chain(ensure_finite(), optbook.momentum(lr, 0.9)))
    for t, (x, y) in enumerate(batches):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        if norms is not None:
            norms.append(float(next(model.parameters()).grad.norm()))
        try:
            opt.step()
        except FloatingPointError as error:
            return t, str(error)
    return None, ""


def arithmetic_nan_message(steps: int = 20) -> tuple[Optional[int], str]:
    """The norm-feature model trained at a healthy rate (0.05) with ``ensure_finite`` in
    the chain on ``steps`` ordinary batches, then the batch with a padding row: the step
    at which ensure_finite raises and its message (an arithmetic NaN: no large step
    preceded it)."""
    model = _nan_model()
    g = torch.Generator().manual_seed(1)
    ordinary = [(torch.randn(8, 20, generator=g), torch.randint(0, 4, (8,), generator=g))
                for _ in range(steps)]
    model[0].bias.data.zero_()
    model[0].bias.requires_grad_(False)  # keeps the padding row at exactly zero after layer 0
    return _chain_run(model, 0.05, ordinary + [_padded_batch()])


def step_too_large_message(seed: int = 0, lr: float = 3.0, steps: int = 200
                           ) -> tuple[Optional[int], str]:
    """The chapter's MLP at rate ``lr`` (SGD + momentum, batch 64) with ``ensure_finite``
    in the chain: the step at which it raises and its message (a NaN from steps that
    grew too large)."""
    setting = Setting(lr=lr)
    data = _problem(setting, seed)
    model = make_model(setting, seed)
    from .training import epoch_batches
    idx = epoch_batches(data.n_train, setting.batch_size, torch.Generator().manual_seed(seed))
    batches = ((data.x_train[i], data.y_train[i]) for i in (next(idx) for _ in range(steps)))
    return _chain_run(model, lr, batches)


def data_nan_message(seed: int = 0, head_scale: float = 1e-2, bad_step: int = 100,
                     lr: float = 0.05) -> tuple[Optional[int], float, str]:
    """The chapter's MLP with its output layer scaled by ``head_scale`` (a small output
    layer, as many initializations use), trained at a healthy rate ``lr`` with
    ``ensure_finite`` in the chain, and one ``inf`` put into the input batch of step
    ``bad_step`` (a NaN from the data). Returns the step at which ensure_finite raised,
    how many times the first layer's gradient norm grew in healthy training (the largest
    norm before ``bad_step`` over the first step's), and the message."""
    from .training import epoch_batches
    setting = Setting(lr=lr)
    data = _problem(setting, seed)
    model = make_model(setting, seed)
    with torch.no_grad():
        model[-1].weight.mul_(head_scale)
    idx = epoch_batches(data.n_train, setting.batch_size, torch.Generator().manual_seed(seed))
    batches = []
    for t in range(bad_step + 1):
        i = next(idx)
        x = data.x_train[i].clone()
        if t == bad_step:
            x[5, 3] = float("inf")
        batches.append((x, data.y_train[i]))
    norms: list = []
    step, message = _chain_run(model, lr, batches, norms)
    # growth over the first step's norm; a zero first norm (a zero head) grows infinitely
    growth = max(norms[:bad_step]) / norms[0] if norms[0] > 0 else math.inf
    return step, growth, message


def anomaly_report() -> str:
    """The first line of the error ``torch.autograd.detect_anomaly`` raises for the same
    backward pass: it names the operation whose gradient first turned NaN."""
    model = _nan_model()
    x, y = _padded_batch()
    model[0].bias.data.zero_()
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # anomaly mode warns that it is slow
        with torch.autograd.detect_anomaly():
            loss = nn.functional.cross_entropy(model(x), y)
            try:
                loss.backward()
            except RuntimeError as error:
                return str(error).splitlines()[0]
    return ""


# --- the interactive figure's data -------------------------------------------------------------

def symptom_grid(lrs: Sequence[float], taus: Sequence[Optional[float]],
                 warmups: Sequence[int], seeds: Sequence[int] = (0, 1, 2),
                 steps: int = 200) -> dict:
    """Training-loss curves over learning rate x clipping threshold x warmup, every seed.

    Returns ``{(lr, tau, warmup): {"loss": (seeds, steps) array, NaN after divergence,
    "symptoms": [diagnosis per seed]}}`` -- plain numbers, as an in-page figure stores them.
    """
    grid = {}
    base = Setting(steps=steps)
    for lr in lrs:
        for tau in taus:
            for warmup in warmups:
                runs = [run_setting(replace(base, lr=float(lr), clip=tau, warmup=int(warmup)),
                                    seed) for seed in seeds]
                curves = np.full((len(seeds), steps), np.nan)
                for i, run in enumerate(runs):
                    curves[i, :len(run.history.train_loss)] = run.history.train_loss
                grid[(lr, tau, warmup)] = {"loss": curves,
                                           "symptoms": [r.symptom for r in runs]}
    return grid


def draw_symptom_frame(grid: dict, lr: float, tau: Optional[float], warmup: int, *,
                       pyplot: bool = False):
    """One frame of the interactive figure: the training-loss curves of every seed at
    (``lr``, ``tau``, ``warmup``), the symptom :func:`diagnose` names in the title."""
    from ..figures import plotting
    cell = grid[(lr, tau, warmup)]
    fig, ax = plotting.subplots(1, 1, pyplot=pyplot)
    steps = np.arange(1, cell["loss"].shape[1] + 1)
    for i, curve in enumerate(cell["loss"]):
        shown = np.where(np.isfinite(curve), np.minimum(curve, 1e3), np.nan)
        ax.semilogy(steps, shown, color=f"C{i}", linewidth=1, label=f"seed {i}")
    ax.axhline(math.log(4), color="0.5", linestyle=":", label="log C (chance)")
    names = sorted(set(cell["symptoms"]), key=cell["symptoms"].index)
    clip = "no clipping" if tau is None else f"τ = {tau:g}"
    ax.set(xlabel="step", ylabel="training loss (minibatch)", ylim=(0.2, 1e3),
           title=f"η = {lr:g}, {clip}, warmup {warmup}: {' / '.join(names)}")
    ax.legend(loc="upper right", fontsize=7)
    return fig


def symptom_explorer(grid: dict):
    """The grid of :func:`symptom_grid` as a stored-runs figure drawn in the page
    (:func:`optbook.figures.curves_figure`): a slider over the stored learning
    rates, menus for clipping and warmup; every seed's training loss (log scale), the
    final losses as mean (min–max) over seeds or the step at which a seed diverged,
    and the symptom :func:`diagnose` names for each seed.  The still image and the
    kernel widget are :func:`draw_symptom_frame`."""
    from ..figures import Axis, Mark, Panel, Series, curves_figure
    lrs = sorted({k[0] for k in grid})
    taus = sorted({k[1] for k in grid}, key=lambda t: -1 if t is None else t)
    warmups = sorted({k[2] for k in grid})
    tau_names = ["off" if t is None else f"{t:g}" for t in taus]
    steps = next(iter(grid.values()))["loss"].shape[1]
    cell = lambda lr, tau, warmup: grid[(lr, taus[tau_names.index(tau)], warmup)]

    def notes(lr, tau, warmup):
        return ["symptom per seed (G.diagnose): " + ", ".join(cell(lr, tau, warmup)["symptoms"])]

    return curves_figure(
        lambda lr, tau, warmup: {"sgd": cell(lr, tau, warmup)["loss"]},
        axes=[Axis("lr", "η", lrs, default=0.05 if 0.05 in lrs else lrs[0]),
              Axis("tau", "clip τ", tau_names),
              Axis("warmup", "warmup steps", warmups, menu=True)],
        panels=[Panel("training loss (minibatch), each seed", x=list(range(1, steps + 1)),
                      ylabel="training loss", yscale="log", ylim=(0.2, 1e3),
                      marks=[Mark("hline", y=math.log(4), text="log C (chance)")])],
        series=[Series("sgd", "SGD + momentum", color="#1f77b4", mean=False)],
        title="learning rate × clipping × warmup: the symptom of each run",
        headline="η = {lr}, clipping τ = {tau}, warmup {warmup} steps, " + f"{steps} steps",
        notes=notes,
        draw=lambda lr, tau, warmup: draw_symptom_frame(grid, lr, taus[tau_names.index(tau)], warmup))


# --- stored reruns (book/data/reruns/07-*.json, made by `make reruns`) ----------------------

def summarize(runs: Sequence[DebugRun]) -> dict:
    """One row of the chapter's table: each seed's diagnosis and validation loss (the best
    before divergence for a diverged run), how many diverged and, per seed, after how many
    finite steps (``diverged_after``, None if it did not) and the step of its lowest
    validation loss (``best_step``), the median over seeds of the median gradient norm and
    update ratio, and the mean loss at initialization."""
    return {"symptoms": [r.symptom for r in runs],
            "dead_fraction": [r.dead_fraction for r in runs],
            "logit_spread": [r.logit_spread for r in runs],
            "val_loss": [float(r.history.val_loss.min()) if r.history.diverged
                         else r.history.final_val_loss for r in runs],
            "diverged": int(sum(r.history.diverged for r in runs)),
            "diverged_after": [len(r.history.train_loss) if r.history.diverged else None
                               for r in runs],
            "best_step": [int(r.history.eval_steps[int(np.argmin(r.history.val_loss))])
                          if len(r.history.val_loss) else None for r in runs],
            "grad_norm": float(np.median([np.median(r.history.grad_norm) for r in runs])),
            "update_ratio": float(np.median([np.median(r.update_ratio) for r in runs])),
            "init_loss": float(np.mean([r.init_loss for r in runs]))}


def symptom_header(signals: bool = True) -> str:
    """The header of :func:`print_symptom_row`'s table (with the same ``signals``)."""
    head = (f"  {'':<16}{'diagnosis (3 seeds)':<25}{'val loss':^11}{'NaN':>5}"
            f"{'|g| med':>8}{'upd ratio':>10}{'loss_0':>7}")
    return head + (f"{'dead':>10}{'logit sd':>11}" if signals else "")


def _span(values, fmt: str, scale: float = 1.0) -> str:
    values = [scale * float(v) for v in values if math.isfinite(float(v))]
    if not values:
        return "—"
    lo, hi = f"{min(values):{fmt}}", f"{max(values):{fmt}}"
    return lo if lo == hi else f"{lo}–{hi}"


def print_symptom_row(label: str, row: dict, signals: bool = True) -> None:
    """One line of the chapter's symptom table from a :func:`summarize` row: the
    diagnoses, the validation loss (min–max over seeds), diverged seeds, median gradient
    norm and update ratio, mean loss at initialization, and (if ``signals``) min–max over
    the finished seeds of the dead fraction of the last hidden layer and of the logit
    spread."""
    names = row["symptoms"]
    diag = ", ".join(sorted(set(names), key=names.index))
    n = len(names)
    print(f"  {label:<16}{diag:<25}{_span(row['val_loss'], '.2f'):^11}"
          f"{row['diverged']:>3}/{n}{row['grad_norm']:>8.3f}{row['update_ratio']:>10.1e}"
          f"{row['init_loss']:>7.3f}"
          + (f"{_span(row['dead_fraction'], '.0f', 100) + ' %':>10}"
             f"{_span(row['logit_spread'], '.2f'):>11}" if signals else ""))


def event_steps(rows: dict, seeds: Sequence[int]) -> list[str]:
    """Lines naming, per seed, when the provoked runs' events happen, from
    ``{symptom: summarize row of the provoked setting}``: after how many finite steps each
    ``"NaN/inf loss"`` run diverged ("never" if it did not), and at which step each
    ``"overfitting"`` run reached its lowest validation loss."""
    seeds = ", ".join(map(str, seeds))
    lines = []
    if "NaN/inf loss" in rows:
        after = ["never" if a is None else str(a) for a in rows["NaN/inf loss"]["diverged_after"]]
        lines.append(f"NaN/inf loss, provoked (seeds {seeds}): the loss turns non-finite "
                     f"after {', '.join(after)} finite steps")
    if "overfitting" in rows:
        best = [str(b) for b in rows["overfitting"]["best_step"]]
        every = max(1, SYMPTOMS["overfitting"][0].steps // 20)
        lines.append(f"overfitting, provoked (seeds {seeds}): lowest validation loss at "
                     f"step {', '.join(best)} (evaluated every {every} steps)")
    return lines


def plateau_verdict(seeds: Sequence[int] = (0, 1, 2)) -> list[str]:
    """Yes/no counts over ``seeds`` that separate the two plateaus, robust to the CPU's
    rounding (the runs at eta = 3 and 10 with clipping are chaotic in their last digits):
    for eta = 1e-3, eta = 3 clipped at tau = 1, eta = 10 clipped, and eta = 0.05 clipped,
    how many seeds get each diagnosis, a median update ratio above
    :data:`RATIO_THRESHOLD`, at least :data:`DEAD_THRESHOLD` of the last hidden layer
    dead, a logit spread below 0.05, a final validation loss above log C, and (for the
    clipped runs) a median gradient norm below tau / 2; eta = 10 is compared with
    eta = 3 seed by seed."""
    settings = {"η = 1e-3": Setting(lr=1e-3), "η = 3, τ = 1": Setting(lr=3.0, clip=1.0),
                "η = 10, τ = 1": Setting(lr=10.0, clip=1.0),
                "η = 0.05, τ = 1": Setting(lr=0.05, clip=1.0)}
    runs = {label: run_seeds(setting, seeds) for label, setting in settings.items()}
    n = len(seeds)

    def count(label, test) -> str:
        return f"{sum(bool(test(r)) for r in runs[label])}/{n}"

    lines = []
    for label, setting in settings.items():
        names = [r.symptom for r in runs[label]]
        diag = ", ".join(f"{name} {names.count(name)}/{n}"
                         for name in sorted(set(names), key=names.index))
        line = (f"every seed — {label}: {diag}; update ratio > {RATIO_THRESHOLD:g}: "
                f"{count(label, lambda r: np.median(r.update_ratio) > RATIO_THRESHOLD)}; "
                f"≥ {DEAD_THRESHOLD:.0%} dead: "
                f"{count(label, lambda r: r.dead_fraction >= DEAD_THRESHOLD)}; "
                f"logit spread < 0.05: {count(label, lambda r: r.logit_spread < 0.05)}; "
                f"val loss > log C: "
                f"{count(label, lambda r: r.history.final_val_loss > math.log(4))}")
        if setting.clip is not None:
            line += (f"; median |g| < τ/2: "
                     f"{count(label, lambda r: np.median(r.history.grad_norm) < setting.clip / 2)}")
        lines.append(line)
    worse = sum(a.history.final_val_loss > b.history.final_val_loss
                for a, b in zip(runs["η = 10, τ = 1"], runs["η = 3, τ = 1"]))
    lines.append(f"every seed — η = 10 ends with a higher validation loss than η = 3 "
                 f"(both τ = 1): {worse}/{n}")
    return lines


def symptoms_rerun(seeds: Sequence[int], steps: Sequence[int]) -> dict:
    """The table of :data:`SYMPTOMS` on other seeds: ``{symptom: {"provoked": row,
    remedy: row, ...}}`` with rows as :func:`summarize`, and under ``"data bugs"`` the
    table of :func:`data_bug_table`. ``steps`` must list the horizons of the settings
    (200 for SGD, 300 for the overfitting runs), so that the declaration states them."""
    horizons = sorted({s.steps for bad, fixes in SYMPTOMS.values()
                       for s in (bad, *fixes.values())}
                      | {s.steps for pair in DATA_BUGS.values() for s in pair})
    if sorted(steps) != horizons:
        raise ValueError(f"Invalid steps: {list(steps)!r} (the settings run {horizons})")
    out = {name: {"provoked": summarize(run_seeds(bad, seeds)),
                  **{label: summarize(run_seeds(fix, seeds)) for label, fix in fixes.items()}}
           for name, (bad, fixes) in SYMPTOMS.items()}
    out["data bugs"] = data_bug_table(seeds)
    return out


RERUNS = (
    Rerun(name="07-debugging-seeds-3-5", chapter="07-debugging",
          claim="The symptom and data-bug tables on seeds 3-5: does each setting provoke "
                "its symptom, does each remedy act, and does each check catch its bug as "
                "on seeds 0-2?",
          function="debugging:symptoms_rerun",
          params={"seeds": [3, 4, 5], "steps": [200, 300]}, minutes=0.6),
)
