"""optbook: the optimizers, schedules and tools of *Optimization for Deep Learning*."""
from .base import (GradientTransformation, apply_updates, chain, global_norm, identity,
                   namespace, scale, scale_by_learning_rate, tree_leaves, tree_map, zeros_like)
