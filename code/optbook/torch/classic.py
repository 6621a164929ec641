"""SGD, Adagrad, RMSprop, Adam and AdamW as drop-in ``torch.optim`` classes.

Each class takes the same arguments, with the same defaults, as its namesake
in ``torch.optim`` (PyTorch 2.13), raises the same ``ValueError`` messages for
invalid hyper-parameters (``Invalid learning rate: -0.1``), supports
``maximize``, param groups, ``zero_grad``, ``state_dict`` /
``load_state_dict`` and LR schedulers. Underneath, each is one of the named
chains of :mod:`optbook.optimizers`, rebuilt at every step from the param
group's current hyper-parameters by :meth:`make_transform`, so the update can
be read off the chain.

Performance flags of torch.optim:

* ``foreach`` and ``fused`` are accepted and ignored: they select a faster
  kernel, not a different update. ``step()`` is fast anyway: it runs the
  chain in place (:mod:`optbook.torch.fast_path`), and hands SGD, Adagrad,
  Adam and AdamW to torch's fused kernels, the ones ``fused=True`` selects
  (``optimizer.fast_path = False`` runs the functional chain instead).
* ``capturable=True`` and ``differentiable=True`` raise ``ValueError``: the
  chains keep Python step counts (no CUDA-graph capture) and ``step`` runs
  under ``torch.no_grad`` (no differentiation through the update).

Where optbook is stricter than torch.optim: non-finite hyper-parameters
(nan, inf) are rejected, as are a negative ``dampening`` (with momentum) and an
RMSprop ``alpha`` above 1. The per-parameter state lives in
``optimizer.state[p]["transform_state"]`` (see :class:`ChainOptimizer`), not
under torch's key names (``exp_avg``, ``momentum_buffer``, ...), so a
torch.optim state dict cannot be loaded into these classes or vice versa.
"""
from __future__ import annotations

from .. import optimizers
from ..base import GradientTransformation, check_number
from ._checks import check_betas_pair
from .chain_optimizer import ChainOptimizer

__all__ = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"]


def _reject_unsupported_flags(owner: str, group: dict) -> None:
    """``capturable`` / ``differentiable`` would promise behaviour the chains lack."""
    if group.get("capturable", False):
        raise ValueError(f"Invalid capturable value: True ({owner} keeps Python step counts "
                         "and cannot be captured in a CUDA graph; use torch.optim instead)")
    if group.get("differentiable", False):
        raise ValueError(f"Invalid differentiable value: True ({owner}.step runs under "
                         "torch.no_grad; use torch.optim to differentiate through a step)")


class _ClassicOptimizer(ChainOptimizer):
    """Validate every param group (the constructor's and later ``add_param_group`` ones)."""

    sharding = "elementwise"  # every rule here updates each element from its own numbers

    def __init__(self, params, defaults: dict):
        _reject_unsupported_flags(type(self).__name__, defaults)
        super().__init__(params, defaults=defaults)

    def add_param_group(self, param_group: dict) -> None:
        _reject_unsupported_flags(type(self).__name__, {**self.defaults, **param_group})
        super().add_param_group(param_group)  # ChainOptimizer validates the hyper-parameters


class SGD(_ClassicOptimizer):
    r"""Stochastic gradient descent, with optional heavy-ball or Nesterov momentum.

    With :math:`g_t = \nabla L(\theta_t) + \lambda\theta_t` (coupled weight
    decay ``weight_decay``), momentum :math:`\beta` and dampening :math:`\tau`::

        v_1 = g_1,   v_t = beta * v_{t-1} + (1 - tau) * g_t
        theta_{t+1} = theta_t - eta * v_t                  (heavy ball, Polyak 1964)
        theta_{t+1} = theta_t - eta * (g_t + beta * v_t)   (nesterov=True; Sutskever et al. 2013)

    and plain ``theta <- theta - eta * g_t`` when ``momentum=0``. The chain is
    ``optbook.sgd`` / ``optbook.momentum`` / ``optbook.nesterov``, i.e.
    ``chain(add_decayed_weights(lambda), trace(beta, nesterov, tau), scale_by_learning_rate(eta))``.
    Same signature and defaults as ``torch.optim.SGD`` (``lr=1e-3``).
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, differentiable: bool = False,
                 fused: bool | None = None):
        check_number("learning rate", lr)
        check_number("momentum value", momentum)
        check_number("weight_decay value", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
            nesterov=nesterov, maximize=maximize, foreach=foreach,
            differentiable=differentiable, fused=fused))

    def make_transform(self, group: dict) -> GradientTransformation:
        lr, beta, wd = group["lr"], group["momentum"], group["weight_decay"]
        if group["nesterov"]:
            if group["dampening"] != 0:
                raise ValueError("Nesterov momentum requires a momentum and zero dampening")
            return optimizers.nesterov(lr, beta, weight_decay=wd)
        if beta == 0:
            return optimizers.sgd(lr, weight_decay=wd)
        return optimizers.momentum(lr, beta, dampening=group["dampening"], weight_decay=wd)


class Adagrad(_ClassicOptimizer):
    r"""AdaGrad (Duchi, Hazan & Singer 2011): per-parameter steps shrinking with the gradient history.

    With :math:`g_t = \nabla L(\theta_t) + \lambda\theta_t`::

        G_t = G_{t-1} + g_t^2        (G_0 = initial_accumulator_value)
        eta_t = eta / (1 + (t - 1) * lr_decay)
        theta_{t+1} = theta_t - eta_t * g_t / (sqrt(G_t) + eps)

    The chain is ``optbook.adagrad``:
    ``chain(add_decayed_weights(lambda), scale_by_adagrad(eps, G_0), scale_by_learning_rate(eta_t))``,
    where ``lr_decay`` becomes a schedule ``t -> eta / (1 + t * lr_decay)`` whose
    step ``t`` (from 0) is read from each parameter's own state, so it survives
    the chain being rebuilt every step and a ``state_dict`` round trip. Same
    signature and defaults as ``torch.optim.Adagrad``.
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10,
                 foreach: bool | None = None, *, maximize: bool = False,
                 differentiable: bool = False, fused: bool | None = None):
        check_number("learning rate", lr)
        check_number("lr_decay value", lr_decay)
        check_number("weight_decay value", weight_decay)
        check_number("initial_accumulator_value value", initial_accumulator_value)
        check_number("epsilon value", eps)
        super().__init__(params, dict(
            lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value, foreach=foreach,
            maximize=maximize, differentiable=differentiable, fused=fused))

    def make_transform(self, group: dict) -> GradientTransformation:
        lr, lr_decay = group["lr"], group["lr_decay"]
        check_number("learning rate", lr)
        check_number("lr_decay value", lr_decay)
        learning_rate = lr if lr_decay == 0 else (lambda t: lr / (1 + t * lr_decay))
        return optimizers.adagrad(learning_rate, eps=group["eps"],
                                  initial_accumulator_value=group["initial_accumulator_value"],
                                  weight_decay=group["weight_decay"])


