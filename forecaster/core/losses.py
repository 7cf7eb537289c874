"""Pointwise training losses and their derivatives, selected by an integer code.

Kernels take the code (an ``int``), not a string, so they stay pure functions of
arrays and scalars; :class:`Loss` maps names to codes at the boundary.
"""

from __future__ import annotations

import enum

from forecaster.core._jit import inline


class Loss(enum.IntEnum):
    """Training loss: squared error (default), absolute error, or Huber."""

    MSE = 0
    MAE = 1
    HUBER = 2

    @classmethod
    def parse(cls, name: str | Loss) -> Loss:
        """``"mse"``, ``"mae"`` or ``"huber"`` (any case) to a :class:`Loss`."""
        if isinstance(name, Loss):
            return name
        try:
            return cls[str(name).upper()]
        except KeyError:
            msg = f"loss must be one of 'mse', 'mae', 'huber', got {name!r}"
            raise ValueError(msg) from None


@inline
def loss_value(e: float, kind: int, delta: float) -> float:
    """Loss of the error ``e = prediction - target`` (Huber as ``torch.nn.HuberLoss``)."""
    if kind == 0:
        return e * e
    a = abs(e)
    if kind == 1:
        return a
    if a < delta:
        return 0.5 * e * e
    return delta * (a - 0.5 * delta)


@inline
def loss_deriv(e: float, kind: int, delta: float) -> float:
    """Derivative of :func:`loss_value` with respect to the prediction."""
    if kind == 0:
        return 2.0 * e
    sgn = 1.0 if e > 0.0 else (-1.0 if e < 0.0 else 0.0)
    if kind == 1:
        return sgn
    if abs(e) < delta:
        return e
    return delta * sgn
