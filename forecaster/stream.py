"""What every online model shares: events in, forecasts out, one row per series.

:class:`StreamModel` owns the event semantics, so the GRU and the baselines are scored
under exactly the same rules:

- events of a call are processed in arrival order; one for a series older than that
  series' last event is dropped and counted (equal times are kept: a duplicate
  timestamp is another event);
- before an event is learned, the forecasts issued for it earlier (1..K events ago
  for steps 1..K) are scored against its value; learning then issues the next K;
- each series keeps a running scale of its changes; interval half-widths are a
  per-step multiple of it, tracked online to the nominal coverage;
- work is cut at fixed counts of events (interval blocks, and a subclass's own points
  such as retraining), so results never depend on how events were grouped into calls.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from forecaster.anomaly import AnomalyJudge, Judgement
from forecaster.config import ForecasterConfig
from forecaster.core import F64Array
from forecaster.core.events import finish_wave, score_and_scale
from forecaster.core.params import I64Array
from forecaster.events import BoolArray, Call, Wave, validate_events
from forecaster.series import SeriesTable, Shapes, base_shapes

# 2: per-series fault anchors (a faster way back after a fault); 3: expert aggregation's
# state in a compact layout (forecaster/core/aggregate.py); 4: its rate sums kept less
# their bound (core/aggregate.py); 5: its regrets and rate sums expert-major, (E, K) a
# series (vector loops in the kernel). Formats 2 (without aggregation), 3 and 4 are read.
SNAPSHOT_FORMAT = 5
# After a fault, once this many changes in a row look normal by the scale from before it
# and tiny by the inflated one, the running variance moves back with this weight an
# event (forecaster/core/events.py): back from a 1e18-fold inflation in about 200 events
# instead of 30,000.
CALM_EVENTS = 6
RECOVER = 0.2


@dataclass(frozen=True)
class Update:
    """Result of :meth:`StreamModel.learn`: one row per accepted event, in arrival order.

    ``accepted`` has one entry per input event (False: dropped as late). ``yhat``,
    ``lower``, ``upper`` and ``step_ts`` are ``(m, K)``: the forecast issued after the
    event for its next K events, and their expected times. ``errors`` are
    ``value - forecast`` of the forecasts issued earlier for this event (NaN where
    none: the first K events of a series), and ``covered`` says whether the value was
    inside their intervals. ``anomaly`` is each event's judgement against the
    forecasts issued for it (:mod:`forecaster.anomaly`; ``None`` from a report not made
    by a model).
    """

    accepted: BoolArray
    series: list[str]
    ts: F64Array
    value: F64Array
    yhat: F64Array
    lower: F64Array
    upper: F64Array
    step_ts: F64Array
    errors: F64Array
    covered: BoolArray
    model_version: I64Array
    anomaly: Judgement | None = None


class StreamModel:
    """Base of the online models: see the module docstring for the rules."""

    def __init__(self, cfg: ForecasterConfig) -> None:
        self.cfg = cfg
        self.horizon = cfg.horizon
        self.table = SeriesTable({**base_shapes(cfg.horizon), **self._extra_shapes()})
        self.n_events = 0  # accepted events learned, over all series
        self.n_late = 0
        self.n_evicted = 0
        self.model_version = 0
        self.max_ts = -math.inf
        self.q = np.full(cfg.horizon, 1.645)  # half-widths in units of scale
        self._block = np.zeros((2, cfg.horizon))  # misses, scored in this block
        self.scored_total = np.zeros(cfg.horizon, dtype=np.int64)
        self.covered_total = np.zeros(cfg.horizon, dtype=np.int64)
        self._alpha = 1.0 - 0.5 ** (1.0 / cfg.scale_halflife)
        self._steps = np.arange(1, cfg.horizon + 1)  # steps ahead, 1..K
        self._steps0 = self._steps - 1
        self.anomaly = AnomalyJudge(cfg.anomaly_steps, cfg.anomaly_level, cfg.anomaly_min_scored,
                                    cfg.anomaly_memory, cfg.interval_block)  # fmt: skip

    # --- for subclasses ---------------------------------------------------------
    def _extra_shapes(self) -> Shapes:
        return {}

    def _advance(self, w: Wave) -> F64Array:
        """Learn a wave's events; return their forecasts ``(n, K)``."""
        raise NotImplementedError

    def _cut_limit(self, ts: F64Array) -> int:
        """Largest number of the next events (times ``ts``) to take before a cut."""
        return int(ts.shape[0])

    def _after_cut(self, last_ts: float) -> None:
        """Called after every cut, with ``n_events`` already advanced."""

    def _observe_errors(self, pos: I64Array, errors: F64Array, scale: F64Array) -> None:
        """Called once per wave, after scoring: the +1 errors of the issued forecasts.

        ``errors[pos, 0]`` are the wave's +1 errors (NaN where none was issued) and
        ``scale`` the series' scales after these events, one per event. Waves of a cut
        are not in arrival order when a series repeats in it: a subclass that needs the
        order files errors under their positions and reads them in :meth:`_after_cut`.
        """

    def _init_kwargs(self) -> dict[str, Any]:
        """Constructor arguments that rebuild an untrained copy (for snapshots)."""
        return {"horizon": self.horizon, "coverage": self.cfg.coverage}

    def _extra_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {}, {}

    def _load_extra_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        pass

    # --- public -----------------------------------------------------------------
    @property
    def coverage(self) -> F64Array:
        """Achieved interval coverage per step ahead, over every scored forecast."""
        return self.covered_total / np.maximum(self.scored_total, 1)

    def learn(
        self,
        series: Sequence[str] | NDArray[Any],
        ts: Sequence[float] | F64Array,
        values: Sequence[float] | F64Array,
        covariates: F64Array | None = None,
    ) -> Update:
        """Learn a batch of events and issue each its forecast for the next K events.

        Parameters
        ----------
        series
            Series id of each event (strings).
        ts
            Event times, seconds since the Unix epoch (UTC), any order across series.
        values
            Observed values; NaN or inf is an error, never learned.
        covariates
            ``(n, C)`` values of the configured covariates, in their configured order.

        Raises
        ------
        ValueError
            On a non-finite value, time or covariate (naming the event), or on arrays
            of mismatched lengths. Nothing is learned from a batch that raises.
        """
        ids, t, y, cov = validate_events(self.cfg, series, ts, values, covariates)
        accepted = self._accept(ids, t)
        idx = np.flatnonzero(accepted)
        m, k = idx.size, self.horizon
        out = {name: np.full((m, k), np.nan) for name in ("yhat", "half", "errors", "step_ts")}
        covered = np.zeros((m, k), dtype=bool)
        version = np.zeros(m, dtype=np.int64)
        judged = Judgement.buffers(m)
        call = Call(ids, t, y, cov, out, covered, judged)
        start = 0
        while start < m:
            block_left = self.cfg.interval_block - self.n_events % self.cfg.interval_block
            take = max(1, min(block_left, self._cut_limit(t[idx[start:]])))
            sel = np.arange(start, min(m, start + take))
            self._learn_cut(sel, idx[sel], call)
            version[sel] = self.model_version
            self.n_events += sel.size
            if self.n_events % self.cfg.interval_block == 0:
                self._end_block()
            self._after_cut(float(t[idx[sel[-1]]]))
            start += sel.size
        yhat, half = out["yhat"], out["half"]
        return Update(
            accepted=accepted, series=[ids[i] for i in idx], ts=t[idx], value=y[idx],
            yhat=yhat, lower=yhat - half, upper=yhat + half, step_ts=out["step_ts"],
            errors=out["errors"], covered=covered, model_version=version,
            anomaly=Judgement.of(judged),
        )  # fmt: skip

    def forecast(self, series: Sequence[str]) -> F64Array:
        """Latest forecast ``(n, K)`` of each series, without changing any state.

        Raises ``KeyError`` naming a series that has no events yet.
        """
        tab = self.table
        out = np.empty((len(series), self.horizon))
        for i, sid in enumerate(series):
            row = tab.index.get(sid)
            if row is None or tab.count[row] == 0:
                msg = f"no forecast for series {sid!r}: it has no events"
                raise KeyError(msg)
            out[i] = tab.pend_yhat[row, (tab.count[row] - 1) % self.horizon]
        return out

    def snapshot(self) -> bytes:
        """Everything the model has learned, as bytes (NumPy ``.npz``, no pickle).

        :meth:`restore` gives a model whose next outputs equal this one's bit for bit.
        """
        arrays, ids = self.table.state()
        extra_arrays, extra_meta = self._extra_state()
        meta = {
            "format": SNAPSHOT_FORMAT, "class": type(self).__name__, "init": self._init_kwargs(),
            "ids": ids, "n_events": self.n_events, "n_late": self.n_late,
            "n_evicted": self.n_evicted, "model_version": self.model_version,
            "max_ts": self.max_ts, "extra": extra_meta,
        }  # fmt: skip
        payload: dict[str, Any] = {f"table.{k}": v for k, v in arrays.items()}
        payload.update({f"extra.{k}": v for k, v in extra_arrays.items()})
        payload.update(q=self.q, block=self._block, scored=self.scored_total,
                       covered=self.covered_total)  # fmt: skip
        payload.update({f"anomaly.{k}": v for k, v in self.anomaly.state.items()})
        meta_bytes = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        buf = io.BytesIO()
        np.savez(buf, meta=meta_bytes, **payload)
        return buf.getvalue()

    @classmethod
    def restore(cls, data: bytes) -> Self:
        """Rebuild a model from :meth:`snapshot` bytes.

        Raises ``ValueError`` when the bytes are not a snapshot of this class and format.
        """
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            meta = json.loads(arrays.pop("meta").tobytes().decode())
        except Exception as exc:  # any decoding failure is the same error to the caller
            msg = f"not a model snapshot: {exc}"
            raise ValueError(msg) from exc
        fmt = meta.get("format")
        if fmt == 2 and "table.pend_exp" in arrays:
            msg = (f"snapshot format 2 holds expert aggregation state in a layout this version "
                   f"does not read (format {SNAPSHOT_FORMAT}): restore it with the version "
                   f"that wrote it, or start the model afresh")  # fmt: skip
            raise ValueError(msg)
        if fmt not in (2, 3, 4, SNAPSHOT_FORMAT):
            msg = f"snapshot format {fmt!r} is not one this version reads (2 to {SNAPSHOT_FORMAT})"
            raise ValueError(msg)
        if meta.get("class") != cls.__name__:
            msg = f"snapshot holds a {meta.get('class')!r}, not a {cls.__name__!r}"
            raise ValueError(msg)
        model = cls(**meta["init"])
        table = {k[6:]: v for k, v in arrays.items() if k.startswith("table.")}
        if fmt == 3 and "agg_rate" in table:  # rate sums then held the bound
            table["agg_rate"] = table["agg_rate"] - table["agg_bound"][..., None]
        if fmt in (3, 4) and "agg_rate" in table:  # then step-major: (K, E) a series
            for name in ("agg_regret", "agg_rate"):
                table[name] = np.ascontiguousarray(table[name].transpose(0, 2, 1))
        model.table.load(table, meta["ids"])
        for name in ("n_events", "n_late", "n_evicted", "model_version", "max_ts"):
            setattr(model, name, meta[name])
        model.q, model._block = arrays["q"], arrays["block"]
        model.scored_total, model.covered_total = arrays["scored"], arrays["covered"]
        model.anomaly.load({k[8:]: v for k, v in arrays.items() if k.startswith("anomaly.")})
        extra = {k[6:]: v for k, v in arrays.items() if k.startswith("extra.")}
        model._load_extra_state(extra, meta["extra"])
        return model

    # --- internals --------------------------------------------------------------
    def _accept(self, ids: list[str], t: F64Array) -> BoolArray:
        """Drop events older than their series' latest; count them."""
        tab = self.table
        last: dict[str, float] = {}
        ok = np.ones(len(ids), dtype=bool)
        for i, sid in enumerate(ids):
            prev = last.get(sid)
            if prev is None:
                row = tab.index.get(sid)
                prev = float(tab.last_ts[row]) if row is not None and tab.count[row] else -math.inf
            if t[i] < prev:
                ok[i] = False
            else:
                last[sid] = float(t[i])
        self.n_late += int((~ok).sum())
        if ok.any():
            self.max_ts = max(self.max_ts, float(t[ok].max()))
        return ok

    def _learn_cut(self, pos: I64Array, ev: I64Array, call: Call) -> None:
        """Learn a cut's events (output rows ``pos``, input positions ``ev``), wave by wave."""
        for wave_pos in self._waves([call.ids[i] for i in ev]):
            self._learn_wave(pos[wave_pos], ev[wave_pos], call)

    @staticmethod
    def _waves(ids: list[str]) -> list[I64Array]:
        """Split positions into waves in which no series repeats, keeping order."""
        seen: dict[str, int] = {}
        occ = np.empty(len(ids), dtype=np.int64)
        for i, sid in enumerate(ids):
            occ[i] = seen.get(sid, 0)
            seen[sid] = occ[i] + 1
        if occ.max(initial=0) == 0:
            return [np.arange(len(ids))]
        return [np.flatnonzero(occ == w) for w in range(int(occ.max()) + 1)]

    def _learn_wave(self, pos: I64Array, ev: I64Array, call: Call) -> None:
        tab, cfg = self.table, self.cfg
        rows = tab.rows(call.ids[i] for i in ev)
        t, y = call.t[ev], call.y[ev]
        out, covered = call.out, call.covered
        c = tab.count[rows]
        # Score the forecasts issued 1..K events ago for this event, and move the running
        # scales of the changes (clipped) and of the time between events on: one kernel.
        sc = np.empty((8, rows.size))  # rows, so each quantity is contiguous
        score_and_scale(rows, pos, y, t, tab.count, tab.last_y, tab.last_ts, tab.var,
                        tab.anchor, tab.calm, tab.mean_dt, tab.pend_yhat, tab.pend_half,
                        cfg.clip_sigma, self._alpha, RECOVER, CALM_EVENTS, out["errors"],
                        covered, self._block, self.scored_total, self.covered_total,
                        sc)  # fmt: skip
        change, dt, mdt0, mdt1, var1, scale, anchor1, calm1 = sc
        # Judged before finish_wave overwrites the oldest pending forecast; never changes one.
        self.anomaly.judge(rows, pos, c, out["errors"], tab.pend_yhat, tab.pend_half, call.judged)
        self._observe_errors(pos, out["errors"], scale)
        wave = Wave(pos, rows, c, t, y, call.cov[ev], change, dt, mdt0, scale)
        yhat = self._advance(wave)
        finish_wave(rows, pos, c, t, y, var1, anchor1, calm1, mdt1, scale, yhat, self.q,
                    tab.count, tab.last_ts, tab.last_y, tab.var, tab.anchor, tab.calm,
                    tab.mean_dt, tab.pend_yhat, tab.pend_half, out["yhat"], out["half"],
                    out["step_ts"])  # fmt: skip

    def _end_block(self) -> None:
        misses, scored = self._block
        rate, target = self.cfg.interval_rate, 1.0 - self.cfg.coverage
        # A step on the block's miss rate, not its count: the same equilibrium (misses at
        # the nominal rate) whatever the block holds, and bounded steps.
        miss_rate = np.where(scored > 0, misses / np.maximum(scored, 1.0), target)
        self.q = np.clip(self.q * np.exp(rate * (miss_rate - target)), 1e-6, 1e6)
        self._block[:] = 0.0
        self.anomaly.commit()
        if self.cfg.evict_after > 0:
            self.n_evicted += len(self.table.evict_older_than(self.max_ts - self.cfg.evict_after))

    # --- read-only accessors for applications (pipelines); nothing here changes state ---
    @property
    def n_series(self) -> int:
        """How many series the model holds state for (evicted ones excluded)."""
        return len(self.table)

    @property
    def state_bytes(self) -> int:
        """Bytes of per-series state the model holds now (all rows allocated)."""
        return self.table.nbytes()

    # --- end of the read-only accessors ---------------------------------------------
