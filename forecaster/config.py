"""Settings of an online forecaster: one frozen object instead of thirty arguments.

Every field has a default, is validated here (errors name the field and the value),
and maps one-to-one onto a key of the ``[model]`` table in the TOML configs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from forecaster.core import SGD, Adam, Loss, Optimizer, RMSprop

CALENDAR_FEATURES = ("hour", "weekday")
AGGREGATIONS = ("none", "mlpoly")
RETRAIN_TRIGGERS = ("schedule", "drift")


@dataclass(frozen=True)
class ForecasterConfig:
    """Hyperparameters of :class:`forecaster.OnlineForecaster`.

    Network
        ``hidden_size``, ``num_layers``, ``reset_after`` as in :class:`GRUSpec`;
        ``horizon`` is K, the number of steps ahead forecast after every event.
    Inputs
        The GRU reads the change since the series' previous value, scaled by the series'
        running scale (so no absolute level, which drifts out of range after regime
        changes); optionally the log of the time since the previous event (``use_dt``),
        calendar features (``calendar``: any of ``"hour"``, ``"weekday"``, as sine/cosine
        pairs, UTC), named covariates (``covariates``), each standardised per series, and,
        for each season in ``seasons`` (seconds, e.g. 86400 for a day), the seasonal-naive
        forecasts as changes, ``(y[t+k-m*ceil(k/m)] - y[t]) / scale`` for k = 1..K, where
        m is the season in the series' own events (``season / mean spacing``; 0 where the
        history is too short),
        and for each halflife in ``levels`` (events) the deviation from the series'
        exponentially weighted level, ``(y[t] - level[t]) / scale``: mean reversion.
    Targets
        ``(y[t+k] - y[t]) / scale[t]`` for k = 1..K: the change from the last value.
    Blend
        Per step ahead, the forecast change is the GRU's, or a candidate's, or the GRU
        mixed with one candidate, each at a factor (0: no change). Candidates: each
        running level (``level - y``), each season's seasonal-naive change, and with
        ``reversal`` the last change undone (``y[t-1] - y[t]``, scaled and clipped as
        the input): a share of it averages the newest values, which serves white noise
        on a slow signal. The mix is picked from a running record of validation losses;
        mixes within ``blend_tolerance`` (relative) of the least loss count as a tie,
        won by the lightest mix (the closest to no change).
    Aggregation
        ``aggregation = "mlpoly"`` makes the issued forecast an online mix of experts,
        per series and per step, weighted by their realised errors (ML-Poly: no
        learning rate; :mod:`forecaster.experts`): the model's forecast above, the last
        value, the seasonal naive of each of ``seasons`` and ``expert_seasons``, an
        exponentially weighted level per smoothing factor in ``expert_rates`` and a
        running median per rate in ``expert_medians`` (scales moved per event). The
        weights forget with a time constant of ``aggregation_memory`` scored forecasts
        (a fixed setting, not tuned per stream). ``"none"`` issues the model's forecast.
    Scaling
        ``scale_halflife``: events over which the running scale of a series' changes
        halves its memory. Changes beyond ``clip_sigma`` scales are clipped in the inputs
        and the scale update, so one spike does not blow the scale up.
    History and retraining
        Each series keeps its last ``history`` events for training windows. A retrain
        starts every ``retrain_every`` events (counted over all series) and/or every
        ``retrain_interval`` seconds of event time (0 disables either), and once after
        ``first_retrain`` events (0: no extra one), so a new model learns early; it draws
        ``train_steps`` batches of ``batch_windows`` windows of ``window`` events, the
        first ``burn_in`` of each unscored. Its new weights swap in exactly
        ``swap_delay`` events after the start (the hot path waits if training is
        slower), so outputs do not depend on thread timing. Hidden states are then
        rebuilt by re-running each series' last ``rebuild_steps`` events.
    Early stopping
        With ``early_stop_every`` (0: off), training evaluates the GRU's loss on the
        held-out validation windows every that many steps and stops once
        ``early_stop_patience`` evaluations in a row have not improved on the best; the
        weights (and optimiser state) of the best evaluation are kept. Training starts
        from the current weights, so a retrain on a steady stream stops early. With
        ``early_stop_min_delta`` (0: any gain counts) an evaluation counts as a gain
        only when it is that fraction below the last one that did; the best weights
        are kept all the same.
    Retraining triggers
        ``retrain_on`` names what starts a retrain: ``"schedule"`` (``retrain_every``
        and ``retrain_interval`` above) and/or ``"drift"``: a one-sided Page-Hinkley
        test (:mod:`forecaster.drift`) on the scaled absolute +1 errors of the issued
        forecasts, ``min(|y - yhat| / scale, clip_sigma)``, in arrival order over all
        series of the model. Each error moves the statistic by
        ``error / mean - 1 - drift_delta`` (floored at 0), the mean being over the
        errors since the last reset, after the first ``drift_warmup`` of them. The test
        is made every ``drift_check`` events (fixed event counts, so the result does
        not depend on batching); when the statistic exceeds ``drift_threshold`` and at
        least ``drift_min_spacing`` events have passed since the last retrain started,
        a retrain starts at once. The detector resets when a retrain's result applies
        (accepted or not: errors a retrain could not improve become the new norm). With
        aggregation, an accepted drift retrain also lightens every series' evidence on
        the model expert, which now has new weights: its regrets and rate sums are
        multiplied by ``drift_model_evidence_kept`` (0.1; 1 keeps everything), so its
        next errors count ten times as much. Its errors in the change would otherwise
        keep the retrained weights out of the mix for hundreds of events (``forecaster
        bench drift``, README). With
        both triggers the schedule is the longest wait: ``retrain_every`` counts from the
        last retrain's start, whatever started it, and with ``retrain_every_max`` (0:
        off) the wait doubles after each retrain the schedule starts, up to that many
        events, and is back to ``retrain_every`` after any other retrain: a young model
        or one just after a change retrains often, a settled one on steady data rarely.
        ``first_retrain`` applies with either trigger. Each retrain's reason is
        ``"first"``, ``"schedule"``, ``"drift"`` or ``"manual"``
        (:meth:`OnlineForecaster.retrain_now`).
    Intervals
        ``coverage``: nominal coverage of the conformal intervals. Per horizon step, the
        half-width (in units of the series' scale) is tracked online: after every block
        of ``interval_block`` events it is multiplied by
        ``exp(interval_rate * (miss rate - (1 - coverage)))``, which settles where the
        miss rate is ``1 - coverage`` (conformal quantile tracking).
    Anomalies
        Each event is judged by the forecasts issued for it at the steps
        ``anomaly_steps`` (1-based; empty: none): its error in units of that forecast's
        half-width, scored against the model's own past ones at that step (one minus
        the conformal p-value; the counts forget with a halflife of ``anomaly_memory``
        scored forecasts), and flagged when at every judged step its score reaches
        ``anomaly_level`` and its series has ``anomaly_min_scored`` scored forecasts
        (:mod:`forecaster.anomaly`).
    Series lifetime
        ``evict_after``: seconds of event time after which an unseen series is dropped
        (0 keeps every series).

    Examples
    --------
    >>> cfg = ForecasterConfig(horizon=6, calendar=("hour", "weekday"), covariates=("load",))
    >>> cfg.input_size  # change, time gap, 2 x (sin, cos), one covariate
    7
    >>> ForecasterConfig(window=128, history=64)
    Traceback (most recent call last):
    ...
    ValueError: window (128) must not exceed history (64)
    """

    horizon: int = 12
    hidden_size: int = 32
    num_layers: int = 1
    reset_after: bool = True
    use_dt: bool = True
    calendar: tuple[str, ...] = ("hour",)
    covariates: tuple[str, ...] = ()
    seasons: tuple[float, ...] = ()
    levels: tuple[float, ...] = ()
    reversal: bool = False
    blend_tolerance: float = 0.003
    aggregation: str = "none"
    expert_seasons: tuple[float, ...] = ()
    expert_rates: tuple[float, ...] = (0.05,)
    expert_medians: tuple[float, ...] = (0.02, 0.1)
    aggregation_memory: float = 1000.0
    scale_halflife: float = 500.0
    clip_sigma: float = 8.0
    history: int = 256
    window: int = 64
    burn_in: int = 16
    batch_windows: int = 32
    train_steps: int = 60
    retrain_every: int = 2000
    first_retrain: int = 0
    retrain_interval: float = 0.0
    swap_delay: int = 200
    rebuild_steps: int = 48
    validation_fraction: float = 0.25
    early_stop_every: int = 0
    early_stop_patience: int = 2
    early_stop_min_delta: float = 0.0
    retrain_on: tuple[str, ...] = ("schedule",)
    drift_threshold: float = 100.0
    drift_delta: float = 0.1
    drift_warmup: int = 200
    drift_check: int = 64
    drift_min_spacing: int = 500
    drift_model_evidence_kept: float = 0.1
    retrain_every_max: int = 0
    loss: str = "mse"
    huber_delta: float = 1.0
    optimizer: str = "adam"
    learning_rate: float = 3e-3
    clip_norm: float = 1.0
    coverage: float = 0.9
    interval_rate: float = 2.0
    evict_after: float = 0.0
    anomaly_steps: tuple[int, ...] = (1,)
    anomaly_level: float = 0.999
    anomaly_min_scored: int = 100
    anomaly_memory: float = 5000.0
    background: bool = True
    interval_block: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        positive_ints = (
            "horizon", "hidden_size", "num_layers", "history", "window", "batch_windows",
            "train_steps", "interval_block",
        )  # fmt: skip
        for name in positive_ints:
            _check_int(name, getattr(self, name), 1)
        for name in ("burn_in", "retrain_every", "first_retrain", "swap_delay", "rebuild_steps",
                     "seed"):  # fmt: skip
            _check_int(name, getattr(self, name), 0)
        for name in ("scale_halflife", "clip_sigma", "huber_delta", "learning_rate", "clip_norm",
                     "interval_rate"):  # fmt: skip
            _check_float(name, getattr(self, name), lower=0.0, strict=True)
        for name in ("retrain_interval", "evict_after"):
            _check_float(name, getattr(self, name), lower=0.0, strict=False)
        _check_float("coverage", self.coverage, lower=0.0, strict=True)
        if self.coverage >= 1.0:
            msg = f"coverage must be in (0, 1), got {self.coverage!r}"
            raise ValueError(msg)
        _check_float("validation_fraction", self.validation_fraction, lower=0.0, strict=True)
        if self.validation_fraction >= 1.0:
            msg = f"validation_fraction must be in (0, 1), got {self.validation_fraction!r}"
            raise ValueError(msg)
        if self.burn_in >= self.window:
            msg = f"burn_in ({self.burn_in}) must be smaller than window ({self.window})"
            raise ValueError(msg)
        if self.retrain_every and self.swap_delay >= self.retrain_every:
            msg = (f"swap_delay ({self.swap_delay}) must be smaller than retrain_every "
                   f"({self.retrain_every})")  # fmt: skip
            raise ValueError(msg)
        if self.window > self.history:
            msg = f"window ({self.window}) must not exceed history ({self.history})"
            raise ValueError(msg)
        if self.rebuild_steps > self.history:
            msg = f"rebuild_steps ({self.rebuild_steps}) must not exceed history ({self.history})"
            raise ValueError(msg)
        for name in self.calendar:
            if name not in CALENDAR_FEATURES:
                msg = f"calendar features must be among {CALENDAR_FEATURES}, got {name!r}"
                raise ValueError(msg)
        for hl in self.levels:
            _check_float("levels", hl, lower=0.0, strict=True)
        for season in self.seasons:
            _check_float("seasons", season, lower=0.0, strict=True)
        if len(set(self.covariates)) != len(self.covariates):
            msg = f"covariates must be distinct, got {self.covariates!r}"
            raise ValueError(msg)
        _check_float("blend_tolerance", self.blend_tolerance, lower=0.0, strict=False)
        if self.aggregation not in AGGREGATIONS:
            msg = f"aggregation must be one of {AGGREGATIONS}, got {self.aggregation!r}"
            raise ValueError(msg)
        for name, upper in (("expert_seasons", math.inf), ("expert_rates", 1.0),
                            ("expert_medians", math.inf)):  # fmt: skip
            values = getattr(self, name)
            if not isinstance(values, (tuple, list)):
                msg = f"{name} must be a list of numbers, got {values!r}"
                raise ValueError(msg)
            for v in values:
                _check_float(name, v, lower=0.0, strict=True)
                if v > upper:
                    msg = f"{name} must be in (0, {upper:g}], got {v!r}"
                    raise ValueError(msg)
            if len(set(values)) != len(values):
                msg = f"{name} must be distinct, got {values!r}"
                raise ValueError(msg)
        _check_float("aggregation_memory", self.aggregation_memory, lower=1.0, strict=True)
        for name in ("reset_after", "use_dt", "reversal", "background"):
            if not isinstance(getattr(self, name), bool):
                msg = f"{name} must be true or false, got {getattr(self, name)!r}"
                raise ValueError(msg)
        Loss.parse(self.loss)
        self.make_optimizer()
        self._check_retraining()
        self._check_anomalies()

    def _check_anomalies(self) -> None:
        steps = self.anomaly_steps
        if (not isinstance(steps, tuple) or len(set(steps)) != len(steps) or any(
                isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= self.horizon
                for s in steps)):  # fmt: skip
            msg = (f"anomaly_steps must be distinct steps among 1..horizon ({self.horizon}), "
                   f"got {steps!r}")  # fmt: skip
            raise ValueError(msg)
        _check_float("anomaly_level", self.anomaly_level, lower=0.0, strict=True)
        if self.anomaly_level >= 1.0:
            msg = f"anomaly_level must be in (0, 1), got {self.anomaly_level!r}"
            raise ValueError(msg)
        _check_int("anomaly_min_scored", self.anomaly_min_scored, 1)
        _check_float("anomaly_memory", self.anomaly_memory, lower=0.0, strict=True)
        if self.anomaly_memory * (1.0 - self.anomaly_level) < 1.0:
            msg = (f"anomaly_memory ({self.anomaly_memory!r}) must be at least "
                   f"1 / (1 - anomaly_level) ({1.0 / (1.0 - self.anomaly_level):g}): with "
                   f"fewer errors remembered no score reaches the level")  # fmt: skip
            raise ValueError(msg)

    def _check_retraining(self) -> None:
        """Early stopping and the retraining triggers."""
        _check_int("early_stop_every", self.early_stop_every, 0)
        _check_int("early_stop_patience", self.early_stop_patience, 1)
        _check_float("early_stop_min_delta", self.early_stop_min_delta, lower=0.0, strict=False)
        if self.early_stop_min_delta >= 1.0:
            msg = f"early_stop_min_delta must be in [0, 1), got {self.early_stop_min_delta!r}"
            raise ValueError(msg)
        on = self.retrain_on
        if (not isinstance(on, tuple) or not on or len(set(on)) != len(on)
                or any(t not in RETRAIN_TRIGGERS for t in on)):  # fmt: skip
            msg = (f"retrain_on must be a non-empty list of distinct triggers among "
                   f"{RETRAIN_TRIGGERS}, got {on!r}")  # fmt: skip
            raise ValueError(msg)
        _check_float("drift_threshold", self.drift_threshold, lower=0.0, strict=True)
        _check_float("drift_delta", self.drift_delta, lower=0.0, strict=False)
        _check_int("drift_warmup", self.drift_warmup, 1)
        _check_int("drift_check", self.drift_check, 1)
        _check_int("drift_min_spacing", self.drift_min_spacing, 0)
        kept = self.drift_model_evidence_kept
        _check_float("drift_model_evidence_kept", kept, lower=0.0, strict=False)
        if kept > 1.0:
            msg = f"drift_model_evidence_kept must be in [0, 1], got {kept!r}"
            raise ValueError(msg)
        _check_int("retrain_every_max", self.retrain_every_max, 0)
        most = self.retrain_every_max
        if most and ("drift" not in on or "schedule" not in on or most < self.retrain_every):
            msg = (f"retrain_every_max ({most}) stretches the schedule between drift retrains: "
                   f"it needs retrain_on with \"schedule\" and \"drift\" (got {on!r}) and "
                   f"at least retrain_every ({self.retrain_every})")  # fmt: skip
            raise ValueError(msg)

    @property
    def input_size(self) -> int:
        """Features fed to the GRU per event."""
        lags = self.horizon * len(self.seasons)
        extra = len(self.covariates) + lags + len(self.levels)
        return 1 + int(self.use_dt) + 2 * len(self.calendar) + extra

    def make_optimizer(self) -> Optimizer:
        """The optimiser named by ``optimizer``, at ``learning_rate``."""
        name = self.optimizer.lower()
        if name == "adam":
            return Adam(lr=self.learning_rate)
        if name == "sgd":
            return SGD(lr=self.learning_rate, momentum=0.9)
        if name == "rmsprop":
            return RMSprop(lr=self.learning_rate)
        msg = f"optimizer must be one of 'adam', 'sgd', 'rmsprop', got {self.optimizer!r}"
        raise ValueError(msg)

    def to_dict(self) -> dict[str, Any]:
        """Plain values, for snapshots and reports (tuples become lists)."""
        out = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ForecasterConfig:
        """Build from plain values; an unknown key is an error that names it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            msg = f"unknown model setting(s): {', '.join(unknown)}"
            raise ValueError(msg)
        clean: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in values.items()
        }
        return cls(**clean)


def _check_int(name: str, value: object, lower: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < lower:
        msg = f"{name} must be an integer >= {lower}, got {value!r}"
        raise ValueError(msg)


def _check_float(name: str, value: object, lower: float, strict: bool) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and math.isfinite(float(value))  # type: ignore[arg-type]
    ok = ok and (float(value) > lower if strict else float(value) >= lower)  # type: ignore[arg-type]
    if not ok:
        op = ">" if strict else ">="
        msg = f"{name} must be a finite number {op} {lower}, got {value!r}"
        raise ValueError(msg)
