"""Local copies of the forecasts: a JSONL file of the forecast messages, a CSV of steps."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from pipelines.engine.batches import ForecastBatch
from pipelines.engine.encode import iso_times


class JsonlSink:
    """One forecast message per line (the same JSON as the Kafka topic)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("ab")

    def write(self, batch: ForecastBatch) -> None:
        self._fh.write(b"".join(value + b"\n" for _, value in batch.messages))

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


class CsvSink:
    """One row per forecast step: series, ts, step, step_ts, yhat, lower, upper, version.

    The event's anomaly judgement follows on each of its rows: ``anomaly`` (1 flagged,
    0 not), ``anomaly_score`` (empty where none) and ``anomaly_step`` (0: none).
    """

    HEADER = ("series", "ts", "step", "step_ts", "yhat", "lower", "upper", "model_version",
              "anomaly", "anomaly_score", "anomaly_step")  # fmt: skip

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not path.exists() or path.stat().st_size == 0
        self._fh = path.open("a", newline="", encoding="utf-8")
        if fresh:
            csv.writer(self._fh).writerow(self.HEADER)

    def write(self, batch: ForecastBatch) -> None:
        buf = io.StringIO()
        w = csv.writer(buf)
        ts, steps = iso_times(batch.ts), iso_times(batch.step_ts)
        k = batch.yhat.shape[1] if batch.yhat.ndim == 2 else 0
        a = batch.anomaly
        for i, sid in enumerate(batch.series):
            judged = ("", "", "") if a is None else (
                int(a.flag[i]), "" if np.isnan(a.score[i]) else repr(float(a.score[i])),
                int(a.step[i]))  # fmt: skip
            for j in range(k):
                w.writerow((sid, ts[i], j + 1, steps[i][j], repr(float(batch.yhat[i, j])),
                            repr(float(batch.lower[i, j])), repr(float(batch.upper[i, j])),
                            int(batch.model_version[i]), *judged))  # fmt: skip
        self._fh.write(buf.getvalue())

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()
