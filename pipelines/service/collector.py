"""The metric families the telemetry exports, built from the state it keeps or reads.

:class:`Buckets` and :class:`Rolling` are histogram counts and rolling windows kept in
NumPy and filled by batches; the ``*_families`` functions turn them, and the run loop's
state read at scrape time, into Prometheus metric families. Which metric is which is
listed in :mod:`pipelines.service.telemetry`.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import cast

import numpy as np
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.utils import floatToGoString

from forecaster import OnlineForecaster
from forecaster.core import F64Array
from forecaster.schedule import REASONS as RETRAIN_REASONS
from pipelines.engine.batches import TP
from pipelines.engine.loop import Runner
from pipelines.engine.records import REASONS
from pipelines.engine.task import PartitionTask
from pipelines.service.settings import MetricsSettings

OUTCOMES = ("accepted", "rejected", "failed")  # how a retrain ends

_go_float = cast(Callable[[float], str], floatToGoString)  # how prometheus_client writes "le"


def _decades(first: int, last: int, top: float) -> tuple[float, ...]:
    return (*(float(f"{m}e{e}") for e in range(first, last + 1) for m in (1, 2.5, 5)), top)


# 1 us to 10 s: a record takes microseconds, a batch of thousands up to seconds.
LATENCY_BUCKETS = _decades(-6, 0, 10.0)
RETRAIN_BUCKETS = _decades(-2, 2, 1000.0)  # 10 ms to 1000 s
ERROR_BUCKETS = _decades(-3, 2, 1000.0)  # in the series' own units


# 1 us to 10 s: a record takes microseconds, a batch of thousands up to seconds.
LATENCY_BUCKETS = _decades(-6, 0, 10.0)
RETRAIN_BUCKETS = _decades(-2, 2, 1000.0)  # 10 ms to 1000 s
ERROR_BUCKETS = _decades(-3, 2, 1000.0)  # in the series' own units


class Buckets:
    """Histogram bucket counts kept in NumPy, one row per label value, filled by batches."""

    def __init__(self, bounds: Sequence[float], rows: int) -> None:
        self.bounds = np.asarray(bounds, dtype=np.float64)
        self.counts = np.zeros((rows, self.bounds.size + 1), dtype=np.int64)
        self.sums = np.zeros(rows)

    def add(self, row: int, values: F64Array, weight: int = 1) -> None:
        """Count ``values`` (``weight`` times each) in label row ``row``."""
        # bucket i holds values <= bounds[i]; the last one, everything above (+Inf)
        idx = np.searchsorted(self.bounds, values, side="left")
        self.counts[row] += weight * np.bincount(idx, minlength=self.counts.shape[1])
        self.sums[row] += weight * float(values.sum())

    def family(
        self, name: str, doc: str, labelnames: list[str], rows: list[list[str]]
    ) -> HistogramMetricFamily:
        """The counts as a histogram family, one label row per entry of ``rows``."""
        fam = HistogramMetricFamily(name, doc, labels=labelnames)
        les = [_go_float(b) for b in self.bounds] + ["+Inf"]
        for row, values in enumerate(rows):
            cum = np.cumsum(self.counts[row]).tolist()
            fam.add_metric(values, list(zip(les, cum, strict=True)), float(self.sums[row]))
        return fam


class Rolling:
    """The last ``window`` absolute errors and coverage hits of each horizon step."""

    def __init__(self, horizon: int, window: int) -> None:
        self.abs_err = np.zeros((horizon, window))
        self.hit = np.zeros((horizon, window))
        self.filled = np.zeros(horizon, dtype=np.int64)
        self.pos = np.zeros(horizon, dtype=np.int64)

    def add(self, step: int, abs_err: F64Array, hit: F64Array) -> None:
        """Push the absolute errors and coverage hits of forecasts ``step`` + 1 ahead."""
        window = self.abs_err.shape[1]
        abs_err, hit = abs_err[-window:], hit[-window:]
        at = (self.pos[step] + np.arange(abs_err.size)) % window
        self.abs_err[step, at], self.hit[step, at] = abs_err, hit
        self.pos[step] = (self.pos[step] + abs_err.size) % window
        self.filled[step] = min(window, self.filled[step] + abs_err.size)

    def means(self) -> tuple[list[float], list[float]]:
        """MAE and coverage per step (NaN where no forecast was scored yet)."""
        mae, cov = [], []
        for k, n in enumerate(self.filled.tolist()):
            mae.append(float(self.abs_err[k, :n].mean()) if n else float("nan"))
            cov.append(float(self.hit[k, :n].mean()) if n else float("nan"))
        return mae, cov


@dataclass
class Latest:
    """An allow-listed series' latest event and forecasts (at the exported steps)."""

    value: float
    ts: float
    yhat: list[float]
    lower: list[float]
    upper: list[float]
    of_latest: list[float]
    anomaly_score: float = float("nan")  # the latest judged event's (NaN: none yet)


