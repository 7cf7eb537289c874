"""The public recordings in ``../shared/data`` (see its README for sources and licences)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forecaster.core import F64Array
from pipelines.files.read import numbers, read_frame, times

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


def nab(name: str, root: Path | None = None) -> Recording:
    """A NAB ``realKnownCause`` file (``timestamp,value``) by its stem."""
    path = (root or data_root()) / NAB / f"{name}.csv"
    df = read_frame(path)
    return Recording(name, times(df, "timestamp", path), numbers(df, "value", path))


def etth1(with_loads: bool = False, root: Path | None = None) -> Recording:
    """ETTh1's oil temperature ``OT``; with ``with_loads``, the six load columns as covariates."""
    path = (root or data_root()) / "ETDataset" / "ETTh1.csv"
    df = read_frame(path)
    cov = np.column_stack([numbers(df, c, path) for c in ETTH1_LOADS]) if with_loads else None
    names = ETTH1_LOADS if with_loads else ()
    name = "ETTh1 OT + loads" if with_loads else "ETTh1 OT"
    return Recording(name, times(df, "date", path), numbers(df, "OT", path), cov, names)


NAB_STREAMS = (
    "machine_temperature_system_failure",
    "ambient_temperature_system_failure",
    "nyc_taxi",
    "cpu_utilization_asg_misconfiguration",
    "ec2_request_latency_system_failure",
)
