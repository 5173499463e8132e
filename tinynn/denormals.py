"""Flush-to-zero: arithmetic on subnormal numbers (below 1.2e-38 in float32) at full speed.

On x86-64 an operation that reads or produces a subnormal number takes a microcode assist,
dozens to hundreds of times slower than a normal one. A trained network's gradients hold many
(0.8 % of the reports' CNN's after 20 epochs): its steps took 60-71 ms instead of 40-45. A
product of two 2000 x 2000 float32 matrices whose terms are subnormal took 4.1 s here, 56 ms
with the flags below. TensorFlow's kernels run in this mode too.

``flush_to_zero()`` sets the FTZ (results flushed to zero) and DAZ (inputs read as zero) bits of
the calling thread's MXCSR register for the duration of a block and then restores them; ``fit``,
``evaluate`` and ``predict`` run inside it. OpenBLAS's threads take the calling thread's mode for
each product, and numba's threads the mode of the thread that starts them; NumPy code outside
these calls keeps IEEE subnormals. ``TINYNN_FLUSH_DENORMALS=0`` turns it off; on other CPUs it
changes nothing. The two instructions are compiled once with llvmlite (numba's code generator).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
from collections.abc import Iterator

FTZ, DAZ = 0x8000, 0x0040  # MXCSR bits: flush-to-zero, denormals-are-zero
ENV_VARIABLE = "TINYNN_FLUSH_DENORMALS"

_MXCSR_IR = """
declare void @llvm.x86.sse.stmxcsr(ptr)
declare void @llvm.x86.sse.ldmxcsr(ptr)
define i32 @tinynn_update_mxcsr(i32 %set, i32 %keep) {
  %slot = alloca i32, align 4
  call void @llvm.x86.sse.stmxcsr(ptr %slot)
  %old = load i32, ptr %slot, align 4
  %kept = and i32 %old, %keep
  %new = or i32 %kept, %set
  store i32 %new, ptr %slot, align 4
  call void @llvm.x86.sse.ldmxcsr(ptr %slot)
  ret i32 %old
}
"""
_update_mxcsr = None  # (set bits, kept bits) -> previous MXCSR, once compiled
_engine = None  # keeps the compiled code alive


def supported() -> bool:
    """Whether this CPU has an MXCSR to set (x86-64)."""
    return platform.machine().lower() in ("x86_64", "amd64")


def _compiled():
    global _update_mxcsr, _engine
    if _update_mxcsr is None:
        import llvmlite.binding as llvm

        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        module = llvm.parse_assembly(_MXCSR_IR)
        module.verify()
        _engine = llvm.create_mcjit_compiler(
            module, llvm.Target.from_default_triple().create_target_machine())
        _engine.finalize_object()
        function_type = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32)
        _update_mxcsr = function_type(_engine.get_function_address("tinynn_update_mxcsr"))
    return _update_mxcsr


@contextlib.contextmanager
def flush_to_zero() -> Iterator[None]:
    """Within the block, the calling thread (and BLAS's threads working for it) read and write
    subnormal numbers as zero; afterwards its previous mode. A no-op on CPUs other than x86-64
    and with ``TINYNN_FLUSH_DENORMALS=0``."""
    if not (supported() and os.environ.get(ENV_VARIABLE, "1") != "0"):
        yield
        return
    update, bits = _compiled(), FTZ | DAZ
    previous = update(bits, 0xFFFFFFFF & ~bits)
    try:
        yield
    finally:
        update(previous & bits, 0xFFFFFFFF & ~bits)


def flushing_denormals() -> bool:
    """Whether the calling thread flushes subnormal numbers to zero (FTZ and DAZ both set)."""
    return supported() and _compiled()(0, 0xFFFFFFFF) & (FTZ | DAZ) == FTZ | DAZ
