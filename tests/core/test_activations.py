"""The vectorisable exp/sigmoid/tanh agree with libm, including at the edges."""

from __future__ import annotations

import math

import numpy as np

from forecaster.core._jit import jit
from forecaster.core.activations import exp, sigmoid, tanh


@jit
def _apply(xs: np.ndarray, out: np.ndarray) -> None:
    for i in range(xs.shape[0]):
        out[0, i] = exp(xs[i])
        out[1, i] = sigmoid(xs[i])
        out[2, i] = tanh(xs[i])


def _run(xs: np.ndarray) -> np.ndarray:
    out = np.empty((3, xs.size))
    _apply(xs, out)
    return out


def test_relative_error_is_a_few_ulp_over_the_working_range() -> None:
    rng = np.random.default_rng(0)
    xs = np.concatenate([rng.uniform(-40, 40, 20000), rng.uniform(-1, 1, 20000),
                         rng.uniform(-700, 700, 2000), [0.625, -0.625, 1e-8, -1e-8]])  # fmt: skip
    got = _run(xs)
    with np.errstate(over="ignore"):
        ref_sig = 1.0 / (1.0 + np.exp(-xs))
    for ours, ref in ((got[0], np.exp(xs)), (got[1], ref_sig), (got[2], np.tanh(xs))):
        nz = ref != 0
        assert np.max(np.abs(ours[nz] - ref[nz]) / np.abs(ref[nz])) < 5e-16  # about 2 ulp


def test_saturation_zero_and_nan() -> None:
    xs = np.array([0.0, 710.0, 1e308, -709.0, -1e308, math.inf, -math.inf, math.nan])
    e, s, t = _run(xs)
    assert e[0] == 1.0 and s[0] == 0.5 and t[0] == 0.0
    assert e[1] == math.inf and e[2] == math.inf and e[5] == math.inf
    assert e[3] == 0.0 and e[4] == 0.0 and e[6] == 0.0
    assert s[2] == 1.0 and s[4] == 0.0 and t[2] == 1.0 and t[4] == -1.0
    assert t[5] == 1.0 and t[6] == -1.0
    assert math.isnan(e[7]) and math.isnan(s[7]) and math.isnan(t[7])
