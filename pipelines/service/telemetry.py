"""Prometheus metrics of the service: every metric is declared here, on an injected registry.

Most values are read from the run loop's state when Prometheus scrapes (a custom
collector); the loop reports only what state does not keep: each batch's processing time
(:class:`~pipelines.engine.loop.LoopObserver`) and each batch's forecasts and realised errors
(a :data:`~pipelines.engine.loop.BatchListener`). Both run on the loop's thread; a lock guards
what the scrape thread reads. The consumer lag is sampled there too, after every poll:
the Kafka consumer is not thread-safe, so the scrape thread never calls it.

Labels are bounded: ``reason`` (:data:`pipelines.engine.records.REASONS`), ``outcome`` and
``weights`` (three and two values), ``topic`` / ``partition`` (the input topic's partitions),
``step`` (1..horizon) and ``series``, only for the allow-list ``[metrics] forecast_series``.

=============================================  =========  ==================================
name                                           type       labels
=============================================  =========  ==================================
forecaster_events_consumed_total               counter    (records processed: events and
                                                          rejected records)
forecaster_events_rejected_total               counter    reason
forecaster_forecasts_emitted_total             counter
forecaster_checkpoints_total                   counter
forecaster_batch_processing_seconds            histogram  (one partition's batch: decode,
                                                          learn, forecast, write)
forecaster_event_processing_seconds            histogram  (a batch's time / its records,
                                                          counted once per record)
forecaster_consumer_lag_records                gauge      topic, partition
forecaster_retrains_started_total              counter
forecaster_retrains_total                      counter    outcome (accepted, rejected,
                                                          failed: raised an exception)
forecaster_retrain_duration_seconds            histogram  (start to finish, seen by the loop)
forecaster_retrain_train_loss                  gauge      topic, partition
forecaster_retrain_validation_loss             gauge      topic, partition, weights
                                                          (previous, candidate)
forecaster_model_version                       gauge      topic, partition
forecaster_active_series                       gauge      topic, partition
forecaster_forecast_abs_error                  histogram  step
forecaster_forecast_mae                        gauge      step (last ``window`` errors)
forecaster_interval_coverage_ratio             gauge      step (last ``window`` forecasts)
forecaster_interval_coverage_target_ratio      gauge
forecaster_checkpoint_age_seconds              gauge
forecaster_last_checkpoint_timestamp_seconds   gauge
forecaster_jit_warmup_seconds                  gauge
forecaster_ready                               gauge
forecaster_build_info                          info       version, python, numpy, numba
forecaster_series_value                        gauge      series
forecaster_series_event_timestamp_seconds      gauge      series
forecaster_series_forecast                     gauge      series, step
forecaster_series_forecast_lower               gauge      series, step
forecaster_series_forecast_upper               gauge      series, step
forecaster_series_forecast_of_latest           gauge      series, step
=============================================  =========  ==================================

``forecaster_series_forecast{step="k"}`` is the forecast just issued for the series' k-th
next event; ``forecaster_series_forecast_of_latest{step="k"}`` is the forecast issued k
events earlier for the latest event, so it plots against ``forecaster_series_value`` at
the same instant.
"""

from __future__ import annotations

import logging
import platform
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import cast

import numpy as np
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from forecaster import OnlineForecaster
from forecaster.core import F64Array
from pipelines.engine.loop import BatchTiming, Runner
from pipelines.engine.records import REASONS
from pipelines.engine.sinks import ForecastBatch
from pipelines.engine.sources import TP
from pipelines.engine.task import PartitionTask
from pipelines.service.settings import MetricsSettings

log = logging.getLogger(__name__)
_go_float = cast(Callable[[float], str], floatToGoString)  # how prometheus_client writes "le"


def _decades(first: int, last: int, top: float) -> tuple[float, ...]:
    return (*(float(f"{m}e{e}") for e in range(first, last + 1) for m in (1, 2.5, 5)), top)


# 1 us to 10 s: a record takes microseconds, a batch of thousands up to seconds.
LATENCY_BUCKETS = _decades(-6, 0, 10.0)
RETRAIN_BUCKETS = _decades(-2, 2, 1000.0)  # 10 ms to 1000 s
ERROR_BUCKETS = _decades(-3, 2, 1000.0)  # in the series' own units


