"""The online GRU forecaster: one set of weights, one hidden state per series."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from forecaster.blend import anchor_columns, blend_combos, n_anchors
from forecaster.config import ForecasterConfig
from forecaster.core import F64Array, GRUSpec, gru_readout, gru_step, step_workspace
from forecaster.core.cut import blend_forecast, calendar_codes, event_features
from forecaster.core.params import I64Array
from forecaster.cut import learn_cut_compiled
from forecaster.events import Call, Wave
from forecaster.experts import POOL_EVERY, Experts
from forecaster.retrain import RetrainJob, RetrainResult, rebuild_states, recent_inputs
from forecaster.schedule import REASONS, RetrainSchedule
from forecaster.series import Shapes
from forecaster.snapshot import load_model_state, model_state
from forecaster.stream import StreamModel


class OnlineForecaster(StreamModel):
    """A global GRU forecaster that learns every event and retrains periodically.

    Weights are shared by all series; each series keeps its own hidden state, scale,
    history and pending forecasts (see :class:`forecaster.ForecasterConfig`).

    Examples
    --------
    >>> import numpy as np
    >>> from forecaster import ForecasterConfig, OnlineForecaster
    >>> cfg = ForecasterConfig(horizon=3, hidden_size=8, history=64, window=32, burn_in=8,
    ...                        retrain_every=200, swap_delay=20, train_steps=20,
    ...                        batch_windows=8, rebuild_steps=16, background=False)
    >>> model = OnlineForecaster(cfg)
    >>> t = np.arange(620.0)
    >>> y = np.sin(2 * np.pi * t / 24)  # hourly events, a daily cycle
    >>> upd = model.learn(["s"] * 620, t * 3600, y)
    >>> model.model_version, model.retrains_accepted
    (3, 3)
    >>> print(np.round(np.nanmean(np.abs(upd.errors[-200:]), axis=0), 3))  # MAE at +1, +2, +3
    [0.082 0.247 0.408]
    >>> print(round(np.abs(np.diff(y))[-200:].mean(), 3))  # the last value's MAE at +1
    0.166
    """

    job_type: type[RetrainJob] = RetrainJob  # what runs a retrain (a benchmark times one)

    def __init__(self, cfg: ForecasterConfig | dict[str, Any] | None = None) -> None:
        if isinstance(cfg, dict):
            cfg = ForecasterConfig.from_dict(cfg)
        cfg = cfg if cfg is not None else ForecasterConfig()
        self.spec = GRUSpec(cfg.input_size, cfg.hidden_size, cfg.num_layers, cfg.horizon,
                            cfg.reset_after)  # fmt: skip
        # The experts mixed into the issued forecast (aggregation "mlpoly"), else None.
        self.experts = Experts(cfg) if cfg.aggregation == "mlpoly" else None
        super().__init__(cfg)
        self.params = self.spec.init_params(cfg.seed)
        # A zero head forecasts "no change" until the first retrain: a sane cold start.
        self.spec.views(self.params)["head.weight"][...] = 0.0
        self.spec.views(self.params)["head.bias"][...] = 0.0
        self.opt_state = cfg.make_optimizer().init_state(self.spec.n_params)
        # How each step's forecast mixes the candidates (blend.anchors): the GRU alone
        # until a retrain fits it on held-out recent windows.
        self.blend = np.zeros((cfg.horizon, n_anchors(cfg)))
        self.blend[:, 0] = 1.0
        self.blend_losses = np.zeros((cfg.horizon, blend_combos(n_anchors(cfg)).shape[0]))
        self.retrain_enabled = True  # False: keep learning states, never retrain
        self.retrains_started = 0
        self.retrains_accepted = 0
        self.retrains_rejected = 0
        self.retrains_failed = 0  # raised an exception: counted apart from rejections
        self.last_retrain_error = ""  # the latest failed retrain's traceback
        self.retrain_log: list[dict[str, Any]] = []
        self.retrains_by_reason = dict.fromkeys(REASONS, 0)
        self._work = step_workspace(self.spec)
        self._seasons = np.array(cfg.seasons, dtype=np.float64)
        # Each level's weight per event; the same Python float the NumPy form multiplied by.
        self._level_rates = np.array([1 - 0.5 ** (1 / hl) for hl in cfg.levels], dtype=np.float64)
        self._calendar = calendar_codes(cfg.calendar)
        self._lag_column = anchor_columns(cfg)  # the first seasonal-naive input column
        # True: a cut's events run in one compiled call (forecaster/cut.py); False: wave by
        # wave from Python, the same rules step by step (the reference tests compare with).
        self.compiled = True
        self._job: RetrainJob | None = None
        self._swap_at = -1  # event count at which the job's result applies
        self._job_reason, self._job_start = "", -1  # the running job's reason and start
        self.schedule = RetrainSchedule(cfg)

    def _extra_shapes(self) -> Shapes:
        c, d = len(self.cfg.covariates), self.cfg.input_size
        return {
            "h": (self.spec.state_size,),
            "cov_mean": (c,),
            "cov_var": (c,),
            "levels": (len(self.cfg.levels),),
            "hist_x": (self.cfg.history, d),
            "hist_y": (self.cfg.history,),
            "hist_scale": (self.cfg.history,),
            **(self.experts.shapes() if self.experts is not None else {}),
        }

    # --- per event --------------------------------------------------------------
    def _inputs(self, w: Wave) -> F64Array:
        cfg, tab = self.cfg, self.table
        x = np.empty((w.rows.size, cfg.input_size))
        event_features(w.rows, w.count, w.ts, w.change, w.dt, w.mean_dt, w.value, w.scale, w.cov,
                       tab.cov_mean, tab.cov_var, tab.hist_y, self._seasons, self._level_rates,
                       tab.levels, self._calendar, cfg.use_dt, cfg.clip_sigma, self._alpha,
                       self.horizon, x)  # fmt: skip
        return x

    def _advance(self, w: Wave) -> F64Array:
        tab, s = self.table, self.spec
        x = self._inputs(w)
        slot = w.count % self.cfg.history
        tab.hist_x[w.rows, slot] = x
        tab.hist_y[w.rows, slot] = w.value
        tab.hist_scale[w.rows, slot] = w.scale
        gru_step(self.params, x, tab.h, w.rows, self._work, s.input_size, s.hidden_size,
                 s.num_layers, s.reset_after)  # fmt: skip
        out = np.empty((w.rows.size, self.horizon))
        gru_readout(self.params, tab.h, w.rows, out, s.input_size, s.hidden_size, s.num_layers)
        yhat = np.empty_like(out)
        cfg = self.cfg
        blend_forecast(out, x, self.blend, w.value, w.scale, self._lag_column, len(cfg.levels),
                       len(cfg.seasons), cfg.reversal, yhat)  # fmt: skip
        if self.experts is not None:
            return self.experts.forecast(tab, w, yhat)
        return yhat

    def _learn_cut(self, pos: I64Array, ev: I64Array, call: Call) -> None:
        if not self.compiled:  # the wave-by-wave path: the reference the tests compare with
            super()._learn_cut(pos, ev, call)
            return
        learn_cut_compiled(self, pos, ev, call)

    # --- the retraining schedule, in event terms --------------------------------
    def _cut_limit(self, ts: F64Array) -> int:
        n = self.n_events
        limit = self.schedule.limit(n, ts, idle=self._job is None)
        if self.experts is not None:
            limit = min(limit, POOL_EVERY - n % POOL_EVERY)
        if self._job is not None:
            limit = min(limit, self._swap_at - n)
        return max(1, limit)

    def _after_cut(self, last_ts: float) -> None:
        n, schedule = self.n_events, self.schedule
        if self.experts is not None and self.experts.pool_due(n, len(self.table)):
            self.experts.pool(self.table)
        if schedule.drift is not None:
            schedule.drift.flush()  # this cut's errors, in arrival order
        if self._job is not None and n >= self._swap_at:
            self._apply(self._job.result())
            self._job = None
        if self._job is not None:
            return
        reason = schedule.due(n, last_ts, self.retrain_enabled)
        if reason is not None:
            self._start(reason)

    @property
    def retrain_running(self) -> bool:
        """A retrain is in flight and not finished: :meth:`snapshot` would wait for it."""
        return self._job is not None and not self._job.done()

    @property
    def drift_statistic(self) -> float:
        """The drift detector's statistic now (0.0 without the ``"drift"`` trigger).

        A retrain may start once it exceeds ``drift_threshold`` (see
        :class:`forecaster.ForecasterConfig`); it returns to 0 when a retrain applies.
        """
        drift = self.schedule.drift
        return 0.0 if drift is None else drift.statistic

    def events_before_wait(self, ts: F64Array | None = None) -> int | None:
        """How many of the next events can be learned without waiting for a retrain.

        ``ts`` are the times of the events to come (needed only with
        ``retrain_interval``; without them a time-triggered retrain is assumed due at
        once). ``None`` when learning never waits: retraining off, or run inline
        (``background`` off or ``swap_delay`` 0). A stream that must stay responsive
        (the service) learns at most this many events, then polls until the running
        retrain is done. Late events, which are dropped, only make the count
        conservative, and so does the drift trigger: a retrain is assumed to start at
        its next test.

        Examples
        --------
        >>> m = OnlineForecaster(ForecasterConfig(retrain_every=500, first_retrain=0,
        ...                                       swap_delay=40))
        >>> m.events_before_wait()  # the retrain starting at event 500 must be done by 540
        539
        """
        cfg = self.cfg
        if not self.retrain_enabled or not cfg.background or cfg.swap_delay == 0:
            return None
        n = self.n_events
        if self._job is not None and not self._job.done():
            return max(0, self._swap_at - n - 1)
        start = self.schedule.until_start(n, ts)
        if self._job is not None:  # finished; a new one starts once it has been applied
            start = max(start, self._swap_at - n)
        if math.isinf(start):
            return None
        return int(start) + cfg.swap_delay - 1

    @property
    def drift_ratio(self) -> float | None:
        """The drift test's statistic over its threshold (1: a retrain is due); ``None`` if off."""
        drift = self.schedule.drift
        return None if drift is None else drift.statistic / drift.threshold

    def retrain_now(self) -> bool:
        """Start a retrain from the current histories; ``False`` if there is no full window yet.

        Its weights apply ``swap_delay`` events later (at once if that is 0). It is
        logged with the reason ``"manual"``, and it restarts the schedule's count when
        the drift trigger is on.
        """
        return self._start("manual")

    def _start(self, reason: str) -> bool:
        if self._job is not None:
            return False
        job = self.job_type(self.cfg, self.spec, self.params, self.opt_state, self.blend,
                            self.blend_losses, self.table,
                            (self.cfg.seed, self.retrains_started))  # fmt: skip
        if not job.ready:
            return False
        self.retrains_started += 1
        self.retrains_by_reason[reason] += 1
        self._job_start = self.n_events
        self.schedule.started(self.n_events, reason)
        self._job_reason = reason
        job.start(background=self.cfg.background and self.cfg.swap_delay > 0)
        self._job, self._swap_at = job, self.n_events + self.cfg.swap_delay
        if self.cfg.swap_delay == 0:
            self._apply(job.result())
            self._job = None
        return True

    def _apply(self, res: RetrainResult) -> None:
        self.retrain_log.append({
            "at_event": float(self.n_events), "reason": self._job_reason,
            "started_at": float(self._job_start), "train_loss": res.train_loss,
            "val_loss_before": res.val_loss_before, "val_loss_after": res.val_loss_after,
            "accepted": float(res.accepted), "failed": float(bool(res.error)),
            "steps": float(res.steps),
        })  # fmt: skip
        if self.schedule.drift is not None:  # the errors from here on set the next norm
            self.schedule.drift.reset()
        if res.error:
            self.retrains_failed += 1
            self.last_retrain_error = res.error
            return
        if not res.accepted:
            self.retrains_rejected += 1
            return
        self.retrains_accepted += 1
        if self._job_reason == "drift" and self.experts is not None:
            # The model expert is new: its old weights' record (their errors in the change
            # above all) would keep it out of the mix long after it is back (README:
            # retraining when it pays).
            self.experts.lighten_model(self.table, self.cfg.drift_model_evidence_kept)
        self.model_version += 1
        self.params, self.opt_state, self.blend = res.params, res.opt_state, res.blend
        self.blend_losses = res.blend_losses
        self._rebuild(res)

    def _observe_errors(self, pos: I64Array, errors: F64Array, scale: F64Array) -> None:
        if self.schedule.drift is not None:
            self.schedule.drift.collect(pos, errors, scale)

    def _rebuild(self, res: RetrainResult) -> None:
        """Bring hidden states in line with the new weights.

        Rows the job saw start from its rebuilt states and replay the events since; other
        rows (new series, recycled rows, or too many events since) replay their last
        ``rebuild_steps`` events from zero.
        """
        tab, cfg = self.table, self.cfg
        rows = tab.active_rows()
        job_pos = {int(r): i for i, r in enumerate(res.rows.tolist())}
        start = np.zeros((rows.size, self.spec.state_size))
        lengths = np.minimum(tab.count[rows], cfg.rebuild_steps)
        for i, row in enumerate(rows.tolist()):
            j = job_pos.get(row)
            if j is None or res.ids[j] != tab.ids[row]:
                continue
            since = int(tab.count[row] - res.counts[j])
            if since <= cfg.rebuild_steps:
                start[i], lengths[i] = res.states[j], since
        recent, _ = recent_inputs(tab, rows, cfg.rebuild_steps, cfg.history)
        tab.h[rows] = rebuild_states(self.params, self.spec, recent, lengths, start)

    # --- snapshots (forecaster/snapshot.py) --------------------------------------
    def _init_kwargs(self) -> dict[str, Any]:
        return {"cfg": self.cfg.to_dict()}

    def _extra_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return model_state(self)

    def _load_extra_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        load_model_state(self, arrays, meta)

    # --- experts ----------------------------------------------------------------
    @property
    def expert_names(self) -> list[str]:
        """Names of the aggregated experts (empty without aggregation)."""
        return [] if self.experts is None else list(self.experts.names)

    def expert_weights(self, series: str | None = None) -> F64Array:
        """Weights ``(K, E)`` of the experts in the next forecast of ``series``.

        Without ``series``, the pooled weights a new series starts from. Rows are steps
        ahead, columns follow :attr:`expert_names`. Raises ``ValueError`` without
        aggregation and ``KeyError`` naming a series that has no events.
        """
        if self.experts is None:
            msg = 'expert weights need aggregation = "mlpoly" in the model config'
            raise ValueError(msg)
        if series is None:
            return self.experts.pooled.copy()
        row = self.table.index.get(series)
        if row is None or self.table.count[row] == 0:
            msg = f"no expert weights for series {series!r}: it has no events"
            raise KeyError(msg)
        return self.experts.weights(self.table, row)

    # --- memory -----------------------------------------------------------------
    def bytes_per_series(self) -> int:
        """Bytes of state one series occupies (hidden state, history, pending forecasts...)."""
        return self.table.bytes_per_series()

    def describe(self) -> dict[str, Any]:
        """Counters for reports and metrics."""
        return {
            "series": len(self.table),
            "events": self.n_events,
            "late": self.n_late,
            "evicted": self.n_evicted,
            "model_version": self.model_version,
            "retrains_started": self.retrains_started,
            "retrains_accepted": self.retrains_accepted,
            "retrains_rejected": self.retrains_rejected,
            "retrains_failed": self.retrains_failed,
            "retrains_by_reason": dict(self.retrains_by_reason),
            "drift_statistic": self.drift_statistic,
            "bytes_per_series": self.bytes_per_series(),
        }
