"""The one run loop, shared by live serving and replay.

poll -> decode -> learn (per partition) -> forecasts and dead letters to the sinks; and,
every N events or T seconds: flush the sinks, save each partition's model state with its
next offset (one file), and only then commit those offsets. A crash at any point leaves
committed offsets at or behind durable forecasts and state, so a restart re-reads at
most one checkpoint interval, and its forecasts equal those of an uninterrupted run.

The loop never blocks on a retrain: a partition whose model would wait learns up to that
point, is paused, and resumes when the retrain is done, while polling goes on (so the
consumer never misses ``max_poll_interval_ms``). A checkpoint due while a partition's
retrain runs is taken as soon as it finishes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from forecaster import OnlineForecaster
from pipelines.engine import ports
from pipelines.engine.batches import TP, ForecastBatch
from pipelines.engine.checkpoint import Checkpoint, CheckpointError, StateStore
from pipelines.engine.decode import Decoder
from pipelines.engine.ports import DeadLetterSink, ForecastSink, SinkError, Source
from pipelines.engine.records import Rejected
from pipelines.engine.runstate import Clocks, LoopSettings, LoopStats
from pipelines.engine.task import PartitionTask, RetrainNews

log = logging.getLogger(__name__)


ModelFactory = Callable[[], OnlineForecaster]
BatchListener = Callable[[ForecastBatch], None]
BatchTiming = tuple[TP, int, float]  # a partition, the records it processed, seconds taken


class LoopObserver(Protocol):
    """Told what the loop did, on the loop's thread (metrics)."""

    def on_assigned(self, tps: Sequence[TP]) -> None:
        """Called when partitions are assigned and restored, before any of their records."""

    def on_poll(self, timings: Sequence[BatchTiming], retrains: Mapping[TP, RetrainNews]) -> None:
        """Called after every poll with each partition's records, seconds and retrains.

        ``retrains`` holds the news of partitions whose model started, ended or finished
        training a retrain (:meth:`~pipelines.engine.task.PartitionTask.retrain_news`).
        """


