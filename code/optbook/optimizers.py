"""The named optimizers of the article, each a ``chain`` of transformations.

Read each definition as its equation: the transformations run left to right
on the gradient, and ``scale_by_learning_rate`` last turns a direction into a
step ``-eta * direction``. ``learning_rate`` may be a number or a schedule
(``optbook.schedules``). Defaults follow torch.optim where it has the method.
"""
from __future__ import annotations

from .adam import scale_by_adam
from .adaptive import scale_by_adagrad, scale_by_rms
from .base import GradientTransformation, ScalarOrSchedule, chain, scale_by_learning_rate
from .momentum import trace
from .weight_decay import add_decayed_weights


def sgd(learning_rate: ScalarOrSchedule, weight_decay: float = 0.0) -> GradientTransformation:
    """theta <- theta - eta * (g + lambda * theta)   (gradient descent; article 1.2, 2.1)."""
    return chain(add_decayed_weights(weight_decay), scale_by_learning_rate(learning_rate))


def momentum(learning_rate: ScalarOrSchedule, beta: float = 0.9, dampening: float = 0.0,
             weight_decay: float = 0.0) -> GradientTransformation:
    """v <- beta v + g;  theta <- theta - eta v   (Polyak 1964; article 3.1)."""
    return chain(add_decayed_weights(weight_decay), trace(beta, dampening=dampening),
                 scale_by_learning_rate(learning_rate))


def nesterov(learning_rate: ScalarOrSchedule, beta: float = 0.9,
             weight_decay: float = 0.0) -> GradientTransformation:
    """v <- beta v + g;  theta <- theta - eta (g + beta v)   (Nesterov 1983; article 3.2)."""
    return chain(add_decayed_weights(weight_decay), trace(beta, nesterov=True),
                 scale_by_learning_rate(learning_rate))


def adagrad(learning_rate: ScalarOrSchedule = 1e-2, eps: float = 1e-10,
            initial_accumulator_value: float = 0.0, weight_decay: float = 0.0,
            eps_inside_sqrt: bool = False) -> GradientTransformation:
    """G <- G + g^2;  theta <- theta - eta g / (sqrt(G) + eps)   (Duchi et al. 2011; article 4.1)."""
    return chain(add_decayed_weights(weight_decay),
                 scale_by_adagrad(eps, initial_accumulator_value, eps_inside_sqrt),
                 scale_by_learning_rate(learning_rate))


def rmsprop(learning_rate: ScalarOrSchedule = 1e-2, decay: float = 0.99, eps: float = 1e-8,
            centered: bool = False, momentum: float = 0.0, weight_decay: float = 0.0,
            eps_inside_sqrt: bool = False) -> GradientTransformation:
    """v <- beta v + (1-beta) g^2;  theta <- theta - eta g / (sqrt(v) + eps)   (article 4.2).

    RMSprop: Tieleman & Hinton 2012 (lecture 6.5); ``centered``: Graves 2013.

    With ``momentum > 0`` the scaled gradient feeds a heavy-ball velocity, as
    in torch.optim.RMSprop.
    """
    links = [add_decayed_weights(weight_decay),
             scale_by_rms(decay, eps, centered, eps_inside_sqrt)]
    if momentum:
        links.append(trace(momentum))
    return chain(*links, scale_by_learning_rate(learning_rate))


def adam(learning_rate: ScalarOrSchedule = 1e-3, b1: float = 0.9, b2: float = 0.999,
         eps: float = 1e-8, weight_decay: float = 0.0,
         amsgrad: bool = False) -> GradientTransformation:
    """Adam (Kingma & Ba 2015; article 5.1); ``weight_decay`` is L2, added to g *before* Adam.

    m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;
    theta <- theta - eta m_hat / (sqrt(v_hat) + eps),  m_hat = m/(1-b1^t), v_hat = v/(1-b2^t)
    """
    return chain(add_decayed_weights(weight_decay), scale_by_adam(b1, b2, eps, amsgrad),
                 scale_by_learning_rate(learning_rate))


def adamw(learning_rate: ScalarOrSchedule = 1e-3, b1: float = 0.9, b2: float = 0.999,
          eps: float = 1e-8, weight_decay: float = 1e-2, mask=None,
          amsgrad: bool = False) -> GradientTransformation:
    """AdamW (Loshchilov & Hutter 2019; article 5.3): decay added *after* Adam.

    theta <- theta - eta (m_hat / (sqrt(v_hat) + eps) + lambda theta)
    """
    return chain(scale_by_adam(b1, b2, eps, amsgrad), add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))
