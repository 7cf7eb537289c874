"""Kernels compile once: a second process loads every kernel from the disk cache."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import needs_jit

SCRIPT = textwrap.dedent(
    """
    import numpy as np
    from forecaster.core import GRUSpec, Trainer, gru_step, gru_readout, step_workspace
    from forecaster.core.backprop import forward_steps, backward_steps, output_grad
    from forecaster.core.optim import adam_update
    spec = GRUSpec(input_size=2, hidden_size=4, horizon=3)
    p, st = spec.init_params(0), np.zeros((2, spec.state_size))
    gru_step(p, np.ones((1, 2)), st, np.array([0]), step_workspace(spec), 2, 4, 1, True)
    gru_readout(p, st, np.array([0]), np.empty((1, 3)), 2, 4, 1)
    tr = Trainer(spec)
    tr.step(p, tr.init_state(), np.ones((2, 5, 2)), np.ones((2, 5, 3)))
    kernels = (gru_step, gru_readout, forward_steps, backward_steps, output_grad,
               adam_update)
    for k in kernels:
        print(k.__name__, sum(k.stats.cache_hits.values()), sum(k.stats.cache_misses.values()))
    """
)


@needs_jit
def test_second_process_starts_without_compiling(tmp_path: Path) -> None:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}

    def run() -> dict[str, tuple[int, int]]:
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
        ).stdout
        return {name: (int(h), int(m)) for name, h, m in (ln.split() for ln in out.splitlines())}

    first, second = run(), run()
    assert all(misses >= 1 for _, misses in first.values()), first
    assert all(hits >= 1 and misses == 0 for hits, misses in second.values()), second


def test_cache_folder_follows_every_kernel_source(tmp_path: Path) -> None:
    from forecaster.core._jit import KERNEL_CACHE_DIR, source_fingerprint

    a, b = tmp_path / "gru.py", tmp_path / "activations.py"
    a.write_text("x = 1\n")
    b.write_text("y = 2\n")
    before = source_fingerprint([a, b])
    b.write_text("y = 3\n")  # an edit to an inlined helper's file alone
    assert source_fingerprint([a, b]) != before
    assert source_fingerprint([b, a]) == source_fingerprint([a, b])
    assert KERNEL_CACHE_DIR.name.startswith("kernels-")
