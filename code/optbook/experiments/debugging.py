r"""Chapter 7.5 (デバッグのヒント, debugging): the article's symptom table, provoked on purpose.

One model -- a 4-layer ReLU MLP trained with SGD + momentum on the shared
teacher-classification problem -- is put into each failure of the article's
table by one setting, then the table's remedy is applied:

* NaN/inf loss -- provoked by a learning rate far too high; remedies: lower
  the rate, clip gradients;
* plateau (停滞) -- a rate far too low, or a warmup longer than the run;
  remedies: raise the rate, shorten the warmup;
* oscillation (振動) -- a rate too high; remedies: lower the rate, larger
  batches;
* overfitting (過学習) -- few examples, long training; remedies: weight
  decay, dropout.

Every run records the signals that tell the causes apart: the loss at
initialization (against :math:`\log C`), the gradient norm, and the
update-to-parameter ratio :math:`\lVert\Delta\theta\rVert/\lVert\theta\rVert`
per step.  :func:`diagnose` names the symptom of a run from its curves, so
the interactive figure can print it.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..checks import ensure_finite
from .reruns import Rerun
from .training import Dataset, History, teacher_classification, train

__all__ = ["Setting", "SYMPTOMS", "make_model", "DebugRun", "run_setting", "run_seeds",
           "diagnose", "first_nonfinite_gradient", "anomaly_report", "symptom_grid",
           "summarize", "symptoms_rerun", "RERUNS"]


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


#: The overfitting runs: few examples, a wide network, AdamW.
_SMALL = dict(optimizer="adamw", lr=3e-3, n_train=256, hidden=128, depth=2, steps=300)

#: symptom -> (setting that provokes it, {remedy: setting with the remedy applied})
SYMPTOMS = {
    "NaN/inf loss": (Setting(lr=3.0),
                     {"lower the rate": Setting(lr=0.05),
                      "clip at τ = 1": Setting(lr=3.0, clip=1.0)}),
    "plateau": (Setting(lr=1e-3),
                {"raise the rate": Setting(lr=0.05)}),
    "plateau (warmup)": (Setting(lr=0.05, warmup=3000),
                         {"shorter warmup": Setting(lr=0.05, warmup=20)}),
    "oscillation": (Setting(lr=0.25),
                    {"lower the rate": Setting(lr=0.05),
                     "batch × 4": Setting(lr=0.25, batch_size=256)}),
    "overfitting": (Setting(**_SMALL),
                    {"weight decay 1.0": Setting(**_SMALL, weight_decay=1.0),
                     "dropout 0.3": Setting(**_SMALL, dropout=0.3)}),
}


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
    return teacher_classification(n_train=setting.n_train, n_val=1024, dim=20, classes=4,
                                  seed=seed)


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

    @property
    def symptom(self) -> str:
        return diagnose(self.history, self.init_loss)


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
    return DebugRun(setting, seed, history, init, np.array(ratios))


def run_seeds(setting: Setting, seeds: Sequence[int] = (0, 1, 2)) -> list[DebugRun]:
    return [run_setting(setting, seed) for seed in seeds]


def diagnose(history: History, init_loss: float) -> str:
    """Name the symptom of a run, in the article's terms, from its recorded curves.

    In this order: any non-finite loss -> ``"NaN/inf loss"``; the mean training
    loss of the last fifth still above 90% of the initial loss -> ``"plateau"``;
    the final validation loss more than 20% above its minimum while the
    training loss is below it -> ``"overfitting"``; over the second half of the
    evaluations, the validation loss moving by more than 0.05 per evaluation on
    average with at least a quarter of the moves upwards -> ``"oscillation"``;
    otherwise ``"healthy"``.
    The thresholds are this book's, chosen on the chapter's model.
    """
    if history.diverged:
        return "NaN/inf loss"
    loss = history.train_loss
    if len(loss) < 10:
        raise ValueError(f"Invalid history: {len(loss)} steps (need at least 10)")
    k = len(loss) // 5
    late = loss[-k:]
    if late.mean() > 0.9 * init_loss:
        return "plateau"
    val = history.val_loss
    if len(val) and val[-1] > 1.2 * val.min() and late.mean() < val[-1]:
        return "overfitting"
    moves = np.diff(val[len(val) // 2:])
    if len(moves) >= 2 and np.abs(moves).mean() > 0.05 and np.mean(moves > 0) >= 0.25:
        return "oscillation"
    return "healthy"


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
    from .. import plotting
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
    (:func:`optbook.stored_figures.curves_figure`): a slider over the stored learning
    rates, menus for clipping and warmup; every seed's training loss (log scale), the
    final losses as mean (min–max) over seeds or the step at which a seed diverged,
    and the symptom :func:`diagnose` names for each seed.  The still image and the
    kernel widget are :func:`draw_symptom_frame`."""
    from ..stored_figures import Axis, Mark, Panel, Series, curves_figure
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
    before divergence for a diverged run), how many diverged, the median over seeds of the
    median gradient norm and update ratio, and the mean loss at initialization."""
    return {"symptoms": [r.symptom for r in runs],
            "val_loss": [float(r.history.val_loss.min()) if r.history.diverged
                         else r.history.final_val_loss for r in runs],
            "diverged": int(sum(r.history.diverged for r in runs)),
            "grad_norm": float(np.median([np.median(r.history.grad_norm) for r in runs])),
            "update_ratio": float(np.median([np.median(r.update_ratio) for r in runs])),
            "init_loss": float(np.mean([r.init_loss for r in runs]))}


def symptoms_rerun(seeds: Sequence[int], steps: Sequence[int]) -> dict:
    """The table of :data:`SYMPTOMS` on other seeds: ``{symptom: {"provoked": row,
    remedy: row, ...}}`` with rows as :func:`summarize`. ``steps`` must list the
    horizons of the settings (200 for SGD, 300 for the overfitting runs), so that the
    declaration states them."""
    horizons = sorted({s.steps for bad, fixes in SYMPTOMS.values()
                       for s in (bad, *fixes.values())})
    if sorted(steps) != horizons:
        raise ValueError(f"Invalid steps: {list(steps)!r} (the settings run {horizons})")
    return {name: {"provoked": summarize(run_seeds(bad, seeds)),
                   **{label: summarize(run_seeds(fix, seeds)) for label, fix in fixes.items()}}
            for name, (bad, fixes) in SYMPTOMS.items()}


RERUNS = (
    Rerun(name="07-debugging-seeds-3-5", chapter="07-debugging",
          claim="The symptom table on seeds 3-5: does each setting provoke its symptom, and "
                "does each remedy act as on seeds 0-2?",
          function="debugging:symptoms_rerun",
          params={"seeds": [3, 4, 5], "steps": [200, 300]}, minutes=0.6),
)