class Runner:
    """Drives a :class:`~pipelines.engine.ports.Source` into the sinks, one task per partition."""

    def __init__(
        self,
        source: Source,
        sink: ForecastSink,
        dead_letters: DeadLetterSink,
        store: StateStore,
        make_model: ModelFactory,
        settings: LoopSettings | None = None,
        clocks: Clocks | None = None,
    ) -> None:
        self.source, self.sink, self.dead_letters, self.store = source, sink, dead_letters, store
        self.make_model = make_model
        # The id of the model file make_model starts from (None: untrained models); a
        # partition restored from a checkpoint keeps the id its checkpoint names.
        self.model_id: str | None = None
        self.settings = settings or LoopSettings()
        clocks = clocks or Clocks()
        self.clock, self.monotonic, self.sleep = clocks.wall, clocks.monotonic, clocks.sleep
        self._backoff = 0.0
        self.tasks: dict[TP, PartitionTask] = {}
        self.parked: dict[TP, PartitionTask] = {}  # revoked, kept in case they come back
        self.stats = LoopStats()
        self.listeners: list[BatchListener] = []
        self.observer: LoopObserver | None = None
        template = make_model()
        self.model_config: dict[str, Any] = template.cfg.to_dict()
        self.decoder = Decoder(template.cfg.covariates)
        self._since_save = 0
        self._saved_at = self.monotonic()
        self._save_due = False
        self.started = False
        self.last_record_at: float | None = None  # monotonic time records last arrived
        self._unchecked: list[TP] = []  # started with no checkpoint: was one expected?

    # --- partitions moving ------------------------------------------------------
    def start(self) -> None:
        """Join: restore the assigned partitions from their checkpoints."""
        self.source.start(self.assigned, self.revoked)
        self.started = True

    def assigned(self, tps: list[TP]) -> None:
        """Restore each partition from its checkpoint and read on from its offset."""
        for tp in tps:
            if tp in self.tasks:
                continue
            task = self._open(tp)
            self.tasks[tp] = task
            if task.next_offset is not None:
                self.source.seek(tp, task.next_offset)
        if self.observer is not None:
            self.observer.on_assigned(tps)
        log.info("assigned %s", sorted(tps))

    def revoked(self, tps: list[TP]) -> None:
        """Checkpoint and commit the partitions before another instance takes them."""
        going = [tp for tp in tps if tp in self.tasks]
        try:
            self.checkpoint(going, wait=True, in_callback=True)
        except SinkError as exc:
            # Not all forecasts delivered: the next owner redoes them from the checkpoint.
            log.warning("revoked before its forecasts were delivered: %r", exc)
        for tp in going:
            task = self.tasks.pop(tp)
            task.backlog.clear()  # unprocessed: the next owner reads them from the offset
            if not task.dirty:  # kept only when it equals its checkpoint
                self.parked[tp] = task
        log.info("revoked %s", sorted(tps))

    def _open(self, tp: TP) -> PartitionTask:
        try:
            return self._restore(tp)
        except CheckpointError as exc:
            if self.settings.on_bad_checkpoint != "start_fresh":
                raise
            aside = self.store.set_aside(*tp)
            self.stats.bad_checkpoints += 1
            log.warning("%s; set aside as %s, and %s starts with a new model from its "
                        "committed offset", exc, aside, tp)  # fmt: skip
            self.parked.pop(tp, None)
            return self._new_task(tp)

    def _new_task(self, tp: TP) -> PartitionTask:
        """A partition with no state yet: a new model, from the committed offset."""
        task = PartitionTask(tp[0], tp[1], self.make_model(), None, self.decoder)
        task.model_id = self.model_id
        return task

    def _restore(self, tp: TP) -> PartitionTask:
        began = self.monotonic()
        ckpt = self.store.load(*tp)
        parked = self.parked.pop(tp, None)
        if ckpt is None:
            if parked is not None and parked.saved_offset is None:
                return parked
            self._unchecked.append(tp)
            # From the committed offset (or the reset policy): known with the first record.
            return self._new_task(tp)
        if parked is not None and not parked.dirty and parked.saved_offset == ckpt.next_offset:
            return parked  # nobody moved it on meanwhile: the state in memory is current
        if ckpt.model_config != self.model_config:
            changed = sorted(k for k in set(ckpt.model_config) | set(self.model_config)
                             if ckpt.model_config.get(k) != self.model_config.get(k))  # fmt: skip
            msg = (f"{self.store.where(*tp)} was written with another [model] config (differs "
                   f"in {', '.join(changed)}); restore that config, or set [checkpoint] "
                   "on_error = \"start_fresh\"")  # fmt: skip
            raise CheckpointError(msg)
        try:
            model = OnlineForecaster.restore(ckpt.snapshot)
        except (ValueError, KeyError, OSError) as exc:  # a damaged or foreign snapshot
            msg = f"{self.store.where(*tp)}: the model snapshot cannot be restored: {exc}"
            raise CheckpointError(msg) from exc
        seconds = self.monotonic() - began
        self.stats.restored += 1
        self.stats.restore_seconds += seconds
        log.info("restored %s at offset %d (%d events learned) from %s in %.3f s", tp,
                 ckpt.next_offset, model.n_events, self.store.where(*tp), seconds)  # fmt: skip
        task = PartitionTask(tp[0], tp[1], model, ckpt.next_offset, self.decoder)
        task.saved_offset, task.model_id = ckpt.next_offset, ckpt.model_id
        return task

    # --- the loop ---------------------------------------------------------------
    def run_once(self) -> int:
        """One poll and everything it makes due; returns the events processed.

        When a sink fails (the broker is away longer than the producer retries), every
        partition goes back to its latest checkpoint and is read again from there after
        a pause that doubles on each failure in a row (``backoff_seconds``). Nothing past
        a checkpoint is committed before its forecasts are delivered, so nothing is lost.
        """
        try:
            return self._poll_and_process()
        except SinkError as exc:
            self._recover(exc)
            return 0

    @property
    def backing_off(self) -> bool:
        """A sink failed and no checkpoint has been delivered since."""
        return self._backoff > 0

    def _recover(self, exc: SinkError) -> None:
        first, most = self.settings.backoff_seconds
        self._backoff = min(most, max(first, 2 * self._backoff))
        self.stats.sink_failures += 1
        log.warning("a sink failed (%s); every partition goes back to its checkpoint and is "
                    "read again in %.1f s", exc, self._backoff)  # fmt: skip
        for tp, task in list(self.tasks.items()):
            offset = task.restart_offset
            if offset is None:  # nothing read yet
                continue
            del self.tasks[tp]
            self.parked.pop(tp, None)
            fresh = self._open(tp)
            self.tasks[tp] = fresh
            self.source.seek(tp, offset)
            self.source.resume([tp])
        self._save_due, self._since_save = False, 0
        if self.observer is not None:  # new model objects
            self.observer.on_assigned(list(self.tasks))
        self.sleep(self._backoff)

    def _warn_missing(self) -> None:
        """Count the partitions started afresh though their group committed offsets."""
        # After the poll that assigned them: no blocking call in a rebalance callback.
        tps, self._unchecked = self._unchecked, []
        if not isinstance(self.source, ports.CommittedOffsets):
            return
        for tp in tps:
            offset = self.source.group_committed(tp) if tp in self.tasks else None
            if offset is not None:
                self.stats.state_missing += 1
                log.warning("%s has no checkpoint in %s, but its group committed offset %d: "
                            "its model state is lost, and it starts with a new model from "
                            "that offset", tp, self.store.where(*tp), offset)  # fmt: skip

    def _poll_and_process(self) -> int:
        waiting = any(t.backlog for t in self.tasks.values())
        timeout = self.settings.poll_timeout_ms
        if waiting:  # a partition waits for a retrain: come back soon to feed it
            timeout = min(timeout, 20)
        batches = self.source.poll(timeout)
        self.stats.polls += 1
        if self._unchecked:
            self._warn_missing()
        if batches:
            self.last_record_at = self.monotonic()
        for tp, records in batches.items():
            task = self.tasks.get(tp)
            if task is not None:  # records of a partition revoked during this poll are dropped
                self.stats.records += len(records)
                task.add(records)
        done = 0
        issued_at: float | None = None
        to_pause: list[TP] = []
        to_resume: list[TP] = []
        timings: list[BatchTiming] = []
        for tp, task in self.tasks.items():
            if not task.backlog:
                continue
            began = self.monotonic() if self.observer is not None else 0.0
            batch, rejected = task.process()
            if rejected:
                self.dead_letters.write(rejected)
                self._count_rejected(rejected)
            if batch is not None and len(batch):
                if issued_at is None:
                    issued_at = self.clock()
                batch = batch.issued(issued_at)
                self.sink.write(batch)
                self.stats.forecasts += len(batch)
                for listener in self.listeners:
                    listener(batch)
            n = (len(batch) if batch is not None else 0) + len(rejected)
            done += n
            if self.observer is not None:
                timings.append((tp, n, self.monotonic() - began))
            (to_pause if task.backlog else to_resume).append(tp)
        if to_pause:
            log.debug("paused until their retrains finish: %s", to_pause)
        self.source.pause(to_pause)
        self.source.resume(to_resume)
        retrains = {tp: nw for tp, task in self.tasks.items() if (nw := task.retrain_news())}
        if self.observer is not None:
            self.observer.on_poll(timings, retrains)
        self.stats.events += done
        self._since_save += done
        if (
            self._since_save >= self.settings.every_events
            or self.monotonic() - self._saved_at >= self.settings.every_seconds
        ):
            self._save_due = True
        if self._save_due:
            self.checkpoint(list(self.tasks), wait=False)
        return done

    def _count_rejected(self, rejected: Sequence[Rejected]) -> None:
        for rej in rejected:
            self.stats.rejected[rej.reason] += 1

    def checkpoint(self, tps: Sequence[TP], wait: bool, in_callback: bool = False) -> list[TP]:
        """Flush the sinks, save the partitions' state and offsets, then commit them.

        Without ``wait``, a partition whose retrain is still running is left for later
        (the checkpoint stays due). Offsets saved earlier whose commit failed (the broker
        was away, the group had moved on) are committed again. Returns the partitions
        saved.
        """
        tasks = [self.tasks[tp] for tp in tps if tp in self.tasks]
        ready = [t for t in tasks if t.dirty and (wait or not t.model.retrain_running)]
        pending = any(t.dirty for t in tasks if t not in ready)
        if ready:
            self.sink.flush()
            self.dead_letters.flush()
            now = self.clock()
            ckpts = []
            for task in ready:
                assert task.next_offset is not None  # dirty implies a record was processed
                ckpts.append(Checkpoint(task.topic, task.partition, task.next_offset,
                                        self.model_config, now, task.model.snapshot(),
                                        task.model_id))  # fmt: skip
            self.store.save_all(ckpts)  # durable (acknowledged) before any commit below
            for task in ready:
                task.saved_offset, task.events_since_save = task.next_offset, 0
                self.stats.checkpoints += 1
            self._backoff = 0.0  # delivered and durable: the sinks work again
            self.stats.last_checkpoint = now
        behind = [t for t in tasks if t.saved_offset is not None
                  and t.saved_offset != t.committed_offset]  # fmt: skip
        if behind:
            offsets: dict[TP, int] = {(t.topic, t.partition): t.saved_offset for t in behind}  # type: ignore[misc]
            if self.source.commit(offsets, wait=not in_callback):
                for t in behind:
                    t.committed_offset = t.saved_offset
            log.info("checkpoint and commit: %s", offsets)
            self.stats.commits += 1
        if not pending:
            self._save_due = False
            self._since_save = 0
            self._saved_at = self.monotonic()
        return [(t.topic, t.partition) for t in ready]

    def run(self, should_stop: Callable[[], bool]) -> LoopStats:
        """Run until ``should_stop()``; then checkpoint, commit and close everything."""
        if not self.started:
            self.start()
        try:
            while not should_stop():
                self.run_once()
        finally:
            self.close()
        return self.stats

    def close(self) -> None:
        """Finish: flush, checkpoint every partition (waiting for retrains), commit, close.

        Raises :class:`SinkError` when the last forecasts could not be delivered: no
        checkpoint or commit then covers them, and a restart issues them again.
        """
        try:
            self.checkpoint(list(self.tasks), wait=True)
        finally:
            self.sink.close()
            self.dead_letters.close()
            self.source.close()
