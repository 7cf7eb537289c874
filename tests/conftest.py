from __future__ import annotations

import numba
import pytest

JIT_DISABLED = bool(numba.config.DISABLE_JIT)

needs_jit = pytest.mark.skipif(
    JIT_DISABLED, reason="checks compiled machine code, which NUMBA_DISABLE_JIT=1 turns off"
)

needs_compiled_speed = pytest.mark.skipif(
    JIT_DISABLED,
    reason="runs the shipped model at full size, which plain Python (NUMBA_DISABLE_JIT=1) "
    "would take hours over; the compiled pass runs it",
)
