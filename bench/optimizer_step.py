"""Time ``optimizer.step()`` of optbook.torch against the libraries a reader would use instead.

    .venv/bin/python bench/optimizer_step.py [--rounds 12] [--threads 2] [--scale 1.0]

For each optimizer class, every competitor gets its own copy of the same
float32 parameters (49 tensors, 16.8 M numbers at --scale 1: the shapes of a
small Transformer) and the same fixed gradients. After one warm-up step each,
the competitors step in turn, ``--rounds`` times, in an order rotated every
round, so that a burst of load from other processes on this shared machine
hits all of them alike. Printed per competitor: the minimum and the median
wall time of a step over the rounds, the ratio of optbook's minimum to the
competitor's (below 1: optbook is faster), and the same for the process's
CPU time (``time.process_time``, all threads), which counts less of the time
spent waiting for a core that another process holds. Only ratios measured
in one run mean anything here.

Memory, per competitor: the bytes of its optimizer state, and the peak bytes
of tensors allocated during one step and still alive at the same time,
counted with a ``TorchDispatchMode`` that sees every ATen op (fused kernels
included) and follows each new output tensor until it is freed (outputs that
alias an input, i.e. in-place and ``out=`` results, are not new memory).

Competitors: torch.optim's default (single-tensor on CPU), ``foreach=True``
and ``fused=True`` where torch has them; lion-pytorch (its default and
its foreach class) for Lion; the authors' SophiaG step (github.com/Liuhong99/Sophia,
``sophia.py``) transcribed below, in the ``rho * bs`` form that
tests/test_sophia.py checks optbook against and in the current ``gamma``
form; torch-optimizer's Lamb for LAMB (bias-corrected, ``debias=True``);
torch.optim.Adafactor. With ``--functional``, "optbook functional" is the same
optbook class with ``fast_path = False``: what every step cost before the
in-place path.

The matrix optimizers (Muon, Shampoo, SOAP) step on the Transformer's hidden
weight matrices only (8 matrices of 2 blocks at d = 256 for ``--matrix-scale 1``,
up to 1024 x 256: their cost grows with the cube of a side, and Muon and
Shampoo refuse or do not fit an 8192-row embedding), the same shapes for every
competitor: torch.optim.Muon (bfloat16 Newton-Schulz, "original" scale, no
decay) and Jordan's SingleDeviceMuon (muon-optimizer, bfloat16) for Muon;
pytorch-optimizer's Shampoo (SVD roots in the parameter's dtype, every step,
as optbook's ``precondition_frequency=1``) and SOAP (its defaults). These come
from tests/requirements.txt, which ``make setup`` installs.
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode

import optbook.torch as obt


# --- the model's shapes: a 4-block Transformer, d = 512, vocabulary 8192 -------------

def shapes(scale: float) -> list[tuple[int, ...]]:
    d, vocab, hidden = 512, 8192, 2048
    vocab = max(8, int(vocab * scale))
    out = [(vocab, d)]  # token embedding (tied with the output layer)
    for _ in range(4):
        out += [(d,), (d,), (3 * d, d), (3 * d,), (d, d), (d,),  # LayerNorm, attention
                (d,), (d,), (hidden, d), (hidden,), (d, hidden), (d,)]  # LayerNorm, MLP
    return out  # 1 + 4 * 12 = 49 tensors


def matrix_shapes(scale: float) -> list[tuple[int, ...]]:
    """The hidden weight matrices of a 2-block Transformer, d = 256 * scale."""
    d = max(8, int(256 * scale))
    out = []
    for _ in range(2):
        out += [(3 * d, d), (d, d), (4 * d, d), (d, 4 * d)]  # attention in/out, MLP in/out
    return out


# --- the authors' SophiaG step, transcribed (single-tensor path of their sophia.py) ------

class AuthorsSophiaG(torch.optim.Optimizer):
    """``step(bs)`` as released with ``rho`` (the form tests/test_sophia.py checks), or,
    with ``gamma`` given, the current release's ``clamp(|m| / (h + 1e-15), None, gamma)``."""

    def __init__(self, params, lr=1e-4, betas=(0.965, 0.99), rho=0.04, weight_decay=1e-1,
                 bs=5120, gamma=None):
        super().__init__(params, dict(lr=lr, betas=betas, rho=rho, weight_decay=weight_decay,
                                      bs=bs, gamma=gamma))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            beta1, _ = group["betas"]
            lr, rho, bs, gamma = group["lr"], group["rho"], group["bs"], group["gamma"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad
                state = self.state[param]
                if len(state) == 0:
                    state["step"] = torch.tensor(0.)
                    state["exp_avg"] = torch.zeros_like(param)
                    state["hessian"] = torch.zeros_like(param)
                exp_avg, hess = state["exp_avg"], state["hessian"]
                state["step"] += 1
                param.mul_(1 - lr * group["weight_decay"])
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                if gamma is None:
                    ratio = (exp_avg.abs() / (rho * bs * hess + 1e-15)).clamp(None, 1)
                else:
                    ratio = (exp_avg.abs() / (hess + 1e-15)).clamp(None, gamma)
                param.addcmul_(exp_avg.sign(), ratio, value=-lr)


def functional(cls):
    """The optbook class running its functional chain (the path before this fast path)."""
    def make(params, **kwargs):
        opt = cls(params, **kwargs)
        opt.fast_path = False
        return opt
    return make


def competitors() -> list[tuple[str, dict, list]]:
    """(optbook class name, its kwargs, [(label, constructor, kwargs), ...]) of the
    element-wise optimizers, which step on :func:`shapes`."""
    import lion_pytorch
    import lion_pytorch.foreach
    import torch_optimizer

    def torch_variants(cls, fused=True):
        out = [("torch.optim default", cls, {}), ("torch.optim foreach", cls, {"foreach": True})]
        if fused:
            out.append(("torch.optim fused", cls, {"fused": True}))
        return out

    return [
        ("SGD", dict(lr=0.01, momentum=0.9), torch_variants(torch.optim.SGD)),
        ("Adagrad", dict(lr=0.01), torch_variants(torch.optim.Adagrad)),
        ("RMSprop", dict(lr=0.01), torch_variants(torch.optim.RMSprop, fused=False)),
        ("Adam", dict(lr=1e-3), torch_variants(torch.optim.Adam)),
        ("AdamW", dict(lr=1e-3, weight_decay=0.01), torch_variants(torch.optim.AdamW)),
        ("Lion", dict(lr=1e-4, weight_decay=0.1),
         [("lion-pytorch", lion_pytorch.Lion, {}),
          ("lion-pytorch foreach", lion_pytorch.foreach.Lion, {})]),
        ("LAMB", dict(lr=1e-3, weight_decay=0.01),
         [("torch-optimizer Lamb", torch_optimizer.Lamb, {"debias": True})]),
        ("SophiaG", dict(lr=1e-4, weight_decay=0.1, rho=0.04, bs=5120),
         [("authors' step (rho*bs)", AuthorsSophiaG, {"rho": 0.04, "bs": 5120}),
          ("authors' step (gamma)", AuthorsSophiaG, {"gamma": 0.01})]),
        ("Adafactor", dict(lr=1e-2), torch_variants(torch.optim.Adafactor, fused=False)),
    ]


def matrix_competitors() -> list[tuple[str, dict, list]]:
    """The same for Muon, Shampoo and SOAP, which step on :func:`matrix_shapes`."""
    import muon  # muon-optimizer (tests/requirements.txt)
    import pytorch_optimizer

    return [
        ("Muon", dict(lr=0.02, momentum=0.95, weight_decay=0.0),
         [("torch.optim.Muon (bf16)", torch.optim.Muon, {"adjust_lr_fn": "original"}),
          ("muon-optimizer (bf16)", muon.SingleDeviceMuon, {})]),
        ("Shampoo", dict(lr=1e-3, eps=1e-6),
         [("pytorch-optimizer Shampoo", pytorch_optimizer.Shampoo, {})]),
        ("SOAP", dict(lr=3e-3, weight_decay=0.01),
         [("pytorch-optimizer SOAP", pytorch_optimizer.SOAP, {})]),
    ]


# --- memory: tensors allocated by one step, alive at the same time ------------------

class PeakAllocations(TorchDispatchMode):
    """Peak bytes of op outputs that are new memory (not views of, or in-place on, an input)."""

    def __init__(self):
        super().__init__()
        self.live = 0
        self.peak = 0

    def _free(self, nbytes):
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = {t.untyped_storage().data_ptr() for t in _tensors((args, kwargs))}
        for t in _tensors(out):
            ptr = t.untyped_storage().data_ptr()
            if ptr in inputs or ptr == 0:
                continue
            nbytes = t.untyped_storage().nbytes()
            inputs.add(ptr)
            self.live += nbytes
            self.peak = max(self.peak, self.live)
            weakref.finalize(t, self._free, nbytes)
        return out


def _tensors(tree):
    if isinstance(tree, torch.Tensor):
        yield tree
    elif isinstance(tree, (list, tuple)):
        for x in tree:
            yield from _tensors(x)
    elif isinstance(tree, dict):
        for x in tree.values():
            yield from _tensors(x)


def state_bytes(opt) -> int:
    return sum(t.untyped_storage().nbytes() for s in opt.state.values() for t in _tensors(s))


def peak_step_bytes(opt) -> int:
    gc.collect()
    mode = PeakAllocations()
    with mode:
        opt.step()
    return mode.peak


# --- timing -------------------------------------------------------------------

def make_params(base, grads):
    params = [torch.nn.Parameter(b.clone()) for b in base]
    for p, g in zip(params, grads):
        p.grad = g  # shared and never written: every optimizer reads the same gradient
    return params


def bench_class(name, kwargs, rivals, base, grads, rounds, with_functional):
    cls = getattr(obt, name)
    entries = [("optbook", cls, kwargs)]
    if with_functional:
        entries.append(("optbook functional", functional(cls), kwargs))
    entries += [(label, ctor, {**kwargs_for(name, kwargs), **extra})
                for label, ctor, extra in rivals]
    opts = []
    for label, ctor, kw in entries:
        opt = ctor(make_params(base, grads), **kw)
        opt.step()  # warm-up: allocates the state
        opts.append((label, opt))
    times = {label: [] for label, _ in opts}
    cpu = {label: [] for label, _ in opts}
    for r in range(rounds):
        order = opts[r % len(opts):] + opts[:r % len(opts)]
        for label, opt in order:
            start, start_cpu = time.perf_counter(), time.process_time()
            opt.step()
            times[label].append(time.perf_counter() - start)
            cpu[label].append(time.process_time() - start_cpu)
    ours, ours_cpu = min(times["optbook"]), min(cpu["optbook"])
    paths = getattr(opts[0][1], "last_step_paths", {})
    path = ", ".join(f"{k} {v}" for k, v in paths.items() if v)
    print(f"\n{name}  {kwargs}   optbook's path: {path} tensors")
    print(f"  {'competitor':<26}{'min ms':>9}{'median ms':>11}{'optbook/it':>12}"
          f"{'cpu min ms':>12}{'optbook/it':>12}{'state MB':>10}{'step peak MB':>14}")
    rows = []
    for label, opt in opts:
        best, median = min(times[label]), statistics.median(times[label])
        ratio, cpu_best = ours / best, min(cpu[label])
        cpu_ratio = ours_cpu / cpu_best if cpu_best > 0 else float("nan")
        print(f"  {label:<26}{best * 1e3:9.1f}{median * 1e3:11.1f}{ratio:11.2f}x"
              f"{cpu_best * 1e3:12.1f}{cpu_ratio:11.2f}x"
              f"{state_bytes(opt) / 2**20:10.1f}{peak_step_bytes(opt) / 2**20:14.1f}")
        rows.append((label, ratio, cpu_ratio))
    del opts
    gc.collect()
    return rows


def kwargs_for(name, kwargs):
    """optbook's hyper-parameters in the competitor's vocabulary."""
    if name == "SophiaG":
        return {"lr": kwargs["lr"], "weight_decay": kwargs["weight_decay"]}
    if name == "Shampoo":
        return {"lr": kwargs["lr"], "matrix_eps": kwargs["eps"]}
    return dict(kwargs)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="vocabulary scale (1.0: 16.8 M parameters)")
    parser.add_argument("--matrix-rounds", type=int, default=4,
                        help="rounds for Muon, Shampoo and SOAP (a Shampoo step takes seconds)")
    parser.add_argument("--matrix-scale", type=float, default=1.0,
                        help="side scale of Muon's, Shampoo's and SOAP's matrices (1.0: d = 256)")
    parser.add_argument("--only", nargs="*", help="class names to run (default: all)")
    parser.add_argument("--functional", action="store_true",
                        help="also time optbook's functional chains (fast_path = False); slow")
    args = parser.parse_args(argv)
    if (args.rounds < 1 or args.matrix_rounds < 1 or args.threads < 1 or args.scale <= 0
            or args.matrix_scale <= 0):
        parser.error("--rounds, --matrix-rounds and --threads must be >= 1, "
                     "--scale and --matrix-scale > 0")
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    base = [0.02 * torch.randn(s, generator=gen) for s in shapes(args.scale)]
    grads = [1e-3 * torch.randn(s, generator=gen) for s in shapes(args.scale)]
    n = sum(b.numel() for b in base)
    print(f"optimizer.step() on {n / 1e6:.1f} M float32 parameters in {len(base)} tensors, "
          f"fixed gradients; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.rounds} interleaved rounds; python {sys.version.split()[0]}")
    print("ratio = optbook's minimum step time / the competitor's (< 1: optbook faster); "
          "step peak = tensors allocated by one step and alive at once (TorchDispatchMode)")
    summary = []
    wanted = lambda name: not args.only or name in args.only
    element_wise = [n for n in ("SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Lion", "LAMB",
                                "SophiaG", "Adafactor") if wanted(n)]
    for name, kwargs, rivals in competitors() if element_wise else []:
        if not wanted(name):
            continue
        rows = bench_class(name, kwargs, rivals, base, grads, args.rounds, args.functional)
        summary.append((name, rows))
    matrices = [n for n in ("Muon", "Shampoo", "SOAP") if wanted(n)]
    if matrices:
        m_shapes = matrix_shapes(args.matrix_scale)
        m_base = [0.02 * torch.randn(s, generator=gen) for s in m_shapes]
        m_grads = [1e-3 * torch.randn(s, generator=gen) for s in m_shapes]
        print(f"\nmatrix optimizers: {sum(b.numel() for b in m_base) / 1e6:.2f} M float32 "
              f"parameters in {len(m_base)} matrices, {sorted(set(m_shapes))}")
        for name, kwargs, rivals in matrix_competitors():
            if name in matrices:
                rows = bench_class(name, kwargs, rivals, m_base, m_grads, args.matrix_rounds,
                                   args.functional)
                summary.append((name, rows))
    print("\nsummary: optbook / competitor, minimum wall time (minimum CPU time) over rounds")
    for name, rows in summary:
        print(f"  {name:<10}" + "   ".join(f"{label} {ratio:.2f}x ({cpu_ratio:.2f}x)"
                                           for label, ratio, cpu_ratio in rows
                                           if label != "optbook"))


if __name__ == "__main__":
    main()