class _Buckets:
    """Histogram bucket counts kept in NumPy, one row per label value, filled by batches."""

    def __init__(self, bounds: Sequence[float], rows: int) -> None:
        self.bounds = np.asarray(bounds, dtype=np.float64)
        self.counts = np.zeros((rows, self.bounds.size + 1), dtype=np.int64)
        self.sums = np.zeros(rows)

    def add(self, row: int, values: F64Array, weight: int = 1) -> None:
        # bucket i holds values <= bounds[i]; the last one, everything above (+Inf)
        idx = np.searchsorted(self.bounds, values, side="left")
        self.counts[row] += weight * np.bincount(idx, minlength=self.counts.shape[1])
        self.sums[row] += weight * float(values.sum())

    def family(
        self, name: str, doc: str, labelnames: list[str], rows: list[list[str]]
    ) -> HistogramMetricFamily:
        fam = HistogramMetricFamily(name, doc, labels=labelnames)
        les = [_go_float(b) for b in self.bounds] + ["+Inf"]
        for row, values in enumerate(rows):
            cum = np.cumsum(self.counts[row]).tolist()
            fam.add_metric(values, list(zip(les, cum, strict=True)), float(self.sums[row]))
        return fam


class _Rolling:
    """The last ``window`` absolute errors and coverage hits of each horizon step."""

    def __init__(self, horizon: int, window: int) -> None:
        self.abs_err = np.zeros((horizon, window))
        self.hit = np.zeros((horizon, window))
        self.filled = np.zeros(horizon, dtype=np.int64)
        self.pos = np.zeros(horizon, dtype=np.int64)

    def add(self, step: int, abs_err: F64Array, hit: F64Array) -> None:
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
class _Latest:
    """An allow-listed series' latest event and forecasts (at the exported steps)."""

    value: float
    ts: float
    yhat: list[float]
    lower: list[float]
    upper: list[float]
    of_latest: list[float]


@dataclass
class _RetrainSeen:
    """What the telemetry last saw of a partition's model, to count retrains once."""

    model: OnlineForecaster
    started: int
    accepted: int
    rejected: int
    failed: int
    began: float | None = None  # monotonic time the running retrain was first seen

    @classmethod
    def of(cls, model: OnlineForecaster) -> _RetrainSeen:
        """The model's counts now."""
        return cls(model, model.retrains_started, model.retrains_accepted,
                   model.retrains_rejected, model.retrains_failed)  # fmt: skip


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


