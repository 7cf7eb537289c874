"""River-style contract checks, run over every model and configuration in conftest.MODELS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from forecaster.stream import StreamModel, Update
from tests.forecaster.conftest import MODELS, events_for


def feed(model: StreamModel, ev: dict[str, Any], sizes: list[int]) -> list[Update]:
    out, lo = [], 0
    n = len(ev["series"])
    while lo < n:
        hi = min(n, lo + sizes[len(out) % len(sizes)])
        cov = None if ev["covariates"] is None else ev["covariates"][lo:hi]
        out.append(model.learn(ev["series"][lo:hi], ev["ts"][lo:hi], ev["values"][lo:hi], cov))
        lo = hi
    return out


def stacked(updates: list[Update]) -> dict[str, np.ndarray]:
    keys = ("yhat", "lower", "upper", "errors", "covered", "model_version", "step_ts")
    out = {k: np.concatenate([getattr(u, k) for u in updates]) for k in keys}
    for k in ("flag", "score", "step", "yhat", "lower", "upper"):  # the anomaly judgement
        out[f"anomaly.{k}"] = np.concatenate([getattr(u.anomaly, k) for u in updates])
    return out


def assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_outputs_do_not_depend_on_batching(make_model: Callable[[], StreamModel]) -> None:
    a, b = make_model(), make_model()
    ev = events_for(a)
    one_big = stacked(feed(a, ev, [400]))
    ragged = stacked(feed(b, ev, [1, 7, 33, 2, 50]))
    assert_same(one_big, ragged)
    assert a.snapshot() == b.snapshot()


def test_same_seed_same_outputs(make_model: Callable[[], StreamModel]) -> None:
    a, b = make_model(), make_model()
    ev = events_for(a)
    assert_same(stacked(feed(a, ev, [64])), stacked(feed(b, ev, [64])))


def test_forecast_does_not_mutate(make_model: Callable[[], StreamModel]) -> None:
    model = make_model()
    ev = events_for(model)
    feed(model, ev, [100])
    before = model.snapshot()
    first = model.forecast(["sensor-0", "sensor-3"])
    again = model.forecast(["sensor-0", "sensor-3"])
    np.testing.assert_array_equal(first, again)
    assert model.snapshot() == before


def test_snapshot_restore_continues_bit_for_bit(make_model: Callable[[], StreamModel]) -> None:
    model = make_model()
    ev = events_for(model, n=600)
    head = {k: (v[:250] if v is not None else None) for k, v in ev.items()}
    tail = {k: (v[250:] if v is not None else None) for k, v in ev.items()}
    feed(model, head, [250])
    twin = type(model).restore(model.snapshot())
    np.testing.assert_array_equal(model.forecast(["sensor-1"]), twin.forecast(["sensor-1"]))
    assert_same(stacked(feed(model, tail, [37])), stacked(feed(twin, tail, [37])))


def test_inputs_are_not_mutated(make_model: Callable[[], StreamModel]) -> None:
    model = make_model()
    ev = events_for(model)
    copies = {k: (v.copy() if isinstance(v, np.ndarray) else list(v) if v is not None else None)
              for k, v in ev.items()}  # fmt: skip
    feed(model, ev, [100])
    for k, v in ev.items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(v, copies[k])
        else:
            assert v == copies[k]


def test_the_anomaly_configuration_flags_and_changes_no_forecast() -> None:
    # The contract above holds with flags firing; and judging never moves a forecast.
    judged, plain = MODELS["gru-anomalies-two-steps"](), MODELS["gru-default"]()
    ev = events_for(judged)
    a, b = stacked(feed(judged, ev, [400])), stacked(feed(plain, ev, [400]))
    assert 0 < a["anomaly.flag"].sum() < 80  # level 0.9: about one warm event in ten
    assert set(np.unique(a["anomaly.step"][a["anomaly.flag"]])) <= {1, 3}
    assert b["anomaly.flag"].sum() == 0  # min_scored 100: no series of ~80 events is warm
    for k in ("yhat", "lower", "upper", "errors", "covered", "model_version"):
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
