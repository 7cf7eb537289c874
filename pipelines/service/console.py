"""Live forecasts in the terminal (the demo): a few series, at most a few lines a second."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console

from pipelines.engine.batches import ForecastBatch
from pipelines.engine.encode import iso_times


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
        steps = sorted({1, max(1, k // 2), k})
        width = max(len(sid) for sid in self._shown)
        for sid in self._shown:
            i = latest.get(sid)
            if i is None:
                continue
            ahead = "  ".join(
                f"+{j}: {batch.yhat[i, j - 1]:.4g} [{batch.lower[i, j - 1]:.4g}, "
                f"{batch.upper[i, j - 1]:.4g}]"
                for j in steps
            )
            when = iso_times(batch.ts[i])[:16].replace("T", " ")
            self.console.print(
                f"[bold]{sid:<{width}}[/] {when}  {batch.value[i]:>8.4g} | {ahead}  "
                f"v{int(batch.model_version[i])}",
                highlight=False, soft_wrap=True,
            )  # fmt: skip
