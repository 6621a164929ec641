"""optbook: the optimizers, schedules and tools of *Optimization for Deep Learning*.

Functional core (NumPy arrays or torch tensors)::

    opt = optbook.adamw(learning_rate=1e-3, weight_decay=0.1)
    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = optbook.apply_updates(params, updates)

``optbook.torch`` wraps the same chains as ``torch.optim`` optimizers.
"""
from .adafactor import (adafactor, clip_by_block_rms, scale_by_factored_rms,
                        scale_by_param_block_rms, scale_by_relative_step)
from .adam import scale_by_adam
from .adam_variants import nadam, radam, scale_by_nadam, scale_by_radam
from .adaptive import scale_by_adagrad, scale_by_rms
from .base import (GradientTransformation, apply_updates, chain, global_norm, identity,
                   namespace, scale, scale_by_learning_rate, tree_leaves, tree_map, zeros_like)
from .checks import ensure_finite
from .clipping import clip_by_global_norm, clip_grad_norm
from .lamb import lamb, scale_by_trust_ratio
from .lion import lion, scale_by_lion
from .momentum import trace
from .muon import muon, newton_schulz, newton_schulz_scalar, scale_by_muon
from .schedule_free import schedule_free_adamw, schedule_free_sgd
from .shampoo import matrix_inverse_root, scale_by_shampoo, shampoo
from .optimizers import adagrad, adam, adamw, momentum, nesterov, rmsprop, sgd
from .soap import scale_by_soap, soap
from .sophia import hessian_ema, scale_by_sophia, sophia
from .weight_decay import add_decayed_weights
from . import schedule_free, schedules, torch  # optbook.torch: the torch.optim-compatible classes
from . import landscapes
from .landscapes import trajectory
from .lr_range_test import LRRangeTestResult, lr_range_test
