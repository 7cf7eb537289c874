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
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


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


# The development panel (../shared/data/README.md): every stream a shipped configuration
# is judged on, as paths under the data folder.
PANEL = (
    "NAB/realKnownCause/machine_temperature_system_failure.csv",
    "NAB/realKnownCause/ambient_temperature_system_failure.csv",
    "NAB/realKnownCause/nyc_taxi.csv",
    "NAB/realKnownCause/cpu_utilization_asg_misconfiguration.csv",
    "NAB/realKnownCause/ec2_request_latency_system_failure.csv",
    "ETDataset/ETTh1.csv",
    "NAB/realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv",
    "NAB/realAWSCloudwatch/ec2_cpu_utilization_77c1ca.csv",
    "NAB/realAWSCloudwatch/ec2_cpu_utilization_fe7f93.csv",
    "NAB/realAWSCloudwatch/ec2_disk_write_bytes_1ef3de.csv",
    "NAB/realAWSCloudwatch/ec2_network_in_257a54.csv",
    "NAB/realAWSCloudwatch/rds_cpu_utilization_e47b3b.csv",
    "NAB/realAWSCloudwatch/grok_asg_anomaly.csv",
    "NAB/realAWSCloudwatch/iio_us-east-1_i-a2eb1cd9_NetworkIn.csv",
    "NAB/realTraffic/TravelTime_387.csv",
    "NAB/realTraffic/speed_7578.csv",
    "NAB/realTweets/Twitter_volume_GOOG.csv",
    "NAB/realTweets/Twitter_volume_KO.csv",
)


def panel_recording(path: str, root: Path | None = None) -> Recording:
    """A panel stream by its path under the data folder (ETTh1: its target ``OT``)."""
    if path.startswith("ETDataset/"):
        return etth1(root=root)
    df = pd.read_csv((root or data_root()) / path)
    name = Path(path).stem
    return Recording(name, epoch_seconds(df["timestamp"]), df["value"].to_numpy(np.float64))


NAB_STREAMS = (
    "machine_temperature_system_failure",
    "ambient_temperature_system_failure",
    "nyc_taxi",
    "cpu_utilization_asg_misconfiguration",
    "ec2_request_latency_system_failure",
)
