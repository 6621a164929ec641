"""The book's experiments, one module per chapter, as pure functions that tests can call.

A chapter's notebook only calls these functions and plots what they return;
``tests/test_<chapter>.py`` checks them against closed forms or against code
nobody here wrote.  Every function takes an explicit ``seed`` where it draws
random numbers, so two executions print the same digits.

``set_seed`` is the one call a notebook makes in its first cell.
"""
from __future__ import annotations

import random

import numpy as np

__all__ = ["set_seed"]


def set_seed(seed: int = 0, threads: int = 1) -> None:
    """Seed Python's, NumPy's and torch's global generators and fix torch's thread count.

    One thread keeps floating-point reductions in the same order on every run
    (and keeps eight notebooks executing at once from fighting over 2 cores).
    Experiment functions still take their own ``seed``; this call guards
    anything in a notebook that uses the global generators.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"Invalid seed: {seed!r} (must be an integer >= 0)")
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"Invalid threads: {threads!r} (must be an integer >= 1)")
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:  # NumPy-only use of optbook
        return
    torch.manual_seed(seed)
    torch.set_num_threads(int(threads))
