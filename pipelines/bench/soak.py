"""``forecaster bench soak``: millions of events through the broker, watched over time.

A producer thread sends sensor events for many series at a fixed rate, each stamped with
the wall clock as its event time, while the service consumes them in the same process.
Every ``sample_seconds`` the resident memory is sampled; every forecast's latency is its
``issued_at`` minus its event time (queueing included). The report gives, per window,
events/s, latency p50 and p99 and memory, so growth or drift shows as a trend.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
import resource
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from kafka import KafkaProducer

from pipelines.configs import ConfigFile, shipped
from pipelines.engine.batches import ForecastBatch
from pipelines.engine.loop import Runner
from pipelines.kafka.local import LOCAL_API_VERSION, local_broker
from pipelines.kafka.options import KafkaSettings, producer_options
from pipelines.service.settings import load_settings

FLEET = shipped("fleet.toml")


@functools.cache
def malloc_trim() -> Callable[[int], int] | None:
    """The C library's ``malloc_trim`` (glibc), looked up once (it may run ``ldconfig``)."""
    name = ctypes.util.find_library("c")
    return None if name is None else getattr(ctypes.CDLL(name), "malloc_trim", None)


def release_free_memory() -> None:
    """Hand the allocator's free pages back to the system (glibc's ``malloc_trim``).

    glibc keeps freed memory in its arenas, one per thread that allocated (a retrain's
    thread among them), and returns it only when the top of a heap is free. The working
    memory of a retrain at 10,000 series is hundreds of MB, freed again, so the sampled
    resident size moved by tens of MB with where the allocator happened to leave it.
    Trimming first makes a sample read what the process holds. Elsewhere a no-op.
    """
    trim = malloc_trim()
    if trim is not None:
        trim(0)


def rss_bytes() -> int:
    """Resident memory now, free pages trimmed first (Linux ``/proc``; else the peak)."""
    release_free_memory()
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * resource.getpagesize()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class Window:
    """What one sampling window saw; its latencies are kept only while it is open."""

    start: float
    events: int = 0
    latencies: list[float] = field(default_factory=list)
    rss: int = 0
    p50_ms: float = math.nan
    p99_ms: float = math.nan

    def close(self, rss: int) -> None:
        """Sample memory, keep the percentiles and free the samples.

        Ten million latencies kept to the end would grow the process by 320 MB, which
        reads as the service's growth.
        """
        self.rss = rss
        if self.latencies:
            lat = np.array(self.latencies) * 1000.0
            self.p50_ms, self.p99_ms = (float(np.percentile(lat, q)) for q in (50, 99))
        self.latencies = []


class Feeder(threading.Thread):
    """The producer thread: how many events it sent, and what stopped it if it failed."""

    def __init__(self, cfg: KafkaSettings, topic: str, n: int, n_series: int, rate: float) -> None:
        super().__init__(name="soak-feeder", daemon=True)
        self.args = (cfg, topic, n, n_series, rate)
        self.stop = threading.Event()
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        """Produce; keep the error instead of dying with it unseen."""
        try:
            self.sent = produce_at_rate(*self.args, self.stop)
        except Exception as exc:  # reported by the watching loop, which would wait forever
            self.error = exc


def produce_at_rate(
    cfg: KafkaSettings, topic: str, n: int, n_series: int, rate: float, stop: threading.Event
) -> int:
    """Send ``n`` events over ``n_series`` series at ``rate``/s (0: flat out); wall-clock ts.

    Raises if the broker did not take every event.
    """
    prod = KafkaProducer(**producer_options(cfg, linger_ms=20, batch_size=512 * 1024))
    failures: list[BaseException] = []
    ids = [f"sensor-{s:05d}" for s in range(n_series)]
    keys = [sid.encode() for sid in ids]
    rng = np.random.default_rng(0)
    phase = rng.uniform(0, 2 * np.pi, n_series)
    start, sent, chunk = time.monotonic(), 0, 1000
    while sent < n and not stop.is_set():
        now_ms = int(time.time() * 1000)
        for i in range(sent, min(n, sent + chunk)):
            s = i % n_series
            value = 20 + np.sin(i / n_series / 50 + phase[s])
            doc = {"series": ids[s], "ts": now_ms, "value": float(value)}
            fut = prod.send(topic, key=keys[s], value=orjson.dumps(doc))
            fut.add_errback(failures.append)
        sent = min(n, sent + chunk)
        if rate > 0:
            ahead = sent / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
    prod.flush()
    prod.close()
    if failures:
        msg = f"the broker refused {len(failures)} of {sent} events, first: {failures[0]!r}"
        raise RuntimeError(msg)
    return sent


