"""Optimisers (Adam, SGD with momentum, RMSprop) and gradient-norm clipping.

Each optimiser keeps its whole state in one flat float64 array: element 0 is the
step count, then its per-parameter buffers. The update rules follow ``torch.optim``
exactly (same order of operations, same first-step rules), which the oracle tests
check to 1e-12.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from forecaster.core._jit import jit
from forecaster.core.params import F64Array


@jit
def clip_grad_norm(grad: F64Array, max_norm: float) -> float:
    """Scale ``grad`` in place so its L2 norm is at most ``max_norm``; return the old norm.

    Same rule as ``torch.nn.utils.clip_grad_norm_``: the scale is
    ``max_norm / (norm + 1e-6)``, applied only when it is below 1.
    """
    s = 0.0
    for i in range(grad.shape[0]):
        s += grad[i] * grad[i]
    norm = math.sqrt(s)
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        for i in range(grad.shape[0]):
            grad[i] *= coef
    return norm


@jit
def adam_update(
    params: F64Array,
    grad: F64Array,
    state: F64Array,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> None:
    """One Adam step in place; ``state`` is ``[step, m (P), v (P)]``."""
    n = params.shape[0]
    state[0] += 1.0
    step = state[0]
    m = state[1 : 1 + n]
    v = state[1 + n : 1 + 2 * n]
    step_size = lr / (1.0 - beta1**step)
    bc2_sqrt = math.sqrt(1.0 - beta2**step)
    for i in range(n):
        gi = grad[i] + weight_decay * params[i] if weight_decay != 0.0 else grad[i]
        m[i] += (1.0 - beta1) * (gi - m[i])
        v[i] = v[i] * beta2 + (1.0 - beta2) * gi * gi
        params[i] -= step_size * m[i] / (math.sqrt(v[i]) / bc2_sqrt + eps)


@jit
def sgd_update(
    params: F64Array,
    grad: F64Array,
    state: F64Array,
    lr: float,
    momentum: float,
    dampening: float,
    nesterov: bool,
    weight_decay: float,
) -> None:
    """One SGD step in place; ``state`` is ``[step, momentum buffer (P)]``."""
    n = params.shape[0]
    first = state[0] == 0.0
    state[0] += 1.0
    buf = state[1 : 1 + n]
    for i in range(n):
        gi = grad[i] + weight_decay * params[i] if weight_decay != 0.0 else grad[i]
        if momentum != 0.0:
            buf[i] = gi if first else buf[i] * momentum + (1.0 - dampening) * gi
            gi = gi + momentum * buf[i] if nesterov else buf[i]
        params[i] -= lr * gi


@jit
def rmsprop_update(
    params: F64Array,
    grad: F64Array,
    state: F64Array,
    lr: float,
    alpha: float,
    eps: float,
    momentum: float,
    centered: bool,
    weight_decay: float,
) -> None:
    """One RMSprop step in place; ``state`` is ``[step, sq (P), buf (P), mean grad (P)]``."""
    n = params.shape[0]
    state[0] += 1.0
    sq = state[1 : 1 + n]
    buf = state[1 + n : 1 + 2 * n]
    ga = state[1 + 2 * n : 1 + 3 * n]
    for i in range(n):
        gi = grad[i] + weight_decay * params[i] if weight_decay != 0.0 else grad[i]
        sq[i] = sq[i] * alpha + (1.0 - alpha) * gi * gi
        if centered:
            ga[i] += (1.0 - alpha) * (gi - ga[i])
            avg = math.sqrt(sq[i] - ga[i] * ga[i]) + eps
        else:
            avg = math.sqrt(sq[i]) + eps
        if momentum > 0.0:
            buf[i] = buf[i] * momentum + gi / avg
            params[i] -= lr * buf[i]
        else:
            params[i] -= lr * gi / avg


def _check(name: str, value: float, low: float, high: float = math.inf) -> None:
    if not (isinstance(value, (int, float)) and low <= value < high):
        msg = f"{name} must be in [{low}, {high}), got {value!r}"
        raise ValueError(msg)


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma & Ba), as ``torch.optim.Adam``: the default optimiser.

    Examples
    --------
    >>> import numpy as np
    >>> opt = Adam(lr=0.1)
    >>> p, state = np.array([1.0, -2.0]), opt.init_state(2)
    >>> opt.update(p, np.array([0.5, -0.5]), state)
    >>> p
    array([ 0.9, -1.9])
    """

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        _check("lr", self.lr, 0.0)
        _check("betas[0]", self.betas[0], 0.0, 1.0)
        _check("betas[1]", self.betas[1], 0.0, 1.0)
        _check("eps", self.eps, 0.0)
        _check("weight_decay", self.weight_decay, 0.0)

    def init_state(self, n_params: int) -> F64Array:
        """Zeroed state: ``[step, m, v]``."""
        return np.zeros(1 + 2 * n_params)

    def update(self, params: F64Array, grad: F64Array, state: F64Array) -> None:
        """Apply one step to ``params`` in place."""
        b1, b2 = self.betas
        adam_update(params, grad, state, self.lr, b1, b2, self.eps, self.weight_decay)


@dataclass(frozen=True)
class SGD:
    """Stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``."""

    lr: float = 1e-2
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        _check("lr", self.lr, 0.0)
        _check("momentum", self.momentum, 0.0)
        _check("dampening", self.dampening, 0.0, 1.0 + 1e-12)
        _check("weight_decay", self.weight_decay, 0.0)
        if self.nesterov and (self.momentum <= 0.0 or self.dampening != 0.0):
            msg = "nesterov needs momentum > 0 and dampening == 0"
            raise ValueError(msg)

    def init_state(self, n_params: int) -> F64Array:
        """Zeroed state: ``[step, momentum buffer]``."""
        return np.zeros(1 + n_params)

    def update(self, params: F64Array, grad: F64Array, state: F64Array) -> None:
        """Apply one step to ``params`` in place."""
        sgd_update(
            params,
            grad,
            state,
            self.lr,
            self.momentum,
            self.dampening,
            self.nesterov,
            self.weight_decay,
        )


@dataclass(frozen=True)
class RMSprop:
    """RMSprop (Hinton), optionally centred and with momentum, as ``torch.optim.RMSprop``."""

    lr: float = 1e-2
    alpha: float = 0.99
    eps: float = 1e-8
    momentum: float = 0.0
    centered: bool = False
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        _check("lr", self.lr, 0.0)
        _check("alpha", self.alpha, 0.0, 1.0)
        _check("eps", self.eps, 0.0)
        _check("momentum", self.momentum, 0.0)
        _check("weight_decay", self.weight_decay, 0.0)

    def init_state(self, n_params: int) -> F64Array:
        """Zeroed state: ``[step, square average, momentum buffer, mean gradient]``."""
        return np.zeros(1 + 3 * n_params)

    def update(self, params: F64Array, grad: F64Array, state: F64Array) -> None:
        """Apply one step to ``params`` in place."""
        rmsprop_update(
            params,
            grad,
            state,
            self.lr,
            self.alpha,
            self.eps,
            self.momentum,
            self.centered,
            self.weight_decay,
        )


Optimizer = Adam | SGD | RMSprop
