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
    full = (root or data_root()) / path
    df = read_frame(full)
    return Recording(Path(path).stem, times(df, "timestamp", full), numbers(df, "value", full))


NAB_STREAMS = (
    "machine_temperature_system_failure",
    "ambient_temperature_system_failure",
    "nyc_taxi",
    "cpu_utilization_asg_misconfiguration",
    "ec2_request_latency_system_failure",
)