class RMSprop(_ClassicOptimizer):
    r"""RMSprop (Tieleman & Hinton 2012), optionally centered (Graves 2013) and with momentum.

    With :math:`g_t = \nabla L(\theta_t) + \lambda\theta_t` and ``alpha`` the decay::

        v_t = alpha * v_{t-1} + (1 - alpha) * g_t^2
        s_t = v_t - mbar_t^2,  mbar_t = alpha * mbar_{t-1} + (1 - alpha) * g_t   (centered)
        d_t = g_t / (sqrt(s_t or v_t) + eps)
        b_t = momentum * b_{t-1} + d_t   (if momentum > 0, else b_t = d_t)
        theta_{t+1} = theta_t - eta * b_t

    The chain is ``optbook.rmsprop``: ``chain(add_decayed_weights(lambda),
    scale_by_rms(alpha, eps, centered), [trace(momentum)], scale_by_learning_rate(eta))``.
    Same signature and defaults as ``torch.optim.RMSprop``.
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False,
                 capturable: bool = False, foreach: bool | None = None,
                 maximize: bool = False, differentiable: bool = False):
        check_number("learning rate", lr)
        check_number("epsilon value", eps)
        check_number("momentum value", momentum)
        check_number("weight_decay value", weight_decay)
        check_number("alpha value", alpha)
        super().__init__(params, dict(
            lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
            weight_decay=weight_decay, capturable=capturable, foreach=foreach,
            maximize=maximize, differentiable=differentiable))

    def make_transform(self, group: dict) -> GradientTransformation:
        return optimizers.rmsprop(group["lr"], decay=group["alpha"], eps=group["eps"],
                                  centered=group["centered"], momentum=group["momentum"],
                                  weight_decay=group["weight_decay"])


class Adam(_ClassicOptimizer):
    r"""Adam (Kingma & Ba 2015), with AMSGrad (Reddi et al. 2018) and coupled (L2) weight decay.

    With :math:`g_t = \nabla L(\theta_t) + \lambda\theta_t`::

        m_t = beta1 m_{t-1} + (1 - beta1) g_t      m_hat = m_t / (1 - beta1^t)
        v_t = beta2 v_{t-1} + (1 - beta2) g_t^2    v_hat = v_t / (1 - beta2^t)
        theta_{t+1} = theta_t - eta * m_hat / (sqrt(v_hat) + eps)

    (``amsgrad=True``: ``v_hat`` uses ``max(v_1..v_t)``). The chain is ``optbook.adam``:
    ``chain(add_decayed_weights(lambda), scale_by_adam(beta1, beta2, eps), scale_by_learning_rate(eta))``.
    ``decoupled_weight_decay=True`` moves the decay after ``scale_by_adam``,
    which is :class:`AdamW`. Same signature and defaults as ``torch.optim.Adam``.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None,
                 decoupled_weight_decay: bool = False):
        check_number("learning rate", lr)
        check_number("epsilon value", eps)
        check_betas_pair(betas)
        check_number("weight_decay value", weight_decay)
        super().__init__(params, dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
            maximize=maximize, foreach=foreach, capturable=capturable,
            differentiable=differentiable, fused=fused,
            decoupled_weight_decay=decoupled_weight_decay))

    def make_transform(self, group: dict) -> GradientTransformation:
        b1, b2 = group["betas"]
        named = optimizers.adamw if group["decoupled_weight_decay"] else optimizers.adam
        return named(group["lr"], b1, b2, eps=group["eps"], weight_decay=group["weight_decay"],
                     amsgrad=group["amsgrad"])


class AdamW(Adam):
    r"""AdamW (Loshchilov & Hutter 2019): Adam with *decoupled* weight decay.

    ::

        theta_{t+1} = theta_t - eta * (m_hat / (sqrt(v_hat) + eps) + lambda * theta_t)

    so every weight shrinks by ``1 - eta * lambda`` per step whatever its
    gradient history. The chain is ``optbook.adamw``:
    ``chain(scale_by_adam(beta1, beta2, eps), add_decayed_weights(lambda), scale_by_learning_rate(eta))``.
    Same signature and defaults as ``torch.optim.AdamW`` (``weight_decay=1e-2``).
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable,
                         differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)

    def __setstate__(self, state):
        # as torch.optim.AdamW: a loaded state dict cannot turn the decay back to L2
        super().__setstate__(state)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
