"""Metrics (issue 5), read through an injected registry after known streams; no broker."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import urlopen

import numpy as np
import orjson
import pytest
from prometheus_client import CollectorRegistry

from forecaster import OnlineForecaster
from forecaster.retrain import RetrainJob, RetrainResult
from pipelines.engine.batches import TP
from pipelines.engine.checkpoint import CheckpointStore
from pipelines.engine.loop import Runner
from pipelines.engine.memory import ListDeadLetters, ListSink, MemorySource
from pipelines.engine.records import REASONS, Message, Record
from pipelines.engine.runstate import Clocks, LoopSettings
from pipelines.service.http import MetricsServer
from pipelines.service.settings import MetricsSettings, load_settings
from pipelines.service.telemetry import ERROR_BUCKETS, Telemetry
from tests.pipelines.streams import MODEL, sensor_events, write_settings

TOPIC = "events"
TP0 = (TOPIC, 0)
STEP = 2.0**-10  # the fake monotonic clock's tick: exact in binary, so sums are exact
T0 = 1_700_000_000.0


class FakeClocks:
    """Wall clock set by the test; a monotonic clock that ticks once per reading."""

    def __init__(self) -> None:
        self.wall = T0
        self.mono = 0.0

    def clock(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        self.mono += STEP
        return self.mono


class LaggingSource(MemorySource):
    """A memory source that reports its unread records as consumer lag, like KafkaSource."""

    def lag(self) -> dict[TP, int]:
        return {tp: len(recs) - self.pos[tp] for tp, recs in self.partitions.items()}


def event(sid: str, hour: int, value: Any) -> bytes:
    return orjson.dumps({"series": sid, "ts": int((T0 + hour * 3600) * 1000), "value": value})


N = 30  # events per series
# "a" rises by t at event t, "b" stays at 5: with retraining off, the model forecasts "no
# change", so the error of a's k-step forecast at event t is y[t] - y[t-k], b's is 0.
Y_A = np.array([t * (t + 1) / 2 for t in range(N)])
BAD = [
    (None, b"\xff not json"),
    (None, b"[1, 2]"),
    (None, b'{"ts": 1700000000000, "value": 1.0}'),
    (None, b'{"series": "b", "ts": 1700000000000, "value": NaN}'),
    (None, event("a", -5, 1.0)),  # older than a's first event once that is learned
]
REJECTED = {"undecodable": 2, "missing_field": 1, "non_finite": 1, "out_of_order": 1}


def known_stream() -> list[tuple[bytes | None, bytes]]:
    msgs: list[tuple[bytes | None, bytes]] = []
    for t in range(N):
        msgs += [(b"a", event("a", t, float(Y_A[t]))), (b"b", event("b", t, 5.0))]
        if t == 10:
            msgs += BAD
    return msgs


def make_runner(
    msgs: Sequence[tuple[bytes | None, bytes]], model: dict[str, Any], tmp: Path, batch: int
) -> tuple[Runner, FakeClocks, ListSink]:
    clocks = FakeClocks()
    recs: list[Record] = [Message(TOPIC, 0, i, k, v) for i, (k, v) in enumerate(msgs)]
    sink = ListSink()
    runner = Runner(
        LaggingSource({TP0: recs}, batch=batch), sink, ListDeadLetters(),
        CheckpointStore(tmp / "ckpt"), lambda: OnlineForecaster(model),
        LoopSettings(every_events=25, every_seconds=1e9),
        Clocks(wall=clocks.clock, monotonic=clocks.monotonic),
    )  # fmt: skip
    return runner, clocks, sink


def drain(runner: Runner) -> int:
    """Run until every record is processed and no retrain runs; returns the polls made."""
    polls = 0
    source = runner.source
    assert isinstance(source, MemorySource)
    while (
        not source.exhausted
        or any(t.backlog for t in runner.tasks.values())
        or any(t.model.retrain_running for t in runner.tasks.values())
    ):
        runner.run_once()
        polls += 1
    return polls


NO_RETRAIN = dict(MODEL, retrain_every=0, first_retrain=0)


def test_every_metric_after_a_known_stream(tmp_path: Path) -> None:
    msgs = known_stream()
    runner, clocks, sink = make_runner(msgs, NO_RETRAIN, tmp_path, batch=10)
    registry = CollectorRegistry()
    settings = MetricsSettings(forecast_series=["a", "never-seen"], forecast_steps=[1, 3])
    telemetry = Telemetry(registry, settings, horizon=3, coverage=0.9)
    telemetry.warm_up_seconds = 0.25
    telemetry.attach(runner)

    def get(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert get("forecaster_ready") == 0.0
    assert get("forecaster_checkpoint_age_seconds") == 0.0
    runner.start()
    assert get("forecaster_ready") == 1.0
    runner.run_once()
    assert get("forecaster_consumer_lag_records", topic=TOPIC, partition="0") == len(msgs) - 10
    polls = 1 + drain(runner)
    assert get("forecaster_consumer_lag_records", topic=TOPIC, partition="0") == 0

    good = 2 * N
    assert get("forecaster_events_consumed_total") == len(msgs)
    assert get("forecaster_forecasts_emitted_total") == good
    for reason in REASONS:
        want = REJECTED.get(reason, 0)
        assert get("forecaster_events_rejected_total", reason=reason) == want, reason

    # Latency: every batch took exactly one tick of the fake clock.
    batches = -(-len(msgs) // 10)
    assert polls >= batches
    assert get("forecaster_batch_processing_seconds_count") == batches
    assert get("forecaster_batch_processing_seconds_sum") == batches * STEP
    assert get("forecaster_batch_processing_seconds_bucket", le="0.001") == batches
    assert get("forecaster_batch_processing_seconds_bucket", le="0.0005") == 0
    assert get("forecaster_event_processing_seconds_count") == len(msgs)
    assert get("forecaster_event_processing_seconds_sum") == pytest.approx(batches * STEP)
    # 6 batches of 10 records (STEP / 10 = 98 us per record), then one of 5 (195 us).
    assert get("forecaster_event_processing_seconds_bucket", le="5e-05") == 0
    assert get("forecaster_event_processing_seconds_bucket", le="0.0001") == 60
    assert get("forecaster_event_processing_seconds_bucket", le="0.00025") == len(msgs) == 65

    # Realised errors per step: a's are y[t] - y[t-k], b's are 0, none for t < k.
    model = runner.tasks[TP0].model
    for k in (1, 2, 3):
        err_a = Y_A[k:] - Y_A[:-k]
        errors = np.concatenate([err_a, np.zeros(N - k)])
        step = str(k)
        assert get("forecaster_forecast_abs_error_count", step=step) == errors.size
        assert get("forecaster_forecast_abs_error_sum", step=step) == errors.sum()
        for le in ERROR_BUCKETS:
            want = int((errors <= le).sum())
            got = get("forecaster_forecast_abs_error_bucket", step=step, le=repr(le))
            assert got == want, (k, le)
        assert get("forecaster_forecast_abs_error_bucket", step=step, le="+Inf") == errors.size
        assert get("forecaster_forecast_mae", step=step) == pytest.approx(errors.mean())
        # The model keeps its own tally of interval hits: the same figure.
        assert get("forecaster_interval_coverage_ratio", step=step) == pytest.approx(
            model.coverage[k - 1]
        )
    assert 0 < get("forecaster_interval_coverage_ratio", step="1") < 1  # type: ignore[operator]
    assert get("forecaster_interval_coverage_target_ratio") == 0.9

    # Partition state, read at scrape time.
    assert get("forecaster_active_series", topic=TOPIC, partition="0") == 2
    assert get("forecaster_model_version", topic=TOPIC, partition="0") == 0
    assert _total(registry, "forecaster_retrains_total", outcome="accepted") == 0
    assert get("forecaster_retrain_train_loss", topic=TOPIC, partition="0") is None

    # Checkpoints every 25 records: the age counts from the latest one.
    assert get("forecaster_checkpoints_total") == runner.stats.checkpoints > 0
    assert get("forecaster_last_checkpoint_timestamp_seconds") == T0
    clocks.wall = T0 + 42.0
    assert get("forecaster_checkpoint_age_seconds") == 42.0
    assert get("forecaster_jit_warmup_seconds") == 0.25
    assert get("forecaster_build_info", **_build_labels(registry)) == 1.0

    # The allow-listed series: latest value, forecasts at steps 1 and 3, and what was
    # forecast 1 and 3 events earlier for the latest value.
    last = [orjson.loads(v) for k, v in sink.messages if k == b"a"][-1]
    assert get("forecaster_series_value", series="a") == Y_A[-1]
    assert get("forecaster_series_event_timestamp_seconds", series="a") == T0 + (N - 1) * 3600
    for i, step in ((0, "1"), (2, "3")):
        assert get("forecaster_series_forecast", series="a", step=step) == last["yhat"][i]
        assert get("forecaster_series_forecast_lower", series="a", step=step) == last["lower"][i]
        assert get("forecaster_series_forecast_upper", series="a", step=step) == last["upper"][i]
    assert get("forecaster_series_forecast_of_latest", series="a", step="1") == Y_A[-2]
    assert get("forecaster_series_forecast_of_latest", series="a", step="3") == Y_A[-4]
    assert get("forecaster_series_forecast", series="a", step="2") is None  # not exported
    assert get("forecaster_series_value", series="b") is None  # not allow-listed
    assert get("forecaster_series_value", series="never-seen") is None


def _total(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 if none)."""
    return sum(
        sample.value
        for fam in registry.collect()
        for sample in fam.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def _build_labels(registry: CollectorRegistry) -> dict[str, str]:
    for fam in registry.collect():
        if fam.name == "forecaster_build":
            return dict(fam.samples[0].labels)
    msg = "no forecaster_build_info"
    raise AssertionError(msg)


# In batches of 1000 the whole stream is one batch, retrains and all: they count all the same.
@pytest.mark.parametrize("batch", [40, 1000])
def test_retrains_are_counted_timed_and_their_losses_exported(tmp_path: Path, batch: int) -> None:
    # 330 events: retrains start at events 150 and 300 (at 60, no series has a full window
    # yet), and their weights swap in at 170 and 320.
    msgs = sensor_events(n_series=3, per_series=110, seed=5)
    runner, _, _ = make_runner(msgs, MODEL, tmp_path, batch=batch)
    registry = CollectorRegistry()
    telemetry = Telemetry(registry, MetricsSettings(), horizon=3, coverage=0.9)
    telemetry.attach(runner)
    runner.start()
    drain(runner)
    model = runner.tasks[TP0].model
    assert model.retrains_started == 2
    get = registry.get_sample_value
    assert _total(registry, "forecaster_retrains_started_total") == 2
    total = functools.partial(_total, registry, "forecaster_retrains_total")
    assert total(outcome="accepted") == model.retrains_accepted
    assert total(outcome="rejected") == model.retrains_rejected
    assert model.retrains_accepted + model.retrains_rejected == 2
    # By what started them: both by the schedule (every 150 events).
    assert [e["reason"] for e in model.retrain_log] == ["schedule", "schedule"]
    assert get("forecaster_retrains_started_total", {"reason": "schedule"}) == 2
    assert total(reason="schedule") == 2
    for reason in ("first", "drift", "manual"):
        assert get("forecaster_retrains_started_total", {"reason": reason}) == 0
        assert total(reason=reason) == 0
    # Timed by the loop from the start of the batch in which a retrain starts to the poll
    # that hears it finished: how many polls that spans depends on the training thread,
    # but each spans at least its batch's tick of the fake clock, and only whole ticks.
    assert get("forecaster_retrain_duration_seconds_count") == 2
    seconds = get("forecaster_retrain_duration_seconds_sum")
    assert seconds is not None and seconds >= 2 * STEP and (seconds / STEP).is_integer()
    labels = {"topic": TOPIC, "partition": "0"}
    last = model.retrain_log[-1]
    assert get("forecaster_retrain_train_loss", labels) == last["train_loss"]
    val = "forecaster_retrain_validation_loss"
    assert get(val, {**labels, "weights": "previous"}) == last["val_loss_before"]
    assert get(val, {**labels, "weights": "candidate"}) == last["val_loss_after"]
    assert get("forecaster_model_version", labels) == model.model_version


def test_a_retrain_that_raises_is_logged_counted_and_the_stream_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Fault injection: every retrain raises in its thread. The partition waits for the
    # first one at event 170; a job that never finished held it paused forever.
    def fails(job: RetrainJob) -> RetrainResult:
        msg = "injected failure"
        raise RuntimeError(msg)

    monkeypatch.setattr(RetrainJob, "_train", fails)
    msgs = sensor_events(n_series=3, per_series=110, seed=5)
    runner, _, sink = make_runner(msgs, MODEL, tmp_path, batch=40)
    registry = CollectorRegistry()
    Telemetry(registry, MetricsSettings(), horizon=3, coverage=0.9).attach(runner)
    runner.start()
    drain(runner)
    assert runner.stats.events == len(msgs) and sum(len(b) for b in sink.batches) == 330
    get = registry.get_sample_value
    assert _total(registry, "forecaster_retrains_total", outcome="failed") == 2
    assert _total(registry, "forecaster_retrains_total", outcome="rejected") == 0
    assert get("forecaster_model_version", {"topic": TOPIC, "partition": "0"}) == 0
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2 and "RuntimeError: injected failure" in errors[0].getMessage()


def test_rolling_mae_and_coverage_keep_the_last_window_only(tmp_path: Path) -> None:
    # 20 events of one series "a" rising by t, then 20 of a flat stretch: a window of 10
    # forecasts sees only the flat stretch's zero errors at step 1.
    y = np.concatenate([Y_A[:20], np.full(20, Y_A[19])])
    msgs = [(b"a", event("a", t, float(v))) for t, v in enumerate(y)]
    runner, _, _ = make_runner(msgs, NO_RETRAIN, tmp_path, batch=7)
    registry = CollectorRegistry()
    Telemetry(registry, MetricsSettings(), horizon=3, coverage=0.9, window=10).attach(runner)
    runner.start()
    drain(runner)
    assert registry.get_sample_value("forecaster_forecast_mae", {"step": "1"}) == 0.0
    assert registry.get_sample_value("forecaster_forecast_abs_error_count", {"step": "1"}) == 39


def test_the_endpoint_serves_metrics_health_and_readiness(tmp_path: Path) -> None:
    runner, _, _ = make_runner(known_stream(), NO_RETRAIN, tmp_path, batch=1000)
    registry = CollectorRegistry()
    telemetry = Telemetry(registry, MetricsSettings(), horizon=3, coverage=0.9)
    server = MetricsServer(registry, "127.0.0.1", 0, telemetry.readiness)
    try:
        base = server.url.removesuffix("/metrics")
        assert base == f"http://127.0.0.1:{server.port}"
        assert urlopen(base + "/healthz").read() == b"ok\n"
        with pytest.raises(HTTPError) as err:
            urlopen(base + "/readyz")
        assert err.value.code == 503
        assert b"kernels_compiled, partitions_assigned" in err.value.read()
        telemetry.warm_up_seconds = 0.1
        telemetry.attach(runner)
        runner.start()
        runner.run_once()
        assert urlopen(base + "/readyz").read() == b"ready\n"
        text = urlopen(server.url).read().decode()
        assert f"forecaster_events_consumed_total {len(known_stream())}.0" in text
        assert 'forecaster_events_rejected_total{reason="undecodable"} 2.0' in text
        telemetry.stopping = True
        with pytest.raises(HTTPError) as err:
            urlopen(base + "/readyz")
        assert err.value.code == 503
        with pytest.raises(HTTPError) as err:
            urlopen(base + "/other")
        assert err.value.code == 404
    finally:
        server.stop()


def test_metrics_settings_are_bounded_and_checked(tmp_path: Path) -> None:
    path = write_settings(tmp_path / "s.toml", {"metrics": {"port": 0,
                          "forecast_series": ["a", "b"], "forecast_steps": [1, 2]}})  # fmt: skip
    m = load_settings(path, env={}).metrics
    assert (m.enabled, m.host, m.port, m.forecast_series) == (True, "127.0.0.1", 0, ["a", "b"])
    assert load_settings(None, env={}).metrics.host == "127.0.0.1"  # never all interfaces
    too_many = [f"s{i}" for i in range(51)]
    with pytest.raises(ValueError, match="at most 50 series"):
        path = write_settings(tmp_path / "t.toml", {"metrics": {"forecast_series": too_many}})
        load_settings(path, env={})
    with pytest.raises(ValueError, match=r"metrics\.bogus: unknown key"):
        load_settings(None, env={"FORECASTER_METRICS__BOGUS": "1"})
    with pytest.raises(ValueError, match=r"step 4 is beyond the model's horizon \(3\)"):
        Telemetry(CollectorRegistry(), MetricsSettings(forecast_steps=[4]), horizon=3,
                  coverage=0.9)  # fmt: skip


def test_the_pooled_weight_of_the_gru_among_the_experts_is_a_gauge_per_step() -> None:
    from dataclasses import replace
    from types import SimpleNamespace

    from forecaster import ForecasterConfig, OnlineForecaster
    from pipelines.service.collector import model_families

    cfg = ForecasterConfig(horizon=3, hidden_size=4, history=32, window=16, burn_in=4,
                           rebuild_steps=8, retrain_every=0, swap_delay=0,
                           aggregation="mlpoly")  # fmt: skip
    model = OnlineForecaster(cfg)
    t = np.arange(1200.0)
    model.learn(["a"] * t.size, t * 60, np.sin(t / 10))
    task = SimpleNamespace(model=model)
    fams = {f.name: f for f in model_families([(("events", 2), task)])}  # type: ignore[list-item]
    got = {
        s.labels["step"]: s.value for s in fams["forecaster_aggregation_model_weight_ratio"].samples
    }
    assert got == {str(k + 1): float(model.expert_weights()[k, 0]) for k in range(3)}
    assert all(0.0 <= v <= 1.0 for v in got.values())
    plain = SimpleNamespace(model=OnlineForecaster(replace(cfg, aggregation="none")))
    fams = {f.name: f for f in model_families([(("events", 2), plain)])}  # type: ignore[list-item]
    assert fams["forecaster_aggregation_model_weight_ratio"].samples == []


def test_drift_retrains_are_counted_by_reason_and_the_statistic_exported(tmp_path: Path) -> None:
    # The noise grows twentyfold at event 120 of each series: the +1 errors outgrow their
    # norm, and the drift test (the only trigger here) starts retrains.
    rng = np.random.default_rng(11)
    msgs = []
    for t in range(240):
        for s in range(3):
            noise = (0.1 if t < 120 else 2.0) * rng.standard_normal()
            value = float(10 + s + np.sin(2 * np.pi * t / 24) + noise)
            doc = {"series": f"s{s}", "ts": int((T0 + t * 3600) * 1000) + s, "value": value}
            msgs.append((f"s{s}".encode(), orjson.dumps(doc)))
    drift = {"retrain_on": ["drift"], "drift_threshold": 2.0, "drift_delta": 0.0,
             "drift_warmup": 30, "drift_check": 10, "drift_min_spacing": 100}  # fmt: skip
    runner, _, _ = make_runner(msgs, {**MODEL, **drift}, tmp_path, batch=50)
    registry = CollectorRegistry()
    Telemetry(registry, MetricsSettings(), horizon=3, coverage=0.9).attach(runner)
    runner.start()
    drain(runner)
    model = runner.tasks[TP0].model
    reasons = [e["reason"] for e in model.retrain_log]
    assert "drift" in reasons and set(reasons) <= {"drift", "first"}
    get = registry.get_sample_value
    for reason in ("first", "schedule", "drift", "manual"):
        started = get("forecaster_retrains_started_total", {"reason": reason})
        assert started == model.retrains_by_reason[reason] == reasons.count(reason)
        ended = _total(registry, "forecaster_retrains_total", reason=reason)
        assert ended == reasons.count(reason)
    ratio = get("forecaster_drift_statistic_ratio", {"topic": TOPIC, "partition": "0"})
    assert ratio is not None and ratio == model.drift_ratio
    # Without the drift trigger there is no statistic to export.
    runner, _, _ = make_runner(msgs[:30], MODEL, tmp_path / "plain", batch=50)
    registry = CollectorRegistry()
    Telemetry(registry, MetricsSettings(), horizon=3, coverage=0.9).attach(runner)
    runner.start()
    drain(runner)
    assert (
        registry.get_sample_value(
            "forecaster_drift_statistic_ratio", {"topic": TOPIC, "partition": "0"}
        )
        is None
    )
