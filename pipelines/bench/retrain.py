"""``forecaster bench retrain``: where one retrain's time goes, before and after issue 14.

Two models learn machine_temperature_system_failure in lockstep (alternating chunks of
events, retraining inline, BLAS on one thread), with ``config/sensors.toml``:

- *old*: every retrain takes all ``train_steps`` steps, its training windows are
  gathered at once when it starts, and the blend's mixes are scored by one loop per
  mix (as before issue 14);
- *new*: training stops early when the validation loss stops improving
  (``early_stop_every`` / ``early_stop_patience``), the windows are gathered a batch at
  a time from a copy of the histories they read when that is smaller, and the mixes
  are scored by the vectorised kernel (the same bits).

Every retrain's phases are timed: drawing its windows (and copying what it reads),
the training steps (and within them the early-stopping evaluations), scoring the
validation windows and the blend's candidates, rebuilding states in the job, and
rebuilding states after the swap. The table gives the mean per retrain of each.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from forecaster import ForecasterConfig, OnlineForecaster
from forecaster.blend import MixKernel
from forecaster.core import F64Array, Trainer
from forecaster.core.blend import mix_losses, mix_losses_loop
from forecaster.retrain import RetrainJob, RetrainResult
from pipelines.bench.datasets import nab
from pipelines.configs import ConfigFile, load_model_config, shipped

SHIPPED = shipped("sensors.toml")
STREAM = "machine_temperature_system_failure"
PHASES = ("windows", "training", "early_stop_evaluations", "scoring", "job_states", "swap_states")
CHUNK = 1000  # events each model learns before the other takes its turn
WARMUP = 0.1


def _timed(times: dict[str, float], name: str, fn: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    try:
        return fn()
    finally:
        times[name] = times.get(name, 0.0) + time.perf_counter() - start


def contender(lazy: bool | None, kernel: MixKernel) -> type[OnlineForecaster]:
    """An :class:`OnlineForecaster` whose retrains record the seconds of each phase.

    ``lazy`` is how their training windows are gathered (``False``: all at once), and
    ``kernel`` scores the blend's mixes.
    """
    records: list[dict[str, float]] = []

    class TimedJob(RetrainJob):
        lazy_windows = lazy
        mix_kernel = staticmethod(kernel)

        def __init__(self, *args: Any) -> None:
            self.times: dict[str, float] = {}
            _timed(self.times, "windows", lambda: super(TimedJob, self).__init__(*args))

        def fit(self, trainer: Trainer) -> tuple[float, int]:
            return _timed(self.times, "training", lambda: super(TimedJob, self).fit(trainer))  # type: ignore[no-any-return]

        def gru_val_loss(self, trainer: Trainer, params: F64Array) -> float:
            run = lambda: super(TimedJob, self).gru_val_loss(trainer, params)  # noqa: E731
            return _timed(self.times, "early_stop_evaluations", run)  # type: ignore[no-any-return]

        def judge(self, trainer: Trainer, old: F64Array) -> Any:
            return _timed(self.times, "scoring", lambda: super(TimedJob, self).judge(trainer, old))

        def states(self, ok: bool) -> F64Array:
            return _timed(self.times, "job_states", lambda: super(TimedJob, self).states(ok))  # type: ignore[no-any-return]

    class Timed(OnlineForecaster):
        job_type = TimedJob
        log = records

        def _rebuild(self, res: RetrainResult) -> None:
            assert isinstance(self._job, TimedJob)
            _timed(self._job.times, "swap_states", lambda: super(Timed, self)._rebuild(res))

        def _apply(self, res: RetrainResult) -> None:
            assert isinstance(self._job, TimedJob)
            super()._apply(res)
            times = self._job.times
            times["steps"] = float(res.steps)
            times["bytes"] = float(_window_bytes(self._job))
            records.append(times)

    return Timed


def _window_bytes(job: RetrainJob) -> int:
    """Bytes the job holds for its training windows."""
    train = job.train
    held = (*train._hist, train._out.x, train._out.y, train._out.w) if train.lazy else (
        train._all.x, train._all.y, train._all.w)  # fmt: skip
    return sum(a.nbytes for a in held)


def configs(config: ConfigFile, every: int, patience: int) -> dict[str, ForecasterConfig]:
    """Old (every step) and new (early stopping), inline."""
    base = load_model_config(config, background=False)
    return {
        "old": replace(base, early_stop_every=0),
        "new": replace(base, early_stop_every=every, early_stop_patience=patience),
    }


def run(config: ConfigFile = SHIPPED, every: int = 10, patience: int = 2,
        events: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Both contenders on the stream (its first ``events`` if given); phases per retrain."""
    rec = nab(STREAM)
    n = rec.values.size if events is None else min(events, rec.values.size)
    cfgs = configs(config, every, patience)
    models = {"old": contender(False, mix_losses_loop)(cfgs["old"]),
              "new": contender(None, mix_losses)(cfgs["new"])}  # fmt: skip
    errors: dict[str, list[F64Array]] = {name: [] for name in models}
    learn_s = dict.fromkeys(models, 0.0)
    with threadpool_limits(1):
        for lo in range(0, n, CHUNK):
            hi = min(n, lo + CHUNK)
            for name, model in models.items():
                start = time.perf_counter()
                upd = model.learn(["s"] * (hi - lo), rec.ts[lo:hi], rec.values[lo:hi])
                learn_s[name] += time.perf_counter() - start
                errors[name].append(upd.errors)  # the accepted events' (late ones are dropped)
    out: dict[str, Any] = {"stream": STREAM, "config": str(config), "events": n,
                           "horizon": cfgs["new"].horizon, "early_stop_every": every,
                           "early_stop_patience": patience}  # fmt: skip
    for name, model in models.items():
        log: list[dict[str, float]] = type(model).log  # type: ignore[attr-defined]
        per = {p: float(np.mean([r.get(p, 0.0) for r in log])) if log else 0.0 for p in PHASES}
        per["total"] = sum(per[p] for p in PHASES if p != "early_stop_evaluations")
        err = np.concatenate(errors[name])
        mae = np.nanmean(np.abs(err[int(WARMUP * err.shape[0]) :]), axis=0)
        out[name] = {
            "retrains": len(log), "accepted": model.retrains_accepted,
            "mean_steps": float(np.mean([r["steps"] for r in log])) if log else 0.0,
            "seconds_per_retrain": per,
            "window_mb": float(np.mean([r["bytes"] for r in log])) / 1e6 if log else 0.0,
            "learn_seconds": learn_s[name], "mae_1": float(mae[0]), "mae_last": float(mae[-1]),
        }  # fmt: skip
    old, new = (
        out["old"]["seconds_per_retrain"]["total"],
        out["new"]["seconds_per_retrain"]["total"],
    )
    out["new_over_old"] = new / old if old > 0 else float("nan")
    return out
