"""A learn call's events: checked once at the edge, then passed between the model's stages.

:func:`validate_events` turns what a caller hands :meth:`StreamModel.learn` into ids
and float64 arrays, or raises naming the first bad event. :class:`Call` holds a call's
events and its output buffers; :class:`Wave` the events of one cut that a model's
``_advance`` steps (no series twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from forecaster.anomaly import Judged
from forecaster.config import ForecasterConfig
from forecaster.core import F64Array
from forecaster.core.params import I64Array

BoolArray = NDArray[np.bool_]


@dataclass
class Wave:
    """Events of one cut, no series twice, for ``StreamModel._advance``; fields are per event."""

    pos: I64Array  # positions in the output arrays
    rows: I64Array
    count: I64Array  # events learned before this one
    ts: F64Array
    value: F64Array
    cov: F64Array
    change: F64Array  # clipped change / previous scale (0 for a first event)
    dt: F64Array
    mean_dt: F64Array  # before this event
    scale: F64Array  # after this event


@dataclass(frozen=True)
class Call:
    """One ``learn`` call's events (validated) and output buffers, which its cuts fill."""

    ids: list[str]
    t: F64Array
    y: F64Array
    cov: F64Array
    out: dict[str, F64Array]  # yhat, half, errors, step_ts: (m, K) each
    covered: BoolArray
    judged: Judged


def validate_events(
    cfg: ForecasterConfig,
    series: Sequence[str] | NDArray[Any],
    ts: Sequence[float] | F64Array,
    values: Sequence[float] | F64Array,
    covariates: F64Array | None,
) -> tuple[list[str], F64Array, F64Array, F64Array]:
    """A call's events as ids and float64 arrays (copies), or a ValueError naming the bad one.

    ``covariates`` must hold the configured ones, all and in order; no value, time or
    covariate may be NaN or infinite.
    """
    ids = [str(s) for s in series]
    t = np.array(ts, dtype=np.float64, copy=True).reshape(-1)
    y = np.array(values, dtype=np.float64, copy=True).reshape(-1)
    n, c = len(ids), len(cfg.covariates)
    if t.size != n or y.size != n:
        msg = f"series, ts and values must have one entry per event, got {n}, {t.size}, {y.size}"
        raise ValueError(msg)
    if covariates is None:
        if c:
            msg = f"covariates {cfg.covariates} are configured but none were given"
            raise ValueError(msg)
        cov = np.zeros((n, 0))
    else:
        cov = np.array(covariates, dtype=np.float64, copy=True).reshape(n, -1)
        if cov.shape[1] != c:
            msg = f"covariates must have {c} columns {cfg.covariates}, got {cov.shape[1]}"
            raise ValueError(msg)
    for name, arr in (("value", y), ("ts", t), ("covariate", cov)):
        bad = np.flatnonzero(~np.isfinite(arr).reshape(n, -1).all(axis=1))
        if bad.size:
            i = int(bad[0])
            msg = f"event {i} (series {ids[i]!r}) has a non-finite {name}: {arr[i]!r}"
            raise ValueError(msg)
    return ids, t, y, cov
