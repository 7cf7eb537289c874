"""Prometheus metrics of the service: every metric is declared here, on an injected registry.

Most values are read from the run loop's state when Prometheus scrapes (a custom
collector, :mod:`pipelines.service.collector`); the loop reports only what state does not
keep: each batch's processing time and each partition's retrains as its task saw them
(:class:`~pipelines.engine.loop.LoopObserver`), and each batch's forecasts and the errors
the model scored (a :data:`~pipelines.engine.loop.BatchListener`). Both run on the loop's
thread; a lock guards what the scrape thread reads. The consumer lag is sampled there too,
after every poll: the Kafka consumer is not thread-safe, so the scrape thread never
calls it.

Labels are bounded: ``reason`` (:data:`pipelines.engine.records.REASONS` for rejected
records, :data:`forecaster.schedule.REASONS` for retrains), ``outcome``
and ``weights`` (three and two values), ``topic`` / ``partition`` (the input topic's partitions),
``step`` (1..horizon) and ``series``, only for the allow-list ``[metrics] forecast_series``.

=============================================  =========  ==================================
name                                           type       labels
=============================================  =========  ==================================
forecaster_events_consumed_total               counter    (records processed: events and
                                                          rejected records)
forecaster_events_rejected_total               counter    reason
forecaster_forecasts_emitted_total             counter
forecaster_checkpoints_total                   counter
forecaster_checkpoint_restore_seconds          summary    (load and restore, per partition)
forecaster_state_missing_total                 counter    (no checkpoint, offsets committed)
forecaster_batch_processing_seconds            histogram  (one partition's batch: decode,
                                                          learn, forecast, write)
forecaster_event_processing_seconds            histogram  (a batch's time / its records,
                                                          counted once per record)
forecaster_consumer_lag_records                gauge      topic, partition
forecaster_retrains_started_total              counter    reason (first, schedule, drift,
                                                          manual)
forecaster_retrains_total                      counter    outcome (accepted, rejected,
                                                          failed: raised an exception), reason
forecaster_drift_statistic_ratio               gauge      topic, partition (Page-Hinkley
                                                          statistic / its threshold: 1 starts
                                                          a retrain; with the drift trigger)
forecaster_retrain_duration_seconds            histogram  (start to finish, seen by the loop)
forecaster_retrain_train_loss                  gauge      topic, partition
forecaster_retrain_validation_loss             gauge      topic, partition, weights
                                                          (previous, candidate)
forecaster_model_version                       gauge      topic, partition
forecaster_active_series                       gauge      topic, partition
forecaster_aggregation_model_weight_ratio      gauge      topic, partition, step (the GRU's
                                                          pooled weight among the experts)
forecaster_forecast_abs_error                  histogram  step
forecaster_forecast_mae                        gauge      step (last ``window`` errors)
forecaster_interval_coverage_ratio             gauge      step (last ``window`` forecasts)
forecaster_interval_coverage_target_ratio      gauge
forecaster_anomalies_flagged_total             counter    step (the step it was judged at)
forecaster_checkpoint_age_seconds              gauge
forecaster_last_checkpoint_timestamp_seconds   gauge
forecaster_jit_warmup_seconds                  gauge
forecaster_ready                               gauge
forecaster_build_info                          info       version, python, numpy, numba
forecaster_model_file_info                     info       id (the [model] init file's; ""
                                                          without one)
forecaster_series_value                        gauge      series
forecaster_series_event_timestamp_seconds      gauge      series
forecaster_series_forecast                     gauge      series, step
forecaster_series_forecast_lower               gauge      series, step
forecaster_series_forecast_upper               gauge      series, step
forecaster_series_forecast_of_latest           gauge      series, step
forecaster_series_anomaly_score                gauge      series (the latest judged event's)
=============================================  =========  ==================================

``forecaster_series_forecast{step="k"}`` is the forecast just issued for the series' k-th
next event; ``forecaster_series_forecast_of_latest{step="k"}`` is the forecast issued k
events earlier for the latest event, so it plots against ``forecaster_series_value`` at
the same instant.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import InfoMetricFamily, Metric

from pipelines.engine.batches import TP, ForecastBatch
from pipelines.engine.loop import BatchTiming, Runner
from pipelines.engine.task import RetrainNews
from pipelines.service.collector import (
    ERROR_BUCKETS,
    LATENCY_BUCKETS,
    RETRAIN_BUCKETS,
    Buckets,
    Latest,
    Rolling,
    anomaly_families,
    build_info,
    error_families,
    gauge,
    lag_family,
    retrain_families,
    runner_families,
    series_families,
)
from pipelines.service.settings import MetricsSettings

log = logging.getLogger(__name__)
__all__ = ["ERROR_BUCKETS", "Telemetry"]


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
        self._latest: dict[str, Latest] = {}
        self._errors = Buckets(ERROR_BUCKETS, horizon)
        self._event_seconds = Buckets(LATENCY_BUCKETS, 1)
        self._rolling = Rolling(horizon, window)
        self._anomalies = np.zeros(horizon, dtype=np.int64)  # flagged events by step
        self._lag: dict[TP, int] = {}
        self._training_since: dict[TP, float] = {}  # partitions whose retrain is training
        # (event, reason) -> retrains: event "started" or an outcome.
        self._retrains: Counter[tuple[str, str]] = Counter()
        self._build = build_info()
        self.model_id: str | None = None  # of the [model] init file partitions start from
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
        """Partitions assigned and restored (new model objects): none is training yet."""
        with self._lock:
            self._assigned = True
            for tp in tps:
                self._training_since.pop(tp, None)

    def on_forecasts(self, batch: ForecastBatch) -> None:
        """Count the errors the model scored, and coverage; keep allow-listed series' latest."""
        with self._lock:
            err, hit = batch.errors, batch.covered
            for k in range(min(self.horizon, err.shape[1])):
                ok = np.isfinite(err[:, k])
                if ok.any():
                    abs_err = np.abs(err[ok, k])
                    self._errors.add(k, abs_err)
                    self._rolling.add(k, abs_err, hit[ok, k].astype(np.float64))
            judged = batch.anomaly
            if judged is not None and judged.flag.any():
                steps = judged.step[judged.flag] - 1
                self._anomalies += np.bincount(steps, minlength=self.horizon)[: self.horizon]
            if self._allowed:
                last = {s: i for i, s in enumerate(batch.series) if s in self._allowed}
                for sid, i in last.items():
                    self._latest[sid] = self._latest_of(batch, i)

    def _latest_of(self, batch: ForecastBatch, i: int) -> Latest:
        cols = self._cols
        value = float(batch.value[i])
        of_latest = (value - batch.errors[i, cols]).tolist()
        score = float("nan") if batch.anomaly is None else float(batch.anomaly.score[i])
        return Latest(
            value,
            float(batch.ts[i]),
            batch.yhat[i, cols].tolist(),
            batch.lower[i, cols].tolist(),
            batch.upper[i, cols].tolist(),
            of_latest,
            score,
        )

    def on_poll(self, timings: Sequence[BatchTiming], retrains: Mapping[TP, RetrainNews]) -> None:
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
            batch_seconds = {tp: sec for tp, _, sec in timings}
            for tp in [tp for tp in self._training_since if tp not in runner.tasks]:
                del self._training_since[tp]  # revoked
            for tp, news in retrains.items():
                self._count_retrains(tp, news, now, batch_seconds.get(tp, 0.0))

    def _count_retrains(self, tp: TP, news: RetrainNews, now: float, batch_seconds: float) -> None:
        # A retrain is timed from the start of the batch in which it started to the first
        # poll that hears it finished; one that starts and ends within a batch, as that batch.
        began = self._training_since.pop(tp, None)
        if began is not None and (news.started or not news.training):  # the one timed ended
            self.retrain_seconds.observe(now - began)
        elif began is not None:
            self._training_since[tp] = began
        if news.started:
            start = now - batch_seconds
            for _ in range(news.started - news.training):  # started and ended in this batch
                self.retrain_seconds.observe(now - start)
            if news.training:
                self._training_since[tp] = start
        self._retrains.update(news.by_reason)

    # --- on the scrape thread ---------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        """Every metric read from state (called by the registry on each scrape)."""
        yield InfoMetricFamily("forecaster_build", "Versions of the service.", value=self._build)
        yield InfoMetricFamily(
            "forecaster_model_file",
            "The model file partitions without a checkpoint start from ([model] init).",
            value={"id": self.model_id or ""},
        )
        yield gauge("forecaster_ready", "1 when /readyz says ready.", float(self.ready()))
        if self.warm_up_seconds is not None:
            yield gauge(
                "forecaster_jit_warmup_seconds",
                "Seconds to compile (or load) the kernels at start.",
                self.warm_up_seconds,
            )
        yield gauge(
            "forecaster_interval_coverage_target_ratio",
            "Nominal coverage of the forecast intervals.",
            self.coverage,
        )
        with self._lock:  # built whole: a reader may stop early, the lock must not wait
            locked = [
                *error_families(self._errors, self._event_seconds, self._rolling, self.horizon),
                lag_family(self._lag),
                *retrain_families(self._retrains),
                *series_families(self.settings, self._latest),
                *anomaly_families(self._anomalies, self.settings, self._latest),
            ]
        yield from locked
        if self.runner is not None:
            yield from runner_families(self.runner, self._attached_at)
