"""Drift-triggered retraining: the detector on hand-computed sequences, the triggers, settings."""

from __future__ import annotations

import io
import itertools
import json
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest

from forecaster import ForecasterConfig, OnlineForecaster
from forecaster.drift import ErrorDrift
from tests.forecaster.conftest import MODELS, SMALL, events_for
from tests.forecaster.test_contract import feed

DEFAULTS = ForecasterConfig()


def detector(threshold: float = 1.8, delta: float = 0.1, warmup: int = 4) -> ErrorDrift:
    return ErrorDrift(threshold, delta, warmup, cap=8.0)


def test_a_doubling_of_the_errors_fires_on_the_third_event_after_it() -> None:
    # Four errors of 1 set the norm; then errors of 2. By hand, with the mean over the
    # errors before each one: g1 = 2/1 - 1.1, the mean becomes 6/5; g2 = g1 + 2/(6/5) - 1.1,
    # the mean 8/6; g3 = g2 + 2/(8/6) - 1.1.
    g1 = Fraction(2) - Fraction(11, 10)
    g2 = g1 + Fraction(2) / Fraction(6, 5) - Fraction(11, 10)
    g3 = g2 + Fraction(2) / Fraction(8, 6) - Fraction(11, 10)
    assert g2 < Fraction(18, 10) < g3  # a threshold of 1.8 is crossed at the third
    d = detector()
    d.observe(np.ones(4))
    assert d.statistic == 0.0 and d.norm == 1.0
    seen = []
    for _ in range(3):
        d.observe(np.array([2.0]))
        seen.append(d.statistic)
    np.testing.assert_allclose(seen, [float(g1), float(g2), float(g3)], rtol=1e-15)
    assert d.fired and d.run == 3


def test_errors_at_or_below_their_norm_never_move_the_statistic() -> None:
    d = detector(threshold=0.5, delta=0.0)
    d.observe(np.full(10_000, 0.7))  # stationary and constant: every step is 0 - delta
    assert d.statistic == 0.0 and not d.fired
    d.observe(np.full(10_000, 0.3))  # errors falling: no retrain needed
    assert d.statistic == 0.0 and not d.fired


def test_the_defaults_never_fire_on_a_long_stationary_sequence_and_fire_on_a_doubling() -> None:
    # Scaled absolute errors of Gaussian forecast errors: half-normal, mean 0.8 * sigma.
    rng = np.random.default_rng(0)
    d = ErrorDrift(DEFAULTS.drift_threshold, DEFAULTS.drift_delta, DEFAULTS.drift_warmup,
                   DEFAULTS.clip_sigma)  # fmt: skip
    peak = 0.0
    for _ in range(200):  # 200,000 events, checked every 1,000
        d.observe(np.abs(rng.normal(0.0, 0.5, 1000)))
        peak = max(peak, d.statistic)
    assert not d.fired and peak < 0.5 * DEFAULTS.drift_threshold, peak
    delay = 0
    while not d.fired:  # the errors double
        d.observe(np.abs(rng.normal(0.0, 1.0, 1)))
        delay += 1
    # about threshold / (1 - delta) events: the norm holds 200,000 errors
    assert 0.4 * DEFAULTS.drift_threshold < delay < 2 * DEFAULTS.drift_threshold, delay


def test_nan_errors_are_skipped_and_one_spike_counts_at_most_the_cap() -> None:
    d = detector(threshold=100.0, delta=0.0, warmup=2)
    d.observe(np.array([1.0, np.nan, 1.0, np.nan]))
    assert d.state[0] == 2.0  # two errors observed
    d.observe(np.array([np.inf]))  # capped at 8 scales: 8 / 1 - 1
    assert d.statistic == 7.0
    state = d.state.copy()
    d.observe(np.array([np.nan]))
    np.testing.assert_array_equal(d.state, state)


def test_collect_then_flush_feeds_arrival_order_whatever_the_filing_order() -> None:
    errors = np.array([[1.0], [3.0], [np.nan], [2.0], [5.0]])
    scale = np.full(5, 0.5)
    a, b = detector(warmup=1), detector(warmup=1)
    a.observe(np.minimum(np.abs(errors[:, 0]) / 0.5, 8.0))
    b.collect(np.array([0, 2, 4]), errors, scale[:3])  # waves: first occurrences...
    b.collect(np.array([1, 3]), errors, scale[:2])  # ...then the repeats
    b.flush()
    np.testing.assert_array_equal(a.state, b.state)


