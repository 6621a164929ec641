"""Argument checks shared by the classes of this folder (torch.optim's messages)."""
from __future__ import annotations

from ..adam import check_betas


def check_betas_pair(betas) -> None:
    """``Invalid betas: ...`` unless a pair; then ``Invalid beta parameter at index i: ...``."""
    try:
        b1, b2 = betas
    except (TypeError, ValueError):
        raise ValueError(f"Invalid betas: {betas!r} (expected a pair (beta1, beta2))") from None
    check_betas(b1, b2)