class Telemetry:
    """The service's metrics on ``registry``; :meth:`attach` connects them to a runner.

    Parameters
    ----------
    registry
        Where every metric is registered (a fresh ``CollectorRegistry`` per service).
    settings
        The ``[metrics]`` table: allow-listed series and the steps exported for them.
    horizon
        The model's K; ``settings.forecast_steps`` must not exceed it.
    coverage
        The nominal interval coverage (exported next to the achieved one).
    window
        Forecasts per step behind the rolling MAE and coverage.

    Examples
    --------
    >>> from prometheus_client import CollectorRegistry
    >>> registry = CollectorRegistry()
    >>> telemetry = Telemetry(registry, MetricsSettings(), horizon=3, coverage=0.9)
    >>> telemetry.warm_up_seconds = 1.5
    >>> registry.get_sample_value("forecaster_jit_warmup_seconds")
    1.5
    >>> sorted(k for k, ok in telemetry.readiness().items() if not ok)
    ['partitions_assigned']
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        settings: MetricsSettings,
        horizon: int,
        coverage: float,
        window: int = 1000,
    ) -> None:
        settings.check_horizon(horizon)
        if window < 1:
            msg = f"window must be an integer >= 1, got {window!r}"
            raise ValueError(msg)
        self.settings, self.horizon, self.coverage = settings, horizon, coverage
        self.runner: Runner | None = None
        self._assigned = False
        self._attached_at = 0.0
        self.warm_up_seconds: float | None = None
        self.stopping = False
        self._lock = threading.Lock()
        self._allowed = frozenset(settings.forecast_series)
        self._cols = np.array(settings.forecast_steps, dtype=np.int64) - 1
        self._latest: dict[str, _Latest] = {}
        self._errors = _Buckets(ERROR_BUCKETS, horizon)
        self._event_seconds = _Buckets(LATENCY_BUCKETS, 1)
        self._rolling = _Rolling(horizon, window)
        self._lag: dict[TP, int] = {}
        self._seen: dict[TP, _RetrainSeen] = {}
        self._retrains = {"accepted": 0, "rejected": 0, "failed": 0}
        self._retrains_started = 0
        self._build = build_info()
        self.batch_seconds = Histogram(
            "forecaster_batch_processing_seconds",
            "Time to process one partition's batch of records: decode, learn, forecast, write.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.retrain_seconds = Histogram(
            "forecaster_retrain_duration_seconds",
            "Time from a retrain's start to its end, as seen by the loop (one poll's resolution).",
            buckets=RETRAIN_BUCKETS,
            registry=registry,
        )
        registry.register(self)

    # --- wiring -----------------------------------------------------------------
    def attach(self, runner: Runner) -> None:
        """Read ``runner``'s state at scrape time, and hear of its batches and forecasts."""
        self.runner, self._attached_at = runner, runner.clock()
        runner.listeners.append(self.on_forecasts)
        runner.observer = self

    def readiness(self) -> dict[str, bool]:
        """Kernels compiled; partitions assigned (and restored); sinks delivering; not stopping."""
        r = self.runner
        return {
            "kernels_compiled": self.warm_up_seconds is not None,
            "partitions_assigned": r is not None and r.started and self._assigned,
            "sinks_delivering": r is None or not r.backing_off,
            "running": not self.stopping,
        }

    def ready(self) -> bool:
        """Every :meth:`readiness` condition holds."""
        return all(self.readiness().values())

    # --- on the loop's thread ---------------------------------------------------
    def on_assigned(self, tps: Sequence[TP]) -> None:
        """Partitions restored: note their models' retrain counts before any new record."""
        runner = self.runner
        if runner is None:
            return
        with self._lock:
            self._assigned = True
            for tp in tps:
                task = runner.tasks.get(tp)
                seen = self._seen.get(tp)
                if task is not None and (seen is None or seen.model is not task.model):
                    self._seen[tp] = _RetrainSeen.of(task.model)

    def on_forecasts(self, batch: ForecastBatch) -> None:
        """Count realised errors and coverage; keep the allow-listed series' latest."""
        with self._lock:
            if batch.errors is not None:
                err = batch.errors
                hit = batch.covered if batch.covered is not None else np.zeros(err.shape, bool)
                for k in range(min(self.horizon, err.shape[1])):
                    ok = np.isfinite(err[:, k])
                    if ok.any():
                        abs_err = np.abs(err[ok, k])
                        self._errors.add(k, abs_err)
                        self._rolling.add(k, abs_err, hit[ok, k].astype(np.float64))
            if self._allowed:
                last = {s: i for i, s in enumerate(batch.series) if s in self._allowed}
                for sid, i in last.items():
                    self._latest[sid] = self._latest_of(batch, i)

    def _latest_of(self, batch: ForecastBatch, i: int) -> _Latest:
        cols = self._cols
        value = float(batch.value[i])
        if batch.errors is not None:
            of_latest = (value - batch.errors[i, cols]).tolist()
        else:
            of_latest = [float("nan")] * cols.size
        return _Latest(
            value,
            float(batch.ts[i]),
            batch.yhat[i, cols].tolist(),
            batch.lower[i, cols].tolist(),
            batch.upper[i, cols].tolist(),
            of_latest,
        )

    def on_poll(self, timings: Sequence[BatchTiming]) -> None:
        """Time the batches; sample the consumer lag; count and time retrains."""
        runner = self.runner
        if runner is None:
            return
        lag = getattr(runner.source, "lag", None)
        fresh: dict[TP, int] | None = None
        if callable(lag):
            try:
                fresh = dict(lag())
            except Exception as exc:  # a metric must never stop the loop
                log.debug("consumer lag not available: %r", exc)
        now = runner.monotonic()
        with self._lock:
            for _, n, seconds in timings:
                self.batch_seconds.observe(seconds)
                if n:
                    self._event_seconds.add(0, np.array([seconds / n]), weight=n)
            if fresh is not None:
                self._lag = fresh
            self._track_retrains(runner, now, {tp: sec for tp, _, sec in timings})

    def _track_retrains(self, runner: Runner, now: float, batch_seconds: dict[TP, float]) -> None:
        # A retrain is timed from the start of the batch in which it started to the first
        # poll that sees it done; one that starts and ends within a batch, as that batch.
        for tp in [tp for tp in self._seen if tp not in runner.tasks]:
            del self._seen[tp]
        for tp, task in runner.tasks.items():
            m, seen = task.model, self._seen.get(tp)
            if seen is None or seen.model is not m:  # not seen assigned: from now on
                self._seen[tp] = _RetrainSeen.of(m)
                continue
            new, running = m.retrains_started - seen.started, m.retrain_running
            if seen.began is not None and (new > 0 or not running):  # the one we timed ended
                self.retrain_seconds.observe(now - seen.began)
                seen.began = None
            if new > 0:
                began = now - batch_seconds.get(tp, 0.0)
                for _ in range(new - running):  # started and ended within this batch
                    self.retrain_seconds.observe(now - began)
                seen.began = began if running else None
                seen.started = m.retrains_started
                self._retrains_started += new
            self._retrains["accepted"] += m.retrains_accepted - seen.accepted
            self._retrains["rejected"] += m.retrains_rejected - seen.rejected
            self._retrains["failed"] += m.retrains_failed - seen.failed
            seen.accepted, seen.rejected = m.retrains_accepted, m.retrains_rejected
            seen.failed = m.retrains_failed

    # --- on the scrape thread ---------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        """Every metric read from state (called by the registry on each scrape)."""
        yield InfoMetricFamily("forecaster_build", "Versions of the service.", value=self._build)
        yield _gauge("forecaster_ready", "1 when /readyz says ready.", float(self.ready()))
        if self.warm_up_seconds is not None:
            yield _gauge(
                "forecaster_jit_warmup_seconds",
                "Seconds to compile (or load) the kernels at start.",
                self.warm_up_seconds,
            )
        yield _gauge(
            "forecaster_interval_coverage_target_ratio",
            "Nominal coverage of the forecast intervals.",
            self.coverage,
        )
        with self._lock:  # built whole: a reader may stop early, the lock must not wait
            locked = list(self._collect_locked())
        yield from locked
        if self.runner is not None:
            yield from self._collect_runner(self.runner)

    def _collect_locked(self) -> Iterator[Metric]:
        steps = [[str(k + 1)] for k in range(self.horizon)]
        yield self._errors.family(
            "forecaster_forecast_abs_error",
            "Absolute error of each forecast, by steps ahead, when its event arrives.",
            ["step"],
            steps,
        )
        yield self._event_seconds.family(
            "forecaster_event_processing_seconds",
            "Processing time per record: a batch's time over its records, once per record.",
            [],
            [[]],
        )
        mae, cov = self._rolling.means()
        n = self._rolling.abs_err.shape[1]
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
        for k in range(self.horizon):
            if not np.isnan(mae[k]):
                fam.add_metric([str(k + 1)], mae[k])
                cfam.add_metric([str(k + 1)], cov[k])
        yield fam
        yield cfam
        lag = GaugeMetricFamily(
            "forecaster_consumer_lag_records",
            "Records between the consumer's position and the partition's end.",
            labels=["topic", "partition"],
        )
        for (topic, part), n_lag in sorted(self._lag.items()):
            lag.add_metric([topic, str(part)], n_lag)
        yield lag
        started = CounterMetricFamily(
            "forecaster_retrains_started",
            "Retrains started by this process.",
            value=self._retrains_started,
        )
        yield started
        done = CounterMetricFamily(
            "forecaster_retrains",
            "Retrains finished, by whether their weights were taken.",
            labels=["outcome"],
        )
        for outcome, count in self._retrains.items():
            done.add_metric([outcome], count)
        yield done
        yield from self._collect_series()

    def _collect_series(self) -> Iterator[Metric]:
        if not self._allowed:
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
            name: GaugeMetricFamily(name, doc, labels=["series", "step"])
            for name, doc in docs.items()
        }
        steps = [str(s) for s in self.settings.forecast_steps]
        for sid in self.settings.forecast_series:
            got = self._latest.get(sid)
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

    def _collect_runner(self, runner: Runner) -> Iterator[Metric]:
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
        yield from self._collect_models(list(runner.tasks.items()))
        if stats.last_checkpoint > 0:
            yield _gauge(
                "forecaster_last_checkpoint_timestamp_seconds",
                "Wall-clock time of the latest checkpoint.",
                stats.last_checkpoint,
            )
        since = stats.last_checkpoint if stats.last_checkpoint > 0 else self._attached_at
        yield _gauge(
            "forecaster_checkpoint_age_seconds",
            "Seconds since the latest checkpoint (or since the loop started).",
            max(0.0, runner.clock() - since),
        )

    def _collect_models(self, tasks: list[tuple[TP, PartitionTask]]) -> Iterator[Metric]:
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
        for (topic, part), task in sorted(tasks, key=lambda kv: kv[0]):
            model = task.model
            lv = [topic, str(part)]
            version.add_metric(lv, model.model_version)
            series.add_metric(lv, len(model.table))
            if model.retrain_log:
                last = model.retrain_log[-1]
                train.add_metric(lv, last["train_loss"])
                val.add_metric([*lv, "previous"], last["val_loss_before"])
                val.add_metric([*lv, "candidate"], last["val_loss_after"])
        yield from (version, series, train, val)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)