def test_the_detector_does_not_depend_on_batching() -> None:
    # With retraining off the detector never resets, so every error counts in the end
    # state. Waves within a cut are not in arrival order (a series repeats): fed as they
    # come, the end state differed between these two batchings.
    models = [MODELS["gru-drift-only-sync"]() for _ in range(2)]
    for m in models:
        m.retrain_enabled = False
    ev = events_for(models[0])
    feed(models[0], ev, [400])
    feed(models[1], ev, [1, 7, 33, 2, 50])
    np.testing.assert_array_equal(models[0].schedule.drift.state, models[1].schedule.drift.state)  # type: ignore[union-attr]
    assert models[0].drift_statistic > 0.0


def noisier(
    n: int, at: int, factor: float, seed: int = 0
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """A daily cycle with noise 0.1, ``factor`` times noisier from event ``at`` on."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=float)
    y = np.sin(2 * np.pi * t / 24) + 0.1 * rng.normal(size=n) * np.where(t >= at, factor, 1.0)
    return ["s"] * n, 1.7e9 + 3600 * t, y


def drift_cfg(**over: object) -> ForecasterConfig:
    base = {**SMALL, "background": False, "retrain_on": ("schedule", "drift"),
            "retrain_every": 1000, "drift_check": 10, "drift_warmup": 50,
            "drift_threshold": 20.0, "drift_min_spacing": 100}  # fmt: skip
    return ForecasterConfig(**{**base, **over})  # type: ignore[arg-type]


def test_noisier_data_starts_a_drift_retrain_at_a_check_and_the_detector_resets() -> None:
    ids, ts, y = noisier(900, at=600, factor=4.0)
    model = OnlineForecaster(drift_cfg())
    model.learn(ids, ts, y)
    log = model.retrain_log
    drift = [e for e in log if e["reason"] == "drift"]
    assert drift, log
    first = drift[0]
    assert 600 < first["started_at"] <= 660 and first["started_at"] % 10 == 0, first
    assert first["at_event"] == first["started_at"] + SMALL["swap_delay"]
    starts = [e["started_at"] for e in log]
    assert all(b - a >= 100 for a, b in itertools.pairwise(starts)), starts
    assert model.describe()["retrains_by_reason"]["drift"] == len(drift)
    # Right after a result applies, the detector starts over.
    model2 = OnlineForecaster(drift_cfg())
    swap = int(first["at_event"])
    model2.learn(ids[:swap], ts[:swap], y[:swap])
    assert model2.drift_statistic == 0.0 and model2.schedule.drift.state[0] == 0.0  # type: ignore[union-attr]


def two_series_noisier(n: int, at: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Two series taking turns, both :func:`noisier` (one lifted by 1) from event ``at``."""
    _, ts, y = noisier(n, at=at, factor=4.0)
    return [("a", "b")[i % 2] for i in range(n)], ts, y + np.arange(n) % 2


def evidence_after(cfg: ForecasterConfig, events: int) -> np.ndarray:
    """Both series' expert regrets and rate sums after the first ``events`` events."""
    model = OnlineForecaster(cfg)
    ids, ts, y = two_series_noisier(900, at=600)
    model.learn(ids[:events], ts[:events], y[:events])
    rows = model.table.active_rows()
    assert rows.size == 2
    return np.stack([model.table.agg_regret[rows], model.table.agg_rate[rows]])


def test_an_accepted_drift_retrain_lightens_every_series_evidence_on_the_model_expert() -> None:
    cfg = drift_cfg(aggregation="mlpoly")
    model = OnlineForecaster(cfg)
    model.learn(*two_series_noisier(900, at=600))
    drift = [e for e in model.retrain_log if e["reason"] == "drift"]
    assert drift and drift[0]["accepted"] == 1.0, model.retrain_log
    swap = int(drift[0]["at_event"])
    kept = evidence_after(replace(cfg, drift_model_evidence_kept=1.0), swap)
    at = evidence_after(cfg, swap)  # (regrets and rate sums, series, experts, steps)
    assert (kept[:, :, 0] != 0.0).any(axis=(0, 2)).all()  # each series had evidence
    # Every series' regrets and rate sums of the model expert (index 0) are a tenth of
    # what they were; the other experts' are untouched.
    np.testing.assert_array_equal(at[:, :, 0], kept[:, :, 0] * 0.1)
    np.testing.assert_array_equal(at[:, :, 1:], kept[:, :, 1:])
    # Up to the swap the share changes nothing; a share of 0 empties the model's record.
    keep_all = replace(cfg, drift_model_evidence_kept=1.0)
    np.testing.assert_array_equal(evidence_after(cfg, swap - 1), evidence_after(keep_all, swap - 1))
    assert not evidence_after(replace(cfg, drift_model_evidence_kept=0.0), swap)[:, :, 0].any()
    # A scheduled retrain's result leaves the evidence alone.
    sched = drift_cfg(aggregation="mlpoly", retrain_on=("schedule",), retrain_every=300)
    at_sched = 300 + SMALL["swap_delay"]
    np.testing.assert_array_equal(
        evidence_after(sched, at_sched),
        evidence_after(replace(sched, drift_model_evidence_kept=1.0), at_sched),
    )


def test_with_both_triggers_the_schedule_counts_from_the_last_start() -> None:
    ids, ts, y = noisier(900, at=600, factor=4.0)
    model = OnlineForecaster(drift_cfg(retrain_every=250))
    model.learn(ids, ts, y)
    starts = [(e["reason"], int(e["started_at"])) for e in model.retrain_log]
    for (_, a), (reason, b) in itertools.pairwise(starts):
        assert b - a <= 250
        if reason == "schedule":
            assert b - a == 250, starts
    assert {r for r, _ in starts} == {"schedule", "drift"}, starts
    # The schedule alone keeps its grid.
    alone = OnlineForecaster(drift_cfg(retrain_every=250, retrain_on=("schedule",)))
    alone.learn(ids, ts, y)
    assert [int(e["started_at"]) for e in alone.retrain_log] == [250, 500, 750]
    assert alone.drift_statistic == 0.0


def test_drift_alone_ignores_the_schedule_and_manual_retrains_are_logged_as_such() -> None:
    ids, ts, y = noisier(900, at=600, factor=4.0)
    model = OnlineForecaster(drift_cfg(retrain_on=("drift",), retrain_every=100))
    model.learn(ids[:300], ts[:300], y[:300])
    assert model.retrains_started == 0 or all(e["reason"] == "drift" for e in model.retrain_log)
    assert model.retrain_now()
    model.learn(ids[300:], ts[300:], y[300:])
    reasons = [e["reason"] for e in model.retrain_log]
    assert "manual" in reasons and "schedule" not in reasons and "drift" in reasons
    assert model.retrains_by_reason["manual"] == 1


def test_first_retrain_is_logged_as_first() -> None:
    ids, ts, y = noisier(300, at=1000, factor=1.0)
    model = OnlineForecaster(drift_cfg(first_retrain=80, retrain_every=200))
    model.learn(ids, ts, y)
    assert [e["reason"] for e in model.retrain_log][:1] == ["first"]


def test_events_before_wait_allows_for_a_drift_retrain_at_the_next_check() -> None:
    cfg = drift_cfg(background=True, retrain_every=1000)
    model = OnlineForecaster(cfg)
    # the first possible drift retrain starts at event 10 (the first check) and swaps 30 later
    assert model.events_before_wait() == 10 + SMALL["swap_delay"] - 1
    ids, ts, y = noisier(900, at=600, factor=4.0)
    model.learn(ids[:37], ts[:37], y[:37])
    assert model.events_before_wait() == 3 + SMALL["swap_delay"] - 1


def test_snapshots_from_before_the_drift_trigger_still_restore() -> None:
    model = OnlineForecaster(ForecasterConfig(**{**SMALL, "background": False}))
    ids, ts, y = noisier(300, at=1000, factor=1.0)
    model.learn(ids, ts, y)
    with np.load(io.BytesIO(model.snapshot()), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays["meta"].tobytes().decode())
    for key in ("retrains_by_reason", "last_start", "job_reason", "job_start"):
        del meta["extra"][key]
    for key in ("early_stop_every", "early_stop_patience", "retrain_on", "drift_threshold",
                "drift_delta", "drift_warmup", "drift_check", "drift_min_spacing"):  # fmt: skip
        del meta["init"]["cfg"][key]
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    old = OnlineForecaster.restore(buf.getvalue())
    assert old.retrains_by_reason == dict.fromkeys(("first", "schedule", "drift", "manual"), 0)
    more = noisier(400, at=1000, factor=1.0)
    a = model.learn(more[0][300:], more[1][300:], more[2][300:])
    b = old.learn(more[0][300:], more[1][300:], more[2][300:])
    np.testing.assert_array_equal(a.yhat, b.yhat)


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"retrain_on": ()}, "retrain_on must be a non-empty list"),
        ({"retrain_on": ("schedule", "drfit")}, "got ('schedule', 'drfit')"),
        ({"retrain_on": ("drift", "drift")}, "distinct triggers"),
        ({"retrain_on": "drift"}, "got 'drift'"),
        ({"drift_threshold": 0.0}, "drift_threshold must be a finite number > 0.0, got 0.0"),
        ({"drift_delta": -0.1}, "drift_delta must be a finite number >= 0.0, got -0.1"),
        ({"drift_warmup": 0}, "drift_warmup must be an integer >= 1, got 0"),
        ({"drift_check": 2.5}, "drift_check must be an integer >= 1, got 2.5"),
        ({"drift_min_spacing": -1}, "drift_min_spacing must be an integer >= 0, got -1"),
        ({"drift_model_evidence_kept": 1.5}, "drift_model_evidence_kept must be in .0, 1.,"),
        ({"drift_model_evidence_kept": -0.1}, "drift_model_evidence_kept must be a finite number"),
        ({"early_stop_every": -1}, "early_stop_every must be an integer >= 0, got -1"),
        ({"early_stop_patience": 0}, "early_stop_patience must be an integer >= 1, got 0"),
    ],
)
def test_bad_retraining_settings_are_errors_naming_the_value(
    over: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ForecasterConfig(**over)  # type: ignore[arg-type]


def test_triggers_read_from_toml_lists() -> None:
    cfg = ForecasterConfig.from_dict({"retrain_on": ["schedule", "drift"]})
    assert cfg.retrain_on == ("schedule", "drift")
    assert cfg.to_dict()["retrain_on"] == ["schedule", "drift"]


def test_with_drift_the_schedule_stretches_until_another_trigger_starts_a_retrain() -> None:
    ids, ts, y = noisier(1400, at=900, factor=4.0)
    model = OnlineForecaster(drift_cfg(retrain_every=100, retrain_every_max=400))
    model.learn(ids, ts, y)
    starts = [(e["reason"], int(e["started_at"])) for e in model.retrain_log]
    # 100, then waits of 200 and 400 (the longest), until the noise starts a drift retrain
    assert starts[:4] == [("schedule", 100), ("schedule", 300), ("schedule", 700),
                          ("drift", starts[3][1])], starts  # fmt: skip
    assert 900 < starts[3][1] < 1100
    assert starts[4] == ("schedule", starts[3][1] + 100), starts  # back to the shortest wait


def test_a_stretching_schedule_needs_both_triggers_and_a_longer_wait() -> None:
    with pytest.raises(ValueError, match=r"retrain_every_max \(500\) stretches the schedule"):
        ForecasterConfig(retrain_every_max=500)
    with pytest.raises(ValueError, match=r"at least retrain_every \(2000\)"):
        ForecasterConfig(retrain_on=("schedule", "drift"), retrain_every_max=500)
    cfg = ForecasterConfig(retrain_on=("schedule", "drift"), retrain_every_max=8000)
    assert cfg.retrain_every_max == 8000


@pytest.mark.parametrize("name", ["sensors.toml", "fleet.toml"])
def test_the_shipped_configs_show_the_retraining_defaults(name: str) -> None:
    import re
    import tomllib
    from dataclasses import fields
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "config" / name).read_text()
    new = ("early_stop_every", "early_stop_patience", "retrain_on", "drift_threshold",
           "drift_delta", "drift_warmup", "drift_check", "drift_min_spacing",
           "drift_model_evidence_kept", "retrain_every_max")  # fmt: skip
    line = r"^# (\w+) = (\S.*?)[ \t]*(?:#.*)?$"
    shown = {
        m[1]: tomllib.loads(f"v = {m[2]}")["v"]
        for m in re.finditer(line, text, flags=re.MULTILINE)
        if m[1] in new
    }
    defaults = {f.name: f.default for f in fields(ForecasterConfig)}
    # A key the file sets (with the measurement beside it) shows its value, not the default.
    set_here = tomllib.loads(text)["model"]
    for key in new:
        if key in set_here:
            assert key not in shown, key
            continue
        default = defaults[key]
        assert shown[key] == (list(default) if isinstance(default, tuple) else default), key


@pytest.mark.parametrize("name", ["gru-drift-schedule-early-stop", "gru-drift-only-sync"])
def test_drift_retrains_give_the_same_outputs_in_the_background_and_inline(name: str) -> None:
    template = MODELS[name]()
    assert isinstance(template, OnlineForecaster)
    ev = events_for(template, n=600)
    runs = []
    for background in (True, False):
        model = OnlineForecaster(replace(template.cfg, background=background))
        runs.append((feed(model, ev, [1, 64, 7]), model))
    (a, ma), (b, mb) = runs
    assert ma.retrains_by_reason == mb.retrains_by_reason and ma.retrains_by_reason["drift"] > 0
    for ua, ub in zip(a, b, strict=True):
        np.testing.assert_array_equal(ua.yhat, ub.yhat)
        np.testing.assert_array_equal(ua.model_version, ub.model_version)
    np.testing.assert_array_equal(ma.schedule.drift.state, mb.schedule.drift.state)  # type: ignore[union-attr]
