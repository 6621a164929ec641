r"""Chapter 6 (why warmup, by intervention): which proposed mechanism operates here?

The setting is the one where warmup decides: the Post-LN Transformer of 6.2
(:class:`~optbook.experiments.warmup.StackedTransformer`, 3 layers, width 32)
on the sorting task, Adam at a constant rate that fails without warmup and
trains with it. Each proposed reason for warmup gets one intervention that
removes that reason *instead of* warming up, at the same constant rate:

* Adam's statistics (Liu et al. 2020; Ma & Yarats 2021): "Adam-k" (k steps at
  rate 0 fill m and v, then the constant rate), RAdam (rectified second
  moment), a larger epsilon, GI-Adam (Kalra & Barkeshli 2024: v_0 = g_0^2);
* update size (Kosson et al. 2024): a cap on each weight matrix's
  update-to-weight ratio ||Delta W|| / ||W||;
* attention logits (Wortsman et al. 2023): qk-layernorm;
* initialization (Xiong et al. 2020): Xavier instead of the default init;
* parameterization (Yang et al. 2022): muP against the standard
  parameterization at two widths.

All variants of Adam are one optimizer, :class:`MemberAdam`: every parameter
carries a leading member axis (one member = one seed x one intervention of a
stacked model), and each member has its own rate schedule, epsilon, rectification,
GI initialization and update cap. ``tests/test_warmup_causes.py`` holds it to
``torch.optim.Adam`` and ``torch.optim.RAdam``. :func:`run_arms` trains arms
(interventions) on seeds with a chosen batch order; :func:`causal_table` turns a
stored grid into the chapter's table. The full grids are stored reruns
(:data:`RERUNS`): the search for the setting (rates x warmup, 3 and 2 layers), the
causal table (:data:`ARMS`), the cap held for the first steps only
(:data:`EARLY_CAP_ARMS`), and SP against muP at width 64.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from .. import schedules as sch
from .reruns import Rerun
from .schedules import member_losses, stack_targets
from .stability import threshold, top_eigenvalues
from .training import Dataset, epoch_batches
from .warmup import StackedTransformer, sort_task

__all__ = ["Arm", "MemberAdam", "param_groups", "build_model", "ArmRuns", "run_arms",
           "summarize", "causal_table", "format_table", "format_runs", "format_mechanics", "format_setting", "format_width_grid",
           "width_table",
           "format_widths",
           "draw_causes", "draw_stored_causes", "causes_figure",
           "setting_search_rerun", "causes_rerun", "width_rerun", "ARMS", "EARLY_CAP_ARMS", "PHASE_ARMS",
           "WIDTH_ORDER_ARMS", "CAP_ARMS", "RERUNS", "format_phases",
           "cap_binding_rerun", "format_cap_binding", "pool_records"]


def _int(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"Invalid {name}: {value!r} (must be an integer >= {low})")
    return int(value)


def _pos(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"Invalid {name}: {value!r} (must be a finite number > 0)")
    return float(value)


# --- one intervention -------------------------------------------------------------------

@dataclass(frozen=True)
class Arm:
    """One way of training (an intervention), applied to every seed.

    warmup: linear warmup steps to the rate (0: constant rate from step 0).
    adam_k: steps at rate 0 first (Adam's m and v fill, the weights stay), then
        the constant rate (after the warmup if both are given).
    eps: Adam's epsilon. rectify: RAdam's update (as ``torch.optim.RAdam``).
    gi: GI-Adam, v_0 = g_0^2 (the first gradient squared) instead of 0.
    cap: largest update-to-weight ratio ||Delta W|| / ||W|| of each weight matrix
        (None: no cap); cap_steps: the cap holds for the first ``cap_steps`` steps only
        (None: the whole run). qk_norm, init: model options of StackedTransformer.
    width, param: model width and parameterization ("sp" or "mup", base width 32).
    rate_mult: multiplies the grid's rate (for rate sweeps).
    phase_steps, phase_mult: a lower-rate phase, the rate times ``phase_mult`` for the
        first ``phase_steps`` moving steps (after any Adam-k prefill), then the full rate
        at once (a step schedule: "1e-2 for 300 steps, then 3e-2").
    """

    name: str
    warmup: int = 0
    adam_k: int = 0
    eps: float = 1e-8
    rectify: bool = False
    gi: bool = False
    cap: Optional[float] = None
    cap_steps: Optional[int] = None
    qk_norm: bool = False
    init: str = "default"
    width: int = 32
    param: str = "sp"
    rate_mult: float = 1.0
    phase_steps: int = 0
    phase_mult: float = 1.0

    def __post_init__(self):
        _int("warmup", self.warmup, 0)
        _int("adam_k", self.adam_k, 0)
        _pos("eps", self.eps)
        _pos("rate_mult", self.rate_mult)
        _int("phase_steps", self.phase_steps, 0)
        _pos("phase_mult", self.phase_mult)
        if self.cap is not None:
            _pos("cap", self.cap)
        if self.cap_steps is not None:
            _int("cap_steps", self.cap_steps)
            if self.cap is None:
                raise ValueError(f"Invalid cap_steps: {self.cap_steps} (needs a cap)")
        _int("width", self.width, 2)
        if self.param not in ("sp", "mup"):
            raise ValueError(f"Invalid param: {self.param!r} (one of 'sp', 'mup')")
        if self.init not in ("default", "xavier"):
            raise ValueError(f"Invalid init: {self.init!r} (one of 'default', 'xavier')")

    def schedule(self, lr: float, steps: int) -> np.ndarray:
        """The rate at steps 0..steps-1: ``adam_k`` steps at 0, then the linear warmup
        (if any) to ``lr * rate_mult``, then constant; during the first ``phase_steps``
        moving steps the rate is also multiplied by ``phase_mult``."""
        t = np.arange(steps)
        moving = np.maximum(t - self.adam_k, 0)
        rate = sch.linear_warmup(lr * self.rate_mult, self.warmup)(moving)
        rate = np.where(moving < self.phase_steps, rate * self.phase_mult, rate)
        return np.where(t < self.adam_k, 0.0, rate)

    @property
    def model_key(self) -> tuple:
        return (self.qk_norm, self.init, self.width, self.param)


# --- Adam with one set of hyper-parameters per member ----------------------------------------

class MemberAdam(torch.optim.Optimizer):
    """Adam for stacked models: tensor axis 0 is the member; each member has its own
    rate ``rates[t, m]``, ``eps[m]``, ``rectify[m]`` (RAdam), ``gi[m]`` (v_0 = g_0^2)
    and ``cap[m]`` (inf: none), which holds for the first ``cap_steps[m]`` steps.

    Adam (``torch.optim.Adam``)::

        m_t = b1 m + (1-b1) g,  v_t = b2 v + (1-b2) g^2
        step = rate * (m_t / (1-b1^t)) / (sqrt(v_t / (1-b2^t)) + eps)

    RAdam (``torch.optim.RAdam``): with rho_t = rho_inf - 2 t b2^t / (1 - b2^t),
    ``rate * r_t * m_hat * sqrt(1-b2^t) / (sqrt(v_t) + eps)`` if rho_t > 5 (r_t the
    rectification), else ``rate * m_hat`` (momentum SGD).

    A group's ``lr_mult`` multiplies its rate (muP's per-layer rates). In groups with
    ``capped=True`` the update of member m is shrunk, if needed, to
    ``||Delta W_m|| <= cap[m] * ||W_m||``. ``last_ratio`` holds each member's largest
    ||Delta W_m|| / ||W_m|| over the capped groups at the last step (after the cap),
    ``last_uncapped`` (matrices x members) every capped-group matrix's ratio *before* the
    cap.

    The member's rate is its own loss's gradient: the training loss is the *sum* of
    the members' losses. A member whose update turns non-finite, or whose weights
    exceed ``guard``, is frozen (as ``scale_by_member_rates``).
    """

    def __init__(self, params, rates, *, b1: float = 0.9, b2: float = 0.999, eps=1e-8,
                 rectify=False, gi=False, cap=None, cap_steps=None, guard: float = 1e4):
        table = np.asarray(rates, dtype=np.float64)
        if table.ndim != 2:
            raise ValueError(f"Invalid rates: shape {table.shape} (need (steps, members))")
        if not np.all(np.isfinite(table)) or np.any(table < 0):
            raise ValueError("Invalid rates: must be finite and >= 0")
        m = table.shape[1]
        for name, b in (("b1", b1), ("b2", b2)):
            if isinstance(b, bool) or not isinstance(b, (int, float)) or not 0.0 <= b < 1.0:
                raise ValueError(f"Invalid {name}: {b!r} (must lie in [0, 1))")

        def per_member(name, value, dtype):
            arr = np.broadcast_to(np.asarray(value, dtype=dtype), (m,)).copy() \
                if np.ndim(value) == 0 else np.asarray(value, dtype=dtype)
            if arr.shape != (m,):
                raise ValueError(f"Invalid {name}: shape {arr.shape} (need ({m},) members)")
            return arr

        eps = per_member("eps", eps, np.float64)
        if np.any(~(eps > 0)):
            raise ValueError(f"Invalid eps: {eps} (must be > 0)")
        cap = per_member("cap", np.inf if cap is None else
                         [np.inf if c is None else c for c in np.atleast_1d(cap)]
                         if np.ndim(cap) else cap, np.float64)
        if np.any(~(cap > 0)):
            raise ValueError(f"Invalid cap: {cap} (must be > 0)")
        self.table = table
        self.members = m
        self.b1, self.b2, self.guard = float(b1), float(b2), float(guard)
        self.eps = torch.as_tensor(eps)
        self.rectify = torch.as_tensor(per_member("rectify", rectify, bool))
        self.gi = torch.as_tensor(per_member("gi", gi, bool))
        self.cap = torch.as_tensor(cap)
        until = per_member("cap_steps", np.inf if cap_steps is None else
                           [np.inf if c is None else c for c in np.atleast_1d(cap_steps)]
                           if np.ndim(cap_steps) else cap_steps, np.float64)
        if np.any(~(until >= 0)):
            raise ValueError(f"Invalid cap_steps: {until} (must be >= 0)")
        self.cap_steps = torch.as_tensor(until)
        self.count = 0
        self.alive = torch.ones(m, dtype=torch.bool)
        self.last_ratio = np.zeros(m)
        self.last_uncapped = np.zeros((0, m))
        super().__init__(params, {"lr_mult": 1.0, "capped": False})
        for group in self.param_groups:
            for p in group["params"]:
                if p.shape[0] != m:
                    raise ValueError(f"Invalid params: leading axis {p.shape[0]} != {m} members")

    def preconditioner(self) -> tuple:
        r"""``(params, P)``: the parameters that have moments, and for each the diagonal of
        Adam's preconditioner at the current step, :math:`P = (\sqrt{\hat v} + \epsilon)
        / \text{lr\_mult}`, so that (without momentum) the update is
        :math:`-\eta P^{-1} g` and :math:`\lambda_{\max}(P^{-1}H)` is the preconditioned
        sharpness of Cohen et al. (2022), stable below :math:`38/\eta` at
        :math:`\beta_1 = 0.9`."""
        if self.count == 0:
            raise ValueError("Invalid state: no step taken yet (Adam's v is empty)")
        bc2 = 1 - self.b2 ** self.count
        params, diag = [], []
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state and self.state[p]:
                    v = self.state[p]["v"]
                    diag.append(((v / bc2).sqrt() + self._col(self.eps, p)) / group["lr_mult"])
                    params.append(p)
        return params, diag

    @staticmethod
    def _col(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return x.reshape((-1,) + (1,) * (like.dim() - 1)).to(like.dtype)

    @torch.no_grad()
    def step(self, closure=None):
        t = self.count + 1
        b1, b2 = self.b1, self.b2
        rate = torch.as_tensor(self.table[min(self.count, len(self.table) - 1)])
        bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
        rho_inf = 2.0 / (1.0 - b2) - 1.0
        rho_t = rho_inf - 2.0 * t * b2 ** t / bc2
        if rho_t > 5.0:
            r_t = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                            / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        else:
            r_t = None
        ratio = torch.zeros(self.members, dtype=torch.float64)
        uncapped = []
        updates = []
        alive = self.alive.clone()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state["m"] = torch.zeros_like(p)
                    # GI-Adam: v_0 = g_0^2 for the flagged members, 0 for the others
                    state["v"] = torch.where(self._col(self.gi, p).bool(), g * g,
                                             torch.zeros_like(p))
                m_, v_ = state["m"], state["v"]
                m_.mul_(b1).add_(g, alpha=1 - b1)
                v_.mul_(b2).addcmul_(g, g, value=1 - b2)
                m_hat = m_ / bc1
                eps = self._col(self.eps, p)
                adam = m_hat / ((v_ / bc2).sqrt() + eps)
                if r_t is None:
                    radam = m_hat
                else:
                    radam = r_t * m_hat * math.sqrt(bc2) / (v_.sqrt() + eps)
                direction = torch.where(self._col(self.rectify, p).bool(), radam, adam)
                delta = -group["lr_mult"] * self._col(rate, p) * direction
                flat = lambda x: x.reshape(self.members, -1)
                if group["capped"]:
                    wn = flat(p).double().norm(dim=1)
                    dn = flat(delta).double().norm(dim=1)
                    uncapped.append((dn / torch.clamp(wn, min=1e-300)).numpy().copy())
                    cap = torch.where(self.count < self.cap_steps, self.cap,
                                      torch.full_like(self.cap, np.inf))
                    limit = cap * wn
                    shrink = torch.where(dn > limit, limit / torch.clamp(dn, min=1e-300),
                                         torch.ones_like(dn))
                    delta = delta * self._col(shrink, p)
                    dn = dn * shrink
                    ratio = torch.maximum(ratio, torch.nan_to_num(dn / torch.clamp(wn, min=1e-300),
                                                                  nan=np.inf))
                finite = torch.isfinite(flat(delta)).all(1) & \
                    (flat(p).abs().amax(1) < self.guard)
                alive &= finite
                updates.append((p, delta))
        for p, delta in updates:
            keep = self._col(alive, p)
            p.add_(torch.where(keep.bool(), torch.nan_to_num(delta, nan=0.0, posinf=0.0,
                                                             neginf=0.0), torch.zeros_like(p)))
        self.alive = alive
        self.count = t
        self.last_ratio = ratio.numpy()
        self.last_uncapped = np.array(uncapped).reshape(-1, self.members)
        return None


def param_groups(model: StackedTransformer, param: str = "sp", base_width: int = 32) -> list:
    """Parameter groups of a StackedTransformer for :class:`MemberAdam`.

    ``capped``: the weight matrices (token embedding and every linear map's
    weight; not the positions, biases or LayerNorm gains). ``lr_mult``: 1 in the
    standard parameterization; in muP (Adam, Yang et al. 2022, Table 3 in the form
    of the ``mup`` package) the *hidden* matrices (query-key-value, attention output,
    both MLP maps: fan-in and fan-out grow with the width) get ``base_width / width``;
    the embedding, positions, biases, LayerNorms and read-out keep 1.
    """
    if param not in ("sp", "mup"):
        raise ValueError(f"Invalid param: {param!r} (one of 'sp', 'mup')")
    width = model.embed.shape[-1]
    hidden_mult = base_width / width if param == "mup" else 1.0
    hidden, matrices, rest = [], [], []
    hidden_ids = set()
    for block in model.blocks:
        for lin in (block.qkv, block.proj, block.mlp_in, block.mlp_out):
            hidden.append(lin.weight)
            hidden_ids.add(id(lin.weight))
    matrix_ids = hidden_ids | {id(model.embed), id(model.head.weight)}
    for p in model.parameters():
        if id(p) in hidden_ids:
            continue
        (matrices if id(p) in matrix_ids else rest).append(p)
    return [{"params": hidden, "lr_mult": hidden_mult, "capped": True},
            {"params": matrices, "lr_mult": 1.0, "capped": True},
            {"params": rest, "lr_mult": 1.0, "capped": False}]


def build_model(seeds: Sequence[int], *, width: int = 32, param: str = "sp",
                base_width: int = 32, layers: int = 3, heads: int = 2, qk_norm: bool = False,
                init: str = "default", vocab: int = 16, length: int = 8) -> StackedTransformer:
    """A Post-LN StackedTransformer; with ``param="mup"``, muP as the ``mup`` package
    sets it up (``set_base_shapes`` with rescaling, ``MuReadout``), relative to
    ``base_width``, with ``r = width / base_width``:

    * read-out: its input is multiplied by ``1/r`` (output multiplier 1/width), and its
      initial weights and bias by ``sqrt(r)`` (variance constant in the width, so that
      the effective read-out has variance ~ 1/fan_in^2, Yang et al. 2022, Table 3);
    * hidden linear maps: weights drawn as in SP (variance ~ 1/fan_in), biases
      multiplied by ``sqrt(r)`` (constant in the width);
    * attention: logits q.k / d_head instead of q.k / sqrt(d_head), scaled to agree at
      the base width, i.e. the queries are multiplied by sqrt(d_head0 / d_head).

    The multipliers are forward hooks. At ``width == base_width`` muP and SP are the
    same network.
    """
    model = StackedTransformer(seeds, vocab=vocab, length=length, d_model=width, heads=heads,
                               layers=layers, norm="post", qk_norm=qk_norm, init=init)
    if param == "mup" and width != base_width:
        r = width / base_width
        with torch.no_grad():
            model.head.weight.mul_(math.sqrt(r))
            model.head.bias.mul_(math.sqrt(r))
            for block in model.blocks:
                for lin in (block.qkv, block.proj, block.mlp_in, block.mlp_out):
                    lin.bias.mul_(math.sqrt(r))
        out_mult = base_width / width
        model.head.register_forward_pre_hook(lambda mod, args: (args[0] * out_mult,))
        q_mult = math.sqrt((base_width // heads) / (width // heads))

        def scale_queries(mod, args, out):
            scale = torch.ones(out.shape[-1], dtype=out.dtype)
            scale[:width] = q_mult
            return out * scale

        for block in model.blocks:
            block.qkv.register_forward_hook(scale_queries)
    elif param not in ("sp", "mup"):
        raise ValueError(f"Invalid param: {param!r} (one of 'sp', 'mup')")
    return model


# --- training -------------------------------------------------------------------------------

@dataclass
class ArmRuns:
    """Runs of :func:`run_arms`, arrays indexed (arm, seed, ...)."""

    arms: tuple
    seeds: tuple
    lr: float
    batch_seed: int
    eval_steps: np.ndarray
    final_loss: np.ndarray          # (arms, seeds) validation loss after the last step
    curves: np.ndarray              # (arms, seeds, evals) validation loss
    max_logit: np.ndarray           # (arms, seeds, evals) largest |attention logit| (val)
    ratio: np.ndarray               # (arms, seeds, steps) largest ||dW||/||W|| at each step
    sharpness_steps: tuple = ()     # steps after which the preconditioned sharpness was measured
    sharpness: Optional[np.ndarray] = None   # (arms, seeds, len(sharpness_steps)) lambda_max(P^-1 H)
    uncapped: Optional[np.ndarray] = None    # (arms, seeds, steps, matrices) ratio before the cap


def _member_sum_loss(logits, y):
    loss = F.cross_entropy(logits, y, reduction="none")
    per = loss.reshape(-1, loss.shape[-1]).mean(0)
    return torch.where(torch.isfinite(per), per, torch.zeros_like(per)).sum()


def run_arms(arms: Sequence[Arm], seeds: Sequence[int], data: Dataset, *, lr: float,
             steps: int, batch_seed: int = 0, batch_size: int = 16, layers: int = 3,
             eval_every: int = 25, b2: float = 0.999, base_width: int = 32,
             sharpness_at: Sequence[int] = (), sharpness_batch: int = 64,
             sharpness_iters: int = 20, record_uncapped: bool = False) -> ArmRuns:
    """Train every (arm, seed) with Adam at constant rate ``lr`` (modified by the arm).

    ``sharpness_at``: after each of these steps, every member's preconditioned sharpness
    lambda_max(P^-1 H) (Adam's current P, :meth:`MemberAdam.preconditioner`)
    of the training loss on the first ``sharpness_batch`` training sequences, by
    ``sharpness_iters`` power iterations (``stability.top_eigenvalues``).
    ``record_uncapped``: keep every weight matrix's update-to-weight ratio before the cap
    at every step (``ArmRuns.uncapped``, arms x seeds x steps x matrices).

    Arms that share a model (same qk-norm, init, width, parameterization) are stacked
    into one model; member (arm, seed) draws its weights from ``seeds[s]``; every
    member sees the same batches, in the order drawn from ``batch_seed``.
    """
    arms = tuple(arms)
    if not arms or not all(isinstance(a, Arm) for a in arms):
        raise TypeError(f"Invalid arms: {arms!r} (need a non-empty sequence of Arm)")
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError("Invalid seeds: () (need at least one)")
    lr = _pos("lr", lr)
    steps, eval_every = _int("steps", steps), _int("eval_every", eval_every)
    batch_size = _int("batch_size", batch_size)
    n_eval = steps // eval_every
    final = np.full((len(arms), len(seeds)), np.nan)
    curves = np.full((len(arms), len(seeds), n_eval), np.nan)
    logits_out = np.full((len(arms), len(seeds), n_eval), np.nan)
    ratio = np.full((len(arms), len(seeds), steps), np.nan)
    probes = tuple(_int("sharpness_at", int(k)) for k in sharpness_at)
    if any(k > steps for k in probes):
        raise ValueError(f"Invalid sharpness_at: {probes} (every step must be <= steps={steps})")
    sharpness_batch = _int("sharpness_batch", sharpness_batch)
    sharp = np.full((len(arms), len(seeds), len(probes)), np.nan)
    uncapped = {}
    groups: dict = {}
    for i, a in enumerate(arms):
        groups.setdefault(a.model_key, []).append(i)
    length = data.x_train.shape[1]
    for key, idx in groups.items():
        qk, init, width, param = key
        where = [(i, s) for i in idx for s in range(len(seeds))]
        model = build_model([seeds[s] for _, s in where], width=width, param=param,
                            base_width=base_width, layers=layers, qk_norm=qk, init=init,
                            vocab=data.classes, length=length)
        rates = np.stack([arms[i].schedule(lr, steps) for i, _ in where], axis=1)
        opt = MemberAdam(param_groups(model, param, base_width), rates, b2=b2,
                         eps=[arms[i].eps for i, _ in where],
                         rectify=[arms[i].rectify for i, _ in where],
                         gi=[arms[i].gi for i, _ in where],
                         cap=[np.inf if arms[i].cap is None else arms[i].cap for i, _ in where],
                         cap_steps=[np.inf if arms[i].cap_steps is None else arms[i].cap_steps
                                    for i, _ in where])
        stacked = stack_targets(data, len(where))
        batches = epoch_batches(data.n_train, batch_size, torch.Generator().manual_seed(batch_seed))
        rows = np.array([i for i, _ in where]), np.array([s for _, s in where])
        model.train()
        for t in range(steps):
            b = next(batches)
            opt.zero_grad()
            _member_sum_loss(model(stacked.x_train[b]), stacked.y_train[b]).backward()
            opt.step()
            ratio[rows[0], rows[1], t] = opt.last_ratio
            if record_uncapped:
                for col, (i, s) in enumerate(where):
                    uncapped.setdefault((i, s), []).append(opt.last_uncapped[:, col])
            if t + 1 in probes:
                params, diag = opt.preconditioner()
                n = min(sharpness_batch, data.n_train)
                loss = _member_sum_loss(model(stacked.x_train[:n]), stacked.y_train[:n])
                lam = top_eigenvalues(loss, params, iters=sharpness_iters, precond=diag)
                lam = np.where(opt.alive.numpy(), lam, np.nan)
                for j, k in enumerate(probes):
                    if k == t + 1:
                        sharp[rows[0], rows[1], j] = lam
                opt.zero_grad()
            if (t + 1) % eval_every == 0:
                e = (t + 1) // eval_every - 1
                loss = member_losses(model, stacked.x_val, stacked.y_val)
                loss = np.where(opt.alive.numpy(), loss, np.inf)
                curves[rows[0], rows[1], e] = loss
                logits_out[rows[0], rows[1], e] = model.max_attention_logit()
        loss = member_losses(model, stacked.x_val, stacked.y_val)
        final[rows[0], rows[1]] = np.where(opt.alive.numpy(), loss, np.inf)
    return ArmRuns(arms, seeds, lr, int(batch_seed), eval_every * np.arange(1, n_eval + 1),
                   final, curves, logits_out, ratio, probes, sharp,
                   np.array([[uncapped[i, s] for s in range(len(seeds))] for i in range(len(arms))])
                   if record_uncapped else None)


# --- summaries --------------------------------------------------------------------------------

def summarize(losses, trains_below: float) -> dict:
    """mean, min, max of final losses (inf counted as diverged), and how many train."""
    x = np.asarray(losses, dtype=float).ravel()
    finite = np.isfinite(x)
    return {"mean": float(x[finite].mean()) if finite.all() else float("inf"),
            "min": float(x.min()), "max": float(x.max()),
            "trained": int((x < trains_below).sum()), "runs": int(x.size)}


def causal_table(stored: dict, trains_below: float = 1.0) -> list:
    """Rows (mechanism, intervention, verdict, summary) from :func:`causes_rerun`'s results.

    ``verdict``: "fixed" if every run (seeds x batch orders) ends below
    ``trains_below``; "partly" if some do; "not fixed" if none do. Baselines are
    marked "baseline".
    """
    rows = []
    for arm in stored["arms"]:
        losses = np.array(stored["final_loss"][arm["name"]], dtype=float)   # (orders, seeds)
        s = summarize(losses, trains_below)
        if arm["mechanism"] == "baseline":
            verdict = "baseline"
        elif s["trained"] == s["runs"]:
            verdict = "fixed"
        elif s["trained"]:
            verdict = "partly"
        else:
            verdict = "not fixed"
        rows.append((arm["mechanism"], arm["label"], verdict, s))
    return rows


def _fmt(x: float) -> str:
    return "diverged" if not math.isfinite(x) else f"{x:.2f}"


def format_runs(stored: dict, trains_below: float = 1.0) -> str:
    """Arms of :func:`causes_rerun` without a verdict: group, label, how many runs train,
    final loss mean (min-max)."""
    lines = []
    for arm in stored["arms"]:
        s = summarize(stored["final_loss"][arm["name"]], trains_below)
        lines.append(f"{arm['mechanism']:<16} {arm['label']:<20} {s['trained']:>3}/{s['runs']:<3}"
                     f"  {_fmt(s['mean'])} ({_fmt(s['min'])}-{_fmt(s['max'])})")
    return "\n".join(lines)


def format_table(rows: list) -> str:
    """The causal table as aligned text: mechanism, intervention, verdict, mean (min-max)."""
    head = f"{'mechanism':<20} {'intervention (no warmup unless said)':<40} {'verdict':<10} " \
           f"{'trained':>7}  final loss mean (min-max)"
    lines = [head, "-" * len(head)]
    for mech, label, verdict, s in rows:
        lines.append(f"{mech:<20} {label:<40} {verdict:<10} {s['trained']:>3}/{s['runs']:<3}  "
                     f"{_fmt(s['mean'])} ({_fmt(s['min'])}-{_fmt(s['max'])})")
    return "\n".join(lines)


def draw_causes(runs: ArmRuns, vocab: int = 16, ratio_window: int = 10):
    """Three panels for arms of one run: validation loss, largest attention logit, and the
    largest update-to-weight ratio (moving average over ``ratio_window`` steps), mean over
    seeds, one colour per arm."""
    from ..figures import plotting

    fig, axes = plotting.subplots(1, 3, size="wide", pyplot=False)
    a, b, c = axes
    kernel = np.ones(ratio_window) / ratio_window
    for i, arm in enumerate(runs.arms):
        col = f"C{i % 10}"
        for s in range(len(runs.seeds)):
            lab = arm.name if s == 0 else None
            cur = np.where(np.isfinite(runs.curves[i, s]), runs.curves[i, s], np.nan)
            a.plot(runs.eval_steps, cur, color=col, lw=1, label=lab)
        b.plot(runs.eval_steps, np.nanmean(runs.max_logit[i], axis=0), color=col)
        r = np.nanmean(runs.ratio[i], axis=0)
        c.plot(np.arange(len(r) - ratio_window + 1) + ratio_window, np.convolve(r, kernel, "valid"),
               color=col)
    a.axhline(math.log(vocab), color="k", ls=":", lw=0.8)
    a.set_ylim(0, 3.0); a.set_xlabel("step"); a.set_ylabel("validation loss (nats)")
    a.legend(fontsize=7, loc="upper right")
    b.set_yscale("log"); b.set_xlabel("step"); b.set_ylabel("largest |attention logit|")
    c.set_yscale("log"); c.set_xlabel("step"); c.set_ylabel("max ‖ΔW‖/‖W‖ per step")
    return fig


# --- stored reruns (scripts/reruns.py; book/data/reruns/06-warmup-causes-*.json) ----------------

def _data(n_val: int) -> Dataset:
    return sort_task(n_train=4096, n_val=n_val, length=8, vocab=16, seed=0)


def setting_search_rerun(layers: Sequence[int], lrs: Sequence[float], warmups: Sequence[int],
                         seeds: Sequence[int], batch_seeds: Sequence[int], steps: int,
                         n_val: int = 256, batch_size: int = 16,
                         trains_below: float = 1.0) -> dict:
    """Where does warmup decide? Post-LN, Adam, every (depth, warmup, rate, seed, batch
    order) at ``steps`` steps. ``final_loss[L][w][j]`` is an (orders x seeds) list for
    depth L, warmup w, rate lrs[j]; ``decides[L]`` the rates at which every run without
    warmup ends above ``trains_below`` and every run with the longest warmup below it."""
    data = _data(n_val)
    base = float(lrs[0])
    arms = [Arm(f"w{w}-lr{lr:g}", warmup=int(w), rate_mult=float(lr) / base)
            for w in warmups for lr in lrs]
    out, decides = {}, {}
    for L in layers:
        runs = [run_arms(arms, seeds, data, lr=base, steps=steps, batch_seed=b,
                         batch_size=batch_size, layers=int(L), eval_every=steps)
                for b in batch_seeds]
        loss = np.stack([r.final_loss for r in runs], axis=1)     # (arms, orders, seeds)
        loss = loss.reshape(len(warmups), len(lrs), len(batch_seeds), len(seeds))
        out[str(L)] = {str(w): [loss[i, j] for j in range(len(lrs))] for i, w in enumerate(warmups)}
        no, long = loss[0], loss[-1]
        decides[str(L)] = [float(lr) for j, lr in enumerate(lrs)
                           if (no[j] >= trains_below).all() and (long[j] < trains_below).all()]
    return {"layers": [int(L) for L in layers], "lrs": [float(x) for x in lrs],
            "warmups": [int(w) for w in warmups], "final_loss": out, "decides": decides,
            "trains_below": trains_below}


def _arm(spec: dict) -> Arm:
    keys = {k: v for k, v in spec.items() if k not in ("mechanism", "label")}
    return Arm(**keys)


def causes_rerun(arms: Sequence[dict], lr: float, seeds: Sequence[int],
                 batch_seeds: Sequence[int], steps: int, n_val: int = 256,
                 batch_size: int = 16, layers: int = 3, eval_every: int = 25,
                 ratio_window: int = 10, sharpness_at: Sequence[int] = ()) -> dict:
    """Every intervention (``arms``: dicts of :class:`Arm` fields plus ``mechanism``
    and ``label``) at rate ``lr`` on every seed and batch order. Arms with ``adam_k``
    run ``adam_k`` extra steps at rate 0 first, so every arm takes ``steps`` moving
    steps. Returns ``final_loss[name]`` (orders x seeds) and, for the first batch order,
    the validation-loss curves, largest attention logits and update-to-weight ratios
    (means over ``ratio_window`` steps) of every seed. With ``sharpness_at`` (moving
    steps), also ``sharpness[name]`` (orders x seeds x probes): the preconditioned
    sharpness lambda_max(P^-1 H) after those steps (:func:`run_arms`)."""
    data = _data(n_val)
    specs = [dict(a) for a in arms]
    final = {s["name"]: [] for s in specs}
    sharp = {s["name"]: [] for s in specs}
    probes = tuple(int(k) for k in sharpness_at)
    first = {}
    for order, b in enumerate(batch_seeds):
        by_k: dict = {}
        for s in specs:
            by_k.setdefault(int(s.get("adam_k", 0)), []).append(s)
        for k, group in by_k.items():
            # the k prefill steps happen inside the schedule; run k extra steps
            runs = run_arms([_arm(s) for s in group], seeds, data, lr=lr, steps=steps + k,
                            batch_seed=b, batch_size=batch_size, layers=layers,
                            eval_every=eval_every, sharpness_at=tuple(k + j for j in probes))
            skip = k // eval_every
            for i, s in enumerate(group):
                final[s["name"]].append(runs.final_loss[i])
                sharp[s["name"]].append(runs.sharpness[i])
                if order == 0:
                    r = runs.ratio[i][:, k:k + steps]
                    w = ratio_window
                    first[s["name"]] = {
                        "curves": runs.curves[i][:, skip:skip + steps // eval_every],
                        "max_logit": runs.max_logit[i][:, skip:skip + steps // eval_every],
                        "ratio": r[:, :steps - steps % w].reshape(len(seeds), -1, w).mean(-1)}
    return {"lr": float(lr), "arms": [{"name": s["name"], "mechanism": s["mechanism"],
                                       "label": s["label"]} for s in specs],
            "final_loss": {k: np.array(v) for k, v in final.items()},
            "eval_steps": (eval_every * np.arange(1, steps // eval_every + 1)),
            "ratio_steps": (ratio_window * np.arange(1, steps // ratio_window + 1)),
            "first_order": first,
            **({"sharpness_at": list(probes),
                "sharpness": {k: np.array(v) for k, v in sharp.items()}} if probes else {})}


def _grid_summary(loss, lrs, warmups, trains_below: float) -> dict:
    """Per warmup: the best rate (lowest mean over orders x seeds; a diverged run makes the
    mean inf), its mean loss, and the largest rate at which every run trains.
    ``loss`` has shape (warmups, rates, orders, seeds)."""
    loss = np.asarray(loss, dtype=float)
    out = {}
    for i, w in enumerate(warmups):
        mean = np.where(np.isfinite(loss[i]).all((1, 2)), loss[i].mean((1, 2)), np.inf)
        ok = [float(lr) for j, lr in enumerate(lrs) if (loss[i, j] < trains_below).all()]
        out[str(w)] = {"best_lr": float(lrs[int(np.argmin(mean))]), "best_loss": float(mean.min()),
                       "largest_trained_lr": max(ok) if ok else None}
    return out


def width_rerun(widths: Sequence[int], params: Sequence[str], warmups: Sequence[int],
                lrs: Sequence[float], seeds: Sequence[int], batch_seeds: Sequence[int],
                steps: int, n_val: int = 256, batch_size: int = 16, layers: int = 3,
                trains_below: float = 1.0) -> dict:
    """Standard parameterization vs muP at widths wider than the base ``widths[0]``: the
    final loss of every (param, width, warmup, rate, batch order, seed).
    ``final_loss[p][W][w]`` is (rates x orders x seeds); ``summary[p][W][w]`` the best
    rate (lowest mean loss) and the largest rate at which every run trains (None if
    none). At the base width muP is SP, and SP there is the 3-layer grid of
    :func:`setting_search_rerun` (same rates, warmups, seeds and batch orders), so the
    base width is not rerun here."""
    data = _data(n_val)
    base = float(lrs[0])
    out, summary = {}, {}
    for p in params:
        for W in widths[1:]:
            arms = [Arm(f"w{w}-lr{lr:g}", warmup=int(w), rate_mult=float(lr) / base,
                        width=int(W), param=p) for w in warmups for lr in lrs]
            runs = [run_arms(arms, seeds, data, lr=base, steps=steps, batch_seed=b,
                             batch_size=batch_size, layers=layers, eval_every=steps,
                             base_width=int(widths[0])) for b in batch_seeds]
            loss = np.stack([r.final_loss for r in runs], axis=1).reshape(
                len(warmups), len(lrs), len(batch_seeds), len(seeds))
            out.setdefault(p, {})[str(W)] = {str(w): loss[i] for i, w in enumerate(warmups)}
            summary.setdefault(p, {})[str(W)] = _grid_summary(loss, lrs, warmups, trains_below)
    return {"widths": [int(W) for W in widths], "params": list(params),
            "warmups": [int(w) for w in warmups], "lrs": [float(x) for x in lrs],
            "final_loss": out, "summary": summary, "base_width": int(widths[0])}


def cap_binding_rerun(arms: Sequence[dict], lr: float, seeds: Sequence[int], batch_seed: int,
                      steps: int, windows: Sequence[Sequence[int]], n_val: int = 256,
                      batch_size: int = 16, layers: int = 3) -> dict:
    """How often does the update cap bind? For each capped arm (dicts of :class:`Arm`
    fields plus ``mechanism`` and ``label``), every weight matrix's update-to-weight
    ratio *before* the cap at every step; per window ``(first, last)`` of steps
    (1-based, inclusive), over matrices x steps x seeds: the fraction of (matrix, step)
    pairs the cap shrank, the median uncapped ratio, and the median factor
    ``min(1, c / ratio)`` by which the cap shrank the update (the median matrix's
    effective rate is that factor times ``lr``)."""
    data = _data(n_val)
    specs = [dict(a) for a in arms]
    if any(s.get("cap") is None for s in specs):
        raise ValueError("Invalid arms: every arm needs a cap")
    wins = [(int(a), int(b)) for a, b in windows]
    if any(not 1 <= a <= b <= steps for a, b in wins):
        raise ValueError(f"Invalid windows: {wins} (need 1 <= first <= last <= steps={steps})")
    runs = run_arms([_arm(s) for s in specs], seeds, data, lr=lr, steps=steps,
                    batch_seed=batch_seed, batch_size=batch_size, layers=layers,
                    eval_every=steps, record_uncapped=True)
    out = {}
    for i, s in enumerate(specs):
        u = runs.uncapped[i]                                    # seeds x steps x matrices
        until = s.get("cap_steps") or steps
        rows = []
        for a, b in wins:
            blk = u[:, a - 1:b]
            c = np.where(np.arange(a - 1, b) < until, s["cap"], np.inf)[None, :, None]
            rows.append({"window": [a, b], "capped": float(np.mean(blk > c)),
                         "median_ratio": float(np.median(blk)),
                         "median_shrink": float(np.median(np.minimum(1.0, c / blk)))})
        out[s["name"]] = rows
    return {"lr": float(lr), "arms": [{"name": s["name"], "label": s["label"], "cap": s["cap"]}
                                      for s in specs],
            "final_loss": {s["name"]: runs.final_loss[i] for i, s in enumerate(specs)},
            "binding": out}


def format_cap_binding(stored: dict) -> str:
    """:func:`cap_binding_rerun` as text: per arm and window, the fraction of (matrix, step)
    pairs capped, the median uncapped ratio, the median shrink factor and the median
    matrix's effective rate."""
    lines = [f"{'arm':<22}{'steps':>10}{'capped':>8}{'median ratio':>14}{'median shrink':>15}"
             f"{'effective rate':>16}"]
    for a in stored["arms"]:
        for r in stored["binding"][a["name"]]:
            w = f"{r['window'][0]}-{r['window'][1]}"
            lines.append(f"{a['name']:<22}{w:>10}{r['capped']:>8.2f}{r['median_ratio']:>14.2g}"
                         f"{r['median_shrink']:>15.2f}{r['median_shrink'] * stored['lr']:>16.1g}")
    return "\n".join(lines)


_SEEDS = (0, 1, 2)
_ORDERS = (100, 101)
_LR = 3e-2
ARMS = (
    {"name": "none", "mechanism": "baseline", "label": "constant 3e-2, no warmup"},
    {"name": "warmup-100", "mechanism": "baseline", "label": "linear warmup 100 steps", "warmup": 100},
    {"name": "warmup-300", "mechanism": "baseline", "label": "linear warmup 300 steps", "warmup": 300},
    {"name": "constant-1e-2", "mechanism": "baseline", "label": "constant 1e-2 (smaller rate)",
     "rate_mult": 1 / 3},
    {"name": "adam-k100", "mechanism": "Adam statistics", "label": "Adam-k, k = 100", "adam_k": 100},
    {"name": "adam-k2000", "mechanism": "Adam statistics", "label": "Adam-k, k = 2000 = 2/(1-b2)",
     "adam_k": 2000},
    {"name": "radam", "mechanism": "Adam statistics", "label": "RAdam", "rectify": True},
    {"name": "gi-adam", "mechanism": "Adam statistics", "label": "GI-Adam (v0 = g0^2)", "gi": True},
    {"name": "eps-1e-4", "mechanism": "Adam statistics", "label": "eps = 1e-4", "eps": 1e-4},
    {"name": "eps-1e-3", "mechanism": "Adam statistics", "label": "eps = 1e-3", "eps": 1e-3},
    {"name": "cap-1e-3", "mechanism": "update size", "label": "cap ||dW||/||W|| at 1e-3", "cap": 1e-3},
    {"name": "cap-3e-3", "mechanism": "update size", "label": "cap ||dW||/||W|| at 3e-3", "cap": 3e-3},
    {"name": "cap-1e-2", "mechanism": "update size", "label": "cap ||dW||/||W|| at 1e-2", "cap": 1e-2},
    {"name": "qk-norm", "mechanism": "attention logits", "label": "qk-layernorm", "qk_norm": True},
    {"name": "xavier", "mechanism": "initialization", "label": "Xavier init", "init": "xavier"},
)

EARLY_CAP_ARMS = (
    {"name": "none", "mechanism": "baseline", "label": "constant 3e-2, no warmup"},
    {"name": "warmup-300", "mechanism": "baseline", "label": "linear warmup 300 steps", "warmup": 300},
    {"name": "cap-1e-2-first-100", "mechanism": "update size",
     "label": "cap 1e-2, first 100 steps only", "cap": 1e-2, "cap_steps": 100},
    {"name": "cap-1e-2-first-300", "mechanism": "update size",
     "label": "cap 1e-2, first 300 steps only", "cap": 1e-2, "cap_steps": 300},
)

PHASE_ARMS = (
    {"name": "none", "mechanism": "baseline", "label": "constant 3e-2, no warmup"},
    {"name": "warmup-300", "mechanism": "baseline", "label": "linear warmup 300 steps", "warmup": 300},
    {"name": "3e-3-for-100", "mechanism": "lower-rate phase",
     "label": "3e-3 for 100 steps, then 3e-2", "phase_steps": 100, "phase_mult": 0.1},
    {"name": "1e-2-for-100", "mechanism": "lower-rate phase",
     "label": "1e-2 for 100 steps, then 3e-2", "phase_steps": 100, "phase_mult": 1 / 3},
    {"name": "3e-3-for-300", "mechanism": "lower-rate phase",
     "label": "3e-3 for 300 steps, then 3e-2", "phase_steps": 300, "phase_mult": 0.1},
    {"name": "1e-2-for-300", "mechanism": "lower-rate phase",
     "label": "1e-2 for 300 steps, then 3e-2", "phase_steps": 300, "phase_mult": 1 / 3},
    {"name": "cap-1e-2-first-100", "mechanism": "update size",
     "label": "cap 1e-2, first 100 steps only", "cap": 1e-2, "cap_steps": 100},
    {"name": "cap-1e-2-first-300", "mechanism": "update size",
     "label": "cap 1e-2, first 300 steps only", "cap": 1e-2, "cap_steps": 300},
)
"""A lower-rate phase (a smaller constant rate or the update cap) for the first 100 or 300
steps, then the full rate 3e-2 at once; the preconditioned sharpness is measured at the
switch (steps 100 and 300)."""

WIDTH_ORDER_ARMS = (
    {"name": "sp-1e-2", "mechanism": "SP, width 64", "label": "1e-2, no warmup",
     "width": 64, "rate_mult": 1 / 3},
    {"name": "sp-2e-2", "mechanism": "SP, width 64", "label": "2e-2, no warmup",
     "width": 64, "rate_mult": 2 / 3},
    {"name": "sp-2e-2-warmup-300", "mechanism": "SP, width 64", "label": "2e-2, warmup 300",
     "width": 64, "rate_mult": 2 / 3, "warmup": 300},
    {"name": "mup-2e-2", "mechanism": "muP, width 64", "label": "2e-2, no warmup",
     "width": 64, "param": "mup", "rate_mult": 2 / 3},
    {"name": "mup-3e-2", "mechanism": "muP, width 64", "label": "3e-2, no warmup",
     "width": 64, "param": "mup"},
    {"name": "mup-3e-2-warmup-300", "mechanism": "muP, width 64", "label": "3e-2, warmup 300",
     "width": 64, "param": "mup", "warmup": 300},
)
"""The width-64 cells that carry the muP claim, on the second batch order."""

CAP_ARMS = (
    {"name": "cap-3e-3", "mechanism": "update size", "label": "cap 3e-3", "cap": 3e-3},
    {"name": "cap-1e-2", "mechanism": "update size", "label": "cap 1e-2", "cap": 1e-2},
    {"name": "cap-1e-2-first-300", "mechanism": "update size",
     "label": "cap 1e-2, first 300 steps only", "cap": 1e-2, "cap_steps": 300},
)
"""The capped arms whose binding :func:`cap_binding_rerun` records."""

RERUNS = (
    Rerun(name="06-warmup-causes-setting", chapter="06-warmup-causes",
          claim="Where warmup decides: the 3-layer Post-LN Transformer with Adam at 3e-3 to "
                "5e-2, without warmup and with a 300-step warmup, 900 steps, 3 seeds x 2 batch "
                "orders.",
          function="warmup_causes:setting_search_rerun",
          params={"layers": (3,), "lrs": (3e-3, 1e-2, 2e-2, 3e-2, 5e-2),
                  "warmups": (0, 300), "seeds": _SEEDS, "batch_seeds": _ORDERS,
                  "steps": 900, "n_val": 256, "batch_size": 16, "trains_below": 1.0},
          minutes=10.0),
    Rerun(name="06-warmup-causes-setting-2-layers", chapter="06-warmup-causes",
          claim="The same search with 2 layers: does warmup decide at a shallower depth?",
          function="warmup_causes:setting_search_rerun",
          params={"layers": (2,), "lrs": (3e-3, 1e-2, 2e-2, 3e-2, 5e-2),
                  "warmups": (0, 300), "seeds": _SEEDS, "batch_seeds": _ORDERS,
                  "steps": 900, "n_val": 256, "batch_size": 16, "trains_below": 1.0},
          minutes=7.0),
    Rerun(name="06-warmup-causes-table", chapter="06-warmup-causes",
          claim="One intervention per proposed mechanism, instead of warmup, at the rate 3e-2 "
                "where warmup decides: which ones let Post-LN train (900 steps, 3 seeds x 2 "
                "batch orders)?",
          function="warmup_causes:causes_rerun",
          params={"arms": ARMS, "lr": _LR, "seeds": _SEEDS, "batch_seeds": _ORDERS,
                  "steps": 900, "n_val": 256, "batch_size": 16, "layers": 3,
                  "eval_every": 25, "ratio_window": 10},
          minutes=12.0),
    Rerun(name="06-warmup-causes-width", chapter="06-warmup-causes",
          claim="Standard parameterization vs muP at width 64 (base width 32): best rate and "
                "the largest rate that trains, with and without warmup (900 steps, 3 seeds, "
                "one batch order).",
          function="warmup_causes:width_rerun",
          params={"widths": (32, 64), "params": ("sp", "mup"), "warmups": (0, 300),
                  "lrs": (3e-3, 1e-2, 2e-2, 3e-2, 5e-2), "seeds": _SEEDS,
                  "batch_seeds": _ORDERS[:1], "steps": 900, "n_val": 256, "batch_size": 16,
                  "layers": 3, "trains_below": 1.0},
          minutes=15.0),
    Rerun(name="06-warmup-causes-phase", chapter="06-warmup-causes",
          claim="Is it the size of the first updates, or a phase at a lower rate? A smaller "
                "constant rate (3e-3 or 1e-2) or the cap 1e-2 for the first 100 or 300 steps, "
                "then 3e-2 at once, with the preconditioned sharpness at the switch (900 steps, "
                "3 seeds x 2 batch orders).",
          function="warmup_causes:causes_rerun",
          params={"arms": PHASE_ARMS, "lr": _LR, "seeds": _SEEDS, "batch_seeds": _ORDERS,
                  "steps": 900, "n_val": 256, "batch_size": 16, "layers": 3,
                  "eval_every": 25, "ratio_window": 10, "sharpness_at": (100, 300)},
          minutes=9.0),
    Rerun(name="06-warmup-causes-phase-seeds-6-8", chapter="06-warmup-causes",
          claim="The same lower-rate phases on other initializations and batch orders "
                "(seeds 6-8 x orders 102, 103), to pool with the first set (12 runs per arm).",
          function="warmup_causes:causes_rerun",
          params={"arms": PHASE_ARMS, "lr": _LR, "seeds": (6, 7, 8), "batch_seeds": (102, 103),
                  "steps": 900, "n_val": 256, "batch_size": 16, "layers": 3,
                  "eval_every": 25, "ratio_window": 10, "sharpness_at": (100, 300)},
          minutes=9.0),
    Rerun(name="06-warmup-causes-width-order-101", chapter="06-warmup-causes",
          claim="The width-64 cells of the SP vs muP comparison on the second batch order (101), "
                "3 seeds, 900 steps.",
          function="warmup_causes:causes_rerun",
          params={"arms": WIDTH_ORDER_ARMS, "lr": _LR, "seeds": _SEEDS,
                  "batch_seeds": _ORDERS[1:], "steps": 900, "n_val": 256, "batch_size": 16,
                  "layers": 3, "eval_every": 900, "ratio_window": 10},
          minutes=5.0),
    Rerun(name="06-warmup-causes-cap-binding", chapter="06-warmup-causes",
          claim="Does the cap leave the rate alone? How often it shrinks each weight matrix's "
                "update, and by how much, over 900 steps at 3e-2 (3 seeds, first batch order).",
          function="warmup_causes:cap_binding_rerun",
          params={"arms": CAP_ARMS, "lr": _LR, "seeds": _SEEDS, "batch_seed": _ORDERS[0],
                  "steps": 900, "windows": ((1, 10), (91, 100), (291, 300), (301, 310),
                                            (801, 900)),
                  "n_val": 256, "batch_size": 16, "layers": 3},
          minutes=2.0),
)
"""The stored reruns of the section (``make reruns RERUNS=<name>``)."""


# --- printing and drawing the stored reruns ------------------------------------------------------

def _format_grid(title: str, grid: dict, lrs, warmups, trains_below: float) -> list:
    lines = [f"{title:<13}" + "".join(f"{'lr ' + format(lr, 'g'):>19}" for lr in lrs)]
    for w in warmups:
        cells = []
        for j in range(len(lrs)):
            s = summarize(grid[str(w)][j], trains_below)
            cells.append(f"{_fmt(s['mean']):>6} ({_fmt(s['min'])}-{_fmt(s['max'])})")
        lines.append(f"  warmup {w:>3} " + "".join(f"{c:>19}" for c in cells))
    return lines


def format_setting(stored: dict) -> str:
    """The setting search as text: per depth and warmup, the mean (min-max) final loss over
    seeds x batch orders at each rate, then the rates where warmup decides."""
    lines = []
    for L in stored["layers"]:
        lines += _format_grid(f"{L} layers", stored["final_loss"][str(L)], stored["lrs"],
                              stored["warmups"], stored["trains_below"])
        d = stored["decides"][str(L)]
        lines.append(f"  warmup decides (all fail without, all train with {stored['warmups'][-1]}): "
                     + (", ".join(f"{x:g}" for x in d) if d else "at no rate"))
    return "\n".join(lines)


def format_width_grid(stored: dict, trains_below: float = 1.0) -> str:
    """The final losses of :func:`width_rerun`, mean (min-max) over seeds and orders, per
    (param, width, warmup, rate)."""
    lines = []
    for p, by_width in stored["final_loss"].items():
        for W, grid in by_width.items():
            lines += _format_grid(f"{p} width {W}", grid, stored["lrs"], stored["warmups"],
                                  trains_below)
    return "\n".join(lines)


def width_table(widths: dict, setting: dict) -> dict:
    """``{param: {width: summary}}`` from the stored *records* of :func:`width_rerun` and
    :func:`setting_search_rerun`: the base width's SP row (which is also muP's) is the
    3-layer grid of the setting search, restricted to the width rerun's batch orders."""
    wr, sr = widths["results"], setting["results"]
    if sr["lrs"] != wr["lrs"] or sr["warmups"] != wr["warmups"]:
        raise ValueError("Invalid setting: its rates and warmups differ from the width grid's")
    orders = [setting["params"]["batch_seeds"].index(b) for b in widths["params"]["batch_seeds"]]
    loss = np.array([sr["final_loss"]["3"][str(w)] for w in sr["warmups"]], dtype=float)
    base = _grid_summary(loss[:, :, orders], sr["lrs"], sr["warmups"], sr["trains_below"])
    return {p: {str(wr["base_width"]): base, **wr["summary"][p]} for p in wr["params"]}


def format_widths(table: dict) -> str:
    """SP vs muP (:func:`width_table`): per (param, width, warmup) the best rate, its loss,
    and the largest rate at which every run trains."""
    lines = [f"{'param':<6}{'width':>6}{'warmup':>8}   {'best rate':>9}  {'its mean loss':>13}"
             f"  {'largest rate, all train':>23}"]
    for p in table:
        for W, rows in table[p].items():
            for w, s in rows.items():
                big = "none" if s["largest_trained_lr"] is None else f"{s['largest_trained_lr']:g}"
                lines.append(f"{p:<6}{W:>6}{w:>8}   {s['best_lr']:>9g}  {s['best_loss']:>13.2f}"
                             f"  {big:>23}")
    return "\n".join(lines)


def draw_stored_causes(stored: dict, names: Sequence[str], vocab: int = 16):
    """Loss curves, largest attention logit and update-to-weight ratio of the arms ``names``
    of :func:`causes_rerun` (first batch order; thin lines: seeds; the logit and ratio are
    seed means)."""
    from ..figures import plotting

    fo = stored["first_order"]
    labels = {a["name"]: a["label"] for a in stored["arms"]}
    ev = np.asarray(stored["eval_steps"], dtype=float)
    rs = np.asarray(stored["ratio_steps"], dtype=float)
    fig, (a, b, c) = plotting.subplots(1, 3, size="wide", pyplot=False)
    for i, n in enumerate(names):
        col = f"C{i % 10}"
        cur = np.array(fo[n]["curves"], dtype=float)
        for s, row in enumerate(cur):
            a.plot(ev, row, color=col, lw=1, label=labels[n] if s == 0 else None)
        b.plot(ev, np.array(fo[n]["max_logit"], dtype=float).mean(0), color=col)
        c.plot(rs, np.array(fo[n]["ratio"], dtype=float).mean(0), color=col)
    a.axhline(math.log(vocab), color="k", ls=":", lw=0.8)
    a.set_ylim(0, 3.2); a.set_xlabel("step"); a.set_ylabel("validation loss (nats)")
    a.legend(fontsize=7, loc="lower left")
    b.set_yscale("log"); b.set_xlabel("step"); b.set_ylabel("largest |attention logit|")
    c.set_yscale("log"); c.set_xlabel("step"); c.set_ylabel("largest ‖ΔW‖/‖W‖ (10-step mean)")
    return fig


def causes_figure(stored: dict, default: str = "adam-k100"):
    """Interactive figure of :func:`causes_rerun` (first batch order): a menu of the
    interventions; each panel shows the chosen one against no warmup and the 300-step
    warmup (grey): validation loss, largest attention logit, update-to-weight ratio."""
    from ..figures import Axis, Curve, Panel, Series, curves_figure

    fo = stored["first_order"]
    ev = [float(x) for x in stored["eval_steps"]]
    rs = [float(x) for x in stored["ratio_steps"]]
    refs = ("none", "warmup-300")
    chosen = [a["name"] for a in stored["arms"] if a["name"] not in refs]
    labels = {a["name"]: a["label"] for a in stored["arms"]}

    def panels_for(name):
        names = refs + (name,)
        arr = lambda n, k: np.array(fo[n][k], dtype=float)
        return [{labels[n] if n in refs else "intervention": arr(n, "curves") for n in names},
                {labels[n] if n in refs else "intervention": arr(n, "max_logit") for n in names},
                {labels[n] if n in refs else "intervention": Curve(arr(n, "ratio"), x=rs)
                 for n in names}]

    data = {(labels[n],): panels_for(n) for n in chosen}
    return curves_figure(
        data,
        axes=[Axis("intervention", "intervention", [labels[n] for n in chosen],
                   default=labels[default])],
        panels=[Panel("validation loss", x=ev, ylabel="loss (nats)", ylim=(0.0, 3.2)),
                Panel("largest |attention logit|", x=ev, ylabel="|q·k|/√d", yscale="log"),
                Panel("update-to-weight ratio", x=rs, ylabel="max ‖ΔW‖/‖W‖ (10-step mean)",
                      yscale="log")],
        series=[Series(labels["none"], color="#999999", reference=True),
                Series(labels["warmup-300"], color="#444444", reference=True),
                Series("intervention", label="the intervention", color="#1f77b4")],
        title="Post-LN at rate 3e-2: each intervention against no warmup and a 300-step warmup",
        headline="{intervention}, 3 seeds (thin) and their mean (thick)")


def format_mechanics(stored: dict, trains_below: float = 1.0) -> str:
    """Per arm of :func:`causes_rerun` (first batch order, means over seeds): the largest
    update-to-weight ratio over steps 1-10 and 91-100, the largest attention logit at steps
    100 and 900, and how many of all runs train."""
    fo = stored["first_order"]
    ev = list(stored["eval_steps"])
    i100, i_end = ev.index(100), len(ev) - 1
    lines = [f"{'arm':<20}{'ratio 1-10':>11}{'ratio 91-100':>13}{'logit @100':>11}"
             f"{'logit @' + str(ev[-1]):>11}{'trained':>9}"]
    for arm in stored["arms"]:
        n = arm["name"]
        ratio = np.array(fo[n]["ratio"], dtype=float).mean(0)
        logit = np.array(fo[n]["max_logit"], dtype=float).mean(0)
        s = summarize(stored["final_loss"][n], trains_below)
        lines.append(f"{n:<20}{ratio[0]:>11.2g}{ratio[9]:>13.2g}{logit[i100]:>11.2g}"
                     f"{logit[i_end]:>11.2g}{s['trained']:>6}/{s['runs']}")
    return "\n".join(lines)


def pool_records(*records: dict) -> dict:
    """One record from stored records of :func:`causes_rerun` on the same arms and other
    seeds or batch orders: ``final_loss`` and ``sharpness`` concatenated over the
    (orders) axis, so that each arm counts every run; ``first_order`` and the parameters
    are the first record's."""
    if not records:
        raise ValueError("Invalid records: () (need at least one)")
    names = [[a["name"] for a in r["results"]["arms"]] for r in records]
    if any(n != names[0] for n in names):
        raise ValueError(f"Invalid records: their arms differ ({names})")
    res = dict(records[0]["results"])
    seeds = [np.shape(next(iter(r["results"]["final_loss"].values())))[1] for r in records]
    if len(set(seeds)) != 1:
        raise ValueError(f"Invalid records: different numbers of seeds ({seeds})")
    res["final_loss"] = {n: np.concatenate([np.array(r["results"]["final_loss"][n], dtype=float)
                                            for r in records]) for n in names[0]}
    if all("sharpness" in r["results"] for r in records):
        res["sharpness"] = {n: np.concatenate([np.array(r["results"]["sharpness"][n], dtype=float)
                                               for r in records]) for n in names[0]}
    return {**records[0], "results": res}


def format_phases(record: dict, trains_below: float = 1.0, runs_of: Sequence[str] = ()) -> str:
    """A lower-rate phase, then the full rate (the record of :func:`causes_rerun` with
    ``sharpness_at``): per arm, how many of all runs train, the final loss mean (min-max),
    the update-to-weight ratio over steps 1-10 and the validation loss at the switch (first
    batch order, seed means), and the preconditioned sharpness lambda_max(P^-1 H) after the phase (the switch; mean, min-max
    over all runs) against the threshold 38/eta of the full rate: the switch is stable for
    Adam only if it is below. For the arms ``runs_of``, every run's sharpness at the switch
    (relative to 38/eta) and final loss, sorted by the sharpness."""
    res = record["results"]
    specs = {a["name"]: a for a in record["params"]["arms"]}
    probes = list(res["sharpness_at"])
    limit = float(threshold(res["lr"], "adam"))
    lines = [f"threshold of the full rate {res['lr']:g}: 38/eta = {limit:.0f}",
             f"{'arm':<20}{'trained':>8}  {'final loss':<18}{'ratio 1-10':>11}  "
             f"{'switch':>6}{'loss there':>11}  {'lambda_max(P^-1 H) at switch':<30}"
             f"{'/ (38/eta)':>10}"]
    for a in res["arms"]:
        n, spec = a["name"], specs[a["name"]]
        s = summarize(res["final_loss"][n], trains_below)
        ratio = float(np.array(res["first_order"][n]["ratio"], dtype=float).mean(0)[0])
        switch = int(spec.get("phase_steps") or spec.get("cap_steps") or spec.get("warmup") or 0)
        ev = list(res["eval_steps"])
        if switch in probes and switch in ev:
            lam = np.array(res["sharpness"][n], dtype=float)[:, :, probes.index(switch)].ravel()
            sharp = f"{np.mean(lam):.0f} ({np.min(lam):.0f}-{np.max(lam):.0f})"
            rel = f"{np.mean(lam) / limit:.2f}"
            there = np.array(res["first_order"][n]["curves"], dtype=float)[:, ev.index(switch)]
            there = f"{np.mean(there):.2f}"
        else:
            sharp, rel, switch, there = "-", "-", "-", "-"
        lines.append(f"{n:<20}{s['trained']:>5}/{s['runs']:<2}  "
                     f"{_fmt(s['mean']) + ' (' + _fmt(s['min']) + '-' + _fmt(s['max']) + ')':<18}"
                     f"{ratio:>11.2g}  {switch:>6}{there:>11}  {sharp:<30}{rel:>10}")
    for n in runs_of:
        spec = specs[n]
        switch = int(spec.get("phase_steps") or spec.get("cap_steps") or spec.get("warmup") or 0)
        lam = np.array(res["sharpness"][n], dtype=float)[:, :, probes.index(switch)].ravel()
        loss = np.array(res["final_loss"][n], dtype=float).ravel()
        pairs = ", ".join(f"{x / limit:.2f} -> {_fmt(y)}" for x, y in sorted(zip(lam, loss)))
        lines.append(f"{n}, each run (sharpness / (38/eta) -> final loss): {pairs}")
    return "\n".join(lines)
