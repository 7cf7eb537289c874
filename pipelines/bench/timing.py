"""Side-by-side timing: interleaved rounds, medians, so machine noise hits both sides."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def per_call_seconds(fn: Callable[[], object], calls: int) -> float:
    """Mean seconds per call of ``fn`` over ``calls`` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def side_by_side(
    contenders: dict[str, Callable[[], object]], calls: int, rounds: int
) -> dict[str, float]:
    """Median seconds per call of each contender, measured in alternating rounds."""
    for fn in contenders.values():  # warm caches, JIT and allocators once
        per_call_seconds(fn, max(1, calls // 10))
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            samples[name].append(per_call_seconds(fn, calls))
    return {name: statistics.median(s) for name, s in samples.items()}
