from __future__ import annotations

import numpy as np
import pytest

from pipelines.bench.datasets import ETTH1_LOADS, data_root, etth1, nab


def test_nab_recording_loads_with_real_times() -> None:
    if not (data_root() / "NAB").exists():
        pytest.skip("the shared evaluation data is not beside this checkout")
    rec = nab("nyc_taxi")
    assert rec.values.size == 10320
    assert np.median(np.diff(rec.ts)) == 1800.0  # 30-minute spacing
    assert rec.ts[0] == 1404172800.0  # 2014-07-01 00:00:00, read as UTC


def test_etth1_loads_its_loads_as_covariates() -> None:
    if not (data_root() / "ETDataset").exists():
        pytest.skip("the shared evaluation data is not beside this checkout")
    rec = etth1(with_loads=True)
    assert rec.covariates is not None and rec.covariates.shape == (rec.values.size, 6)
    assert rec.covariate_names == ETTH1_LOADS
    assert np.all(np.diff(rec.ts) == 3600.0)  # hourly, no gap
