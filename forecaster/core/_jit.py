"""The one place where kernels are compiled.

Every kernel in :mod:`forecaster.core` is decorated with :data:`jit` (whole kernels)
or :data:`inline` (small helpers inlined into their callers), so compile flags live
here only: ``cache=True`` so a second process loads machine code instead of
recompiling, ``nogil=True`` so a background retrain never blocks the event loop.
There is no ``fastmath``: the kernels keep IEEE semantics for NaN and inf.

Under ``NUMBA_DISABLE_JIT=1`` the decorators return the Python functions, so the
maths can be stepped through in a debugger; :func:`bits_to_float` then falls back
to :mod:`struct`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
from numba.core import types
from numba.extending import intrinsic

F = TypeVar("F", bound=Callable[..., Any])

JIT_DISABLED: bool = bool(getattr(numba.config, "DISABLE_JIT", 0))


def jit(func: F) -> F:
    """Compile a kernel: cached on disk, releases the GIL, strict IEEE maths."""
    return cast(F, numba.njit(cache=True, nogil=True)(func))


def inline(func: F) -> F:
    """Compile a helper that is inlined into every kernel calling it."""
    return cast(F, numba.njit(cache=True, nogil=True, inline="always")(func))


@intrinsic
def _bitcast_i64_f64(typingctx: Any, bits: Any) -> Any:  # pragma: no cover - compiled
    sig = types.float64(types.int64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return sig, codegen


def _bits_to_float_py(bits: int) -> float:
    return float(struct.unpack("<d", struct.pack("<q", int(bits)))[0])


if JIT_DISABLED:
    bits_to_float: Callable[[int], float] = _bits_to_float_py
else:
    bits_to_float = cast(Callable[[int], float], _bitcast_i64_f64)