def build_info() -> dict[str, str]:
    """Versions for ``forecaster_build_info``.

    Examples
    --------
    >>> sorted(build_info())
    ['numba', 'numpy', 'python', 'version']
    """
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for key, dist in (("version", "gru-stream-forecaster"), ("numba", "numba")):
        try:
            versions[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[key] = "unknown"
    return versions


def error_families(
    errors: Buckets, event_seconds: Buckets, rolling: Rolling, horizon: int
) -> Iterator[Metric]:
    """Forecast errors by step (all, and rolling), coverage, and per-record processing time."""
    steps = [[str(k + 1)] for k in range(horizon)]
    yield errors.family(
        "forecaster_forecast_abs_error",
        "Absolute error of each forecast, by steps ahead, when its event arrives.",
        ["step"],
        steps,
    )
    yield event_seconds.family(
        "forecaster_event_processing_seconds",
        "Processing time per record: a batch's time over its records, once per record.",
        [],
        [[]],
    )
    mae, cov = rolling.means()
    n = rolling.abs_err.shape[1]
    fam = GaugeMetricFamily(
        "forecaster_forecast_mae",
        f"Mean absolute error of the last {n} forecasts, by steps ahead.",
        labels=["step"],
    )
    cfam = GaugeMetricFamily(
        "forecaster_interval_coverage_ratio",
        f"Share of the last {n} forecasts whose interval held the value.",
        labels=["step"],
    )
    for k in range(horizon):
        if not np.isnan(mae[k]):
            fam.add_metric([str(k + 1)], mae[k])
            cfam.add_metric([str(k + 1)], cov[k])
    yield fam
    yield cfam


def lag_family(lag: dict[TP, int]) -> Metric:
    """Records behind the end of each input partition (as last sampled)."""
    fam = GaugeMetricFamily(
        "forecaster_consumer_lag_records",
        "Records between the consumer's position and the partition's end.",
        labels=["topic", "partition"],
    )
    for (topic, part), n_lag in sorted(lag.items()):
        fam.add_metric([topic, str(part)], n_lag)
    return fam


def retrain_families(counts: Mapping[tuple[str, str], int]) -> Iterator[Metric]:
    """Retrains started, and finished by outcome, each by what started it.

    ``counts`` maps ``(event, reason)`` to retrains, the event ``"started"`` or an outcome.
    """
    started = CounterMetricFamily(
        "forecaster_retrains_started",
        "Retrains started by this process, by what started them.",
        labels=["reason"],
    )
    done = CounterMetricFamily(
        "forecaster_retrains",
        "Retrains finished, by whether their weights were taken and what started them.",
        labels=["outcome", "reason"],
    )
    for reason in RETRAIN_REASONS:
        started.add_metric([reason], counts.get(("started", reason), 0))
        for outcome in OUTCOMES:
            done.add_metric([outcome, reason], counts.get((outcome, reason), 0))
    yield started
    yield done


def series_families(settings: MetricsSettings, latest: dict[str, Latest]) -> Iterator[Metric]:
    """The allow-listed series' latest value and forecasts (nothing without an allow-list)."""
    if not settings.forecast_series:
        return
    value = GaugeMetricFamily(
        "forecaster_series_value", "Latest value of an allow-listed series.", labels=["series"]
    )
    when = GaugeMetricFamily(
        "forecaster_series_event_timestamp_seconds",
        "Event time of an allow-listed series' latest value.",
        labels=["series"],
    )
    docs = {
        "forecaster_series_forecast": "Forecast just issued for the series' k-th next event.",
        "forecaster_series_forecast_lower": "Lower bound of that forecast's interval.",
        "forecaster_series_forecast_upper": "Upper bound of that forecast's interval.",
        "forecaster_series_forecast_of_latest": "Forecast issued k events before the latest.",
    }
    fams = {
        name: GaugeMetricFamily(name, doc, labels=["series", "step"]) for name, doc in docs.items()
    }
    steps = [str(s) for s in settings.forecast_steps]
    for sid in settings.forecast_series:
        got = latest.get(sid)
        if got is None:
            continue
        value.add_metric([sid], got.value)
        when.add_metric([sid], got.ts)
        rows = zip(steps, got.yhat, got.lower, got.upper, got.of_latest, strict=True)
        for step, yhat, lower, upper, past in rows:
            fams["forecaster_series_forecast"].add_metric([sid, step], yhat)
            fams["forecaster_series_forecast_lower"].add_metric([sid, step], lower)
            fams["forecaster_series_forecast_upper"].add_metric([sid, step], upper)
            if not np.isnan(past):
                fams["forecaster_series_forecast_of_latest"].add_metric([sid, step], past)
    yield value
    yield when
    yield from fams.values()


def anomaly_families(
    flagged: np.ndarray, settings: MetricsSettings, latest: dict[str, Latest]
) -> Iterator[Metric]:
    """Flagged events by the step they were judged at; allow-listed series' latest score."""
    count = CounterMetricFamily(
        "forecaster_anomalies_flagged",
        "Events flagged as anomalies (outside the anomaly band), by the step judged at.",
        labels=["step"],
    )
    for k, n in enumerate(flagged.tolist()):
        count.add_metric([str(k + 1)], float(n))
    yield count
    if not settings.forecast_series:
        return
    score = GaugeMetricFamily(
        "forecaster_series_anomaly_score",
        "Anomaly score of an allow-listed series' latest judged event (1 - its p-value).",
        labels=["series"],
    )
    for sid in settings.forecast_series:
        got = latest.get(sid)
        if got is not None and not np.isnan(got.anomaly_score):
            score.add_metric([sid], got.anomaly_score)
    yield score


def runner_families(runner: Runner, attached_at: float) -> Iterator[Metric]:
    """Counters of the loop, checkpoint times, and every partition's model (read now)."""
    stats = runner.stats
    yield CounterMetricFamily(
        "forecaster_events_consumed",
        "Records processed: events learned and records rejected.",
        value=stats.events,
    )
    rejected = CounterMetricFamily(
        "forecaster_events_rejected",
        "Records sent to the dead-letter topic, by reason.",
        labels=["reason"],
    )
    counts = dict(stats.rejected)
    for reason in REASONS:
        rejected.add_metric([reason], counts.get(reason, 0))
    yield rejected
    yield CounterMetricFamily(
        "forecaster_forecasts_emitted", "Forecast messages written.", value=stats.forecasts
    )
    yield CounterMetricFamily(
        "forecaster_checkpoints", "Partition checkpoints saved.", value=stats.checkpoints
    )
    yield CounterMetricFamily(
        "forecaster_sink_failures",
        "Sink failures (broker away): each sent every partition back to its checkpoint.",
        value=stats.sink_failures,
    )
    yield CounterMetricFamily(
        "forecaster_bad_checkpoints",
        "Unusable checkpoints set aside under [checkpoint] on_error = start_fresh.",
        value=stats.bad_checkpoints,
    )
    yield CounterMetricFamily(
        "forecaster_state_missing",
        "Partitions started with a new model though their group had committed offsets.",
        value=stats.state_missing,
    )
    yield SummaryMetricFamily(
        "forecaster_checkpoint_restore_seconds",
        "Time to load a partition's checkpoint and restore its model, per restore.",
        count_value=stats.restored,
        sum_value=stats.restore_seconds,
    )
    yield from model_families(list(runner.tasks.items()))
    if stats.last_checkpoint > 0:
        yield gauge(
            "forecaster_last_checkpoint_timestamp_seconds",
            "Wall-clock time of the latest checkpoint.",
            stats.last_checkpoint,
        )
    since = stats.last_checkpoint if stats.last_checkpoint > 0 else attached_at
    yield gauge(
        "forecaster_checkpoint_age_seconds",
        "Seconds since the latest checkpoint (or since the loop started).",
        max(0.0, runner.clock() - since),
    )


def model_families(tasks: list[tuple[TP, PartitionTask]]) -> Iterator[Metric]:
    """Each partition's weights version, series held, and latest retrain's losses."""
    labels = ["topic", "partition"]
    version = GaugeMetricFamily(
        "forecaster_model_version", "Weights version of a partition's model.", labels=labels
    )
    series = GaugeMetricFamily(
        "forecaster_active_series", "Series held by a partition's model.", labels=labels
    )
    train = GaugeMetricFamily(
        "forecaster_retrain_train_loss",
        "Training loss of a partition's latest retrain.",
        labels=labels,
    )
    val = GaugeMetricFamily(
        "forecaster_retrain_validation_loss",
        "Validation loss of a partition's latest retrain, of the previous "
        "and the candidate weights.",
        labels=[*labels, "weights"],
    )
    weight = GaugeMetricFamily(
        "forecaster_aggregation_model_weight_ratio",
        "Pooled weight of the GRU's own forecast in a partition's aggregate forecast, by "
        "steps ahead (expert aggregation only; 1: the GRU alone).",
        labels=[*labels, "step"],
    )
    drift = GaugeMetricFamily(
        "forecaster_drift_statistic_ratio",
        "Page-Hinkley statistic of a partition's +1 errors over its threshold: at 1 a drift "
        "starts a retrain (drift trigger only).",
        labels=labels,
    )
    for (topic, part), task in sorted(tasks, key=lambda kv: kv[0]):
        model = task.model
        lv = [topic, str(part)]
        if isinstance(model, OnlineForecaster) and model.expert_names:
            for step, w in enumerate(model.expert_weights()[:, 0], start=1):
                weight.add_metric([*lv, str(step)], float(w))
        if isinstance(model, OnlineForecaster) and model.drift_ratio is not None:
            drift.add_metric(lv, model.drift_ratio)
        version.add_metric(lv, model.model_version)
        series.add_metric(lv, model.n_series)
        if model.retrain_log:
            last = model.retrain_log[-1]
            train.add_metric(lv, last["train_loss"])
            val.add_metric([*lv, "previous"], last["val_loss_before"])
            val.add_metric([*lv, "candidate"], last["val_loss_after"])
    yield from (version, series, train, val, weight, drift)


def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    """A gauge of one value."""
    return GaugeMetricFamily(name, doc, value=value)
