"""Shape of a stacked GRU with a linear head, and its parameters as one flat array.

All parameters live in one contiguous float64 vector, so a checkpoint, a gradient and
each optimiser moment are one array each. :class:`GRUSpec` says where every matrix
sits; :meth:`GRUSpec.views` gives named views with PyTorch's names and orientation
(``weight_ih_l0`` is ``(3H, D)``, gate rows in the order r, z, n), which is how the
oracle tests copy weights across.

Storage is input-major (each weight matrix is kept transposed, ``(in, 3H)``), so the
kernels' inner loops run over contiguous output units and vectorise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from forecaster.core._jit import inline

F64Array = NDArray[np.float64]
I64Array = NDArray[np.int64]


@dataclass(frozen=True)
class GRUSpec:
    """Sizes of a stacked GRU forecaster.

    Parameters
    ----------
    input_size
        Features per event fed to the first layer (D >= 1).
    hidden_size
        Units per layer (H >= 1).
    num_layers
        Stacked GRU layers (L >= 1); layer l > 0 reads layer l - 1's state.
    horizon
        Outputs of the linear head (K >= 1): one per forecast step ahead.
    reset_after
        ``True`` for the cuDNN/PyTorch form, n = tanh(W_n x + b_in + r * (U_n h + b_hn));
        ``False`` for Cho et al. (2014), n = tanh(W_n x + b_in + U_n (r * h) + b_hn).

    Examples
    --------
    >>> spec = GRUSpec(input_size=4, hidden_size=32, num_layers=2, horizon=12)
    >>> spec.n_params
    10380
    >>> spec.views(spec.init_params(seed=0))["weight_hh_l1"].shape
    (96, 32)
    """

    input_size: int
    hidden_size: int
    num_layers: int = 1
    horizon: int = 1
    reset_after: bool = True

    def __post_init__(self) -> None:
        for name in ("input_size", "hidden_size", "num_layers", "horizon"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                msg = f"{name} must be an integer >= 1, got {value!r}"
                raise ValueError(msg)
        if not isinstance(self.reset_after, bool):
            msg = f"reset_after must be True or False, got {self.reset_after!r}"
            raise ValueError(msg)

    @property
    def state_size(self) -> int:
        """Length of one series' hidden state: ``num_layers * hidden_size``."""
        return self.num_layers * self.hidden_size

    @property
    def n_params(self) -> int:
        """Length of the flat parameter vector."""
        return (
            head_offset(self.input_size, self.hidden_size, self.num_layers)
            + (self.hidden_size + 1) * self.horizon
        )

    def views(self, flat: F64Array) -> dict[str, F64Array]:
        """Named, writable views into ``flat`` with PyTorch names and orientation."""
        if flat.shape != (self.n_params,):
            msg = f"flat parameters must have shape ({self.n_params},), got {flat.shape}"
            raise ValueError(msg)
        d, h, g = self.input_size, self.hidden_size, 3 * self.hidden_size
        out: dict[str, F64Array] = {}
        for layer in range(self.num_layers):
            din = d if layer == 0 else h
            o = layer_offset(d, h, layer)
            out[f"weight_ih_l{layer}"] = flat[o : o + din * g].reshape(din, g).T
            o += din * g
            out[f"weight_hh_l{layer}"] = flat[o : o + h * g].reshape(h, g).T
            o += h * g
            out[f"bias_ih_l{layer}"] = flat[o : o + g]
            out[f"bias_hh_l{layer}"] = flat[o + g : o + 2 * g]
        o = head_offset(d, h, self.num_layers)
        out["head.weight"] = flat[o : o + h * self.horizon].reshape(h, self.horizon).T
        out["head.bias"] = flat[o + h * self.horizon : o + (h + 1) * self.horizon]
        return out

    def init_params(self, seed: int) -> F64Array:
        """Fresh parameters drawn as PyTorch does: U(-1/sqrt(H), 1/sqrt(H)) everywhere.

        The generator is built from ``seed`` alone, so equal seeds give equal arrays.
        """
        bound = 1.0 / np.sqrt(self.hidden_size)
        rng = np.random.default_rng(seed)
        return rng.uniform(-bound, bound, size=self.n_params)


@inline
def layer_offset(input_size: int, hidden_size: int, layer: int) -> int:
    """Start of layer ``layer``'s block in the flat vector."""
    g = 3 * hidden_size
    first = (input_size + hidden_size) * g + 2 * g
    if layer == 0:
        return 0
    return first + (layer - 1) * (2 * hidden_size * g + 2 * g)


@inline
def head_offset(input_size: int, hidden_size: int, num_layers: int) -> int:
    """Start of the linear head's block (weights ``(H, K)`` then bias ``(K,)``)."""
    return layer_offset(input_size, hidden_size, num_layers)
