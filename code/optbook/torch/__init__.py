"""torch.optim-compatible optimizers built from optbook's chains.

Same constructor conventions, defaults and validation messages as torch.optim;
each class is a ``ChainOptimizer`` whose ``make_transform`` reads the group's
hyper-parameters, so torch's LR schedulers work unchanged.
"""
from .adafactor import Adafactor
from .adam_variants import NAdam, RAdam
from .chain_optimizer import ChainOptimizer
from .classic import SGD, Adagrad, Adam, AdamW, RMSprop
from .clipping import clip_grad_norm_
from .param_groups import NORM_LAYERS, param_groups
from .hessian import gnb_hessian_estimate, hutchinson_hessian_estimate
from .lamb import LAMB
from .lion import Lion
from .muon import Muon, muon_param_groups
from .schedule_free import AdamWScheduleFree, SGDScheduleFree
from .shampoo import Shampoo
from .sharding import ShardingError
from .soap import SOAP
from .sophia import SophiaG
