"""``forecaster run``: the long-running service, assembled from its settings.

Kafka source -> :class:`~pipelines.engine.loop.Runner` -> Kafka forecast topic (and the
optional anomaly topic, JSONL / CSV copies), rejected records to the dead-letter topic,
checkpoints in a folder or a compacted Kafka topic (``[checkpoint] store``).
SIGTERM or SIGINT finishes the batch in hand, flushes, checkpoints, commits and exits.
Metrics (:mod:`pipelines.service.telemetry`) are served on ``[metrics] host:port`` from
before the kernels compile (``/healthz`` answers during warm-up) until the loop has
finished.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import FrameType

import numpy as np
from kafka.errors import KafkaConfigurationError
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from threadpoolctl import threadpool_limits

from forecaster import ForecasterConfig, OnlineForecaster
from forecaster.transfer import warm_start
from pipelines.engine.checkpoint import CheckpointStore, StateStore
from pipelines.engine.loop import Runner
from pipelines.engine.memory import FanOut
from pipelines.engine.ports import ForecastSink
from pipelines.engine.runstate import LoopSettings, LoopStats
from pipelines.files.sinks import CsvSink, JsonlSink
from pipelines.kafka.producers import OutProducer, make_output_producer
from pipelines.kafka.sinks import KafkaAnomalySink, KafkaDeadLetterSink, KafkaForecastSink
from pipelines.kafka.source import KafkaSource, make_consumer
from pipelines.kafka.state import KafkaStateStore, check_state_topic, make_state_store
from pipelines.models.file import ModelFile, read_model, start_state
from pipelines.service.http import MetricsServer
from pipelines.service.settings import Settings
from pipelines.service.telemetry import Telemetry

log = logging.getLogger(__name__)


def check_service_model(settings: Settings) -> None:
    """Model settings the service cannot run with, as a ``ValueError`` naming the key."""
    cfg = settings.forecaster_config()
    if cfg.retrain_every or cfg.retrain_interval or cfg.first_retrain:
        if cfg.swap_delay < 1:
            msg = "[model] swap_delay must be at least 1 in the service, so retraining runs "
            msg += "while consuming goes on"
            raise ValueError(msg)
        if not cfg.background:
            msg = "[model] background must be true in the service, so retraining runs "
            msg += "while consuming goes on"
            raise ValueError(msg)


def load_init(settings: Settings, cfg: ForecasterConfig) -> ModelFile | None:
    """The model file of ``[model] init``, checked against ``cfg`` (None when not set).

    Raises :class:`~pipelines.models.file.ModelFileError` naming the file and the fault
    (missing, damaged, or trained for another config).
    """
    path = settings.model_init
    if path is None:
        return None
    model = read_model(path)
    start_state(model, cfg, str(path))
    log.info("partitions without a checkpoint start from model file %s (id %s)", path, model.id)
    return model


def warm_up(cfg: ForecasterConfig) -> float:
    """Compile (or load from the cache) every kernel the model uses; returns the seconds.

    Done before joining the group: compiling holds the interpreter, and a consumer that
    stops polling for its session timeout is thrown out of the group.
    """
    start = time.perf_counter()
    tiny = replace(cfg, background=False, history=max(cfg.window + cfg.horizon + 8, 32),
                   first_retrain=0, retrain_every=0, retrain_interval=0.0, swap_delay=0,
                   train_steps=1, evict_after=0.0)  # fmt: skip
    model = OnlineForecaster(tiny)
    n = tiny.history
    t = np.arange(n, dtype=np.float64) * 60.0
    cov = np.zeros((n, len(cfg.covariates))) if cfg.covariates else None
    model.learn(["warm-up"] * n, t, np.sin(t / 600.0), cov)
    model.retrain_now()
    model.forecast(["warm-up"])
    return time.perf_counter() - start


@dataclass
class Service:
    """A runner wired to Kafka, and the flag that stops it."""

    settings: Settings
    runner: Runner
    stop: threading.Event
    producer: OutProducer
    warm_up_seconds: float
    telemetry: Telemetry | None = None
    metrics_server: MetricsServer | None = None

    @property
    def metrics_url(self) -> str | None:
        """Where Prometheus scrapes the service (None: ``[metrics] enabled = false``)."""
        return self.metrics_server.url if self.metrics_server is not None else None

    def run(self, exit_when_idle: float = 0.0) -> LoopStats:
        """Consume until stopped; BLAS (retraining) limited to ``train_threads``.

        ``exit_when_idle``: also stop once no record has arrived for that many seconds
        after the first one (0: never), for demos and catch-up jobs.
        """
        runner = self.runner

        def should_stop() -> bool:
            if self.stop.is_set():
                if self.telemetry is not None:
                    self.telemetry.stopping = True  # /readyz: not ready from now on
                return True
            last = runner.last_record_at
            if not exit_when_idle or last is None:
                return False
            # A partition paused for a retrain gets no records, but it is not idle.
            if any(t.backlog or t.model.retrain_running for t in runner.tasks.values()):
                return False
            return runner.monotonic() - last >= exit_when_idle

        try:
            with threadpool_limits(self.settings.service.train_threads):
                return runner.run(should_stop)
        finally:
            if self.telemetry is not None:
                self.telemetry.stopping = True
            try:
                self.producer.close()
                if isinstance(runner.store, KafkaStateStore):
                    runner.store.close()
            finally:
                if self.metrics_server is not None:
                    self.metrics_server.stop()


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set ``stop``: the loop ends after the batch in hand.

    Installed before the kernels warm up, so a stop during start-up is graceful too.
    """

    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: finishing the batch, then checkpoint and commit", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def build_service(
    settings: Settings,
    make_model: Callable[[], OnlineForecaster] | None = None,
    stop: threading.Event | None = None,
    registry: CollectorRegistry | None = None,
) -> Service:
    """Connect to Kafka and assemble the loop (nothing is consumed yet).

    The metrics go to ``registry`` (default: a fresh one with the process and platform
    collectors), served from now on when ``[metrics] enabled``.
    """
    check_service_model(settings)
    cfg = settings.forecaster_config()
    init = load_init(settings, cfg)  # before anything starts: a bad file stops here
    if registry is None:
        registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
    telemetry = Telemetry(registry, settings.metrics, cfg.horizon, cfg.coverage)
    telemetry.model_id = init.id if init is not None else None
    server = None
    if settings.metrics.enabled:
        m = settings.metrics
        server = MetricsServer(registry, m.host, m.port, telemetry.readiness)
        log.info("metrics on %s (and /healthz, /readyz)", server.url)
    try:
        service = _assemble(settings, cfg, make_model, telemetry, stop or threading.Event(), init)
    except BaseException:
        if server is not None:
            server.stop()
        raise
    service.metrics_server = server
    return service


