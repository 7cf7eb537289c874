"""Live forecasts in the terminal (the demo): a few series, at most a few lines a second."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console

from pipelines.sinks import ForecastBatch, iso_times


class ForecastPrinter:
    """A loop listener that prints the newest forecast of up to ``max_series`` series."""

    def __init__(
        self,
        console: Console,
        every_seconds: float = 1.0,
        max_series: int = 4,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console, self.every, self.max_series = console, every_seconds, max_series
        self.monotonic = monotonic
        self._last = -float("inf")
        self._shown: list[str] = []

    def __call__(self, batch: ForecastBatch) -> None:  # noqa: D102 (a listener)
        now = self.monotonic()
        if now - self._last < self.every or not len(batch):
            return
        self._last = now
        for sid in batch.series:
            if sid not in self._shown and len(self._shown) < self.max_series:
                self._shown.append(sid)
        latest = {sid: i for i, sid in enumerate(batch.series)}
        k = batch.yhat.shape[1]
        for sid in self._shown:
            i = latest.get(sid)
            if i is None:
                continue
            steps = sorted({0, k // 2, k - 1})
            ahead = "  ".join(
                f"+{j + 1}: {batch.yhat[i, j]:.4g} [{batch.lower[i, j]:.4g}, "
                f"{batch.upper[i, j]:.4g}]"
                for j in steps
            )
            when = str(iso_times(batch.ts[i]))
            self.console.print(
                f"[bold]{sid}[/] {when} value {batch.value[i]:.4g}  {ahead}  "
                f"v{int(batch.model_version[i])}",
                highlight=False,
            )
