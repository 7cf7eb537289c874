"""The one place where kernels are compiled.

Every kernel in :mod:`forecaster.core` is decorated with :data:`jit` (whole kernels)
or :data:`inline` (small helpers inlined into their callers), so compile flags live
here only: ``cache=True`` so a second process loads machine code instead of
recompiling, ``nogil=True`` so a background retrain never blocks the event loop.
There is no ``fastmath``: the kernels keep IEEE semantics for NaN and inf.

Numba checks a cached kernel against its own source file only, so a change to an
inlined helper in another file (or to the flags here) would silently load stale
machine code. Every kernel is therefore cached under a folder named after a
fingerprint of all of ``forecaster/core``'s sources: any edit or upgrade compiles
afresh. The folder sits in ``NUMBA_CACHE_DIR`` when that is set (containers set it to
a writable path), else in this package's ``__pycache__``.

Under ``NUMBA_DISABLE_JIT=1`` the decorators return the Python functions, so the
maths can be stepped through in a debugger; :func:`bits_to_float` then falls back
to :mod:`struct`.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar, cast

import numba
from llvmlite import ir  # type: ignore[import-untyped]
from numba.core import cgutils, types
from numba.extending import intrinsic

F = TypeVar("F", bound=Callable[..., Any])

JIT_DISABLED: bool = bool(getattr(numba.config, "DISABLE_JIT", 0))


# error_model="numpy": IEEE division (inf/NaN) instead of a zero check per division,
# which would also stop the gate loops from vectorising.
_FLAGS: dict[str, Any] = {"cache": True, "nogil": True, "error_model": "numpy"}


def source_fingerprint(paths: Iterable[Path]) -> str:
    """Short digest of the files' names and contents, in name order."""
    digest = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


_CORE = Path(__file__).resolve().parent
KERNEL_CACHE_DIR = (
    Path(getattr(numba.config, "CACHE_DIR", "") or _CORE / "__pycache__")
    / f"kernels-{source_fingerprint(_CORE.glob('*.py'))}"
)


def _compile(func: F, **extra: Any) -> F:
    # Numba picks a function's cache folder when caching is enabled, at decoration.
    saved = getattr(numba.config, "CACHE_DIR", "")
    numba.config.CACHE_DIR = str(KERNEL_CACHE_DIR)  # type: ignore[attr-defined]
    try:
        return cast(F, numba.njit(**_FLAGS, **extra)(func))
    finally:
        numba.config.CACHE_DIR = saved  # type: ignore[attr-defined]


def jit(func: F) -> F:
    """Compile a kernel: cached on disk, releases the GIL, strict IEEE maths."""
    return _compile(func)


def inline(func: F) -> F:
    """Compile a helper that is inlined into every kernel calling it."""
    return _compile(func, inline="always")


@intrinsic
def _bitcast_i64_f64(typingctx: Any, bits: Any) -> Any:  # pragma: no cover - compiled
    sig = types.float64(types.int64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return sig, codegen


@intrinsic
def _prefetch(typingctx: Any, arr: Any, idx: Any) -> Any:  # pragma: no cover - compiled
    sig = types.void(arr, types.intp)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        byte = ir.IntType(8).as_pointer()
        at = builder.bitcast(builder.gep(data, [args[1]]), byte)
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [byte, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")  # type: ignore[no-untyped-call]
        # read, keep in all cache levels, data cache
        builder.call(fn, [at, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


def _prefetch_py(arr: Any, idx: int) -> None:
    """A hint only: nothing to do in plain Python."""


def _bits_to_float_py(bits: int) -> float:
    return float(struct.unpack("<d", struct.pack("<q", int(bits)))[0])


if JIT_DISABLED:
    bits_to_float: Callable[[int], float] = _bits_to_float_py
    prefetch: Callable[[Any, int], None] = _prefetch_py
else:
    bits_to_float = cast(Callable[[int], float], _bitcast_i64_f64)
    # Asks the CPU to bring ``arr.flat[idx]``'s cache line in (C-contiguous ``arr``; no
    # bounds check, and a hint never faults): unlike a load, it never stalls the core.
    prefetch = cast(Callable[[Any, int], None], _prefetch)