def _assemble(
    settings: Settings,
    cfg: ForecasterConfig,
    make_model: Callable[[], OnlineForecaster] | None,
    telemetry: Telemetry,
    stop: threading.Event,
    init: ModelFile | None = None,
) -> Service:
    warm_seconds = warm_up(cfg)
    telemetry.warm_up_seconds = warm_seconds
    log.info("kernels ready in %.2f s", warm_seconds)
    if make_model is None and init is not None:
        state = init.arrays
        make_model = lambda: warm_start(cfg, state)  # noqa: E731 (one expression)
    make_model = make_model or (lambda: OnlineForecaster(cfg))
    try:
        producer = make_output_producer(settings.kafka)
    except KafkaConfigurationError as exc:
        msg = f"[kafka] settings refused by kafka-python: {exc}"
        raise ValueError(msg) from exc
    sinks: list[ForecastSink] = [KafkaForecastSink(producer, settings.topics.output)]
    if settings.topics.anomalies:
        sinks.append(KafkaAnomalySink(producer, settings.topics.anomalies))
    if settings.sink.jsonl is not None:
        sinks.append(JsonlSink(settings.sink.jsonl))
    if settings.sink.csv is not None:
        sinks.append(CsvSink(settings.sink.csv))
    source = KafkaSource(make_consumer(settings.kafka), settings.topics.input)
    ck = settings.checkpoint
    store: StateStore = CheckpointStore(ck.dir)
    if ck.store == "kafka":
        problem = check_state_topic(settings.kafka, ck.topic)
        if problem is not None:
            log.warning("%s", problem)
        store = make_state_store(settings.kafka, ck.topic)
    loop = LoopSettings(ck.every_events, ck.every_seconds, settings.kafka.poll_timeout_ms,
                        on_bad_checkpoint=ck.on_error)  # fmt: skip
    runner = Runner(
        source, FanOut(sinks) if len(sinks) > 1 else sinks[0],
        KafkaDeadLetterSink(producer, settings.topics.dead_letter,
                            settings.kafka.max_message_bytes),
        store, make_model, loop,
    )  # fmt: skip
    runner.model_id = init.id if init is not None else None
    telemetry.attach(runner)
    return Service(settings, runner, stop, producer, warm_seconds, telemetry)
