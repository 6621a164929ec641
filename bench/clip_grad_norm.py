"""Time ``optbook.torch.clip_grad_norm_`` against ``torch.nn.utils.clip_grad_norm_``.

    .venv/bin/python bench/clip_grad_norm.py [--tensors 300] [--rounds 50] [--threads 1]

``--tensors`` float32 gradients of the shapes of a small Transformer's
parameters (cycling through a LayerNorm gain, a bias and three matrices,
d = 128: 128 to 16 k numbers each, so that per-tensor overhead shows). Each competitor clips its own copy of the same
gradients (refilled before every call, outside the timed region) with
``max_norm`` below the norm, so the multiply runs; the two alternate in an
order rotated every round, so that load from other processes hits all alike.
The third competitor is optbook's earlier form (before issue 19): the functional
:func:`optbook.clipping.clip_grad_norm`, which takes one Python ``float()`` per
tensor's norm, followed by a copy back into ``.grad``.
Printed: minimum and median wall time per call in ms, and optbook's minimum
over torch's. Also printed: how many times each waits for the device
(``aten._local_scalar_dense``, the op behind ``float()``/``.item()``) in one
call -- on a GPU each of those is a synchronisation.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode

import optbook.torch as obt
from optbook.clipping import clip_grad_norm

SHAPES = [(128,), (128,), (128, 128), (512, 32), (32, 512)]  # ~10 k numbers on average


class CountSyncs(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.syncs = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ == "_local_scalar_dense":
            self.syncs += 1
        return func(*args, **(kwargs or {}))


def make(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.zeros(SHAPES[k % len(SHAPES)])) for k in range(n)]
    grads = [torch.randn(p.shape, generator=g) for p in params]
    return params, grads


def per_tensor_float(parameters, max_norm):
    """optbook.torch.clip_grad_norm_ as it was: a float() per tensor, then copy_."""
    grads = [p.grad for p in parameters if p.grad is not None]
    clipped, total = clip_grad_norm(grads, max_norm)
    with torch.no_grad():
        for g, c in zip(grads, clipped):
            g.copy_(c)
    return torch.tensor(total, dtype=grads[0].dtype)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tensors", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    competitors = {"optbook.torch.clip_grad_norm_": obt.clip_grad_norm_,
                   "torch.nn.utils.clip_grad_norm_": torch.nn.utils.clip_grad_norm_,
                   "earlier optbook (float per tensor)": per_tensor_float}
    copies = {name: make(args.tensors) for name in competitors}
    max_norm = 1.0  # far below the norm of these standard-normal tensors: every call clips
    times = {name: [] for name in competitors}
    names = list(competitors)
    for r in range(args.rounds + 1):  # round 0 warms up
        for name in names[r % 3:] + names[:r % 3]:
            params, grads = copies[name]
            for p, g in zip(params, grads):
                p.grad = g.clone()
            start = time.perf_counter()
            competitors[name](params, max_norm)
            if r:
                times[name].append(1e3 * (time.perf_counter() - start))
    n_numbers = sum(g.numel() for g in copies[names[0]][1])
    print(f"clip_grad_norm_: {args.tensors} float32 tensors ({n_numbers / 1e6:.1f} M numbers), "
          f"{args.threads} thread(s), {args.rounds} rounds; wall time per call")
    print(f"  {'':<36}{'min ms':>8}{'median ms':>11}{'host syncs':>12}")
    for name, fn in competitors.items():
        params, grads = copies[name]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        with CountSyncs() as counter:
            fn(params, max_norm)
        print(f"  {name:<36}{min(times[name]):>8.2f}{statistics.median(times[name]):>11.2f}"
              f"{counter.syncs:>12}")
    print(f"  optbook min / torch min: {min(times[names[0]]) / min(times[names[1]]):.2f}; "
          f"earlier optbook min / torch min: {min(times[names[2]]) / min(times[names[1]]):.2f}")


if __name__ == "__main__":
    main()