class Watcher:
    """A loop listener collecting latencies, and a sampler of memory, per window."""

    def __init__(self, sample_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self.sample_seconds, self.clock = sample_seconds, clock
        self.windows = [Window(clock(), rss=rss_bytes())]
        self.lock = threading.Lock()

    def __call__(self, batch: ForecastBatch) -> None:  # noqa: D102 (a listener)
        now = self.clock()
        with self.lock:
            w = self.windows[-1]
            w.events += len(batch)
            w.latencies.extend((now - batch.ts).tolist())

    def tick(self) -> dict[str, float] | None:
        """Close the current window if it is over (memory sampled at its end); its row."""
        now = self.clock()
        with self.lock:
            if now - self.windows[-1].start < self.sample_seconds:
                return None
            self.windows[-1].close(rss_bytes())
            self.windows.append(Window(now))
            return self.row(len(self.windows) - 2)

    def row(self, i: int) -> dict[str, float]:
        """Window ``i``: events/s, latency p50/p99 (ms), RSS (MB)."""
        w = self.windows[i]
        return {
            "t": round(w.start - self.windows[0].start, 1),
            "events_per_s": w.events / self.sample_seconds,
            "p50_ms": w.p50_ms, "p99_ms": w.p99_ms, "rss_mb": w.rss / 2**20,
        }  # fmt: skip

    def report(self) -> list[dict[str, float]]:
        """Every closed window's row."""
        return [self.row(i) for i in range(len(self.windows) - 1)]


def floor_growth(rss_mb: list[float]) -> float:
    """Memory the process kept for good: last quarter's floor minus the second quarter's.

    Floors, because a window that ends while a retrain runs samples its working memory
    (hundreds of MB at 10,000 series), which is freed again; the first quarter is start-up
    (every series created, kernels loaded).
    """
    q = len(rss_mb) // 4
    if q == 0:
        return 0.0
    return min(rss_mb[-q:]) - min(rss_mb[q : 2 * q])


def stalled(runner: Runner, feeder: Feeder, seconds: float, broker_dir: Path) -> str:
    """Why a soak made no progress: each part's state, and the local broker's last words."""
    tasks = {f"{t}[{p}]": (task.next_offset, len(task.backlog), task.model.retrain_running)
             for (t, p), task in sorted(runner.tasks.items())}  # fmt: skip
    lines = [
        f"no event processed for {seconds:.0f} s: {runner.stats.events} processed, "
        f"producer {'running' if feeder.is_alive() else 'done'} with {feeder.sent} sent",
        f"partitions (next offset, backlog, retrain running): {tasks or 'none assigned'}",
    ]
    log = broker_dir / "kafka.log"
    if log.exists():
        lines += ["the local broker's log ends:", *log.read_text().splitlines()[-15:]]
    return "\n".join(lines)


def run(
    events: int = 10_000_000,
    n_series: int = 10_000,
    rate: float = 5000.0,
    sample_seconds: float = 60.0,
    config: ConfigFile = FLEET,
    bootstrap: str | None = None,
    api_version: str = "auto",
    on_window: Callable[[dict[str, float]], None] | None = None,
    stall_seconds: float = 300.0,
) -> dict[str, Any]:
    """Drive ``events`` through a broker and the service; report the windows.

    ``on_window`` receives each window's row as it closes, so a long run shows (and
    keeps) its curve even if it is stopped before the end. A run in which no event is
    processed for ``stall_seconds`` (producer failed, broker gone, service stuck) stops
    with an error saying what each part was doing.
    """
    from pipelines.service.assemble import build_service

    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-")))
        if bootstrap is None:
            bootstrap = stack.enter_context(local_broker(work / "kafka"))
            api_version = LOCAL_API_VERSION
        run_id = uuid.uuid4().hex[:8]
        env = {"FORECASTER_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
               "FORECASTER_KAFKA__API_VERSION": api_version,
               "FORECASTER_KAFKA__GROUP_ID": f"soak-{run_id}",
               "FORECASTER_TOPICS__INPUT": f"soak-in-{run_id}",
               "FORECASTER_TOPICS__OUTPUT": f"soak-out-{run_id}",
               "FORECASTER_TOPICS__DEAD_LETTER": f"soak-dlq-{run_id}",
               "FORECASTER_CHECKPOINT__DIR": str(work / "ckpt"),
               "FORECASTER_METRICS__ENABLED": "false"}  # fmt: skip
        settings = load_settings(config, env=env)
        service = build_service(settings)
        watcher = Watcher(sample_seconds)
        service.runner.listeners.append(watcher)
        feeder = Feeder(settings.kafka, settings.topics.input, events, n_series, rate)
        runner = service.runner
        svc = threading.Thread(target=service.run, daemon=True)
        start = time.monotonic()
        feeder.start()
        svc.start()
        progress, progress_at = -1, start
        try:
            while runner.stats.events < events:
                if not svc.is_alive():
                    msg = "the service stopped before the soak ended"
                    raise RuntimeError(msg)
                if feeder.error is not None:
                    msg = f"the producer failed: {feeder.error!r}"
                    raise RuntimeError(msg) from feeder.error
                if runner.stats.events != progress:
                    progress, progress_at = runner.stats.events, time.monotonic()
                elif time.monotonic() - progress_at > stall_seconds:
                    raise RuntimeError(stalled(runner, feeder, stall_seconds, work / "kafka"))
                row = watcher.tick()
                if row is not None and on_window is not None:  # a long run shows as it goes
                    on_window(row)
                time.sleep(0.2)
        finally:
            feeder.stop.set()
            service.stop.set()
            svc.join()
            feeder.join()
        took = time.monotonic() - start
        rows = watcher.report()
        states = sum(t.model.state_bytes for t in runner.tasks.values())
    return {
        "events": events, "series": n_series, "rate": rate, "seconds": took,
        "events_per_s": events / took, "forecasts": runner.stats.forecasts,
        "rejected": dict(runner.stats.rejected), "produced": feeder.sent,
        "sample_seconds": sample_seconds, "windows": rows, "state_mb": states / 2**20,
        "rss_floor_growth_mb": floor_growth([r["rss_mb"] for r in rows]),
        "rss_peak_mb": max((r["rss_mb"] for r in rows), default=float("nan")),
        "p99_ms_median": statistics.median(r["p99_ms"] for r in rows) if rows else float("nan"),
        "config": str(config),
    }  # fmt: skip
