"""torch.optim-compatible optimizers built from optbook's chains."""
from .chain_optimizer import ChainOptimizer
