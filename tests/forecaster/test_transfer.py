"""What a trained model hands on (forecaster/transfer.py): the pooled expert weights."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from forecaster import OnlineForecaster
from forecaster.experts import POOL_EVERY
from forecaster.transfer import transferable, warm_start
from tests.forecaster.test_experts import DAY, FAST, HOUR


def test_the_pooled_weights_handed_on_are_the_series_weights_at_the_hand_over() -> None:
    # Fewer events than the pooling interval: the model itself has pooled nothing yet.
    n = POOL_EVERY // 2
    rng = np.random.default_rng(7)
    ts = np.arange(n, dtype=np.float64) * HOUR
    y = np.asarray(10 + np.sin(2 * np.pi * ts / DAY) + 0.2 * rng.standard_normal(n), np.float64)
    model = OnlineForecaster(replace(FAST, retrain_every=0, first_retrain=0))
    model.learn(["s"] * n, ts, y)
    untrained = model.expert_weights()
    assert untrained[:, 0].tolist() == [1.0] * FAST.horizon  # the model expert alone
    own = model.expert_weights("s")
    assert not np.array_equal(own, untrained)
    state = transferable(model)
    np.testing.assert_array_equal(state["pooled"], own)  # one series: its weights
    np.testing.assert_array_equal(model.expert_weights(), untrained)  # the model unchanged
    np.testing.assert_array_equal(warm_start(model.cfg, state).expert_weights(), own)
