"""The public recordings in ``../shared/data`` (see its README for sources and licences)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.core import F64Array

NAB = "NAB/realKnownCause"
ETTH1_LOADS = ("HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL")


@dataclass(frozen=True)
class Recording:
    """One recorded series: epoch-second times, values, optional covariates."""

    name: str
    ts: F64Array
    values: F64Array
    covariates: F64Array | None = None
    covariate_names: tuple[str, ...] = ()


def data_root() -> Path:
    """``$FORECASTER_DATA``, else ``../shared/data`` beside the repository."""
    env = os.environ.get("FORECASTER_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"


def epoch_seconds(column: pd.Series) -> F64Array:
    """Parse times (naive ones are taken as UTC) to float seconds since the epoch.

    Works whatever resolution pandas picks (pandas 3 parses to microseconds, so a plain
    ``astype('int64') / 1e9`` is off by 1000).
    """
    parsed = pd.to_datetime(column, utc=True)
    seconds = (parsed - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    return np.asarray(seconds, dtype=np.float64)


def nab(name: str, root: Path | None = None) -> Recording:
    """A NAB ``realKnownCause`` file (``timestamp,value``) by its stem."""
    df = pd.read_csv((root or data_root()) / NAB / f"{name}.csv")
    return Recording(name, epoch_seconds(df["timestamp"]), df["value"].to_numpy(np.float64))


def etth1(with_loads: bool = False, root: Path | None = None) -> Recording:
    """ETTh1's oil temperature ``OT``; with ``with_loads``, the six load columns as covariates."""
    df = pd.read_csv((root or data_root()) / "ETDataset" / "ETTh1.csv")
    cov = df[list(ETTH1_LOADS)].to_numpy(np.float64) if with_loads else None
    names = ETTH1_LOADS if with_loads else ()
    name = "ETTh1 OT + loads" if with_loads else "ETTh1 OT"
    return Recording(name, epoch_seconds(df["date"]), df["OT"].to_numpy(np.float64), cov, names)


NAB_STREAMS = (
    "machine_temperature_system_failure",
    "ambient_temperature_system_failure",
    "nyc_taxi",
    "cpu_utilization_asg_misconfiguration",
    "ec2_request_latency_system_failure",
)
